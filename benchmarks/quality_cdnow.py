"""Model vs the BG/NBD + Gamma-Gamma baseline on the bundled CDNOW log (customer holdout).

Runs `clv.training.evaluate.evaluate` on the master log (23,570 customers) and on the 2,357-
customer sample of Fader, Hardie and Lee, cutoff 1997-09-30, 273-day horizon, and prints the
metrics side by side (a Markdown table, for the README).

    .venv/bin/python benchmarks/quality_cdnow.py [--only master|sample] [--seeds 42 0 1]

With several seeds (each splits the customers differently), the table is of the first seed and
a line per seed says which conditions of the quality bar held.
"""

from __future__ import annotations

import argparse
import time
from datetime import date

from clv.features.datasets import CDNOW_COLUMNS, cdnow_master_path, cdnow_sample_ids
from clv.features.transactions import TransactionLog, load_transactions
from clv.training.config import TrainingConfig
from clv.training.evaluate import EvaluationResult, evaluate

CUTOFF = date(1997, 9, 30)
HORIZON_DAYS = 273
ROWS = (
    ("spearman", "higher"),
    ("normalized_gini", "higher"),
    ("top_decile_capture", "higher"),
    ("decile_mape", "lower"),
    ("total_ratio", "closer to 1"),
    ("mae", "lower"),
    ("rmse", "lower"),
    ("roc_auc", "higher"),
    ("pr_auc", "higher"),
    ("brier", "lower"),
    ("log_loss", "lower"),
)


def sample_log(log: TransactionLog) -> TransactionLog:
    """The same log restricted to the 2,357 sample customers (a new DuckDB view)."""
    con = log.con
    con.execute("CREATE OR REPLACE TEMP TABLE sample_ids (customer_id VARCHAR)")
    con.executemany("INSERT INTO sample_ids VALUES (?)", [(i,) for i in cdnow_sample_ids()])
    frame = con.execute("SELECT t.* FROM transactions t JOIN sample_ids s USING (customer_id)").df()
    from clv.features.transactions import transactions_from_frame

    return transactions_from_frame(frame)


def quality_bar(result: EvaluationResult) -> dict[str, bool]:
    """Each condition of the quality bar: does the model beat the baseline on it?"""
    m, b = result.metrics["model"], result.metrics["baseline"]
    return {
        "spearman": m["spearman"] > b["spearman"],
        "normalized_gini": m["normalized_gini"] > b["normalized_gini"],
        "top_decile_capture": m["top_decile_capture"] > b["top_decile_capture"],
        "decile_mape": m["decile_mape"] <= b["decile_mape"],
        "total_ratio": abs(m["total_ratio"] - 1) <= abs(b["total_ratio"] - 1),
        "roc_auc": m["roc_auc"] > b["roc_auc"],
        "brier": m["brier"] < b["brier"],
    }


def table(results: dict[str, EvaluationResult]) -> str:
    """Markdown: one row per metric, model and baseline columns per data set."""
    head = "| metric | better |" + "".join(f" {n}: model | {n}: baseline |" for n in results)
    rule = "|---|---|" + "---:|---:|" * len(results)
    lines = [head, rule]
    for metric, better in ROWS:
        cells = "".join(
            f" {r.metrics['model'][metric]:.3f} | {r.metrics['baseline'][metric]:.3f} |"
            for r in results.values()
        )
        lines.append(f"| {metric} | {better} |{cells}")
    counts = "".join(
        f" {r.window['n_train_customers']:,} train / {r.window['n_eval_customers']:,} eval | |"
        for r in results.values()
    )
    lines.append(f"| customers | |{counts}")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", choices=("master", "sample"))
    parser.add_argument("--seeds", type=int, nargs="+", default=[42])
    args = parser.parse_args()
    master = load_transactions(cdnow_master_path(), columns=CDNOW_COLUMNS)
    logs = {"master": master, "sample": sample_log(master)}
    results = {}
    for name, log in logs.items():
        if args.only and name != args.only:
            continue
        for seed in args.seeds:
            config = TrainingConfig(horizon_days=HORIZON_DAYS, cutoff=CUTOFF, seed=seed)
            start = time.perf_counter()
            result = evaluate(log, config)
            results.setdefault(name, result)
            failed = [k for k, ok in quality_bar(result).items() if not ok]
            print(
                f"{name}, seed {seed}: {time.perf_counter() - start:.1f} s, quality bar "
                + ("met" if not failed else f"NOT met on {failed}"),
                flush=True,
            )
    print(f"\nseed {args.seeds[0]}:")
    print(table(results))


if __name__ == "__main__":
    main()
