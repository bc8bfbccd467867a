"""Figures of the customer base: value tiers, lifecycle stages, value at risk, value x risk."""

from __future__ import annotations

import numpy as np
import pandas as pd
from clv.features import schema
from matplotlib.figure import Figure

from .figures import (
    ACTUAL_COLOR,
    DOWN_COLOR,
    MODEL_COLOR,
    STAGE_COLORS,
    TIER_COLORS,
    axis_money,
    money,
    new_figure,
    percent,
    style_axes,
)


def tier_shares(tiers: pd.DataFrame, predictions: pd.DataFrame) -> Figure:
    """Left: share of customers vs share of predicted value per tier. Right: concentration
    curve (share of predicted value held by the top x% of customers)."""
    fig = new_figure(11, 4)
    left, right = fig.subplots(1, 2, width_ratios=[1, 1.1])
    x = np.arange(len(tiers))
    left.bar(x - 0.2, tiers["share_of_customers"], 0.4, color="#bbbbbb", label="customers")
    left.bar(
        x + 0.2,
        tiers["share_of_value"],
        0.4,
        color=[TIER_COLORS.get(t, MODEL_COLOR) for t in tiers["segment"]],
        label="predicted value",
    )
    for px, share in zip(x + 0.2, tiers["share_of_value"], strict=True):
        left.text(px, share, percent(share), ha="center", va="bottom", fontsize=8)
    for px, share in zip(x - 0.2, tiers["share_of_customers"], strict=True):
        left.text(px, share, percent(share), ha="center", va="bottom", fontsize=8)
    left.set_xticks(x)
    left.set_xticklabels(tiers["segment"])
    left.set_ylabel("share of the base")
    left.yaxis.set_major_formatter(lambda v, _: percent(v))
    left.legend(frameon=False, fontsize=8, title="grey: customers; colour: value")
    left.get_legend().remove()
    left.set_title("grey: share of customers · colour: share of predicted value", fontsize=9)
    style_axes(left)

    value = np.sort(predictions["predicted_value"].to_numpy(dtype=float))[::-1]
    share_customers = np.arange(1, len(value) + 1) / len(value)
    share_value = np.cumsum(value) / value.sum()
    right.plot(share_customers, share_value, color=MODEL_COLOR, linewidth=2)
    right.plot([0, 1], [0, 1], color="#aaaaaa", linestyle="--")
    for top in (0.01, 0.1, 0.2):
        i = max(0, round(top * len(value)) - 1)
        right.plot(share_customers[i], share_value[i], "o", color=ACTUAL_COLOR)
        right.annotate(
            f"top {percent(top)} hold {percent(share_value[i])}",
            (share_customers[i], share_value[i]),
            xytext=(10, -12),
            textcoords="offset points",
            fontsize=8,
        )
    right.set_xlabel("share of customers, most valuable first")
    right.set_ylabel("share of predicted value")
    right.set_xlim(0, 1)
    right.set_ylim(0, 1.01)
    right.xaxis.set_major_formatter(lambda v, _: percent(v))
    right.yaxis.set_major_formatter(lambda v, _: percent(v))
    style_axes(right)
    return fig


def stage_shares(stages: pd.DataFrame) -> Figure:
    """Per lifecycle stage: share of customers, of historical value, of predicted value and
    of value at risk."""
    fig = new_figure(9, 3.6)
    ax = fig.add_subplot()
    measures = (
        ("customers", stages["share_of_customers"], "#bbbbbb"),
        ("historical value", stages["share_of_historical"], ACTUAL_COLOR),
        ("predicted value", stages["share_of_value"], MODEL_COLOR),
        ("value at risk", stages["value_at_risk"] / stages["value_at_risk"].sum(), DOWN_COLOR),
    )
    x = np.arange(len(stages))
    width = 0.2
    for i, (label, share, color) in enumerate(measures):
        ax.bar(x + (i - 1.5) * width, share, width, color=color, label=label)
    ax.set_xticks(x)
    ax.set_xticklabels([s.replace("_", " ") for s in stages["segment"]])
    ax.set_ylabel("share of the base total")
    ax.yaxis.set_major_formatter(lambda v, _: percent(v))
    ax.legend(frameon=False, fontsize=8, ncols=4, loc="upper center", bbox_to_anchor=(0.5, 1.12))
    style_axes(ax)
    return fig


def historical_vs_predicted(predictions: pd.DataFrame, points: int = 3000) -> Figure:
    """Each customer's net spend to date against predicted value, coloured by stage (both
    axes on a symmetric log scale; a random sample of customers when the base is large)."""
    frame = predictions
    if len(frame) > points:
        frame = frame.sample(points, random_state=0)
    fig = new_figure(7.5, 5)
    ax = fig.add_subplot()
    for stage, color in STAGE_COLORS.items():
        part = frame[frame[schema.LIFECYCLE_STAGE].astype(str) == stage]
        if len(part):
            ax.scatter(
                part[schema.HISTORICAL_VALUE],
                part["predicted_value"],
                s=8,
                alpha=0.5,
                color=color,
                label=f"{stage.replace('_', ' ')} ({len(part):,})",
                linewidths=0,
            )
    ax.set_xscale("symlog", linthresh=10)
    ax.set_yscale("symlog", linthresh=10)
    ax.set_xlabel("historical value: net spend to date (currency)")
    ax.set_ylabel("predicted value over the horizon (currency)")
    ax.legend(frameon=False, fontsize=8, markerscale=2)
    style_axes(ax)
    return fig


def value_at_risk_by_segment(segments: dict[str, pd.DataFrame]) -> Figure:
    """Expected value kept vs value at risk of churning, per segment (one panel per grouping).

    `segments`: title -> `reports.tables.segment_summary`.
    """
    fig = new_figure(11, 0.5 * max(len(s) for s in segments.values()) + 1.8)
    axes = fig.subplots(1, len(segments), squeeze=False)[0]
    for ax, (title, table) in zip(axes, segments.items(), strict=True):
        y = np.arange(len(table))[::-1]
        ax.barh(y, table["predicted_value"], color=MODEL_COLOR, label="predicted value (kept)")
        ax.barh(
            y,
            table["value_at_risk"],
            left=table["predicted_value"],
            color=DOWN_COLOR,
            label="value at risk",
        )
        for py, kept, risk, share in zip(
            y, table["predicted_value"], table["value_at_risk"], table["risk_share"], strict=True
        ):
            ax.text(kept + risk, py, f" {percent(share)} at risk", va="center", fontsize=8)
        ax.set_yticks(y)
        ax.set_yticklabels([s.replace("_", " ") for s in table["segment"]])
        ax.set_title(title, fontsize=10)
        ax.set_xlabel("currency over the horizon")
        ax.xaxis.set_major_formatter(axis_money)
        ax.margins(x=0.25)
        style_axes(ax)
    handles, labels = axes[0].get_legend_handles_labels()
    fig.legend(handles, labels, frameon=False, fontsize=8, ncols=2, loc="outside upper center")
    return fig


def value_risk_heatmap(counts: pd.DataFrame, value: pd.DataFrame) -> Figure:
    """Value tier x churn-risk band: customers and predicted value in each cell, shaded by
    the cell's share of predicted value."""
    fig = new_figure(9, 0.7 * len(counts) + 1.6)
    ax = fig.add_subplot()
    total = value.to_numpy().sum()
    share = value.to_numpy() / total if total else value.to_numpy()
    image = ax.imshow(share, cmap="Blues", aspect="auto", vmin=0)
    for (r, c), n in np.ndenumerate(counts.to_numpy()):
        dark = share[r, c] > 0.6 * share.max()
        ax.text(
            c,
            r,
            f"{n:,} customers\nvalue {money(value.iat[r, c])} ({percent(share[r, c])})",
            ha="center",
            va="center",
            fontsize=8,
            color="white" if dark else "black",
        )
    ax.set_xticks(range(len(counts.columns)))
    ax.set_xticklabels(counts.columns)
    ax.set_yticks(range(len(counts.index)))
    ax.set_yticklabels(counts.index)
    ax.set_xlabel("churn risk (probability of no purchase within the horizon)")
    ax.set_ylabel("value tier")
    ax.tick_params(length=0)
    bar = fig.colorbar(image, ax=ax, shrink=0.8, pad=0.01)
    bar.set_label("share of predicted value")
    bar.ax.yaxis.set_major_formatter(lambda v, _: percent(v))
    return fig
