"""The composite model round-trips through a real MLflow store (SQLite) by registry alias."""

from __future__ import annotations

import mlflow
import pandas as pd
import pytest
from clv.models.registry import ModelNotFoundError, load_clv_model


def test_champion_loads_by_alias_and_predicts_like_the_original(
    champion_store, small_model, small_features
):
    mlflow.set_tracking_uri(champion_store)
    try:
        loaded = load_clv_model("champion")
        assert loaded.version == "1"
        assert loaded.run_id
        assert loaded.model.spec == small_model.spec
        pd.testing.assert_frame_equal(
            loaded.model.predict(small_features), small_model.predict(small_features)
        )
        pyfunc = mlflow.pyfunc.load_model("models:/clv@champion")
        pd.testing.assert_frame_equal(
            pyfunc.predict(small_features.head(20)),
            small_model.predict(small_features.head(20)),
        )
    finally:
        mlflow.set_tracking_uri(None)


def test_unknown_alias_is_a_clear_error(champion_store):
    mlflow.set_tracking_uri(champion_store)
    try:
        with pytest.raises(ModelNotFoundError, match="alias 'nope'"):
            load_clv_model("nope")
    finally:
        mlflow.set_tracking_uri(None)
