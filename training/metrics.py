"""Accuracy metrics and tables of value (currency over a horizon) and churn predictions.

Plain numpy functions over aligned arrays, one element per customer:

- value: `actual` future spend and `predicted` value (currency over the horizon);
- churn: `churned` (1 when the customer made no purchase in the horizon, else 0) and
  `probability` (the predicted probability of churn, in [0, 1]).

Deciles are taken by *prediction*, highest first (decile 1 holds the customers the model values
most); ties in the prediction keep the input order (a stable sort), so results are deterministic.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
from numpy.typing import ArrayLike
from scipy.stats import rankdata, spearmanr
from sklearn.metrics import average_precision_score, brier_score_loss, log_loss, roc_auc_score

N_DECILES = 10


def _pair(actual: ArrayLike, predicted: ArrayLike) -> tuple[np.ndarray, np.ndarray]:
    a = np.asarray(actual, dtype=float).ravel()
    p = np.asarray(predicted, dtype=float).ravel()
    if a.shape != p.shape:
        raise ValueError(f"actual has {a.size} values but predicted has {p.size}")
    if a.size == 0:
        raise ValueError("no values to evaluate")
    if not (np.isfinite(a).all() and np.isfinite(p).all()):
        raise ValueError("actual and predicted values must be finite")
    return a, p


def _gini(actual: np.ndarray, predicted: np.ndarray) -> float:
    """Area between the gain curve of ranking by `predicted` and the diagonal (times 2).

    With average ranks for ties, the area is sum_i a_i (rank_i - (n + 1) / 2) / (n sum a):
    tied predictions share their gain equally instead of depending on the input order.
    """
    n, total = actual.size, actual.sum()
    if total == 0:
        return float("nan")
    ranks = rankdata(predicted, method="average")
    return float(np.sum(actual * (ranks - (n + 1) / 2.0)) / (n * total))


def normalized_gini(actual: ArrayLike, predicted: ArrayLike) -> float:
    """Gini of the ranking by `predicted` over the Gini of the perfect ranking (by `actual`).

    1 for a perfect ranking, about 0 for a random one, -1 for the reversed one. NaN when the
    actual values sum to 0 or are all equal (no ranking is better than another).
    """
    a, p = _pair(actual, predicted)
    best = _gini(a, a)
    if not best or math.isnan(best):
        return float("nan")
    return _gini(a, p) / best


def _order(predicted: np.ndarray) -> np.ndarray:
    """Indices by decreasing prediction; ties keep the input order."""
    return np.argsort(-predicted, kind="stable")


def _decile_groups(predicted: np.ndarray) -> list[np.ndarray]:
    """Indices of the 10 prediction deciles, highest first (sizes differ by at most 1)."""
    return [g for g in np.array_split(_order(predicted), N_DECILES) if g.size]


def top_decile_capture(actual: ArrayLike, predicted: ArrayLike) -> float:
    """Share of the total actual value held by the top ceil(10%) of customers by prediction."""
    a, p = _pair(actual, predicted)
    total = a.sum()
    if total == 0:
        return float("nan")
    k = math.ceil(a.size / N_DECILES)
    return float(a[_order(p)[:k]].sum() / total)


def decile_mape(actual: ArrayLike, predicted: ArrayLike) -> float:
    """Mean over prediction deciles of |sum predicted - sum actual| / sum actual.

    How well the model gets the *amount* of each value segment right. Deciles whose actual
    value sums to 0 have no relative error and are left out of the mean.
    """
    a, p = _pair(actual, predicted)
    errors = []
    for group in _decile_groups(p):
        total = a[group].sum()
        if total > 0:
            errors.append(abs(p[group].sum() - total) / total)
    return float(np.mean(errors)) if errors else float("nan")


def value_metrics(actual: ArrayLike, predicted: ArrayLike) -> dict[str, float]:
    """Ranking, segment and total accuracy of value predictions (currency over the horizon).

    Keys: spearman (rank correlation), normalized_gini, top_decile_capture, decile_mape,
    total_ratio (sum predicted / sum actual), mae, rmse (currency per customer).
    """
    a, p = _pair(actual, predicted)
    total = a.sum()
    if np.ptp(a) == 0 or np.ptp(p) == 0:
        spearman = float("nan")
    else:
        spearman = float(spearmanr(a, p).statistic)
    return {
        "spearman": spearman,
        "normalized_gini": normalized_gini(a, p),
        "top_decile_capture": top_decile_capture(a, p),
        "decile_mape": decile_mape(a, p),
        "total_ratio": float(p.sum() / total) if total else float("nan"),
        "mae": float(np.mean(np.abs(p - a))),
        "rmse": float(np.sqrt(np.mean((p - a) ** 2))),
    }


def _churn_pair(churned: ArrayLike, probability: ArrayLike) -> tuple[np.ndarray, np.ndarray]:
    y, q = _pair(churned, probability)
    if not np.isin(y, (0.0, 1.0)).all():
        raise ValueError("churned must hold 0 or 1")
    if ((q < 0) | (q > 1)).any():
        raise ValueError("churn probabilities must lie in [0, 1]")
    return y, q


def churn_metrics(churned: ArrayLike, probability: ArrayLike) -> dict[str, float]:
    """Discrimination and calibration of churn probabilities.

    Keys: roc_auc, pr_auc (average precision, churn as the positive class), brier (mean squared
    error of the probability), log_loss. AUCs are NaN when only one class is present.
    """
    y, q = _churn_pair(churned, probability)
    both = np.unique(y).size == 2
    return {
        "roc_auc": float(roc_auc_score(y, q)) if both else float("nan"),
        "pr_auc": float(average_precision_score(y, q)) if both else float("nan"),
        "brier": float(brier_score_loss(y, q)),
        "log_loss": float(log_loss(y, np.clip(q, 1e-15, 1 - 1e-15), labels=[0, 1])),
    }


def decile_table(actual: ArrayLike, predicted: ArrayLike) -> pd.DataFrame:
    """One row per prediction decile (1 = highest predicted value).

    Columns: decile, customers, predicted_sum, predicted_mean, actual_sum, actual_mean (currency
    over the horizon) and lift (the decile's actual mean over the overall actual mean).
    """
    a, p = _pair(actual, predicted)
    overall = a.mean()
    rows = []
    for i, group in enumerate(_decile_groups(p), start=1):
        rows.append(
            {
                "decile": i,
                "customers": int(group.size),
                "predicted_sum": float(p[group].sum()),
                "predicted_mean": float(p[group].mean()),
                "actual_sum": float(a[group].sum()),
                "actual_mean": float(a[group].mean()),
                "lift": float(a[group].mean() / overall) if overall else float("nan"),
            }
        )
    return pd.DataFrame(rows)


def calibration_table(churned: ArrayLike, probability: ArrayLike, bins: int = 10) -> pd.DataFrame:
    """Reliability of churn probabilities over `bins` bins of equal customer count.

    Customers are sorted by predicted probability and split into `bins` groups of (nearly) equal
    size, so every bin's observed rate rests on as many customers. Columns: bin (1 = lowest
    probabilities), customers, mean_predicted, observed_rate (share that churned).
    """
    if bins < 1:
        raise ValueError("bins must be at least 1")
    y, q = _churn_pair(churned, probability)
    order = np.argsort(q, kind="stable")
    rows = []
    for i, group in enumerate(np.array_split(order, bins), start=1):
        if group.size:
            rows.append(
                {
                    "bin": i,
                    "customers": int(group.size),
                    "mean_predicted": float(q[group].mean()),
                    "observed_rate": float(y[group].mean()),
                }
            )
    return pd.DataFrame(rows)


def gain_curve(actual: ArrayLike, predicted: ArrayLike, points: int = 101) -> pd.DataFrame:
    """Cumulative gain: the share of actual value held by the top x share of customers.

    Customers are ranked by decreasing prediction. Columns: share_of_customers (0 to 1, `points`
    evenly spaced values), share_of_value (by the prediction), perfect_share_of_value (by the
    actual value itself, the best any model can do). The diagonal is a random ranking.
    """
    a, p = _pair(actual, predicted)
    total = a.sum()
    x = np.linspace(0.0, 1.0, points)
    grid = np.concatenate([[0.0], np.arange(1, a.size + 1) / a.size])

    def curve(order: np.ndarray) -> np.ndarray:
        cumulative = np.concatenate([[0.0], np.cumsum(a[order])])
        share = cumulative / total if total else np.full_like(cumulative, np.nan)
        return np.interp(x, grid, share)

    return pd.DataFrame(
        {
            "share_of_customers": x,
            "share_of_value": curve(_order(p)),
            "perfect_share_of_value": curve(_order(a)),
        }
    )
