"""Sphinx configuration of dni's documentation (MyST-NB, Furo).

Built by ``tests/test_docs.py`` with warnings as errors and nitpicky cross-references on dni's own
objects; locally: ``python -m sphinx -b html docs docs/_build/html`` (add ``-W --keep-going -n`` as CI does).
Offline: no intersphinx, no downloads. The tutorials are executed in the build by papermill with small
parameters (``_ext/dni_tutorials.py``, cached in ``docs/tutorials/_executed/``).
"""

from __future__ import annotations

import atexit
import os
import re
import shutil
import sys
import tempfile
from pathlib import Path

DOCS = Path(__file__).parent
ROOT = DOCS.parent
# Document this checkout, whatever else is installed: `dni` is ROOT/dni and `dni_widgets` is
# ROOT/widgets (a link in a scratch folder gives the folder its import name), here and in the
# notebooks' kernels (PYTHONPATH; an editable install's finder comes after it).
_shim = Path(tempfile.mkdtemp(prefix="dni_docs_"))
atexit.register(shutil.rmtree, _shim, True)
(_shim / "dni_widgets").symlink_to(ROOT / "widgets", target_is_directory=True)
for _p in (ROOT, _shim):
    sys.path.insert(0, str(_p))
os.environ["PYTHONPATH"] = os.pathsep.join([str(ROOT), str(_shim), *filter(None, [os.environ.get("PYTHONPATH")])])
sys.path.insert(0, str(DOCS / "_ext"))

# autosummary writes reference/generated/<module>.rst for each module listed in reference/api.md and never
# deletes one: the page of a module that moved or went would still be built (not in any toctree, its
# import deprecated). Pages of modules no longer listed are removed first.
_listed = set(re.findall(r"^   ((?:dni|dni_widgets)(?:\.\w+)*)\s*$", (DOCS / "reference" / "api.md").read_text(), re.MULTILINE))
for _page in (DOCS / "reference" / "generated").glob("*.rst"):
    if _page.stem not in _listed:
        _page.unlink()

import dni  # noqa: E402

project = "dni"
author = "the dni authors"
copyright = "2026, the dni authors"
release = version = dni.__version__

extensions = [
    "myst_nb",
    "sphinx.ext.autodoc",
    "sphinx.ext.autosummary",
    "sphinx.ext.mathjax",
    "sphinx.ext.viewcode",
    "dni_cli",         # the CLI reference, generated from dni.cli.build_parser()
    "dni_tutorials",   # executes notebooks/*.ipynb with papermill into tutorials/_executed/
]

templates_path = ["_templates"]
exclude_patterns = ["_build", "tutorials/_executed/_work", "Thumbs.db", ".DS_Store", "**/.ipynb_checkpoints", "jupyter_execute"]
source_suffix = {".rst": "restructuredtext", ".md": "myst-nb", ".ipynb": "myst-nb"}

# --- MyST / MyST-NB ---------------------------------------------------------------------------
myst_enable_extensions = ["dollarmath", "colon_fence", "deflist"]
myst_heading_anchors = 3
nb_execution_mode = "off"          # notebooks arrive executed (papermill, dni_tutorials); never re-run here
nb_merge_streams = True
suppress_warnings = ["mystnb.unknown_mime_type"]   # bokeh's exec mimetype: its HTML/JS output is rendered

# --- autodoc ----------------------------------------------------------------------------------
autosummary_generate = True
autodoc_default_options = {"members": True, "undoc-members": True, "ignore-module-all": True, "show-inheritance": True}
autodoc_inherit_docstrings = False   # torch.autograd.Function.forward's docstring cites torch's own labels
autodoc_member_order = "bysource"
autodoc_typehints = "description"
autodoc_typehints_format = "short"
autodoc_preserve_defaults = True
add_module_names = False

# Nitpicky on dni's own objects: a reference to anything in dni (or dni_widgets) that does not
# resolve is an error. Targets outside dni (torch, numpy, xarray, builtins) are not documented here
# (no intersphinx: the build is offline) and are let through.
nitpicky = True
nitpick_ignore_regex = [
    (r"py:.*", r"(?!dni\.|dni_widgets\.|dni$).*"),   # not dni's
    (r"py:.*", r"(dni|dni_widgets)\..*\._[^.]*"),     # dni's private bases (shown by show-inheritance), not documented
]

# --- HTML -------------------------------------------------------------------------------------
html_theme = "furo"
html_title = f"dni {release}"
html_static_path = []
