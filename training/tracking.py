"""MLflow tracking of a training run: where the store is, and what a run records.

A training run records, in one MLflow run:

- params: the `TrainingConfig` flattened (`params.churn.learning_rate`, ...), the data window
  (`data.first_date`, `data.evaluation_cutoff`, ...), the input's sha256 and cleaning counts;
- tags: git commit and dirty flag, the data hash, the registered model version, the promotion
  decision (see `gate.py` and `promotion.py`);
- metrics: `model.<k>` and `baseline.<k>` for every validation metric (linked to the logged model);
- artifacts: the evaluation tables (`EVALUATION_PREDICTIONS`, `EVALUATION_METRICS` and the decile
  and calibration tables), the feature list, the cleaning report, plots (lift by decile, churn
  calibration), and the composite model (`clv.models.registry.log_clv_model`).

The tracking URI is MLflow's own: `MLFLOW_TRACKING_URI`, else `sqlite:///mlflow.db`. Nothing here
runs at import time.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import os
import subprocess
import tempfile
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Any, Final

import mlflow
import numpy as np
import pandas as pd
from clv.features import schema
from clv.features.sources import LogSource, find_log, is_pattern
from clv.features.transactions import CleaningReport
from clv.models.composite import CLVModel
from clv.models.registry import log_clv_model
from matplotlib.figure import Figure

from .artifacts import (
    BASELINE_CHURN_PROBABILITY,
    BASELINE_VALUE,
    EVALUATION_METRICS,
    EVALUATION_PREDICTIONS,
)
from .config import TrainingConfig
from .metrics import calibration_table, decile_table

logger = logging.getLogger(__name__)

TRACKING_URI_ENV: Final = "MLFLOW_TRACKING_URI"
DEFAULT_EXPERIMENT: Final = "clv"
# Artifacts of experiments created in a SQLite store go beside the database file, not into
# ./mlruns of whatever folder the command ran from (MLflow's default).
SQLITE_ARTIFACT_FOLDER: Final = "mlartifacts"

EVALUATION_DECILES: Final = "evaluation/deciles.json"
EVALUATION_BASELINE_DECILES: Final = "evaluation/baseline_deciles.json"
EVALUATION_CALIBRATION: Final = "evaluation/calibration.json"
EVALUATION_BASELINE_CALIBRATION: Final = "evaluation/baseline_calibration.json"
EVALUATION_WINDOW: Final = "evaluation/window.json"
CLEANING_REPORT: Final = "data/cleaning_report.json"
FEATURE_LIST: Final = "model/features.json"
PLOT_LIFT: Final = "plots/lift_by_decile.png"
PLOT_CALIBRATION: Final = "plots/churn_calibration.png"


class TrackingStoreError(RuntimeError):
    """The MLflow tracking store cannot be opened or reached (or refuses the experiment)."""

    def __init__(self, message: str, field: str = TRACKING_URI_ENV) -> None:
        super().__init__(message)
        self.field = field


@dataclass(frozen=True)
class GitState:
    """The source tree's commit ("unknown" outside a git checkout) and uncommitted changes."""

    commit: str
    dirty: bool | None


# --- the store ----------------------------------------------------------------------------
def tracking_uri() -> str:
    """The tracking URI MLflow will use: MLFLOW_TRACKING_URI, else sqlite:///mlflow.db."""
    return mlflow.get_tracking_uri()


@contextlib.contextmanager
def _quick_http(timeout_seconds: int) -> Iterator[None]:
    """No retries and a short timeout for HTTP stores, unless the user chose their own."""
    settings = {
        "MLFLOW_HTTP_REQUEST_MAX_RETRIES": "0",
        "MLFLOW_HTTP_REQUEST_TIMEOUT": str(timeout_seconds),
    }
    added = [k for k in settings if k not in os.environ]
    os.environ.update({k: settings[k] for k in added})
    try:
        yield
    finally:
        for key in added:
            os.environ.pop(key, None)


def _sqlite_path(uri: str) -> Path | None:
    rest = uri.split(":///", 1)[1] if ":///" in uri else ""
    if not rest or rest == ":memory:":
        return None
    return Path(rest.split("?", 1)[0])


def _check_sqlite(uri: str) -> None:
    path = _sqlite_path(uri)
    if path is None:
        return
    folder = path.parent if str(path.parent) else Path(".")
    if not folder.is_dir():
        raise TrackingStoreError(
            f"the MLflow tracking store {uri} cannot be opened: folder {folder} does not exist. "
            f"Create it, or set {TRACKING_URI_ENV} to another store"
        )
    target = path if path.exists() else folder
    if not os.access(target, os.W_OK):
        raise TrackingStoreError(
            f"the MLflow tracking store {uri} cannot be opened: {target} is not writable. "
            f"Set {TRACKING_URI_ENV} to a store you can write to"
        )


def check_tracking_store(uri: str | None = None, timeout_seconds: int = 5) -> str:
    """Open the tracking store and its model registry once; return the URI.

    Raises TrackingStoreError naming MLFLOW_TRACKING_URI when the store cannot be opened (a
    SQLite file in a missing or read-only folder) or reached (an HTTP server that does not
    answer within `timeout_seconds`, tried once). Called before any training starts.
    """
    uri = uri or tracking_uri()
    source = f"from {TRACKING_URI_ENV}" if os.environ.get(TRACKING_URI_ENV) else "MLflow's default"
    if uri.startswith("sqlite:"):
        _check_sqlite(uri)
    with _quick_http(timeout_seconds):
        try:
            client = mlflow.MlflowClient(tracking_uri=uri)
            client.search_experiments(max_results=1)
            client.search_registered_models(max_results=1)
        except Exception as exc:  # any failure to open or reach the store means the same
            raise TrackingStoreError(
                f"cannot open the MLflow tracking store {uri} ({source}): {_reason(uri, exc)}. "
                f"Set {TRACKING_URI_ENV} to a reachable store, e.g. sqlite:///mlflow.db"
            ) from exc
    return uri


def _reason(uri: str, exc: Exception) -> str:
    """A short reason: HTTP client errors are long chains of wrapped exceptions."""
    text = " ".join(str(exc).split()) or type(exc).__name__
    if uri.startswith(("http:", "https:")):
        lowered = text.lower()
        for needle, reason in (
            ("refused", "connection refused (is the MLflow server running?)"),
            ("timed out", "no answer within the timeout"),
            ("timeout", "no answer within the timeout"),
            ("name or service not known", "unknown host"),
            ("nodename nor servname", "unknown host"),
        ):
            if needle in lowered:
                return reason
    return text if len(text) <= 300 else text[:297] + "..."


def ensure_experiment(name: str, uri: str | None = None) -> str:
    """The id of experiment `name`, created if missing (artifacts beside a SQLite database)."""
    uri = uri or tracking_uri()
    client = mlflow.MlflowClient(tracking_uri=uri)
    experiment = client.get_experiment_by_name(name)
    if experiment is not None:
        if experiment.lifecycle_stage == "deleted":
            raise TrackingStoreError(
                f"MLflow experiment '{name}' is deleted in {uri}: restore it or use another",
                field="--experiment",
            )
        return str(experiment.experiment_id)
    location = None
    db = _sqlite_path(uri) if uri.startswith("sqlite:") else None
    if db is not None:
        location = (db.resolve().parent / SQLITE_ARTIFACT_FOLDER).as_uri()
    return str(client.create_experiment(name, artifact_location=location))


# --- provenance ---------------------------------------------------------------------------
def file_sha256(path: str | Path | LogSource, chunk_bytes: int = 1 << 20) -> str:
    """sha256 (hex) of a file, streamed; of a folder, over its Parquet files' paths relative to
    it and their bytes (the files a log is read from: `clv.features.sources.find_log`); of a
    glob pattern, over the matched files' paths relative to the folder they share, and their
    bytes. Give the `LogSource` a log was read from to hash the files found then, rather than
    listing the folder or matching the pattern again."""
    source = path if isinstance(path, LogSource) else None
    path = source.path if source is not None else Path(path)
    if source is None and (is_pattern(path) or path.is_dir()):
        source = find_log(path)
    digest = hashlib.sha256()
    base: Path | None = None
    if source is not None and source.matched:
        files = list(source.matched)
        folder = source.path.is_dir()
        base = path if folder else Path(os.path.commonpath([str(f.parent) for f in files]))
    else:
        files = [path]
    for file in files:
        if base is not None:
            digest.update(str(file.relative_to(base)).encode() + b"\0")
        with file.open("rb") as handle:
            while chunk := handle.read(chunk_bytes):
                digest.update(chunk)
    return digest.hexdigest()


def git_state(source: str | Path | None = None) -> GitState:
    """Commit and dirty flag of the git checkout holding `source` (default: this package)."""
    folder = Path(source) if source is not None else Path(__file__).resolve().parent

    def git(*args: str) -> str | None:
        try:
            done = subprocess.run(
                ["git", "-C", str(folder), *args],
                capture_output=True,
                text=True,
                timeout=10,
                check=False,
            )
        except (OSError, subprocess.SubprocessError):
            return None
        return done.stdout.strip() if done.returncode == 0 else None

    commit = git("rev-parse", "HEAD")
    if not commit:
        return GitState("unknown", None)
    status = git("status", "--porcelain", "--untracked-files=no")
    return GitState(commit, None if status is None else bool(status))


def flatten(mapping: Mapping[str, Any], prefix: str = "") -> dict[str, str]:
    """Nested settings as MLflow params: dotted keys, lists as JSON, everything a string."""
    out: dict[str, str] = {}
    for key, value in mapping.items():
        name = f"{prefix}{key}"
        if isinstance(value, Mapping):
            out.update(flatten(value, f"{name}."))
        elif isinstance(value, list | tuple):
            out[name] = json.dumps(value, default=str)
        else:
            out[name] = str(value)
    return out


def _jsonable(value: Any) -> Any:
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, list | tuple):
        return [_jsonable(v) for v in value]
    if isinstance(value, Mapping):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, np.generic):
        return value.item()
    return value


# --- what a run logs ----------------------------------------------------------------------
def log_provenance(
    config: TrainingConfig,
    window: Mapping[str, Any],
    data_hash: str,
    report: CleaningReport | None,
    git: GitState,
    source: str | None = None,
) -> None:
    """Params (config, seed, data window, input hash and cleaning counts) and provenance tags."""
    params = flatten(config.model_dump(mode="json"))
    data = {f"data.{k}": v for k, v in _jsonable(dict(window)).items()}
    params.update(flatten(data))
    params["data.sha256"] = data_hash
    if source is not None:
        params["data.source"] = source
    if report is not None:
        params["data.rows_read"] = str(report.rows_read)
        params["data.rows_kept"] = str(report.rows_kept)
        mlflow.log_dict(
            {"rows_read": report.rows_read, "rows_kept": report.rows_kept, **report.dropped},
            CLEANING_REPORT,
        )
    mlflow.log_params(params)
    mlflow.log_dict(_jsonable(dict(window)), EVALUATION_WINDOW)
    mlflow.set_tags(
        {
            "git.commit": git.commit,
            "git.dirty": "unknown" if git.dirty is None else str(git.dirty).lower(),
            "mlflow.source.git.commit": git.commit,
            "data.sha256": data_hash,
            "horizon_days": str(config.horizon_days),
        }
    )


def metric_items(metrics: Mapping[str, Mapping[str, float]]) -> dict[str, float]:
    """{"model": {"spearman": x}} -> {"model.spearman": x}."""
    return {f"{who}.{k}": float(v) for who, values in metrics.items() for k, v in values.items()}


def log_evaluation(
    metrics: Mapping[str, Mapping[str, float]],
    predictions: pd.DataFrame,
    tables: Mapping[str, pd.DataFrame],
) -> None:
    """The evaluation predictions (parquet), metrics (JSON), tables and plots, as artifacts."""
    mlflow.log_dict(_jsonable(dict(metrics)), EVALUATION_METRICS)
    with tempfile.TemporaryDirectory() as tmp:
        local = Path(tmp) / Path(EVALUATION_PREDICTIONS).name
        predictions.to_parquet(local, index=False)
        mlflow.log_artifact(str(local), str(Path(EVALUATION_PREDICTIONS).parent))
    for artifact_file, table in tables.items():
        if not table.empty:
            mlflow.log_table(table, artifact_file)
    for artifact_file, figure in plots(predictions).items():
        mlflow.log_figure(figure, artifact_file, save_kwargs={"bbox_inches": "tight"})


def log_features(model: CLVModel) -> None:
    """The model's input features, in order, and which ones the caller must supply."""
    mlflow.log_dict(
        {"feature_names": model.spec.feature_names, "input_features": model.input_features},
        FEATURE_LIST,
    )
    mlflow.log_param("n_features", len(model.spec.feature_names))


def log_model_and_metrics(
    model: CLVModel, input_example: pd.DataFrame, metrics: Mapping[str, Mapping[str, float]]
) -> mlflow.models.model.ModelInfo:
    """Log the composite model (signature, input example), then the metrics linked to it."""
    info = log_clv_model(model, input_example)
    mlflow.log_metrics(metric_items(metrics), model_id=info.model_id)
    return info


# --- plots --------------------------------------------------------------------------------
def plots(predictions: pd.DataFrame) -> dict[str, Figure]:
    """Lift by predicted-value decile and churn calibration, model against baseline."""
    actual = predictions[schema.FUTURE_SPEND].to_numpy(dtype=float)
    churned = predictions[schema.CHURNED].to_numpy(dtype=float)
    return {
        PLOT_LIFT: _lift_figure(
            decile_table(actual, predictions["predicted_value"]),
            decile_table(actual, predictions[BASELINE_VALUE]),
        ),
        PLOT_CALIBRATION: _calibration_figure(
            calibration_table(churned, predictions["churn_probability"]),
            calibration_table(churned, predictions[BASELINE_CHURN_PROBABILITY]),
        ),
    }


def _lift_figure(model: pd.DataFrame, baseline: pd.DataFrame) -> Figure:
    # A bare Figure draws with Agg and touches no global pyplot state (headless-safe).
    figure = Figure(figsize=(7, 4))
    ax = figure.add_subplot()
    width = 0.4
    ax.bar(model["decile"] - width / 2, model["lift"], width, label="model")
    ax.bar(baseline["decile"] + width / 2, baseline["lift"], width, label="BG/NBD + Gamma-Gamma")
    ax.axhline(1.0, color="grey", linewidth=0.8, linestyle="--")
    ax.set_xticks(model["decile"])
    ax.set_xlabel("decile of predicted value (1 = highest)")
    ax.set_ylabel("actual mean spend / overall mean")
    ax.set_title("Lift by decile")
    ax.legend()
    return figure


def _calibration_figure(model: pd.DataFrame, baseline: pd.DataFrame) -> Figure:
    figure = Figure(figsize=(5, 5))
    ax = figure.add_subplot()
    ax.plot([0, 1], [0, 1], color="grey", linewidth=0.8, linestyle="--", label="perfect")
    ax.plot(model["mean_predicted"], model["observed_rate"], marker="o", label="model")
    ax.plot(
        baseline["mean_predicted"],
        baseline["observed_rate"],
        marker="s",
        label="BG/NBD P(no purchase)",
    )
    ax.set_xlim(0, 1)
    ax.set_ylim(0, 1)
    ax.set_xlabel("mean predicted churn probability")
    ax.set_ylabel("observed churn rate")
    ax.set_title("Churn calibration (equal-count bins)")
    ax.legend()
    return figure
