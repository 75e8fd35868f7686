"""Instrument specifications as data, and the rules each key of a spec must follow.

The facts live in ``supervision/instruments/instruments.toml``; this module turns a spec (built
in, or from a settings file's ``[instruments.<prefix>]``) into an :class:`Instrument` record and
refuses a wrong key with a :class:`~supervision.errors.SettingsError` naming the key, what is
allowed and what was given.

It sits below the settings (:mod:`supervision.config` checks a settings file's instruments with
it) and imports nothing of the workbook but the error class. The instruments of a given settings
file, and the public names, are in :mod:`supervision.instruments`.
"""

from __future__ import annotations

import re
import tomllib
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any

from supervision.errors import SettingsError

__all__ = ["Instrument", "instrument_from_spec", "check_instrument_settings", "builtin_instruments",
           "INSTRUMENT_KINDS", "REQUIRED_KEYS", "OPTIONAL_KEYS"]

INSTRUMENT_KINDS = ("alliance", "outcome", "other")
#: Keys every new instrument must give (type names as in the error messages).
REQUIRED_KEYS: dict[str, str] = {
    "name": "text", "kind": "text", "items": "a whole number", "item_min": "a number", "item_max": "a number",
    "total_min": "a number", "total_max": "a number", "higher_is_better": "true/false", "citation": "text",
    "licence": "text",
}
#: Keys an instrument may give.
OPTIONAL_KEYS: dict[str, str] = {
    "item_labels": "a list of text", "cutoff": "a number", "cutoff_inclusive": "true/false",
    "reliable_change": "a number", "reliable_change_confidence": "a number between 0 and 1",
    "reversed_items": "a list of item numbers", "risk_items": "a list of item numbers", "subscales": "a table of {name = [item numbers]}",
    "max_missing": "a whole number", "subscale_max_missing": "a whole number", "missing_rule": "text",
    "clinical_mean": "a number", "clinical_sd": "a number", "functional_mean": "a number",
    "functional_sd": "a number", "whole_items": "true/false",
}
_PREFIX = re.compile(r"^[a-z][a-z0-9]*$")
_SUBSCALE = re.compile(r"^[a-z][a-z0-9_]*$")


@dataclass(frozen=True)
class Instrument:
    """One instrument: what its columns hold and how to read them (no item wording).

    ``cutoff_inclusive`` says whether a total equal to ``cutoff`` is in the clinical range
    (PHQ-9 >= 10, ORS <= 25); ``max_missing`` is the number of missing items that may be
    prorated (``missing_rule`` states the rule and its source).
    """

    prefix: str
    name: str
    kind: str
    items: int
    item_min: float
    item_max: float
    total_min: float
    total_max: float
    higher_is_better: bool
    citation: str
    licence: str
    item_labels: tuple[str, ...] = ()
    cutoff: float | None = None
    cutoff_inclusive: bool = True
    reliable_change: float | None = None
    reliable_change_confidence: float | None = None
    reversed_items: tuple[int, ...] = ()
    #: Items asking about risk to self (any answer above the item's minimum goes to the agenda's risk band).
    risk_items: tuple[int, ...] = ()
    subscales: dict[str, tuple[int, ...]] = field(default_factory=dict)
    max_missing: int = 0
    subscale_max_missing: int = 0
    missing_rule: str = ""
    clinical_mean: float | None = None
    clinical_sd: float | None = None
    functional_mean: float | None = None
    functional_sd: float | None = None
    whole_items: bool = False  # answers score whole numbers only (a Likert scale), not a visual analogue scale

    @property
    def item_columns(self) -> list[str]:
        return [f"{self.prefix}_{i}" for i in range(1, self.items + 1)]

    @property
    def total_column(self) -> str:
        return f"{self.prefix}_total"

    @property
    def prorated_column(self) -> str:
        return f"{self.prefix}_total_prorated"

    @property
    def subscale_columns(self) -> dict[str, str]:
        """Subscale name -> output column (``wai_goal``)."""
        return {name: f"{self.prefix}_{name}" for name in self.subscales}

    @property
    def columns(self) -> list[str]:
        return [*self.item_columns, self.total_column]

    @property
    def direction(self) -> int:
        """+1 when a higher score is better, -1 when lower is better."""
        return 1 if self.higher_is_better else -1

    def range_of(self, column: str) -> tuple[float, float]:
        """Allowed (min, max) of one of this instrument's measure columns."""
        if column == self.total_column:
            return self.total_min, self.total_max
        return self.item_min, self.item_max


# --------------------------------------------------------------------------------------------
# validation of a spec (built-in or from the settings)
# --------------------------------------------------------------------------------------------

def _error(message: str) -> SettingsError:
    return SettingsError(message)


def _is_number(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool)


def _is_whole(v: Any) -> bool:
    return _is_number(v) and float(v) == int(v)


def _check_type(where: str, key: str, value: Any, kind: str) -> Any:
    bad = False
    if kind == "text":
        bad = not isinstance(value, str) or not value.strip()
    elif kind == "a whole number":
        bad = not _is_whole(value)
        value = int(value) if not bad else value
    elif kind in ("a number", "a number between 0 and 1"):
        bad = not _is_number(value)
        value = float(value) if not bad else value
        if not bad and kind == "a number between 0 and 1":
            bad = not 0.0 < value < 1.0
    elif kind == "true/false":
        bad = not isinstance(value, bool)
    elif kind == "a list of text":
        bad = not isinstance(value, list) or not all(isinstance(x, str) and x for x in value)
        value = tuple(value) if not bad else value
    elif kind == "a list of item numbers":
        bad = not isinstance(value, list) or not all(_is_whole(x) for x in value)
        value = tuple(int(x) for x in value) if not bad else value
    elif kind.startswith("a table"):
        bad = not isinstance(value, dict) or not all(
            isinstance(v, list) and v and all(_is_whole(x) for x in v) for v in value.values())
        value = {str(k): tuple(int(x) for x in v) for k, v in value.items()} if not bad else value
    if bad:
        raise _error(f"{where}: '{key}' must be {kind}; got {value!r}.")
    return value


def instrument_from_spec(prefix: str, spec: dict, source: str = "instruments.toml",
                         base: dict | None = None) -> Instrument:
    """Check one instrument spec and return the :class:`Instrument`.

    Parameters
    ----------
    prefix : str
        Column prefix: lower-case letters and digits, starting with a letter (``phq9``).
    spec : dict
        The keys of ``instruments.toml`` (:data:`REQUIRED_KEYS`, :data:`OPTIONAL_KEYS`).
    source : str
        Where the spec came from, for error messages (a settings file path).
    base : dict, optional
        A built-in spec that ``spec`` overrides key by key (then no key is required).

    Raises
    ------
    supervision.config.SettingsError
        Naming ``instruments.<prefix>.<key>``, what is allowed and what was given.
    """
    where = f"{source}: [instruments.{prefix}]"
    if not isinstance(prefix, str) or not _PREFIX.match(prefix):
        raise _error(f"{source}: instrument prefix {prefix!r} must be lower-case letters and digits starting "
                     "with a letter (it becomes the column prefix, e.g. 'k10' -> k10_1 ... k10_total).")
    if not isinstance(spec, dict):
        raise _error(f"{where} must be a table of instrument keys; got {spec!r}.")
    allowed = {**REQUIRED_KEYS, **OPTIONAL_KEYS}
    unknown = sorted(set(spec) - set(allowed))
    if unknown:
        raise _error(f"{where}: unknown key {', '.join(repr(k) for k in unknown)}. "
                     f"Allowed keys: {', '.join(allowed)}.")
    merged = {**(base or {}), **spec}
    missing = [k for k in REQUIRED_KEYS if k not in merged]
    if missing:
        raise _error(f"{where}: missing required key {', '.join(repr(k) for k in missing)}. A new instrument needs "
                     f"all of: {', '.join(REQUIRED_KEYS)}.")
    values = {k: _check_type(source, f"instruments.{prefix}.{k}", v, allowed[k])
              for k, v in merged.items()}
    key = f"{source}: 'instruments.{prefix}"
    if values["kind"] not in INSTRUMENT_KINDS:
        raise _error(f"{key}.kind' must be one of {', '.join(INSTRUMENT_KINDS)}; got {values['kind']!r}.")
    n = values["items"]
    if n < 1:
        raise _error(f"{key}.items' must be 1 or more; got {n!r}.")
    if not values["item_min"] < values["item_max"]:
        raise _error(f"{key}.item_min' must be below item_max; got {values['item_min']!r} and {values['item_max']!r}.")
    if not values["total_min"] < values["total_max"]:
        raise _error(f"{key}.total_min' must be below total_max; got {values['total_min']!r} and "
                     f"{values['total_max']!r}.")
    labels = values.get("item_labels", ())
    if labels and len(labels) != n:
        raise _error(f"{key}.item_labels' must name all {n} items; got {len(labels)} names.")
    for name in ("reversed_items", "risk_items"):
        bad = [i for i in values.get(name, ()) if not 1 <= i <= n]
        if bad:
            raise _error(f"{key}.{name}' must be item numbers from 1 to {n}; got {bad}.")
    for sub, items in values.get("subscales", {}).items():
        if not _SUBSCALE.match(sub) or sub == "total" or sub.endswith("_prorated"):
            raise _error(f"{key}.subscales' name {sub!r} must be snake_case letters (not 'total'); "
                         f"it becomes the column {prefix}_<name>.")
        bad = [i for i in items if not 1 <= i <= n]
        if bad or len(set(items)) != len(items):
            raise _error(f"{key}.subscales.{sub}' must list distinct item numbers from 1 to {n}; got {list(items)}.")
    for name in ("max_missing", "subscale_max_missing"):
        v = values.get(name, 0)
        if not 0 <= v < n:
            raise _error(f"{key}.{name}' must be from 0 to {n - 1} (items that may be missing); got {v!r}.")
    for name in ("reliable_change", "clinical_sd", "functional_sd"):
        if name in values and values[name] <= 0:
            raise _error(f"{key}.{name}' must be above 0; got {values[name]!r}.")
    if "cutoff" in values and not values["total_min"] <= values["cutoff"] <= values["total_max"]:
        raise _error(f"{key}.cutoff' must be within the total range {values['total_min']:g}-{values['total_max']:g}; "
                     f"got {values['cutoff']!r}.")
    return Instrument(prefix=prefix, **values)


@lru_cache(maxsize=1)
def _builtin_specs() -> dict[str, dict]:
    text = (Path(__file__).parent / "instruments" / "instruments.toml").read_text("utf-8")
    return tomllib.loads(text)


@lru_cache(maxsize=1)
def _builtin() -> dict[str, Instrument]:
    return {p: instrument_from_spec(p, dict(s)) for p, s in _builtin_specs().items()}


def check_instrument_settings(section: Any, source: str = "settings") -> dict:
    """Validate the ``[instruments]`` section of a settings file; return it unchanged.

    Raises :class:`supervision.config.SettingsError` naming the key when a spec is wrong.
    """
    if not isinstance(section, dict):
        raise _error(f"{source}: 'instruments' must be a section of [instruments.<prefix>] tables; got {section!r}.")
    for prefix, spec in section.items():
        instrument_from_spec(prefix, spec, source, base=_builtin_specs().get(prefix))
    return section


def builtin_instruments() -> dict[str, Instrument]:
    """The built-in instruments of ``instruments.toml`` by prefix, in file order. Cached: do not modify."""
    return _builtin()
