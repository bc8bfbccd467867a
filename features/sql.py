"""The feature and label definitions, written once as SQL in DuckDB's dialect.

Why SQL: the same text runs in-process on DuckDB (the embedded default) and, transpiled by
sqlglot (`transpile`), on Spark SQL for logs that outgrow one machine. The queries read
relations that the caller provides:

    transactions(customer_id, timestamp, amount[, order_id, quantity, product, channel])
    daily(...)        one row per customer and calendar day, built by `daily_sql`
    first_use(...)    first purchase day per customer and product / channel, by `first_use_sql`
                      (only for a product or channel column not counted in `daily`'s
                      `bought` mask: see `BoughtBits`)
    pairs(customer_id, cutoff)   the (customer, cutoff date) rows to compute features for, or
    cutoff_dates(cutoff)         cutoff dates, for every customer acquired by each of them

Time is counted in whole days. A cutoff date includes its own day: features read days
`<= cutoff`, labels read days `> cutoff` and `<= cutoff + horizon`.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

import sqlglot

from . import schema
from .config import FeatureConfig

DIALECT = "duckdb"

# Net spend sums purchases and returns, and a purchase and its return do not always cancel
# in floating point: 0.1 + 0.2 - 0.3 is 5.6e-17, and the sign and size of such a remainder
# depend on the order of addition. A trend with such a denominator came out as -5.4e15. Net
# sums are therefore rounded to a millionth of the currency unit, far below any price.
MONEY_DECIMALS = 6


def _net(total: str) -> str:
    """A net sum of amounts, rounded (see MONEY_DECIMALS): exactly 0 when it cancels."""
    return f"ROUND({total}, {MONEY_DECIMALS})"


# A daily row's `bought` mask is a BIGINT with one bit per value of the product and channel
# columns it counts; its sign bit is left alone, so that engines agree on every value.
BOUGHT_BITS = 63


@dataclass(frozen=True)
class BoughtBits:
    """Which bit of a daily row's `bought` mask stands for which product or channel.

    A log whose products and channels are few (categories, sales channels) counts the distinct
    ones a customer bought by the cutoff from `daily` alone: each day ORs the bits of its
    purchase lines' values, and the features count the bits of the days up to the cutoff.
    Columns with more values than bits (e.g. product SKUs) are counted from `first_use`.
    Building `first_use` reads the log once more and groups it by customer and value: on the
    synthetic log (12 products, 3 channels), the mask made the whole build faster by about
    1.7 s at 10M lines (6.5-7.9 s against 8.5-9.9 s in alternating runs) and 24 s at 100M
    lines under 7 GB (105 s against 129 s). Finding the values (`transactions.bought_bits`, one
    pass for both columns) costs 0.09 s at 10M lines of Parquet.

    `values` maps each column counted this way to its values, in bit order (the first column's
    values take the lowest bits).
    """

    values: Mapping[str, tuple[str, ...]]

    @classmethod
    def fitting(cls, values: Mapping[str, Iterable[str]]) -> BoughtBits:
        """Bits for the columns of `values` (column -> its distinct values) that fit in
        `BOUGHT_BITS` together, the columns with fewer values first."""
        chosen: dict[str, tuple[str, ...]] = {}
        free = BOUGHT_BITS
        for column, found in sorted(
            ((c, tuple(sorted(v))) for c, v in values.items()), key=lambda cv: len(cv[1])
        ):
            if len(found) <= free:
                chosen[column] = found
                free -= len(found)
        return cls(chosen)

    def _first_bit(self, column: str) -> int:
        bit = 0
        for other, found in self.values.items():
            if other == column:
                return bit
            bit += len(found)
        raise KeyError(column)

    def column_bits(self, column: str) -> int:
        """The mask of every bit that stands for a value of `column`."""
        return ((1 << len(self.values[column])) - 1) << self._first_bit(column)

    def line_sql(self) -> str:
        """SQL: the bits of a line's values, 0 for a line without any (a NULL value)."""
        cases = []
        for column, found in self.values.items():
            if not found:  # a column without a value on any purchase line: it counts 0
                continue
            first = self._first_bit(column)
            whens = " ".join(
                f"WHEN {string_literal(value)} THEN {1 << (first + i)}"
                for i, value in enumerate(found)
            )
            cases.append(f"CASE {column} {whens} ELSE 0 END")
        return " | ".join(cases) or "0"

    def count_sql(self, column: str, mask: str) -> str:
        """SQL: how many values of `column` the mask `mask` holds."""
        return f"BIT_COUNT({mask} & {self.column_bits(column)})"


NO_BOUGHT_BITS = BoughtBits({})


def quoted_name(name: str) -> str:
    """`name` as a SQL identifier in double quotes, quotes doubled (a column name from a
    log's header may hold spaces or quotes)."""
    return '"' + name.replace('"', '""') + '"'


def string_literal(value: object) -> str:
    """`value` as text in a SQL string literal, quotes doubled (DuckDB's dialect; sqlglot
    rewrites it for another engine)."""
    return "'" + str(value).replace("'", "''") + "'"


def distinct_values_sql(columns: Sequence[str], source: str, limit: int) -> str:
    """SELECT of up to `limit` distinct combinations of `columns` on purchase lines of
    `source` that have a value in one of them: enough to tell whether their values fit in
    `BoughtBits`. DuckDB stops reading once it has found `limit` rows (a "limited distinct"),
    so a column of many values (SKUs) is turned away cheaply: in 100M lines, 0.03 s for the
    customer ids, against 0.5 s to read all 12 products."""
    some_value = " OR ".join(f"{c} IS NOT NULL" for c in columns)
    return (
        f"SELECT DISTINCT {', '.join(columns)} FROM {source} "
        f"WHERE amount >= 0 AND ({some_value}) LIMIT {int(limit)}"
    )


def _line_sums(optional_columns: Iterable[str], bought: BoughtBits) -> str:
    """Aggregates of lines: spend, returns, counts (and quantity when the log has one, and the
    `bought` mask when some product or channel is counted in it)."""
    optional = ""
    if schema.QUANTITY in set(optional_columns):
        optional += ",\n        SUM(quantity) AS quantity"
    if bought.values:
        optional += (
            f",\n        BIT_OR(CASE WHEN amount >= 0 THEN {bought.line_sql()} END) AS bought"
        )
    return f"""SUM(GREATEST(amount, 0)) AS gross,
        CAST(COUNT(*) FILTER (WHERE amount >= 0) AS INTEGER) AS n_purchases,
        SUM(amount) AS net,
        CAST(COUNT(*) AS INTEGER) AS n_transactions{optional}"""


def daily_sql(
    optional_columns: Iterable[str],
    source: str = "transactions",
    bought: BoughtBits = NO_BOUGHT_BITS,
) -> str:
    """Per customer and day: spend, returns, counts and the gap since the previous purchase day.

    Reads `source` (by default `transactions`; any relation with its columns customer_id,
    timestamp, amount[, order_id, quantity, and the product and channel columns of `bought`],
    whose order_id only has to tell orders apart, so it may be the source's own integer type).
    With `bought` bits, `bought` is the mask of the products and channels of the day's
    purchase lines (NULL on a day of returns only). A purchase day is a day with at least one
    non-negative amount (a day of returns only is not a purchase; a $0 line is, unless dropped
    by configuration). `gap_days` is cutoff-independent (it only looks back), so it is
    computed once here rather than per cutoff, as a LAG over the customer's purchase days (a
    streaming window; a running MAX over all earlier days gives the same number several times
    slower).

    With an order id, `n_orders` counts the distinct order ids of the day. Lines are summed
    per day in one pass, which also keeps the day's smallest and largest order id: equal, the
    day has one order (98% of the days of the synthetic log), and only the lines of the other
    days are read again to count their orders. That is the same number as a COUNT(DISTINCT
    order_id) per day, which DuckDB computes an order of magnitude slower, and as summing
    lines per order first and then per day, which held a second table as large as this one
    (at 100M lines, 63M orders and 62M days; 54.2 s against 47.1 s under 7 GB).
    Returns are not summed here: amounts are never NULL or NaN, so a day's returns are its
    lines that are not purchases (`n_transactions - n_purchases`) and the amount returned is
    `gross - net`, two aggregates and two columns fewer (the second made the whole build 3%
    faster on the 10M-line log of three columns: 4.39 s against 4.53 s, medians of five
    runs). Counts and gaps are 32-bit integers: narrower rows spill less under a memory limit.
    """
    has = set(optional_columns)
    per_day = f"""per_day AS (
    SELECT
        customer_id,
        CAST(timestamp AS DATE) AS day,
        {_line_sums(has, bought)}{_order_bounds(has)}
    FROM {source}
    GROUP BY customer_id, CAST(timestamp AS DATE)
)"""
    days = "per_day"
    if schema.ORDER_ID in has:
        days = "days"
        per_day += f""",
several_orders AS (
    SELECT l.customer_id, p.day, CAST(COUNT(DISTINCT l.order_id) AS INTEGER) AS n_orders
    FROM {source} l
    JOIN per_day p ON p.customer_id = l.customer_id AND p.day = CAST(l.timestamp AS DATE)
        AND p.first_order <> p.last_order
    GROUP BY l.customer_id, p.day
),
days AS (
    SELECT
        p.*,
        CASE
            WHEN p.order_lines = 0 THEN 0
            WHEN p.first_order = p.last_order THEN 1
            ELSE s.n_orders
        END AS n_orders
    FROM per_day p
    LEFT JOIN several_orders s ON s.customer_id = p.customer_id AND s.day = p.day
)"""
    # quantity and n_orders only when the log has the column: the features read NULL otherwise
    optional = "".join(
        f"\n    {name},"
        for name, column in (("quantity", schema.QUANTITY), ("n_orders", schema.ORDER_ID))
        if column in has
    ) + ("\n    bought," if bought.values else "")
    return f"""
WITH {per_day}
SELECT
    customer_id,
    day,
    gross,
    n_purchases,
    net,
    n_transactions,{optional}
    n_purchases > 0 AS is_purchase,
    CASE WHEN n_purchases > 0 THEN CAST(DATE_DIFF('day',
        LAG(day) OVER (PARTITION BY customer_id, n_purchases > 0 ORDER BY day),
        day) AS INTEGER) END AS gap_days
FROM {days}
"""


def _order_bounds(has: set[str]) -> str:
    """With an order id: the day's smallest and largest order id and its lines that have one
    (`daily_sql` counts the orders from them)."""
    if schema.ORDER_ID not in has:
        return ""
    return """,
        MIN(order_id) AS first_order,
        MAX(order_id) AS last_order,
        CAST(COUNT(order_id) AS INTEGER) AS order_lines"""


def first_use_sql(
    optional_columns: Iterable[str],
    source: str = "transactions",
    bought: BoughtBits = NO_BOUGHT_BITS,
) -> str | None:
    """Per customer: the first purchase day of each product and of each channel it bought.

    Rows (customer_id, is_product, first_day), is_product true for a product and false for a
    channel (a flag rather than a name: at 100M lines this table holds about 60M rows), from
    lines with a non-negative amount; None when the log has neither column, or when `bought`
    counts both. Duplicate lines change nothing here, so `source` may be the log before
    de-duplication.
    """
    has = set(optional_columns) - set(bought.values)
    columns = [c for c in (schema.PRODUCT, schema.CHANNEL) if c in has]
    if not columns:
        return None
    sets = ", ".join(f"(customer_id, {c})" for c in columns)
    is_product = f"GROUPING({schema.PRODUCT}) = 0" if schema.PRODUCT in has else "false"
    # Which set a row comes from, and its value, are tested outside the aggregation: Spark
    # resolves a HAVING only against the selected columns, which the grouped columns are not.
    grouped = "".join(f", {c}, GROUPING({c}) = 0 AS by_{c}" for c in columns)
    keep = " OR ".join(f"(by_{c} AND {c} IS NOT NULL)" for c in columns)
    return f"""
SELECT customer_id, is_product, first_day
FROM (
    SELECT customer_id, {is_product} AS is_product{grouped},
        CAST(MIN(timestamp) AS DATE) AS first_day
    FROM {source}
    WHERE amount >= 0
    GROUP BY GROUPING SETS ({sets})
) AS uses
WHERE {keep}
"""


def feature_names(config: FeatureConfig, optional_columns: Iterable[str] = ()) -> list[str]:
    """Names of the numeric model-input features, in the order `feature_sql` returns them.

    Features from optional columns are always present (NULL where the column is absent) so
    that the feature table has one schema whatever the log carries.
    """
    del optional_columns  # the schema is fixed on purpose; see the docstring
    names = [
        schema.FREQUENCY,
        schema.RECENCY,
        schema.T,
        schema.MONETARY_VALUE,
        schema.DAYS_SINCE_LAST_PURCHASE,
        schema.HISTORICAL_VALUE,
        "gross_spend",
        "avg_purchase_value",
        "max_purchase_value",
        "std_purchase_value",
        "first_purchase_value",
        "last_purchase_value",
        "n_transactions",
        "transactions_per_purchase_day",
        "purchase_rate",
        "ipt_mean",
        "ipt_std",
        "ipt_cv",
        "ipt_min",
        "ipt_max",
        "ipt_last",
        "overdue_ratio",
    ]
    for w in config.windows_days:
        names += [f"purchase_days_{w}d", f"spend_{w}d"]
    for short, long in _trend_pairs(config):
        names += [f"purchase_trend_{short}_{long}", f"spend_trend_{short}_{long}"]
    names += [
        "n_returns",
        "returned_amount",
        "return_rate",
        "total_quantity",
        "quantity_per_purchase_day",
        "avg_unit_price",
        "n_orders",
        "n_products",
        "n_channels",
    ]
    return names


def _trend_pairs(config: FeatureConfig) -> list[tuple[int, int]]:
    w = config.windows_days
    return [(w[i], w[-1]) for i in range(len(w) - 1)]


def feature_sql(
    config: FeatureConfig,
    optional_columns: Iterable[str],
    cutoffs: str | None = None,
    bought: BoughtBits = NO_BOUGHT_BITS,
) -> str:
    """Features per (customer_id, cutoff) from `daily`, `first_use` and `pairs` or `cutoffs`.

    Distinct products and channels are counted from `daily`'s `bought` mask for the columns
    of `bought`, from `first_use` for the others (`daily_sql` and `first_use_sql` must be
    given the same `bought`).

    Output columns: customer_id, cutoff, first_purchase_date, last_purchase_date,
    lifecycle_stage, then `feature_names(config)` in order. Units: days and currency.
    Returns are the lines that are not purchases (amounts are never NULL or NaN).

    The rows are the (customer, cutoff) pairs of `pairs`, or, when `cutoffs` names a relation
    (cutoff) of cutoff dates, every customer with a purchase on or before each date. Those
    are read without a join on the customer: the daily rows (and product and channel first
    days) up to each date, of customers with a purchase day among them.
    """
    has = set(optional_columns)
    window_aggs = []
    for w in config.windows_days:
        since = f"h.days_before < {w}"
        window_aggs.append(
            f"COUNT(*) FILTER (WHERE h.is_purchase AND {since}) AS purchase_days_{w}d"
        )
        window_aggs.append(
            f"{_net(f'COALESCE(SUM(h.net) FILTER (WHERE {since}), 0)')} AS spend_{w}d"
        )
    trends = []
    for short, long in _trend_pairs(config):
        trends.append(
            f"CAST(purchase_days_{short}d AS DOUBLE) / NULLIF(purchase_days_{long}d, 0)"
            f" AS purchase_trend_{short}_{long}"
        )
        trends.append(f"spend_{short}d / NULLIF(spend_{long}d, 0) AS spend_trend_{short}_{long}")
    window_agg_select = ",\n        ".join(window_aggs)
    window_select = ",\n        ".join(
        [f"purchase_days_{w}d, spend_{w}d" for w in config.windows_days] + trends
    )
    counted = [c for c in (schema.PRODUCT, schema.CHANNEL) if c in has and c not in bought.values]
    masked = [c for c in (schema.PRODUCT, schema.CHANNEL) if c in has and c in bought.values]
    bought_agg = "BIT_OR(h.bought) AS bought,\n        " if masked else ""
    # Every row has a purchase by the cutoff, so no breadth row (or no bit) means none: 0.
    breadth_col = {
        c: f"COALESCE({bought.count_sql(c, 'a.bought')}, 0) AS n_{c}s" for c in masked
    } | {c: f"COALESCE(b.n_{c}s, 0) AS n_{c}s" for c in counted}
    breadth_cols = ", ".join(
        breadth_col.get(c, f"CAST(NULL AS BIGINT) AS n_{c}s")
        for c in (schema.PRODUCT, schema.CHANNEL)
    )
    if counted:
        # first_use has a row per customer and product (channel) with its first purchase day:
        # the distinct products bought by the cutoff are those first bought by then.
        counts = ",\n        ".join(
            f"COUNT(*) FILTER (WHERE {'' if c == schema.PRODUCT else 'NOT '}u.is_product) AS n_{c}s"
            for c in counted
        )
        if cutoffs is None:
            uses = """FROM pairs p
    JOIN first_use u ON u.customer_id = p.customer_id AND u.first_day <= p.cutoff"""
        else:
            uses = f"""FROM first_use u
    JOIN {cutoffs} p ON u.first_day <= p.cutoff"""
        breadth = f"""
breadth AS (
    SELECT u.customer_id, p.cutoff,
        {counts}
    {uses}
    GROUP BY u.customer_id, p.cutoff
),"""
        breadth_join = (
            "LEFT JOIN breadth b ON b.customer_id = a.customer_id AND b.cutoff = a.cutoff"
        )
    else:
        breadth = ""
        breadth_join = ""
    total_quantity = "SUM(h.quantity)" if schema.QUANTITY in has else "CAST(NULL AS DOUBLE)"
    n_orders = "SUM(h.n_orders)" if schema.ORDER_ID in has else "CAST(NULL AS BIGINT)"
    lapsed, long_term = config.lapsed_after_days, config.long_term_after_days
    if cutoffs is None:
        history = f"""SELECT p.cutoff, {_days_before("p")}, d.*
    FROM pairs p
    JOIN daily d ON d.customer_id = p.customer_id AND d.day <= p.cutoff"""
    else:
        # The rows are the customers with a purchase by each date, and `agg` keeps only those
        # (purchase_days > 0): the daily rows up to the date need no join on the customer.
        history = f"""SELECT c.cutoff, {_days_before("c")}, d.*
    FROM daily d
    JOIN {cutoffs} c ON d.day <= c.cutoff"""
    return f"""
WITH history AS (
    {history}
),
{breadth}
agg AS (
    SELECT
        h.customer_id,
        h.cutoff,
        MIN(h.day) FILTER (WHERE h.is_purchase) AS first_day,
        MAX(h.day) FILTER (WHERE h.is_purchase) AS last_day,
        COUNT(*) FILTER (WHERE h.is_purchase) AS purchase_days,
        SUM(h.gross) FILTER (WHERE h.is_purchase) AS gross_spend,
        {_net("SUM(h.net)")} AS historical_value,
        ARG_MIN(h.gross, h.day) FILTER (WHERE h.is_purchase) AS first_purchase_value,
        ARG_MAX(h.gross, h.day) FILTER (WHERE h.is_purchase) AS last_purchase_value,
        MAX(h.gross) AS max_purchase_value,
        STDDEV_SAMP(h.gross) FILTER (WHERE h.is_purchase) AS std_purchase_value,
        SUM(h.n_transactions) AS n_transactions,
        STDDEV_SAMP(h.gap_days) AS ipt_std,
        MIN(h.gap_days) AS ipt_min,
        MAX(h.gap_days) AS ipt_max,
        ARG_MAX(h.gap_days, h.day) FILTER (WHERE h.gap_days IS NOT NULL) AS ipt_last,
        SUM(h.n_transactions) - SUM(h.n_purchases) AS n_returns,
        {_net("SUM(h.gross) - SUM(h.net)")} AS returned_amount,
        {total_quantity} AS total_quantity,
        {n_orders} AS n_orders,
        {bought_agg}{window_agg_select}
    FROM history h
    GROUP BY h.customer_id, h.cutoff
),
rfm AS (
    SELECT
        a.*,
        {breadth_cols},
        purchase_days - 1 AS frequency,
        DATE_DIFF('day', first_day, last_day) AS recency,
        -- the mean gap between purchase days: they add up to the recency
        CAST(DATE_DIFF('day', first_day, last_day) AS DOUBLE) / NULLIF(purchase_days - 1, 0)
            AS ipt_mean,
        DATE_DIFF('day', first_day, a.cutoff) AS T,
        DATE_DIFF('day', last_day, a.cutoff) AS days_since_last_purchase
    FROM agg a
    {breadth_join}
    WHERE purchase_days > 0
)
SELECT
    customer_id,
    cutoff,
    first_day AS first_purchase_date,
    last_day AS last_purchase_date,
    CASE
        WHEN days_since_last_purchase > {lapsed} THEN '{schema.STAGE_LAPSED}'
        WHEN frequency = 0 THEN '{schema.STAGE_FIRST_TIME}'
        WHEN T > {long_term} THEN '{schema.STAGE_LONG_TERM}'
        ELSE '{schema.STAGE_SHORT_TERM}'
    END AS lifecycle_stage,
    frequency,
    recency,
    T,
    CASE WHEN frequency > 0
        THEN (gross_spend - first_purchase_value) / frequency ELSE 0 END AS monetary_value,
    days_since_last_purchase,
    historical_value,
    gross_spend,
    gross_spend / purchase_days AS avg_purchase_value,
    max_purchase_value,
    std_purchase_value,
    first_purchase_value,
    last_purchase_value,
    n_transactions,
    CAST(n_transactions AS DOUBLE) / purchase_days AS transactions_per_purchase_day,
    CAST(frequency AS DOUBLE) / NULLIF(T, 0) AS purchase_rate,
    ipt_mean,
    ipt_std,
    ipt_std / NULLIF(ipt_mean, 0) AS ipt_cv,
    ipt_min,
    ipt_max,
    ipt_last,
    days_since_last_purchase / NULLIF(ipt_mean, 0) AS overdue_ratio,
    {window_select},
    n_returns,
    returned_amount,
    returned_amount / NULLIF(gross_spend, 0) AS return_rate,
    total_quantity,
    total_quantity / purchase_days AS quantity_per_purchase_day,
    gross_spend / NULLIF(total_quantity, 0) AS avg_unit_price,
    n_orders,
    n_products,
    n_channels
FROM rfm
"""


def _days_before(cutoffs: str) -> str:
    """How many days a daily row `d` lies before its cutoff (in relation `cutoffs`): computed
    once per row for every trailing window's filter."""
    return f"DATE_DIFF('day', d.day, {cutoffs}.cutoff) AS days_before"


def label_sql(horizon_days: int, cutoffs: str | None = None) -> str:
    """Labels per (customer_id, cutoff), from days in (cutoff, cutoff + horizon].

    future_spend is net spend clipped at 0 (currency); churned is 1 when no purchase day falls
    in the horizon. Rows are the (customer, cutoff) pairs with a day in the horizon: a pair
    without one has future_spend 0, no purchase day and churned 1 (`build.panel_sql` fills
    them in).
    The pairs are those of `pairs`, or with `cutoffs` (as in `feature_sql`), every customer
    with a day in the horizon of one of these dates (the panel keeps those with features).
    """
    in_horizon = f"d.day > p.cutoff AND DATE_DIFF('day', p.cutoff, d.day) <= {int(horizon_days)}"
    if cutoffs is None:
        days = f"pairs p\nJOIN daily d ON d.customer_id = p.customer_id AND {in_horizon}"
    else:
        days = f"daily d\nJOIN {cutoffs} p ON {in_horizon}"
    return f"""
SELECT
    d.customer_id,
    p.cutoff,
    GREATEST({_net("SUM(d.net)")}, 0) AS {schema.FUTURE_SPEND},
    COUNT(*) FILTER (WHERE d.is_purchase) AS {schema.FUTURE_PURCHASE_DAYS}
FROM {days}
GROUP BY d.customer_id, p.cutoff
"""


def transpile(sql: str, dialect: str) -> str:
    """The same query in another SQL dialect (e.g. "spark"), via sqlglot."""
    return sqlglot.transpile(sql, read=DIALECT, write=dialect, pretty=True)[0]
