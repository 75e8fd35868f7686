"""Engagement measures on hand-made episodes, and against a plain recomputation on the demo."""

import numpy as np
import pandas as pd
import pytest

from supervision import load_caseload
from supervision.config import SettingsError, load_settings
from supervision.metrics.engagement import (clinician_engagement, engagement_options, episode_engagement,
                                           session_count_distribution)
from supervision.metrics.stats import wilson_interval


def _tables():
    d = pd.Timestamp
    clients = pd.DataFrame({
        "client_id": ["single_planned", "single_unplanned", "single_noreason", "referred", "three", "open_quiet", "open_active",
                      "open_never"],
        "clinician_id": ["T1"] * 4 + ["T2"] * 4,
        "start_date": [d("2025-01-01")] * 8,
        "end_date": [d("2025-01-10"), d("2025-01-10"), d("2025-01-10"), d("2025-01-10"), d("2025-03-01"), pd.NaT, pd.NaT, pd.NaT],
        "end_reason": ["planned", "unilateral", None, "referred_on", "unilateral", None, None, None],
    })
    rows = [
        ("single_planned", "2025-01-01", "attended"), ("single_unplanned", "2025-01-01", "attended"),
        ("single_unplanned", "2025-01-08", "no_show"), ("single_noreason", "2025-01-01", "attended"),
        ("referred", "2025-01-01", "attended"),
        ("three", "2025-01-01", "attended"), ("three", "2025-01-08", "cancelled"), ("three", "2025-01-15", "attended"),
        ("three", "2025-01-29", "attended"),
        ("open_quiet", "2025-01-01", "attended"), ("open_quiet", "2025-02-01", "no_show"),
        ("open_active", "2025-01-20", "attended"), ("open_active", "2025-03-01", "attended"),
    ]
    sessions = pd.DataFrame(rows, columns=["client_id", "session_date", "attendance"])
    sessions["session_date"] = pd.to_datetime(sessions["session_date"])
    sessions["clinician_id"] = sessions["client_id"].map(dict(zip(clients["client_id"], clients["clinician_id"])))
    sessions["srs_total"] = np.where(sessions["attendance"] == "attended", 38.0, np.nan)
    sessions.loc[sessions["client_id"] == "three", "srs_total"] = [38.0, np.nan, np.nan, 37.0]  # one attended, unmeasured
    return clients, sessions


def test_single_sessions_planned_unplanned_and_referred():
    clients, sessions = _tables()
    before = sessions.copy()
    ep = episode_engagement(clients, sessions).set_index("client_id")
    pd.testing.assert_frame_equal(sessions, before)  # input not mutated
    assert ep.loc["single_planned", "single_session_type"] == "planned"
    assert ep.loc["single_unplanned", "single_session_type"] == "unplanned"
    # no reason given: "unknown", neither planned nor unplanned (DEFINITIONS §2.7); issue #19
    assert ep.loc["single_noreason", "single_session_type"] == "unknown"
    assert ep.loc["referred", "single_session_type"] == "referred_on"
    assert not ep.loc["three", "single_session"] and pd.isna(ep.loc["three", "single_session_type"])
    assert not ep.loc["open_quiet", "single_session"]  # open: not (yet) a single-session episode
    assert ep.loc["three", "n_attended"] == 3 and ep.loc["three", "n_cancelled"] == 1
    assert ep.loc["three", "median_gap_days"] == 14  # gaps 14 and 14 days between attended sessions
    assert ep.loc["three", "n_no_measure"] == 1
    assert ep.loc["three", "unilateral"] and not ep.loc["single_planned", "unilateral"]


def test_lost_contact_counts_from_the_last_attended_session_boundary_inclusive():
    clients, sessions = _tables()
    # reference date = last session in the export, 2025-03-01; open_quiet last attended 2025-01-01 = 59 days
    ep = episode_engagement(clients, sessions, lost_contact_days=59).set_index("client_id")
    assert ep.loc["open_quiet", "days_since_contact"] == 59 and ep.loc["open_quiet", "lost_contact"]
    assert ep.loc["open_never", "lost_contact"] and ep.loc["open_never", "n_attended"] == 0  # counted from its start
    ep = episode_engagement(clients, sessions, lost_contact_days=60).set_index("client_id")
    assert not ep.loc["open_quiet", "lost_contact"]
    assert not ep.loc["open_active", "lost_contact"]
    assert not ep.loc["open_never", "lost_contact"]
    assert not ep.loc["three", "lost_contact"]  # ended episodes are never lost contact
    ep = episode_engagement(clients, sessions, lost_contact_days=59, reference_date="2025-01-20").set_index("client_id")
    assert not ep.loc["open_quiet", "lost_contact"]


def test_distribution_and_mode():
    clients, sessions = _tables()
    dist = session_count_distribution(episode_engagement(clients, sessions))
    assert dist.set_index("n_attended")["n_episodes"].to_dict() == {0: 0, 1: 4, 2: 0, 3: 1}
    assert dist.loc[dist["is_mode"], "n_attended"].tolist() == [1]
    assert dist["share"].sum() == pytest.approx(1.0)


def test_clinician_rates_with_wilson_intervals():
    clients, sessions = _tables()
    cn = clinician_engagement(episode_engagement(clients, sessions)).set_index("scope")
    assert list(cn.index) == ["T1", "T2", "service"]
    assert cn.loc["T1", "n_single"] == 4 and cn.loc["T1", "n_single_planned"] == 1 and cn.loc["T1", "n_single_unplanned"] == 1
    assert cn.loc["T1", "n_single_unknown"] == 1
    assert cn.loc["T1", "single_rate"] == 1.0
    assert cn.loc["service", "n_unilateral"] == 2 and cn.loc["service", "n_ended"] == 5
    lo, hi = wilson_interval(2, 5)
    assert cn.loc["service", "unilateral_rate_lower"] == pytest.approx(lo) and cn.loc["service", "unilateral_rate_upper"] == pytest.approx(hi)
    assert cn.loc["service", "n_no_show"] == 2 and cn.loc["service", "n_scheduled"] == 13
    assert cn.loc["T2", "n_lost_contact"] == 2  # open_quiet and open_never
    assert cn.loc["T2", "mode_attended"] == 3


def test_demo_against_a_plain_recomputation():
    cl = load_caseload()
    ep = episode_engagement(cl.clients, cl.sessions)
    s = cl.sessions
    att = s[s["attendance"] == "attended"].groupby("client_id").size()
    assert (ep.set_index("client_id")["n_attended"] == att.reindex(ep["client_id"]).fillna(0).astype(int).to_numpy()).all()
    svc = clinician_engagement(ep).set_index("scope").loc["service"]
    assert svc["dna_rate"] == pytest.approx((s["attendance"] == "no_show").mean())
    ended = cl.clients[cl.clients["end_date"].notna()]
    assert svc["unilateral_rate"] == pytest.approx((ended["end_reason"] == "unilateral").mean())
    dist = session_count_distribution(ep)
    assert dist.loc[dist["is_mode"], "n_attended"].item() == 1  # the literature's modal count, planted in the demo


def test_clinician_table_against_plain_groupby_per_clinician():
    """The vectorised per-clinician counts and mode equal the plain per-group pandas expressions."""
    rng = np.random.default_rng(5)
    n = 600
    ep = pd.DataFrame({
        "client_id": [f"C{i}" for i in range(n)],
        "clinician_id": pd.array(rng.choice(["T1", "T2", "T3", "T4", None], n), dtype="str"),
        "ended": rng.random(n) < 0.7, "n_attended": rng.integers(0, 7, n), "n_scheduled": rng.integers(0, 9, n),
        "n_no_show": rng.integers(0, 2, n), "n_cancelled": rng.integers(0, 2, n), "lost_contact": rng.random(n) < 0.1,
        "n_no_measure": rng.integers(0, 3, n), "unilateral": rng.random(n) < 0.2,
    })
    ep["single_session"] = ep["ended"] & (ep["n_attended"] == 1)
    ep["single_session_type"] = pd.array(np.where(ep["single_session"], rng.choice(["planned", "unplanned"], n), None),
                                         dtype="string")
    ep.loc[ep["clinician_id"] == "T4", "ended"] = False  # a clinician with no ended episode
    got = clinician_engagement(ep).set_index("scope")
    assert list(got.index) == ["T1", "T2", "T3", "T4", "service"]
    both = pd.concat([ep, ep.assign(clinician_id="service")], ignore_index=True)
    ended = both[both["ended"]]
    ge = ended.groupby("clinician_id")
    planned = ge["single_session_type"].apply(lambda s: int((s == "planned").sum()))
    pos = ended[ended["n_attended"] >= 1]
    mode = pos.groupby("clinician_id")["n_attended"].agg(lambda s: s.value_counts().idxmax())  # ties: seen first
    for scope in ["T1", "T2", "T3", "service"]:
        assert got.loc[scope, "n_single_planned"] == planned[scope]
        assert got.loc[scope, "mode_attended"] == mode[scope]
        assert got.loc[scope, "median_attended"] == ge["n_attended"].median()[scope]
    assert got.loc["T4", "n_ended"] == 0 and np.isnan(got.loc["T4", "mode_attended"])
    assert got.loc["service", "n_clients"] == n  # episodes without a clinician count for the service


def test_mode_ties_go_to_the_count_seen_first():
    ep = pd.DataFrame({"client_id": list("abcd"), "clinician_id": "T1", "ended": True, "n_attended": [3, 2, 2, 3],
                       "n_scheduled": 1, "n_no_show": 0, "n_cancelled": 0, "lost_contact": False, "n_no_measure": 0,
                       "unilateral": False, "single_session": False,
                       "single_session_type": pd.array([None] * 4, dtype="string")})
    assert clinician_engagement(ep).set_index("scope").loc["T1", "mode_attended"] == 3
    assert clinician_engagement(ep.iloc[[1, 0, 2, 3]]).set_index("scope").loc["T1", "mode_attended"] == 2


def test_episode_counts_with_unsorted_sessions_and_missing_dates():
    clients, sessions = _tables()
    shuffled = sessions.sample(frac=1, random_state=2)
    shuffled.loc[shuffled.index[0], "session_date"] = pd.NaT
    ep = episode_engagement(clients, shuffled).set_index("client_id")
    att = shuffled[shuffled["attendance"] == "attended"]
    first = att.groupby("client_id")["session_date"].min()
    assert (ep["first_attended"].dropna() == first.reindex(ep.index).dropna()).all()
    gaps = (att.sort_values(["client_id", "session_date"]).groupby("client_id")["session_date"]
            .apply(lambda d: d.diff().dt.days.median()))
    pd.testing.assert_series_equal(ep["median_gap_days"].dropna(), gaps.reindex(ep.index).dropna(), check_names=False)


def test_lost_contact_days_is_a_setting_of_an_engagement_section():
    """Issue #19: `[engagement]` used to be refused; lost_contact_days now reads from it."""
    assert engagement_options(None, episode_engagement) == {"lost_contact_days": 42}
    import inspect
    # issue #17: the signature holds no default of its own (None = the rules, i.e. defaults.toml)
    assert inspect.signature(episode_engagement).parameters["lost_contact_days"].default is None
    st = load_settings({"engagement": {"lost_contact_days": 59}})
    clients, sessions = _tables()
    ep = episode_engagement(clients, sessions, **engagement_options(st, episode_engagement)).set_index("client_id")
    assert ep.loc["open_quiet", "lost_contact"]  # 59 days, boundary inclusive
    from supervision.rules import Rules
    sixty = Rules.from_settings(load_settings({"engagement": {"lost_contact_days": 60}}))
    assert not episode_engagement(clients, sessions, rules=sixty).set_index("client_id").loc["open_quiet", "lost_contact"]
    assert episode_engagement(clients, sessions).set_index("client_id").loc["open_quiet", "lost_contact"]  # 42 days
    with pytest.raises(SettingsError, match="engagement.lost_contact_dys"):
        load_settings({"engagement": {"lost_contact_dys": 10}})


def test_the_metric_tables_use_the_engagement_setting():
    from supervision.metrics.tables import metric_tables
    cl = load_caseload(settings={"engagement": {"lost_contact_days": 3650}})
    ep = metric_tables(cl)["engagement_clients"]
    assert not ep["lost_contact"].any()
