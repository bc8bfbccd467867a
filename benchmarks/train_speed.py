"""Training speed and peak memory of `fit_clv_model` on a generated panel of 1M customers.

    .venv/bin/python benchmarks/train_speed.py [--customers 1000000] [--cutoffs 1]

The panel (features and labels, one row per customer and cutoff) is generated directly in numpy
from a buy-till-you-die process (Poisson purchases at a gamma-distributed rate, geometric
dropout after each purchase, gamma spend), with every column of `feature_names` filled
consistently (recency <= T, counts and spends that agree); the feature build has its own
benchmark (benchmarks/features_bench.py), so this one times training alone: baseline fit,
both boosters with early stopping, the cross-validated blend, calibration and tiers, with the
default `TrainingConfig`. Prints wall and CPU seconds, peak RSS, the boosters' rounds and the
machine's load (it is shared: CPU seconds say more than wall seconds when it is busy).
"""

from __future__ import annotations

import argparse
import logging
import os
import resource
import time

import numpy as np
import pandas as pd
from clv.features import schema
from clv.features.config import FeatureConfig
from clv.features.sql import feature_names
from clv.training.config import TrainingConfig
from clv.training.fit import fit_clv_model

HORIZON_DAYS = 273
TARGET_SECONDS = 300.0


def synthetic_panel(n: int, cutoffs: int, seed: int = 0) -> pd.DataFrame:
    """n customers x `cutoffs` cutoffs (28 days apart): keys, features and labels."""
    rng = np.random.default_rng(seed)
    frames = []
    for i in range(cutoffs):
        cutoff = pd.Timestamp("2024-12-31") - pd.Timedelta(days=28 * (cutoffs - 1 - i))
        frames.append(_one_cutoff(rng, n, cutoff))
    return pd.concat(frames, ignore_index=True)


def _one_cutoff(rng: np.random.Generator, n: int, cutoff: pd.Timestamp) -> pd.DataFrame:
    big_t = rng.integers(1, 1100, size=n).astype(float)  # customer age, days
    rate = rng.gamma(0.6, 1 / 40.0, size=n)  # purchase days per day while alive
    p_drop = rng.beta(1.0, 3.0, size=n)
    drawn = rng.poisson(rate * big_t)
    survived = rng.geometric(p_drop) - 1  # purchases before dropping out
    frequency = np.minimum(drawn, survived).astype(float)
    alive = drawn <= survived
    recency = np.where(frequency > 0, big_t * rng.beta(frequency + 1, 1.5), 0.0).round()
    mean_spend = rng.gamma(4.0, 12.0, size=n)
    first_value = rng.gamma(4.0, mean_spend / 4.0)
    monetary = np.where(frequency > 0, rng.gamma(4.0 + frequency, mean_spend / (4 + frequency)), 0)
    historical = first_value + frequency * monetary
    since_last = big_t - recency
    ipt_mean = np.where(frequency > 0, np.maximum(recency, 1) / np.maximum(frequency, 1), np.nan)
    features: dict[str, np.ndarray] = {
        schema.FREQUENCY: frequency,
        schema.RECENCY: recency,
        schema.T: big_t,
        schema.MONETARY_VALUE: monetary,
        schema.DAYS_SINCE_LAST_PURCHASE: since_last,
        schema.HISTORICAL_VALUE: historical,
        "gross_spend": historical * 1.02,
        "avg_purchase_value": historical / (frequency + 1),
        "max_purchase_value": np.maximum(first_value, monetary * 1.5),
        "std_purchase_value": np.where(frequency > 0, monetary * 0.4, np.nan),
        "first_purchase_value": first_value,
        "last_purchase_value": np.where(frequency > 0, monetary, first_value),
        "n_transactions": (frequency + 1) * rng.uniform(1, 2, size=n).round(),
        "transactions_per_purchase_day": rng.uniform(1, 2, size=n),
        "purchase_rate": frequency / big_t,
        "ipt_mean": ipt_mean,
        "ipt_std": ipt_mean * rng.uniform(0.2, 1.0, size=n),
        "ipt_cv": rng.uniform(0.2, 1.0, size=n),
        "ipt_min": ipt_mean * 0.5,
        "ipt_max": ipt_mean * 1.8,
        "ipt_last": ipt_mean * rng.uniform(0.5, 1.5, size=n),
        "overdue_ratio": since_last / ipt_mean,
    }
    names = feature_names(FeatureConfig())
    for name in names:
        if name not in features:
            features[name] = rng.gamma(1.0, 10.0, size=n) * (frequency > 0)
    # Labels over the horizon: alive customers buy at their rate; spend at their mean.
    p_active = alive * (1 - np.exp(-rate * HORIZON_DAYS)) * (1 - p_drop) ** 0.5
    active = rng.random(n) < p_active
    future_days = np.where(active, 1 + rng.poisson(rate * HORIZON_DAYS * 0.7), 0)
    future_spend = np.where(active, rng.gamma(4.0 * future_days, mean_spend / 4.0), 0.0)
    first = cutoff - pd.to_timedelta(big_t, unit="D")
    frame = pd.DataFrame(features)[names]
    keys = pd.DataFrame(
        {
            schema.CUSTOMER_ID: pd.Series(np.arange(n)).map("c{:07d}".format),
            schema.CUTOFF: cutoff,
            schema.FIRST_PURCHASE_DATE: first,
            schema.LAST_PURCHASE_DATE: first + pd.to_timedelta(recency, unit="D"),
            schema.LIFECYCLE_STAGE: np.where(frequency > 0, "short_term", "first_time"),
        }
    )
    labels = pd.DataFrame(
        {
            schema.FUTURE_SPEND: future_spend,
            schema.FUTURE_PURCHASE_DAYS: future_days,
            schema.CHURNED: (~active).astype(int),
        }
    )
    return pd.concat([keys, frame, labels], axis=1)


def _cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--customers", type=int, default=1_000_000)
    parser.add_argument("--cutoffs", type=int, default=1)
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")

    start, cpu = time.perf_counter(), _cpu()
    panel = synthetic_panel(args.customers, args.cutoffs)
    made = time.perf_counter() - start
    print(f"panel: {len(panel):,} rows x {panel.shape[1]} columns in {made:.1f} s", flush=True)

    start, cpu = time.perf_counter(), _cpu()
    model = fit_clv_model(panel, TrainingConfig(horizon_days=HORIZON_DAYS))
    wall, cpu = time.perf_counter() - start, _cpu() - cpu
    peak_gib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024**2
    print(
        f"train: {wall:.1f} s wall, {cpu:.1f} s CPU; peak RSS {peak_gib:.2f} GiB; "
        f"churn rounds {model.churn_booster.num_trees()}, "
        f"spend rounds {model.spend_booster.num_trees()}; "
        f"blend w={model.baseline_weight:.2f} scale={model.value_scale:.3f} "
        f"power={model.value_power:.2f}; load average {os.getloadavg()[0]:.1f} "
        f"({'within' if wall < TARGET_SECONDS else 'over'} the {TARGET_SECONDS:.0f} s target)"
    )


if __name__ == "__main__":
    main()
