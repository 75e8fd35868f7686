"""The workbook's remembered choice: which data, which settings, which supervisee (and page).

Kept in a small JSON file on the user's computer, never in the project folder (so never in git):
``$SUPERVISION_STATE`` when set, else ``$XDG_CONFIG_HOME/supervision-workbook/state.json``
(``~/.config/...`` by default). The app writes it whenever a choice changes; the app and the
notebooks read it on opening. A remembered folder that no longer exists falls back to the demo,
and :func:`load_remembered` says so in plain words.

No widget code here (the notebooks, the app and tests use it alike).
"""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass, fields
from pathlib import Path

ENV_VAR = "SUPERVISION_STATE"


def state_path() -> Path:
    """Where the remembered choice is kept (``$SUPERVISION_STATE`` overrides)."""
    env = os.environ.get(ENV_VAR)
    if env:
        return Path(env).expanduser()
    base = Path(os.environ.get("XDG_CONFIG_HOME") or Path.home() / ".config")
    return base / "supervision-workbook" / "state.json"


@dataclass
class Remembered:
    """What the user chose last time. ``data`` empty = the bundled demo clinic."""

    data: str = ""
    settings: str = ""
    supervisee: str = ""
    page: str = ""
    client: str = ""

    @classmethod
    def read(cls, path: Path | None = None) -> "Remembered":
        """The remembered choice; the defaults (demo) when there is none or it cannot be read."""
        p = path or state_path()
        try:
            raw = json.loads(p.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return cls()
        if not isinstance(raw, dict):
            return cls()
        names = {f.name for f in fields(cls)}
        return cls(**{k: str(v) for k, v in raw.items() if k in names and isinstance(v, (str, int, float))})

    def write(self, path: Path | None = None) -> Path:
        """Save the choice (atomically: a crash never leaves half a file)."""
        p = path or state_path()
        p.parent.mkdir(parents=True, exist_ok=True)
        tmp = p.with_name(p.name + ".tmp")
        tmp.write_text(json.dumps(asdict(self), indent=1), encoding="utf-8")
        os.replace(tmp, p)
        return p


def load_remembered(path: Path | None = None):
    """Load the remembered data with the remembered settings.

    Returns
    -------
    (Caseload, Remembered, str)
        The caseload, the choice actually used, and a message for the user when the remembered
        choice could not be used (empty otherwise). A folder that is gone, or settings that do
        not load, fall back to the demo clinic or the default settings, and the message says so.
    """
    from supervision.config import SettingsError, load_settings
    from supervision.io import load_caseload

    rem = Remembered.read(path)
    notes = []
    settings = None
    if rem.settings:
        try:
            settings = load_settings(rem.settings)
        except SettingsError as exc:
            notes.append(f"The remembered settings could not be used ({exc}); the default settings are used instead.")
            rem.settings = ""
    if rem.data and not Path(rem.data).expanduser().exists():
        notes.append(f"The remembered data '{rem.data}' is not there any more; the demo clinic is shown instead. "
                     "Choose your data again on the Start page.")
        rem.data = ""
    caseload = load_caseload(Path(rem.data).expanduser() if rem.data else None, settings=settings)
    if not caseload.usable and rem.data:
        notes.append(f"The remembered data '{rem.data}' cannot be used (see the Data check page).")
    return caseload, rem, " ".join(notes)
