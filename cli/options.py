"""Command-line options shared by every command that reads a transaction log.

Declared once here so `clv features`, `train`, `score` and `report` map columns the same way.
"""

from __future__ import annotations

from typing import Annotated

import typer

# What --transactions accepts, for each command's help.
TRANSACTIONS_HELP = (
    "Transaction log: a CSV (optionally .gz; columns separated by commas, semicolons, tabs, "
    "bars or runs of spaces) or Parquet file, a folder of Parquet files, or a quoted glob "
    "pattern of files of one kind ('exports/2024-*.csv', 'data/**/*.parquet')"
)

CustomerCol = Annotated[
    str | None,
    typer.Option("--customer-col", help="Customer id column (default: customer_id)."),
]
TimestampCol = Annotated[
    str | None,
    typer.Option("--timestamp-col", help="Timestamp/date column (default: timestamp)."),
]
AmountCol = Annotated[
    str | None, typer.Option("--amount-col", help="Amount column (default: amount).")
]
OrderCol = Annotated[
    str | None,
    typer.Option("--order-col", help="Order id column (default: order_id, if present)."),
]
QuantityCol = Annotated[
    str | None,
    typer.Option("--quantity-col", help="Quantity column (default: quantity, if present)."),
]
ProductCol = Annotated[
    str | None,
    typer.Option("--product-col", help="Product column (default: product, if present)."),
]
ChannelCol = Annotated[
    str | None,
    typer.Option("--channel-col", help="Channel column (default: channel, if present)."),
]
UnitPriceCol = Annotated[
    str | None,
    typer.Option(
        "--unit-price-col",
        help="Unit price column, for logs without a line amount: amount = quantity x unit"
        " price (needs a quantity column; the amount column is then not read).",
    ),
]
TimestampFormat = Annotated[
    str | None,
    typer.Option("--timestamp-format", help="strptime format, e.g. %Y%m%d (default: ISO 8601)."),
]
DecimalSeparator = Annotated[
    str | None,
    typer.Option(
        "--decimal-separator",
        help="Decimal separator of amounts and quantities in a CSV: '.' (default; ',' may"
        " group thousands: '1,234.5') or ',' ('10,5'; '.' may then group thousands: '1.234,5').",
    ),
]
CurrencySymbol = Annotated[
    str | None,
    typer.Option(
        "--currency-symbol",
        help="Currency symbol that CSV amounts carry before or after the number, e.g. '$' for"
        " '$1,234.50' or '-$5' (removed before reading).",
    ),
]
Encoding = Annotated[
    str | None,
    typer.Option(
        "--encoding",
        help="Text encoding of a CSV: utf-8 (default), latin-1 (e.g. saved by Excel on"
        " Windows) or utf-16.",
    ),
]
NaiveTimezone = Annotated[
    str | None,
    typer.Option(
        "--naive-timezone",
        help="Time zone of timestamps written without an offset, e.g. UTC for a log exported"
        " in UTC (default: they are local times of the feature time zone). Dates are never"
        " shifted.",
    ),
]
Timezone = Annotated[
    str | None,
    typer.Option(
        "--timezone",
        help="IANA time zone in which days are cut, e.g. America/New_York (default: UTC);"
        " timestamps with an offset are converted to it. Saved with the model.",
    ),
]
