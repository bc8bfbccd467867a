"""`clv score`: batch scoring of the whole customer base with the served model's scoring path."""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator
from datetime import date
from pathlib import Path

import pandas as pd
import typer
from clv.features import build, schema, transactions
from clv.features.atomic import atomic_path

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


def _load_scorer(name: str, alias: str, version: str | None, threads: int):
    from clv.models.registry import ModelNotFoundError, load_clv_model
    from clv.serving.scoring import ModelContractError, Scorer

    try:
        loaded = load_clv_model(alias=alias, name=name, version=version)
        return Scorer(loaded, num_threads=threads)
    except ModelNotFoundError as exc:
        raise CliUsageError(str(exc), "--model-alias") from None
    except ModelContractError as exc:
        raise CliUsageError(str(exc), "--model-version" if version else "--model-alias") from None


def _feature_chunks(path: Path, columns: list[str], chunk_rows: int) -> Iterator[pd.DataFrame]:
    """Chunks of a precomputed feature file (Parquet or CSV) with the columns the model needs."""
    if not path.is_file():
        raise CliUsageError(f"features file not found: {path}", "--features")
    suffix = path.suffix.lower()
    if suffix == ".parquet":
        import pyarrow.parquet as pq

        source = pq.ParquetFile(path)
        available = source.schema_arrow.names
    elif suffix in (".csv", ".gz"):
        available = list(pd.read_csv(path, nrows=0).columns)
    else:
        raise CliUsageError(f"--features must be .parquet or .csv, not '{suffix}'", "--features")
    missing = [c for c in columns if c not in available]
    if missing:
        raise CliUsageError(
            f"features file {path} lacks column(s) {missing[:8]} ({len(missing)} in all) that "
            "the model needs; build it with `clv features`",
            "--features",
        )
    wanted = columns + ([schema.CUTOFF] if schema.CUTOFF in available else [])
    if suffix == ".parquet":
        for batch in source.iter_batches(batch_size=chunk_rows, columns=wanted):
            yield batch.to_pandas()
    else:
        yield from pd.read_csv(
            path, usecols=wanted, chunksize=chunk_rows, dtype={schema.CUSTOMER_ID: str}
        )


def _scored_chunk(scorer, features: pd.DataFrame, drivers: int, as_of: date | None) -> pd.DataFrame:
    try:
        build.check_feature_invariants(features)
    except ValueError as exc:
        raise CliUsageError(str(exc), "--features") from None
    scored = scorer.score(features, top_k=drivers)
    out = scored.predictions
    if as_of is not None:
        out.insert(1, "as_of", pd.Timestamp(as_of))
    elif schema.CUTOFF in features:
        out.insert(1, "as_of", pd.to_datetime(features[schema.CUTOFF]).to_numpy())
    out["model_version"] = scorer.version
    if drivers > 0:
        out = pd.concat([out, scorer.driver_columns(scored)], axis=1)
    return out


def _write(chunks: Iterator[pd.DataFrame], output: Path) -> int:
    """Write chunks to Parquet or CSV atomically; returns the number of rows."""
    rows = 0
    with atomic_path(output) as tmp:
        if output.suffix.lower() == ".parquet":
            import pyarrow as pa
            import pyarrow.parquet as pq

            writer = None
            try:
                for chunk in chunks:
                    table = pa.Table.from_pandas(chunk, preserve_index=False)
                    if writer is None:
                        writer = pq.ParquetWriter(tmp, table.schema)
                    writer.write_table(table.cast(writer.schema))
                    rows += len(chunk)
            finally:
                if writer is not None:
                    writer.close()
        else:
            for i, chunk in enumerate(chunks):
                chunk.to_csv(tmp, mode="w" if i == 0 else "a", header=i == 0, index=False)
                rows += len(chunk)
    return rows


def score(
    output: Path = typer.Option(..., "--output", help="Output file: .parquet or .csv."),
    transactions_path: Path = typer.Option(None, "--transactions", help=TRANSACTIONS_HELP + "."),
    as_of: str = typer.Option(
        None,
        "--as-of",
        help="Score every customer as of this day YYYY-MM-DD (with --transactions).",
    ),
    features_path: Path = typer.Option(
        None, "--features", help="Score a precomputed feature file (`clv features` output)."
    ),
    model_alias: str = typer.Option("champion", "--model-alias", help="Registry alias."),
    model_version: str = typer.Option(
        None, "--model-version", help="Registered version (instead of the alias)."
    ),
    model_name: str = typer.Option("clv", "--model-name", help="Registered model name."),
    drivers: int = typer.Option(
        3, "--drivers", min=0, max=50, help="Top value drivers per customer as columns (0: none)."
    ),
    threads: int = typer.Option(0, "--threads", min=0, help="LightGBM threads (0: all cores)."),
    chunk_rows: int = typer.Option(
        250_000, "--chunk-rows", min=1, help="Customers scored per chunk (bounds memory)."
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
        None, "--config", help="TOML file with a columns table (as for `clv features`)."
    ),
    memory_limit: str = typer.Option(None, "--memory-limit", help="DuckDB memory limit, e.g. 6GB."),
) -> None:
    """Score every customer: predicted value (P10/P90), churn, value at risk, tier and drivers.

    With --transactions and --as-of, features are computed as training computed them, with the
    model's own feature settings; with --features, a precomputed feature file is scored.
    Currency over the model's horizon. The output is written atomically.
    """
    started = time.perf_counter()
    with user_errors():
        if (transactions_path is None) == (features_path is None):
            raise CliUsageError(
                "give either --transactions (with --as-of) or --features", "--output"
            )
        suffix = output.suffix.lower()
        if suffix not in (".parquet", ".csv"):
            raise CliUsageError(
                f"--output must end in .parquet or .csv, not '{suffix}'", "--output"
            )
        day = parse_date(as_of, "--as-of") if as_of else None
        if transactions_path is not None and day is None:
            raise CliUsageError("--as-of is required with --transactions", "--as-of")
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
        scorer = _load_scorer(model_name, model_alias, model_version, threads)
        from clv.serving.scoring import frame_columns

        needed = frame_columns(scorer.model)
        if features_path is not None:
            chunks = (
                _scored_chunk(scorer, chunk, drivers, day)
                for chunk in _feature_chunks(features_path, needed, chunk_rows)
            )
            rows = _write(chunks, output)
        else:
            assert transactions_path is not None and day is not None
            config = scorer.model.spec.feature_config
            con = transactions.connect(memory_limit=memory_limit)
            try:
                # Read as the model's training log was, under this command's column options.
                mapping = columns.over(scorer.model.spec.columns)
                log = transactions.load_transactions(transactions_path, mapping, config, con)
                build.check_cutoffs(log, [day])
                features = build.build_features(log, [day], config)
            finally:
                con.close()
            parts = (features.iloc[i : i + chunk_rows] for i in range(0, len(features), chunk_rows))
            rows = _write((_scored_chunk(scorer, p, drivers, day) for p in parts), output)
    elapsed = time.perf_counter() - started
    typer.echo(
        f"scored {rows:,} customers with model {scorer.loaded.name} version {scorer.version} "
        f"in {elapsed:.1f} s; wrote {output}"
    )


def register(app: typer.Typer) -> None:
    app.command("score")(score)
