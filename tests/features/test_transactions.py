"""Validation of transaction logs: every bad input names its column; drops are counted."""

from __future__ import annotations

import re
from pathlib import Path

import duckdb
import pandas as pd
import pytest
from clv.features import transactions
from clv.features.config import ColumnMapping, FeatureConfig
from clv.features.errors import TransactionLogError


def _write_csv(tmp_path: Path, text: str, name: str = "tx.csv") -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


def test_csv_with_mapped_columns(tmp_path: Path) -> None:
    path = _write_csv(tmp_path, "cust,day,value,qty\n1,20240101,10.5,2\n2,20240102,3,1\n")
    mapping = ColumnMapping(
        customer_id="cust",
        timestamp="day",
        amount="value",
        quantity="qty",
        timestamp_format="%Y%m%d",
    )
    log = transactions.load_transactions(path, mapping)
    assert log.n_customers == 2
    assert log.optional_columns == {"quantity"}
    assert str(log.first_date) == "2024-01-01" and str(log.last_date) == "2024-01-02"


def test_parquet_input(tmp_path: Path, tiny_log: pd.DataFrame) -> None:
    frame = tiny_log.assign(timestamp=pd.to_datetime(tiny_log["timestamp"], format="ISO8601"))
    frame.to_parquet(tmp_path / "tx.parquet")
    log = transactions.load_transactions(tmp_path / "tx.parquet")
    assert log.n_customers == 3 and log.report.rows_kept == len(frame)


def test_missing_column_names_the_column_and_option(tmp_path: Path) -> None:
    path = _write_csv(tmp_path, "customer_id,date,amount\n1,2024-01-01,3\n")
    with pytest.raises(
        TransactionLogError, match=r"column 'timestamp'.*--timestamp-col.*date"
    ) as e:
        transactions.load_transactions(path)
    assert e.value.field == "timestamp"


def test_explicit_optional_column_that_is_missing_is_an_error(tmp_path: Path) -> None:
    path = _write_csv(tmp_path, "customer_id,timestamp,amount\n1,2024-01-01,3\n")
    with pytest.raises(TransactionLogError, match="'units'.*--quantity-col"):
        transactions.load_transactions(path, ColumnMapping(quantity="units"))


def test_unparseable_date_names_value_and_row(tmp_path: Path) -> None:
    path = _write_csv(
        tmp_path, "customer_id,timestamp,amount\n1,2024-01-01,3\n2,yesterday,4\n3,2024-13-45,1\n"
    )
    with pytest.raises(
        TransactionLogError,
        match=r"'timestamp'.*2 value\(s\) cannot be parsed.*'yesterday' at data row 2",
    ):
        transactions.load_transactions(path)


def test_non_numeric_amount(tmp_path: Path) -> None:
    path = _write_csv(tmp_path, "customer_id,timestamp,amount\n1,2024-01-01,3\n2,2024-01-02,$4\n")
    with pytest.raises(
        TransactionLogError, match=r"'amount'.*not numbers.*'\$4' at data row 2"
    ) as e:
        transactions.load_transactions(path)
    assert e.value.field == "amount"


def test_decimal_comma_amounts_and_quantities(tmp_path: Path) -> None:
    # A semicolon-separated export from a decimal-comma locale, thousands grouped by dots.
    path = _write_csv(
        tmp_path,
        "customer_id;timestamp;amount;quantity\n"
        "1;2024-01-01;10,5;1\n1;2024-01-02;1.234,25;2,5\n2;2024-01-02;-3;1\n"
        "2;2024-01-03; 7,0 ;\n",
    )
    log = transactions.load_transactions(path, ColumnMapping(decimal_separator=","))
    lines = log.con.execute(
        "SELECT customer_id, amount, quantity FROM transactions ORDER BY customer_id, timestamp"
    ).fetchall()
    assert lines == [("1", 10.5, 1.0), ("1", 1234.25, 2.5), ("2", -3.0, 1.0), ("2", 7.0, None)]


def test_decimal_point_amounts_may_group_thousands_with_commas(tmp_path: Path) -> None:
    # A spreadsheet export with thousands separators, as in '1,234.25' (quoted: the file is
    # comma-separated too).
    path = _write_csv(
        tmp_path,
        "customer_id,timestamp,amount,quantity\n"
        '1,2024-01-01,"1,234.25",2\n1,2024-01-02,"-12,345,678",1\n'
        '2,2024-01-02," 3,000.5 ","1,500"\n2,2024-01-03,7.5,\n',
    )
    log = transactions.load_transactions(path)
    lines = log.con.execute(
        "SELECT customer_id, amount, quantity FROM transactions ORDER BY customer_id, timestamp"
    ).fetchall()
    assert lines == [
        ("1", 1234.25, 2.0),
        ("1", -12345678.0, 1.0),
        ("2", 3000.5, 1500.0),
        ("2", 7.5, None),
    ]


def test_amounts_with_a_currency_symbol(tmp_path: Path) -> None:
    """--currency-symbol removes one symbol before the number (after its sign) or after it;
    quantities are numbers as before, and an amount in another currency is still refused."""
    text = (
        "customer_id,timestamp,amount,quantity\n"
        '1,2024-01-01,"$1,234.50",2\n1,2024-01-02,-$5,1\n2,2024-01-02, $ 7 ,1\n'
        "2,2024-01-03,3.25$,\n3,2024-01-03,8,1\n"
    )
    path = _write_csv(tmp_path, text)
    with pytest.raises(TransactionLogError, match="set --currency-symbol '\\$'"):
        transactions.load_transactions(path)
    log = transactions.load_transactions(path, ColumnMapping(currency_symbol="$"))
    amounts = log.con.execute("SELECT amount FROM transactions ORDER BY customer_id, timestamp")
    assert [a for (a,) in amounts.fetchall()] == [1234.5, -5.0, 7.0, 3.25, 8.0]
    other = _write_csv(tmp_path, text + "3,2024-01-04,€9,1\n", "other.csv")
    with pytest.raises(TransactionLogError, match="1 value\\(s\\) are not numbers e.g. '€9'"):
        transactions.load_transactions(other, ColumnMapping(currency_symbol="$"))
    for bad in ("", "1$", "$ ", "EURO", "-"):
        with pytest.raises(ValueError, match="not a currency symbol"):
            ColumnMapping(currency_symbol=bad)


def test_amounts_in_parentheses_are_negative(tmp_path: Path) -> None:
    """Accounting formats write a negative amount in parentheses: '(12.50)' is -12.5, also
    with thousands, a currency symbol or a decimal comma; a sign inside them is refused."""
    path = _write_csv(
        tmp_path,
        "customer_id,timestamp,amount,quantity\n"
        '1,2024-01-01,30,1\n1,2024-01-02,(12.50),(1)\n1,2024-01-03,"( 1,234.5 )",1\n',
    )
    log = transactions.load_transactions(path)
    lines = log.con.execute("SELECT amount, quantity FROM transactions ORDER BY timestamp")
    assert lines.fetchall() == [(30.0, 1.0), (-12.5, -1.0), (-1234.5, 1.0)]
    assert log.report.rows_kept == 3
    priced = _write_csv(tmp_path, 'customer_id,timestamp,amount\n1,2024-01-01,"($1,234.50)"\n'
                        '1,2024-01-02,$40\n', "symbol.csv")  # fmt: skip
    log = transactions.load_transactions(priced, ColumnMapping(currency_symbol="$"))
    assert log.con.execute("SELECT SUM(amount) FROM transactions").fetchall() == [(-1194.5,)]
    comma = _write_csv(tmp_path, 'customer_id,timestamp,amount\n1,2024-01-01,"(1.234,5)"\n'
                       "1,2024-01-02,40\n", "comma.csv")  # fmt: skip
    log = transactions.load_transactions(comma, ColumnMapping(decimal_separator=","))
    assert log.con.execute("SELECT SUM(amount) FROM transactions").fetchall() == [(-1194.5,)]
    for bad in ("(-5)", "()", "(12", "-(4)"):
        path = _write_csv(tmp_path, f'customer_id,timestamp,amount\n1,2024-01-01,"{bad}"\n')
        with pytest.raises(TransactionLogError, match=f"not numbers e.g. '{re.escape(bad)}'"):
            transactions.load_transactions(path)
    # the hint sees through the parentheses
    path = _write_csv(tmp_path, 'customer_id,timestamp,amount\n1,2024-01-01,"($4)"\n')
    with pytest.raises(TransactionLogError, match="set --currency-symbol '\\$'"):
        transactions.load_transactions(path)


@pytest.mark.parametrize(
    ("separator", "value", "hint"),
    [
        (".", "10,5", "set --decimal-separator ','"),
        (".", "1.234,5", "set --decimal-separator ','"),
        (",", "10.5", "a '.' may only group thousands"),
        (",", "1,234.5", "leave the option out if the file writes decimals with a point"),
        (".", "1,23", "set --decimal-separator ','"),  # commas group only threes
        (".", "1,2345.5", ""),
        (".", "12,345,67", ""),  # neither reading
        (",", "1.23,4", ""),  # neither reading: no hint
        (".", "$4", "set --currency-symbol '$'"),
        (",", "4,50 €", "set --currency-symbol '€'"),
    ],
)
def test_amount_in_the_other_decimal_notation_says_which_option(
    tmp_path: Path, separator: str, value: str, hint: str
) -> None:
    path = _write_csv(tmp_path, f'customer_id,timestamp,amount\n1,2024-01-01,"{value}"\n')
    with pytest.raises(TransactionLogError, match="not numbers") as e:
        transactions.load_transactions(path, ColumnMapping(decimal_separator=separator))
    assert f"'{value}' at data row 1" in str(e.value)
    assert (hint in str(e.value)) if hint else ("--decimal-separator" not in str(e.value))
    assert e.value.field == "amount"


def test_decimal_comma_quantity_that_is_not_a_number(tmp_path: Path) -> None:
    path = _write_csv(tmp_path, 'customer_id,timestamp,amount,quantity\n1,2024-01-01,"3,5","1.5"\n')
    with pytest.raises(TransactionLogError, match=r"'quantity'.*not numbers.*'1\.5'"):
        transactions.load_transactions(path, ColumnMapping(decimal_separator=","))


def test_decimal_separator_is_ignored_for_typed_numbers(
    tmp_path: Path, tiny_log: pd.DataFrame
) -> None:
    frame = tiny_log.assign(timestamp=pd.to_datetime(tiny_log["timestamp"], format="ISO8601"))
    frame.to_parquet(tmp_path / "tx.parquet")
    log = transactions.load_transactions(
        tmp_path / "tx.parquet", ColumnMapping(decimal_separator=",")
    )
    total = log.con.execute("SELECT SUM(amount) FROM transactions").fetchone()
    assert total is not None and total[0] == pytest.approx(frame["amount"].sum())


@pytest.mark.parametrize("bad", ["nan", "inf", "-Infinity"])
def test_nan_or_infinite_amount(tmp_path: Path, bad: str) -> None:
    path = _write_csv(tmp_path, f"customer_id,timestamp,amount\n1,2024-01-01,{bad}\n")
    with pytest.raises(TransactionLogError, match="NaN or infinite"):
        transactions.load_transactions(path)


def test_non_numeric_quantity(tmp_path: Path) -> None:
    path = _write_csv(tmp_path, "customer_id,timestamp,amount,quantity\n1,2024-01-01,3,two\n")
    with pytest.raises(TransactionLogError, match="'quantity'.*not numbers"):
        transactions.load_transactions(path)


def test_empty_file(tmp_path: Path) -> None:
    path = _write_csv(tmp_path, "")
    with pytest.raises(TransactionLogError, match="empty"):
        transactions.load_transactions(path)


def test_header_only_file(tmp_path: Path) -> None:
    path = _write_csv(tmp_path, "customer_id,timestamp,amount\n")
    with pytest.raises(TransactionLogError, match="no rows"):
        transactions.load_transactions(path)


def test_a_column_read_under_a_repeated_name_is_refused(tmp_path: Path) -> None:
    """DuckDB reads a repeated header name's second column as `name_1`: which one holds the
    amount would be a guess, so a repeated column that a role reads is refused, naming the
    file (of a pattern's files, the one that repeats it) or the frame; a repeated column
    that no role reads changes nothing."""
    header = "customer_id,timestamp,amount,{}\n"
    path = _write_csv(tmp_path, header.format("amount") + "1,2024-01-01,3,4\n")
    with pytest.raises(TransactionLogError) as error:
        transactions.load_transactions(path)
    assert error.value.field == "amount"
    assert f"column 'amount' appears more than once in the header of {path}" in str(error.value)
    mapped = _write_csv(tmp_path, "who,day,Price,Price\n1,2024-01-01,3,4\n", name="mapped.csv")
    with pytest.raises(TransactionLogError, match="column 'Price' appears more than once"):
        transactions.load_transactions(
            mapped, ColumnMapping(customer_id="who", timestamp="day", amount="Price")
        )
    notes = _write_csv(tmp_path, header.format("note,note") + "1,2024-01-01,3,a,b\n", "n.csv")
    assert transactions.load_transactions(notes).report.rows_kept == 1
    parts = tmp_path / "parts"
    parts.mkdir()
    # files in two column orders, read by name: each file's header is its own
    first = "timestamp,customer_id,amount,timestamp\n2024-01-01,1,3,x\n"
    repeats = _write_csv(parts, first, name="a.csv")
    _write_csv(parts, header.format("timestamp") + "1,2024-01-02,3,x\n", "b.csv")
    with pytest.raises(TransactionLogError) as error:
        transactions.load_transactions(str(parts / "*.csv"))
    assert f"'timestamp' appears more than once in the header of {repeats}" in str(error.value)
    frame = pd.DataFrame([["1", "2024-01-01", 3.0, 4.0]])
    frame.columns = ["customer_id", "timestamp", "amount", "amount"]
    with pytest.raises(TransactionLogError, match="more than once in the input frame"):
        transactions.transactions_from_frame(frame)


def test_a_csv_log_is_parsed_into_a_table_let_go_once_loaded(tmp_path: Path) -> None:
    """A CSV log's typed lines are kept in a table while it is checked and its daily rows
    built; then the table is dropped (its memory freed), and the views read the file again.
    A log refused for a bad value leaves no table behind either."""
    path = _write_csv(tmp_path, "customer_id,timestamp,amount\n1,2024-01-01,3\n2,2024-01-02,4\n")
    log = transactions.load_transactions(path)

    def tables(con: duckdb.DuckDBPyConnection) -> set[str]:
        return {r[0] for r in con.execute("SELECT table_name FROM duckdb_tables()").fetchall()}

    assert transactions.PARSED_LINES not in tables(log.con) and "daily" in tables(log.con)
    assert log.con.execute("SELECT SUM(amount) FROM transactions").fetchall() == [(7.0,)]
    bad = _write_csv(tmp_path, "customer_id,timestamp,amount\n1,2024-01-01,x\n", name="bad.csv")
    con = transactions.connect()
    with pytest.raises(TransactionLogError, match="not numbers"):
        transactions.load_transactions(bad, con=con)
    assert transactions.PARSED_LINES not in tables(con)


def test_missing_file_and_unknown_type(tmp_path: Path) -> None:
    with pytest.raises(TransactionLogError, match="not found"):
        transactions.load_transactions(tmp_path / "nope.csv")
    other = _write_csv(tmp_path, "x", name="tx.xlsx")
    with pytest.raises(TransactionLogError, match="unsupported file type"):
        transactions.load_transactions(other)


def test_dropped_rows_are_counted_not_lost(tmp_path: Path) -> None:
    path = _write_csv(
        tmp_path,
        "customer_id,timestamp,amount,order_id\n"
        "1,2024-01-01,3,o1\n"
        "1,2024-01-01,3,o1\n"  # the same order line twice
        ",2024-01-01,3,o2\n"  # no customer
        "2,,3,o3\n"  # no timestamp
        "2,2024-01-02,,o4\n"  # no amount
        "2,2024-01-02,0,o5\n"  # zero amount: kept by default
        "3,2024-01-03,7,o6\n",
    )
    log = transactions.load_transactions(path)
    assert log.report.rows_read == 7
    assert log.report.dropped == {
        "missing customer id": 1,
        "missing timestamp": 1,
        "missing amount": 1,
        "zero amount": 0,
        "duplicate order lines": 1,
    }
    assert log.report.rows_kept == 3
    dropping = transactions.load_transactions(path, config=FeatureConfig(drop_zero_amounts=True))
    assert dropping.report.dropped["zero amount"] == 1 and dropping.report.rows_kept == 2
    assert "1 zero amount" in dropping.report.summary()


def test_identical_rows_without_order_id_are_kept(tiny_log: pd.DataFrame) -> None:
    doubled = pd.concat([tiny_log, tiny_log.iloc[[0]]], ignore_index=True)
    log = transactions.transactions_from_frame(doubled)
    assert log.report.rows_kept == len(doubled)


def test_no_usable_rows(tmp_path: Path) -> None:
    path = _write_csv(tmp_path, "customer_id,timestamp,amount\n,2024-01-01,3\n")
    with pytest.raises(TransactionLogError, match="no usable rows"):
        transactions.load_transactions(path)


def test_timestamp_format_mismatch_names_the_format(tmp_path: Path) -> None:
    path = _write_csv(tmp_path, "customer_id,timestamp,amount\n1,2024-01-01,3\n")
    with pytest.raises(
        TransactionLogError, match=r"in format '%Y%m%d'.*'2024-01-01' at data row 1"
    ):
        transactions.load_transactions(path, ColumnMapping(timestamp_format="%Y%m%d"))


def test_empty_parquet_file(tmp_path: Path, tiny_log: pd.DataFrame) -> None:
    tiny_log.iloc[:0].to_parquet(tmp_path / "tx.parquet")
    with pytest.raises(TransactionLogError, match="no rows"):
        transactions.load_transactions(tmp_path / "tx.parquet")


def test_typed_parquet_columns_read_like_text(tmp_path: Path) -> None:
    """Integer ids, DATE days, integer amounts in Parquet: the same log as the text version."""
    frame = pd.DataFrame(
        {
            "customer_id": [1, 1, 2],
            "timestamp": pd.to_datetime(["2024-01-01", "2024-01-03", "2024-01-02"]).date,
            "amount": [10, -4, 7],
            "order_id": [100, 101, 102],
        }
    )
    frame.to_parquet(tmp_path / "tx.parquet")
    frame.to_csv(tmp_path / "tx.csv", index=False)
    typed = transactions.load_transactions(tmp_path / "tx.parquet")
    text = transactions.load_transactions(tmp_path / "tx.csv")
    query = "SELECT * FROM transactions ORDER BY customer_id, timestamp"
    pd.testing.assert_frame_equal(typed.con.execute(query).df(), text.con.execute(query).df())
    assert typed.report == text.report and typed.n_customers == 2


@pytest.mark.parametrize("bad", [float("nan"), float("inf"), float("-inf")])
def test_nan_or_infinite_amount_in_parquet(tmp_path: Path, bad: float) -> None:
    import pyarrow as pa
    import pyarrow.parquet as pq

    table = pa.table(
        {
            "customer_id": ["a", "b"],
            "timestamp": pa.array(pd.to_datetime(["2024-01-01"] * 2)),
            "amount": pa.array([1.0, bad], from_pandas=False),  # a real NaN, not a null
        }
    )
    pq.write_table(table, tmp_path / "tx.parquet")
    with pytest.raises(TransactionLogError, match="'amount'.*NaN or infinite.*data row 2"):
        transactions.load_transactions(tmp_path / "tx.parquet")


def test_non_numeric_amount_in_parquet_text_column(tmp_path: Path) -> None:
    frame = pd.DataFrame({"customer_id": ["a"], "timestamp": ["2024-01-01"], "amount": ["twelve"]})
    frame.to_parquet(tmp_path / "tx.parquet")
    with pytest.raises(TransactionLogError, match="'amount'.*not numbers.*'twelve'"):
        transactions.load_transactions(tmp_path / "tx.parquet")


def test_ids_are_trimmed_and_blank_ids_dropped_in_parquet(tmp_path: Path) -> None:
    frame = pd.DataFrame(
        {
            "customer_id": ["a", " a ", "  ", "b"],
            "timestamp": pd.to_datetime(["2024-01-01", "2024-01-02", "2024-01-02", "2024-01-03"]),
            "amount": [1.0, 2.0, 3.0, 4.0],
            "product": ["p", "p ", "q", ""],
        }
    )
    frame.to_parquet(tmp_path / "tx.parquet")
    log = transactions.load_transactions(tmp_path / "tx.parquet")
    assert log.n_customers == 2 and log.report.dropped["missing customer id"] == 1
    rows = log.con.execute(
        "SELECT customer_id, product FROM transactions ORDER BY timestamp"
    ).fetchall()
    assert rows == [("a", "p"), ("a", "p"), ("b", None)]


def _order_lines() -> pd.DataFrame:
    """Lines of two customers' orders: two lines sent twice, the copies with padded ids (the
    same line once trimmed), and lines that differ in one column only (all kept)."""
    return pd.DataFrame(
        {
            "customer_id": ["a", "a ", "a", "a", "a ", "b", "b", "b"],
            "timestamp": pd.to_datetime(["2024-01-01 09:00"] * 5 + ["2024-01-02 10:00"] * 3),
            "amount": [10.0, 10.0, 10.0, 5.0, 5.0, 7.0, 7.0, -7.0],
            "order_id": [1, 1, 1, 1, 1, 2, 2, 2],
            "quantity": [1, 1, 2, 1, 1, 1, 1, -1],
            "product": ["p1", "p1", "p1", "p2", "p2", "p1", "p2", "p1"],
            "channel": ["web"] * 8,
        }
    )


@pytest.mark.parametrize("kind", ["parquet", "csv"])
@pytest.mark.parametrize("order_type", ["int64", "str"])
@pytest.mark.parametrize("padded", [False, True])
def test_duplicate_order_lines_are_removed_once(
    tmp_path: Path, order_type: str, padded: bool, kind: str
) -> None:
    """The same lines and counts whether identical lines are removed by the DISTINCT or shown
    absent by their hashes: integer or text order ids; copies identical as read, or only once
    trimmed (their hashes as read differ: the shortcut must not be taken); from Parquet, and
    from CSV, whose lines are parsed once and hashed as they are kept (`PARSED_HASH`)."""
    frame = _order_lines().astype({"order_id": order_type})
    if not padded:
        frame["customer_id"] = frame["customer_id"].str.strip()

    def write(data: pd.DataFrame, name: str) -> Path:
        path = tmp_path / f"{name}.{kind}"
        data.to_parquet(path) if kind == "parquet" else data.to_csv(path, index=False)
        return path

    log = transactions.load_transactions(write(frame, "tx"))
    assert log.report.dropped["duplicate order lines"] == 2
    unique = frame.assign(customer_id=frame["customer_id"].str.strip()).drop_duplicates()
    expected = transactions.load_transactions(write(unique, "unique"))
    # the hashes show the unique lines unique, so the DISTINCT is skipped
    view = "SELECT sql FROM duckdb_views() WHERE view_name = 'kept_lines'"
    assert "DISTINCT" not in expected.con.execute(view).fetchall()[0][0]
    assert "DISTINCT" in log.con.execute(view).fetchall()[0][0]
    assert expected.report.dropped["duplicate order lines"] == 0
    query = "SELECT * FROM daily ORDER BY customer_id, day"
    pd.testing.assert_frame_equal(log.con.execute(query).df(), expected.con.execute(query).df())
    assert log.report.rows_kept == expected.report.rows_kept == 6


# 23:30 in New York on Jan 2 is 04:30 UTC on Jan 3; 00:30 in Paris on Jan 5 is Jan 4 in UTC.
ZONED = ["2024-01-02T23:30:00-05:00", "2024-01-05 00:30:00+0100", "2024-01-06T12:00:00Z"]
UTC_DAYS = ["2024-01-03", "2024-01-04", "2024-01-06"]


def _days(log: transactions.TransactionLog) -> list[str]:
    rows = log.con.execute("SELECT CAST(timestamp AS DATE) FROM transactions ORDER BY amount")
    return [str(day) for (day,) in rows.fetchall()]


def _new_york_connection():
    """A connection as DuckDB opens it on a machine in New York (its zone is the machine's)."""
    con = transactions.connect()
    con.execute("SET TimeZone = 'America/New_York'")
    return con


@pytest.mark.parametrize("kind", ["csv", "parquet", "frame"])
def test_timestamps_with_a_zone_are_cut_into_days_in_utc(tmp_path: Path, kind: str) -> None:
    """Offsets and zones count in UTC (as the service converts them), on any machine; text
    without one is read as it is."""
    instants = pd.to_datetime(ZONED, utc=True, format="ISO8601")
    frame = pd.DataFrame(
        {"customer_id": ["a", "a", "b"], "timestamp": ZONED, "amount": [1.0, 2.0, 3.0]}
    )
    if kind == "csv":
        path = tmp_path / "log.csv"
        frame.to_csv(path, index=False)
        log = transactions.load_transactions(path, con=_new_york_connection())
    elif kind == "parquet":  # an instant column: TIMESTAMP WITH TIME ZONE
        path = tmp_path / "log.parquet"
        frame.assign(timestamp=instants.tz_convert("Asia/Tokyo")).to_parquet(path)
        log = transactions.load_transactions(path, con=_new_york_connection())
    else:
        zoned = frame.assign(timestamp=instants.tz_convert("America/New_York"))
        log = transactions.transactions_from_frame(zoned, con=_new_york_connection())
    assert _days(log) == UTC_DAYS
    naive = frame.assign(timestamp=["2024-01-02 23:30", "2024-01-05 00:30", "2024-01-06"])
    naive_log = transactions.transactions_from_frame(naive, con=_new_york_connection())
    assert _days(naive_log) == ["2024-01-02", "2024-01-05", "2024-01-06"]


def test_timestamp_format_with_an_offset_is_utc(tmp_path: Path) -> None:
    path = tmp_path / "log.csv"
    path.write_text("customer_id,timestamp,amount\na,02/01/2024 23:30 -0500,1\n")
    log = transactions.load_transactions(
        path, columns=ColumnMapping(timestamp_format="%d/%m/%Y %H:%M %z")
    )
    assert _days(log) == ["2024-01-03"]


# ZONED's instants as New York dates: 23:30 -05:00 is New York time already; 00:30 +01:00 is
# 18:30 the evening before; noon UTC is 07:00.
NEW_YORK_DAYS = ["2024-01-02", "2024-01-04", "2024-01-06"]
NEW_YORK = FeatureConfig(timezone="America/New_York")


@pytest.mark.parametrize("kind", ["csv", "parquet", "frame", "format"])
def test_days_are_cut_in_the_configured_time_zone(tmp_path: Path, kind: str) -> None:
    """With timezone set, timestamps with an offset or zone become that zone's local time
    before days are cut, whatever the machine's zone; naive text is read as it is."""
    frame = pd.DataFrame(
        {"customer_id": ["a", "a", "b"], "timestamp": ZONED, "amount": [1.0, 2.0, 3.0]}
    )
    instants = pd.to_datetime(ZONED, utc=True, format="ISO8601")
    con = _new_york_connection() if kind == "frame" else transactions.connect()
    if kind == "csv":
        frame.to_csv(tmp_path / "log.csv", index=False)
        log = transactions.load_transactions(tmp_path / "log.csv", config=NEW_YORK, con=con)
    elif kind == "parquet":
        frame.assign(timestamp=instants.tz_convert("Asia/Tokyo")).to_parquet(tmp_path / "l.parquet")
        log = transactions.load_transactions(tmp_path / "l.parquet", config=NEW_YORK, con=con)
    elif kind == "frame":
        zoned = frame.assign(timestamp=instants.tz_convert("Europe/Berlin"))
        log = transactions.transactions_from_frame(zoned, config=NEW_YORK, con=con)
    else:
        text = instants.strftime("%d/%m/%Y %H:%M +0000")
        frame.assign(timestamp=text).to_csv(tmp_path / "log.csv", index=False)
        mapping = ColumnMapping(timestamp_format="%d/%m/%Y %H:%M %z")
        log = transactions.load_transactions(tmp_path / "log.csv", mapping, NEW_YORK, con)
    assert _days(log) == NEW_YORK_DAYS
    naive = frame.assign(timestamp=["2024-01-02 23:30", "2024-01-05 00:30", "2024-01-06"])
    naive_log = transactions.transactions_from_frame(naive, config=NEW_YORK)
    assert _days(naive_log) == ["2024-01-02", "2024-01-05", "2024-01-06"]


@pytest.mark.parametrize("kind", ["csv", "parquet", "format"])
def test_naive_timestamps_in_another_zone_are_converted(tmp_path: Path, kind: str) -> None:
    """naive_timezone='UTC' reads timestamps without an offset as UTC times: the same days as
    the instants they stand for. A date without a time of day is never shifted."""
    utc_text = pd.to_datetime(ZONED, utc=True, format="ISO8601").strftime("%Y-%m-%d %H:%M:%S")
    frame = pd.DataFrame(
        {"customer_id": ["a", "a", "b", "b"], "amount": [1.0, 2.0, 3.0, 4.0]}
    ).assign(timestamp=[*utc_text, "2024-01-08"])
    mapping = ColumnMapping(naive_timezone="UTC")
    if kind == "csv":
        frame.to_csv(tmp_path / "log.csv", index=False)
        log = transactions.load_transactions(tmp_path / "log.csv", mapping, NEW_YORK)
        expected = [*NEW_YORK_DAYS, "2024-01-08"]
    elif kind == "parquet":  # a typed (naive) timestamp column: midnight is a time too
        typed = frame.assign(timestamp=pd.to_datetime(frame["timestamp"], format="ISO8601"))
        typed.to_parquet(tmp_path / "log.parquet")
        log = transactions.load_transactions(tmp_path / "log.parquet", mapping, NEW_YORK)
        expected = [*NEW_YORK_DAYS, "2024-01-07"]
    else:
        stamped = frame.assign(timestamp=[*utc_text, "2024-01-08 00:00:00"])
        stamped.to_csv(tmp_path / "log.csv", index=False)
        formatted = mapping.model_copy(update={"timestamp_format": "%Y-%m-%d %H:%M:%S"})
        log = transactions.load_transactions(tmp_path / "log.csv", formatted, NEW_YORK)
        expected = [*NEW_YORK_DAYS, "2024-01-07"]
    assert _days(log) == expected
    dates_only = ColumnMapping(naive_timezone="UTC", timestamp_format="%Y-%m-%d")
    frame.assign(timestamp="2024-01-08").to_csv(tmp_path / "dates.csv", index=False)
    dated = transactions.load_transactions(tmp_path / "dates.csv", dates_only, NEW_YORK)
    assert set(_days(dated)) == {"2024-01-08"}


def test_unknown_time_zones_are_refused() -> None:
    for bad in ("Mars/Olympus_Mons", "+05:00", "localtime", ""):
        with pytest.raises(ValueError, match="not an IANA time zone"):
            FeatureConfig(timezone=bad)
        with pytest.raises(ValueError, match="not an IANA time zone"):
            ColumnMapping(naive_timezone=bad)


# Lines as the Online Retail data set writes them: no line amount, a quantity and a unit price
# ("Price"), a cancelled invoice ('C...') with a negative quantity, a line without a customer.
ONLINE_RETAIL = (
    "Invoice,StockCode,Description,Quantity,InvoiceDate,Price,Customer ID,Country\n"
    "489434,85048,LIGHT,12,12/1/2009 7:45,6.95,13085,United Kingdom\n"
    "489434,79323P,HEART,12,12/1/2009 7:45,2.55,13085,United Kingdom\n"
    "489435,22350,CAT BOWL,12,12/1/2009 7:46,2.55,,United Kingdom\n"
    "489436,21523,DOORMAT,10,12/3/2009 9:06,5.95,13078,United Kingdom\n"
    "C489449,22087,PAPER BUNTING,-12,12/4/2009 10:33,2.95,13085,United Kingdom\n"
    "489520,85048,LIGHT,1,12/8/2009 11:00,6.95,13085,United Kingdom\n"
)
ONLINE_RETAIL_COLUMNS = ColumnMapping(
    customer_id="Customer ID",
    timestamp="InvoiceDate",
    timestamp_format="%m/%d/%Y %H:%M",
    order_id="Invoice",
    quantity="Quantity",
    unit_price="Price",
    product="StockCode",
    channel=None,
)


def test_amounts_are_quantity_times_unit_price(tmp_path: Path) -> None:
    path = _write_csv(tmp_path, ONLINE_RETAIL)
    log = transactions.load_transactions(path, ONLINE_RETAIL_COLUMNS)
    lines = log.con.execute(
        "SELECT customer_id, amount, quantity FROM transactions ORDER BY timestamp, amount"
    ).fetchall()
    assert lines == [
        ("13085", pytest.approx(12 * 2.55), 12.0),
        ("13085", pytest.approx(12 * 6.95), 12.0),
        ("13078", pytest.approx(10 * 5.95), 10.0),
        ("13085", pytest.approx(-12 * 2.95), -12.0),
        ("13085", pytest.approx(6.95), 1.0),
    ]
    assert log.report.dropped["missing customer id"] == 1


@pytest.mark.parametrize(
    ("replace", "columns", "message", "field"),
    [
        (("2.55,,", "abc,,"), {}, "column 'Price' (unit price): 1 value(s) are not numbers",
         "unit price"),
        (("12,12/1/2009 7:45,2.55,13085", "x,12/1/2009 7:45,2.55,13085"), {},
         "column 'Quantity' (quantity): 1 value(s) are not numbers e.g. 'x'", "quantity"),
        (("", ""), {"unit_price": "UnitPrice"}, "column 'UnitPrice' for unit price not found",
         "unit price"),
        (("", ""), {"quantity": None}, "a unit price (--unit-price-col Price) needs a quantity",
         "quantity"),
        (("", ""), {"amount": "Price"}, "give either an amount column (--amount-col Price) or a "
         "unit price (--unit-price-col Price), not both", "unit price"),
    ],
)  # fmt: skip
def test_unit_price_errors_name_the_column(
    tmp_path: Path, replace: tuple[str, str], columns: dict, message: str, field: str
) -> None:
    path = _write_csv(tmp_path, ONLINE_RETAIL.replace(*replace, 1))
    mapping = ONLINE_RETAIL_COLUMNS.model_copy(update=columns)
    with pytest.raises(TransactionLogError) as error:
        transactions.load_transactions(path, mapping)
    assert message in str(error.value)
    assert error.value.field == field


def test_csv_in_another_encoding_is_read_with_the_encoding_option(tmp_path: Path) -> None:
    """A CSV saved as latin-1 (as Excel on Windows does) is refused as not UTF-8, naming the
    option that reads it, also when the first bad byte lies past DuckDB's sniffing sample."""
    lines = [f"{i % 7},2024-01-{1 + i % 28:02d},{i % 11 + 1}.5,plain" for i in range(30_000)]
    text = "customer_id,timestamp,amount,product\n" + "\n".join(lines) + "\n1,2024-01-02,3,café\n"
    path = tmp_path / "latin.csv"
    path.write_bytes(text.encode("latin-1"))
    with pytest.raises(TransactionLogError, match="not utf-8 text.*--encoding latin-1") as e:
        transactions.load_transactions(path)
    assert e.value.field == "--encoding"
    log = transactions.load_transactions(path, ColumnMapping(encoding="latin-1"))
    products = log.con.execute("SELECT DISTINCT product FROM transactions ORDER BY 1").fetchall()
    assert products == [("café",), ("plain",)]
    path.write_bytes(text.encode("utf-16"))
    log = transactions.load_transactions(path, ColumnMapping(encoding="utf-16"))
    assert log.report.rows_read == 30_001


def test_options_over_the_columns_a_model_was_trained_with() -> None:
    """`clv score` and `clv report` read a log as training did, under their own options."""
    trained = ColumnMapping(customer_id="cust", quantity="qty", unit_price="price",
                            naive_timezone="UTC")  # fmt: skip
    assert ColumnMapping().over(None) == ColumnMapping()
    same = ColumnMapping().over(trained)
    assert same == trained and same.model_fields_set == trained.model_fields_set
    # an option wins; a column left at its default name stays read-if-present
    latin = ColumnMapping(encoding="latin-1").over(trained)
    assert latin.encoding == "latin-1" and latin.customer_id == "cust"
    assert "product" not in latin.model_fields_set
    # a line's amount comes from an amount column or a unit price: one replaces the other
    total = ColumnMapping(amount="total").over(trained)
    assert total.amount == "total" and total.unit_price is None and total.quantity == "qty"
    priced = ColumnMapping(unit_price="p").over(ColumnMapping(amount="total"))
    assert priced.unit_price == "p" and "amount" not in priced.model_fields_set


def test_one_column_cannot_play_two_roles(tmp_path: Path) -> None:
    path = _write_csv(tmp_path, "customer_id,timestamp,amount,order_id\na,2024-01-01,5,o1\n")
    both = r"'amount' is given as both customer_id \(--customer-col\) and amount \(--amount-col\)"
    with pytest.raises(TransactionLogError, match=both):
        transactions.load_transactions(path, columns=ColumnMapping(customer_id="amount"))
    with pytest.raises(TransactionLogError, match="--quantity-col"):
        transactions.load_transactions(path, columns=ColumnMapping(quantity="amount"))
    # a default name that the user gave another role is simply not used for its own
    log = transactions.load_transactions(path, columns=ColumnMapping(customer_id="order_id"))
    assert "order_id" not in log.optional_columns
    assert log.con.execute("SELECT customer_id FROM transactions").fetchall() == [("o1",)]
