"""Read and validate a transaction log into DuckDB, counting every row that is dropped.

The validated log is a DuckDB view named `transactions` with the contract columns of
`schema` (customer_id VARCHAR, timestamp TIMESTAMP, amount DOUBLE, optional columns), plus a
table `daily` (see `sql.daily_sql`) and, with a product or channel column of more values
than `sql.BoughtBits` holds, `first_use` (see `sql.first_use_sql`). Bad values raise
`TransactionLogError` naming the column, the value and its row; rows that cannot count as
purchases are dropped and reported.

How the user's file maps onto the contract is a `ColumnMapping` (column names, timestamp
format, decimal separator, currency symbol, encoding, the zone of naive timestamps, or a unit
price that quantity multiplies into the amount); timestamps become local times of
`FeatureConfig.timezone`, whose calendar days the features count.
"""

from __future__ import annotations

import logging
import os
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date
from functools import cached_property
from pathlib import Path
from typing import Any

import duckdb
import pandas as pd

from . import schema
from .config import ColumnMapping, FeatureConfig
from .errors import TransactionLogError
from .sources import (
    LogSource,
    UnreadableFile,
    columns_in_order,
    find_log,
    read_sql,
    repeated_column,
)
from .sql import (
    BOUGHT_BITS,
    NO_BOUGHT_BITS,
    BoughtBits,
    daily_sql,
    distinct_values_sql,
    first_use_sql,
    quoted_name,
    string_literal,
)

logger = logging.getLogger(__name__)

# What a unit price column is called in messages (it stands in for the amount column).
UNIT_PRICE = "unit price"
# How a user sets each field of `ColumnMapping`, as messages name it: the CLI's options by
# default (`clv.features.spark` names the mapping's fields instead).
CLI_OPTIONS = {
    schema.CUSTOMER_ID: "--customer-col",
    schema.TIMESTAMP: "--timestamp-col",
    schema.AMOUNT: "--amount-col",
    schema.ORDER_ID: "--order-col",
    schema.QUANTITY: "--quantity-col",
    schema.PRODUCT: "--product-col",
    schema.CHANNEL: "--channel-col",
    "unit_price": "--unit-price-col",
}


@dataclass(frozen=True)
class CleaningReport:
    """How many rows were read, kept, and dropped for each reason."""

    rows_read: int
    rows_kept: int
    dropped: dict[str, int] = field(default_factory=dict)

    def summary(self) -> str:
        drops = ", ".join(f"{n:,} {why}" for why, n in self.dropped.items() if n) or "none"
        return f"read {self.rows_read:,} rows, kept {self.rows_kept:,}; dropped: {drops}"


@dataclass(frozen=True)
class TransactionLog:
    """A validated log registered in a DuckDB connection as `transactions` and `daily`."""

    con: duckdb.DuckDBPyConnection
    optional_columns: frozenset[str]
    first_date: date
    last_date: date
    report: CleaningReport
    # The products and channels that `daily` counts in its `bought` mask (the others are
    # counted from `first_use`).
    bought: BoughtBits = NO_BOUGHT_BITS

    @cached_property
    def n_customers(self) -> int:
        """Customers with at least one kept line (counted on first use: a distinct count
        over the daily rows, which a feature build does not need)."""
        rows = self.con.execute("SELECT COUNT(DISTINCT customer_id) FROM daily").fetchall()
        return int(rows[0][0])


# DuckDB splits a large GROUP BY (millions of groups: orders, days, line hashes) into more
# partitions when it has more threads, and each partition then fits the CPU caches better: on
# 2 cores, 4 threads build the features of 10M lines in about 12% less CPU time than 2 (and
# less wall time; 8 are no better than 4). Under a memory limit the extra threads' hash tables
# compete for the memory and spill more (100M lines under 5 GB: 174 s with 4, 160 s with 2),
# so there DuckDB's default (one per CPU) stays.
MIN_THREADS = 4


def session_timezone_sql(zone: str) -> str:
    """SQL that makes `zone` the connection's time zone: casting an instant (TIMESTAMPTZ) to
    TIMESTAMP then gives its local time there, whose date is the day features count. Every
    connection that reads a log runs it with the configured zone (`FeatureConfig.timezone`,
    UTC by default), never the machine's (DuckDB's default): the same log gives the same
    features everywhere (see `_typed_select`)."""
    return "SET TimeZone = " + string_literal(zone)


def naive_zone(columns: ColumnMapping, config: FeatureConfig) -> str | None:
    """The zone that timestamps without an offset must be converted from, or None when they
    are local times of the feature zone already (nothing to convert)."""
    zone = columns.naive_timezone
    return zone if zone is not None and zone != config.timezone else None


def connect(
    memory_limit: str | None = None, threads: int | None = None, temp_directory: str | None = None
) -> duckdb.DuckDBPyConnection:
    """An in-memory DuckDB connection; with a memory limit it spills to `temp_directory`.

    `threads` defaults to one per CPU, and to at least `MIN_THREADS` when there is no memory
    limit (see there).
    """
    con = duckdb.connect(":memory:")
    if memory_limit:
        con.execute(f"SET memory_limit = '{memory_limit}'")
    elif not threads:
        threads = max(MIN_THREADS, os.cpu_count() or 1)
    if threads:
        con.execute(f"SET threads = {int(threads)}")
    if temp_directory:
        con.execute(f"SET temp_directory = '{temp_directory}'")
    # Insertion order is not needed by any query and costs memory on large logs.
    con.execute("SET preserve_insertion_order = false")
    return con


def load_transactions(
    path: str | Path | LogSource,
    columns: ColumnMapping | None = None,
    config: FeatureConfig | None = None,
    con: duckdb.DuckDBPyConnection | None = None,
) -> TransactionLog:
    """Validate a CSV or Parquet transaction log and register it in DuckDB: one file, a folder
    of Parquet files, or a glob pattern's files (`sources.find_log`). Given a `LogSource`, a
    pattern's files are those it matched when it was found (not matched again), so that what
    is read is what the caller hashed."""
    columns = columns or ColumnMapping()
    source = path if isinstance(path, LogSource) else find_log(path)
    con = con or connect()
    where = str(source.path)
    try:
        in_order = columns_in_order(con, source, columns.encoding)
    except UnreadableFile as exc:
        raise _unreadable(str(exc.file), exc.error, columns) from exc
    try:
        reader = read_sql(source, columns.encoding, by_name=not in_order)
        con.execute(f"CREATE OR REPLACE TEMP VIEW raw_transactions AS SELECT * FROM {reader}")
    except duckdb.Error as exc:
        raise _unreadable(where, exc, columns) from exc

    def repeated(names: Sequence[str]) -> tuple[str, str] | None:
        try:
            found = repeated_column(con, source, columns.encoding, names)
        except UnreadableFile as exc:
            raise _unreadable(str(exc.file), exc.error, columns) from exc
        return None if found is None else (found[0], f"the header of {found[1]}")

    config = config or FeatureConfig()
    return _validate(con, columns, config, where, repeated, parse_once=source.kind == "csv")


def transactions_from_frame(
    frame: pd.DataFrame,
    columns: ColumnMapping | None = None,
    config: FeatureConfig | None = None,
    con: duckdb.DuckDBPyConnection | None = None,
) -> TransactionLog:
    """Validate an in-memory log (same rules as `load_transactions`)."""
    con = con or connect()
    con.register("raw_frame", frame)
    con.execute("CREATE OR REPLACE TEMP VIEW raw_transactions AS SELECT * FROM raw_frame")
    names = list(frame.columns)

    def repeated(wanted: Sequence[str]) -> tuple[str, str] | None:
        twice = [name for name in wanted if names.count(name) > 1]
        return (twice[0], "the input frame") if twice else None

    columns, config = columns or ColumnMapping(), config or FeatureConfig()
    return _validate(con, columns, config, "the input frame", repeated)


def _unreadable(where: str, exc: duckdb.Error, columns: ColumnMapping) -> TransactionLogError:
    """The error for a log DuckDB cannot read; a CSV in another encoding than the one set
    (`columns.encoding`) is told which option reads it, without DuckDB's own advice."""
    message = str(exc).removeprefix("Invalid Input Error: ")
    if "Invalid unicode" in message or "not utf-8 encoded" in message:
        line = re.search(r"CSV Error on Line: (\d+)", message)
        at = f" (line {line[1]})" if line else ""
        others = [e for e in ("latin-1", "utf-16") if e != columns.encoding]
        return TransactionLogError(
            f"cannot read {where}: it is not {columns.encoding} text{at}; for a file saved in "
            f"another encoding, set --encoding {' or '.join(others)} (latin-1 for files saved "
            "by Excel on Windows and most Western single-byte encodings)",
            field="--encoding",
        )
    return TransactionLogError(f"cannot read {where}: {message}", field="--transactions")


def _amount_source(
    columns: ColumnMapping, options: Mapping[str, str] = CLI_OPTIONS
) -> tuple[str, str, str]:
    """(source column, what it holds, how it is set) of the amount: the amount column, or with
    `columns.unit_price` the unit price that quantity multiplies (`_typed_select`)."""
    if columns.unit_price is not None:
        return columns.unit_price, UNIT_PRICE, options["unit_price"]
    return columns.amount, schema.AMOUNT, options[schema.AMOUNT]


def resolve_columns(
    available: list[str],
    columns: ColumnMapping,
    where: str,
    options: Mapping[str, str] = CLI_OPTIONS,
) -> dict[str, str]:
    """Contract column -> source column, for required columns and the optional ones present.
    With a unit price (`columns.unit_price`), amount maps to the unit price column. Errors
    say how to set a field by `options` (field of `ColumnMapping` -> its option)."""
    resolved: dict[str, str] = {}
    options = dict(options)
    unit_price = options["unit_price"]
    if columns.unit_price is not None and schema.AMOUNT in columns.model_fields_set:
        raise TransactionLogError(
            f"give either an amount column ({options[schema.AMOUNT]} {columns.amount}) or a "
            f"unit price ({unit_price} {columns.unit_price}), not both",
            field=UNIT_PRICE,
        )
    for column in schema.REQUIRED_TRANSACTION_COLUMNS:
        source = columns.source_for(column)
        what = column
        if column == schema.AMOUNT:
            source, what, options[column] = _amount_source(columns, options)
        if source not in available:
            raise TransactionLogError(
                f"column '{source}' for {what} not found in {where} "
                f"(set it with {options[column]}); columns are: {', '.join(available)}",
                field=what,
            )
        _check_not_taken(resolved, column, source, options)
        resolved[column] = source
    for column in schema.OPTIONAL_TRANSACTION_COLUMNS:
        source = columns.source_for(column)
        explicitly_set = column in columns.model_fields_set
        if source is None:
            continue
        if source in available:
            if not explicitly_set and source in resolved.values():
                continue  # a default name that the user gave another role
            _check_not_taken(resolved, column, source, options)
            resolved[column] = source
        elif explicitly_set:
            raise TransactionLogError(
                f"column '{source}' for {column} not found in {where} "
                f"({options[column]}); columns are: {', '.join(available)}",
                field=column,
            )
    if columns.unit_price is not None and schema.QUANTITY not in resolved:
        raise TransactionLogError(
            f"a unit price ({unit_price} {columns.unit_price}) needs a quantity column: "
            f"amounts are quantity x unit price, and {where} has no column "
            f"'{columns.quantity}' (set it with {options[schema.QUANTITY]})",
            field=schema.QUANTITY,
        )
    return resolved


def _check_not_taken(
    resolved: dict[str, str], column: str, source: str, options: Mapping[str, str]
) -> None:
    """One source column cannot play two roles (e.g. --customer-col amount)."""
    for other, taken in resolved.items():
        if taken == source:
            raise TransactionLogError(
                f"column '{source}' is given as both {other} ({options[other]}) and "
                f"{column} ({options[column]}); each role needs its own column",
                field=column,
            )


# Source types whose text form is never blank: for these a value is missing only when NULL,
# and the text cast, trim and blank test (costly on large Parquet logs) can be skipped.
_INTEGER_TYPES = frozenset(
    {
        "TINYINT",
        "SMALLINT",
        "INTEGER",
        "BIGINT",
        "HUGEINT",
        "UTINYINT",
        "USMALLINT",
        "UINTEGER",
        "UBIGINT",
        "UHUGEINT",
    }
)
_NUMERIC_TYPES = _INTEGER_TYPES | {"FLOAT", "DOUBLE"}
_TEMPORAL_TYPES = frozenset({"DATE", "TIMESTAMP", "TIMESTAMP_S", "TIMESTAMP_MS", "TIMESTAMP_NS"})


def _is_numeric(source_type: str) -> bool:
    return source_type in _NUMERIC_TYPES or source_type.startswith("DECIMAL")


def _never_blank(source_type: str) -> bool:
    return _is_numeric(source_type) or source_type in _TEMPORAL_TYPES


_TEXT_COLUMNS = (schema.CUSTOMER_ID, schema.ORDER_ID, schema.PRODUCT, schema.CHANNEL)
# The order id as `_typed_select` keys orders internally (see there).
_ORDER_KEY = "_order_key"


def _typed_select(
    resolved: dict[str, str],
    columns: ColumnMapping,
    types: dict[str, str] | None = None,
    trimmed: frozenset[str] = frozenset(),
    from_zone: str | None = None,
) -> str:
    """SELECT list that casts each source column to its contract type, with error flags.

    Text timestamps are read by `columns.timestamp_format`, text numbers by
    `columns.decimal_separator` (`_number_from_text`). Timestamps with an offset or zone
    become local times of the connection's zone (`session_timezone_sql`); those without one,
    when `from_zone` is given (`naive_zone`), are read as times in that zone and converted
    too (values with no time of day, such as dates, are not shifted).

    `types` (source column -> DuckDB type) lets typed sources (Parquet, frames) skip the
    text round trip; `trimmed` names text columns known to hold no blank value and no value
    with surrounding spaces, read as they are. The values and flags are the same either way.
    While `trimmed` is empty, `_untrimmed_<column>` flags count the values that need trimming.
    """
    types = types or {}

    def kind(column: str) -> str:
        return types.get(resolved[column], "VARCHAR")

    def missing(column: str) -> str:
        src = quoted_name(resolved[column])
        if _never_blank(kind(column)):
            return f"{src} IS NULL"
        return _blank(src if kind(column) == "VARCHAR" else f"CAST({src} AS VARCHAR)")

    def text(column: str) -> str:
        src = quoted_name(resolved[column])
        if _never_blank(kind(column)):
            return f"CAST({src} AS VARCHAR)"
        if kind(column) == "VARCHAR":
            if column in trimmed:
                return src
            # NULLIF(TRIM(src), '') without trimming the values that need none.
            return (
                f"CASE WHEN {_padded(src)} THEN NULLIF(TRIM({src}), '') "
                f"WHEN {src} = '' THEN NULL ELSE {src} END"
            )
        return f"NULLIF(TRIM(CAST({src} AS VARCHAR)), '')"

    cid = schema.CUSTOMER_ID
    timestamp_format, separator = columns.timestamp_format, columns.decimal_separator
    ts = quoted_name(resolved[schema.TIMESTAMP])
    amt = quoted_name(resolved[schema.AMOUNT])
    # Timestamps with a zone or an offset become local times of the feature zone before days
    # are cut (as the service's request models do), whatever the machine's zone: the
    # connection's TimeZone is that zone (`session_timezone_sql`), so casting an instant to
    # TIMESTAMP gives its local time there.
    ts_kind = kind(schema.TIMESTAMP)
    if not timestamp_format and ts_kind == "TIMESTAMP":
        ts_expr = _localized(ts, from_zone)
    elif not timestamp_format and ts_kind in _TEMPORAL_TYPES - {"DATE"}:
        ts_expr = _localized(f"TRY_CAST({ts} AS TIMESTAMP)", from_zone)
    elif not timestamp_format and (ts_kind == "DATE" or ts_kind.endswith("TIME ZONE")):
        ts_expr = f"TRY_CAST({ts} AS TIMESTAMP)"
    else:
        ts_expr = _timestamp_from_text(f"CAST({ts} AS VARCHAR)", timestamp_format, from_zone)
    amount_expr = f"CAST({amt} AS DOUBLE)" if _is_numeric(kind(schema.AMOUNT)) else None
    amount_expr = amount_expr or _number_from_text(amt, separator, columns.currency_symbol)
    amount_missing = missing(schema.AMOUNT)
    quantity_parts = []
    if schema.QUANTITY in resolved:
        q = quoted_name(resolved[schema.QUANTITY])
        if _is_numeric(kind(schema.QUANTITY)):
            quantity = f"CAST({q} AS DOUBLE)"
            quantity_parts = [f"{quantity} AS quantity", "false AS _quantity_bad"]
        else:
            blank = _blank(f"CAST({q} AS VARCHAR)")
            quantity = _number_from_text(q, separator)
            quantity_parts = [
                f"{quantity} AS quantity",
                f"(NOT ({blank}) AND {quantity} IS NULL) AS _quantity_bad",
            ]
        if columns.unit_price is not None:
            # The amount column is the unit price (`resolve_columns`): a line's amount is
            # quantity x unit price, missing when either is.
            amount_expr = f"({quantity}) * ({amount_expr})"
            amount_missing = f"({amount_missing}) OR ({missing(schema.QUANTITY)})"
    parts = [
        f"{text(cid)} AS customer_id",
        f"{ts_expr} AS timestamp",
        f"{amount_expr} AS amount",
        f"({missing(schema.TIMESTAMP)}) AS _ts_missing",
        f"({amount_missing}) AS _amount_missing",
        *quantity_parts,
    ]
    for column in (schema.ORDER_ID, schema.PRODUCT, schema.CHANNEL):
        if column in resolved:
            parts.append(f"{text(column)} AS {column}")
    if schema.ORDER_ID in resolved:
        # Orders only need telling apart: an integer id as it is (its text is the same
        # partition of the lines) is cheaper to group by than its text.
        native = kind(schema.ORDER_ID) in _INTEGER_TYPES
        order_key = quoted_name(resolved[schema.ORDER_ID]) if native else text(schema.ORDER_ID)
        parts.append(f"{order_key} AS {_ORDER_KEY}")
    if not trimmed:
        for column in _trimmable(resolved, types):
            src = quoted_name(resolved[column])
            parts.append(f"({src} = '' OR {_padded(src)}) IS TRUE AS _untrimmed_{column}")
    return ",\n    ".join(parts)


# Thousands may be grouped by the other separator, as spreadsheets write them: by commas with
# a decimal point ('1,234,567.89'), by dots with a decimal comma ('1.234.567,89'). Any other
# use of the other separator makes the value not a number rather than a guess.
_POINT_GROUPED = r"[+-]?[0-9]{1,3}(,[0-9]{3})+(\.[0-9]*)?"
_COMMA_GROUPED = r"[+-]?[0-9]{1,3}(\.[0-9]{3})+(,[0-9]*)?"


def _number_from_text(
    src: str, decimal_separator: str = ".", currency_symbol: str | None = None
) -> str:
    """SQL: a value as a DOUBLE, NULL when it is not a number. With the decimal separator '.'
    commas may group thousands ('1,234.5', `_POINT_GROUPED`); with ',' the comma is the
    decimal point ('10,5' is 10.5) and dots may group thousands (`_COMMA_GROUPED`). With a
    `currency_symbol`, one such symbol before the number (after its sign, if any) or after it
    is removed first ('-$1,234.5', '12,5 €'). A number in parentheses is negative, as
    accounting formats write it ('(12.50)', '($1,234.50)'); a sign inside them is refused.
    Validation counts and its example of a bad value both read numbers through this."""
    number = _unbracketed_number(src, decimal_separator, currency_symbol)
    text = f"TRIM(CAST({src} AS VARCHAR))"
    inner = f"substr({text}, 2, length({text}) - 2)"
    bracketed = _unbracketed_number(inner, decimal_separator, currency_symbol)
    negative = f"CASE WHEN regexp_full_match({text}, '\\( *[^ +-].*\\)') THEN -({bracketed}) END"
    return f"COALESCE({number}, {negative})"


def _unbracketed_number(src: str, decimal_separator: str, currency_symbol: str | None) -> str:
    """SQL: `_number_from_text` of a value that is not in parentheses."""
    if currency_symbol is not None:
        symbol = re.escape(currency_symbol)
        src = (
            f"regexp_replace(TRIM(CAST({src} AS VARCHAR)), "
            f"'^([+-]?) *{symbol} *| *{symbol}$', '\\1')"
        )
    text = f"TRIM(CAST({src} AS VARCHAR))"
    if decimal_separator == ".":
        # Plain numbers take the cast alone; only what it refuses is tried as grouped.
        grouped = (
            f"CASE WHEN regexp_full_match({text}, '{_POINT_GROUPED}') "
            f"THEN TRY_CAST(REPLACE({text}, ',', '') AS DOUBLE) END"
        )
        return f"COALESCE(TRY_CAST({src} AS DOUBLE), {grouped})"
    ungrouped = (
        f"CASE WHEN {text} NOT LIKE '%.%' THEN {text} "
        f"WHEN regexp_full_match({text}, '{_COMMA_GROUPED}') THEN REPLACE({text}, '.', '') END"
    )
    return f"TRY_CAST(REPLACE({ungrouped}, ',', '.') AS DOUBLE)"


# strptime specifiers of a time of day, and of a zone or offset (DuckDB's `strptime`).
_TIME_OF_DAY = ("%H", "%I", "%M", "%S", "%f", "%g", "%n", "%p", "%X", "%c", "%T", "%R")
_ZONE_FIELDS = ("%z", "%Z")


def _localized(naive: str, from_zone: str | None) -> str:
    """SQL: a naive TIMESTAMP read as a time in `from_zone`, as a local time of the session
    zone (unchanged when `from_zone` is None)."""
    if from_zone is None:
        return naive
    return f"CAST(timezone({string_literal(from_zone)}, {naive}) AS TIMESTAMP)"


def _timestamp_from_text(
    src: str, timestamp_format: str | None, from_zone: str | None = None
) -> str:
    """SQL: text as a TIMESTAMP, NULL when it does not parse: by `timestamp_format` when
    given, else as ISO text (`_text_timestamp`). Validation counts and its example of a bad
    value both read timestamps through this. Naive times of day are converted from
    `from_zone` (`_localized`); a format without a time of day reads dates, never shifted."""
    if timestamp_format:
        parsed = f"CAST(TRY_STRPTIME({src}, {string_literal(timestamp_format)}) AS TIMESTAMP)"
        naive = not any(z in timestamp_format for z in _ZONE_FIELDS)
        timed = any(t in timestamp_format for t in _TIME_OF_DAY)
        return _localized(parsed, from_zone) if naive and timed else parsed
    return _text_timestamp(src, from_zone)


def _text_timestamp(src: str, from_zone: str | None = None) -> str:
    """SQL: ISO text as a TIMESTAMP, an offset or zone converted to the session zone.

    A cast to TIMESTAMP would drop an offset ('2024-01-02T23:30-05:00' -> 23:30); the cast to
    TIMESTAMPTZ honours it but parses about 3x slower, so only text that may carry one takes
    it: a '+', a '-' or a space after the time's ':', or a final Z. Text without a zone reads
    as it is written, and text that only TIMESTAMP parses is read as before. With `from_zone`,
    naive text with a time of day (a ':') is a time in that zone (`_localized`); a date alone
    is not shifted."""
    zoned = " OR ".join(f"{src} LIKE '{p}'" for p in ("%+%", "%:%-%", "%:% %", "%Z", "%z"))
    naive = f"TRY_CAST({src} AS TIMESTAMP)"
    if from_zone is not None:
        naive = f"CASE WHEN {src} LIKE '%:%' THEN {_localized(naive, from_zone)} ELSE {naive} END"
    local = f"CAST(TRY_CAST({src} AS TIMESTAMPTZ) AS TIMESTAMP)"
    return f"CASE WHEN {zoned} THEN COALESCE({local}, {naive}) ELSE {naive} END"


def _blank(text: str) -> str:
    """SQL: the text is NULL, empty or only spaces (`NULLIF(TRIM(text), '') IS NULL`, without
    trimming the values that start and end with no space: 0.10 s against 0.58 s for the
    timestamps of the 10M-line CSV)."""
    # a CASE, not AND: DuckDB evaluates both sides of a conjunction in a SELECT list
    return (
        f"(CASE WHEN {_padded(text)} THEN TRIM({text}) = '' ELSE COALESCE({text} = '', true) END)"
    )


def _padded(src: str) -> str:
    """SQL test: the text starts or ends with a space, i.e. TRIM (which removes spaces only)
    would change it. Two prefix/suffix tests, without building the trimmed string."""
    return f"({src} LIKE ' %' OR {src} LIKE '% ')"


def _trimmable(resolved: dict[str, str], types: dict[str, str]) -> list[str]:
    """Text columns read from VARCHAR sources (whose values may need trimming)."""
    return [
        c for c in _TEXT_COLUMNS if c in resolved and types.get(resolved[c], "VARCHAR") == "VARCHAR"
    ]


def _duplicate_check_sql(
    resolved: dict[str, str],
    trimmable: list[str],
    config: FeatureConfig,
    line_hash: str = "hash",
    hashed: str | None = None,
) -> tuple[str, str]:
    """(extra SELECT items, aggregates) counting the kept lines and their distinct hashes.

    With an order id, identical lines are removed (`_clean_sql`). Equal lines hash equal, so
    when the kept lines have as many distinct hashes as rows, no two are identical and the
    DISTINCT over every column (the costliest step of the build) can be skipped; when there are
    fewer (duplicates, or a hash collision), it runs: exact either way. Text columns are hashed
    as read (`_raw_<column>`, no trimming to pay for), which stands for the cleaned value only
    when the column needs no trimming (`_untrimmed_<column>` counts 0); the caller checks that.
    Other columns are hashed as typed (equal contract values, equal hashes). `line_hash` is
    the SQL function, of 64 bits (DuckDB's `hash`; Spark's `hash` has 32, `xxhash64` 64).
    `hashed` names a column that holds those hashes already (`_typed_lines_sql`).
    """
    if schema.ORDER_ID not in resolved:
        return "", "0, 0"
    keep = _keep_condition(config)
    extra = "".join(f", {quoted_name(resolved[c])} AS _raw_{c}" for c in trimmable)
    hashes = hashed or f"{line_hash}({', '.join(_hashed_columns(resolved, trimmable))})"
    return (
        extra,
        f"COUNT(*) FILTER (WHERE {keep}), COUNT(DISTINCT {hashes}) FILTER (WHERE {keep})",
    )


def _hashed_columns(resolved: dict[str, str], trimmable: list[str]) -> list[str]:
    """The columns whose hash stands for a line (`_duplicate_check_sql`): text as read."""
    raw = {c: f"_raw_{c}" for c in trimmable}
    return [raw.get(schema.ORDER_ID if c == _ORDER_KEY else c, c) for c in _line_columns(resolved)]


def _typed_lines_sql(
    resolved: dict[str, str],
    columns: ColumnMapping,
    types: dict[str, str],
    config: FeatureConfig,
    line_hash: str = "hash",
) -> str:
    """The SELECT over `raw_transactions` that `validation_counts_sql` counts from: each line
    typed (`_typed_select`, text trimmed), with its error flags and the raw text that the
    duplicate check hashes."""
    trimmable = _trimmable(resolved, types)
    raw_text, _ = _duplicate_check_sql(resolved, trimmable, config, line_hash)
    typed = _typed_select(resolved, columns, types, from_zone=naive_zone(columns, config))
    return f"SELECT {typed}{raw_text}\n    FROM raw_transactions"


def _parsed_lines_sql(
    resolved: dict[str, str], columns: ColumnMapping, types: dict[str, str], config: FeatureConfig
) -> str:
    """`_typed_lines_sql`'s lines as a text log keeps them in `PARSED_LINES`: with each line's
    hash (of `_hashed_columns`) in `PARSED_HASH` rather than the raw text it is made from
    (the 10M-line CSV of seven columns: peak 2.25 GiB against 2.6 GiB), and a text order id
    once (`_parsed_view_sql` gives it back as the order key)."""
    lines = _typed_lines_sql(resolved, columns, types, config)
    if schema.ORDER_ID not in resolved:
        return lines
    trimmable = _trimmable(resolved, types)
    dropped = [f"_raw_{c}" for c in trimmable]
    dropped += [_ORDER_KEY] if _order_key_is_order_id(resolved, types) else []
    hashes = f"hash({', '.join(_hashed_columns(resolved, trimmable))})"
    exclude = f" EXCLUDE ({', '.join(dropped)})" if dropped else ""
    return f"SELECT *{exclude}, {hashes} AS {PARSED_HASH}\nFROM ({lines}) AS typed"


def _parsed_view_sql(resolved: dict[str, str], types: dict[str, str]) -> str:
    """The SELECT of `typed_transactions` over `PARSED_LINES`."""
    if _order_key_is_order_id(resolved, types):
        return f"SELECT *, {schema.ORDER_ID} AS {_ORDER_KEY} FROM {PARSED_LINES}"
    return f"SELECT * FROM {PARSED_LINES}"


def _order_key_is_order_id(resolved: dict[str, str], types: dict[str, str]) -> bool:
    """Whether `_typed_select`'s order key is the same text as its order id (an order id
    that is not an integer: both are its text, trimmed)."""
    if schema.ORDER_ID not in resolved:
        return False
    return types.get(resolved[schema.ORDER_ID], "VARCHAR") not in _INTEGER_TYPES


def validation_counts_sql(
    resolved: dict[str, str],
    columns: ColumnMapping,
    types: dict[str, str],
    config: FeatureConfig,
    line_hash: str = "hash",
    source: str | None = None,
) -> str:
    """One SELECT over `raw_transactions` (or `source`, a table of `_typed_lines_sql`'s lines)
    of what validation counts, in this order:

    rows; unparseable timestamps; amounts that are not numbers; amounts that are NaN or
    infinite; quantities that are not numbers; rows without a customer id; with one but
    without a timestamp; with both but without an amount; with all three and an amount of 0
    (`cleaning_report` reads these); with an order id, the lines kept before de-duplication
    and their distinct hashes by the function `line_hash` (`_duplicate_check_sql`; else both
    0); then, per column of `_trimmable`, the values that need trimming (`no_identical_lines`
    reads these last two). `resolved` maps contract columns to source columns, whose
    DuckDB types are `types`. Spark SQL runs it too, transpiled (`clv.features.spark`).
    """
    trimmable = _trimmable(resolved, types)
    untrimmed = ", ".join([f"COUNT(*) FILTER (WHERE _untrimmed_{c})" for c in trimmable] + ["0"])
    has_id = "customer_id IS NOT NULL"
    has_id_ts = has_id + " AND timestamp IS NOT NULL"
    hashed = PARSED_HASH if source and schema.ORDER_ID in resolved else None
    _, duplicates = _duplicate_check_sql(resolved, trimmable, config, line_hash, hashed)
    lines = source or f"(\n    {_typed_lines_sql(resolved, columns, types, config, line_hash)}\n)"
    quantity_bad = "COUNT(*) FILTER (WHERE _quantity_bad)" if schema.QUANTITY in resolved else "0"
    return f"""SELECT
    COUNT(*),
    COUNT(*) FILTER (WHERE timestamp IS NULL AND NOT _ts_missing),
    COUNT(*) FILTER (WHERE amount IS NULL AND NOT _amount_missing),
    COUNT(*) FILTER (WHERE {_not_finite("amount")}),
    {quantity_bad},
    COUNT(*) FILTER (WHERE customer_id IS NULL),
    COUNT(*) FILTER (WHERE {has_id} AND timestamp IS NULL),
    COUNT(*) FILTER (WHERE {has_id_ts} AND amount IS NULL),
    COUNT(*) FILTER (WHERE {has_id_ts} AND amount = 0),
    {duplicates},
    {untrimmed}
FROM {lines} AS typed"""


def no_identical_lines(counts: Sequence[int], trimmable: Sequence[str]) -> bool:
    """From `validation_counts_sql`'s counts: the kept lines are known to hold no two identical
    ones (as many distinct hashes as lines, and hashes of text that needs no trimming), so
    de-duplication can be skipped. False without an order id (nothing is de-duplicated)."""
    kept_lines, distinct_lines = int(counts[9]), int(counts[10])
    needs_trimming = any(int(k) for k in counts[11 : 11 + len(trimmable)])
    return kept_lines > 0 and kept_lines == distinct_lines and not needs_trimming


def lines_kept(counts: Sequence[int], config: FeatureConfig) -> int:
    """From `validation_counts_sql`'s counts: the rows that cleaning keeps before
    de-duplication (those with a customer id, timestamp and amount, and not of amount 0 when
    `drop_zero_amounts`)."""
    n, null_id, ts_missing, amount_missing, zero = (int(counts[i]) for i in (0, 5, 6, 7, 8))
    zero_dropped = zero if config.drop_zero_amounts else 0
    return n - null_id - ts_missing - amount_missing - zero_dropped


def cleaning_report(counts: Sequence[int], rows_kept: int, config: FeatureConfig) -> CleaningReport:
    """What cleaning dropped, from `validation_counts_sql`'s counts and the rows kept (after
    de-duplication): the lines kept before de-duplication and not after are duplicates."""
    return CleaningReport(
        rows_read=int(counts[0]),
        rows_kept=rows_kept,
        dropped={
            "missing customer id": int(counts[5]),
            "missing timestamp": int(counts[6]),
            "missing amount": int(counts[7]),
            "zero amount": int(counts[8]) if config.drop_zero_amounts else 0,
            "duplicate order lines": lines_kept(counts, config) - rows_kept,
        },
    )


def not_finite_problem(columns: ColumnMapping) -> str:
    """What an error says of amounts that are NaN or infinite (with a unit price, the product
    with the quantity may be)."""
    priced = " (or so is quantity x unit price)" if columns.unit_price is not None else ""
    return "are NaN or infinite" + priced


def _not_finite(value: str) -> str:
    """SQL: the number is NaN or infinite (in functions that DuckDB and Spark SQL both have)."""
    return f"(isnan({value}) OR ABS({value}) = CAST('Infinity' AS DOUBLE))"


def _raise_first_bad(
    con: duckdb.DuckDBPyConnection,
    source_col: str,
    condition: str,
    column: str,
    count: int,
    problem: str,
    hint_for: Callable[[str], str] | None = None,
) -> None:
    """TransactionLogError: `count` values of `column` have `problem`, with the first one
    (where `condition` holds) and its row. `hint_for` (of a number column) says how the
    example might be read (`_number_hint`)."""
    rows = con.execute(
        f"""SELECT _row, CAST(_value AS VARCHAR) FROM (
                SELECT row_number() OVER () AS _row, {quoted_name(source_col)} AS _value, *
                FROM raw_transactions) WHERE {condition} LIMIT 1"""
    ).fetchall()
    row = rows[0] if rows else None
    example = f" e.g. '{row[1]}' at data row {row[0]}" if row else ""
    hint = hint_for(str(row[1])) if row and hint_for else ""
    raise TransactionLogError(
        f"column '{source_col}' ({column}): {count:,} value(s) {problem}{example}{hint}",
        field=column,
    )


# A value that would be a number but for a currency symbol before or after it ('$12.50').
_WITH_SYMBOL = re.compile(r"[+-]? *([^\d\s.,+-]{1,3}) *[\d.,]+|[+-]?[\d.,]+ *([^\d\s.,+-]{1,3})")


def _number_hint(value: str, decimal_separator: str, suggest_currency: bool = False) -> str:
    """How to read a value that is not a number: the option to set if it looks like a number
    written with the other decimal separator (`_separator_hint`) or, with `suggest_currency`
    (amounts read without a currency symbol), with a currency symbol; else ''. A value in
    parentheses (an accounting negative) is judged by what they hold."""
    bracketed = re.fullmatch(r"\((.*)\)", value.strip())
    value = bracketed[1] if bracketed else value
    symbol = _WITH_SYMBOL.fullmatch(value.strip()) if suggest_currency else None
    if symbol:
        found = symbol[1] or symbol[2]
        return f"; if the file writes a currency symbol, set --currency-symbol '{found}'"
    return _separator_hint(value, decimal_separator)


def _separator_hint(value: str, decimal_separator: str) -> str:
    """How to read a value that is not a number under `decimal_separator`, if it looks like
    a number written with the other one; else ''."""
    text = value.strip()
    if decimal_separator == "." and re.fullmatch(r"[+-]?[0-9][0-9.]*,[0-9]+", text):
        return "; if the file writes decimals with a comma, set --decimal-separator ','"
    if decimal_separator == "," and re.fullmatch(r"[+-]?[0-9][0-9,]*\.[0-9]+", text):
        return (
            "; with --decimal-separator ',' a '.' may only group thousands (1.234,5): "
            "leave the option out if the file writes decimals with a point (1,234.5)"
        )
    return ""


def _keep_condition(config: FeatureConfig) -> str:
    """The rows of `typed_transactions` that cleaning keeps (before de-duplication)."""
    keep = "customer_id IS NOT NULL AND timestamp IS NOT NULL AND amount IS NOT NULL"
    if config.drop_zero_amounts:
        keep += " AND amount <> 0"
    return keep


def _clean_sql(
    resolved: dict[str, str], config: FeatureConfig, deduplicate: bool = True
) -> tuple[str, str]:
    """SELECTs of `clean_transactions` (from `typed_transactions`) and `transactions`; the
    latter without de-duplication when not `deduplicate` (for lines known to be unique)."""
    optional = [c for c in schema.OPTIONAL_TRANSACTION_COLUMNS if c in resolved]
    contract_cols = ", ".join([*schema.REQUIRED_TRANSACTION_COLUMNS, *optional])
    # Duplicates can only be told from repeat purchases when an order id says so: two lines
    # of the same order with the same values are one line sent twice. Without an order id,
    # identical rows are kept (CDNOW has 255 such rows, all genuine same-day purchases).
    distinct = "DISTINCT " if schema.ORDER_ID in resolved and deduplicate else ""
    order_key = f", {_ORDER_KEY}" if schema.ORDER_ID in resolved else ""
    return (
        f"SELECT {contract_cols}{order_key} FROM typed_transactions "
        f"WHERE {_keep_condition(config)}",
        f"SELECT {distinct}{contract_cols} FROM clean_transactions",
    )


def _line_columns(resolved: dict[str, str]) -> list[str]:
    """The columns of a line that de-duplication compares, the order id as its key."""
    optional = [c for c in schema.OPTIONAL_TRANSACTION_COLUMNS if c in resolved]
    columns = [*schema.REQUIRED_TRANSACTION_COLUMNS, *optional]
    return [_ORDER_KEY if c == schema.ORDER_ID else c for c in columns]


def _kept_lines_sql(
    resolved: dict[str, str], deduplicate: bool, bought: BoughtBits = NO_BOUGHT_BITS
) -> str:
    """SELECT of `kept_lines`, what `daily` reads: the lines of `transactions`, with the order
    id as its key (`_typed_select`) and only the columns `daily` needs (those of `bought`
    among them).

    `deduplicate` False is for logs known to hold no two identical lines: the same rows as
    `transactions`, without the cost of a DISTINCT over every column.
    """
    if schema.ORDER_ID not in resolved:
        source = "clean_transactions"  # identical rows are all kept: nothing to remove
    elif deduplicate:
        source = f"(SELECT DISTINCT {', '.join(_line_columns(resolved))} FROM clean_transactions)"
    else:
        source = "clean_transactions"
    columns = [*schema.REQUIRED_TRANSACTION_COLUMNS]
    if schema.ORDER_ID in resolved:
        columns.append(f"{_ORDER_KEY} AS {schema.ORDER_ID}")
    if schema.QUANTITY in resolved:
        columns.append(schema.QUANTITY)
    columns += [c for c in (schema.PRODUCT, schema.CHANNEL) if c in bought.values]
    return f"SELECT {', '.join(columns)} FROM {source}"


@dataclass(frozen=True)
class CleaningSql:
    """The statements of validation and cleaning, for an engine other than this module's
    DuckDB connection (`clv.features.spark` transpiles them). Each is one SELECT:

    counts         `validation_counts_sql` over `raw_transactions`
    typed          `typed_transactions`: the contract columns, typed, text trimmed
    clean          `clean_transactions`: the rows cleaning keeps (from `typed_transactions`)
    transactions   `transactions`: identical order lines removed (from `clean_transactions`)
    unique         `transactions` for a log whose counts show no identical lines
                   (`no_identical_lines`): the same rows, without the DISTINCT
    """

    counts: str
    typed: str
    clean: str
    transactions: str
    unique: str
    optional_columns: frozenset[str]
    trimmable: tuple[str, ...]

    def no_identical_lines(self, counts: Sequence[int]) -> bool:
        """Whether `counts` (the row of `self.counts`) show that `unique` may be used."""
        return no_identical_lines(counts, self.trimmable)


def cleaning_sql(
    types: dict[str, str],
    config: FeatureConfig | None = None,
    line_hash: str = "hash",
    columns: ColumnMapping | None = None,
    source: str = "raw_transactions",
) -> CleaningSql:
    """`CleaningSql` for a log whose columns are mapped by `columns` (by default, they carry
    the contract's names; source column -> DuckDB type in `types`): the same rules as
    `load_transactions`. `typed` reads `source`. `line_hash` names a 64-bit hash function of
    the engine (see `_duplicate_check_sql`)."""
    config, columns = config or FeatureConfig(), columns or ColumnMapping()
    resolved = resolve_columns(list(types), columns, "the log")
    clean, transactions = _clean_sql(resolved, config)
    from_zone = naive_zone(columns, config)
    return CleaningSql(
        counts=validation_counts_sql(resolved, columns, types, config, line_hash),
        typed=f"SELECT {_typed_select(resolved, columns, types, from_zone=from_zone)} "
        f"FROM {source}",
        clean=clean,
        transactions=transactions,
        unique=_clean_sql(resolved, config, deduplicate=False)[1],
        optional_columns=frozenset(c for c in schema.OPTIONAL_TRANSACTION_COLUMNS if c in resolved),
        trimmable=tuple(_trimmable(resolved, types)),
    )


def trusted_log_sql(
    source: str,
    types: dict[str, str],
    columns: ColumnMapping | None = None,
    config: FeatureConfig | None = None,
) -> tuple[str, frozenset[str]]:
    """CTEs `typed_transactions, clean_transactions, transactions, daily[, first_use]` over
    `source`, a relation of an already validated log (source column -> DuckDB type in `types`).

    The same SQL as the views and tables `transactions_from_frame` creates (`cleaning_sql`),
    without its checks: nothing is counted and no bad value raises, so use it only for logs
    whose values are known to be valid (e.g. the service's request models checked them).
    Prefix a feature query with these CTEs to compute features in one statement. Returns the
    CTE text (for a `WITH`) and the optional columns present. Products and channels are
    counted from `first_use` (the statement is prepared before any value is known, so the
    daily rows carry no `sql.BoughtBits` mask).
    """
    statements = cleaning_sql(types, config, columns=columns, source=source)
    optional = statements.optional_columns
    ctes = [
        f"typed_transactions AS ({statements.typed})",
        f"clean_transactions AS ({statements.clean})",
        f"transactions AS ({statements.transactions})",
        f"daily AS ({daily_sql(optional)})",
    ]
    first_use = first_use_sql(optional, source="clean_transactions")
    if first_use is not None:
        ctes.append(f"first_use AS ({first_use})")
    return ",\n".join(ctes), optional


def bought_bits(
    run: Callable[[str], Sequence[Sequence[Any]]],
    optional_columns: Iterable[str],
    source: str = "clean_transactions",
) -> BoughtBits:
    """The `BoughtBits` of a log's product and channel columns: those whose values fit.
    `run` returns the rows of a query (DuckDB's or Spark's) over `source`, a relation of the
    log's kept lines (duplicates may remain).

    Both columns' values are read in one pass, as their distinct combinations: a pass over a
    CSV log read by Spark parses it again (on DuckDB, 2.1-2.4 s a pass on the 10M-line log
    before its lines were parsed once, `PARSED_LINES`). Columns that fit (at
    most 63 values, and NULL) make at most 64 x 64 combinations; more, and some column does
    not fit, so each is read alone, where DuckDB stops at 64 values."""
    has = set(optional_columns)
    present: list[str] = [c for c in (schema.PRODUCT, schema.CHANNEL) if c in has]
    fitting = (BOUGHT_BITS + 1) ** len(present)
    rows = run(distinct_values_sql(present, source, fitting + 1)) if present else []
    if len(rows) <= fitting:  # every combination, so every value
        found = {c: {str(r[i]) for r in rows if r[i] is not None} for i, c in enumerate(present)}
        return BoughtBits.fitting(found)
    alone = {
        c: [str(r[0]) for r in run(distinct_values_sql([c], source, BOUGHT_BITS + 1))]
        for c in present
    }
    return BoughtBits.fitting(alone)


def _create_daily(
    con: duckdb.DuckDBPyConnection,
    resolved: dict[str, str],
    optional: Sequence[str],
    deduplicate: bool,
    bought: BoughtBits,
) -> None:
    """The view `kept_lines` and the table `daily` (`sql.daily_sql`) built from it; `optional`
    are the optional contract columns of `resolved`."""
    lines = _kept_lines_sql(resolved, deduplicate, bought)
    con.execute(f"CREATE OR REPLACE TEMP VIEW kept_lines AS {lines}")
    con.execute(
        "CREATE OR REPLACE TEMP TABLE daily AS " + daily_sql(optional, "kept_lines", bought)
    )


def _refuse_repeated(
    resolved: dict[str, str],
    available: Sequence[str],
    repeated: Callable[[Sequence[str]], tuple[str, str] | None],
) -> None:
    """Refuse a log that has a column it reads twice under one name (DuckDB names the second
    `name_1`, so which one is read would be a guess). Looked for only when such a twin is
    there: it costs nothing otherwise."""
    twins = [source for source in resolved.values() if f"{source}_1" in available]
    found = repeated(twins) if twins else None
    if found is None:
        return
    name, where = found
    role = next(column for column, source in resolved.items() if source == name)
    raise TransactionLogError(
        f"column '{name}' appears more than once in {where}, so which one holds the {role} "
        "is not clear: rename the others",
        field=role,
    )


# The table of a text log's typed lines while it is checked and its daily rows are built
# (`_validate`'s parse_once), and its column of line hashes (`_parsed_lines_sql`).
PARSED_LINES = "parsed_lines"
PARSED_HASH = "_line_hash"


def _validate(
    con: duckdb.DuckDBPyConnection,
    columns: ColumnMapping,
    config: FeatureConfig,
    where: str,
    repeated: Callable[[Sequence[str]], tuple[str, str] | None],
    parse_once: bool = False,
) -> TransactionLog:
    """Check the log in `raw_transactions` and register its views and daily rows. `repeated`
    says which of some source columns the log holds more than once, and where. With
    `parse_once` (text logs: CSV), the typed lines are kept in a table while the log is
    checked and its daily rows built, rather than parsed by each of those passes."""
    try:
        con.execute(session_timezone_sql(config.timezone))
    except duckdb.Error as exc:  # a zone Python knows and DuckDB's ICU does not
        raise TransactionLogError(
            f"time zone '{config.timezone}' is unknown to DuckDB: {exc}", field="timezone"
        ) from exc
    from_zone = naive_zone(columns, config)
    try:
        described = con.execute("DESCRIBE SELECT * FROM raw_transactions").fetchall()
        available = [r[0] for r in described]
        types = {r[0]: str(r[1]) for r in described}
    except duckdb.Error as exc:
        raise _unreadable(where, exc, columns) from exc
    resolved = resolve_columns(available, columns, where)
    _refuse_repeated(resolved, available, repeated)

    def create_typed(trimmed: frozenset[str] = frozenset()) -> None:
        con.execute(
            "CREATE OR REPLACE TEMP VIEW typed_transactions AS SELECT\n    "
            + _typed_select(resolved, columns, types, trimmed, from_zone)
            + "\nFROM raw_transactions"
        )

    if not parse_once:
        create_typed()
        return _check_and_register(con, columns, config, where, resolved, types, create_typed)
    try:
        lines = _parsed_lines_sql(resolved, columns, types, config)
        con.execute(f"CREATE OR REPLACE TEMP TABLE {PARSED_LINES} AS {lines}")
    except duckdb.Error as exc:
        raise _unreadable(where, exc, columns) from exc
    con.execute(
        f"CREATE OR REPLACE TEMP VIEW typed_transactions AS {_parsed_view_sql(resolved, types)}"
    )
    try:
        return _check_and_register(con, columns, config, where, resolved, types, None)
    finally:
        # the parsed lines are let go once the daily rows are built: the views read the file
        create_typed()
        con.execute(f"DROP TABLE IF EXISTS {PARSED_LINES}")


def _check_and_register(
    con: duckdb.DuckDBPyConnection,
    columns: ColumnMapping,
    config: FeatureConfig,
    where: str,
    resolved: dict[str, str],
    types: dict[str, str],
    retype: Callable[[frozenset[str]], None] | None,
) -> TransactionLog:
    """Validate the lines of `typed_transactions`, refusing bad values, and register the
    cleaned log: its views, `daily` and `first_use`. With `retype`, `typed_transactions`
    reads the raw log, and is made again to skip trimming the text columns that need none;
    without, it reads the lines parsed once (`PARSED_LINES`)."""
    trimmable = _trimmable(resolved, types)
    parsed = None if retype else PARSED_LINES
    try:
        counts_sql = validation_counts_sql(resolved, columns, types, config, source=parsed)
        counts = con.execute(counts_sql).fetchall()[0]
    except duckdb.Error as exc:
        raise _unreadable(where, exc, columns) from exc
    assert counts is not None
    n, ts_bad, amount_bad, amount_inf, quantity_bad = (int(c) for c in counts[:5])
    clean_text = frozenset(c for c, k in zip(trimmable, counts[11:], strict=False) if k == 0)
    no_duplicates = no_identical_lines(counts, trimmable)
    if clean_text and retype:
        # Nothing to trim in these columns: later scans read them as they are (cheaper).
        retype(clean_text)
    if n == 0:
        raise TransactionLogError(f"{where} has no rows", field="--transactions")
    src_ts, src_amt = resolved[schema.TIMESTAMP], resolved[schema.AMOUNT]
    if ts_bad:
        fmt = columns.timestamp_format
        expected = (
            f"in format '{fmt}'" if fmt else "as ISO dates or timestamps (set --timestamp-format)"
        )
        cast = _timestamp_from_text("CAST(_value AS VARCHAR)", fmt)
        _raise_first_bad(
            con,
            src_ts,
            f"NOT {_blank('CAST(_value AS VARCHAR)')} AND {cast} IS NULL",
            schema.TIMESTAMP,
            ts_bad,
            f"cannot be parsed {expected}",
        )
    separator, currency = columns.decimal_separator, columns.currency_symbol
    number = _number_from_text("_value", separator)
    money = _number_from_text("_value", separator, currency)
    present = f"NOT {_blank('CAST(_value AS VARCHAR)')}"
    not_a_number = f"{present} AND {number} IS NULL"

    def amount_hint(value: str) -> str:
        return _number_hint(value, separator, suggest_currency=currency is None)

    def refuse_quantities() -> None:
        _raise_first_bad(
            con,
            resolved[schema.QUANTITY],
            not_a_number,
            schema.QUANTITY,
            quantity_bad,
            "are not numbers",
            lambda value: _number_hint(value, separator),
        )

    # With a unit price, a quantity that is not a number leaves the amount NULL too: it is
    # named first, as the cause.
    priced = columns.unit_price is not None
    if quantity_bad and priced:
        refuse_quantities()
    amount_is = UNIT_PRICE if priced else schema.AMOUNT
    if amount_bad:
        _raise_first_bad(
            con,
            src_amt,
            f"{present} AND {money} IS NULL",
            amount_is,
            amount_bad,
            "are not numbers",
            amount_hint,
        )
    if amount_inf:
        _raise_first_bad(
            con,
            src_amt,
            _not_finite(money),
            amount_is,
            amount_inf,
            not_finite_problem(columns),
        )
    if quantity_bad:
        refuse_quantities()
    optional = [c for c in schema.OPTIONAL_TRANSACTION_COLUMNS if c in resolved]
    clean, transactions = _clean_sql(resolved, config)
    con.execute(f"CREATE OR REPLACE TEMP VIEW clean_transactions AS {clean}")
    con.execute(f"CREATE OR REPLACE TEMP VIEW transactions AS {transactions}")
    bought = bought_bits(lambda query: con.execute(query).fetchall(), optional)
    _create_daily(con, resolved, optional, deduplicate=not no_duplicates, bought=bought)
    first_use = first_use_sql(optional, source="clean_transactions", bought=bought)
    if first_use is not None:
        con.execute("CREATE OR REPLACE TEMP TABLE first_use AS " + first_use)
    stats = con.execute("SELECT SUM(n_transactions), MIN(day), MAX(day) FROM daily").fetchall()[0]
    assert stats is not None
    kept_rows = int(stats[0] or 0)
    report = cleaning_report(counts, kept_rows, config)
    if kept_rows == 0:
        raise TransactionLogError(
            f"{where} has no usable rows after cleaning ({report.summary()})",
            field="--transactions",
        )
    logger.info("transactions from %s: %s", where, report.summary())
    return TransactionLog(
        con=con,
        optional_columns=frozenset(optional),
        first_date=stats[1],
        last_date=stats[2],
        report=report,
        bought=bought,
    )
