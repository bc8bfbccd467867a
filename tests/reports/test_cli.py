"""`clv report` from the command line: a report without evaluation, and bad input (exit 2)."""

from __future__ import annotations

from pathlib import Path

import pytest
from clv.cli import report_cmd
from clv.cli.main import app
from clv.models.registry import CHAMPION_ALIAS
from typer.testing import CliRunner

runner = CliRunner()


def _run(*args: str):
    return runner.invoke(app, ["report", *args])


def _sample_args(sample_csv: Path) -> list[str]:
    return ["--transactions", str(sample_csv), "--timestamp-col", "date"]


def test_default_alias_is_the_registry_champion() -> None:
    assert report_cmd.CHAMPION_ALIAS == CHAMPION_ALIAS


def test_run_without_evaluation_says_accuracy_is_unavailable(
    tracking, sample_csv: Path, tmp_path: Path
) -> None:
    """Version 2 (clv@bare) logged no evaluation table, and the log's last day leaves no
    horizon after it."""
    out = tmp_path / "bare.html"
    result = _run("--model-version", "2", *_sample_args(sample_csv), "--output", str(out))
    assert result.exit_code == 0, result.output
    html = out.read_text(encoding="utf-8")
    assert "<td>clv version 2</td>" in html
    assert "No accuracy figures" in html
    assert "as of 1998-06-30" in html
    assert "<h2>Example customers</h2>" in html
    assert "data:image/png;base64," in html


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--as-of", "1997-13-01"], "--as-of '1997-13-01' is not a date"),
        (["--as-of", "2001-01-01"], "cutoff 2001-01-01 is outside the data"),
        (["--amount-col", "price"], "column 'price' for amount not found"),
    ],
)
def test_bad_input_is_a_one_line_error(
    tracking, sample_csv: Path, tmp_path: Path, args: list[str], message: str
) -> None:
    out = tmp_path / "report.html"
    result = _run(*_sample_args(sample_csv), *args, "--output", str(out))
    assert result.exit_code == 2, result.output
    assert message in result.output
    assert result.output.startswith("error: ")
    assert not out.exists()


def test_missing_transaction_file(tracking, tmp_path: Path) -> None:
    out = tmp_path / "report.html"
    result = _run("--transactions", str(tmp_path / "nope.csv"), "--output", str(out))
    assert result.exit_code == 2
    assert "transaction file not found" in result.output
    assert not out.exists()


def test_unknown_alias_names_the_option(tracking, tmp_path: Path) -> None:
    result = _run("--model-alias", "nope", "--output", str(tmp_path / "r.html"))
    assert result.exit_code == 2
    assert "no registered model 'clv' with alias 'nope'" in result.output
    assert "[--model-alias]" in result.output


def test_unknown_version_names_the_option(tracking, tmp_path: Path) -> None:
    result = _run("--model-version", "9", "--output", str(tmp_path / "r.html"))
    assert result.exit_code == 2
    assert "no registered model 'clv' with version 9" in result.output
    assert "[--model-version]" in result.output


def test_empty_registry(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{tmp_path / 'empty.db'}")
    result = _run("--output", str(tmp_path / "r.html"))
    assert result.exit_code == 2
    assert "error: no registered model 'clv'" in result.output


def test_output_must_be_html(tracking, tmp_path: Path) -> None:
    result = _run("--output", str(tmp_path / "report.pdf"))
    assert result.exit_code == 2
    assert "--output must end in .html" in result.output


def test_column_options_need_a_transaction_file(tracking, tmp_path: Path) -> None:
    result = _run("--timestamp-col", "date", "--output", str(tmp_path / "r.html"))
    assert result.exit_code == 2
    assert "column options need --transactions" in result.output
