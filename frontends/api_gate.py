"""The gate every request passes before any route: the API key, then the upload-size limit.

Both checks run as plain ASGI middleware, before FastAPI reads the body, so an unauthorised
or oversized request costs no parsing. An oversized body is read to its end (up to
:data:`DRAIN_LIMIT_BYTES`) and thrown away before the 413 goes out: a client still sending
would otherwise see a broken connection instead of the error.
"""

from __future__ import annotations

import hmac
import json
import logging
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

from frontends.api_errors import NO_RETRY, ApiError, error_json

logger = logging.getLogger(__name__)

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

PROTECTED_PREFIX = "/v1/"  # every route under it needs the key (when one is set)
DRAIN_LIMIT_BYTES = 256 * 2**20  # read and drop at most this much of an oversized body
MIB = 2**20  # bytes


def _too_large(max_bytes: int) -> ApiError:
    return ApiError(
        "upload-too-large",
        f"The request body is larger than this server's limit of {max_bytes / MIB:g} MiB. "
        "Send a smaller file (a short WAV, a PNG at the size you want).",
    )


class ApiGate:
    """ASGI middleware: checks ``Authorization: Bearer <key>`` and caps the request body.

    Parameters
    ----------
    app: the application behind the gate.
    api_key: the key every ``/v1/`` request must carry, or None for no check.
    max_body_bytes: the largest request body accepted, in bytes.
    """

    def __init__(self, app: ASGIApp, api_key: str | None, max_body_bytes: int):
        self.app = app
        self.api_key = api_key
        self.max_body_bytes = max_body_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = {
            k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope.get("headers", [])
        }
        # 1. The API key, for /v1 routes only (/health and the docs stay open).
        if self.api_key and scope["path"].startswith(PROTECTED_PREFIX):
            if not self._authorised(headers.get("authorization", "")):
                await _drain(receive, DRAIN_LIMIT_BYTES)
                await _send_error(
                    send,
                    ApiError(
                        "unauthorized",
                        "Missing or wrong API key: send `Authorization: Bearer <key>` with the "
                        "key the server was started with (ASSISTANT_API_KEY).",
                    ),
                    {"www-authenticate": "Bearer"},
                )
                return
        # 2. The declared size, before reading anything.
        declared = headers.get("content-length", "")
        if declared.isdigit() and int(declared) > self.max_body_bytes:
            logger.info(
                "Refused %s %s: %s bytes declared", scope["method"], scope["path"], declared
            )
            await _drain(receive, DRAIN_LIMIT_BYTES)
            await _send_error(send, _too_large(self.max_body_bytes))
            return
        # 3. The actual size, for bodies that declare none (chunked) or lie.
        await self.app(scope, self._counting(receive), send)

    def _authorised(self, header: str) -> bool:
        scheme, _, token = header.partition(" ")
        return scheme.lower() == "bearer" and hmac.compare_digest(
            token.strip().encode(), self.api_key.encode()
        )

    def _counting(self, receive: Receive) -> Receive:
        received = 0

        async def counted() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.max_body_bytes:
                    if message.get("more_body", False):
                        await _drain(receive, DRAIN_LIMIT_BYTES)
                    # An HTTPException: FastAPI lets it through unchanged while reading a body.
                    raise _too_large(self.max_body_bytes)
            return message

        return counted


async def _drain(receive: Receive, limit: int) -> None:
    """Read and drop the rest of the request body (at most ``limit`` bytes)."""
    seen = 0
    while seen <= limit:
        message = await receive()
        if message["type"] != "http.request":
            return
        seen += len(message.get("body", b""))
        if not message.get("more_body", False):
            return


async def _send_error(send: Send, error: ApiError, headers: dict[str, str] | None = None) -> None:
    body = json.dumps(error_json(error.code, error.message, error.status_code)).encode()
    all_headers = {
        "content-type": "application/json",
        "content-length": str(len(body)),
        **NO_RETRY,
        **(headers or {}),
    }
    await send(
        {
            "type": "http.response.start",
            "status": error.status_code,
            "headers": [(k.encode(), v.encode()) for k, v in all_headers.items()],
        }
    )
    await send({"type": "http.response.body", "body": body})
