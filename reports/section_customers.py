"""Report section about the customer base: tiers, stages, value at risk, value x risk."""

from __future__ import annotations

from typing import Final

import pandas as pd
from clv.features import schema

from . import plots_customers, tables
from .data import ReportData
from .figures import money, percent, to_data_uri
from .html import Section

# --- customer base ----------------------------------------------------------------------------
_SUMMARY_FORMATS: Final = {
    "customers": lambda v: f"{v:,}",
    "share_of_customers": percent,
    "historical_value": money,
    "share_of_historical": percent,
    "predicted_value": money,
    "share_of_value": percent,
    "mean_value": lambda v: money(v, 2),
    "churn_probability": percent,
    "value_at_risk": money,
    "risk_share": percent,
}
_SUMMARY_HEADERS: Final = {
    "predicted_value_range": "predicted value",
    "share_of_customers": "% customers",
    "historical_value": "historical value",
    "share_of_historical": "% historical",
    "predicted_value": "predicted value",
    "share_of_value": "% predicted",
    "mean_value": "mean predicted",
    "churn_probability": "mean churn risk",
    "value_at_risk": "value at risk",
    "risk_share": "% of value at risk",
}


def customer_base(data: ReportData) -> Section:
    """Value tiers, lifecycle stages, historical vs predicted, value at risk, value x risk."""
    section = Section("customer-base", "The customer base")
    predictions = data.base.predictions
    horizon = data.model.spec.horizon_days
    total_value = float(predictions["predicted_value"].sum())
    total_risk = float(predictions["value_at_risk"].sum())
    top = tables.concentration(predictions)
    section.text(
        f"{len(predictions):,} customers as of {data.base.as_of}: predicted value "
        f"{money(total_value)} over the next {horizon} days, and {money(total_risk)} more at "
        f"risk of leaving with churn. The top 1% of customers hold {percent(top[0.01])} of "
        f"the predicted value, the top 10% hold {percent(top[0.1])}."
    )
    section.heading("Value tiers")
    tiers = tables.tier_summary(predictions, data.model.spec.tier_thresholds)
    section.figure(
        to_data_uri(plots_customers.tier_shares(tiers, predictions)),
        "Value tiers and concentration of value",
        "Left: each tier's share of customers and of predicted value. Right: the share of "
        "predicted value held by the most valuable customers.",
    )
    section.table(tiers, formats=_SUMMARY_FORMATS, headers={**_SUMMARY_HEADERS, "segment": "tier"})
    section.heading("Lifecycle stages")
    stages = tables.segment_summary(
        predictions, schema.LIFECYCLE_STAGE, list(schema.LIFECYCLE_STAGES)
    )
    section.figure(
        to_data_uri(plots_customers.stage_shares(stages)),
        "Lifecycle stages",
        "Each stage's share of customers, of spend to date, of predicted value and of value "
        "at risk.",
    )
    section.table(
        stages, formats=_SUMMARY_FORMATS, headers={**_SUMMARY_HEADERS, "segment": "stage"}
    )
    section.heading("Historical vs predicted value")
    section.figure(
        to_data_uri(plots_customers.historical_vs_predicted(predictions)),
        "Historical vs predicted value",
        "Net spend to date against predicted value over the horizon, per customer: past spend "
        "alone does not say who will be valuable.",
    )
    section.heading("Value at risk by segment")
    section.text(
        "Value at risk is what a customer would spend if active, times the probability "
        "that they churn: the potential value a retention effort could win back."
    )
    section.figure(
        to_data_uri(
            plots_customers.value_at_risk_by_segment(
                {"by lifecycle stage": stages, "by value tier": tiers}
            )
        ),
        "Value at risk by segment",
        "Predicted value (kept) and value at risk, per lifecycle stage and value tier.",
    )
    section.heading("Value × churn risk")
    counts, value = tables.value_risk_matrix(predictions)
    section.figure(
        to_data_uri(plots_customers.value_risk_heatmap(counts, value)),
        "Value tier by churn risk matrix",
        "Customers and predicted value in each cell; valuable customers at high risk are the "
        "first to call.",
    )
    cells = pd.DataFrame(
        {
            "tier": counts.index,
            **{
                band: [f"{counts.at[t, band]:,} · {money(value.at[t, band])}" for t in counts.index]
                for band in counts.columns
            },
        }
    )
    section.table(cells)
    return section
