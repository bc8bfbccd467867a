"""The shared scoring path: contract check, features as training computes them, exact SHAP."""

from __future__ import annotations

import json
from datetime import date

import numpy as np
import pandas as pd
import pytest
from clv.features import schema
from clv.features.build import build_features
from clv.features.config import FeatureConfig
from clv.features.errors import TransactionLogError
from clv.features.transactions import transactions_from_frame
from clv.models.registry import LoadedModel
from clv.serving import handlers
from clv.serving.schemas import PredictRequest, RequestPolicy, set_policy
from clv.serving.scoring import (
    FEATURE_FAMILIES,
    LARGE_BATCH_ROWS,
    FeatureBuilder,
    ModelContractError,
    Scorer,
    check_contract,
)

from .payloads import raw_customers


def _parse(customers: list[dict]) -> list:
    """As the server parses a body: JSON mode (strict types, ISO date strings)."""
    return PredictRequest.model_validate_json(json.dumps({"customers": customers})).customers


@pytest.fixture(scope="module")
def scorer(small_model) -> Scorer:
    return Scorer(LoadedModel(small_model, "clv", "7", "champion", None, "models:/clv/7"))


def test_pred_contrib_equals_shap_tree_explainer_and_adds_up(small_model, small_features):
    import shap

    x = small_model.model_inputs(small_features.head(200))
    for booster in (small_model.churn_booster, small_model.spend_booster):
        contrib = booster.predict(x, pred_contrib=True, num_threads=1)
        explainer = shap.TreeExplainer(booster)
        expected = np.asarray(explainer.shap_values(x))
        np.testing.assert_allclose(contrib[:, :-1], expected, atol=1e-6)
        np.testing.assert_allclose(contrib[:, -1], explainer.expected_value, atol=1e-6)
        raw = booster.predict(x, raw_score=True, num_threads=1)
        np.testing.assert_allclose(contrib.sum(axis=1), raw, rtol=1e-9, atol=1e-9)


def test_drivers_are_the_largest_contributions_and_families_partition_them(scorer, small_features):
    scored = scorer.score(small_features, top_k=4)
    contributions = scored.explanation.contributions
    top = np.sort(np.abs(contributions), axis=1)[:, ::-1][:, :4]
    chosen = np.abs(np.take_along_axis(contributions, scored.driver_index, axis=1))
    np.testing.assert_allclose(chosen, top)
    np.testing.assert_allclose(
        scored.family_contributions.sum(axis=1), contributions.sum(axis=1), rtol=1e-9, atol=1e-9
    )
    assert scored.family_contributions.shape[1] == len(FEATURE_FAMILIES)
    value = scored.predictions["predicted_value"].to_numpy()
    np.testing.assert_allclose(
        scored.explanation.base_value + contributions.sum(axis=1), value, rtol=1e-9
    )
    columns = scorer.driver_columns(scored)
    assert list(columns.columns[:4]) == [
        "base_value",
        "driver_1_feature",
        "driver_1_contribution",
        "driver_1_value",
    ]


def test_large_batches_use_more_threads_and_score_the_same(small_model, small_features):
    loaded = LoadedModel(small_model, "clv", "7", "champion", None, "models:/clv/7")
    one, two = Scorer(loaded), Scorer(loaded, num_threads=1, large_batch_threads=2)
    assert len(small_features) >= LARGE_BATCH_ROWS
    assert two.threads_for(LARGE_BATCH_ROWS - 1) == 1
    assert two.threads_for(LARGE_BATCH_ROWS) == 2 and one.threads_for(LARGE_BATCH_ROWS) == 1
    a, b = one.score(small_features, top_k=3), two.score(small_features, top_k=3)
    pd.testing.assert_frame_equal(a.predictions, b.predictions)
    np.testing.assert_array_equal(a.explanation.contributions, b.explanation.contributions)


def test_contract_refuses_a_model_whose_features_differ(small_model):
    check_contract(small_model)
    other = small_model.with_spec(feature_config=FeatureConfig(windows_days=(30, 60)))
    with pytest.raises(ModelContractError, match=r"does not match.*purchase_days_60d"):
        check_contract(other)
    with pytest.raises(ModelContractError):
        Scorer(LoadedModel(other, "clv", "2", None, None, "models:/clv/2"))


def test_feature_builder_computes_what_training_computed(small_model, small_panel):
    # Two customers at different as-of dates, from their own transactions only.
    customers = raw_customers(40)
    frames, as_of = [], []
    for i, c in enumerate(customers):
        cutoff = ["1997-08-05", "1997-09-02", "1997-09-30"][i % 3]
        txs = [t for t in c["transactions"] if t["timestamp"] <= cutoff]
        if not txs:
            continue
        frames.append(pd.DataFrame({"customer_id": c["customer_id"], **pd.DataFrame(txs)}))
        as_of.append((c["customer_id"], pd.Timestamp(cutoff)))
    log = pd.concat(frames, ignore_index=True)
    log["timestamp"] = pd.to_datetime(log["timestamp"])
    pairs = pd.DataFrame(as_of, columns=[schema.CUSTOMER_ID, schema.CUTOFF])
    builder = FeatureBuilder(small_model.spec.feature_config)
    got = builder.build(log, pairs)
    again = builder.build(log, pairs)  # the reused connection gives the same answer
    pd.testing.assert_frame_equal(got, again)
    # The service's path (values checked by the request models): the same rows.
    pd.testing.assert_frame_equal(builder.build(log, pairs, trusted=True), got)
    expected = small_panel.set_index([schema.CUSTOMER_ID, schema.CUTOFF]).loc[
        list(zip(pairs[schema.CUSTOMER_ID], pairs[schema.CUTOFF], strict=True))
    ]
    for name in small_model.input_features:
        np.testing.assert_allclose(
            got[name].to_numpy(dtype=float), expected[name].to_numpy(dtype=float), rtol=1e-12,
            err_msg=name,
        )  # fmt: skip
    assert got[schema.LIFECYCLE_STAGE].tolist() == expected[schema.LIFECYCLE_STAGE].tolist()


def test_feature_builder_still_checks_untrusted_logs(small_model):
    builder = FeatureBuilder(small_model.spec.feature_config)
    pairs = pd.DataFrame({schema.CUSTOMER_ID: ["a"], schema.CUTOFF: [pd.Timestamp("1997-09-30")]})
    good = pd.DataFrame(
        {"customer_id": ["a"], "timestamp": [pd.Timestamp("1997-01-01")], "amount": [1.0]}
    )
    builder.build(good, pairs, trusted=True)  # a trusted build first: no state leaks over
    bad = good.assign(amount=[float("inf")])
    with pytest.raises(TransactionLogError, match="NaN or infinite"):
        builder.build(bad, pairs)
    unparsable = good.assign(timestamp=["not a date"])
    with pytest.raises(TransactionLogError, match="cannot be parsed"):
        builder.build(unparsable, pairs)


def test_a_customers_features_do_not_depend_on_its_batch(scorer):
    set_policy(RequestPolicy(input_features=tuple(scorer.model.input_features)))
    tx = [{"timestamp": "1997-02-01", "amount": 10.0}] * 2 + [
        {"timestamp": "1997-05-01", "amount": 30.0}
    ]
    plain = {"customer_id": "a", "as_of": "1997-09-30", "transactions": tx}
    with_orders = {
        "customer_id": "b",
        "as_of": "1997-09-30",
        "transactions": [{**t, "order_id": "o1"} for t in tx],
    }
    alone = _parse([plain])
    mixed = _parse([with_orders, plain])
    a_alone = handlers.feature_frame(scorer, alone).iloc[0]
    a_mixed = handlers.feature_frame(scorer, mixed).iloc[1]
    b_mixed = handlers.feature_frame(scorer, mixed).iloc[0]
    assert a_alone["n_transactions"] == a_mixed["n_transactions"] == 3
    assert b_mixed["n_transactions"] == 2  # identical lines of one order count once
    # Training reads the same rows the same way.
    frame = pd.DataFrame(tx).assign(
        customer_id="a", timestamp=lambda f: pd.to_datetime(f.timestamp)
    )
    log = transactions_from_frame(frame)
    trained = build_features(log, [date(1997, 9, 30)], FeatureConfig())
    assert trained.loc[0, "n_transactions"] == 3
    set_policy(RequestPolicy())


def test_handlers_predict_matches_the_model(scorer, small_model, small_features):
    set_policy(RequestPolicy(input_features=tuple(scorer.model.input_features)))
    rows = small_features.head(30)
    customers = [
        {
            "customer_id": r[schema.CUSTOMER_ID],
            "features": {
                n: (None if pd.isna(r[n]) else float(r[n])) for n in scorer.model.input_features
            },
            "lifecycle_stage": r[schema.LIFECYCLE_STAGE],
        }
        for _, r in rows.iterrows()
    ]
    parsed = _parse(customers)
    out = handlers.predict(scorer, parsed, top_k=3)
    expected = small_model.predict(rows)
    np.testing.assert_allclose(
        [p.predicted_value for p in out], expected["predicted_value"], rtol=1e-12
    )
    assert all(len(p.drivers) == 3 and p.model_version == "7" for p in out)
    set_policy(RequestPolicy())
