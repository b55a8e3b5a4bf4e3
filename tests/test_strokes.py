import numpy as np
import pytest
from conftest import needs_full_mnist

from dni.data import load_images, load_sequences
from dni.data.strokes import (
    STEPS,
    convert_images,
    image_to_strokes,
    length_histogram,
    rows_to_pixels,
    skeleton_of,
    strokes_to_rows,
    to_model_input,
    trace_skeleton,
)
from dni.errors import InvalidArgumentError


def canvas(points):
    img = np.zeros((28, 28), dtype=bool)
    for r, c in points:
        img[r, c] = True
    return img


def check_path(rows, skeleton):
    """The issue's invariants: one-pixel moves except after eos; visits exactly the skeleton; one eod."""
    assert rows.dtype == np.int8 and rows.shape[1] == 4
    moves = rows[1:, :2].astype(int)
    after_eos = rows[:-1, 2] == 1
    step = (np.abs(moves).max(1) == 1)  # |dx| ≤ 1, |dy| ≤ 1, not both 0
    assert np.all(step | after_eos), "a jump that does not follow an eos row"
    assert rows[-1, 2] == 1 and rows[-1, 3] == 1 and rows[:-1, 3].sum() == 0
    pixels = rows_to_pixels(rows)
    assert len({tuple(p) for p in pixels}) == len(pixels) == skeleton.sum(), "a pixel visited twice or missed"
    assert canvas(pixels).tolist() == skeleton.tolist()
    return pixels


def n_strokes(rows):
    return int(rows[:, 2].sum())


def test_straight_line():
    sk = canvas([(5, c) for c in range(3, 21)])
    rows = strokes_to_rows(trace_skeleton(sk))
    check_path(rows, sk)
    assert rows[0, :2].tolist() == [3, 5]  # (dx, dy) of the start from (0, 0): x = column, y = row (down)
    assert np.all(rows[1:, :2] == [1, 0]) and n_strokes(rows) == 1


def test_L_shape_is_one_stroke_from_its_top_end():
    sk = canvas([(r, 5) for r in range(3, 21)] + [(20, c) for c in range(6, 19)])
    rows = strokes_to_rows(trace_skeleton(sk))
    pixels = check_path(rows, sk)
    assert tuple(pixels[0]) == (3, 5) and tuple(pixels[-1]) == (20, 18) and n_strokes(rows) == 1


def test_plus_needs_the_minimum_three_strokes_and_short_jumps():
    sk = canvas([(r, 12) for r in range(4, 21)] + [(12, c) for c in range(4, 21) if c != 12])
    rows = strokes_to_rows(trace_skeleton(sk))
    pixels = check_path(rows, sk)
    assert tuple(pixels[0]) == (4, 12)  # the topmost end point
    assert n_strokes(rows) == 3  # two arms become separate pieces once the centre is passed
    jumps = np.abs(rows[1:, :2][rows[:-1, 2] == 1]).max(1)
    assert len(jumps) == 2 and jumps.max() <= 9


def test_ring_has_no_end_point_and_is_one_closed_stroke():
    ring = [(6, c) for c in range(8, 16)] + [(r, 16) for r in range(6, 18)] + [(17, c) for c in range(8, 16)] + [(r, 7) for r in range(7, 17)]
    sk = canvas(ring)
    rows = strokes_to_rows(trace_skeleton(sk))
    pixels = check_path(rows, sk)
    top_left = min(map(tuple, np.argwhere(sk)))
    assert tuple(pixels[0]) == top_left and n_strokes(rows) == 1
    assert np.abs(pixels[-1] - pixels[0]).max() == 1  # closes next to where it started


def test_thick_drawn_shapes_go_through_thinning():
    img = np.zeros((28, 28), dtype=np.uint8)
    img[4:24, 12:15] = 255  # a 3-pixel-wide vertical bar
    img[20:23, 6:15] = 200  # and a foot: an 'L' mirrored
    rows = image_to_strokes(img)
    check_path(rows, skeleton_of(img))
    assert n_strokes(rows) <= 2


def test_real_digits_reconstruct_their_skeletons():
    images, _ = load_images("subset", "test")
    for im in images[:300].numpy():
        check_path(image_to_strokes(im), skeleton_of(im))


def test_shipped_subset_strokes_equal_a_fresh_conversion():
    data = load_sequences("subset", "test", "strokes")
    fresh = [image_to_strokes(im) for im in data.images[:200].numpy()]
    assert all(np.array_equal(a, b) for a, b in zip(fresh, data.strokes[:200]))
    assert data.x.shape == (2000, STEPS, 2) and data.lengths.tolist() == [len(s) for s in data.strokes]


def test_model_input_is_first_50_moves_zero_padded():
    short = np.array([[3, 4, 0, 0], [1, 0, 1, 1]], dtype=np.int8)
    long = np.tile(np.array([[0, 1, 0, 0]], dtype=np.int8), (70, 1))
    x, lengths = to_model_input([short, long])
    assert x.shape == (2, 50, 2) and x.dtype == np.float32 and lengths.tolist() == [2, 70]
    assert x[0, :2].tolist() == [[3, 4], [1, 0]] and not x[0, 2:].any() and np.all(x[1, :, 1] == 1)


def test_conversion_is_deterministic_in_parallel_and_serial():
    images = load_images("subset", "train")[0][:400].numpy()
    a = convert_images(images, processes=2, progress=False, chunk=100)
    b = convert_images(images, processes=1, progress=False)
    assert np.array_equal(a[0], b[0]) and np.array_equal(a[1], b[1])


def test_bad_images():
    with pytest.raises(InvalidArgumentError, match="needs a 28x28 MNIST image, got shape \\(28, 27\\)"):
        image_to_strokes(np.zeros((28, 27), dtype=np.uint8))
    with pytest.raises(InvalidArgumentError, match="grey levels in 0..255"):
        image_to_strokes(np.full((28, 28), -3.0))
    assert image_to_strokes(np.zeros((28, 28), dtype=np.uint8)).shape == (0, 4)  # blank: documented empty sequence
    assert to_model_input([np.zeros((0, 4), np.int8)])[1].tolist() == [0]


def test_length_histogram_counts_every_digit():
    counts, edges = length_histogram([3, 7, 7, 12, 49], bin_width=5)
    assert counts.sum() == 5 and edges[0] == 0 and counts[1] == 2


@needs_full_mnist
def test_full_test_set_lengths_are_mostly_20_to_60():
    data = load_sequences("mnist", "test", "strokes", progress=False)
    lengths = data.lengths.numpy()
    assert len(lengths) == 10_000
    assert ((lengths >= 20) & (lengths <= 60)).mean() >= 0.70
    for i in range(0, 10_000, 997):  # spot-check reconstruction across the set
        check_path(data.strokes[i], skeleton_of(data.images[i].numpy()))


def test_stroke_cache_goes_to_user_cache_when_data_root_is_read_only(tmp_path, monkeypatch):
    from dni.data.stroke_store import full_mnist_cache_dir

    (tmp_path / "MNIST").mkdir()
    monkeypatch.setenv("DNI_DATA_DIR", str(tmp_path))
    assert full_mnist_cache_dir() == tmp_path / "MNIST" / "strokes"
    (tmp_path / "MNIST").chmod(0o555)
    try:
        assert full_mnist_cache_dir() != tmp_path / "MNIST" / "strokes"
    finally:
        (tmp_path / "MNIST").chmod(0o755)


def test_lstm_stroke50_trains_and_evaluates_through_the_cli(tmp_path, capsys):
    from dni.cli import main
    from dni.store.results import load_results

    out = tmp_path / "strokes.nc"
    code = main(["--quiet", "sweep", "--preset", "lstm_stroke50", "--epochs", "2", "--sigma-train", "0",
                 "--sigma-val", "0,0.5", "--repeats", "2", "--out", str(out)])
    assert code == 0
    ds = load_results(out)
    assert ds.arch.values.tolist() == ["lstm_stroke50"]
    assert ds.accuracy.sel(sigma_val=0.0).mean() > 0.3  # learning from pen strokes, well above chance (0.1)


def test_stroke_length_figure_counts_every_digit():
    from dni_widgets.figures import stroke_length_figure

    lengths = load_sequences("subset", "test", "strokes").lengths.numpy()
    fig = stroke_length_figure(lengths)
    quad = next(r for r in fig.renderers if r.glyph.__class__.__name__ == "Quad")
    assert sum(quad.data_source.data["count"]) == len(lengths) == 2000


def _bars(bridge: int, halo: dict[int, int] | None = None) -> np.ndarray:
    """Two horizontal ink bars (255) on row 10, joined by one pixel of grey ``bridge``; ``halo``: {grey: column}
    adds a pixel of that grey just above the left bar (attached to it, so it never makes a piece of its own)."""
    img = np.zeros((28, 28), dtype=np.uint8)
    img[10, 4:12] = 255
    img[10, 12] = bridge
    img[10, 13:22] = 255
    for grey, col in (halo or {}).items():
        img[9, col] = grey
    return img


@pytest.mark.parametrize("bridge, kept", [(100, 96), (140, 128), (170, 160), (200, 192), (255, 192), (40, 32)])
def test_binarize_keeps_the_highest_threshold_that_does_not_break_the_digit(bridge, kept):
    """Grey levels straddling every threshold (32, 64, ..., 192): the halo pixels (50, 80, 110, 150, 180) drop out
    one threshold after another without breaking anything, the bridge breaks the digit in two just above its grey."""
    from dni.data.strokes import THRESHOLDS, binarize

    assert THRESHOLDS == (32, 64, 96, 128, 160, 192)
    img = _bars(bridge, {50: 4, 80: 6, 110: 8, 150: 10, 180: 11})
    expected = np.zeros((28, 28), dtype=bool)
    expected[10, 4:22] = True
    expected[10, 12] = bridge > kept
    for grey, col in {50: 4, 80: 6, 110: 8, 150: 10, 180: 11}.items():
        expected[9, col] = grey > kept  # a halo pixel survives only below its grey
    assert np.array_equal(binarize(img), expected)


def test_binarize_accepts_fewer_pieces_and_stops_before_the_digit_vanishes():
    from dni.data.strokes import binarize

    # a faint speck (grey 40, detached) is a second piece at threshold 32 only: higher thresholds are kept
    img = _bars(255)
    img[20, 20] = 40
    expected = np.zeros((28, 28), dtype=bool)
    expected[10, 4:22] = True
    assert np.array_equal(binarize(img), expected)  # the speck gone, thresholded at 192
    # a digit of grey 150 only: gone from threshold 160 on, so 128 is kept (not an empty image)
    faint = np.where(_bars(255) > 0, 150, 0).astype(np.uint8)
    assert np.array_equal(binarize(faint), faint > 0) and binarize(faint).sum() == 18
    # the search stops at the first threshold that breaks the digit, even where a higher one has fewer pieces
    # again because a whole part has vanished: a right bar of grey 150 behind a joint of grey 100 is kept
    half = _bars(100)
    half[10, 13:22] = 150
    assert np.array_equal(binarize(half), half > 96) and binarize(half).sum() == 18
    # nothing above the lowest threshold: blank
    assert not binarize(np.full((28, 28), 32, dtype=np.uint8)).any()


def test_the_stroke_of_a_digit_with_a_grey_joint_stays_one_stroke():
    """Thresholding too high would cut the bar at its grey joint and give two strokes."""
    rows = image_to_strokes(_bars(100))
    check_path(rows, skeleton_of(_bars(100)))
    assert n_strokes(rows) == 1 and len(rows) == 18
