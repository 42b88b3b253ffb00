"""The one place that asks whether the Hugging Face hub may and can be reached.

Every model loader looks in its local folder or cache first; only when that fails does it ask
``hub_offline()`` (``HF_HUB_OFFLINE``, read at call time, not import time) and
``hub_reachable()`` (a 3-second TCP probe), so a machine without network fails in seconds
instead of sitting through the hub client's retries.
"""

from __future__ import annotations

import logging
import os
import re
import socket

logger = logging.getLogger(__name__)

HUB_ID = re.compile(r"^[A-Za-z0-9][\w.-]*/[\w.-]+$")  # owner/name, nothing more
HUB_PROBE_TIMEOUT_S = 3.0  # seconds to wait for the hub before calling it unreachable
HTTPS_PORT = 443
_PROXY_VARS = ("HTTPS_PROXY", "https_proxy", "ALL_PROXY", "all_proxy")
_TRUE_VALUES = ("1", "true", "yes", "on")


def hub_offline() -> bool:
    """True when the hub must not be contacted (``HF_HUB_OFFLINE`` set to a true value)."""
    return os.environ.get("HF_HUB_OFFLINE", "").strip().lower() in _TRUE_VALUES


def host_reachable(host: str, port: int = HTTPS_PORT, timeout_s: float = HUB_PROBE_TIMEOUT_S):
    """True if a TCP connection to ``host:port`` opens within ``timeout_s`` seconds."""
    try:
        with socket.create_connection((host, port), timeout=timeout_s):
            return True
    except OSError as e:
        logger.info("%s:%d is not reachable: %s", host, port, e)
        return False


def hub_reachable(timeout_s: float = HUB_PROBE_TIMEOUT_S) -> bool:
    """Quick TCP probe of the hub endpoint. Behind a proxy the probe would say nothing about
    the hub, so the hub client is trusted to try."""
    if any(os.environ.get(name) for name in _PROXY_VARS):
        return True
    from urllib.parse import urlparse

    from huggingface_hub import constants

    url = urlparse(constants.ENDPOINT)
    port = url.port or (HTTPS_PORT if url.scheme == "https" else 80)
    return host_reachable(url.hostname, port, timeout_s)


def may_download() -> bool:
    """True when a model missing from the local cache may be fetched now."""
    return not hub_offline() and hub_reachable()


def first_line(error: BaseException) -> str:
    """The first line of an error's text (at most 300 characters), for one-line messages."""
    text = str(error).strip()
    return text.splitlines()[0][:300] if text else type(error).__name__
