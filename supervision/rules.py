"""The rules of each area, read once from the settings: one object from ``defaults.toml`` to the screen.

A threshold used to travel from ``supervision/defaults.toml`` to a view as a TOML key, a keyword
dict, a widget dataclass and keywords again, and its default was written in several places. Here
each area has one frozen dataclass holding its rules, built from the validated
:class:`~supervision.config.Settings`:

- :class:`AllianceRules`: ``[alliance]`` (the SRS cut-off and the rupture rule, docs/methods.md
  §1.2 and §2.5) and the lost-contact window of ``[engagement]`` that closes an open rupture;
- :class:`OutcomeRules`: ``[outcome]`` (docs/methods.md §2.1-2.4, §2.6);
- :class:`FocusRules`: ``[focus_metrics]`` and the focus codes ``[[focus.codes]]`` (DESIGN.md §4);
- :class:`EngagementRules`: ``[engagement]`` (docs/methods.md §2.7);
- :class:`AdaptationRules`: ``[adaptation]`` with ``[adaptation.practical]`` (docs/methods.md §3);
- :class:`AgendaRules`: ``[agenda]`` with ``[agenda.weights]`` (docs/methods.md §9.1);
- :class:`PrivacyRules`: ``[privacy]`` (docs/methods.md §3.4);

and :class:`Rules` holds one of each (``caseload.rules``, built when a caseload is loaded).

Every default is written once, in ``defaults.toml``: the dataclasses have no default values.
Every value is checked once, by the settings loader (``config._RANGES``); an override, whether
``rules.alliance.replace(sd_criterion=1.5)`` or a keyword given to a metric function
(``ruptures(sa, sd_criterion=1.5)``), goes through the same check
(:func:`supervision.config.check_value`) and is refused in the same words, naming the key.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from functools import lru_cache
from typing import Any, ClassVar, TypeVar

from supervision.config import FocusCode, Settings, SettingsError, _defaults, check_value, load_settings

__all__ = ["AllianceRules", "OutcomeRules", "FocusRules", "EngagementRules", "AdaptationRules", "AgendaRules",
           "PrivacyRules", "Rules", "default_rules", "area_rules", "FROM_RULES"]

A = TypeVar("A", bound="_AreaRules")


class _FromRules:
    """The default of an option whose None already means something (``sg_crit2_pct=None``: criterion off)."""

    def __repr__(self) -> str:
        return "FROM_RULES"


#: "take this option from the rules", for the few options where None has a meaning of its own.
FROM_RULES = _FromRules()


def _frozen(value: Any) -> Any:
    """Lists become tuples (hashable, as the metric functions take them); sub-tables plain dicts."""
    if isinstance(value, list):
        return tuple(_frozen(v) for v in value)
    if isinstance(value, Mapping):
        return {k: _frozen(v) for k, v in value.items()}
    return value


class _AreaRules:
    """What every area's rules share: built from the settings, replaced with the settings' checks."""

    #: the settings section of the area (``[alliance]`` ...); a field named elsewhere is in ``_KEYS``
    _SECTION: ClassVar[str] = ""
    #: field -> dotted setting, for fields that do not live in ``_SECTION``
    _KEYS: ClassVar[dict[str, str]] = {}

    @classmethod
    def _dotted(cls, name: str) -> str:
        return cls._KEYS.get(name, f"{cls._SECTION}.{name}")

    @classmethod
    def _value(cls, settings: Settings, name: str) -> Any:
        return _frozen(settings.get(cls._dotted(name)))

    @classmethod
    def from_settings(cls: type[A], settings=None) -> A:
        """The area's rules from the settings (anything :func:`~supervision.config.load_settings` takes)."""
        settings = load_settings(settings)
        return cls(**{f.name: cls._value(settings, f.name) for f in fields(cls)})

    @classmethod
    def _area(cls) -> str:
        return cls._SECTION.split("_")[0]

    def _checked(self, changes: dict, source: str, check_type: bool) -> dict:
        names = [f.name for f in fields(self)]
        out = {}
        for key, value in changes.items():
            if key not in names:
                raise SettingsError(f"unknown {self._area()} rule {key!r}; the rules are {', '.join(sorted(names))}.")
            dotted = self._dotted(key)
            ref = _defaults()
            for part in dotted.split("."):
                ref = ref.get(part) if isinstance(ref, dict) else None
            if isinstance(ref, dict):  # a sub-table: each of its keys as the settings loader checks it
                if not isinstance(value, Mapping):
                    raise SettingsError(f"{source}: '{dotted}' must be a section ([{dotted}]), got {value!r}.")
                unknown = set(value) - set(ref)
                if unknown:
                    raise SettingsError(f"{source}: unknown setting '{dotted}.{sorted(unknown)[0]}'. "
                                        f"Allowed keys here: {', '.join(sorted(ref))}.")
                value = {**getattr(self, key), **{k: check_value(f"{dotted}.{k}", ref[k], v, source, check_type=check_type)
                                                  for k, v in value.items()}}
            elif ref is not None:
                value = check_value(dotted, ref, list(value) if check_type and isinstance(value, tuple) else value,
                                    source, check_type=check_type)
            out[key] = _frozen(value)
        return out

    def replace(self: A, **changes) -> A:
        """A copy with some rules changed, each checked as the settings loader checks it.

        Raises
        ------
        SettingsError
            For an unknown rule or a value of the wrong type or out of range, naming the key
            (``'alliance.sd_criterion' must be between 0 and 10 ...``).
        """
        new = dataclasses.replace(self, **self._checked(changes, "override", check_type=True))
        new._check_together("override")
        return new

    def with_overrides(self: A, source: str, **given) -> A:
        """The rules with the keywords that are not None put over them (a metric function's overrides).

        Checked like the settings, except for the type: the functions also take tuples, several
        criteria (``sd_criterion=(1, 2)``) and numpy numbers, and check those themselves.
        """
        changes = {k: v for k, v in given.items() if v is not None}
        if not changes:
            return self
        new = dataclasses.replace(self, **self._checked(changes, source, check_type=False))
        new._check_together(source)
        return new

    def _check_together(self, source: str) -> None:
        """Rules that must agree with each other (none by default)."""

    def kwargs(self, function=None) -> dict:
        """The rules as keyword arguments, only those ``function`` accepts when given."""
        values = {f.name: getattr(self, f.name) for f in fields(self)}
        if function is None:
            return values
        import inspect

        accepted = inspect.signature(function).parameters
        return {k: v for k, v in values.items() if k in accepted}


@dataclass(frozen=True)
class AllianceRules(_AreaRules):
    """``[alliance]``: SRS flags (docs/methods.md §1.2) and the rupture-repair rule (§2.5).

    ``lost_contact_days`` is ``[engagement] lost_contact_days``: the one definition of lost contact,
    which also closes an open rupture as "ended without repair".
    """

    _SECTION: ClassVar[str] = "alliance"
    _KEYS: ClassVar[dict[str, str]] = {"lost_contact_days": "engagement.lost_contact_days"}

    srs_cutoff: float
    inclusive: bool
    drop_points: float
    low_item_threshold: float
    low_item_items: tuple
    ceiling_at: float
    sd_criterion: float
    sd_floor: float
    min_sessions: int
    max_decline_sessions: int
    repair_window: int
    repair_tolerance: float
    sd_basis: str
    min_trend_sessions: int
    lost_contact_days: int


@dataclass(frozen=True)
class EngagementRules(_AreaRules):
    """``[engagement]`` (docs/methods.md §2.7)."""

    _SECTION: ClassVar[str] = "engagement"

    lost_contact_days: int


@dataclass(frozen=True)
class OutcomeRules(_AreaRules):
    """``[outcome]``: reliable change, sudden gains, Talking Therapies, expected response, clinician effects
    (docs/methods.md §2.1-2.4, §2.6). Instrument facts (cut-offs, reliable change) are the instruments'."""

    _SECTION: ClassVar[str] = "outcome"

    instrument: str
    critical_value: float
    rescale_reliable_change: bool
    sg_crit2_pct: float
    sg_crit3: bool
    sg_crit3_alpha: float
    sg_crit3_adjust: bool
    sg_crit3_critical_value: float
    sg_reversal_start: int
    multiple_sg_select: str
    phq9_caseness: float
    gad7_caseness: float
    phq9_reliable_change: float
    gad7_reliable_change: float
    min_attended: int
    no_opposite_deterioration: bool
    confidence: float
    intake_bands: int
    min_reference: int
    pool_later_sessions: bool
    percentiles: tuple
    failure_percentile: float
    risk_percentile: float
    min_cases: int
    effect_confidence: float
    effect_closed_only: bool
    effect_tau2_uncertainty: bool


@dataclass(frozen=True)
class FocusRules(_AreaRules):
    """``[focus_metrics]`` and the focus taxonomy ``[[focus.codes]]`` (DESIGN.md §4 "Session focus")."""

    _SECTION: ClassVar[str] = "focus_metrics"

    codes: tuple[FocusCode, ...] = field(hash=False)
    neglected_after_sessions: int
    drift_definition: str
    confidence: float
    link_min_sessions: int

    @classmethod
    def _value(cls, settings: Settings, name: str) -> Any:
        return settings.focus_codes if name == "codes" else super()._value(settings, name)

    @classmethod
    def _area(cls) -> str:
        return "focus"

    def _checked(self, changes: dict, source: str, check_type: bool) -> dict:
        """The focus codes are checked as ``[[focus.codes]]`` is (code, label, group; known groups; no twice)."""
        from supervision.config import _check_focus

        out = super()._checked({k: v for k, v in changes.items() if k != "codes"}, source, check_type)
        if "codes" in changes:
            out["codes"] = _check_focus([dataclasses.asdict(c) if isinstance(c, FocusCode) else c
                                         for c in changes["codes"]], source)
        return out

    def kwargs(self, function=None) -> dict:
        """The ``[focus_metrics]`` rules as keyword arguments (the codes go to ``session_focus`` as its taxonomy)."""
        out = super().kwargs(function)
        out.pop("codes", None)
        return out

    @property
    def code_set(self) -> frozenset[str]:
        return frozenset(c.code for c in self.codes)

    @property
    def labels(self) -> dict[str, str]:
        return {c.code: c.label for c in self.codes}


@dataclass(frozen=True)
class AdaptationRules(_AreaRules):
    """``[adaptation]`` with the practical sizes of ``[adaptation.practical]`` (docs/methods.md §3)."""

    _SECTION: ClassVar[str] = "adaptation"

    min_n: int
    min_n_comparator: int
    confidence: float
    fdr_q: float
    fdr_scope: str
    outcome_closed_only: bool
    variance_prior_df: float
    min_own_weight: float
    excess_multiplicity: str
    outcome_instrument: str
    practical: dict = field(hash=False)


@dataclass(frozen=True)
class PrivacyRules(_AreaRules):
    """``[privacy]``: disclosure control, pseudonymisation and self-review (docs/methods.md §3.4)."""

    _SECTION: ClassVar[str] = "privacy"

    suppression_policy: str
    nhs_max_suppressed: int
    nhs_rounding: int
    cms_max_suppressed: int
    cms_rounding: int
    complementary: bool
    suppressed_marker: str
    name_colleagues: bool
    self_review_clinician: str
    min_key_bytes: int
    id_hex_chars: int
    client_id_columns: tuple
    staff_id_columns: tuple
    client_prefix: str
    staff_prefix: str
    direct_identifiers: tuple
    date_of_birth_columns: tuple
    age_band_edges: tuple
    keep_unknown_columns: bool


@dataclass(frozen=True)
class AgendaRules(_AreaRules):
    """The agenda's rules, read once from ``[agenda]`` (defaults in ``supervision/defaults.toml``).

    Build with :meth:`from_settings`; every value is range-checked there, and a wrong one raises
    :class:`~supervision.config.SettingsError` naming the key, the allowed range and the value.
    """

    _SECTION: ClassVar[str] = "agenda"

    weights: dict = field(hash=False)
    half_life_days: float
    recency_days: int
    today_clients: int
    today_min_score: float
    extra_flag_points: float
    patterns: int
    pattern_distance_points: float
    pattern_confidence: float
    pattern_min_clients: int
    lost_contact_decay_days: int
    measures_missing_sessions: int
    high_from: float
    medium_from: float
    no_show_run: int
    falling_trend: float
    check_in_share: float
    check_in_min_sessions: int

    @classmethod
    def from_settings(cls, settings=None, **overrides) -> AgendaRules:
        """The rules from the settings' ``[agenda]`` section, with keyword ``overrides`` on top.

        The settings loader has checked every value's type and range (``supervision/config.py``);
        overrides are checked the same way here.
        """
        settings = load_settings(settings)
        rules = super().from_settings(settings)
        if overrides:
            return rules.replace(**overrides)
        rules._check_together(settings.source)
        return rules

    def _check_together(self, source: str) -> None:
        if self.medium_from > self.high_from:
            raise SettingsError(f"{source}: 'agenda.medium_from' ({self.medium_from}) must not be above "
                                f"'agenda.high_from' ({self.high_from}).")


_AREAS: dict[str, type[_AreaRules]] = {
    "alliance": AllianceRules, "outcome": OutcomeRules, "focus": FocusRules, "engagement": EngagementRules,
    "adaptation": AdaptationRules, "agenda": AgendaRules, "privacy": PrivacyRules,
}


@dataclass(frozen=True)
class Rules:
    """One rules object per area, from one set of validated settings (``caseload.rules``)."""

    alliance: AllianceRules
    outcome: OutcomeRules
    focus: FocusRules
    engagement: EngagementRules
    adaptation: AdaptationRules
    agenda: AgendaRules
    privacy: PrivacyRules

    @classmethod
    def from_settings(cls, settings=None) -> Rules:
        """Every area's rules from the settings (anything :func:`~supervision.config.load_settings` takes)."""
        settings = load_settings(settings)
        return cls(**{name: area.from_settings(settings) for name, area in _AREAS.items()})

    def replace(self, **areas) -> Rules:
        """A copy with whole areas replaced (``rules.replace(alliance=rules.alliance.replace(sd_criterion=1.0))``)."""
        for name, value in areas.items():
            if name not in _AREAS or not isinstance(value, _AREAS[name]):
                raise SettingsError(f"Rules.replace takes the areas {', '.join(_AREAS)}, each as its rules object; "
                                    f"got {name}={value!r}.")
        return dataclasses.replace(self, **areas)


@lru_cache(maxsize=1)
def default_rules() -> Rules:
    """The rules of ``supervision/defaults.toml`` alone (what a function called without rules uses)."""
    return Rules.from_settings(None)


def area_rules(area: type[A], rules=None, source: str = "override", **given) -> A:
    """The rules of one area for a metric function: ``rules`` (the area's, a :class:`Rules`, a
    :class:`~supervision.config.Settings` or None = the defaults) with the keywords that are not None on top.
    """
    if rules is None:
        base = getattr(default_rules(), _area_name(area))
    elif isinstance(rules, area):
        base = rules
    elif isinstance(rules, Rules):
        base = getattr(rules, _area_name(area))
    elif isinstance(rules, (Settings, dict)):
        base = area.from_settings(rules)
    else:
        raise TypeError(f"rules must be {area.__name__}, Rules, Settings or None; got {type(rules).__name__}.")
    return base.with_overrides(source, **given) if given else base


def _area_name(area: type[_AreaRules]) -> str:
    return next(name for name, cls in _AREAS.items() if cls is area)
