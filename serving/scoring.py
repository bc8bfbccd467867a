"""The one scoring path shared by the service and `clv score`: features in, predictions out.

- `check_contract` refuses a model whose input features are not the ones this code computes.
- `FeatureBuilder` computes features from raw transactions with the feature layer's own code
  (`transactions_from_frame` + `build_features`, the same SQL as training), in one DuckDB
  connection reused across calls (opening one per request costs ~15 ms). For logs the request
  models validated, `trusted=True` runs that same SQL as one statement prepared once, without
  the log's checks (`features.prepared.PreparedFeatures`): ~3 ms instead of ~29 ms for one
  customer.
- `Scorer.score` predicts (PREDICTION_COLUMNS) and, on request, the top value drivers: SHAP
  contributions converted to currency (`CLVModel.explain_value`), per feature and per family.

LightGBM runs with one thread for small batches (STACK.md: OpenMP threads fight other
processes, and on a few rows cost more than they give); `large_batch_threads` threads from
`LARGE_BATCH_ROWS` rows on, where TreeSHAP dominates (1,000 customers: ~95 ms on one thread,
~57 ms on two). For batch jobs pass `num_threads`.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Final

import numpy as np
import pandas as pd
from clv.features import schema
from clv.features.build import build_features
from clv.features.catalog import FAMILIES, describe
from clv.features.config import FeatureConfig
from clv.features.prepared import PreparedFeatures
from clv.features.sql import feature_names
from clv.features.transactions import connect, transactions_from_frame
from clv.models.composite import BASELINE_FEATURES, PREDICTION_COLUMNS, CLVModel, Explanation
from clv.models.registry import LoadedModel

logger = logging.getLogger(__name__)

FEATURE_FAMILIES: Final = (*FAMILIES, "other")
# From this many rows on, `Scorer.score` uses `large_batch_threads` LightGBM threads.
LARGE_BATCH_ROWS: Final = 256


class ModelContractError(RuntimeError):
    """The model's feature spec does not match the features this code computes."""


def check_contract(model: CLVModel) -> None:
    """Refuse a model whose inputs differ from `feature_names(spec.feature_config)` + baseline."""
    spec = model.spec
    expected = feature_names(spec.feature_config)
    inputs = model.input_features
    missing = [n for n in expected if n not in inputs]
    unknown = [n for n in inputs if n not in expected]
    if missing or unknown:
        raise ModelContractError(
            "the model's feature spec does not match the features this code computes "
            f"(spec fingerprint {spec.fingerprint()[:12]}): the model lacks {missing} and "
            f"expects unknown {unknown}. Retrain it with this version of clv."
        )
    if any(n in BASELINE_FEATURES for n in spec.feature_names) and model.baseline is None:
        raise ModelContractError("the model's spec uses baseline features but it has no baseline")


def frame_columns(model: CLVModel) -> list[str]:
    """Columns a feature frame needs for `Scorer.score`: id, stage, history and inputs."""
    columns = [schema.CUSTOMER_ID, schema.LIFECYCLE_STAGE, schema.HISTORICAL_VALUE]
    return columns + [c for c in model.input_features if c not in columns]


class FeatureBuilder:
    """Features at per-customer as-of dates from an in-memory log, in one reused connection.

    Thread-safe (one build at a time): DuckDB's temporary views of a build are named.
    """

    def __init__(self, config: FeatureConfig) -> None:
        self.config = config
        self._con = connect(threads=1)
        self._prepared = PreparedFeatures(config)
        self._lock = threading.Lock()

    def build(
        self,
        transactions: Mapping[str, Sequence[Any]],
        as_of: Mapping[str, Sequence[Any]],
        trusted: bool = False,
    ) -> pd.DataFrame:
        """transactions: customer_id, timestamp, amount (+ optional columns);
        as_of: customer_id, cutoff (DataFrames or dicts of lists). Returns `build_features`
        rows, in the order of `as_of`.

        trusted: the values were validated already (the service's request models): skip the
        log's checks and run the same SQL as one prepared statement (`PreparedFeatures`).
        """
        with self._lock:
            if trusted:
                features = self._prepared.build(transactions, as_of)
            else:
                log = transactions_from_frame(
                    pd.DataFrame(transactions), config=self.config, con=self._con
                )
                features = build_features(log, pd.DataFrame(as_of), self.config)
                self._con.unregister("raw_frame")
        order = [str(c) for c in as_of[schema.CUSTOMER_ID]]
        if features[schema.CUSTOMER_ID].tolist() == order:
            return features  # in order already (e.g. one customer): skip the reindex
        indexed = features.set_index(schema.CUSTOMER_ID).reindex(pd.Index(order))
        lost = indexed[schema.CUTOFF].isna()
        if bool(lost.any()):
            raise ValueError(f"no purchase on or before as_of for {list(indexed.index[lost])[:5]}")
        return indexed.reset_index(names=schema.CUSTOMER_ID)

    def prepare(self) -> None:
        """Plan the feature statement of every log shape now rather than at first use."""
        with self._lock:
            self._prepared.prepare_every_shape()

    def close(self) -> None:
        self._prepared.close()
        self._con.close()


@dataclass
class Scored:
    """Predictions (PREDICTION_COLUMNS) and, when asked for, the top drivers of value.

    driver_index[i, j]: feature index of row i's j-th driver (by |contribution|);
    family_contributions[i, f]: summed contributions of FEATURE_FAMILIES[f].
    """

    predictions: pd.DataFrame
    explanation: Explanation | None = None
    driver_index: np.ndarray = field(default_factory=lambda: np.empty((0, 0), dtype=int))
    family_contributions: np.ndarray = field(default_factory=lambda: np.empty((0, 0)))


class Scorer:
    """A served model: contract-checked at construction, then `score` and `explain`."""

    def __init__(
        self, loaded: LoadedModel, num_threads: int = 1, large_batch_threads: int | None = None
    ) -> None:
        check_contract(loaded.model)
        self.loaded = loaded
        self.model = loaded.model
        self.num_threads = num_threads
        self.large_batch_threads = large_batch_threads or num_threads
        names = self.model.spec.feature_names
        self.infos = [describe(n) for n in names]
        family_of = {f: i for i, f in enumerate(FEATURE_FAMILIES)}
        self._family_matrix = np.zeros((len(names), len(FEATURE_FAMILIES)))
        for i, info in enumerate(self.infos):
            self._family_matrix[i, family_of.get(info.family, family_of["other"])] = 1.0
        self._builder: FeatureBuilder | None = None

    def threads_for(self, rows: int) -> int:
        """LightGBM threads for a batch of this many rows."""
        return self.large_batch_threads if rows >= LARGE_BATCH_ROWS else self.num_threads

    @property
    def version(self) -> str:
        return self.loaded.version

    @property
    def builder(self) -> FeatureBuilder:
        if self._builder is None:
            self._builder = FeatureBuilder(self.model.spec.feature_config)
        return self._builder

    def score(self, features: pd.DataFrame, top_k: int = 0) -> Scored:
        """Predict each row of a feature frame (`frame_columns`); with top_k > 0, the drivers.

        Currency over the model's horizon; drivers are SHAP contributions to predicted_value.
        """
        x = self.model.model_inputs(features)
        threads = self.threads_for(len(x))
        predictions = self.model.predict(features, num_threads=threads, inputs=x)
        if top_k <= 0:
            return Scored(predictions)
        explanation = self.model.explain_value(features, num_threads=threads, inputs=x)
        contributions = explanation.contributions
        k = min(top_k, contributions.shape[1])
        magnitude = -np.abs(contributions)
        top = np.argpartition(magnitude, k - 1, axis=1)[:, :k]
        order = np.take_along_axis(magnitude, top, axis=1).argsort(axis=1, kind="stable")
        driver_index = np.take_along_axis(top, order, axis=1)
        families = contributions @ self._family_matrix
        return Scored(predictions, explanation, driver_index, families)

    def driver_columns(self, scored: Scored) -> pd.DataFrame:
        """Flat columns driver_{j}_feature/_contribution/_value and family_{f} (currency)."""
        assert scored.explanation is not None
        names = np.asarray(scored.explanation.feature_names, dtype=object)
        rows = np.arange(len(scored.driver_index))[:, None]
        contrib = scored.explanation.contributions[rows, scored.driver_index]
        values = scored.explanation.feature_values[rows, scored.driver_index]
        out: dict[str, object] = {"base_value": scored.explanation.base_value}
        for j in range(scored.driver_index.shape[1]):
            out[f"driver_{j + 1}_feature"] = names[scored.driver_index[:, j]]
            out[f"driver_{j + 1}_contribution"] = contrib[:, j]
            out[f"driver_{j + 1}_value"] = values[:, j]
        for f, family in enumerate(FEATURE_FAMILIES):
            if self._family_matrix[:, f].any():
                out[f"family_{family}"] = scored.family_contributions[:, f]
        return pd.DataFrame(out, index=scored.predictions.index)

    def features_from_transactions(
        self,
        transactions: Mapping[str, Sequence[Any]],
        as_of: Mapping[str, Sequence[Any]],
        trusted: bool = False,
    ) -> pd.DataFrame:
        """Features at each customer's as-of date, computed as in training (the same SQL);
        `trusted`: values already validated (see `FeatureBuilder.build`)."""
        return self.builder.build(transactions, as_of, trusted=trusted)


__all__ = [
    "FEATURE_FAMILIES",
    "LARGE_BATCH_ROWS",
    "PREDICTION_COLUMNS",
    "FeatureBuilder",
    "ModelContractError",
    "Scored",
    "Scorer",
    "check_contract",
    "frame_columns",
]
