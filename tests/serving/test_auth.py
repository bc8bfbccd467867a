"""API key: required when configured, compared in constant time; health probes stay open."""

from __future__ import annotations

import asyncio
import hmac

import httpx
import pytest
from clv.serving.auth import GuardMiddleware
from clv.serving.config import ServingSettings, SettingsError

from .conftest import API_KEY as KEY
from .payloads import raw_customers


def _call(middleware: GuardMiddleware, path: str, headers: list, method: str = "GET") -> int:
    sent: list[dict] = []

    async def receive():
        return {"type": "http.request", "body": b"{}", "more_body": False}

    async def send(message):
        sent.append(message)

    scope = {"type": "http", "path": path, "method": method, "headers": headers}
    asyncio.run(middleware(scope, receive, send))
    return sent[0]["status"]


async def _ok_app(scope, receive, send):
    await send({"type": "http.response.start", "status": 200, "headers": []})
    await send({"type": "http.response.body", "body": b""})


def test_key_is_compared_in_constant_time(monkeypatch):
    calls = []
    original = hmac.compare_digest

    def spy(a, b):
        calls.append((a, b))
        return original(a, b)

    monkeypatch.setattr("clv.serving.auth.hmac.compare_digest", spy)
    guard = GuardMiddleware(_ok_app, ServingSettings(api_key=KEY))
    assert _call(guard, "/model", [(b"authorization", f"Bearer {KEY}".encode())]) == 200
    assert _call(guard, "/model", [(b"x-api-key", KEY.encode())]) == 200
    assert _call(guard, "/model", [(b"x-api-key", b"wrong")]) == 401
    assert _call(guard, "/model", []) == 401
    assert _call(guard, "/readyz", []) == 200  # probes stay open
    assert len(calls) == 4 and all(b == KEY.encode() for _, b in calls)


def test_settings_name_the_variable():
    with pytest.raises(SettingsError, match="CLV_MAX_BATCH"):
        ServingSettings.from_env({"CLV_MAX_BATCH": "many"})
    assert ServingSettings.from_env({"CLV_API_KEY": ""}).api_key is None


def test_real_server_requires_the_key_when_configured(keyed_server):
    body = {"customers": raw_customers(2)}
    with httpx.Client(base_url=keyed_server.url, timeout=60) as c:
        assert c.get("/readyz").status_code == 200
        assert c.get("/livez").status_code == 200
        for headers in ({}, {"Authorization": "Bearer nope"}, {"X-API-Key": KEY[:-1]}):
            response = c.post("/predict", json=body, headers=headers)
            assert response.status_code == 401
            assert response.json()["detail"][0]["loc"] == ["header", "authorization"]
        assert c.get("/model").status_code == 401
        ok = c.post("/predict", json=body, headers={"Authorization": f"Bearer {KEY}"})
        assert ok.status_code == 200 and len(ok.json()) == 2
        assert c.get("/model", headers={"X-API-Key": KEY}).status_code == 200


def test_real_server_without_a_key_is_open(client):
    assert client.post("/predict", json={"customers": raw_customers(1)}).status_code == 200


def _workers(server) -> int:
    """Worker processes of a running server (BentoML starts each with a --worker-id)."""
    import psutil

    children = psutil.Process(server.process.pid).children(recursive=True)
    return sum("--worker-id" in child.cmdline() for child in children)


def test_workers_setting_starts_that_many_workers(keyed_server, server):
    assert _workers(keyed_server) == 2  # CLV_WORKERS=2
    assert _workers(server) == 1  # the default
