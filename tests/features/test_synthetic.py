"""The synthetic log generator: reproducible, valid under the contract, and true to its truth."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from clv.features import build, schema, synthetic, transactions
from clv.features.synthetic import SyntheticConfig, generate_frames, write_synthetic
from clv.models.baseline import BgNbdGammaGamma

# The textbook process without the realism on top, so that BG/NBD is the true model.
PLAIN = {
    "weekly_amplitude": 0.0,
    "annual_amplitude": 0.0,
    "channel_rate_multipliers": (1.0, 1.0, 1.0),
    "extra_lines_per_order": 0.0,
    "return_share": 0.0,
}


def test_same_seed_same_log_other_seed_other_log(tmp_path: Path) -> None:
    config = SyntheticConfig(customers=3_000, block_customers=1_000)
    first, second = tmp_path / "a.parquet", tmp_path / "b.parquet"
    write_synthetic(config, first, tmp_path / "ta.parquet")
    write_synthetic(config, second, tmp_path / "tb.parquet")
    pd.testing.assert_frame_equal(pd.read_parquet(first), pd.read_parquet(second))
    pd.testing.assert_frame_equal(
        pd.read_parquet(tmp_path / "ta.parquet"), pd.read_parquet(tmp_path / "tb.parquet")
    )
    other, _ = generate_frames(config.model_copy(update={"seed": 7}))
    assert not other.equals(pd.read_parquet(first))


def test_row_count_scales_with_customers() -> None:
    small, _ = generate_frames(SyntheticConfig(customers=4_000, seed=1))
    large, _ = generate_frames(SyntheticConfig(customers=16_000, seed=1))
    assert len(large) / len(small) == pytest.approx(4.0, rel=0.1)
    assert 5 < len(large) / 16_000 < 15  # about ten rows per customer by default


def test_log_follows_the_contract_and_builds_features(tmp_path: Path) -> None:
    config = SyntheticConfig(customers=2_000, seed=5)
    path = tmp_path / "tx.parquet"
    result = write_synthetic(config, path, tmp_path / "truth.parquet")
    log = transactions.load_transactions(path)
    assert log.report.rows_read == log.report.rows_kept == result.rows  # nothing to clean
    assert log.optional_columns == set(schema.OPTIONAL_TRANSACTION_COLUMNS)
    assert log.n_customers == config.customers
    assert config.start <= log.first_date and log.last_date <= config.end
    features = build.build_features(log, [config.end])
    assert len(features) == config.customers
    build.check_feature_invariants(features)

    truth = pd.read_parquet(tmp_path / "truth.parquet").set_index(schema.CUSTOMER_ID)
    frame = pd.read_parquet(path)
    assert truth[synthetic.TRUTH_N_ORDERS].sum() == frame[schema.ORDER_ID].nunique()
    by_customer = features.set_index(schema.CUSTOMER_ID)
    first_day = truth[synthetic.TRUTH_ACQUIRED_AT].dt.normalize()
    assert (by_customer[schema.FIRST_PURCHASE_DATE] == first_day.loc[by_customer.index]).all()
    # same-day orders merge into one purchase day, so frequency can only undercount orders
    assert (by_customer[schema.FREQUENCY] <= truth[synthetic.TRUTH_N_ORDERS] - 1).all()


def test_lines_returns_and_columns() -> None:
    config = SyntheticConfig(customers=5_000, seed=2)
    tx, truth = generate_frames(config)
    assert list(tx.columns) == list(schema.TRANSACTION_COLUMNS)
    returns = tx[tx[schema.AMOUNT] < 0]
    assert len(returns) / len(tx) == pytest.approx(config.return_share, abs=0.01)
    assert (returns[schema.QUANTITY] < 0).all() and (tx[schema.QUANTITY] != 0).all()
    purchases = tx[tx[schema.AMOUNT] > 0]
    # lines of one order share the customer and the time; products are distinct within it
    per_order = purchases.groupby(schema.ORDER_ID)
    assert (per_order[schema.CUSTOMER_ID].nunique() == 1).all()
    assert (per_order[schema.TIMESTAMP].nunique() == 1).all()
    assert (per_order[schema.PRODUCT].nunique() == per_order.size()).all()
    assert set(tx[schema.CHANNEL]) == set(config.channels)
    end = pd.Timestamp(config.end + timedelta(days=1))
    assert tx[schema.TIMESTAMP].between(pd.Timestamp(config.start), end, inclusive="left").all()
    assert truth[synthetic.TRUTH_P].between(0, 1).all() and truth[synthetic.TRUTH_MU].isna().all()
    assert (truth[synthetic.TRUTH_DROPOUT_AT].isna() == truth[synthetic.TRUTH_ALIVE]).all()


def test_integer_ids_and_csv_output(tmp_path: Path) -> None:
    config = SyntheticConfig(customers=500, string_ids=False)
    path = tmp_path / "tx.csv"
    result = write_synthetic(config, path)
    frame = pd.read_csv(path)
    assert frame[schema.CUSTOMER_ID].dtype == np.int64 and len(frame) == result.rows
    log = transactions.load_transactions(path)
    assert log.n_customers == 500


def test_bgnbd_fit_recovers_the_generating_parameters() -> None:
    config = SyntheticConfig(customers=20_000, seed=3, **PLAIN)
    tx, _ = generate_frames(config)
    features = build.build_features(transactions.transactions_from_frame(tx), [config.end])
    fitted = BgNbdGammaGamma(time_unit_days=1.0).fit(features).params_
    truth = {"r": config.r, "alpha": config.alpha, "a": config.a, "b": config.b}
    for name, value in truth.items():
        assert fitted[name] == pytest.approx(value, rel=0.1), name
    # spend is rounded to cents and split into lines: a looser check for Gamma-Gamma
    for name, value in {"p": config.spend_p, "q": config.spend_q, "v": config.spend_v}.items():
        assert fitted[name] == pytest.approx(value, rel=0.2), name


def test_pareto_alive_customers_buy_at_their_true_rate() -> None:
    """With seasonality and channels on: the repeat rate of long-lived customers is lambda."""
    config = SyntheticConfig(customers=20_000, seed=4, process="pareto")
    tx, truth = generate_frames(config)
    features = build.build_features(transactions.transactions_from_frame(tx), [config.end])
    merged = features.merge(truth, on=schema.CUSTOMER_ID)
    assert merged[synthetic.TRUTH_P].isna().all() and merged[synthetic.TRUTH_MU].gt(0).all()
    old_and_alive = merged[merged[synthetic.TRUTH_ALIVE] & (merged[schema.T] > 365)]
    observed = old_and_alive[schema.FREQUENCY].sum() / old_and_alive[schema.T].sum()
    expected = (old_and_alive[synthetic.TRUTH_LAMBDA] * old_and_alive[schema.T]).sum() / (
        old_and_alive[schema.T].sum()
    )
    assert observed == pytest.approx(expected, rel=0.05)
    # and the dead stopped buying: nothing after their dropout time
    dead = truth[~truth[synthetic.TRUTH_ALIVE]].set_index(schema.CUSTOMER_ID)
    last = tx.groupby(schema.CUSTOMER_ID)[schema.TIMESTAMP].max()
    purchases = tx[tx[schema.AMOUNT] > 0].groupby(schema.CUSTOMER_ID)[schema.TIMESTAMP].max()
    assert (purchases.loc[dead.index] <= dead[synthetic.TRUTH_DROPOUT_AT]).all()
    assert len(last) == config.customers


def test_bad_config_is_refused() -> None:
    with pytest.raises(ValueError, match="customers"):
        SyntheticConfig(customers=0)
    with pytest.raises(ValueError, match="channel"):
        SyntheticConfig(customers=10, channel_shares=(1.0, 0.0))
    with pytest.raises(ValueError, match=r"\.parquet or \.csv"):
        write_synthetic(SyntheticConfig(customers=10), "tx.json")
