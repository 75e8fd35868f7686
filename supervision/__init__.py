"""Supervision workbook: caseload measures for clinical supervision.

Importing this package is silent and cheap: no I/O, no logging set-up, and no heavy imports
(pandas, pandera, plotly) until a function that needs them is called.

Public entry points
-------------------
load_caseload(path, settings=None)
    Read a service's export (a folder of CSV/Parquet files or one .xlsx workbook), validate it
    against the data contract and return a :class:`supervision.caseload.Caseload` holding the
    valid tables, the quarantined rows and the validation report.
load_settings(path=None)
    The settings (defaults overlaid with a TOML file).
demo_path()
    The folder of the bundled synthetic demo clinic.
"""

from __future__ import annotations

__version__ = "0.1.0"
__all__ = ["load_caseload", "load_settings", "demo_path", "__version__"]


def load_caseload(path=None, settings=None):
    """Load and validate a caseload export. See :func:`supervision.io.load_caseload`."""
    from supervision.io import load_caseload as _load

    return _load(path, settings=settings)


def load_settings(path=None):
    """Read settings. See :func:`supervision.config.load_settings`."""
    from supervision.config import load_settings as _load

    return _load(path)


def demo_path():
    """Folder of the bundled demo clinic. See :func:`supervision.io.demo_path`."""
    from supervision.io import demo_path as _demo

    return _demo()
