"""Small-count suppression: pure functions on frames (policies, primary and complementary suppression).

:func:`suppress` applies a disclosure-control policy to a table of counts (primary suppression of
small counts, rounding, complementary suppression, derived rates); :func:`suppress_blocks` does it
block by block; :func:`service_benchmark` turns a service-wide table into aggregates under that
policy. Nothing here reads or writes a file (docs/methods.md §3.4).

Policies (``[privacy] suppression_policy``; every number is a setting):

- ``"nhs"``: counts 1-7 are replaced by ``*`` and every other count is rounded to the nearest 5;
  means and other simple statistics based on 1-7 individuals are not shown; percentages are
  computed from the rounded numbers. NHS Digital's secondary-care rule (HES/ECDS from September
  2018, SRHAD from 2019-20) [V] digital.nhs.uk "Disclosure control methodology for HES and ECDS";
  the counts rule itself [V2] (docs/methods.md §3.4). That rule was introduced to *replace*
  secondary suppression (the earlier HES rule, 1-5 plus secondary suppression [V]); the workbook
  still adds complementary suppression (``complementary = true``) because its tables are small
  and rounding alone leaves little doubt in two- or three-cell groups [U design choice].
- ``"cms"``: counts 1-10 are not shown, zero is; no cell may allow a value of 1-10 to be
  derived from other reported cells, percentages included. US CMS Cell Size Suppression Policy
  [V] resdac.org "CMS Cell Size Suppression Policy" (version 01/26/2024) and hhs.gov guidance
  "CMS Cell Suppression Policy". No rounding.
- ``"none"``: nothing is suppressed (for the supervision pair only).

Complementary (secondary) suppression, the same for every policy: within each set of cells whose
sum is published (a margin of the table, or a count and its parts), the suppressed cells are
either none, or at least two whose true sum is above the policy's threshold, so neither a single
cell nor the suppressed cells together can be recomputed as a small number (the CMS rule forbids
deriving 1-10 from other cells [V]). Cells are added smallest non-zero first. Then an audit
plays the attacker: with every published cell (within the rounding), every total that could be
published and counts >= 0, it bounds each small cell by linear programming (scipy HiGHS) and,
while one can be proved to be at most the threshold, hides a further neighbouring cell. Where no
cell is left to hide (a group whose own total is small is given away by the other totals), a
``UserWarning`` says so and ``attrs["suppression"]["unprotected"]`` counts the cells: merge such
groups before publishing. The audit runs at every table size: the cells fall into independent
blocks (those linked by the sums), and each block is solved on its own. Primary and secondary
cells are shown with the same marker, so a reader cannot tell which is which.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from typing import Any, Sequence

import numpy as np
import pandas as pd

from supervision.config import load_settings
from supervision.rules import PrivacyRules, Rules, area_rules

__all__ = ["Policy", "policy_rules", "privacy_rules", "suppress", "suppress_blocks", "service_benchmark"]

def privacy_rules(settings=None, *, rules=None) -> PrivacyRules:
    """The ``[privacy]`` rules (:class:`supervision.rules.PrivacyRules`, defaults in defaults.toml):
    from ``rules`` (a ``PrivacyRules`` or a whole ``Rules``, e.g. ``caseload.rules``) when given, else
    from ``settings`` (a path, dict or Settings; None = the defaults). ``settings`` may itself be a rules
    object."""
    if rules is None and isinstance(settings, (PrivacyRules, Rules)):
        settings, rules = None, settings
    if rules is not None:
        return area_rules(PrivacyRules, rules)
    return area_rules(PrivacyRules, None if settings is None else load_settings(settings))


@dataclass(frozen=True)
class Policy:
    """A disclosure-control policy: counts ``1..max_suppressed`` hidden, others rounded to ``rounding``."""

    name: str
    max_suppressed: int
    rounding: int
    complementary: bool
    marker: str


def policy_rules(policy: str | None = None, settings=None, *, rules=None) -> Policy:
    """The :class:`Policy` for ``policy`` (``"nhs"``, ``"cms"``, ``"none"``; default from the rules).

    ``settings`` / ``rules``: as :func:`privacy_rules` (None = the defaults in defaults.toml)."""
    if isinstance(policy, Policy):
        return policy
    pr = privacy_rules(settings, rules=rules)
    name = policy if policy is not None else pr.suppression_policy
    marker, comp = str(pr.suppressed_marker), bool(pr.complementary)
    if name == "none":
        return Policy("none", 0, 1, False, marker)
    if name in ("nhs", "cms"):
        t, r = int(getattr(pr, f"{name}_max_suppressed")), int(getattr(pr, f"{name}_rounding"))
        if t < 0 or r < 1:
            raise ValueError(f"privacy.{name}_max_suppressed must be 0 or more and privacy.{name}_rounding 1 or more; "
                             f"got {t} and {r}.")
        return Policy(name, t, r, comp, marker)
    raise ValueError(f"Unknown suppression policy {name!r}; allowed: 'nhs', 'cms', 'none' (setting privacy.suppression_policy).")


def _as_list(x) -> list:
    if x is None:
        return []
    return [x] if isinstance(x, str) else list(x)


def _margins(group_columns) -> list[list[str]]:
    if group_columns is None:
        return [[]]
    if isinstance(group_columns, str):
        return [[group_columns]]
    items = list(group_columns)
    if all(isinstance(g, str) for g in items):
        return [items]
    return [_as_list(g) for g in items]


def _mask(table: pd.DataFrame, total_rows) -> np.ndarray:
    if total_rows is None:
        return np.zeros(len(table), dtype=bool)
    if isinstance(total_rows, str):
        if total_rows not in table.columns:
            raise ValueError(f"total_rows names column {total_rows!r}, which the table does not have; "
                             f"columns: {', '.join(map(str, table.columns))}.")
        m = table[total_rows]
    else:
        m = total_rows
    arr = np.asarray(pd.Series(m, index=table.index) if isinstance(m, pd.Series) else m).astype(bool)
    if arr.shape != (len(table),):
        raise ValueError(f"total_rows must be a column name or one true/false per row ({len(table)}); got shape {arr.shape}.")
    return arr


def suppress(table: pd.DataFrame, count_columns, policy: str | None = None, *, group_columns=None,
             total_rows=None, rates: dict[str, tuple[str, str]] | None = None,
             derived: dict[str, Sequence[str] | str] | None = None, parts: dict[str, Sequence[str]] | None = None,
             complementary: bool | None = None, exact_audit: bool = False, settings=None) -> pd.DataFrame:
    """Apply a disclosure-control policy to counts (and to figures derived from them).

    Parameters
    ----------
    table : DataFrame
        Tidy table, one row per cell group (e.g. one row per clinician and identity group).
        Not modified.
    count_columns : str or list of str
        Columns holding counts of individuals (non-negative whole numbers; missing = not known).
    policy : {"nhs", "cms", "none"} or Policy, optional
        Default: the ``privacy.suppression_policy`` setting. See the module docstring.
    group_columns : str, list of str, or list of lists, optional
        The margins whose totals are (or may be) published, as the columns held fixed in each:
        ``None`` = the whole column sums to a total; ``"clinician_id"`` = each clinician's rows
        sum to a total; ``[["clinician_id"], ["group"]]`` = a cross-table with row *and* column
        totals. Totals are assumed known even when they are not in ``table``.
    total_rows : str or boolean array, optional
        Rows that are themselves totals (a boolean column name or mask). They are suppressed and
        rounded like any count, are not used as complementary cells unless nothing else can
        protect a margin, and their suppression removes the margin's risk.
    rates : dict, optional
        ``{rate_column: (numerator, denominator)}``: suppressed when either count is; under a
        rounding policy recomputed from the rounded counts (NHS: percentages from rounded
        numbers), keeping the column's scale (proportion or percentage). Each pair also adds the
        part ``denominator - numerator`` (e.g. clients who did *not* drop out) as a hidden cell,
        so 18 of 20 cannot reveal the 2.
    derived : dict, optional
        ``{column: counts}``: other figures (means, medians, intervals) hidden when any listed
        count is suppressed (NHS: not shown when based on 1-7 individuals); otherwise unchanged.
    parts : dict, optional
        ``{total_column: [part_columns]}``: counts that add up within a row; a missing remainder
        is added as a hidden cell.
    complementary : bool, optional
        Apply complementary suppression (default: the ``privacy.complementary`` setting).
    exact_audit : bool, default False
        The audit's attacker knows every published count exactly, even under a rounding policy
        (use it when the published table also holds figures computed from the exact counts, such as
        unrounded rates, intervals or p-values, from which the exact counts can be worked out).
    settings : path, dict, Settings, or the rules (``caseload.rules``), optional
        Where the policy's numbers come from (:func:`privacy_rules`; None = defaults.toml).

    Returns
    -------
    DataFrame
        ``table`` with, per count column ``c``: ``c`` (nullable integer, rounded, ``<NA>`` where
        suppressed), ``c_suppressed`` (bool) and ``c_display`` (text: the marker, e.g. ``*``, or the
        published number; empty where the count was missing); per rate or derived column ``r``:
        ``r`` (``NaN`` where suppressed) and ``r_suppressed``. ``attrs["suppression"]`` holds the
        policy and the numbers of primary and complementary cells (not which cells they are).

    Raises
    ------
    ValueError
        Unknown columns or policy, negative or fractional counts, a rate whose numerator exceeds
        its denominator.
    """
    if not isinstance(table, pd.DataFrame):
        raise TypeError(f"suppress needs a DataFrame, got {type(table).__name__}.")
    pol = policy_rules(policy, settings)
    counts = _as_list(count_columns)
    rates, derived, parts = dict(rates or {}), dict(derived or {}), {k: _as_list(v) for k, v in (parts or {}).items()}
    for num, den in rates.values():
        for c in (num, den):
            if c not in counts:
                counts.append(c)
    for tot, ps in parts.items():
        for c in [tot, *ps]:
            if c not in counts:
                counts.append(c)
    needed = set(counts) | set(rates) | set(derived) | {c for m in _margins(group_columns) for c in m}
    needed |= {c for v in derived.values() for c in _as_list(v)}
    missing = sorted(map(str, needed - set(table.columns)))
    if missing:
        raise ValueError(f"suppress: the table has no column(s) {', '.join(missing)}; "
                         f"columns: {', '.join(map(str, table.columns))}.")
    for col, src in derived.items():
        unknown = [c for c in _as_list(src) if c not in counts]
        if unknown:
            raise ValueError(f"derived[{col!r}] names {unknown}, which are not count columns; add them to count_columns.")

    n, k = len(table), len(counts)
    vals = np.empty((n, k), dtype=float)
    for j, c in enumerate(counts):
        v = pd.to_numeric(table[c], errors="coerce").astype("float64").to_numpy()
        bad = ~np.isnan(v) & ((v < 0) | (v % 1 != 0))
        nonnum = table[c].notna().to_numpy() & np.isnan(v)
        if bad.any() or nonnum.any():
            raise ValueError(f"suppress: '{c}' must hold counts (whole numbers, 0 or more); "
                             f"found {table[c][bad | nonnum].iloc[0]!r}.")
        vals[:, j] = v
    for rate, (num, den) in rates.items():
        a, b = vals[:, counts.index(num)], vals[:, counts.index(den)]
        over = ~np.isnan(a) & ~np.isnan(b) & (a > b)
        if over.any():
            raise ValueError(f"rates[{rate!r}]: numerator '{num}' exceeds denominator '{den}' in {int(over.sum())} row(s); "
                             "a rate needs numerator <= denominator.")
        parts.setdefault(den, [])
        if num not in parts[den]:
            parts[den] = parts[den] + [num]

    for tot, ps in parts.items():
        rest = vals[:, counts.index(tot)] - vals[:, [counts.index(c) for c in ps]].sum(axis=1)
        if (rest < 0).any():
            raise ValueError(f"parts[{tot!r}]: the parts {ps} add up to more than '{tot}' in {int((rest < 0).sum())} row(s).")
    is_total = _mask(table, total_rows)
    use_comp = pol.complementary if complementary is None else bool(complementary)
    vis_primary, vis_supp, audit = _suppression_pattern(
        table, vals, counts, parts, _margins(group_columns), is_total, pol.max_suppressed,
        use_comp and pol.name != "none", 1 if exact_audit else pol.rounding)
    T = pol.max_suppressed
    out = table.copy()
    rounded = vals.copy()
    if pol.rounding > 1:
        rounded = np.floor(vals / pol.rounding + 0.5) * pol.rounding
    for j, c in enumerate(counts):
        col = pd.array(np.where(vis_supp[:, j], np.nan, rounded[:, j]), dtype="Float64").round().astype("Int64")
        out[c] = col
        out[f"{c}_suppressed"] = vis_supp[:, j]
        out[f"{c}_display"] = [pol.marker if s_ else ("" if np.isnan(v) else str(int(v)))
                               for s_, v in zip(vis_supp[:, j], rounded[:, j])]
    for rate, (num, den) in rates.items():
        jn, jd = counts.index(num), counts.index(den)
        gone = vis_supp[:, jn] | vis_supp[:, jd]
        given = pd.to_numeric(table[rate], errors="coerce").astype("float64").to_numpy()
        if pol.rounding > 1:
            exact = np.divide(vals[:, jn], vals[:, jd], out=np.full(n, np.nan), where=vals[:, jd] > 0)
            ok = ~np.isnan(given) & ~np.isnan(exact) & (exact > 0)
            scale = float(np.median(given[ok] / exact[ok])) if ok.any() else 1.0
            scale = 100.0 if abs(scale - 100.0) < 1.0 else 1.0
            given = np.divide(rounded[:, jn], rounded[:, jd], out=np.full(n, np.nan), where=rounded[:, jd] > 0) * scale
        out[rate] = np.where(gone, np.nan, given)
        out[f"{rate}_suppressed"] = gone
    for col, src in derived.items():
        js = [counts.index(c) for c in _as_list(src)]
        gone = vis_supp[:, js].any(axis=1)
        vals_d = pd.to_numeric(table[col], errors="coerce").astype("float64").to_numpy()
        out[col] = np.where(gone, np.nan, vals_d)
        out[f"{col}_suppressed"] = gone
    out.attrs["suppression"] = {
        "policy": pol.name, "max_suppressed": T, "rounding": pol.rounding, "marker": pol.marker,
        "primary": int(vis_primary.sum()), "complementary": int(vis_supp.sum() - vis_primary.sum()), **audit,
    }
    if audit["unprotected"]:
        warnings.warn(
            f"{audit['unprotected']} small number(s) in this table can still be narrowed down to {T} or fewer from "
            "the totals it adds up to: a group whose own total is small (e.g. 7 people in the whole service) is given "
            "away by the other totals, whatever is hidden inside it. Merge small groups (or leave them out) before "
            "publishing, or add the totals as rows (total_rows=...) so they can be suppressed too.",
            UserWarning, stacklevel=2)
    return out


def suppress_blocks(table: pd.DataFrame, count_column: str, blocks: Sequence[str], margins: Sequence[Sequence[str]],
                    policy: str | Policy | None = None, *, exact_audit: bool = True, settings=None) -> pd.DataFrame:
    """:func:`suppress` of a table made of independent blocks (e.g. one cross-table per dimension
    and metric), block by block, with the whole block hidden where its audit cannot protect it.

    Parameters
    ----------
    table : DataFrame
        One row per cell; not modified.
    count_column : str
        The count of individuals.
    blocks : list of str
        Columns whose values name a block: no published sum runs across blocks.
    margins : list of lists of str
        Within a block, the columns held fixed by each published sum (e.g.
        ``[["clinician_id"], ["group"]]``: row and column totals of a cross-table).
    policy, settings
        As for :func:`suppress`.
    exact_audit : bool, default True
        The attacker knows every shown count exactly (see :func:`suppress`).

    Returns
    -------
    DataFrame
        As :func:`suppress` (``<count>``, ``<count>_suppressed``, ``<count>_display``), rows in the
        table's order; ``attrs["suppression"]`` adds ``blocks``, ``blocks_hidden`` (blocks hidden
        whole because a small count in them could not be protected otherwise) and ``audit``
        (``passed`` when every block passed or was hidden whole).
    """
    pol = policy_rules(policy, settings)
    parts, info = [], {"primary": 0, "complementary": 0, "blocks": 0, "blocks_hidden": 0}
    for _, block in table.groupby(list(blocks), sort=False, dropna=False):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)  # an unprotectable block is hidden whole below
            out = suppress(block, count_column, pol, group_columns=[list(m) for m in margins],
                           exact_audit=exact_audit, settings=settings)
        a = out.attrs.get("suppression", {})
        info["blocks"] += 1
        if a.get("unprotected") or a.get("audit") == "failed":
            v = pd.to_numeric(block[count_column], errors="coerce").to_numpy(dtype=float)
            hide = ~np.isnan(v)
            out[count_column] = pd.array(np.where(hide, np.nan, out[count_column].to_numpy(dtype=float)),
                                         dtype="Float64").round().astype("Int64")
            out[f"{count_column}_suppressed"] = hide | out[f"{count_column}_suppressed"].to_numpy(dtype=bool)
            out[f"{count_column}_display"] = np.where(hide, pol.marker, out[f"{count_column}_display"].astype(object))
            info["blocks_hidden"] += 1
        info["primary"] += int(a.get("primary", 0))
        info["complementary"] += int(a.get("complementary", 0))
        parts.append(out)
    if not parts:
        res = suppress(table, count_column, pol, settings=settings)
    else:
        res = pd.concat(parts).loc[table.index]
    res.attrs["suppression"] = {"policy": pol.name, "max_suppressed": pol.max_suppressed, "rounding": pol.rounding,
                                "marker": pol.marker, **info, "audit": "passed" if pol.name != "none" else "not run",
                                "unprotected": 0}
    return res


def _suppression_pattern(table: pd.DataFrame, vals: np.ndarray, counts: list[str], parts: dict[str, list[str]],
                         margins: list[list[str]], is_total: np.ndarray, T: int, complementary: bool,
                         rounding: int = 1):
    """Primary and final suppression masks (rows x count columns).

    Cells are the visible counts (``i * k + j``) plus, for every ``parts`` entry, a hidden
    remainder per row (total minus its parts: e.g. clients who did not drop out). A hidden cell
    is never published but is *known* when its row's total and parts are; it is unknown when one
    of them is suppressed, and it is sensitive (treated as unknown that needs protection) when
    its value is 1..T. Constraints are the sets of cells whose sum is known: every margin of every
    count column and of every remainder, and every row's total = parts + remainder. Rule per
    constraint whose total is known: the unknown cells are none, or at least two with a true sum
    above T. A hidden cell is made unknown by suppressing its smallest part in the row.
    """
    n, k = vals.shape
    value = list(vals.reshape(-1))
    hidden: list[bool] = [False] * (n * k)
    deps: list[list[int]] = [[] for _ in range(n * k)]      # visible cells a hidden cell is derived from
    proxy: list[int | None] = [None] * (n * k)              # visible cell to suppress to hide it
    constraints: list[tuple[list[int], list[int]]] = []     # (member cells, total cells)
    rest_cells: dict[str, list[int | None]] = {}
    for tot, ps in parts.items():
        jt, jp = counts.index(tot), [counts.index(p) for p in ps]
        col: list[int | None] = []
        for i in range(n):
            members = [i * k + j for j in jp]
            if np.isnan(vals[i, jt]) or any(np.isnan(vals[i, j]) for j in jp):
                col.append(None)
            else:
                value.append(vals[i, jt] - sum(vals[i, j] for j in jp))
                hidden.append(True)
                deps.append([i * k + jt, *members])
                proxy.append(min(members, key=lambda c: (vals[c // k, c % k] <= 0, vals[c // k, c % k], c))
                             if members else i * k + jt)
                members = members + [len(value) - 1]
                col.append(len(value) - 1)
            constraints.append((members, [i * k + jt]))
        rest_cells[tot] = col
    columns = [[i * k + j for i in range(n)] for j in range(k)] + list(rest_cells.values())
    for margin in margins:
        if margin:
            keys = table[margin].astype(object).where(table[margin].notna(), "\x00<NA>").apply(tuple, axis=1).to_numpy()
        else:
            keys = [()] * n
        groups: dict[Any, list[int]] = {}
        for i, key_ in enumerate(keys):
            groups.setdefault(key_, []).append(i)
        for rows in groups.values():
            for colcells in columns:
                members = [colcells[i] for i in rows if not is_total[i] and colcells[i] is not None]
                totals = [colcells[i] for i in rows if is_total[i] and colcells[i] is not None]
                if members:
                    constraints.append((members, totals))

    value_arr = np.array(value, dtype=float)
    missing = np.isnan(value_arr)
    primary = (~missing & (value_arr >= 1) & (value_arr <= T)) if T > 0 else np.zeros(len(value), bool)
    supp = primary.copy()  # for visible cells: suppressed; for hidden ones: sensitive
    supp[n * k:] = primary[n * k:]

    def unknown(c: int) -> bool:
        return bool(supp[c]) or (hidden[c] and any(supp[d] for d in deps[c]))

    def greedy() -> None:
        changed = True
        while changed:
            changed = False
            for members, totals in constraints:
                if totals and all(unknown(c) for c in totals):
                    continue  # the total is not known: nothing to subtract from
                unk = [c for c in members if unknown(c)]
                if not unk:
                    continue
                while len(unk) < 2 or float(np.nansum(value_arr[unk])) <= T:
                    cands = [c for c in members if not unknown(c) and not missing[c]]
                    if not cands:
                        for c in totals:
                            target = proxy[c] if hidden[c] else c
                            if target is not None and not supp[target]:
                                supp[target] = True
                                changed = True
                        break
                    hide(_smallest(cands, value_arr))
                    changed = True
                    unk = [c for c in members if unknown(c)]

    def hide(c: int) -> None:
        supp[proxy[c] if hidden[c] else c] = True

    unprotected = 0
    where: dict[int, list[tuple[list[int], list[int]]]] = {}  # cell -> the constraints it is in
    for con in constraints:
        for c in (*con[0], *con[1]):
            where.setdefault(c, []).append(con)
    if complementary and T > 0:
        greedy()
        # Audit: an attacker who knows every published cell (within the rounding) and every
        # publishable total solves for each sensitive cell; while one can be proved to be 1..T,
        # hide the smallest visible cell next to it and repeat.
        audit = "passed"
        proven: set[int] = set()  # cells shown safe stay safe: hiding more only widens the attacker's bounds
        while audit == "passed":  # each round hides one more cell, so this ends
            weak = _weak_cells(value_arr, hidden, supp, unknown, primary, missing, constraints, T, rounding, proven)
            unprotected = len(weak)
            if not weak:
                break
            picks = set()
            for w in weak:  # per weak cell, the smallest visible cell next to it (or next but one)
                near = [m for members, totals in where[w] for m in (*members, *totals)]
                cands = [c for c in dict.fromkeys(near) if not unknown(c) and not missing[c]]
                if not cands:
                    near2 = [m for c in near for members, totals in where[c] for m in (*members, *totals)]
                    cands = [c for c in dict.fromkeys(near2) if not unknown(c) and not missing[c]]
                if cands:
                    picks.add(_smallest(cands, value_arr))
            if not picks:
                audit = "failed"
                break
            for c in picks:
                hide(c)
            greedy()
    else:
        audit = "not run"
    vis = supp[: n * k].reshape(n, k)
    return primary[: n * k].reshape(n, k), vis, {"audit": audit, "unprotected": unprotected}




def _smallest(cands: list[int], value_arr: np.ndarray) -> int:
    positive = [c for c in cands if value_arr[c] > 0]
    return min(positive or cands, key=lambda c: (value_arr[c], c))


def _weak_cells(value_arr, hidden, supp, unknown, primary, missing, constraints, T, rounding,
                proven: set[int] | None = None) -> list[int]:
    """Sensitive cells (1..T) an attacker can prove to be at most T, by linear programming.

    The attacker knows each published count exactly (or within half the rounding base), every
    total that is in the table or would be publishable (0 or above T), and that counts are >= 0.
    """
    from scipy.optimize import linprog

    m = len(value_arr)
    proven = set() if proven is None else proven
    sensitive = [c for c in range(m) if primary[c] and unknown(c) and c not in proven]
    if not sensitive:
        return []
    bounds = []
    for c in range(m):
        if missing[c] or hidden[c] or unknown(c):
            bounds.append((0, None))
        elif rounding > 1:
            v = float(np.floor(value_arr[c] / rounding + 0.5) * rounding)
            bounds.append((0.0, 0.0) if v == 0 else (max(0.0, v - rounding / 2), v + rounding / 2))
        else:
            bounds.append((value_arr[c], value_arr[c]))
    a_eq, b_eq = [], []
    for members, totals in constraints:
        if any(missing[c] for c in members):
            continue
        row = np.zeros(m)
        row[members] = 1.0
        if len(totals) == 1 and not missing[totals[0]]:
            row[totals[0]] = -1.0
            a_eq.append(row)
            b_eq.append(0.0)
        elif not totals and not any(hidden[c] for c in members):
            # a total outside the table is taken as known when it could be published; totals of
            # the hidden remainders follow from those of the counts, so they are not added
            total = float(value_arr[members].sum())
            if total == 0 or total > T:
                a_eq.append(row)
                b_eq.append(total)
    # The constraints split the cells into independent blocks (e.g. one per dimension and metric):
    # each sensitive cell is bounded within its own block, so the audit runs at every table size.
    parent = list(range(m))

    def find(c: int) -> int:
        while parent[c] != c:
            parent[c] = parent[parent[c]]
            c = parent[c]
        return c

    for row in a_eq:
        cells = np.flatnonzero(row)
        for c in cells[1:]:
            ra, rb = find(int(cells[0])), find(int(c))
            if ra != rb:
                parent[rb] = ra
    blocks: dict[int, list[int]] = {}
    for c in range(m):
        blocks.setdefault(find(c), []).append(c)
    a_all = np.array(a_eq) if a_eq else np.zeros((0, m))
    b_all = np.array(b_eq, dtype=float)
    weak = []
    by_block: dict[int, list[int]] = {}
    for c in sensitive:
        by_block.setdefault(find(c), []).append(c)
    for root, cells_sens in by_block.items():
        cells = blocks[root]
        rows = np.flatnonzero(np.abs(a_all[:, cells]).sum(axis=1) > 0) if len(a_all) else np.array([], dtype=int)
        if not len(rows):
            continue  # in no sum: nothing bounds it
        a_sub, b_sub = a_all[np.ix_(rows, cells)], b_all[rows]
        sub_bounds = [bounds[c] for c in cells]
        pos = {c: i for i, c in enumerate(cells)}
        # One programme for many cells first: a feasible table in which a cell exceeds T proves that
        # cell safe (its maximum is at least that), so the sum of the unproven cells is maximised while
        # that proves more of them; only the cells left are maximised one by one. The same cells are
        # found weak as by one programme per cell, with far fewer programmes.
        left = list(cells_sens)
        while len(left) > 1:
            obj = np.zeros(len(cells))
            obj[[pos[c] for c in left]] = -1.0
            res = linprog(obj, A_eq=a_sub, b_eq=b_sub, bounds=sub_bounds, method="highs")
            if res.status != 0:
                break
            safe = {c for c in left if res.x[pos[c]] >= T + 1 - 1e-9}
            if not safe:
                break
            proven.update(safe)
            left = [c for c in left if c not in safe]
        for c in left:
            obj = np.zeros(len(cells))
            obj[pos[c]] = -1.0
            res = linprog(obj, A_eq=a_sub, b_eq=b_sub, bounds=sub_bounds, method="highs")
            if res.status == 0 and -res.fun < T + 1 - 1e-9:
                weak.append(c)
            else:
                proven.add(c)
    return weak


def service_benchmark(table: pd.DataFrame, value: str | None = None, *, by=None, id_column: str = "client_id",
                      total: bool = True, policy: str | None = None, settings=None) -> pd.DataFrame:
    """A service-wide figure per group, as aggregates under the disclosure-control policy.

    The only way service figures should reach a clinician's self-review (see
    :class:`SelfReview`).

    Parameters
    ----------
    table : DataFrame
        Service-wide tidy rows: one per client for a rate (``value`` true/false, e.g. dropped out),
        or any rows with a numeric ``value`` (e.g. session SRS) for a mean.
    value : str, optional
        The column to summarise; ``None`` counts individuals only.
    by : str or list of str, optional
        Grouping columns (e.g. an identity dimension).
    id_column : str
        Individuals are counted as distinct values of this column (rows when it is absent).
    total : bool
        Add the service total row (``by`` columns = ``"all"``).
    policy, settings
        As in :func:`suppress`.

    Returns
    -------
    DataFrame
        ``*by, n, n_suppressed, n_display`` and, for a true/false ``value``: ``events,
        events_suppressed, events_display, rate, rate_suppressed`` (rate = events / n, computed
        from the rounded counts under a rounding policy); for a numeric ``value``: ``mean,
        mean_suppressed`` (hidden when ``n`` is). ``is_total`` marks the total row. Complementary
        suppression runs across the groups of each ``by`` column.
    """
    by = _as_list(by)
    cols = set(by) | ({value} if value else set())
    missing = sorted(cols - set(table.columns))
    if missing:
        raise ValueError(f"service_benchmark: the table has no column(s) {', '.join(missing)}; "
                         f"columns: {', '.join(map(str, table.columns))}.")
    work = table[[c for c in dict.fromkeys([*by, *( [value] if value else []), id_column]) if c in table.columns]].copy()
    has_id = id_column in work.columns
    kind = None
    if value is not None:
        v = work[value]
        # true/false (or 0/1 integers) is a rate; a float column is a mean even when every value is 0 or 1
        # (e.g. a share of sessions that is 0 for every session of a small caseload)
        if pd.api.types.is_bool_dtype(v) or (not pd.api.types.is_float_dtype(v)
                                             and set(pd.unique(v.dropna())) <= {True, False}):
            kind = "rate"
            work[value] = v.astype("boolean")
            if has_id and work[id_column].duplicated().any():
                raise ValueError(f"service_benchmark: a true/false value needs one row per individual, but "
                                 f"'{id_column}' repeats. Summarise to one row per {id_column} first.")
        elif pd.api.types.is_numeric_dtype(v):
            kind = "mean"
        else:
            raise ValueError(f"service_benchmark: '{value}' must be true/false (a rate) or numeric (a mean); got {v.dtype}.")
        work = work[work[value].notna()]

    def agg(frame: pd.DataFrame) -> dict:
        row = {"n": int(frame[id_column].nunique()) if has_id else len(frame)}
        if kind == "rate":
            row["events"] = int(frame[value].sum())
            row["rate"] = row["events"] / row["n"] if row["n"] else np.nan
        elif kind == "mean":
            row["mean"] = float(frame[value].mean()) if len(frame) else np.nan
        return row

    rows = []
    if by:
        for keys, g in work.groupby(by, dropna=False, sort=True):
            keys = keys if isinstance(keys, tuple) else (keys,)
            rows.append({**dict(zip(by, keys)), **agg(g), "is_total": False})
    if total or not by:
        rows.append({**{b: "all" for b in by}, **agg(work), "is_total": True})
    res = pd.DataFrame(rows)
    counts = ["n"] + (["events"] if kind == "rate" else [])
    margins = [[b for b in by if b != c] for c in by] or None
    return suppress(res, counts, policy, group_columns=margins, total_rows="is_total",
                    rates={"rate": ("events", "n")} if kind == "rate" else None,
                    derived={"mean": ["n"]} if kind == "mean" else None, settings=settings)
