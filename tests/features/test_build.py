"""Hand-computed features and labels on tiny logs; leakage and invariants."""

from __future__ import annotations

from datetime import date, timedelta

import numpy as np
import pandas as pd
import pytest
from clv.features import build, schema, sql, transactions
from clv.features.config import FeatureConfig
from clv.features.errors import TransactionLogError
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

CUTOFF = date(2024, 3, 31)


def _features(frame: pd.DataFrame, cutoffs=(CUTOFF,), **config) -> pd.DataFrame:
    log = transactions.transactions_from_frame(frame, config=FeatureConfig(**config))
    return build.build_features(log, list(cutoffs), FeatureConfig(**config)).set_index(
        schema.CUSTOMER_ID
    )


def test_rfm_by_hand(tiny_log: pd.DataFrame) -> None:
    f = _features(tiny_log)
    a, b, c = f.loc["a"], f.loc["b"], f.loc["c"]
    # a: purchase days Jan 1 (15), Jan 11 (20), Mar 1 (30)
    assert a[schema.FREQUENCY] == 2
    assert a[schema.RECENCY] == (date(2024, 3, 1) - date(2024, 1, 1)).days == 60
    assert a[schema.T] == (CUTOFF - date(2024, 1, 1)).days == 90
    assert a[schema.MONETARY_VALUE] == pytest.approx((20 + 30) / 2)
    assert a["avg_purchase_value"] == pytest.approx(65 / 3)
    assert a[schema.HISTORICAL_VALUE] == pytest.approx(65)
    assert a[schema.DAYS_SINCE_LAST_PURCHASE] == 30
    assert a["n_transactions"] == 4  # same-day lines merge into one purchase day, not one row
    assert a["ipt_mean"] == pytest.approx(30)  # gaps 10 and 50
    assert a["ipt_min"] == 10 and a["ipt_max"] == 50 and a["ipt_last"] == 50
    assert a["first_purchase_value"] == 15 and a["last_purchase_value"] == 30
    assert (
        a["purchase_days_30d"] == 0
    )  # Mar 1 is 30 days before Mar 31: outside (cutoff-30, cutoff]
    # Jan 1 is exactly 90 days before: outside the 90-day window, inside the 180-day one
    assert a["purchase_days_90d"] == 2 and a["spend_90d"] == pytest.approx(50)
    assert a["purchase_days_180d"] == 3 and a["spend_180d"] == pytest.approx(65)
    assert a["purchase_trend_90_365"] == pytest.approx(2 / 3)
    assert a[schema.LIFECYCLE_STAGE] == schema.STAGE_SHORT_TERM
    # b bought on the cutoff day itself: included; its return after the cutoff is not
    assert b[schema.FREQUENCY] == 0 and b[schema.RECENCY] == 0 and b[schema.T] == 0
    assert b[schema.MONETARY_VALUE] == 0
    assert b[schema.HISTORICAL_VALUE] == 50 and b["n_returns"] == 0
    assert b[schema.LIFECYCLE_STAGE] == schema.STAGE_FIRST_TIME
    # c: the return-only day is not a purchase day but counts in value and returns
    assert c[schema.FREQUENCY] == 0
    assert c[schema.HISTORICAL_VALUE] == pytest.approx(30)
    assert c["gross_spend"] == pytest.approx(40)
    assert c["n_returns"] == 1 and c["returned_amount"] == pytest.approx(10)
    assert c["return_rate"] == pytest.approx(0.25)


def test_customers_not_yet_acquired_are_absent(tiny_log: pd.DataFrame) -> None:
    f = _features(tiny_log, cutoffs=[date(2024, 1, 15)])
    assert list(f.index) == ["a"]


def test_panel_labels_by_hand(tiny_log: pd.DataFrame) -> None:
    log = transactions.transactions_from_frame(tiny_log)
    panel = build.build_panel(log, [CUTOFF], horizon_days=30).set_index(schema.CUSTOMER_ID)
    # horizon is Apr 1 .. Apr 30
    assert panel.loc["a", schema.FUTURE_SPEND] == 0 and panel.loc["a", schema.CHURNED] == 1
    # b only returned in the horizon: net spend is clipped at 0, and a return is not a purchase
    assert panel.loc["b", schema.FUTURE_SPEND] == 0 and panel.loc["b", schema.CHURNED] == 1
    assert panel.loc["c", schema.FUTURE_SPEND] == 25 and panel.loc["c", schema.CHURNED] == 0
    assert panel.loc["c", schema.FUTURE_PURCHASE_DAYS] == 1


def test_lapsed_and_long_term_stages() -> None:
    frame = pd.DataFrame(
        {
            "customer_id": ["old", "old", "old", "gone", "gone"],
            "timestamp": ["2022-01-01", "2023-06-01", "2024-03-01", "2023-01-01", "2023-02-01"],
            "amount": [10.0, 10.0, 10.0, 5.0, 5.0],
        }
    )
    f = _features(frame)
    assert f.loc["old", schema.LIFECYCLE_STAGE] == schema.STAGE_LONG_TERM
    assert f.loc["gone", schema.LIFECYCLE_STAGE] == schema.STAGE_LAPSED


def test_optional_columns_feed_basket_and_breadth_features() -> None:
    frame = pd.DataFrame(
        {
            "customer_id": ["a", "a", "a"],
            "timestamp": ["2024-01-01", "2024-01-01", "2024-02-01"],
            "amount": [10.0, 30.0, 20.0],
            "quantity": [1, 3, 2],
            "product": ["p1", "p2", "p1"],
            "channel": ["web", "web", "store"],
            "order_id": ["o1", "o1", "o2"],
        }
    )
    a = _features(frame).loc["a"]
    assert a["total_quantity"] == 6
    assert a["avg_unit_price"] == pytest.approx(60 / 6)
    assert a["n_products"] == 2 and a["n_channels"] == 2 and a["n_orders"] == 2


@pytest.mark.parametrize("integer_ids", [False, True])
def test_orders_are_the_distinct_order_ids_of_each_day(integer_ids: bool) -> None:
    # a: Jan 1 holds orders 1 (two lines) and 2; Jan 2 holds the rest of order 2 (an order
    # that spans midnight counts on both days); Jan 3 holds order 3 (its line sent twice) and
    # a line without an order id. b: one day of three orders and a line without an order id
    # (the days of several orders are counted apart), one day of lines without one.
    ids = [1, 1, 2, 2, 3, 3, None, 4, 5, None, 6, None, None]
    frame = pd.DataFrame(
        {
            "customer_id": ["a"] * 7 + ["b"] * 6,
            "timestamp": ["2024-01-01 09:00", "2024-01-01 09:00", "2024-01-01 23:00"]
            + ["2024-01-02 00:10", "2024-01-03", "2024-01-03", "2024-01-03"]
            + ["2024-02-01"] * 4
            + ["2024-02-02"] * 2,
            "amount": [10.0, 20.0, 5.0, 5.0, 7.0, 7.0, 1.0, 1.0, 2.0, 8.0, 3.0, 4.0, 6.0],
            "order_id": pd.array(ids, dtype="Int64")
            if integer_ids
            else [None if i is None else f"o{i}" for i in ids],
        }
    )
    log = transactions.transactions_from_frame(frame)
    assert log.report.dropped["duplicate order lines"] == 1
    f = build.build_features(log, [CUTOFF]).set_index(schema.CUSTOMER_ID)
    assert f.loc["a", "n_orders"] == 4  # 2 on Jan 1, 1 on Jan 2, 1 on Jan 3
    assert f.loc["b", "n_orders"] == 3
    assert f.loc["a", "n_transactions"] == 6 and f.loc["a", "gross_spend"] == pytest.approx(48)


def test_purchases_and_returns_that_cancel_sum_to_exactly_zero() -> None:
    """0.1 + 0.2 - 0.3 is 5.6e-17 in floating point: net sums are rounded so that a window
    whose purchases were all returned has spend 0 and no trend (it was -5.4e15), and the
    future spend of a horizon that cancels is 0."""
    frame = pd.DataFrame(
        {
            "customer_id": ["a"] * 4 + ["b"] * 4,
            "timestamp": [
                *("2024-01-01", "2024-02-01", "2024-03-01", "2024-03-20"),  # a
                *("2024-01-01", "2024-03-12", "2024-03-15", "2024-03-20"),  # b
            ],
            "amount": [0.1, 0.2, -0.3, 5.0, 7.0, 0.1, 0.2, -0.3],
        }
    )
    log = transactions.transactions_from_frame(frame)
    panel = build.build_panel(log, [date(2024, 1, 15), date(2024, 3, 10)], horizon_days=10)
    a = panel.set_index([schema.CUSTOMER_ID, schema.CUTOFF]).loc[("a", pd.Timestamp("2024-03-10"))]
    assert a["spend_365d"] == 0 and a["spend_90d"] == 0 and a[schema.HISTORICAL_VALUE] == 0
    assert np.isnan(a["spend_trend_30_365"]) and a["spend_30d"] == pytest.approx(-0.3)
    b = panel.set_index([schema.CUSTOMER_ID, schema.CUTOFF]).loc[("b", pd.Timestamp("2024-03-10"))]
    assert b[schema.HISTORICAL_VALUE] == 7.0 and b[schema.FUTURE_PURCHASE_DAYS] == 2
    assert b[schema.FUTURE_SPEND] == 0  # 0.1 + 0.2 - 0.3 in the horizon


def test_features_at_several_cutoffs_equal_one_cutoff_at_a_time(tiny_log: pd.DataFrame) -> None:
    cutoffs = [date(2024, 1, 15), date(2024, 2, 29), CUTOFF]
    log = transactions.transactions_from_frame(tiny_log)
    panel = build.build_panel(log, cutoffs, horizon_days=30)
    for cutoff in cutoffs:
        alone = build.build_panel(log, [cutoff], horizon_days=30)
        part = panel[panel[schema.CUTOFF] == pd.Timestamp(cutoff)].reset_index(drop=True)
        pd.testing.assert_frame_equal(part, alone)


def test_schema_is_fixed_whatever_the_log_carries(tiny_log: pd.DataFrame) -> None:
    f = _features(tiny_log)
    expected = sql.feature_names(FeatureConfig())
    assert [c for c in f.columns if c in expected] == expected
    assert f["n_products"].isna().all()  # no product column: NULL, not 0
    build.check_feature_invariants(f.reset_index())


def test_invariant_checker_names_the_problem(tiny_log: pd.DataFrame) -> None:
    f = _features(tiny_log).reset_index()
    f.loc[0, schema.RECENCY] = f.loc[0, schema.T] + 1
    with pytest.raises(ValueError, match="recency > T"):
        build.check_feature_invariants(f)


def test_horizon_past_the_data_is_refused(tiny_log: pd.DataFrame) -> None:
    log = transactions.transactions_from_frame(tiny_log)
    with pytest.raises(TransactionLogError, match="past the last day of the data") as info:
        build.build_panel(log, [CUTOFF], horizon_days=120)
    assert info.value.field == "--horizon-days"


@pytest.mark.parametrize("cutoff", [date(2023, 12, 31), date(2024, 7, 1)])
def test_cutoff_outside_the_data_is_refused(tiny_log: pd.DataFrame, cutoff: date) -> None:
    log = transactions.transactions_from_frame(tiny_log)
    with pytest.raises(TransactionLogError, match="outside the data") as info:
        build.build_panel(log, [cutoff], horizon_days=None)
    assert info.value.field == "--cutoff"


def test_cutoff_range() -> None:
    assert build.cutoff_range(date(2024, 1, 1), date(2024, 1, 15), 7) == [
        date(2024, 1, 1),
        date(2024, 1, 8),
        date(2024, 1, 15),
    ]
    with pytest.raises(TransactionLogError, match="step"):
        build.cutoff_range(date(2024, 1, 1), date(2024, 1, 15), 0)


def test_cutoff_range_in_months() -> None:
    """From a month end, month ends (leap February included); from another day, that day or
    the month's last; each counted from the start, so no drift after a short month."""
    months = build.cutoff_range(date(2023, 11, 30), date(2024, 4, 30), step_months=1)
    assert [d.isoformat() for d in months] == [
        "2023-11-30", "2023-12-31", "2024-01-31", "2024-02-29", "2024-03-31", "2024-04-30"
    ]  # fmt: skip
    quarters = build.cutoff_range(date(2023, 8, 30), date(2024, 6, 1), step_months=3)
    assert [d.isoformat() for d in quarters] == [
        "2023-08-30",
        "2023-11-30",
        "2024-02-29",
        "2024-05-30",
    ]
    with pytest.raises(TransactionLogError, match="positive number of months") as info:
        build.cutoff_range(date(2024, 1, 1), date(2024, 6, 1), step_months=0)
    assert info.value.field == "--cutoff-step-months"
    with pytest.raises(TransactionLogError, match="one of the two"):
        build.cutoff_range(date(2024, 1, 1), date(2024, 6, 1), 7, step_months=1)


def test_panel_has_one_row_per_customer_and_cutoff(tiny_log: pd.DataFrame) -> None:
    log = transactions.transactions_from_frame(tiny_log)
    panel = build.build_panel(log, [date(2024, 2, 1), CUTOFF], horizon_days=30)
    assert not panel.duplicated([schema.CUSTOMER_ID, schema.CUTOFF]).any()
    assert panel.groupby(schema.CUTOFF).size().to_dict() == {
        pd.Timestamp("2024-02-01"): 2,
        pd.Timestamp(CUTOFF): 3,
    }


def test_per_customer_cutoffs(tiny_log: pd.DataFrame) -> None:
    log = transactions.transactions_from_frame(tiny_log)
    pairs = pd.DataFrame({"customer_id": ["a", "c"], "cutoff": ["2024-01-11", "2024-02-05"]})
    f = build.build_features(log, pairs).set_index(schema.CUSTOMER_ID)
    assert list(f.index) == ["a", "c"]
    assert f.loc["a", schema.FREQUENCY] == 1 and f.loc["a", schema.T] == 10
    assert f.loc["c", schema.HISTORICAL_VALUE] == 30


def test_dates_and_per_customer_pairs_give_the_same_rows() -> None:
    """Cutoff dates count products and channels through the dates, per-customer pairs through
    the pairs (`sql.feature_sql`): the same features, whichever way a row was asked for."""
    frame = pd.DataFrame(
        {
            "customer_id": ["a", "a", "a", "b", "b", "c", "c"],
            "timestamp": [
                "2024-01-01",
                "2024-01-20",
                "2024-03-01",
                "2024-01-05",
                "2024-02-10",
                "2024-01-15",
                "2024-02-20",
            ],
            "amount": [10.0, 20.0, -5.0, 7.0, 9.0, -3.0, 4.0],
            "product": ["p1", "p2", "p3", "p1", "p1", "p2", None],
            "channel": ["web", "store", "web", "app", "web", "web", "store"],
        }
    )
    log = transactions.transactions_from_frame(frame)
    cutoffs = [date(2024, 1, 10), date(2024, 2, 15), date(2024, 3, 31)]
    by_date = build.build_features(log, cutoffs)
    pairs = by_date[[schema.CUSTOMER_ID, schema.CUTOFF]]
    pd.testing.assert_frame_equal(build.build_features(log, pairs), by_date)
    assert by_date.set_index([schema.CUSTOMER_ID, schema.CUTOFF]).loc[
        ("a", pd.Timestamp("2024-03-31")), ["n_products", "n_channels"]
    ].tolist() == [2.0, 2.0]  # p3 was only returned: not a product bought


def test_file_query_has_the_rows_of_the_frame(tiny_log: pd.DataFrame) -> None:
    """`panel_query` leaves the order to the engine (a file is then written by every thread);
    `build_panel` sorts. The same rows either way."""
    log = transactions.transactions_from_frame(tiny_log)
    cutoffs = [date(2024, 2, 1), CUTOFF]
    rows = log.con.execute(build.panel_query(log, cutoffs, 30, FeatureConfig())).df()
    rows = build._normalise(rows).sort_values([schema.CUTOFF, schema.CUSTOMER_ID])
    panel = build.build_panel(log, cutoffs, 30)
    pd.testing.assert_frame_equal(rows.reset_index(drop=True), panel)


# --- leakage: transactions after the cutoff change no feature -----------------------------
_day = st.integers(min_value=0, max_value=120)
_tx = st.tuples(
    st.sampled_from(["a", "b", "c"]), _day, st.floats(-50, 200).filter(lambda x: x != 0)
)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    history=st.lists(_tx, min_size=1, max_size=25), future=st.lists(_tx, min_size=1, max_size=25)
)
def test_transactions_after_the_cutoff_change_no_feature(history, future) -> None:
    start = date(2024, 1, 1)
    cutoff = start + timedelta(days=120)

    def frame(rows, offset: int) -> pd.DataFrame:
        return pd.DataFrame(
            [(c, start + timedelta(days=d + offset), amt) for c, d, amt in rows],
            columns=["customer_id", "timestamp", "amount"],
        )

    past = frame(history, 0)
    if not (past["amount"] >= 0).any():
        past.loc[0, "amount"] = 1.0  # somebody must have purchased before the cutoff
    later = frame(future, 121)  # strictly after the cutoff day
    only_past = _features(past, cutoffs=[cutoff])
    with_future = _features(pd.concat([past, later], ignore_index=True), cutoffs=[cutoff])
    pd.testing.assert_frame_equal(only_past, with_future)


def test_sql_transpiles_to_spark() -> None:
    spark = sql.transpile(sql.feature_sql(FeatureConfig(), {"product", "quantity"}), "spark")
    assert "DATEDIFF" in spark.upper() or "DATE_DIFF" in spark.upper()
    assert "FROM pairs" in spark
    dated = sql.feature_sql(FeatureConfig(), {"channel"}, cutoffs="cutoff_dates")
    assert "FROM pairs" not in dated
    for query in (sql.daily_sql(["quantity"]), sql.label_sql(30), dated):
        assert sql.transpile(query, "spark")
