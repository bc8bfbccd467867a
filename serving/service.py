"""The BentoML service: `bentoml serve clv.serving.service:CLVService` (or `clv serve`).

At start-up each worker loads the composite model from the MLflow registry by alias (or pinned
version; see `config.ServingSettings`), checks its feature contract and refuses to start when
either fails. Endpoints:

- POST /predict  value, interval, churn, value at risk, tier and top drivers per customer
                 (adaptive batching: requests that queue up are scored together; batching.py)
- POST /explain  full SHAP vectors per customer, for value (currency) and churn (log-odds)
- GET  /model    the served version, training window, horizon, features and metrics
- BentoML's own: /livez, /readyz, /metrics (Prometheus), / (OpenAPI page), /docs.json
"""

from __future__ import annotations

import atexit
import gc
import logging
import os
from typing import Any, Final

import bentoml
from fastapi import FastAPI
from starlette.responses import Response

from . import handlers
from .auth import GuardMiddleware
from .batching import MicroBatcher
from .config import ServingSettings, SettingsError
from .schemas import (
    CustomerIn,
    CustomerPrediction,
    ExplainResponse,
    ModelInfo,
    PredictRequest,
    RequestPolicy,
    set_policy,
)
from .scoring import Scorer

logger = logging.getLogger(__name__)

# Most customers in one merged /predict batch (a larger single request still runs alone).
MAX_ADAPTIVE_BATCH: Final = 4000
# Batches up to this many customers are scored in the event loop, without a thread hop (a
# few ms each; see batching.py).
INLINE_BATCH: Final = 16
# Request latency histogram buckets (seconds): the default starts at 5 ms, too coarse here.
LATENCY_BUCKETS: Final = [
    0.001, 0.0025, 0.005, 0.0075, 0.01, 0.015, 0.02, 0.03, 0.05, 0.075,
    0.1, 0.15, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
]  # fmt: skip

model_app = FastAPI(docs_url=None, redoc_url=None, openapi_url=None)


class ServiceStartupError(RuntimeError):
    """The service cannot serve: no such model, or a model whose feature spec does not match."""


def load_scorer(settings: ServingSettings) -> Scorer:
    """The registry model named by the settings, contract-checked; ServiceStartupError if not."""
    from clv.models.registry import ModelNotFoundError, load_clv_model

    from .scoring import ModelContractError

    try:
        loaded = load_clv_model(
            alias=settings.model_alias, name=settings.model_name, version=settings.model_version
        )
        return Scorer(loaded, num_threads=1, large_batch_threads=settings.large_batch_threads)
    except (ModelNotFoundError, ModelContractError) as exc:
        raise ServiceStartupError(f"cannot start the clv service: {exc}") from exc


def _workers() -> int:
    """CLV_WORKERS, read when BentoML imports this module to start the workers (a bad value
    is reported by each worker's `__init__`, with the other settings)."""
    try:
        return ServingSettings.from_env().workers
    except SettingsError:
        return 1


@bentoml.service(
    name="clv",
    workers=_workers(),
    threads=1,
    traffic={"timeout": 60},
    http={"host": "127.0.0.1", "port": 3000},  # loopback unless --host says otherwise
    metrics={"enabled": True, "namespace": "clv", "duration": {"buckets": LATENCY_BUCKETS}},
)
@bentoml.asgi_app(model_app, path="/")
class CLVService:
    """Customer lifetime value and churn, with SHAP value drivers."""

    def __init__(self) -> None:
        # LightGBM/OpenMP: one thread per worker (a busy neighbour makes threads 400x slower).
        os.environ.setdefault("OMP_NUM_THREADS", "1")
        os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")
        logging.getLogger("clv.features.transactions").setLevel(logging.WARNING)
        self.settings = ServingSettings.from_env()
        try:
            self.scorer = load_scorer(self.settings)
        except ServiceStartupError as exc:
            logger.error("%s", exc)
            raise
        set_policy(
            RequestPolicy(
                max_customers=self.settings.max_batch,
                max_transactions=self.settings.max_transactions,
                input_features=tuple(self.scorer.model.input_features),
                zero_amount_is_purchase=not self.scorer.model.spec.feature_config.drop_zero_amounts,
                timezone=self.scorer.model.spec.feature_config.timezone,
            )
        )
        top_k = self.settings.top_drivers
        self.batcher: MicroBatcher[CustomerIn, dict[str, Any]] = MicroBatcher(
            lambda items: handlers.prediction_rows(self.scorer, items, top_k),
            MAX_ADAPTIVE_BATCH,
            inline_max_items=INLINE_BATCH,
        )
        self._warm_up()
        # The ~400k objects of the loaded stack (model, MLflow, BentoML, pandas) made each full
        # collection of Python's cyclic GC a ~215 ms pause in the middle of requests (measured:
        # it set the p99 of single-customer requests). Freeze them out of the GC's scans; what
        # requests allocate later is collected as usual. (Unfrozen at exit, or DuckDB's bindings
        # report the frozen objects as leaks.)
        gc.collect()
        gc.freeze()
        atexit.register(gc.unfreeze)
        logger.info(
            "serving model %s version %s (alias %s)",
            self.scorer.loaded.name,
            self.scorer.version,
            self.scorer.loaded.alias,
        )

    def _warm_up(self) -> None:
        """Score a made-up customer and prepare the feature statement of every log shape, so
        that the first requests pay neither for DuckDB's start nor for planning their shape."""
        body = (
            '{"customers": [{"customer_id": "warm-up", "as_of": "2000-01-31", '
            '"transactions": [{"timestamp": "2000-01-01", "amount": 1.0}]}]}'
        )
        handlers.predict(self.scorer, PredictRequest.model_validate_json(body).customers, 1)
        self.scorer.builder.prepare()

    @bentoml.api(route="/predict", input_spec=PredictRequest)
    async def predict(self, customers: list[CustomerIn]) -> list[CustomerPrediction]:
        """Predicted value over the horizon (P10/P90), churn probability, value at risk,
        historical value, lifecycle stage, value tier and the top value drivers (currency)
        for each customer: raw transactions with as_of, or precomputed features."""
        rows = await self.batcher.submit(customers)
        # Serialised in one call (pydantic-core); the schema is CustomerPrediction's, tested.
        body = handlers.predictions_json(rows)
        return Response(body, media_type="application/json")  # type: ignore[return-value]

    @bentoml.api(route="/explain", input_spec=PredictRequest)
    def explain(self, customers: list[CustomerIn]) -> ExplainResponse:
        """Full SHAP vectors and base values per customer: value (currency, sums to
        predicted_value) and churn (log-odds of the churn booster, sums to its margin)."""
        return handlers.explain(self.scorer, customers)

    @model_app.get("/model", response_model=ModelInfo)
    def model(self) -> ModelInfo:
        """The served model: version, training window, horizon, features, validation metrics."""
        return handlers.model_info(self.scorer)


CLVService.add_asgi_middleware(GuardMiddleware)  # type: ignore[attr-defined]
