"""The supervision report: one self-contained HTML file (and optionally PDF) for the record.

The report holds the supervisee's agenda, the caseload overview against the service, the key
charts of each area that has data, and the notes and action items from the notes database. It
opens anywhere, offline, years later: plotly.js is embedded once (no CDN, no MathJax, no font or
image from another host), the CSS is inline, and it is readable when printed (charts are kept
whole across pages). Identifiers are the export's pseudonymous ids; the report contains no names.

PDF: headless Chromium prints the HTML (``--print-to-pdf``) with every non-local host blocked;
where Chromium is not installed, :class:`ReportError` says so and how to get it.
"""

from __future__ import annotations

import html
import shutil
import subprocess
import tempfile
import time
from collections.abc import Callable, Iterable
from datetime import datetime, timezone
from pathlib import Path

import numpy as np
import pandas as pd
import plotly.graph_objects as go
from plotly.offline import get_plotlyjs

from supervision import __version__
from supervision.agenda import build_agenda
from supervision.caseload import Caseload
from supervision.figures.alliance import low_alliance_comparison, srs_heatmap, srs_small_multiples
from supervision.figures.engagement import session_count_comparison
from supervision.metrics import engagement as eng
from supervision.metrics.tables import metric_tables
from supervision.selection import PERIODS, CaseloadIndex, Selection

CHROMIUM_FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                  "--disable-background-networking", "--disable-component-update", "--disable-sync",
                  "--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE 127.0.0.1, EXCLUDE localhost"]
PLOTLY_CONFIG = {"displaylogo": False, "responsive": True, "displayModeBar": False}

CSS = """
body { font-family: Arial, Helvetica, sans-serif; font-size: 14px; color: #111; max-width: 1100px; margin: 24px auto; padding: 0 16px; }
h1 { font-size: 24px; margin-bottom: 4px; } h2 { font-size: 19px; border-bottom: 2px solid #0072B2; padding-bottom: 3px; margin-top: 32px; }
table { border-collapse: collapse; margin: 8px 0 12px; } th, td { border: 1px solid #bbb; padding: 4px 7px; text-align: left; vertical-align: top; }
th { background: #eef3f8; } .meta { color: #444; } .note { color: #444; font-style: italic; }
h3.risk { color: #B00020; } .sev-high { border-left: 6px solid #D55E00; } .sev-medium { border-left: 6px solid #E69F00; } .sev-low { border-left: 6px solid #56B4E9; }
.chart { page-break-inside: avoid; break-inside: avoid; margin: 10px 0 20px; }
@media print { body { margin: 0; max-width: none; } h2 { page-break-after: avoid; } a { color: inherit; text-decoration: none; } }
"""


class ReportError(RuntimeError):
    """A report that cannot be built (unknown supervisee, no Chromium for PDF, unwritable file)."""


def safe_file_part(name: str, *, max_len: int = 80) -> str:
    """``name`` (an id from the data) made safe as part of a file name.

    Only letters, digits, ``-``, ``_`` and ``.`` are kept (anything else, path separators
    included, becomes ``_``); leading dots are dropped so no hidden or ``..`` name results;
    the result is never empty and at most ``max_len`` characters.
    """
    import re
    import unicodedata

    text = unicodedata.normalize("NFKC", str(name))
    text = re.sub(r"[^A-Za-z0-9._-]", "_", text).lstrip(".")
    text = re.sub(r"\.{2,}", ".", text)[:max_len] or "_"
    if text != str(name):  # changed: a short hash of the id keeps two ids from sharing one file
        import hashlib

        text += "-" + hashlib.sha256(str(name).encode("utf-8")).hexdigest()[:8]
    return text


def report_target(folder: Path, name: str) -> Path:
    """The file ``folder/name`` after checking that it stays inside ``folder``.

    Raises
    ------
    ReportError
        When the resolved path would leave ``folder`` (a name from the data must never
        choose where a file is written).
    """
    folder = Path(folder)
    target = folder / name
    root = folder.resolve()
    if target.resolve().parent != root or Path(name).name != name:
        raise ReportError(f"the report name {name!r} would be written outside {folder}; "
                          "it was refused. Report this clinician id to the service's data team.")
    return target


def _esc(v) -> str:
    return "" if v is None or (not isinstance(v, str) and pd.isna(v)) else html.escape(str(v))


def _table(frame: pd.DataFrame, css_row: Callable[[pd.Series], str] | None = None) -> str:
    head = "".join(f"<th>{_esc(c)}</th>" for c in frame.columns)
    body = "".join(
        f"<tr class='{css_row(r) if css_row else ''}'>" + "".join(f"<td>{_esc(v)}</td>" for v in r) + "</tr>"
        for _, r in frame.iterrows())
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def _figure(fig: go.Figure, caption: str) -> str:
    inner = fig.to_html(full_html=False, include_plotlyjs=False, include_mathjax=False, config=PLOTLY_CONFIG)
    return f"<div class='chart'>{inner}<p class='note'>{_esc(caption)}</p></div>"


def _pct(v) -> str:
    return "–" if v is None or pd.isna(v) else f"{v:.0%}"


def _agenda_section(agenda: pd.DataFrame) -> str:
    """The agenda in its sections, as the dashboard shows it: risk, today, patterns; housekeeping and more folded."""
    from supervision.agenda import FLAGS

    if agenda.empty:
        return "<p>No agenda items.</p>"
    ag = agenda.assign(since=agenda["since"].dt.strftime("%d %b %Y").fillna(""),
                       flag=agenda["flag"].map(lambda f: FLAGS.get(f, ("", "", f))[2]),
                       evidence=agenda["evidence"].str.replace(" | ", "; ", regex=False))
    out = []
    risk = ag[ag["section"] == "risk"]
    out.append("<h3 class='risk'>Risk: discuss first</h3>" + (
        "<p>No current client's latest answer on a risk item (PHQ-9 item 9, CORE-10 item 6) is above 0.</p>" if risk.empty
        else _table(risk[["rank", "client_id", "since", "evidence", "question"]], lambda r: "sev-high")))
    for section, title, cols in (("today", "Today's clients", ["rank", "severity", "client_id", "flag", "since", "evidence", "question"]),
                                 ("patterns", "Patterns in the caseload", ["rank", "flag", "evidence", "question"])):
        part = ag[ag["section"] == section]
        out.append(f"<h3>{title} ({len(part)})</h3>" + ("<p>None.</p>" if part.empty else _table(
            part[cols], lambda r: f"sev-{r['severity']}" if "severity" in r else "")))
    for section, title in (("housekeeping", "Housekeeping"), ("more", "More items")):
        part = ag[ag["section"] == section]
        if len(part):
            out.append(f"<details><summary>{title} ({len(part)})</summary>"
                       + _table(part[["rank", "client_id", "flag", "since", "evidence"]]) + "</details>")
    return "".join(out)


def _overview(ep_me: pd.DataFrame, ep_svc: pd.DataFrame, al: pd.DataFrame, me: str) -> str:
    # each scope's figures rest on its own episodes only, so the service's row is made once per batch
    cn = eng.clinician_engagement(ep_me).set_index("scope")
    svc = _service_part("engagement overview", (ep_svc,), lambda: eng.clinician_engagement(
        ep_svc.assign(clinician_id="__service")).set_index("scope").loc["__service"])
    rows = []
    def ci(r, n):
        return f"{_pct(r[n])} ({_pct(r[n + '_lower'])}–{_pct(r[n + '_upper'])})"
    if me in cn.index:
        m, s = cn.loc[me], svc
        for label, f in (("clients (open / ended)", lambda r: f"{r['n_clients']:.0f} ({r['n_open']:.0f} / {r['n_ended']:.0f})"),
                         ("mean attended sessions, ended episodes", lambda r: "–" if pd.isna(r["mean_attended"]) else f"{r['mean_attended']:.1f}"),
                         ("single-session endings", lambda r: ci(r, "single_rate")),
                         ("unilateral endings", lambda r: ci(r, "unilateral_rate")),
                         ("did not attend, of scheduled sessions", lambda r: ci(r, "dna_rate")),
                         ("open episodes with lost contact", lambda r: f"{r['n_lost_contact']:.0f}")):
            rows.append((label, f(m), f(s)))
    if me in al.index:
        rows.append(("median SRS", f"{al.at[me, 'median_srs']:.1f}", f"{al.at['service', 'median_srs']:.1f}"))
        rows.append(("sessions at/below the SRS cut-off", _pct(al.at[me, "low_rate"]), _pct(al.at["service", "low_rate"])))
    return _table(pd.DataFrame(rows, columns=["", me, "service"])) + (
        "<p class='note'>Rates with a 95 % Wilson interval. With few clients the interval is wide; session-level "
        "intervals treat sessions as independent and are too narrow.</p>")


def _text_html(text: str) -> str:
    """A note's text as escaped HTML: paragraphs at blank lines, line breaks kept (never raw Markdown or HTML)."""
    paras = [p for p in str(text).replace("\r\n", "\n").split("\n\n") if p.strip()]
    return "".join(f"<p>{_esc(p).replace(chr(10), '<br>')}</p>" for p in paras)


def _notes_section(notes_path, supervisee: str, settings, client_ids=()) -> str:
    """Every meeting with the supervisee (general notes, notes per client, actions), and the notes about the
    supervisee's clients written outside a meeting, as formatted and escaped text."""
    import pandas as pd

    from supervision.notes import NotesError, NotesStore

    try:
        with NotesStore(notes_path, settings=settings, read_only=True) as store:
            meetings = store.meetings(supervisee_id=supervisee)
            notes = store.notes(supervisee_id=supervisee)
            loose = [store.notes(client_id=c) for c in sorted(set(client_ids))]
            actions = store.actions(supervisee_id=supervisee)
    except NotesError as exc:
        return f"<p class='note'>No notes could be read: {_esc(exc)}</p>"
    loose = pd.concat([x for x in loose if len(x)], ignore_index=True) if any(len(x) for x in loose) else notes.head(0)
    loose = loose[loose["meeting_id"].isna()]
    if meetings.empty and loose.empty:
        return "<p class='note'>No supervision meetings recorded for this supervisee.</p>"

    def note_html(n) -> str:
        who = f"{_esc(n.updated_by)}, {n.updated_at:%d %b %Y %H:%M} UTC" + (f", version {n.version}" if n.version > 1 else "")
        about = "" if pd.isna(n.client_id) or str(n.client_id) in ("", "None", "nan") else f"<b>{_esc(n.client_id)}</b>: "
        return f"<li>{about}{_text_html(n.text)}<span class='note'>({who})</span></li>"

    parts = []
    for m in meetings.itertuples():
        mine = notes[notes["meeting_id"] == m.meeting_id]
        acts = actions[actions["meeting_id"] == m.meeting_id]
        parts.append(f"<h3>Meeting of {m.meeting_date:%d %b %Y} (supervisor {_esc(m.supervisor_id)})</h3>"
                     + ("<ul>" + "".join(note_html(n) for n in mine.itertuples()) + "</ul>" if len(mine) else "<p>No notes.</p>")
                     + ("" if acts.empty else _table(acts[["status", "text", "owner", "due", "client_id"]].assign(
                         due=acts["due"].dt.strftime("%d %b %Y").fillna("")))))
    if len(loose):
        parts.append("<h3>Notes about clients outside a meeting</h3><ul>"
                     + "".join(note_html(n) for n in loose.itertuples()) + "</ul>")
    return "".join(parts)


def _followup_section(caseload: Caseload, tables: dict, notes_path, supervisee: str) -> str:
    """Follow-through: what is carried from earlier meetings (with what happened since), the practice
    goals judged against chance, and the supervisee's development by quarter (table and chart)."""
    from supervision.figures.development import development_chart
    from supervision.followup import development, evaluate_goal, follow_up_table
    from supervision.notes import NotesError, NotesStore

    out = []
    try:
        with NotesStore(notes_path, settings=caseload.settings, read_only=True) as store:
            todo = follow_up_table(caseload, tables, store, supervisee)
            goals = store.goals(supervisee)
    except NotesError:
        todo, goals = pd.DataFrame(), pd.DataFrame()
    if len(todo):
        out.append("<h3>Still to follow up</h3>" + _table(todo.assign(
            meeting_date=todo["meeting_date"].dt.strftime("%d %b %Y"))[["kind", "meeting_date", "client_id", "what", "since"]]))
    if len(goals):
        t = {**tables, "sessions": caseload.sessions}
        rows = [(g.text, g.status, f"{g.review_date:%d %b %Y}",
                 evaluate_goal(t, supervisee, g.metric, g.direction, g.baseline_start, g.baseline_end, g.meeting_date,
                               g.review_date).sentence) for g in goals.itertuples()]
        out.append("<h3>Practice goals</h3>" + _table(pd.DataFrame(rows, columns=["goal", "status", "review", "before and since"])))
    dev = development(caseload, tables, supervisee)
    if len(dev):
        cell = dev.assign(q=dev["quarter"].dt.year.astype(str) + " Q" + dev["quarter"].dt.quarter.astype(str),
                          text=np.where(dev["too_few"], "too few clients",
                                        (dev["value"] * 100).round(0).astype("Int64").astype(str) + " % (n="
                                        + dev["n_clients"].astype(str) + "; service "
                                        + (dev["service"] * 100).round(0).astype("Int64").astype(str) + " %)"))
        wide = cell.pivot(index="label", columns="q", values="text").reset_index().rename(columns={"label": "metric"})
        out.append("<h3>Development by quarter</h3>" + _table(wide))
        metric = goals["metric"].iloc[0] if len(goals) and goals["metric"].iloc[0] in set(dev["metric"]) else "low_alliance_share"
        out.append(_figure(development_chart(dev, metric, label=supervisee),
                           "A quarter's value rests on few clients: read the interval, not the dot."))
    return "".join(out) or "<p class='note'>Nothing to follow up yet.</p>"


def build_report(caseload: Caseload, clinician_id: str, *, period: str = "all", notes_path=None,
                 tables: dict | None = None, include_notes: bool = True, policy: str | None = None,
                 index: CaseloadIndex | None = None, agenda: pd.DataFrame | None = None) -> str:
    """The report for one supervisee as a self-contained HTML string.

    Parameters
    ----------
    caseload : Caseload
    clinician_id : str
        The supervisee.
    period : {"all", "3m", "6m", "12m"}
        Counted back from the last session in the export, as in the dashboards.
    notes_path : path, optional
        Notes database (default from the settings); notes and actions are read, never written.
    tables : dict, optional
        Precomputed :func:`~supervision.metrics.tables.metric_tables` (batch reports reuse them).
    policy : {"nhs", "cms", "none"}, optional
        Small-numbers policy for group counts (default: the ``[privacy] suppression_policy``
        setting). ``none`` only for the supervision pair's own record.
    index : CaseloadIndex, optional
        The caseload split by clinician (batch reports split it once).
    agenda : DataFrame, optional
        :func:`~supervision.agenda.build_agenda` for every clinician, made from ``caseload`` and
        ``tables`` (batch reports build it once and each report takes its supervisee's rows: the same
        rows as building it for the supervisee alone, since the agenda ranks within each clinician).
    """
    if not caseload.usable:
        raise ReportError("This export cannot be used; run `supervision validate` to see why.")
    if clinician_id not in set(caseload.clinicians["clinician_id"]):
        raise ReportError(f"Unknown supervisee {clinician_id!r}. Known: {', '.join(sorted(caseload.clinicians['clinician_id']))}.")
    if period not in PERIODS:
        raise ReportError(f"period must be one of {', '.join(PERIODS)}; got {period!r}.")
    tables = tables if tables is not None else metric_tables(caseload)
    data = (index if index is not None and index.caseload is caseload else CaseloadIndex(caseload)).slice(
        Selection(supervisee=clinician_id, period=period))
    policy = policy or caseload.rules.privacy.suppression_policy
    data.extras["policy"] = policy
    ids = set(data.clients["client_id"])
    if agenda is None:
        agenda = build_agenda(caseload, tables, clinician_id=clinician_id)
    else:
        agenda = agenda[(agenda["clinician_id"] == clinician_id).to_numpy()].reset_index(drop=True)
    agenda = agenda[agenda["client_id"].isin(ids) | (agenda["client_id"] == "(caseload)")]
    agenda = _agenda_gaps_disclosed(agenda, caseload, tables, clinician_id, policy)
    sa = tables["alliance_sessions"]
    sa_me = sa[sa["client_id"].isin(ids)]
    if data.start_date is not None:
        sa_me = sa_me[sa_me["session_date"] >= data.start_date]
    rp = tables["alliance_ruptures"]
    rp = rp[rp["criterion"] == rp["criterion"].iloc[0]] if len(rp) else rp
    ep = tables["engagement_clients"]
    ep_me, ep_svc = ep[ep["client_id"].isin(ids)], _service_rows(ep, data.service_clients)
    al = tables["alliance_clinicians"].set_index("scope")

    period_text = "the whole export" if data.start_date is None else f"{data.start_date:%d %b %Y} to {data.reference_date:%d %b %Y}"
    sections = [
        f"<h1>Supervision report: {_esc(clinician_id)}</h1>"
        f"<p class='meta'>Caseload {period_text}: {len(data.clients)} clients, {len(data.sessions)} scheduled sessions. "
        f"Made on {datetime.now(timezone.utc):%d %b %Y %H:%M} UTC by the supervision workbook {__version__} from "
        f"<code>{_esc(Path(caseload.source).name)}</code>. Identifiers are the export's pseudonymous ids.</p>",
        _disclosure_sentence(caseload, tables, clinician_id, policy),
        "<h2>Agenda</h2>" + _agenda_section(agenda),
        "<h2>Caseload compared with the service</h2>" + _overview(ep_me, ep_svc, al, clinician_id),
    ]
    svc_counts = _service_part("session counts", (ep_svc,), lambda: eng.session_count_distribution(ep_svc))
    charts = [_figure(session_count_comparison(eng.session_count_distribution(ep_me), svc_counts, label=clinician_id),
                      "Single sessions are common everywhere; a caseload that differs from the service is worth a look, "
                      "not a verdict.")]
    if len(sa_me) and sa_me["srs_total"].notna().any():
        ar = caseload.rules.alliance  # the user's cut-off, as the tables were computed with
        charts.append(_figure(srs_heatmap(sa_me, rp[rp["client_id"].isin(ids)], title=f"Caseload alliance (SRS), {clinician_id}",
                                          rules=ar),
                              "One row per client, one column per attended session; marked cells are "
                              f"{'at or below' if ar.inclusive else 'below'} the cut-off of {ar.srs_cutoff:g}."))
        flagged = agenda.loc[agenda["flags"].str.contains("rupture|alliance|low_item|ceiling"), "client_id"].drop_duplicates().head(12).tolist()
        if flagged:
            charts.append(_figure(srs_small_multiples(sa_me, rp, clients=flagged, title="SRS of the clients on the agenda",
                                                      rules=ar),
                                  "A rupture is a question to ask, not a finding."))
        charts.append(_figure(low_alliance_comparison(tables["alliance_clinicians"], clinician_id=clinician_id),
                              "Intervals are too narrow because one client's sessions are not independent."))
    sections.append("<h2>Charts</h2>" + "".join(charts))
    for area_section in extra_sections(caseload, tables, data):
        sections.append(area_section)
    sections.append("<h2>Follow-through and development</h2>" + _followup_section(caseload, tables, notes_path, clinician_id))
    if include_notes:
        sections.append("<h2>Notes and agreed actions</h2>"
                        + _notes_section(notes_path, clinician_id, caseload.settings, client_ids=ids))
    body = "\n".join(sections)
    return (f"<!DOCTYPE html><html lang='en'><head><meta charset='utf-8'>"
            f"<title>Supervision report {_esc(clinician_id)}</title><style>{CSS}</style>"
            f"<script type='text/javascript'>{get_plotlyjs()}</script></head><body>{body}</body></html>")


def outcome_section(caseload: Caseload, tables: dict, data) -> str:
    """Outcome: categories against the service and the Jacobson plot, for each outcome measure present."""
    from supervision.figures.outcome import jacobson_plot
    from supervision.instruments import instruments

    co_all = tables.get("outcome_clients")
    if co_all is None or co_all.empty:
        return "<h2>Outcome</h2><p class='note'>No outcome measure in this export.</p>"
    me = data.selection.supervisee
    ids = set(data.clients["client_id"])
    parts = ["<h2>Outcome</h2>"]
    specs = instruments(caseload.settings)
    cats = ["recovered", "improved", "unchanged", "deteriorated", "harmed"]
    row = lambda f: [f"{(f['category'] == c).sum()} ({(f['category'] == c).mean():.0%})" for c in cats]  # noqa: E731

    def service_side():  # each instrument's clients and the service's row: the same in every report
        return [(inst, co, ["service", int((co["n_measured"] >= 2).sum()), *row(co[co["n_measured"] >= 2])])
                for inst, co in co_all.groupby("instrument", sort=False)]

    for inst, co, svc_row in _service_part("outcome categories", (co_all,), service_side):
        mine = co[co["client_id"].isin(ids) & (co["n_measured"] >= 2)]
        if mine.empty:
            continue
        parts.append(f"<h3>{_esc(specs[inst].name)}</h3>" + _table(pd.DataFrame(
            [[me, len(mine), *row(mine)], svc_row], columns=["", "clients", *cats])))
        parts.append(_figure(jacobson_plot(mine, instrument=specs[inst], title=f"{specs[inst].name}: intake and latest, {me}"),
                             "Points beyond the band changed more than measurement error explains."))
    return "".join(parts) if len(parts) > 1 else "<h2>Outcome</h2><p class='note'>No client of this caseload has two scores.</p>"


def focus_section(caseload: Caseload, tables: dict, data) -> str:
    """Session focus: the supervisee among the clinicians, and goal coverage against check-ins per client."""
    from supervision.figures.focus import focus_caseload, focus_clinician_comparison

    fc, fn = tables.get("focus_clients"), tables.get("focus_clinicians")
    if fc is None or fn is None:
        return "<h2>Session focus</h2><p class='note'>No session focus recorded in this export.</p>"
    me = data.selection.supervisee
    mine = fc[fc["client_id"].isin(data.clients["client_id"])]
    return ("<h2>Session focus</h2>"
            + _figure(focus_clinician_comparison(fn, clinician_id=me),
                      "Rates treat sessions as independent, so the intervals are too narrow. Focus is recorded by the clinician.")
            + _figure(focus_caseload(mine, title=f"Goal coverage and check-in share per client, {me}"),
                      "Crisis sessions are legitimately off-goal and are counted apart."))


_SERVICE_PARTS: dict = {}  # name -> (the objects it was made from, the answer): the service's side of every report


def _service_part(name: str, sources: tuple, compute: Callable):
    """The service's side of a report (the same for every supervisee of a batch): ``compute()`` once for
    the same ``sources`` (the very objects: the service's tables of this run), then the kept answer."""
    hit = _SERVICE_PARTS.get(name)
    if hit is not None and len(hit[0]) == len(sources) and all(a is b for a, b in zip(hit[0], sources)):
        return hit[1]
    out = compute()
    _SERVICE_PARTS[name] = (sources, out)
    return out


def _service_rows(frame: pd.DataFrame, service_clients: pd.DataFrame) -> pd.DataFrame:
    """``frame``'s rows of the service's clients (of the report's period)."""
    return _service_part("engagement rows", (frame, service_clients),
                         lambda: frame[frame["client_id"].isin(service_clients["client_id"])])


_SUPPRESSED: dict = {}  # id of a gaps table -> (the table, policy, its suppressed form): computed once per report run


def _suppressed_gaps(caseload: Caseload, gaps: pd.DataFrame, policy) -> pd.DataFrame:
    from supervision.metrics.tables import stored_suppressed_gaps

    hit = _SUPPRESSED.get(id(gaps))
    if hit is not None and hit[0] is gaps and hit[1] == policy:
        return hit[2]
    out = stored_suppressed_gaps(caseload, gaps, policy)  # read from the table cache when an earlier run stored it
    _SUPPRESSED.clear()  # one table at a time: nothing of an earlier caseload is kept
    _SUPPRESSED[id(gaps)] = (gaps, policy, out)
    return out


def _gap_rows(caseload: Caseload, tables: dict, me: str, policy) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The supervisee's gap rows as the report shows them: ``(raw, shown)``; ``shown`` is under ``policy``
    (suppressed as the whole service's table, so its margins run across clinicians: the same pattern in every
    clinician's report), or the raw rows for ``none``."""
    g = tables.get("adaptation_gaps")
    if g is None or g.empty:
        return pd.DataFrame(), pd.DataFrame()
    raw = g[g["clinician_id"] == me]
    if str(policy) == "none":
        return raw, raw.assign(n_group_display=raw["n_group"].astype(str))
    shown = _suppressed_gaps(caseload, g, policy)
    return raw, shown[shown["clinician_id"] == me]


def value_label(value, settings) -> str:
    from supervision.config import value_label as label

    return label(value, settings)


def _gap_words(metric: str) -> str:
    from supervision.agenda import _METRIC_WORDS

    return _METRIC_WORDS.get(metric, (metric.replace("_", " "), ""))[0]


def _agenda_gaps_disclosed(agenda: pd.DataFrame, caseload: Caseload, tables: dict, me: str, policy) -> pd.DataFrame:
    """The agenda's adaptation-gap items with the numbers the report's disclosure policy allows: a count
    the policy hides is hidden here too (the item itself stays: the agenda lists the gap)."""
    if str(policy) == "none" or agenda.empty or not (agenda["flag"] == "adaptation_gap").any():
        return agenda
    raw, shown = _gap_rows(caseload, tables, me, policy)
    if raw.empty:
        return agenda
    clear = raw[raw["verdict"] == "clear gap"]
    keyed = shown.set_index(["dimension", "group", "metric", "comparator"])
    evidence = {}
    for (dim, grp), part in clear.groupby(["dimension", "group"], sort=False):
        bits = []
        for r in part.itertuples():
            who = "your other clients" if r.comparator == "clinician" else "colleagues' clients of the same group"
            k = (dim, grp, r.metric, r.comparator)
            d = keyed.loc[k] if k in keyed.index else None
            if d is None or d["verdict"] == "suppressed" or pd.isna(d["value_group"]):
                bits.append(f"{_gap_words(r.metric)}: a clear gap against {who} (numbers hidden: see "
                            "Small numbers above)")
            else:
                pct = "srs" not in str(r.metric)
                v = (lambda x: f"{x:.0%}") if pct else (lambda x: f"{x:.1f}")  # noqa: E731
                bits.append(f"{_gap_words(r.metric)} {v(d['value_group'])} (n={d['n_group_display']}) against "
                            f"{v(d['value_comparator'])} with {who}")
        evidence[f"{dim.replace('_', ' ')}: {value_label(grp, caseload.settings)}:"] = "; ".join(bits)
    ag = agenda.copy()
    for i in ag.index[ag["flag"] == "adaptation_gap"]:
        ev = str(ag.at[i, "evidence"])
        for prefix, text in evidence.items():
            if ev.startswith(prefix):
                ag.at[i, "evidence"] = f"{prefix} {text}"
    return ag


def _disclosure_sentence(caseload: Caseload, tables: dict, me: str, policy) -> str:
    """The report's disclosure decision (docs/methods.md §9.3), stated once (agenda and adaptation section follow it)."""
    if str(policy) == "none":
        return ("<p class='meta sw-disclosure'><b>Small numbers:</b> every count is shown in full (<code>--policy "
                "none</code>): this report is the supervision pair's own record; do not share it beyond the pair.</p>")
    from supervision.privacy import policy_rules

    rules = policy_rules(policy, caseload.settings)
    _raw, shown = _gap_rows(caseload, tables, me, policy)
    hidden = int((shown["verdict"] == "suppressed").sum()) if len(shown) else 0
    rounding = f" and the others rounded to {rules.rounding}" if rules.rounding and rules.rounding > 1 else ""
    return (f"<p class='meta sw-disclosure'><b>Small numbers:</b> group counts in this report (the adaptation section "
            f"and the agenda's adaptation items) follow the '{_esc(rules.name)}' small-numbers policy: counts of 1 to "
            f"{rules.max_suppressed} are hidden (*){rounding}, so no client can be singled out ({hidden} adaptation "
            "rows hidden, some only so that a hidden count cannot be worked out from the others). A gap the agenda "
            "lists is never left out, only its numbers. For the supervision pair's own record, "
            "<code>--policy none</code> shows everything.</p>")


def adaptation_section(caseload: Caseload, tables: dict, data) -> str:
    """Adaptation gaps in words, under the report's disclosure decision (stated once at the top): every gap the
    agenda lists is here, with its numbers hidden where the policy hides them."""
    g = tables.get("adaptation_gaps")
    if g is None or g.empty:
        return "<h2>Adaptation</h2><p class='note'>No identity dimensions in this export.</p>"
    me = data.selection.supervisee
    policy = data.extras.get("policy") or caseload.rules.privacy.suppression_policy
    raw, shown = _gap_rows(caseload, tables, me, policy)
    key = ["dimension", "group", "metric", "comparator"]
    found = shown[shown["verdict"].isin(["clear gap", "possible gap"])]
    # a clear gap (on the agenda) whose numbers the policy hides is still listed, its numbers hidden
    listed = raw.loc[raw["verdict"] == "clear gap", key].merge(shown[[*key, "verdict"]], on=key, how="left")
    masked = listed[listed["verdict"] != "clear gap"].assign(verdict="clear gap (numbers hidden)")
    found = pd.concat([found, masked], ignore_index=True)
    if found.empty:
        body = "<p>No gap stands out beyond what chance explains.</p>"
    else:
        pct = ~found["metric"].astype(str).str.contains("srs")
        fmt = lambda v, p: "*" if pd.isna(v) else (f"{v:.0%}" if p else f"{v:.1f}")  # noqa: E731
        n = found["n_group_display"] if "n_group_display" in found else pd.Series(pd.NA, index=found.index)
        body = _table(pd.DataFrame({
            "verdict": found["verdict"], "dimension": found["dimension"].str.replace("_", " "),
            "group": found["group"].map(lambda v: value_label(v, caseload.settings)),
            "measure": found["metric"].map(_gap_words), "against": found["comparator"].map(
                {"clinician": "your other clients", "service": "colleagues' clients of the same group"}),
            "group n": n.fillna("*").astype(str),
            "value": [fmt(v, p) for v, p in zip(found.get("value_group", pd.Series(index=found.index)), pct)],
            "comparator": [fmt(v, p) for v, p in zip(found.get("value_comparator", pd.Series(index=found.index)), pct)],
        }))
    return ("<h2>Adaptation</h2>" + body
            + "<p class='note'>Numbers follow the small-numbers decision stated at the top of this report. "
              "A gap is a question for supervision, not a verdict.</p>")


#: Area sections after the charts: functions ``(caseload, tables, slice) -> html``.
SECTION_BUILDERS: list[Callable] = [outcome_section, focus_section, adaptation_section]


def extra_sections(caseload, tables, data) -> Iterable[str]:
    for fn in SECTION_BUILDERS:
        yield fn(caseload, tables, data)


def html_to_pdf(html_path: Path, pdf_path: Path, chromium: str | None = None, timeout: float = 120) -> Path:
    """Print an HTML file to PDF with headless Chromium, every non-local host blocked."""
    exe = chromium or shutil.which("chromium") or shutil.which("chromium-browser") or shutil.which("google-chrome")
    if not exe:
        raise ReportError("PDF needs Chromium, which is not installed. On Debian/Ubuntu: `apt-get install chromium`. "
                          "The HTML report works without it and prints well from any browser.")
    with tempfile.TemporaryDirectory() as profile:
        cmd = [exe, *CHROMIUM_FLAGS, f"--user-data-dir={profile}", "--no-pdf-header-footer", "--virtual-time-budget=15000",
               f"--print-to-pdf={pdf_path}", html_path.resolve().as_uri()]
        r = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)
    if r.returncode != 0 or not pdf_path.exists() or pdf_path.stat().st_size == 0:
        raise ReportError(f"Chromium could not print the PDF (exit {r.returncode}): {r.stderr.strip()[-300:]}")
    return pdf_path


#: The work of a batch of reports, shared with forked worker processes (set before they start).
_JOB: dict = {}


def _report_chunk(cids: list[str]) -> list[tuple[list[Path], float]]:
    job = _JOB
    done = []
    for cid in cids:
        t0 = time.perf_counter()
        out = job["out"]
        target = report_target(out, f"supervision-report-{safe_file_part(cid)}.html") if job["many"] else out
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(build_report(job["caseload"], cid, period=job["period"], notes_path=job["notes_path"],
                                       tables=job["tables"], policy=job["policy"], index=job["index"],
                                       agenda=job["agenda"]), encoding="utf-8")
        paths = [target]
        if job["pdf"]:
            paths.append(html_to_pdf(target, target.with_suffix(".pdf")))
        done.append((paths, time.perf_counter() - t0))
    return done


def write_reports(caseload: Caseload, clinician_ids: list[str], out: Path, *, period: str = "all", notes_path=None,
                  pdf: bool = False, progress: Callable[[int, int, str, float], None] | None = None,
                  policy: str | None = None, workers: int | None = None) -> list[Path]:
    """Write one report per supervisee (``out`` is a file for one, a folder for several).

    The service's tables are computed once (and stored, :func:`supervision.metrics.tables.service_tables`)
    and the caseload split by clinician once; the reports are then written by ``workers`` forked
    processes (default: every core for many supervisees, :func:`supervision.parallel.default_workers`),
    each report the same whatever the number. ``progress(i, n, clinician_id, seconds)`` follows the
    order of ``clinician_ids``.
    """
    from supervision.metrics.tables import service_tables
    from supervision.parallel import default_workers, run_chunks

    out = Path(out)
    many = len(clinician_ids) > 1
    if many:
        out.mkdir(parents=True, exist_ok=True)
    _JOB.clear()
    tables = service_tables(caseload)
    # the agenda of every clinician in one pass (each report takes its supervisee's rows) when there are several
    agenda = None
    if many and caseload.usable and len(caseload.sessions):
        from supervision.followup import prepare_development

        agenda = build_agenda(caseload, tables)
        prepare_development(caseload, tables)  # every supervisee's development by quarter, in one pass
    _JOB.update(caseload=caseload, tables=tables, index=CaseloadIndex(caseload), out=out, many=many,
                period=period, notes_path=notes_path, pdf=pdf, policy=policy, agenda=agenda)
    paths: list[Path] = []
    try:
        n_workers = default_workers(len(clinician_ids), per_worker=4) if workers is None else max(1, int(workers))
        gaps = _JOB["tables"].get("adaptation_gaps")
        if n_workers > 1 and gaps is not None and not gaps.empty:
            # the service's suppressed gaps (minutes at service scale) made once, before the workers fork
            # (each inherits them) rather than once in every worker
            _suppressed_gaps(caseload, gaps, policy or caseload.rules.privacy.suppression_policy)
        i = 0
        for done in run_chunks(_report_chunk, list(clinician_ids), n_workers):
            for written, took in done:
                paths.extend(written)
                i += 1
                if progress:
                    progress(i, len(clinician_ids), clinician_ids[i - 1], took)
    finally:
        _JOB.clear()
    return paths
