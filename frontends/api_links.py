"""Links the API hands out (images, reply audio), built from a base the server chose.

Never from the request's ``Host`` header: a client (or anyone in between) could make the
server hand other clients links to a host of its choosing. The base is ``api.public_url``
when set (behind a proxy: ``https://pictures.example.org``), else the address the connection
was actually accepted on (the socket's own, ``scope["server"]``), plus uvicorn's root path.
"""

from __future__ import annotations

from typing import Any

from fastapi import Request

PUBLIC_URL_STATE = "public_url"  # app.state attribute holding api.public_url (or None)


def server_base(scope: dict[str, Any]) -> str:
    """``scheme://host:port`` of the socket that accepted this connection."""
    scheme = scope.get("scheme", "http")
    host, port = scope.get("server") or ("127.0.0.1", 80)
    if ":" in str(host):  # IPv6
        host = f"[{host}]"
    default_port = {"http": 80, "https": 443}.get(scheme)
    netloc = str(host) if port in (None, default_port) else f"{host}:{port}"
    return f"{scheme}://{netloc}{scope.get('root_path', '')}"


def public_url_for(request: Request, route: str, /, **params: Any) -> str:
    """The absolute link to ``route`` (its name) with ``params``, on this server's base."""
    base = getattr(request.app.state, PUBLIC_URL_STATE, None) or server_base(request.scope)
    return base.rstrip("/") + str(request.app.url_path_for(route, **params))
