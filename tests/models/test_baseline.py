"""The BG/NBD + Gamma-Gamma baseline against the published fits on the CDNOW sample."""

from __future__ import annotations

from datetime import date

import numpy as np
import pandas as pd
import pytest
from clv.features.build import build_features, build_panel
from clv.features.datasets import CDNOW_COLUMNS, cdnow_master_path, cdnow_sample_ids
from clv.features.transactions import load_transactions
from clv.models.baseline import BgNbdGammaGamma


@pytest.fixture(scope="module")
def calibration_features() -> pd.DataFrame:
    """The 2,357 sample customers at the end of the papers' calibration period (39 weeks)."""
    log = load_transactions(cdnow_master_path(), columns=CDNOW_COLUMNS)
    features = build_features(log, [date(1997, 9, 30)])
    return features[features["customer_id"].isin(set(cdnow_sample_ids()))]


@pytest.fixture(scope="module")
def fitted(calibration_features: pd.DataFrame) -> BgNbdGammaGamma:
    return BgNbdGammaGamma(time_unit_days=7.0).fit(calibration_features)


def test_sample_matches_the_papers(calibration_features):
    assert len(calibration_features) == 2357
    # Fader, Hardie and Lee (2005): 946 repeat buyers, mean repeat spend $35.08.
    repeat = calibration_features[calibration_features["frequency"] > 0]
    assert len(repeat) == 946
    assert repeat["monetary_value"].mean() == pytest.approx(35.08, abs=0.005)


def test_bgnbd_matches_the_published_parameters(fitted):
    """Fader, Hardie and Lee (2005), "Counting your customers the easy way", table 1."""
    p = fitted.params_
    assert p["r"] == pytest.approx(0.243, abs=0.005)
    assert p["alpha"] == pytest.approx(4.414, abs=0.05)
    assert p["a"] == pytest.approx(0.793, abs=0.005)
    assert p["b"] == pytest.approx(2.426, abs=0.005)


def test_gamma_gamma_matches_the_published_parameters(fitted):
    """Fader and Hardie, "The Gamma-Gamma model of monetary value" (2013): p, q, v."""
    p = fitted.params_
    assert p["p"] == pytest.approx(6.25, abs=0.01)
    assert p["q"] == pytest.approx(3.74, abs=0.01)
    assert p["v"] == pytest.approx(15.44, abs=0.01)


def test_population_mean_spend_is_the_gamma_gamma_mean(fitted, calibration_features):
    first_timers = calibration_features[calibration_features["frequency"] == 0].head(3)
    p = fitted.params_
    expected = p["p"] * p["v"] / (p["q"] - 1)
    np.testing.assert_allclose(fitted.expected_average_spend(first_timers), expected)


def test_expected_purchases_are_close_to_the_holdout():
    """The 39-week forecast for the sample against the purchase days it really made after the
    cutoff (measured: 1,653 forecast, 1,882 realised; BG/NBD is known to run a little low here).
    """
    log = load_transactions(cdnow_master_path(), columns=CDNOW_COLUMNS)
    panel = build_panel(log, [date(1997, 9, 30)], 273)
    panel = panel[panel["customer_id"].isin(set(cdnow_sample_ids()))]
    fitted = BgNbdGammaGamma().fit(panel)
    expected = fitted.expected_purchases(panel, 273).sum()
    realised = panel["future_purchase_days"].sum()
    assert 0.85 < expected / realised < 1.05


def test_round_trip_and_unfitted_error(fitted, calibration_features):
    again = BgNbdGammaGamma.from_dict(fitted.to_dict())
    np.testing.assert_allclose(
        again.predict_value(calibration_features, 273),
        fitted.predict_value(calibration_features, 273),
    )
    with pytest.raises(RuntimeError, match="not fitted"):
        BgNbdGammaGamma().probability_alive(calibration_features)
