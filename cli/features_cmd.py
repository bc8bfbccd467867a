"""`clv features`: point-in-time customer features (and labels) from a transaction log."""

from __future__ import annotations

import dataclasses
import importlib.metadata
import logging
import tempfile
import tomllib
from collections.abc import Callable
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Final, get_args

import typer
from clv.features import build, transactions
from clv.features.atomic import atomic_path
from clv.features.config import ColumnMapping, FeatureConfig, currency_symbol, known_timezone
from clv.features.sql import string_literal

from .errors import CliUsageError, user_errors
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


def _choices(field: str) -> tuple[str, ...]:
    """The values a Literal field of ColumnMapping accepts."""
    return get_args(ColumnMapping.model_fields[field].annotation)


# Options whose values ColumnMapping restricts (its Literals), checked here to name the option.
DECIMAL_SEPARATORS: Final = _choices("decimal_separator")
ENCODINGS: Final = _choices("encoding")


def _check_choice(value: str | None, choices: tuple[str, ...], option: str) -> None:
    if value is not None and value not in choices:
        quoted = [repr(c) for c in choices]
        allowed = ", ".join(quoted[:-1]) + " or " + quoted[-1]
        raise CliUsageError(f"{option} must be {allowed}, not '{value}'", option)


def parse_date(value: str, option: str) -> date:
    """An ISO date (YYYY-MM-DD) from a command-line option, or a CliUsageError naming it."""
    try:
        return datetime.strptime(value, "%Y-%m-%d").date()
    except ValueError:
        raise CliUsageError(
            f"{option} '{value}' is not a date in the form YYYY-MM-DD", option
        ) from None


CONFIG_SECTIONS: Final = ("columns", "features", "training")


def read_config_tables(path: Path | None) -> dict[str, dict[str, object]]:
    """Every table of a TOML config file, by name (each empty when absent or with no file).

    The tables are [columns], [features] and [training] (read by `clv train`), so one file
    serves every command; any other table is an error naming the file.
    """
    tables: dict[str, dict[str, object]] = {name: {} for name in CONFIG_SECTIONS}
    if path is None:
        return tables
    try:
        data = tomllib.loads(path.read_text())
    except FileNotFoundError:
        raise CliUsageError(f"config file not found: {path}", "--config") from None
    except tomllib.TOMLDecodeError as exc:
        raise CliUsageError(f"config file {path} is not valid TOML: {exc}", "--config") from None
    unknown = set(data) - set(CONFIG_SECTIONS)
    if unknown:
        raise CliUsageError(
            f"config file {path}: unknown section(s) {sorted(unknown)}; "
            "expected [columns], [features] and [training]",
            "--config",
        )
    tables.update({name: dict(data[name]) for name in CONFIG_SECTIONS if name in data})
    return tables


def load_config_file(path: Path | None) -> tuple[dict[str, object], dict[str, object]]:
    """The [columns] and [features] tables of a TOML config file (empty when no file)."""
    tables = read_config_tables(path)
    return tables["columns"], tables["features"]


def column_mapping(
    config_columns: dict[str, object],
    *,
    customer_col: str | None = None,
    timestamp_col: str | None = None,
    amount_col: str | None = None,
    order_col: str | None = None,
    quantity_col: str | None = None,
    product_col: str | None = None,
    channel_col: str | None = None,
    timestamp_format: str | None = None,
    decimal_separator: str | None = None,
    naive_timezone: str | None = None,
    unit_price_col: str | None = None,
    encoding: str | None = None,
    currency: str | None = None,
) -> ColumnMapping:
    """Column mapping from the config file, overridden by command-line options (keywords:
    each command passes its own column options by name)."""
    _check_choice(decimal_separator, DECIMAL_SEPARATORS, "--decimal-separator")
    _check_choice(encoding, ENCODINGS, "--encoding")
    if currency is not None:
        _checked(currency_symbol, currency, "--currency-symbol")
    if naive_timezone is not None:
        _checked(known_timezone, naive_timezone, "--naive-timezone")
    overrides = {
        "customer_id": customer_col,
        "timestamp": timestamp_col,
        "amount": amount_col,
        "order_id": order_col,
        "quantity": quantity_col,
        "product": product_col,
        "channel": channel_col,
        "timestamp_format": timestamp_format,
        "decimal_separator": decimal_separator,
        "naive_timezone": naive_timezone,
        "unit_price": unit_price_col,
        "encoding": encoding,
        "currency_symbol": currency,
    }
    merged = {**config_columns, **{k: v for k, v in overrides.items() if v is not None}}
    return ColumnMapping(**merged)  # type: ignore[arg-type]


def _checked(check: Callable[[str], str], value: str, option: str) -> str:
    """`check(value)` (a config validator); its ValueError as a usage error naming `option`."""
    try:
        return check(value)
    except ValueError as exc:
        raise CliUsageError(f"{option}: {exc}", option) from None


def feature_settings(
    config_features: dict[str, object], drop_zero_amounts: bool, timezone: str | None
) -> FeatureConfig:
    """Feature settings from the config file's features table, overridden by the options."""
    settings = dict(config_features)
    if drop_zero_amounts:
        settings["drop_zero_amounts"] = True
    if timezone is not None:
        settings["timezone"] = _checked(known_timezone, timezone, "--timezone")
    return FeatureConfig(**settings)  # type: ignore[arg-type]


def resolve_cutoffs(
    cutoff: list[str] | None,
    start: str | None,
    end: str | None,
    step_days: int | None,
    step_months: int | None = None,
) -> list[date]:
    """Cutoffs from repeated --cutoff, or from --cutoff-start/--cutoff-end and a step
    (--cutoff-step-days or --cutoff-step-months)."""
    ranged = [start, end, step_days, step_months]
    if cutoff and any(v is not None for v in ranged):
        raise CliUsageError(
            "give either --cutoff or a cutoff range (--cutoff-start, --cutoff-end, a step)",
            "--cutoff",
        )
    if cutoff:
        return sorted({parse_date(c, "--cutoff") for c in cutoff})
    if any(v is not None for v in ranged):
        if step_days is not None and step_months is not None:
            raise CliUsageError(
                "give either --cutoff-step-days or --cutoff-step-months", "--cutoff-step-days"
            )
        if start is None or end is None or (step_days is None and step_months is None):
            raise CliUsageError(
                "a cutoff range needs --cutoff-start, --cutoff-end and --cutoff-step-days or "
                "--cutoff-step-months",
                "--cutoff-start",
            )
        return build.cutoff_range(
            parse_date(start, "--cutoff-start"),
            parse_date(end, "--cutoff-end"),
            step_days,
            step_months=step_months,
        )
    raise CliUsageError("give at least one --cutoff date (or a cutoff range)", "--cutoff")


def features(
    transactions_path: Path = typer.Option(..., "--transactions", help=TRANSACTIONS_HELP + "."),
    output: Path = typer.Option(..., "--output", help="Output file: .parquet or .csv."),
    cutoff: list[str] = typer.Option(
        None, "--cutoff", help="Cutoff date YYYY-MM-DD (repeat for a panel)."
    ),
    cutoff_start: str = typer.Option(None, "--cutoff-start", help="First cutoff of a range."),
    cutoff_end: str = typer.Option(None, "--cutoff-end", help="Last cutoff of a range."),
    cutoff_step_days: int = typer.Option(None, "--cutoff-step-days", help="Days between cutoffs."),
    cutoff_step_months: int = typer.Option(
        None,
        "--cutoff-step-months",
        help="Months between cutoffs (from a month's last day: month ends).",
    ),
    horizon_days: int = typer.Option(
        None, "--horizon-days", help="Add labels for this many days after each cutoff."
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
        None, "--config", help="TOML file with a columns table and a features table."
    ),
    memory_limit: str = typer.Option(
        None, "--memory-limit", help="DuckDB memory limit, e.g. 6GB (spills to disk beyond it)."
    ),
    sort_rows: bool = typer.Option(
        False,
        "--sorted",
        help="Write rows sorted by cutoff, then customer (the same file on every run; slower "
        "on large logs). By default they come in no particular order.",
    ),
) -> None:
    """Build one row of features per customer and cutoff (plus labels with --horizon-days).

    Features use only transactions on or before each cutoff; labels only the days after it,
    up to the horizon, which must be fully inside the data.
    """
    with user_errors():
        config_columns, config_features = load_config_file(config_file)
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
        output.parent.mkdir(parents=True, exist_ok=True)
        feature_config = feature_settings(config_features, drop_zero_amounts, timezone)
        cutoffs = resolve_cutoffs(
            cutoff, cutoff_start, cutoff_end, cutoff_step_days, cutoff_step_months
        )
        suffix = output.suffix.lower()
        if suffix not in (".parquet", ".csv"):
            raise CliUsageError(
                f"--output must end in .parquet or .csv, not '{suffix}'", "--output"
            )
        # DuckDB spills beside the output when a --memory-limit is reached.
        with tempfile.TemporaryDirectory(prefix=".clv-spill-", dir=output.parent) as spill:
            con = transactions.connect(memory_limit=memory_limit, temp_directory=spill)
            try:
                log = transactions.load_transactions(
                    transactions_path, columns, feature_config, con
                )
                build.check_cutoffs(log, cutoffs, horizon_days)
                query = build.panel_query(
                    log, cutoffs, horizon_days, feature_config, ordered=sort_rows
                )
                provenance = {
                    "clv_version": _version(),
                    "written_at": datetime.now(UTC).isoformat(timespec="seconds"),
                    "source": str(transactions_path.resolve()),
                    "cutoffs": [c.isoformat() for c in cutoffs],
                    "horizon_days": horizon_days,
                    "features": feature_config.model_dump(mode="json"),
                    "columns": columns.model_dump(mode="json"),
                    "cleaning": dataclasses.asdict(log.report),
                }
                fmt = (
                    build.parquet_options(provenance)
                    if suffix == ".parquet"
                    else "FORMAT CSV, HEADER"
                )
                with atomic_path(output) as tmp:
                    copied = con.execute(f"COPY ({query}) TO {string_literal(tmp)} ({fmt})")
                    rows = int(copied.fetchall()[0][0])
            finally:
                con.close()
    typer.echo(f"wrote {rows:,} rows ({len(cutoffs)} cutoff(s)) to {output}")


def _version() -> str:
    try:
        return importlib.metadata.version("clv-service")
    except importlib.metadata.PackageNotFoundError:
        return "unknown"


def register(app: typer.Typer) -> None:
    app.command("features")(features)
