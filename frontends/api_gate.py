"""The gate every request passes before any route: the API key, the upload-size limit, and
the time the body may take.

All checks run as plain ASGI middleware, before FastAPI reads the body, so an unauthorised
or oversized request costs no parsing. An oversized body is read to its end (up to
:data:`DRAIN_LIMIT_BYTES`) and thrown away before the 413 goes out: a client still sending
would otherwise see a broken connection instead of the error. The whole body must arrive
within ``body_timeout_s`` of the request's headers (else 408 ``request-timeout``), so a
client that stops sending holds no worker. (The headers' own time limit is the server's:
``frontends/api_server.py``.)
"""

from __future__ import annotations

import asyncio
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
DEFAULT_BODY_TIMEOUT_S = 60.0  # seconds for a whole request body to arrive


class BodyTimeout(ApiError):
    """The body did not arrive in time (raised from ``receive``, rendered as 408)."""

    def __init__(self, seconds: float):
        super().__init__(
            "request-timeout",
            f"The request body did not arrive within {seconds:g} s (api.body_timeout_s). "
            "Send the whole request at once.",
        )


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
    body_timeout_s: seconds, from the headers, for the whole body to arrive.
    """

    def __init__(
        self,
        app: ASGIApp,
        api_key: str | None,
        max_body_bytes: int,
        body_timeout_s: float = DEFAULT_BODY_TIMEOUT_S,
    ):
        self.app = app
        self.api_key = api_key
        self.max_body_bytes = max_body_bytes
        self.body_timeout_s = body_timeout_s

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = {
            k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope.get("headers", [])
        }
        receive = self._timed(receive, asyncio.get_running_loop().time() + self.body_timeout_s)
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

    def _timed(self, receive: Receive, deadline: float) -> Receive:
        """``receive`` that raises :class:`BodyTimeout` once the body is late.

        Only while the body is still coming: later calls (a handler waiting for the client
        to disconnect) wait as long as they like.
        """
        body_done = False

        async def timed() -> Message:
            nonlocal body_done
            if body_done:
                return await receive()
            left = deadline - asyncio.get_running_loop().time()
            try:
                message = await asyncio.wait_for(receive(), timeout=max(0.0, left))
            except TimeoutError:
                raise BodyTimeout(self.body_timeout_s) from None
            if message["type"] != "http.request" or not message.get("more_body", False):
                body_done = True
            return message

        return timed

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
    """Read and drop the rest of the request body (at most ``limit`` bytes, in time)."""
    seen = 0
    while seen <= limit:
        try:
            message = await receive()
        except BodyTimeout:
            return  # the error goes out anyway; the unfinished body closes the connection
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
