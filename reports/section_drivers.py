"""Report sections about value drivers: global, per segment, and example customers."""

from __future__ import annotations

import pandas as pd
from clv.features import schema
from clv.models.spec import VALUE_TIERS

from . import plots_drivers, tables
from .data import ReportData
from .drivers import (
    Drivers,
    family_importance,
    importance,
    pick_examples,
    segment_contributions,
    top_drivers_by_segment,
)
from .figures import money, percent, to_data_uri
from .html import Section


# --- value drivers ----------------------------------------------------------------------------
def value_drivers(data: ReportData, drivers: Drivers) -> Section:
    """Global importance, beeswarm, dependence plots and drivers per segment."""
    section = Section("value-drivers", "Value drivers")
    explained = len(drivers.rows)
    total = len(data.base.features)
    sample_note = (
        f"all {total:,} customers"
        if explained == total
        else f"{explained:,} of {total:,} customers, sampled evenly across value tiers and "
        "weighted back to the whole base"
    )
    base_value = float(drivers.explanation.base_value[0]) if explained else 0.0
    section.text(
        "Each customer's predicted value is split exactly into a base value "
        f"({money(base_value, 2)}, the model's value with no information) plus one contribution "
        "per feature (TreeSHAP of the churn and spend models, converted to currency). "
        f"Contributions are over the {data.model.spec.horizon_days}-day horizon, computed for "
        f"{sample_note}."
    )
    table = importance(drivers)
    section.heading("What drives value overall")
    section.figure(
        to_data_uri(plots_drivers.importance_bars(table)),
        "Global importance of value drivers",
        "Mean absolute contribution to predicted value per customer, coloured by feature family.",
    )
    families = family_importance(table)
    section.table(
        families,
        formats={"mean_abs": lambda v: money(v, 2), "share": percent},
        headers={"mean_abs": "mean |contribution|", "share": "share of importance"},
    )
    section.heading("How each driver pushes value up or down")
    section.figure(
        to_data_uri(plots_drivers.beeswarm(drivers, table)),
        "Beeswarm of value drivers",
        "Each dot is a customer: its position is the feature's contribution to that customer's "
        "predicted value, its colour the customer's value of the feature (red high, blue low, "
        "grey missing).",
    )
    section.figure(
        to_data_uri(plots_drivers.dependence(drivers, table)),
        "Dependence plots of the top drivers",
        "Contribution against the feature's value for the four largest drivers, coloured by "
        "lifecycle stage.",
    )
    section.heading("Drivers per segment")
    section.text(
        "Value is relative: what moves a platinum customer's value is not what moves a "
        "bronze one's. Cells show the mean contribution (currency) of each driver in each "
        "segment; the shading is scaled within each column so every segment's pattern shows."
    )
    top = list(table["feature"].head(10))
    stages = tables.present(schema.LIFECYCLE_STAGES, pd.Series(drivers.stages))
    tiers = tables.present(VALUE_TIERS, pd.Series(drivers.tiers))
    signed_stage, _ = segment_contributions(drivers, drivers.stages, stages, top)
    signed_tier, _ = segment_contributions(drivers, drivers.tiers, tiers, top)
    section.figure(
        to_data_uri(
            plots_drivers.segment_heatmap(
                {"lifecycle stage": signed_stage, "value tier": signed_tier}
            )
        ),
        "Mean contribution of the top drivers per segment",
        "Green raises predicted value, red lowers it.",
    )
    section.table(
        _segment_driver_table(data, drivers, stages, tiers),
        formats={"customers": lambda v: f"{v:,}"},
        headers={"first": "1st driver", "second": "2nd driver", "third": "3rd driver"},
    )
    return section


def _segment_driver_table(
    data: ReportData, drivers: Drivers, stages: list[str], tiers: list[str]
) -> pd.DataFrame:
    """One row per segment: its customers and its three largest drivers (mean contribution)."""
    predictions = data.base.predictions
    rows = []
    for grouping, column, segments, order in (
        ("lifecycle stage", schema.LIFECYCLE_STAGE, drivers.stages, stages),
        ("value tier", "value_tier", drivers.tiers, tiers),
    ):
        counts = predictions[column].astype(str).value_counts()
        top = top_drivers_by_segment(drivers, segments, order, k=3)
        for segment, part in top.groupby("segment", sort=False):
            cells = [
                f"{label} ({'+' if mean >= 0 else '−'}{money(abs(mean), 2)})"
                for label, mean in zip(part["label"], part["mean"], strict=True)
            ]
            rows.append(
                {
                    "grouping": grouping,
                    "segment": str(segment).replace("_", " "),
                    "customers": int(counts.get(segment, 0)),
                    **dict(zip(("first", "second", "third"), cells, strict=False)),
                }
            )
    return pd.DataFrame(rows).fillna("")


# --- example customers ------------------------------------------------------------------------
def examples(data: ReportData) -> Section:
    """A few customers, each with a waterfall from the base value to their predicted value."""
    section = Section("examples", "Example customers")
    features, predictions = data.base.features, data.base.predictions
    picked = pick_examples(features, predictions)
    if not picked:
        section.note("No customers to show.")
        return section
    positions = [e.position for e in picked]
    explanation = data.model.explain_value(features.iloc[positions])
    section.text(
        "How each customer's drivers add up from the base value to their predicted value "
        "(currency over the horizon). Green bars raise it, red bars lower it."
    )
    for i, example in enumerate(picked):
        row = predictions.iloc[example.position]
        customer = str(row[schema.CUSTOMER_ID])
        section.heading(f"{example.title}: customer {customer}")
        section.text(
            f"Picked as {example.why}. Lifecycle stage {row[schema.LIFECYCLE_STAGE]}, "
            f"{row['value_tier']} tier; spent {money(row[schema.HISTORICAL_VALUE], 2)} to date. "
            f"Predicted value {money(row['predicted_value'], 2)} (80% interval "
            f"{money(row['value_p10'], 2)} to {money(row['value_p90'], 2)}), churn probability "
            f"{percent(row['churn_probability'])}, value at risk {money(row['value_at_risk'], 2)}."
        )
        section.figure(
            to_data_uri(
                plots_drivers.waterfall(
                    explanation.feature_names,
                    explanation.contributions[i],
                    explanation.feature_values[i],
                    float(explanation.base_value[i]),
                    float(row["predicted_value"]),
                    f"customer {customer}",
                )
            ),
            f"Waterfall of the value drivers of customer {customer}",
            "The largest contributions one by one, the rest together.",
        )
    return section
