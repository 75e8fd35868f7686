"""Instrument specifications (SRS, WAI-SR, ORS, PHQ-9, GAD-7, CORE-10) as data.

The specs live in ``instruments.toml`` beside this module, each fact with its source. This
module turns them into :class:`Instrument` records and knows the measure column names of the
data contract: ``<prefix>_<item number>`` for items and ``<prefix>_total`` for totals.

Users add an instrument, or change a fact of a built-in one, in their settings file::

    [instruments.k10]                 # a new instrument: every required key
    name = "Kessler Psychological Distress Scale"
    kind = "outcome"
    items = 10
    item_min = 1
    item_max = 5
    total_min = 10
    total_max = 50
    higher_is_better = false
    citation = "Kessler et al. (2002) Psychol Med 32:959-976"
    licence = "free to use"

    [instruments.phq9]                # a built-in one: only the keys to change
    max_missing = 2

Every key is checked (:func:`instrument_from_spec`, in :mod:`supervision.instrument_specs`, which
the settings use too); a wrong one raises :class:`supervision.config.SettingsError` naming the
key, what is allowed and what was given.
Scoring (items to totals and subscales, missing-item rules) is in
:mod:`supervision.instruments.scoring`.
"""

from __future__ import annotations

import json
from functools import lru_cache

from supervision.config import load_settings
from supervision.instrument_specs import (
    INSTRUMENT_KINDS,
    OPTIONAL_KEYS,
    REQUIRED_KEYS,
    Instrument,
    _builtin,
    _builtin_specs,
    check_instrument_settings,
    instrument_from_spec,
)

__all__ = ["Instrument", "instruments", "measure_columns", "instrument_from_spec", "check_instrument_settings",
           "INSTRUMENT_KINDS", "REQUIRED_KEYS", "OPTIONAL_KEYS"]


@lru_cache(maxsize=32)
def _with_user(user_json: str, source: str) -> dict[str, Instrument]:
    out = dict(_builtin())
    for prefix, spec in json.loads(user_json).items():
        out[prefix] = instrument_from_spec(prefix, spec, source, base=_builtin_specs().get(prefix))
    return out


def instruments(settings=None) -> dict[str, Instrument]:
    """All instrument specs by prefix: the built-in ones plus those of the settings.

    Parameters
    ----------
    settings : Settings, dict, path or None
        Anything :func:`supervision.config.load_settings` accepts. Its ``[instruments]`` section
        adds instruments (``[instruments.<prefix>]`` with every required key) or overrides keys
        of a built-in one. None: the built-in ``srs``, ``wai``, ``ors``, ``phq9``, ``gad7``,
        ``core10``.

    Returns
    -------
    dict
        ``{prefix: Instrument}``, built-in instruments first, in file order. Cached: do not modify.
    """
    if settings is None:
        return _builtin()
    s = load_settings(settings)
    user = s.get("instruments") or {}
    if not user:
        return _builtin()
    return _with_user(json.dumps(user, sort_keys=True), getattr(s, "source", "settings"))


def measure_columns(settings=None) -> dict[str, tuple[Instrument, float, float]]:
    """Every wide measure column of the contract -> (instrument, min, max).

    Items and totals only; scoring outputs (subscales, ``<prefix>_total_prorated``) are not part
    of the input contract.
    """
    out = {}
    for inst in instruments(settings).values():
        for col in inst.columns:
            lo, hi = inst.range_of(col)
            out[col] = (inst, lo, hi)
    return out
