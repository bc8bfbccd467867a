"""The `clv` command line. Each command lives in its own module of this folder."""

from __future__ import annotations

import logging
import os

import typer

from . import features_cmd, generate_cmd, report_cmd, score_cmd, serve_cmd, train_cmd

app = typer.Typer(
    name="clv",
    help="Customer lifetime value: features, training, serving and reports.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)


@app.callback()
def main(
    verbose: bool = typer.Option(False, "--verbose", "-v", help="Log progress at DEBUG level."),
) -> None:
    """Customer lifetime value: features, training, serving and reports."""
    # MLflow draws a progress bar for every model it loads; the commands report their own.
    os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")
    logging.basicConfig(
        level=logging.DEBUG if verbose else logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )


features_cmd.register(app)
generate_cmd.register(app)
train_cmd.register(app)
report_cmd.register(app)
score_cmd.register(app)
serve_cmd.register(app)
