"""Opening a result file and its trained models for the figures and the explorer (the demo included).
"""

from __future__ import annotations

from pathlib import Path

from dni.store.checkpoints import TrainedModel, load_checkpoint
from dni.store.layout import find_checkpoints
from dni.store.results import load_results

DEMO_DIR = Path(__file__).parent / "demo"
"""The shipped demo: a small result set on the embedded subset and its checkpoints."""


def load_models(checkpoints: dict) -> dict:
    """{(arch, σtrain): TrainedModel} from {(arch, σtrain): checkpoint path or TrainedModel}."""

    return {k: v if isinstance(v, TrainedModel) else load_checkpoint(v) for k, v in checkpoints.items()}


def open_results(result=None, checkpoint_dir=None):
    """(dataset, {(arch, σtrain): path}) of a result file and its checkpoints; the shipped demo when ``result`` is None.

    ``checkpoint_dir`` defaults to ``<result>_checkpoints/`` as ``dni sweep`` lays it out.
    """
    from pathlib import Path

    from dni_widgets.loading import DEMO_DIR

    from dni.store.layout import default_checkpoint_dir

    if result is None:
        result, checkpoint_dir = DEMO_DIR / "demo.nc", checkpoint_dir or DEMO_DIR / "checkpoints"
    result = Path(result)
    ds = load_results(result)
    return ds, find_checkpoints(ds, Path(checkpoint_dir) if checkpoint_dir else default_checkpoint_dir(result))
