"""Typed settings of the service, read from environment variables (CLV_*) when it starts.

| variable | default | meaning |
|---|---|---|
| CLV_MODEL_NAME | clv | registered model name in MLflow |
| CLV_MODEL_ALIAS | champion | registry alias to serve (ignored when CLV_MODEL_VERSION is set) |
| CLV_MODEL_VERSION | (none) | pin one registered version instead of an alias |
| CLV_API_KEY | (none) | when set, every request but health probes needs this key |
| CLV_MAX_BATCH | 1000 | most customers in one request |
| CLV_MAX_TRANSACTIONS | 100000 | most transactions per customer |
| CLV_MAX_BODY_BYTES | 33554432 | largest request body (32 MiB) |
| CLV_TOP_DRIVERS | 5 | value drivers returned per customer |
| CLV_BATCH_THREADS | 2 | LightGBM threads for batches of 256 customers or more (smaller: 1) |
| CLV_WORKERS | 1 | worker processes, each with its own copy of the model (one per core) |

The MLflow tracking URI comes from MLFLOW_TRACKING_URI (MLflow's own default otherwise).
"""

from __future__ import annotations

import os
from collections.abc import Mapping

from pydantic import BaseModel, ConfigDict, Field, SecretStr, ValidationError

_ENV = {
    "model_name": "CLV_MODEL_NAME",
    "model_alias": "CLV_MODEL_ALIAS",
    "model_version": "CLV_MODEL_VERSION",
    "api_key": "CLV_API_KEY",
    "max_batch": "CLV_MAX_BATCH",
    "max_transactions": "CLV_MAX_TRANSACTIONS",
    "max_body_bytes": "CLV_MAX_BODY_BYTES",
    "top_drivers": "CLV_TOP_DRIVERS",
    "large_batch_threads": "CLV_BATCH_THREADS",
    "workers": "CLV_WORKERS",
}


class SettingsError(ValueError):
    """An environment variable of the service has a value it cannot use."""


class ServingSettings(BaseModel):
    """What the service serves and the limits it enforces on requests."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    model_name: str = "clv"
    model_alias: str = "champion"
    model_version: str | None = None
    api_key: SecretStr | None = None
    max_batch: int = Field(default=1000, gt=0, le=100_000)
    max_transactions: int = Field(default=100_000, gt=0)
    max_body_bytes: int = Field(default=32 * 1024 * 1024, gt=0)
    top_drivers: int = Field(default=5, ge=0, le=100)
    large_batch_threads: int = Field(default=2, gt=0, le=256)
    workers: int = Field(default=1, gt=0, le=64)

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> ServingSettings:
        """Settings from CLV_* variables; empty values count as unset."""
        environ = os.environ if environ is None else environ
        values = {k: environ[v] for k, v in _ENV.items() if environ.get(v, "").strip()}
        try:
            return cls.model_validate(values)
        except ValidationError as exc:
            first = exc.errors()[0]
            name = _ENV.get(str(first["loc"][0]), str(first["loc"][0]))
            raise SettingsError(f"{name}: {first['msg']}") from None
