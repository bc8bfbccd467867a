"""ASGI middleware in front of the service: API key, body size and media type.

- API key: when configured (CLV_API_KEY), every request but the health probes must carry it as
  `Authorization: Bearer <key>` or `X-API-Key: <key>`; compared with `hmac.compare_digest`
  (constant time). Missing or wrong: 401.
- Body size: bodies over CLV_MAX_BODY_BYTES are refused with 413 before the service parses them
  (by Content-Length when given, else while reading).
- Media type: POST bodies must be JSON (415 otherwise); BentoML would otherwise pick another
  deserialiser from the header.

Every refusal is a JSON body of the same shape as validation errors:
`{"error": ..., "detail": [{"loc": [...], "msg": ..., "type": ...}]}`.
"""

from __future__ import annotations

import hmac
import json
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any, Final

from .config import ServingSettings

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

OPEN_PATHS: Final = frozenset({"/livez", "/readyz", "/healthz", "/metrics"})
_JSON_TYPES: Final = ("application/json", "")


async def send_error(
    send: Send, status: int, message: str, loc: list[str], kind: str, headers: list | None = None
) -> None:
    body = json.dumps(
        {"error": message, "detail": [{"loc": loc, "msg": message, "type": kind}]}
    ).encode()
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(body)).encode()),
                *(headers or []),
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})


def _header(scope: Scope, name: bytes) -> bytes | None:
    for key, value in scope.get("headers", []):
        if key.lower() == name:
            return bytes(value)
    return None


def presented_key(scope: Scope) -> bytes | None:
    """The key a request carries: `Authorization: Bearer <key>` or `X-API-Key: <key>`."""
    auth = _header(scope, b"authorization")
    if auth is not None and auth[:7].lower() == b"bearer ":
        return auth[7:].strip()
    return _header(scope, b"x-api-key")


class GuardMiddleware:
    """API key, body-size and media-type checks; settings from the environment by default."""

    def __init__(self, app: ASGIApp, settings: ServingSettings | None = None) -> None:
        self.app = app
        settings = settings or ServingSettings.from_env()
        key = settings.api_key.get_secret_value() if settings.api_key else ""
        self.api_key = key.encode() if key else None
        self.max_body = settings.max_body_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        path = scope.get("path", "")
        if self.api_key is not None and path not in OPEN_PATHS:
            given = presented_key(scope) or b""
            if not hmac.compare_digest(given, self.api_key):
                await send_error(
                    send,
                    401,
                    "missing or wrong API key: send 'Authorization: Bearer <key>'",
                    ["header", "authorization"],
                    "unauthorized",
                    [(b"www-authenticate", b"Bearer")],
                )
                return
        if scope.get("method") not in ("POST", "PUT", "PATCH"):
            await self.app(scope, receive, send)
            return
        media = (_header(scope, b"content-type") or b"").decode("latin-1")
        if media.split(";")[0].strip().lower() not in _JSON_TYPES:
            await send_error(
                send,
                415,
                f"unsupported media type '{media}': send application/json",
                ["header", "content-type"],
                "unsupported_media_type",
            )
            return
        await self._with_bounded_body(scope, receive, send)

    async def _with_bounded_body(self, scope: Scope, receive: Receive, send: Send) -> None:
        too_large = f"request body is larger than the limit of {self.max_body:,} bytes"
        declared = _header(scope, b"content-length")
        if declared is not None and (not declared.isdigit() or int(declared) > self.max_body):
            await send_error(send, 413, too_large, ["body"], "body_too_large")
            return
        chunks, size = [], 0
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                return
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > self.max_body:
                await send_error(send, 413, too_large, ["body"], "body_too_large")
                return
            chunks.append(chunk)
            if not message.get("more_body", False):
                break
        body = b"".join(chunks)
        sent = False

        async def replay() -> Message:
            nonlocal sent
            if not sent:
                sent = True
                return {"type": "http.request", "body": body, "more_body": False}
            return await receive()

        await self.app(scope, replay, send)
