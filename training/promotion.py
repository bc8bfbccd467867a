"""The champion's side of the gate (`gate.py`): score it, then move the alias.

The champion is scored on the same data as the candidate: metrics measured on different data
would be apples to oranges, so it is not judged by the numbers it logged when it was trained.
It is loaded from the registry and re-scored on the new run's evaluation customers, at the same
cutoff, with the same labels (its features built with its own feature settings). Only when it
cannot be loaded does the gate fall back to its logged validation metrics, and says so.
Champions with another horizon answer another question: the gate does not compare them and
does not promote (move the alias by hand if that is what you want). The alias moves only if
no other run moved it while this one was deciding.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from datetime import date
from typing import Any, Final

import mlflow
import pandas as pd
from clv.features import schema
from clv.features.build import build_panel
from clv.features.transactions import TransactionLog
from clv.models.composite import CLVModel
from clv.models.registry import CHAMPION_ALIAS, ModelNotFoundError, load_clv_model, set_alias

from .config import TrainingConfig
from .evaluate import evaluation_table, table_metrics
from .gate import BASIS_LOGGED, BASIS_NOT_COMPARED, BASIS_SAME_CUSTOMERS, ChampionScore
from .tracking import flatten

logger = logging.getLogger(__name__)


def current_champion_version(name: str, alias: str = CHAMPION_ALIAS) -> str | None:
    """The version the alias points at, or None when the model or the alias does not exist."""
    client = mlflow.MlflowClient()
    try:
        return str(client.get_model_version_by_alias(name, alias).version)
    except mlflow.exceptions.MlflowException:
        return None


def score_on_customers(
    model: CLVModel, log: TransactionLog, pairs: pd.DataFrame, horizon_days: int
) -> dict[str, float]:
    """Metrics of `model` on the given (customer_id, cutoff) rows of `log`, labels included.

    Features are built with the model's own feature settings; the rows keep the order of
    `pairs`, so order-dependent tie-breaks match the candidate's evaluation.
    """
    cutoffs = sorted({pd.Timestamp(c).date() for c in pairs[schema.CUTOFF]})
    panel = build_panel(log, cutoffs, horizon_days, model.spec.feature_config)
    keys = pairs[[schema.CUSTOMER_ID, schema.CUTOFF]].astype(
        {schema.CUSTOMER_ID: str, schema.CUTOFF: "datetime64[us]"}
    )
    panel[schema.CUTOFF] = panel[schema.CUTOFF].astype("datetime64[us]")
    rows = keys.merge(panel, on=[schema.CUSTOMER_ID, schema.CUTOFF], how="inner")
    if len(rows) != len(keys):
        raise ValueError(f"only {len(rows)} of {len(keys)} evaluation rows could be rebuilt")
    table = evaluation_table(rows, model.predict(rows), None, horizon_days)
    return table_metrics(table, "predicted_value", "churn_probability")


def _logged_metrics(run_id: str | None) -> dict[str, float]:
    """`model.<k>` metrics of a run, without the prefix (empty when unavailable)."""
    if not run_id:
        return {}
    try:
        run = mlflow.MlflowClient().get_run(run_id)
    except mlflow.exceptions.MlflowException:
        return {}
    return {k[len("model.") :]: v for k, v in run.data.metrics.items() if k.startswith("model.")}


# Run params that fix which customers and labels a model trained on (see tracking.log_provenance).
SPLIT_PARAMS: Final = (
    "evaluation",
    "holdout_fraction",
    "seed",
    "training_cutoffs",
    "cutoff_step_days",
    "data.sha256",
    "data.evaluation_cutoff",
)


def split_params(
    config: TrainingConfig, data_hash: str, window: Mapping[str, Any]
) -> dict[str, str]:
    """The candidate's SPLIT_PARAMS, spelled as its run logs them."""
    flat = flatten(config.model_dump(mode="json"))
    cutoff = window.get("evaluation_cutoff")
    flat["data.sha256"] = data_hash
    flat["data.evaluation_cutoff"] = cutoff.isoformat() if isinstance(cutoff, date) else str(cutoff)
    return {k: flat.get(k, "") for k in SPLIT_PARAMS}


def _run_params(run_id: str | None) -> dict[str, str]:
    if not run_id:
        return {}
    try:
        return dict(mlflow.MlflowClient().get_run(run_id).data.params)
    except mlflow.exceptions.MlflowException:
        return {}


def _window_notes(
    champion: CLVModel,
    version: str,
    champion_params: Mapping[str, str],
    candidate_split: Mapping[str, str],
    window: Mapping[str, Any],
) -> list[str]:
    """Tell the reader when the champion was trained on other data, or on these outcomes."""
    notes = []
    spec = champion.spec
    cutoff = window.get("evaluation_cutoff")
    data_hash = candidate_split.get("data.sha256", "")
    if spec.data_hash != data_hash:
        notes.append(
            f"champion v{version} was trained on other data (sha256 "
            f"{spec.data_hash[:12] or 'unknown'} vs "
            f"{data_hash[:12]}, window {spec.training_window.first_date} to "
            f"{spec.training_window.last_date}); both are scored on this run's "
            f"{window.get('n_eval_customers', '?')} evaluation customers at {cutoff}"
        )
    # Labels after the evaluation cutoff are harmless only if they belong to other customers,
    # which holds when the champion's run split the same data the same way.
    same_split = all(champion_params.get(k) == v for k, v in candidate_split.items())
    if isinstance(cutoff, date) and spec.training_window.last_date > cutoff and not same_split:
        notes.append(
            f"champion v{version} learned from labels up to "
            f"{spec.training_window.last_date}, after this evaluation cutoff ({cutoff}), with "
            "another split: it may have seen some of these customers' outcomes, so its scores "
            "may be optimistic and the gate errs towards keeping it"
        )
    return notes


def assess_champion(
    name: str,
    log: TransactionLog,
    predictions: pd.DataFrame,
    config: TrainingConfig,
    data_hash: str,
    window: Mapping[str, Any],
    alias: str = CHAMPION_ALIAS,
) -> tuple[ChampionScore | None, str | None]:
    """The current champion scored on the candidate's evaluation rows, and a blocking reason.

    `predictions` holds the candidate's evaluation rows (customer_id, cutoff). Returns
    (None, None) when there is no champion. Falls back to the champion's logged metrics when
    it cannot be loaded or re-scored.
    """
    horizon_days = config.horizon_days
    version = current_champion_version(name, alias)
    if version is None:
        return None, None
    try:
        loaded = load_clv_model(alias=None, name=name, version=version)
    except (ModelNotFoundError, ValueError, OSError, mlflow.exceptions.MlflowException) as exc:
        return _fallback(name, version, None, f"it could not be loaded ({exc})")
    champion = loaded.model
    if champion.spec.horizon_days != horizon_days:
        score = ChampionScore(version, {}, BASIS_NOT_COMPARED, loaded.run_id)
        return score, (
            f"champion v{version} predicts value over {champion.spec.horizon_days} days, this "
            f"model over {horizon_days}: they answer different questions and are not compared. "
            "Move the alias by hand if this model should replace it"
        )
    split = split_params(config, data_hash, window)
    notes = _window_notes(champion, version, _run_params(loaded.run_id), split, window)
    try:
        logger.info("re-scoring champion v%s on this run's evaluation customers", version)
        metrics = score_on_customers(champion, log, predictions, horizon_days)
    except (ValueError, KeyError) as exc:
        return _fallback(name, version, loaded.model, f"it could not be re-scored ({exc})")
    return ChampionScore(version, metrics, BASIS_SAME_CUSTOMERS, loaded.run_id, notes), None


def _fallback(
    name: str, version: str, model: CLVModel | None, why: str
) -> tuple[ChampionScore, str | None]:
    run_id = None
    metrics: dict[str, float] = {}
    if model is not None:
        metrics = dict(model.spec.validation_metrics.get("model", {}))
    if not metrics:
        try:
            run_id = mlflow.MlflowClient().get_model_version(name, version).run_id
        except mlflow.exceptions.MlflowException:
            run_id = None
        metrics = _logged_metrics(run_id)
    note = (
        f"champion v{version} was not re-scored on this run's customers: {why}; compared with "
        "the metrics it logged on its own evaluation data (apples to oranges)"
    )
    score = ChampionScore(version, metrics, BASIS_LOGGED, run_id, [note])
    if not metrics:
        return score, f"champion v{version} has no metrics to compare with: {why}"
    return score, None


def move_alias(
    version: str, name: str, expected_previous: str | None, alias: str = CHAMPION_ALIAS
) -> str | None:
    """Point the alias at `version` (one registry call), unless it moved since the decision.

    Returns None when moved, else why not (another run promoted a model in the meantime).
    """
    now = current_champion_version(name, alias)
    if now != expected_previous:
        return (
            f"the '{alias}' alias moved to version {now} while this run was deciding (it was "
            f"{expected_previous or 'unset'}): version {version} was judged against the old one"
        )
    set_alias(version, alias=alias, name=name)
    return None
