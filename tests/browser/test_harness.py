"""Self-test of the browser harness on a scratch notebook it writes into the served temp copy.

Proves, independently of the workbook's own notebooks, that the harness can open a notebook, run
it, drive a Dropdown / Button / Text scoped by CSS class, read and wait for plotly data, take
screenshots - and that its checks *fail* when they should (error and stderr outputs, widget text
fallback, outside requests). Nothing is written into notebooks/.
"""

from __future__ import annotations

import nbformat
import pytest

pytestmark = pytest.mark.browser

SCRATCH = "_harness-selftest.ipynb"

DASHBOARD = '''\
import ipywidgets as w
import numpy as np
import plotly.graph_objects as go

DATA = {"a": [1, 3, 2, 5], "b": [4, 1, 0, 2], "c": [2, 2, 2, 9]}
pick = w.Dropdown(options=[("Series A", "a"), ("Series B", "b"), ("Series C", "c")], value="a",
                  description="Series")
pick.add_class("hx-pick")
fig = go.FigureWidget(go.Bar(x=["w1", "w2", "w3", "w4"], y=np.array(DATA["a"]), name="a"))
chart = w.VBox([fig])
chart.add_class("hx-chart")
info = w.HTML("total: 11")
info.add_class("hx-info")
double = w.Button(description="Double")
double.add_class("hx-double")
path = w.Text(description="Path")
path.add_class("hx-path")
factor = [1]


def redraw(_=None):
    y = np.array(DATA[pick.value]) * factor[0]
    with fig.batch_update():
        fig.data[0].y = y
        fig.data[0].name = pick.value
    info.value = f"total: {int(y.sum())}; path: {path.value}"


def on_double(_):
    factor[0] *= 2
    redraw()


pick.observe(redraw, "value")
path.observe(redraw, "value")
double.on_click(on_double)
ui = w.VBox([w.HBox([pick, double, path]), info, chart])
ui.add_class("hx-start")
ui
'''

BAD_CELL = '''\
import sys
print("VBox(children=(Dropdown(options=('a',), value='a'),))")
print("something went wrong", file=sys.stderr)
1 / 0
'''


@pytest.fixture(scope="module")
def scratch_notebook(workspace):
    nb = nbformat.v4.new_notebook()
    nb.metadata["kernelspec"] = {
        "name": "python3", "display_name": "Python 3 (ipykernel)", "language": "python",
    }
    nb.cells = [
        nbformat.v4.new_markdown_cell("# Harness self-test (generated; not a workbook notebook)"),
        nbformat.v4.new_code_cell(DASHBOARD),
        nbformat.v4.new_code_cell(""),  # empty cells never get an execution count
    ]
    nbformat.write(nb, workspace / SCRATCH)
    return SCRATCH


def test_harness_drives_widgets_plots_and_its_checks_fail(lab, scratch_notebook, browser_timings):
    lab.open(scratch_notebook)
    lab.run_all(first_plot=".hx-start .hx-chart")
    lab.assert_no_error_outputs()
    lab.assert_no_widget_fallback()

    before = lab.wait_for_plot(".hx-start .hx-chart")
    assert before[0]["y"] == [1, 3, 2, 5]
    # ipywidgets 8 sends labels only: the <option> value is the label, not the Python value.
    assert [o["value"] for o in lab.options(".hx-start .hx-pick")] == [
        "Series A", "Series B", "Series C",
    ]
    lab.screenshot("initial", ".hx-start")

    lab.select(".hx-start .hx-pick", "Series B")
    after, dt = lab.wait_for_plot_change(".hx-start .hx-chart", before)
    browser_timings("harness: dropdown change -> plot updated", dt)
    assert after[0]["y"] == [4, 1, 0, 2] and after[0]["name"] == "b"

    lab.click(".hx-start .hx-double")
    doubled, _ = lab.wait_for_plot_change(".hx-start .hx-chart", after)
    assert doubled[0]["y"] == [8, 2, 0, 4]

    lab.fill(".hx-start .hx-path", "/tmp/somewhere")
    lab.page.wait_for_function(
        "() => document.querySelector('.hx-start .hx-info').innerText.includes('/tmp/somewhere')"
    )
    shot = lab.screenshot("after-interaction", ".hx-start")
    assert shot.stat().st_size > 1000
    lab.assert_no_error_outputs()
    lab.assert_no_external_requests()

    # --- and the checks fail when they should (same page: opening again would cost ~10 s) ---
    # An outside request is blocked and recorded (not silently allowed).
    lab.page.evaluate("() => fetch('https://example.org/x.js').catch(() => null)")
    with pytest.raises(AssertionError, match="example.org"):
        lab.assert_no_external_requests()
    lab.guard.external.clear()

    # A cell that prints widget-fallback text, writes to stderr and raises.
    lab.page.evaluate(
        """async (src) => {
            const app = window.jupyterapp;
            const nb = app.shell.currentWidget.content;
            nb.activeCellIndex = nb.model.cells.length - 1;
            await app.commands.execute('notebook:insert-cell-below');
            nb.activeCell.model.sharedModel.setSource(src);
            await app.commands.execute('notebook:run-cell');
        }""",
        BAD_CELL,
    )
    # JupyterLab 4.6 renders error outputs with data-mime-type 'application/vnd.jupyter.stderr'
    # (not '...error'): the DOM check looks for both.
    lab.page.wait_for_function(
        "() => Array.from(document.querySelectorAll("
        "\"[data-mime-type='application/vnd.jupyter.stderr']\"))"
        ".some(e => e.textContent.includes('ZeroDivisionError'))"
    )
    lab.wait_kernel_idle()
    with pytest.raises(AssertionError, match="ZeroDivisionError"):
        lab.assert_no_error_outputs()
    with pytest.raises(AssertionError, match="something went wrong"):
        lab.assert_no_error_outputs()
    with pytest.raises(AssertionError, match="VBox"):
        lab.assert_no_widget_fallback()
