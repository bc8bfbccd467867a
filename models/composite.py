"""The composite CLV model: churn x spend-if-active, with intervals and currency explanations.

Parts (fitted by `clv.training.fit.fit_clv_model`, stored here):
- churn booster: LightGBM binary classifier of `churned` (no purchase within the horizon);
  its margin is calibrated with Platt scaling fitted on customers it did not train on.
- spend booster: LightGBM regressor with a gamma loss (log link) of future spend, trained on
  customers who did buy within the horizon: the expected spend *if active*.
- the classic BG/NBD + Gamma-Gamma model, whose outputs are extra input features.
- a blend and recalibration: predicted_value = value_scale * ((1 - w) * boosters' value
  + w * baseline value) ** value_power, with the baseline weight w, the power and the scale
  chosen by cross-validation on the training customers (`clv.training.fit`); w = 0 and scale =
  power = 1 give the boosters alone. The power (monotone: the ranking is unchanged) corrects
  the boosters' shrinkage towards the mean, so each value decile's total comes out right.

Outputs, in currency over the spec's horizon:
    predicted_value = value_scale * ((1 - w) * (1 - churn_probability) * S + w * B) ** power,
                      with S the spend booster's spend if active and B the baseline's value
    spend_if_active = predicted_value / (1 - churn_probability)  (so the blend's identity holds:
                      predicted_value = (1 - churn_probability) * spend_if_active)
    value_at_risk   = churn_probability * spend_if_active   (value expected to leave with churn)
    value_p10/p90   = quantiles of the mixture "0 with probability churn, else Gamma(mean =
                      spend_if_active, dispersion fitted on held-out customers)", widened so that
                      p10 <= predicted_value <= p90.

Explanations use LightGBM's exact TreeSHAP (`pred_contrib=True`). Value contributions are
converted to currency so that base_value + sum(contributions) == predicted_value exactly: with
R = 1 - churn probability and S = spend if active (R0, S0 at the boosters' base margins), the
change R*S - R0*S0 splits exactly into (R - R0)(S + S0)/2 + (S - S0)(R + R0)/2, and each part is
spread over the features in proportion to their contributions to that booster's margin
(the secant slope of the link, so a feature's share has the sign of its margin contribution).
With a blend, those contributions and the base are scaled by (1 - w), and the baseline's share
w * B is the contribution of the feature `bgnbd_expected_value` (that feature's value times a
constant). The recalibration v -> scale * v ** power then multiplies every contribution by its
secant slope (f(v) - f(v0)) / (v - v0), and the base becomes f(v0): the sum stays exact.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

import lightgbm as lgb
import numpy as np
import pandas as pd
from clv.features import schema
from clv.features.atomic import atomic_path
from scipy.special import expit, gammaincinv

from .baseline import BgNbdGammaGamma
from .spec import ModelSpec

FORMAT_VERSION: Final = 1
BASELINE_FEATURES: Final = (
    "bgnbd_expected_purchases",
    "bgnbd_p_alive",
    "bgnbd_p_no_purchase",
    "gg_expected_spend",
    "bgnbd_expected_value",
)
PREDICTION_COLUMNS: Final = (
    schema.CUSTOMER_ID,
    "predicted_value",
    "value_p10",
    "value_p90",
    "churn_probability",
    "spend_if_active",
    "value_at_risk",
    schema.HISTORICAL_VALUE,
    schema.LIFECYCLE_STAGE,
    "value_tier",
)
_FILES: Final = ("churn_booster.txt", "spend_booster.txt", "parts.json", "spec.json")
BASELINE_VALUE_FEATURE: Final = "bgnbd_expected_value"


@dataclass
class Explanation:
    """SHAP contributions per customer: base_value + contributions.sum(axis=1) = prediction.

    scale: "currency" (value, over the horizon) or "log-odds" (churn booster margin).
    feature_values: the model inputs the contributions refer to, shape (n, k).
    """

    feature_names: list[str]
    base_value: np.ndarray
    contributions: np.ndarray
    scale: str
    feature_values: np.ndarray


def baseline_features(
    baseline: BgNbdGammaGamma, features: pd.DataFrame, horizon_days: int
) -> dict[str, np.ndarray]:
    """The classic model's outputs (BASELINE_FEATURES) for each row of a feature frame."""
    purchases = np.asarray(baseline.expected_purchases(features, horizon_days), dtype=float)
    spend = np.asarray(baseline.expected_average_spend(features), dtype=float)
    return {
        "bgnbd_expected_purchases": purchases,
        "bgnbd_p_alive": np.asarray(baseline.probability_alive(features), dtype=float),
        "bgnbd_p_no_purchase": np.asarray(
            baseline.probability_no_purchase(features, horizon_days), dtype=float
        ),
        "gg_expected_spend": spend,
        "bgnbd_expected_value": purchases * spend,
    }


def baseline_feature_frame(
    baseline: BgNbdGammaGamma, features: pd.DataFrame, horizon_days: int
) -> pd.DataFrame:
    """`baseline_features` as a frame on the feature frame's index."""
    return pd.DataFrame(baseline_features(baseline, features, horizon_days), index=features.index)


class CLVModel:
    """A trained composite model and its spec. Build with `fit_clv_model`, or `CLVModel.load`."""

    def __init__(
        self,
        spec: ModelSpec,
        churn_booster: lgb.Booster,
        spend_booster: lgb.Booster,
        calibration: tuple[float, float],
        spend_dispersion: float,
        baseline: BgNbdGammaGamma | None,
        baseline_weight: float = 0.0,
        value_scale: float = 1.0,
        value_power: float = 1.0,
    ) -> None:
        self.spec = spec
        self.churn_booster = churn_booster
        self.spend_booster = spend_booster
        self.calibration = (float(calibration[0]), float(calibration[1]))
        self.spend_dispersion = float(spend_dispersion)
        self.baseline = baseline
        self.baseline_weight = float(baseline_weight)
        self.value_scale = float(value_scale)
        self.value_power = float(value_power)
        if not 0.0 <= self.baseline_weight <= 1.0:
            raise ValueError(f"baseline_weight must lie in [0, 1], got {baseline_weight}")
        if not (np.isfinite(self.value_scale) and self.value_scale > 0):
            raise ValueError(f"value_scale must be positive, got {value_scale}")
        if not (np.isfinite(self.value_power) and self.value_power > 0):
            raise ValueError(f"value_power must be positive, got {value_power}")
        if self.baseline_weight > 0 and BASELINE_VALUE_FEATURE not in spec.feature_names:
            raise ValueError(f"a baseline blend needs the input feature {BASELINE_VALUE_FEATURE}")
        for name, booster in (("churn", churn_booster), ("spend", spend_booster)):
            if booster.feature_name() != spec.feature_names:
                raise ValueError(
                    f"the {name} booster's features do not match the spec's feature_names"
                )

    # --- inputs ---------------------------------------------------------------------------
    @property
    def input_features(self) -> list[str]:
        """Columns the caller's feature frame must carry (the baseline ones are derived)."""
        return [n for n in self.spec.feature_names if n not in BASELINE_FEATURES]

    def model_inputs(self, features: pd.DataFrame) -> np.ndarray:
        """The (n, k) float matrix of model inputs in spec order; refuses missing columns."""
        missing = [c for c in self.input_features if c not in features.columns]
        if missing:
            raise ValueError(f"feature frame is missing model input columns: {missing}")
        # One conversion of the whole block: per-column access costs ~20 us a column.
        given = features[self.input_features].to_numpy(dtype=float, na_value=np.nan)
        names = self.spec.feature_names
        if not any(n in BASELINE_FEATURES for n in names):
            return given  # input_features are the spec's names, in its order
        if self.baseline is None:
            raise ValueError("the spec uses baseline features but the model has no baseline")
        derived = baseline_features(self.baseline, features, self.spec.horizon_days)
        x = np.empty((len(features), len(names)))
        position = {n: j for j, n in enumerate(names)}
        x[:, [position[c] for c in self.input_features]] = given
        for c in BASELINE_FEATURES:
            x[:, position[c]] = derived[c]
        return x

    # --- predictions ----------------------------------------------------------------------
    def _margins(self, x: np.ndarray, num_threads: int) -> tuple[np.ndarray, np.ndarray]:
        churn = self.churn_booster.predict(x, raw_score=True, num_threads=num_threads)
        spend = self.spend_booster.predict(x, raw_score=True, num_threads=num_threads)
        return np.asarray(churn, dtype=float), np.asarray(spend, dtype=float)

    def churn_probability_from_margin(self, margin: np.ndarray) -> np.ndarray:
        """Calibrated churn probability from the churn booster's raw margin (log-odds)."""
        a, b = self.calibration
        return np.asarray(expit(a * np.asarray(margin) + b), dtype=float)

    def blend(self, booster_value: np.ndarray, x: np.ndarray) -> np.ndarray:
        """predicted_value from the boosters' value and the model inputs (baseline value)."""
        value = (1.0 - self.baseline_weight) * np.asarray(booster_value, dtype=float)
        if self.baseline_weight > 0:
            b = x[:, self.spec.feature_names.index(BASELINE_VALUE_FEATURE)]
            value = value + self.baseline_weight * b
        return self._recalibrate(value)

    def _recalibrate(self, value: np.ndarray) -> np.ndarray:
        return self.value_scale * np.maximum(value, 0.0) ** self.value_power

    def predict(
        self, features: pd.DataFrame, num_threads: int = 0, inputs: np.ndarray | None = None
    ) -> pd.DataFrame:
        """One row per input row: PREDICTION_COLUMNS (currency over the horizon).

        inputs: `model_inputs(features)` when the caller has it already."""
        x = self.model_inputs(features) if inputs is None else inputs
        churn_margin, spend_margin = self._margins(x, num_threads)
        p = self.churn_probability_from_margin(churn_margin)
        value = self.blend((1.0 - p) * np.exp(spend_margin), x)
        spend = value / np.maximum(1.0 - p, 1e-12)
        p10, p90 = self._interval(p, spend)
        return pd.DataFrame(
            {
                schema.CUSTOMER_ID: features[schema.CUSTOMER_ID].astype(str).to_numpy(),
                "predicted_value": value,
                "value_p10": np.minimum(p10, value),
                "value_p90": np.maximum(p90, value),
                "churn_probability": p,
                "spend_if_active": spend,
                "value_at_risk": p * spend,
                schema.HISTORICAL_VALUE: features[schema.HISTORICAL_VALUE].to_numpy(
                    dtype=float, na_value=np.nan
                ),
                schema.LIFECYCLE_STAGE: features[schema.LIFECYCLE_STAGE].astype(str).to_numpy(),
                "value_tier": self.spec.tier_thresholds.tier_of(value),
            }
        )

    def _interval(self, p: np.ndarray, spend: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        low_q, high_q = (float(q) for q in self.spec.params.get("interval", (0.1, 0.9)))
        shape = 1.0 / max(self.spend_dispersion, 1e-9)

        def quantile(q: float) -> np.ndarray:
            # Mixture: 0 with probability p, else Gamma(shape, scale = spend / shape).
            active_q = np.clip((q - p) / np.maximum(1.0 - p, 1e-12), 0.0, 1.0)
            out = gammaincinv(shape, active_q) * spend / shape
            return np.where(q <= p, 0.0, out)

        return quantile(low_q), quantile(high_q)

    # --- explanations ---------------------------------------------------------------------
    def explain_churn(
        self, features: pd.DataFrame, num_threads: int = 0, inputs: np.ndarray | None = None
    ) -> Explanation:
        """TreeSHAP of the churn booster, in log-odds: base + sum == raw margin.

        inputs: `model_inputs(features)` when the caller has it already."""
        x = self.model_inputs(features) if inputs is None else inputs
        contrib = np.asarray(
            self.churn_booster.predict(x, pred_contrib=True, num_threads=num_threads), dtype=float
        )
        return Explanation(
            list(self.spec.feature_names), contrib[:, -1], contrib[:, :-1], "log-odds", x
        )

    def explain_value(
        self, features: pd.DataFrame, num_threads: int = 0, inputs: np.ndarray | None = None
    ) -> Explanation:
        """Contributions to predicted_value in currency: base + sum == predicted_value.

        inputs: `model_inputs(features)` when the caller has it already."""
        x = self.model_inputs(features) if inputs is None else inputs
        churn = np.asarray(
            self.churn_booster.predict(x, pred_contrib=True, num_threads=num_threads), dtype=float
        )
        spend = np.asarray(
            self.spend_booster.predict(x, pred_contrib=True, num_threads=num_threads), dtype=float
        )
        base_c, base_s = churn[:, -1], spend[:, -1]
        margin_c, margin_s = churn.sum(axis=1), spend.sum(axis=1)
        r, r0 = (
            1.0 - self.churn_probability_from_margin(margin_c),
            1.0 - (self.churn_probability_from_margin(base_c)),
        )
        s, s0 = np.exp(margin_s), np.exp(base_s)
        a = self.calibration[0]
        slope_r = _secant(r - r0, margin_c - base_c, -a * (1.0 - r) * r)
        slope_s = _secant(s - s0, margin_s - base_s, s)
        contributions = (
            churn[:, :-1] * (slope_r * (s + s0) / 2.0)[:, None]
            + spend[:, :-1] * (slope_s * (r + r0) / 2.0)[:, None]
        )
        contributions = contributions * (1.0 - self.baseline_weight)
        if self.baseline_weight > 0:
            column = self.spec.feature_names.index(BASELINE_VALUE_FEATURE)
            contributions[:, column] += self.baseline_weight * x[:, column]
        base = (1.0 - self.baseline_weight) * r0 * s0
        # The recalibration, spread over the contributions by its secant slope.
        mixed = base + contributions.sum(axis=1)
        new_base, new_value = self._recalibrate(base), self._recalibrate(mixed)
        k = self.value_power
        slope = _secant(
            new_value - new_base,
            mixed - base,
            self.value_scale * k * np.maximum(mixed, 1e-12) ** (k - 1.0),
        )
        contributions = contributions * slope[:, None]
        return Explanation(list(self.spec.feature_names), new_base, contributions, "currency", x)

    # --- persistence ----------------------------------------------------------------------
    def with_spec(self, **updates: Any) -> CLVModel:
        """A copy whose spec has the given fields replaced (validated)."""
        spec = ModelSpec.model_validate({**self.spec.model_dump(), **updates})
        return CLVModel(
            spec,
            self.churn_booster,
            self.spend_booster,
            self.calibration,
            self.spend_dispersion,
            self.baseline,
            self.baseline_weight,
            self.value_scale,
            self.value_power,
        )

    def save(self, directory: str | Path) -> Path:
        """Write boosters (LightGBM text), parts and spec (JSON) and a manifest of hashes."""
        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        parts = {
            "format_version": FORMAT_VERSION,
            "calibration": list(self.calibration),
            "spend_dispersion": self.spend_dispersion,
            "baseline": None if self.baseline is None else self.baseline.to_dict(),
            "baseline_weight": self.baseline_weight,
            "value_scale": self.value_scale,
            "value_power": self.value_power,
        }
        contents = {
            "churn_booster.txt": self.churn_booster.model_to_string(),
            "spend_booster.txt": self.spend_booster.model_to_string(),
            "parts.json": json.dumps(parts, indent=2, sort_keys=True),
            "spec.json": json.dumps(self.spec.model_dump(mode="json"), indent=2, sort_keys=True),
        }
        for name, text in contents.items():
            with atomic_path(directory / name) as tmp:
                tmp.write_text(text)
        manifest = {
            "fingerprint": self.spec.fingerprint(),
            "sha256": {name: _sha256(directory / name) for name in _FILES},
        }
        with atomic_path(directory / "manifest.json") as tmp:
            tmp.write_text(json.dumps(manifest, indent=2, sort_keys=True))
        return directory

    @classmethod
    def load(cls, directory: str | Path) -> CLVModel:
        """Load a saved model; refuses missing or changed files and a spec/fingerprint mismatch."""
        directory = Path(directory)
        missing = [n for n in (*_FILES, "manifest.json") if not (directory / n).is_file()]
        if missing:
            raise ValueError(f"model directory {directory} is missing {missing}")
        manifest = json.loads((directory / "manifest.json").read_text())
        for name in _FILES:
            if _sha256(directory / name) != manifest.get("sha256", {}).get(name):
                raise ValueError(f"model file {name} does not match the manifest: it was changed")
        spec = ModelSpec.model_validate_json((directory / "spec.json").read_text())
        if spec.fingerprint() != manifest.get("fingerprint"):
            raise ValueError("model spec fingerprint does not match the manifest")
        parts = json.loads((directory / "parts.json").read_text())
        if parts.get("format_version") != FORMAT_VERSION:
            raise ValueError(f"unsupported model format version {parts.get('format_version')}")
        baseline = (
            None if parts["baseline"] is None else BgNbdGammaGamma.from_dict(parts["baseline"])
        )
        return cls(
            spec,
            lgb.Booster(model_str=(directory / "churn_booster.txt").read_text()),
            lgb.Booster(model_str=(directory / "spend_booster.txt").read_text()),
            tuple(parts["calibration"]),
            parts["spend_dispersion"],
            baseline,
            # Models saved before the blend existed are the boosters alone.
            float(parts.get("baseline_weight", 0.0)),
            float(parts.get("value_scale", 1.0)),
            float(parts.get("value_power", 1.0)),
        )


def _secant(delta_y: np.ndarray, delta_x: np.ndarray, derivative: np.ndarray) -> np.ndarray:
    """delta_y / delta_x, or the derivative where delta_x is ~0 (the limit of the secant)."""
    small = np.abs(delta_x) < 1e-9
    safe = np.where(small, 1.0, delta_x)
    return np.where(small, derivative, delta_y / safe)


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def top_drivers(explanation: Explanation, row: int, k: int) -> list[int]:
    """Indices of the k features with the largest absolute contribution for one row."""
    order = np.argsort(-np.abs(explanation.contributions[row]), kind="stable")
    return [int(i) for i in order[:k]]
