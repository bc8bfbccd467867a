"""`clv generate`: a synthetic transaction log with known ground truth (for tests, benchmarks)."""

from __future__ import annotations

from pathlib import Path

import typer
from clv.features.synthetic import SyntheticConfig, write_synthetic

from .errors import CliUsageError, user_errors
from .features_cmd import parse_date

_SUFFIXES = (".parquet", ".csv")


def _check_suffix(path: Path, option: str) -> None:
    if path.suffix.lower() not in _SUFFIXES:
        raise CliUsageError(
            f"{option} must end in .parquet or .csv, not '{path.suffix or path.name}'", option
        )


def generate(
    customers: int = typer.Option(..., "--customers", help="Number of customers to simulate."),
    output: Path = typer.Option(..., "--output", help="Output log: .parquet (or .csv)."),
    seed: int = typer.Option(42, "--seed", help="Random seed: same seed, same file."),
    start: str = typer.Option("2023-01-01", "--start", help="First day of the window."),
    days: int = typer.Option(730, "--days", help="Length of the window in days."),
    string_ids: bool = typer.Option(
        True, "--string-ids/--int-ids", help="Customer ids like C000000001, or integers."
    ),
    process: str = typer.Option(
        "bgnbd",
        "--process",
        help="Dropout: bgnbd (after each repeat purchase) or pareto (exponential lifetime).",
    ),
    truth: Path = typer.Option(
        None,
        "--truth",
        help="Also write per-customer ground truth (rate, dropout, mean spend, alive) here.",
    ),
) -> None:
    """Simulate a buy-till-you-die transaction log (BG/NBD or Pareto/NBD, Gamma-Gamma spend).

    Customers are acquired over the window and buy at a gamma-distributed rate, modulated by
    weekly and annual seasonality and by the acquisition channel, until they drop out. Orders
    have lines with a product and a quantity; about 2% of lines are returned later. The log has
    the columns customer_id, timestamp, amount, order_id, quantity, product, channel and is
    written block by block, so its size is not bounded by memory.
    """
    with user_errors():
        for value, option in ((customers, "--customers"), (days, "--days")):
            if value <= 0:
                raise CliUsageError(f"{option} must be a positive number, not {value}", option)
        if seed < 0:
            raise CliUsageError(f"--seed must be 0 or more, not {seed}", "--seed")
        _check_suffix(output, "--output")
        if truth is not None:
            _check_suffix(truth, "--truth")
            if truth.resolve() == output.resolve():
                raise CliUsageError("--truth must be another file than --output", "--truth")
        if process not in ("bgnbd", "pareto"):
            raise CliUsageError(f"--process must be bgnbd or pareto, not '{process}'", "--process")
        config = SyntheticConfig(
            customers=customers,
            seed=seed,
            start=parse_date(start, "--start"),
            days=days,
            process=process,  # type: ignore[arg-type]
            string_ids=string_ids,
        )
        result = write_synthetic(config, output, truth)
    typer.echo(f"wrote {result.summary()} to {output}")
    if truth is not None:
        typer.echo(f"wrote the ground truth of {result.customers:,} customers to {truth}")


def register(app: typer.Typer) -> None:
    app.command("generate")(generate)
