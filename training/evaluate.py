"""Evaluate the composite model against the BG/NBD + Gamma-Gamma baseline, fitted in the same run.

Two designs (`TrainingConfig.evaluation`):

- ``out-of-time``: train on earlier cutoffs whose label horizons end on or before the evaluation
  cutoff, evaluate every customer at the evaluation cutoff. Nothing the model learns from comes
  after the evaluation cutoff: features read days <= each cutoff, and every training label ends
  by the evaluation cutoff.
- ``customer-holdout``: split customers by seed; train on the training customers at the
  evaluation cutoff and earlier cutoffs (all with complete horizons), evaluate the held-out
  customers at the evaluation cutoff.

The baseline is fitted on the training customers' features at the evaluation cutoff (it reads no
labels) and scored on the evaluation customers: value = expected purchases x expected spend,
churn = P(no purchase in the horizon).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import date, timedelta
from typing import Any

import numpy as np
import pandas as pd
from clv.features import schema
from clv.features.build import build_panel
from clv.features.transactions import TransactionLog
from clv.models.baseline import BgNbdGammaGamma
from clv.models.composite import CLVModel

from .artifacts import BASELINE_CHURN_PROBABILITY, BASELINE_VALUE, EVALUATION_COLUMNS
from .config import TrainingConfig
from .fit import TrainingDataError, fit_baseline, fit_clv_model
from .metrics import calibration_table, churn_metrics, decile_table, value_metrics

logger = logging.getLogger(__name__)


@dataclass
class EvaluationResult:
    """What an evaluation run produced.

    metrics: {"model": {...}, "baseline": {...}}, each with every key of `value_metrics` and
        `churn_metrics` plus n_customers, total_actual and total_predicted (currency).
    model: the evaluated CLVModel, its spec's validation_metrics set to `metrics`.
    predictions: one row per evaluated customer, columns `EVALUATION_COLUMNS`.
    decile_table, calibration_table: of the model (see `clv.training.metrics`);
        baseline_decile_table, baseline_calibration_table: the same for the baseline.
    window: first_date, last_date (of the log), evaluation_cutoff, training_cutoffs,
        training_label_end (last day any training label reads), horizon_days, evaluation,
        n_train_customers, n_eval_customers.
    training_panel: the rows the model was fitted on (features and labels).
    """

    metrics: dict[str, dict[str, float]]
    model: CLVModel
    predictions: pd.DataFrame
    decile_table: pd.DataFrame
    calibration_table: pd.DataFrame
    window: dict[str, Any]
    baseline_decile_table: pd.DataFrame = field(default_factory=pd.DataFrame)
    baseline_calibration_table: pd.DataFrame = field(default_factory=pd.DataFrame)
    training_panel: pd.DataFrame = field(default_factory=pd.DataFrame, repr=False)


def evaluation_cutoff(log: TransactionLog, config: TrainingConfig) -> date:
    """The configured cutoff, or the latest one whose horizon ends on the log's last day."""
    if config.cutoff is not None:
        return config.cutoff
    return log.last_date - timedelta(days=config.horizon_days)


def training_cutoffs(log: TransactionLog, config: TrainingConfig, cutoff: date) -> list[date]:
    """Cutoffs of the training panel, oldest first, `cutoff_step_days` apart.

    out-of-time: the latest is the last day whose horizon ends by the evaluation cutoff.
    customer-holdout: the latest is the evaluation cutoff itself. Cutoffs before the log's
    first day are dropped; none left is an error naming the option to change.
    """
    latest = cutoff
    if config.evaluation == "out-of-time":
        latest = cutoff - timedelta(days=config.horizon_days)
    step = timedelta(days=config.cutoff_step_days)
    cutoffs = [latest - i * step for i in range(config.training_cutoffs)]
    cutoffs = sorted(c for c in cutoffs if c >= log.first_date)
    if not cutoffs:
        raise TrainingDataError(
            f"no training cutoff fits: an out-of-time training label of {config.horizon_days} "
            f"days must end by the evaluation cutoff {cutoff}, so the latest training cutoff "
            f"would be {latest}, before the data starts ({log.first_date}). Use a shorter "
            "horizon, a later cutoff or --evaluation customer-holdout",
            "--horizon-days",
        )
    return cutoffs


def split_customers(ids: pd.Series, fraction: float, seed: int) -> set[str]:
    """The held-out customer ids: a seeded random `fraction` of the distinct ids."""
    customers = np.sort(ids.astype(str).unique())
    n = max(1, round(len(customers) * fraction))
    rng = np.random.default_rng(seed)
    return set(rng.choice(customers, size=n, replace=False).tolist())


def evaluate(log: TransactionLog, config: TrainingConfig) -> EvaluationResult:
    """Fit the composite model and the baseline and score both on the evaluation customers."""
    cutoff = evaluation_cutoff(log, config)
    train_cutoffs = training_cutoffs(log, config, cutoff)
    all_cutoffs = sorted({*train_cutoffs, cutoff})
    logger.info("building features and labels at %d cutoffs", len(all_cutoffs))
    panel = build_panel(log, all_cutoffs, config.horizon_days, config.feature_config)
    at_cutoff = panel[panel[schema.CUTOFF] == pd.Timestamp(cutoff)]
    in_training = panel[schema.CUTOFF].isin([pd.Timestamp(c) for c in train_cutoffs])

    if config.evaluation == "customer-holdout":
        held_out = split_customers(
            at_cutoff[schema.CUSTOMER_ID], config.holdout_fraction, config.seed
        )
        train_panel = panel[in_training & ~panel[schema.CUSTOMER_ID].isin(held_out)]
        eval_rows = at_cutoff[at_cutoff[schema.CUSTOMER_ID].isin(held_out)]
    else:
        train_panel = panel[in_training]
        eval_rows = at_cutoff
    train_panel = train_panel.reset_index(drop=True)
    eval_rows = eval_rows.reset_index(drop=True)
    train_ids = set(train_panel[schema.CUSTOMER_ID])
    if len(eval_rows) < 10:
        raise TrainingDataError(
            f"only {len(eval_rows)} customers to evaluate at {cutoff}", "--holdout-fraction"
        )

    logger.info(
        "training on %d rows (%d customers), evaluating %d customers at %s",
        len(train_panel),
        len(train_ids),
        len(eval_rows),
        cutoff,
    )
    model = fit_clv_model(train_panel, config)

    # The baseline reads only features at the evaluation cutoff, never a label.
    baseline_rows = at_cutoff[at_cutoff[schema.CUSTOMER_ID].isin(train_ids)]
    baseline = fit_baseline(baseline_rows, config)

    out = model.predict(eval_rows, num_threads=config.params.churn.num_threads)
    predictions = evaluation_table(eval_rows, out, baseline, config.horizon_days)
    metrics = model_and_baseline_metrics(predictions)
    window = {
        "first_date": log.first_date,
        "last_date": log.last_date,
        "evaluation": config.evaluation,
        "evaluation_cutoff": cutoff,
        "training_cutoffs": train_cutoffs,
        "training_label_end": max(train_cutoffs) + timedelta(days=config.horizon_days),
        "horizon_days": config.horizon_days,
        "n_train_customers": len(train_ids),
        "n_eval_customers": len(eval_rows),
    }
    actual = predictions[schema.FUTURE_SPEND]
    churned = predictions[schema.CHURNED]
    return EvaluationResult(
        metrics=metrics,
        model=model.with_spec(validation_metrics=metrics),
        predictions=predictions,
        decile_table=decile_table(actual, predictions["predicted_value"]),
        calibration_table=calibration_table(churned, predictions["churn_probability"]),
        window=window,
        baseline_decile_table=decile_table(actual, predictions[BASELINE_VALUE]),
        baseline_calibration_table=calibration_table(
            churned, predictions[BASELINE_CHURN_PROBABILITY]
        ),
        training_panel=train_panel,
    )


def evaluation_table(
    rows: pd.DataFrame,
    predictions: pd.DataFrame,
    baseline: BgNbdGammaGamma | None,
    horizon_days: int,
) -> pd.DataFrame:
    """EVALUATION_COLUMNS for labelled feature rows: labels, model and baseline outputs.

    `rows`: feature rows with the label columns; `predictions`: `CLVModel.predict(rows)`, row
    for row. The baseline columns are NaN when there is no baseline.
    """
    if baseline is not None:
        baseline_value = np.asarray(baseline.predict_value(rows, horizon_days), dtype=float)
        baseline_churn = np.clip(
            np.asarray(baseline.probability_no_purchase(rows, horizon_days), dtype=float),
            0.0,
            1.0,
        )
    else:
        baseline_value = baseline_churn = np.full(len(rows), np.nan)
    frame = pd.DataFrame(
        {
            schema.CUSTOMER_ID: rows[schema.CUSTOMER_ID].astype(str).to_numpy(),
            schema.CUTOFF: rows[schema.CUTOFF].to_numpy(),
            schema.LIFECYCLE_STAGE: rows[schema.LIFECYCLE_STAGE].astype(str).to_numpy(),
            schema.HISTORICAL_VALUE: rows[schema.HISTORICAL_VALUE].to_numpy(dtype=float),
            schema.FUTURE_SPEND: rows[schema.FUTURE_SPEND].to_numpy(dtype=float),
            schema.CHURNED: rows[schema.CHURNED].to_numpy(dtype=int),
            BASELINE_VALUE: baseline_value,
            BASELINE_CHURN_PROBABILITY: baseline_churn,
        }
    )
    for column in EVALUATION_COLUMNS:
        if column not in frame:
            frame[column] = predictions[column].to_numpy()
    return frame[list(EVALUATION_COLUMNS)]


def model_and_baseline_metrics(table: pd.DataFrame) -> dict[str, dict[str, float]]:
    """{"model": {...}, "baseline": {...}}: `table_metrics` of an evaluation table's two sides."""
    return {
        "model": table_metrics(table, "predicted_value", "churn_probability"),
        "baseline": table_metrics(table, BASELINE_VALUE, BASELINE_CHURN_PROBABILITY),
    }


def table_metrics(predictions: pd.DataFrame, value: str, churn: str) -> dict[str, float]:
    """Value and churn metrics of one pair of prediction columns against the labels, plus
    n_customers, total_actual and total_predicted (currency)."""
    actual = predictions[schema.FUTURE_SPEND].to_numpy(dtype=float)
    predicted = predictions[value].to_numpy(dtype=float)
    return {
        **value_metrics(actual, predicted),
        **churn_metrics(predictions[schema.CHURNED].to_numpy(dtype=float), predictions[churn]),
        "n_customers": float(len(predictions)),
        "total_actual": float(actual.sum()),
        "total_predicted": float(predicted.sum()),
    }
