"""binder/ is a valid repo2docker configuration that agrees with pyproject.toml."""

import shutil
import subprocess
import sys
from pathlib import Path

import tomllib
from conftest import REPO
from packaging.requirements import Requirement


def binder_requirements():
    lines = (REPO / "binder" / "requirements.txt").read_text().splitlines()
    return [l.strip() for l in lines if l.strip() and not l.strip().startswith(("#", "-"))]


def test_binder_requirements_agree_with_pyproject():
    project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    wanted = {Requirement(r).name.lower(): Requirement(r) for r in project["dependencies"]}
    reqs = binder_requirements()
    assert "." in reqs  # dni itself, so every pyproject dependency comes along
    for line in reqs:
        if line == ".":
            continue
        req = Requirement(line)
        assert req.name.lower() in wanted, f"{req.name} is in binder/ but not a dependency of dni"
        pinned = next(iter(req.specifier)).version
        assert wanted[req.name.lower()].specifier.contains(pinned, prereleases=True), f"{line} violates {wanted[req.name.lower()]}"
    for ui in ("jupyterlab", "ipywidgets", "jupyter_bokeh"):
        assert ui in wanted


def test_repo2docker_accepts_binder_config():
    exe = shutil.which("repo2docker") or str(Path(sys.executable).parent / "repo2docker")
    result = subprocess.run([exe, "--no-build", "--no-run", str(REPO)], capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-2000:]
    dockerfile = result.stdout
    assert "binder/requirements.txt" in dockerfile and "binder/postBuild" in dockerfile
    from repo2docker.buildpacks import PythonBuildPack

    pack = PythonBuildPack(str(REPO))
    assert pack.detect() and pack.binder_dir == "binder" and pack.python_version == "3.11"
