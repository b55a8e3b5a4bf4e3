"""Progress bars that suit where dni runs: a widget bar in a live Jupyter notebook, text elsewhere.

tqdm.auto picks the widget bar in every IPython kernel, also in one papermill runs: there nobody
watches, the notebook keeps no widget state, and the executed notebook later shows frozen, empty
bars. dni shows the widget bar only in a kernel a Jupyter server started for a user's session (it
sets ``JPY_SESSION_NAME``: JupyterLab, Notebook, Binder) and text bars everywhere else — terminals,
papermill and ``dni notebook-sweep`` jobs, CI logs — whose last line stays readable in the executed
notebook. ``DNI_PROGRESS=text`` or ``DNI_PROGRESS=widget`` overrides the choice.
"""

from __future__ import annotations

import os
import sys


def uses_widget_bars() -> bool:
    """Whether progress shows as a notebook widget here (see the module's docstring)."""
    choice = os.environ.get("DNI_PROGRESS", "").strip().lower()
    if choice in ("text", "widget"):
        return choice == "widget"
    shell = getattr(sys.modules.get("IPython"), "get_ipython", lambda: None)()
    in_kernel = shell is not None and "IPKernelApp" in getattr(shell, "config", {})
    return in_kernel and bool(os.environ.get("JPY_SESSION_NAME"))


def tqdm(*args, **kwargs):
    """A ``tqdm`` bar (same arguments) of the kind :func:`uses_widget_bars` chooses."""
    if uses_widget_bars():
        from tqdm.notebook import tqdm as bar
    else:
        from tqdm.std import tqdm as bar
    return bar(*args, **kwargs)
