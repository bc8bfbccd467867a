"""Batch scoring speed: `clv score --features` over 1M customers, time and peak memory.

    .venv/bin/python benchmarks/score_bench.py [--customers 1000000] [--tracking-uri URI]

Without --tracking-uri, a small model is trained on the CDNOW sample into a temporary MLflow
store (as the tests do). The 1M-customer feature file resamples the features of the 23,570
CDNOW customers at 1997-09-30 under new ids. Prints wall time, customers/s and the scoring
process's peak resident memory.
"""

from __future__ import annotations

import argparse
import os
import resource
import subprocess
import sys
import tempfile
import time
from datetime import date
from pathlib import Path

import numpy as np

CUTOFFS = ("1997-08-05", "1997-09-02", "1997-09-30")
HORIZON_DAYS = 273


def train_small_store(root: Path) -> str:
    """Train the tests' small model on the CDNOW sample; register it as clv@champion."""
    import mlflow
    from clv.features.build import build_panel
    from clv.features.datasets import CDNOW_COLUMNS, cdnow_master_path, cdnow_sample_ids
    from clv.features.transactions import load_transactions
    from clv.models.registry import log_clv_model, register_clv_model, set_alias
    from clv.training.config import BoosterParams, ModelParams, TrainingConfig
    from clv.training.fit import fit_clv_model

    log = load_transactions(cdnow_master_path(), columns=CDNOW_COLUMNS)
    panel = build_panel(log, [date.fromisoformat(c) for c in CUTOFFS], HORIZON_DAYS)
    panel = panel[panel["customer_id"].isin(set(cdnow_sample_ids()))].reset_index(drop=True)
    quick = BoosterParams(max_rounds=150, learning_rate=0.08, early_stopping_rounds=30)
    config = TrainingConfig(horizon_days=HORIZON_DAYS, params=ModelParams(churn=quick, spend=quick))
    model = fit_clv_model(panel, config)
    uri = f"sqlite:///{root / 'mlflow.db'}"
    mlflow.set_tracking_uri(uri)
    experiment = mlflow.create_experiment("bench", artifact_location=(root / "art").as_uri())
    with mlflow.start_run(experiment_id=experiment):
        info = log_clv_model(model, panel.head(5))
    set_alias(register_clv_model(info.model_uri))
    mlflow.set_tracking_uri(None)
    return uri


def feature_file(path: Path, customers: int) -> None:
    """`customers` rows resampled from the CDNOW features at 1997-09-30, with new ids."""
    from clv.features.build import build_features
    from clv.features.datasets import CDNOW_COLUMNS, cdnow_master_path
    from clv.features.transactions import load_transactions

    log = load_transactions(cdnow_master_path(), columns=CDNOW_COLUMNS)
    base = build_features(log, [date(1997, 9, 30)])
    rows = np.random.default_rng(0).integers(0, len(base), customers)
    frame = base.iloc[rows].reset_index(drop=True)
    frame["customer_id"] = [f"b{i:07d}" for i in range(customers)]
    frame.to_parquet(path, index=False)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--customers", type=int, default=1_000_000)
    parser.add_argument("--drivers", type=int, default=0, help="top drivers per customer")
    parser.add_argument("--tracking-uri", default=None)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="clv-score-bench-") as tmp:
        root = Path(tmp)
        uri = args.tracking_uri or train_small_store(root)
        features = root / "features.parquet"
        feature_file(features, args.customers)
        output = root / "scores.parquet"
        clv = Path(sys.executable).with_name("clv")
        command = [str(clv), "score", "--features", str(features), "--output", str(output),
                   "--drivers", str(args.drivers)]  # fmt: skip
        env = {**os.environ, "MLFLOW_TRACKING_URI": uri}
        print("$", " ".join(command[1:3]), "FEATURES.parquet", "--output SCORES.parquet",
              "--drivers", args.drivers, flush=True)  # fmt: skip
        started = time.perf_counter()
        subprocess.run(command, env=env, check=True, capture_output=True)
        elapsed = time.perf_counter() - started
        peak_mib = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
        print(
            f"scored {args.customers:,} customers from features (drivers: {args.drivers}) in "
            f"{elapsed:.1f} s ({args.customers / elapsed:,.0f} customers/s, model load "
            f"included); peak memory {peak_mib:,.0f} MiB; cores: {os.cpu_count()}"
        )


if __name__ == "__main__":
    main()
