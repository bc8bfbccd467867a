"""`clv serve`: start the BentoML service over the registry model (see clv.serving.service)."""

from __future__ import annotations

import os
import sys

import typer

from .errors import CliUsageError, user_errors

SERVICE: str = "clv.serving.service:CLVService"


def serve(
    host: str = typer.Option(
        "127.0.0.1", "--host", help="Interface to listen on (0.0.0.0 exposes the service)."
    ),
    port: int = typer.Option(3000, "--port", min=1, max=65535, help="Port to listen on."),
    model_alias: str = typer.Option(
        "champion", "--model-alias", help="Registry alias of the model to serve."
    ),
    model_version: str = typer.Option(
        None, "--model-version", help="Serve this registered version instead of an alias."
    ),
    model_name: str = typer.Option("clv", "--model-name", help="Registered model name."),
    workers: int = typer.Option(
        None,
        "--workers",
        min=1,
        max=64,
        help="Worker processes (default CLV_WORKERS, else 1): one per core to use; each loads "
        "the model and scores with one LightGBM thread.",
    ),
    check_only: bool = typer.Option(
        False, "--check", help="Load and check the model, then exit without serving."
    ),
) -> None:
    """Serve predictions with value drivers over HTTP: POST /predict, POST /explain, GET /model.

    The model comes from the MLflow registry (MLFLOW_TRACKING_URI; MLflow's local SQLite store
    by default) and is checked before the server starts: no model, or a model whose feature
    spec does not match this code, ends with an error. Set CLV_API_KEY to require an API key
    (`Authorization: Bearer <key>`); limits: CLV_MAX_BATCH, CLV_MAX_BODY_BYTES, CLV_TOP_DRIVERS.
    """
    env = dict(os.environ)
    env["CLV_MODEL_NAME"] = model_name
    env["CLV_MODEL_ALIAS"] = model_alias
    env["CLV_MODEL_VERSION"] = model_version or ""
    if workers is not None:
        env["CLV_WORKERS"] = str(workers)
    env.setdefault("OMP_NUM_THREADS", "1")
    with user_errors():
        from clv.serving.config import ServingSettings, SettingsError
        from clv.serving.service import ServiceStartupError, load_scorer

        try:
            settings = ServingSettings.from_env(env)
        except SettingsError as exc:  # names the variable
            raise CliUsageError(str(exc)) from None
        try:
            scorer = load_scorer(settings)
        except ServiceStartupError as exc:
            raise CliUsageError(str(exc), "--model-alias") from None
    typer.echo(
        f"model {scorer.loaded.name} version {scorer.version} "
        f"({'alias ' + model_alias if not model_version else 'pinned'}) passes its contract"
    )
    if check_only:
        return
    args = [sys.executable, "-m", "bentoml", "serve", SERVICE, "--host", host, "--port", str(port)]
    workers_text = f"{settings.workers} worker{'s' if settings.workers > 1 else ''}"
    typer.echo(f"serving on http://{host}:{port} with {workers_text} (OpenAPI page at /)")
    sys.stdout.flush()
    os.execve(sys.executable, args, env)


def register(app: typer.Typer) -> None:
    app.command("serve")(serve)
