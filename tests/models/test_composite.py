"""The composite model: prediction identities, currency explanations, persistence, behaviour."""

from __future__ import annotations

import hashlib
import json
from datetime import date

import numpy as np
import pandas as pd
import pytest
from clv.features import schema
from clv.features.build import build_features
from clv.features.config import ColumnMapping
from clv.features.transactions import transactions_from_frame
from clv.models.composite import PREDICTION_COLUMNS, CLVModel
from clv.models.spec import VALUE_TIERS


def test_predict_columns_and_identities(small_model, small_features):
    out = small_model.predict(small_features)
    assert list(out.columns) == list(PREDICTION_COLUMNS)
    assert len(out) == len(small_features)
    assert out[schema.CUSTOMER_ID].tolist() == small_features[schema.CUSTOMER_ID].tolist()
    p, spend = out["churn_probability"], out["spend_if_active"]
    assert ((p >= 0) & (p <= 1)).all()
    assert (spend > 0).all()
    np.testing.assert_allclose(out["predicted_value"], (1 - p) * spend, rtol=1e-12)
    np.testing.assert_allclose(out["value_at_risk"], p * spend, rtol=1e-12)
    assert (out["value_p10"] <= out["predicted_value"]).all()
    assert (out["predicted_value"] <= out["value_p90"]).all()
    assert set(out["value_tier"]) <= set(VALUE_TIERS)
    # Tiers are fitted on the training predictions: about 10% of customers are gold or above.
    top = out["value_tier"].isin(["platinum", "gold"]).mean()
    assert 0.05 < top < 0.15


def test_value_explanation_is_in_currency_and_adds_up(small_model, small_features):
    explanation = small_model.explain_value(small_features)
    value = small_model.predict(small_features)["predicted_value"].to_numpy()
    assert explanation.scale == "currency"
    assert explanation.contributions.shape == (len(small_features), len(explanation.feature_names))
    np.testing.assert_allclose(
        explanation.base_value + explanation.contributions.sum(axis=1), value, rtol=1e-9, atol=1e-9
    )
    # The base value is one number for every customer: the value at the boosters' base margins.
    assert np.ptp(explanation.base_value) < 1e-9


def test_churn_explanation_adds_up_to_the_raw_margin(small_model, small_features):
    explanation = small_model.explain_churn(small_features)
    x = small_model.model_inputs(small_features)
    margin = small_model.churn_booster.predict(x, raw_score=True)
    assert explanation.scale == "log-odds"
    np.testing.assert_allclose(
        explanation.base_value + explanation.contributions.sum(axis=1), margin, atol=1e-9
    )


def test_column_order_and_extra_columns_change_nothing(small_model, small_features):
    shuffled = small_features[small_features.columns[::-1]].assign(unrelated=1.0)
    pd.testing.assert_frame_equal(
        small_model.predict(small_features), small_model.predict(shuffled)
    )


def test_missing_feature_column_is_named(small_model, small_features):
    with pytest.raises(ValueError, match="days_since_last_purchase"):
        small_model.predict(small_features.drop(columns=["days_since_last_purchase"]))


def test_save_load_round_trip(small_model, small_features, tmp_path):
    small_model.save(tmp_path / "m")
    loaded = CLVModel.load(tmp_path / "m")
    assert loaded.spec == small_model.spec
    pd.testing.assert_frame_equal(
        loaded.predict(small_features), small_model.predict(small_features)
    )
    assert not list((tmp_path / "m").glob("*.pkl"))


def test_load_refuses_a_tampered_spec(small_model, tmp_path):
    directory = small_model.save(tmp_path / "m")
    spec = json.loads((directory / "spec.json").read_text())
    spec["horizon_days"] = 30
    (directory / "spec.json").write_text(json.dumps(spec))
    with pytest.raises(ValueError, match=r"spec\.json does not match"):
        CLVModel.load(directory)


def test_a_model_saved_before_the_timezone_setting_still_loads(small_model, tmp_path):
    """A model saved before FeatureConfig had `timezone` (and before the spec recorded the
    training log's columns) has no such keys in spec.json, and its manifest holds the
    fingerprint of that JSON: it loads, with days cut in UTC as then."""
    directory = small_model.save(tmp_path / "m")
    spec = json.loads((directory / "spec.json").read_text())
    del spec["feature_config"]["timezone"]
    assert spec.pop("columns") is None
    (directory / "spec.json").write_text(json.dumps(spec, indent=2, sort_keys=True))
    manifest = json.loads((directory / "manifest.json").read_text())
    canonical = json.dumps(spec, sort_keys=True, separators=(",", ":")).encode()
    manifest["fingerprint"] = hashlib.sha256(canonical).hexdigest()
    spec_file = (directory / "spec.json").read_bytes()
    manifest["sha256"]["spec.json"] = hashlib.sha256(spec_file).hexdigest()
    (directory / "manifest.json").write_text(json.dumps(manifest))
    loaded = CLVModel.load(directory)
    assert loaded.spec.feature_config.timezone == "UTC"
    assert loaded.spec.fingerprint() == small_model.spec.fingerprint()
    # another zone is part of what the fingerprint covers
    berlin = small_model.spec.feature_config.model_copy(update={"timezone": "Europe/Berlin"})
    moved = small_model.spec.model_copy(update={"feature_config": berlin})
    assert moved.fingerprint() != small_model.spec.fingerprint()
    assert '"timezone":"Europe/Berlin"' in moved.canonical_json()


def test_the_training_logs_columns_travel_with_the_model(small_model, tmp_path):
    """Only the fields that were set are saved: a default name stays read-if-present."""
    columns = ColumnMapping(customer_id="cust", quantity="qty", unit_price="price")
    model = small_model.with_spec(columns=columns)
    loaded = CLVModel.load(model.save(tmp_path / "m"))
    assert loaded.spec.columns == columns
    assert loaded.spec.columns.model_fields_set == {"customer_id", "quantity", "unit_price"}
    assert loaded.spec.fingerprint() == model.spec.fingerprint() != small_model.spec.fingerprint()


def test_load_refuses_a_missing_file(small_model, tmp_path):
    directory = small_model.save(tmp_path / "m")
    (directory / "spend_booster.txt").unlink()
    with pytest.raises(ValueError, match="spend_booster.txt"):
        CLVModel.load(directory)


def test_a_more_recent_purchase_does_not_raise_churn_risk(small_model, small_features):
    """All else equal, fewer days since the last purchase never raises churn risk."""
    base = small_features.head(200)
    churn = [
        small_model.predict(base.assign(days_since_last_purchase=float(days)))["churn_probability"]
        for days in range(0, 400, 20)
    ]
    steps = np.diff(np.column_stack(churn), axis=1)
    assert np.all(steps >= -1e-12), "churn risk fell as the customer grew more silent"


def test_recent_buyers_are_at_lower_risk_than_silent_ones(small_model):
    """Same first purchases; the last one moves from March to the day before the as-of date."""
    as_of = date(1997, 9, 30)
    rows = []
    for i, last in enumerate(pd.date_range("1997-03-01", "1997-09-29", freq="7D")):
        cid = f"c{i:03d}"
        rows += [
            (cid, "1997-01-10", 30.0),
            (cid, "1997-02-01", 25.0),
            (cid, str(last.date()), 20.0),
        ]
    log = transactions_from_frame(
        pd.DataFrame(rows, columns=["customer_id", "timestamp", "amount"])
    )
    features = build_features(log, [as_of], small_model.spec.feature_config)
    features = features.sort_values(schema.LAST_PURCHASE_DATE)
    churn = small_model.predict(features)["churn_probability"].to_numpy()
    assert churn[-1] < churn[0], churn
