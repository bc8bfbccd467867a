"""Column names of the data contracts between features/, training/, models/ and serving/.

Every column name used across the project is defined here once.

Transactions (input log, after column mapping):
    customer_id (str), timestamp (timestamp), amount (float, currency; negative = return),
    optional: order_id (str), quantity (float), product (str), channel (str).

Customer features at a cutoff (one row per customer and cutoff), days as the unit of time,
RFM named as the buy-till-you-die literature names them (lifetimes, pymc-marketing):
    frequency       repeat purchase days (distinct purchase days - 1; same-day purchases merged)
    recency         days between the first and the last purchase day (0 when frequency = 0)
    T               days between the first purchase day and the cutoff (customer age)
    monetary_value  mean spend of the repeat purchase days (0 when frequency = 0)

Labels (strictly after the cutoff, only within a fully observed horizon):
    future_spend    net spend in (cutoff, cutoff + horizon]
    future_purchase_days  distinct purchase days in the horizon
    churned         1 when the customer made no purchase within the horizon, else 0
"""

from __future__ import annotations

from typing import Final

# --- transactions -------------------------------------------------------------------------
CUSTOMER_ID: Final = "customer_id"
TIMESTAMP: Final = "timestamp"
AMOUNT: Final = "amount"
ORDER_ID: Final = "order_id"
QUANTITY: Final = "quantity"
PRODUCT: Final = "product"
CHANNEL: Final = "channel"

REQUIRED_TRANSACTION_COLUMNS: Final = (CUSTOMER_ID, TIMESTAMP, AMOUNT)
OPTIONAL_TRANSACTION_COLUMNS: Final = (ORDER_ID, QUANTITY, PRODUCT, CHANNEL)
TRANSACTION_COLUMNS: Final = REQUIRED_TRANSACTION_COLUMNS + OPTIONAL_TRANSACTION_COLUMNS

# --- features ----------------------------------------------------------------------------
CUTOFF: Final = "cutoff"
FREQUENCY: Final = "frequency"
RECENCY: Final = "recency"
T: Final = "T"
MONETARY_VALUE: Final = "monetary_value"
HISTORICAL_VALUE: Final = "historical_value"
DAYS_SINCE_LAST_PURCHASE: Final = "days_since_last_purchase"
LIFECYCLE_STAGE: Final = "lifecycle_stage"
FIRST_PURCHASE_DATE: Final = "first_purchase_date"
LAST_PURCHASE_DATE: Final = "last_purchase_date"

# Columns of the feature table that identify a row or describe it but are not model inputs.
KEY_COLUMNS: Final = (CUSTOMER_ID, CUTOFF)
DESCRIPTIVE_COLUMNS: Final = (FIRST_PURCHASE_DATE, LAST_PURCHASE_DATE, LIFECYCLE_STAGE)

# --- labels ------------------------------------------------------------------------------
FUTURE_SPEND: Final = "future_spend"
FUTURE_PURCHASE_DAYS: Final = "future_purchase_days"
CHURNED: Final = "churned"
LABEL_COLUMNS: Final = (FUTURE_SPEND, FUTURE_PURCHASE_DAYS, CHURNED)

# --- lifecycle stages --------------------------------------------------------------------
STAGE_FIRST_TIME: Final = "first_time"
STAGE_SHORT_TERM: Final = "short_term"
STAGE_LONG_TERM: Final = "long_term"
STAGE_LAPSED: Final = "lapsed"
LIFECYCLE_STAGES: Final = (STAGE_FIRST_TIME, STAGE_SHORT_TERM, STAGE_LONG_TERM, STAGE_LAPSED)
