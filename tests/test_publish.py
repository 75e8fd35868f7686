"""`supervision publish`: one folder per clinician, own clients only, suppressed whole-service benchmarks."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pandas as pd
import pytest

from supervision.cli import main
from supervision.io import demo_path, load_caseload
from supervision.publish import PublishError, publish, safe_name


@pytest.fixture(scope="module")
def demo():
    return load_caseload(demo_path())


@pytest.fixture(scope="module")
def published(tmp_path_factory, demo):
    out = tmp_path_factory.mktemp("published")
    seen = []
    summary = publish(demo_path(), out, progress=lambda i, n, cid, s: seen.append((i, n, cid)))
    return out, summary, seen


def test_one_folder_per_clinician_each_with_only_its_own_clients(published, demo):
    out, summary, seen = published
    ids = sorted(demo.clinicians["clinician_id"])
    assert sorted(summary.folders) == ids
    assert [s[2] for s in seen] == ids and seen[-1][:2] == (len(ids), len(ids))  # progress for every clinician
    all_clients = set()
    for cid in ids:
        folder = out / cid
        assert sorted(p.name for p in folder.iterdir()) == [
            "clients.parquet", "clinicians.parquet", "manifest.json", "service_benchmarks.csv", "sessions.parquet"]
        cl = load_caseload(folder)
        assert cl.status == "clean", cl.report
        expected = set(demo.clients.loc[demo.clients["clinician_id"] == cid, "client_id"])
        assert set(cl.clients["client_id"]) == expected
        assert set(cl.clients["clinician_id"]) == {cid}
        assert list(cl.clinicians["clinician_id"]) == [cid]
        assert set(cl.sessions["client_id"]) <= expected
        assert len(cl.sessions) == int(demo.sessions["client_id"].isin(expected).sum())
        assert not (set(cl.clients["client_id"]) & all_clients)
        all_clients |= set(cl.clients["client_id"])
        m = json.loads((folder / "manifest.json").read_text())
        assert m["clinician_id"] == cid and m["policy"] == "nhs" and m["clients"] == len(expected)
        assert m["export"] == "demo" and m["published_at"].endswith("+00:00")
        assert m["supervisor_id"] == demo.clinicians.set_index("clinician_id").loc[cid, "supervisor_id"]
    assert all_clients == set(demo.clients["client_id"])
    index = pd.read_csv(out / "publish_index.csv", encoding="utf-8-sig")
    assert list(index["clinician_id"]) == ids and list(index["folder"]) == ids


def test_published_tables_reload_to_the_scoped_caseload(published, demo):
    from supervision.privacy import apply_scope

    out, _, _ = published
    for name in ("clients", "sessions", "clinicians"):
        got = getattr(load_caseload(out / "T03"), name).drop(columns="source_row")
        want = getattr(apply_scope(demo, "T03"), name).drop(columns="source_row")
        # a measure this clinician never recorded is an empty column, which the loader leaves out
        gone = want.drop(columns=list(got.columns))
        assert gone.drop(columns=[c for c in gone if c.endswith("_prorated")]).isna().all().all()
        assert not gone[[c for c in gone if c.endswith("_prorated")]].fillna(False).any().any()
        want = want[list(got.columns)]
        pd.testing.assert_frame_equal(got.reset_index(drop=True), want.reset_index(drop=True), check_dtype=False)


def test_benchmarks_come_from_the_whole_export_and_are_suppressed(published, demo):
    out, summary, _ = published
    b = pd.read_csv(out / "T01" / "service_benchmarks.csv", encoding="utf-8-sig", dtype=str, keep_default_na=False)
    assert "n" not in b.columns and "events" not in b.columns  # raw counts never leave the analyst
    total = b[(b["benchmark"] == "clients") & (b["dimension"] == "all")]
    assert len(total) == 1
    n_all = len(demo.clients)  # the whole service, not T01's own clients
    assert int(total["n_display"].iloc[0]) == 5 * round(n_all / 5)
    assert int(total["n_display"].iloc[0]) != len(demo.clients[demo.clients["clinician_id"] == "T01"])
    # every published count is either the marker or a multiple of 5 above the NHS threshold (1-7 hidden)
    shown = b["n_display"]
    counts = pd.to_numeric(shown[shown != "*"])
    assert ((counts == 0) | ((counts > 7) & (counts % 5 == 0))).all()
    # plain-pandas oracle for one group: women in the whole export
    women = int((demo.clients["gender_identity"] == "woman").sum())
    row = b[(b["benchmark"] == "clients") & (b["dimension"] == "gender_identity") & (b["group"] == "woman")]
    assert int(row["n_display"].iloc[0]) == 5 * round(women / 5)
    # a group of 1-7 clients is hidden, and its complement too (complementary suppression)
    assert (b["n_suppressed"] == "True").any()
    # same benchmarks in every folder
    for cid in ("T02", "T12"):
        assert (out / cid / "service_benchmarks.csv").read_bytes() == (out / "T01" / "service_benchmarks.csv").read_bytes()
    kinds = set(zip(b["benchmark"], b["kind"]))
    assert {("clients", "count"), ("single_session", "rate"), ("srs_total", "mean")} <= kinds


def test_safe_name_keeps_ids_inside_the_folder():
    assert safe_name("T01") == "T01"
    for bad in ("../evil", "..", ".", "/etc/passwd", "a/b", "a\\b", "", " ", "x\x00y", ".hidden", "é"):
        name = safe_name(bad)
        assert name and "/" not in name and "\\" not in name and not name.startswith(".") and "\x00" not in name
        assert len(name) <= 64
    assert safe_name("a/b") != safe_name("a_b")
    assert len(safe_name("x" * 500)) <= 64


def _export_with_ids(tmp: Path, rename: dict[str, str]) -> Path:
    src = tmp / "export"
    shutil.copytree(demo_path(), src, ignore=shutil.ignore_patterns("*.json", "*.md"))
    for name in ("clients", "sessions", "clinicians"):
        f = src / f"{name}.csv"
        t = pd.read_csv(f, dtype=str, keep_default_na=False)
        t["clinician_id"] = t["clinician_id"].replace(rename)
        t.to_csv(f, index=False)
    return src


def test_unsafe_clinician_ids_stay_inside_the_output_folder(tmp_path):
    rename = {"T01": "../../escaped", "T02": "/tmp/abs", "T03": "..", "T04": "a/b", "T05": "a_b", "T06": "=1+1"}
    src = _export_with_ids(tmp_path, rename)
    out = tmp_path / "out"
    summary = publish(src, out)
    assert len(summary.folders) == 12
    for cid, folder in summary.folders.items():
        assert folder.parent == out.resolve()
        cl = load_caseload(folder)
        assert set(cl.clients["clinician_id"]) == {cid}
    assert not (tmp_path / "escaped").exists() and not list(tmp_path.glob("*escaped*"))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["export", "out"]
    assert len({f.name for f in summary.folders.values()}) == 12
    index = pd.read_csv(out / "publish_index.csv", dtype=str, keep_default_na=False)
    assert set(rename.values()) <= set(index["clinician_id"])  # the ids exactly, for place_data.py
    assert dict(zip(index["clinician_id"], index["folder"])) == {c: f.name for c, f in summary.folders.items()}


def test_publish_refuses_no_policy_and_unusable_exports(tmp_path):
    with pytest.raises(PublishError, match="disclosure policy"):
        publish(demo_path(), tmp_path / "a", policy="none")
    with pytest.raises(PublishError, match="cannot be used"):
        publish(tmp_path / "missing", tmp_path / "b")


def test_cli_publish(tmp_path, capsys):
    assert main(["publish", str(demo_path()), "--out", str(tmp_path / "out"), "--policy", "cms"]) == 0
    text = capsys.readouterr().out
    assert "[12/12] published T12" in text and "Published 12 clinician folder(s)" in text
    assert json.loads((tmp_path / "out" / "T05" / "manifest.json").read_text())["policy"] == "cms"
    assert main(["publish", str(tmp_path / "nothing"), "--out", str(tmp_path / "o2")]) == 2
    assert "Publish problem" in capsys.readouterr().err


def test_a_hosted_workbook_opens_the_folder_named_by_supervision_data(published, monkeypatch, tmp_path):
    """The hub sets SUPERVISION_DATA to the user's folder: the default data and the start page open it."""
    from supervision.notes import default_notes_path
    from supervision.widgets.start import start_here

    out, _, _ = published
    monkeypatch.delenv("SUPERVISION_DATA", raising=False)
    assert load_caseload().source == str(demo_path())  # unset: the demo, as before
    monkeypatch.setenv("SUPERVISION_DATA", str(out / "T02"))
    assert set(load_caseload().clients["clinician_id"]) == {"T02"}
    dash = start_here().dashboard
    assert dash.state.source == "folder" and dash.state.path == out / "T02"
    assert set(dash.state.caseload.clients["clinician_id"]) == {"T02"}
    monkeypatch.setenv("SUPERVISION_NOTES", str(tmp_path / "n.sqlite"))
    assert default_notes_path() == tmp_path / "n.sqlite"


def test_a_new_output_folder_is_private(tmp_path):
    publish(demo_path(), tmp_path / "new")
    assert (tmp_path / "new").stat().st_mode & 0o777 == 0o700


def test_a_published_folder_opens_as_a_self_review_with_the_service_benchmarks(tmp_path):
    from supervision import load_caseload
    from supervision.publish import publish
    from supervision.widgets.supervision import supervision_dashboard

    publish(demo_path(), tmp_path / "pub")
    cl = load_caseload(tmp_path / "pub" / "T01")
    assert cl.scope == "T01" and set(cl.clients["clinician_id"]) == {"T01"} and cl.benchmarks is not None
    dash = supervision_dashboard(cl, notes_path=tmp_path / "n.sqlite").dashboard
    dash.body.selected_index = 2  # Caseload
    page = dash.views[2].html.value
    assert "You and the service (as published with your folder)" in page
    svc_clients = cl.benchmarks.query("benchmark == 'clients' and dimension == 'all'")["n_display"].iloc[0]
    assert f"<td>clients</td><td>{len(cl.clients)}</td><td>{svc_clients}</td>" in page  # own 39 beside the service's
    assert int(svc_clients) > len(cl.clients)
    assert dash.error.value == ""


def _row(html_text: str, label: str) -> list[str]:
    """The cells after ``label`` in the table row that starts with it."""
    import re

    m = re.search(r"<tr><td>" + re.escape(label) + r"</td>(.*?)</tr>", html_text)
    assert m, (label, html_text[:400])
    return re.findall(r"<td[^>]*>(.*?)</td>", m.group(1))


def test_every_comparing_view_of_a_self_review_shows_own_and_service_figures(published, demo):
    """A published folder: the Alliance, Session focus, Outcome and Adaptation comparisons show the
    clinician's figure (oracle: the metrics of the whole export for that clinician) beside the
    service's (oracle: plain pandas / the metrics' service row of the whole export, rounded as shown)."""
    from supervision.metrics.tables import metric_tables
    from supervision.widgets.adaptation import AdaptationDashboard
    from supervision.widgets.alliance import AllianceDashboard
    from supervision.widgets.focus import FocusDashboard
    from supervision.widgets.outcome import OutcomeDashboard

    out, _summary, _ = published
    me = "T03"
    cl = load_caseload(out / me)
    tables = metric_tables(demo)

    def compare(make):
        dash = make(cl)
        i = next(i for i, v in enumerate(dash.views) if v.compares_with_service)
        dash._draw(i)
        box = dash.views[i].widget.children[0]
        assert "sw-self-review-compare" in box._dom_classes and not dash.error.value
        return dash, box.value

    # Alliance: mean SRS per rated session (plain pandas over every rated session)
    _, page = compare(AllianceDashboard)
    s = demo.sessions
    you, svc = _row(page, "mean SRS per rated session")
    mine = s.loc[s["clinician_id"] == me, "srs_total"]
    assert you == f"{mine.mean():.1f} (n={s.loc[mine.dropna().index, 'client_id'].nunique()})"
    assert svc.startswith(f"{s['srs_total'].mean():.1f} (n=")
    assert "no valid comparison" in page
    # Session focus: goal coverage, the metrics' pooled rates
    _, page = compare(FocusDashboard)
    fn = tables["focus_clinicians"].set_index("scope")
    you, svc = _row(page, "sessions on an agreed goal (goal coverage)")
    assert you.startswith(f"{100 * fn.at[me, 'coverage_rate']:.0f}% of sessions")
    assert svc.startswith(f"{100 * fn.at['service', 'coverage_rate']:.0f}% of sessions")
    you, _ = _row(page, "sessions mainly a week review / check-in")
    assert you.startswith(f"{100 * fn.at[me, 'check_in_rate']:.0f}%")
    # Outcome: the Jacobson-Truax rates of clinician_outcomes (the service's from rounded counts, or hidden)
    _, page = compare(OutcomeDashboard)
    oc = tables["outcome_clinicians"]
    oc = oc[oc["instrument"] == "ors"].set_index("scope")
    you, svc = _row(page, "ORS: recovered, of clients with two or more scores")
    assert you == f"{oc.at[me, 'recovered_rate']:.0%} (n={int(oc.at[me, 'n'])})"
    assert svc == "hidden (small number)" or svc.endswith(f"(n={5 * round(oc.at['service', 'n'] / 5)})")
    # Adaptation: the same group of clients, mine beside the service's
    dash, page = compare(AdaptationDashboard)
    dim, group = dash.group_dimension, dash.group.value
    assert f"clients recorded as {dim.replace('_', ' ')}" in page
    c = demo.clients
    you, svc = _row(page, "clients")
    assert you == str(int(((c["clinician_id"] == me) & (c[dim] == group)).sum()))
    n_svc = int((c[dim] == group).sum())
    assert svc == "hidden (small number)" or abs(int(svc) - n_svc) <= 2  # rounded to 5 under the 'nhs' policy


@pytest.mark.parametrize("period", ["12m", "3m"])
def test_a_self_review_comparison_follows_the_period_picked(published, period):
    """The clinician's own figures follow the Period picker (the service's stay the published whole-export ones).
    Oracle: plain pandas over the folder's tables: clients with a session in the period; the mean SRS of the
    period's rated sessions; the ORS reliable-change categories of those clients over their whole episodes."""
    from supervision.metrics.tables import metric_tables
    from supervision.widgets.alliance import AllianceDashboard
    from supervision.widgets.outcome import OutcomeDashboard

    out, _summary, _ = published
    cl = load_caseload(out / "T03")
    s = cl.sessions
    dash = AllianceDashboard(cl)
    i = next(i for i, v in enumerate(dash.views) if v.compares_with_service)
    dash.body.selected_index = i
    whole = dash.views[i].widget.children[0].value
    dash.period.value = period
    start = s["session_date"].max() - pd.DateOffset(months=int(period[:-1]))
    page = dash.views[i].widget.children[0].value
    assert page != whole and not dash.error.value
    assert f"you, {start:%d %b %Y} to {s['session_date'].max():%d %b %Y}" in page and "the service, whole export" in page
    assert "whatever period" not in page and "whole folder" in whole
    ins = s[s["session_date"] >= start]
    you, svc = _row(page, "clients")
    assert you == str(ins["client_id"].nunique()) and int(you) < len(cl.clients)
    assert svc == _row(whole, "clients")[1]  # the service's figure is the published one, whatever the period
    rated = ins["srs_total"].dropna()
    you, _ = _row(page, "mean SRS per rated session")
    assert you == f"{rated.mean():.1f} (n={ins.loc[rated.index, 'client_id'].nunique()})"
    # a rate per client: the clients of the period, judged over their whole episodes
    dash = OutcomeDashboard(cl)
    i = next(i for i, v in enumerate(dash.views) if v.compares_with_service)
    dash.period.value = period
    dash.body.selected_index = i
    page = dash.views[i].widget.children[0].value
    oc = metric_tables(cl)["outcome_clients"]
    oc = oc[(oc["instrument"] == "ors") & oc["category"].notna() & oc["client_id"].isin(ins["client_id"])]
    you, _ = _row(page, "ORS: recovered, of clients with two or more scores")
    assert you == f"{(oc['category'] == 'recovered').mean():.0%} (n={len(oc)})" and not dash.error.value


def test_a_self_review_offers_no_service_comparator_in_adaptation(published):
    """In a clinician's folder "the service's clients in the same group" would be the clinician again: not offered."""
    from supervision.widgets.adaptation import AdaptationDashboard

    out, _summary, _ = published
    dash = AdaptationDashboard(load_caseload(out / "T03"))
    assert [v for _, v in dash.comparator.options] == ["clinician"]
    assert "Self-review" in dash.views[0].html.value and not dash.error.value
    whole = AdaptationDashboard(load_caseload(demo_path()))
    assert [v for _, v in whole.comparator.options] == ["clinician", "service"]
    assert "Self-review" not in whole.views[0].html.value


def test_parallel_publication_writes_the_same_folders(tmp_path, demo):
    """Worker processes (forked, chunks of clinicians) write exactly what one process writes (issue 24)."""
    import multiprocessing

    from supervision.privacy import apply_scope

    if "fork" not in multiprocessing.get_all_start_methods():
        pytest.skip("worker processes need fork")
    seen = []
    one = publish(demo_path(), tmp_path / "one", workers=1)
    many = publish(demo_path(), tmp_path / "many", workers=2, progress=lambda i, n, cid, s: seen.append((i, n, cid)))
    ids = sorted(demo.clinicians["clinician_id"])
    assert [s[2] for s in seen] == ids and [s[0] for s in seen] == list(range(1, len(ids) + 1))
    assert many.folders.keys() == one.folders.keys() and many.clients == one.clients
    files = sorted(p.relative_to(tmp_path / "one") for p in (tmp_path / "one").rglob("*") if p.is_file())
    assert files == sorted(p.relative_to(tmp_path / "many") for p in (tmp_path / "many").rglob("*") if p.is_file())
    for f in files:
        a, b = (tmp_path / "one" / f), (tmp_path / "many" / f)
        if f.name == "manifest.json":
            ma, mb = json.loads(a.read_text()), json.loads(b.read_text())
            ma.pop("published_at"), mb.pop("published_at")
            assert ma == mb, f
        elif f.suffix == ".parquet":
            pd.testing.assert_frame_equal(pd.read_parquet(a), pd.read_parquet(b), obj=str(f))
        else:
            assert a.read_bytes() == b.read_bytes(), f
    # the one-pass slicing picks what apply_scope picks: the same tables as the scoped caseload written out
    from supervision.publish import _write_tables

    for cid in ids[:3]:
        ref = tmp_path / "ref" / cid
        ref.mkdir(parents=True)
        _write_tables(apply_scope(demo, cid), ref)
        for name in ("clients", "sessions", "clinicians"):
            pd.testing.assert_frame_equal(pd.read_parquet(tmp_path / "many" / cid / f"{name}.parquet"),
                                          pd.read_parquet(ref / f"{name}.parquet"), obj=f"{cid} {name}")
