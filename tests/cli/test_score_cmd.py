"""`clv score` (and `clv serve --check`): batch scoring with the champion; exit 2 on bad input."""

from __future__ import annotations

from pathlib import Path

import mlflow
import numpy as np
import pandas as pd
import pytest
from clv.cli.main import app
from clv.features import schema
from clv.features.config import ColumnMapping, FeatureConfig
from clv.features.datasets import cdnow_master_path, cdnow_sample_ids
from typer.testing import CliRunner

from ..conftest import make_champion_store

runner = CliRunner()


@pytest.fixture
def store(champion_store: str, monkeypatch: pytest.MonkeyPatch) -> str:
    monkeypatch.setenv("MLFLOW_TRACKING_URI", champion_store)
    return champion_store


@pytest.fixture(scope="module")
def sample_log(tmp_path_factory) -> Path:
    """The CDNOW sample customers' transactions, in the bundled file's own columns."""
    frame = pd.read_csv(cdnow_master_path(), dtype={"customer_id": str})
    frame = frame[frame["customer_id"].isin(set(cdnow_sample_ids()))]
    path = tmp_path_factory.mktemp("log") / "sample.csv"
    frame.to_csv(path, index=False)
    return path


def _score(*args: str):
    return runner.invoke(app, ["score", *args])


def test_scores_every_customer_from_transactions(store, sample_log, tmp_path, small_model,
                                                 small_features):  # fmt: skip
    out = tmp_path / "scores.parquet"
    result = _score("--transactions", str(sample_log), "--timestamp-col", "date",
                    "--as-of", "1997-09-30", "--output", str(out), "--drivers", "2")  # fmt: skip
    assert result.exit_code == 0, result.output
    assert "scored 2,357 customers" in result.output
    assert "Downloading artifacts" not in result.output  # no progress bars from MLflow
    scores = pd.read_parquet(out).set_index(schema.CUSTOMER_ID)
    expected = small_model.predict(small_features).set_index(schema.CUSTOMER_ID)
    assert len(scores) == len(expected)
    scores = scores.loc[expected.index]
    np.testing.assert_allclose(scores["predicted_value"], expected["predicted_value"], rtol=1e-9)
    assert (scores["value_tier"] == expected["value_tier"]).all()
    assert (scores["model_version"] == "1").all()
    assert {"driver_1_feature", "driver_2_contribution", "family_recency"} <= set(scores.columns)
    assert "driver_3_feature" not in scores.columns
    total = scores["base_value"] + scores.filter(like="family_").sum(axis=1)
    np.testing.assert_allclose(total, scores["predicted_value"], rtol=1e-9, atol=1e-9)


def test_reads_a_log_as_the_model_was_trained_to(tmp_path, sample_log, small_model, small_panel,
                                                small_features, monkeypatch):  # fmt: skip
    """A model trained on a log with its own column names (recorded in its spec) scores such
    a log without the column options; options given to `clv score` still win."""
    trained = small_model.with_spec(columns=ColumnMapping(customer_id="cust", timestamp="date"))
    monkeypatch.setenv("MLFLOW_TRACKING_URI", make_champion_store(tmp_path, trained, small_panel))
    renamed = tmp_path / "renamed.csv"
    pd.read_csv(sample_log, dtype=str).rename(columns={"customer_id": "cust"}).to_csv(
        renamed, index=False
    )
    expected = small_model.predict(small_features).set_index(schema.CUSTOMER_ID)
    for log, options in ((renamed, []), (sample_log, ["--customer-col", "customer_id"])):
        out = tmp_path / "scores.parquet"
        result = _score("--transactions", str(log), *options, "--as-of", "1997-09-30",
                        "--output", str(out), "--drivers", "0")  # fmt: skip
        assert result.exit_code == 0, result.output
        scores = pd.read_parquet(out).set_index(schema.CUSTOMER_ID).loc[expected.index]
        np.testing.assert_allclose(scores["predicted_value"], expected["predicted_value"])
    # without the option, the original log lacks the model's customer column: named, exit 2
    result = _score("--transactions", str(sample_log), "--as-of", "1997-09-30",
                    "--output", str(tmp_path / "x.parquet"))  # fmt: skip
    assert result.exit_code == 2 and "column 'cust' for customer_id not found" in result.output


def test_scores_a_feature_file_to_csv(store, tmp_path, small_model, small_features):
    features = tmp_path / "features.parquet"
    small_features.to_parquet(features)
    out = tmp_path / "scores.csv"
    result = _score("--features", str(features), "--output", str(out), "--drivers", "0",
                    "--chunk-rows", "1000")  # fmt: skip
    assert result.exit_code == 0, result.output
    scores = pd.read_csv(out, dtype={schema.CUSTOMER_ID: str})
    expected = small_model.predict(small_features)
    assert scores[schema.CUSTOMER_ID].tolist() == expected[schema.CUSTOMER_ID].tolist()
    np.testing.assert_allclose(scores["predicted_value"], expected["predicted_value"], rtol=1e-9)
    assert "driver_1_feature" not in scores.columns


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--model-alias", "nope"], "no registered model 'clv' with alias 'nope'"),
        (["--as-of", "1999-01-01"], "outside the data"),
        (["--as-of", "30/09/1997"], "--as-of '30/09/1997' is not a date"),
        (["--amount-col", "price"], "column 'price' for amount not found"),
        (["--naive-timezone", "UTC+1"], "--naive-timezone: 'UTC+1' is not an IANA time zone"),
    ],
)
def test_bad_input_exits_2_and_writes_nothing(store, sample_log, tmp_path, args, message):
    out = tmp_path / "scores.parquet"
    base = {"--transactions": str(sample_log), "--timestamp-col": "date", "--as-of": "1997-09-30",
            "--output": str(out)}  # fmt: skip
    for flag, value in zip(args[::2], args[1::2], strict=True):
        base[flag] = value
    result = _score(*[x for kv in base.items() for x in kv])
    assert result.exit_code == 2, result.output
    assert message in result.output
    assert not out.exists()


def test_feature_file_without_model_columns_is_refused(store, tmp_path, small_features):
    features = tmp_path / "features.parquet"
    small_features.drop(columns=["recency"]).to_parquet(features)
    result = _score("--features", str(features), "--output", str(tmp_path / "s.parquet"))
    assert result.exit_code == 2
    assert "lacks column(s) ['recency']" in result.output


def test_serve_check_refuses_missing_and_mismatched_models(
    store, tmp_path, small_model, small_panel, monkeypatch
):
    result = runner.invoke(app, ["serve", "--check"])
    assert result.exit_code == 0, result.output
    assert "passes its contract" in result.output
    result = runner.invoke(app, ["serve", "--check", "--model-alias", "nope"])
    assert result.exit_code == 2
    assert "no registered model 'clv' with alias 'nope'" in result.output
    result = runner.invoke(app, ["serve", "--check", "--workers", "0"])
    assert result.exit_code == 2 and "--workers" in result.output
    monkeypatch.setenv("CLV_WORKERS", "none")
    result = runner.invoke(app, ["serve", "--check"])
    assert result.exit_code == 2 and "CLV_WORKERS" in result.output
    monkeypatch.delenv("CLV_WORKERS")

    from clv.models.registry import log_clv_model, register_clv_model, set_alias

    uri = f"sqlite:///{tmp_path / 'broken.db'}"
    mlflow.set_tracking_uri(uri)
    try:
        experiment = mlflow.create_experiment("b", artifact_location=(tmp_path / "a").as_uri())
        broken = small_model.with_spec(feature_config=FeatureConfig(windows_days=(30, 60)))
        with mlflow.start_run(experiment_id=experiment):
            info = log_clv_model(broken, small_panel.head(5))
        set_alias(register_clv_model(info.model_uri))
    finally:
        mlflow.set_tracking_uri(None)
    monkeypatch.setenv("MLFLOW_TRACKING_URI", uri)
    result = runner.invoke(app, ["serve", "--check"])
    assert result.exit_code == 2
    assert "feature spec does not match" in result.output
