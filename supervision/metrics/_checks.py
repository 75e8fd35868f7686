"""Argument checks shared by the metrics modules: errors that name the thing, what is needed and the fix."""

from __future__ import annotations

from collections.abc import Sequence

import pandas as pd


def require_columns(frame, name: str, columns: Sequence[str], fix: str) -> None:
    """Raise a plain error unless ``frame`` is a DataFrame holding ``columns``."""
    if not isinstance(frame, pd.DataFrame):
        raise TypeError(f"{name} must be a pandas DataFrame; got {type(frame).__name__}.")
    missing = [c for c in columns if c not in frame.columns]
    if missing:
        raise ValueError(
            f"{name} has no column {', '.join(repr(c) for c in missing)}. Required: {', '.join(columns)}; "
            f"present: {', '.join(map(str, frame.columns)) or '(none)'}. {fix}"
        )
