"""Every metric table of a caseload, by name: what ``supervision metrics`` writes.

Each area adds its tables here as it is built; the names are file names and part of the API.
"""

from __future__ import annotations

import pandas as pd

from supervision.caseload import Caseload
from supervision.metrics import adaptation, alliance, engagement, focus, outcome


def metric_tables(caseload: Caseload) -> dict[str, pd.DataFrame]:
    """All metric tables for the whole service, with the settings' options.

    Returns
    -------
    dict of DataFrame
        ``alliance_sessions`` (:func:`supervision.metrics.alliance.session_alliance`),
        ``alliance_ruptures`` (:func:`~supervision.metrics.alliance.ruptures`),
        ``alliance_clients`` (:func:`~supervision.metrics.alliance.client_alliance`),
        ``alliance_clinicians`` (:func:`~supervision.metrics.alliance.clinician_alliance`),
        ``engagement_clients`` (:func:`supervision.metrics.engagement.episode_engagement`),
        ``engagement_clinicians`` (:func:`~supervision.metrics.engagement.clinician_engagement`),
        ``engagement_session_counts`` (:func:`~supervision.metrics.engagement.session_count_distribution`),
        and, when outcome measures are present, ``outcome_clients``, ``outcome_track`` and
        ``outcome_clinicians`` (see :func:`outcome_tables`); when session focus is recorded,
        ``focus_sessions``, ``focus_clients`` and ``focus_clinicians`` (see :func:`focus_tables`);
        with identity dimensions, ``adaptation_measures`` and ``adaptation_gaps`` (see :func:`adaptation_tables`).
    """
    from concurrent.futures import ThreadPoolExecutor

    rules = caseload.rules  # every area's rules, read once from the settings when the caseload was loaded
    # Outcome and session focus need nothing of the other areas: a second thread computes them while
    # this one does alliance, engagement and then adaptation (which needs the outcome tables). Much of
    # the work runs in pandas' and Arrow's compiled code, outside the GIL: 8.2 -> 5.8 s at 1M sessions on
    # 2 cores. The tables only read the caseload, and the result is the same dict as computed in turn.
    with ThreadPoolExecutor(1, thread_name_prefix="metric-tables") as pool:
        later_outcome = pool.submit(outcome_tables, caseload)
        later_focus = pool.submit(focus_tables, caseload)
        sa = alliance.session_alliance(caseload.sessions, rules=rules)
        now = caseload.sessions["session_date"].max() if len(caseload.sessions) else None  # as engagement's lost contact
        rp = alliance.ruptures(sa, clients=caseload.clients, reference_date=now, rules=rules)
        ca = alliance.client_alliance(sa, clients=caseload.clients, ruptures=rp, rules=rules)
        cn = alliance.clinician_alliance(sa, clients=caseload.clients, ruptures=rp, client_alliance_frame=ca, rules=rules)
        ep = engagement.episode_engagement(caseload.clients, caseload.sessions, rules=rules)
        out = {"alliance_sessions": sa, "alliance_ruptures": rp, "alliance_clients": ca, "alliance_clinicians": cn,
               "engagement_clients": ep, "engagement_clinicians": engagement.clinician_engagement(ep),
               "engagement_session_counts": engagement.session_count_distribution(ep)}
        out.update(later_outcome.result())
        adapted = adaptation_tables(caseload, out)
        out.update(later_focus.result())
    out.update(adapted)
    return out


def service_tables(caseload: Caseload, rules=None) -> dict[str, pd.DataFrame]:
    """:func:`metric_tables` of the whole service, computed once per export and settings and then reused.

    The tables are stored on disk (:mod:`supervision.table_cache`), so every page, supervisee and
    kernel (Voila starts one per visit) reads them instead of computing them again; a change to a
    file of the export or to a setting gives a new entry. A caseload that is not a whole export
    read from disk (a self-review scope, a published folder) is computed as before.
    """
    from supervision import table_cache

    return table_cache.load_or_compute(caseload, lambda: metric_tables(caseload), rules=rules)


SUPPRESSED_GAPS = "adaptation_gaps_suppressed"


def stored_suppressed_gaps(caseload: Caseload, gaps: pd.DataFrame, policy: str | None = None) -> pd.DataFrame:
    """:func:`~supervision.metrics.adaptation.suppress_gaps` of the service's ``gaps`` under ``policy``, stored
    beside the service tables (:mod:`supervision.table_cache`) and read again by later reports of the same export.

    The small-numbers audit solves a linear programme per hidden count (minutes for a service of a hundred
    clinicians), and every report of the service needs the same suppressed table. The stored entry is keyed
    by the export and settings (as the service tables) and by the policy's rules and the gaps table's content
    (a hash of every cell), so a changed table or policy is computed again; a caseload the cache does not
    store (a scope, a published folder) is computed as before.
    """
    from supervision import table_cache
    from supervision.privacy.suppression import policy_rules

    def compute() -> dict[str, pd.DataFrame]:
        return {SUPPRESSED_GAPS: adaptation.suppress_gaps(gaps, policy=policy, settings=caseload.settings)}

    try:
        content = [len(gaps), [[str(c), str(t)] for c, t in gaps.dtypes.items()],
                   str(int(pd.util.hash_pandas_object(gaps, index=True).sum())), table_cache._canonical(gaps.attrs)]
    except (TypeError, ValueError):  # a cell that cannot be hashed: not stored
        return compute()[SUPPRESSED_GAPS]
    rules = {"table": SUPPRESSED_GAPS, "policy": table_cache._canonical(policy_rules(policy, caseload.settings)),
             "gaps": content}
    event = table_cache.last_event  # what the page says about its service tables stays about them
    try:
        return table_cache.load_or_compute(caseload, compute, rules=rules)[SUPPRESSED_GAPS]
    finally:
        table_cache.last_event = event


def adaptation_tables(caseload: Caseload, tables: dict) -> dict[str, pd.DataFrame]:
    """``adaptation_measures`` (one row per client) and ``adaptation_gaps`` (every clinician).

    The outcome measure of the reliable-improvement and recovery gaps follows ``[adaptation]
    outcome_instrument`` ("auto": ``[outcome] instrument`` when present, else the first outcome
    measure present), so an export without ORS still gets outcome gaps from PHQ-9, GAD-7 or
    CORE-10; both tables' ``attrs`` name it (``outcome_instrument``) with a sentence
    (``outcome_note``), including when no outcome measure can be used.
    """
    st = caseload.settings
    dims = [d for d in st.identity_dimensions if d in caseload.clients.columns]
    if not dims:
        return {}
    co = tables.get("outcome_clients")
    present = caseload.measures_present()
    usable = [i for i in present.loc[present["kind"] == "outcome", "instrument"]
              if co is not None and (co["instrument"] == i).any()]
    rules = caseload.rules
    inst, note = adaptation.outcome_instrument(usable, rules.adaptation.outcome_instrument, rules.outcome.instrument)
    outcomes = co[co["instrument"] == inst] if inst is not None else co.iloc[:0] if co is not None else None
    measures = adaptation.client_measures(caseload.clients, caseload.sessions, settings=st,
                                          alliance=tables.get("alliance_clients"), engagement=tables.get("engagement_clients"),
                                          outcomes=outcomes, instrument=inst or rules.outcome.instrument, rules=rules)
    gaps = adaptation.adaptation_gaps(measures, rules=rules)
    for frame in (measures, gaps):
        frame.attrs.update({"outcome_instrument": inst, "outcome_note": note})
    return {"adaptation_measures": measures, "adaptation_gaps": gaps}


def focus_tables(caseload: Caseload) -> dict[str, pd.DataFrame]:
    """``focus_sessions``, ``focus_clients``, ``focus_clinicians`` when the export records session focus."""
    s, c, st = caseload.sessions, caseload.clients, caseload.settings
    if "focus_primary" not in s.columns or "agreed_goals" not in c.columns or s["focus_primary"].isna().all():
        return {}
    rules = caseload.rules
    fs = focus.session_focus(s, c, rules)
    fc = focus.client_focus(fs, rules=rules)
    fn = focus.clinician_focus(fs, client_focus_frame=fc, rules=rules)
    return {"focus_sessions": fs, "focus_clients": fc, "focus_clinicians": fn}


def outcome_tables(caseload: Caseload) -> dict[str, pd.DataFrame]:
    """Per-client outcome, latest track status and per-clinician rates, for every outcome measure present.

    Each table stacks the instruments, with an ``instrument`` column; absent when the export has
    no outcome measure.
    """
    present = caseload.measures_present()
    insts = present.loc[present["kind"] == "outcome", "instrument"].tolist()
    if not insts:
        return {}
    st, s, c = caseload.settings, caseload.sessions, caseload.clients

    rules = caseload.rules
    # the service-wide reference tables, once per instrument: session scores with intakes, expected trajectories
    scores = outcome.outcome_scores(s, clients=c, instruments=insts, settings=st)
    clients, track, clinicians = [], [], []
    for inst in insts:
        ss = scores[inst]
        co = outcome.client_outcomes(s, instrument=inst, clients=c, settings=st, scores=ss, rules=rules)
        clients.append(co)
        ref = outcome.expected_trajectories(s, clients=c, instrument=inst, settings=st, scores=ss, rules=rules)
        track.append(outcome.track_status(s, clients=c, instrument=inst, settings=st, scores=ss, reference=ref,
                                          rules=rules).assign(instrument=inst))
        clinicians.append(outcome.clinician_outcomes(co, rules=rules).assign(instrument=inst))
    return {"outcome_clients": pd.concat(clients, ignore_index=True),
            "outcome_track": pd.concat(track, ignore_index=True),
            "outcome_clinicians": pd.concat(clinicians, ignore_index=True)}
