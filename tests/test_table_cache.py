"""The service tables are stored once per export and settings and read again (issue 24).

Every test uses its own cache folder (``$SUPERVISION_CACHE_DIR``) and its own copy of the demo
export (so files can be changed), and counts how often the metric tables are really computed.
"""

import shutil
import threading

import pandas as pd
import pytest

from supervision import demo_path, load_caseload, table_cache
from supervision.metrics import tables as tables_mod


@pytest.fixture()
def export(tmp_path, monkeypatch):
    folder = tmp_path / "export"
    shutil.copytree(demo_path(), folder)
    monkeypatch.setenv(table_cache.ENV_VAR, str(tmp_path / "cache"))
    return folder


@pytest.fixture()
def computed(monkeypatch):
    """The number of real computations of the metric tables (a list, appended to at each)."""
    calls = []
    real = tables_mod.metric_tables

    def counting(caseload):
        calls.append(caseload.source)
        return real(caseload)

    monkeypatch.setattr(tables_mod, "metric_tables", counting)
    return calls


def same_tables(a: dict, b: dict) -> None:
    assert list(a) == list(b)
    for name in a:
        pd.testing.assert_frame_equal(a[name], b[name], check_exact=True, obj=name)
        assert a[name].attrs == b[name].attrs, name


def test_stored_tables_are_reused_for_the_same_export_and_settings(export, computed):
    first = tables_mod.service_tables(load_caseload(export))
    assert len(computed) == 1 and table_cache.last_event == "miss"
    again = tables_mod.service_tables(load_caseload(export))  # as a new kernel: a fresh load of the same files
    assert len(computed) == 1 and table_cache.last_event == "hit"
    same_tables(first, again)
    table_cache.wait()
    assert len(list((export.parent / "cache").iterdir())) == 1  # one entry, no temporary folder left


def test_read_tables_equal_freshly_computed_ones(export):
    cl = load_caseload(export)
    tables_mod.service_tables(cl)
    same_tables(tables_mod.service_tables(cl), tables_mod.metric_tables(cl))
    assert table_cache.last_event == "hit"


def test_a_changed_file_of_the_export_is_computed_again(export, computed):
    before = tables_mod.service_tables(load_caseload(export))
    sessions = export / "sessions.csv"
    lines = sessions.read_text(encoding="utf-8").splitlines(keepends=True)
    sessions.write_text("".join(lines[:-40]), encoding="utf-8")  # the export's last 40 sessions removed
    after = tables_mod.service_tables(load_caseload(export))
    assert len(computed) == 2 and table_cache.last_event == "miss"
    assert len(after["alliance_sessions"]) < len(before["alliance_sessions"])


def test_a_changed_rule_is_computed_again(export, computed):
    base = tables_mod.service_tables(load_caseload(export))
    strict = load_caseload(export, settings={"alliance": {"sd_criterion": 1.0}})
    changed = tables_mod.service_tables(strict)
    assert len(computed) == 2 and table_cache.last_event == "miss"
    assert set(changed["alliance_ruptures"]["sd_criterion"]) == {1.0} != set(base["alliance_ruptures"]["sd_criterion"])
    tables_mod.service_tables(load_caseload(export, settings={"alliance": {"sd_criterion": 1.0}}))
    tables_mod.service_tables(load_caseload(export))
    assert len(computed) == 2  # both entries are kept and found again


def test_rules_beyond_the_settings_are_part_of_the_key(export):
    cl = load_caseload(export)
    assert table_cache.cache_key(cl) == table_cache.cache_key(load_caseload(export))
    assert table_cache.cache_key(cl, rules={"x": 1}) not in (table_cache.cache_key(cl), table_cache.cache_key(cl, rules={"x": 2}))


@pytest.mark.parametrize("damage", ["garbage", "missing", "manifest"])
def test_a_damaged_entry_is_ignored_and_rebuilt(export, computed, damage):
    good = tables_mod.service_tables(load_caseload(export))
    table_cache.wait()
    entry = next(p for p in (export.parent / "cache").iterdir())
    if damage == "garbage":
        (entry / "alliance_clients.parquet").write_bytes(b"not a parquet file")
    elif damage == "missing":
        (entry / "focus_sessions.parquet").unlink()
    else:
        (entry / table_cache.MANIFEST).write_text("{", encoding="utf-8")
    rebuilt = tables_mod.service_tables(load_caseload(export))
    assert len(computed) == 2 and table_cache.last_event == "broken"
    same_tables(good, rebuilt)
    tables_mod.service_tables(load_caseload(export))
    assert len(computed) == 2 and table_cache.last_event == "hit"  # the rebuilt entry is whole


def test_concurrent_writers_leave_one_whole_entry(export):
    cl = load_caseload(export)
    tables = tables_mod.metric_tables(cl)
    root, key = export.parent / "cache", table_cache.cache_key(cl)
    done = []
    threads = [threading.Thread(target=lambda: done.append(table_cache.write_entry(root, key, tables))) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert done == [root / key] * 4
    assert [p.name for p in root.iterdir()] == [key]  # no temporary folder left behind
    same_tables(table_cache.read_entry(root / key), tables)


def test_never_stored_inside_the_export_or_for_a_scope(export, computed, monkeypatch):
    from supervision.privacy import apply_scope

    monkeypatch.setenv(table_cache.ENV_VAR, str(export / "cache"))
    tables_mod.service_tables(load_caseload(export))
    table_cache.wait()
    assert table_cache.last_event == "off" and not (export / "cache").exists()
    monkeypatch.setenv(table_cache.ENV_VAR, str(export.parent / "cache"))
    tables_mod.service_tables(apply_scope(load_caseload(export), "T01"))
    table_cache.wait()
    assert table_cache.last_event == "off" and not (export.parent / "cache").exists()
    monkeypatch.setenv(table_cache.ENV_VAR, "off")
    tables_mod.service_tables(load_caseload(export))
    assert table_cache.last_event == "off" and len(computed) == 3


def test_an_unwritable_cache_still_gives_the_tables(export, computed, monkeypatch, tmp_path):
    blocker = tmp_path / "a-file"
    blocker.write_text("x")
    monkeypatch.setenv(table_cache.ENV_VAR, str(blocker / "cache"))  # a folder cannot be made under a file
    t = tables_mod.service_tables(load_caseload(export))
    assert len(computed) == 1 and len(t["alliance_clients"]) > 0


def test_the_supervision_page_reads_the_stored_tables(export, computed, tmp_path):
    from supervision.widgets.supervision import SupervisionDashboard

    cl = load_caseload(export)
    SupervisionDashboard(cl, supervisee="T01", notes_path=tmp_path / "n.sqlite")
    assert len(computed) == 1
    dash = SupervisionDashboard(load_caseload(export), supervisee="T02", notes_path=tmp_path / "n.sqlite")
    assert len(computed) == 1 and table_cache.last_event == "hit"  # another supervisee, another kernel: read
    assert "T02" in dash.supervisee.value


def test_suppressed_gaps_are_stored_and_read_again(export, monkeypatch):
    """The small-numbers audit of the adaptation gaps (minutes at service scale) is stored beside the service
    tables: a later report of the same export reads it (the same table), another policy computes its own."""
    from supervision.metrics import adaptation

    calls = []
    real = adaptation.suppress_gaps

    def counting(gaps, **kw):
        calls.append(kw.get("policy"))
        return real(gaps, **kw)

    monkeypatch.setattr(adaptation, "suppress_gaps", counting)
    cl = load_caseload(export)
    gaps = tables_mod.service_tables(cl)["adaptation_gaps"]
    first = tables_mod.stored_suppressed_gaps(cl, gaps, "nhs")
    table_cache.wait()
    again = tables_mod.stored_suppressed_gaps(load_caseload(export), gaps.copy(), "nhs")  # a new process's tables
    assert calls == ["nhs"]
    pd.testing.assert_frame_equal(first, again, check_exact=True)
    assert first.attrs == again.attrs and "suppression" in again.attrs
    pd.testing.assert_frame_equal(again, real(gaps, policy="nhs", settings=cl.settings), check_exact=True)
    changed = gaps.copy()
    changed.loc[changed.index[0], "n_group"] = changed["n_group"].iloc[0] + 1
    tables_mod.stored_suppressed_gaps(cl, changed, "nhs")  # another table: computed, not read
    tables_mod.stored_suppressed_gaps(cl, gaps, "cms")
    assert calls == ["nhs", "nhs", "cms"]


def test_a_page_is_built_before_its_tables_are_stored(export, monkeypatch):
    """Inside ``deferred_writes`` (the supervision page's opening) a computed entry is stored only when the
    block ends; asking for it again inside the block stores it first, and reads it."""
    cl = load_caseload(export)
    root = export.parent / "cache"
    with table_cache.deferred_writes():
        first = tables_mod.service_tables(cl)
        assert table_cache.last_event == "miss"
        assert [t.ident for t in table_cache._pending] == [None]  # its writer waits for the block's end
        assert not root.exists() or not any(p for p in root.iterdir() if not p.name.startswith("."))
    table_cache.wait()
    assert len([p for p in root.iterdir() if not p.name.startswith(".")]) == 1
    with table_cache.deferred_writes():
        shutil.rmtree(root)
        tables_mod.service_tables(cl)  # computed again, its store deferred
        again = tables_mod.service_tables(load_caseload(export))  # the same entry inside the block: stored, then read
        assert table_cache.last_event == "hit"
    same_tables(first, again)
