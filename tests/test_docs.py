"""The documentation site (issue 38): ``docs/`` builds with warnings as errors, offline, and is complete.

One build per session (``python -m sphinx -b html -W --keep-going -n``, nitpicky: a reference to one of
dni's own objects that does not resolve is an error; ``docs/conf.py``), into a temporary folder. The
tutorials are executed in that build by papermill with small settings (``docs/_ext/dni_tutorials.py``;
an executed copy in ``docs/tutorials/_executed/`` is reused while the notebook and dni's sources are
unchanged). Offline: the build runs with HTTP(S) proxies pointing at a closed port, so anything that
tried to download would fail it. Aim: ≤ 3 minutes on the 2-core CI machine with the notebooks executed
(asserted with headroom: a hung build fails, a slow machine does not).
"""

from __future__ import annotations

import ast
import os
import re
import subprocess
import sys
import time

import pytest

from conftest import REPO

DOCS = REPO / "docs"
BUILD_LIMIT_S = 480


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    out = tmp_path_factory.mktemp("docs")
    env = {**os.environ, "http_proxy": "http://127.0.0.1:9", "https_proxy": "http://127.0.0.1:9",
           "HTTP_PROXY": "http://127.0.0.1:9", "HTTPS_PROXY": "http://127.0.0.1:9", "no_proxy": "", "NO_PROXY": ""}
    t0 = time.perf_counter()
    proc = subprocess.run([sys.executable, "-m", "sphinx", "-b", "html", "-W", "--keep-going", "-n", "-q",
                           "-d", str(out / "doctrees"), str(DOCS), str(out / "html")],
                          cwd=REPO, env=env, capture_output=True, text=True, timeout=BUILD_LIMIT_S + 120)
    seconds = time.perf_counter() - t0
    print(f"docs build: {seconds:.0f} s")
    problems = [ln for ln in proc.stderr.splitlines() if re.search(r"WARNING|ERROR|CRITICAL|Traceback", ln)
                and "IPKernelApp" not in ln]  # the kernel's own start-up notice is not the docs'
    assert proc.returncode == 0 and not problems, "docs build failed:\n" + proc.stderr[-8000:]
    assert seconds < BUILD_LIMIT_S, f"docs build took {seconds:.0f} s (aim: 180 s)"
    return out / "html"


def test_docs_build_warning_free(built):
    assert (built / "index.html").is_file()


def _api_modules() -> list[str]:
    """The modules docs/reference/api.md documents (its autosummary list and its automodule directives)."""
    text = (DOCS / "reference" / "api.md").read_text()
    listed = re.findall(r"^   ((?:dni|dni_widgets)(?:\.\w+)*)\s*$", text, re.M)
    return listed + re.findall(r"^\.\. automodule:: (\S+)", text, re.M)


def _source_modules() -> list[str]:
    """Every public module of the checkout's packages dni and dni_widgets (widgets/), found on disk (no import)."""
    names = []
    for folder, package in ((REPO / "dni", "dni"), (REPO / "widgets", "dni_widgets")):
        for path in sorted(folder.rglob("*.py")):
            parts = path.relative_to(folder).with_suffix("").parts
            if "__pycache__" in parts or not all((folder.joinpath(*parts[:i]) / "__init__.py").is_file() for i in range(len(parts))):
                continue  # not inside a package (e.g. a data folder's script)
            if parts[-1] == "__init__":
                parts = parts[:-1]
            if parts and not any(p.startswith("_") for p in parts):
                names.append(".".join((package, *parts)))
    return names


def _where_to_list(module: str) -> str:
    """Which line of docs/reference/api.md to add for ``module``: after the last listed module of its package."""
    lines = (DOCS / "reference" / "api.md").read_text().splitlines()
    package = module.rpartition(".")[0]
    while package and package != "dni":  # a new sub-package of dni: its layer's list, which the test cannot know
        rows = [i for i, ln in enumerate(lines, 1) if re.fullmatch(rf"   {re.escape(package)}(\.\w+)*\s*", ln)]
        if rows:
            return f"docs/reference/api.md:{rows[-1] + 1}: add the line '   {module}' (after '{lines[rows[-1] - 1].strip()}')"
        package = package.rpartition(".")[0]
    return f"docs/reference/api.md: add the line '   {module}' to the autosummary list of its layer (a new layer: a new '###' section)"


def test_every_module_is_in_the_api_reference():
    """A module added or moved (issue 35) must be listed in docs/reference/api.md, the one list to update."""
    missing = sorted(set(_source_modules()) - set(_api_modules()))
    assert not missing, "modules missing from the API reference:\n" + "\n".join(map(_where_to_list, missing))


def _page_of(module: str, built):
    page = built / "reference" / "generated" / f"{module}.html"
    return page if page.is_file() else built / "reference" / "api.html"


def _source_file(module: str):
    """The checkout's file of a module of dni or dni_widgets (widgets/), without importing it."""
    package, _, rest = module.partition(".")
    folder = REPO / ("widgets" if package == "dni_widgets" else "dni")
    base = folder.joinpath(*rest.split(".")) if rest else folder
    return base / "__init__.py" if base.is_dir() else base.with_suffix(".py")


def _public_objects(module: str):
    """Functions and classes defined (not imported) at the top of a module's source, public by name."""
    for node in ast.parse(_source_file(module).read_text(encoding="utf-8")).body:
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)) and not node.name.startswith("_"):
            yield node.name


def test_every_public_function_and_class_has_a_reference_entry(built):
    missing = []
    for module in _api_modules():
        html = _page_of(module, built).read_text()
        missing += [f"{module}.{name}" for name in _public_objects(module) if f'id="{module}.{name}"' not in html]
    assert not missing, f"no reference entry for: {missing}"
    api = (built / "reference" / "api.html").read_text()
    for name in ("noisify", "eval_noise", "robustness"):  # the public API, documented on the API page itself
        assert re.search(rf'id="dni\.(?:[\w.]+\.)?{name}"', api), name


def test_every_cli_command_and_flag_is_in_the_reference(built):
    """The CLI page is generated from dni.cli.build_parser(); every flag of every command has its entry."""
    sys.path.insert(0, str(DOCS / "_ext"))
    from docutils import nodes

    from dni.cli import build_parser
    from dni_cli import documented_actions, subcommands

    html = (built / "reference" / "cli.html").read_text()
    ids = set(re.findall(r'id="(cmdoption-[^"]*)"', html))
    parser = build_parser()
    commands = [("dni", parser)] + [(f"dni {name}", sub) for name, sub in subcommands(parser).items()]
    assert len(commands) > 10
    missing = []
    for prog, sub in commands:
        assert f'id="{nodes.make_id(prog)}"' in html, f"no section for `{prog}`"
        for action in documented_actions(sub):
            for opt in action.option_strings or [action.metavar or action.dest]:
                want = nodes.make_id(f"cmdoption-{prog}-{opt}" if action.option_strings else f"cmdoption-{prog}-arg-{opt}")
                if want not in ids:
                    missing.append(f"{prog} {opt}")
    assert not missing, f"flags missing from the CLI reference: {missing}"
    for flag in ("--sigma-train", "--eval-noise", "--workers", "--draws"):
        assert flag in html


@pytest.mark.parametrize("name, expect", [
    ("quickstart", "σtrain\\σval"),
    ("your_model", "gru_adding: test mse"),
    ("train_evaluate", "σtrain\\σval"),
    ("paper_figures", "σtrain\\σval"),
    ("explore", "application/vnd.jupyter.widget-view+json"),
])
def test_tutorials_show_their_outputs(built, name, expect):
    html = (built / "tutorials" / "_executed" / f"{name}.html").read_text()
    assert "cell_output" in html and expect in html
    assert "injected-parameters" in html or "Parameters" in html  # the settings it ran with are on the page
    if name != "train_evaluate":
        assert "Bokeh" in html  # its figures are embedded (BokehJS inline: the page works offline)


def _python_in_docs() -> list[tuple[str, str]]:
    """(file, code) of every Python code block of the docs' Markdown pages and README.md."""
    blocks = []
    for path in [REPO / "README.md", *sorted(DOCS.rglob("*.md"))]:
        if "_build" in path.parts or "_executed" in path.parts:
            continue
        for code in re.findall(r"^```python\n(.*?)^```", path.read_text(encoding="utf-8"), re.S | re.M):
            blocks.append((str(path.relative_to(REPO)), code))
    return blocks


def test_names_in_the_docs_code_exist():
    """Every ``import`` and every dotted ``dni.…`` name in the docs' Python examples resolves in this checkout
    at its current home (a module moved or renamed, issue 35, fails here rather than in a reader's session; an
    old name that still imports with dni's "moved" DeprecationWarning counts as unresolved)."""
    imports, names = set(), set()
    for _, code in _python_in_docs():
        for line in code.splitlines():
            stripped = line.split("#")[0].strip()
            if re.match(r"(from|import) (dni|dni_widgets)\b", stripped):
                imports.add(stripped)
        names.update(re.findall(r"\b((?:dni|dni_widgets)(?:\.[A-Za-z_]\w*)+)", code))
    assert imports and names
    script = """
import importlib, sys, warnings
warnings.filterwarnings("error", r".*moved in dni", DeprecationWarning)  # an old module path: name its new home
bad = []
for line in sys.argv[1].splitlines():
    try:
        exec(line, {})
    except (ImportError, DeprecationWarning) as e:
        bad.append(f"{line}  ({e})")
for name in sys.argv[2:]:
    parts = name.split(".")
    for i in range(len(parts), 0, -1):
        try:
            obj = importlib.import_module(".".join(parts[:i]))
        except ImportError:
            continue
        except DeprecationWarning as e:
            bad.append(f"{name}  ({e})")
            break
        try:
            for attr in parts[i:]:
                obj = getattr(obj, attr)
        except (AttributeError, DeprecationWarning) as e:
            bad.append(f"{name}  ({e})")
        break
    else:
        bad.append(name)
print("unresolved in the docs' examples:", *bad, sep="\\n  ")
sys.exit(1 if bad else 0)
"""
    proc = subprocess.run([sys.executable, "-c", script, "\n".join(sorted(imports)), *sorted(names)], cwd=REPO,
                          capture_output=True, text=True, env={**os.environ, "PYTHONPATH": str(REPO)}, timeout=300)
    assert proc.returncode == 0, proc.stdout + proc.stderr[-3000:]


def test_readme_says_how_to_build_the_docs():
    readme = (REPO / "README.md").read_text()
    assert "python -m sphinx -b html docs docs/_build/html" in readme
