"""The champion gate: rules on hand-made metrics, re-scoring a champion, moving the alias."""

from __future__ import annotations

import math
import os
import shutil
from datetime import date
from pathlib import Path

import mlflow
import pandas as pd
import pytest
from clv.features import schema
from clv.features.datasets import CDNOW_COLUMNS, cdnow_master_path
from clv.features.transactions import load_transactions
from clv.models.registry import log_clv_model, register_clv_model, set_alias
from clv.training import gate, promotion
from clv.training.config import TrainingConfig
from clv.training.gate import ChampionScore, compare, decide
from clv.training.metrics import churn_metrics, value_metrics
from clv.training.promotion import assess_champion, move_alias

GOOD = {
    "spearman": 0.50,
    "normalized_gini": 0.70,
    "top_decile_capture": 0.55,
    "decile_mape": 0.20,
    "total_ratio": 0.95,
    "roc_auc": 0.80,
    "brier": 0.15,
}
BASELINE = {
    "spearman": 0.40,
    "normalized_gini": 0.60,
    "top_decile_capture": 0.50,
    "decile_mape": 0.30,
    "total_ratio": 0.80,
    "roc_auc": 0.75,
    "brier": 0.17,
}


def _champion(**changes: float) -> ChampionScore:
    return ChampionScore("3", {**BASELINE, **changes}, gate.BASIS_SAME_CUSTOMERS)


def test_better_on_every_rule_is_promoted() -> None:
    decision = decide({"model": GOOD, "baseline": BASELINE}, _champion())
    assert decision.promote
    assert decision.failed == []
    assert len(decision.checks) == 2 * len(gate.GATE_RULES)
    assert decision.tags()["promotion.decision"] == "promoted"
    assert "promoted version 7 to 'champion'" in decision.summary("7")


def test_no_champion_only_the_baseline_counts() -> None:
    decision = decide({"model": GOOD, "baseline": BASELINE}, None)
    assert decision.promote
    assert decision.basis == gate.BASIS_NO_CHAMPION
    assert decision.tags()["promotion.champion_version"] == "none"


@pytest.mark.parametrize(
    ("metric", "worse"),
    [
        ("spearman", 0.39),
        ("normalized_gini", 0.60),  # a tie is not a win
        ("top_decile_capture", 0.49),
        ("decile_mape", 0.31),
        ("total_ratio", 1.21),  # |1.21 - 1| > |0.80 - 1|
        ("roc_auc", 0.70),
        ("brier", 0.18),
    ],
)
def test_one_worse_metric_against_the_baseline_refuses(metric: str, worse: float) -> None:
    decision = decide({"model": {**GOOD, metric: worse}, "baseline": BASELINE}, None)
    assert not decision.promote
    assert [(c.against, c.metric) for c in decision.failed] == [("baseline", metric)]
    summary = decision.summary("4")
    assert "NOT PROMOTED" in summary
    assert f"fails vs baseline: {metric} {worse:.4f} vs {BASELINE[metric]:.4f}" in summary
    assert metric in decision.tags()["promotion.failed"]


def test_worse_than_the_champion_refuses_and_says_by_how_much() -> None:
    champion = _champion(spearman=0.52, brier=0.14)
    decision = decide({"model": GOOD, "baseline": BASELINE}, champion)
    assert not decision.promote
    failed = {c.metric: c for c in decision.failed}
    assert set(failed) == {"spearman", "brier"}
    assert failed["spearman"].against == "champion v3"
    assert "spearman 0.5000 vs 0.5200 (-0.0200; needs higher)" in decision.summary()
    assert "brier 0.1500 vs 0.1400 (+0.0100; needs lower)" in decision.summary()
    assert "'champion' stays on version 3" in decision.summary()


def test_not_worse_rules_accept_ties_and_total_ratio_is_distance_from_one() -> None:
    checks = compare(
        {"decile_mape": 0.3, "total_ratio": 1.1},
        {"decile_mape": 0.3, "total_ratio": 0.9},
        "baseline",
        [
            gate.Rule("decile_mape", "not_higher"),
            gate.Rule("total_ratio", "closer_to_one"),
        ],
    )
    assert [c.passed for c in checks] == [True, True]


def test_nan_candidate_fails_and_missing_reference_is_not_compared() -> None:
    checks = compare({"roc_auc": math.nan, "brier": 0.1}, {"roc_auc": 0.7}, "baseline")
    by_metric = {c.metric: c for c in checks}
    assert not by_metric["roc_auc"].passed
    assert by_metric["brier"].passed and by_metric["brier"].skipped
    assert "not compared" in by_metric["brier"].describe()


def test_a_blocking_reason_refuses_whatever_the_metrics() -> None:
    decision = decide({"model": GOOD, "baseline": BASELINE}, _champion(), blocked="other horizon")
    assert not decision.promote
    assert "other horizon" in decision.summary()
    assert decision.tags()["promotion.blocked"] == "other horizon"


# --- against a real registry --------------------------------------------------------------
@pytest.fixture(scope="module")
def template_db(tmp_path_factory) -> Path:
    """An initialised, empty SQLite store, copied per test (migrating one costs seconds)."""
    path = tmp_path_factory.mktemp("template") / "mlflow.db"
    mlflow.MlflowClient(tracking_uri=f"sqlite:///{path}").search_experiments()
    return path


@pytest.fixture
def store(tmp_path, template_db: Path):
    """An empty SQLite MLflow store for one test; the process's own setting comes back after."""
    previous = os.environ.get("MLFLOW_TRACKING_URI")
    shutil.copy(template_db, tmp_path / "mlflow.db")
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    mlflow.set_tracking_uri(uri)
    experiment = mlflow.create_experiment("t", artifact_location=(tmp_path / "art").as_uri())
    try:
        yield experiment
    finally:
        # set_tracking_uri(previous) would pin the URI for the whole process and hide
        # later MLFLOW_TRACKING_URI changes: clear it, then put the variable back.
        mlflow.set_tracking_uri(None)
        if previous:
            os.environ["MLFLOW_TRACKING_URI"] = previous


def _register(model, example, experiment: str) -> str:
    with mlflow.start_run(experiment_id=experiment):
        info = log_clv_model(model, example)
    return register_clv_model(info.model_uri, "clv-test")


@pytest.fixture(scope="module")
def cdnow_log():
    return load_transactions(cdnow_master_path(), columns=CDNOW_COLUMNS)


def test_champion_is_rescored_on_the_new_runs_customers(
    store, small_model, small_panel, cdnow_log
) -> None:
    set_alias(_register(small_model, small_panel.head(5), store), name="clv-test")
    latest = small_panel[small_panel[schema.CUTOFF] == small_panel[schema.CUTOFF].max()]
    rows = latest.sample(300, random_state=1)
    window = {
        "evaluation_cutoff": date(1997, 9, 30),
        "evaluation": "customer-holdout",
        "training_cutoffs": [],
        "n_eval_customers": 300,
    }
    config = TrainingConfig(horizon_days=273)
    score, blocked = assess_champion("clv-test", cdnow_log, rows, config, "other-hash", window)
    assert blocked is None
    assert score is not None and score.version == "1"
    assert score.basis == gate.BASIS_SAME_CUSTOMERS
    # The same numbers as scoring the model directly on those rows.
    predicted = small_model.predict(rows)
    expected = value_metrics(rows[schema.FUTURE_SPEND], predicted["predicted_value"])
    expected |= churn_metrics(rows[schema.CHURNED], predicted["churn_probability"])
    for key, value in expected.items():
        assert score.metrics[key] == pytest.approx(value, nan_ok=True), key
    assert any("other data" in n for n in score.notes)
    assert any("may have seen some of these customers' outcomes" in n for n in score.notes)

    other = TrainingConfig(horizon_days=180)
    score, blocked = assess_champion("clv-test", cdnow_log, rows, other, "other-hash", window)
    assert blocked is not None and "273 days" in blocked and "180" in blocked
    assert not decide({"model": GOOD, "baseline": BASELINE}, score, blocked).promote


def test_no_champion_yet(store, cdnow_log) -> None:
    config = TrainingConfig(horizon_days=273)
    assert assess_champion("nothing", cdnow_log, pd.DataFrame(), config, "h", {}) == (None, None)


def test_alias_does_not_move_if_it_moved_since_the_decision(
    store, small_model, small_panel
) -> None:
    first = _register(small_model, small_panel.head(5), store)
    second = _register(small_model, small_panel.head(5), store)
    set_alias(first, name="clv-test")
    refused = move_alias(second, "clv-test", expected_previous=None)
    assert refused is not None and "moved to version 1" in refused
    assert promotion.current_champion_version("clv-test") == first
    assert move_alias(second, "clv-test", expected_previous=first) is None
    assert promotion.current_champion_version("clv-test") == second
