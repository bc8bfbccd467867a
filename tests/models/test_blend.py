"""The composite model's blend with the baseline and its recalibration: identities and drivers."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from clv.models.composite import CLVModel


def _variant(model: CLVModel, weight: float, scale: float, power: float) -> CLVModel:
    return CLVModel(
        model.spec,
        model.churn_booster,
        model.spend_booster,
        model.calibration,
        model.spend_dispersion,
        model.baseline,
        baseline_weight=weight,
        value_scale=scale,
        value_power=power,
    )


@pytest.fixture(scope="module", params=[(0.0, 1.0, 1.0), (0.3, 1.2, 1.15), (1.0, 0.9, 0.85)])
def blended(request, small_model) -> CLVModel:
    return _variant(small_model, *request.param)


def test_blend_formula(blended, small_model, small_features):
    plain = _variant(small_model, 0.0, 1.0, 1.0).predict(small_features)["predicted_value"]
    b = blended.model_inputs(small_features)[
        :, blended.spec.feature_names.index("bgnbd_expected_value")
    ]
    w, c, k = blended.baseline_weight, blended.value_scale, blended.value_power
    expected = c * ((1 - w) * plain.to_numpy() + w * b) ** k
    out = blended.predict(small_features)
    np.testing.assert_allclose(out["predicted_value"], expected, rtol=1e-10)
    p = out["churn_probability"]
    np.testing.assert_allclose(out["predicted_value"], (1 - p) * out["spend_if_active"], rtol=1e-10)
    np.testing.assert_allclose(out["value_at_risk"], p * out["spend_if_active"], rtol=1e-10)
    assert (out["value_p10"] <= out["predicted_value"]).all()
    assert (out["predicted_value"] <= out["value_p90"]).all()


def test_blend_explanations_add_up(blended, small_features):
    explanation = blended.explain_value(small_features)
    value = blended.predict(small_features)["predicted_value"].to_numpy()
    np.testing.assert_allclose(
        explanation.base_value + explanation.contributions.sum(axis=1), value, rtol=1e-9, atol=1e-9
    )
    assert np.ptp(explanation.base_value) < 1e-9


def test_baseline_share_goes_to_the_baseline_value_feature(small_model, small_features):
    """With all weight on the baseline, only the baseline's value feature drives the value."""
    model = _variant(small_model, 1.0, 1.0, 1.0)
    explanation = model.explain_value(small_features)
    column = model.spec.feature_names.index("bgnbd_expected_value")
    others = np.delete(explanation.contributions, column, axis=1)
    assert np.abs(others).max() == 0
    np.testing.assert_allclose(
        explanation.contributions[:, column], explanation.feature_values[:, column]
    )


def test_blend_survives_save_and_load(small_model, small_features, tmp_path):
    model = _variant(small_model, 0.3, 1.2, 1.15)
    loaded = CLVModel.load(model.save(tmp_path / "m"))
    assert (loaded.baseline_weight, loaded.value_scale, loaded.value_power) == (0.3, 1.2, 1.15)
    pd.testing.assert_frame_equal(loaded.predict(small_features), model.predict(small_features))


def test_blend_settings_are_checked(small_model):
    with pytest.raises(ValueError, match="baseline_weight"):
        _variant(small_model, 1.5, 1.0, 1.0)
    with pytest.raises(ValueError, match="value_power"):
        _variant(small_model, 0.0, 1.0, 0.0)
