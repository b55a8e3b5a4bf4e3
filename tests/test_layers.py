"""The house in layers (issue 35): the import contract of pyproject.toml holds, no module circles, and the
command line and the error classes load without torch."""

import subprocess
import sys
from pathlib import Path

import grimp
import pytest

ROOT = Path(__file__).resolve().parents[1]


def _lint_imports() -> str:
    return str(Path(sys.executable).parent / "lint-imports")


def test_the_layers_contract_of_pyproject_holds():
    """import-linter reads [tool.importlinter] (imports inside functions included) and fails on an upward import."""
    run = subprocess.run([_lint_imports(), "--config", str(ROOT / "pyproject.toml")], cwd=ROOT, capture_output=True, text=True)
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-2000:]
    assert "0 broken" in run.stdout


def test_the_contract_catches_an_upward_import(tmp_path):
    """The check can fail: the same contract over a copy of the package with one upward import breaks."""
    import shutil

    copy = tmp_path / "copy"
    shutil.copytree(ROOT / "dni", copy / "dni", ignore=shutil.ignore_patterns("*.npz", "__pycache__"))
    shutil.copytree(ROOT / "widgets", copy / "dni_widgets", ignore=shutil.ignore_patterns("demo", "__pycache__"))
    shutil.copy(ROOT / "pyproject.toml", copy / "pyproject.toml")
    bad = copy / "dni" / "noise" / "base.py"
    bad.write_text(bad.read_text() + "\n\ndef _upward():\n    from dni.training.train import train  # noqa: F401\n")
    run = subprocess.run([_lint_imports(), "--config", str(copy / "pyproject.toml")], cwd=copy, capture_output=True, text=True,
                         env={"PYTHONPATH": str(copy), "PATH": str(Path(sys.executable).parent)})
    assert run.returncode != 0
    assert "dni.noise.base -> dni.training.train" in run.stdout


def _module_cycles(graph) -> set[tuple[str, ...]]:
    cycles = set()
    for a in graph.modules:
        for b in graph.find_modules_directly_imported_by(a):
            if a == b or a.startswith(b + ".") or b.startswith(a + "."):
                continue  # a package and its own modules
            chain = graph.find_shortest_chain(importer=b, imported=a)
            if chain:
                cycles.add(tuple(sorted({a, *chain})))
    return cycles


def test_the_cycle_finder_finds_a_cycle():
    graph = grimp.ImportGraph()
    for importer, imported in [("p.a", "p.b"), ("p.b", "p.c"), ("p.c", "p.a"), ("p.d", "p.a")]:
        graph.add_import(importer=importer, imported=imported)
    assert _module_cycles(graph) == {("p.a", "p.b", "p.c")}


def test_no_module_imports_itself_through_others():
    sys.path.insert(0, str(ROOT))
    graph = grimp.build_graph("dni", "dni_widgets")
    assert _module_cycles(graph) == set()


@pytest.mark.parametrize("module", ["dni", "dni.errors", "dni.cli", "dni.util.validation", "dni.store.recipe",
                                    "dni.store.layout", "dni.nn.presets", "dni.noise.catalogue"])
def test_light_modules_do_not_load_torch(module):
    code = f"import sys, {module}\nfrom dni.cli import build_parser\nbuild_parser()\n" \
           "print(sorted(m for m in ('torch', 'xarray', 'numpy', 'dask') if m in sys.modules))"
    run = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True)
    assert run.returncode == 0, run.stderr
    assert run.stdout.strip() == "[]"


def test_old_flat_module_names_still_import_with_a_deprecation_warning():
    code = ("import warnings\nwarnings.simplefilter('error')\n"
            "try:\n    import dni.sweep\nexcept DeprecationWarning as w:\n    print(w)\n")
    run = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True)
    assert "dni.sweep moved in dni 0.2" in run.stdout and "dni.experiments.sweep" in run.stdout
    code = ("import warnings\nwarnings.simplefilter('ignore')\nfrom dni.sweep import parse_sigmas, SweepConfig\n"
            "from dni.util.validation import parse_sigmas as p\nfrom dni.experiments.config import SweepConfig as S\n"
            "print(parse_sigmas is p and SweepConfig is S)")
    run = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True)
    assert run.stdout.strip() == "True", run.stderr
