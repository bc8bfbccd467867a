"""Distinct products and channels counted from the daily `bought` mask (`sql.BoughtBits`) or,
for columns of more values than it holds, from `first_use`: the same counts either way."""

from __future__ import annotations

from datetime import date

import numpy as np
import pandas as pd
import pytest
from clv.features import build, schema, sql, transactions

CUTOFFS = [date(2024, 2, 15), date(2024, 4, 30), date(2024, 6, 30)]


def test_bits_go_to_the_columns_with_fewer_values_first() -> None:
    products = [f"p{i:02d}" for i in range(60)]
    both = sql.BoughtBits.fitting({"product": products, "channel": ["web", "app", "store"]})
    assert list(both.values) == ["channel", "product"]
    assert both.values["channel"] == ("app", "store", "web")  # sorted: the same bits every run
    assert both.column_bits("channel") == 0b111
    assert both.column_bits("product") == ((1 << 60) - 1) << 3
    assert both.column_bits("product") < 1 << sql.BOUGHT_BITS  # the sign bit stays clear

    # one product more and the products no longer fit beside the channels: first_use counts them
    channels = ["web", "app", "store"]
    more = sql.BoughtBits.fitting({"product": [*products, "p60"], "channel": channels})
    assert list(more.values) == ["channel"]
    skus = sql.BoughtBits.fitting({"product": [str(i) for i in range(64)]})
    assert skus.values == {}


def _log(n_products: int, seed: int = 3) -> pd.DataFrame:
    """Lines of 40 customers over half a year: returns, lines without a product or channel,
    and product names that need quoting in SQL."""
    rng = np.random.default_rng(seed)
    n = 1500
    names = [f"kid's \\ toys {i}" if i % 7 == 0 else f"p{i}" for i in range(n_products)]
    product = pd.Series(rng.choice(names, n), dtype=object)
    product[rng.random(n) < 0.05] = None
    channel = pd.Series(rng.choice(["web", "app", "store"], n), dtype=object)
    channel[rng.random(n) < 0.05] = None
    days = rng.integers(0, 182, n)
    return pd.DataFrame(
        {
            "customer_id": rng.choice([f"c{i}" for i in range(40)], n),
            "timestamp": pd.Timestamp("2024-01-01") + pd.to_timedelta(days, unit="D"),
            "amount": np.where(rng.random(n) < 0.1, -5.0, rng.uniform(1, 50, n).round(2)),
            "product": product,
            "channel": channel,
        }
    )


def _distinct_bought(frame: pd.DataFrame, column: str, cutoff: date) -> pd.Series:
    """How many values of `column` each customer bought (amount >= 0) by `cutoff`."""
    bought = frame[(frame["amount"] >= 0) & (frame["timestamp"].dt.date <= cutoff)]
    return bought.groupby("customer_id")[column].nunique()


@pytest.mark.parametrize(
    ("n_products", "masked"),
    [(12, {"product", "channel"}), (70, {"channel"})],
    ids=["both in the mask", "products from first_use"],
)
def test_distinct_products_and_channels_bought_by_each_cutoff(
    n_products: int, masked: set[str]
) -> None:
    frame = _log(n_products)
    log = transactions.transactions_from_frame(frame)
    assert set(log.bought.values) == masked
    tables = {row[0] for row in log.con.execute("SHOW TABLES").fetchall()}
    assert ("first_use" in tables) == (masked != {"product", "channel"})

    features = build.build_features(log, CUTOFFS)
    assert len(features) > 100
    for cutoff in CUTOFFS:
        rows = features[features[schema.CUTOFF] == pd.Timestamp(cutoff)].set_index(
            schema.CUSTOMER_ID
        )
        for column in ("product", "channel"):
            expected = _distinct_bought(frame, column, cutoff).reindex(rows.index, fill_value=0)
            got = rows[f"n_{column}s"]
            assert (got == expected).all(), f"n_{column}s at {cutoff}"
    assert features["n_products"].max() > 5 and features["n_channels"].max() == 3


def test_the_mask_and_first_use_give_the_same_features() -> None:
    """The same log counted both ways: through `load_transactions` (the mask) and through
    per-customer pairs over the SQL the service prepares (`first_use` only)."""
    frame = _log(12)
    log = transactions.transactions_from_frame(frame)
    by_mask = build.build_features(log, CUTOFFS)
    log.con.execute(
        "CREATE OR REPLACE TEMP TABLE first_use AS "
        + str(sql.first_use_sql(log.optional_columns, "clean_transactions"))
    )
    unmasked = transactions.TransactionLog(
        log.con, log.optional_columns, log.first_date, log.last_date, log.report
    )
    by_first_use = build.build_features(unmasked, CUTOFFS)
    pd.testing.assert_frame_equal(by_first_use, by_mask)


def test_both_columns_are_read_in_one_pass_unless_one_has_too_many_values() -> None:
    """Products and channels are found together, as their distinct combinations (a CSV log
    is parsed again by every query); only when those are too many to be of two columns that
    fit is each column read alone."""
    queries: list[str] = []

    def bits(frame: pd.DataFrame) -> sql.BoughtBits:
        log = transactions.transactions_from_frame(frame)
        queries.clear()

        def run(query: str) -> list[tuple[object, ...]]:
            queries.append(query)
            return log.con.execute(query).fetchall()

        return transactions.bought_bits(run, log.optional_columns)

    few = bits(_log(70))  # 70 products x 3 channels: all combinations in one query
    assert set(few.values) == {"channel"} and few.values["channel"] == ("app", "store", "web")
    assert len(queries) == 1

    skus = pd.concat([_log(70, seed) for seed in range(4)], ignore_index=True)
    skus["product"] = [f"sku{i}" for i in range(len(skus))]
    many = bits(skus)  # 6,000 products: too many combinations, then each column alone
    assert set(many.values) == {"channel"} and many.values["channel"] == ("app", "store", "web")
    assert len(queries) == 3

    both = bits(_log(12))
    assert both.values["product"] == tuple(sorted(_log(12)["product"].dropna().unique()))
    assert len(queries) == 1
