"""The composite model in MLflow: log it to a run, register it, and load it back by alias.

Both `training` (log, register, promote) and `serving` (load the champion) use these functions,
so the artifact layout is defined once. The native boosters and spec are loaded for serving,
not the pyfunc wrapper (which would cost ~1 ms a call and cannot return SHAP values).
"""

from __future__ import annotations

import logging
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Final

import mlflow
import pandas as pd
from clv.features import schema
from mlflow.models import infer_signature

from .composite import CLVModel
from .mlflow_pyfunc import ARTIFACT_KEY

logger = logging.getLogger(__name__)

REGISTERED_MODEL_NAME: Final = "clv"
CHAMPION_ALIAS: Final = "champion"
MODEL_NAME_IN_RUN: Final = "clv_model"
_PYFUNC_CODE: Final = Path(__file__).with_name("mlflow_pyfunc.py")


class ModelNotFoundError(LookupError):
    """No model version answers to the requested name and alias."""


@dataclass(frozen=True)
class LoadedModel:
    """A composite model loaded from the registry, and which version it is."""

    model: CLVModel
    name: str
    version: str
    alias: str | None
    run_id: str | None
    model_uri: str


def log_clv_model(
    model: CLVModel, input_example: pd.DataFrame, name: str = MODEL_NAME_IN_RUN
) -> mlflow.models.model.ModelInfo:
    """Log the model to the active run as a pyfunc (from code) with signature and example.

    `input_example`: a few rows of the feature frame (customer_id, lifecycle_stage and the
    model's input features).
    """
    columns = [schema.CUSTOMER_ID, schema.HISTORICAL_VALUE, schema.LIFECYCLE_STAGE]
    columns += [c for c in model.input_features if c not in columns]
    example = input_example[columns].reset_index(drop=True)
    signature = infer_signature(example, model.predict(example))
    with tempfile.TemporaryDirectory() as tmp:
        saved = model.save(Path(tmp) / ARTIFACT_KEY)
        return mlflow.pyfunc.log_model(
            name=name,
            python_model=str(_PYFUNC_CODE),
            artifacts={ARTIFACT_KEY: str(saved)},
            signature=signature,
            input_example=example,
            pip_requirements=_requirements(),
        )


def register_clv_model(model_uri: str, name: str = REGISTERED_MODEL_NAME) -> str:
    """Register a logged model; returns the new version number (as a string)."""
    version = mlflow.register_model(model_uri, name)
    return str(version.version)


def set_alias(version: str, alias: str = CHAMPION_ALIAS, name: str = REGISTERED_MODEL_NAME) -> None:
    """Point `alias` at `version` (one call: the move is atomic in the registry)."""
    mlflow.MlflowClient().set_registered_model_alias(name, alias, version)


def load_clv_model(
    alias: str | None = CHAMPION_ALIAS,
    name: str = REGISTERED_MODEL_NAME,
    version: str | None = None,
) -> LoadedModel:
    """Load the composite model by registry alias (or version) from the current tracking URI.

    Raises ModelNotFoundError when the registry has no such model, alias or version.
    """
    client = mlflow.MlflowClient()
    try:
        if version is None:
            if alias is None:
                raise ModelNotFoundError("give a model alias or version")
            mv = client.get_model_version_by_alias(name, alias)
        else:
            mv = client.get_model_version(name, version)
    except mlflow.exceptions.MlflowException as exc:
        what = f"version {version}" if version else f"alias '{alias}'"
        raise ModelNotFoundError(
            f"no registered model '{name}' with {what} in the MLflow store at "
            f"{mlflow.get_tracking_uri()}: train one with `clv train --promote` ({exc.message})"
        ) from exc
    uri = f"models:/{name}/{mv.version}"
    with tempfile.TemporaryDirectory() as tmp:
        local = mlflow.artifacts.download_artifacts(artifact_uri=uri, dst_path=tmp)
        model = CLVModel.load(Path(local) / "artifacts" / ARTIFACT_KEY)
    return LoadedModel(model, name, str(mv.version), alias, mv.run_id, uri)


def _requirements() -> list[str]:
    from importlib.metadata import version

    packages = ("lightgbm", "numpy", "pandas", "scipy", "pydantic", "duckdb", "mlflow")
    return [f"{p}=={version(p)}" for p in packages]
