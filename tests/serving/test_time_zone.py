"""A model trained with a time zone serves in it: request offsets are converted to the
model's zone before days are cut, as `clv features --timezone` cut them in training."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import date

import httpx
import numpy as np
import pandas as pd
import pytest
from clv.features import build, schema, transactions
from clv.features.config import ColumnMapping
from clv.models.composite import CLVModel
from clv.serving.schemas import CustomerPrediction

from ..conftest import make_champion_store
from .conftest import start_server, stop

ZONE = "America/New_York"
AS_OF = "1997-09-30"
# Evening purchases in New York, written in UTC: 23:30Z on Jan 3 is 18:30 there, 01:30Z on
# Jan 4 is 20:30 on Jan 3, and 03:00Z on Sep 30... is Sep 29 (the day before as_of). In UTC
# they are 4 purchase days; in New York 3 (the first two merge), so frequency differs.
TRANSACTIONS = [
    {"timestamp": "1997-01-03T23:30:00Z", "amount": 25.0, "quantity": 1.0},
    {"timestamp": "1997-01-04T01:30:00Z", "amount": 15.0, "quantity": 1.0},
    {"timestamp": "1997-03-10T15:30:00-05:00", "amount": 40.0, "quantity": 2.0},
    {"timestamp": "1997-09-30T03:00:00Z", "amount": 12.0, "quantity": 1.0},
]


@pytest.fixture(scope="module")
def new_york_model(small_model) -> CLVModel:
    """`small_model` with its spec saying that days are cut in New York (and that its training
    log had its timestamps in a `date` column)."""
    spec = small_model.spec
    config = spec.feature_config.model_copy(update={"timezone": ZONE})
    return CLVModel(
        spec.model_copy(
            update={"feature_config": config, "columns": ColumnMapping(timestamp="date")}
        ),
        small_model.churn_booster,
        small_model.spend_booster,
        small_model.calibration,
        small_model.spend_dispersion,
        small_model.baseline,
        small_model.baseline_weight,
        small_model.value_scale,
        small_model.value_power,
    )


@pytest.fixture(scope="module")
def client(new_york_model, small_panel, tmp_path_factory) -> Iterator[httpx.Client]:
    root = tmp_path_factory.mktemp("new-york")
    uri = make_champion_store(root, new_york_model, small_panel)
    srv = start_server(uri, root / "server.log")
    try:
        with httpx.Client(base_url=srv.url, timeout=60) as c:
            yield c
    finally:
        stop(srv.process)


def _features(config) -> pd.DataFrame:
    frame = pd.DataFrame(TRANSACTIONS).assign(customer_id="c1")
    log = transactions.transactions_from_frame(frame, config=config)
    return build.build_features(log, [date.fromisoformat(AS_OF)], config)


def test_the_service_cuts_days_in_the_model_time_zone(client, new_york_model) -> None:
    info = client.get("/model")
    assert info.status_code == 200 and info.json()["feature_config"]["timezone"] == ZONE
    # how the training log was read, shown; requests still use the API's own field names
    assert info.json()["training_columns"] == {"timestamp": "date"}
    body = {"customers": [{"customer_id": "c1", "as_of": AS_OF, "transactions": TRANSACTIONS}]}
    response = client.post("/predict", json=body)
    assert response.status_code == 200, response.text
    served = CustomerPrediction.model_validate(response.json()[0])
    config = new_york_model.spec.feature_config
    local = _features(config)
    utc = _features(config.model_copy(update={"timezone": "UTC"}))
    assert local[schema.FREQUENCY].item() == 2 and utc[schema.FREQUENCY].item() == 3
    expected = new_york_model.predict(local).iloc[0]
    for column in ("predicted_value", "churn_probability", "value_at_risk", "historical_value"):
        np.testing.assert_allclose(getattr(served, column), expected[column], rtol=1e-9)
    assert served.lifecycle_stage == expected["lifecycle_stage"]
    # as_of is a New York day too: 02:00Z on Oct 1 is still Sep 30 there
    late = {"timestamp": "1997-10-01T02:00:00Z", "amount": 5.0}
    body["customers"][0]["transactions"] = [*TRANSACTIONS, late]
    assert client.post("/predict", json=body).status_code == 200
    late["timestamp"] = "1997-10-01T05:00:00Z"
    refused = client.post("/predict", json=body)
    assert refused.status_code == 400 and "after as_of" in refused.text
