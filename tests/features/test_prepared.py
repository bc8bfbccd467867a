"""PreparedFeatures: the feature SQL prepared once, bound per call, equal to the checked path."""

from __future__ import annotations

import pandas as pd
import pytest
from clv.features import build, transactions
from clv.features.config import FeatureConfig
from clv.features.prepared import PreparedFeatures


def _mixed_log() -> pd.DataFrame:
    """Orders with a line sent twice, padded text, zero amounts, returns, three customers."""
    return pd.DataFrame(
        {
            "customer_id": ["a", "a", "a", "a", "b", "b", "b", "c"],
            "timestamp": pd.to_datetime(
                [
                    "2024-01-01 09:00",
                    "2024-01-01 09:00",
                    "2024-01-20",
                    "2024-03-02",
                    "2024-02-01",
                    "2024-02-03",
                    "2024-03-30",
                    "2024-03-31 23:00",
                ],
                format="ISO8601",
            ),
            "amount": [10.0, 10.0, 0.0, 30.0, 40.0, -10.0, 25.0, 5.0],
            "quantity": [1.0, 1.0, 1.0, 2.0, 4.0, -1.0, None, 1.0],
            "order_id": ["o1", "o1", "o2", "o3", "o4", "o5", "o6", "o7"],
            "product": ["p1", "p1", " p2 ", "p1", "p3", "p3", None, "p1"],
            "channel": ["web", "web", "web", "store ", "web", "web", "store", "web"],
        }
    )


@pytest.mark.parametrize("drop_zero", [False, True])
@pytest.mark.parametrize(
    "columns",
    [
        ["customer_id", "timestamp", "amount"],
        ["customer_id", "timestamp", "amount", "quantity"],
        ["customer_id", "timestamp", "amount", "product"],
        ["customer_id", "timestamp", "amount", "quantity", "order_id", "product", "channel"],
    ],
)
def test_prepared_features_equal_the_validated_path(columns: list[str], drop_zero: bool) -> None:
    config = FeatureConfig(drop_zero_amounts=drop_zero)
    frame = _mixed_log()[columns]
    pairs = pd.DataFrame(
        {
            "customer_id": ["c", "a", "b"],
            "cutoff": pd.to_datetime(["2024-04-01"] * 2 + ["2024-03-01"]),
        }
    )
    prepared = PreparedFeatures(config)
    try:
        for log, at in ((frame, pairs), (frame[frame.customer_id != "a"], pairs.iloc[[0, 2]])):
            expected = build.build_features(
                transactions.transactions_from_frame(log, config=config), at, config
            )
            # Twice with one statement: the second call reads its own rows, not the first's.
            pd.testing.assert_frame_equal(prepared.build(log, at), expected)
            pd.testing.assert_frame_equal(prepared.build(log, at), expected)
    finally:
        prepared.close()


def test_one_statement_per_set_of_columns_is_prepared_once() -> None:
    prepared = PreparedFeatures()
    log = _mixed_log()
    pairs = pd.DataFrame({"customer_id": ["a"], "cutoff": pd.to_datetime(["2024-04-01"])})
    try:
        first = prepared.build(log[["customer_id", "timestamp", "amount"]], pairs)
        prepared.build(log[["customer_id", "timestamp", "amount", "quantity"]], pairs)
        again = prepared.build(log[["customer_id", "timestamp", "amount"]], pairs)
        assert len(prepared._statements) == 2
        pd.testing.assert_frame_equal(first, again)
        assert first["frequency"].tolist() == [2.0]  # 01-01, 01-20 ($0 line), 03-02
    finally:
        prepared.close()


def test_every_shape_can_be_prepared_ahead() -> None:
    """Sixteen sets of optional columns; a later call of any shape reuses its statement."""
    prepared = PreparedFeatures()
    log = _mixed_log()
    pairs = pd.DataFrame({"customer_id": ["a"], "cutoff": pd.to_datetime(["2024-04-01"])})
    try:
        prepared.prepare_every_shape()
        assert len(prepared._statements) == 16
        statements = dict(prepared._statements)
        for columns in (["order_id"], ["product", "channel"], list(log.columns[3:])):
            prepared.build(log[["customer_id", "timestamp", "amount", *columns]], pairs)
        assert prepared._statements == statements
    finally:
        prepared.close()
