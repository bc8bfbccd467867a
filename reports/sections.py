"""The report's sections, each built from `ReportData`: words, tables and embedded figures."""

from __future__ import annotations

import logging
import math
from typing import Final

import pandas as pd
from clv.features import schema
from clv.models.composite import BASELINE_FEATURES
from clv.models.spec import VALUE_TIERS
from clv.training.artifacts import BASELINE_CHURN_PROBABILITY, BASELINE_VALUE

from . import plots_accuracy, plots_customers, plots_drivers, tables
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

logger = logging.getLogger(__name__)

# metric -> (readable name, direction: +1 higher is better, -1 lower is better, 0 closest to 1)
METRICS: Final = {
    "normalized_gini": ("Normalized Gini of the value ranking", 1),
    "spearman": ("Spearman rank correlation, value", 1),
    "top_decile_capture": ("Share of actual value in the top 10% by prediction", 1),
    "decile_mape": ("Mean relative error of decile totals", -1),
    "total_ratio": ("Total predicted / total actual value", 0),
    "mae": ("Mean absolute error per customer (currency)", -1),
    "rmse": ("Root mean squared error per customer (currency)", -1),
    "roc_auc": ("Churn ROC AUC", 1),
    "pr_auc": ("Churn PR AUC (average precision)", 1),
    "brier": ("Churn Brier score", -1),
    "log_loss": ("Churn log loss", -1),
    "n_customers": ("Customers evaluated", None),
    "total_actual": ("Total actual value (currency)", None),
    "total_predicted": ("Total predicted value (currency)", None),
}


def _num(value: float) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "–"
    if abs(value) >= 1000:
        return f"{value:,.0f}"
    return f"{value:.3f}"


def metrics_table(metrics: dict[str, dict[str, float]]) -> pd.DataFrame:
    """One row per metric: readable name, model, baseline, and which of the two does better."""
    model = metrics.get("model", {})
    baseline = metrics.get("baseline", {})
    names = [m for m in METRICS if m in model] + [m for m in model if m not in METRICS]
    rows = []
    for name in names:
        label, direction = METRICS.get(name, (name.replace("_", " "), None))
        m, b = model.get(name, math.nan), baseline.get(name, math.nan)
        better = ""
        if direction is not None and not (math.isnan(m) or math.isnan(b)) and m != b:
            model_wins = abs(m - 1) < abs(b - 1) if direction == 0 else (m - b) * direction > 0
            better = "model" if model_wins else "baseline"
        rows.append({"metric": label, "model": m, "baseline": b, "better": better})
    return pd.DataFrame(rows)


def _metric_section_table(section: Section, metrics: dict[str, dict[str, float]]) -> None:
    section.table(
        metrics_table(metrics),
        formats={"model": _num, "baseline": _num},
        headers={"baseline": "BG/NBD + Gamma-Gamma", "better": "better"},
    )


# --- model card -------------------------------------------------------------------------------
def model_card(data: ReportData) -> Section:
    """Which model, trained on what, evaluated how, and its validation metrics."""
    section = Section("model-card", "Model card")
    spec = data.model.spec
    window = spec.training_window
    loaded = data.loaded
    params = data.run_params
    n_baseline = sum(1 for n in spec.feature_names if n in BASELINE_FEATURES)
    customers = [f"{len(data.base.features):,} in this report's customer base"]
    if data.evaluation is not None:
        customers.append(f"{len(data.evaluation.predictions):,} evaluated")
    trained_on = _param(params, "n_train_customers")
    if trained_on:
        customers.insert(0, f"{int(float(trained_on)):,} in training")
    thresholds = spec.tier_thresholds
    rows = [
        ("Model", f"{loaded.name} version {loaded.version}" + _alias(loaded.alias)),
        ("MLflow run", loaded.run_id or "–"),
        ("Trained at", f"{spec.trained_at:%Y-%m-%d %H:%M} UTC"),
        ("Code version", spec.code_version),
        ("Training data window", f"{window.first_date} to {window.last_date}"),
        ("Training cutoffs", ", ".join(str(c) for c in window.cutoffs)),
        ("Horizon", f"{spec.horizon_days} days after each cutoff"),
        ("Customers", "; ".join(customers)),
        (
            "Evaluation",
            data.evaluation.source if data.evaluation is not None else "none available",
        ),
        (
            "Inputs",
            f"{len(spec.feature_names)} features, {n_baseline} of them outputs of the "
            "BG/NBD + Gamma-Gamma model",
        ),
        (
            "Value tiers (predicted value)",
            f"platinum ≥ {thresholds.platinum:,.0f} (top 1% in training), gold ≥ "
            f"{thresholds.gold:,.0f} (top 10%), silver ≥ {thresholds.silver:,.0f} (top 50%)",
        ),
        (
            "Customer base of this report",
            f"{data.base.source}, as of {data.base.as_of} (log from "
            f"{data.base.log_first_date} to {data.base.log_last_date})",
        ),
    ]
    source = _param(params, "source")
    if source or spec.data_hash:
        digest = f" (sha256 {spec.data_hash[:12]}…)" if spec.data_hash else ""
        rows.insert(4, ("Training data", f"{source or 'unrecorded source'}{digest}"))
    design, cutoff = _param(params, "evaluation"), _param(params, "evaluation_cutoff")
    if design and cutoff:
        rows.insert(8, ("Evaluation design", f"{design} at cutoff {cutoff}"))
    section.card(rows)
    section.heading("Validation metrics, next to the BG/NBD + Gamma-Gamma baseline")
    if data.metrics.get("model"):
        section.text(
            f"From {data.metrics_source}. Value metrics compare predicted value with actual "
            f"spend over the {spec.horizon_days}-day horizon; churn metrics compare the churn "
            "probability with whether the customer bought nothing in it."
        )
        _metric_section_table(section, data.metrics)
    else:
        section.note("The model carries no validation metrics.")
    return section


def _param(params: dict[str, str], name: str) -> str | None:
    """A training-run parameter, as `clv train` logs it (`data.<name>`) or unprefixed."""
    return params.get(f"data.{name}", params.get(name))


def _alias(alias: str | None) -> str:
    return f" (alias @{alias})" if alias else ""


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


# --- accuracy ---------------------------------------------------------------------------------
def accuracy(data: ReportData) -> Section:
    """Lift by decile, cumulative gain with the Gini, churn calibration, total forecast error."""
    section = Section("accuracy", "Accuracy")
    if data.evaluation is None:
        section.note(
            "No accuracy figures: " + data.evaluation_note + " Train with `clv train`, which "
            "logs the evaluation predictions, or give --transactions and an --as-of date "
            "followed by a full horizon of data."
        )
        return section
    evaluation = data.evaluation.predictions
    section.text(
        f"Measured on {len(evaluation):,} customers: {data.evaluation.source}. Predictions are "
        f"compared with what each customer actually spent over the "
        f"{data.model.spec.horizon_days}-day horizon."
    )
    if data.evaluation_note:
        section.note(data.evaluation_note)
    with_baseline = tables.has_baseline(evaluation)
    columns = {"model": ("predicted_value", "churn_probability")}
    if with_baseline:
        columns["baseline"] = (BASELINE_VALUE, BASELINE_CHURN_PROBABILITY)
    _metric_section_table(section, tables.accuracy_metrics(evaluation).to_dict())

    section.heading("Predicted vs actual value by decile (lift chart)")
    deciles = {name: tables.deciles(evaluation, value) for name, (value, _) in columns.items()}
    section.figure(
        to_data_uri(plots_accuracy.lift_chart(deciles)),
        "Lift chart",
        "Customers split into ten groups by predicted value (1 = highest); bars compare the "
        "group's mean predicted value with its mean actual spend.",
    )
    section.table(
        deciles["model"],
        formats={
            "predicted_sum": money,
            "predicted_mean": lambda v: money(v, 2),
            "actual_sum": money,
            "actual_mean": lambda v: money(v, 2),
            "lift": lambda v: f"{v:.2f}",
        },
        headers={
            "predicted_sum": "predicted total",
            "predicted_mean": "predicted mean",
            "actual_sum": "actual total",
            "actual_mean": "actual mean",
        },
    )
    section.heading("Cumulative gain and Gini")
    curves = {name: tables.gains(evaluation, value) for name, (value, _) in columns.items()}
    section.figure(
        to_data_uri(plots_accuracy.gain_chart(curves)),
        "Cumulative gain",
        "Share of the actual value captured by targeting the top x% of customers by predicted "
        "value. Normalized Gini: 1 is a perfect ranking, 0 a random one.",
    )
    section.heading("Churn calibration")
    calibration = {
        name: tables.calibration(evaluation, churn) for name, (_, churn) in columns.items()
    }
    section.figure(
        to_data_uri(plots_accuracy.calibration_chart(calibration)),
        "Churn calibration curve",
        "Customers in ten equal groups by predicted churn probability: on the diagonal, "
        "the predicted probability matches the share that actually bought nothing.",
    )
    section.heading("Error of the total forecast")
    totals = tables.total_forecast(evaluation)
    section.figure(
        to_data_uri(plots_accuracy.total_forecast_chart(totals)),
        "Total forecast vs actual",
        "Total predicted value against total actual spend, overall and per lifecycle stage, "
        "with the relative error of each forecast.",
    )
    signed = lambda v: "–" if pd.isna(v) else f"{100 * v:+.1f}%"  # noqa: E731
    section.table(
        totals if with_baseline else totals.drop(columns=["baseline", "baseline_error"]),
        formats={
            "customers": lambda v: f"{v:,}",
            "actual": money,
            "model": money,
            "baseline": money,
            "model_error": signed,
            "baseline_error": signed,
        },
        headers={"model_error": "model error", "baseline_error": "baseline error"},
    )
    return section


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
