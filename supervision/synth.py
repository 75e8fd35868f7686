"""Seeded synthetic clinic: the demo data of the supervision workbook.

``generate_clinic`` builds a realistic, fully synthetic outpatient psychotherapy service in the
tables of the data contract (``data/README.md``): ``clients``, ``sessions`` (with SRS, ORS and
WAI-SR as wide columns), ``clinicians`` and a long ``scores`` table (PHQ-9, GAD-7, CORE-10), plus
the *ground truth* of every effect that was planted in it. ``write_clinic`` writes them to a folder,
byte-identically for the same arguments. The bundled clinic in ``data/demo/`` is::

    supervision demo --out data/demo          # = seed 20261126, 12 clinicians, 18 months, csv

Everything is drawn from ``numpy.random.default_rng(seed)`` (one spawned child generator per
stage), vectorised over clients and sessions; the only Python loops run over clinicians (ids), over
session numbers (at most [26], for the SRS drift) and over the handful of injected export defects.

Generative model
----------------
Numbers in brackets are the defaults of :class:`SynthParams`; every one is a setting. Sources are
those collected in ``SYNTH_PARAMETERS.md`` (project research notes) and ``docs/methods.md``.

Clinicians
    Ids ``T01``..; supervisors ``S01``.. (one per ~6 clinicians). Position ``i % 12`` fixes the
    planted profile so that the demo is documented and stable: trainees at 1, 4, 5, 8, 11;
    WAI-SR users at 0, 3, 6, 9; "totals only" recorders (SRS/ORS totals, PHQ-9/GAD-7/CORE-10
    totals instead of items) at 3, 7, 11; check-in heavy at 4 and 10; high focus drift at 6;
    adaptation gap for clients with personality-disorder features at 2 and for Muslim clients at 7
    (so in the demo: T03 and T08; check-in heavy T05 and T11; high drift T07). Random therapist
    effects: outcome slope (SD [1.05] ORS points per unit of ln(session); this gives ~5 % of the
    variance of intake-adjusted last ORS, Wampold & Brown 2005, Saxon et al. 2017: 5-6 %),
    dropout log-odds (SD [0.45], latent ICC ~ .06; Saxon et al. 2017, Zimmermann et al. 2016) and
    alliance level (SD [0.15] on the log SRS deficit).
Episodes
    [35] per clinician per 18 months (scaled by ``months``; x0.8 for trainees, x1.15 for qualified
    staff, x U(0.85, 1.15) per clinician), start dates uniform over the period on weekdays. The
    first session is on ``start_date`` and is attended.
Length and endings (hurdle model; SYNTH_PARAMETERS.md section 1: Dryden (mode 1), Baldwin et al.
2009, OpenFIT norms (mean ~5.8), Swift & Greenberg 2012 (dropout 19.7 %))
    A planned course of 1 session (p [0.14], "got what I needed": planned/mutual, 10 % referred
    on) or ``2 + NegBin(mean [9] x exp(-0.15 z_slope), size [1.5])`` sessions, cap [26]; faster
    improvers plan shorter courses. After every attended session but the last planned one the
    client may stop coming: logit hazard = logit [.12] after session 1, logit [.032] later (set
    so that ~20 % of closed episodes with >= 2 sessions end unilaterally) + therapist effect +
    [0.65] x standardised SRS deficit of that session (low alliance -> dropout; Sharf et al.
    2010, d = .55) + log [1.5] for personality-disorder features (McMurran et al. 2010) + [1.0]
    once an alliance rupture is unrepaired + [0.2] for trainees + [0.15] x intake severity +
    [1.4] in a planted gap group. A dropout ends ``unilateral`` (90 %) or
    ``other``; 0-2 trailing no-shows follow, and the episode is closed 14-120 days after the last
    appointment - or never (25 %), which leaves open episodes that have gone quiet. Completed
    courses end planned 72 % / mutual 18 % / referred_on 7 % / other 3 %. Episodes still running
    at the as-of date have empty ``end_date`` and ``end_reason``.
Scheduling (SYNTH_PARAMETERS.md section 1, interval and DNA rows)
    Weekly (60 %), fortnightly (30 %) or irregular 21-35-day (10 %) rhythm with jitter; the last two
    intervals of a completed course are stretched x1.5; weekend dates move to Monday. Before each
    follow-up attended session come ``NegBin(1, 1 - q)`` missed slots (at most 4), q ~ Beta with
    mean [0.10] per client (x1.5 for clients who will drop out); a missed slot is a ``no_show``
    (55 %) or a late ``cancelled`` (Binnie & Boden 2016: DNA 8.9 %; OpenFIT: DNA + cancellation
    < 20 %; late cancellation ~6 % is a guess).
Alliance (SRS every attended session; WAI-SR at every attended session of WAI users)
    SRS deficit (40 - total) = client level x early trend + slow drift, read with a small error.
    *Level* (fixed per client): Gamma with shape [1.0] (an exponential: the "40 - Exp(3.5)" SRS of
    SYNTH_PARAMETERS.md section 2, [D], confidence L) and mean [3.8], taken at the quantile of
    z = [0.8] x the client's alliance z + 0.6 x a rating-style z. The alliance z also sets the
    outcome slope; the rating style (e.g. ceiling responding: the ceiling-effects review of
    section 2) does not [U]. Then x therapist effect x 1.15 for PD features x [2.5] in a planted
    gap group. The early trend lifts SRS by ~0.15-0.2 points per session over the first 5 sessions
    (section 2: +0.1 to +0.3 [U]).
    *Within client*: an AR(1) drift of the deficit (SD [0.3] points, session-to-session
    autocorrelation [0.7]; [U], no source) and a reading error of the four 10-cm lines of SD [0.5]
    points on the total (spread over the items, each read to 0.1). The reading error is anchored on
    the repeatability coefficient of a 100-mm VAS, 6-12 mm (Bailey et al. 2014, Clin J Pain,
    doi 10.1097/AJP.0000000000000006: children rating a stable stimulus minutes apart; abstract
    read): a per-mark SD of 2.2-4.3 mm, i.e. 0.4-0.9 points on a four-line total if the lines'
    errors are independent [D]. [0.5] is the low end of that range; its transfer to adults rating
    the SRS is [U]. Drift, reading error and the goals-item penalty below are damped near the
    ceiling by sqrt(d / (d + [1.5])) for a deficit d (a mark at the end of a line cannot scatter
    past it [U]). At SRS 36 the session-to-session SD is ~0.5 points; median within-client SD
    ~0.5 (planted ruptures included), lag-1 correlation ~.87.
    *Why not more*: SYNTH_PARAMETERS.md section 2 suggests a within-client SD of 1.5-2.5 [U], and
    docs/methods.md section 1.2 an SRS test-retest of ~.64 [U]. Generator version 1 had more (i.i.d.
    Gamma(1.6) noise per session: within-client SD ~2.1, lag-1 r ~.3); it made unplanted V-shaped
    dips as deep as the planted ruptures, so the Stiles 2-SD rule found them at a precision of
    ~0.2. Variation of that size leaves no rupture visible in the scores (section 5 asks for a dip
    >= 2 client SDs); variation this small makes the planted ruptures the only dips of their
    depth. Whether real SRS series are this smooth is an open question (docs/methods.md section 8,
    open item 5).
    Result: ceiling-heavy, mean ~36.3-36.6, SD ~3.5-3.9, ~27 % of sessions >= 39, ~31-33 % < 36
    (demo / 240 clinicians). Items (relationship, goals & topics, approach, overall) take
    20/27/27/26 % of the deficit plus their share of the reading error; the goals-and-topics item
    loses a further 0.6-1.4 points (damped as above) when the session's primary focus is not an
    agreed goal (check-in, drift, admin). Item deficits < 0.15 snap to 10.0. WAI-SR items 1-5 =
    round(5 - 0.32 x deficit^0.7 - client offset - |noise|) (goal items 4, 6, 8, 11 lose 0.5
    off-goal): total mean ~46, SD ~7.5.
Ruptures and repairs (Stiles et al. 2004; Eubanks et al. 2018; Gumz et al. 2012; section 5)
    Clients with a planned course of >= 4 sessions get one planted rupture with p [0.22] (x1.5 for
    PD features) at session r in 2..min(L - 1, 12): the SRS deficit rises by 4-8 points, and by at
    least [2.5] of the client's own session-to-session SDs (drift and reading error: at most 0.6
    points, so the 4-8 points decide). Repaired ruptures (p [0.65]) return after 1 session (75 %)
    or 2; the repair session's primary focus is ``process`` half of the time and the outcome gains
    [1.0] x ln(k / repair session) afterwards. Unrepaired ruptures keep 70 % of the drop, raise the
    dropout hazard and flatten the outcome by [3.0] x ln(k / r) ORS points (repaired vs
    unrepaired: r = .29, Eubanks et al. 2018; McLaughlin et al. 2014). Against these planted
    ruptures, ``supervision.metrics.alliance.ruptures`` (same client, rupture session within +-1)
    finds, in clients with >= 4 measured sessions: 2-SD rule recall 0.88 and precision 0.87 on
    the demo (0.91 and 0.90 on 240 clinicians); 1-SD rule recall 1.00, precision 0.40 (0.34): its
    1-point SD floor lets ordinary wobbles through. With rupture p = 0 the 2-SD rule finds 4
    episodes in the demo (generator version 1: 174, against 172 with ruptures planted). The 2-SD
    misses are short series: the client SD includes the dip, so a single-session V in 4 sessions is
    exactly 2 SDs deep without noise, and a 2-session dip needs >= 8 sessions.
Outcome (ORS every attended session; PHQ-9 + GAD-7 for [35 %] of clients, CORE-10 for [20 %])
    Latent wellbeing W(k) = W0 + b x ln k x (40 - W0) / 22.5 on the ORS scale, with intake W0 ~
    N(17.5, 8) (OpenFIT; ~18 % of intakes >= 25) and slope b ~ N([2.9], [2.0]) + therapist effect
    - [1.6] x client alliance z (alliance-outcome r ~ .28, Flueckiger et al. 2018) - 0.8 for PD
    features (Goddard et al. 2015) - [1.2] in a planted gap group: about +6 ORS points by session
    6-8 (Howard et al. 1986). Observed ORS adds N(0, [2.5]) occasion noise plus item noise
    (RC 5 -> SEM ~1.8). PHQ-9 (intake 11, SD 6; EMS82827), GAD-7 (11, 5) and CORE-10 (19.7, 7.7;
    Connell & Barkham 2007 norms) correlate with W0 (r ~ .7) and change with it (0.60, 0.50 and 0.77
    points per ORS point), with occasion noise SD 1.8, 1.1 and 2.0 plus item rounding (NHS TT RC
    6 and 4 -> SEM 2.2 and 1.4). Items share the total by fixed item weights; CORE-10 items 2 and 3
    are stored as raw answers (reverse-keyed: raw = 4 - scored).
Sudden gains (Tang & DeRubeis 1999; Stiles et al. 2003; Aderka et al. 2012; section 5)
    Clients in the clinical range (W0 <= 25) with a planned course of >= 5 sessions get a planted
    gain with p [0.30] (about 25 % of clients with >= 5 sessions) between pregain session n in
    2..6 (median 4) and n + 1: ORS +7..11, PHQ-9 -6..9, GAD-7 -4..7, CORE-10 -6..10 points,
    persistent; 20 % reverse by 60 % two or three sessions later.
Session focus (SYNTH_PARAMETERS.md section 7; rates are design guesses)
    1-3 agreed goals per client from the ``goal_area`` codes (mood and anxiety commonest). Each
    attended session has one primary focus: check-in (clinician rate 4-12 %, 30-40 % if check-in
    heavy), drift to a non-agreed goal area (2-7 %, 22 % for the high-drift clinician), a technique
    (13 %), process, crisis/risk (more with PD features), admin, otherwise one of the agreed goals
    (sticky: the same goal as last time with the clinician's persistence 0.55-0.85, 0.3 for the
    high-drift clinician). Setting an agenda (clinician rate 0.5-0.85; 0.2-0.35 if check-in heavy)
    cuts check-in and drift by 40 %. 0-2 secondary codes. ``identity_addressed`` ~ clinician rate
    5-15 %, x2.5 in sessions 1-2, x1.5 for clients with a minority identity, x0.15 for a planted gap
    group.
Identity (``personality_disorder`` from latent PD features, 30 %, recorded ``yes``/``no`` or
``not_recorded`` (15 %); Zimmerman et al. 2005)
    Distributions from SYNTH_PARAMETERS.md section 6a (England & Wales Census 2021, IAPT
    ethnicity completeness, Rimes et al. 2019) with ``declined`` and ``not_recorded``; the
    clinician with the religion gap works at a site where 30 % of clients are Muslim. The planted
    gaps are deliberately larger than published disparities (section 6b) so that they are visible
    in a 35-client caseload.
Missing measures
    [6 %] of attended sessions have no measures at all, each instrument is missing at [1.5 %] more,
    and [1.5 %] of item-level questionnaires lack one item (~8-10 % of attended sessions miss a
    measure). Scores that define a planted rupture (sessions r - 1, r and the repair) or a planted
    sudden gain (sessions n, n + 1) are never removed, so the ground truth is always visible.

Size and speed
    The default clinic: 12 clinicians, 416 episodes, 2,453 scheduled sessions (2,124 attended),
    12,104 long-table scores, 0.8 MB of files. 2,000 clinicians over 18 months give ~430,000
    sessions; 4,650 clinicians give 1 million (``generate_clinic`` ~11 s, ``write_clinic`` to CSV
    ~26 s in all, 2.5 GB peak memory, on 2 cores; see ``data/README.md``).

Ground truth
------------
``generate_clinic(...)["ground_truth"]`` is a dict: ``meta`` (a dict: arguments, as-of date,
regenerating command) and the frames ``clinicians`` (planted profile and latent effects per
clinician), ``adaptation_gaps`` (clinician, dimension, group, effects), ``ruptures`` (one row per
planted rupture that happened inside the data: dip date, depth, repaired or not, repair date),
``sudden_gains`` (pregain/postgain dates, magnitudes, reversal), ``clients`` (latent PD, mechanism
of ending, gap membership, days since last attended session) and ``defects`` (``--messy`` only:
the injected export defects with the table, line number and column where the validator should
report them, and the expected severity). ``write_clinic`` stores it as ``ground_truth.json``
(sorted keys, records sorted); :func:`read_ground_truth` reads it back into the same shape.

``--messy`` defects
-------------------
See :data:`MESSY_DEFECTS`. The tables then hold text exactly as it would appear in the file (so a
non-numeric score can be written); rows are never re-sorted after injection, so ``row`` (the line
number, header = 1) is the line in the CSV file and, for Parquet, position + 2.
"""

from __future__ import annotations

import dataclasses
import datetime as _dt
import json
import math
import pathlib
from types import SimpleNamespace
from typing import Any

import numpy as np
import pandas as pd
from scipy import special as _special

__all__ = [
    "DEFAULT_SEED",
    "DEFAULT_START",
    "MESSY_DEFECTS",
    "SynthParams",
    "generate_clinic",
    "write_clinic",
    "read_ground_truth",
    "regenerate_command",
]

DEFAULT_SEED = 20261126
DEFAULT_START = "2024-06-01"
GENERATOR_VERSION = 3

FOCUS_CODES = (
    "check_in",  # 0
    "mood",  # 1  goal areas 1..8
    "anxiety",
    "relationships",
    "self_esteem",
    "trauma",
    "work_study",
    "substance_use",
    "grief",  # 8
    "crisis_risk",  # 9
    "process",  # 10
    "skills",  # 11
    "psychoeducation",  # 12
    "homework_review",  # 13
    "admin_other",  # 14
)
_GOAL_CODES = np.arange(1, 9)
_CI, _CRISIS, _PROCESS, _SKILLS, _PSYED, _HOMEWORK, _ADMIN = 0, 9, 10, 11, 12, 13, 14

IDENTITY_DIMENSIONS = (
    "gender_identity",
    "race_ethnicity",
    "sexual_orientation",
    "religion_spirituality",
    "political_ideology",
    "personality_disorder",
    "age_band",
    "primary_language",
    "disability",
)

# value: probability. personality_disorder is derived from latent PD features (see the docstring).
_IDENTITY_DISTRIBUTIONS: dict[str, dict[str, float]] = {
    "gender_identity": {
        "woman": 0.605, "man": 0.33, "non_binary": 0.015, "trans_woman": 0.005,
        "trans_man": 0.005, "declined": 0.01, "not_recorded": 0.03,
    },
    "race_ethnicity": {
        "white": 0.72, "asian": 0.08, "black": 0.05, "mixed": 0.03, "other": 0.02,
        "declined": 0.03, "not_recorded": 0.07,
    },
    "sexual_orientation": {
        "heterosexual": 0.855, "gay_lesbian": 0.03, "bisexual": 0.035, "other": 0.01,
        "declined": 0.02, "not_recorded": 0.05,
    },
    "religion_spirituality": {
        "christian": 0.36, "none": 0.32, "muslim": 0.06, "hindu": 0.015, "sikh": 0.01,
        "jewish": 0.005, "buddhist": 0.01, "spiritual_not_religious": 0.03, "other": 0.01,
        "declined": 0.04, "not_recorded": 0.14,
    },
    "political_ideology": {
        "left": 0.12, "centre": 0.10, "right": 0.07, "declined": 0.11, "not_recorded": 0.60,
    },
    "age_band": {
        "18-24": 0.20, "25-34": 0.26, "35-44": 0.20, "45-54": 0.16, "55-64": 0.11,
        "65+": 0.06, "not_recorded": 0.01,
    },
    "primary_language": {
        "english": 0.88, "polish": 0.02, "urdu": 0.015, "arabic": 0.015, "bengali": 0.01,
        "spanish": 0.01, "other": 0.03, "not_recorded": 0.02,
    },
    "disability": {"no": 0.70, "yes": 0.18, "declined": 0.03, "not_recorded": 0.09},
}
_MINORITY = {
    "gender_identity": ("non_binary", "trans_woman", "trans_man"),
    "race_ethnicity": ("asian", "black", "mixed", "other"),
    "sexual_orientation": ("gay_lesbian", "bisexual", "other"),
    "religion_spirituality": ("muslim", "hindu", "sikh", "jewish", "buddhist"),
}

SESSION_COLUMNS = (
    ["client_id", "clinician_id", "session_date", "attendance", "modality", "focus_primary",
     "focus_secondary", "agenda_set", "identity_addressed"]
    + [f"srs_{i}" for i in range(1, 5)] + ["srs_total"]
    + [f"ors_{i}" for i in range(1, 5)] + ["ors_total"]
    + [f"wai_{i}" for i in range(1, 13)]
)
CLIENT_COLUMNS = [
    "client_id", "clinician_id", "start_date", "end_date", "end_reason", "agreed_goals",
    *IDENTITY_DIMENSIONS,
]
CLINICIAN_COLUMNS = ["clinician_id", "supervisor_id", "role"]
SCORE_COLUMNS = ["client_id", "session_date", "instrument", "item", "value"]
TABLES = ("clients", "sessions", "clinicians", "scores")

# Long-table instruments: name, number of items, max item score, item weights (share of total).
_LONG_INSTRUMENTS = {
    "core10": (10, 4, np.array([1.15, 1.0, 1.0, 1.1, 1.15, 0.35, 1.15, 1.0, 1.05, 1.05])),
    "gad7": (7, 3, np.array([1.1, 1.0, 1.1, 1.05, 0.8, 1.0, 0.95])),
    "phq9": (9, 3, np.array([1.1, 1.1, 1.25, 1.35, 1.0, 1.0, 0.95, 0.75, 0.45])),
}
_CORE10_REVERSED = (2, 3)  # items stored as raw answers: raw = 4 - scored

_DEFECT_COLUMNS = ["kind", "table", "row", "column", "value", "expected_severity", "description"]

MESSY_DEFECTS = (
    # (kind, table, column, expected severity, what the contract says should happen)
    ("future_date", "sessions", "session_date", "error", "a session dated in the future"),
    ("unknown_attendance", "sessions", "attendance", "error", "attendance code 'rescheduled'"),
    ("duplicate_session", "sessions", "session_date", "error",
     "the same session line exported twice (the later line is quarantined)"),
    ("unknown_client_session", "sessions", "client_id", "error",
     "a session for a client id that is not in clients (typo O for 0)"),
    ("score_out_of_range", "sessions", "srs_3", "warning",
     "an SRS item entered in millimetres (85 instead of 8.5)"),
    ("score_on_cancelled", "sessions", "srs_total", "warning",
     "an SRS total on a cancelled session"),
    ("clinician_mismatch", "sessions", "clinician_id", "warning",
     "a session logged under another clinician"),
    ("session_after_end", "sessions", "session_date", "warning",
     "a session dated after the episode's end date"),
    ("unknown_focus_code", "sessions", "focus_primary", "warning", "focus code 'smalltalk'"),
    ("bad_yes_no", "sessions", "agenda_set", "warning", "agenda_set coded '2'"),
    ("non_numeric_score", "scores", "value", "error", "a score exported as 'n/a'"),
    ("duplicate_score", "scores", "value", "error", "the same score line exported twice"),
    ("unknown_item", "scores", "item", "error",
     "PHQ-9 item 10 (the unscored difficulty question) exported as a score"),
    ("score_without_session", "scores", "session_date", "error",
     "a score dated on a day without a session"),
    ("duplicate_client", "clients", "client_id", "error", "a client line exported twice"),
    ("end_reason_without_end_date", "clients", "end_reason", "warning",
     "an end_reason on an open episode"),
    ("unknown_goal_code", "clients", "agreed_goals", "warning", "goal code 'sleep'"),
    ("day_first_date", "clients", "start_date", "none",
     "a start date written day-first (dd/mm/yyyy, day > 12): valid, must be read correctly"),
)


@dataclasses.dataclass(frozen=True)
class SynthParams:
    """Settings of the generative model (see the module docstring for the sources)."""

    # caseload
    episodes_per_18_months: float = 35.0
    trainee_caseload_factor: float = 0.8
    qualified_caseload_factor: float = 1.15
    # course length and dropout
    p_single_planned: float = 0.14
    course_extra_mean: float = 9.0
    course_size: float = 1.5
    max_sessions: int = 26
    dropout_p_first: float = 0.12
    dropout_p_later: float = 0.032
    dropout_therapist_sd: float = 0.45
    dropout_alliance_beta: float = 0.65
    dropout_pd_or: float = 1.5
    dropout_unrepaired_logodds: float = 1.0
    dropout_trainee_logodds: float = 0.2
    dropout_severity_beta: float = 0.15
    never_closed_p: float = 0.25
    # scheduling
    miss_rate_mean: float = 0.10
    miss_rate_concentration: float = 12.0
    no_show_share: float = 0.55
    # alliance
    srs_mean_deficit: float = 3.8
    srs_client_shape: float = 1.0
    srs_alliance_share: float = 0.8
    srs_drift_sd: float = 0.3
    srs_drift_phi: float = 0.7
    srs_noise_sd: float = 0.5
    srs_ceiling_deficit: float = 1.5
    rupture_min_sds: float = 2.5
    alliance_therapist_sd: float = 0.15
    srs_goal_item_penalty: float = 1.0
    rupture_p: float = 0.22
    rupture_pd_factor: float = 1.5
    repair_p: float = 0.65
    unrepaired_outcome_penalty: float = 3.0
    repair_outcome_bonus: float = 1.0
    # outcome
    ors_intake_mean: float = 17.5
    ors_intake_sd: float = 8.0
    ors_slope_mean: float = 2.9
    ors_slope_sd: float = 2.0
    outcome_therapist_sd: float = 1.05
    alliance_outcome_beta: float = 1.6
    ors_noise_sd: float = 2.5
    sudden_gain_p: float = 0.30
    # measures
    p_phq_gad: float = 0.35
    p_core10: float = 0.20
    p_no_measures: float = 0.06
    p_instrument_missing: float = 0.015
    p_item_missing: float = 0.015
    # identity
    pd_prevalence: float = 0.30
    pd_prevalence_gap_site: float = 0.40
    # planted adaptation gaps
    gap_alliance_factor: float = 2.5
    gap_dropout_logodds: float = 1.4
    gap_slope_penalty: float = 1.2
    # risk items (PHQ-9 item 9, CORE-10 item 6): rare, clustered in clients who get worse [U].
    # In primary-care depression samples about 1 in 5 answer item 9 above 0 at some point (Simon
    # et al. 2013, not re-read); here a client "gets worse" when the true ORS falls risk_worse_points
    # below intake at some session.
    p_risk_base: float = 0.03
    p_risk_worse: float = 0.55
    risk_worse_points: float = 3.0
    p_risk_answer: float = 0.75
    # practice goals set in supervision (ground truth only: goals live in the notes database): on
    # the check-in share, set goal_days_before_end days before the as-of date. Slot 4's check-in
    # share falls to goal_check_in_after from then (a planted improvement); slots 10 and 0 have a
    # goal and no change [U: design choices].
    goal_days_before_end: int = 182
    goal_check_in_after: float = 0.06


# --------------------------------------------------------------------------------------------
# small helpers


def _logit(p: float) -> float:
    return math.log(p / (1.0 - p))


def _segments(lengths: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Owner index and position of every row of concatenated segments, and segment starts."""
    lengths = np.asarray(lengths, dtype=np.int64)
    owner = np.repeat(np.arange(lengths.size), lengths)
    starts = np.cumsum(lengths) - lengths
    pos = np.arange(owner.size, dtype=np.int64) - starts[owner]
    return owner, pos, starts


def _ar1(eps: np.ndarray, pos: np.ndarray, phi: float) -> np.ndarray:
    """Stationary unit-variance AR(1) along each segment (``pos`` = 0 starts a segment)."""
    out = np.asarray(eps, dtype=float).copy()
    if out.size == 0:
        return out
    innov = math.sqrt(1.0 - phi * phi)
    for j in range(1, int(pos.max()) + 1):  # loop over session numbers, vectorised over clients
        at = np.flatnonzero(pos == j)
        out[at] = phi * out[at - 1] + innov * out[at]
    return out


def _ceiling_damping(deficit: np.ndarray, half: float) -> np.ndarray:
    """Share of the full session-to-session SD left at an SRS deficit: sqrt(d / (d + half))."""
    deficit = np.maximum(deficit, 0.0)
    return np.sqrt(deficit / (deficit + half))


def _draw_categorical(rng: np.random.Generator, probs: np.ndarray, n: int | None = None) -> np.ndarray:
    """Category index per row of a (n, k) probability matrix, or n draws from one k-vector."""
    probs = np.asarray(probs, dtype=float)
    if probs.ndim == 1:
        cum = np.cumsum(probs) / probs.sum()
        return np.minimum(np.searchsorted(cum, rng.random(n), side="right"), probs.size - 1)
    cum = np.cumsum(probs, axis=1)
    cum = cum / cum[:, -1:]
    u = rng.random(cum.shape[0])
    return np.minimum((u[:, None] >= cum).sum(axis=1), probs.shape[1] - 1)


def _weekday_shift(days: np.ndarray, start_dow: int) -> np.ndarray:
    """Move Saturdays and Sundays forward to Monday (start_dow = weekday of day 0, Monday = 0)."""
    return days + np.array([0, 0, 0, 0, 0, 2, 1])[(start_dow + days) % 7]


def _add_months(start: _dt.date, months: int) -> _dt.date:
    m = start.month - 1 + months
    year, month = start.year + m // 12, m % 12 + 1
    last = (_dt.date(year + month // 12, month % 12 + 1, 1) - _dt.timedelta(days=1)).day
    return _dt.date(year, month, min(start.day, last))


def _dates(start: np.datetime64, days: np.ndarray) -> np.ndarray:
    return (start + days.astype("timedelta64[D]")).astype("datetime64[s]")


def regenerate_command(seed: int = DEFAULT_SEED, n_clinicians: int = 12, months: int = 18,
                       messy: bool = False, start: str = DEFAULT_START, fmt: str = "csv",
                       out: str = "FOLDER", episodes: float | None = None) -> str:
    """The ``supervision demo`` command line that reproduces a clinic."""
    cmd = (f"supervision demo --out {out} --seed {seed} --clinicians {n_clinicians} "
           f"--months {months} --format {fmt}")
    if episodes is not None and episodes != SynthParams.episodes_per_18_months:
        cmd += f" --episodes {episodes:g}"
    if messy:
        cmd += " --messy"
    if start != DEFAULT_START:
        cmd += f"  (and start={start!r}: only through supervision.synth.write_clinic)"
    return cmd


# --------------------------------------------------------------------------------------------
# the generator


def generate_clinic(seed: int = DEFAULT_SEED, n_clinicians: int = 12, months: int = 18,
                    messy: bool = False, start: str = DEFAULT_START,
                    params: SynthParams | None = None) -> dict[str, Any]:
    """Generate a synthetic clinic in the tables of the data contract.

    Parameters
    ----------
    seed : int
        Seed of ``numpy.random.default_rng``; the same arguments give the same clinic.
    n_clinicians : int
        Number of clinicians (about 35 episodes each per 18 months; 2000 clinicians over 18
        months give about 430,000 sessions).
    months : int
        Length of the period; the as-of date ("today" of the data) is ``start + months``; no date
        in the data is on or after it.
    messy : bool
        Inject the export defects of :data:`MESSY_DEFECTS` (tables become text, see below).
    start : str
        ISO date of the start of the period.
    params : SynthParams, optional
        Settings of the generative model.

    Returns
    -------
    dict
        ``clients``, ``sessions``, ``clinicians``, ``scores`` (DataFrames in the column order and
        row order of the files: clients by ``client_id``; sessions by ``client_id``,
        ``session_date``; scores by ``client_id``, ``session_date``, ``instrument``, item number)
        and ``ground_truth`` (a dict, see the module docstring). Dates are ``datetime64[s]``,
        yes/no columns nullable booleans, SRS/ORS floats with one decimal, WAI-SR and the long
        ``value`` nullable integers; missing = NA. With ``messy=True`` every table column is text
        (``""`` = empty cell), exactly as written to the file.
    """
    p = params or SynthParams()
    if n_clinicians < 1:
        raise ValueError(f"n_clinicians must be at least 1, got {n_clinicians}.")
    if months < 1:
        raise ValueError(f"months must be at least 1, got {months}.")
    start_date = _dt.date.fromisoformat(str(start))
    as_of = _add_months(start_date, int(months))
    if as_of > _dt.date.today():
        raise ValueError(
            f"The period {start_date} + {months} months ends on {as_of}, after today: the demo "
            "clinic must not contain future dates. Use an earlier start or fewer months.")
    period_days = (as_of - start_date).days
    start64 = np.datetime64(start_date.isoformat(), "D")
    start_dow = start_date.weekday()

    root = np.random.default_rng(seed)
    (r_clin, r_client, r_ident, r_course, r_alliance, r_slots, r_dates, r_focus, r_meas,
     r_missing, r_messy, r_risk) = root.spawn(12)  # spawn(12) keeps the first 11 streams as spawn(11) made them

    # The stages run in this order. Each draws only from its own streams; a stream two stages share
    # (r_alliance, r_dates, r_meas, r_missing) is drawn in this order, so a seed gives one clinic.
    c = _Draft(as_of=as_of, messy=messy, months=months, n_clinicians=n_clinicians, period_days=period_days,
               seed=seed, start64=start64, start_date=start_date, start_dow=start_dow)
    _staff(c, p, r_clin)
    _clients(c, p, r_client, r_ident, r_alliance)
    _courses(c, p, r_course, r_alliance)
    _appointments(c, p, r_slots, r_dates)
    _endings(c, p, r_dates)
    _session_focus(c, p, r_focus)
    _measures(c, p, r_meas, r_missing)
    _sessions_table(c)
    _risk(c, p, r_risk)
    _scores_table(c, p, r_meas, r_missing)
    _client_tables(c)
    _ground_truth(c, p)
    out = {"clients": c.clients, "sessions": c.sessions, "clinicians": c.clinicians, "scores": c.scores,
           "ground_truth": c.truth}
    if messy:
        out = _inject_defects(out, r_messy, as_of)
    return out


class _Draft(SimpleNamespace):
    """The arrays of one clinic while it is generated: each stage of :func:`generate_clinic` reads
    what earlier stages kept and keeps what later ones need (names as in the stage's code)."""

    def keep(self, **values: Any) -> None:
        vars(self).update(values)


def _staff(c: _Draft, p: SynthParams, r_clin: np.random.Generator) -> None:
    """Clinicians and their supervisors. A clinician's slot (position mod 12) plants a practice
    pattern: trainee, WAI-SR user, totals only, check-in heavy, high drift, adaptation-gap site;
    therapist effects on outcome, dropout and alliance are drawn per clinician."""
    n_clinicians = c.n_clinicians
    n = int(n_clinicians)
    cidx = np.arange(n)
    w = max(2, len(str(n)))
    clin_ids = np.array([f"T{i + 1:0{w}d}" for i in cidx], dtype=object)
    n_sup = max(1, -(-n // 6))
    ws = max(2, len(str(n_sup)))
    sup_ids = np.array([f"S{i % n_sup + 1:0{ws}d}" for i in cidx], dtype=object)
    slot = cidx % 12
    trainee = np.isin(slot, [1, 4, 5, 8, 11])
    uses_wai = slot % 3 == 0
    totals_only = slot % 4 == 3
    checkin_heavy = np.isin(slot, [4, 10])
    high_drift = slot == 6
    gap_pd = slot == 2
    gap_rel = slot == 7
    u_out = r_clin.normal(0, p.outcome_therapist_sd, n)
    u_drop = r_clin.normal(0, p.dropout_therapist_sd, n)
    u_all = r_clin.normal(0, p.alliance_therapist_sd, n)
    p_checkin = np.where(checkin_heavy, r_clin.uniform(0.30, 0.40, n), r_clin.uniform(0.04, 0.12, n))
    p_drift = np.where(high_drift, 0.22, r_clin.uniform(0.02, 0.07, n))
    stick = np.where(high_drift, 0.30, r_clin.uniform(0.55, 0.85, n))
    p_agenda = np.where(checkin_heavy, r_clin.uniform(0.20, 0.35, n), r_clin.uniform(0.50, 0.85, n))
    id_rate = r_clin.uniform(0.05, 0.15, n)
    c.keep(checkin_heavy=checkin_heavy, cidx=cidx, clin_ids=clin_ids, gap_pd=gap_pd, gap_rel=gap_rel)
    c.keep(high_drift=high_drift, id_rate=id_rate, n=n, p_agenda=p_agenda, p_checkin=p_checkin, p_drift=p_drift)
    c.keep(slot=slot, stick=stick, sup_ids=sup_ids, totals_only=totals_only, trainee=trainee, u_all=u_all)
    c.keep(u_drop=u_drop, u_out=u_out, uses_wai=uses_wai)


def _clients(c: _Draft, p: SynthParams, r_client: np.random.Generator, r_ident: np.random.Generator,
             r_alliance: np.random.Generator) -> None:
    """Client episodes (clinician, start day), identity, agreed goals, measure set, severity at
    intake, alliance level and outcome slope; the planted adaptation gaps act here."""
    cidx, gap_pd, gap_rel, months, n, period_days = c.cidx, c.gap_pd, c.gap_rel, c.months, c.n, c.period_days
    start_dow, trainee, u_all, u_out = c.start_dow, c.trainee, c.u_all, c.u_out
    expected = (p.episodes_per_18_months * months / 18.0
                * np.where(trainee, p.trainee_caseload_factor, p.qualified_caseload_factor))
    n_eps = np.round(expected * r_client.uniform(0.85, 1.15, n)).astype(np.int64)
    clin_raw = np.repeat(cidx, n_eps)
    sday_raw = r_client.integers(0, period_days, clin_raw.size)
    sday_raw = _weekday_shift(sday_raw, start_dow)
    sday_raw = np.where(sday_raw >= period_days, sday_raw - 3, sday_raw)  # Sat/Sun at the very end
    order = np.lexsort((clin_raw, sday_raw))
    clin = clin_raw[order]
    sday = sday_raw[order]
    N = clin.size
    cw = max(5, len(str(N)))
    client_ids = np.array([f"C{i + 1:0{cw}d}" for i in range(N)], dtype=object) if N else np.array([], dtype=object)

    # identity
    ident: dict[str, np.ndarray] = {}
    for dim, dist in _IDENTITY_DISTRIBUTIONS.items():
        vals = np.array(list(dist), dtype=object)
        probs = np.array(list(dist.values()), dtype=float)
        probs = np.broadcast_to(probs, (N, probs.size)).copy()
        if dim == "religion_spirituality":
            m = list(dist).index("muslim")
            site = gap_rel[clin]
            probs[site] *= (1 - 0.30) / (1 - probs[site, m])[:, None]
            probs[site, m] = 0.30
        ident[dim] = vals[_draw_categorical(r_ident, probs)]
    pd_true = r_ident.random(N) < np.where(gap_pd[clin], p.pd_prevalence_gap_site, p.pd_prevalence)
    pd_rec = np.where(r_ident.random(N) < 0.15, "not_recorded", np.where(pd_true, "yes", "no"))
    ident["personality_disorder"] = pd_rec.astype(object)
    minority = np.zeros(N, dtype=bool)
    for dim, groups in _MINORITY.items():
        minority |= np.isin(ident[dim], groups)
    in_gap = (gap_pd[clin] & pd_true) | (gap_rel[clin] & (ident["religion_spirituality"] == "muslim"))

    # agreed goals: 1-3 distinct goal areas (Gumbel top-k)
    goal_w = np.array([0.26, 0.26, 0.14, 0.12, 0.07, 0.07, 0.03, 0.05])
    n_goals = _draw_categorical(r_client, np.array([0.45, 0.35, 0.20]), N)
    n_goals = n_goals + 1
    keys = np.log(goal_w)[None, :] + r_client.gumbel(size=(N, 8))
    goals = _GOAL_CODES[np.argsort(-keys, axis=1)[:, :3]]  # (N, 3) codes, first = main goal
    agreed_mask = np.zeros((N, 15), dtype=bool)
    for j in range(3):
        has = n_goals > j
        agreed_mask[np.arange(N)[has], goals[has, j]] = True
    codes = np.array(FOCUS_CODES, dtype=object)
    agreed_str = codes[goals[:, 0]].copy()
    for j in (1, 2):
        agreed_str = np.where(n_goals > j, agreed_str + ";" + codes[goals[:, j]], agreed_str)

    # measure set and recording style
    u = r_client.random(N)
    mset = np.where(u < p.p_phq_gad, 1, np.where(u < p.p_phq_gad + p.p_core10, 2, 0))  # 1 phq/gad, 2 core10
    modality_pref = _draw_categorical(r_client, np.array([0.55, 0.35, 0.10]), N)

    # severity at intake
    W0 = np.clip(r_client.normal(p.ors_intake_mean, p.ors_intake_sd, N), 0.5, 39.0)
    dz0 = (p.ors_intake_mean - W0) / p.ors_intake_sd  # distress z
    e1, e2, e3 = r_client.standard_normal((3, N))
    phq0 = np.clip(11 + 6 * (0.7 * dz0 + 0.714 * e1), 0, 27)
    gad0 = np.clip(11 + 5 * (0.7 * dz0 + 0.714 * (0.6 * e1 + 0.8 * e2)), 0, 21)
    core0 = np.clip(19.7 + 7.7 * (0.75 * dz0 + 0.66 * e3), 0, 40)

    # alliance level and outcome slope
    eta = r_alliance.standard_normal(N)  # the client's alliance (z): drives outcome and, via SRS, dropout
    b = (p.ors_slope_mean + u_out[clin] + r_alliance.normal(0, p.ors_slope_sd, N)
         - p.alliance_outcome_beta * eta - 0.8 * pd_true - p.gap_slope_penalty * in_gap)
    # SRS level: the alliance plus the client's own rating style (ceiling responding), Gamma-distributed
    style = r_alliance.standard_normal(N)
    z_srs = p.srs_alliance_share * eta + math.sqrt(1.0 - p.srs_alliance_share ** 2) * style
    s_all = (p.srs_mean_deficit / p.srs_client_shape
             * _special.gammaincinv(p.srs_client_shape, _special.ndtr(z_srs))
             * np.exp(u_all[clin]) * np.where(pd_true, 1.15, 1.0)
             * np.where(in_gap, p.gap_alliance_factor, 1.0))
    # the client's own session-to-session SD of the SRS total without a rupture (drift + reading)
    srs_sd = math.hypot(p.srs_drift_sd, p.srs_noise_sd) * _ceiling_damping(s_all, p.srs_ceiling_deficit)
    c.keep(N=N, W0=W0, agreed_mask=agreed_mask, agreed_str=agreed_str, b=b, client_ids=client_ids, clin=clin)
    c.keep(codes=codes, core0=core0, dz0=dz0, gad0=gad0, goal_w=goal_w, goals=goals, ident=ident, in_gap=in_gap)
    c.keep(minority=minority, modality_pref=modality_pref, mset=mset, n_goals=n_goals, pd_true=pd_true, phq0=phq0)
    c.keep(s_all=s_all, sday=sday, srs_sd=srs_sd)


def _courses(c: _Draft, p: SynthParams, r_course: np.random.Generator, r_alliance: np.random.Generator) -> None:
    """Each episode's planned course: length, planted ruptures (and repairs), sudden gains, the
    alliance session by session, and dropout after an attended session."""
    N, W0, b, clin, dz0, in_gap, pd_true, s_all = c.N, c.W0, c.b, c.clin, c.dz0, c.in_gap, c.pd_true, c.s_all
    srs_sd, trainee, u_drop = c.srs_sd, c.trainee, c.u_drop
    zb = (b - p.ors_slope_mean) / p.ors_slope_sd
    single = r_course.random(N) < p.p_single_planned
    mean_extra = p.course_extra_mean * np.exp(-0.15 * zb)
    extra = r_course.negative_binomial(p.course_size, p.course_size / (p.course_size + mean_extra))
    L = np.where(single, 1, np.minimum(2 + extra, p.max_sessions))

    rupt = (L >= 4) & (r_course.random(N) < p.rupture_p * np.where(pd_true, p.rupture_pd_factor, 1.0))
    r_hi = np.clip(np.minimum(L - 1, 12), 2, None)
    r_k = 2 + np.floor(r_course.random(N) * (r_hi - 1)).astype(np.int64)
    # 4-8 SRS points, and at least 2.5 of the client's own session-to-session SDs
    r_depth = np.minimum(np.maximum(r_course.uniform(4.0, 8.0, N), p.rupture_min_sds * srs_sd), 20.0)
    r_repair = r_course.random(N) < p.repair_p
    r_lag = np.where(r_course.random(N) < 0.75, 1, 2)
    r_k = np.where(rupt, r_k, 0)

    sg = (L >= 5) & (W0 <= 25) & (r_course.random(N) < p.sudden_gain_p)
    sg_n = 2 + _draw_categorical(r_course, np.array([0.15, 0.25, 0.25, 0.20, 0.15]), N)
    sg_n = np.minimum(sg_n, L - 2)
    sg_u = r_course.random(N)
    sg_rev = sg & (r_course.random(N) < 0.20)
    sg_rev_k = sg_n + 2 + (r_course.random(N) < 0.5)  # reversal visible from session n+3 or n+4

    # attended rows of the planned course (k = 1..L)
    own, pos, seg_start = _segments(L)
    k = pos + 1
    trend = np.exp(-0.05 * (np.minimum(k, 5) - 1))
    D = s_all[own] * trend
    drift = _ar1(r_alliance.standard_normal(own.size), pos, p.srs_drift_phi)
    D = np.maximum(D + p.srs_drift_sd * _ceiling_damping(D, p.srs_ceiling_deficit) * drift, 0.0)
    ro = rupt[own]
    rk = r_k[own]
    rep = r_repair[own]
    dip = ro & ((rep & (k >= rk) & (k < rk + r_lag[own])) | (~rep & (k == rk)))
    residual = ro & ~rep & (k > rk)
    D = D + r_depth[own] * dip + 0.7 * r_depth[own] * residual

    # dropout hazard after each attended session (not after the last planned one)
    zdef = np.minimum((D - p.srs_mean_deficit) / p.srs_mean_deficit, 4.0)
    logit_h = (np.where(k == 1, _logit(p.dropout_p_first), _logit(p.dropout_p_later))
               + u_drop[clin[own]] + p.dropout_alliance_beta * zdef
               + math.log(p.dropout_pd_or) * pd_true[own]
               + p.dropout_unrepaired_logodds * (ro & ~rep & (k >= rk))
               + p.dropout_trainee_logodds * trainee[clin[own]]
               + p.dropout_severity_beta * dz0[own]
               + p.gap_dropout_logodds * in_gap[own])
    event = (r_course.random(own.size) < 1.0 / (1.0 + np.exp(-logit_h))) & (k < L[own])
    big = np.int64(10 ** 6)
    first_event = np.minimum.reduceat(np.where(event, k, big), seg_start) if N else np.zeros(0, np.int64)
    dropout = first_event < L
    A0 = np.minimum(first_event, L)
    c.keep(A0=A0, D=D, L=L, dropout=dropout, k=k, own=own, r_depth=r_depth, r_k=r_k, r_lag=r_lag, r_repair=r_repair)
    c.keep(rupt=rupt, sg=sg, sg_n=sg_n, sg_rev=sg_rev, sg_rev_k=sg_rev_k, sg_u=sg_u)


def _appointments(c: _Draft, p: SynthParams, r_slots: np.random.Generator, r_dates: np.random.Generator) -> None:
    """Appointment slots (attended, cancelled, no-show, misses after a dropout) and their dates;
    slots on or after the as-of date are cut off (the episode is censored)."""
    A0, L, N, dropout, k, own, period_days, sday = c.A0, c.L, c.N, c.dropout, c.k, c.own, c.period_days, c.sday
    start_dow = c.start_dow
    keep = k <= A0[own]
    a_rows = np.flatnonzero(keep)  # attended rows that are scheduled
    q = r_slots.beta(p.miss_rate_mean * p.miss_rate_concentration,
                     (1 - p.miss_rate_mean) * p.miss_rate_concentration, N)
    q = np.minimum(q * np.where(dropout, 1.5, 1.0), 0.6)
    n_miss = np.where(k[a_rows] == 1, 0,
                      np.minimum(r_slots.negative_binomial(1, 1 - q[own[a_rows]]), 4))
    n_trail = np.where(dropout, _draw_categorical(r_slots, np.array([0.4, 0.45, 0.15]), N), 0)
    b_own, b_pos, _ = _segments(n_miss + 1)
    blk_row = a_rows[b_own]
    blk_client = own[blk_row]
    blk_att = b_pos == n_miss[b_own]
    blk_key = k[blk_row] * 8 + b_pos
    t_own, t_pos, _ = _segments(n_trail)
    s_client = np.concatenate([blk_client, t_own])
    s_key = np.concatenate([blk_key, (A0[t_own] + 1) * 8 + t_pos])
    s_att = np.concatenate([blk_att, np.zeros(t_own.size, bool)])
    s_row = np.concatenate([blk_row, np.full(t_own.size, -1)])
    s_trail = np.concatenate([np.zeros(blk_client.size, bool), np.ones(t_own.size, bool)])
    o = np.lexsort((s_key, s_client))
    s_client, s_att, s_row, s_trail = s_client[o], s_att[o], s_row[o], s_trail[o]
    S = s_client.size
    miss_type = np.where(s_trail, r_slots.random(S) < 0.75, r_slots.random(S) < p.no_show_share)
    attendance = np.where(s_att, 0, np.where(miss_type, 2, 1))  # 0 attended, 1 cancelled, 2 no_show

    # intervals and dates
    rhythm = _draw_categorical(r_dates, np.array([0.6, 0.3, 0.1]), N)
    rs = rhythm[s_client]
    iv = np.where(rs == 0, 7 + r_dates.choice(np.array([-1, 0, 0, 0, 1]), S),
                  np.where(rs == 1, 14 + r_dates.integers(-2, 3, S), r_dates.integers(21, 36, S)))
    completed_course = ~dropout & (L >= 4)
    s_k = np.where(s_row >= 0, k[np.maximum(s_row, 0)], 0)
    taper = completed_course[s_client] & s_att & (s_k >= A0[s_client] - 1)
    iv = np.where(taper, np.round(iv * 1.5).astype(np.int64), iv)
    first_slot = np.ones(S, bool)
    first_slot[1:] = s_client[1:] != s_client[:-1]
    iv = np.where(first_slot, 0, iv)
    cs = np.cumsum(iv)
    cs_first = np.maximum.accumulate(np.where(first_slot, np.arange(S), 0))
    day = sday[s_client] + cs - cs[cs_first]
    day = _weekday_shift(day, start_dow)
    inside = day < period_days
    censored = np.zeros(N, bool)
    np.logical_or.at(censored, s_client[~inside], True)
    s_client, s_att, s_row, day, attendance, s_trail = (
        s_client[inside], s_att[inside], s_row[inside], day[inside], attendance[inside], s_trail[inside])
    S = s_client.size
    A = np.bincount(s_client[s_att], minlength=N)
    last_day = np.full(N, -1, np.int64)
    np.maximum.at(last_day, s_client, day)
    last_att_day = np.full(N, -1, np.int64)
    np.maximum.at(last_att_day, s_client[s_att], day[s_att])
    c.keep(A=A, S=S, attendance=attendance, censored=censored, day=day, last_att_day=last_att_day)
    c.keep(last_day=last_day, s_att=s_att, s_client=s_client, s_row=s_row)


def _endings(c: _Draft, p: SynthParams, r_dates: np.random.Generator) -> None:
    """How each episode ended (completed, planned single session, dropout, censored), its end
    date and end reason."""
    L, N, censored, dropout, last_day, period_days = c.L, c.N, c.censored, c.dropout, c.last_day, c.period_days
    # endings
    mech = np.where(censored, 3, np.where(dropout, 2, np.where(L == 1, 1, 0)))  # 0 completed, 1 planned single, 2 dropout, 3 censored
    lag = np.where(mech == 2, r_dates.integers(14, 121, N),
                   np.where(r_dates.random(N) < 0.6, 0, r_dates.integers(1, 15, N)))
    never = (mech == 2) & (r_dates.random(N) < p.never_closed_p)
    end_day = last_day + lag
    closed = (mech != 3) & ~never & (end_day < period_days)
    reasons = np.array(["planned", "mutual", "unilateral", "referred_on", "other"], dtype=object)
    reason_completed = _draw_categorical(r_dates, np.array([0.72, 0.18, 0.0, 0.07, 0.03]), N)
    reason_single = _draw_categorical(r_dates, np.array([0.65, 0.25, 0.0, 0.10, 0.0]), N)
    reason_drop = np.where(r_dates.random(N) < 0.9, 2, 4)
    reason = np.where(mech == 0, reason_completed, np.where(mech == 1, reason_single, reason_drop))
    c.keep(closed=closed, end_day=end_day, mech=mech, reason=reason, reasons=reasons)


def _session_focus(c: _Draft, p: SynthParams, r_focus: np.random.Generator) -> None:
    """Each attended session's focus (primary and secondary codes), agenda set and identity
    addressed, and every slot's modality; the planted practice goals act here."""
    S, agreed_mask, checkin_heavy, clin, codes, day = c.S, c.agreed_mask, c.checkin_heavy, c.clin, c.codes, c.day
    goal_w, goals, id_rate, in_gap, k, minority = c.goal_w, c.goals, c.id_rate, c.in_gap, c.k, c.minority
    modality_pref, n_goals, own, p_agenda, p_checkin = c.modality_pref, c.n_goals, c.own, c.p_agenda, c.p_checkin
    p_drift, pd_true, period_days, r_k, r_lag = c.p_drift, c.pd_true, c.period_days, c.r_k, c.r_lag
    r_repair, rupt, s_att, s_client, s_row, slot = c.r_repair, c.rupt, c.s_att, c.s_client, c.s_row, c.slot
    stick = c.stick
    att_idx = np.flatnonzero(s_att)  # positions in the slot arrays
    ar = s_row[att_idx]  # rows of the course arrays
    ac = own[ar]
    ak = k[ar]
    ajc = clin[ac]
    M = ar.size

    # focus
    agenda = r_focus.random(M) < p_agenda[ajc]
    red = np.where(agenda, 0.6, 1.0)
    first = ak == 1
    rk_a, lag_a = r_k[ac], r_lag[ac]
    repair_session = rupt[ac] & r_repair[ac] & (ak == rk_a + lag_a)
    after_unrep = rupt[ac] & ~r_repair[ac] & (ak == rk_a + 1)
    p_ci = np.where(first, 0.02, p_checkin[ajc] * red)
    goal_day = period_days - p.goal_days_before_end
    goal_improver, goal_null = slot == 4, np.isin(slot, [10, 0])
    p_ci = np.where(goal_improver[ajc] & (day[att_idx] > goal_day) & ~first, p.goal_check_in_after * red, p_ci)
    p_dr = np.where(first, 0.03, p_drift[ajc] * red)
    p_te = np.where(first, 0.08, 0.13)
    p_pr = np.where(first, 0.0, 0.02 + 0.5 * repair_session + 0.15 * after_unrep)
    p_cr = 0.015 + 0.03 * pd_true[ac] + 0.015 * first
    p_ad = np.where(first, 0.08, 0.015)
    p_goal = np.clip(1 - (p_ci + p_dr + p_te + p_pr + p_cr + p_ad), 0.05, None)
    cat = _draw_categorical(r_focus, np.column_stack([p_ci, p_dr, p_te, p_pr, p_cr, p_ad, p_goal]))
    change = first | (r_focus.random(M) > stick[ajc])
    pick = np.where(r_focus.random(M) < 0.5, 0, np.floor(r_focus.random(M) * n_goals[ac]).astype(np.int64))
    carry = np.maximum.accumulate(np.where(change, np.arange(M), 0)) if M else np.zeros(0, np.int64)
    gpick = pick[carry]
    goal_code = goals[ac, gpick]
    drift_code = _GOAL_CODES[_draw_categorical(r_focus, goal_w, M)]
    for _ in range(8):
        clash = agreed_mask[ac, drift_code]
        if not clash.any():
            break
        drift_code = np.where(clash, (drift_code % 8) + 1, drift_code)
    tech = np.where(first, _PSYED,
                    np.array([_SKILLS, _PSYED, _HOMEWORK])[_draw_categorical(r_focus, np.array([0.4, 0.25, 0.35]), M)])
    primary = np.select(
        [cat == 0, cat == 1, cat == 2, cat == 3, cat == 4, cat == 5],
        [_CI, drift_code, tech, _PROCESS, _CRISIS, _ADMIN], default=goal_code)
    off_goal = (cat == 0) | (cat == 1) | (cat == 5)
    # secondary codes
    n_sec = _draw_categorical(r_focus, np.array([0.45, 0.40, 0.15]), M)
    other_goal = goals[ac, (gpick + 1) % n_goals[ac]]
    sec_p = np.column_stack([
        np.full(M, 0.30), np.full(M, 0.20), np.full(M, 0.12),
        np.where(checkin_heavy[ajc], 0.35, 0.13), np.full(M, 0.20), np.full(M, 0.05)])
    sec_codes = np.column_stack([np.full(M, _HOMEWORK), np.full(M, _SKILLS), np.full(M, _PSYED),
                                 np.full(M, _CI), other_goal, np.full(M, _PROCESS)])
    c1 = sec_codes[np.arange(M), _draw_categorical(r_focus, sec_p)]
    c2 = sec_codes[np.arange(M), _draw_categorical(r_focus, sec_p)]
    v1 = (n_sec >= 1) & (c1 != primary)
    v2 = (n_sec >= 2) & (c2 != primary) & (c2 != c1)
    s1, s2 = codes[c1], codes[c2]
    secondary = np.where(v1 & v2, s1 + ";" + s2, np.where(v1, s1, np.where(v2, s2, "")))
    p_id = (id_rate[ajc] * np.where(ak <= 2, 2.5, 1.0) * np.where(minority[ac], 1.5, 1.0)
            * np.where(in_gap[ac], 0.15, 1.0))
    identity_addr = r_focus.random(M) < np.minimum(p_id, 0.9)
    modality = np.where(r_focus.random(S) < 0.8, modality_pref[s_client],
                        _draw_categorical(r_focus, np.array([0.55, 0.35, 0.10]), S))
    c.keep(M=M, ac=ac, agenda=agenda, ajc=ajc, ak=ak, ar=ar, att_idx=att_idx, goal_day=goal_day)
    c.keep(goal_improver=goal_improver, goal_null=goal_null, identity_addr=identity_addr, lag_a=lag_a)
    c.keep(modality=modality, off_goal=off_goal, primary=primary, rk_a=rk_a, secondary=secondary)


def _measures(c: _Draft, p: SynthParams, r_meas: np.random.Generator, r_missing: np.random.Generator) -> None:
    """True and observed SRS, WAI-SR and ORS of each attended session, the long instruments'
    true scores, and which measures are missing (never at a planted rupture or sudden gain)."""
    D, M, N, W0, ac, ak, ar, b, core0, gad0 = c.D, c.M, c.N, c.W0, c.ac, c.ak, c.ar, c.b, c.core0, c.gad0
    lag_a, off_goal, phq0, r_repair, rk_a, rupt, sg = c.lag_a, c.off_goal, c.phq0, c.r_repair, c.rk_a, c.rupt, c.sg
    sg_n, sg_rev, sg_rev_k, sg_u = c.sg_n, c.sg_rev, c.sg_rev_k, c.sg_u
    # SRS
    Da = D[ar]
    shares = np.array([0.20, 0.27, 0.27, 0.26])
    damp = _ceiling_damping(Da, p.srs_ceiling_deficit)
    noise_sd = p.srs_noise_sd * damp  # reading error of the total, shared out over the items
    d_items = (Da[:, None] * shares[None, :]
               + r_meas.normal(0, 1.0, (M, 4)) * np.sqrt(shares)[None, :] * noise_sd[:, None])
    d_items[:, 1] += off_goal * r_meas.uniform(0.6, 1.4, M) * p.srs_goal_item_penalty * damp
    d_items = np.where(d_items < 0.15, 0.0, d_items)
    srs_items = np.round(np.clip(10 - d_items, 0, 10), 1)
    srs_total = np.round(srs_items.sum(axis=1), 1)

    # WAI-SR
    goal_items = np.zeros(12, bool)
    goal_items[[3, 5, 7, 10]] = True  # items 4, 6, 8, 11
    wdef = 0.32 * Da ** 0.7
    wai_client = r_meas.normal(0, 0.35, N)
    wai = np.clip(np.round(5 - wdef[:, None] - wai_client[ac][:, None] - 0.5 * (off_goal[:, None] & goal_items[None, :])
                           - np.abs(r_meas.normal(0, 0.55, (M, 12)))), 1, 5)

    # outcome
    lnk = np.log(ak)
    room = (40 - W0[ac]) / 22.5
    unrep_pen = np.where(rupt[ac] & ~r_repair[ac] & (ak > rk_a),
                         p.unrepaired_outcome_penalty * (lnk - np.log(np.maximum(rk_a, 1))), 0.0)
    rep_bonus = np.where(rupt[ac] & r_repair[ac] & (ak >= rk_a + lag_a),
                         p.repair_outcome_bonus * (lnk - np.log(np.maximum(rk_a + lag_a, 1))), 0.0)
    W_base = W0[ac] + b[ac] * lnk * room - unrep_pen + rep_bonus
    sg_frac = (sg[ac] & (ak >= sg_n[ac] + 1)) * np.where(sg_rev[ac] & (ak >= sg_rev_k[ac]), 0.4, 1.0)
    su = sg_u[ac]
    W = np.clip(W_base + (7 + 4 * su) * sg_frac, 0, 40)
    W_obs = np.clip(W + r_meas.normal(0, p.ors_noise_sd, M), 0, 40)
    ors_items = np.round(np.clip(W_obs[:, None] / 4 + r_meas.normal(0, 0.7, (M, 4)), 0, 10), 1)
    ors_total = np.round(ors_items.sum(axis=1), 1)
    dW = W_base - W0[ac]
    long_true = {
        "phq9": np.clip(phq0[ac] - 0.60 * dW - (6 + 3 * su) * sg_frac + r_meas.normal(0, 1.8, M), 0, 27),
        "gad7": np.clip(gad0[ac] - 0.50 * dW - (4 + 3 * su) * sg_frac + r_meas.normal(0, 1.1, M), 0, 21),
        "core10": np.clip(core0[ac] - 0.77 * dW - (6 + 4 * su) * sg_frac + r_meas.normal(0, 2.0, M), 0, 40),
    }

    # missing measures (never at sessions that define a planted rupture or sudden gain)
    prot_srs = rupt[ac] & ((ak == rk_a - 1) | (ak == rk_a) | (r_repair[ac] & (ak == rk_a + lag_a)))
    prot_out = sg[ac] & ((ak == sg_n[ac]) | (ak == sg_n[ac] + 1))
    none = r_missing.random(M) < p.p_no_measures
    miss = {name: none | (r_missing.random(M) < p.p_instrument_missing)
            for name in ("srs", "ors", "wai", "phq9", "gad7", "core10")}
    miss["srs"] &= ~prot_srs
    miss["wai"] &= ~prot_srs
    for name in ("ors", "phq9", "gad7", "core10"):
        miss[name] &= ~prot_out
    c.keep(dW=dW, long_true=long_true, miss=miss, ors_items=ors_items, ors_total=ors_total, prot_out=prot_out)
    c.keep(srs_items=srs_items, srs_total=srs_total, wai=wai)


def _sessions_table(c: _Draft) -> None:
    """The ``sessions`` table: one row per slot, focus and wide measures on attended rows."""
    S, agenda, ajc, att_idx, attendance, client_ids = c.S, c.agenda, c.ajc, c.att_idx, c.attendance, c.client_ids
    clin, clin_ids, codes, day, identity_addr, miss = c.clin, c.clin_ids, c.codes, c.day, c.identity_addr, c.miss
    modality, ors_items, ors_total, primary, s_client = c.modality, c.ors_items, c.ors_total, c.primary, c.s_client
    secondary, srs_items, srs_total, start64 = c.secondary, c.srs_items, c.srs_total, c.start64
    totals_only, uses_wai, wai = c.totals_only, c.uses_wai, c.wai
    tot_only_a = totals_only[ajc]
    sess_clin = clin[s_client]
    sess = {
        "client_id": client_ids[s_client],
        "clinician_id": clin_ids[sess_clin],
        "session_date": _dates(start64, day),
        "attendance": np.array(["attended", "cancelled", "no_show"], dtype=object)[attendance],
        "modality": np.array(["in_person", "video", "phone"], dtype=object)[modality],
    }
    sessions = pd.DataFrame(sess)

    def _on_attended(values: np.ndarray, mask: np.ndarray, dtype: str) -> Any:
        out = np.full(S, np.nan)
        out[att_idx] = np.where(mask, np.nan, values)
        if dtype == "Int64":
            return pd.Series(out).astype("Int64").array
        return out

    fp = np.full(S, None, dtype=object)
    fp[att_idx] = codes[primary]
    fs = np.full(S, None, dtype=object)
    fs[att_idx] = np.where(secondary == "", None, secondary)
    sessions["focus_primary"] = pd.array(fp, dtype="str")
    sessions["focus_secondary"] = pd.array(fs, dtype="str")
    for name, vals in (("agenda_set", agenda), ("identity_addressed", identity_addr)):
        arr = pd.array(np.full(S, None, dtype=object), dtype="boolean")
        arr[att_idx] = vals
        sessions[name] = arr
    srs_item_miss = miss["srs"] | tot_only_a
    for i in range(4):
        sessions[f"srs_{i + 1}"] = _on_attended(srs_items[:, i], srs_item_miss, "float")
    sessions["srs_total"] = _on_attended(srs_total, miss["srs"] | ~tot_only_a, "float")
    ors_item_miss = miss["ors"] | tot_only_a
    for i in range(4):
        sessions[f"ors_{i + 1}"] = _on_attended(ors_items[:, i], ors_item_miss, "float")
    sessions["ors_total"] = _on_attended(ors_total, miss["ors"] | ~tot_only_a, "float")
    wai_miss = miss["wai"] | ~uses_wai[ajc]
    for i in range(12):
        sessions[f"wai_{i + 1}"] = _on_attended(wai[:, i], wai_miss, "Int64")
    sessions = sessions[SESSION_COLUMNS]
    c.keep(sessions=sessions, tot_only_a=tot_only_a)


def _risk(c: _Draft, p: SynthParams, r_risk: np.random.Generator) -> None:
    """Planted risk: a client at risk answers the risk items above 0 from an onset session on;
    risk is rare, and far more likely in clients who get worse."""
    A, M, N, ac, ak, dW = c.A, c.M, c.N, c.ac, c.ak, c.dW
    # A client at risk answers the risk items above 0 from an onset session on (at most sessions);
    # everyone else answers 0. Risk is rare, and far more likely in clients who get worse.
    worst = np.full(N, np.inf)
    np.minimum.at(worst, ac, dW)
    worse = worst <= -p.risk_worse_points
    at_risk = r_risk.random(N) < np.where(worse, p.p_risk_worse, p.p_risk_base)
    first_worse = np.full(N, np.iinfo(np.int64).max)
    np.minimum.at(first_worse, ac, np.where(dW <= -p.risk_worse_points, ak, np.iinfo(np.int64).max))
    onset = np.where(worse, first_worse, 1 + (r_risk.random(N) * np.maximum(A, 1)).astype(np.int64))
    risk_on = at_risk[ac] & (ak >= onset[ac]) & (r_risk.random(M) < p.p_risk_answer)
    risk_answer = np.where(risk_on, _draw_categorical(r_risk, np.array([0.65, 0.27, 0.08]), M) + 1, 0)
    risk_item_number = {"phq9": 9, "core10": 6}
    c.keep(risk_item_number=risk_item_number, at_risk=at_risk, risk_answer=risk_answer, risk_on=risk_on, worse=worse)


def _scores_table(c: _Draft, p: SynthParams, r_meas: np.random.Generator, r_missing: np.random.Generator) -> None:
    """The long ``scores`` table: PHQ-9, GAD-7 or CORE-10 items (or totals only) of attended sessions."""
    risk_item_number, ac, att_idx, client_ids, day = c.risk_item_number, c.ac, c.att_idx, c.client_ids, c.day
    long_true, miss, mset, prot_out, risk_answer = c.long_true, c.miss, c.mset, c.prot_out, c.risk_answer
    start64, tot_only_a = c.start64, c.tot_only_a
    parts = []
    for code_i, (name, (n_items, top, weights)) in enumerate(_LONG_INSTRUMENTS.items()):
        has = (mset[ac] == (2 if name == "core10" else 1)) & ~miss[name]
        rows = np.flatnonzero(has)
        T = long_true[name][rows]
        tot = tot_only_a[rows]
        wts = weights / weights.sum()
        # item level
        ir = rows[~tot]
        it = T[~tot]
        item_vals = np.clip(np.round(it[:, None] * wts[None, :] + r_meas.normal(0, 0.35, (ir.size, n_items))), 0, top)
        if name in risk_item_number:
            item_vals[:, risk_item_number[name] - 1] = risk_answer[ir]
        if name == "core10":
            for j in _CORE10_REVERSED:
                item_vals[:, j - 1] = top - item_vals[:, j - 1]
        drop_item = np.full((ir.size, n_items), False)
        omit = r_missing.random(ir.size) < p.p_item_missing
        omit &= ~prot_out[ir]
        drop_item[np.flatnonzero(omit), r_missing.integers(0, n_items, int(omit.sum()))] = True
        rr, jj = np.nonzero(~drop_item)
        parts.append((ir[rr], np.full(rr.size, code_i), jj + 1, item_vals[rr, jj]))
        # totals only
        tr = rows[tot]
        parts.append((tr, np.full(tr.size, code_i), np.full(tr.size, 99), np.round(T[tot])))
    sc_row = np.concatenate([x[0] for x in parts]).astype(np.int64)
    sc_inst = np.concatenate([x[1] for x in parts]).astype(np.int64)
    sc_item = np.concatenate([x[2] for x in parts]).astype(np.int64)
    sc_val = np.concatenate([x[3] for x in parts]).astype(np.int64)
    o = np.lexsort((sc_item, sc_inst, sc_row))  # attended rows are in client/date order
    sc_row, sc_inst, sc_item, sc_val = sc_row[o], sc_inst[o], sc_item[o], sc_val[o]
    item_names = np.array(["total" if i == 99 else str(i) for i in range(100)], dtype=object)
    scores = pd.DataFrame({
        "client_id": client_ids[ac[sc_row]],
        "session_date": _dates(start64, day[att_idx[sc_row]]),
        "instrument": np.array(list(_LONG_INSTRUMENTS), dtype=object)[sc_inst],
        "item": item_names[sc_item],
        "value": pd.array(sc_val, dtype="Int64"),
    })
    c.keep(scores=scores)


def _client_tables(c: _Draft) -> None:
    """The ``clients`` and ``clinicians`` tables."""
    agreed_str, client_ids, clin, clin_ids, closed = c.agreed_str, c.client_ids, c.clin, c.clin_ids, c.closed
    end_day, ident, reason, reasons, sday, start64 = c.end_day, c.ident, c.reason, c.reasons, c.sday, c.start64
    sup_ids, trainee = c.sup_ids, c.trainee
    end_dates = pd.Series(_dates(start64, end_day)).where(closed)
    clients = pd.DataFrame({
        "client_id": client_ids,
        "clinician_id": clin_ids[clin],
        "start_date": _dates(start64, sday),
        "end_date": end_dates.to_numpy(),
        "end_reason": pd.array(np.where(closed, reasons[reason], None), dtype="str"),
        "agreed_goals": agreed_str,
        **{dim: ident[dim] for dim in IDENTITY_DIMENSIONS},
    })[CLIENT_COLUMNS]
    clinicians = pd.DataFrame({
        "clinician_id": clin_ids,
        "supervisor_id": sup_ids,
        "role": np.where(trainee, "trainee", "qualified").astype(object),
    })
    c.keep(clients=clients, clinicians=clinicians)


def _ground_truth(c: _Draft, p: SynthParams) -> None:
    """The ground truth: what was planted (clinicians' patterns, adaptation gaps, ruptures, sudden
    gains, clients' mechanisms, risk, practice goals) and the clinic's meta data."""
    A, L, M, N, S, ac, ak, as_of, at_risk = c.A, c.L, c.M, c.N, c.S, c.ac, c.ak, c.as_of, c.at_risk
    att_idx, checkin_heavy, client_ids, clin = c.att_idx, c.checkin_heavy, c.client_ids, c.clin
    clin_ids, clinicians, closed, day, gap_pd = c.clin_ids, c.clinicians, c.closed, c.day, c.gap_pd
    gap_rel, goal_day, goal_improver, goal_null = c.gap_rel, c.goal_day, c.goal_improver, c.goal_null
    high_drift, in_gap, last_att_day, mech, messy = c.high_drift, c.in_gap, c.last_att_day, c.mech, c.messy
    months, mset, n, p_agenda, p_checkin, p_drift = c.months, c.mset, c.n, c.p_agenda, c.p_checkin, c.p_drift
    pd_true, period_days, r_depth, r_k, r_lag = c.pd_true, c.period_days, c.r_depth, c.r_k, c.r_lag
    r_repair, risk_on, rupt, scores, seed, sg, sg_n = c.r_repair, c.risk_on, c.rupt, c.scores, c.seed, c.sg, c.sg_n
    sg_rev, sg_rev_k, sg_u, start64, start_date = c.sg_rev, c.sg_rev_k, c.sg_u, c.start64, c.start_date
    stick, sup_ids, totals_only, u_all, u_drop = c.stick, c.sup_ids, c.totals_only, c.u_all, c.u_drop
    u_out, uses_wai, worse = c.u_out, c.uses_wai, c.worse
    def _date_str(days: np.ndarray) -> np.ndarray:
        return np.datetime_as_string(start64 + days.astype("timedelta64[D]"), unit="D").astype(object)

    # day of attended session k of client c: attended slots are in (client, k) order
    att_start = np.concatenate([[0], np.cumsum(A)[:-1]]) if N else np.zeros(0, np.int64)

    def _att_day(c: np.ndarray, kk: np.ndarray) -> np.ndarray:
        return day[att_idx[att_start[c] + kk - 1]]

    gt_clin = pd.DataFrame({
        "clinician_id": clin_ids,
        "supervisor_id": sup_ids,
        "role": clinicians["role"].to_numpy(),
        "uses_wai": uses_wai,
        "records_totals_only": totals_only,
        "check_in_heavy": checkin_heavy,
        "check_in_rate": np.round(p_checkin, 3),
        "high_drift": high_drift,
        "drift_rate": np.round(p_drift, 3),
        "focus_persistence": np.round(stick, 3),
        "agenda_rate": np.round(p_agenda, 3),
        "gap_dimension": np.where(gap_pd, "personality_disorder", np.where(gap_rel, "religion_spirituality", "")).astype(object),
        "gap_group": np.where(gap_pd, "yes", np.where(gap_rel, "muslim", "")).astype(object),
        "outcome_slope_effect": np.round(u_out, 3),
        "dropout_logodds_effect": np.round(u_drop, 3),
        "alliance_log_deficit_effect": np.round(u_all, 3),
    })
    gaps = gt_clin.loc[gt_clin["gap_dimension"] != "", ["clinician_id", "gap_dimension", "gap_group"]].rename(
        columns={"gap_dimension": "dimension", "gap_group": "group"}).reset_index(drop=True)
    gaps["alliance_deficit_factor"] = p.gap_alliance_factor
    gaps["dropout_logodds"] = p.gap_dropout_logodds
    gaps["outcome_slope_penalty"] = p.gap_slope_penalty
    gaps["identity_addressed_factor"] = 0.15
    gaps["n_clients_in_group"] = [int(np.sum(in_gap & (clin == int(np.flatnonzero(clin_ids == cid)[0]))))
                                  for cid in gaps["clinician_id"]]

    rc = np.flatnonzero(rupt & (A >= r_k))
    rk_ = r_k[rc]
    rep_seen = r_repair[rc] & (A[rc] >= rk_ + r_lag[rc])
    after = A[rc] > rk_
    status = np.select(
        [rep_seen, ~r_repair[rc] & after, mech[rc] == 3, ~after],
        ["repaired", "unrepaired", "censored", "ended_at_rupture"], default="ended_before_repair")
    ruptures = pd.DataFrame({
        "client_id": client_ids[rc],
        "clinician_id": clin_ids[clin[rc]],
        "rupture_session": rk_,
        "pre_date": _date_str(_att_day(rc, rk_ - 1)),
        "rupture_date": _date_str(_att_day(rc, rk_)),
        "depth_srs": np.round(r_depth[rc], 2),
        "planted_repair": r_repair[rc],
        "repair_lag": np.where(r_repair[rc], r_lag[rc], 0),
        "repair_date": np.where(rep_seen, _date_str(_att_day(rc, np.where(rep_seen, rk_ + r_lag[rc], 1))), ""),
        "status": status.astype(object),
    })

    gc = np.flatnonzero(sg & (A >= sg_n + 1))
    gn = sg_n[gc]
    rev_seen = sg_rev[gc] & (A[gc] >= sg_rev_k[gc])
    sudden = pd.DataFrame({
        "client_id": client_ids[gc],
        "clinician_id": clin_ids[clin[gc]],
        "pregain_session": gn,
        "pregain_date": _date_str(_att_day(gc, gn)),
        "postgain_date": _date_str(_att_day(gc, gn + 1)),
        "magnitude_ors": np.round(7 + 4 * sg_u[gc], 2),
        "magnitude_phq9": np.round(6 + 3 * sg_u[gc], 2),
        "magnitude_gad7": np.round(4 + 3 * sg_u[gc], 2),
        "magnitude_core10": np.round(6 + 4 * sg_u[gc], 2),
        "measures": np.array(["ors", "ors;gad7;phq9", "core10;ors"], dtype=object)[mset[gc]],
        "reversed": rev_seen,
        "reversal_date": np.where(rev_seen, _date_str(_att_day(gc, np.where(rev_seen, sg_rev_k[gc], 1))), ""),
    })

    mech_names = np.array(["completed", "planned_single", "dropout", "censored"], dtype=object)
    gt_clients = pd.DataFrame({
        "client_id": client_ids,
        "clinician_id": clin_ids[clin],
        "mechanism": mech_names[mech],
        "planned_sessions": L,
        "attended_sessions": A,
        "pd_features": pd_true,
        "in_gap_group": in_gap,
        "measure_set": np.array(["ors", "ors;gad7;phq9", "core10;ors"], dtype=object)[mset],
        "planted_rupture": np.isin(np.arange(N), rc),
        "planted_sudden_gain": np.isin(np.arange(N), gc),
        "days_since_last_attended": period_days - last_att_day,
        "open": ~closed,
        "planted_risk": at_risk,
    })
    # clients whose recorded risk items were answered above 0 (what the data can show)
    rk_rows = np.flatnonzero(risk_on & np.isin(mset[ac], (1, 2)))
    risk_first = pd.DataFrame({"c": ac[rk_rows], "k": ak[rk_rows]}).groupby("c")["k"].min()
    rcl = risk_first.index.to_numpy()
    risk_truth = pd.DataFrame({
        "client_id": client_ids[rcl],
        "clinician_id": clin_ids[clin[rcl]],
        "gets_worse": worse[rcl],
        "first_risk_session": risk_first.to_numpy(),
        "instrument": np.array(["", "phq9", "core10"], dtype=object)[mset[rcl]],
    })
    meta = {
        "generator_version": GENERATOR_VERSION,
        "seed": int(seed),
        "n_clinicians": n,
        "months": int(months),
        "start": start_date.isoformat(),
        "as_of": as_of.isoformat(),
        "messy": bool(messy),
        "command": regenerate_command(seed, n, months, messy, start_date.isoformat(), episodes=p.episodes_per_18_months),
        "episodes_per_18_months": float(p.episodes_per_18_months),
        "n_clients": int(N),
        "n_sessions": int(S),
        "n_attended": int(M),
        "n_scores": int(len(scores)),
        "notes": ("Line numbers in 'defects' count the header as line 1. Ruptures and sudden gains "
                  "are listed only when they happened inside the data (the client attended the "
                  "rupture session / the postgain session before the as-of date)."),
    }
    goal_rows = np.flatnonzero(goal_improver | goal_null)
    goal_date = start_date + _dt.timedelta(days=int(goal_day))
    practice_goals = pd.DataFrame({
        "clinician_id": clin_ids[goal_rows],
        "metric": "check_in_share",
        "direction": "decrease",
        "baseline_start": start_date.isoformat(),
        "baseline_end": (goal_date - _dt.timedelta(days=1)).isoformat(),
        "set_on": goal_date.isoformat(),
        "review_date": (as_of - _dt.timedelta(days=1)).isoformat(),
        "planted_change": goal_improver[goal_rows],
        "check_in_rate_before": np.round(p_checkin[goal_rows], 3),
        "check_in_rate_after": np.round(np.where(goal_improver[goal_rows], p.goal_check_in_after, p_checkin[goal_rows]), 3),
    })
    truth: dict[str, Any] = {
        "meta": meta,
        "clinicians": gt_clin,
        "adaptation_gaps": gaps,
        "ruptures": ruptures,
        "sudden_gains": sudden,
        "clients": gt_clients,
        "risk": risk_truth,
        "practice_goals": practice_goals,
        "defects": pd.DataFrame(columns=_DEFECT_COLUMNS),
    }
    c.keep(truth=truth)


# --------------------------------------------------------------------------------------------
# file form and --messy


def _text_table(df: pd.DataFrame):
    """The table as an Arrow table of text columns, exactly as written to CSV (null = empty cell).

    Dates become ISO ``YYYY-MM-DD``, yes/no ``true``/``false``, floats one decimal (``36.0``),
    integers plain; text is kept as it is.
    """
    import pyarrow as pa
    import pyarrow.compute as pc

    cols = []
    for col in df.columns:
        s = df[col]
        if pd.api.types.is_datetime64_any_dtype(s):
            v = s.to_numpy().astype("datetime64[D]")
            arr = pc.cast(pa.array(v, type=pa.date32(), mask=np.isnat(v)), pa.string())
        elif pd.api.types.is_bool_dtype(s):
            arr = pc.cast(pa.array(s.to_numpy(dtype=object, na_value=None), type=pa.bool_()), pa.string())
        elif pd.api.types.is_float_dtype(s):
            v = s.to_numpy(dtype=float, na_value=np.nan)
            nan = np.isnan(v)
            i10 = np.round(np.where(nan, 0.0, v) * 10).astype(np.int64)
            whole = pa.array(i10 // 10, mask=nan)
            frac = pa.array(i10 % 10, mask=nan)
            arr = pc.binary_join_element_wise(pc.cast(whole, pa.string()), pc.cast(frac, pa.string()), ".")
        elif pd.api.types.is_integer_dtype(s):
            arr = pc.cast(pa.array(s.to_numpy(dtype=object, na_value=None), type=pa.int64()), pa.string())
        else:
            v = s.to_numpy(dtype=object, na_value=None)
            arr = pa.array(v, type=pa.string(), from_pandas=True)
        cols.append(arr)
    return pa.Table.from_arrays(cols, names=[str(c) for c in df.columns])


def _file_form(df: pd.DataFrame) -> pd.DataFrame:
    """The table as text cells, exactly as written to CSV ("" = empty cell)."""
    t = _text_table(df)
    out = {}
    for name, col in zip(t.column_names, t.columns):
        v = col.to_numpy(zero_copy_only=False).astype(object)
        v[pd.isna(v)] = ""
        out[name] = v
    return pd.DataFrame(out, columns=list(df.columns), dtype=object)


def _write_csv(df: pd.DataFrame, path: pathlib.Path) -> None:
    """UTF-8 CSV, ``\\n`` line ends, no quoting (no cell contains a comma, quote or line break)."""
    import pyarrow.csv as pacsv

    t = _text_table(df)
    for name, col in zip(t.column_names, t.columns):
        bad = [x for x in col.unique().to_pylist() if x is not None and any(ch in x for ch in ',"\n\r')]
        if bad:
            raise ValueError(f"Column {name} has a value that would need CSV quoting: {bad[0]!r}.")
    with open(path, "wb") as f:
        f.write((",".join(t.column_names) + "\n").encode("utf-8"))
        pacsv.write_csv(t, f, write_options=pacsv.WriteOptions(include_header=False, quoting_style="none"))


def _inject_defects(clinic: dict[str, Any], rng: np.random.Generator, as_of: _dt.date) -> dict[str, Any]:
    """Turn the tables into text and inject the defects of MESSY_DEFECTS (one each)."""
    truth = clinic["ground_truth"]
    cl = _file_form(clinic["clients"])
    se = _file_form(clinic["sessions"])
    sc = _file_form(clinic["scores"])
    cn = _file_form(clinic["clinicians"])
    used_clients: set[str] = set()
    defects: list[dict[str, Any]] = []
    kinds = {d[0]: d for d in MESSY_DEFECTS}

    def record(kind: str, table: str, pos: int, value: str) -> None:
        _, _, column, severity, desc = kinds[kind]
        defects.append({"kind": kind, "table": table, "row": int(pos) + 2, "column": column,
                        "value": value, "expected_severity": severity, "description": desc})

    long_clients = set(sc["client_id"].unique())
    ors_only = ~se["client_id"].isin(long_clients)
    # never touch clients whose planted rupture or sudden gain the ground truth describes
    planted = set(truth["ruptures"]["client_id"]) | set(truth["sudden_gains"]["client_id"])
    eligible = ors_only & ~se["client_id"].isin(planted)
    open_ids = set(cl.loc[cl["end_date"] == "", "client_id"])

    def pick_session(mask: pd.Series) -> int:
        first_dates = se.groupby("client_id")["session_date"].transform("min")
        ok = eligible.reindex(se.index, fill_value=False)
        cand = np.flatnonzero((mask.reindex(se.index, fill_value=False) & ok
                               & ~se["client_id"].isin(used_clients)
                               & (se["session_date"] != first_dates)).to_numpy())
        if cand.size == 0:
            raise ValueError("The clinic is too small to inject every --messy defect; "
                             "use at least 4 clinicians.")
        pos = int(cand[rng.integers(0, cand.size)])
        used_clients.add(se.at[pos, "client_id"])
        return pos

    attended = se["attendance"] == "attended"
    # in-place session defects
    pos = pick_session(attended & se["client_id"].isin(open_ids))
    d = se.at[pos, "session_date"]
    se.at[pos, "session_date"] = "2052" + d[4:]  # year typo
    record("future_date", "sessions", pos, se.at[pos, "session_date"])

    pos = pick_session(se["attendance"] == "cancelled")
    se.at[pos, "attendance"] = "rescheduled"
    record("unknown_attendance", "sessions", pos, "rescheduled")

    pos = pick_session(attended & (se["srs_3"] != "") & (se["srs_3"] != "10.0"))
    se.at[pos, "srs_3"] = f"{float(se.at[pos, 'srs_3']) * 10:.1f}"
    record("score_out_of_range", "sessions", pos, se.at[pos, "srs_3"])

    pos = pick_session(se["attendance"] == "cancelled")
    se.at[pos, "srs_total"] = "35.0"
    record("score_on_cancelled", "sessions", pos, "35.0")

    pos = pick_session(attended)
    others = sorted(set(cn["clinician_id"]) - {se.at[pos, "clinician_id"]})
    if others:
        se.at[pos, "clinician_id"] = others[int(rng.integers(0, len(others)))]
        record("clinician_mismatch", "sessions", pos, se.at[pos, "clinician_id"])

    closed = cl.loc[cl["end_date"] != "", ["client_id", "end_date"]]
    last_pos = se.reset_index().groupby("client_id")["index"].max()
    end_by_client = dict(zip(closed["client_id"], closed["end_date"]))
    cand = [int(last_pos[c]) for c in sorted(end_by_client)
            if c in last_pos.index and c not in used_clients and bool(eligible.iat[int(last_pos[c])])
            and (_dt.date.fromisoformat(end_by_client[c]) + _dt.timedelta(days=9)) < as_of
            and se.at[int(last_pos[c]), "attendance"] == "attended"
            and int(last_pos[c]) > 0 and se.at[int(last_pos[c]) - 1, "client_id"] == c]
    if cand:
        pos = cand[int(rng.integers(0, len(cand)))]
        c = se.at[pos, "client_id"]
        used_clients.add(c)
        new = (_dt.date.fromisoformat(end_by_client[c]) + _dt.timedelta(days=9)).isoformat()
        se.at[pos, "session_date"] = new
        record("session_after_end", "sessions", pos, new)

    pos = pick_session(attended & (se["focus_primary"] != ""))
    se.at[pos, "focus_primary"] = "smalltalk"
    record("unknown_focus_code", "sessions", pos, "smalltalk")

    pos = pick_session(attended & (se["agenda_set"] != ""))
    se.at[pos, "agenda_set"] = "2"
    record("bad_yes_no", "sessions", pos, "2")

    # appended session lines
    pos = pick_session(se["attendance"] == "attended")
    se = pd.concat([se, se.iloc[[pos]]], ignore_index=True)
    record("duplicate_session", "sessions", len(se) - 1, se.at[len(se) - 1, "session_date"])
    pos = pick_session(se["attendance"] == "attended")
    line = se.iloc[[pos]].copy()
    bad_id = line["client_id"].iat[0].replace("0", "O", 1)
    line["client_id"] = bad_id
    se = pd.concat([se, line], ignore_index=True)
    record("unknown_client_session", "sessions", len(se) - 1, bad_id)

    # scores
    sc_clients = sorted(long_clients - used_clients - planted)
    c = sc_clients[int(rng.integers(0, len(sc_clients)))]
    used_clients.add(c)
    rows = np.flatnonzero((sc["client_id"] == c).to_numpy())
    pos = int(rows[rng.integers(0, rows.size)])
    sc.at[pos, "value"] = "n/a"
    record("non_numeric_score", "scores", pos, "n/a")
    c = sc_clients[int(rng.integers(0, len(sc_clients)))]
    while c in used_clients:
        c = sc_clients[int(rng.integers(0, len(sc_clients)))]
    used_clients.add(c)
    rows = np.flatnonzero((sc["client_id"] == c).to_numpy())
    pos = int(rows[rng.integers(0, rows.size)])
    sc = pd.concat([sc, sc.iloc[[pos]]], ignore_index=True)
    record("duplicate_score", "scores", len(sc) - 1, sc.at[len(sc) - 1, "value"])
    phq_rows = np.flatnonzero(((sc["instrument"] == "phq9") & (sc["item"] == "9")
                               & ~sc["client_id"].isin(used_clients)).to_numpy())
    pos = int(phq_rows[rng.integers(0, phq_rows.size)])
    line = sc.iloc[[pos]].copy()
    line["item"] = "10"
    line["value"] = "1"
    used_clients.add(line["client_id"].iat[0])
    sc = pd.concat([sc, line], ignore_index=True)
    record("unknown_item", "scores", len(sc) - 1, "10")
    cands = sorted(set(sc["client_id"]) - used_clients)
    c = cands[int(rng.integers(0, len(cands)))]
    used_clients.add(c)
    line = sc.loc[sc["client_id"] == c].iloc[[0]].copy()
    sdates = set(se.loc[se["client_id"] == c, "session_date"])
    dd = _dt.date.fromisoformat(line["session_date"].iat[0]) + _dt.timedelta(days=1)
    while dd.isoformat() in sdates:
        dd += _dt.timedelta(days=1)
    line["session_date"] = dd.isoformat()
    sc = pd.concat([sc, line], ignore_index=True)
    record("score_without_session", "scores", len(sc) - 1, dd.isoformat())

    # clients
    free = ~cl["client_id"].isin(used_clients)
    cand = np.flatnonzero((free & cl["client_id"].isin(open_ids) & (cl["end_reason"] == "")).to_numpy())
    pos = int(cand[rng.integers(0, cand.size)])
    used_clients.add(cl.at[pos, "client_id"])
    cl.at[pos, "end_reason"] = "unilateral"
    record("end_reason_without_end_date", "clients", pos, "unilateral")
    free = ~cl["client_id"].isin(used_clients)
    cand = np.flatnonzero(free.to_numpy())
    pos = int(cand[rng.integers(0, cand.size)])
    used_clients.add(cl.at[pos, "client_id"])
    cl.at[pos, "agreed_goals"] = cl.at[pos, "agreed_goals"] + ";sleep"
    record("unknown_goal_code", "clients", pos, cl.at[pos, "agreed_goals"])
    free = ~cl["client_id"].isin(used_clients)
    cand = np.flatnonzero((free & (cl["start_date"].str[8:10].astype(int) > 12)).to_numpy())
    pos = int(cand[rng.integers(0, cand.size)])
    used_clients.add(cl.at[pos, "client_id"])
    y, m, dday = cl.at[pos, "start_date"].split("-")
    cl.at[pos, "start_date"] = f"{dday}/{m}/{y}"
    record("day_first_date", "clients", pos, cl.at[pos, "start_date"])
    free = ~cl["client_id"].isin(used_clients)
    cand = np.flatnonzero(free.to_numpy())
    pos = int(cand[rng.integers(0, cand.size)])
    cl = pd.concat([cl, cl.iloc[[pos]]], ignore_index=True)
    record("duplicate_client", "clients", len(cl) - 1, cl.at[len(cl) - 1, "client_id"])

    truth = dict(truth)
    truth["defects"] = pd.DataFrame(defects).sort_values(["table", "row"], ignore_index=True)
    return {"clients": cl, "sessions": se, "clinicians": cn, "scores": sc, "ground_truth": truth}


# --------------------------------------------------------------------------------------------
# writing and reading


def _truth_to_json(truth: dict[str, Any]) -> str:
    def records(df: pd.DataFrame) -> list[dict[str, Any]]:
        recs = []
        cols = list(df.columns)
        for row in df.itertuples(index=False, name=None):
            rec = {}
            for c, v in zip(cols, row):
                if isinstance(v, (np.bool_, bool)):
                    v = bool(v)
                elif isinstance(v, (np.integer,)):
                    v = int(v)
                elif isinstance(v, (np.floating, float)):
                    v = None if math.isnan(v) else float(round(float(v), 4))
                rec[c] = v
            recs.append(rec)
        return recs

    parts = []
    for key in sorted(truth):
        if key == "meta":
            body = json.dumps(truth["meta"], sort_keys=True, indent=2, ensure_ascii=True)
            body = body.replace("\n", "\n ")
        else:
            recs = [json.dumps(r, sort_keys=True, ensure_ascii=True) for r in records(truth[key])]
            body = "[\n" + ",\n".join("  " + r for r in recs) + "\n ]" if recs else "[]"
        parts.append(f" {json.dumps(key)}: {body}")
    return "{\n" + ",\n".join(parts) + "\n}\n"


def read_ground_truth(path: str | pathlib.Path) -> dict[str, Any]:
    """Read ``ground_truth.json`` (a file or the folder holding it) into ``meta`` + DataFrames."""
    path = pathlib.Path(path)
    if path.is_dir():
        path = path / "ground_truth.json"
    obj = json.loads(path.read_text(encoding="utf-8"))
    out: dict[str, Any] = {"meta": obj.pop("meta")}
    for key, recs in obj.items():
        out[key] = pd.DataFrame.from_records(recs)
    if out.get("defects") is not None and out["defects"].empty:
        out["defects"] = pd.DataFrame(columns=_DEFECT_COLUMNS)
    return out


def _readme(fmt: str, meta: dict[str, Any], files: list[str]) -> str:
    cmd = regenerate_command(meta["seed"], meta["n_clinicians"], meta["months"], meta["messy"],
                             meta["start"], fmt, episodes=meta.get("episodes_per_18_months"))
    lines = [
        "# Synthetic clinic (generated, not real people)",
        "",
        "Every person, date and score in this folder is invented by `supervision.synth` "
        f"(generator version {meta['generator_version']}). Regenerate it byte for byte with:",
        "",
        "```",
        cmd,
        "```",
        "",
        "(`FOLDER` is this folder; the bundled demo clinic is `data/demo`, made with "
        "`supervision demo --out data/demo`.) Equivalent Python:",
        "",
        "```",
        f"supervision.synth.write_clinic(FOLDER, fmt={fmt!r}, seed={meta['seed']}, "
        f"n_clinicians={meta['n_clinicians']}, months={meta['months']}, "
        f"messy={meta['messy']}, start={meta['start']!r})",
        "```",
        "",
        f"Period: {meta['start']} to {meta['as_of']} (the as-of date; no date in the data is on or "
        f"after it). {meta['n_clinicians']} clinicians, {meta['n_clients']} client episodes, "
        f"{meta['n_sessions']} scheduled sessions ({meta['n_attended']} attended), "
        f"{meta['n_scores']} long-table scores.",
        "",
        "Files: " + ", ".join(f"`{f}`" for f in files) + ".",
        "",
        "`ground_truth.json` lists what was planted (adaptation gaps, check-in-heavy and drifting "
        "clinicians, alliance ruptures and repairs, sudden gains, per-client endings"
        + (", and the injected export defects with their line numbers" if meta["messy"] else "")
        + "). The generative model and the ground-truth fields are described in the project's "
        "`data/README.md` (section *The demo clinic*) and in `supervision/synth.py`.",
        "",
    ]
    return "\n".join(lines)


def _write_parquet(df: pd.DataFrame, path: pathlib.Path) -> None:
    import pyarrow as pa
    import pyarrow.parquet as pq

    arrays, names = [], []
    for col in df.columns:
        s = df[col]
        if pd.api.types.is_datetime64_any_dtype(s):
            v = s.to_numpy().astype("datetime64[D]")
            arr = pa.array(v, type=pa.date32(), mask=np.isnat(v))
        elif pd.api.types.is_bool_dtype(s):
            arr = pa.array(s.to_numpy(dtype=object, na_value=None), type=pa.bool_())
        elif pd.api.types.is_float_dtype(s):
            arr = pa.array(s.to_numpy(), type=pa.float64(), from_pandas=True)
        elif pd.api.types.is_integer_dtype(s):
            arr = pa.array(s.to_numpy(dtype=object, na_value=None), type=pa.int64())
        else:
            v = s.astype(object).where(s.notna(), None).to_numpy(dtype=object)
            arr = pa.array(v, type=pa.string())
        arrays.append(arr)
        names.append(col)
    table = pa.Table.from_arrays(arrays, names=names)
    pq.write_table(table, path, compression="zstd", row_group_size=1 << 20)


def write_clinic(out_dir: str | pathlib.Path, fmt: str = "csv", **generate_kwargs: Any) -> list[pathlib.Path]:
    """Generate a clinic and write it to ``out_dir``.

    Writes ``clients``, ``sessions``, ``clinicians`` and ``scores`` as ``NAME.csv`` (UTF-8, ``\\n``
    line ends, ISO dates, one decimal for SRS/ORS, integers for item scales, ``true``/``false``)
    or ``NAME.parquet`` (typed: dates as date32, text in messy mode), plus ``ground_truth.json``
    and ``README.md`` with the regenerating command. The same arguments give byte-identical files.

    Parameters
    ----------
    out_dir : path
        Folder to write (created if needed; files of the same names are overwritten).
    fmt : {"csv", "parquet"}
    **generate_kwargs
        Passed to :func:`generate_clinic` (``seed``, ``n_clinicians``, ``months``, ``messy``,
        ``start``, ``params``).

    Returns
    -------
    list of pathlib.Path
        The files written, sorted by name.
    """
    if fmt not in ("csv", "parquet"):
        raise ValueError(f"fmt must be 'csv' or 'parquet', got {fmt!r}.")
    out = pathlib.Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    clinic = generate_clinic(**generate_kwargs)
    written = []
    for name in TABLES:
        df = clinic[name]
        path = out / f"{name}.{fmt}"
        if fmt == "csv":
            _write_csv(df, path)
        else:
            _write_parquet(df, path)
        written.append(path)
    truth = clinic["ground_truth"]
    gt = out / "ground_truth.json"
    gt.write_text(_truth_to_json(truth), encoding="utf-8", newline="\n")
    written.append(gt)
    readme = out / "README.md"
    files = sorted(p.name for p in written) + ["README.md"]
    readme.write_text(_readme(fmt, truth["meta"], sorted(files)), encoding="utf-8", newline="\n")
    written.append(readme)
    return sorted(written)
