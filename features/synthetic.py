"""Synthetic transaction logs with known ground truth, from a buy-till-you-die process.

Each customer is acquired on a day of the window (their first purchase) and then buys at a
rate lambda per day until they drop out:

    lambda ~ Gamma(shape r, rate alpha)             (days as the unit of time)
    BG/NBD:     after each repeat purchase the customer drops out with probability p,
                p ~ Beta(a, b)                       (Fader, Hardie and Lee 2005)
    Pareto/NBD: the customer drops out after an exponential lifetime of rate mu,
                mu ~ Gamma(shape s, rate beta)       (Schmittlein, Morrison and Colombo 1987)
    spend per purchase (order) ~ Gamma(shape p, rate nu), nu ~ Gamma(shape q, rate v)
                                                     (Gamma-Gamma; mean spend p / nu)

On top of the textbook process, for realism: the rate is modulated by weekly and annual
seasonality (by thinning, with a factor that averages 1, so lambda stays the mean rate);
an acquisition channel in {web, store, app} multiplies the rate; an order has one or more lines
with a product category and a quantity; and a small share of lines is returned later (a row with
a negative amount and quantity, same order id).

Output rows follow the transaction contract of `schema`: customer_id, timestamp, amount,
order_id, quantity, product, channel. The ground truth has one row per customer (`TRUTH_*`).
Generation is vectorised numpy over blocks of customers, streamed to Parquet (or CSV) one block
at a time, so a 100M-row log never sits in memory; the output depends only on the config (the
seed, and the block size, which is fixed).
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from pathlib import Path
from typing import Final, Literal

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.csv as pa_csv
import pyarrow.parquet as pq
from pydantic import BaseModel, ConfigDict, Field, model_validator
from tqdm import tqdm

from . import schema
from .atomic import atomic_path

logger = logging.getLogger(__name__)

# --- ground truth columns (one row per customer) ------------------------------------------
TRUTH_ACQUIRED_AT: Final = "acquired_at"
TRUTH_LAMBDA: Final = "lambda_per_day"
TRUTH_P: Final = "p_dropout"
TRUTH_MU: Final = "mu_per_day"
TRUTH_MEAN_SPEND: Final = "mean_spend"
TRUTH_ALIVE: Final = "alive_at_end"
TRUTH_DROPOUT_AT: Final = "dropout_at"
TRUTH_N_ORDERS: Final = "n_orders"

PRODUCTS: Final = (
    "books",
    "music",
    "video",
    "games",
    "electronics",
    "home",
    "garden",
    "toys",
    "beauty",
    "sports",
    "grocery",
    "fashion",
)
_SECONDS_PER_DAY: Final = 86_400
_PEAK_WEEKDAY: Final = 5  # Saturday (Monday = 0)
_PEAK_DAY_OF_YEAR: Final = 340.0  # early December
_EPOCH: Final = datetime(1970, 1, 1)


class SyntheticConfig(BaseModel):
    """Parameters of the generating process. Rates are per day; amounts in currency units."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    customers: int = Field(gt=0, description="number of customers")
    seed: int = Field(default=42, ge=0)
    start: date = Field(default=date(2023, 1, 1), description="first day of the window")
    days: int = Field(default=730, gt=0, le=36_500, description="length of the window")
    process: Literal["bgnbd", "pareto"] = Field(
        default="bgnbd", description="dropout after purchases (BG/NBD) or in time (Pareto/NBD)"
    )
    r: float = Field(default=1.0, gt=0, description="shape of the gamma of purchase rates")
    alpha: float = Field(default=40.0, gt=0, description="rate of the gamma of purchase rates")
    a: float = Field(default=1.0, gt=0, description="BG/NBD: beta a of the dropout probability")
    b: float = Field(default=8.0, gt=0, description="BG/NBD: beta b of the dropout probability")
    s: float = Field(default=1.0, gt=0, description="Pareto/NBD: shape of the dropout rates")
    beta: float = Field(default=365.0, gt=0, description="Pareto/NBD: rate of the dropout rates")
    spend_p: float = Field(default=6.0, gt=0, description="Gamma-Gamma p (spend shape)")
    spend_q: float = Field(default=4.0, gt=0, description="Gamma-Gamma q")
    spend_v: float = Field(default=20.0, gt=0, description="Gamma-Gamma v")
    weekly_amplitude: float = Field(default=0.2, ge=0, lt=1)
    annual_amplitude: float = Field(default=0.3, ge=0, lt=1)
    channels: tuple[str, ...] = ("web", "store", "app")
    channel_shares: tuple[float, ...] = (0.5, 0.3, 0.2)
    channel_rate_multipliers: tuple[float, ...] = (1.0, 0.7, 1.5)
    other_channel_share: float = Field(
        default=0.15, ge=0, le=1, description="share of orders placed through another channel"
    )
    extra_lines_per_order: float = Field(
        default=0.6, ge=0, description="mean lines per order beyond the first (Poisson)"
    )
    favourite_product_share: float = Field(default=0.5, ge=0, le=1)
    extra_quantity_per_line: float = Field(default=0.4, ge=0)
    return_share: float = Field(default=0.02, ge=0, le=1, description="share of lines returned")
    max_return_days: float = Field(default=30.0, gt=0)
    string_ids: bool = Field(default=True, description="ids like C000000001, else integers")
    order_ids: bool = True
    quantities: bool = True
    block_customers: int = Field(default=200_000, gt=0)

    @model_validator(mode="after")
    def _channels_consistent(self) -> SyntheticConfig:
        n = len(self.channels)
        if n == 0 or len(self.channel_shares) != n or len(self.channel_rate_multipliers) != n:
            raise ValueError("channels, channel_shares and channel_rate_multipliers must align")
        if any(s < 0 for s in self.channel_shares) or sum(self.channel_shares) <= 0:
            raise ValueError("channel_shares must be non-negative and not all 0")
        if any(m <= 0 for m in self.channel_rate_multipliers):
            raise ValueError("channel_rate_multipliers must be positive")
        return self

    @property
    def end(self) -> date:
        """The last day of the window (inclusive)."""
        return self.start + timedelta(days=self.days - 1)


@dataclass(frozen=True)
class SyntheticSummary:
    """What a generation run wrote."""

    customers: int
    rows: int
    orders: int
    returns: int
    first_date: date
    last_date: date

    def summary(self) -> str:
        return (
            f"{self.customers:,} customers, {self.orders:,} orders, {self.rows:,} rows "
            f"({self.returns:,} returns), {self.first_date} to {self.last_date}"
        )


# --- the process ----------------------------------------------------------------------------
def _seasonality(cfg: SyntheticConfig, t: np.ndarray) -> np.ndarray:
    """Multiplicative rate factor at t (days since start): mean 1 over whole weeks and years."""
    start = cfg.start
    weekday = (start.weekday() + np.floor(t)) % 7
    day_of_year = start.timetuple().tm_yday - 1 + t
    weekly = 1.0 + cfg.weekly_amplitude * np.cos(2 * np.pi * (weekday - _PEAK_WEEKDAY) / 7)
    annual = 1.0 + cfg.annual_amplitude * np.cos(
        2 * np.pi * (day_of_year - _PEAK_DAY_OF_YEAR) / 365.25
    )
    return weekly * annual


def _max_seasonality(cfg: SyntheticConfig) -> float:
    return (1.0 + cfg.weekly_amplitude) * (1.0 + cfg.annual_amplitude)


def _group_starts(counts: np.ndarray) -> np.ndarray:
    """Index of each group's first element in a flat array of groups of these sizes."""
    return np.concatenate(([0], np.cumsum(counts)[:-1])).astype(np.int64)


def _sorted_uniform_times(
    rng: np.random.Generator, counts: np.ndarray, length: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Per group g, counts[g] sorted uniform points in [0, length[g]), without a sort.

    Uses exponential spacings: with E_1..E_{n+1} iid Exp(1) and S_k their partial sums,
    S_k / S_{n+1} (k <= n) are the order statistics of n uniforms. Returns (owner, time).
    """
    m = counts + 1
    spacings = np.cumsum(rng.standard_exponential(int(m.sum())))
    ends = np.cumsum(m) - 1
    base = np.concatenate(([0.0], spacings[ends[:-1]]))
    span = spacings[ends] - base
    owner_all = np.repeat(np.arange(len(counts)), m)
    is_point = np.ones(len(spacings), dtype=bool)
    is_point[ends] = False
    owner = owner_all[is_point]
    frac = (spacings[is_point] - base[owner]) / span[owner]
    return owner, frac * length[owner]


def _rank_within(owner: np.ndarray, mask: np.ndarray, n_groups: int) -> np.ndarray:
    """1-based rank of each masked element within its (contiguous) group, in array order."""
    running = np.cumsum(mask)
    per_group = np.bincount(owner[mask], minlength=n_groups)
    before = np.concatenate(([0], np.cumsum(per_group)[:-1]))
    return running - before[owner]


@dataclass
class _Block:
    transactions: pa.Table
    truth: pa.Table
    orders: int
    returns: int


def _customer_ids(cfg: SyntheticConfig, first: int, n: int) -> pa.Array:
    numbers = np.arange(first + 1, first + n + 1, dtype=np.int64)
    if cfg.string_ids:
        return pa.array([f"C{i:09d}" for i in numbers.tolist()], type=pa.string())
    return pa.array(numbers)


def _timestamps(cfg: SyntheticConfig, t: np.ndarray) -> pa.Array:
    """Days since the start (float; NaN for none) -> timestamps to the second."""
    origin = (datetime.combine(cfg.start, time()) - _EPOCH) // timedelta(seconds=1)
    valid = np.isfinite(t)
    seconds = np.floor(np.where(valid, t, 0.0) * _SECONDS_PER_DAY).astype(np.int64)
    micros = (origin + seconds) * 1_000_000
    mask = None if valid.all() else ~valid
    return pa.array(micros, type=pa.timestamp("us"), mask=mask)


def _generate_block(
    cfg: SyntheticConfig, rng: np.random.Generator, first: int, n: int, first_order: int
) -> _Block:
    days = float(cfg.days)
    n_channels = len(cfg.channels)
    shares = np.asarray(cfg.channel_shares, dtype=float)
    channel = rng.choice(n_channels, size=n, p=shares / shares.sum())
    lam = rng.gamma(cfg.r, 1.0 / cfg.alpha, n) * np.asarray(cfg.channel_rate_multipliers)[channel]

    # Acquisition (= first purchase) follows the seasonal profile over the window.
    day_weights = _seasonality(cfg, np.arange(cfg.days) + 0.5)
    acquired = rng.choice(cfg.days, size=n, p=day_weights / day_weights.sum()) + rng.random(n)

    p = np.full(n, np.nan)
    mu = np.full(n, np.nan)
    if cfg.process == "bgnbd":
        p = np.clip(rng.beta(cfg.a, cfg.b, n), 1e-12, 1.0)
        max_repeats = rng.geometric(p)  # drops out right after this repeat purchase
        death = np.full(n, np.inf)
    else:
        mu = rng.gamma(cfg.s, 1.0 / cfg.beta, n)
        max_repeats = np.full(n, np.iinfo(np.int64).max)
        with np.errstate(divide="ignore"):
            death = acquired + rng.exponential(1.0 / mu)
    nu = rng.gamma(cfg.spend_q, 1.0 / cfg.spend_v, n)

    # Repeat purchases: a Poisson process at lambda * s_max, thinned to lambda * s(t), cut at
    # the dropout (after the max_repeats-th purchase, or at the death time).
    s_max = _max_seasonality(cfg)
    length = np.minimum(death, days) - acquired
    candidates = rng.poisson(lam * s_max * length)
    owner, offset = _sorted_uniform_times(rng, candidates, length)
    t = acquired[owner] + offset
    keep = rng.random(len(t)) * s_max < _seasonality(cfg, t)
    rank = _rank_within(owner, keep, n)
    keep &= rank <= max_repeats[owner]
    n_repeats = np.bincount(owner[keep], minlength=n)
    alive = n_repeats < max_repeats if cfg.process == "bgnbd" else death >= days
    dropout_t = np.full(n, np.nan)
    if cfg.process == "bgnbd":
        last = keep & (rank == max_repeats[owner])
        dropout_t[owner[last]] = t[last]
    else:
        dropout_t[~alive] = death[~alive]

    # Orders: the first purchase plus the repeats, ordered in time within the block.
    order_owner = np.concatenate((np.arange(n), owner[keep]))
    order_t = np.concatenate((acquired, t[keep]))
    by_time = np.argsort(order_t, kind="stable")
    order_owner, order_t = order_owner[by_time], order_t[by_time]
    n_orders = len(order_t)
    order_spend = rng.gamma(cfg.spend_p, 1.0 / nu[order_owner])
    other = rng.random(n_orders) < cfg.other_channel_share
    order_channel = np.where(
        other,
        (channel[order_owner] + rng.integers(1, max(n_channels, 2), n_orders)) % n_channels,
        channel[order_owner],
    )

    # Lines: spend split by Dirichlet(1, ..., 1) weights; distinct products within an order.
    n_lines = 1 + rng.poisson(cfg.extra_lines_per_order, n_orders)
    n_lines = np.minimum(n_lines, len(PRODUCTS))
    line_order = np.repeat(np.arange(n_orders), n_lines)
    line_pos = np.arange(len(line_order)) - _group_starts(n_lines)[line_order]
    weights = rng.standard_exponential(len(line_order))
    weights /= np.bincount(line_order, weights=weights, minlength=n_orders)[line_order]
    amount = np.maximum(np.round(order_spend[line_order] * weights, 2), 0.01)
    popularity = 1.0 / np.arange(1, len(PRODUCTS) + 1)
    favourite = rng.choice(len(PRODUCTS), size=n, p=popularity / popularity.sum())
    first_product = np.where(
        rng.random(n_orders) < cfg.favourite_product_share,
        favourite[order_owner],
        rng.choice(len(PRODUCTS), size=n_orders, p=popularity / popularity.sum()),
    )
    product = (first_product[line_order] + line_pos) % len(PRODUCTS)
    quantity = 1 + rng.poisson(cfg.extra_quantity_per_line, len(line_order))

    # Returns: a later row with the negated amount and quantity, inside the window only.
    returned = rng.random(len(line_order)) < cfg.return_share
    return_t = order_t[line_order[returned]] + rng.uniform(1.0, cfg.max_return_days, returned.sum())
    in_window = return_t < days
    ret_lines = np.flatnonzero(returned)[in_window]
    return_t = return_t[in_window]

    rows_line = np.concatenate((np.arange(len(line_order)), ret_lines))
    sign = np.concatenate((np.ones(len(line_order)), -np.ones(len(ret_lines)))).astype(np.int64)
    row_order = line_order[rows_line]
    row_t = np.concatenate((order_t[line_order], return_t))
    ids = _customer_ids(cfg, first, n)
    columns: dict[str, pa.Array] = {
        schema.CUSTOMER_ID: ids.take(pa.array(order_owner[row_order])),
        schema.TIMESTAMP: _timestamps(cfg, row_t),
        schema.AMOUNT: pa.array(sign * amount[rows_line], type=pa.float64()),
    }
    if cfg.order_ids:
        columns[schema.ORDER_ID] = pa.array(first_order + 1 + row_order)
    if cfg.quantities:
        columns[schema.QUANTITY] = pa.array(sign * quantity[rows_line])
    products = pa.array(PRODUCTS)
    columns[schema.PRODUCT] = products.take(pa.array(product[rows_line]))
    channels = pa.array(cfg.channels)
    columns[schema.CHANNEL] = channels.take(pa.array(order_channel[row_order]))

    truth = {
        schema.CUSTOMER_ID: ids,
        schema.CHANNEL: channels.take(pa.array(channel)),
        TRUTH_ACQUIRED_AT: _timestamps(cfg, acquired),
        TRUTH_LAMBDA: pa.array(lam),
        TRUTH_P: pa.array(p),
        TRUTH_MU: pa.array(mu),
        TRUTH_MEAN_SPEND: pa.array(cfg.spend_p / nu),
        TRUTH_ALIVE: pa.array(alive),
        TRUTH_DROPOUT_AT: _timestamps(cfg, dropout_t),
        TRUTH_N_ORDERS: pa.array(1 + n_repeats),
    }
    return _Block(
        transactions=pa.table(columns),
        truth=pa.table(truth),
        orders=n_orders,
        returns=len(ret_lines),
    )


def generate_blocks(cfg: SyntheticConfig) -> Iterator[tuple[pa.Table, pa.Table, int, int]]:
    """(transactions, truth, orders, returns) for each block of `cfg.block_customers`."""
    seeds = np.random.SeedSequence(cfg.seed).spawn(-(-cfg.customers // cfg.block_customers))
    first_order = 0
    for index, seed in enumerate(seeds):
        first = index * cfg.block_customers
        n = min(cfg.block_customers, cfg.customers - first)
        block = _generate_block(cfg, np.random.default_rng(seed), first, n, first_order)
        first_order += block.orders
        yield block.transactions, block.truth, block.orders, block.returns


def generate_frames(cfg: SyntheticConfig) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The whole log and its ground truth in memory (for small logs: tests, notebooks)."""
    blocks = list(generate_blocks(cfg))
    transactions = pa.concat_tables([b[0] for b in blocks]).to_pandas()
    truth = pa.concat_tables([b[1] for b in blocks]).to_pandas()
    return transactions, truth


def write_synthetic(
    cfg: SyntheticConfig, output: str | Path, truth: str | Path | None = None
) -> SyntheticSummary:
    """Generate the log block by block into `output` (.parquet or .csv), atomically.

    With `truth`, also writes the per-customer ground truth there (.parquet or .csv):
    customer_id, channel, acquired_at, lambda_per_day (purchase rate, per day), p_dropout
    (BG/NBD; NaN for Pareto/NBD), mu_per_day (Pareto/NBD dropout rate; NaN for BG/NBD),
    mean_spend (expected spend per order, currency), alive_at_end, dropout_at (NaT if alive),
    n_orders (orders in the window, the first included).
    """
    output = Path(output)
    _kind(output)
    if truth is not None:
        _kind(truth)
        if Path(truth).resolve() == output.resolve():
            raise ValueError("the ground truth and the log must be different files")
    with contextlib.ExitStack() as stack:
        tx_tmp = stack.enter_context(atomic_path(output))
        truth_tmp = stack.enter_context(atomic_path(truth)) if truth is not None else None
        tx_writer: _TableWriter | None = None
        truth_writer: _TableWriter | None = None
        rows = orders = returns = 0
        try:
            blocks = generate_blocks(cfg)
            n_blocks = -(-cfg.customers // cfg.block_customers)
            for tx, tr, n_orders, n_returns in tqdm(
                blocks, total=n_blocks, desc="generate", unit="block", disable=None
            ):
                tx_writer = tx_writer or _TableWriter(tx_tmp, tx.schema)
                tx_writer.write(tx)
                if truth_tmp is not None:
                    truth_writer = truth_writer or _TableWriter(truth_tmp, tr.schema)
                    truth_writer.write(tr)
                rows += tx.num_rows
                orders += n_orders
                returns += n_returns
                logger.debug("generated %s rows (%s so far)", f"{tx.num_rows:,}", f"{rows:,}")
        finally:
            for writer in (tx_writer, truth_writer):
                if writer is not None:
                    writer.close()
    result = SyntheticSummary(
        customers=cfg.customers,
        rows=rows,
        orders=orders,
        returns=returns,
        first_date=cfg.start,
        last_date=cfg.end,
    )
    logger.info("wrote %s to %s", result.summary(), output)
    return result


class _TableWriter:
    """Streams tables of one schema to a Parquet or CSV file, chosen by the file's suffix."""

    def __init__(self, path: Path, table_schema: pa.Schema) -> None:
        self._writer: pq.ParquetWriter | pa_csv.CSVWriter
        # The writer creates the file afresh, with the user's umask, not mkstemp's 0600.
        path.unlink(missing_ok=True)
        if _kind(path) == "parquet":
            self._writer = pq.ParquetWriter(path, table_schema, compression="snappy")
        else:
            self._writer = pa_csv.CSVWriter(path, table_schema)

    def write(self, table: pa.Table) -> None:
        self._writer.write_table(table)

    def close(self) -> None:
        self._writer.close()


def _kind(path: str | Path) -> Literal["parquet", "csv"]:
    suffix = Path(path).suffix.lower()
    if suffix == ".parquet":
        return "parquet"
    if suffix == ".csv":
        return "csv"
    raise ValueError(f"unsupported output '{path}': use a .parquet or .csv file")
