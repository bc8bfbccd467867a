"""`clv features` end to end: output file, exit code 2 on bad input, nothing half-written."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pyarrow.parquet as pq
import pytest
from clv.cli.main import app
from clv.features import datasets, schema
from clv.features.synthetic import SyntheticConfig, generate_frames
from typer.testing import CliRunner

runner = CliRunner()


def _run(*args: str):
    return runner.invoke(app, ["features", *args])


@pytest.fixture
def log_csv(tmp_path: Path, tiny_log: pd.DataFrame) -> Path:
    path = tmp_path / "tx.csv"
    tiny_log.to_csv(path, index=False)
    return path


def test_panel_with_labels(tmp_path: Path, log_csv: Path) -> None:
    out = tmp_path / "out" / "features.parquet"
    result = _run(
        "--transactions",
        str(log_csv),
        "--cutoff",
        "2024-02-01",
        "--cutoff",
        "2024-03-31",
        "--horizon-days",
        "30",
        "--output",
        str(out),
    )
    assert result.exit_code == 0, result.output
    frame = pd.read_parquet(out)
    assert len(frame) == 5
    assert {schema.FUTURE_SPEND, schema.CHURNED, schema.FREQUENCY} <= set(frame.columns)
    assert "wrote 5 rows" in result.output
    assert not [p for p in out.parent.iterdir() if p.name != "features.parquet"]  # no temp files
    # the file says how it was built
    built = json.loads(pq.read_schema(out).metadata[b"clv"])
    assert built["cutoffs"] == ["2024-02-01", "2024-03-31"] and built["horizon_days"] == 30
    assert built["source"] == str(log_csv.resolve())
    assert built["features"]["timezone"] == "UTC" and built["columns"]["amount"] == "amount"
    assert built["cleaning"]["rows_kept"] == len(pd.read_csv(log_csv))


def test_cutoff_range_and_csv_output(tmp_path: Path, log_csv: Path) -> None:
    out = tmp_path / "features.csv"
    result = _run(
        "--transactions",
        str(log_csv),
        "--cutoff-start",
        "2024-01-15",
        "--cutoff-end",
        "2024-03-31",
        "--cutoff-step-days",
        "30",
        "--output",
        str(out),
    )
    assert result.exit_code == 0, result.output
    assert pd.read_csv(out)[schema.CUTOFF].nunique() == 3
    monthly = _run(
        "--transactions", str(log_csv), "--cutoff-start", "2024-01-31", "--cutoff-end",
        "2024-03-31", "--cutoff-step-months", "1", "--output", str(out),
    )  # fmt: skip
    assert monthly.exit_code == 0, monthly.output
    assert sorted(pd.read_csv(out)[schema.CUTOFF].unique()) == [
        "2024-01-31", "2024-02-29", "2024-03-31"
    ]  # fmt: skip


def test_config_file_maps_columns(tmp_path: Path) -> None:
    config = tmp_path / "clv.toml"
    config.write_text('[columns]\ntimestamp = "date"\n\n[features]\nwindows_days = [30, 60]\n')
    out = tmp_path / "f.parquet"
    result = _run(
        "--transactions",
        str(datasets.cdnow_master_path()),
        "--config",
        str(config),
        "--cutoff",
        "1997-03-31",
        "--output",
        str(out),
    )
    assert result.exit_code == 0, result.output
    frame = pd.read_parquet(out)
    assert "spend_60d" in frame.columns and "spend_90d" not in frame.columns


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--cutoff", "2024-03-31", "--amount-col", "price"], "column 'price' for amount"),
        (["--cutoff", "31/03/2024"], "--cutoff '31/03/2024' is not a date"),
        (["--cutoff", "2030-01-01"], "outside the data"),
        (["--cutoff", "2024-03-31", "--horizon-days", "365"], "past the last day of the data"),
        ([], "give at least one --cutoff"),
        (["--cutoff", "2024-03-31", "--cutoff-start", "2024-01-01"], "either --cutoff or"),
        (
            [
                "--cutoff-start",
                "2024-01-31",
                "--cutoff-end",
                "2024-03-31",
                "--cutoff-step-days",
                "7",
                "--cutoff-step-months",
                "1",
            ],
            "either --cutoff-step-days or --cutoff-step-months",
        ),
        (["--cutoff-start", "2024-01-31", "--cutoff-end", "2024-03-31"], "a cutoff range needs"),
        (["--cutoff", "2024-03-31", "--timezone", "EST+5"], "--timezone: 'EST+5' is not an IANA"),
        (["--cutoff", "2024-03-31", "--naive-timezone", "Mars"], "--naive-timezone: 'Mars' is"),
        (["--cutoff", "2024-03-31", "--encoding", "cp1252"], "'latin-1' or 'utf-16', not 'cp1252'"),
        (["--cutoff", "2024-03-31", "--currency-symbol", "12"], "--currency-symbol: '12' is not"),
    ],
)
def test_bad_input_exits_2_and_writes_nothing(
    tmp_path: Path, log_csv: Path, args: list[str], message: str
) -> None:
    out = tmp_path / "features.parquet"
    result = _run("--transactions", str(log_csv), "--output", str(out), *args)
    assert result.exit_code == 2, result.output
    assert message in result.output
    assert "Traceback" not in result.output
    assert not out.exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["tx.csv"]


def test_bad_values_in_file_exit_2(tmp_path: Path) -> None:
    path = tmp_path / "tx.csv"
    path.write_text("customer_id,timestamp,amount\n1,2024-01-01,abc\n")
    result = _run(
        "--transactions",
        str(path),
        "--cutoff",
        "2024-01-01",
        "--output",
        str(tmp_path / "o.parquet"),
    )
    assert result.exit_code == 2
    assert "'amount'" in result.output and "not numbers" in result.output


def test_decimal_separator_option_reads_decimal_commas(tmp_path: Path) -> None:
    path = tmp_path / "tx.csv"
    path.write_text("customer_id;timestamp;amount\n1;2024-01-01;10,5\n1;2024-01-03;2,25\n")
    out = tmp_path / "f.csv"
    args = ["--transactions", str(path), "--cutoff", "2024-01-03", "--output", str(out)]
    refused = _run(*args)
    assert refused.exit_code == 2 and "--decimal-separator ','" in refused.output
    assert not out.exists()
    result = _run(*args, "--decimal-separator", ",")
    assert result.exit_code == 0, result.output
    row = pd.read_csv(out).iloc[0]
    assert row["historical_value"] == pytest.approx(12.75) and row["frequency"] == 1
    wrong = _run(*args, "--decimal-separator", ";")
    assert wrong.exit_code == 2 and "--decimal-separator must be '.' or ','" in wrong.output


def test_timezone_options_cut_days_where_the_business_is(tmp_path: Path) -> None:
    """Two evening purchases in New York, logged in UTC: two days in UTC, one in New York
    (with the offsets written, or with --naive-timezone UTC for a log written without)."""
    path = tmp_path / "tx.csv"
    path.write_text(
        "customer_id,timestamp,amount\n"
        "1,2024-01-05T23:30:00Z,10\n1,2024-01-06T01:30:00Z,5\n1,2024-01-09T15:00:00Z,1\n"
    )
    naive = tmp_path / "naive.csv"
    naive.write_text(path.read_text().replace("Z,", ","))
    out = tmp_path / "f.csv"

    def frequency(log: Path, *options: str) -> int:
        args = ["--transactions", str(log), "--cutoff", "2024-01-09", "--output", str(out)]
        result = _run(*args, *options)
        assert result.exit_code == 0, result.output
        return int(pd.read_csv(out).iloc[0]["frequency"])

    assert frequency(path) == 2
    assert frequency(path, "--timezone", "America/New_York") == 1
    assert frequency(naive, "--timezone", "America/New_York") == 2
    assert frequency(naive, "--timezone", "America/New_York", "--naive-timezone", "UTC") == 1


def _by_key(frame: pd.DataFrame) -> pd.DataFrame:
    """Rows sorted by cutoff and customer."""
    return frame.sort_values([schema.CUTOFF, schema.CUSTOMER_ID], ignore_index=True)


def test_a_log_with_unit_prices_and_no_amount(tmp_path: Path) -> None:
    """An Online Retail style export: amounts are quantity x unit price (--unit-price-col)."""
    from tests.features.test_transactions import ONLINE_RETAIL

    path = tmp_path / "online_retail.csv"
    path.write_text(ONLINE_RETAIL)
    out = tmp_path / "f.csv"
    result = _run(
        "--transactions", str(path), "--cutoff", "2009-12-08", "--output", str(out),
        "--customer-col", "Customer ID", "--timestamp-col", "InvoiceDate",
        "--timestamp-format", "%m/%d/%Y %H:%M", "--order-col", "Invoice",
        "--quantity-col", "Quantity", "--unit-price-col", "Price", "--product-col", "StockCode",
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    row = pd.read_csv(out, dtype={schema.CUSTOMER_ID: str}).set_index(schema.CUSTOMER_ID)
    customer = row.loc["13085"]
    assert customer["historical_value"] == pytest.approx(12 * 6.95 + 12 * 2.55 - 12 * 2.95 + 6.95)
    assert customer["frequency"] == 1 and customer["n_returns"] == 1
    assert customer["total_quantity"] == 13 and customer["n_products"] == 2
    assert row.loc["13078", "historical_value"] == pytest.approx(59.5)
    # the same settings from a config file's [columns] and [features] tables
    config = tmp_path / "retail.toml"
    config.write_text(
        '[columns]\ncustomer_id = "Customer ID"\ntimestamp = "InvoiceDate"\n'
        'timestamp_format = "%m/%d/%Y %H:%M"\norder_id = "Invoice"\nquantity = "Quantity"\n'
        'unit_price = "Price"\nproduct = "StockCode"\nnaive_timezone = "Europe/London"\n'
        '[features]\ntimezone = "Europe/London"\n'
    )
    from_file = tmp_path / "g.csv"
    args = ["--cutoff", "2009-12-08", "--output", str(from_file), "--config", str(config)]
    result = _run("--transactions", str(path), *args)
    assert result.exit_code == 0, result.output
    # rows come in no particular order (`clv features` writes them unsorted)
    pd.testing.assert_frame_equal(_by_key(pd.read_csv(from_file)), _by_key(pd.read_csv(out)))
    out.unlink()
    missing = _run(
        "--transactions", str(path), "--cutoff", "2009-12-08", "--output", str(out),
        "--customer-col", "Customer ID", "--timestamp-col", "InvoiceDate",
        "--timestamp-format", "%m/%d/%Y %H:%M", "--unit-price-col", "Price",
    )  # fmt: skip
    assert missing.exit_code == 2 and "needs a quantity column" in missing.output
    assert "--quantity-col" in missing.output and not out.exists()


def test_existing_output_survives_a_failed_run(tmp_path: Path, log_csv: Path) -> None:
    out = tmp_path / "features.parquet"
    out.write_bytes(b"previous result")
    result = _run("--transactions", str(log_csv), "--cutoff", "2030-01-01", "--output", str(out))
    assert result.exit_code == 2
    assert out.read_bytes() == b"previous result"


@pytest.mark.parametrize(
    ("content", "args", "message"),
    [
        ("cust,timestamp,amount\n1,2024-01-01,3\n", [], "column 'customer_id' for customer_id"),
        ("customer_id,timestamp,amount\n1,someday,3\n", [], "'timestamp'"),
        ("customer_id,timestamp,amount\n1,2024-01-01,x\n", [], "not numbers"),
        ("", [], "transaction file is empty"),
        ("customer_id,timestamp,amount\n", [], "has no rows"),
        ("customer_id,timestamp,amount\n1,2024-01-01,3\n", ["--horizon-days", "0"], "positive"),
    ],
)
def test_bad_files_exit_2_and_write_nothing(
    tmp_path: Path, content: str, args: list[str], message: str
) -> None:
    path = tmp_path / "tx.csv"
    path.write_text(content)
    out = tmp_path / "out" / "features.parquet"
    result = _run(
        "--transactions", str(path), "--cutoff", "2024-01-01", "--output", str(out), *args
    )
    assert result.exit_code == 2, result.output
    assert message in result.output and "Traceback" not in result.output
    assert not out.exists() and not [p for p in out.parent.glob("*") if p.is_file()]


def test_missing_or_unsupported_transaction_file_exits_2(tmp_path: Path) -> None:
    out = tmp_path / "features.parquet"
    for name, message in (("nope.csv", "not found"), ("tx.xlsx", "unsupported file type")):
        if name.endswith(".xlsx"):
            (tmp_path / name).write_text("x")
        result = _run(
            "--transactions", str(tmp_path / name), "--cutoff", "2024-01-01", "--output", str(out)
        )
        assert result.exit_code == 2 and message in result.output
    assert not out.exists()


def test_a_glob_pattern_reads_a_log_split_over_files(
    tmp_path: Path, tiny_log: pd.DataFrame
) -> None:
    """Monthly exports read as one log; a pattern matching nothing exits 2 naming it."""
    months = tiny_log["timestamp"].str[:7]
    for month, part in tiny_log.groupby(months):
        part.to_csv(tmp_path / f"tx_{month}.csv", index=False)
    tiny_log.to_csv(tmp_path / "whole_log.csv", index=False)  # not matched by the pattern
    whole, split = tmp_path / "whole.csv", tmp_path / "split.csv"
    base = ["--cutoff", "2024-03-31", "--horizon-days", "10"]
    for source, output in ((tmp_path / "whole_log.csv", whole), (tmp_path / "tx_*.csv", split)):
        result = _run("--transactions", str(source), "--output", str(output), *base)
        assert result.exit_code == 0, result.output
    assert months.nunique() >= 4
    pd.testing.assert_frame_equal(_by_key(pd.read_csv(split)), _by_key(pd.read_csv(whole)))

    missing = tmp_path / "none.csv"
    pattern = str(tmp_path / "tx_1999-*.csv")
    refused = _run("--transactions", pattern, "--output", str(missing), *base)
    assert refused.exit_code == 2 and "no file matches the pattern" in refused.output
    assert "tx_1999-*.csv" in refused.output and not missing.exists()


def test_sorted_output_is_the_same_file_on_every_run(tmp_path: Path) -> None:
    """--sorted writes rows by cutoff, then customer: two runs give the same CSV bytes, and
    the rows are those of an unsorted run."""
    frame, _ = generate_frames(SyntheticConfig(customers=300, seed=5))
    log = tmp_path / "tx.parquet"
    frame.to_parquet(log)
    cutoffs = ["--cutoff", "2023-12-31", "--cutoff", "2024-06-30"]
    outputs = {}
    for name, flags in (("first", ["--sorted"]), ("again", ["--sorted"]), ("unsorted", [])):
        outputs[name] = tmp_path / f"{name}.csv"
        args = ["--transactions", str(log), *cutoffs, "--output", str(outputs[name]), *flags]
        result = _run(*args)
        assert result.exit_code == 0, result.output
    first = pd.read_csv(outputs["first"])
    assert len(first) > 300 and first[schema.CUTOFF].nunique() == 2
    assert outputs["first"].read_bytes() == outputs["again"].read_bytes()
    pd.testing.assert_frame_equal(first, _by_key(first))
    pd.testing.assert_frame_equal(first, _by_key(pd.read_csv(outputs["unsorted"])))
