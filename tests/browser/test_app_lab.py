"""The notebooks in JupyterLab open with the dashboard first, code folded, on the remembered choice.

For 00, 01, 03, 04 and 05 at 1440 x 900: after Run All, no code editor is visible, the dashboard
starts on the first screen, nothing errs, and (01-05) the dashboard opens on the supervisee
remembered by the app (the run's own remembered-choice file, see jlab.jupyter_env).
"""

from __future__ import annotations

import json
import time

import pytest

pytestmark = pytest.mark.browser

NOTEBOOKS = {
    "00-start-here.ipynb": ".sw-start",
    "01-alliance.ipynb": ".sw-alliance",
    "03-outcome.ipynb": ".sw-outcome",
    "04-focus.ipynb": ".sw-focus",
    "05-adaptation.ipynb": ".sw-adaptation",
}
REMEMBERED = "T04"


@pytest.mark.parametrize("name", list(NOTEBOOKS))
def test_notebook_opens_on_its_dashboard(lab, lab_server, name, browser_timings):
    scope = NOTEBOOKS[name]
    (lab_server.log_path.parent / "remembered.json").write_text(json.dumps({"supervisee": REMEMBERED}))
    lab.page.set_viewport_size({"width": 1440, "height": 900})
    lab.open(name)
    t0 = time.monotonic()
    lab.run_all()
    lab.page.locator(scope).first.wait_for(state="visible", timeout=60_000)
    browser_timings(f"lab {name}: run all -> dashboard", time.monotonic() - t0)
    lab.page.evaluate("() => { const p = document.querySelector('.jp-WindowedPanel-outer, .jp-Notebook');"
                      " if (p) p.scrollTop = 0; }")
    lab.page.wait_for_timeout(400)
    editors = lab.page.evaluate(
        "() => Array.from(document.querySelectorAll('.jp-NotebookPanel .jp-CodeCell .jp-InputArea-editor'))"
        ".filter(e => e.offsetParent !== null && e.getBoundingClientRect().height > 0).length")
    assert editors == 0, f"{name}: {editors} code editor(s) visible"
    top = lab.page.locator(scope).first.bounding_box()
    assert top is not None and top["y"] < 450, f"{name}: the dashboard starts at y={top and top['y']:.0f} px"
    lab.assert_no_error_outputs()
    lab.assert_no_widget_fallback()
    if name != "00-start-here.ipynb":
        sel = lab.selected(f"{scope} .sw-supervisee")
        assert sel and sel.startswith(REMEMBERED), f"{name}: opened on {sel!r}, remembered {REMEMBERED}"
    lab.screenshot("first-screen")
