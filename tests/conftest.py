"""Shared fixtures: small hand-written transaction logs."""

from __future__ import annotations

import os
from pathlib import Path

import pandas as pd
import pytest

# Keep LightGBM/OpenMP to one thread in tests: the CI machine has 2 cores and tests run servers.
os.environ.setdefault("OMP_NUM_THREADS", "1")


@pytest.fixture(scope="session", autouse=True)
def isolated_tracking_store(tmp_path_factory) -> str:
    """Tests never touch the user's MLflow store: MLFLOW_TRACKING_URI points at a temporary
    SQLite store for the whole session (tests that need their own store set it themselves)."""
    previous = os.environ.get("MLFLOW_TRACKING_URI")
    uri = f"sqlite:///{tmp_path_factory.mktemp('default-mlflow') / 'mlflow.db'}"
    os.environ["MLFLOW_TRACKING_URI"] = uri
    yield uri
    if previous is None:
        os.environ.pop("MLFLOW_TRACKING_URI", None)
    else:
        os.environ["MLFLOW_TRACKING_URI"] = previous


@pytest.fixture
def tiny_log() -> pd.DataFrame:
    """Three customers; expected features at cutoff 2024-03-31 are computed by hand in tests.

    a: buys on Jan 1 (10 + 5, same day), Jan 11 (20), Mar 1 (30): frequency 2
    b: buys once on Mar 31 (the cutoff day itself) 50, returns 15 on Apr 2 (after the cutoff)
    c: buys Feb 1 (40), returns 10 on Feb 5 (a return-only day), buys again Apr 10 (after)
    """
    rows = [
        ("a", "2024-01-01 09:00", 10.0),
        ("a", "2024-01-01 17:30", 5.0),
        ("a", "2024-01-11", 20.0),
        ("a", "2024-03-01", 30.0),
        ("b", "2024-03-31 23:59:59", 50.0),
        ("b", "2024-04-02", -15.0),
        ("c", "2024-02-01", 40.0),
        ("c", "2024-02-05", -10.0),
        ("c", "2024-04-10", 25.0),
        ("a", "2024-06-01", 99.0),
    ]
    return pd.DataFrame(rows, columns=["customer_id", "timestamp", "amount"])


# --- a small trained model, shared by model, serving and report tests ------------------------
SMALL_CUTOFFS = ("1997-08-05", "1997-09-02", "1997-09-30")
SMALL_HORIZON_DAYS = 273


@pytest.fixture(scope="session")
def small_panel() -> pd.DataFrame:
    """Features and labels of the 2,357 CDNOW sample customers at three cutoffs, 273-day horizon."""
    from datetime import date

    from clv.features.build import build_panel
    from clv.features.datasets import CDNOW_COLUMNS, cdnow_master_path, cdnow_sample_ids
    from clv.features.transactions import load_transactions

    log = load_transactions(cdnow_master_path(), columns=CDNOW_COLUMNS)
    panel = build_panel(log, [date.fromisoformat(c) for c in SMALL_CUTOFFS], SMALL_HORIZON_DAYS)
    ids = set(cdnow_sample_ids())
    return panel[panel["customer_id"].isin(ids)].reset_index(drop=True)


@pytest.fixture(scope="session")
def small_model(small_panel: pd.DataFrame):  # -> clv.models.composite.CLVModel
    """A composite model fitted on `small_panel` with few boosting rounds (seconds)."""
    from clv.training.config import BoosterParams, ModelParams, TrainingConfig
    from clv.training.fit import fit_clv_model

    quick = BoosterParams(max_rounds=150, learning_rate=0.08, early_stopping_rounds=30)
    config = TrainingConfig(
        horizon_days=SMALL_HORIZON_DAYS, params=ModelParams(churn=quick, spend=quick)
    )
    return fit_clv_model(small_panel, config)


@pytest.fixture(scope="session")
def small_features(small_panel: pd.DataFrame) -> pd.DataFrame:
    """The rows of `small_panel` at its latest cutoff, without labels (one per customer)."""
    from clv.features import schema

    latest = small_panel[small_panel["cutoff"] == small_panel["cutoff"].max()]
    return latest.drop(columns=list(schema.LABEL_COLUMNS)).reset_index(drop=True)


def make_champion_store(root: Path, model, panel: pd.DataFrame) -> str:
    """A temporary MLflow store (SQLite + file artifacts) under `root` whose `clv@champion` is
    `model`. Returns the tracking URI (the process's own setting is restored afterwards)."""
    import mlflow
    from clv.models.registry import log_clv_model, register_clv_model, set_alias

    uri = f"sqlite:///{root / 'mlflow.db'}"
    previous = os.environ.get("MLFLOW_TRACKING_URI")
    mlflow.set_tracking_uri(uri)
    try:
        experiment = mlflow.create_experiment("tests", artifact_location=(root / "art").as_uri())
        with mlflow.start_run(experiment_id=experiment):
            info = log_clv_model(model, panel.head(5))
        set_alias(register_clv_model(info.model_uri))
    finally:
        # set_tracking_uri(previous) would pin the URI for the whole process and hide
        # later MLFLOW_TRACKING_URI changes: clear it, then put the variable back.
        mlflow.set_tracking_uri(None)
        if previous:
            os.environ["MLFLOW_TRACKING_URI"] = previous
    return uri


@pytest.fixture(scope="session")
def champion_store(tmp_path_factory, small_model, small_panel) -> str:
    """A temporary MLflow store whose model `clv@champion` is `small_model`. Returns the
    tracking URI; tests pass it to servers and CLIs via MLFLOW_TRACKING_URI."""
    return make_champion_store(tmp_path_factory.mktemp("mlflow"), small_model, small_panel)
