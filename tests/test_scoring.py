"""Instrument specs as data and scoring (supervision.instruments, supervision.instruments.scoring).

Oracles: hand-scored item sets (worked out in the comments), the HL7 US Core PHQ-9
QuestionnaireResponse of ../shared/reference/ (items 2,2,2,2,1,1,2,0,0 -> 12, its own total item),
and plain-pandas recomputation on the demo clinic.
"""

from __future__ import annotations

import json
import math
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import supervision
from supervision.config import SettingsError, load_settings
from supervision.instruments import instrument_from_spec, instruments, measure_columns, scoring
from supervision.instruments.scoring import score_items, score_sessions, total_scores

REFERENCE = Path(__file__).resolve().parents[2] / "shared" / "reference"
BASE = Path(__file__).resolve().parent / "corpus" / "base"

K10 = {"name": "Kessler Psychological Distress Scale", "kind": "outcome", "items": 10, "item_min": 1,
       "item_max": 5, "total_min": 10, "total_max": 50, "higher_is_better": False, "cutoff": 20.0,
       "reliable_change": 8.0, "citation": "Kessler et al. (2002) Psychol Med 32:959-976", "licence": "free"}


def frame(**cols) -> pd.DataFrame:
    return pd.DataFrame({k: pd.Series(v, dtype=float) for k, v in cols.items()})


def items(prefix: str, rows: list[list]) -> dict:
    return {f"{prefix}_{i + 1}": [r[i] for r in rows] for i in range(len(rows[0]))}


# --------------------------------------------------------------------------------------------
# specs
# --------------------------------------------------------------------------------------------

def test_builtin_specs_hold_the_facts_of_the_definitions():
    insts = instruments()
    assert list(insts) == ["srs", "wai", "ors", "phq9", "gad7", "core10"]
    phq, gad, core, ors = insts["phq9"], insts["gad7"], insts["core10"], insts["ors"]
    assert (phq.items, phq.item_max, phq.total_max, phq.cutoff) == (9, 3, 27, 10)
    assert (phq.reliable_change, phq.max_missing) == (6, 0)
    assert (gad.items, gad.cutoff, gad.reliable_change, gad.max_missing) == (7, 8, 4, 0)
    assert (core.reversed_items, core.cutoff, core.reliable_change, core.max_missing) == ((2, 3), 11, 6, 1)
    assert core.reliable_change_confidence == 0.90
    assert (ors.higher_is_better, ors.cutoff, ors.reliable_change, ors.max_missing) == (True, 25, 5, 0)
    assert insts["wai"].subscales == {"goal": (4, 6, 8, 11), "task": (1, 2, 10, 12), "bond": (3, 5, 7, 9)}
    for inst in insts.values():
        assert inst.citation and inst.licence and inst.missing_rule
        assert inst.cutoff_inclusive is True


def test_no_item_wording_is_stored():
    text = (Path(supervision.__file__).parent / "instruments" / "instruments.toml").read_text("utf-8").lower()
    for phrase in ("little interest", "feeling down", "nervous, anxious", "felt tense", "heard, understood"):
        assert phrase not in text


@pytest.mark.parametrize("spec, words", [
    ({**K10, "items": 0}, ["instruments.k10.items", "1 or more"]),
    ({**K10, "item_min": 5, "item_max": 1}, ["item_min", "below item_max"]),
    ({**K10, "reversed_items": [11]}, ["reversed_items", "1 to 10", "[11]"]),
    ({**K10, "subscales": {"total": [1, 2]}}, ["subscales", "'total'"]),
    ({**K10, "max_missing": 10}, ["max_missing", "0 to 9"]),
    ({**K10, "kind": "mood"}, ["kind", "alliance", "'mood'"]),
    ({**K10, "higher_is_better": "no"}, ["instruments.k10.higher_is_better", "true/false", "'no'"]),
    ({**K10, "cutoff": 99.0}, ["cutoff", "10-50"]),
    ({**K10, "colour": "red"}, ["unknown key", "'colour'", "reliable_change"]),
    ({"name": "K10"}, ["missing required key", "'items'", "'licence'"]),
])
def test_bad_user_instrument_names_the_key(spec, words):
    with pytest.raises(SettingsError) as err:
        load_settings({"instruments": {"k10": spec}})
    for w in words:
        assert w in str(err.value)


def test_bad_prefix_and_non_table():
    with pytest.raises(SettingsError, match="lower-case letters"):
        load_settings({"instruments": {"K-10": K10}})
    with pytest.raises(SettingsError, match="must be a table"):
        load_settings({"instruments": {"k10": 3}})


def test_settings_add_an_instrument_and_override_a_builtin():
    s = load_settings({"instruments": {"k10": K10, "phq9": {"max_missing": 2}}})
    insts = instruments(s)
    assert insts["k10"].items == 10 and insts["k10"].higher_is_better is False
    assert insts["phq9"].max_missing == 2 and insts["phq9"].cutoff == 10  # other keys kept
    assert instruments()["phq9"].max_missing == 0  # the built-in is untouched
    cols = measure_columns(s)
    assert cols["k10_total"][1:] == (10, 50) and cols["k10_3"][1:] == (1, 5)
    assert "k10_total" not in measure_columns()


def test_settings_file_with_an_instrument(tmp_path):
    f = tmp_path / "s.toml"
    f.write_text("[instruments.k10]\n" + "\n".join(f"{k} = {json.dumps(v)}" for k, v in K10.items()) + "\n")
    assert instruments(load_settings(f))["k10"].reliable_change == 8.0
    bad = tmp_path / "bad.toml"
    bad.write_text("[instruments.phq9]\nmax_missing = 12\n")
    with pytest.raises(SettingsError, match=str(bad).replace("\\", "\\\\")):
        load_settings(bad)


def test_defaults_have_an_empty_instruments_section():
    assert load_settings()["instruments"] == {}
    assert instruments(load_settings()) is instruments()


def test_instrument_from_spec_directly():
    inst = instrument_from_spec("k10", dict(K10))
    assert inst.item_columns[0] == "k10_1" and inst.prorated_column == "k10_total_prorated"
    assert inst.direction == -1 and instruments()["ors"].direction == 1


# --------------------------------------------------------------------------------------------
# scoring rules
# --------------------------------------------------------------------------------------------

def test_phq9_needs_all_items_unless_opted_in():
    s = frame(**items("phq9", [[2, 2, 2, 2, 1, 1, 2, 0, 0],        # complete: 12
                               [3, 3, 3, 3, np.nan, 3, 3, 3, 3],   # 1 missing: 8 answered, mean 3 -> 27
                               [1, 1, np.nan, 1, np.nan, 1, 1, 1, 1],  # 2 missing: mean 1 -> 9
                               [1, np.nan, np.nan, 1, np.nan, 1, 1, 1, 1]]))  # 3 missing: never
    out = score_sessions(s)
    assert out["phq9_total"].tolist()[:1] == [12.0] and out["phq9_total"].isna().tolist() == [False, True, True, True]
    assert out["phq9_total_prorated"].tolist() == [False, False, False, False]
    opt = score_sessions(s, max_missing={"phq9": 2})
    assert opt["phq9_total"].tolist()[:3] == [12.0, 27.0, 9.0] and np.isnan(opt["phq9_total"].iloc[3])
    assert opt["phq9_total_prorated"].tolist() == [False, True, True, False]
    assert score_sessions(s, max_missing=2)["phq9_total"].tolist()[:3] == [12.0, 27.0, 9.0]


def test_core10_reverses_items_2_and_3_and_prorates_one_item():
    # raw answers; items 2 and 3 scored 4 - answer
    raw = [[1, 4, 3, 2, 0, 0, 1, 2, 3, 4],        # 1+0+1+2+0+0+1+2+3+4 = 14
           [1, np.nan, 3, 2, 0, 0, 1, 2, 3, 4],   # 9 answered: 1+1+2+0+0+1+2+3+4 = 14 -> 14/9*10
           [np.nan, 0, 3, 2, 0, 0, 1, 2, 3, 4],   # reversed item present: 4+1+2+0+0+1+2+3+4 = 17 -> 170/9
           [np.nan, np.nan, 3, 2, 0, 0, 1, 2, 3, 4]]  # two missing: not scored
    out = score_sessions(frame(**items("core10", raw)))
    np.testing.assert_allclose(out["core10_total"].to_numpy()[:3], [14.0, 140 / 9, 170 / 9])
    assert np.isnan(out["core10_total"].iloc[3])
    assert out["core10_total_prorated"].tolist() == [False, True, True, False]


def test_score_items_reverses_only_the_listed_items():
    core = instruments()["core10"]
    tot, pr = score_items(np.array([[4.0, 4.0], [0.0, 0.0]]), core, item_numbers=[2, 5])
    assert tot.tolist() == [4.0, 4.0] and pr.tolist() == [False, False]  # item 2 reversed, item 5 not


def test_visual_analogue_scales_are_never_prorated():
    s = frame(**items("ors", [[5.5, 6.1, 7.0, 8.2], [5.5, np.nan, 7.0, 8.2]]),
              **items("srs", [[9.1, 8.0, 9.9, 9.0], [np.nan, 8.0, 9.9, 9.0]]))
    out = score_sessions(s, max_missing=None)
    assert out["ors_total"].iloc[0] == pytest.approx(26.8) and np.isnan(out["ors_total"].iloc[1])
    assert out["srs_total"].iloc[0] == pytest.approx(36.0) and np.isnan(out["srs_total"].iloc[1])
    assert str(out["ors_total"].iloc[0]) == "26.8"  # no floating-point noise


def test_given_totals_are_kept_and_not_flagged():
    s = frame(gad7_1=[3, 3], gad7_2=[3, 3], gad7_3=[3, 3], gad7_4=[3, 3], gad7_5=[3, 3], gad7_6=[3, 3],
              gad7_7=[3, np.nan], gad7_total=[20.0, np.nan])
    out = score_sessions(s)
    assert out["gad7_total"].iloc[0] == 20.0  # accepted as given although the items sum to 21
    assert np.isnan(out["gad7_total"].iloc[1]) and not out["gad7_total_prorated"].any()
    only_total = score_sessions(frame(ors_total=[12.5, np.nan]))
    assert only_total["ors_total"].tolist()[0] == 12.5 and only_total["ors_total_prorated"].tolist() == [False, False]


def test_wai_subscales_and_total():
    row = [1, 2, 3, 4, 5, 1, 2, 3, 4, 5, 1, 2]
    miss = list(row)
    miss[3] = np.nan  # item 4 belongs to goal
    out = score_sessions(frame(**items("wai", [row, miss])))
    # goal 4,6,8,11 -> 4+1+3+1 = 9; task 1,2,10,12 -> 1+2+5+2 = 10; bond 3,5,7,9 -> 3+5+2+4 = 14
    assert out[["wai_goal", "wai_task", "wai_bond", "wai_total"]].iloc[0].tolist() == [9, 10, 14, 33]
    assert np.isnan(out["wai_goal"].iloc[1]) and np.isnan(out["wai_total"].iloc[1])
    assert out[["wai_task", "wai_bond"]].iloc[1].tolist() == [10, 14]


def test_new_columns_follow_their_instrument_and_input_is_not_modified():
    s = frame(**items("phq9", [[1] * 9]), ors_total=[20.0], source_row=[2])
    before = s.copy()
    out = score_sessions(s)
    pd.testing.assert_frame_equal(s, before)
    cols = list(out.columns)
    assert cols[cols.index("phq9_9") + 1: cols.index("phq9_9") + 3] == ["phq9_total", "phq9_total_prorated"]
    assert cols.index("ors_total_prorated") == cols.index("ors_total") + 1 and cols[-1] == "source_row"
    assert "gad7_total" not in out.columns  # instruments without columns are left alone


def test_output_is_a_new_table_that_shares_nothing_writable_with_the_input():
    s = frame(**items("ors", [[5, 6, 7, 8], [5, np.nan, 7, 8]]), srs_total=[30.0, 31.0])
    s.index = [10, 10]  # duplicate labels are kept, never aligned
    before = s.copy()
    out = score_sessions(s)
    assert out.index.tolist() == [10, 10] and out["ors_total"].tolist()[0] == 26
    out.iloc[0, 0] = 99.0
    out.loc[:, "srs_total"] = 0.0
    pd.testing.assert_frame_equal(s, before)


def test_total_scores_are_the_score_sessions_columns():
    """Items are scored only where no total is given; the result is score_sessions' two columns."""
    rng = np.random.default_rng(3)
    n = 400
    data = {f"core10_{i}": rng.integers(0, 5, n).astype(float) for i in range(1, 11)}
    data["core10_total"] = np.where(rng.random(n) < 0.3, rng.integers(0, 41, n), np.nan)
    s = pd.DataFrame(data)
    for c in ("core10_2", "core10_5", "core10_9"):
        s.loc[rng.random(n) < 0.15, c] = np.nan
    inst = instruments()["core10"]
    for mm in (None, 0, 2):
        total, prorated = total_scores(s, inst, max_missing=mm)
        out = score_sessions(s, [inst], max_missing=mm)
        np.testing.assert_array_equal(total, out["core10_total"].to_numpy())
        np.testing.assert_array_equal(prorated, out["core10_total_prorated"].to_numpy())
    given = s["core10_total"].notna().to_numpy()
    assert (total[given] == s["core10_total"].to_numpy()[given]).all() and not prorated[given].any()


def _by_hand(answers: list, inst, numbers: list[int], rule: int) -> tuple[float, bool]:
    """One row scored the plain way: reverse, then sum, prorate or give up."""
    def number(a):
        try:
            return float(a)
        except (TypeError, ValueError):
            return math.nan
    scored = [inst.item_min + inst.item_max - a if i in inst.reversed_items else a
              for i, a in zip(numbers, map(number, answers)) if not math.isnan(a)]
    missing = len(numbers) - len(scored)
    if missing == 0:
        return sum(scored), False
    if missing <= rule and scored:
        return sum(scored) / len(scored) * len(numbers), True
    return math.nan, False


def test_fast_route_matches_a_row_by_row_recomputation(monkeypatch):
    """score_sessions' block-wise route against scoring each row by hand: complete rows, missing
    items within and beyond each rule, given totals and subscales kept, reverse-keyed CORE-10
    items, WAI subscales, and ORS read from text."""
    monkeypatch.setattr(scoring, "_BLOCK", 2)  # several blocks of rows, the last one short
    nan = np.nan
    core = [[1, 4, 3, 2, 0, 0, 1, 2, 3, 4],          # complete, items 2 and 3 reversed: 14
            [1, nan, 3, 2, 0, 0, 1, 2, 3, 4],        # one missing: prorated (CORE rule)
            [nan, nan, 3, 2, 0, 0, 1, 2, 3, 4],      # two missing: not scored
            [4, 0, 0, 4, 4, 4, 4, 4, 4, 4],          # complete, but a total is given
            [nan] * 10]
    phq = [[2, 2, 2, 2, 1, 1, 2, 0, 0],
           [3, 3, nan, 3, 3, nan, 3, 3, 3],          # two missing: prorated with the opt-in rule
           [1, nan, nan, 1, nan, 1, 1, 1, 1],        # three missing: not scored
           [nan] * 9,
           [1] * 9]                                  # a total is given
    wai = [[1, 2, 3, 4, 5, 1, 2, 3, 4, 5, 1, 2],
           [1, 2, 3, nan, 5, 1, 2, 3, 4, 5, 1, 2],   # goal incomplete, task and bond complete
           [nan] * 12,
           [5, 4, 3, 2, 1, 5, 4, 3, 2, 1, 5, 4],     # wai_goal given
           [2] * 12]
    ors = [["5.5", "6.1", "7", "8.2"], ["5.5", None, "7", "8.2"], ["x", "6.1", "7", "8.2"],
           ["9.9", "9.9", "9.9", "9.9"], [None] * 4]
    s = pd.DataFrame({**items("core10", core), **items("phq9", phq), **items("wai", wai)})
    s["core10_total"] = [nan, nan, nan, 20.0, nan]
    s["phq9_total"] = [nan, nan, nan, nan, 27.0]
    s["wai_goal"] = [nan, nan, nan, 3.5, nan]
    for col, values in items("ors", ors).items():
        s[col] = pd.Series(values, dtype=object)
    s["ors_total"] = pd.Series([None, None, None, "30", None], dtype=object)
    insts = instruments()
    out = score_sessions(s, [insts[p] for p in ("core10", "phq9", "wai", "ors")], max_missing={"phq9": 2})

    def expect(prefix, rows, numbers, given_col, rule):
        inst = insts[prefix]
        given = pd.to_numeric(s[given_col], errors="coerce") if given_col in s else pd.Series([nan] * len(rows))
        scored = [(g, False) if not math.isnan(g) else _by_hand([r[i - 1] for i in numbers], inst, numbers, rule)
                  for g, r in zip(given, rows)]
        return [v for v, _ in scored], [f for _, f in scored]

    checks = [("core10", core, range(1, 11), "core10_total", 1), ("phq9", phq, range(1, 10), "phq9_total", 2),
              ("wai", wai, range(1, 13), "wai_total", 0), ("ors", ors, range(1, 5), "ors_total", 0)]
    for prefix, rows, numbers, col, rule in checks:
        values, flags = expect(prefix, rows, list(numbers), col, rule)
        assert out[col].tolist() == pytest.approx(values, abs=1e-9, nan_ok=True), col
        assert out[f"{prefix}_total_prorated"].tolist() == flags, col
    for sub, numbers in insts["wai"].subscales.items():
        values, _ = expect("wai", wai, list(numbers), f"wai_{sub}", 0)
        assert out[f"wai_{sub}"].tolist() == pytest.approx(values, abs=1e-9, nan_ok=True), sub
    # the table shows what the rows are meant to show
    assert out["core10_total"].tolist()[:2] == pytest.approx([14.0, 140 / 9]) and out["core10_total"].iloc[3] == 20
    assert out["ors_total"].tolist()[:4] == pytest.approx([26.8, nan, nan, 30.0], nan_ok=True)
    assert out["wai_goal"].iloc[3] == 3.5 and np.isnan(out["wai_goal"].iloc[1]) and out["wai_task"].iloc[1] == 10


@pytest.mark.parametrize("k", [4, 9, 12, 17, 130])
def test_fast_route_is_bit_identical_to_score_items(k, monkeypatch):
    """The column-wise sums add in numpy's order (pairwise from 8 items, halves above 128), so every
    computed value has the bits score_items gives for its row, signed zeros and prorating included."""
    monkeypatch.setattr(scoring, "_BLOCK", 7)
    plain = [1, *range(4, k + 1)]  # the items that are not reverse-keyed
    inst = instrument_from_spec("kx", {**K10, "items": k, "item_min": 0, "item_max": 4, "total_min": 0,
                                       "total_max": 4 * k, "cutoff": 1.0, "reversed_items": [2, 3],
                                       "subscales": {"plain": plain}, "max_missing": 2,
                                       "subscale_max_missing": 1})
    rng = np.random.default_rng(k)
    n = 300
    # answers of mixed magnitudes and signs: any other order of adding gives other bits
    x = rng.integers(0, 41, (n, k)) / 10 * 10.0 ** rng.integers(0, 9, (n, k)) * rng.choice([1, -1], (n, k))
    x[rng.random((n, k)) < 1.5 / k] = np.nan  # 1.5 missing items a row on average
    x[:20] = np.where(np.isnan(x[:20]), -0.0, x[:20])  # complete rows
    x[0] = -0.0  # sums to -0.0, which numpy's sum (from 0.0) gives as 0.0
    given = np.where(rng.random(n) < 0.2, 7.0, np.nan)
    given[:20] = np.nan
    s = pd.DataFrame(x, columns=list(inst.item_columns)).assign(kx_total=given)
    out = score_sessions(s, [inst])

    def bits(values):
        return np.asarray(values, dtype=float).view(np.int64)

    total, prorated = score_items(x, inst, max_missing=2)
    use = np.isnan(given) & ~np.isnan(total)
    np.testing.assert_array_equal(bits(out["kx_total"]), bits(np.where(use, total, given)))
    np.testing.assert_array_equal(out["kx_total_prorated"], use & prorated)
    # a C-ordered block, as the scoring always built it (numpy sums an F-ordered one in another order)
    block = np.ascontiguousarray(x[:, [i - 1 for i in plain]])
    sub, _ = score_items(block, inst, max_missing=1, item_numbers=plain)
    np.testing.assert_array_equal(bits(out["kx_plain"]), bits(sub))
    assert bits(out["kx_plain"])[0] == 0 and (use & prorated).any() and (use & ~prorated).any()


def test_bad_arguments():
    with pytest.raises(ValueError, match="max_missing for phq9"):
        score_sessions(frame(phq9_1=[1.0]), max_missing=9)
    with pytest.raises(ValueError, match="unknown instrument 'bdi'"):
        score_sessions(frame(phq9_1=[1.0]), ["bdi"])
    with pytest.raises(TypeError):
        score_sessions([1, 2])


def test_us_core_phq9_questionnaire_response_scores_12():
    """Oracle: the HL7 US Core example (CC0), answers mapped by LOINC code, never by position."""
    qr = json.loads((REFERENCE / "us_core_phq9_questionnaire_response.json").read_text("utf-8"))
    loinc_items = ["44250-9", "44255-8", "44259-0", "44254-1", "44251-7", "44258-2", "44252-5", "44253-3", "44260-8"]
    answer = {"LA6568-5": 0, "LA6569-3": 1, "LA6570-1": 2, "LA6571-9": 3}  # LOINC LL358-3
    by_code = {}
    for item in qr["item"]:
        code = item["linkId"].strip("/")
        ans = item["answer"][0]
        by_code[code] = answer.get(ans.get("valueCoding", {}).get("code"), ans.get("valueDecimal"))
    row = {f"phq9_{i + 1}": [float(by_code[c])] for i, c in enumerate(loinc_items)}
    out = score_sessions(pd.DataFrame(row))
    assert out["phq9_total"].iloc[0] == 12.0 == float(by_code["44261-6"])


# --------------------------------------------------------------------------------------------
# the loader scores every caseload
# --------------------------------------------------------------------------------------------

def test_demo_caseload_has_totals_wherever_items_are_complete():
    cl = supervision.load_caseload()
    s = cl.sessions
    for prefix in ("srs", "ors", "phq9", "gad7"):
        inst = instruments()[prefix]
        complete = s[inst.item_columns].notna().all(axis=1)
        assert s.loc[complete, inst.total_column].notna().all()
        plain = s[inst.item_columns].sum(axis=1, min_count=inst.items)
        given = s[inst.total_column].where(~complete)
        np.testing.assert_allclose(s[inst.total_column].fillna(-1), given.fillna(plain).fillna(-1), atol=1e-9)
    # CORE-10: reversed items, one missing item prorated
    core = instruments()["core10"]
    x = s[core.item_columns].to_numpy(dtype=float).copy()
    x[:, [1, 2]] = 4 - x[:, [1, 2]]
    n_ans = (~np.isnan(x)).sum(axis=1)
    expect = np.where(n_ans == 10, np.nansum(x, axis=1),
                      np.where(n_ans == 9, np.nansum(x, axis=1) / 9 * 10, np.nan))
    computed = s["core10_total"].where(n_ans > 0)
    has_items = n_ans > 0
    np.testing.assert_allclose(computed[has_items].fillna(-1), pd.Series(expect)[has_items].fillna(-1), atol=1e-9)
    assert s["core10_total_prorated"].sum() == int((n_ans == 9).sum())
    assert {"wai_goal", "wai_task", "wai_bond"} <= set(s.columns)


def _copy_base(tmp_path: Path) -> Path:
    dst = tmp_path / "export"
    shutil.copytree(BASE, dst)
    return dst


def test_loader_reads_and_scores_a_settings_instrument(tmp_path):
    folder = _copy_base(tmp_path)
    sessions = pd.read_csv(folder / "sessions.csv", dtype=str)
    att = sessions["attendance"] == "attended"
    for i in range(1, 11):
        sessions[f"k10_{i}"] = np.where(att, "2", "")
    sessions.loc[att.idxmax(), "k10_1"] = ""  # one missing item: not scored (max_missing 0)
    sessions.to_csv(folder / "sessions.csv", index=False)
    cl = supervision.load_caseload(folder, settings={"instruments": {"k10": K10}})
    assert cl.usable
    assert not (cl.report["column"].astype(str).str.startswith("k10")).any(), cl.report
    k = cl.sessions["k10_total"]
    assert (k == 20).sum() == int(att.sum()) - 1 and k.isna().sum() == len(k) - (int(att.sum()) - 1)
    # without the settings the columns are not part of the contract
    plain = supervision.load_caseload(folder)
    assert "k10_total" not in plain.sessions.columns
    assert (plain.report["check"] == "unknown_column").any()


def test_loader_uses_a_settings_missing_item_rule(tmp_path):
    folder = _copy_base(tmp_path)
    scores = pd.read_csv(folder / "scores.csv", dtype=str)
    phq = scores[(scores["instrument"] == "phq9") & (scores["item"] != "total")]
    if phq.empty:
        pytest.skip("the base corpus has no PHQ-9 items")
    first = phq.groupby(["client_id", "session_date"]).size()
    key = first[first == 9].index[0]
    drop = phq[(phq["client_id"] == key[0]) & (phq["session_date"] == key[1]) & (phq["item"] == "9")].index
    scores.drop(index=drop).to_csv(folder / "scores.csv", index=False)
    strict = supervision.load_caseload(folder)
    opted = supervision.load_caseload(folder, settings={"instruments": {"phq9": {"max_missing": 2}}})

    def row(cl):
        s = cl.sessions
        return s[(s["client_id"] == key[0]) & (s["session_date"] == pd.Timestamp(key[1]))].iloc[0]

    assert np.isnan(row(strict)["phq9_total"]) and not row(strict)["phq9_total_prorated"]
    r = row(opted)
    answered = [r[f"phq9_{i}"] for i in range(1, 9)]
    assert r["phq9_total_prorated"] and r["phq9_total"] == pytest.approx(np.mean(answered) * 9)


def test_loader_reads_a_settings_instrument_from_the_long_scores_table(tmp_path):
    folder = _copy_base(tmp_path)
    scores = pd.read_csv(folder / "scores.csv", dtype=str)
    first = scores.iloc[0]
    extra = pd.DataFrame([{"client_id": first["client_id"], "session_date": first["session_date"],
                           "instrument": "k10", "item": str(i), "value": "3"} for i in range(1, 11)])
    pd.concat([scores, extra]).to_csv(folder / "scores.csv", index=False)
    cl = supervision.load_caseload(folder, settings={"instruments": {"k10": K10}})
    assert cl.status == "clean", cl.report
    got = cl.sessions.loc[cl.sessions["k10_total"].notna(), ["client_id", "k10_total", "k10_total_prorated"]]
    assert got.values.tolist() == [[first["client_id"], 30.0, False]]
    unknown = supervision.load_caseload(folder)  # without the settings: an unknown instrument
    assert (unknown.report["column"] == "instrument").sum() == 10
