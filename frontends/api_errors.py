"""The API's one error shape, and which HTTP status each stable error code gets.

Every failure leaves the server as an OpenAI-style envelope, so the official ``openai``
client raises a typed ``APIStatusError`` whose ``body`` carries our stable code::

    {"error": {"code": "input-invalid", "message": "...", "type": "invalid_request_error",
               "param": null}}

Stage errors (``VoiceError``, ``ImageError``, ``AssistantError``) keep their code; the
status comes from :data:`STATUS_BY_CODE`. Codes that only the HTTP layer produces are
listed in :data:`API_ERROR_CODES`.
"""

from __future__ import annotations

import logging
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel
from starlette.exceptions import HTTPException as StarletteHTTPException

from assistant.errors import AssistantError
from pipelines.errors import ImageError
from voice.errors import VoiceError

logger = logging.getLogger(__name__)

# Codes only the HTTP layer produces (the stage codes are in assistant.errors.ERROR_CODES).
API_ERROR_CODES: dict[str, str] = {
    "unauthorized": "the API key is missing or wrong (send `Authorization: Bearer <key>`)",
    "upload-too-large": "the request body is larger than the server's upload limit",
    "session-not-found": "no session has that id (sessions live as long as the server)",
    "node-not-found": "the session has no image with that node id",
    "file-not-found": "no generated file has that name",
    "not-found": "no route has that path",
    "method-not-allowed": "the route exists but not for that HTTP method",
    "server-busy": "the engine's queue is full (api.max_queued); retry after Retry-After seconds",
    "too-many-sessions": "the server holds api.max_sessions sessions; retry later",
    "request-timeout": "the request's body did not arrive within api.body_timeout_s",
}

STATUS_BY_CODE: dict[str, int] = {
    "input-invalid": 400,
    "image-too-large": 400,
    "budget-exceeded": 400,
    "audio-invalid": 400,
    "audio-too-long": 400,
    "asr-no-speech": 400,
    "unauthorized": 401,
    "session-not-found": 404,
    "node-not-found": 404,
    "file-not-found": 404,
    "not-found": 404,
    "method-not-allowed": 405,
    "request-timeout": 408,
    "image-cancelled": 409,
    "asr-cancelled": 409,
    "upload-too-large": 413,
    "server-busy": 429,
    "too-many-sessions": 429,
    "model-missing": 503,
    "image-oom": 503,
}
DEFAULT_STATUS = 500

# OpenAI's error "type" field, by status class.
_TYPE_BY_STATUS = {401: "authentication_error", 404: "not_found_error"}

# The openai client retries 409 and 5xx by default; none of ours gets better by retrying
# at once (a cancelled image was cancelled on purpose, a missing model stays missing).
NO_RETRY = {"x-should-retry": "false"}
# A full queue does get better: the client may retry after the Retry-After it is given.
RETRY_LATER = {"x-should-retry": "true"}


def retry_headers(status: int) -> dict[str, str]:
    """Whether the openai client should retry this status on its own."""
    return RETRY_LATER if status == 429 else NO_RETRY


class ErrorBody(BaseModel):
    """The inside of the envelope: OpenAI's fields, with our stable ``code``."""

    code: str
    message: str
    type: str
    param: str | None = None


class ErrorResponse(BaseModel):
    """What every failing request returns."""

    error: ErrorBody


class ApiError(StarletteHTTPException):
    """An error the HTTP layer raises itself; rendered as the envelope.

    It subclasses Starlette's ``HTTPException`` so that FastAPI passes it through
    unchanged even when it is raised while the request body is being read.
    """

    def __init__(
        self,
        code: str,
        message: str,
        status: int | None = None,
        param: str | None = None,
        headers: dict[str, str] | None = None,
    ):
        super().__init__(status_code=status or status_for(code), detail=message, headers=headers)
        self.code = code
        self.message = message
        self.param = param


def status_for(code: str) -> int:
    """The HTTP status for a stable error code (500 for codes not listed)."""
    return STATUS_BY_CODE.get(code, DEFAULT_STATUS)


def error_type(status: int) -> str:
    """OpenAI's ``type`` for a status: ``invalid_request_error`` for 4xx, else ``server_error``."""
    if status in _TYPE_BY_STATUS:
        return _TYPE_BY_STATUS[status]
    return "invalid_request_error" if status < 500 else "server_error"


def error_json(code: str, message: str, status: int, param: str | None = None) -> dict[str, Any]:
    """The envelope as a plain dict (also used by the ASGI gate, which has no FastAPI)."""
    body = ErrorBody(code=code, message=message, type=error_type(status), param=param)
    return {"error": body.model_dump()}


def error_response(
    code: str,
    message: str,
    status: int | None = None,
    param: str | None = None,
    headers: dict[str, str] | None = None,
) -> JSONResponse:
    status = status or status_for(code)
    return JSONResponse(
        error_json(code, message, status, param),
        status_code=status,
        headers={**retry_headers(status), **(headers or {})},
    )


def from_stage_error(error: Exception) -> ApiError:
    """Wrap a VoiceError / ImageError / AssistantError (anything with code and message)."""
    code = getattr(error, "code", "internal-error")
    message = getattr(error, "message", None) or str(error)
    api_error = ApiError(code, message)
    api_error.__cause__ = error
    return api_error


def _validation_message(error: RequestValidationError) -> tuple[str, str | None]:
    """One readable sentence from pydantic's error list, and the first offending field."""
    parts, param = [], None
    for item in error.errors():
        if item.get("type") == "json_invalid":
            detail = (item.get("ctx") or {}).get("error", "JSON decode error")
            return f"The body is not valid JSON ({detail}).", None
        loc = [str(p) for p in item.get("loc", ()) if p not in ("body", "query", "path")]
        field = ".".join(loc) or "request"
        param = param or (loc[-1] if loc else None)
        parts.append(f"`{field}`: {item.get('msg', 'invalid')}")
    return "Invalid request: " + "; ".join(parts) + ".", param


MULTIPART_HEADER_LIMIT = "4 KiB"  # python-multipart's limit on one part's header line


def _multipart_message(error: Exception) -> str | None:
    """Why a multipart body was refused, from the parser's own error behind Starlette's
    "Invalid multipart data." (a 5000-character file name overflows a part's header)."""
    cause, seen = error.__cause__ or error.__context__, 0
    while cause is not None and seen < 5:
        if type(cause).__module__.startswith("python_multipart"):
            reason = str(cause).rstrip(".")
            hint = (
                f" Each part's headers (its file name included) may be at most "
                f"{MULTIPART_HEADER_LIMIT}: use a shorter file name."
                if "header size" in reason.lower()
                else ""
            )
            return f"The multipart form could not be read: {reason}.{hint}"
        cause, seen = cause.__cause__ or cause.__context__, seen + 1
    return None


def install_error_handlers(app: FastAPI) -> None:
    """Render every failure as the envelope: ours, the stages', FastAPI's and Starlette's."""

    @app.exception_handler(ApiError)
    async def _api_error(request: Request, error: ApiError) -> JSONResponse:
        return error_response(
            error.code, error.message, error.status_code, error.param, error.headers
        )

    @app.exception_handler(StarletteHTTPException)
    async def _http_error(request: Request, error: StarletteHTTPException) -> JSONResponse:
        code = {
            404: "not-found",
            405: "method-not-allowed",
            401: "unauthorized",
            413: "upload-too-large",
        }.get(error.status_code, "input-invalid")
        if error.status_code >= 500:
            code = "internal-error"
        message = _multipart_message(error) or str(error.detail)
        return error_response(code, message, error.status_code, headers=error.headers)

    @app.exception_handler(RequestValidationError)
    async def _validation_error(request: Request, error: RequestValidationError) -> JSONResponse:
        message, param = _validation_message(error)
        return error_response("input-invalid", message, 400, param)

    async def _stage_error(request: Request, error: Exception) -> JSONResponse:
        api_error = from_stage_error(error)
        level = logging.WARNING if api_error.status_code >= 500 else logging.INFO
        logger.log(
            level,
            "%s %s -> %s: %s",
            request.method,
            request.url.path,
            api_error.code,
            api_error.message,
        )
        return error_response(api_error.code, api_error.message, api_error.status_code)

    for stage_error in (VoiceError, ImageError, AssistantError):
        app.add_exception_handler(stage_error, _stage_error)

    @app.exception_handler(Exception)
    async def _unexpected(request: Request, error: Exception) -> JSONResponse:
        # Starlette re-raises it after this response, and the server logs the traceback.
        return error_response("internal-error", f"Something went wrong: {error}", 500)


def error_responses(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """OpenAPI ``responses=`` entries documenting the envelope for these statuses."""
    described = {
        400: "Invalid input (`input-invalid`, `audio-invalid`, `image-too-large`, "
        "`budget-exceeded`, ...)",
        401: "Missing or wrong API key (`unauthorized`)",
        404: "Unknown session, image or file",
        409: "Cancelled (`image-cancelled`)",
        408: "The body did not arrive in time (`request-timeout`)",
        413: "Upload too large (`upload-too-large`)",
        429: "Queue full or too many sessions (`server-busy`, `too-many-sessions`); "
        "see Retry-After",
        500: "Unexpected failure (`internal-error`, `image-failed`, ...)",
        503: "Model not loaded or out of memory (`model-missing`, `image-oom`)",
    }
    return {
        status: {"model": ErrorResponse, "description": described[status]} for status in statuses
    }
