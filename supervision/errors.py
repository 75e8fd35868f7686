"""Errors the workbook raises for input a user can fix (a message names the key and the fix).

The bottom of the import graph: nothing of the workbook is imported here, so every module may
raise these. :mod:`supervision.config` re-exports :class:`SettingsError`, its usual home.
"""

from __future__ import annotations


class SettingsError(ValueError):
    """A settings file that cannot be used; the message names the key and the fix."""
