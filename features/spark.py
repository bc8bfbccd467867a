"""The feature and label SQL on Apache Spark, for logs that outgrow one machine.

The same definitions as the DuckDB build (`sql.py`, `build.panel_sql`), transpiled by sqlglot
(`sql.transpile`) and run by Spark SQL: `daily`, then `first_use` (when the log has a product
or channel column), then the panel of features and labels at a list of cutoff dates. A test
runs this on a local Spark and compares every column with the DuckDB build.

What it reads is a clean log, as `transactions.load_transactions` leaves one (its
`transactions` view): the contract columns `customer_id` (string), `timestamp`, `amount`
(double) and any of `order_id`, `quantity`, `product`, `channel`, with no NULL customer,
timestamp or amount, and order lines sent twice removed. Validation and cleaning stay
DuckDB's: run them on the log, or bring a table already clean. Days are cut in Spark's
session time zone (`spark.sql.session.timeZone`).

The statements read and create temporary views named `transactions`, `cutoff_dates`, `daily`
and `first_use` in the session; the panel is lazy, and `daily` is read by both features and
labels (cache it on large logs).

pyspark is not a dependency of the package: install it beside it (`pip install pyspark`).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date
from typing import TYPE_CHECKING

from . import schema
from .build import panel_sql
from .config import FeatureConfig
from .errors import TransactionLogError
from .sql import daily_sql, first_use_sql, transpile

if TYPE_CHECKING:
    from pyspark.sql import DataFrame, SparkSession

DIALECT = "spark"


def panel_on_spark(
    spark: SparkSession,
    transactions: DataFrame,
    cutoffs: Sequence[date],
    horizon_days: int | None = None,
    config: FeatureConfig | None = None,
    check_missing: bool = True,
) -> DataFrame:
    """Features (and labels, with a horizon) of every customer acquired by each cutoff.

    The rows and columns of `build.build_panel` on the same clean log, in no particular
    order. A log with rows missing a customer id, timestamp or amount is refused (one pass
    over it; `check_missing=False` skips it for a log known to be clean): such rows would not
    be dropped and counted here, as the DuckDB loader does. Cutoffs and horizon are not
    checked against the data (see `build.check_cutoffs`).
    """
    config = config or FeatureConfig()
    missing = [c for c in schema.REQUIRED_TRANSACTION_COLUMNS if c not in transactions.columns]
    if missing:
        raise TransactionLogError(
            f"the Spark log has no column {', '.join(repr(c) for c in missing)} "
            f"(it has {', '.join(transactions.columns)})",
            field=missing[0],
        )
    if not cutoffs:
        raise TransactionLogError("give at least one cutoff date", field="--cutoff")
    if check_missing:
        _refuse_missing_values(transactions)
    optional = frozenset(
        c for c in schema.OPTIONAL_TRANSACTION_COLUMNS if c in transactions.columns
    )
    transactions.createOrReplaceTempView("transactions")
    dates = [(cutoff,) for cutoff in sorted(set(cutoffs))]
    spark.createDataFrame(dates, f"{schema.CUTOFF} DATE").createOrReplaceTempView("cutoff_dates")
    spark.sql(transpile(daily_sql(optional), DIALECT)).createOrReplaceTempView("daily")
    first_use = first_use_sql(optional)
    if first_use is not None:
        spark.sql(transpile(first_use, DIALECT)).createOrReplaceTempView("first_use")
    panel = panel_sql(config, optional, horizon_days, ordered=False, cutoffs="cutoff_dates")
    return spark.sql(transpile(panel, DIALECT))


def _refuse_missing_values(transactions: DataFrame) -> None:
    """TransactionLogError naming the first required column with NULL values, and how many."""
    required = schema.REQUIRED_TRANSACTION_COLUMNS
    counts = transactions.selectExpr(*(f"COUNT(*) - COUNT(`{c}`) AS `{c}`" for c in required))
    row = counts.first()
    missing = [(c, int(row[c])) for c in required if row is not None and row[c]]
    if missing:
        column, count = missing[0]
        raise TransactionLogError(
            f"the Spark log has {count:,} row(s) without a {column}: give a clean log "
            "(clv.features.transactions drops and counts such rows) or drop them first",
            field=column,
        )
