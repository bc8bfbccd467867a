"""The real server over HTTP: good requests against the model called directly, and bad input."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from clv.features import schema
from clv.serving.schemas import CustomerPrediction, ExplainResponse, ModelInfo

from .payloads import AS_OF, raw_customers


def _one(customer_id: str = "c1", **overrides) -> dict:
    customer = {
        "customer_id": customer_id,
        "as_of": AS_OF,
        "transactions": [
            {"timestamp": "1997-01-03", "amount": 25.0, "quantity": 1.0},
            {"timestamp": "1997-03-10T15:30:00", "amount": 40.0, "quantity": 2.0},
        ],
    }
    customer.update(overrides)
    return customer


def test_predict_raw_transactions_matches_the_model_called_directly(
    client, small_model, small_features
):
    customers = raw_customers(25)
    response = client.post("/predict", json={"customers": customers})
    assert response.status_code == 200, response.text
    body = response.json()
    assert [p["customer_id"] for p in body] == [c["customer_id"] for c in customers]
    predictions = [CustomerPrediction.model_validate(p) for p in body]
    ids = [p.customer_id for p in predictions]
    features = small_features.set_index(schema.CUSTOMER_ID).loc[ids].reset_index()
    expected = small_model.predict(features)
    for column in ("predicted_value", "value_p10", "value_p90", "churn_probability",
                   "value_at_risk", "historical_value"):  # fmt: skip
        np.testing.assert_allclose(
            [getattr(p, column) for p in predictions], expected[column], rtol=1e-9
        )
    assert [p.value_tier for p in predictions] == expected["value_tier"].tolist()
    assert [p.lifecycle_stage for p in predictions] == expected["lifecycle_stage"].tolist()
    explanation = small_model.explain_value(features)
    for i, p in enumerate(predictions):
        assert p.model_version == "1"
        assert len(p.drivers) == 5
        assert p.drivers[0].label and p.drivers[0].family
        magnitudes = [abs(d.contribution) for d in p.drivers]
        assert magnitudes == sorted(magnitudes, reverse=True)
        np.testing.assert_allclose(
            abs(p.drivers[0].contribution), np.abs(explanation.contributions[i]).max(), rtol=1e-9
        )
        # Families partition the features: base + families == predicted value.
        total = p.base_value + sum(f.contribution for f in p.families)
        assert total == pytest.approx(p.predicted_value, rel=1e-9, abs=1e-9)


def test_predict_from_features_equals_predict_from_transactions(client):
    raw = raw_customers(3)
    info = client.get("/model").json()
    explained = client.post("/explain", json={"customers": raw}).json()["customers"]
    given = [
        {
            "customer_id": f"f-{c['customer_id']}",
            "features": {k: c["feature_values"][k] for k in info["input_features"]},
            "lifecycle_stage": p["lifecycle_stage"],
        }
        for c, p in zip(
            explained, client.post("/predict", json={"customers": raw}).json(), strict=True
        )
    ]
    both = client.post("/predict", json={"customers": raw + given}).json()
    for a, b in zip(both[:3], both[3:], strict=True):
        assert b["customer_id"] == f"f-{a['customer_id']}"
        assert b["predicted_value"] == pytest.approx(a["predicted_value"], rel=1e-12)
        assert b["drivers"] == a["drivers"]


def test_explain_vectors_add_up(client, small_model, small_features):
    customers = raw_customers(5)
    response = client.post("/explain", json={"customers": customers})
    assert response.status_code == 200, response.text
    body = ExplainResponse.model_validate(response.json())
    ids = [c.customer_id for c in body.customers]
    features = small_features.set_index(schema.CUSTOMER_ID).loc[ids].reset_index()
    value = small_model.predict(features)["predicted_value"].to_numpy()
    margin = small_model.churn_booster.predict(small_model.model_inputs(features), raw_score=True)
    for i, c in enumerate(body.customers):
        assert c.value.scale == "currency" and c.churn.scale == "log-odds"
        assert list(c.value.contributions) == small_model.spec.feature_names
        total = c.value.base_value + sum(c.value.contributions.values())
        assert total == pytest.approx(value[i], rel=1e-9)
        churn_total = c.churn.base_value + sum(c.churn.contributions.values())
        assert churn_total == pytest.approx(margin[i], rel=1e-9, abs=1e-9)


def test_model_endpoint(client, small_model):
    info = ModelInfo.model_validate(client.get("/model").json())
    assert info.version == "1" and info.alias == "champion"
    assert info.horizon_days == small_model.spec.horizon_days
    assert info.feature_names == small_model.spec.feature_names
    assert info.fingerprint == small_model.spec.fingerprint()
    assert info.training_window["cutoffs"]


def test_bentoml_endpoints(client):
    assert client.get("/livez").status_code == 200
    assert client.get("/readyz").status_code == 200
    metrics = client.get("/metrics").text
    assert 'le="0.001"' in metrics  # our finer latency buckets
    schema_doc = client.get("/docs.json").json()
    assert {"/predict", "/explain", "/model"} <= set(schema_doc["paths"])
    assert client.get("/").status_code == 200


BAD = {
    "malformed JSON": (b'{"customers": [', "json_invalid", []),
    "empty body": (b"", "missing", ["customers"]),
    "not an object": (b"[1, 2]", "model_type", []),
    "unknown top-level field": ({"customers": [_one()], "extra": 1}, "extra_forbidden", ["extra"]),
    "unknown customer field": (
        {"customers": [_one(colour="red")]}, "extra_forbidden", ["customers", 0, "colour"]),
    "missing customer_id": (
        {"customers": [{k: v for k, v in _one().items() if k != "customer_id"}]},
        "missing", ["customers", 0, "customer_id"]),
    "amount as a string": (
        {"customers": [_one(transactions=[{"timestamp": "1997-01-03", "amount": "25"}])]},
        "float_type", ["customers", 0, "transactions", 0, "amount"]),
    "NaN amount": (
        b'{"customers": [{"customer_id": "c", "as_of": "1997-09-30", "transactions": '
        b'[{"timestamp": "1997-01-03", "amount": NaN}]}]}',
        "finite_number", ["customers", 0, "transactions", 0, "amount"]),
    "infinite amount": (
        b'{"customers": [{"customer_id": "c", "as_of": "1997-09-30", "transactions": '
        b'[{"timestamp": "1997-01-03", "amount": 1e999}]}]}',
        "finite_number", ["customers", 0, "transactions", 0, "amount"]),
    "bad date": (
        {"customers": [_one(as_of="1997-13-01")]}, "date",
        ["customers", 0, "as_of"]),
    "empty history": (
        {"customers": [_one(transactions=[])]}, "value_error", ["customers", 0, "transactions"]),
    "returns only": (
        {"customers": [_one(transactions=[{"timestamp": "1997-01-03", "amount": -5.0}])]},
        "value_error", ["customers", 0, "transactions"]),
    "transaction after as_of": (
        {"customers": [_one(transactions=[{"timestamp": "1997-10-01", "amount": 5.0}])]},
        "value_error", ["customers", 0, "transactions"]),
    "missing as_of": (
        {"customers": [_one(as_of=None)]}, "value_error", ["customers", 0]),
    "features and transactions": (
        {"customers": [_one(features={"frequency": 1.0}, lifecycle_stage="lapsed")]},
        "value_error", ["customers", 0]),
    "features missing names": (
        {"customers": [{"customer_id": "c", "features": {"frequency": 1.0},
                        "lifecycle_stage": "lapsed"}]},
        "value_error", ["customers", 0]),
    "duplicate customer ids": (
        {"customers": [_one("a"), _one("b"), _one("a")]}, "value_error", ["customers"]),
    "empty batch": ({"customers": []}, "too_short", ["customers"]),
    "batch over the limit": (
        {"customers": [_one(f"c{i}") for i in range(51)]}, "value_error", ["customers"]),
}  # fmt: skip


@pytest.mark.parametrize("case", list(BAD), ids=list(BAD))
@pytest.mark.parametrize("endpoint", ["/predict", "/explain"])
def test_bad_input_is_a_400_naming_the_field(client, case, endpoint):
    body, kind, loc = BAD[case]
    content = body if isinstance(body, bytes) else json.dumps(body).encode()
    response = client.post(endpoint, content=content, headers={"content-type": "application/json"})
    assert response.status_code == 400, response.text
    detail = response.json()["detail"]
    assert any(kind in d["type"] and d["loc"] == loc for d in detail), detail
    assert all(d["msg"] for d in detail)


def test_explanatory_messages(client):
    body = {"customers": [_one(transactions=[{"timestamp": "1997-10-01", "amount": 5.0}])]}
    msg = client.post("/predict", json=body).json()["detail"][0]["msg"]
    assert "after as_of 1997-09-30" in msg
    body = {"customers": [_one("a"), _one("a")]}
    msg = client.post("/predict", json=body).json()["detail"][0]["msg"]
    assert "duplicate customer_id 'a'" in msg
    body = {"customers": [_one(f"c{i}") for i in range(51)]}
    msg = client.post("/predict", json=body).json()["detail"][0]["msg"]
    assert "at most 50 customers" in msg


def test_oversized_body_and_media_type(client):
    big = {"customers": [_one(transactions=[{"timestamp": "1997-01-03", "amount": 1.0}] * 20_000)]}
    response = client.post("/predict", json=big)
    assert response.status_code == 413
    assert response.json()["detail"][0]["loc"] == ["body"]
    response = client.post("/predict", content=b"x", headers={"content-type": "text/plain"})
    assert response.status_code == 415
    assert response.json()["detail"][0]["loc"] == ["header", "content-type"]


def test_same_customer_id_in_concurrent_requests_is_scored_separately(client):
    # Adaptive batching merges concurrent requests: ids only need to be unique per request.
    from concurrent.futures import ThreadPoolExecutor

    bodies = [{"customers": [_one("same", as_of=f"1997-0{m}-28")]} for m in (4, 5, 6, 7, 8, 9)]
    with ThreadPoolExecutor(6) as pool:
        results = list(pool.map(lambda b: client.post("/predict", json=b), bodies))
    assert all(r.status_code == 200 for r in results)
    alone = [client.post("/predict", json=b).json()[0]["predicted_value"] for b in bodies]
    assert [r.json()[0]["predicted_value"] for r in results] == pytest.approx(alone, rel=1e-12)


def test_server_keeps_serving_after_bad_input(client):
    for _ in range(3):
        client.post("/predict", content=b"{oops", headers={"content-type": "application/json"})
    response = client.post("/predict", json={"customers": [_one()]})
    assert response.status_code == 200
    frame = pd.DataFrame(response.json())
    assert frame.loc[0, "customer_id"] == "c1"


@pytest.mark.parametrize(
    "customer",
    [
        _one(as_of="9999-12-31", transactions=[{"timestamp": "0001-01-01", "amount": 1e9}]),
        _one(transactions=[{"timestamp": "1997-09-30T23:59:59+00:00", "amount": 0.0}]),
        _one(transactions=[{"timestamp": "1997-01-01", "amount": 5.0, "order_id": "o",
                            "product": "p", "channel": "web", "quantity": -1e9}]),
    ],
)  # fmt: skip
def test_extreme_but_valid_input_is_scored(client, customer):
    response = client.post("/predict", json={"customers": [customer]})
    assert response.status_code == 200, response.text
    assert CustomerPrediction.model_validate(response.json()[0]).predicted_value >= 0
