"""The fast CSV writer of ``supervision metrics`` writes exactly what pandas' ``to_csv`` writes.

:func:`supervision.io.export.write_safe_csv` builds the text with Arrow (issue 24); a spreadsheet
user must see the same cells as before: ``True``/``False``, ISO dates, floats in Python's shortest
form (``1.0``, ``1e-05``, ``10000000000.0``), empty cells for missing values, minimal quoting,
neutralised formulas, CRLF line ends and a BOM.
"""

import numpy as np
import pandas as pd
import pytest

from supervision import demo_path, load_caseload
from supervision.io import export
from supervision.io.export import neutralise_formulas, write_safe_csv
from supervision.metrics.tables import metric_tables


def pandas_bytes(frame: pd.DataFrame, path) -> bytes:
    neutralise_formulas(frame).to_csv(path, index=False, encoding="utf-8-sig", lineterminator="\r\n")
    return path.read_bytes()


def edge_frame(n: int = 3000, seed: int = 3) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    special = [np.inf, -np.inf, np.nan, 0.0, -0.0, 1e-4, 9.999999e-5, 1e16, 9999999999999998.0, 1e10, -1e12, 5e-324,
               1.7976931348623157e308, 0.1, 1.0, 2.5, 123456789.123]
    x = np.concatenate([special, rng.normal(size=n) * 10.0 ** rng.integers(-8, 18, n)])
    m = len(x)
    text = np.array(["plain", "a,b", 'say "hi"', "line\nbreak", "cr\ronly", "", " lead", "=1+2", "-3", "é ü",
                     "tab\tx", "@x", "+1.5", "\n=cmd"], dtype=object)
    f = pd.DataFrame({
        "float": x,
        "Float64": pd.array(np.where(rng.random(m) < .1, np.nan, x), dtype="Float64"),
        "str": pd.array(rng.choice(text, m), dtype="str"),
        "object": rng.choice(text, m).astype(object),
        "bool": rng.random(m) < .5,
        "boolean": pd.array(np.where(rng.random(m) < .2, None, rng.random(m) < .5), dtype="boolean"),
        "bool_arrow": pd.array(rng.random(m) < .5, dtype="bool[pyarrow]"),
        "int": rng.integers(-5, 10 ** 12, m),
        "Int64": pd.array(np.where(rng.random(m) < .2, None, rng.integers(0, 99, m)), dtype="Int64"),
        "date": pd.to_datetime("2020-01-01") + pd.to_timedelta(rng.integers(0, 2000, m), unit="D"),
        "datetime": pd.to_datetime("2020-01-01") + pd.to_timedelta(rng.integers(0, 2000 * 86400, m), unit="s"),
        "category": pd.Categorical(rng.choice(["x", "y,z", None], m)),
        "float32": rng.normal(size=m).astype("float32"),
        "timedelta": pd.to_timedelta(rng.integers(0, 100, m), unit="h"),
        "=formula_header": 1,
    })
    f.loc[::7, "date"] = pd.NaT
    f.loc[::5, "str"] = None
    return f


def test_edge_cases_are_written_as_pandas_writes_them(tmp_path):
    f = edge_frame()
    fast = write_safe_csv(f, tmp_path / "fast.csv").read_bytes()
    assert fast == pandas_bytes(f, tmp_path / "pandas.csv")
    assert fast.startswith(b"\xef\xbb\xbf") and b"\r\n" in fast and b"'=1+2" in fast and b"True" in fast


def test_blocks_and_empty_tables(tmp_path, monkeypatch):
    monkeypatch.setattr(export, "_CSV_BLOCK", 97)  # many blocks, the last one short
    f = edge_frame(500, seed=4)
    assert write_safe_csv(f, tmp_path / "fast.csv").read_bytes() == pandas_bytes(f, tmp_path / "pandas.csv")
    assert write_safe_csv(f.iloc[:0], tmp_path / "e.csv").read_bytes() == pandas_bytes(f.iloc[:0], tmp_path / "e2.csv")


def test_the_fast_path_is_taken_for_metric_tables(tmp_path, monkeypatch):
    """Every metric table of the demo goes through the Arrow writer (not the pandas fallback), byte-identical."""
    tables = metric_tables(load_caseload(demo_path()))

    def no_fallback(self, *a, **k):
        raise AssertionError("pandas wrote a table the fast writer should have written")

    for name, frame in tables.items():
        expected = pandas_bytes(frame, tmp_path / f"{name}.pandas.csv")
        with monkeypatch.context() as m:
            m.setattr(pd.DataFrame, "to_csv", no_fallback)
            got = write_safe_csv(frame, tmp_path / f"{name}.csv").read_bytes()
        assert got == expected, name


@pytest.mark.parametrize("frame", [pd.DataFrame({"only": ["", "a"]}), pd.DataFrame({"a": [[1, 2], None], "b": [1, 2]})])
def test_frames_it_does_not_know_are_left_to_pandas(tmp_path, frame):
    assert write_safe_csv(frame, tmp_path / "x.csv").read_bytes() == pandas_bytes(frame, tmp_path / "y.csv")
