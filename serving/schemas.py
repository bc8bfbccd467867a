"""Request and response models of the service. Validation runs before any handler does.

A customer comes either as raw transactions and an `as_of` date (features are then computed by
the same SQL that training used) or as precomputed model-input features. Every check that can
refuse a request lives here, so that a handler only ever sees input it can score: a refusal is a
400 whose body names the field (`loc`) and the problem (`msg`).

Limits that depend on the served model or the environment (the model's input features, the most
customers per request) are a `RequestPolicy` that the service installs when it starts.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import date, datetime
from typing import Annotated, Any, Literal
from zoneinfo import ZoneInfo

from clv.features import schema
from clv.features.config import DEFAULT_TIMEZONE
from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    StringConstraints,
    ValidationInfo,
    field_validator,
    model_validator,
)

# Bounds that keep every sum and ratio in the feature SQL finite.
MAX_ABS_AMOUNT = 1e9
MAX_ABS_FEATURE = 1e12

Text = Annotated[str, StringConstraints(min_length=1, max_length=256)]
CustomerId = Annotated[
    str, StringConstraints(min_length=1, max_length=128, pattern=r"^[^\x00-\x1f]*\S[^\x00-\x1f]*$")
]
Stage = Literal["first_time", "short_term", "long_term", "lapsed"]


@dataclass(frozen=True)
class RequestPolicy:
    """Limits of one running service (installed by the service with `set_policy`)."""

    max_customers: int = 1000
    max_transactions: int = 100_000
    input_features: tuple[str, ...] | None = None
    zero_amount_is_purchase: bool = True
    timezone: str = DEFAULT_TIMEZONE  # the model's FeatureConfig.timezone: days are cut there


_policy = RequestPolicy()


def set_policy(policy: RequestPolicy) -> None:
    """Install the limits that request validation enforces in this process."""
    global _policy
    _policy = policy


def get_policy() -> RequestPolicy:
    return _policy


_STRICT = ConfigDict(strict=True, extra="forbid", frozen=True)


class Transaction(BaseModel):
    """One line of a customer's log, as in training (optional fields may be left out)."""

    model_config = _STRICT

    timestamp: datetime | date = Field(
        description="ISO date or timestamp; one with an offset is converted to the model's "
        "time zone (feature_config.timezone of GET /model, UTC unless trained otherwise), one "
        "without is a local time there"
    )
    amount: float = Field(
        allow_inf_nan=False,
        ge=-MAX_ABS_AMOUNT,
        le=MAX_ABS_AMOUNT,
        description="currency; negative = return",
    )
    order_id: Text | None = None
    quantity: float | None = Field(
        default=None, allow_inf_nan=False, ge=-MAX_ABS_AMOUNT, le=MAX_ABS_AMOUNT
    )
    product: Text | None = None
    channel: Text | None = None

    @property
    def day(self) -> date:
        return self.naive_timestamp.date()

    @property
    def naive_timestamp(self) -> datetime:
        """The timestamp as a naive local time of the model's zone (`RequestPolicy.timezone`),
        converted there when an offset was given."""
        ts = self.timestamp
        if not isinstance(ts, datetime):
            return datetime(ts.year, ts.month, ts.day)
        if ts.tzinfo is not None:
            return ts.astimezone(ZoneInfo(get_policy().timezone)).replace(tzinfo=None)
        return ts


def _finite_features(values: dict[str, float | None]) -> dict[str, float | None]:
    for name, value in values.items():
        if value is not None and (not math.isfinite(value) or abs(value) > MAX_ABS_FEATURE):
            raise ValueError(f"feature '{name}' must be a finite number of magnitude <= 1e12")
    return values


class CustomerIn(BaseModel):
    """A customer to score: raw `transactions` with `as_of`, or precomputed `features`."""

    model_config = _STRICT

    customer_id: CustomerId
    as_of: date | None = Field(
        default=None, description="features read transactions on or before this day"
    )
    transactions: list[Transaction] | None = Field(
        default=None, description="the customer's log up to as_of (at least one purchase)"
    )
    features: Annotated[dict[str, float | None], AfterValidator(_finite_features)] | None = Field(
        default=None,
        description="precomputed model inputs, exactly the model's input features (GET /model); "
        "null = missing",
    )
    lifecycle_stage: Stage | None = Field(
        default=None, description="required with features (it is not a model input)"
    )

    @field_validator("transactions")
    @classmethod
    def _check_history(
        cls, value: list[Transaction] | None, info: ValidationInfo
    ) -> list[Transaction] | None:
        if value is None:
            return value
        policy = get_policy()
        if not value:
            raise ValueError("the history is empty: give at least one transaction")
        if len(value) > policy.max_transactions:
            raise ValueError(
                f"at most {policy.max_transactions} transactions per customer, got {len(value)}"
            )
        as_of = info.data.get("as_of")
        if as_of is not None:
            for i, tx in enumerate(value):
                if tx.day > as_of:
                    raise ValueError(
                        f"transaction {i} on {tx.day} is after as_of {as_of}: send only the "
                        "history up to as_of"
                    )
        zero_ok = policy.zero_amount_is_purchase
        if not any(tx.amount > 0 or (zero_ok and tx.amount == 0) for tx in value):
            raise ValueError("the history has no purchase (only returns): nothing to score")
        return value

    @model_validator(mode="after")
    def _one_kind(self) -> CustomerIn:
        has_tx, has_features = self.transactions is not None, self.features is not None
        if has_tx == has_features:
            raise ValueError("give either transactions (with as_of) or features, not both")
        if has_tx and self.as_of is None:
            raise ValueError("as_of is required with transactions")
        if has_features:
            if self.lifecycle_stage is None:
                raise ValueError("lifecycle_stage is required with features")
            _check_feature_values(self.features or {})
        elif self.lifecycle_stage is not None:
            raise ValueError("lifecycle_stage is computed from transactions: leave it out")
        return self


def _check_feature_values(values: dict[str, float | None]) -> None:
    """The model's input features exactly, and the RFM invariants of the feature layer."""
    expected = get_policy().input_features
    if expected is not None:
        missing = [n for n in expected if n not in values]
        unknown = sorted(set(values) - set(expected))
        if missing:
            raise ValueError(f"features is missing {missing[:5]} ({len(missing)} in all)")
        if unknown:
            raise ValueError(f"features has unknown names {unknown[:5]}")
    required = (schema.FREQUENCY, schema.RECENCY, schema.T, schema.MONETARY_VALUE)
    for name in (*required, schema.HISTORICAL_VALUE):
        if name in values and values[name] is None:
            raise ValueError(f"feature '{name}' cannot be null")
    f, r, t, m = (values.get(n) for n in required)
    if f is None or r is None or t is None or m is None:
        return
    if f < 0 or r < 0 or t < 0 or m < 0:
        raise ValueError("frequency, recency, T and monetary_value cannot be negative")
    if r > t:
        raise ValueError("recency cannot exceed T")
    if t > 36_525:
        raise ValueError("T is at most 100 years (36525 days)")
    if f == 0 and (r != 0 or m != 0):
        raise ValueError("recency and monetary_value must be 0 when frequency is 0")


def _check_batch(customers: list[CustomerIn]) -> list[CustomerIn]:
    limit = get_policy().max_customers
    if len(customers) > limit:
        raise ValueError(f"at most {limit} customers per request, got {len(customers)}")
    seen: dict[str, int] = {}
    for i, customer in enumerate(customers):
        if customer.customer_id in seen:
            raise ValueError(
                f"duplicate customer_id '{customer.customer_id}' at positions "
                f"{seen[customer.customer_id]} and {i}"
            )
        seen[customer.customer_id] = i
    return customers


Customers = Annotated[list[CustomerIn], Field(min_length=1), AfterValidator(_check_batch)]


class PredictRequest(BaseModel):
    """POST /predict and /explain: a batch of customers."""

    model_config = _STRICT

    customers: Customers


# --- responses ---------------------------------------------------------------------------
class Driver(BaseModel):
    """One feature's contribution to the predicted value (currency over the horizon)."""

    feature: str
    label: str
    family: str
    value: float | None = Field(description="the feature's value (null = missing)")
    contribution: float


class FamilyDriver(BaseModel):
    """Summed contributions of a family of features (recency, frequency, monetary, ...)."""

    family: str
    contribution: float


class CustomerPrediction(BaseModel):
    """Value and churn of one customer over the model's horizon (currency, probabilities)."""

    customer_id: str
    as_of: date | None
    horizon_days: int
    predicted_value: float
    value_p10: float
    value_p90: float
    churn_probability: float
    value_at_risk: float = Field(description="value expected to be lost to churn")
    spend_if_active: float
    historical_value: float
    lifecycle_stage: str
    value_tier: str
    base_value: float = Field(description="average prediction; base_value + sum(drivers) sums")
    drivers: list[Driver] = Field(default_factory=list, description="top drivers by |contribution|")
    families: list[FamilyDriver] = Field(default_factory=list)
    model_version: str


class ShapVector(BaseModel):
    """base_value + sum(contributions) == the prediction on this scale."""

    scale: str
    base_value: float
    prediction: float
    contributions: dict[str, float]


class CustomerExplanation(BaseModel):
    customer_id: str
    feature_values: dict[str, float | None]
    value: ShapVector
    churn: ShapVector


class ExplainResponse(BaseModel):
    model_version: str
    customers: list[CustomerExplanation] = Field(default_factory=list)


class ModelInfo(BaseModel):
    """GET /model: what is being served."""

    name: str
    version: str
    alias: str | None
    run_id: str | None
    horizon_days: int
    training_window: dict[str, Any]
    trained_at: datetime
    feature_names: list[str]
    input_features: list[str]
    feature_config: dict[str, Any]
    tier_thresholds: dict[str, float]
    validation_metrics: dict[str, dict[str, float]]
    fingerprint: str
    training_columns: dict[str, Any] | None = Field(
        default=None,
        description="the column options the training log was read with (only those set; "
        "null when not recorded): `clv score` and `clv report` read a log the same way. "
        "Requests to this API use its own field names whatever these are",
    )
