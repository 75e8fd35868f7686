"""Pure metrics: tidy DataFrame in, new tidy DataFrame out; options as keyword arguments.

Modules: :mod:`supervision.metrics.alliance` (SRS / WAI-SR alliance, ruptures and repairs) and
:mod:`supervision.metrics.stats` (intervals for rates). Nothing here imports plotly or ipywidgets,
and no function mutates its input.
"""
