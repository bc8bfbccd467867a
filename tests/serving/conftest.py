"""A real server: `bentoml serve` in a subprocess on a free loopback port, over `champion_store`.

One server per session (start-up costs seconds); `start_server` starts others (e.g. with an API
key). Each is stopped by killing its process group, whatever happens in the tests.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

SERVICE = "clv.serving.service:CLVService"
READY_TIMEOUT_S = 120.0
# Small limits, so that the limit tests send small bodies.
TEST_LIMITS = {"CLV_MAX_BATCH": "50", "CLV_MAX_BODY_BYTES": "300000", "CLV_TOP_DRIVERS": "5"}


@dataclass
class Server:
    url: str
    process: subprocess.Popen
    log: Path


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def stop(process: subprocess.Popen) -> None:
    if process.poll() is None:
        try:
            os.killpg(process.pid, signal.SIGTERM)
            process.wait(timeout=15)
        except (ProcessLookupError, subprocess.TimeoutExpired):
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGKILL)
            process.wait(timeout=10)


def launch(tracking_uri: str, log: Path, **env: str) -> Server:
    """Start the service on 127.0.0.1 in its own process group (not yet ready)."""
    port = free_port()
    environ = {
        **{k: v for k, v in os.environ.items() if not k.startswith("CLV_")},
        "MLFLOW_TRACKING_URI": tracking_uri,
        "OMP_NUM_THREADS": "1",
        "BENTOML_DO_NOT_TRACK": "true",
        **TEST_LIMITS,
        **env,
    }
    out = open(log, "wb")  # noqa: SIM115 - the child keeps it; closed when the test run ends
    process = subprocess.Popen(
        [sys.executable, "-m", "bentoml", "serve", SERVICE, "--host", "127.0.0.1",
         "--port", str(port)],
        env=environ,
        stdout=out,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )  # fmt: skip
    return Server(f"http://127.0.0.1:{port}", process, log)


def wait_ready(srv: Server) -> Server:
    """Wait for /readyz; stop the server and raise with its log if it never answers."""
    deadline = time.monotonic() + READY_TIMEOUT_S
    while time.monotonic() < deadline and srv.process.poll() is None:
        try:
            if httpx.get(f"{srv.url}/readyz", timeout=2).status_code == 200:
                return srv
        except httpx.HTTPError:
            pass
        time.sleep(0.3)
    stop(srv.process)
    raise RuntimeError(f"server did not become ready:\n{srv.log.read_text()[-4000:]}")


def start_server(tracking_uri: str, log: Path, **env: str) -> Server:
    return wait_ready(launch(tracking_uri, log, **env))


API_KEY = "s3cret-key-for-tests"


@pytest.fixture(scope="session")
def _servers(champion_store: str, tmp_path_factory) -> Iterator[dict[str, Server]]:
    """Both servers (without and with an API key, with one and two workers), started side
    by side to save time."""
    root = tmp_path_factory.mktemp("servers")
    started = {
        "open": launch(champion_store, root / "open.log"),
        # two worker processes (CLV_WORKERS): the other server runs the default, one
        "keyed": launch(champion_store, root / "keyed.log", CLV_API_KEY=API_KEY, CLV_WORKERS="2"),
    }
    try:
        yield {name: wait_ready(srv) for name, srv in started.items()}
    finally:
        for srv in started.values():
            stop(srv.process)


@pytest.fixture(scope="session")
def server(_servers: dict[str, Server]) -> Server:
    return _servers["open"]


@pytest.fixture(scope="session")
def keyed_server(_servers: dict[str, Server]) -> Server:
    """A server that requires API_KEY, with two workers."""
    return _servers["keyed"]


@pytest.fixture(scope="session")
def client(server: Server) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=server.url, timeout=60) as c:
        yield c
