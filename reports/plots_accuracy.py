"""Figures of accuracy on evaluated customers: lift by decile, gain, calibration, totals."""

from __future__ import annotations

import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from .figures import (
    ACTUAL_COLOR,
    BASELINE_COLOR,
    MODEL_COLOR,
    axis_money,
    new_figure,
    style_axes,
)


def lift_chart(deciles: dict[str, pd.DataFrame]) -> Figure:
    """Mean predicted vs mean actual value per decile of prediction, one panel per model.

    `deciles`: name ("model", "baseline") -> `clv.training.metrics.decile_table`.
    """
    fig = new_figure(5.2 * len(deciles), 3.8)
    axes = fig.subplots(1, len(deciles), sharey=True, squeeze=False)[0]
    for ax, (name, table) in zip(axes, deciles.items(), strict=True):
        x = table["decile"].to_numpy()
        color = MODEL_COLOR if name == "model" else BASELINE_COLOR
        ax.bar(x - 0.2, table["predicted_mean"], width=0.4, color=color, label="predicted")
        ax.bar(x + 0.2, table["actual_mean"], width=0.4, color=ACTUAL_COLOR, label="actual")
        ax.set_xticks(x)
        ax.set_xlabel(f"decile of {name} prediction (1 = highest)")
        ax.set_title(name, fontsize=10)
        style_axes(ax)
        ax.legend(frameon=False, fontsize=8)
    axes[0].set_ylabel("mean value per customer (currency)")
    return fig


def gain_chart(curves: dict[str, tuple[pd.DataFrame, float]]) -> Figure:
    """Cumulative share of actual value captured by the top x% of customers by prediction.

    `curves`: name -> (`clv.training.metrics.gain_curve`, normalized Gini).
    """
    fig = new_figure(6, 4.6)
    ax = fig.add_subplot()
    first = next(iter(curves.values()))[0]
    ax.plot(
        first["share_of_customers"],
        first["perfect_share_of_value"],
        color=ACTUAL_COLOR,
        linestyle=":",
        label="perfect ranking",
    )
    for name, (curve, gini) in curves.items():
        color = MODEL_COLOR if name == "model" else BASELINE_COLOR
        ax.plot(
            curve["share_of_customers"],
            curve["share_of_value"],
            color=color,
            linewidth=2,
            label=f"{name} (normalized Gini {gini:.3f})",
        )
    ax.plot([0, 1], [0, 1], color="#aaaaaa", linestyle="--", label="random")
    ax.set_xlabel("share of customers, ranked by predicted value")
    ax.set_ylabel("share of actual value captured")
    ax.set_xlim(0, 1)
    ax.set_ylim(0, 1.01)
    ax.legend(frameon=False, fontsize=8, loc="lower right")
    style_axes(ax)
    return fig


def calibration_chart(tables: dict[str, pd.DataFrame]) -> Figure:
    """Observed churn rate against mean predicted probability, bins of equal customer count.

    `tables`: name -> `clv.training.metrics.calibration_table`.
    """
    fig = new_figure(6, 4.6)
    ax = fig.add_subplot()
    ax.plot([0, 1], [0, 1], color="#aaaaaa", linestyle="--", label="perfectly calibrated")
    for name, table in tables.items():
        color = MODEL_COLOR if name == "model" else BASELINE_COLOR
        ax.plot(
            table["mean_predicted"],
            table["observed_rate"],
            marker="o",
            color=color,
            linewidth=2,
            label=name,
        )
    ax.set_xlabel("predicted churn probability (mean of bin)")
    ax.set_ylabel("observed churn rate")
    ax.set_xlim(0, 1)
    ax.set_ylim(0, 1)
    ax.legend(frameon=False, fontsize=8, loc="upper left")
    style_axes(ax)
    return fig


def total_forecast_chart(table: pd.DataFrame) -> Figure:
    """Total actual vs predicted value per segment, with the relative error of each forecast.

    `table`: `reports.tables.total_forecast`.
    """
    fig = new_figure(8, 3.8)
    ax = fig.add_subplot()
    x = np.arange(len(table))
    bars = (
        ("actual", "actual", ACTUAL_COLOR, None),
        ("model", "model", MODEL_COLOR, "model_error"),
        ("baseline", "baseline", BASELINE_COLOR, "baseline_error"),
    )
    for i, (label, column, color, error) in enumerate(bars):
        positions = x + (i - 1) * 0.27
        ax.bar(positions, table[column], width=0.27, color=color, label=label)
        if error is None:
            continue
        for px, height, err in zip(positions, table[column], table[error], strict=True):
            if np.isfinite(err):
                ax.text(px, height, f"{100 * err:+.0f}%", ha="center", va="bottom", fontsize=8)
    ax.set_xticks(x)
    ax.set_xticklabels([s.replace("_", " ") for s in table["segment"]])
    ax.set_ylabel("total value over the horizon (currency)")
    ax.yaxis.set_major_formatter(axis_money)
    ax.legend(frameon=False, fontsize=8)
    style_axes(ax)
    return fig
