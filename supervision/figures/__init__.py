"""Plotly figure builders: a tidy frame in, a ``go.Figure`` out, never displayed here.

Colours come from :mod:`supervision.figures.theme` only.
"""
