"""Running a notebook in batch so that the executed notebook stays viewable (issue 24, item 6).

papermill executes a notebook in a fresh kernel; opened afterwards in JupyterLab, such a notebook is
*untrusted*, so its bokeh figures (JavaScript outputs) stay blank, and tqdm's widget bars show as
frozen empty widgets. :func:`run_notebook` runs it with text progress (:mod:`dni.util.progress`: a kernel
papermill starts gets text bars) and signs the executed notebook with Jupyter's notary for this
user, as ``jupyter trust`` does, so JupyterLab shows its figures. A notebook run with the plain
``papermill`` command: ``jupyter trust OUT.ipynb`` once.
"""

from __future__ import annotations

from pathlib import Path


def trust(path) -> None:
    """Sign the notebook at ``path`` for this user (``jupyter trust``): JupyterLab then runs its outputs' JavaScript."""
    import nbformat
    from nbformat.sign import NotebookNotary

    nb = nbformat.read(str(path), as_version=4)
    NotebookNotary().sign(nb)


def is_trusted(path) -> bool:
    """Whether JupyterLab will trust the notebook at ``path`` (its signature is in this user's notary)."""
    import nbformat
    from nbformat.sign import NotebookNotary

    return NotebookNotary().check_signature(nbformat.read(str(path), as_version=4))


def run_notebook(notebook, output, parameters: dict, *, progress: bool = True, cwd=None) -> Path:
    """Execute ``notebook`` with papermill into ``output`` with ``parameters``, then :func:`trust` it.

    Raises papermill's ``PapermillExecutionError`` when a cell fails (the executed notebook, with the
    error, is written and left untrusted).
    """
    import papermill as pm

    pm.execute_notebook(str(notebook), str(output), parameters=parameters, progress_bar=progress,
                        cwd=str(cwd) if cwd is not None else None)
    trust(output)
    return Path(output)
