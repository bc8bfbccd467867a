"""Report sections about the model: its card (provenance, validation metrics) and accuracy."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Final

import pandas as pd
from clv.features.config import ColumnMapping
from clv.features.datasets import cdnow_master_path
from clv.models.composite import BASELINE_FEATURES
from clv.training.artifacts import BASELINE_CHURN_PROBABILITY, BASELINE_VALUE

from . import plots_accuracy, tables
from .data import ReportData
from .figures import money, to_data_uri
from .html import Section

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
        ("Days", f"calendar days in {spec.feature_config.timezone}"),
        ("Training log columns", _columns(spec.columns)),
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
        after = next(i for i, (name, _) in enumerate(rows) if name == "Evaluation") + 1
        rows.insert(after, ("Evaluation design", f"{design} at cutoff {cutoff}"))
    section.card(rows)
    if source and data.base.bundled and Path(source).name != cdnow_master_path().name:
        section.note(
            f"This model was trained on {source}, but the customer base shown here is the "
            "bundled CDNOW log (no --transactions given): pass the model's own log for a "
            "meaningful report."
        )
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


def _columns(columns: ColumnMapping | None) -> str:
    """How the training log's columns were read: the options set, as `clv score` reuses them."""
    if columns is None:
        return "not recorded"
    chosen = columns.chosen()
    if not chosen:
        return "the contract's names (customer_id, timestamp, amount, ...)"
    return ", ".join(f"{name} = {value}" for name, value in sorted(chosen.items()))


def _param(params: dict[str, str], name: str) -> str | None:
    """A training-run parameter, as `clv train` logs it (`data.<name>`) or unprefixed."""
    return params.get(f"data.{name}", params.get(name))


def _alias(alias: str | None) -> str:
    return f" (alias @{alias})" if alias else ""


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
        f"{data.model.spec.horizon_days}-day horizon"
        + (" (metrics in the model card)." if data.evaluation.from_run else ".")
    )
    if data.evaluation_note:
        section.note(data.evaluation_note)
    with_baseline = tables.has_baseline(evaluation)
    columns = {"model": ("predicted_value", "churn_probability")}
    if with_baseline:
        columns["baseline"] = (BASELINE_VALUE, BASELINE_CHURN_PROBABILITY)
    if not data.evaluation.from_run:  # else the model card already shows these metrics
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
