"""Opening a result file and its trained models for the figures and the explorer (the demo included).
"""

from __future__ import annotations

from pathlib import Path

from dni.store.checkpoints import TrainedModel, load_checkpoint
from dni.store.results import load_results

DEMO_DIR = Path(__file__).parent / "demo"
"""The shipped demo: a small result set on the embedded subset and its checkpoints."""


def load_models(checkpoints: dict) -> dict:
    """{(arch, σtrain): TrainedModel} from {(arch, σtrain): checkpoint path or TrainedModel}."""

    return {k: v if isinstance(v, TrainedModel) else load_checkpoint(v) for k, v in checkpoints.items()}


def open_results(result=None, checkpoint_dir=None):
    """(dataset, {(arch, σtrain): path}) of a result file and its checkpoints (:func:`open_result_models`, one
    model per (arch, σtrain): the first train noise and training seed), as the figures take them."""
    ds, found = open_result_models(result, checkpoint_dir)
    out = {}
    for (arch, _, st, _), path in found.items():
        out.setdefault((arch, st), path)
    return ds, out


def open_result_models(result=None, checkpoint_dir=None):
    """(dataset, {(arch, train noise, σtrain, train seed): path}) of a result file and its checkpoints; the
    shipped demo when ``result`` is None.

    ``checkpoint_dir``: a folder or a list of them; default every folder the result's models may live in
    (:func:`dni.store.layout.checkpoint_dirs`: ``<result>_checkpoints/`` as ``dni sweep`` lays it out, a
    grid's own ``<result>/checkpoints/``, the other ``*_checkpoints/`` beside it); each model accepted by its CRC.
    """
    from dni.store.layout import checkpoint_dirs, locate_checkpoints

    if result is None:
        result, checkpoint_dir = DEMO_DIR / "demo.nc", checkpoint_dir or DEMO_DIR / "checkpoints"
    result = Path(result)
    ds = load_results(result)
    if checkpoint_dir is None:
        folders = checkpoint_dirs(result)
    else:
        folders = [Path(checkpoint_dir)] if isinstance(checkpoint_dir, (str, Path)) else [Path(d) for d in checkpoint_dir]
    return ds, locate_checkpoints(ds, folders)
