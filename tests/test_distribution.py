"""The published distribution (issue 38): ``dni-toolkit`` builds, installs into a fresh venv and runs.

Design. ``python -m build --no-isolation`` builds the sdist and then the wheel *from the sdist* (so a
file missing from the sdist is missing from the wheel too), with this environment's setuptools: no
download. A fresh virtual environment with torch would cost about 6 GB and minutes, so the test
creates a fresh venv **without** dni's dependencies, installs the built wheel into it with
``--no-deps``, and makes the running interpreter's site-packages visible to it through a ``.pth``
file (a path line appends that folder to ``sys.path``; its own ``.pth`` files, such as an editable
install of dni, are not processed, and the venv's own site-packages comes first). Then, with the
current directory outside the repository and no ``PYTHONPATH``: ``dni --version``, ``import dni``
(which must come from the venv, not the checkout), a read of the embedded MNIST subset from the
installed package, and the demo results of ``dni_widgets``. The wheel's file list must hold the
package data: ``dni/data/*.npz`` and ``dni_widgets/demo`` (result file and checkpoints). About 30-60 s.
"""

from __future__ import annotations

import os
import site
import subprocess
import sys
import tarfile
import zipfile

import pytest

from conftest import REPO

pytestmark = pytest.mark.timeout(300)


@pytest.fixture(scope="module")
def dist(tmp_path_factory):
    out = tmp_path_factory.mktemp("dist")
    proc = subprocess.run([sys.executable, "-m", "build", "--no-isolation", "--outdir", str(out), str(REPO)],
                          capture_output=True, text=True, timeout=240)
    assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-4000:]
    wheels, sdists = list(out.glob("*.whl")), list(out.glob("*.tar.gz"))
    assert len(wheels) == 1 and len(sdists) == 1, list(out.iterdir())
    return wheels[0], sdists[0]


def test_names_and_metadata(dist):
    wheel, sdist = dist
    assert wheel.name.startswith("dni_toolkit-") and sdist.name.startswith("dni_toolkit-")
    with zipfile.ZipFile(wheel) as zf:
        names = zf.namelist()
        meta = zf.read(next(n for n in names if n.endswith(".dist-info/METADATA"))).decode()
        entry_points = zf.read(next(n for n in names if n.endswith(".dist-info/entry_points.txt"))).decode()
    assert "Name: dni-toolkit" in meta
    assert "License-Expression: MIT" in meta and any(n.endswith(".dist-info/licenses/LICENSE") for n in names)
    assert "Requires-Python: >=3.10" in meta and "Classifier: Programming Language :: Python :: 3.11" in meta
    assert "Project-URL: Source," in meta and "Provides-Extra: docs" in meta
    assert "dni = dni.cli:main" in entry_points


def test_wheel_holds_the_package_data(dist):
    wheel, sdist = dist
    with zipfile.ZipFile(wheel) as zf:
        names = set(zf.namelist())
    assert {"dni/data/mnist_subset.npz", "dni/data/mnist_subset_strokes_v1.npz"} <= names
    data = [n for n in names if n.startswith("dni/data/") and n.endswith(".npz")]
    assert len(data) == len(list((REPO / "dni" / "data").glob("*.npz")))
    assert "dni_widgets/demo/demo.nc" in names
    demo = sorted(p.name for p in (REPO / "widgets" / "demo" / "checkpoints").glob("*.pt"))
    assert demo and all(f"dni_widgets/demo/checkpoints/{n}" in names for n in demo)
    assert "dni/cli.py" in names and "dni_widgets/explorer.py" in names
    assert not any(n.startswith(("tests/", "docs/", "results/")) for n in names)
    with tarfile.open(sdist) as tf:
        assert any(n.endswith("/LICENSE") for n in tf.getnames())


def test_wheel_installs_and_runs_in_a_fresh_venv(dist, tmp_path):
    wheel, _ = dist
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, timeout=120)
    py = venv / "bin" / "python"
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "PYTHONHOME", "VIRTUAL_ENV")}
    proc = subprocess.run([str(py), "-m", "pip", "install", "--no-deps", "--no-index", "--quiet", str(wheel)],
                          capture_output=True, text=True, env=env, timeout=120)
    assert proc.returncode == 0, proc.stderr[-4000:]
    # this environment's dependencies (torch, xarray, ...) through a .pth file, not a 6 GB install
    venv_site = subprocess.run([str(py), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                               capture_output=True, text=True, check=True).stdout.strip()
    outer = [p for p in site.getsitepackages() if os.path.isdir(p)]
    with open(os.path.join(venv_site, "_dni_test_outer_site.pth"), "w") as f:
        f.write("\n".join(outer) + "\n")
    work = tmp_path / "elsewhere"
    work.mkdir()

    def run(*args):
        return subprocess.run(list(args), cwd=work, capture_output=True, text=True, env=env, timeout=180)

    version = run(str(py), "-c", "import dni; print(dni.__version__)")
    assert version.returncode == 0, version.stderr[-4000:]
    cli = run(str(venv / "bin" / "dni"), "--version")
    assert cli.returncode == 0, cli.stderr[-4000:]
    assert cli.stdout.strip() == f"dni {version.stdout.strip()}"
    check = run(str(py), "-c", """
import os, sys
import dni, dni_widgets
from importlib.resources import files
from dni.data import load_sequences
venv = os.path.realpath(sys.prefix)
for mod in (dni, dni_widgets):
    assert os.path.realpath(mod.__file__).startswith(venv), (mod.__name__, mod.__file__)
test = load_sequences("subset", "test", progress=False)
assert len(test.y) == 2000, len(test.y)
assert files("dni_widgets").joinpath("demo", "demo.nc").is_file()
print("ok", dni.__file__)
""")
    assert check.returncode == 0 and check.stdout.startswith("ok"), check.stdout + check.stderr[-4000:]
    assert str(REPO) not in check.stdout
