"""`clv generate` end to end: reproducible files, ground truth, exit code 2 on bad options."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest
from clv.cli.main import app
from clv.features import schema, synthetic
from typer.testing import CliRunner

runner = CliRunner()


def _run(*args: str):
    return runner.invoke(app, ["generate", *args])


def test_writes_log_and_truth(tmp_path: Path) -> None:
    out, truth = tmp_path / "out" / "tx.parquet", tmp_path / "out" / "truth.parquet"
    result = _run(
        "--customers", "300", "--output", str(out), "--truth", str(truth), "--days", "365"
    )
    assert result.exit_code == 0, result.output
    assert "300 customers" in result.output
    frame, truth_frame = pd.read_parquet(out), pd.read_parquet(truth)
    assert list(frame.columns) == list(schema.TRANSACTION_COLUMNS)
    assert len(truth_frame) == 300 and frame[schema.CUSTOMER_ID].nunique() == 300
    assert {synthetic.TRUTH_LAMBDA, synthetic.TRUTH_ALIVE} <= set(truth_frame.columns)
    assert frame[schema.TIMESTAMP].max() < pd.Timestamp("2024-01-01")
    assert sorted(p.name for p in out.parent.iterdir()) == ["truth.parquet", "tx.parquet"]


def test_same_seed_same_bytes_and_options(tmp_path: Path) -> None:
    paths = [tmp_path / "a.parquet", tmp_path / "b.parquet", tmp_path / "c.parquet"]
    seeds = ["7", "7", "8"]
    for path, seed in zip(paths, seeds, strict=True):
        args = ["--customers", "200", "--seed", seed, "--int-ids", "--process", "pareto"]
        result = _run(*args, "--start", "2020-02-01", "--output", str(path))
        assert result.exit_code == 0, result.output
    assert paths[0].read_bytes() == paths[1].read_bytes()
    assert paths[0].read_bytes() != paths[2].read_bytes()
    frame = pd.read_parquet(paths[0])
    assert frame[schema.CUSTOMER_ID].dtype == "int64"
    assert frame[schema.TIMESTAMP].min() >= pd.Timestamp("2020-02-01")


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--customers", "0"], "--customers must be a positive number"),
        (["--customers", "5", "--days", "-3"], "--days must be a positive number"),
        (["--customers", "5", "--seed", "-1"], "--seed must be 0 or more"),
        (["--customers", "5", "--start", "1/2/2023"], "--start '1/2/2023' is not a date"),
        (["--customers", "5", "--process", "weibull"], "--process must be bgnbd or pareto"),
        (["--customers", "5", "--truth", "truth.json"], "--truth must end in .parquet or .csv"),
        (["--customers", "5", "--truth", "OUT"], "--truth must be another file"),
        (["--customers", "five"], "Invalid value"),
    ],
)
def test_bad_options_exit_2_and_write_nothing(
    tmp_path: Path, args: list[str], message: str
) -> None:
    out = tmp_path / "tx.parquet"
    args = [
        str(out) if a == "OUT" else str(tmp_path / a) if a.endswith(".json") else a for a in args
    ]
    result = _run("--output", str(out), *args)
    assert result.exit_code == 2, result.output
    assert message in result.output
    assert "Traceback" not in result.output
    assert list(tmp_path.iterdir()) == []


def test_bad_output_suffix_exits_2(tmp_path: Path) -> None:
    result = _run("--customers", "5", "--output", str(tmp_path / "tx.xlsx"))
    assert result.exit_code == 2
    assert "--output must end in .parquet or .csv" in result.output
    assert list(tmp_path.iterdir()) == []
