"""The HTTP API: OpenAI-shaped image and audio routes, plus the conversational turn.

    .venv/bin/python run_assistant.py serve            # http://127.0.0.1:8000, docs at /docs

Routes (every /v1 route needs ``Authorization: Bearer <key>`` when ASSISTANT_API_KEY is set):

- ``POST /v1/images/generations``, ``POST /v1/images/edits``, ``GET /v1/files/{name}``
  (``frontends/api_images.py``): the official ``openai`` client's ``images.generate`` /
  ``images.edit`` work unchanged against ``base_url=http://host:8000/v1``.
- ``POST /v1/audio/transcriptions``, ``POST /v1/audio/speech`` (``frontends/api_audio.py``).
- ``POST /v1/sessions``, ``POST /v1/sessions/{id}/turns`` (JSON or Server-Sent Events),
  ``GET /v1/sessions/{id}``, ``GET /v1/sessions/{id}/images/{node}``,
  ``GET /v1/sessions/{id}/speech/{turn}`` (``frontends/api_sessions.py``).
- ``GET /health`` (open): models loaded, placeholder flag.
- ``GET /docs`` (Swagger UI) and ``GET /redoc``: their scripts and styles are served by this
  server from the pinned ``fastapi-offline`` package (``/docs-assets/``), never from a CDN,
  so the pages work with no network.

Every error is ``{"error": {"code", "message", "type", "param"}}`` with a stable code
(``frontends/api_errors.py``). Importing this module loads no model: ``create_app`` takes a
ready controller; ``serve`` builds one from a config and runs uvicorn.

What one client can cost is bounded (``api.*`` in config.yaml): the body's size and time
(``frontends/api_gate.py``), the headers' time and idle connections
(``frontends/api_server.py``), an image request's megapixel-steps and each engine's queue
(``frontends/api_limits.py``), uploaded pictures' pixels (``pipelines/image_input.py``), the
sessions held. Links in responses start with ``api.public_url`` (never the Host header).
"""

from __future__ import annotations

import ipaddress
import logging
import os
from pathlib import Path
from typing import Any

from fastapi import FastAPI, Request
from fastapi.openapi.docs import (
    get_redoc_html,
    get_swagger_ui_html,
    get_swagger_ui_oauth2_redirect_html,
)
from fastapi.openapi.utils import get_openapi
from fastapi.responses import HTMLResponse
from fastapi.staticfiles import StaticFiles

from frontends.api_audio import audio_router
from frontends.api_errors import ErrorResponse, install_error_handlers
from frontends.api_gate import MIB, PROTECTED_PREFIX, ApiGate
from frontends.api_images import images_router
from frontends.api_limits import build_limits
from frontends.api_links import PUBLIC_URL_STATE
from frontends.api_schemas import HealthResponse
from frontends.api_sessions import sessions_router

logger = logging.getLogger(__name__)

API_KEY_ENV = "ASSISTANT_API_KEY"
DEFAULT_PORT = 8000
DEFAULT_MAX_UPLOAD_MB = 25.0  # MiB per request body
TITLE = "Voice & chat image assistant API"
VERSION = "1"
DOCS_ASSETS = "/docs-assets"  # where Swagger UI's and ReDoc's scripts and styles are served


def docs_assets_dir() -> Path:
    """The folder of Swagger UI's and ReDoc's files in the pinned ``fastapi-offline``."""
    import fastapi_offline

    return Path(fastapi_offline.__file__).parent / "static"


def create_app(
    controller: Any,
    api_key: str | None = None,
    max_upload_mb: float = DEFAULT_MAX_UPLOAD_MB,
    settings: Any = None,
) -> FastAPI:
    """Build the FastAPI app around a ready controller.

    Parameters
    ----------
    controller: ``assistant.controller.Controller`` from ``assistant.build.build_controller``.
    api_key: when set, every /v1 route needs ``Authorization: Bearer <api_key>``.
    max_upload_mb: the largest request body accepted, in MiB (larger: 413 upload-too-large).
    settings: ``assistant.config.ApiConfig`` (the ``api`` section); None: its defaults.

    Returns
    -------
    The app; serve it with uvicorn (``serve`` does).
    """
    from assistant.config import ApiConfig

    if max_upload_mb <= 0:
        raise ValueError(f"max_upload_mb must be positive, got {max_upload_mb}")
    settings = settings or ApiConfig()
    app = FastAPI(
        title=TITLE,
        version=VERSION,
        description=__doc__.split("\n\n", 1)[1],
        docs_url=None,  # FastAPI's own pages load Swagger UI and ReDoc from a CDN
        redoc_url=None,
    )
    _install_docs(app)
    setattr(app.state, PUBLIC_URL_STATE, settings.public_url)
    install_error_handlers(app)
    app.add_middleware(
        ApiGate,
        api_key=api_key or None,
        max_body_bytes=int(max_upload_mb * MIB),
        body_timeout_s=settings.body_timeout_s,
    )
    limits = build_limits(settings, controller.describe().device)
    app.state.limits = limits
    for router in (
        images_router(controller, limits),
        audio_router(controller, limits),
        sessions_router(controller, limits, settings.max_sessions, settings.session_idle_s),
    ):
        app.include_router(router)

    @app.get(
        "/health",
        response_model=HealthResponse,
        tags=["health"],
        summary="Is the server up, and what did it load (no API key needed)",
    )
    async def health() -> HealthResponse:
        """Models per slot (None when off) and whether pictures are placeholders."""
        info = controller.describe()
        return HealthResponse(
            models={
                "image": info.image_model,
                "rewriter": info.rewriter,
                "asr": info.asr,
                "tts": info.tts,
            },
            placeholder=info.placeholder,
            device=info.device,
            auth=bool(api_key),
            max_upload_mb=max_upload_mb,
        )

    app.openapi = lambda: _openapi(app, secured=bool(api_key))
    return app


def _install_docs(app: FastAPI) -> None:
    """/docs and /redoc with every script, style and icon served by this server."""
    app.mount(DOCS_ASSETS, StaticFiles(directory=docs_assets_dir()), name="docs-assets")
    redirect_url = app.swagger_ui_oauth2_redirect_url or "/docs/oauth2-redirect"

    @app.get("/docs", include_in_schema=False)
    async def swagger_ui(request: Request) -> HTMLResponse:
        root = request.scope.get("root_path", "")
        return get_swagger_ui_html(
            openapi_url=f"{root}{app.openapi_url}",
            title=f"{app.title} - Swagger UI",
            oauth2_redirect_url=f"{root}{redirect_url}",
            swagger_js_url=f"{root}{DOCS_ASSETS}/swagger-ui-bundle.js",
            swagger_css_url=f"{root}{DOCS_ASSETS}/swagger-ui.css",
            swagger_favicon_url=f"{root}{DOCS_ASSETS}/favicon.png",
        )

    @app.get(redirect_url, include_in_schema=False)
    async def swagger_ui_redirect() -> HTMLResponse:
        return get_swagger_ui_oauth2_redirect_html()

    @app.get("/redoc", include_in_schema=False)
    async def redoc(request: Request) -> HTMLResponse:
        root = request.scope.get("root_path", "")
        return get_redoc_html(
            openapi_url=f"{root}{app.openapi_url}",
            title=f"{app.title} - ReDoc",
            redoc_js_url=f"{root}{DOCS_ASSETS}/redoc.standalone.js",
            redoc_favicon_url=f"{root}{DOCS_ASSETS}/favicon.png",
            with_google_fonts=False,
        )


def _openapi(app: FastAPI, secured: bool) -> dict[str, Any]:
    """FastAPI's description, told the truth: validation errors are 400 in our envelope
    (not 422), and /v1 routes need the bearer key when one is set."""
    if app.openapi_schema:
        return app.openapi_schema
    schema = get_openapi(
        title=app.title, version=app.version, description=app.description, routes=app.routes
    )
    error_ref = {"$ref": "#/components/schemas/ErrorResponse"}
    components = schema.setdefault("components", {})
    components.setdefault("schemas", {})["ErrorResponse"] = ErrorResponse.model_json_schema(
        ref_template="#/components/schemas/{model}"
    )
    for defs_name, defs in components["schemas"]["ErrorResponse"].pop("$defs", {}).items():
        components["schemas"].setdefault(defs_name, defs)
    for path, operations in schema.get("paths", {}).items():
        for operation in operations.values():
            responses = operation.setdefault("responses", {})
            if responses.pop("422", None) is not None:
                responses.setdefault(
                    "400",
                    {
                        "description": "Invalid input (`input-invalid`)",
                        "content": {"application/json": {"schema": error_ref}},
                    },
                )
            if secured and path.startswith(PROTECTED_PREFIX):
                operation["security"] = [{"bearer": []}]
    for unused in ("HTTPValidationError", "ValidationError"):
        components["schemas"].pop(unused, None)
    if secured:
        components["securitySchemes"] = {"bearer": {"type": "http", "scheme": "bearer"}}
    app.openapi_schema = schema
    return schema


def _is_loopback(host: str) -> bool:
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return host == "localhost"


def serve(
    config: Any,
    port: int = DEFAULT_PORT,
    host: str | None = None,
    max_upload_mb: float = DEFAULT_MAX_UPLOAD_MB,
) -> int:
    """Load every model once, then serve the API until interrupted.

    Parameters
    ----------
    config: the loaded ``assistant.config.Config``.
    port: TCP port (default 8000).
    host: interface to listen on (default: config.ui.host, 127.0.0.1 out of the box).
    max_upload_mb: the largest request body accepted, in MiB.

    Returns
    -------
    The process exit status (0 after a clean shutdown).
    """
    from assistant.build import build_controller
    from frontends.api_server import server_config

    host = host or config.ui.host
    api_key = os.environ.get(API_KEY_ENV) or None
    if api_key is None and not _is_loopback(host):
        logger.warning(
            "Listening on %s without an API key: anyone who can reach this port "
            "can use it. Set %s to require one.",
            host,
            API_KEY_ENV,
        )
    controller, report = build_controller(config, with_asr=True, with_tts=True)
    for notice in report.notices:
        logger.warning(notice)
    if config.api.public_url is None and not _is_loopback(host):
        logger.warning(
            "Links in responses will name the address each client connected to; set "
            "api.public_url if clients reach this server through another name or a proxy."
        )
    app = create_app(controller, api_key=api_key, max_upload_mb=max_upload_mb, settings=config.api)
    logger.info(
        "API on http://%s:%d (docs at /docs, key %s)",
        host,
        port,
        "required" if api_key else "not required",
    )
    import uvicorn

    server = uvicorn.Server(
        server_config(app, host, port, config.api, log_config=None, timeout_graceful_shutdown=10)
    )
    try:
        server.run()
    except SystemExit as e:  # uvicorn exits when it cannot bind the port
        return int(e.code or 1)
    return 0
