"""The feature build against an independent computation, on random logs (hypothesis).

`reference_panel` computes the feature table and labels from the definitions in README.md
and `sql.feature_sql` / `sql.label_sql`, in plain Python loops over one customer's lines at a
time, sharing no code with the SQL build (slow: for tiny logs). Random logs with returns,
zero amounts, several lines a day, orders, quantities, products and channels, at random
cutoffs, must give the same rows and values both ways.
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Sequence
from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

import pandas as pd
from clv.features import build, schema, transactions
from clv.features.config import FeatureConfig
from clv.features.prepared import PreparedFeatures
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

MISSING = None  # a feature that SQL leaves NULL


def _ratio(numerator: float | None, denominator: float | None) -> float | None:
    if numerator is None or denominator is None or denominator == 0:
        return MISSING
    return numerator / denominator


def _std(values: list[float]) -> float | None:
    return statistics.stdev(values) if len(values) > 1 else MISSING


def _clean(lines: pd.DataFrame, config: FeatureConfig) -> pd.DataFrame:
    """The loader's cleaning for a log without missing values: zero amounts (when configured)
    dropped; with an order id, identical lines dropped."""
    if config.drop_zero_amounts:
        lines = lines[lines["amount"] != 0]
    if schema.ORDER_ID in lines:
        lines = lines.drop_duplicates()
    return lines


def _days(lines: pd.DataFrame) -> list[dict]:
    """One customer's days, in order: sums of its lines, orders, and the gap to the previous
    purchase day (a day with a non-negative amount)."""
    out = []
    previous_purchase: date | None = None
    for day, group in sorted(lines.groupby("day"), key=lambda item: item[0]):
        amounts = list(group["amount"])
        purchase = any(a >= 0 for a in amounts)
        orders = set(group["order_id"].dropna()) if "order_id" in group else set()
        out.append(
            {
                "day": day,
                "purchase": purchase,
                "gross": sum(a for a in amounts if a >= 0),
                "net": sum(amounts),
                "lines": len(amounts),
                "purchase_lines": sum(1 for a in amounts if a >= 0),
                "returned": -sum(a for a in amounts if a < 0),
                "quantity": group["quantity"].sum() if "quantity" in group else None,
                "orders": len(orders),
                "gap": (day - previous_purchase).days
                if purchase and previous_purchase is not None
                else None,
            }
        )
        if purchase:
            previous_purchase = day
    return out


def _stage(config: FeatureConfig, frequency: int, t: int, since_last: int) -> str:
    if since_last > config.lapsed_after_days:
        return schema.STAGE_LAPSED
    if frequency == 0:
        return schema.STAGE_FIRST_TIME
    if t > config.long_term_after_days:
        return schema.STAGE_LONG_TERM
    return schema.STAGE_SHORT_TERM


def _row(
    customer_lines: pd.DataFrame, days: list[dict], cutoff: date, config: FeatureConfig
) -> dict | None:
    """The features of one customer at one cutoff, or None before its first purchase."""
    upto = [d for d in days if d["day"] <= cutoff]
    bought = [d for d in upto if d["purchase"]]
    if not bought:
        return None
    first, last = bought[0], bought[-1]
    frequency = len(bought) - 1
    recency = (last["day"] - first["day"]).days
    t = (cutoff - first["day"]).days
    since_last = (cutoff - last["day"]).days
    gross = sum(d["gross"] for d in bought)
    gaps = [d["gap"] for d in upto if d["gap"] is not None]
    ipt_mean = statistics.fmean(gaps) if gaps else None
    ipt_std = _std([float(g) for g in gaps])
    row = {
        schema.FIRST_PURCHASE_DATE: first["day"],
        schema.LAST_PURCHASE_DATE: last["day"],
        schema.LIFECYCLE_STAGE: _stage(config, frequency, t, since_last),
        schema.FREQUENCY: frequency,
        schema.RECENCY: recency,
        schema.T: t,
        schema.MONETARY_VALUE: (gross - first["gross"]) / frequency if frequency else 0.0,
        schema.DAYS_SINCE_LAST_PURCHASE: since_last,
        schema.HISTORICAL_VALUE: sum(d["net"] for d in upto),
        "gross_spend": gross,
        "avg_purchase_value": gross / len(bought),
        "max_purchase_value": max(d["gross"] for d in upto),
        "std_purchase_value": _std([d["gross"] for d in bought]),
        "first_purchase_value": first["gross"],
        "last_purchase_value": last["gross"],
        "n_transactions": sum(d["lines"] for d in upto),
        "transactions_per_purchase_day": sum(d["lines"] for d in upto) / len(bought),
        "purchase_rate": _ratio(frequency, t),
        "ipt_mean": ipt_mean,
        "ipt_std": ipt_std,
        "ipt_cv": _ratio(ipt_std, ipt_mean),
        "ipt_min": min(gaps) if gaps else None,
        "ipt_max": max(gaps) if gaps else None,
        "ipt_last": gaps[-1] if gaps else None,
        "overdue_ratio": _ratio(since_last, ipt_mean),
    }
    longest = config.windows_days[-1]
    for w in config.windows_days:
        recent = [d for d in upto if (cutoff - d["day"]).days < w]
        row[f"purchase_days_{w}d"] = sum(1 for d in recent if d["purchase"])
        row[f"spend_{w}d"] = sum(d["net"] for d in recent)
    for w in config.windows_days[:-1]:
        row[f"purchase_trend_{w}_{longest}"] = _ratio(
            row[f"purchase_days_{w}d"], row[f"purchase_days_{longest}d"]
        )
        row[f"spend_trend_{w}_{longest}"] = _ratio(row[f"spend_{w}d"], row[f"spend_{longest}d"])
    returned = sum(d["returned"] for d in upto)
    row["n_returns"] = sum(d["lines"] - d["purchase_lines"] for d in upto)
    row["returned_amount"] = returned
    row["return_rate"] = _ratio(returned, gross)
    has = set(customer_lines.columns)
    quantity = sum(d["quantity"] for d in upto) if schema.QUANTITY in has else None
    row["total_quantity"] = quantity
    row["quantity_per_purchase_day"] = None if quantity is None else quantity / len(bought)
    row["avg_unit_price"] = _ratio(gross, quantity)
    row["n_orders"] = sum(d["orders"] for d in upto) if schema.ORDER_ID in has else None
    bought_lines = customer_lines[
        (customer_lines["day"] <= cutoff) & (customer_lines["amount"] >= 0)
    ]
    for column, name in ((schema.PRODUCT, "n_products"), (schema.CHANNEL, "n_channels")):
        row[name] = bought_lines[column].dropna().nunique() if column in has else None
    return row


def reference_panel(
    log: pd.DataFrame,
    cutoffs: Sequence[date],
    horizon_days: int | None = None,
    config: FeatureConfig | None = None,
) -> pd.DataFrame:
    """Features (and labels) of every customer with a purchase by each cutoff, sorted by
    cutoff and customer; None where SQL gives NULL. `log` holds clean contract columns."""
    config = config or FeatureConfig()
    zone = ZoneInfo(config.timezone)
    lines = _clean(log, config).assign(
        # an instant counts on its date in the feature zone; a naive time is local there
        day=lambda f: [
            (t.astimezone(zone) if t.tzinfo is not None else t).date()
            for t in f["timestamp"].dt.to_pydatetime()
        ]
    )
    rows = []
    for customer, customer_lines in lines.groupby("customer_id"):
        days = _days(customer_lines)
        for cutoff in sorted(set(cutoffs)):
            row = _row(customer_lines, days, cutoff, config)
            if row is None:
                continue
            row = {schema.CUSTOMER_ID: str(customer), schema.CUTOFF: cutoff, **row}
            if horizon_days is not None:
                end = cutoff + timedelta(days=horizon_days)
                ahead = [d for d in days if cutoff < d["day"] <= end]
                purchase_days = sum(1 for d in ahead if d["purchase"])
                row[schema.FUTURE_SPEND] = max(sum(d["net"] for d in ahead), 0.0)
                row[schema.FUTURE_PURCHASE_DAYS] = purchase_days
                row[schema.CHURNED] = int(purchase_days == 0)
            rows.append(row)
    frame = pd.DataFrame(rows)
    if frame.empty:
        return frame
    return frame.sort_values([schema.CUTOFF, schema.CUSTOMER_ID], ignore_index=True)


def same_value(want: object, have: object, tolerance: float = 1e-9) -> bool:
    """Equal, both missing, or numbers within `tolerance` (absolute and relative); the SQL
    rounds net sums to 1e-6 (`sql.MONEY_DECIMALS`), so sums of cents compare exactly."""
    want_missing = want is None or (isinstance(want, float) and math.isnan(want))
    have_missing = have is None or (isinstance(have, float) and math.isnan(have))
    if want_missing or have_missing:
        return want_missing and have_missing
    if isinstance(want, (int, float)) and not isinstance(want, bool):
        return math.isclose(float(want), float(have), rel_tol=tolerance, abs_tol=tolerance)
    return str(want) == str(have)


# --- random logs ----------------------------------------------------------------------------
START = date(2023, 1, 1)
SPAN_DAYS = 800

_line = st.fixed_dictionaries(
    {
        "customer_id": st.sampled_from(["a", "b", "c", "d"]),
        "day": st.integers(0, SPAN_DAYS),
        "minute": st.integers(0, 24 * 60 - 1),
        # cents, as prices are: purchases, $0 lines and returns
        "amount": st.integers(-3000, 20000).map(lambda cents: cents / 100),
        "order_id": st.one_of(st.none(), st.integers(1, 6)),
        "quantity": st.integers(1, 4),
        "product": st.one_of(st.none(), st.sampled_from(["p1", "p2", "p3"])),
        "channel": st.sampled_from(["web", "store"]),
    }
)
_optional = st.sets(st.sampled_from(["order_id", "quantity", "product", "channel"]))
# Feature time zones: UTC, with daylight saving (both hemispheres), and odd offsets.
ZONES = ["UTC", "America/New_York", "Europe/London", "Asia/Kolkata", "Pacific/Chatham"]


def _frame(lines: list[dict], optional: set[str]) -> pd.DataFrame:
    frame = pd.DataFrame(lines)
    frame["timestamp"] = [
        datetime(START.year, START.month, START.day) + timedelta(days=d, minutes=m)
        for d, m in zip(frame.pop("day"), frame.pop("minute"), strict=True)
    ]
    keep = ["customer_id", "timestamp", "amount", *sorted(optional)]
    frame = frame[keep]
    if "order_id" in frame:
        frame["order_id"] = frame["order_id"].astype("Int64")
    return frame


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    lines=st.lists(_line, min_size=1, max_size=60),
    optional=_optional,
    cutoff_days=st.lists(st.integers(0, SPAN_DAYS), min_size=1, max_size=3),
    horizon_days=st.integers(1, 200),
    drop_zero_amounts=st.booleans(),
    zone=st.sampled_from(ZONES),
    instants=st.booleans(),
)
def test_features_and_labels_equal_an_independent_computation(
    lines, optional, cutoff_days, horizon_days, drop_zero_amounts, zone, instants
) -> None:
    """Also with days cut in another zone than UTC (`timezone`): the log's timestamps are
    then instants (UTC) converted to that zone, or local times there already."""
    frame = _frame(lines, optional)
    if instants:
        frame["timestamp"] = frame["timestamp"].dt.tz_localize("UTC")
    config = FeatureConfig(drop_zero_amounts=drop_zero_amounts, timezone=zone)
    kept = frame[frame["amount"] != 0] if drop_zero_amounts else frame
    assume((kept["amount"] >= 0).any())  # a log with no purchase has no features to compare
    log = transactions.transactions_from_frame(frame, config=config)
    cutoffs = sorted({START + timedelta(days=d) for d in cutoff_days})
    cutoffs = [c for c in cutoffs if log.first_date <= c <= log.last_date - timedelta(horizon_days)]
    assume(cutoffs)
    got = build.build_panel(log, cutoffs, horizon_days, config)
    want = reference_panel(frame, cutoffs, horizon_days, config)
    assume(len(want) > 0)

    got = got.sort_values([schema.CUTOFF, schema.CUSTOMER_ID], ignore_index=True)
    _assert_same_rows(want, got, "build")
    assert set(got.columns) == set(want.columns)


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    lines=st.lists(_line, min_size=1, max_size=40),
    optional=_optional,
    cutoff_days=st.lists(st.integers(0, SPAN_DAYS), min_size=4, max_size=4),
)
def test_one_cutoff_per_customer_equals_an_independent_computation(
    lines, optional, cutoff_days
) -> None:
    """The (customer, cutoff) pairs of serving, each customer at its own as-of date: from the
    validated log (`build_features`) and from the service's prepared statement
    (`PreparedFeatures`, which reads the request's lines as they are)."""
    frame = _frame(lines, optional)
    assume((frame["amount"] >= 0).any())
    log = transactions.transactions_from_frame(frame)
    customers = sorted(frame["customer_id"].unique())
    own = {c: START + timedelta(days=d) for c, d in zip(customers, cutoff_days, strict=False)}
    pairs = pd.DataFrame({schema.CUSTOMER_ID: list(own), schema.CUTOFF: list(own.values())})
    got = build.build_features(log, pairs).sort_values(schema.CUSTOMER_ID, ignore_index=True)
    request = frame.astype(
        {c: t for c, t in (("order_id", "string"), ("quantity", "float64")) if c in frame}
    )
    prepared = PreparedFeatures()
    try:
        served = prepared.build(request, pairs)
    finally:
        prepared.close()
    served = served.sort_values(schema.CUSTOMER_ID, ignore_index=True)
    want = reference_panel(frame, sorted(set(own.values())))
    assume(len(want) > 0)
    mine = [own[c] == d for c, d in zip(want[schema.CUSTOMER_ID], want[schema.CUTOFF], strict=True)]
    want = want[mine]
    want = want.sort_values(schema.CUSTOMER_ID, ignore_index=True)
    _assert_same_rows(want, got, "build")
    _assert_same_rows(want, served, "prepared")


def _assert_same_rows(want: pd.DataFrame, got: pd.DataFrame, path: str) -> None:
    """`got` (from `path`) has the rows of `want` (the reference) in its order, and every
    reference column agrees value by value (`same_value`)."""
    assert list(got[schema.CUSTOMER_ID]) == list(want[schema.CUSTOMER_ID]), path
    for column in want.columns:
        have = got[column].tolist()
        if column in (schema.CUTOFF, schema.FIRST_PURCHASE_DATE, schema.LAST_PURCHASE_DATE):
            have = [value.date() for value in have]
        for i, (w, h) in enumerate(zip(want[column].tolist(), have, strict=True)):
            assert same_value(w, h), (
                f"{path}: {column} of {want[schema.CUSTOMER_ID][i]} at {want[schema.CUTOFF][i]}: "
                f"reference {w!r}, got {h!r}"
            )
