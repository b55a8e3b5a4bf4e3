"""explore.ipynb in a real browser: JupyterLab on loopback, headless Chromium driven by Playwright.

Steps: start JupyterLab; open notebooks/explore.ipynb; run all cells; wait until the bokeh
plots have rendered (canvases in the output area, the h-per-step source filled in the page);
press ArrowRight on the σval slider; wait until the plotted h data in the page changes. The h and c
curves in the page, before and after, must equal densities computed here from the model's raw states
at the notebook's selection (lstm28, σtrain 1, noise seed 0, 256 digits) and σval 0.5, then 0.6.
Then picks the stroke preset and waits for the pen path. Screenshots go to ``$DNI_ARTIFACTS_DIR`` (default ``artifacts/browser/``).
"""

import json
import os
import secrets
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from conftest import REPO

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
pytestmark = pytest.mark.skipif(not Path(CHROMIUM).exists(), reason="Debian chromium not installed (.ci/run installs it)")
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
        "--disable-component-update", "--disable-sync"]


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture()
def lab(tmp_path):
    port, token = free_port(), secrets.token_hex(16)
    env = dict(os.environ)
    for var in ("JUPYTER_CONFIG_DIR", "JUPYTER_RUNTIME_DIR", "IPYTHONDIR", "JUPYTERLAB_SETTINGS_DIR", "JUPYTERLAB_WORKSPACES_DIR"):
        env[var] = str(tmp_path / var.lower())
    settings = tmp_path / "app_settings"
    settings.mkdir()
    (settings / "overrides.json").write_text(json.dumps(
        {"@jupyterlab/apputils-extension:notification": {"fetchNews": "false", "checkForUpdates": False}}))
    cmd = [sys.executable, "-m", "jupyterlab", "--no-browser", "--allow-root", f"--port={port}", "--ServerApp.ip=127.0.0.1",
           f"--ServerApp.token={token}", f"--ServerApp.root_dir={REPO}", "--LabApp.expose_app_in_browser=True",
           f"--LabApp.app_settings_dir={settings}"]
    log = open(tmp_path / "lab.log", "w")
    proc = subprocess.Popen(cmd, env=env, stdout=log, stderr=subprocess.STDOUT)
    base = f"http://127.0.0.1:{port}"
    for _ in range(120):
        try:
            urllib.request.urlopen(f"{base}/api/status?token={token}", timeout=1)
            break
        except OSError:
            time.sleep(0.5)
    else:
        proc.terminate()
        pytest.fail("JupyterLab did not start: " + (tmp_path / "lab.log").read_text()[-2000:])
    yield base, token
    proc.terminate()
    proc.wait(timeout=30)


H_DATA = """() => {
  const m = Bokeh.documents.flatMap(d => [...d.all_models]).find(m => m.name === 'h_per_step');
  return m ? JSON.stringify(m.data.ys) : null;
}"""
STATES = """() => {
  const find = name => Bokeh.documents.flatMap(d => [...d.all_models]).find(m => m.name === name);
  const [h, c] = [find('h_per_step'), find('c_per_step')];
  return JSON.stringify({h: h.data.ys, h_x: h.data.xs[0], c: c.data.ys, c_x: c.data.xs[0]});
}"""


def assert_plotted_states_are(page_states: str, sigma_val: float, arch: str = "lstm28"):
    """The page's h and c curves equal np.histogram of the raw states of the notebook's selection at ``sigma_val``."""
    import numpy as np

    from test_explorer import expected_state_densities

    plotted = json.loads(page_states)
    expected = expected_state_densities(arch, 1.0, sigma_val, 0, 50, digits=256)
    for name in ("h", "c"):
        assert len(plotted[name]) == len(expected[name])
        np.testing.assert_allclose(plotted[name], expected[name], rtol=1e-12, atol=1e-12, err_msg=f"{name} at σval {sigma_val}")
        np.testing.assert_allclose(plotted[name + "_x"], expected[name + "_grid"], rtol=1e-12)


def test_explorer_renders_and_follows_the_sigma_val_slider(lab):
    from playwright.sync_api import sync_playwright

    base, token = lab
    shots = Path(os.environ.get("DNI_ARTIFACTS_DIR", REPO / "artifacts" / "browser"))
    shots.mkdir(parents=True, exist_ok=True)
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        page = browser.new_page(viewport={"width": 1400, "height": 1800})
        page.goto(f"{base}/lab/tree/notebooks/explore.ipynb?token={token}")
        page.wait_for_function("() => window.jupyterapp && jupyterapp.shell.currentWidget && "
                               "jupyterapp.shell.currentWidget.sessionContext && jupyterapp.shell.currentWidget.sessionContext.session && "
                               "jupyterapp.shell.currentWidget.sessionContext.session.kernel && "
                               "jupyterapp.shell.currentWidget.sessionContext.session.kernel.status === 'idle'", timeout=120_000)
        page.evaluate("() => jupyterapp.commands.execute('notebook:run-all-cells')")
        page.wait_for_function(H_DATA.replace("return m ?", "return m && m.data.ys.length === 28 ?"), timeout=180_000)
        page.locator(".jp-OutputArea canvas").first.wait_for(timeout=60_000)
        canvases = page.locator(".jp-OutputArea canvas").count()
        assert canvases >= 6  # accuracy, heatmap, h, c, weights, digit
        before = page.evaluate(H_DATA)
        states_before = page.evaluate(STATES)
        page.screenshot(path=str(shots / "explorer_before.png"), full_page=True)
        slider = page.locator(".widget-slider", has=page.locator(".widget-label", has_text="σval"))
        handle = slider.locator(".noUi-handle")
        handle.focus()
        start = time.perf_counter()
        handle.press("ArrowRight")
        page.wait_for_function(f"() => ({H_DATA})() !== {json.dumps(before)}", timeout=60_000)
        latency = time.perf_counter() - start
        after = page.evaluate(H_DATA)
        page.wait_for_function(f"() => {{ const s = JSON.parse(({STATES})()), b = JSON.parse({json.dumps(states_before)});"
                               " return JSON.stringify(s.c) !== JSON.stringify(b.c); }", timeout=60_000)  # c follows h
        states_after = page.evaluate(STATES)
        page.screenshot(path=str(shots / "explorer_after.png"), full_page=True)
        (shots / "latency.txt").write_text(f"σval ArrowRight → h per step redrawn in the page: {latency:.2f} s\n")
        # the stroke preset: the digit viewer draws the pen path
        page.locator(".widget-dropdown select").first.select_option("lstm_stroke50")
        page.wait_for_function("() => { const m = Bokeh.documents.flatMap(d => [...d.all_models]).find(m => m.name === 'pen_path');"
                               " return m && m.data.x.length > 10; }", timeout=60_000)
        page.wait_for_function(f"() => {{ const s = JSON.parse(({STATES})()); return s.h.length === 50 && s.c.length === 50; }}",
                               timeout=60_000)  # the stroke LSTM's 50 steps, h and c
        states_strokes = page.evaluate(STATES)
        page.screenshot(path=str(shots / "explorer_strokes.png"), full_page=True)
        browser.close()
    assert before != after and len(json.loads(after)) == 28
    assert_plotted_states_are(states_before, 0.5)  # the notebook's selection: σval in the middle of 0 … 1
    assert_plotted_states_are(states_after, 0.6)  # one step right on the σval slider
    assert_plotted_states_are(states_strokes, 0.6, "lstm_stroke50")  # the preset switch: its 50 steps, its σtrain 1 model
    print(f"slider → view (c) in the browser: {latency:.2f} s")
