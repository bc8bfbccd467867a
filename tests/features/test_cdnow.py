"""The bundled CDNOW log: RFM at 1997-09-30 against an independent pandas computation."""

from __future__ import annotations

from datetime import date

import numpy as np
import pandas as pd
import pytest
from clv.features import build, datasets, schema, transactions

CUTOFF = date(1997, 9, 30)


@pytest.fixture(scope="module")
def cdnow_features() -> pd.DataFrame:
    log = transactions.load_transactions(datasets.cdnow_master_path(), datasets.CDNOW_COLUMNS)
    return build.build_panel(log, [CUTOFF], horizon_days=273)


def _independent_rfm() -> pd.DataFrame:
    """BTYD summary written directly: same-day purchases merged, days as the unit."""
    raw = pd.read_csv(datasets.cdnow_master_path(), dtype={"customer_id": str})
    raw["date"] = pd.to_datetime(raw["date"])
    cal = raw[raw["date"] <= pd.Timestamp(CUTOFF)]
    daily = cal.groupby(["customer_id", "date"], as_index=False)["amount"].sum()
    g = daily.sort_values("date").groupby("customer_id")
    first, last, n = g["date"].min(), g["date"].max(), g.size()
    first_value = g["amount"].first()
    total = g["amount"].sum()
    out = pd.DataFrame(
        {
            "frequency": n - 1,
            "recency": (last - first).dt.days,
            "T": (pd.Timestamp(CUTOFF) - first).dt.days,
            "monetary_value": np.where(n > 1, (total - first_value) / (n - 1).clip(lower=1), 0.0),
        }
    )
    hold = raw[(raw["date"] > pd.Timestamp(CUTOFF))]
    out["future_spend"] = hold.groupby("customer_id")["amount"].sum().reindex(out.index).fillna(0)
    return out


def test_cdnow_master_rfm_matches_independent_computation(cdnow_features: pd.DataFrame) -> None:
    assert len(cdnow_features) == 23_570
    ours = cdnow_features.set_index(schema.CUSTOMER_ID).sort_index()
    expected = _independent_rfm().sort_index()
    assert list(ours.index) == list(expected.index)
    for column in ("frequency", "recency", "T", "monetary_value", "future_spend"):
        np.testing.assert_allclose(
            ours[column].to_numpy(), expected[column].to_numpy(), rtol=1e-9, err_msg=column
        )
    build.check_feature_invariants(cdnow_features)


def test_cdnow_published_summary_statistics(cdnow_features: pd.DataFrame) -> None:
    """Known facts of the CDNOW cohort: all first purchases in Q1 1997, ~70% buy no more later."""
    assert cdnow_features[schema.FIRST_PURCHASE_DATE].max() <= pd.Timestamp("1997-03-31")
    assert cdnow_features[schema.T].between(183, 272).all()
    assert 0.65 < cdnow_features[schema.CHURNED].mean() < 0.75
