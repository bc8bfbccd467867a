"""Build the analyst report: gather, draw, write one self-contained HTML file, log it to MLflow.

build_report("report.html")                       # clv@champion on its default customer base
build_report("r.html", transactions="tx.parquet", as_of=date(2024, 3, 31))
"""

from __future__ import annotations

import logging
import time
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Final

import mlflow
from clv.features.atomic import atomic_path
from clv.features.config import ColumnMapping
from clv.models.registry import CHAMPION_ALIAS

from . import sections
from .data import ReportData, gather
from .drivers import DEFAULT_MAX_ROWS, explain_base
from .html import Section, render_page

logger = logging.getLogger(__name__)

REPORT_ARTIFACT_DIR: Final = "reports"


def render_report(data: ReportData, max_explained_rows: int = DEFAULT_MAX_ROWS) -> str:
    """The report's HTML for gathered data (model card, drivers, accuracy, base, examples)."""
    started = time.perf_counter()
    drivers = explain_base(
        data.model, data.base.features, data.base.predictions, max_rows=max_explained_rows
    )
    built: list[Section] = []
    for name, make in (
        ("model card", lambda: sections.model_card(data)),
        ("value drivers", lambda: sections.value_drivers(data, drivers)),
        ("accuracy", lambda: sections.accuracy(data)),
        ("customer base", lambda: sections.customer_base(data)),
        ("examples", lambda: sections.examples(data)),
    ):
        built.append(make())
        logger.info("report section %s ready (%.1f s)", name, time.perf_counter() - started)
    loaded = data.loaded
    title = f"Customer lifetime value report: {loaded.name} v{loaded.version}"
    subtitle = (
        f"Customer base as of {data.base.as_of} · horizon {data.model.spec.horizon_days} days · "
        f"{len(data.base.features):,} customers"
    )
    footer = (
        f"Generated {datetime.now(UTC):%Y-%m-%d %H:%M} UTC by `clv report` from {loaded.model_uri}"
        f" (run {loaded.run_id or 'unknown'})."
    )
    return render_page(title, subtitle, built, footer)


def build_report(
    output: str | Path,
    alias: str = CHAMPION_ALIAS,
    transactions: str | Path | None = None,
    columns: ColumnMapping | None = None,
    as_of: date | None = None,
    log_to_mlflow: bool = True,
    max_explained_rows: int = DEFAULT_MAX_ROWS,
    version: str | None = None,
) -> Path:
    """Write the report for the model `clv@alias` (or `clv` version `version`) to `output`
    (atomically) and return its path.

    The customer base comes from `transactions` at `as_of` (defaults: see
    `reports.data.customer_base`). With `log_to_mlflow`, the file is also logged to the model's
    training run under `reports/`. Raises ModelNotFoundError and TransactionLogError.
    """
    output = Path(output)
    data = gather(alias, transactions, columns, as_of, version)
    page = render_report(data, max_explained_rows)
    with atomic_path(output) as tmp:
        tmp.write_text(page, encoding="utf-8")
    logger.info("wrote %s (%.1f MB)", output, output.stat().st_size / 1e6)
    if log_to_mlflow and data.loaded.run_id:
        mlflow.MlflowClient().log_artifact(
            data.loaded.run_id, str(output), artifact_path=REPORT_ARTIFACT_DIR
        )
        logger.info(
            "logged %s to run %s as %s/%s",
            output,
            data.loaded.run_id,
            REPORT_ARTIFACT_DIR,
            output.name,
        )
    return output
