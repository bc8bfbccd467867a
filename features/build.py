"""Point-in-time customer features and future labels from a validated transaction log.

Features at a cutoff read only days <= cutoff; labels read only days in
(cutoff, cutoff + horizon]. Both run the SQL of `sql.py` in the log's DuckDB connection.
"""

from __future__ import annotations

import calendar
import json
import logging
from collections.abc import Iterable, Sequence
from datetime import date, timedelta
from typing import TypeAlias

import pandas as pd

from . import schema
from .config import FeatureConfig
from .errors import TransactionLogError
from .sql import (
    NO_BOUGHT_BITS,
    BoughtBits,
    feature_names,
    feature_sql,
    label_sql,
    string_literal,
)
from .transactions import TransactionLog

logger = logging.getLogger(__name__)

Cutoffs: TypeAlias = Sequence[date] | pd.DataFrame

# How a feature table is written to Parquet (DuckDB's COPY options). Most feature columns are
# measurements with as many values as rows, for which DuckDB tries a dictionary until it
# outgrows the default limit; stopping at 1,024 entries keeps dictionaries for the columns
# that have few values (stage, cutoff, counts, dates) and writes a million-row table in 0.69 s
# instead of 0.92 s, 8% larger (10M-line synthetic log, `benchmarks/features_bench.py`).
PARQUET_OPTIONS = "FORMAT PARQUET, DICTIONARY_SIZE_LIMIT 1024"
# The key of a feature file's Parquet key-value metadata that says how it was built.
METADATA_KEY = "clv"


def parquet_options(metadata: dict[str, object] | None = None) -> str:
    """DuckDB COPY options that write a feature table (`PARQUET_OPTIONS`), with `metadata`
    as JSON under `METADATA_KEY` in the file's key-value metadata (read it back with
    `pyarrow.parquet.read_schema(path).metadata[b"clv"]`)."""
    if metadata is None:
        return PARQUET_OPTIONS
    text = json.dumps(metadata, sort_keys=True, default=str)
    return f"{PARQUET_OPTIONS}, KV_METADATA {{{METADATA_KEY}: {string_literal(text)}}}"


def cutoff_range(
    start: date, end: date, step_days: int | None = None, *, step_months: int | None = None
) -> list[date]:
    """Cutoff dates from start to end inclusive, every `step_days` days or every `step_months`
    months (one of the two). Months keep start's day of the month, or the last day where a
    month is shorter; a start on the last day of its month gives month ends (Jan 31, Feb 29,
    Mar 31, ...), as monthly snapshots are usually taken."""
    if (step_days is None) == (step_months is None):
        raise TransactionLogError(
            "give the cutoff step in days or in months (one of the two)", "--cutoff-step-days"
        )
    step, option = (step_days, "days") if step_months is None else (step_months, "months")
    if step is None or step <= 0:
        raise TransactionLogError(
            f"the cutoff step must be a positive number of {option}", f"--cutoff-step-{option}"
        )
    if end < start:
        raise TransactionLogError(
            f"cutoff end {end} is before cutoff start {start}", "--cutoff-end"
        )
    out, current, i = [], start, 0
    while current <= end:
        out.append(current)
        i += 1  # each cutoff counted from start: no drift (Jan 31, Feb 29, Mar 31, not Mar 29)
        if step_months is None:
            current = start + timedelta(days=i * step)
        else:
            current = _add_months(start, i * step)
    return out


def _add_months(day: date, months: int) -> date:
    """`day` moved by `months` calendar months (see `cutoff_range`)."""
    month_end = day.day == calendar.monthrange(day.year, day.month)[1]
    years, month0 = divmod(day.month - 1 + months, 12)
    year, month = day.year + years, month0 + 1
    last = calendar.monthrange(year, month)[1]
    return date(year, month, last if month_end else min(day.day, last))


def check_cutoffs(
    log: TransactionLog, cutoffs: Sequence[date], horizon_days: int | None = None
) -> None:
    """Refuse cutoffs outside the log, and horizons that run past its last day."""
    if not cutoffs:
        raise TransactionLogError("give at least one cutoff date", field="--cutoff")
    for cutoff in cutoffs:
        if cutoff < log.first_date or cutoff > log.last_date:
            raise TransactionLogError(
                f"cutoff {cutoff} is outside the data, which runs from {log.first_date} "
                f"to {log.last_date}",
                field="--cutoff",
            )
        if horizon_days is not None:
            if horizon_days <= 0:
                raise TransactionLogError("--horizon-days must be positive", field="--horizon-days")
            end = cutoff + timedelta(days=horizon_days)
            if end > log.last_date:
                raise TransactionLogError(
                    f"a {horizon_days}-day horizon after cutoff {cutoff} ends on {end}, past the "
                    f"last day of the data ({log.last_date}); the label would be incomplete. "
                    f"Use an earlier cutoff or a horizon of at most "
                    f"{(log.last_date - cutoff).days} days",
                    field="--horizon-days",
                )


def _pairs_frame(cutoffs: pd.DataFrame) -> pd.DataFrame:
    """(customer_id, cutoff) pairs as str ids and dates."""
    return pd.DataFrame(
        {
            schema.CUSTOMER_ID: cutoffs[schema.CUSTOMER_ID].astype(str).to_numpy(),
            schema.CUTOFF: pd.to_datetime(cutoffs[schema.CUTOFF]).dt.date.to_numpy(),
        }
    )


def _register_cutoffs(log: TransactionLog, cutoffs: Cutoffs) -> str | None:
    """Register `pairs` (a frame of pairs) or `cutoff_dates` (a list of dates).

    Returns the relation of dates to give `sql.feature_sql` as `cutoffs`: None for pairs.
    """
    con = log.con
    if isinstance(cutoffs, pd.DataFrame):
        # One cutoff per customer (serving: each customer has its own as-of date).
        con.register("_pairs_frame", _pairs_frame(cutoffs))
        con.execute(
            "CREATE OR REPLACE TEMP TABLE pairs AS SELECT CAST(customer_id AS VARCHAR) AS "
            "customer_id, CAST(cutoff AS DATE) AS cutoff FROM _pairs_frame"
        )
        con.unregister("_pairs_frame")
        return None
    # Every customer acquired by each date: the queries read the dates alone (see
    # `sql.feature_sql`), no table of pairs is built.
    con.register("_cutoffs_frame", pd.DataFrame({schema.CUTOFF: list(cutoffs)}))
    con.execute(
        "CREATE OR REPLACE TEMP TABLE cutoff_dates AS "
        "SELECT DISTINCT CAST(cutoff AS DATE) AS cutoff FROM _cutoffs_frame"
    )
    con.unregister("_cutoffs_frame")
    return "cutoff_dates"


def panel_query(
    log: TransactionLog,
    cutoffs: Cutoffs,
    horizon_days: int | None,
    config: FeatureConfig,
    ordered: bool = False,
) -> str:
    """Register the cutoffs; return one SELECT of features (+ labels).

    Model-input features are cast to DOUBLE so every engine and file format sees one schema.
    Rows come in no particular order unless `ordered` (then by cutoff, customer): a file
    written from an unordered query is written by every thread at once, while a sorted one
    waits for the sort and is then written by one thread (0.4 s of 3 on 10M transactions).
    """
    dates = _register_cutoffs(log, cutoffs)
    return panel_sql(
        config,
        log.optional_columns,
        horizon_days,
        ordered=ordered,
        cutoffs=dates,
        bought=log.bought,
    )


def panel_sql(
    config: FeatureConfig,
    optional_columns: Iterable[str],
    horizon_days: int | None,
    relations: str = "",
    ordered: bool = True,
    cutoffs: str | None = None,
    bought: BoughtBits = NO_BOUGHT_BITS,
) -> str:
    """The SELECT of `panel_query`; `relations` (CTEs) may define the relations it reads.

    Sorted by cutoff, customer unless `ordered` is False; `cutoffs` and `bought` as in
    `sql.feature_sql`.
    """
    names = feature_names(config)
    select = [
        *(f"f.{c}" for c in (*schema.KEY_COLUMNS, *schema.DESCRIPTIVE_COLUMNS)),
        *(f"CAST(f.{n} AS DOUBLE) AS {n}" for n in names),
    ]
    prefix = f"WITH {relations},\n" if relations else "WITH "
    sql = f"{prefix}features AS ({feature_sql(config, optional_columns, cutoffs, bought)})"
    join = ""
    if horizon_days is not None:
        sql += f", labels AS ({label_sql(horizon_days, cutoffs)})"
        # A (customer, cutoff) without a row in `labels` has no day in the horizon.
        days = f"COALESCE(l.{schema.FUTURE_PURCHASE_DAYS}, 0)"
        select += [
            f"CAST(COALESCE(l.{schema.FUTURE_SPEND}, 0) AS DOUBLE) AS {schema.FUTURE_SPEND}",
            f"CAST({days} AS BIGINT) AS {schema.FUTURE_PURCHASE_DAYS}",
            f"CAST(CASE WHEN {days} = 0 THEN 1 ELSE 0 END AS BIGINT) AS {schema.CHURNED}",
        ]
        join = "LEFT JOIN labels l ON l.customer_id = f.customer_id AND l.cutoff = f.cutoff"
    columns = ",\n    ".join(select)
    order = "\nORDER BY f.cutoff, f.customer_id" if ordered else ""
    return f"{sql}\nSELECT\n    {columns}\nFROM features f {join}{order}"


def build_features(
    log: TransactionLog, cutoffs: Cutoffs, config: FeatureConfig | None = None
) -> pd.DataFrame:
    """One row per (customer, cutoff): keys, descriptive columns, then `feature_names(config)`.

    `cutoffs` is a list of dates (every customer whose first purchase is on or before a cutoff
    gets a row for it) or a frame of (customer_id, cutoff) pairs (e.g. one as-of date per
    customer). Sorted by cutoff, customer. Columns are documented in `sql.feature_sql`.
    """
    config = config or FeatureConfig()
    query = panel_query(log, cutoffs, None, config, ordered=True)
    return _normalise(log.con.execute(query).df())


def build_panel(
    log: TransactionLog,
    cutoffs: Sequence[date],
    horizon_days: int | None,
    config: FeatureConfig | None = None,
) -> pd.DataFrame:
    """Features, and labels when a horizon is given, for each customer at each cutoff.

    Refuses cutoffs outside the data and horizons that run past its last day.
    """
    config = config or FeatureConfig()
    check_cutoffs(log, cutoffs, horizon_days)
    query = panel_query(log, cutoffs, horizon_days, config, ordered=True)
    return _normalise(log.con.execute(query).df())


def _normalise(frame: pd.DataFrame) -> pd.DataFrame:
    """Ids as strings and dates as datetime64, whatever the engine returned."""
    frame[schema.CUSTOMER_ID] = frame[schema.CUSTOMER_ID].astype(str)
    for column in (schema.CUTOFF, schema.FIRST_PURCHASE_DATE, schema.LAST_PURCHASE_DATE):
        frame[column] = pd.to_datetime(frame[column])
    return frame


def check_feature_invariants(frame: pd.DataFrame) -> None:
    """Raise ValueError naming the first broken invariant of an RFM feature table."""
    f, r, t = frame[schema.FREQUENCY], frame[schema.RECENCY], frame[schema.T]
    problems = {
        "frequency < 0": f < 0,
        "recency < 0": r < 0,
        "recency > T": r > t,
        "recency != 0 where frequency == 0": (f == 0) & (r != 0),
        "monetary_value != 0 where frequency == 0": (f == 0) & (frame[schema.MONETARY_VALUE] != 0),
    }
    for name, mask in problems.items():
        if bool(mask.any()):
            first = frame.loc[mask, schema.CUSTOMER_ID].iloc[0]
            raise ValueError(f"feature invariant broken: {name} (customer {first})")
