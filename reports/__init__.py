"""Standalone Bokeh HTML reports rendered from what is in the store (never recomputes analysis)."""
