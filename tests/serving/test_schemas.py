"""Request validation: each refusal names the field and the problem."""

from __future__ import annotations

import json

import pytest
from clv.serving.schemas import PredictRequest, RequestPolicy, set_policy
from pydantic import ValidationError


def _parse(body: dict) -> PredictRequest:
    return PredictRequest.model_validate_json(json.dumps(body))


def _customer(**overrides) -> dict:
    return {
        "customer_id": "c",
        "as_of": "2024-03-31",
        "transactions": [{"timestamp": "2024-01-01T10:00:00", "amount": 5.0}],
        **overrides,
    }


@pytest.fixture(autouse=True)
def _policy():
    set_policy(RequestPolicy(max_customers=3, input_features=("frequency", "recency", "T",
               "monetary_value", "historical_value")))  # fmt: skip
    yield
    set_policy(RequestPolicy())


def test_a_good_request_parses_and_converts_offsets_to_utc():
    tx = {"timestamp": "2024-03-31T23:30:00-02:00", "amount": 5.0}
    with pytest.raises(ValidationError, match="after as_of 2024-03-31"):
        _parse({"customers": [_customer(transactions=[tx])]})
    parsed = _parse({"customers": [_customer()]})
    assert parsed.customers[0].transactions[0].day.isoformat() == "2024-01-01"


def test_offsets_are_converted_to_the_model_time_zone():
    """A model trained with timezone America/New_York cuts request days there: 01:30 UTC on
    April 1 is the evening of March 31 in New York, so it is history at as_of March 31."""
    tx = {"timestamp": "2024-04-01T01:30:00Z", "amount": 5.0}
    body = {"customers": [_customer(transactions=[tx])]}
    with pytest.raises(ValidationError, match="after as_of 2024-03-31"):
        _parse(body)
    set_policy(RequestPolicy(timezone="America/New_York"))
    parsed = _parse(body).customers[0].transactions[0]
    assert parsed.day.isoformat() == "2024-03-31"
    assert parsed.naive_timestamp.isoformat() == "2024-03-31T21:30:00"
    naive = _parse({"customers": [_customer()]}).customers[0].transactions[0]
    assert naive.naive_timestamp.isoformat() == "2024-01-01T10:00:00"  # a local time already


@pytest.mark.parametrize(
    ("customer", "match"),
    [
        (_customer(customer_id="   "), "customer_id"),
        (_customer(transactions=[]), "history is empty"),
        (_customer(transactions=[{"timestamp": "2024-01-01", "amount": -1.0}]), "no purchase"),
        (_customer(transactions=[{"timestamp": "2024-01-01", "amount": 1e10}]), "less than or eq"),
        (_customer(as_of=None), "as_of is required"),
        (_customer(lifecycle_stage="lapsed"), "computed from transactions"),
        ({"customer_id": "c", "features": {"frequency": 1}}, "lifecycle_stage is required"),
        (
            {"customer_id": "c", "features": {"frequency": 1}, "lifecycle_stage": "lapsed"},
            "missing",
        ),
        (
            {
                "customer_id": "c",
                "lifecycle_stage": "lapsed",
                "features": {
                    "frequency": 1,
                    "recency": 9,
                    "T": 5,
                    "monetary_value": 1,
                    "historical_value": 2,
                },
            },
            "recency cannot exceed T",
        ),
        (
            {
                "customer_id": "c",
                "lifecycle_stage": "lapsed",
                "features": {
                    "frequency": 1,
                    "recency": 1,
                    "T": 5,
                    "monetary_value": 1,
                    "historical_value": None,
                },
            },
            "'historical_value' cannot be null",
        ),
    ],
)
def test_refusals_name_the_problem(customer, match):
    with pytest.raises(ValidationError, match=match):
        _parse({"customers": [customer]})


def test_batch_limits():
    with pytest.raises(ValidationError, match="at most 3 customers per request, got 4"):
        _parse({"customers": [_customer(customer_id=f"c{i}") for i in range(4)]})
    with pytest.raises(ValidationError, match="duplicate customer_id 'c' at positions 0 and 1"):
        _parse({"customers": [_customer(), _customer()]})
