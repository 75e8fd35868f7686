"""notebooks/01-alliance.ipynb in a real JupyterLab: run it, then drive every kind of control and
read the charts back from the page.

The notebook shows one dashboard (outer classes ``sw-dashboard sw-alliance``): pickers
``sw-supervisee``, ``sw-period``, ``sw-episodes``, ``sw-client`` (Dropdowns); thresholds
``sw-cutoff`` and ``sw-drop`` (FloatSliders, ``continuous_update=False``), ``sw-inclusive``
(Checkbox), ``sw-sd`` (Dropdown); panes ``sw-status`` and ``sw-error``; and an ipywidgets Tab
(``sw-tabs``: "Overview", "Heatmap", "Clients", "vs service") holding the
views ``sw-alliance-summary`` (with the table ``sw-alliance-flags``), ``sw-alliance-heatmap``
(chart ``sw-chart-heatmap``), ``sw-alliance-series`` (chart ``sw-chart-series``) and
``sw-alliance-compare`` (chart ``sw-chart-compare`` + table ``sw-alliance-compare-table``).

Only the visible tab is drawn (a tab's view is drawn when the tab is opened), and a chart is an
``Output`` whose plot is *replaced* on every update: plots are re-queried, never held.

Oracles are independent of the package where that is cheap: the heatmap's rows are recomputed
with plain pandas from the demo's ``sessions.csv`` / ``clients.csv`` (clients with an attended
session in the window), and the client detail's SRS totals from that client's raw rows.
"""

from __future__ import annotations

import re
import time
from functools import partial
from pathlib import Path

import pytest

from . import dash

# A taller browser window (a maximised one): plots set to plotly's "responsive" mode were seen to
# collapse to zero height on this resize.
TALL_WINDOW = 1700

NOTEBOOK = "01-alliance.ipynb"

pytestmark = pytest.mark.browser

REPO = Path(__file__).resolve().parents[2]
D = ".sw-dashboard.sw-alliance"
SUPERVISEE, PERIOD, EPISODES, CLIENT = (f"{D} .sw-supervisee", f"{D} .sw-period", f"{D} .sw-episodes",
                                        f"{D} .sw-client")
CUTOFF, INCLUSIVE, DROP, SD = f"{D} .sw-cutoff", f"{D} .sw-inclusive", f"{D} .sw-drop", f"{D} .sw-sd"
STATUS, ERROR, TABS = f"{D} .sw-status", f"{D} .sw-error", f"{D} .sw-tabs"
SUMMARY, FLAGS = f"{D} .sw-alliance-summary", f"{D} .sw-alliance-summary .sw-alliance-flags"
HEATMAP = f"{D} .sw-alliance-heatmap .sw-chart.sw-chart-heatmap"
SERIES = f"{D} .sw-alliance-series .sw-chart.sw-chart-series"
COMPARE = f"{D} .sw-alliance-compare .sw-chart.sw-chart-compare"
COMPARE_TABLE = f"{D} .sw-alliance-compare .sw-alliance-compare-table"

T_OVERVIEW, T_HEATMAP, T_CLIENTS, T_COMPARE = ("Overview", "Heatmap", "Clients",
                                               "vs service")
PERIOD_MONTHS = {"Last 3 months": 3, "Last 6 months": 6, "Last 12 months": 12}
SRS_ITEMS = ["srs_1", "srs_2", "srs_3", "srs_4"]


# ---- oracles (plain pandas on the raw demo files) ---------------------------------------------


def demo_folder() -> Path:
    try:
        from supervision import demo_path

        return Path(demo_path())
    except Exception:  # noqa: BLE001 - fall back to the checkout's copy
        return REPO / "data" / "demo"


@pytest.fixture(scope="module")
def raw():
    import pandas as pd

    demo = demo_folder()
    sessions = pd.read_csv(demo / "sessions.csv", dtype=str, keep_default_na=False, na_values=[""])
    sessions["line"] = range(2, len(sessions) + 2)
    sessions["date"] = pd.to_datetime(sessions["session_date"])
    clients = pd.read_csv(demo / "clients.csv", dtype=str, keep_default_na=False, na_values=[""])
    return {"sessions": sessions, "clients": clients}


def heatmap_rows_oracle(raw, clinician: str, period: str = "Whole export", episodes: str = "All episodes") -> set[str]:
    """Clients of ``clinician`` (episode filter) with an attended session in the period; periods
    count back from the last session date of the whole export."""
    import pandas as pd

    s, c = raw["sessions"], raw["clients"]
    c = c[c["clinician_id"] == clinician]
    if episodes == "Open episodes":
        c = c[c["end_date"].isna()]
    elif episodes == "Ended episodes":
        c = c[c["end_date"].notna()]
    s = s[s["client_id"].isin(c["client_id"]) & (s["attendance"] == "attended")]
    if period in PERIOD_MONTHS:
        start = raw["sessions"]["date"].max() - pd.DateOffset(months=PERIOD_MONTHS[period])
        s = s[s["date"] >= start]
    return set(s["client_id"])


def srs_series_oracle(raw, client: str) -> tuple[list[int], list[float | None]]:
    """(session numbers, SRS totals) over the client's attended sessions in date order: the given
    total, else the sum of the four items when all are present, else None."""
    s = raw["sessions"]
    s = s[(s["client_id"] == client) & (s["attendance"] == "attended")].sort_values(["date", "line"], kind="stable")
    totals: list[float | None] = []
    for _, r in s.iterrows():
        if isinstance(r.get("srs_total"), str) and r["srs_total"].strip():
            totals.append(float(r["srs_total"]))
        elif all(isinstance(r.get(k), str) and r[k].strip() for k in SRS_ITEMS):
            totals.append(sum(float(r[k]) for k in SRS_ITEMS))
        else:
            totals.append(None)
    return list(range(1, len(totals) + 1)), totals


# ---- reading the page -------------------------------------------------------------------------


def trace(data: list[dict], name: str | None = None, type_: str | None = None) -> dict:
    hits = [t for t in data or [] if (name is None or t.get("name") == name)
            and (type_ is None or t.get("type") == type_)]
    assert len(hits) == 1, f"{len(hits)} traces named {name!r} of type {type_!r}: {[t.get('name') for t in data or []]}"
    return hits[0]


def heatmap_rows(data: list[dict]) -> list[str]:
    return [str(y) for y in trace(data, type_="heatmap")["y"]]


def low_marker(data: list[dict]) -> dict:
    hits = [t for t in data if re.search(r"cut-off", str(t.get("name")), re.I) and t.get("type") != "heatmap"]
    assert len(hits) == 1, [t.get("name") for t in data]
    return hits[0]


status_clients = partial(dash.status_clients, status=STATUS)


def option_for(lab, selector: str, pattern: str) -> dict:
    hits = [o for o in lab.options(selector) if re.search(pattern, o["label"])]
    assert len(hits) == 1, f"{selector}: {len(hits)} options match {pattern!r}: {[o['label'] for o in lab.options(selector)]}"
    return hits[0]


def flags_rows(lab) -> list[dict[str, str]]:
    rows = lab.table_rows(FLAGS)
    if not rows:
        return []
    header = rows[0]
    return [dict(zip(header, r)) for r in rows[1:]]


def wait_for_marker(lab, pattern: str, timeout: float = 15.0) -> list[dict]:
    """Wait until the heatmap's low-score marker trace is named to match ``pattern`` (JS regex).

    A slider moved by several key presses syncs each step: the plot changes more than once, so
    waiting for "a change" would stop at the first step."""
    lab.page.wait_for_function(
        "([sel, pat]) => { const d = window.__swPlotData(sel);"
        " return !!d && d.some(t => t.type !== 'heatmap' && new RegExp(pat).test(String(t.name))); }",
        arg=[f"{HEATMAP} .js-plotly-plot", pattern], timeout=timeout * 1000, polling=20,
    )
    return lab.plot_data(HEATMAP)


def kernel_ms(lab) -> int:
    """The kernel's own time for the last update, from the status pane ("updated in N ms")."""
    m = re.search(r"updated in (\d+) ms", lab.text(STATUS))
    assert m, lab.text(STATUS)
    return int(m.group(1))


assert_no_dashboard_error = partial(dash.assert_no_dashboard_error, error=ERROR)


check_seen = dash.check_seen


def test_alliance(lab, raw, browser_timings):
    nb = REPO / "notebooks" / NOTEBOOK
    if not nb.is_file():
        pytest.fail(f"{nb} does not exist", pytrace=False)
    unseen: list[str] = []

    # --- open, run all: the dashboard opens on the first supervisee, Overview tab ----------------
    browser_timings("alliance: open -> kernel idle", lab.open(NOTEBOOK))
    browser_timings("alliance: run all cells", lab.run_all())
    lab.page.locator(D).first.wait_for(state="visible")
    lab.assert_no_error_outputs()
    lab.assert_no_widget_fallback()
    assert lab.page.locator(D).count() == 1, "expected exactly one alliance dashboard"
    for sel in (SUPERVISEE, PERIOD, EPISODES, CLIENT, CUTOFF, INCLUSIVE, DROP, SD, STATUS, ERROR, TABS,
                SUMMARY, HEATMAP, SERIES, COMPARE):
        assert lab.page.locator(sel).count() == 1, f"{sel} not found (once) in the dashboard"
    assert_no_dashboard_error(lab)
    assert lab.current_tab(TABS) == T_OVERVIEW
    tabs = [t.strip() for t in lab.page.locator(f"{TABS} .lm-TabBar-tabLabel").all_text_contents()]
    assert tabs == [T_OVERVIEW, T_HEATMAP, T_CLIENTS, T_COMPARE], tabs

    supervisees = lab.options(SUPERVISEE)
    assert all(re.fullmatch(r"\S+ \(\w+\): \d+ clients", o["label"]) for o in supervisees), supervisees
    first = next(o for o in supervisees if o["selected"])
    first_id = first["label"].split(" ")[0]
    assert first is supervisees[0] and first_id == sorted(raw["clients"]["clinician_id"].unique())[0], first
    n_first = status_clients(lab, first_id)
    assert first["label"].endswith(f": {n_first} clients"), (first["label"], n_first)
    assert [o["label"] for o in lab.options(PERIOD)] == ["Whole export", *PERIOD_MONTHS]
    assert [o["label"] for o in lab.options(EPISODES)] == ["All episodes", "Open episodes", "Ended episodes"]
    clients_opts = lab.options(CLIENT)
    assert clients_opts[0]["label"] == "Whole caseload" and clients_opts[0]["selected"]
    assert len(clients_opts) - 1 == n_first, (len(clients_opts) - 1, n_first)
    assert lab.slider_value(CUTOFF) == 36.0 and lab.page.locator(f"{INCLUSIVE} input").is_checked()
    assert lab.selected(SD).startswith("2 SD")

    overview_first = lab.wait_for_text(SUMMARY, r"cut-off of 36\b")
    assert re.search(rf"of {n_first} clients have SRS scores", overview_first), overview_first
    assert "2-SD rule" in overview_first and re.search(r"at or below the cut-off", overview_first), overview_first
    flagged = flags_rows(lab)
    assert flagged, "the overview lists no flagged client"
    lab.screenshot("overview", D)
    lab.docs_screenshot("alliance-overview", D)

    # --- the heatmap tab: drawn when opened --------------------------------------------------
    t0 = time.monotonic()
    lab.open_tab(TABS, T_HEATMAP)
    data = lab.wait_for_plot(HEATMAP)
    dt = time.monotonic() - t0
    browser_timings("alliance: open heatmap tab -> heatmap drawn", dt)
    browser_timings(
        "alliance: open -> first chart (kernel idle + run all + heatmap tab drawn)",
        lab.timings["open_to_kernel_idle"] + lab.timings["run_all"] + dt,
    )
    rows_first = heatmap_rows(data)
    assert set(rows_first) == heatmap_rows_oracle(raw, first_id), "heatmap rows differ from the raw files"
    assert len(rows_first) == len(set(rows_first))
    assert_no_dashboard_error(lab)
    check_seen(lab, HEATMAP, f"heatmap {first_id}", unseen)
    # a user makes the browser window taller (e.g. maximises it): the chart must stay on the page
    size = lab.page.viewport_size
    lab.resize_window(size["width"], TALL_WINDOW)
    check_seen(lab, HEATMAP, f"heatmap {first_id}, after the window was made {TALL_WINDOW} px tall", unseen)
    lab.resize_window(size["width"], size["height"])
    lab.screenshot(f"heatmap-{first_id}", D)
    lab.docs_screenshot("alliance-heatmap", D)

    # --- supervisee: the heatmap is redrawn for the other caseload ---------------------------
    other = supervisees[2] if len(supervisees) > 2 else supervisees[1]
    other_id = other["label"].split(" ")[0]
    before = lab.plot_data(HEATMAP)
    lab.select(SUPERVISEE, other["value"])
    data, dt = lab.wait_for_plot_change(HEATMAP, before)
    browser_timings("alliance: change supervisee -> heatmap updated", dt)
    browser_timings("alliance: ... of which the kernel's update (status pane)", kernel_ms(lab) / 1000)
    n_other = status_clients(lab, other_id)
    rows_other = heatmap_rows(data)
    assert set(rows_other) == heatmap_rows_oracle(raw, other_id), f"heatmap rows for {other_id}"
    assert not set(rows_other) & set(rows_first), "two supervisees share heatmap rows"
    title = lab.page.locator(f"{HEATMAP} .gtitle").first.text_content() or ""
    assert other_id in title, f"heatmap title after picking {other_id}: {title!r}"
    assert len(lab.options(CLIENT)) - 1 == n_other
    assert_no_dashboard_error(lab)
    check_seen(lab, HEATMAP, f"heatmap {other_id}", unseen)
    lab.screenshot(f"heatmap-{other_id}", D)
    # ... and the overview (drawn when its tab is opened) is about the new caseload
    lab.open_tab(TABS, T_OVERVIEW)
    overview_other = lab.wait_for_text(SUMMARY, rf"of {n_other} clients have SRS scores")
    assert overview_other != overview_first
    lab.open_tab(TABS, T_HEATMAP)
    lab.wait_for_plot(HEATMAP)

    # --- period: the last 3 months hold fewer clients ----------------------------------------
    before = lab.plot_data(HEATMAP)
    lab.select(PERIOD, "Last 3 months")
    data, dt = lab.wait_for_plot_change(HEATMAP, before)
    browser_timings("alliance: change period -> heatmap updated", dt)
    rows_3m = heatmap_rows(data)
    assert 0 < len(rows_3m) < len(rows_other), (len(rows_3m), len(rows_other))
    assert set(rows_3m) == heatmap_rows_oracle(raw, other_id, "Last 3 months")
    lab.wait_for_text(STATUS, r"\d\d \w{3} \d{4} to \d\d \w{3} \d{4}")
    assert_no_dashboard_error(lab)
    check_seen(lab, HEATMAP, "heatmap last 3 months", unseen)
    lab.screenshot(f"heatmap-{other_id}-last-3-months", D)
    before = lab.plot_data(HEATMAP)
    lab.select(PERIOD, "Whole export")
    data, _ = lab.wait_for_plot_change(HEATMAP, before)
    assert heatmap_rows(data) == rows_other

    # --- episodes: open episodes only ----------------------------------------------------------
    lab.select(EPISODES, "Open episodes")
    data, dt = lab.wait_for_plot_change(HEATMAP, data)
    browser_timings("alliance: change episodes -> heatmap updated", dt)
    rows_open = heatmap_rows(data)
    assert 0 < len(rows_open) < len(rows_other), (len(rows_open), len(rows_other))
    assert set(rows_open) == heatmap_rows_oracle(raw, other_id, episodes="Open episodes")
    assert_no_dashboard_error(lab)
    lab.screenshot(f"heatmap-{other_id}-open-episodes", D)
    lab.select(EPISODES, "All episodes")
    data, _ = lab.wait_for_plot_change(HEATMAP, data)
    assert heatmap_rows(data) == rows_other

    # --- Clients tab: small multiples, then one client's detail -------------------------------
    lab.open_tab(TABS, T_CLIENTS)
    data = lab.wait_for_plot(SERIES)
    names = [t.get("name") for t in data]
    panels = [n for n in names if n in set(rows_other)]
    assert panels and len(panels) <= 16 and len(set(panels)) == len(panels), names
    assert "Cut-off (36)" in names, names
    assert_no_dashboard_error(lab)
    check_seen(lab, SERIES, "small multiples", unseen)
    lab.screenshot(f"clients-{other_id}", D)

    lab.open_tab(TABS, T_OVERVIEW)
    flagged = flags_rows(lab)
    assert flagged, f"no flagged client for {other_id}"
    # a flagged client with a series to read (the top of the list may have come once only)
    row = next((r for r in flagged if int(r["measured sessions"]) >= 5), flagged[0])
    client = row["client"]
    lab.open_tab(TABS, T_CLIENTS)
    before = lab.wait_for_plot(SERIES)
    lab.select(CLIENT, client)
    data, dt = lab.wait_for_plot_change(SERIES, before)
    browser_timings("alliance: pick client -> detail drawn", dt)
    names = [t.get("name") for t in data]
    assert "SRS total" in names, names
    assert any(re.search(r"Goals & topics", str(n)) for n in names), f"no SRS item traces: {names}"
    srs = trace(data, "SRS total")
    x_oracle, y_oracle = srs_series_oracle(raw, client)
    assert [int(v) for v in srs["x"]] == x_oracle, (srs["x"], x_oracle)
    got = [None if v is None else round(float(v), 6) for v in srs["y"]]
    assert got == [None if v is None else round(v, 6) for v in y_oracle], (got, y_oracle)
    measured = sum(v is not None for v in got)
    assert str(measured) == row["measured sessions"], (measured, row)
    title = lab.page.locator(f"{SERIES} .gtitle").first.text_content() or ""
    assert client in title, title
    lab.wait_for_text(STATUS, rf"client {re.escape(client)}")
    assert_no_dashboard_error(lab)
    check_seen(lab, SERIES, f"client {client} detail", unseen)
    lab.screenshot(f"client-{client}", D)
    lab.docs_screenshot("alliance-client-detail", D)
    lab.select(CLIENT, "Whole caseload")
    lab.wait_for_plot_change(SERIES, data)

    # --- thresholds, watched on the heatmap ---------------------------------------------------
    lab.open_tab(TABS, T_HEATMAP)
    data = lab.wait_for_plot(HEATMAP)
    low_36 = low_marker(data)
    assert "36" in low_36["name"], low_36["name"]

    # SRS cut-off, by keyboard on the slider handle: two steps of 0.5 down (each step syncs)
    t0 = time.monotonic()
    assert lab.nudge_slider(CUTOFF, "ArrowLeft", 2) == 35.0
    data = wait_for_marker(lab, r"≤ 35\)")
    browser_timings("alliance: cut-off two key presses -> heatmap updated", time.monotonic() - t0)
    browser_timings("alliance: ... kernel's update for the 2nd press (status pane)", kernel_ms(lab) / 1000)
    low_35 = low_marker(data)
    assert re.search(r"≤ 35\)", low_35["name"]), low_35["name"]
    assert len(low_35["x"]) <= len(low_36["x"]), "a lower cut-off marks more cells"
    assert_no_dashboard_error(lab)
    lab.screenshot("heatmap-cutoff-35", D)

    # "count scores equal to the cut-off as low": off
    lab.set_checkbox(INCLUSIVE, False)
    data, dt = lab.wait_for_plot_change(HEATMAP, data)
    browser_timings("alliance: toggle inclusive -> heatmap updated", dt)
    browser_timings("alliance: ... of which the kernel's update (status pane)", kernel_ms(lab) / 1000)
    low_excl = low_marker(data)
    assert re.search(r"Below cut-off \(< 35\)", low_excl["name"]), low_excl["name"]
    assert len(low_excl["x"]) <= len(low_35["x"])

    # Rupture rule: 1 SD
    ruptures_2sd = [(t["name"], len(t["x"])) for t in data if str(t.get("name")).startswith("Rupture")]
    lab.select(SD, option_for(lab, SD, r"^1 SD")["value"])
    data, dt = lab.wait_for_plot_change(HEATMAP, data)
    browser_timings("alliance: change rupture rule -> heatmap updated", dt)
    browser_timings("alliance: ... of which the kernel's update (status pane)", kernel_ms(lab) / 1000)
    ruptures_1sd = [(t["name"], len(t["x"])) for t in data if str(t.get("name")).startswith("Rupture")]
    assert ruptures_1sd != ruptures_2sd, (ruptures_2sd, ruptures_1sd)
    assert_no_dashboard_error(lab)
    check_seen(lab, HEATMAP, "heatmap, changed thresholds", unseen)
    lab.screenshot("heatmap-thresholds", D)

    # the overview says so; the drop slider (typed into its readout) changes the flags
    lab.open_tab(TABS, T_OVERVIEW)
    text = lab.wait_for_text(SUMMARY, r"1-SD rule")
    assert re.search(r"latest SRS below the cut-off of 35\b", text), text
    assert "2-SD rule" not in text and "at or below" not in text, text
    drops_1 = sum("latest drop" in r["flags"] for r in flags_rows(lab))
    assert lab.slider_value(DROP) == 1.0
    lab.type_slider(DROP, 5)
    lab.page.wait_for_function(
        "([sel, n]) => Array.from(document.querySelectorAll(sel + ' tbody tr'))"
        ".filter(tr => tr.textContent.includes('latest drop')).length !== n",
        arg=[FLAGS, drops_1], timeout=15_000, polling=20,
    )
    drops_5 = sum("latest drop" in r["flags"] for r in flags_rows(lab))
    assert drops_5 < drops_1, (drops_1, drops_5)
    assert_no_dashboard_error(lab)
    lab.screenshot("overview-thresholds", D)

    # the small multiples carry the new cut-off too
    lab.open_tab(TABS, T_CLIENTS)
    lab.page.wait_for_function(
        "sel => { const d = window.__swPlotData(sel);"
        " return !!d && d.some(t => t.name === 'Cut-off (35)'); }",
        arg=f"{SERIES} .js-plotly-plot", timeout=15_000, polling=20,
    )

    # --- compared with the service: drawn on opening, follows the supervisee ------------------
    lab.open_tab(TABS, T_COMPARE)
    data = lab.wait_for_plot(COMPARE)
    assert trace(data, f"{other_id} (this supervisee)")["y"] == [other_id]
    clinicians = [str(y) for y in trace(data, "Clinicians")["y"]]
    assert other_id in clinicians and len(clinicians) == len(supervisees), clinicians
    table = lab.table_rows(COMPARE_TABLE)
    assert table and table[0][1:] == [other_id, "service"], table[:1]
    assert_no_dashboard_error(lab)
    check_seen(lab, COMPARE, f"comparison {other_id}", unseen)
    lab.screenshot(f"compare-{other_id}", D)
    lab.select(SUPERVISEE, first["value"])
    data, dt = lab.wait_for_plot_change(COMPARE, data)
    browser_timings("alliance: change supervisee -> comparison updated", dt)
    assert trace(data, f"{first_id} (this supervisee)")["y"] == [first_id]
    lab.page.wait_for_function(
        "([sel, id]) => { const th = document.querySelectorAll(sel + ' thead th');"
        " return th.length > 1 && th[1].textContent.trim() === id; }",
        arg=[COMPARE_TABLE, first_id], timeout=15_000, polling=20,
    )
    assert_no_dashboard_error(lab)
    lab.screenshot(f"compare-{first_id}", D)

    lab.assert_no_error_outputs()
    lab.assert_no_widget_fallback()
    lab.assert_no_external_requests()
    assert not unseen, "charts hold data but cannot be seen:\n" + "\n".join(unseen)
