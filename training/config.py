"""Typed configuration of a training run: data window, evaluation, model hyperparameters.

One place for every setting of `clv train`; the CLI builds a `TrainingConfig` and passes it down.
Durations are in days.
"""

from __future__ import annotations

from datetime import date
from typing import Literal

from clv.features.config import FeatureConfig
from pydantic import BaseModel, ConfigDict, Field, field_validator

Evaluation = Literal["customer-holdout", "out-of-time"]


class BoosterParams(BaseModel):
    """LightGBM settings shared by the boosters of the composite model."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    learning_rate: float = Field(default=0.03, gt=0)
    num_leaves: int = Field(default=15, ge=2)
    max_depth: int = Field(default=6, description="bounded depth keeps TreeSHAP fast in serving")
    min_data_in_leaf: int = Field(default=40, ge=1)
    feature_fraction: float = Field(default=0.8, gt=0, le=1)
    bagging_fraction: float = Field(default=0.8, gt=0, le=1)
    bagging_freq: int = Field(default=1, ge=0)
    lambda_l2: float = Field(default=1.0, ge=0)
    max_rounds: int = Field(default=2000, ge=1)
    early_stopping_rounds: int = Field(default=100, ge=1)
    validation_fraction: float = Field(
        default=0.2, gt=0, lt=1, description="share of training customers held for early stopping"
    )
    num_threads: int = Field(
        default=1,
        ge=0,
        description=(
            "LightGBM threads (0: OpenMP's default). 1 by default: on a shared machine OpenMP "
            "threads spin-wait for busy cores (measured: 2 threads 10x slower than 1 beside other "
            "jobs on 2 cores); raise it on a dedicated machine with large panels"
        ),
    )


class ModelParams(BaseModel):
    """Hyperparameters of the composite model's parts."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    churn: BoosterParams = BoosterParams()
    # Few leaves for heavy-tailed spend: on the 2,357-customer CDNOW sample the top-decile
    # capture beat the baseline's on 4 of 6 customer splits with 7 leaves, 2 of 6 with 15 (the
    # master log's quality bar held on all 6 with both).
    spend: BoosterParams = BoosterParams(min_data_in_leaf=20, num_leaves=7)
    quantile: BoosterParams = BoosterParams(max_rounds=400, learning_rate=0.05)
    interval: tuple[float, float] = Field(
        default=(0.1, 0.9), description="lower and upper quantile of the value interval"
    )
    refit_on_all_customers: bool = Field(
        default=False,
        description=(
            "after early stopping, refit both boosters on every training customer (those held "
            "for early stopping too) with the rounds it chose"
        ),
    )
    use_baseline_features: bool = Field(
        default=True, description="feed BG/NBD + Gamma-Gamma outputs to the boosters as features"
    )
    baseline_penalizer: float = Field(default=0.0, ge=0)
    baseline_max_customers: int = Field(
        default=100_000,
        ge=100,
        description=(
            "the BG/NBD + Gamma-Gamma fit uses a seeded random sample of at most this many "
            "customers (7 population parameters; the fit on 1M took minutes)"
        ),
    )
    blend_folds: int = Field(
        default=4,
        ge=0,
        description=(
            "customer folds of the cross-validation that chooses the weight of the baseline's "
            "value in predicted_value and the scale that matches the total; 0: boosters alone"
        ),
    )
    blend_max_customers: int = Field(
        default=50_000,
        ge=100,
        description="the blend's cross-validation runs on at most this many training customers",
    )
    max_baseline_weight: float = Field(
        default=1.0, ge=0, le=1, description="largest baseline weight the blend may choose"
    )

    @field_validator("blend_folds")
    @classmethod
    def _folds_zero_or_several(cls, value: int) -> int:
        if value == 1:
            raise ValueError("blend_folds must be 0 (no blend) or at least 2")
        return value


class TrainingConfig(BaseModel):
    """Everything that defines a training run. The seed fixes every random choice."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    horizon_days: int = Field(gt=0, description="label horizon after each cutoff, days")
    cutoff: date | None = Field(
        default=None,
        description="evaluation cutoff; default: the latest whose horizon is fully observed",
    )
    evaluation: Evaluation = "customer-holdout"
    holdout_fraction: float = Field(
        default=0.3, gt=0, lt=1, description="customer-holdout: share of customers evaluated"
    )
    training_cutoffs: int = Field(
        default=4,
        ge=1,
        description="cutoffs in the training panel (evaluation cutoff and earlier, step apart)",
    )
    cutoff_step_days: int = Field(default=28, gt=0)
    min_customers: int = Field(default=50, ge=1)
    seed: int = 42
    feature_config: FeatureConfig = FeatureConfig()
    params: ModelParams = ModelParams()
