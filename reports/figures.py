"""Shared plotting helpers: headless figures, PNG data URIs, colours and number formats.

Figures are built with `matplotlib.figure.Figure` directly, never pyplot: no global figure
state, no GUI backend (the Agg canvas renders the PNG), so reports render on servers and in CI.
"""

from __future__ import annotations

import base64
import io
import math
from typing import Final

import matplotlib
from matplotlib.figure import Figure

TIER_COLORS: Final = {
    "platinum": "#4c4f8f",
    "gold": "#d4a017",
    "silver": "#8d99a6",
    "bronze": "#b0703c",
}
STAGE_COLORS: Final = {
    "first_time": "#59a14f",
    "short_term": "#4e79a7",
    "long_term": "#76b7b2",
    "lapsed": "#e15759",
}
FAMILY_COLORS: Final = {
    "recency": "#e15759",
    "frequency": "#4e79a7",
    "monetary": "#59a14f",
    "tenure": "#9c755f",
    "trend": "#edc948",
    "returns": "#b07aa1",
    "basket": "#76b7b2",
    "baseline": "#f28e2b",
    "other": "#bab0ac",
}
MODEL_COLOR: Final = "#1f5fa8"
BASELINE_COLOR: Final = "#f28e2b"
ACTUAL_COLOR: Final = "#555555"
UP_COLOR: Final = "#1a9850"  # a driver that raises predicted value
DOWN_COLOR: Final = "#d73027"  # a driver that lowers it
DPI: Final = 100


def new_figure(width: float, height: float) -> Figure:
    """A figure of `width` x `height` inches with constrained layout and our style."""
    matplotlib.use("Agg")  # no-op when already Agg; never opens a window
    fig = Figure(figsize=(width, height), dpi=DPI, layout="constrained")
    return fig


def style_axes(ax: matplotlib.axes.Axes) -> None:
    """Light grid, no top/right spines."""
    ax.grid(True, color="#e6e6e6", linewidth=0.8)
    ax.set_axisbelow(True)
    for side in ("top", "right"):
        ax.spines[side].set_visible(False)


def to_data_uri(fig: Figure) -> str:
    """The figure as a PNG data URI (`data:image/png;base64,...`), cropped to its content."""
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=DPI, bbox_inches="tight", metadata={"Software": None})
    return "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode("ascii")


def money(value: float, digits: int = 0) -> str:
    """A currency amount with thousands separators; large ones shortened (12.3k, 4.5M)."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "–"
    magnitude = abs(value)
    if magnitude >= 1e6:
        return f"{value / 1e6:,.1f}M"
    if magnitude >= 1e4:
        return f"{value / 1e3:,.1f}k"
    return f"{value:,.{digits}f}"


def axis_money(value: float, _position: object = None) -> str:
    """A tick label for a currency axis: 0, 500, 2.5k, 250k, 1.2M."""
    magnitude = abs(value)
    if magnitude >= 1e6:
        return f"{value / 1e6:g}M"
    if magnitude >= 1e3:
        return f"{value / 1e3:g}k"
    return f"{value:g}"


def percent(value: float, digits: int = 0) -> str:
    """A share in [0, 1] as a percentage."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "–"
    return f"{100 * value:.{digits}f}%"
