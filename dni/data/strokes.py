"""MNIST digits as pen-stroke sequences (paper §III-B, Table II, Fig. 6), derived from the images.

The paper used Edwin de Jong's MNIST stroke-sequence data set; dni regenerates it from the
images with the same method, so no external download is needed:

1. **Threshold, incrementally.** The grey image is binarised at thresholds
   :data:`THRESHOLDS` from low to high; dni keeps the highest threshold at which the digit still
   has as few 8-connected pieces as at the lowest one (a higher threshold gives a thinner,
   cleaner stroke; it must not break the digit apart). Thinning preserves connectivity, so
   counting the pieces of the binary image counts those of its skeleton.
2. **Thin** to a one-pixel skeleton with Zhang–Suen thinning (``skimage.morphology.skeletonize
   (method="zhang")``).
3. **Start** at the top-left end point — the end point (one skeleton neighbour) that comes first
   in raster order (topmost row, then leftmost column) — or at the first skeleton pixel in raster
   order when there is none (a '0').
4. **Order** the skeleton pixels into a pen path that visits each exactly once, moving one pixel
   at a time (8-neighbourhood) and lifting the pen only when the current pixel has no unvisited
   neighbour. Heuristic (a greedy travelling-salesman tour on the skeleton graph):
   *shortest branch first* at a junction (so the jump back to the junction is short),
   *Warnsdorff's rule* within a branch (step to the neighbour with the fewest unvisited
   neighbours, 4-neighbours before diagonals, so no pixel of a staircase is stranded), and
   *nearest end point* for a jump (the closest unvisited pixel that ends a remaining piece,
   unless a plain pixel is more than 2 px closer).

Format (de Jong's): rows ``(dx, dy, eos, eod)`` as int8, x to the right, y **down**; the first
row is the start point's offset from (0, 0); ``eos`` = 1 on the last point of a stroke (the next
move is a pen jump), ``eod`` = 1 on the last point of the digit. A blank image (no pixel above the
lowest threshold) gives an empty (0, 4) sequence. The model input (Table II) is the first
:data:`STEPS` ``(dx, dy)`` rows, zero-padded: (B, 50, 2), with the true lengths alongside.
"""

from __future__ import annotations

import numpy as np
from scipy import ndimage

from dni.errors import InvalidArgumentError

THRESHOLDS = (32, 64, 96, 128, 160, 192)
"""Binarisation thresholds on the 0–255 grey level, tried from low to high."""
STEPS = 50
"""Pen points the stroke LSTM reads (paper §III-B: 50 LSTM cells)."""
EIGHT = np.ones((3, 3), dtype=bool)
NEIGHBOURS = [(-1, 0), (0, -1), (0, 1), (1, 0), (-1, -1), (-1, 1), (1, -1), (1, 1)]  # 4-neighbours first
STROKE_FORMAT_VERSION = 1
"""Bump when the conversion changes: cached stroke files carry it in their name."""


def _check_image(image) -> np.ndarray:
    image = np.asarray(image)
    if image.shape != (28, 28):
        raise InvalidArgumentError(f"stroke conversion needs a 28x28 MNIST image, got shape {image.shape}")
    if image.dtype != np.uint8:
        if image.size and (np.nanmin(image) < 0 or np.nanmax(image) > 255 or np.isnan(image).any()):
            raise InvalidArgumentError("stroke conversion needs grey levels in 0..255 (uint8 MNIST images)")
        if image.max() <= 1.0:  # a float image in [0, 1]
            image = image * 255.0
        image = np.rint(image).astype(np.uint8)
    return image


def binarize(image: np.ndarray) -> np.ndarray:
    """Step 1: the highest threshold of :data:`THRESHOLDS` that keeps the digit in as few pieces."""
    best = image > THRESHOLDS[0]
    pieces = ndimage.label(best, structure=EIGHT)[1]
    if pieces == 0:
        return best
    for t in THRESHOLDS[1:]:
        candidate = image > t
        n = ndimage.label(candidate, structure=EIGHT)[1]
        if n == 0 or n > pieces:
            break
        best = candidate
    return best


def skeleton_of(image) -> np.ndarray:
    """Steps 1–2: the one-pixel Zhang–Suen skeleton (28, 28) bool of a grey MNIST image."""
    from skimage.morphology import skeletonize

    return skeletonize(binarize(_check_image(image)), method="zhang")


def _unvisited_neighbours(left: set, r: int, c: int):
    return [(r + dr, c + dc) for dr, dc in NEIGHBOURS if (r + dr, c + dc) in left]


def _adjacent(p, q) -> bool:
    return max(abs(p[0] - q[0]), abs(p[1] - q[1])) <= 1


def _branch_length(left: set, start, came_from, limit=64) -> int:
    """Pixels on the chain from ``start`` (not going back through ``came_from``) up to its next fork."""
    seen = {came_from, start}
    current, length = start, 1
    while length < limit:
        onward = [p for p in _unvisited_neighbours(left, *current) if p not in seen]
        if len(onward) != 1:
            # a fork or an end; a cluster of mutually adjacent pixels is a thick spot, not a fork
            if len(onward) > 1 and all(_adjacent(a, b) for a in onward for b in onward):
                seen.update(onward[1:])
            else:
                return length
        current = onward[0]
        seen.add(current)
        length += 1
    return length


def _clusters(points):
    """Group a pixel's unvisited neighbours into branches: runs of 4-adjacent pixels.

    4-adjacency, because the neighbours at a '+' junction touch diagonally: stepping between
    them is moving into another branch, not continuing this one.
    """
    groups: list[list] = []
    for p in points:
        for g in groups:
            if any(abs(p[0] - q[0]) + abs(p[1] - q[1]) == 1 for q in g):
                g.append(p)
                break
        else:
            groups.append([p])
    return groups


def _start_pixel(skeleton: np.ndarray):
    counts = ndimage.convolve(skeleton.astype(np.uint8), EIGHT.astype(np.uint8), mode="constant") - 1
    ends = np.argwhere(skeleton & (counts == 1))
    pool = ends if len(ends) else np.argwhere(skeleton)
    return tuple(int(v) for v in pool[0])  # argwhere is in raster order: topmost, then leftmost


def _jump_target(left: set, current):
    """The nearest unvisited end point (≤ 1 unvisited neighbour), unless a pixel is > 2 px closer."""
    def dist(p):
        return ((p[0] - current[0]) ** 2 + (p[1] - current[1]) ** 2) ** 0.5

    nearest = min(left, key=lambda p: (dist(p), p))
    ends = [p for p in left if len(_unvisited_neighbours(left, *p)) <= 1]
    if ends:
        end = min(ends, key=lambda p: (dist(p), p))
        if dist(end) <= dist(nearest) + 2:
            return end
    return nearest


def trace_skeleton(skeleton: np.ndarray) -> list[list[tuple[int, int]]]:
    """Steps 3–4: order the skeleton's pixels into strokes, lists of (row, col) one-pixel moves."""
    left = {(int(r), int(c)) for r, c in np.argwhere(skeleton)}
    if not left:
        return []
    current = _start_pixel(np.asarray(skeleton, dtype=bool))
    left.discard(current)
    strokes = [[current]]
    previous = None
    while left:
        options = _unvisited_neighbours(left, *current)
        if options:
            groups = _clusters(options)
            if len(groups) > 1:
                # a junction: shortest branch first; a branch 4-adjacent to the previous pixel
                # hangs off the junction we just left, so it comes last (no cutting across corners)
                groups.sort(key=lambda g: (previous is not None and all(abs(p[0] - previous[0]) + abs(p[1] - previous[1]) == 1 for p in g),
                                           min(_branch_length(left, p, current) for p in g)))
            nxt = min(groups[0], key=lambda p: (len(_unvisited_neighbours(left, *p)), abs(p[0] - current[0]) + abs(p[1] - current[1])))
            strokes[-1].append(nxt)
            previous = current
        else:  # pen up
            nxt = _jump_target(left, current)
            strokes.append([nxt])
            previous = None
        left.discard(nxt)
        current = nxt
    return strokes


def strokes_to_rows(strokes) -> np.ndarray:
    """De Jong's format: (L, 4) int8 rows (dx, dy, eos, eod), y down, first row from (0, 0)."""
    points = [(c, r) for stroke in strokes for r, c in stroke]  # (x, y)
    if not points:
        return np.zeros((0, 4), dtype=np.int8)
    xy = np.array(points, dtype=np.int16)
    rows = np.zeros((len(points), 4), dtype=np.int8)
    rows[:, :2] = np.diff(xy, axis=0, prepend=np.zeros((1, 2), dtype=np.int16))
    ends = np.cumsum([len(s) for s in strokes]) - 1
    rows[ends, 2] = 1
    rows[-1, 3] = 1
    return rows


def image_to_strokes(image) -> np.ndarray:
    """A 28×28 grey MNIST image → its pen-stroke rows (L, 4); blank image → (0, 4)."""
    return strokes_to_rows(trace_skeleton(skeleton_of(image)))


def rows_to_pixels(rows: np.ndarray) -> np.ndarray:
    """Cumulative sum of (dx, dy): the visited pixels as (row, col) = (y, x), in pen order."""
    xy = np.cumsum(rows[:, :2].astype(np.int32), axis=0)
    return xy[:, ::-1]


def to_model_input(sequences, steps: int = STEPS) -> tuple[np.ndarray, np.ndarray]:
    """First ``steps`` (dx, dy) rows of each sequence, zero-padded: (B, steps, 2) float32, lengths (B,)."""
    out = np.zeros((len(sequences), steps, 2), dtype=np.float32)
    lengths = np.array([len(s) for s in sequences], dtype=np.int64)
    for i, s in enumerate(sequences):
        n = min(len(s), steps)
        out[i, :n] = s[:n, :2]
    return out, lengths


# --- whole data sets -------------------------------------------------------------------------

def pack(sequences) -> tuple[np.ndarray, np.ndarray]:
    """Many (L_i, 4) sequences → rows (ΣL, 4) int8 and offsets (N + 1,) int64."""
    offsets = np.zeros(len(sequences) + 1, dtype=np.int64)
    offsets[1:] = np.cumsum([len(s) for s in sequences])
    rows = np.concatenate(sequences) if len(sequences) else np.zeros((0, 4), np.int8)
    return rows.astype(np.int8), offsets


def unpack(rows: np.ndarray, offsets: np.ndarray) -> list[np.ndarray]:
    return [rows[offsets[i] : offsets[i + 1]] for i in range(len(offsets) - 1)]


def _convert_chunk(images: np.ndarray) -> list[np.ndarray]:
    return [image_to_strokes(im) for im in images]


def convert_images(images, processes: int | None = None, progress: bool = True, chunk: int = 500):
    """Convert uint8 images (N, 28, 28) to packed stroke rows in parallel; deterministic order."""
    import multiprocessing as mp
    import os

    from dni.util.progress import tqdm

    images = np.asarray(images)
    if images.ndim != 3 or images.shape[1:] != (28, 28):
        raise InvalidArgumentError(f"stroke conversion needs images of shape (N, 28, 28), got {images.shape}")
    chunks = [images[i : i + chunk] for i in range(0, len(images), chunk)]
    processes = processes or min(len(os.sched_getaffinity(0)), max(len(chunks), 1))
    bar = tqdm(total=len(images), desc="pen strokes", unit="digit", disable=not progress)
    sequences: list[np.ndarray] = []
    if processes <= 1 or len(chunks) <= 1:
        for c in chunks:
            sequences += _convert_chunk(c)
            bar.update(len(c))
    else:
        with mp.get_context("fork" if hasattr(os, "fork") else "spawn").Pool(processes) as pool:
            for c, seqs in zip(chunks, pool.imap(_convert_chunk, chunks)):
                sequences += seqs
                bar.update(len(c))
    bar.close()
    return pack(sequences)


def length_histogram(lengths, bin_width: int = 5):
    """Histogram of sequence lengths (paper Fig. 6): (counts, bin_edges) with ``bin_width``-point bins."""
    lengths = np.asarray(lengths)
    top = int(lengths.max()) if len(lengths) else 0
    edges = np.arange(0, top + bin_width + 1, bin_width)
    counts, edges = np.histogram(lengths, bins=edges)
    return counts, edges
