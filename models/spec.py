"""The feature spec that travels with a trained model: inputs, settings, window and provenance.

Serving and reports read it to build features with the very same settings as training and to
refuse a model whose stored fingerprint does not match.
"""

from __future__ import annotations

import hashlib
import json
from datetime import date, datetime
from typing import Any, Final

from clv.features.config import ColumnMapping, FeatureConfig
from pydantic import BaseModel, ConfigDict, Field, field_serializer

VALUE_TIERS: Final = ("platinum", "gold", "silver", "bronze")
# Settings added after models were first saved, with the default that older models were
# trained with: left out of the fingerprinted JSON while at that default, so that the
# fingerprint stored with an older model still matches (a changed value is fingerprinted).
_LATER_FEATURE_SETTINGS: Final = {"timezone": "UTC"}


class TrainingWindow(BaseModel):
    """Dates of the data the model learned from (feature history and label horizons)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    first_date: date
    last_date: date
    cutoffs: list[date]


class TierThresholds(BaseModel):
    """Predicted-value cut points (currency over the horizon), fitted on training predictions.

    predicted_value >= platinum: top 1%; >= gold: top 10%; >= silver: top 50%; else bronze.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    platinum: float
    gold: float
    silver: float

    def tier_of(self, values: Any) -> list[str]:
        """The value tier of each predicted value."""
        out = []
        for v in values:
            if v >= self.platinum:
                out.append("platinum")
            elif v >= self.gold:
                out.append("gold")
            elif v >= self.silver:
                out.append("silver")
            else:
                out.append("bronze")
        return out


class ModelSpec(BaseModel):
    """Everything that defines a trained model's inputs and outputs, and where it came from."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    feature_names: list[str] = Field(description="model inputs, in order")
    feature_config: FeatureConfig
    horizon_days: int = Field(gt=0)
    training_window: TrainingWindow
    tier_thresholds: TierThresholds
    trained_at: datetime
    code_version: str = "unknown"
    data_hash: str = ""
    params: dict[str, Any] = Field(default_factory=dict)
    validation_metrics: dict[str, dict[str, float]] = Field(default_factory=dict)
    columns: ColumnMapping | None = Field(
        default=None,
        description="how the columns of the training log were read (the column options and "
        "config file of `clv train`): `clv score` and `clv report` read a log the same way, "
        "under any option given to them (`ColumnMapping.over`). None for a model trained on "
        "an already loaded log, or saved before this was recorded",
    )

    @field_serializer("columns")
    def _columns_as_set(self, columns: ColumnMapping | None) -> dict[str, Any] | None:
        # Only the fields that were set: loading the spec again keeps which ones were.
        return None if columns is None else columns.chosen()

    def canonical_json(self) -> str:
        """The spec as JSON with sorted keys: the bytes the fingerprint is taken over."""
        data = self.model_dump(mode="json")
        features = data["feature_config"]
        for name, default in _LATER_FEATURE_SETTINGS.items():
            if features.get(name) == default:
                del features[name]
        if data.get("columns") is None:  # models saved before columns were recorded
            data.pop("columns", None)
        return json.dumps(data, sort_keys=True, separators=(",", ":"))

    def fingerprint(self) -> str:
        """sha256 (hex) of the canonical JSON."""
        return hashlib.sha256(self.canonical_json().encode()).hexdigest()
