"""Evaluation designs, outputs, and the absence of leakage from after the evaluation cutoff."""

from __future__ import annotations

from datetime import date, timedelta

import numpy as np
import pandas as pd
import pytest
from clv.features import schema
from clv.features.build import build_features
from clv.features.datasets import CDNOW_COLUMNS, cdnow_master_path, cdnow_sample_ids
from clv.features.transactions import TransactionLog, load_transactions, transactions_from_frame
from clv.training.artifacts import EVALUATION_COLUMNS
from clv.training.config import BoosterParams, ModelParams, TrainingConfig
from clv.training.evaluate import EvaluationResult, evaluate
from clv.training.fit import TrainingDataError
from clv.training.metrics import churn_metrics, value_metrics

QUICK = BoosterParams(max_rounds=80, learning_rate=0.1, early_stopping_rounds=20)
OUT_OF_TIME = TrainingConfig(
    horizon_days=91,
    cutoff=date(1998, 3, 31),
    evaluation="out-of-time",
    training_cutoffs=3,
    params=ModelParams(churn=QUICK, spend=QUICK),
)


@pytest.fixture(scope="module")
def sample_frame() -> pd.DataFrame:
    """The transactions of the 2,357 CDNOW sample customers."""
    log = load_transactions(cdnow_master_path(), columns=CDNOW_COLUMNS)
    frame = log.con.execute("SELECT customer_id, timestamp, amount FROM transactions").df()
    return frame[frame["customer_id"].isin(set(cdnow_sample_ids()))].reset_index(drop=True)


def _perturb_after(frame: pd.DataFrame, cutoff: date) -> pd.DataFrame:
    """Triple every amount after the cutoff and add a purchase for 100 customers after it."""
    after = pd.to_datetime(frame["timestamp"]) > pd.Timestamp(cutoff) + timedelta(days=1)
    changed = frame.assign(amount=np.where(after, frame["amount"] * 3, frame["amount"]))
    extra = pd.DataFrame(
        {
            "customer_id": frame["customer_id"].drop_duplicates().head(100).to_numpy(),
            "timestamp": pd.Timestamp(cutoff) + timedelta(days=20),
            "amount": 99.0,
        }
    )
    return pd.concat([changed, extra], ignore_index=True)


@pytest.fixture(scope="module")
def out_of_time(sample_frame) -> tuple[TransactionLog, EvaluationResult]:
    log = transactions_from_frame(sample_frame)
    return log, evaluate(log, OUT_OF_TIME)


def test_out_of_time_window(out_of_time):
    log, result = out_of_time
    window = result.window
    assert window["evaluation_cutoff"] == date(1998, 3, 31)
    assert window["training_cutoffs"] == [date(1997, 11, 4), date(1997, 12, 2), date(1997, 12, 30)]
    # Every training label ends by the evaluation cutoff: no label reads the evaluated period.
    assert window["training_label_end"] <= window["evaluation_cutoff"]
    panel_cutoffs = result.training_panel[schema.CUTOFF].dt.date
    assert (panel_cutoffs + timedelta(days=91) <= window["evaluation_cutoff"]).all()
    assert window["first_date"] == log.first_date and window["last_date"] == log.last_date
    assert window["n_eval_customers"] == len(result.predictions) == 2357


def test_out_of_time_is_blind_to_transactions_after_the_cutoff(sample_frame, out_of_time):
    """Changing what happens after the evaluation cutoff changes the actuals, nothing else."""
    log, result = out_of_time
    cutoff = result.window["evaluation_cutoff"]
    perturbed_log = transactions_from_frame(_perturb_after(sample_frame, cutoff))
    perturbed = evaluate(perturbed_log, OUT_OF_TIME)

    features = build_features(log, [cutoff])
    perturbed_features = build_features(perturbed_log, [cutoff])
    pd.testing.assert_frame_equal(features, perturbed_features)
    np.testing.assert_array_equal(
        result.model.model_inputs(features), perturbed.model.model_inputs(perturbed_features)
    )
    pd.testing.assert_frame_equal(result.training_panel, perturbed.training_panel)
    same = ["predicted_value", "churn_probability", "baseline_value", "baseline_churn_probability"]
    pd.testing.assert_frame_equal(result.predictions[same], perturbed.predictions[same])
    # ... while the evaluated actuals did change.
    assert perturbed.metrics["model"]["total_actual"] > result.metrics["model"]["total_actual"]


def test_customer_holdout_outputs(sample_frame):
    log = transactions_from_frame(sample_frame)
    config = OUT_OF_TIME.model_copy(
        update={"evaluation": "customer-holdout", "horizon_days": 273, "cutoff": None}
    )
    result = evaluate(log, config)
    window = result.window
    assert window["evaluation_cutoff"] == date(1997, 9, 30)  # latest with a complete horizon
    assert max(window["training_cutoffs"]) == window["evaluation_cutoff"]
    assert window["training_label_end"] <= log.last_date
    predictions = result.predictions
    assert list(predictions.columns) == list(EVALUATION_COLUMNS)
    train_ids = set(result.training_panel[schema.CUSTOMER_ID])
    assert not train_ids & set(predictions[schema.CUSTOMER_ID])
    assert window["n_train_customers"] + window["n_eval_customers"] == 2357
    assert window["n_eval_customers"] == pytest.approx(0.3 * 2357, abs=1)

    expected = {
        *value_metrics([1.0, 2.0], [1.0, 2.0]),
        *churn_metrics([0, 1], [0.2, 0.8]),
        "n_customers",
        "total_actual",
        "total_predicted",
    }
    assert set(result.metrics) == {"model", "baseline"}
    assert set(result.metrics["model"]) == set(result.metrics["baseline"]) == expected
    assert result.model.spec.validation_metrics == result.metrics
    assert result.metrics["model"]["total_actual"] == pytest.approx(
        predictions[schema.FUTURE_SPEND].sum()
    )
    assert result.decile_table["customers"].sum() == len(predictions)
    assert result.calibration_table["customers"].sum() == len(predictions)


def test_out_of_time_refuses_a_horizon_that_leaves_no_training_cutoff(sample_frame):
    log = transactions_from_frame(sample_frame)
    config = OUT_OF_TIME.model_copy(update={"horizon_days": 273, "cutoff": None})
    with pytest.raises(TrainingDataError, match="out-of-time training label of 273 days"):
        evaluate(log, config)


def test_quality_bar_on_the_cdnow_master_log():
    """The model beats BG/NBD + Gamma-Gamma fitted in the same run on the same customers.

    Customer holdout on the bundled master log (23,570 customers), cutoff 1997-09-30, 273-day
    horizon, default settings (benchmarks/quality_cdnow.py prints the whole table).
    """
    log = load_transactions(cdnow_master_path(), columns=CDNOW_COLUMNS)
    config = TrainingConfig(horizon_days=273, cutoff=date(1997, 9, 30))
    result = evaluate(log, config)
    m, b = result.metrics["model"], result.metrics["baseline"]
    assert m["spearman"] > b["spearman"]
    assert m["normalized_gini"] > b["normalized_gini"]
    assert m["top_decile_capture"] > b["top_decile_capture"]
    assert m["decile_mape"] <= b["decile_mape"]
    assert abs(m["total_ratio"] - 1) <= abs(b["total_ratio"] - 1)
    assert m["roc_auc"] > b["roc_auc"]
    assert m["brier"] < b["brier"]
