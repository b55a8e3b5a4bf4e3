"""README's "What a default run prints" against a fresh default run (issue 36.5).

The run is `dni sweep` with no arguments and one torch thread, in an empty folder: it trains three
lstm28 models on the shipped subset and evaluates them: about 4 minutes on 2 idle cores, measured 13 min
on 2 cores shared with three other jobs (2026-12-04). It runs in CI like every other test.
"""

import os
import re
import subprocess
import sys

from conftest import REPO


def readme_table() -> str:
    """The table block under README's "What a default run prints"."""
    section = (REPO / "README.md").read_text(encoding="utf-8").split("## What a default run prints", 1)[1]
    return re.search(r"```\n(.*?)\n```", section, re.S).group(1)


def printed_table(stdout: str) -> str:
    """The accuracy table `dni sweep` prints (everything before its "wrote ..." line)."""
    return stdout.split("\nwrote ", 1)[0].strip("\n")


def test_readme_table_is_what_a_fresh_one_thread_default_run_prints(tmp_path):
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")])}
    run = subprocess.run([sys.executable, "-m", "dni.cli", "--quiet", "sweep"], cwd=tmp_path, env=env, capture_output=True, text=True)
    assert run.returncode == 0, run.stderr[-2000:]
    assert printed_table(run.stdout) == readme_table()
