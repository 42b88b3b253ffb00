"""An ASGI app served on a free loopback port by a background uvicorn, for tests that talk
HTTP to it the way a client does."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

START_TIMEOUT_S = 20.0
STOP_TIMEOUT_S = 10.0


@contextmanager
def served(app: Any, make_config: Callable[[int], Any] | None = None) -> Iterator[int]:
    """Serve ``app`` on 127.0.0.1 and yield its port; stopped on exit.

    ``make_config(port)`` builds the ``uvicorn.Config`` (default: quiet, no lifespan).
    """
    import uvicorn

    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    # Without it, small responses wait ~40 ms for a delayed ACK (Nagle) on a passed socket.
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    config = (
        make_config(port)
        if make_config
        else uvicorn.Config(app, log_level="warning", lifespan="off")
    )
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + START_TIMEOUT_S
    while not server.started:
        assert thread.is_alive() and time.monotonic() < deadline, "uvicorn did not start"
        time.sleep(0.02)
    try:
        yield port
    finally:
        server.should_exit = True
        thread.join(STOP_TIMEOUT_S)
        sock.close()
