"""Metrics against direct, independent numpy computations on small data."""

from __future__ import annotations

import numpy as np
import pytest
from clv.training.metrics import (
    calibration_table,
    churn_metrics,
    decile_mape,
    decile_table,
    gain_curve,
    normalized_gini,
    top_decile_capture,
    value_metrics,
)


@pytest.fixture
def value_data() -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(0)
    actual = rng.gamma(0.5, 40.0, size=500) * (rng.random(500) < 0.4)
    predicted = np.maximum(actual + rng.normal(0, 20, size=500), 0) + rng.random(500)
    return actual, predicted


def _kaggle_gini(actual: np.ndarray, predicted: np.ndarray) -> float:
    """The textbook Lorenz-curve Gini: sort by prediction, sum the cumulative share."""
    order = np.argsort(-predicted)
    cumulative = np.cumsum(actual[order]) / actual.sum()
    n = actual.size
    return cumulative.sum() / n - (n + 1) / (2 * n)


def test_normalized_gini_extremes():
    rng = np.random.default_rng(1)
    actual = rng.gamma(1.0, 10.0, size=2000)
    assert normalized_gini(actual, actual) == pytest.approx(1.0)
    assert normalized_gini(actual, 3 * actual + 7) == pytest.approx(1.0)
    assert normalized_gini(actual, -actual) == pytest.approx(-1.0)
    assert abs(normalized_gini(actual, rng.random(2000))) < 0.06


def test_normalized_gini_matches_the_lorenz_curve_formula(value_data):
    actual, predicted = value_data  # continuous predictions: no ties
    expected = _kaggle_gini(actual, predicted) / _kaggle_gini(
        actual, actual + 1e-9 * np.arange(500)
    )
    assert normalized_gini(actual, predicted) == pytest.approx(expected, rel=1e-6)


def test_normalized_gini_shares_ties():
    # Two tied predictions: the tied gain is shared, whatever the order of the rows.
    assert normalized_gini([0.0, 10.0, 5.0], [1.0, 1.0, 0.0]) == pytest.approx(
        normalized_gini([10.0, 0.0, 5.0], [1.0, 1.0, 0.0])
    )


def test_top_decile_capture_by_hand():
    actual = np.array([5, 0, 0, 10, 0, 1, 2, 0, 0, 2, 30, 0], dtype=float)  # total 50
    predicted = np.array([9, 1, 2, 3, 4, 5, 6, 7, 8, 0, 0.5, 10], dtype=float)
    # ceil(12 / 10) = 2 customers: predictions 10 (actual 0) and 9 (actual 5).
    assert top_decile_capture(actual, predicted) == pytest.approx(5 / 50)
    assert top_decile_capture(actual, actual) == pytest.approx(40 / 50)


def test_value_metrics_against_numpy(value_data):
    actual, predicted = value_data
    m = value_metrics(actual, predicted)
    assert set(m) == {
        "spearman",
        "normalized_gini",
        "top_decile_capture",
        "decile_mape",
        "total_ratio",
        "mae",
        "rmse",
    }

    def ranks(v: np.ndarray) -> np.ndarray:  # average ranks, by hand
        order = np.argsort(v, kind="stable")
        r = np.empty(v.size)
        r[order] = np.arange(1, v.size + 1)
        for value in np.unique(v):
            tied = v == value
            r[tied] = r[tied].mean()
        return r

    assert m["spearman"] == pytest.approx(np.corrcoef(ranks(actual), ranks(predicted))[0, 1])
    assert m["total_ratio"] == pytest.approx(predicted.sum() / actual.sum())
    assert m["mae"] == pytest.approx(np.abs(predicted - actual).mean())
    assert m["rmse"] == pytest.approx(np.sqrt(((predicted - actual) ** 2).mean()))
    top = np.argsort(-predicted)[:50]
    assert m["top_decile_capture"] == pytest.approx(actual[top].sum() / actual.sum())
    deciles = np.argsort(-predicted).reshape(10, 50)
    errors = [abs(predicted[d].sum() - actual[d].sum()) / actual[d].sum() for d in deciles]
    assert m["decile_mape"] == pytest.approx(np.mean(errors))


def test_decile_mape_skips_deciles_without_actual_value():
    actual = np.array([0.0] * 10 + [10.0] * 10)
    predicted = np.arange(20, dtype=float)  # top 10 by prediction hold all the value
    # Deciles of 2 customers; 5 deciles with actual 20 each, predicted sums 37, 33, ... 21.
    sums = [predicted[i : i + 2].sum() for i in range(10, 20, 2)]
    expected = np.mean([abs(s - 20) / 20 for s in sums])
    assert decile_mape(actual, predicted) == pytest.approx(expected)


def test_churn_metrics_against_numpy():
    rng = np.random.default_rng(2)
    q = rng.random(400)
    y = (rng.random(400) < q).astype(float)
    m = churn_metrics(y, q)
    pos, neg = q[y == 1], q[y == 0]
    auc = ((pos[:, None] > neg[None, :]).sum() + 0.5 * (pos[:, None] == neg[None, :]).sum()) / (
        pos.size * neg.size
    )
    assert m["roc_auc"] == pytest.approx(auc)
    assert m["brier"] == pytest.approx(np.mean((q - y) ** 2))
    assert m["log_loss"] == pytest.approx(-np.mean(y * np.log(q) + (1 - y) * np.log(1 - q)))
    order = np.argsort(-q)
    hits = y[order]
    precision = np.cumsum(hits) / np.arange(1, 401)
    assert m["pr_auc"] == pytest.approx((precision * hits).sum() / hits.sum())


def test_churn_metrics_refuse_bad_inputs():
    with pytest.raises(ValueError, match="0 or 1"):
        churn_metrics([0, 2], [0.1, 0.2])
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        churn_metrics([0, 1], [0.1, 1.2])
    with pytest.raises(ValueError, match="predicted has 1"):
        value_metrics([1.0, 2.0], [1.0])


def test_decile_table(value_data):
    actual, predicted = value_data
    table = decile_table(actual, predicted)
    assert list(table.columns) == [
        "decile",
        "customers",
        "predicted_sum",
        "predicted_mean",
        "actual_sum",
        "actual_mean",
        "lift",
    ]
    assert table["decile"].tolist() == list(range(1, 11))
    assert table["customers"].sum() == 500
    assert table["actual_sum"].sum() == pytest.approx(actual.sum())
    assert table["predicted_sum"].is_monotonic_decreasing
    top = np.argsort(-predicted)[:50]
    assert table["lift"].iloc[0] == pytest.approx(actual[top].mean() / actual.mean())


def test_calibration_table():
    q = np.array([0.1, 0.9, 0.2, 0.8, 0.15, 0.85])
    y = np.array([0, 1, 1, 1, 0, 0])
    table = calibration_table(y, q, bins=2)
    assert table["customers"].tolist() == [3, 3]
    assert table["mean_predicted"].tolist() == pytest.approx([0.15, 0.85])
    assert table["observed_rate"].tolist() == pytest.approx([1 / 3, 2 / 3])


def test_gain_curve():
    actual = np.array([0.0, 10.0, 30.0, 60.0])
    curve = gain_curve(actual, np.array([4.0, 3.0, 2.0, 1.0]), points=5)
    assert curve["share_of_customers"].tolist() == pytest.approx([0, 0.25, 0.5, 0.75, 1])
    assert curve["share_of_value"].tolist() == pytest.approx([0, 0, 0.1, 0.4, 1])
    assert curve["perfect_share_of_value"].tolist() == pytest.approx([0, 0.6, 0.9, 1, 1])
