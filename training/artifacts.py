"""Names of what a training run logs to MLflow, shared by training (writer) and reports (reader).

The evaluation predictions table holds one row per evaluated customer (the holdout customers,
or the latest cutoff out-of-time) with the actual labels next to the model's and the baseline's
predictions, so a report can redraw every accuracy plot without retraining.
"""

from __future__ import annotations

from typing import Final

from clv.features import schema

EVALUATION_PREDICTIONS: Final = "evaluation/predictions.parquet"
EVALUATION_METRICS: Final = "evaluation/metrics.json"  # {"model": {...}, "baseline": {...}}

# Columns of EVALUATION_PREDICTIONS (currency over the model's horizon, probabilities in [0, 1]).
BASELINE_VALUE: Final = "baseline_value"
BASELINE_CHURN_PROBABILITY: Final = "baseline_churn_probability"
EVALUATION_COLUMNS: Final = (
    schema.CUSTOMER_ID,
    schema.CUTOFF,
    schema.LIFECYCLE_STAGE,
    schema.HISTORICAL_VALUE,
    schema.FUTURE_SPEND,
    schema.CHURNED,
    "predicted_value",
    "value_p10",
    "value_p90",
    "churn_probability",
    "value_at_risk",
    "value_tier",
    BASELINE_VALUE,
    BASELINE_CHURN_PROBABILITY,
)
