"""`clv train`: evaluate, track in MLflow, register, and (with --promote) gate the champion."""

from __future__ import annotations

import contextlib
import json
import logging
import math
from collections.abc import Iterator
from pathlib import Path
from typing import Any, Final

import typer
from clv.features.atomic import atomic_path
from clv.features.config import FeatureConfig
from clv.training.config import TrainingConfig
from pydantic import ValidationError

from .errors import CliUsageError, user_errors
from .features_cmd import column_mapping, feature_settings, parse_date, read_config_tables
from .options import (
    TRANSACTIONS_HELP,
    AmountCol,
    ChannelCol,
    CurrencySymbol,
    CustomerCol,
    DecimalSeparator,
    Encoding,
    NaiveTimezone,
    OrderCol,
    ProductCol,
    QuantityCol,
    TimestampCol,
    TimestampFormat,
    Timezone,
    UnitPriceCol,
)

logger = logging.getLogger(__name__)

EVALUATIONS: Final = ("customer-holdout", "out-of-time")
# The same values as clv.training.tracking.DEFAULT_EXPERIMENT and
# clv.models.registry.REGISTERED_MODEL_NAME (a test keeps them equal), spelled out here because
# importing MLflow would add seconds to every `clv` command, not only to `clv train`.
DEFAULT_EXPERIMENT: Final = "clv"
DEFAULT_MODEL_NAME: Final = "clv"
# TrainingConfig fields that have their own command-line option (named in error messages).
_OPTION_FOR_FIELD: Final = {
    "horizon_days": "--horizon-days",
    "cutoff": "--cutoff",
    "evaluation": "--evaluation",
    "holdout_fraction": "--holdout-fraction",
    "seed": "--seed",
}
_SHOWN_METRICS: Final = (
    "spearman",
    "normalized_gini",
    "top_decile_capture",
    "decile_mape",
    "total_ratio",
    "roc_auc",
    "brier",
)


def load_train_config(path: Path | None) -> dict[str, dict[str, Any]]:
    """The [columns], [features] and [training] tables of a TOML file (empty when no file)."""
    tables = read_config_tables(path)
    if "feature_config" in tables["training"]:
        raise CliUsageError(
            f"config file {path}: put feature settings in the [features] table", "--config"
        )
    return tables


def training_config(
    table: dict[str, Any], features: FeatureConfig, overrides: dict[str, Any]
) -> TrainingConfig:
    """TrainingConfig from the [training] table, overridden by command-line options."""
    merged = {**table, **{k: v for k, v in overrides.items() if v is not None}}
    if merged.get("horizon_days") is None:
        raise CliUsageError(
            "give --horizon-days (or horizon_days in the [training] table of --config)",
            "--horizon-days",
        )
    try:
        return TrainingConfig(**merged, feature_config=features)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"])
        top = str(first["loc"][0]) if first["loc"] else ""
        if top in overrides and overrides[top] is not None:
            option = _OPTION_FOR_FIELD[top]
            raise CliUsageError(f"{option}: {first['msg']}", option) from None
        raise CliUsageError(f"[training] {where}: {first['msg']}", "--config") from None


@contextlib.contextmanager
def training_errors() -> Iterator[None]:
    """`user_errors`, plus the training and tracking errors that are the user's to fix."""
    from clv.training.fit import TrainingDataError
    from clv.training.tracking import TrackingStoreError

    with user_errors():
        try:
            yield
        except (TrainingDataError, TrackingStoreError) as exc:
            raise CliUsageError(str(exc), getattr(exc, "field", None)) from None


def write_metrics(path: Path, metrics: dict[str, dict[str, float]]) -> None:
    """{"model": {...}, "baseline": {...}} as JSON (NaN as null), written atomically."""
    clean = {
        who: {k: (None if not math.isfinite(v) else v) for k, v in values.items()}
        for who, values in metrics.items()
    }
    with atomic_path(path) as tmp:
        tmp.write_text(json.dumps(clean, indent=2, allow_nan=False) + "\n")


def _check_writable(path: Path) -> None:
    """Refuse an output path that cannot be written, before hours of training."""
    if path.is_dir():
        raise CliUsageError(f"--metrics-out {path} is a folder", "--metrics-out")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise CliUsageError(f"--metrics-out {path}: {exc.strerror}", "--metrics-out") from None


def _metrics_lines(metrics: dict[str, dict[str, float]]) -> list[str]:
    width = max(len(m) for m in _SHOWN_METRICS)
    lines = [f"{'metric':<{width}}  {'model':>9}  {'baseline':>9}"]
    for name in _SHOWN_METRICS:
        model = metrics["model"].get(name, math.nan)
        baseline = metrics.get("baseline", {}).get(name, math.nan)
        lines.append(f"{name:<{width}}  {model:>9.4f}  {baseline:>9.4f}")
    return lines


def train(
    transactions_path: Path = typer.Option(..., "--transactions", help=TRANSACTIONS_HELP + "."),
    horizon_days: int = typer.Option(
        None,
        "--horizon-days",
        help="Days of future value and churn to predict (or horizon_days in --config).",
    ),
    cutoff: str = typer.Option(
        None,
        "--cutoff",
        help="Evaluation cutoff YYYY-MM-DD (default: the latest whose horizon is in the data).",
    ),
    evaluation: str = typer.Option(
        None,
        "--evaluation",
        help="customer-holdout (a seeded split of customers) or out-of-time (train on earlier "
        "cutoffs only). Default: customer-holdout.",
    ),
    holdout_fraction: float = typer.Option(
        None,
        "--holdout-fraction",
        help="customer-holdout: share of customers evaluated. Default: 0.3.",
    ),
    promote: bool = typer.Option(
        False,
        "--promote",
        help="Move the 'champion' alias to the new version if it beats the baseline and the "
        "current champion on the same evaluation customers.",
    ),
    metrics_out: Path = typer.Option(
        None, "--metrics-out", help='Write {"model": {...}, "baseline": {...}} to this JSON file.'
    ),
    seed: int = typer.Option(
        None, "--seed", help="Seed of every random choice (split, boosting). Default: 42."
    ),
    experiment: str = typer.Option(DEFAULT_EXPERIMENT, "--experiment", help="MLflow experiment."),
    model_name: str = typer.Option(
        DEFAULT_MODEL_NAME, "--model-name", help="Registered model name."
    ),
    customer_col: CustomerCol = None,
    timestamp_col: TimestampCol = None,
    amount_col: AmountCol = None,
    order_col: OrderCol = None,
    quantity_col: QuantityCol = None,
    product_col: ProductCol = None,
    channel_col: ChannelCol = None,
    unit_price_col: UnitPriceCol = None,
    timestamp_format: TimestampFormat = None,
    decimal_separator: DecimalSeparator = None,
    encoding: Encoding = None,
    currency_symbol: CurrencySymbol = None,
    naive_timezone: NaiveTimezone = None,
    drop_zero_amounts: bool = typer.Option(
        False, "--drop-zero-amounts", help="Drop (and count) transactions of amount 0."
    ),
    timezone: Timezone = None,
    config_file: Path = typer.Option(
        None,
        "--config",
        help="TOML file with tables columns and features (as for clv features) and training "
        "(TrainingConfig fields, e.g. training_cutoffs; training.params.churn.max_rounds).",
    ),
    memory_limit: str = typer.Option(None, "--memory-limit", help="DuckDB memory limit, e.g. 6GB."),
) -> None:
    """Train and evaluate the CLV model, log the run to MLflow and register the model.

    Tracking store: MLFLOW_TRACKING_URI (default sqlite:///mlflow.db).

    The run records settings, data window, input hash, git commit, model and baseline metrics,
    evaluation tables, plots and the model itself.

    With --promote the 'champion' alias moves only if the new model wins every gate metric
    against the baseline and the current champion; otherwise it stays and the failed metrics
    are printed (exit code 0: the run itself succeeded).
    """
    from clv.training.pipeline import run_training

    with training_errors():
        tables = load_train_config(config_file)
        columns = column_mapping(
            tables["columns"],
            customer_col=customer_col,
            timestamp_col=timestamp_col,
            amount_col=amount_col,
            order_col=order_col,
            quantity_col=quantity_col,
            product_col=product_col,
            channel_col=channel_col,
            timestamp_format=timestamp_format,
            decimal_separator=decimal_separator,
            naive_timezone=naive_timezone,
            unit_price_col=unit_price_col,
            encoding=encoding,
            currency=currency_symbol,
        )
        feature_config = feature_settings(tables["features"], drop_zero_amounts, timezone)
        if evaluation is not None and evaluation not in EVALUATIONS:
            raise CliUsageError(
                f"--evaluation must be one of {', '.join(EVALUATIONS)}, not '{evaluation}'",
                "--evaluation",
            )
        config = training_config(
            tables["training"],
            feature_config,
            {
                "horizon_days": horizon_days,
                "cutoff": parse_date(cutoff, "--cutoff") if cutoff else None,
                "evaluation": evaluation,
                "holdout_fraction": holdout_fraction,
                "seed": seed,
            },
        )
        if metrics_out is not None:
            _check_writable(metrics_out)
        outcome = run_training(
            transactions_path,
            config,
            columns=columns,
            experiment=experiment,
            model_name=model_name,
            promote=promote,
            memory_limit=memory_limit,
        )
    window = outcome.window
    typer.echo(
        f"evaluated {int(window['n_eval_customers']):,} customers at "
        f"{window['evaluation_cutoff']} ({window['evaluation']}, {config.horizon_days}-day "
        f"horizon; trained on {int(window['n_train_customers']):,})"
    )
    typer.echo("\n".join(_metrics_lines(outcome.metrics)))
    typer.echo(f"MLflow run {outcome.run_id} at {outcome.tracking_uri}")
    typer.echo(f"registered {outcome.model_uri}")
    if outcome.decision is not None:
        typer.echo(outcome.decision.summary(outcome.version))
    if metrics_out is not None:
        write_metrics(metrics_out, outcome.metrics)
        typer.echo(f"wrote metrics to {metrics_out}")


def register(app: typer.Typer) -> None:
    app.command("train")(train)
