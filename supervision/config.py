"""Settings: thresholds, identity dimensions, focus taxonomy, suppression policy and data path.

Defaults live in ``supervision/defaults.toml`` (documented there, key by key). A user's TOML
file is overlaid on them: only the keys it names change. Unknown keys and values of the wrong
type are refused with a :class:`SettingsError` that names the key, what is allowed and what was
given, so a typo never silently falls back to a default.
"""

from __future__ import annotations

import copy
import tomllib
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

from supervision.errors import SettingsError  # noqa: F401 - raised here, and imported from here everywhere
from supervision.instrument_specs import builtin_instruments, check_instrument_settings

FOCUS_GROUPS = ("check_in", "goal_area", "crisis", "process", "technique", "admin")
SUPPRESSION_POLICIES = ("nhs", "cms", "none")
SEVERITIES = ("error", "warning")

# Keys whose values are restricted to a fixed set (dotted path -> allowed values).
_CHOICES: dict[str, tuple[str, ...]] = {
    "privacy.suppression_policy": SUPPRESSION_POLICIES,
    "validation.score_on_non_attended": SEVERITIES,
    "validation.clinician_mismatch": SEVERITIES,
    "validation.session_after_end": SEVERITIES,
    "validation.end_reason_without_end_date": SEVERITIES,
    "focus_metrics.drift_definition": ("off_goal", "any_change"),
    "alliance.sd_basis": ("before_rupture", "through_rupture", "whole_series"),
    "adaptation.excess_multiplicity": ("bh_selected", "none"),
    "outcome.multiple_sg_select": ("first", "last", "largest", "smallest"),
    "adaptation.fdr_scope": ("clinician", "all"),
}
# Keys that must not be negative.
_NON_NEGATIVE = {"data.future_tolerance_days", "data.after_end_tolerance_days"}

# Allowed range of each number (a list: of each of its numbers): dotted key -> (low, high, open)
# where ``open`` says the bounds themselves are excluded and None is no bound. A ``*.`` key applies
# to that name in every section. Every number must in any case be finite (no inf, no nan). Add a
# line here for every new numeric setting.
_OPEN, _CLOSED = True, False
_RANGES: dict[str, tuple[float | None, float | None, bool]] = {
    "*.confidence": (0, 1, _OPEN),
    "*.effect_confidence": (0, 1, _OPEN),
    "data.future_tolerance_days": (0, 3650, _CLOSED),
    "data.after_end_tolerance_days": (0, 3650, _CLOSED),
    "privacy.nhs_max_suppressed": (0, 1000, _CLOSED),
    "privacy.nhs_rounding": (1, 1000, _CLOSED),
    "privacy.cms_max_suppressed": (0, 1000, _CLOSED),
    "privacy.cms_rounding": (1, 1000, _CLOSED),
    "privacy.min_key_bytes": (16, 4096, _CLOSED),
    "privacy.id_hex_chars": (8, 64, _CLOSED),
    "privacy.age_band_edges": (0, 130, _CLOSED),
    "alliance.srs_cutoff": (0, 40, _CLOSED),
    "alliance.drop_points": (0, 40, _CLOSED),
    "alliance.low_item_threshold": (0, 10, _CLOSED),
    "alliance.sd_criterion": (0, 10, _OPEN),
    "alliance.sd_floor": (0, 40, _OPEN),
    "alliance.min_sessions": (1, 1000, _CLOSED),
    "alliance.max_decline_sessions": (1, 1000, _CLOSED),
    "alliance.repair_window": (1, 1000, _CLOSED),
    "alliance.repair_tolerance": (0, 40, _CLOSED),
    "alliance.min_trend_sessions": (2, 1000, _CLOSED),
    "notes.lock_timeout_seconds": (0, 3600, _CLOSED),
    "outcome.critical_value": (0, 10, _OPEN),
    "outcome.sg_crit2_pct": (0, 1, _CLOSED),
    "outcome.sg_crit3_alpha": (0, 1, _OPEN),
    "outcome.sg_crit3_critical_value": (0, 100, _OPEN),
    "outcome.phq9_caseness": (0, 27, _CLOSED),
    "outcome.gad7_caseness": (0, 21, _CLOSED),
    "outcome.phq9_reliable_change": (0, 27, _OPEN),
    "outcome.gad7_reliable_change": (0, 21, _OPEN),
    "outcome.min_attended": (1, 1000, _CLOSED),
    "outcome.intake_bands": (1, 20, _CLOSED),
    "outcome.min_reference": (1, 1_000_000, _CLOSED),
    "outcome.percentiles": (0, 100, _OPEN),
    "outcome.failure_percentile": (0, 100, _OPEN),
    "outcome.risk_percentile": (0, 100, _OPEN),
    "outcome.min_cases": (1, 1_000_000, _CLOSED),
    "focus_metrics.neglected_after_sessions": (1, 1000, _CLOSED),
    "focus_metrics.link_min_sessions": (1, 1000, _CLOSED),
    "adaptation.min_n": (1, 100_000, _CLOSED),
    "adaptation.min_n_comparator": (1, 100_000, _CLOSED),
    "adaptation.fdr_q": (0, 1, _OPEN),
    "adaptation.variance_prior_df": (0, 1e6, _CLOSED),  # 0 = plain Welch (defaults.toml)
    "adaptation.practical.first_srs": (0, 40, _CLOSED),
    "adaptation.practical.mean_srs": (0, 40, _CLOSED),
    "adaptation.practical.unilateral": (0, 1, _CLOSED),
    "adaptation.practical.unplanned_single_session": (0, 1, _CLOSED),
    "adaptation.practical.reliable_improvement": (0, 1, _CLOSED),
    "adaptation.practical.recovery": (0, 1, _CLOSED),
    "adaptation.practical.identity_addressed": (0, 1, _CLOSED),
    "validation.item_total_tolerance": (0, 1000, _CLOSED),
    "alliance.ceiling_at": (0, 40, _CLOSED),
    "engagement.lost_contact_days": (1, 3650, _CLOSED),
    "outcome.sg_reversal_start": (2, 100, _CLOSED),
    "adaptation.min_own_weight": (0, 1, _CLOSED),
    "agenda.half_life_days": (1, 3650, _CLOSED),
    "agenda.recency_days": (0, 3650, _CLOSED),
    "agenda.today_clients": (0, 50, _CLOSED),
    "agenda.today_min_score": (0, 1000, _CLOSED),
    "agenda.extra_flag_points": (0, 100, _CLOSED),
    "agenda.patterns": (0, 20, _CLOSED),
    "agenda.pattern_distance_points": (0, 100, _CLOSED),
    "agenda.pattern_confidence": (0.5, 1, _OPEN),
    "agenda.pattern_min_clients": (2, 100_000, _CLOSED),
    "agenda.lost_contact_decay_days": (1, 3650, _CLOSED),
    "agenda.measures_missing_sessions": (1, 50, _CLOSED),
    "agenda.high_from": (0, 1000, _CLOSED),
    "agenda.medium_from": (0, 1000, _CLOSED),
    "agenda.no_show_run": (1, 50, _CLOSED),
    "agenda.falling_trend": (-40, 0, _CLOSED),
    "agenda.check_in_share": (0, 1, _CLOSED),
    "agenda.check_in_min_sessions": (1, 1000, _CLOSED),
    "agenda.weights.*": (0, 1000, _CLOSED),
}


def _check_range(dotted: str, value: Any, source: str) -> None:
    """Refuse a number outside its declared range (and any inf or nan) in a sentence."""
    import math

    numbers = list(value) if isinstance(value, (list, tuple)) else [value]
    numbers = [v for v in numbers if isinstance(v, (int, float)) and not isinstance(v, bool)]
    for v in numbers:
        if isinstance(v, float) and not math.isfinite(v):
            raise SettingsError(f"{source}: '{dotted}' must be a finite number, got {v!r}.")
    rule = (_RANGES.get(dotted) or _RANGES.get(dotted.rsplit(".", 1)[0] + ".*")
            or _RANGES.get("*." + dotted.rsplit(".", 1)[-1]))
    if rule is None:
        return
    lo, hi, open_ = rule
    for v in numbers:
        below = lo is not None and (v <= lo if open_ else v < lo)
        above = hi is not None and (v >= hi if open_ else v > hi)
        if below or above:
            if hi is None:
                allowed = f"more than {lo:g}" if open_ else f"{lo:g} or more"
            else:
                allowed = (f"between {lo:g} and {hi:g}" + (" (both excluded)" if open_ else " (both included)"))
            what = "every number of " if isinstance(value, (list, tuple)) else ""
            raise SettingsError(f"{source}: {what}'{dotted}' must be {allowed}, got {v!r}. "
                                "See supervision/defaults.toml for what the setting means.")


def _check_dimensions(dims: Any, source: str) -> None:
    """Identity dimensions are column names of clients: snake_case, each once, not a core column."""
    import re

    core = {"client_id", "clinician_id", "start_date", "end_date", "end_reason", "agreed_goals"}
    seen = set()
    for d in dims:
        if not isinstance(d, str) or not re.fullmatch(r"[a-z][a-z0-9_]{0,63}", d) or d in core:
            raise SettingsError(
                f"{source}: 'identity.dimensions' has {d!r}, which is not a possible column of clients. "
                "Use snake_case column names (letters, digits, _) other than the contract's core columns.")
        if d in seen:
            raise SettingsError(f"{source}: 'identity.dimensions' names {d!r} twice.")
        seen.add(d)


@dataclass(frozen=True)
class FocusCode:
    code: str
    label: str
    group: str


@lru_cache(maxsize=1)
def _defaults() -> dict[str, Any]:
    text = (Path(__file__).parent / "defaults.toml").read_text(encoding="utf-8")
    return tomllib.loads(text)


def _type_name(value: Any) -> str:
    return {bool: "true/false", int: "a whole number", float: "a number", str: "text",
            list: "a list", dict: "a section"}.get(type(value), type(value).__name__)


def _merge(default: dict, given: dict, prefix: str, source: str) -> dict:
    out = copy.deepcopy(default)
    for key, value in given.items():
        dotted = f"{prefix}{key}"
        if prefix == "instruments.":  # [instruments.<prefix>]: any name; checked by the instrument loader
            check_instrument_settings({key: value}, source)
            out[key] = copy.deepcopy(value)
            continue
        if prefix == "identity.labels.":  # [identity.labels]: any value of the data, shown as this text
            if not isinstance(value, str):
                raise SettingsError(f"{source}: '{dotted}' must be text (the label shown for the value {key!r}), "
                                    f"got {value!r}.")
            out[key] = value
            continue
        if key not in default:
            allowed = ", ".join(sorted(default)) or "(none)"
            raise SettingsError(
                f"{source}: unknown setting '{dotted}'. Allowed keys here: {allowed}. "
                "Check the spelling against supervision/defaults.toml."
            )
        ref = default[key]
        if isinstance(ref, dict):
            if not isinstance(value, dict):
                raise SettingsError(f"{source}: '{dotted}' must be a section ([{dotted}]), got {value!r}.")
            out[key] = _merge(ref, value, dotted + ".", source)
            continue
        out[key] = check_value(dotted, ref, value, source)
    return out


def check_value(dotted: str, ref: Any, value: Any, source: str, *, check_type: bool = True) -> Any:
    """One setting's value checked against its default ``ref``: type, allowed values and range.

    Returns the value (a whole number given for a number setting becomes a float). The one place a
    setting is checked: the settings loader and every override of a rule
    (:mod:`supervision.rules`) go through it, so both refuse a value in the same words.
    ``check_type=False`` (keyword overrides to the metric functions, which also take a list of
    numbers, numpy numbers or tuples) checks only the allowed values and the range.
    """
    if check_type:
        ok = isinstance(value, type(ref)) and not (isinstance(value, bool) and not isinstance(ref, bool))
        if isinstance(ref, float) and isinstance(value, int) and not isinstance(value, bool):
            ok, value = True, float(value)
        if not ok:
            raise SettingsError(
                f"{source}: '{dotted}' must be {_type_name(ref)} (default {ref!r}), got {value!r}."
            )
    if dotted in _CHOICES and isinstance(value, str) and value not in _CHOICES[dotted]:
        raise SettingsError(
            f"{source}: '{dotted}' must be one of {', '.join(_CHOICES[dotted])}, got {value!r}."
        )
    if dotted in _NON_NEGATIVE and isinstance(value, (int, float)) and value < 0:
        raise SettingsError(f"{source}: '{dotted}' must be 0 or more, got {value!r}.")
    _check_range(dotted, value, source)
    if dotted == "identity.dimensions":
        _check_dimensions(value, source)
    return value


def _check_focus(codes: Any, source: str) -> tuple[FocusCode, ...]:
    if not isinstance(codes, list) or not codes:
        raise SettingsError(f"{source}: 'focus.codes' must be a non-empty list of [[focus.codes]] entries.")
    out, seen = [], set()
    for i, entry in enumerate(codes, start=1):
        if not isinstance(entry, dict) or set(entry) != {"code", "label", "group"}:
            raise SettingsError(
                f"{source}: focus.codes entry {i} must have exactly the keys code, label, group; got {entry!r}."
            )
        if entry["group"] not in FOCUS_GROUPS:
            raise SettingsError(
                f"{source}: focus.codes entry {i} ('{entry['code']}') has group {entry['group']!r}; "
                f"allowed groups: {', '.join(FOCUS_GROUPS)}."
            )
        if entry["code"] in seen:
            raise SettingsError(f"{source}: focus code '{entry['code']}' is defined twice.")
        seen.add(entry["code"])
        out.append(FocusCode(str(entry["code"]), str(entry["label"]), str(entry["group"])))
    return tuple(out)


def value_label(value, settings=None) -> str:
    """How an identity or context value is shown: its label in ``[identity.labels]`` (of ``settings``,
    else the defaults), otherwise the value with underscores as spaces (``gay_lesbian`` -> "gay or lesbian")."""
    if settings is not None:
        labels = settings["identity"].get("labels", {})
    else:
        labels = _defaults()["identity"].get("labels", {})
    text = str(value)
    return str(labels.get(text, text.replace("_", " ")))


class Settings:
    """Validated settings. Read values with ``settings["section"]["key"]`` or the helpers."""

    def __init__(self, values: dict[str, Any], source: str = "defaults"):
        self._values = values
        self.source = source
        self.focus_codes = _check_focus(values.get("focus", {}).get("codes"), source)

    def __getitem__(self, section: str) -> dict[str, Any]:
        return self._values[section]

    def get(self, dotted: str, default: Any = None) -> Any:
        node: Any = self._values
        for part in dotted.split("."):
            if not isinstance(node, dict) or part not in node:
                return default
            node = node[part]
        return node

    @property
    def focus_code_set(self) -> frozenset[str]:
        return frozenset(c.code for c in self.focus_codes)

    @property
    def identity_dimensions(self) -> tuple[str, ...]:
        return tuple(self._values["identity"]["dimensions"])

    def as_dict(self) -> dict[str, Any]:
        return copy.deepcopy(self._values)

    def __repr__(self) -> str:
        return f"Settings(source={self.source!r})"


def load_settings(path: str | Path | dict | Settings | None = None) -> Settings:
    """Return the settings: the defaults, overlaid with a TOML file or a dict when given.

    Parameters
    ----------
    path : str, Path, dict, Settings or None
        A TOML file, a dict of the same shape (as in tests and notebooks), an existing
        ``Settings`` (returned unchanged) or ``None`` for the defaults.

    Raises
    ------
    SettingsError
        When the file cannot be read or parsed, a key is unknown, or a value has the wrong type
        or is not one of the allowed values. The message names the key, the allowed values and
        what was given.
    """
    if isinstance(path, Settings):
        return path
    if path is None:
        return Settings(copy.deepcopy(_defaults()))
    if isinstance(path, dict):
        given, source = path, "settings"
    else:
        p = Path(path)
        source = str(p)
        try:
            given = tomllib.loads(p.read_text(encoding="utf-8"))
        except FileNotFoundError:
            raise SettingsError(f"settings file '{p}' does not exist. Give the path of a .toml file.") from None
        except tomllib.TOMLDecodeError as exc:
            raise SettingsError(f"settings file '{p}' is not valid TOML: {exc}.") from None
        except (OSError, UnicodeDecodeError) as exc:
            raise SettingsError(f"settings file '{p}' cannot be read: {exc}.") from None
    values = _merge(_defaults(), given, "", source)
    _check_instrument_choice(values, source)
    return Settings(values, source=source)


def _check_instrument_choice(values: dict, source: str) -> None:
    """``[outcome] instrument`` must name an instrument (built in, or defined in ``[instruments]``)."""
    name = values.get("outcome", {}).get("instrument")
    if name is None:
        return
    known = builtin_instruments()
    extra = set(values.get("instruments", {}) or {})
    if name not in known and name not in extra:
        raise SettingsError(f"{source}: 'outcome.instrument' must name an instrument ({', '.join([*known, *sorted(extra)])}), "
                            f"got {name!r}.")


def section_options(settings, section: str, function=None, renames: dict[str, str] | None = None) -> dict:
    """Keyword arguments for a metrics function from one settings section.

    The setting names of ``[section]`` are the keyword names of the area's functions, so
    ``fn(frame, **section_options(settings, "alliance", fn))`` applies the user's settings.

    Parameters
    ----------
    settings : Settings, dict, path or None
        Anything :func:`load_settings` accepts (None = the defaults).
    section : str
        The settings section (``alliance``, ``outcome``, ``focus_metrics``, ``adaptation``).
    function : callable, optional
        Keep only the options this function accepts.
    renames : dict, optional
        Setting name -> keyword name for this function (replacing a generic setting of that name).

    Returns
    -------
    dict
        ``{keyword: value}``; lists become tuples and sub-tables dicts.
    """
    import inspect

    values = {k: tuple(v) if isinstance(v, list) else dict(v) if isinstance(v, dict) else v
              for k, v in dict(load_settings(settings)[section]).items()}
    if function is None:
        return values
    if renames:
        values = {**{k: v for k, v in values.items() if k not in renames and k not in renames.values()},
                  **{renames[k]: v for k, v in values.items() if k in renames}}
    accepted = inspect.signature(function).parameters
    return {k: v for k, v in values.items() if k in accepted}
