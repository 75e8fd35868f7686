import shutil, time, pytest
pytestmark = pytest.mark.browser

def test_scratch(lab, workspace, browser_timings):
    shutil.copy("/tmp/sw-scratch/scratch.ipynb", workspace / "scratch.ipynb")
    t = lab.open("scratch.ipynb"); browser_timings("open", t)
    t = lab.run_all(); browser_timings("run_all", t)
    d0 = lab.wait_for_plot(".sx-chart")
    print(d0)
    print(lab.options(".sx-pick"))
    lab.assert_no_error_outputs(); lab.assert_no_widget_fallback()
    lab.screenshot("initial", ".sx-start")
    lab.select(".sx-pick", "Series B")
    d1, dt = lab.wait_for_plot_change(".sx-chart", d0); browser_timings("change", dt)
    print(d1)
    print(lab.console_errors, lab.page_errors, lab.guard.external)
