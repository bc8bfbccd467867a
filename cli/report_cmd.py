"""`clv report`: one self-contained HTML report on a registered model and its customer base."""

from __future__ import annotations

import logging
from pathlib import Path

import typer

from .errors import CliUsageError, user_errors
from .features_cmd import column_mapping, load_config_file, parse_date
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
    UnitPriceCol,
)

logger = logging.getLogger(__name__)

# clv.models.registry.CHAMPION_ALIAS, spelled out: importing MLflow here would add seconds to
# every `clv` command (a test keeps the two equal).
CHAMPION_ALIAS = "champion"


def report(
    output: Path = typer.Option(..., "--output", help="Output HTML file."),
    model_alias: str = typer.Option(
        CHAMPION_ALIAS, "--model-alias", help="Registry alias of the model `clv` to report on."
    ),
    model_version: str = typer.Option(
        None,
        "--model-version",
        help="Registered version of `clv` to report on (instead of --model-alias).",
    ),
    transactions_path: Path = typer.Option(
        None,
        "--transactions",
        help=TRANSACTIONS_HELP + ", of the customer base. Default: the bundled CDNOW log.",
    ),
    as_of: str = typer.Option(
        None,
        "--as-of",
        help="Date YYYY-MM-DD of the customer base. Default: the last day of --transactions; "
        "on the bundled log, the model's last training cutoff.",
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
    config_file: Path = typer.Option(
        None,
        "--config",
        help="TOML file with a columns table (its features table is ignored: features are "
        "built with the model's own settings).",
    ),
    log_to_mlflow: bool = typer.Option(
        True,
        "--log-to-mlflow/--no-log-to-mlflow",
        help="Also log the report to the model's MLflow run (under reports/).",
    ),
) -> None:
    """Write an HTML report on a registered model: model card, value drivers, accuracy against
    the BG/NBD + Gamma-Gamma baseline, the customer base and example customers.

    The file is self-contained (images embedded) and opens offline in any browser. The model
    comes from the MLflow registry at MLFLOW_TRACKING_URI; features are built with the same code
    and settings the model was trained with.
    """
    # Imported here: matplotlib and the report modules are not needed by other commands.
    from clv.models.registry import ModelNotFoundError
    from clv.reports.build import build_report

    with user_errors():
        if output.suffix.lower() not in (".html", ".htm"):
            raise CliUsageError(f"--output must end in .html, not '{output.suffix}'", "--output")
        config_columns, _ = load_config_file(config_file)
        columns = column_mapping(
            config_columns,
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
        if transactions_path is None and (config_columns or columns.chosen()):
            raise CliUsageError(
                "column options need --transactions (the bundled log's columns are known)",
                "--transactions",
            )
        date = parse_date(as_of, "--as-of") if as_of else None
        try:
            path = build_report(
                output,
                alias=model_alias,
                transactions=transactions_path,
                columns=columns,
                as_of=date,
                log_to_mlflow=log_to_mlflow,
                version=model_version,
            )
        except ModelNotFoundError as exc:
            option = "--model-version" if model_version else "--model-alias"
            raise CliUsageError(str(exc), option) from None
    typer.echo(f"wrote {path}")


def register(app: typer.Typer) -> None:
    app.command("report")(report)
