"""Value drivers: SHAP contributions to predicted value (currency), global, per segment, per row.

Contributions come from `CLVModel.explain_value` (exact TreeSHAP converted to currency, so a
customer's base value + contributions = predicted value). Large bases are explained on a sample
stratified by value tier (every tier keeps up to an equal share of rows, so the few platinum
customers are not drowned out); each explained row carries a weight (customers it stands for)
and weighted means estimate the figures for the whole base.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

import numpy as np
import pandas as pd
from clv.features import schema
from clv.features.catalog import describe
from clv.models.composite import CLVModel, Explanation
from clv.models.spec import VALUE_TIERS

DEFAULT_MAX_ROWS: Final = 8000


@dataclass(frozen=True)
class Drivers:
    """Contributions of the explained rows of a customer base.

    rows: positions of the explained rows in the base's frames; weights: customers each row
    stands for (sum = customers in the base); stages, tiers: the rows' lifecycle stage and
    value tier; explanation: currency contributions, one row per explained row.
    """

    explanation: Explanation
    rows: np.ndarray
    weights: np.ndarray
    stages: np.ndarray
    tiers: np.ndarray

    @property
    def labels(self) -> list[str]:
        return [describe(n).label for n in self.explanation.feature_names]


def stratified_rows(
    tiers: pd.Series, max_rows: int, seed: int = 0
) -> tuple[np.ndarray, np.ndarray]:
    """Row positions to explain and their weights: up to max_rows // 4 per value tier.

    Returns every row (weights 1) when the base has at most `max_rows` rows.
    """
    n = len(tiers)
    if n <= max_rows:
        return np.arange(n), np.ones(n)
    rng = np.random.default_rng(seed)
    per_tier = max(1, max_rows // len(VALUE_TIERS))
    rows, weights = [], []
    values = tiers.astype(str).to_numpy()
    for tier in np.unique(values):
        members = np.flatnonzero(values == tier)
        take = members if len(members) <= per_tier else rng.choice(members, per_tier, False)
        rows.append(np.sort(take))
        weights.append(np.full(len(take), len(members) / len(take)))
    order = np.concatenate(rows)
    return order, np.concatenate(weights)


def explain_base(
    model: CLVModel,
    features: pd.DataFrame,
    predictions: pd.DataFrame,
    max_rows: int = DEFAULT_MAX_ROWS,
    seed: int = 0,
) -> Drivers:
    """Explain (a tier-stratified sample of) a customer base's predicted value, in currency."""
    rows, weights = stratified_rows(predictions["value_tier"], max_rows, seed)
    explanation = model.explain_value(features.iloc[rows])
    return Drivers(
        explanation=explanation,
        rows=rows,
        weights=weights,
        stages=predictions[schema.LIFECYCLE_STAGE].astype(str).to_numpy()[rows],
        tiers=predictions["value_tier"].astype(str).to_numpy()[rows],
    )


def importance(drivers: Drivers) -> pd.DataFrame:
    """Global importance, most important first.

    Columns: feature, label, family, mean_abs (mean |contribution|, currency per customer),
    mean (mean signed contribution), share (of the total mean |contribution|).
    """
    contributions = drivers.explanation.contributions
    w = drivers.weights / drivers.weights.sum()
    mean_abs = np.abs(contributions).T @ w
    infos = [describe(n) for n in drivers.explanation.feature_names]
    frame = pd.DataFrame(
        {
            "feature": [i.name for i in infos],
            "label": [i.label for i in infos],
            "family": [i.family for i in infos],
            "mean_abs": mean_abs,
            "mean": contributions.T @ w,
            "share": mean_abs / mean_abs.sum() if mean_abs.sum() else 0.0,
        }
    )
    return frame.sort_values("mean_abs", ascending=False, kind="stable").reset_index(drop=True)


def family_importance(table: pd.DataFrame) -> pd.DataFrame:
    """Importance summed per feature family (columns: family, mean_abs, share), largest first."""
    grouped = table.groupby("family", as_index=False)[["mean_abs", "share"]].sum()
    return grouped.sort_values("mean_abs", ascending=False).reset_index(drop=True)


def segment_contributions(
    drivers: Drivers, segments: np.ndarray, order: list[str], features: list[str]
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Mean signed and mean absolute contribution (currency) of `features` in each segment.

    Returns (signed, absolute): index = feature names, columns = the segments of `order` that
    occur, each a weighted mean over the segment's explained rows.
    """
    names = drivers.explanation.feature_names
    index = [names.index(f) for f in features]
    contributions = drivers.explanation.contributions[:, index]
    signed, absolute = {}, {}
    for segment in order:
        mask = segments == segment
        if not mask.any():
            continue
        w = drivers.weights[mask] / drivers.weights[mask].sum()
        signed[segment] = contributions[mask].T @ w
        absolute[segment] = np.abs(contributions[mask]).T @ w
    return pd.DataFrame(signed, index=features), pd.DataFrame(absolute, index=features)


def top_drivers_by_segment(
    drivers: Drivers, segments: np.ndarray, order: list[str], k: int = 3
) -> pd.DataFrame:
    """The k largest drivers (by mean |contribution|) of each segment.

    Columns: segment, rank, feature, label, family, mean (signed currency), mean_abs (currency).
    """
    names = drivers.explanation.feature_names
    signed, absolute = segment_contributions(drivers, segments, order, names)
    rows = []
    for segment in absolute.columns:
        top = absolute[segment].sort_values(ascending=False, kind="stable").head(k)
        for rank, feature in enumerate(top.index, start=1):
            info = describe(feature)
            rows.append(
                {
                    "segment": segment,
                    "rank": rank,
                    "feature": feature,
                    "label": info.label,
                    "family": info.family,
                    "mean": float(signed.loc[feature, segment]),
                    "mean_abs": float(top[feature]),
                }
            )
    return pd.DataFrame(rows)


@dataclass(frozen=True)
class Example:
    """One customer picked to show how their drivers add up to their predicted value."""

    title: str
    why: str
    position: int


def pick_examples(features: pd.DataFrame, predictions: pd.DataFrame) -> list[Example]:
    """A few telling customers: the most valuable, the most value at risk, and a typical
    (median predicted value) repeat buyer, one-time buyer and lapsed customer. Each customer
    appears once; groups without members are skipped."""
    value = predictions["predicted_value"].to_numpy(dtype=float)
    at_risk = predictions["value_at_risk"].to_numpy(dtype=float)
    stage = predictions[schema.LIFECYCLE_STAGE].astype(str).to_numpy()
    repeat = features[schema.FREQUENCY].to_numpy(dtype=float) > 0
    chosen: list[Example] = []

    def add(title: str, why: str, candidates: np.ndarray, score: np.ndarray) -> None:
        taken = {e.position for e in chosen}
        for position in candidates[np.argsort(score[candidates], kind="stable")]:
            if int(position) not in taken:
                chosen.append(Example(title, why, int(position)))
                return

    everyone = np.arange(len(value))
    add("Most valuable", "the highest predicted value", everyone, -value)
    add("Most value at risk", "the largest value at risk of churning", everyone, -at_risk)
    for title, mask in (
        ("Typical repeat buyer", repeat),
        ("Typical one-time buyer", ~repeat),
        ("Typical lapsed customer", stage == schema.STAGE_LAPSED),
    ):
        members = np.flatnonzero(mask)
        if members.size:
            median = np.median(value[members])
            add(title, "the median predicted value of its group", members, np.abs(value - median))
    return chosen
