"""The cleaning, feature and label SQL on Apache Spark, for logs that outgrow one machine.

The same definitions as the DuckDB build, transpiled by sqlglot (`sql.transpile`) and run by
Spark SQL. `clean_on_spark` validates and cleans a log by the rules of
`transactions.load_transactions` (`transactions.cleaning_sql`): rows without a customer id,
timestamp or amount dropped, zero amounts too when configured, identical order lines removed,
all of it counted in a `CleaningReport`; NaN or infinite amounts are refused. `panel_on_spark`
then builds `daily`, `first_use` (for a product or channel column of more values than the
daily rows' mask holds: `sql.BoughtBits`, whose values it collects first) and the panel of
features and labels at a list of cutoff dates (`sql.py`, `build.panel_sql`). A test runs
both on a local Spark and compares the report and every column with the DuckDB build.

The log is a DataFrame with a customer id, a `timestamp` (a timestamp or date column) and a
numeric amount (or a unit price and a quantity), and any of an order id, a quantity
(numeric), a product and a channel: by the contract's names (`customer_id`, `timestamp`,
`amount`, `order_id`, `quantity`, `product`, `channel`), or by others that a `ColumnMapping`
names, as `clv features` reads a file. Text timestamps and numbers are the DuckDB loader's
to parse: cast them before. So the mapping's options for reading text (`timestamp_format`,
`naive_timezone`) are refused, and those that only concern text (`decimal_separator`,
`currency_symbol`, `encoding`) change nothing. Spark cuts days in its session time zone
(`spark.sql.session.timeZone`), so both functions refuse a session whose zone is not the
configured one (`FeatureConfig.timezone`, UTC by default): the same log then gives the same
days as on DuckDB.

The statements read and create temporary views named `raw_transactions`,
`typed_transactions`, `clean_transactions`, `transactions`, `cutoff_dates`, `daily` and
`first_use` in the session; the panel is lazy, and `daily` is read by both features and labels
(cache it, and the log's `transactions`, on large logs).

pyspark is not a dependency of the package: install it beside it (`pip install pyspark`).
"""

from __future__ import annotations

import logging
import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date
from typing import TYPE_CHECKING

from . import schema
from .build import panel_sql
from .config import ColumnMapping, FeatureConfig
from .errors import TransactionLogError
from .sql import daily_sql, first_use_sql, transpile
from .transactions import (
    CleaningReport,
    bought_bits,
    cleaning_report,
    cleaning_sql,
    lines_kept,
    naive_zone,
    not_finite_problem,
    resolve_columns,
)

if TYPE_CHECKING:
    from pyspark.sql import DataFrame, SparkSession

logger = logging.getLogger(__name__)

DIALECT = "spark"

# Spark's type names (`DataFrame.dtypes`) as the DuckDB types the cleaning SQL is written for.
_DUCKDB_TYPES = {
    "string": "VARCHAR",
    "timestamp": "TIMESTAMP",
    "timestamp_ntz": "TIMESTAMP",
    "date": "DATE",
    "double": "DOUBLE",
    "float": "FLOAT",
    "bigint": "BIGINT",
    "int": "INTEGER",
    "smallint": "SMALLINT",
    "tinyint": "TINYINT",
}

_NUMBERS = frozenset({"DOUBLE", "FLOAT", "BIGINT", "INTEGER", "SMALLINT", "TINYINT"})


def _is_number(duckdb_type: str) -> bool:
    return duckdb_type in _NUMBERS or duckdb_type.startswith("DECIMAL")


# What each contract column may be on Spark (text timestamps and numbers are the DuckDB
# loader's to parse), and how an error names it.
_READABLE = {
    schema.TIMESTAMP: (lambda t: t in ("TIMESTAMP", "DATE"), "a timestamp or date"),
    schema.AMOUNT: (_is_number, "numeric"),
    schema.QUANTITY: (_is_number, "numeric"),
}
_TEXT_OR_NUMBER = (lambda t: t == "VARCHAR" or _is_number(t), "text or a number")
# How errors say to set each field of the column mapping.
_MAPPING_FIELDS = {field: f"ColumnMapping({field}=...)" for field in ColumnMapping.model_fields}


@dataclass(frozen=True)
class SparkLog:
    """A log cleaned on Spark: its `transactions` (lazy), the kept `lines` before identical
    lines are removed (where the values of products and channels and their first purchases
    are read: repeats change neither, and the DISTINCT is spared), and what cleaning
    dropped."""

    transactions: DataFrame
    lines: DataFrame
    optional_columns: frozenset[str]
    report: CleaningReport


def clean_on_spark(
    spark: SparkSession,
    raw: DataFrame,
    config: FeatureConfig | None = None,
    columns: ColumnMapping | None = None,
) -> SparkLog:
    """Validate and clean `raw` by the rules of the DuckDB loader, counting every drop.

    `columns` maps the contract's columns to those of `raw` (by default, they carry the
    contract's names), as `transactions.load_transactions` reads a file. One pass over the
    log counts what validation counts. With an order id, as in the DuckDB loader, the kept
    lines' distinct hashes (64-bit `xxhash64`) tell whether any two lines may be identical;
    only then are they de-duplicated, and the kept rows counted in a second pass. The kept
    rows are a lazy DataFrame with the contract's column names. Raises TransactionLogError
    for a missing column, a column of the wrong type, an option that reads text, NaN or
    infinite amounts, and a log with no row left.
    """
    config, columns = config or FeatureConfig(), columns or ColumnMapping()
    _check_time_zone(spark, config)
    _check_text_options(columns, config)
    resolved, types = _duckdb_types(raw, columns)
    statements = cleaning_sql(types, config, line_hash="xxhash64", columns=columns)
    raw.createOrReplaceTempView("raw_transactions")
    counts = spark.sql(transpile(statements.counts, DIALECT)).first()
    assert counts is not None
    numbers = [int(c) for c in counts]
    not_finite = numbers[3]
    if not_finite:
        raise TransactionLogError(
            f"column '{resolved[schema.AMOUNT]}': {not_finite:,} value(s) "
            + not_finite_problem(columns),
            field=schema.AMOUNT,
        )
    spark.sql(transpile(statements.typed, DIALECT)).createOrReplaceTempView("typed_transactions")
    lines = spark.sql(transpile(statements.clean, DIALECT))
    lines.createOrReplaceTempView("clean_transactions")
    has_orders = schema.ORDER_ID in statements.optional_columns
    if has_orders and not statements.no_identical_lines(numbers):
        kept = spark.sql(transpile(statements.transactions, DIALECT))
        rows_kept = kept.count()
    else:  # nothing to de-duplicate: the rows kept are those not dropped
        kept = spark.sql(transpile(statements.unique, DIALECT))
        rows_kept = lines_kept(numbers, config)
    report = cleaning_report(numbers, rows_kept, config)
    if report.rows_kept == 0:
        raise TransactionLogError(
            f"the Spark log has no usable rows after cleaning ({report.summary()})",
            field="--transactions",
        )
    logger.info("transactions on Spark: %s", report.summary())
    return SparkLog(kept, lines, statements.optional_columns, report)


def _check_text_options(columns: ColumnMapping, config: FeatureConfig) -> None:
    """Refuse the mapping's options that read text or shift times: Spark's columns are typed
    (`_duckdb_types`), and converting them is Spark's own job."""
    if columns.timestamp_format is not None:
        raise TransactionLogError(
            f"timestamp_format '{columns.timestamp_format}' reads text timestamps, which the "
            "Spark build does not parse: parse the column on Spark first (to_timestamp) and "
            "leave the format out",
            field="timestamp_format",
        )
    if naive_zone(columns, config) is not None:
        raise TransactionLogError(
            f"naive_timezone '{columns.naive_timezone}' would convert times to "
            f"'{config.timezone}', which the Spark build does not do: convert the column on "
            "Spark first (to_utc_timestamp, from_utc_timestamp) and leave the option out",
            field="naive_timezone",
        )


def _check_time_zone(spark: SparkSession, config: FeatureConfig) -> None:
    """Refuse a session that would cut days in another zone than `config.timezone`."""
    session = spark.conf.get("spark.sql.session.timeZone")
    if session != config.timezone:
        raise TransactionLogError(
            f"Spark's session time zone is '{session}' but days are cut in "
            f"'{config.timezone}' (FeatureConfig.timezone): set spark.sql.session.timeZone to "
            f"'{config.timezone}', or the config's timezone to '{session}'",
            field="timezone",
        )


def _duckdb_types(raw: DataFrame, columns: ColumnMapping) -> tuple[dict[str, str], dict[str, str]]:
    """The contract columns' source columns in `raw` (`transactions.resolve_columns`) and
    those columns' DuckDB types, refusing missing columns and wrong types."""
    resolved = resolve_columns(raw.columns, columns, "the Spark log", _MAPPING_FIELDS)
    spark_types = dict(raw.dtypes)
    types = {}
    for column, source in resolved.items():
        spark_type = spark_types[source]
        decimal = re.fullmatch(r"decimal\((\d+),(\d+)\)", spark_type)
        duckdb_type = (
            f"DECIMAL({decimal[1]},{decimal[2]})" if decimal else _DUCKDB_TYPES.get(spark_type)
        )
        readable, what = _READABLE.get(column, _TEXT_OR_NUMBER)
        if duckdb_type is None or not readable(duckdb_type):
            role = "" if source == column else f" ({column})"
            raise TransactionLogError(
                f"column '{source}'{role} of the Spark log is {spark_type}, not {what}: cast "
                "it first (text is parsed by the DuckDB loader, clv.features.transactions)",
                field=column,
            )
        types[source] = duckdb_type
    return resolved, types


def panel_on_spark(
    spark: SparkSession,
    log: SparkLog | DataFrame,
    cutoffs: Sequence[date],
    horizon_days: int | None = None,
    config: FeatureConfig | None = None,
    columns: ColumnMapping | None = None,
) -> DataFrame:
    """Features (and labels, with a horizon) of every customer acquired by each cutoff.

    The rows and columns of `build.build_panel` on the same log, in no particular order. A
    DataFrame is cleaned first (`clean_on_spark`, with `columns`, whose report is logged);
    pass the `SparkLog` to keep the report (it is cleaned already: `columns` must then be
    None). Cutoffs and horizon are not checked against the data (see `build.check_cutoffs`).
    """
    config = config or FeatureConfig()
    _check_time_zone(spark, config)
    if not cutoffs:
        raise TransactionLogError("give at least one cutoff date", field="--cutoff")
    if isinstance(log, SparkLog) and columns is not None:
        raise ValueError("a SparkLog is cleaned already: give columns to clean_on_spark")
    if not isinstance(log, SparkLog):
        log = clean_on_spark(spark, log, config, columns)
    optional = log.optional_columns
    # this log's views: another log cleaned since in the session has replaced them
    log.transactions.createOrReplaceTempView("transactions")
    log.lines.createOrReplaceTempView("clean_transactions")
    dates = [(cutoff,) for cutoff in sorted(set(cutoffs))]
    spark.createDataFrame(dates, f"{schema.CUTOFF} DATE").createOrReplaceTempView("cutoff_dates")
    bought = bought_bits(
        lambda query: spark.sql(transpile(query, DIALECT)).collect(), optional, "clean_transactions"
    )
    daily = daily_sql(optional, bought=bought)
    spark.sql(transpile(daily, DIALECT)).createOrReplaceTempView("daily")
    first_use = first_use_sql(optional, "clean_transactions", bought)
    if first_use is not None:
        spark.sql(transpile(first_use, DIALECT)).createOrReplaceTempView("first_use")
    panel = panel_sql(
        config, optional, horizon_days, ordered=False, cutoffs="cutoff_dates", bought=bought
    )
    return spark.sql(transpile(panel, DIALECT))
