"""The composite CLV model as an MLflow pyfunc, logged as code (MLflow's "models from code").

MLflow loads this file to rebuild the model; nothing is pickled. The saved model directory
(`CLVModel.save`) is the artifact `clv_model`, so `mlflow.pyfunc.load_model(uri).predict(features)`
gives the same frame as `CLVModel.predict`.
"""

from __future__ import annotations

from typing import Any

import mlflow
import pandas as pd
from clv.models.composite import CLVModel
from mlflow.pyfunc import PythonModel, PythonModelContext

ARTIFACT_KEY = "clv_model"


class CLVPyfunc(PythonModel):
    """pyfunc wrapper: features in (one row per customer), PREDICTION_COLUMNS out."""

    def load_context(self, context: PythonModelContext) -> None:
        self.model = CLVModel.load(context.artifacts[ARTIFACT_KEY])

    def predict(
        self, context: PythonModelContext, model_input: pd.DataFrame, params: Any = None
    ) -> pd.DataFrame:
        return self.model.predict(model_input)


mlflow.models.set_model(CLVPyfunc())
