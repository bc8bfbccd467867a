"""A log spread over files: a glob pattern's or a folder's files read as one log, and what is
refused."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import pandas as pd
import pyarrow.parquet as pq
import pytest
from clv.features import build, sources, transactions
from clv.features.config import ColumnMapping
from clv.features.datasets import cdnow_master_path
from clv.features.errors import TransactionLogError
from clv.features.synthetic import SyntheticConfig, generate_frames

CUTOFF = date(2024, 3, 31)


@pytest.fixture(scope="module")
def log() -> pd.DataFrame:
    frame, _ = generate_frames(SyntheticConfig(customers=400, seed=11))
    return frame


def _by_quarter(frame: pd.DataFrame) -> list[tuple[str, pd.DataFrame]]:
    quarters = frame["timestamp"].dt.to_period("Q").astype(str)
    return [(name, part) for name, part in frame.groupby(quarters)]


def _features(path: Path | str) -> pd.DataFrame:
    loaded = transactions.load_transactions(path)
    return build.build_features(loaded, [CUTOFF])


def test_a_pattern_of_csv_files_reads_as_their_concatenation(
    tmp_path: Path, log: pd.DataFrame
) -> None:
    whole = tmp_path / "whole.csv"
    log.to_csv(whole, index=False)
    parts = tmp_path / "parts"
    parts.mkdir()
    quarters = _by_quarter(log)
    for i, (name, part) in enumerate(quarters):
        # every other file writes its columns in another order: read by name, not position
        columns = list(part.columns)[::-1] if i % 2 else list(part.columns)
        part[columns].to_csv(parts / f"tx_{name}.csv", index=False)
    (parts / "notes.txt.bak").write_text("not matched")

    pattern = str(parts / "tx_*.csv")
    source = sources.find_log(pattern)
    assert not sources.columns_in_order(transactions.connect(), source, "utf-8")
    got = transactions.load_transactions(pattern)
    assert got.report.rows_read == len(log) and len(quarters) >= 8
    pd.testing.assert_frame_equal(_features(pattern), _features(whole))
    assert sources.find_log(pattern).matched == tuple(sorted(parts.glob("tx_*.csv")))


def test_a_found_pattern_reads_the_files_it_matched(tmp_path: Path, log: pd.DataFrame) -> None:
    """A `LogSource` is read as found: a file that starts to match the pattern later is not
    read (training hashes the same `LogSource`)."""
    quarters = _by_quarter(log)
    for name, part in quarters[:2]:
        part.to_csv(tmp_path / f"tx_{name}.csv", index=False)
    found = sources.find_log(tmp_path / "tx_*.csv")
    name, late = quarters[2]
    late.to_csv(tmp_path / f"tx_{name}.csv", index=False)
    early_rows = sum(len(part) for _, part in quarters[:2])
    assert transactions.load_transactions(found).report.rows_read == early_rows
    again = transactions.load_transactions(tmp_path / "tx_*.csv")
    assert again.report.rows_read == early_rows + len(late)


def test_files_in_one_column_order_are_read_by_position(tmp_path: Path, log: pd.DataFrame) -> None:
    """Identical CSV headers need no look inside each file (many daily exports stay fast)."""
    for name, part in _by_quarter(log):
        part.to_csv(tmp_path / f"tx_{name}.csv", index=False)
    source = sources.find_log(tmp_path / "tx_*.csv")
    assert sources.columns_in_order(transactions.connect(), source, "utf-8")
    assert "union_by_name" not in sources.read_sql(source, by_name=False)
    assert transactions.load_transactions(tmp_path / "tx_*.csv").report.rows_read == len(log)


def test_a_recursive_pattern_of_parquet_files(tmp_path: Path, log: pd.DataFrame) -> None:
    """Folders of Parquet files, some with the index pandas writes beside the columns (read
    aside: it is not data) and some without."""
    whole = tmp_path / "whole.parquet"
    log.to_parquet(whole)
    for i, (name, part) in enumerate(_by_quarter(log)):
        folder = tmp_path / "exports" / name[:4]
        folder.mkdir(parents=True, exist_ok=True)
        part.to_parquet(folder / f"{name}.parquet", index=bool(i % 2))
    pattern = tmp_path / "exports" / "**" / "*.parquet"
    indexed = [
        f
        for f in sorted(tmp_path.glob("exports/*/*.parquet"))
        if "__index_level_0__" in pq.read_schema(f).names
    ]
    assert 0 < len(indexed) < len(_by_quarter(log))
    source = sources.find_log(pattern)
    assert not sources.columns_in_order(transactions.connect(), source, "utf-8")
    pd.testing.assert_frame_equal(_features(pattern), _features(whole))


def _spark_export(folder: Path, log: pd.DataFrame) -> list[Path]:
    """`log` written as a Spark job writes a partitioned table: data files under `key=value`
    folders, in column orders that differ, beside a `_SUCCESS` marker, `.crc` checksums, a
    notes file and the Parquet file of an unfinished job under `_temporary`. Returns the data
    files."""
    data = []
    for i, (name, part) in enumerate(_by_quarter(log)):
        columns = list(part.columns)[::-1] if i % 3 == 1 else list(part.columns)
        path = folder / f"quarter={name}" / f"part-{i:05d}.parquet"
        path.parent.mkdir(parents=True)
        part[columns].to_parquet(path, index=False)
        (path.parent / f".{path.name}.crc").write_bytes(b"crc")
        data.append(path)
    (folder / "_SUCCESS").write_bytes(b"")
    (folder / "notes.txt").write_text("not data")
    unfinished = folder / "_temporary" / "0" / "part-99999.parquet"
    unfinished.parent.mkdir(parents=True)
    log.head(50).to_parquet(unfinished, index=False)
    return data


def test_a_folder_reads_its_parquet_files_found_once(tmp_path: Path, log: pd.DataFrame) -> None:
    """A folder is read as the Parquet files found in it when it was found: by column name,
    hidden files and folders left out, and a file that arrives later not read (training
    hashes the same `LogSource`)."""
    whole = tmp_path / "whole.parquet"
    log.to_parquet(whole)
    folder = tmp_path / "export"
    data = _spark_export(folder, log)
    source = sources.find_log(folder)
    assert source.matched == tuple(sorted(data)) and len(data) >= 8
    assert not sources.columns_in_order(transactions.connect(), source, "utf-8")
    pd.testing.assert_frame_equal(_features(folder), _features(whole))
    late = folder / "quarter=late" / "part-00100.parquet"
    late.parent.mkdir()
    log.head(20).to_parquet(late, index=False)
    assert transactions.load_transactions(source).report.rows_read == len(log)
    assert transactions.load_transactions(folder).report.rows_read == len(log) + 20


def test_a_partition_folder_name_is_read_as_a_column(tmp_path: Path) -> None:
    """A Hive-style export keeps a partition column in its folder names only
    (`channel=web/part-0.parquet`): it is read as the log's column."""
    lines = pd.DataFrame(
        {"customer_id": ["a", "a", "b"], "timestamp": ["2024-01-01", "2024-01-05", "2024-01-02"]}
    ).assign(amount=[3.0, 4.0, 5.0])
    for channel, rows in (("web", [0, 2]), ("app", [1])):
        (tmp_path / f"channel={channel}").mkdir()
        lines.iloc[rows].to_parquet(tmp_path / f"channel={channel}" / "part-0.parquet")
    log = transactions.load_transactions(tmp_path)
    assert "channel" in log.optional_columns
    got = build.build_features(log, [date(2024, 1, 31)]).set_index("customer_id")
    assert got["n_channels"].to_dict() == {"a": 2, "b": 1}


def test_a_file_is_of_the_kind_its_last_suffix_says(tmp_path: Path) -> None:
    """A backup or partial copy (`tx.csv.bak`, `tx.parquet.tmp`) is neither kind: left out
    of a folder beside its Parquet files, refused when a pattern matches it or when it is
    named alone; a compressed CSV (`.csv.gz`, `.txt.gz`) is CSV."""
    frame = pd.DataFrame({"customer_id": ["1", "2"], "timestamp": ["2024-01-01"] * 2})
    frame = frame.assign(amount=[3.0, 4.0])
    folder = tmp_path / "folder"
    folder.mkdir()
    frame.to_parquet(folder / "a.parquet")
    frame.to_csv(folder / "a.csv.bak", index=False)
    frame.to_parquet(folder / "b.parquet.tmp")
    frame.to_csv(folder / "notes.txt.gz", index=False)
    assert sources.find_log(folder).matched == (folder / "a.parquet",)
    assert transactions.load_transactions(folder).report.rows_read == 2
    with pytest.raises(TransactionLogError) as error:
        transactions.load_transactions(str(folder / "a.*"))
    assert f"matches {folder / 'a.csv.bak'}, which is not a .csv" in str(error.value)
    with pytest.raises(TransactionLogError) as error:
        transactions.load_transactions(folder / "b.parquet.tmp")
    assert "unsupported file type '.tmp' (b.parquet.tmp)" in str(error.value)
    assert error.value.field == "--transactions"
    gz = tmp_path / "tx.CSV.gz"
    frame.to_csv(gz, index=False)
    assert sources.find_log(gz).kind == "csv"
    assert transactions.load_transactions(gz).report.rows_read == 2


def test_a_folder_that_cannot_be_read_is_named(tmp_path: Path) -> None:
    """No Parquet file (CSV files are read with a pattern), Parquet and CSV files together
    (not one kind left unread), an empty file, or one whose columns differ: refused, naming
    the file."""
    cases = tmp_path / "cases"
    _write(cases / "csv" / "a.csv", HEADER + "1,2024-01-01,3\n")
    frame = pd.DataFrame({"customer_id": ["1"], "timestamp": ["2024-01-01"], "amount": [3.0]})
    (cases / "kinds" / "day=2").mkdir(parents=True)
    frame.to_parquet(cases / "kinds" / "a.parquet")
    _write(cases / "kinds" / "day=2" / "b.csv", HEADER + "1,2024-01-02,3\n")
    _write(cases / "kinds" / "notes.txt", "not data")
    (cases / "empty").mkdir()
    frame.to_parquet(cases / "empty" / "a.parquet")
    (cases / "empty" / "b.parquet").write_bytes(b"")
    (cases / "columns").mkdir()
    frame.to_parquet(cases / "columns" / "a.parquet")
    frame.rename(columns={"amount": "value"}).to_parquet(cases / "columns" / "b.parquet")
    expected = {
        "csv": f"the folder {cases / 'csv'} holds no .parquet file",
        "kinds": f"the folder {cases / 'kinds'} holds both Parquet and CSV files "
        f"({cases / 'kinds' / 'a.parquet'}, {cases / 'kinds' / 'day=2' / 'b.csv'})",
        "empty": f"transaction file is empty: {cases / 'empty' / 'b.parquet'} (in the folder",
        "columns": f"the files in the folder {cases / 'columns'} have different columns: "
        f"{cases / 'columns' / 'b.parquet'} lacks amount; has value besides",
    }
    for name, message in expected.items():
        with pytest.raises(TransactionLogError) as error:
            transactions.load_transactions(cases / name)
        assert message in str(error.value)
        assert error.value.field == "--transactions"


def _write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


HEADER = "customer_id,timestamp,amount\n"


@pytest.mark.parametrize(
    ("files", "pattern", "message"),
    [
        ({}, "*.csv", "no file matches the pattern"),
        (
            {"a.csv": HEADER + "1,2024-01-01,3\n", "b.parquet": None},
            "*",
            "matches both CSV and Parquet files",
        ),
        ({"a.csv": HEADER + "1,2024-01-01,3\n", "b.csv": ""}, "*.csv", "is empty: "),
        ({"a.csv": HEADER + "1,2024-01-01,3\n", "b.json": "{}"}, "*", "b.json, which is not"),
        (
            {"a.csv": HEADER + "1,2024-01-01,3\n", "b.csv": "customer,timestamp,amount\n1,x,2\n"},
            "*.csv",
            "b.csv lacks customer_id; has customer besides",
        ),
    ],
    ids=["no match", "two kinds", "empty file", "other type", "other columns"],
)
def test_a_pattern_that_cannot_be_read_is_named(
    tmp_path: Path, files: dict[str, str | None], pattern: str, message: str
) -> None:
    for name, text in files.items():
        if text is None:
            pd.DataFrame({"customer_id": ["1"], "amount": [1.0]}).to_parquet(tmp_path / name)
        else:
            _write(tmp_path / name, text)
    with pytest.raises(TransactionLogError) as error:
        transactions.load_transactions(str(tmp_path / pattern))
    assert message in str(error.value)
    assert error.value.field == "--transactions"


def test_a_file_whose_name_looks_like_a_pattern_is_read_as_a_file(tmp_path: Path) -> None:
    path = _write(tmp_path / "tx[2024].csv", HEADER + "1,2024-01-01,3\n2,2024-01-02,4\n")
    assert not sources.is_pattern(path)
    assert transactions.load_transactions(path).report.rows_read == 2


def test_a_matched_file_in_another_encoding_is_named(tmp_path: Path) -> None:
    _write(tmp_path / "a.csv", HEADER + "1,2024-01-01,3\n")
    (tmp_path / "b.csv").write_bytes((HEADER + "Zoë,2024-01-02,4\n").encode("latin-1"))
    with pytest.raises(TransactionLogError) as error:
        transactions.load_transactions(str(tmp_path / "*.csv"))
    assert f"cannot read {tmp_path / 'b.csv'}: it is not utf-8 text" in str(error.value)
    assert error.value.field == "--encoding"


def _spaced(frame: pd.DataFrame) -> str:
    """`frame` as CDNOW_master.txt writes its lines: a leading space, columns padded with
    runs of spaces, Windows line ends, and a blank last line."""
    lines = [" " + "  ".join(frame.columns)]
    lines += [" " + "  ".join(f"{v:>3}" for v in row) for row in frame.astype(str).to_numpy()]
    return "\r\n".join(lines) + "\r\n\r\n"


def test_a_file_whose_columns_spaces_separate_is_read(tmp_path: Path) -> None:
    """CDNOW_master.txt as lifetimes ships it (columns separated by runs of spaces, which
    DuckDB's CSV reader does not split on) gives the features of the same lines as CSV; so
    does a pattern of such files with one header. A line short of a field is refused, naming
    it: its values could be in other columns than the header says."""
    frame = pd.read_csv(cdnow_master_path(), dtype=str).head(3000)
    frame = frame.rename(columns={"quantity": "number_of_cds", "amount": "dollar_value"})
    frame["date"] = frame["date"].str.replace("-", "")
    whole = tmp_path / "cdnow.csv"
    frame.to_csv(whole, index=False)
    spaced = _write(tmp_path / "CDNOW_master.txt", _spaced(frame))
    mapping = ColumnMapping(
        timestamp="date", amount="dollar_value", quantity="number_of_cds", timestamp_format="%Y%m%d"
    )
    source = sources.find_log(spaced)
    assert sources.spaced_columns(source, "utf-8") == list(frame.columns)
    assert sources.spaced_columns(sources.find_log(whole), "utf-8") is None

    def features(path: Path | str) -> pd.DataFrame:
        log = transactions.load_transactions(path, mapping)
        return build.build_features(log, [date(1997, 3, 31)])

    expected = features(whole)
    assert len(expected) > 500
    pd.testing.assert_frame_equal(features(spaced), expected)
    parts = tmp_path / "parts"
    for i, half in enumerate((frame.iloc[:1500], frame.iloc[1500:])):
        _write(parts / f"part{i}.txt", _spaced(half))
    pd.testing.assert_frame_equal(features(str(parts / "*.txt")), expected)

    short = _write(tmp_path / "short.txt", _spaced(frame.head(3)) + " 00009  19970105  1\r\n")
    with pytest.raises(TransactionLogError) as error:
        transactions.load_transactions(short, mapping)
    assert f'the line "00009  19970105  1" of {short} has 3 fields where its header names 4' in (
        str(error.value)
    )


def test_files_whose_columns_spaces_separate_are_refused_when_unclear(tmp_path: Path) -> None:
    """A header naming a column twice, and a pattern's files with different header lines."""
    twice = _write(tmp_path / "twice.txt", " id  day  amount  amount\r\n 1  19970101  2  3\r\n")
    with pytest.raises(TransactionLogError, match="'amount' appears more than once"):
        transactions.load_transactions(twice)
    _write(tmp_path / "p" / "a.txt", " customer_id  timestamp  amount\n 1  2024-01-01  3\n")
    other = _write(tmp_path / "p" / "b.txt", " customer_id  amount  timestamp\n 1  3  2024-01-01\n")
    with pytest.raises(TransactionLogError) as error:
        transactions.load_transactions(str(tmp_path / "p" / "*.txt"))
    assert f"different header lines: {other} has customer_id, amount, timestamp" in str(error.value)
