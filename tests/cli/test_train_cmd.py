"""`clv train` end to end: a real MLflow store (SQLite), real LightGBM on the CDNOW sample."""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import shutil
import socket
from collections.abc import Iterator
from pathlib import Path

import mlflow
import pandas as pd
import pytest
from clv.cli import train_cmd
from clv.cli.main import app
from clv.features.config import ColumnMapping
from clv.features.datasets import cdnow_master_path, cdnow_sample_ids
from clv.models.registry import REGISTERED_MODEL_NAME
from clv.training import gate, promotion, tracking
from clv.training.artifacts import EVALUATION_METRICS, EVALUATION_PREDICTIONS
from typer.testing import CliRunner

runner = CliRunner()

# Few, fast boosting rounds: the tests check the plumbing, not the model's accuracy.
FAST_CONFIG = """
[columns]
timestamp = "date"

[training]
horizon_days = 273
training_cutoffs = 2

[training.params.churn]
max_rounds = 30
learning_rate = 0.15
early_stopping_rounds = 10

[training.params.spend]
max_rounds = 30
learning_rate = 0.15
early_stopping_rounds = 10
"""
# The model beats the baseline on these with few rounds; the full rule set is unit-tested.
EASY_RULES = (gate.Rule("normalized_gini", "higher"), gate.Rule("roc_auc", "higher"))


@contextlib.contextmanager
def using_store(uri: str) -> Iterator[None]:
    """MLFLOW_TRACKING_URI = uri for the block; the process's previous setting comes back."""
    previous = os.environ.get("MLFLOW_TRACKING_URI")
    mlflow.set_tracking_uri(uri)
    try:
        yield
    finally:
        # set_tracking_uri(previous) would pin the URI for the whole process and hide
        # later MLFLOW_TRACKING_URI changes: clear it, then put the variable back.
        mlflow.set_tracking_uri(None)
        if previous:
            os.environ["MLFLOW_TRACKING_URI"] = previous


def _train(*args: str):
    return runner.invoke(app, ["train", *args])


@pytest.fixture(scope="module")
def sample_csv(tmp_path_factory) -> Path:
    """The 2,357 CDNOW sample customers' transactions (customer_id, date, quantity, amount)."""
    raw = pd.read_csv(cdnow_master_path(), dtype={"customer_id": str})
    path = tmp_path_factory.mktemp("data") / "sample.csv"
    raw[raw["customer_id"].isin(set(cdnow_sample_ids()))].to_csv(path, index=False)
    return path


@pytest.fixture(scope="module")
def fast_toml(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("config") / "fast.toml"
    path.write_text(FAST_CONFIG)
    return path


@pytest.fixture(scope="module")
def template_db(tmp_path_factory) -> Path:
    """An initialised, empty SQLite store to copy (migrating one costs seconds)."""
    path = tmp_path_factory.mktemp("template") / "mlflow.db"
    tracking.check_tracking_store(f"sqlite:///{path}")
    return path


@pytest.fixture(scope="module")
def two_runs(tmp_path_factory, template_db: Path, sample_csv: Path, fast_toml: Path):
    """Two identical `clv train --promote` runs into one fresh store."""
    root = tmp_path_factory.mktemp("store")
    shutil.copy(template_db, root / "mlflow.db")
    uri = f"sqlite:///{root / 'mlflow.db'}"
    args = ["--transactions", str(sample_csv), "--config", str(fast_toml), "--promote"]
    with using_store(uri), pytest.MonkeyPatch.context() as patch:
        patch.setattr(gate, "GATE_RULES", EASY_RULES)
        first = _train(*args, "--seed", "7", "--metrics-out", str(root / "out" / "m.json"))
        second = _train(*args, "--seed", "7")
    return {"uri": uri, "root": root, "first": first, "second": second}


def _run_of_version(version: str):
    mv = mlflow.MlflowClient().get_model_version(REGISTERED_MODEL_NAME, version)
    return mlflow.get_run(mv.run_id)


def test_first_run_is_logged_registered_and_promoted(two_runs, sample_csv: Path) -> None:
    result = two_runs["first"]
    assert result.exit_code == 0, result.output
    assert "registered models:/clv/1" in result.output
    assert "promotion: promoted version 1 to 'champion'" in result.output
    with using_store(two_runs["uri"]):
        client = mlflow.MlflowClient()
        assert str(client.get_model_version_by_alias("clv", "champion").version) == "1"
        run = _run_of_version("1")
        params, tags, metrics = run.data.params, run.data.tags, run.data.metrics
        assert run.info.status == "FINISHED"
        assert params["seed"] == "7" and params["training_cutoffs"] == "2"
        assert params["params.churn.max_rounds"] == "30"
        assert params["feature_config.timezone"] == "UTC"  # days cut in UTC, by default
        assert params["data.evaluation_cutoff"] == "1997-09-30"
        assert params["data.sha256"] == hashlib.sha256(sample_csv.read_bytes()).hexdigest()
        assert tags["promotion.decision"] == "promoted"
        assert tags["registered_model.version"] == "1"
        assert tags["git.commit"]
        assert {"model.spearman", "baseline.spearman", "model.brier"} <= set(metrics)
        artifacts = {a.path for a in client.list_artifacts(run.info.run_id, "evaluation")}
        assert {EVALUATION_PREDICTIONS, EVALUATION_METRICS} <= artifacts
        plots = {a.path for a in client.list_artifacts(run.info.run_id, "plots")}
        assert {tracking.PLOT_LIFT, tracking.PLOT_CALIBRATION} <= plots
        assert client.get_model_version("clv", "1").tags["run_id"] == run.info.run_id
        # The champion is the model serving loads, with the run's provenance in its spec.
        from clv.models.registry import load_clv_model

        spec = load_clv_model("champion").model.spec
        assert spec.data_hash == params["data.sha256"]
        assert spec.validation_metrics["model"]["spearman"] == pytest.approx(
            metrics["model.spearman"]
        )
        # How the log's columns were read (the config file's [columns]), for score and report;
        # only what was set: other columns keep their read-if-present defaults.
        assert spec.columns == ColumnMapping(timestamp="date")
        assert spec.columns.model_fields_set == {"timestamp"}


def test_metrics_json_has_model_and_baseline(two_runs) -> None:
    assert two_runs["first"].exit_code == 0, two_runs["first"].output
    written = json.loads((two_runs["root"] / "out" / "m.json").read_text())
    assert set(written) == {"model", "baseline"}
    for part in written.values():
        assert {"spearman", "normalized_gini", "decile_mape", "roc_auc", "brier"} <= set(part)
        assert all(v is None or isinstance(v, float) for v in part.values())
    with using_store(two_runs["uri"]):
        logged = _run_of_version("1").data.metrics
    assert written["model"]["roc_auc"] == pytest.approx(logged["model.roc_auc"])
    assert [p.name for p in (two_runs["root"] / "out").iterdir()] == ["m.json"]  # no temp files


def test_an_identical_second_run_is_registered_but_not_promoted(two_runs) -> None:
    result = two_runs["second"]
    assert result.exit_code == 0, result.output
    assert "NOT PROMOTED (version 2 is registered; 'champion' stays on version 1)" in result.output
    assert "fails vs champion v1: normalized_gini" in result.output
    assert "may have seen" not in result.output  # same data, same split: a fair comparison
    with using_store(two_runs["uri"]):
        assert promotion.current_champion_version("clv") == "1"
        first, second = _run_of_version("1").data, _run_of_version("2").data
    assert second.tags["promotion.decision"] == "not promoted"
    assert second.tags["promotion.basis"] == gate.BASIS_SAME_CUSTOMERS
    # Same seed, same data: the same model, and the champion re-scored on the same customers
    # gets exactly the candidate's numbers.
    for key in ("spearman", "normalized_gini", "roc_auc", "brier"):
        assert second.metrics[f"model.{key}"] == pytest.approx(first.metrics[f"model.{key}"])
        assert second.metrics[f"champion.{key}"] == pytest.approx(second.metrics[f"model.{key}"])


# --- bad input: exit 2, the option named, nothing registered -----------------------------
def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _no_positive_labels(path: Path) -> Path:
    """100 customers who buy in January only; one newcomer buys on the last day."""
    rows = [(f"c{i:03d}", f"2024-01-{1 + i % 28:02d}", 10.0 + i) for i in range(100)]
    rows.append(("late", "2024-12-31", 5.0))
    pd.DataFrame(rows, columns=["customer_id", "date", "amount"]).to_csv(path, index=False)
    return path


@pytest.fixture(scope="module")
def empty_store(tmp_path_factory, template_db: Path) -> str:
    """One store for all bad-input tests, which must leave it empty."""
    path = tmp_path_factory.mktemp("empty") / "mlflow.db"
    shutil.copy(template_db, path)
    return f"sqlite:///{path}"


@pytest.mark.parametrize(
    ("args", "option", "message"),
    [
        (["--horizon-days", "900"], "--horizon-days", "does not fit in the data"),
        (["--cutoff", "1997-02-30"], "--cutoff", "not a date"),
        (["--cutoff", "1999-01-01"], "--cutoff", "outside the data"),
        (["--evaluation", "sideways"], "--evaluation", "must be one of"),
        (["--timezone", "Mars/Base"], "--timezone", "not an IANA time zone name"),
        (["--horizon-days", "0"], "--horizon-days", "greater than 0"),
        (["TINY"], "--transactions", "training needs at least 50"),
        (["NO_LABELS"], "--horizon-days", "one class only"),
        (["BAD_CONFIG"], "--config", "max_rounds"),
        (["UNKNOWN_SECTION"], "--config", "unknown section(s) ['mlflow']"),
        (["CLOSED_PORT"], "MLFLOW_TRACKING_URI", "connection refused"),
        (["MISSING_FOLDER"], "MLFLOW_TRACKING_URI", "does not exist"),
    ],
)
def test_bad_input_exits_2_naming_the_option(
    tmp_path: Path,
    empty_store: str,
    sample_csv: Path,
    fast_toml: Path,
    tiny_log: pd.DataFrame,
    args: list[str],
    option: str,
    message: str,
) -> None:
    uri = empty_store
    transactions, config = sample_csv, fast_toml
    extra = list(args)
    if extra == ["TINY"]:
        transactions = tmp_path / "tiny.csv"
        tiny_log.rename(columns={"timestamp": "date"}).to_csv(transactions, index=False)
        extra = ["--horizon-days", "30"]
    elif extra == ["NO_LABELS"]:
        transactions, extra = _no_positive_labels(tmp_path / "quiet.csv"), ["--horizon-days", "30"]
    elif extra == ["BAD_CONFIG"]:
        config = tmp_path / "bad.toml"
        config.write_text(FAST_CONFIG.replace("max_rounds = 30", "max_rounds = 0", 1))
        extra = []
    elif extra == ["UNKNOWN_SECTION"]:
        config = tmp_path / "unknown.toml"
        config.write_text(FAST_CONFIG + "\n[mlflow]\nexperiment = 'x'\n")
        extra = []
    elif extra == ["CLOSED_PORT"]:
        uri, extra = f"http://127.0.0.1:{_closed_port()}", []
    elif extra == ["MISSING_FOLDER"]:
        uri, extra = f"sqlite:///{tmp_path / 'nowhere' / 'mlflow.db'}", []
    with using_store(uri):
        result = _train("--transactions", str(transactions), "--config", str(config), *extra)
    assert result.exit_code == 2, result.output
    assert "error: " in result.output
    assert option in result.output and message in result.output, result.output
    assert "Traceback" not in result.output
    assert not (tmp_path / "nowhere").exists()
    with using_store(empty_store):
        assert mlflow.MlflowClient().search_registered_models() == []
        assert mlflow.search_runs(search_all_experiments=True).empty


def test_cli_defaults_match_the_library() -> None:
    assert train_cmd.DEFAULT_EXPERIMENT == tracking.DEFAULT_EXPERIMENT
    assert train_cmd.DEFAULT_MODEL_NAME == REGISTERED_MODEL_NAME
