"""uvicorn, set up so that slow or idle clients cannot hold connections open.

uvicorn's h11 protocol starts no timer until a first response has gone out, so a client that
opens a connection and sends its headers a byte at a time (or never) holds it for ever: 50
such connections stayed open a minute in a probe. :class:`TimedH11Protocol` closes a
connection whose request headers are not complete ``header_timeout_s`` after it opened or
after its previous response. The rest is uvicorn's own: ``timeout_keep_alive`` for idle
kept-alive connections, a cap on the size of the headers (``h11_max_incomplete_event_size``)
and on the connections served at once (``limit_concurrency``, then 503). The body's time
limit is the gate's (``frontends/api_gate.py``).
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

import h11
from uvicorn.protocols.http.h11_impl import H11Protocol

logger = logging.getLogger(__name__)

MAX_HEADER_BYTES = 16 * 1024  # request line + headers; h11 answers 400 above
MAX_CONNECTIONS = 256  # served at once; uvicorn answers 503 above
DEFAULT_HEADER_TIMEOUT_S = 10.0


class TimedH11Protocol(H11Protocol):
    """uvicorn's h11 protocol with a time limit on each request's headers.

    The limit comes from :attr:`header_timeout_s`; :func:`server_config` sets it on a
    subclass per server.
    """

    header_timeout_s: float = DEFAULT_HEADER_TIMEOUT_S

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._header_timer: asyncio.TimerHandle | None = None
        self._arm_header_timer()

    def on_response_complete(self) -> None:
        super().on_response_complete()
        self._arm_header_timer()

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm_header_timer()
        super().connection_lost(exc)

    def _arm_header_timer(self) -> None:
        self._disarm_header_timer()
        if self.transport is not None and not self.transport.is_closing():
            self._header_timer = self.loop.call_later(self.header_timeout_s, self._headers_late)

    def _disarm_header_timer(self) -> None:
        timer = getattr(self, "_header_timer", None)
        if timer is not None:
            timer.cancel()
            self._header_timer = None

    def _headers_late(self) -> None:
        self._header_timer = None
        # IDLE: no complete request line and headers since the timer started.
        if self.conn.their_state is h11.IDLE and not self.transport.is_closing():
            logger.info(
                "Closing a connection from %s: no complete request headers in %g s",
                self.client,
                self.header_timeout_s,
            )
            self.transport.close()


def server_config(app: Any, host: str, port: int, settings: Any, **kwargs: Any) -> Any:
    """A ``uvicorn.Config`` for ``app`` with the time limits of ``settings`` (``api.*``).

    Parameters
    ----------
    app: the ASGI app.
    host, port: where to listen.
    settings: ``assistant.config.ApiConfig`` (``header_timeout_s``, ``keep_alive_s``).
    **kwargs: more ``uvicorn.Config`` arguments (``log_config``, ``lifespan``, ...).
    """
    import uvicorn

    protocol = type(
        "TimedH11Protocol", (TimedH11Protocol,), {"header_timeout_s": settings.header_timeout_s}
    )
    return uvicorn.Config(
        app,
        host=host,
        port=port,
        http=protocol,
        timeout_keep_alive=max(1, round(settings.keep_alive_s)),
        h11_max_incomplete_event_size=MAX_HEADER_BYTES,
        limit_concurrency=MAX_CONNECTIONS,
        **kwargs,
    )
