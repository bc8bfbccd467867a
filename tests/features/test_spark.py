"""Cleaning, features and labels, transpiled to Spark SQL, on a local Spark: DuckDB's results.

A real Spark (pyspark, local mode, one JVM for the module) cleans each raw log with
`spark.clean_on_spark` and builds `daily`, `first_use` and the panel with
`spark.panel_on_spark`; the cleaning report and every column of the panel must equal those of
the DuckDB loader and build on the same log.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import date, datetime

import numpy as np
import pandas as pd
import pytest
from clv.features import build, schema, spark, transactions
from clv.features.config import ColumnMapping, FeatureConfig
from clv.features.datasets import CDNOW_COLUMNS, cdnow_master_path
from clv.features.errors import TransactionLogError
from clv.features.synthetic import SyntheticConfig, generate_frames
from pyspark.sql import DataFrame, SparkSession


@pytest.fixture(scope="module")
def session() -> Iterator[SparkSession]:
    builder = (
        SparkSession.builder.master("local[2]")
        .appName("clv-tests")
        .config("spark.sql.session.timeZone", "UTC")
        .config("spark.sql.shuffle.partitions", "4")
        .config("spark.ui.enabled", "false")
        .config("spark.driver.bindAddress", "127.0.0.1")
        .config("spark.driver.host", "127.0.0.1")
    )
    session = builder.getOrCreate()
    session.sparkContext.setLogLevel("ERROR")
    yield session
    session.stop()


def _synthetic_log(dirty: bool = True) -> pd.DataFrame:
    """All seven columns, with returns, several lines per order, lines without an order id or
    product, and a day of two orders. Unless not `dirty`, also duplicated lines and rows
    cleaning drops: without a customer id (NULL or blank), timestamp or amount, and of amount
    0. Ids are text, one of them then padded with spaces (trimmed: the same customer)."""
    frame, _ = generate_frames(SyntheticConfig(customers=300, seed=7, return_share=0.1))
    frame = frame.astype({"order_id": "string", "product": "string", "customer_id": "string"})
    frame["amount"] = frame["amount"].astype("Float64")
    frame.loc[frame.index[::17], "order_id"] = None
    frame.loc[frame.index[::23], "product"] = None
    first = frame.iloc[0]
    second_order = first.copy()
    second_order["order_id"], second_order["timestamp"] = "-1", first["timestamp"].normalize()
    dirty_rows = frame.iloc[100:106].copy()
    padded = f" {first['customer_id']} "
    dirty_rows["customer_id"] = [None, "  ", padded, *dirty_rows["customer_id"][3:]]
    dirty_rows.loc[dirty_rows.index[3], "timestamp"] = pd.NaT
    dirty_rows.loc[dirty_rows.index[4], "amount"] = None
    dirty_rows.loc[dirty_rows.index[5], "amount"] = 0.0
    dirty_rows["order_id"] = "dirty"
    parts = [frame, second_order.to_frame().T]
    if dirty:
        parts += [frame.iloc[:40], dirty_rows]
    return pd.concat(parts, ignore_index=True).astype(frame.dtypes.to_dict())


def _many_products(frame: pd.DataFrame) -> pd.DataFrame:
    """`frame` with its products spread over 70 names, one in seven with a quote and a
    backslash (SQL literals must escape them on both engines)."""
    number = pd.Series(np.arange(len(frame)) % 70, index=frame.index)
    name = np.where(number % 7 == 0, "kid's \\ toys ", "p") + number.astype(str)
    return frame.assign(product=frame["product"].where(frame["product"].isna(), name))


def _cdnow_log() -> pd.DataFrame:
    """The bundled CDNOW log's first 3,000 customers: quantity, no order id, no product."""
    frame = pd.read_csv(cdnow_master_path(), dtype={"customer_id": str})
    keep = frame["customer_id"].isin(frame["customer_id"].unique()[:3000])
    frame = frame[keep].rename(columns={CDNOW_COLUMNS.timestamp: schema.TIMESTAMP})
    return frame.assign(timestamp=pd.to_datetime(frame[schema.TIMESTAMP]))


LOGS = {
    "synthetic, seven columns": (
        _synthetic_log,
        [date(2023, 6, 30), date(2024, 1, 31), date(2024, 6, 30)],
        90,
        FeatureConfig(),
    ),
    # no identical lines and no text to trim: cleaning skips the DISTINCT, as DuckDB does
    "synthetic, seven columns, clean": (
        lambda: _synthetic_log(dirty=False),
        [date(2024, 1, 31)],
        60,
        FeatureConfig(),
    ),
    # 70 products, some named with a quote and a backslash: counted from first_use, and the
    # channels from the daily mask (sql.BoughtBits)
    "synthetic, more products than the mask holds": (
        lambda: _many_products(_synthetic_log()),
        [date(2023, 9, 30), date(2024, 6, 30)],
        30,
        FeatureConfig(),
    ),
    "synthetic, channel only, zero amounts dropped": (
        lambda: _synthetic_log().drop(columns=["order_id", "quantity", "product"]),
        [date(2024, 3, 31)],
        30,
        FeatureConfig(drop_zero_amounts=True),
    ),
    "cdnow, quantity only": (
        _cdnow_log,
        [date(1997, 3, 31), date(1997, 9, 30)],
        180,
        FeatureConfig(),
    ),
}


def _sorted(frame: pd.DataFrame) -> pd.DataFrame:
    frame = build._normalise(frame.copy())
    return frame.sort_values([schema.CUTOFF, schema.CUSTOMER_ID], ignore_index=True)


def _assert_same_panel(expected: pd.DataFrame, got: pd.DataFrame) -> None:
    assert list(got.columns) == list(expected.columns)
    assert len(got) == len(expected) > 150
    for column in expected.columns:
        want, have = expected[column], got[column]
        if want.dtype.kind == "f":
            same = np.isclose(want, have.astype(float), rtol=1e-9, atol=1e-9, equal_nan=True)
        else:
            same = (want.astype(str) == have.astype(str)).to_numpy()
        assert same.all(), f"{column}: {(~same).sum()} rows differ, e.g. row {np.argmin(same)}"


@pytest.mark.parametrize("name", list(LOGS))
def test_spark_cleans_and_builds_the_duckdb_panel(session: SparkSession, name: str) -> None:
    make, cutoffs, horizon_days, config = LOGS[name]
    raw = make()
    log = transactions.transactions_from_frame(raw, config=config)
    expected = _sorted(build.build_panel(log, cutoffs, horizon_days, config))
    cleaned = spark.clean_on_spark(session, session.createDataFrame(raw), config)
    got = _sorted(spark.panel_on_spark(session, cleaned, cutoffs, horizon_days, config).toPandas())

    assert cleaned.report == log.report
    _assert_same_panel(expected, got)
    # the panel is not trivial: stages and label values vary, and features are NULL or not
    assert expected[schema.LIFECYCLE_STAGE].nunique() >= 3
    assert set(expected[schema.CHURNED]) == {0, 1}
    assert expected["ipt_std"].isna().any() and expected["ipt_std"].notna().any()


def test_spark_builds_the_panel_of_the_log_it_is_given(session: SparkSession) -> None:
    """Cleaning a second log in the session replaces the session's views; the first log's
    panel still reads its own lines (for its products' values and first purchases too)."""
    cutoffs, config = [date(2024, 1, 31)], FeatureConfig()
    first, second = _synthetic_log(), _many_products(_synthetic_log())
    cleaned = spark.clean_on_spark(session, session.createDataFrame(first), config)
    spark.clean_on_spark(session, session.createDataFrame(second), config)
    got = _sorted(spark.panel_on_spark(session, cleaned, cutoffs, None, config).toPandas())
    log = transactions.transactions_from_frame(first, config=config)
    _assert_same_panel(_sorted(build.build_panel(log, cutoffs, None, config)), got)
    assert got["n_products"].max() <= first["product"].nunique() < 70


def test_synthetic_log_exercises_cleaning_orders_products_and_returns() -> None:
    """What the Spark comparison above relies on the synthetic log to contain."""
    log = transactions.transactions_from_frame(
        _synthetic_log(), config=FeatureConfig(drop_zero_amounts=True)
    )
    assert log.report.dropped == {
        "missing customer id": 2,
        "missing timestamp": 1,
        "missing amount": 1,
        "zero amount": 1,
        "duplicate order lines": 40,
    }
    features = build.build_features(log, [date(2024, 6, 30)])
    assert (features["n_returns"] > 0).any()
    assert (features["n_orders"] < features["n_transactions"]).any()
    assert features["n_products"].max() > 1 and features["n_channels"].max() > 1
    two_orders = log.con.execute("SELECT MAX(n_orders) FROM daily").fetchall()[0][0]
    assert two_orders >= 2
    assert not features[schema.CUSTOMER_ID].str.startswith(" ").any()
    # products and channels counted from the daily mask, or products from first_use
    assert set(log.bought.values) == {schema.PRODUCT, schema.CHANNEL}
    many = transactions.transactions_from_frame(_many_products(_synthetic_log()))
    assert set(many.bought.values) == {schema.CHANNEL}


def _frame(session: SparkSession, **columns: object) -> DataFrame:
    base = {
        "customer_id": ["a", "a", "b"],
        "timestamp": pd.to_datetime(["2024-01-01", "2024-01-02", "2024-01-03"]),
        "amount": [1.0, 2.0, 3.0],
    }
    return session.createDataFrame(pd.DataFrame({**base, **columns}))


def test_spark_names_a_missing_column(session: SparkSession) -> None:
    frame = session.createDataFrame(pd.DataFrame({"customer_id": ["a"], "amount": [1.0]}))
    with pytest.raises(TransactionLogError, match="timestamp") as error:
        spark.panel_on_spark(session, frame, [date(2024, 1, 1)])
    assert error.value.field == schema.TIMESTAMP


@pytest.mark.parametrize(
    ("columns", "field", "message"),
    [
        ({"timestamp": ["2024-01-01"] * 3}, schema.TIMESTAMP, "is string, not a timestamp"),
        ({"amount": ["1", "2", "3"]}, schema.AMOUNT, "is string, not numeric"),
        ({"quantity": [True, False, True]}, schema.QUANTITY, "not numeric"),
    ],
)
def test_spark_refuses_what_it_cannot_read(
    session: SparkSession, columns: dict[str, object], field: str, message: str
) -> None:
    with pytest.raises(TransactionLogError) as error:
        spark.clean_on_spark(session, _frame(session, **columns))
    assert message in str(error.value)
    assert error.value.field == field


def test_spark_refuses_nan_or_infinite_amounts(session: SparkSession) -> None:
    # Built from rows: a pandas frame would reach Spark with NaN as NULL (a missing amount).
    day = datetime(2024, 1, 1)
    rows = [("a", day, 1.0), ("a", day, float("nan")), ("b", day, float("-inf"))]
    frame = session.createDataFrame(rows, "customer_id string, timestamp timestamp, amount double")
    with pytest.raises(TransactionLogError, match=r"2 value\(s\) are NaN or infinite") as error:
        spark.clean_on_spark(session, frame)
    assert error.value.field == schema.AMOUNT


def test_spark_refuses_a_log_with_nothing_left(session: SparkSession) -> None:
    with pytest.raises(TransactionLogError, match="no usable rows.*3 missing amount"):
        missing = pd.array([None, None, None], dtype="Float64")
        spark.clean_on_spark(session, _frame(session, amount=missing))


_RENAMED = {
    "customer_id": "client",
    "timestamp": "ordered_at",
    "order_id": "invoice",
    "quantity": "units",
    "product": "sku",
    "channel": "shop",
}


def _renamed_log(unit_price: bool) -> tuple[pd.DataFrame, ColumnMapping]:
    """The dirty synthetic log under other column names, its amount as `total` or, with
    `unit_price`, as a `price` that the quantity multiplies; and the mapping that reads it."""
    raw = _synthetic_log().rename(columns=_RENAMED)
    if unit_price:
        price = (raw["amount"] / raw["units"]).where(raw["units"] != 0, raw["amount"])
        mapping = ColumnMapping(**_RENAMED, unit_price="price")
        return raw.drop(columns="amount").assign(price=price), mapping
    return raw.rename(columns={"amount": "total"}), ColumnMapping(**_RENAMED, amount="total")


@pytest.mark.parametrize("unit_price", [False, True], ids=["amount", "unit price"])
def test_spark_reads_mapped_columns_as_the_duckdb_loader(
    session: SparkSession, unit_price: bool
) -> None:
    """A log under its own column names, read through the same ColumnMapping by both
    engines: the same cleaning report and panel, under the contract's names."""
    raw, mapping = _renamed_log(unit_price)
    cutoffs, config = [date(2023, 9, 30), date(2024, 3, 31)], FeatureConfig()
    log = transactions.transactions_from_frame(raw, mapping, config)
    expected = _sorted(build.build_panel(log, cutoffs, 60, config))
    cleaned = spark.clean_on_spark(session, session.createDataFrame(raw), config, mapping)
    got = _sorted(spark.panel_on_spark(session, cleaned, cutoffs, 60, config).toPandas())

    assert cleaned.report == log.report
    assert cleaned.report.dropped["duplicate order lines"] == 40
    assert cleaned.transactions.columns[:3] == [schema.CUSTOMER_ID, schema.TIMESTAMP, "amount"]
    _assert_same_panel(expected, got)
    assert expected["n_orders"].notna().all() and expected["n_products"].max() > 1
    # without the mapping, the same frame is refused, naming the missing column
    with pytest.raises(TransactionLogError, match="'customer_id' for customer_id not found"):
        spark.panel_on_spark(session, session.createDataFrame(raw), cutoffs)


@pytest.mark.parametrize(
    ("mapping", "field", "message"),
    [
        (ColumnMapping(customer_id="client"), schema.CUSTOMER_ID, "ColumnMapping(customer_id=...)"),
        (ColumnMapping(product="sku"), schema.PRODUCT, "column 'sku' for product not found"),
        (ColumnMapping(amount="customer_id"), schema.AMOUNT, "both customer_id"),
        (ColumnMapping(timestamp_format="%Y-%m-%d"), "timestamp_format", "to_timestamp"),
        (ColumnMapping(naive_timezone="Europe/Paris"), "naive_timezone", "to_utc_timestamp"),
        (ColumnMapping(amount="label"), schema.AMOUNT, "column 'label' (amount) of the Spark log"),
    ],
)
def test_spark_names_what_a_mapping_gets_wrong(
    session: SparkSession, mapping: ColumnMapping, field: str, message: str
) -> None:
    frame = _frame(session, label=["x", "y", "z"])
    with pytest.raises(TransactionLogError) as error:
        spark.clean_on_spark(session, frame, columns=mapping)
    assert message in str(error.value)
    assert error.value.field == field


def test_spark_takes_a_mapping_only_for_a_log_it_cleans(session: SparkSession) -> None:
    cleaned = spark.clean_on_spark(session, _frame(session))
    with pytest.raises(ValueError, match="cleaned already"):
        spark.panel_on_spark(session, cleaned, [date(2024, 1, 2)], columns=ColumnMapping())


def test_spark_cuts_days_in_the_configured_time_zone(session: SparkSession) -> None:
    """Spark cuts days in its session zone: a session in another zone than the config's is
    refused, and in the same zone the panel of a log of instants is DuckDB's."""
    zone = "America/New_York"
    config, cutoffs = FeatureConfig(timezone=zone), [date(2024, 1, 31)]
    raw = _synthetic_log(dirty=False)
    raw["timestamp"] = raw["timestamp"].dt.tz_localize("UTC")
    frame = session.createDataFrame(raw)
    with pytest.raises(TransactionLogError, match="session time zone is 'UTC'") as error:
        spark.clean_on_spark(session, frame, config)
    assert error.value.field == "timezone"
    expected = _sorted(
        build.build_panel(
            transactions.transactions_from_frame(raw, config=config), cutoffs, 60, config
        )
    )
    in_utc = transactions.transactions_from_frame(raw)
    assert not expected[schema.FREQUENCY].equals(
        _sorted(build.build_panel(in_utc, cutoffs, 60))[schema.FREQUENCY]
    )
    session.conf.set("spark.sql.session.timeZone", zone)
    try:
        got = spark.panel_on_spark(session, frame, cutoffs, 60, config).toPandas()
    finally:
        session.conf.set("spark.sql.session.timeZone", "UTC")
    _assert_same_panel(expected, _sorted(got))
