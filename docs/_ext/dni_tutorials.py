"""Execute the notebooks of ``notebooks/`` for the Tutorials section, with papermill, in the build.

Each notebook runs with the small parameters in :data:`TUTORIALS` (the notebooks' own ``parameters``
cell names them; papermill's injected cell shows them on the page), on the embedded MNIST subset or
the demo results shipped with dni, in a scratch folder. The executed copy is written to
``docs/tutorials/_executed/<name>.ipynb`` and MyST-NB renders it with its outputs (it never
executes anything itself). A copy is reused only while its key — the notebook, its parameters, this
file, and every source file of dni and dni_widgets — is unchanged, so outputs are never stale: change the
code and the next build runs the notebook again. Nothing executed is committed (the folder is
git-ignored).
"""

from __future__ import annotations

import hashlib
import json
import logging as std_logging
import os
import re
import shutil
import time
from pathlib import Path

from sphinx.util import logging

log = logging.getLogger(__name__)

TUTORIALS: dict[str, dict] = {
    # name: papermill parameters (small: the whole docs build aims at <= 3 minutes on 2 cores)
    "quickstart": dict(sigma_train=[0.0, 1.0], sigma_val="0:1:0.25", repeats=2, epochs=2, out="quickstart.nc"),
    "your_model": dict(train_digits=1024, test_digits=500, hidden=32, epochs=2, sigma_val=[0.0, 0.5, 1.0],
                       adding_train=1000, adding_test=250, adding_epochs=3, adding_sigma_val=[0.0, 0.1, 0.3], repeats=2),
    "train_evaluate": dict(preset="rnn28", sigma_train="0.5", sigma_val="0,0.5,1", repeats=2, epochs=1, out="rnn28.nc"),
    "paper_figures": dict(digits=100),
    "explore": dict(digits=32),
}


NOTES: dict[str, str] = {
    # name: a note the docs add after the notebook's first cell (marked as the docs' own, not the notebook's)
    "explore": "**On this page the explorer is not live.** It is an ipywidgets app: a static page has no "
               "kernel behind it, so its controls cannot recompute anything, and the widgets are drawn only "
               "where the browser can fetch the widget code from a CDN (offline, the output below stays "
               "empty). Run the notebook in JupyterLab (`jupyter lab notebooks/explore.ipynb`) or on Binder "
               "for the live explorer; the same views as static figures are in the tutorial "
               "\"The paper's figures from a result file and its checkpoints\" and in `dni figures`.",
}


def _key(root: Path, name: str, params: dict) -> str:
    h = hashlib.sha256()
    h.update((root / "notebooks" / f"{name}.ipynb").read_bytes())
    h.update(json.dumps(params, sort_keys=True).encode())
    h.update(Path(__file__).read_bytes())  # this extension (how the outputs are post-processed)
    for folder in ("dni", "widgets"):
        for path in sorted((root / folder).rglob("*.py")):
            h.update(str(path.relative_to(root)).encode())
            h.update(path.read_bytes())
    return h.hexdigest()


_CONTROL = re.compile(r"(\r\n|\r|\n|\x1b\[\d*A|\x1b\[[0-9;]*[A-Za-z])")


def _terminal(text: str) -> str:
    """Text as a terminal shows it once written: carriage returns and cursor-up (tqdm's nested text bars
    redraw their lines with them) overwrite earlier text, so each progress bar keeps its last state."""
    lines, row, col = [""], 0, 0
    for token in _CONTROL.split(text):
        if token in ("\n", "\r\n"):
            row, col = row + 1, 0
            if row == len(lines):
                lines.append("")
        elif token == "\r":
            col = 0
        elif token.startswith("\x1b["):
            if token.endswith("A"):
                row = max(0, row - int(token[2:-1] or 1))
        elif token:
            line = lines[row]
            lines[row] = line[:col].ljust(col) + token + line[col + len(token):]
            col += len(token)
    return "\n".join(line.rstrip() for line in lines)


def _as_displayed(outputs: list[dict]) -> list[dict]:
    """Stream outputs as a terminal would leave them: consecutive chunks of one stream joined, then
    rendered by :func:`_terminal` (a text progress bar reduced to its last state)."""
    merged: list[dict] = []
    for out in outputs:
        if out.get("output_type") == "stream" and merged and merged[-1].get("output_type") == "stream" \
                and merged[-1]["name"] == out["name"]:
            merged[-1]["text"] = "".join(merged[-1]["text"]) + "".join(out["text"])
        else:
            merged.append(dict(out))
    for out in merged:
        if out.get("output_type") == "stream":
            out["text"] = _terminal("".join(out["text"]))
    return merged


def execute_tutorials(app):
    import papermill as pm

    root = Path(app.srcdir).parent
    out_dir = Path(app.srcdir) / "tutorials" / "_executed"
    out_dir.mkdir(parents=True, exist_ok=True)
    # the kernels import this checkout's dni (conf.py sets PYTHONPATH) and print text progress bars
    os.environ["DNI_PROGRESS"] = "text"
    std_logging.getLogger("papermill").setLevel(std_logging.WARNING)
    for name, params in TUTORIALS.items():
        out = out_dir / f"{name}.ipynb"
        key = _key(root, name, params)
        if out.exists():
            try:
                if json.loads(out.read_text())["metadata"].get("dni_docs_key") == key:
                    continue
            except (ValueError, KeyError):
                pass
        work = out_dir / "_work" / name
        shutil.rmtree(work, ignore_errors=True)
        work.mkdir(parents=True)
        t0 = time.perf_counter()
        log.info(f"[dni_tutorials] executing notebooks/{name}.ipynb with {params}")
        pm.execute_notebook(str(root / "notebooks" / f"{name}.ipynb"), str(work / f"{name}.ipynb"),
                            parameters=params, cwd=str(work), progress_bar=False, log_output=False)
        nb = json.loads((work / f"{name}.ipynb").read_text())
        for cell in nb["cells"]:
            if cell["cell_type"] == "code":
                cell["outputs"] = _as_displayed(cell.get("outputs", []))
        if name in NOTES:
            note = {"cell_type": "markdown", "id": "dni-docs-note", "metadata": {"tags": ["dni-docs-note"]},
                    "source": f"```{{note}}\n{NOTES[name]}\n```"}
            nb["cells"].insert(1, note)
        nb["metadata"]["dni_docs_key"] = key
        out.write_text(json.dumps(nb, indent=1))
        shutil.rmtree(work, ignore_errors=True)
        log.info(f"[dni_tutorials] {name}: {time.perf_counter() - t0:.0f} s")


def setup(app):
    app.connect("builder-inited", execute_tutorials)
    return {"parallel_read_safe": True, "version": "1"}
