"""Gather what a report shows: the model, the customer base at an as-of date, its evaluation.

- The model comes from the MLflow registry (`clv.models.registry.load_clv_model`).
- The customer base is one row of features per customer at the as-of date, built from a
  transaction log by the same code and settings as training (`clv.features`, the model spec's
  feature config), and the model's predictions for it.
- The evaluation is the table a training run logs (`clv.training.artifacts.EVALUATION_PREDICTIONS`:
  held-out customers, actual labels next to model and baseline predictions). When the run has no
  such artifact but the log holds the full horizon after the as-of date, the actuals are computed
  from the log instead (and the report says so).
"""

from __future__ import annotations

import json
import logging
import tempfile
from dataclasses import dataclass, field
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import mlflow
import pandas as pd
from clv.features.build import build_features, build_panel, check_cutoffs
from clv.features.config import ColumnMapping
from clv.features.datasets import CDNOW_COLUMNS, cdnow_master_path
from clv.features.transactions import connect, load_transactions
from clv.models.composite import CLVModel
from clv.models.registry import CHAMPION_ALIAS, LoadedModel, load_clv_model
from clv.training.artifacts import (
    EVALUATION_COLUMNS,
    EVALUATION_METRICS,
    EVALUATION_PREDICTIONS,
)
from clv.training.evaluate import evaluation_table
from mlflow.exceptions import MlflowException

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class CustomerBase:
    """The customers at one as-of date and the model's view of them.

    features: one row per customer (key, descriptive and model-input columns; plus the labels
        `future_spend`, `future_purchase_days`, `churned` when `has_actuals`).
    predictions: `clv.models.composite.PREDICTION_COLUMNS`, row for row with `features`
        (currency over the model's horizon).
    """

    features: pd.DataFrame
    predictions: pd.DataFrame
    as_of: date
    source: str
    log_first_date: date
    log_last_date: date
    has_actuals: bool
    bundled: bool = False  # read from the bundled CDNOW log (no log was given)


@dataclass(frozen=True)
class Evaluation:
    """Actuals next to predictions: `clv.training.artifacts.EVALUATION_COLUMNS`, one row each."""

    predictions: pd.DataFrame
    source: str
    held_out: bool
    from_run: bool = False  # the training run's own table (its metrics are the model card's)


@dataclass(frozen=True)
class ReportData:
    """Everything a report is drawn from."""

    loaded: LoadedModel
    base: CustomerBase
    evaluation: Evaluation | None
    evaluation_note: str
    metrics: dict[str, dict[str, float]]
    metrics_source: str
    run_params: dict[str, str] = field(default_factory=dict)

    @property
    def model(self) -> CLVModel:
        return self.loaded.model


def default_as_of(model: CLVModel, log_first: date, log_last: date, bundled: bool) -> date:
    """The as-of date when none is given.

    On the bundled sample: the model's last training cutoff (the customer base the model was
    evaluated on, with a complete horizon of actuals after it). On the caller's own log: its
    last day (the customer base as it stands now).
    """
    if bundled:
        last_cutoff = max(model.spec.training_window.cutoffs)
        if log_first <= last_cutoff <= log_last:
            return last_cutoff
    return log_last


def customer_base(
    model: CLVModel,
    transactions: str | Path | None = None,
    columns: ColumnMapping | None = None,
    as_of: date | None = None,
) -> CustomerBase:
    """Features and predictions for every customer who bought on or before `as_of`.

    `transactions`: a CSV/Parquet log, its columns mapped by `columns` over those the model was
    trained with (`ColumnMapping.over`); None reads the bundled CDNOW master log. Features use
    the model's own feature config. Labels are added when the model's horizon after `as_of`
    lies inside the log. Raises TransactionLogError on a bad log or an as-of date outside it.
    """
    bundled = transactions is None
    path = cdnow_master_path() if bundled else Path(transactions)  # type: ignore[arg-type]
    # A log of the user's is read as the model's training log was, under `columns`.
    mapping = CDNOW_COLUMNS if bundled else (columns or ColumnMapping()).over(model.spec.columns)
    config = model.spec.feature_config
    horizon = model.spec.horizon_days
    con = connect()
    try:
        log = load_transactions(path, mapping, config, con)
        as_of = as_of or default_as_of(model, log.first_date, log.last_date, bundled)
        check_cutoffs(log, [as_of])
        has_actuals = as_of + timedelta(days=horizon) <= log.last_date
        if has_actuals:
            features = build_panel(log, [as_of], horizon, config)
        else:
            features = build_features(log, [as_of], config)
        first, last = log.first_date, log.last_date
    finally:
        con.close()
    features = features.reset_index(drop=True)
    logger.info("customer base at %s: %d customers", as_of, len(features))
    source = "the bundled CDNOW master log" if bundled else str(path)
    return CustomerBase(
        features=features,
        predictions=model.predict(features),
        as_of=as_of,
        source=source,
        log_first_date=first,
        log_last_date=last,
        has_actuals=has_actuals,
        bundled=bundled,
    )


def run_artifact(run_id: str | None, artifact_path: str, directory: Path) -> Path | None:
    """Download one artifact of a run into `directory`; None when the run or file is missing."""
    if not run_id:
        return None
    try:
        local = mlflow.artifacts.download_artifacts(
            run_id=run_id, artifact_path=artifact_path, dst_path=str(directory)
        )
    except (MlflowException, OSError) as exc:
        logger.info("run %s has no artifact %s (%s)", run_id, artifact_path, exc)
        return None
    path = Path(local)
    return path if path.is_file() else None


def run_evaluation(run_id: str | None) -> tuple[pd.DataFrame | None, dict[str, Any] | None]:
    """The run's evaluation predictions (EVALUATION_COLUMNS) and metrics, each None if absent."""
    with tempfile.TemporaryDirectory(prefix="clv-report-") as tmp:
        table_path = run_artifact(run_id, EVALUATION_PREDICTIONS, Path(tmp))
        metrics_path = run_artifact(run_id, EVALUATION_METRICS, Path(tmp))
        table = pd.read_parquet(table_path) if table_path else None
        metrics = json.loads(metrics_path.read_text()) if metrics_path else None
    if table is not None:
        missing = [c for c in EVALUATION_COLUMNS if c not in table.columns]
        if missing:
            logger.warning("ignoring %s: it lacks columns %s", EVALUATION_PREDICTIONS, missing)
            table = None
    return table, metrics


def run_params(run_id: str | None) -> dict[str, str]:
    """Parameters logged to the model's training run (empty when unavailable)."""
    if not run_id:
        return {}
    try:
        return dict(mlflow.MlflowClient().get_run(run_id).data.params)
    except MlflowException:
        return {}


def gather(
    alias: str = CHAMPION_ALIAS,
    transactions: str | Path | None = None,
    columns: ColumnMapping | None = None,
    as_of: date | None = None,
    version: str | None = None,
) -> ReportData:
    """Load the model by registry alias (or `version`, which wins), build its customer base
    and find its evaluation.

    Raises ModelNotFoundError (no such model) and TransactionLogError (bad log or date).
    """
    loaded = load_clv_model(None if version else alias, version=version)
    model = loaded.model
    base = customer_base(model, transactions, columns, as_of)
    table, logged_metrics = run_evaluation(loaded.run_id)
    evaluation: Evaluation | None = None
    if table is not None:
        evaluation = Evaluation(
            table,
            f"held-out customers of the training run ({EVALUATION_PREDICTIONS})",
            held_out=True,
            from_run=True,
        )
        note = ""
    elif base.has_actuals:
        labelled = base.features
        evaluation = Evaluation(
            evaluation_table(labelled, base.predictions, model.baseline, model.spec.horizon_days),
            f"actual spend in the {model.spec.horizon_days} days after {base.as_of} in "
            f"{base.source}",
            held_out=base.as_of > max(model.spec.training_window.cutoffs),
        )
        note = (
            f"The training run logged no {EVALUATION_PREDICTIONS}; accuracy is measured on the "
            "customer base against what they actually spent after the as-of date."
        )
        if not evaluation.held_out:
            note += (
                " The as-of date is not after the model's last training cutoff, so these "
                "customers were seen in training: read these figures as in-sample."
            )
    else:
        note = (
            f"The training run logged no {EVALUATION_PREDICTIONS}, and the log does not hold "
            f"the full {model.spec.horizon_days}-day horizon after {base.as_of}, so there are "
            "no actuals to compare the predictions with."
        )
    if logged_metrics:
        metrics, metrics_source = logged_metrics, f"the training run ({EVALUATION_METRICS})"
    else:
        metrics, metrics_source = model.spec.validation_metrics, "the model spec"
    return ReportData(
        loaded=loaded,
        base=base,
        evaluation=evaluation,
        evaluation_note=note,
        metrics={k: dict(v) for k, v in metrics.items() if isinstance(v, dict)},
        metrics_source=metrics_source,
        run_params=run_params(loaded.run_id),
    )
