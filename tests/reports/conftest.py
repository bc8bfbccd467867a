"""A temporary MLflow store for report tests, and the CDNOW sample as a small transaction file.

`report_store` registers `small_model` twice:
- `clv@champion`: its run carries an evaluation predictions table (actual labels of
  `small_panel`'s latest cutoff next to the model's and the baseline's predictions) and metrics;
- `clv@bare`: its run carries the model only, as a run from before evaluation was logged.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import mlflow
import pandas as pd
import pytest
from clv.features import schema
from clv.features.datasets import cdnow_master_path, cdnow_sample_ids
from clv.models.registry import log_clv_model, register_clv_model, set_alias
from clv.training.artifacts import (
    EVALUATION_METRICS,
    EVALUATION_PREDICTIONS,
)
from clv.training.evaluate import evaluation_table, model_and_baseline_metrics


def evaluation_predictions(model, panel: pd.DataFrame) -> pd.DataFrame:
    """EVALUATION_COLUMNS for the panel's latest cutoff, with the model's own baseline."""
    rows = panel[panel[schema.CUTOFF] == panel[schema.CUTOFF].max()].reset_index(drop=True)
    return evaluation_table(rows, model.predict(rows), model.baseline, model.spec.horizon_days)


@pytest.fixture(scope="session")
def report_store(tmp_path_factory, small_model, small_panel) -> str:
    """Tracking URI of a temporary store with `clv@champion` (evaluated) and `clv@bare`."""
    root = tmp_path_factory.mktemp("report-mlflow")
    uri = f"sqlite:///{root / 'mlflow.db'}"
    previous = os.environ.get("MLFLOW_TRACKING_URI")
    mlflow.set_tracking_uri(uri)
    try:
        experiment = mlflow.create_experiment("reports", artifact_location=(root / "a").as_uri())
        with mlflow.start_run(experiment_id=experiment):
            info = log_clv_model(small_model, small_panel.head(5))
            table = evaluation_predictions(small_model, small_panel)
            metrics = model_and_baseline_metrics(table)
            files = root / "evaluation"
            files.mkdir()
            table.to_parquet(files / Path(EVALUATION_PREDICTIONS).name)
            (files / Path(EVALUATION_METRICS).name).write_text(json.dumps(metrics))
            mlflow.log_artifacts(str(files), artifact_path=str(Path(EVALUATION_PREDICTIONS).parent))
        set_alias(register_clv_model(info.model_uri), "champion")
        with mlflow.start_run(experiment_id=experiment):
            bare = log_clv_model(small_model, small_panel.head(5))
        set_alias(register_clv_model(bare.model_uri), "bare")
    finally:
        # set_tracking_uri(previous) would pin the URI for the whole process and hide
        # later MLFLOW_TRACKING_URI changes: clear it, then put the variable back.
        mlflow.set_tracking_uri(None)
        if previous:
            os.environ["MLFLOW_TRACKING_URI"] = previous
    return uri


@pytest.fixture
def tracking(report_store, monkeypatch) -> str:
    """Point MLflow (library and CLI) at `report_store` for one test."""
    monkeypatch.setenv("MLFLOW_TRACKING_URI", report_store)
    monkeypatch.setenv("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")
    mlflow.set_tracking_uri(report_store)
    yield report_store
    mlflow.set_tracking_uri(None)


@pytest.fixture(scope="session")
def sample_csv(tmp_path_factory) -> Path:
    """The CDNOW master log of the 2,357 sample customers (columns customer_id, date, ...)."""
    frame = pd.read_csv(cdnow_master_path(), dtype={"customer_id": str})
    frame = frame[frame["customer_id"].isin(set(cdnow_sample_ids()))]
    path = tmp_path_factory.mktemp("report-data") / "cdnow_sample.csv"
    frame.to_csv(path, index=False)
    return path
