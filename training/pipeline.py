"""`run_training`: validated log -> evaluation -> MLflow run -> registered version -> promotion.

The order is what makes a failure harmless:

1. the tracking store is opened before anything is trained (a bad MLFLOW_TRACKING_URI costs
   nothing);
2. the run logs everything (params, tables, plots, the model, its metrics) and, with
   `promote`, the gate's decision;
3. only then is the model registered, and only after that does the alias move (one call).

An exception inside the run marks it FAILED, and nothing has been registered by then.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import mlflow
import pandas as pd
from clv.features import schema
from clv.features.build import build_features, check_cutoffs
from clv.features.config import ColumnMapping
from clv.features.errors import TransactionLogError
from clv.features.sources import find_log
from clv.features.transactions import TransactionLog, connect, load_transactions
from clv.models.registry import CHAMPION_ALIAS, REGISTERED_MODEL_NAME, register_clv_model

from . import gate, promotion, tracking
from .config import TrainingConfig
from .evaluate import EvaluationResult, evaluate
from .fit import TrainingDataError

logger = logging.getLogger(__name__)


@dataclass
class TrainingOutcome:
    """What a training run produced and where it is recorded."""

    tracking_uri: str
    experiment_id: str
    run_id: str
    model_uri: str
    model_name: str
    version: str
    metrics: dict[str, dict[str, float]]
    window: dict[str, Any]
    data_hash: str
    decision: gate.PromotionDecision | None = None


def check_data(log: TransactionLog, config: TrainingConfig) -> None:
    """Refuse too few customers, a cutoff outside the data, or a horizon it cannot hold."""
    if log.n_customers < config.min_customers:
        raise TrainingDataError(
            f"the log has {log.n_customers} customers; training needs at least "
            f"{config.min_customers} (min_customers)",
            "--transactions",
        )
    if config.cutoff is not None:
        check_cutoffs(log, [config.cutoff], config.horizon_days)
        return
    span = (log.last_date - log.first_date).days
    if config.horizon_days >= span:
        raise TransactionLogError(
            f"a {config.horizon_days}-day horizon does not fit in the data, which runs "
            f"{span} days ({log.first_date} to {log.last_date}): labels need a full horizon "
            "after the evaluation cutoff and history before it. Use a shorter horizon",
            field="--horizon-days",
        )


def input_example(
    log: TransactionLog, result: EvaluationResult, config: TrainingConfig
) -> pd.DataFrame:
    """A few evaluated customers' feature rows, as serving would send them."""
    pairs = result.predictions[[schema.CUSTOMER_ID, schema.CUTOFF]].head(5)
    return build_features(log, pairs, config.feature_config)


def run_training(
    source: str | Path | TransactionLog,
    config: TrainingConfig,
    *,
    columns: ColumnMapping | None = None,
    experiment: str = tracking.DEFAULT_EXPERIMENT,
    model_name: str = REGISTERED_MODEL_NAME,
    promote: bool = False,
    alias: str = CHAMPION_ALIAS,
    data_hash: str | None = None,
    memory_limit: str | None = None,
) -> TrainingOutcome:
    """Evaluate, track, register and (with `promote`) maybe promote a model.

    `source` is a transaction file (CSV or Parquet; its sha256 is recorded) or an already
    validated log (give `data_hash` to record where it came from). Raises TrackingStoreError,
    TransactionLogError or TrainingDataError on bad input, before anything is logged.
    """
    uri = tracking.check_tracking_store()
    experiment_id = tracking.ensure_experiment(experiment, uri)
    logger.info("tracking to %s (experiment '%s')", uri, experiment)
    git = tracking.git_state()
    if isinstance(source, TransactionLog):
        log, source_name, columns = source, None, None  # read by the caller: unknown here
        data_hash = data_hash or "unknown"
    else:
        path = Path(source)
        columns = columns or ColumnMapping()
        # A folder's or pattern's files are found once: the hash covers exactly the files read.
        files = find_log(path)
        log = load_transactions(files, columns, config.feature_config, connect(memory_limit))
        source_name = str(path)
        logger.info("hashing %s", path)
        data_hash = tracking.file_sha256(files)
    check_data(log, config)

    logger.info("evaluating (%s, %d-day horizon)", config.evaluation, config.horizon_days)
    result = evaluate(log, config)
    model = result.model.with_spec(code_version=git.commit, data_hash=data_hash, columns=columns)
    example = input_example(log, result, config)

    with mlflow.start_run(experiment_id=experiment_id) as run:
        run_id = run.info.run_id
        logger.info("logging run %s", run_id)
        tracking.log_provenance(config, result.window, data_hash, log.report, git, source_name)
        tracking.log_features(model)
        tracking.log_evaluation(result.metrics, result.predictions, _tables(result))
        info = tracking.log_model_and_metrics(model, example, result.metrics)

        decision = None
        if promote:
            decision = _decide(model_name, alias, log, result, config, data_hash)
        else:
            mlflow.set_tag("promotion.decision", "not requested")

        # Registered last: a failure above leaves a FAILED run and no registered version.
        version = register_clv_model(info.model_uri, model_name)
        mlflow.set_tags({"registered_model.name": model_name, "registered_model.version": version})
        _tag_version(model_name, version, run_id, data_hash, git)
        logger.info("registered %s version %s", model_name, version)

        if decision is not None and decision.promote:
            refused = promotion.move_alias(version, model_name, decision.champion_version, alias)
            if refused:
                decision.promote, decision.blocked = False, refused
            mlflow.set_tags(decision.tags())
            if not refused:
                mlflow.set_tag("promotion.version", version)

    return TrainingOutcome(
        tracking_uri=uri,
        experiment_id=experiment_id,
        run_id=run_id,
        model_uri=f"models:/{model_name}/{version}",
        model_name=model_name,
        version=version,
        metrics=result.metrics,
        window=result.window,
        data_hash=data_hash,
        decision=decision,
    )


def _tables(result: EvaluationResult) -> dict[str, pd.DataFrame]:
    return {
        tracking.EVALUATION_DECILES: result.decile_table,
        tracking.EVALUATION_BASELINE_DECILES: result.baseline_decile_table,
        tracking.EVALUATION_CALIBRATION: result.calibration_table,
        tracking.EVALUATION_BASELINE_CALIBRATION: result.baseline_calibration_table,
    }


def _decide(
    model_name: str,
    alias: str,
    log: TransactionLog,
    result: EvaluationResult,
    config: TrainingConfig,
    data_hash: str,
) -> gate.PromotionDecision:
    """Run the gate and record its decision on the active run (before registration)."""
    champion, blocked = promotion.assess_champion(
        model_name,
        log,
        result.predictions,
        config,
        data_hash,
        result.window,
        alias,
    )
    decision = gate.decide(result.metrics, champion, blocked)
    if champion is not None and champion.metrics:
        mlflow.log_metrics(
            {f"champion.{k}": float(v) for k, v in champion.metrics.items()},
        )
    mlflow.set_tags(decision.tags())
    mlflow.log_dict(decision.to_dict(), "promotion/decision.json")
    return decision


def _tag_version(
    model_name: str, version: str, run_id: str, data_hash: str, git: tracking.GitState
) -> None:
    """Provenance on the registry entry itself, for readers who never open the run."""
    client = mlflow.MlflowClient()
    tags = {"run_id": run_id, "data_sha256": data_hash, "git_commit": git.commit}
    for key, value in tags.items():
        try:
            client.set_model_version_tag(model_name, version, key, value)
        except mlflow.exceptions.MlflowException as exc:  # provenance only: never fatal
            logger.warning("could not tag %s version %s: %s", model_name, version, exc)
