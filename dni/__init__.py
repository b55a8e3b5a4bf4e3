"""dni — Deep Noise Injection training of recurrent networks (see README and the docs).

The package is built in layers, each a sub-package that imports only those below it (the contract in
``pyproject.toml``, checked by the test suite)::

    dni.cli                      the `dni` command
    dni_widgets                  bokeh figures and the live explorer (source folder widgets/)
    dni.paper                    the paper against our results: report, REPRODUCTION.md, mismatch grid
    dni.experiments              sweeps: grid, model reuse, result file; in-process, Dask, papermill
    dni.training | dni.evaluation   Deep Noise Injection training | noisy inference and robustness
    dni.store                    result sets (NetCDF) and trained models (checkpoints, training states)
    dni.nn                       noisy cells, sequence paths, presets, stacked models, noisify, probes
    dni.noise | dni.data         analog noise kinds and specs | MNIST rows and pen strokes
    dni.util, dni.errors         file safety, progress, argument checks | every error class

The public API at the top: :func:`noisify`, :func:`eval_noise` and :func:`robustness`, loaded on first
use so that ``import dni.errors`` or ``dni --help`` do not import torch.
"""

from dni._version import __version__

from dni.util.lazy import lazy_exports

_PUBLIC = {"noisify": "dni.nn.noisify", "eval_noise": "dni.nn.noisify", "robustness": "dni.evaluation.robustness"}

__all__ = ["__version__", *_PUBLIC]


__getattr__, __dir__ = lazy_exports(__name__, _PUBLIC)


from dni import _moved  # noqa: E402  (old flat module names keep working, with a DeprecationWarning)

_moved.install()
