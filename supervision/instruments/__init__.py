"""Instrument specifications (SRS, WAI-SR, ORS, PHQ-9, GAD-7, CORE-10) as data.

The specs live in ``instruments.toml`` beside this module, each fact with its source. This
module turns them into :class:`Instrument` records and knows the measure column names of the
data contract: ``<prefix>_<item number>`` for items and ``<prefix>_total`` for totals.
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path


@dataclass(frozen=True)
class Instrument:
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
    reliable_change: float | None = None
    reversed_items: tuple[int, ...] = ()
    subscales: dict[str, tuple[int, ...]] = field(default_factory=dict)

    @property
    def item_columns(self) -> list[str]:
        return [f"{self.prefix}_{i}" for i in range(1, self.items + 1)]

    @property
    def total_column(self) -> str:
        return f"{self.prefix}_total"

    @property
    def columns(self) -> list[str]:
        return [*self.item_columns, self.total_column]

    def range_of(self, column: str) -> tuple[float, float]:
        """Allowed (min, max) of one of this instrument's measure columns."""
        if column == self.total_column:
            return self.total_min, self.total_max
        return self.item_min, self.item_max


@lru_cache(maxsize=1)
def instruments() -> dict[str, Instrument]:
    """All instrument specs by prefix (``srs``, ``wai``, ``ors``, ``phq9``, ``gad7``, ``core10``)."""
    text = (Path(__file__).parent / "instruments.toml").read_text("utf-8")
    out = {}
    for prefix, spec in tomllib.loads(text).items():
        spec = dict(spec)
        spec["item_labels"] = tuple(spec.get("item_labels", ()))
        spec["reversed_items"] = tuple(spec.get("reversed_items", ()))
        spec["subscales"] = {k: tuple(v) for k, v in spec.get("subscales", {}).items()}
        out[prefix] = Instrument(prefix=prefix, **spec)
    return out


def measure_columns() -> dict[str, tuple[Instrument, float, float]]:
    """Every wide measure column of the contract -> (instrument, min, max)."""
    out = {}
    for inst in instruments().values():
        for col in inst.columns:
            lo, hi = inst.range_of(col)
            out[col] = (inst, lo, hi)
    return out
