"""ipywidgets dashboards (the only part of the package that imports ipywidgets)."""

from supervision.widgets.start import StartHere, start_here

__all__ = ["StartHere", "start_here"]
