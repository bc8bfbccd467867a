"""MLflow tracking: store checks, provenance, and what a run logs (real SQLite store)."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import socket
import time
from pathlib import Path

import mlflow
import pandas as pd
import pytest
from clv.features import schema
from clv.features.sources import find_log
from clv.training import tracking
from clv.training.artifacts import (
    EVALUATION_METRICS,
    EVALUATION_PREDICTIONS,
)
from clv.training.config import TrainingConfig
from clv.training.evaluate import evaluation_table, model_and_baseline_metrics
from clv.training.tracking import TrackingStoreError


@pytest.fixture(scope="module")
def template_db(tmp_path_factory) -> Path:
    """An initialised, empty SQLite store, copied per test (migrating one costs seconds)."""
    path = tmp_path_factory.mktemp("template") / "mlflow.db"
    mlflow.MlflowClient(tracking_uri=f"sqlite:///{path}").search_experiments()
    return path


@pytest.fixture
def sqlite_uri(tmp_path: Path, template_db: Path):
    """A fresh SQLite store as the process's tracking URI; the previous setting comes back."""
    previous = os.environ.get("MLFLOW_TRACKING_URI")
    (tmp_path / "store").mkdir()
    shutil.copy(template_db, tmp_path / "store" / "mlflow.db")
    uri = f"sqlite:///{tmp_path / 'store' / 'mlflow.db'}"
    mlflow.set_tracking_uri(uri)
    try:
        yield uri
    finally:
        # set_tracking_uri(previous) would pin the URI for the whole process and hide
        # later MLFLOW_TRACKING_URI changes: clear it, then put the variable back.
        mlflow.set_tracking_uri(None)
        if previous:
            os.environ["MLFLOW_TRACKING_URI"] = previous


def test_file_hash_is_streamed_sha256(tmp_path: Path) -> None:
    data = os.urandom(300_000)
    path = tmp_path / "tx.csv"
    path.write_bytes(data)
    expected = hashlib.sha256(data).hexdigest()
    assert tracking.file_sha256(path) == expected
    assert tracking.file_sha256(path, chunk_bytes=1000) == expected


def test_folder_hash_covers_the_parquet_files_it_is_read_from(tmp_path: Path) -> None:
    """A folder hashes as its log is read (`find_log`): its Parquet files, with their names
    relative to it, not the markers and checksums beside them; a found folder (`LogSource`)
    hashes the files found then."""
    for root in ("here", "there"):
        (tmp_path / root / "day=1").mkdir(parents=True)
        (tmp_path / root / "day=1" / "a.parquet").write_bytes(b"a")
        (tmp_path / root / "b.parquet").write_bytes(b"b")
    (tmp_path / "here" / "_SUCCESS").write_bytes(b"")
    (tmp_path / "here" / "day=1" / ".a.parquet.crc").write_bytes(b"crc")
    before = tracking.file_sha256(tmp_path / "here")
    assert before == tracking.file_sha256(tmp_path / "there")
    found = find_log(tmp_path / "here")
    (tmp_path / "here" / "day=2").mkdir()
    (tmp_path / "here" / "day=2" / "c.parquet").write_bytes(b"c")
    assert tracking.file_sha256(found) == before
    assert tracking.file_sha256(tmp_path / "here") != before
    (tmp_path / "there" / "b.parquet").write_bytes(b"c")
    assert tracking.file_sha256(tmp_path / "there") != before
    (tmp_path / "there" / "b.parquet").write_bytes(b"b")
    (tmp_path / "there" / "b.parquet").rename(tmp_path / "there" / "day=1" / "b.parquet")
    assert tracking.file_sha256(tmp_path / "there") != before  # the same bytes, elsewhere


def test_pattern_hash_covers_its_files_wherever_they_are(tmp_path: Path) -> None:
    """A glob pattern's hash reads the matched files (names relative to their common folder),
    not other files beside them: the same log moved elsewhere hashes the same."""
    for root in ("here", "there"):
        (tmp_path / root / "2024").mkdir(parents=True)
        (tmp_path / root / "2024" / "01.csv").write_bytes(b"a")
        (tmp_path / root / "2024" / "02.csv").write_bytes(b"b")
    (tmp_path / "here" / "2024" / "notes.txt").write_bytes(b"unmatched")
    here = tracking.file_sha256(tmp_path / "here" / "2024" / "*.csv")
    assert here == tracking.file_sha256(tmp_path / "there" / "*" / "*.csv")
    (tmp_path / "there" / "2024" / "02.csv").write_bytes(b"c")
    assert tracking.file_sha256(tmp_path / "there" / "*" / "*.csv") != here


def test_a_found_pattern_hashes_the_files_it_matched(tmp_path: Path) -> None:
    """Training reads and hashes the files a pattern matched once (a `LogSource`): a file
    that starts to match in between is in neither."""
    (tmp_path / "01.csv").write_bytes(b"a")
    pattern = tmp_path / "*.csv"
    found = find_log(pattern)
    before = tracking.file_sha256(pattern)
    (tmp_path / "02.csv").write_bytes(b"b")
    assert tracking.file_sha256(found) == before
    assert tracking.file_sha256(pattern) != before  # matched again: two files


def test_git_state_inside_and_outside_a_checkout(tmp_path: Path) -> None:
    outside = tracking.git_state(tmp_path)
    assert outside == tracking.GitState("unknown", None)
    here = tracking.git_state()
    if here.commit != "unknown":  # an installed (non-editable) package has no checkout
        assert len(here.commit) == 40 and int(here.commit, 16) >= 0
        assert here.dirty in (True, False)


def test_flatten_nested_settings() -> None:
    flat = tracking.flatten(TrainingConfig(horizon_days=90).model_dump(mode="json"))
    assert flat["horizon_days"] == "90"
    assert flat["params.churn.learning_rate"] == "0.03"
    assert json.loads(flat["feature_config.windows_days"]) == [30, 90, 180, 365]
    assert flat["cutoff"] == "None"


def test_store_in_a_missing_folder_is_refused(tmp_path: Path) -> None:
    uri = f"sqlite:///{tmp_path / 'nope' / 'mlflow.db'}"
    with pytest.raises(TrackingStoreError, match=r"nope does not exist.*MLFLOW_TRACKING_URI"):
        tracking.check_tracking_store(uri)
    assert not (tmp_path / "nope").exists()


def test_unreachable_server_fails_fast() -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # closed once the block ends: nothing listens there
    before = dict(os.environ)
    start = time.monotonic()
    with pytest.raises(TrackingStoreError, match="connection refused.*MLFLOW_TRACKING_URI"):
        tracking.check_tracking_store(f"http://127.0.0.1:{port}")
    assert time.monotonic() - start < 15
    assert dict(os.environ) == before  # the quick-retry settings were temporary


def test_experiment_artifacts_live_beside_the_database(sqlite_uri: str, tmp_path: Path) -> None:
    assert tracking.check_tracking_store() == sqlite_uri
    first = tracking.ensure_experiment("demo")
    assert tracking.ensure_experiment("demo") == first
    location = mlflow.get_experiment(first).artifact_location
    assert location == (tmp_path / "store" / tracking.SQLITE_ARTIFACT_FOLDER).as_uri()
    mlflow.delete_experiment(first)
    with pytest.raises(TrackingStoreError, match="'demo' is deleted") as caught:
        tracking.ensure_experiment("demo")
    assert caught.value.field == "--experiment"


def _predictions(model, panel: pd.DataFrame) -> pd.DataFrame:
    """EVALUATION_COLUMNS for the panel's latest cutoff, with the model's own baseline."""
    rows = panel[panel[schema.CUTOFF] == panel[schema.CUTOFF].max()].reset_index(drop=True)
    return evaluation_table(rows, model.predict(rows), model.baseline, model.spec.horizon_days)


def test_a_run_logs_params_metrics_tags_artifacts_and_the_model(
    sqlite_uri: str, small_model, small_panel
) -> None:
    from clv.features.transactions import CleaningReport

    predictions = _predictions(small_model, small_panel)
    metrics = model_and_baseline_metrics(predictions)
    config = TrainingConfig(horizon_days=273, seed=7)
    window = {"first_date": pd.Timestamp("1997-01-01").date(), "training_cutoffs": []}
    report = CleaningReport(rows_read=10, rows_kept=9, dropped={"missing amount": 1})
    experiment = tracking.ensure_experiment("t")
    with mlflow.start_run(experiment_id=experiment) as run:
        tracking.log_provenance(config, window, "abc123", report, tracking.GitState("f00", True))
        tracking.log_features(small_model)
        tracking.log_evaluation(metrics, predictions, {"evaluation/deciles.json": pd.DataFrame()})
        info = tracking.log_model_and_metrics(small_model, small_panel.head(5), metrics)

    logged = mlflow.get_run(run.info.run_id)
    params, tags = logged.data.params, logged.data.tags
    assert params["seed"] == "7" and params["horizon_days"] == "273"
    assert params["params.spend.min_data_in_leaf"] == str(config.params.spend.min_data_in_leaf)
    assert params["data.first_date"] == "1997-01-01"
    assert params["data.sha256"] == "abc123" and params["data.rows_kept"] == "9"
    assert params["n_features"] == str(len(small_model.spec.feature_names))
    assert tags["git.commit"] == "f00" and tags["git.dirty"] == "true"
    assert tags["data.sha256"] == "abc123"
    assert logged.data.metrics["model.spearman"] == pytest.approx(metrics["model"]["spearman"])
    assert logged.data.metrics["baseline.brier"] == pytest.approx(metrics["baseline"]["brier"])

    files = {
        a.path
        for folder in ("evaluation", "plots", "data", "model")
        for a in mlflow.MlflowClient().list_artifacts(run.info.run_id, folder)
    }
    assert {EVALUATION_PREDICTIONS, EVALUATION_METRICS, tracking.PLOT_LIFT} <= files
    assert {tracking.PLOT_CALIBRATION, tracking.CLEANING_REPORT, tracking.FEATURE_LIST} <= files
    assert "evaluation/deciles.json" not in files  # empty tables are skipped
    local = mlflow.artifacts.download_artifacts(
        run_id=run.info.run_id, artifact_path=EVALUATION_PREDICTIONS
    )
    pd.testing.assert_frame_equal(pd.read_parquet(local), predictions, check_dtype=False)
    stored = mlflow.artifacts.load_dict(f"{logged.info.artifact_uri}/{EVALUATION_METRICS}")
    assert set(stored) == {"model", "baseline"}
    assert stored["model"] == pytest.approx(metrics["model"])
    # The metrics are linked to the logged model too (MLflow 3 LoggedModel).
    model_metrics = {m.key: m.value for m in mlflow.get_logged_model(info.model_id).metrics}
    assert model_metrics["model.roc_auc"] == pytest.approx(metrics["model"]["roc_auc"])


def test_a_failure_while_logging_leaves_a_failed_run_and_nothing_registered(
    sqlite_uri: str, small_model, small_panel, monkeypatch: pytest.MonkeyPatch
) -> None:
    from clv.features.datasets import CDNOW_COLUMNS, cdnow_master_path
    from clv.features.transactions import load_transactions
    from clv.training import pipeline
    from clv.training.evaluate import EvaluationResult

    predictions = _predictions(small_model, small_panel)
    metrics = {"model": {"spearman": 0.5}, "baseline": {"spearman": 0.4}}
    result = EvaluationResult(
        metrics=metrics,
        model=small_model,
        predictions=predictions,
        decile_table=pd.DataFrame(),
        calibration_table=pd.DataFrame(),
        window={"evaluation_cutoff": pd.Timestamp("1997-09-30").date(), "horizon_days": 273},
    )
    monkeypatch.setattr(pipeline, "evaluate", lambda log, config: result)

    def disk_full(*args: object, **kwargs: object) -> None:
        raise OSError("disk full")

    monkeypatch.setattr(tracking, "log_model_and_metrics", disk_full)
    log = load_transactions(cdnow_master_path(), columns=CDNOW_COLUMNS)
    with pytest.raises(OSError, match="disk full"):
        pipeline.run_training(log, TrainingConfig(horizon_days=273), promote=True, data_hash="h")
    runs = mlflow.search_runs(search_all_experiments=True)
    assert list(runs["status"]) == ["FAILED"]
    assert mlflow.MlflowClient().search_registered_models() == []
