"""Readable names and families of the model-input features, for explanations and reports.

Families group drivers the way analysts talk about value: recency, frequency, monetary,
tenure, trend, returns, basket, and the classic BG/NBD + Gamma-Gamma model's outputs.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Final

FAMILIES: Final = (
    "recency",
    "frequency",
    "monetary",
    "tenure",
    "trend",
    "returns",
    "basket",
    "baseline",
)


@dataclass(frozen=True)
class FeatureInfo:
    """One feature: its column name, a readable label and the family it belongs to."""

    name: str
    label: str
    family: str


_FIXED: Final[dict[str, tuple[str, str]]] = {
    "frequency": ("Repeat purchase days", "frequency"),
    "recency": ("Days from first to last purchase", "recency"),
    "T": ("Customer age (days)", "tenure"),
    "monetary_value": ("Average repeat purchase value", "monetary"),
    "days_since_last_purchase": ("Days since last purchase", "recency"),
    "historical_value": ("Net spend to date", "monetary"),
    "gross_spend": ("Gross spend to date", "monetary"),
    "avg_purchase_value": ("Average purchase value", "monetary"),
    "max_purchase_value": ("Largest purchase", "monetary"),
    "std_purchase_value": ("Spread of purchase values", "monetary"),
    "first_purchase_value": ("First purchase value", "monetary"),
    "last_purchase_value": ("Last purchase value", "monetary"),
    "n_transactions": ("Transactions to date", "frequency"),
    "transactions_per_purchase_day": ("Transactions per purchase day", "basket"),
    "purchase_rate": ("Repeat purchases per day of tenure", "frequency"),
    "ipt_mean": ("Mean days between purchases", "frequency"),
    "ipt_std": ("Spread of days between purchases", "frequency"),
    "ipt_cv": ("Regularity of purchases (CV of gaps)", "frequency"),
    "ipt_min": ("Shortest gap between purchases", "frequency"),
    "ipt_max": ("Longest gap between purchases", "frequency"),
    "ipt_last": ("Last gap between purchases", "recency"),
    "overdue_ratio": ("Days since last purchase / usual gap", "recency"),
    "n_returns": ("Returns to date", "returns"),
    "returned_amount": ("Amount returned to date", "returns"),
    "return_rate": ("Share of spend returned", "returns"),
    "total_quantity": ("Items bought to date", "basket"),
    "quantity_per_purchase_day": ("Items per purchase day", "basket"),
    "avg_unit_price": ("Average price per item", "basket"),
    "n_orders": ("Orders to date", "frequency"),
    "n_products": ("Distinct products bought", "basket"),
    "n_channels": ("Distinct channels used", "basket"),
    "bgnbd_expected_purchases": ("BG/NBD expected purchases in horizon", "baseline"),
    "bgnbd_p_alive": ("BG/NBD probability alive", "baseline"),
    "bgnbd_p_no_purchase": ("BG/NBD probability of no purchase in horizon", "baseline"),
    "gg_expected_spend": ("Gamma-Gamma expected spend per purchase", "baseline"),
    "bgnbd_expected_value": ("BG/NBD x Gamma-Gamma expected value", "baseline"),
}

_WINDOW = re.compile(r"^(purchase_days|spend)_(\d+)d$")
_TREND = re.compile(r"^(purchase|spend)_trend_(\d+)_(\d+)$")


def describe(name: str) -> FeatureInfo:
    """Readable label and family of a feature column; unknown names keep their column name."""
    if name in _FIXED:
        label, family = _FIXED[name]
        return FeatureInfo(name, label, family)
    if match := _WINDOW.match(name):
        kind, days = match.groups()
        if kind == "purchase_days":
            return FeatureInfo(name, f"Purchase days in last {days} days", "frequency")
        return FeatureInfo(name, f"Spend in last {days} days", "monetary")
    if match := _TREND.match(name):
        kind, short, long = match.groups()
        what = "purchase days" if kind == "purchase" else "spend"
        return FeatureInfo(name, f"Trend of {what}: last {short} vs {long} days", "trend")
    return FeatureInfo(name, name.replace("_", " ").capitalize(), "other")
