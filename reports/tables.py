"""The numbers behind the report: customer-base summaries and accuracy tables.

Inputs are prediction frames (`clv.models.composite.PREDICTION_COLUMNS`) and evaluation frames
(`clv.training.artifacts.EVALUATION_COLUMNS`). Value columns are currency over the model's
horizon; historical value is net spend to the as-of date.
"""

from __future__ import annotations

from typing import Final

import numpy as np
import pandas as pd
from clv.features import schema
from clv.models.spec import VALUE_TIERS, TierThresholds
from clv.training.artifacts import BASELINE_CHURN_PROBABILITY, BASELINE_VALUE
from clv.training.metrics import (
    calibration_table,
    churn_metrics,
    decile_table,
    gain_curve,
    normalized_gini,
    value_metrics,
)

# Churn-risk bands of the value x risk matrix: [low, high) probability of churn.
RISK_BANDS: Final = (
    ("low (<25%)", 0.0, 0.25),
    ("medium (25–50%)", 0.25, 0.5),
    ("high (50–75%)", 0.5, 0.75),
    ("very high (≥75%)", 0.75, 1.01),
)


def present(order: tuple[str, ...], values: pd.Series) -> list[str]:
    """The members of `order` that occur in `values`, in that order."""
    seen = set(values.astype(str))
    return [v for v in order if v in seen]


def segment_summary(predictions: pd.DataFrame, column: str, order: list[str]) -> pd.DataFrame:
    """One row per segment of `column` (value_tier or lifecycle_stage), in `order`.

    Columns: segment, customers, share_of_customers, historical_value, share_of_historical,
    predicted_value, share_of_value, mean_value, churn_probability (mean), value_at_risk,
    risk_share (value at risk / (predicted value + value at risk)).
    """
    frame = predictions.assign(_segment=predictions[column].astype(str))
    grouped = frame.groupby("_segment").agg(
        customers=(schema.CUSTOMER_ID, "size"),
        historical_value=(schema.HISTORICAL_VALUE, "sum"),
        predicted_value=("predicted_value", "sum"),
        churn_probability=("churn_probability", "mean"),
        value_at_risk=("value_at_risk", "sum"),
    )
    grouped = grouped.reindex([o for o in order if o in grouped.index])
    out = grouped.reset_index(names="segment")
    out["share_of_customers"] = out["customers"] / out["customers"].sum()
    out["share_of_historical"] = out["historical_value"] / out["historical_value"].sum()
    out["share_of_value"] = out["predicted_value"] / out["predicted_value"].sum()
    out["mean_value"] = out["predicted_value"] / out["customers"]
    out["risk_share"] = out["value_at_risk"] / (out["predicted_value"] + out["value_at_risk"])
    return out[list(SUMMARY_COLUMNS)]


SUMMARY_COLUMNS: Final = (
    "segment",
    "customers",
    "share_of_customers",
    "historical_value",
    "share_of_historical",
    "predicted_value",
    "share_of_value",
    "mean_value",
    "churn_probability",
    "value_at_risk",
    "risk_share",
)


def tier_summary(predictions: pd.DataFrame, thresholds: TierThresholds) -> pd.DataFrame:
    """`segment_summary` by value tier, with each tier's predicted-value range."""
    out = segment_summary(predictions, "value_tier", list(VALUE_TIERS))
    bounds = {
        "platinum": f"≥ {thresholds.platinum:,.0f}",
        "gold": f"{thresholds.gold:,.0f} – {thresholds.platinum:,.0f}",
        "silver": f"{thresholds.silver:,.0f} – {thresholds.gold:,.0f}",
        "bronze": f"< {thresholds.silver:,.0f}",
    }
    out.insert(1, "predicted_value_range", out["segment"].map(bounds))
    return out


def concentration(predictions: pd.DataFrame, shares: tuple[float, ...] = (0.01, 0.1, 0.2)) -> dict:
    """Share of total predicted value held by the top `share` of customers, for each share."""
    value = np.sort(predictions["predicted_value"].to_numpy(dtype=float))[::-1]
    total = value.sum()
    return {s: float(value[: max(1, round(s * len(value)))].sum() / total) for s in shares}


def risk_band(probability: pd.Series) -> pd.Series:
    """The churn-risk band of each probability (labels of RISK_BANDS)."""
    edges = [low for _, low, _ in RISK_BANDS] + [RISK_BANDS[-1][2]]
    labels = [name for name, _, _ in RISK_BANDS]
    return pd.cut(probability, bins=edges, labels=labels, right=False).astype(str)


def value_risk_matrix(predictions: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Customers and predicted value in each (value tier, churn-risk band) cell.

    Returns (counts, value): index = value tiers present (platinum first), columns = risk bands.
    """
    frame = predictions.assign(
        _band=risk_band(predictions["churn_probability"]),
        _tier=predictions["value_tier"].astype(str),
    )
    tiers = present(VALUE_TIERS, frame["_tier"])
    bands = [name for name, _, _ in RISK_BANDS]
    counts = pd.crosstab(frame["_tier"], frame["_band"]).reindex(
        index=tiers, columns=bands, fill_value=0
    )
    value = (
        frame.pivot_table(
            index="_tier", columns="_band", values="predicted_value", aggfunc="sum", observed=True
        )
        .reindex(index=tiers, columns=bands)
        .fillna(0.0)
    )
    return counts, value


# --- accuracy ---------------------------------------------------------------------------------
def accuracy_metrics(evaluation: pd.DataFrame) -> pd.DataFrame:
    """Value and churn metrics of the model and the baseline on the evaluated customers.

    Index: metric names of `clv.training.metrics.value_metrics` and `churn_metrics`; columns:
    model, baseline.
    """
    actual = evaluation[schema.FUTURE_SPEND].to_numpy(dtype=float)
    churned = evaluation[schema.CHURNED].to_numpy(dtype=float)
    out = {}
    for name, value, churn in (
        ("model", "predicted_value", "churn_probability"),
        ("baseline", BASELINE_VALUE, BASELINE_CHURN_PROBABILITY),
    ):
        if evaluation[value].isna().any() or evaluation[churn].isna().any():
            continue
        out[name] = {
            **value_metrics(actual, evaluation[value].to_numpy(dtype=float)),
            **churn_metrics(churned, np.clip(evaluation[churn].to_numpy(dtype=float), 0, 1)),
        }
    return pd.DataFrame(out)


def has_baseline(evaluation: pd.DataFrame) -> bool:
    """Whether the evaluation carries baseline predictions."""
    return not (
        evaluation[BASELINE_VALUE].isna().any()
        or evaluation[BASELINE_CHURN_PROBABILITY].isna().any()
    )


def deciles(evaluation: pd.DataFrame, column: str) -> pd.DataFrame:
    """`clv.training.metrics.decile_table` of the predictions in `column`."""
    return decile_table(evaluation[schema.FUTURE_SPEND], evaluation[column])


def gains(evaluation: pd.DataFrame, column: str) -> tuple[pd.DataFrame, float]:
    """Cumulative gain curve and normalized Gini of the predictions in `column`."""
    actual = evaluation[schema.FUTURE_SPEND]
    return gain_curve(actual, evaluation[column]), normalized_gini(actual, evaluation[column])


def calibration(evaluation: pd.DataFrame, column: str, bins: int = 10) -> pd.DataFrame:
    """`clv.training.metrics.calibration_table` of the churn probabilities in `column`."""
    probability = np.clip(evaluation[column].to_numpy(dtype=float), 0.0, 1.0)
    return calibration_table(evaluation[schema.CHURNED], probability, bins)


def total_forecast(evaluation: pd.DataFrame) -> pd.DataFrame:
    """Total actual vs predicted value, overall and per lifecycle stage.

    Columns: segment, customers, actual, model, model_error (relative: predicted / actual - 1),
    baseline, baseline_error. Currency over the horizon.
    """
    stages = present(schema.LIFECYCLE_STAGES, evaluation[schema.LIFECYCLE_STAGE].astype(str))
    parts = [("all customers", evaluation)] + [
        (s, evaluation[evaluation[schema.LIFECYCLE_STAGE].astype(str) == s]) for s in stages
    ]
    rows = []
    for name, part in parts:
        actual = float(part[schema.FUTURE_SPEND].sum())
        model = float(part["predicted_value"].sum())
        baseline = float(part[BASELINE_VALUE].sum())
        rows.append(
            {
                "segment": name,
                "customers": len(part),
                "actual": actual,
                "model": model,
                "model_error": model / actual - 1 if actual else np.nan,
                "baseline": baseline,
                "baseline_error": baseline / actual - 1 if actual else np.nan,
            }
        )
    return pd.DataFrame(rows)
