"""Where a transaction log's rows are read from: one CSV or Parquet file, a folder of Parquet
files, or the files that a glob pattern matches (`data/2024-*.csv`, `exports/**/*.parquet`).

`find_log` checks that the log exists and is of one kind, and lists the files of a folder or
a pattern once; `read_sql` gives the DuckDB expression that reads those files, so what is read
is what was found (and hashed: `clv.training.tracking.file_sha256`), even if files arrive in
between. The files of a folder or pattern are read by column name, so their columns may come
in any order, but each must have the same columns (`columns_in_order`): a file whose header
names a column otherwise would read as a column of NULLs.

A text file whose columns are separated by runs of spaces, as `CDNOW_master.txt` (no comma,
semicolon, tab or bar in its header line), is read by splitting each line on them
(`spaced_columns`): DuckDB's CSV reader takes one character as the separator.
"""

from __future__ import annotations

import glob
import gzip
import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import duckdb

from .errors import TransactionLogError
from .sql import quoted_name, string_literal

# Characters that make a path a glob pattern (Python's `glob`, which `**` recurses with).
GLOB_CHARACTERS = frozenset("*?[")
_CSV_SUFFIXES = (".csv", ".txt", ".tsv")
_FIELD = "--transactions"
# The index pandas writes beside a frame's columns (`to_parquet` of a filtered frame): not
# data, so a file may have it where others have not.
_PANDAS_INDEX = re.compile(r"__index_level_\d+__")

Kind = Literal["csv", "parquet"]


class UnreadableFile(Exception):
    """DuckDB could not read one file of a pattern (`columns_in_order`): the loader names
    the file in its error."""

    def __init__(self, file: Path, error: duckdb.Error) -> None:
        super().__init__(f"{file}: {error}")
        self.file, self.error = file, error


@dataclass(frozen=True)
class LogSource:
    """A transaction log on disk: `path` as given, its kind, and for a folder or a pattern the
    files it holds or matched (sorted; empty for a single file)."""

    path: Path
    kind: Kind
    matched: tuple[Path, ...] = ()


def is_pattern(path: str | Path) -> bool:
    """Whether `path` is a glob pattern rather than a file or folder that exists."""
    return not Path(path).exists() and any(c in GLOB_CHARACTERS for c in str(path))


def _type_suffix(path: Path) -> str:
    """The suffixes that say what a file holds: the last one, or the last two when the last
    is `.gz` (`tx.csv.gz`). A backup or partial copy (`tx.csv.bak`, `tx.parquet.tmp`) is
    neither a CSV nor a Parquet file."""
    suffixes = [s.lower() for s in path.suffixes]
    return "".join(suffixes[-2:] if suffixes[-1:] == [".gz"] else suffixes[-1:])


def _kind(path: Path) -> Kind | None:
    suffix = _type_suffix(path)
    if suffix == ".parquet":
        return "parquet"
    if suffix.removesuffix(".gz") in _CSV_SUFFIXES:
        return "csv"
    return None


def _unsupported(path: Path) -> TransactionLogError:
    return TransactionLogError(
        f"unsupported file type '{_type_suffix(path)}' ({path.name}): give a .csv "
        "(optionally .gz) or .parquet file",
        field=_FIELD,
    )


def find_log(path: str | Path) -> LogSource:
    """The log at `path`, refusing what cannot be read: nothing there, an empty file, a file
    type other than CSV or Parquet, and a pattern that matches no file or files of both kinds."""
    path = Path(path)
    if is_pattern(path):
        return _find_pattern(path)
    if not path.exists():
        raise TransactionLogError(f"transaction file not found: {path}", field=_FIELD)
    if path.is_dir():
        return _find_folder(path)
    if path.stat().st_size == 0:
        raise TransactionLogError(f"transaction file is empty: {path}", field=_FIELD)
    kind = _kind(path)
    if kind is None:
        raise _unsupported(path)
    return LogSource(path, kind)


def _is_hidden(name: str) -> bool:
    """A name that writers use for what is not data: `.crc` checksums, `_SUCCESS` markers,
    `_temporary` folders of unfinished Spark or Hadoop jobs."""
    return name.startswith((".", "_"))


def _check_not_empty(file: Path, where: str) -> None:
    if file.stat().st_size == 0:
        raise TransactionLogError(f"transaction file is empty: {file} ({where})", field=_FIELD)


def _find_folder(folder: Path) -> LogSource:
    """The Parquet files in `folder` and its subfolders (a Spark or Hive export:
    `date=2024-01-01/part-0.parquet`), hidden ones left out (`_is_hidden`). CSV files
    beside them are refused rather than left unread: a pattern says which files to read."""
    found = sorted(
        file
        for file in folder.rglob("*")
        if file.is_file() and not any(_is_hidden(part) for part in file.relative_to(folder).parts)
    )
    files = [file for file in found if _kind(file) == "parquet"]
    # text files are read as CSV only when named; in a folder they are notes (README.txt)
    texts = (file for file in found if _kind(file) == "csv")
    csv = next((file for file in texts if not _type_suffix(file).startswith(".txt")), None)
    pattern = f"'{folder}/**/*.csv'"
    if not files:
        raise TransactionLogError(
            f"the folder {folder} holds no .parquet file (a folder is read as the Parquet "
            f"files in it and its subfolders; for CSV files give a pattern such as {pattern})",
            field=_FIELD,
        )
    if csv is not None:
        raise TransactionLogError(
            f"the folder {folder} holds both Parquet and CSV files ({files[0]}, {csv}): a log "
            f"is read from files of one kind; give a pattern such as '{folder}/**/*.parquet' "
            f"or {pattern}",
            field=_FIELD,
        )
    for file in files:
        _check_not_empty(file, _of(folder))
    return LogSource(folder, "parquet", tuple(files))


def _find_pattern(pattern: Path) -> LogSource:
    matched = sorted(Path(p) for p in glob.glob(str(pattern), recursive=True) if Path(p).is_file())
    if not matched:
        raise TransactionLogError(f"no file matches the pattern '{pattern}'", field=_FIELD)
    kinds: dict[Kind, Path] = {}
    for file in matched:
        kind = _kind(file)
        if kind is None:
            raise TransactionLogError(
                f"the pattern '{pattern}' matches {file}, which is not a .csv (optionally .gz) "
                "or .parquet file",
                field=_FIELD,
            )
        kinds.setdefault(kind, file)
        _check_not_empty(file, _of(pattern))
    if len(kinds) > 1:
        raise TransactionLogError(
            f"the pattern '{pattern}' matches both CSV and Parquet files ({kinds['csv']}, "
            f"{kinds['parquet']}): a log is read from files of one kind",
            field=_FIELD,
        )
    return LogSource(pattern, next(iter(kinds)), tuple(matched))


def _reader(kind: Kind, files: str, encoding: str, by_name: bool) -> str:
    options = ", union_by_name = true" if by_name else ""
    if kind == "parquet":
        return f"read_parquet({files}{options})"
    return f"read_csv({files}, all_varchar = true, header = true, encoding = '{encoding}'{options})"


def read_sql(source: LogSource, encoding: str = "utf-8", by_name: bool = True) -> str:
    """The DuckDB table function that reads the log: CSV as text (the loader types it),
    `encoding` being the CSV's. The files of a folder or pattern are listed, and read by
    column name unless not `by_name` (for files whose columns come in one order: see
    `columns_in_order`)."""
    spaced = spaced_columns(source, encoding)
    if source.matched:
        files = "[" + ", ".join(string_literal(f) for f in source.matched) + "]"
        if spaced:
            return _spaced_reader(files, encoding, spaced)
        return _reader(source.kind, files, encoding, by_name and len(source.matched) > 1)
    if spaced:
        return _spaced_reader(string_literal(source.path), encoding, spaced)
    return _reader(source.kind, string_literal(source.path), encoding, False)


# The characters DuckDB's CSV sniffer splits columns on: a header line with none of them
# and spaces between its names is of a file whose columns runs of spaces separate.
_SNIFFED_SEPARATORS = frozenset(",;|\t")


def _spaced_names(header: str | None) -> list[str] | None:
    if header is None or _SNIFFED_SEPARATORS & set(header):
        return None
    names = header.lstrip("\ufeff").split()
    return names if len(names) > 1 else None


def spaced_columns(source: LogSource, encoding: str) -> list[str] | None:
    """The column names of a text log whose columns runs of spaces separate (its first
    file's header line split on them), or None for one DuckDB's CSV reader reads (and for
    Parquet). Refuses such a header that names a column twice."""
    if source.kind != "csv":
        return None
    first = source.matched[0] if source.matched else source.path
    names = _spaced_names(_header_line(first, encoding)) or []
    twice = next((name for name in names if names.count(name) > 1), None)
    if twice is not None:
        raise TransactionLogError(
            f"column '{twice}' appears more than once in the header of {first}: rename the others",
            field=_FIELD,
        )
    return names or None


def _spaced_reader(files: str, encoding: str, names: Sequence[str]) -> str:
    """A subquery reading `files` as lines split on runs of spaces or tabs, after each
    file's header line, blank lines skipped. A line of more or fewer fields than the header
    names stops the read, naming the line and its file: a value with a space in it (a
    product 'blue shirt') would shift the values after it into other columns."""
    blank = " ' ' || chr(9)"
    # split on single spaces, then drop the empty fields between runs of them: 2.2 s for
    # 10M lines where a regular expression ('[ \t]+') took 5.3 s
    spaced = f"replace(TRIM(line,{blank}), chr(9), ' ')"
    split = f"list_filter(string_split({spaced}, ' '), lambda field: field <> '')"
    columns = ", ".join(f"parts[{i}] AS {quoted_name(name)}" for i, name in enumerate(names, 1))
    lines = (
        f"read_csv({files}, header = false, skip = 1, delim = chr(0), quote = '', "
        f"escape = '', columns = {{'line': 'VARCHAR'}}, auto_detect = false, "
        f"encoding = '{encoding}', filename = true)"
    )
    misread = (
        f"error('the line \"' || TRIM(line,{blank}) || '\" of ' || filename || ' has ' || "
        f"len(parts) || ' fields where its header names {len(names)}: columns separated by "
        "spaces cannot hold values with spaces in them (write such a log as CSV)')"
    )
    return (
        f"(SELECT {columns} FROM (SELECT {split} AS parts, line, filename FROM {lines} "
        f"WHERE NULLIF(TRIM(line,{blank}), '') IS NOT NULL) "
        f"WHERE len(parts) = {len(names)} OR {misread})"
    )


def _header_line(file: Path, encoding: str) -> str | None:
    """A CSV file's first line as written (None when it cannot be read as text)."""
    try:
        if file.suffix.lower() == ".gz":
            with gzip.open(file, "rt", encoding=encoding, newline="") as zipped:
                return zipped.readline(1 << 16)
        with file.open(encoding=encoding, newline="") as handle:
            return handle.readline(1 << 16)
    except (OSError, UnicodeError, EOFError):
        return None


def columns_in_order(con: duckdb.DuckDBPyConnection, source: LogSource, encoding: str) -> bool:
    """Refuse a folder or pattern whose files do not all have the columns of the first one,
    and say whether they also come in one order: the files are then read by position, which
    DuckDB does without inspecting each file (365 one-day CSV files: 0.2 s a scan, against
    3.3 s by name). CSV files whose first lines are the same text need no more checking;
    otherwise each file's columns are read (a file DuckDB cannot read raises
    `UnreadableFile`), the index columns pandas may write aside."""
    if len(source.matched) < 2:
        return True
    spaced = spaced_columns(source, encoding)
    if spaced:
        for file in source.matched:
            names = _spaced_names(_header_line(file, encoding))
            if names != spaced:
                found = ", ".join(names) if names else "no names that spaces separate"
                raise TransactionLogError(
                    f"the files {_of(source.path)} have different header lines: {file} has "
                    f"{found}, against {source.matched[0]}: {', '.join(spaced)}; files whose "
                    "columns spaces separate are read in one column order",
                    field=_FIELD,
                )
        return True
    if source.kind == "csv":
        headers = {_header_line(file, encoding) for file in source.matched}
        if len(headers) == 1 and None not in headers:
            return True
    first, *others = source.matched
    first_every = _column_names(con, first, source.kind, encoding)
    expected = [name for name in first_every if not _PANDAS_INDEX.fullmatch(name)]
    in_order = True
    for file in others:
        every = _column_names(con, file, source.kind, encoding)
        names = [name for name in every if not _PANDAS_INDEX.fullmatch(name)]
        if sorted(names) != sorted(expected):
            missing = sorted(set(expected) - set(names))
            extra = sorted(set(names) - set(expected))
            what = "; ".join(
                part
                for part in (
                    f"lacks {', '.join(missing)}" if missing else "",
                    f"has {', '.join(extra)} besides" if extra else "",
                )
                if part
            )
            raise TransactionLogError(
                f"the files {_of(source.path)} have different columns: {file} {what} "
                f"(against {first}: {', '.join(expected)}); the files of one log need the "
                "same columns",
                field=_FIELD,
            )
        in_order = in_order and every == first_every
    return in_order


def repeated_column(
    con: duckdb.DuckDBPyConnection, source: LogSource, encoding: str, names: Sequence[str]
) -> tuple[str, Path] | None:
    """The first of `names` that a CSV file of `source` has more than once in its header,
    and that file (DuckDB reads the second as `name_1`, so which one a role reads would be
    a guess). Parquet column names are unique."""
    if source.kind != "csv":
        return None
    for file in source.matched or (source.path,):
        reader = f"read_csv({string_literal(file)}, all_varchar = true, header = false, "
        reader += f"encoding = '{encoding}')"
        try:
            header = con.execute(f"SELECT * FROM {reader} LIMIT 1").fetchone() or ()
        except duckdb.Error as exc:
            raise UnreadableFile(file, exc) from exc
        for name in names:
            if list(header).count(name) > 1:
                return name, file
    return None


def _of(path: Path) -> str:
    """Where the files of a folder or a pattern come from, for messages."""
    if path.is_dir():
        return f"in the folder {path}"
    return f"matched by '{path}'"


def _column_names(
    con: duckdb.DuckDBPyConnection, file: Path, kind: Kind, encoding: str
) -> list[str]:
    """One file's columns as DuckDB reads them; `UnreadableFile` when it cannot."""
    reader = _reader(kind, string_literal(file), encoding, False)
    try:
        return [r[0] for r in con.execute(f"DESCRIBE SELECT * FROM {reader}").fetchall()]
    except duckdb.Error as exc:
        raise UnreadableFile(file, exc) from exc
