"""Figures of value drivers: importance, beeswarm, dependence, per segment, one customer.

Every contribution is in currency over the model's horizon (see `reports.drivers`).
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from clv.features.catalog import describe
from matplotlib.colors import TwoSlopeNorm
from matplotlib.figure import Figure
from matplotlib.patches import Patch

from .drivers import Drivers
from .figures import (
    DOWN_COLOR,
    FAMILY_COLORS,
    STAGE_COLORS,
    UP_COLOR,
    money,
    new_figure,
    style_axes,
)


def importance_bars(table: pd.DataFrame, k: int = 15) -> Figure:
    """Mean |contribution| of the k most important features, coloured by family."""
    top = table.head(k).iloc[::-1]
    fig = new_figure(8.5, 0.34 * len(top) + 1.2)
    ax = fig.add_subplot()
    colors = [FAMILY_COLORS.get(f, FAMILY_COLORS["other"]) for f in top["family"]]
    ax.barh(top["label"], top["mean_abs"], color=colors)
    for y, (value, share) in enumerate(zip(top["mean_abs"], top["share"], strict=True)):
        ax.text(value, y, f"  {money(value, 2)} ({100 * share:.0f}%)", va="center", fontsize=8)
    families = list(dict.fromkeys(table.head(k)["family"]))
    ax.legend(
        handles=[Patch(color=FAMILY_COLORS.get(f, "#999"), label=f) for f in families],
        title="family",
        loc="lower right",
        fontsize=8,
        frameon=False,
    )
    ax.set_xlabel("mean |contribution| to predicted value (currency per customer)")
    ax.margins(x=0.18)
    style_axes(ax)
    return fig


def _weighted_sample(drivers: Drivers, n: int, seed: int = 0) -> np.ndarray:
    """Up to n explained rows drawn in proportion to their weights (the base's own mix)."""
    size = len(drivers.weights)
    if size <= n:
        return np.arange(size)
    p = drivers.weights / drivers.weights.sum()
    return np.sort(np.random.default_rng(seed).choice(size, n, replace=False, p=p))


def _swarm_offsets(x: np.ndarray, bins: int = 80, width: float = 0.4) -> np.ndarray:
    """Vertical offsets that pile points up where they are dense, as a beeswarm does."""
    offsets = np.zeros_like(x)
    if x.size == 0 or np.ptp(x) == 0:
        return offsets
    edges = np.linspace(x.min(), x.max(), bins + 1)
    which = np.clip(np.digitize(x, edges) - 1, 0, bins - 1)
    counts = np.bincount(which, minlength=bins)
    scale = width / max(counts.max(), 1)
    for b in np.flatnonzero(counts):
        members = np.flatnonzero(which == b)
        k = np.arange(members.size)
        # 0, +1, -1, +2, -2, ... times the spacing of the densest bin
        offsets[members] = np.where(k % 2 == 0, 1, -1) * ((k + 1) // 2) * scale
    return offsets


def beeswarm(drivers: Drivers, table: pd.DataFrame, k: int = 12, points: int = 1000) -> Figure:
    """One row per top feature: each dot a customer at its contribution, coloured by the
    customer's feature value (percentile within the feature: blue low, red high)."""
    names = drivers.explanation.feature_names
    sample = _weighted_sample(drivers, points)
    features = list(table["feature"].head(k))
    fig = new_figure(9, 0.45 * len(features) + 1.4)
    ax = fig.add_subplot()
    top = drivers.explanation.contributions[np.ix_(sample, [names.index(f) for f in features])]
    # A symmetric log axis: contributions span cents (bronze) to hundreds (platinum).
    linthresh = max(float(np.quantile(np.abs(top), 0.995)) / 20, 1e-6) if top.size else 1.0
    for row, feature in enumerate(reversed(features)):
        j = names.index(feature)
        x = drivers.explanation.contributions[sample, j]
        values = drivers.explanation.feature_values[sample, j]
        rank = pd.Series(values).rank(pct=True).to_numpy()
        y = row + _swarm_offsets(np.sign(x) * np.log1p(np.abs(x) / linthresh))
        missing = np.isnan(rank)
        ax.scatter(x[missing], y[missing], s=6, color="#bbbbbb", linewidths=0)
        sc = ax.scatter(
            x[~missing],
            y[~missing],
            s=6,
            c=rank[~missing],
            cmap="coolwarm",
            vmin=0,
            vmax=1,
            linewidths=0,
        )
    ax.set_yticks(range(len(features)))
    ax.set_yticklabels([describe(f).label for f in reversed(features)])
    ax.axvline(0, color="#888888", linewidth=0.8)
    ax.set_xscale("symlog", linthresh=linthresh)
    ax.set_xlabel("contribution to predicted value (currency; symmetric log scale)")
    style_axes(ax)
    bar = fig.colorbar(sc, ax=ax, shrink=0.6, pad=0.01, ticks=[0, 1])
    bar.ax.set_yticklabels(["low", "high"])
    bar.set_label("feature value (percentile)")
    return fig


def dependence(drivers: Drivers, table: pd.DataFrame, k: int = 4, points: int = 2000) -> Figure:
    """Contribution against feature value for the k top drivers, coloured by lifecycle stage.

    The x axis spans the 1st to 99th percentile of the feature; customers without a value
    (e.g. no gap between purchases for a single purchase) are counted in the title.
    """
    names = drivers.explanation.feature_names
    sample = _weighted_sample(drivers, points, seed=1)
    features = list(table["feature"].head(k))
    cols = 2
    rows = int(np.ceil(len(features) / cols))
    fig = new_figure(10, 3.3 * rows)
    stages = drivers.stages[sample]
    for i, feature in enumerate(features):
        ax = fig.add_subplot(rows, cols, i + 1)
        j = names.index(feature)
        x = drivers.explanation.feature_values[sample, j]
        y = drivers.explanation.contributions[sample, j]
        present = ~np.isnan(x)
        for stage, color in STAGE_COLORS.items():
            mask = present & (stages == stage)
            if mask.any():
                ax.scatter(x[mask], y[mask], s=7, color=color, alpha=0.6, label=stage)
        if present.sum() > 10:
            low, high = np.quantile(x[present], [0.01, 0.99])
            if high > low:
                pad = 0.03 * (high - low)
                ax.set_xlim(low - pad, high + pad)
        info = describe(feature)
        missing = int((~present).sum())
        title = info.label + (f"  ({missing} without a value)" if missing else "")
        ax.set_title(title, fontsize=10)
        ax.axhline(0, color="#888888", linewidth=0.8)
        ax.set_ylabel("contribution (currency)", fontsize=9)
        style_axes(ax)
        if i == 0:
            ax.legend(fontsize=8, markerscale=2, frameon=False)
    return fig


def segment_heatmap(signed: dict[str, pd.DataFrame]) -> Figure:
    """Mean signed contribution of the top drivers in each segment, one panel per grouping.

    Colour is scaled within each segment (column) by its largest |mean|, so the pattern of what
    drives value in a small-value segment shows as clearly as in a large-value one; the
    numbers are the means in currency.
    """
    panels = [(name, frame) for name, frame in signed.items() if not frame.empty]
    n_features = max(len(f) for _, f in panels)
    widths = [max(len(f.columns), 1) for _, f in panels]
    fig = new_figure(4.2 + 1.25 * sum(widths), 0.42 * n_features + 1.6)
    grid = fig.add_gridspec(1, len(panels), width_ratios=widths)
    for i, (name, frame) in enumerate(panels):
        ax = fig.add_subplot(grid[0, i])
        values = frame.to_numpy(dtype=float)
        scale = np.nanmax(np.abs(values), axis=0)
        scaled = values / np.where(scale > 0, scale, 1.0)
        ax.imshow(scaled, cmap="RdYlGn", norm=TwoSlopeNorm(0, -1, 1), aspect="auto")
        for (r, c), v in np.ndenumerate(values):
            color = "white" if abs(scaled[r, c]) > 0.6 else "black"
            text = money(v, 1 if abs(v) < 100 else 0)
            ax.text(c, r, text, ha="center", va="center", fontsize=8, color=color)
        ax.set_xticks(range(len(frame.columns)))
        ax.set_xticklabels([str(c).replace("_", " ") for c in frame.columns], rotation=0)
        ax.set_title(name, fontsize=10)
        ax.set_yticks(range(len(frame.index)))
        if i == 0:
            ax.set_yticklabels([describe(f).label for f in frame.index])
        else:
            ax.set_yticklabels([])
        ax.tick_params(length=0)
    return fig


def waterfall(
    feature_names: list[str],
    contributions: np.ndarray,
    feature_values: np.ndarray,
    base_value: float,
    prediction: float,
    title: str,
    k: int = 8,
) -> Figure:
    """How one customer's drivers add up from the base value to their predicted value.

    The k largest contributions are drawn one by one (largest at the top), the rest as one
    bar; each bar starts where the previous one ended.
    """
    order = np.argsort(-np.abs(contributions), kind="stable")
    shown, rest = order[:k], order[k:]
    labels, deltas = [], []
    for j in shown:
        value = feature_values[j]
        shown_value = "missing" if np.isnan(value) else f"{value:,.4g}"
        labels.append(f"{describe(feature_names[j]).label} = {shown_value}")
        deltas.append(float(contributions[j]))
    if rest.size:
        labels.append(f"{rest.size} other features")
        deltas.append(float(contributions[rest].sum()))
    fig = new_figure(8.5, 0.38 * len(deltas) + 1.4)
    ax = fig.add_subplot()
    start = base_value
    n = len(deltas)
    for i, delta in enumerate(deltas):
        y = n - 1 - i
        color = UP_COLOR if delta >= 0 else DOWN_COLOR
        ax.barh(y, delta, left=start, color=color, height=0.6)
        ax.text(
            start + delta,
            y,
            f" {'+' if delta >= 0 else '−'}{money(abs(delta), 2)} ",
            va="center",
            ha="left" if delta >= 0 else "right",
            fontsize=8,
        )
        start += delta
    ax.axvline(base_value, color="#888888", linestyle=":", linewidth=1)
    ax.axvline(prediction, color="#222222", linestyle="--", linewidth=1)
    ax.set_yticks(range(n))
    ax.set_yticklabels(list(reversed(labels)), fontsize=9)
    ax.set_xlabel(
        f"predicted value (currency): base {money(base_value, 2)} → "
        f"this customer {money(prediction, 2)}"
    )
    ax.set_title(title, fontsize=10, loc="left")
    ends = base_value + np.concatenate([[0.0], np.cumsum(deltas)])
    low, high = float(ends.min()), float(ends.max())
    pad = 0.12 * (high - low or 1.0)
    ax.set_xlim(low - pad, high + pad)
    style_axes(ax)
    return fig
