"""The feature SQL, transpiled to Spark SQL, run on a local Spark: the same panel as DuckDB.

A real Spark (pyspark, local mode, one JVM for the module) reads the clean log that the
DuckDB loader leaves, builds `daily`, `first_use` and the panel with `spark.panel_on_spark`,
and every column must equal the DuckDB build's.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import date

import numpy as np
import pandas as pd
import pytest
from clv.features import build, schema, spark, transactions
from clv.features.datasets import CDNOW_COLUMNS, cdnow_master_path
from clv.features.errors import TransactionLogError
from clv.features.synthetic import SyntheticConfig, generate_frames
from pyspark.sql import SparkSession


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


def _synthetic_log() -> pd.DataFrame:
    """All seven columns, with returns, several lines per order, duplicated lines, lines
    without an order id or product, and a day of two orders."""
    frame, _ = generate_frames(SyntheticConfig(customers=300, seed=7, return_share=0.1))
    frame = frame.astype({"order_id": "object", "product": "object"})
    frame.loc[frame.index[::17], "order_id"] = None
    frame.loc[frame.index[::23], "product"] = None
    first = frame.iloc[0]
    second_order = first.copy()
    second_order["order_id"], second_order["timestamp"] = -1, first["timestamp"].normalize()
    return pd.concat([frame, frame.iloc[:40], second_order.to_frame().T], ignore_index=True)


def _cdnow_log() -> pd.DataFrame:
    """The bundled CDNOW log's first 3,000 customers: quantity, no order id, no product."""
    frame = pd.read_csv(cdnow_master_path(), dtype={"customer_id": str})
    keep = frame["customer_id"].isin(frame["customer_id"].unique()[:3000])
    return frame[keep].rename(columns={CDNOW_COLUMNS.timestamp: schema.TIMESTAMP})


LOGS = {
    "synthetic, seven columns": (
        _synthetic_log,
        [date(2023, 6, 30), date(2024, 1, 31), date(2024, 6, 30)],
        90,
    ),
    "synthetic, channel only": (
        lambda: _synthetic_log().drop(columns=["order_id", "quantity", "product"]),
        [date(2024, 3, 31)],
        30,
    ),
    "cdnow, quantity only": (_cdnow_log, [date(1997, 3, 31), date(1997, 9, 30)], 180),
}


def _on_spark(
    session: SparkSession, log: transactions.TransactionLog, cutoffs, horizon_days
) -> pd.DataFrame:
    clean = log.con.execute("SELECT * FROM transactions").df()
    panel = spark.panel_on_spark(session, session.createDataFrame(clean), cutoffs, horizon_days)
    return panel.toPandas()


def _sorted(frame: pd.DataFrame) -> pd.DataFrame:
    frame = build._normalise(frame.copy())
    return frame.sort_values([schema.CUTOFF, schema.CUSTOMER_ID], ignore_index=True)


@pytest.mark.parametrize("name", list(LOGS))
def test_spark_builds_the_duckdb_panel(session: SparkSession, name: str) -> None:
    make, cutoffs, horizon_days = LOGS[name]
    log = transactions.transactions_from_frame(make())
    expected = _sorted(build.build_panel(log, cutoffs, horizon_days))
    got = _sorted(_on_spark(session, log, cutoffs, horizon_days))

    assert list(got.columns) == list(expected.columns)
    assert len(got) == len(expected) > 150
    for column in expected.columns:
        want, have = expected[column], got[column]
        if want.dtype.kind == "f":
            same = np.isclose(want, have.astype(float), rtol=1e-9, atol=1e-9, equal_nan=True)
        else:
            same = (want.astype(str) == have.astype(str)).to_numpy()
        assert same.all(), f"{column}: {(~same).sum()} rows differ, e.g. row {np.argmin(same)}"
    # the panel is not trivial: stages and label values vary, and features are NULL or not
    assert expected[schema.LIFECYCLE_STAGE].nunique() >= 3
    assert set(expected[schema.CHURNED]) == {0, 1}
    assert expected["ipt_std"].isna().any() and expected["ipt_std"].notna().any()


def test_synthetic_log_exercises_orders_products_and_returns() -> None:
    """What the Spark comparison above relies on the synthetic log to contain."""
    log = transactions.transactions_from_frame(_synthetic_log())
    assert log.report.dropped["duplicate order lines"] == 40
    features = build.build_features(log, [date(2024, 6, 30)])
    assert (features["n_returns"] > 0).any()
    assert (features["n_orders"] < features["n_transactions"]).any()
    assert features["n_products"].max() > 1 and features["n_channels"].max() > 1
    two_orders = log.con.execute("SELECT MAX(n_orders) FROM daily").fetchall()[0][0]
    assert two_orders >= 2


def test_spark_names_a_missing_column(session: SparkSession) -> None:
    frame = session.createDataFrame(
        pd.DataFrame({"customer_id": ["a"], "amount": [1.0]}),
    )
    with pytest.raises(TransactionLogError, match="timestamp") as error:
        spark.panel_on_spark(session, frame, [date(2024, 1, 1)])
    assert error.value.field == schema.TIMESTAMP


def test_spark_refuses_rows_without_an_amount(session: SparkSession) -> None:
    frame = pd.DataFrame(
        {
            "customer_id": ["a", "a", "b"],
            "timestamp": pd.to_datetime(["2024-01-01", "2024-01-02", "2024-01-03"]),
            "amount": [1.0, None, None],
        }
    )
    with pytest.raises(TransactionLogError, match="2 row") as error:
        spark.panel_on_spark(session, session.createDataFrame(frame), [date(2024, 1, 3)])
    assert error.value.field == schema.AMOUNT
