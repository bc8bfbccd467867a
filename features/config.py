"""Typed configuration of the feature layer: how to read a log and which features to build."""

from __future__ import annotations

import zoneinfo
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from . import schema

DEFAULT_TIMEZONE = "UTC"


def known_timezone(value: str) -> str:
    """`value` if it names an IANA time zone ('UTC', 'Europe/Berlin', 'America/New_York');
    ValueError otherwise. 'localtime' is refused: it is the machine's zone, so the same log
    would give other days on another machine."""
    try:
        known = value != "localtime" and zoneinfo.ZoneInfo(value) is not None
    except (zoneinfo.ZoneInfoNotFoundError, ValueError):
        known = False
    if not known:
        raise ValueError(
            f"'{value}' is not an IANA time zone name (e.g. 'UTC', 'Europe/Berlin', "
            "'America/New_York')"
        )
    return value


def currency_symbol(value: str) -> str:
    """`value` if it can be a currency symbol around amounts ('$', '€', 'EUR'): 1 to 3
    characters, none of them a digit, space, sign, quote or separator; ValueError otherwise."""
    if not 1 <= len(value) <= 3 or any(c.isdigit() or c.isspace() or c in ".,+-'\"" for c in value):
        raise ValueError(
            f"'{value}' is not a currency symbol: give 1 to 3 characters without digits, "
            "spaces, signs, quotes or separators, e.g. '$', '€' or 'EUR'"
        )
    return value


class ColumnMapping(BaseModel):
    """Names of the columns in the user's file for each column of the transaction contract.

    Optional columns set to None are not read; when left at their default name they are used
    only if the file has such a column.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    customer_id: str = schema.CUSTOMER_ID
    timestamp: str = schema.TIMESTAMP
    amount: str = schema.AMOUNT
    order_id: str | None = schema.ORDER_ID
    quantity: str | None = schema.QUANTITY
    product: str | None = schema.PRODUCT
    channel: str | None = schema.CHANNEL
    unit_price: str | None = Field(
        default=None,
        description=(
            "column of the price of one unit, for logs that carry no line amount (such as the "
            "Online Retail data set): a line's amount is then quantity x unit price, and the "
            "amount column is not read. Needs a quantity column"
        ),
    )
    timestamp_format: str | None = Field(
        default=None,
        description="strptime format of the timestamp column, e.g. %Y%m%d; ISO 8601 when None",
    )
    decimal_separator: Literal[".", ","] = Field(
        default=".",
        description=(
            "decimal separator of amounts and quantities written as text (CSV): '.' reads "
            "'10.5' and allows ',' between groups of thousands ('1,234.5'); ',' reads '10,5' "
            "as 10.5 and allows '.' between groups of thousands ('1.234,5')"
        ),
    )
    currency_symbol: str | None = Field(
        default=None,
        description=(
            "a currency symbol that amounts written as text may carry before or after the "
            "number ('$1,234.50', '-$5', '12,50 €'): it is removed before the number is read. "
            "Amounts with another symbol are still not numbers"
        ),
    )
    encoding: Literal["utf-8", "latin-1", "utf-16"] = Field(
        default="utf-8",
        description=(
            "text encoding of a CSV: 'latin-1' for files saved in a Western single-byte "
            "encoding (as Excel on Windows saves them), 'utf-16' for UTF-16 files"
        ),
    )
    naive_timezone: str | None = Field(
        default=None,
        description=(
            "IANA time zone of timestamps written without an offset (e.g. 'UTC' for a log "
            "exported in UTC); they are converted to the feature time zone (FeatureConfig."
            "timezone) before days are cut. None: they are local times of that zone already. "
            "Dates without a time are dates in any zone and are never shifted"
        ),
    )

    @field_validator("currency_symbol")
    @classmethod
    def _currency_symbol_plain(cls, value: str | None) -> str | None:
        return None if value is None else currency_symbol(value)

    @field_validator("naive_timezone")
    @classmethod
    def _naive_timezone_known(cls, value: str | None) -> str | None:
        return None if value is None else known_timezone(value)

    def chosen(self) -> dict[str, Any]:
        """The fields that were set (by options, a config file or a saved model spec), as JSON
        values; a field left at its default is absent. The difference matters: a column left
        at its default name is read only when the file has it, one set by name must be there
        (`transactions.resolve_columns`)."""
        return self.model_dump(mode="json", exclude_unset=True)

    def over(self, base: ColumnMapping | None) -> ColumnMapping:
        """The fields set here (by options or a config file) over `base`, e.g. the columns a
        model was trained with (`clv score`, `clv report`); `base` None: self.

        An amount column set here replaces `base`'s unit price, and a unit price its amount
        column: a line's amount comes from one or the other.
        """
        if base is None:
            return self
        chosen, merged = self.chosen(), base.chosen()  # only the fields set in each
        if schema.AMOUNT in chosen and "unit_price" not in chosen:
            merged.pop("unit_price", None)
        if "unit_price" in chosen and schema.AMOUNT not in chosen:
            merged.pop(schema.AMOUNT, None)
        return ColumnMapping(**(merged | chosen))

    def source_for(self, column: str) -> str | None:
        """The file's column name for a contract column, or None when not mapped."""
        value = getattr(self, column)
        return None if value is None else str(value)


class FeatureConfig(BaseModel):
    """What the feature build computes. Durations are in days."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    windows_days: tuple[int, ...] = Field(
        default=(30, 90, 180, 365),
        description="trailing windows for counts and spend, in days before the cutoff",
    )
    lapsed_after_days: int = Field(
        default=180, gt=0, description="no purchase for longer than this: lifecycle stage lapsed"
    )
    long_term_after_days: int = Field(
        default=365,
        gt=0,
        description="customers older than this (T, days) with repeat purchases are long-term",
    )
    drop_zero_amounts: bool = Field(
        default=False,
        description=(
            "drop transactions whose amount is exactly 0 (counted). Off by default: a $0 line "
            "is still a purchase (CDNOW has 80, promotional CDs; dropping them loses 68 customers)"
        ),
    )
    timezone: str = Field(
        default=DEFAULT_TIMEZONE,
        description=(
            "IANA time zone in which calendar days are cut: a purchase's day (same-day "
            "purchases merge), cutoffs, windows and horizons. Timestamps with an offset or a "
            "zone are converted to it; those without one are its local times (unless "
            "ColumnMapping.naive_timezone says otherwise)"
        ),
    )

    @field_validator("timezone")
    @classmethod
    def _timezone_known(cls, value: str) -> str:
        return known_timezone(value)

    @field_validator("windows_days")
    @classmethod
    def _windows_positive_sorted(cls, value: tuple[int, ...]) -> tuple[int, ...]:
        if not value or any(w <= 0 for w in value):
            raise ValueError("windows_days must be a non-empty list of positive day counts")
        return tuple(sorted(set(value)))


class SourceConfig(BaseModel):
    """A transaction log on disk and how its columns map to the contract."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    path: Path
    columns: ColumnMapping = ColumnMapping()
