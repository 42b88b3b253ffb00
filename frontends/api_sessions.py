"""The conversational routes: sessions, turns (JSON or Server-Sent Events), the edit tree.

A turn runs in its own worker thread, one turn at a time per session (a per-session lock),
and hands the controller's events to the event loop as they happen. Streamed as SSE, a
client that disconnects cancels the turn (the image stops within one step, the session
keeps everything it had, and nothing is spoken or written after it); answered as JSON, the
turn runs to its end unless its client disconnects (then it is cancelled the same way).
A turn's ``language`` field sets the session's speech language.
Responses carry links, never a file's path on this machine; a reply's speech link is read
from the session's recorded exchange, so it answers after a restart too.

Sessions stay in memory while they are used; the controller's session store (SQLite) keeps
them across restarts, and an id the server has not seen yet is resumed from it. At most
``api.max_sessions`` are held (one more new session: 429 ``too-many-sessions``); one unused
for ``api.session_idle_s`` leaves memory (it stays in the store). A stored session unchanged
for ``api.session_keep_s`` and not in memory is deleted with its folder (``assistant/
expiry.py``), at start and then at most once a minute. Each turn takes a place in the turn
queue (``frontends/api_limits.py``).
"""

from __future__ import annotations

import asyncio
import json
import logging
import math
import re
import threading
import time
from collections.abc import AsyncIterator, Callable
from contextlib import aclosing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import FileResponse, StreamingResponse
from pydantic import ValidationError
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import UploadFile

from assistant.controller import Session, UserInput
from assistant.errors import AssistantError
from assistant.expiry import expire_files
from frontends.api_audio import request_language
from frontends.api_errors import ApiError, error_responses
from frontends.api_images import decode_image
from frontends.api_jobs import DISCONNECT_POLL_S
from frontends.api_limits import ApiLimits
from frontends.api_links import public_url_for
from frontends.api_schemas import (
    ExchangeView,
    SessionCreated,
    SessionView,
    TurnRequest,
    TurnResponse,
)

logger = logging.getLogger(__name__)

SSE_MEDIA_TYPE = "text/event-stream"
MAX_FORM_FILES = 2  # audio and image
MAX_FORM_FIELDS = 4
_END = object()  # marks the end of a turn's event queue
SESSION_ID = re.compile(r"^[0-9a-f]{1,64}$")  # what Controller.new_session hands out
DEFAULT_MAX_SESSIONS = 1000
DEFAULT_SESSION_IDLE_S = 3600.0
SWEEP_EVERY_S = 60.0  # seconds between two looks for expired stored sessions


@dataclass
class SessionEntry:
    """A session and the lock that keeps its turns one at a time."""

    session: Session
    lock: threading.Lock = field(default_factory=threading.Lock)
    last_used: float = field(default_factory=time.monotonic)
    # turn -> reply WAV named by a tts.end just sent, until the turn records it in its exchange
    live_speech: dict[int, str] = field(default_factory=dict)

    def speech_path(self, turn: int) -> Path | None:
        """The reply WAV of ``turn``, from the session's recorded exchanges (so a link
        handed out before a restart still answers); None when it has none."""
        name = next(
            (
                x.speech
                for x in reversed(self.session.state.history)
                if getattr(x, "turn", None) == turn and x.speech
            ),
            None,
        )
        if name is not None:
            path = Path(self.session.folder) / Path(name).name  # a name in the session's folder
        elif turn in self.live_speech:
            path = Path(self.live_speech[turn])
        else:
            return None
        return path if path.is_file() else None

    def idle_s(self, now: float) -> float:
        """Seconds since it was last used; 0 while a turn runs."""
        return 0.0 if self.lock.locked() else now - self.last_used


class ApiSessions:
    """The API's sessions by id: in memory, resumed from the controller's store on demand.

    Parameters
    ----------
    controller: makes and resumes sessions.
    max_sessions: most sessions held in memory (``api.max_sessions``).
    idle_s: seconds unused after which a session leaves memory (``api.session_idle_s``).
    keep_s: seconds unchanged after which a stored session not in memory is deleted, files
        and all (``api.session_keep_s``); None keeps them.
    """

    def __init__(
        self,
        controller: Any,
        max_sessions: int = DEFAULT_MAX_SESSIONS,
        idle_s: float = DEFAULT_SESSION_IDLE_S,
        keep_s: float | None = None,
    ):
        self.controller = controller
        self.max_sessions = max_sessions
        self.idle_s = idle_s
        self.keep_s = keep_s
        self._sessions: dict[str, SessionEntry] = {}
        self._lock = threading.Lock()
        self._last_sweep = -math.inf

    def __len__(self) -> int:
        return len(self._sessions)

    def create(self) -> SessionEntry:
        """A new session, or ``too-many-sessions`` (429) while ``max_sessions`` are in use."""
        with self._lock:
            self._expire(time.monotonic())
            self._sweep()
            if len(self._sessions) >= self.max_sessions:
                raise self._full()
            entry = SessionEntry(self.controller.new_session())
            self._sessions[entry.session.id] = entry
        logger.info("New API session %s", entry.session.id)
        return entry

    def get(self, session_id: str) -> SessionEntry:
        """The session in memory, else resumed from the controller's session store."""
        with self._lock:
            now = time.monotonic()
            entry = self._sessions.get(session_id)
            if entry is None:
                session = self._resume(session_id)
                self._expire(now)
                if len(self._sessions) >= self.max_sessions and not self._evict_oldest(now):
                    raise self._full()
                entry = SessionEntry(session)
                self._sessions[session_id] = entry
                logger.info("Resumed session %s from the session store", session_id)
            entry.last_used = now
        return entry

    def _expire(self, now: float) -> None:
        """Drop sessions unused for ``idle_s`` from memory (the store keeps them)."""
        for session_id in [k for k, e in self._sessions.items() if e.idle_s(now) > self.idle_s]:
            del self._sessions[session_id]
            logger.info("Session %s left memory after %g s unused", session_id, self.idle_s)

    def sweep(self) -> list[str]:
        """Delete expired stored sessions now (see ``_sweep``); returns their ids."""
        with self._lock:
            return self._sweep(force=True)

    def _sweep(self, force: bool = False) -> list[str]:
        """Stored sessions unchanged for ``keep_s`` and not in memory: deleted with their
        folders; ``/v1/images`` files as old too. At most once per ``SWEEP_EVERY_S``."""
        now = time.monotonic()
        if self.keep_s is None or not self.controller.keeps_sessions:
            return []
        if not force and now - self._last_sweep < SWEEP_EVERY_S:
            return []
        self._last_sweep = now
        output_dir = Path(self.controller.output_dir)
        deleted = self.controller.expire_sessions(self.keep_s, keep=set(self._sessions))
        expire_files(output_dir / "api", self.keep_s)
        return deleted

    def _evict_oldest(self, now: float) -> bool:
        """Make room for a resumed session: drop the longest-unused idle one."""
        idle = [(e.idle_s(now), k) for k, e in self._sessions.items() if not e.lock.locked()]
        if not idle:
            return False
        del self._sessions[max(idle)[1]]
        return True

    def _full(self) -> ApiError:
        now = time.monotonic()
        soonest = min((self.idle_s - e.idle_s(now) for e in self._sessions.values()), default=1)
        wait = int(min(3600, max(1, math.ceil(soonest))))
        return ApiError(
            "too-many-sessions",
            f"This server already holds {self.max_sessions} sessions (api.max_sessions). "
            f"Reuse a session you have, or try again in about {wait} s.",
            headers={"Retry-After": str(wait)},
        )

    def _resume(self, session_id: str) -> Session:
        missing = ApiError(
            "session-not-found",
            f"No session has the id {session_id!r}. Create one with POST /v1/sessions.",
        )
        if not self.controller.keeps_sessions or not SESSION_ID.match(session_id):
            raise missing
        try:
            return self.controller.resume(session_id)
        except AssistantError as e:
            raise missing from e


def wants_stream(request: Request, stream: bool) -> bool:
    """SSE when ``?stream=true`` or the client accepts ``text/event-stream``."""
    return stream or SSE_MEDIA_TYPE in request.headers.get("accept", "")


async def read_turn_input(
    request: Request, max_image_pixels: int | None = None
) -> tuple[UserInput, str | None]:
    """(a UserInput, the ``language`` field) from a JSON body ``{"text": ...}`` or a form.

    The form takes ``text`` or an ``audio`` file (one of them), and optionally an ``image``
    file to start from (the request then edits it) and a ``language`` field (the language
    the person speaks from now on, or auto; None when left out).
    """
    content_type = request.headers.get("content-type", "")
    if content_type.startswith("multipart/form-data"):
        form = await request.form(max_files=MAX_FORM_FILES, max_fields=MAX_FORM_FIELDS)
        text, audio, image = form.get("text"), form.get("audio"), form.get("image")
        language = form.get("language")
        if language is not None and not isinstance(language, str):
            raise ApiError("input-invalid", "`language` is a field, not a file.", param="language")
        if audio is not None and isinstance(text, str) and not text.strip():
            text = None  # an empty text box beside a recording, as forms send it
        if (
            isinstance(text, UploadFile)
            or (audio is not None and not isinstance(audio, UploadFile))
            or (image is not None and not isinstance(image, UploadFile))
        ):
            raise ApiError(
                "input-invalid",
                "In a multipart turn, `text` is a field and `audio` and `image` are files.",
            )
        audio_bytes = await audio.read() if audio is not None else None
        image_bytes = await image.read() if image is not None else None
    else:
        try:
            body = TurnRequest.model_validate_json(await request.body())
        except ValidationError as e:
            problems = "; ".join(
                f"{'.'.join(map(str, err['loc'])) or 'body'}: {err['msg']}" for err in e.errors()
            )
            raise ApiError(
                "input-invalid",
                'A turn is JSON like {"text": "draw a red barn"} '
                f"or a multipart form with text or audio ({problems}).",
            ) from e
        text, audio_bytes, image_bytes, language = body.text, None, None, body.language
    if (text is None) == (audio_bytes is None):
        raise ApiError("input-invalid", "Send `text` or an `audio` file (one of them).")
    picture = None
    if image_bytes is not None:
        limit = {"max_pixels": max_image_pixels} if max_image_pixels else {}
        picture = await run_in_threadpool(decode_image, image_bytes, "image", **limit)
    return UserInput(text=text, audio=audio_bytes, image=picture), language


def _node_json(node: Any, url: str) -> dict[str, Any]:
    """The node as a client sees it: its link, never its file's path on this machine."""
    fields = {k: v for k, v in node.to_json().items() if k != "path"}
    return {**fields, "url": url}


class TurnStream:
    """Runs one turn in a worker thread and yields its events, JSON-ready, as they happen.

    Parameters
    ----------
    controller: runs the turn.
    entry: the session (its lock keeps turns one at a time).
    user_input: what the person sent.
    url_for: ``url_for(route_name, **params)`` for links to images and reply audio.
    """

    def __init__(
        self,
        controller: Any,
        entry: SessionEntry,
        user_input: UserInput,
        url_for: Callable[..., str],
        language: str | None = None,
    ):
        self.controller = controller
        self.entry = entry
        self.user_input = user_input
        self.url_for = url_for
        self.language = language  # "auto" or a code: the session's speech language from now
        self.cancel = threading.Event()
        self._turn: int | None = None

    async def events(self) -> AsyncIterator[dict[str, Any]]:
        loop = asyncio.get_running_loop()
        queue: asyncio.Queue = asyncio.Queue()

        def post(item: Any) -> None:
            try:
                loop.call_soon_threadsafe(queue.put_nowait, item)
            except RuntimeError:  # the loop is closed: the server is stopping
                pass

        def work() -> None:
            try:
                # A spoken request stops being transcribed once its client has left.
                with self.entry.lock, self.controller.hearing_stops_on(self.cancel):
                    if self.language is not None:  # the session's setting, persisted
                        self.controller.update_settings(
                            self.entry.session,
                            speech_language=None if self.language == "auto" else self.language,
                        )
                    for event in self.controller.run_turn(
                        self.entry.session, self.user_input, cancel=self.cancel
                    ):
                        post(event)
            except BaseException as e:  # handed to the loop, raised there
                post(e)
            finally:
                post(_END)

        threading.Thread(target=work, name=f"turn-{self.entry.session.id}", daemon=True).start()
        finished = False
        try:
            while (item := await queue.get()) is not _END:
                if isinstance(item, BaseException):
                    raise item
                yield self._wire(item)
            finished = True
        finally:
            if not finished:
                logger.info(
                    "Turn of session %s abandoned by its client: cancelling", self.entry.session.id
                )
                self.cancel.set()

    def _wire(self, event: Any) -> dict[str, Any]:
        """The event's JSON form, with links to the image and the spoken reply."""
        wire = event.to_json()
        data = wire["data"]
        session_id = self.entry.session.id
        if wire["type"] == "turn.start":
            self._turn = data.get("turn")
        elif wire["type"] == "image.done" and data.get("node_id"):
            data["url"] = self.url_for(
                "get_session_image", session_id=session_id, node_id=data["node_id"]
            )
        elif wire["type"] == "tts.end" and self._turn is not None and (path := _path(event)):
            # The wire form names no server path; the session's record names the file (and
            # until the turn has recorded it, this in-process note does).
            self.entry.live_speech[self._turn] = path
            data["url"] = self.url_for("get_session_speech", session_id=session_id, turn=self._turn)
        return wire


def _path(event: Any) -> str | None:
    data = event.data
    return data.get("path") if isinstance(data, dict) else getattr(data, "path", None)


async def queued(queue: Any, events: AsyncIterator[Any]) -> AsyncIterator[Any]:
    """``events``, holding a place in ``queue`` (a ``JobQueue``) from the first to the last.

    The place is taken when the first event is asked for (``server-busy`` when the queue is
    full) and given back when the events end, fail, or are abandoned (the generator closes).
    """
    queue.enter()
    started = time.perf_counter()
    try:
        async with aclosing(events):
            async for item in events:
                yield item
    finally:
        queue.leave(time.perf_counter() - started)


async def _unless_client_leaves(
    request: Request, turn: TurnStream, events: AsyncIterator[Any]
) -> list[Any]:
    """The rest of the turn's events; a client that disconnects first cancels the turn (no
    more picture steps, no spoken reply, no WAV), as a streamed turn's does."""

    async def collect() -> list[Any]:
        return [wire async for wire in events]

    task = asyncio.ensure_future(collect())
    try:
        while True:
            done, _ = await asyncio.wait({task}, timeout=DISCONNECT_POLL_S)
            if done:
                return task.result()
            if await request.is_disconnected():
                logger.info("Client left its turn of session %s: cancelling", turn.entry.session.id)
                turn.cancel.set()
                task.cancel()
                await asyncio.gather(task, return_exceptions=True)
                await events.aclose()  # gives the turn queue's place back
                return []
    finally:
        if not task.done():  # cancelled ourselves (server shutdown)
            turn.cancel.set()


def sse_frame(index: int, wire: dict[str, Any]) -> bytes:
    """One Server-Sent Event: ``id``, ``event`` (the event type) and ``data`` (its JSON)."""
    data = json.dumps(wire, ensure_ascii=False, default=str)
    return f"id: {index}\nevent: {wire['type']}\ndata: {data}\n\n".encode()


def _turn_openapi() -> dict[str, Any]:
    multipart = {
        "type": "object",
        "properties": {
            "text": {"type": "string", "description": "What the person typed."},
            "audio": {"type": "string", "format": "binary", "description": "A spoken request."},
            "image": {
                "type": "string",
                "format": "binary",
                "description": "A picture to start from; the request edits it.",
            },
            "language": {
                "type": "string",
                "description": "The language the person speaks from now on (en, de, ...), "
                "or auto to detect it.",
            },
        },
    }
    return {
        "requestBody": {
            "required": True,
            "content": {
                "application/json": {"schema": TurnRequest.model_json_schema()},
                "multipart/form-data": {"schema": multipart},
            },
        }
    }


def sessions_router(
    controller: Any,
    limits: ApiLimits,
    max_sessions: int = DEFAULT_MAX_SESSIONS,
    session_idle_s: float = DEFAULT_SESSION_IDLE_S,
) -> APIRouter:
    """The /v1/sessions routes, bound to ``controller``, within ``limits``."""
    store = ApiSessions(controller, max_sessions, session_idle_s, limits.session_keep_s)
    store.sweep()  # what expired while the server was down
    router = APIRouter(tags=["sessions"])

    @router.post(
        "/v1/sessions",
        response_model=SessionCreated,
        status_code=201,
        summary="Start a conversation",
        responses=error_responses(401, 429),
    )
    async def create_session() -> SessionCreated:
        """A new session with an empty edit tree."""
        return SessionCreated(session_id=store.create().session.id)

    @router.post(
        "/v1/sessions/{session_id}/turns",
        response_model=TurnResponse,
        summary="Run one turn: text or audio in, the turn's events out (JSON or SSE)",
        openapi_extra=_turn_openapi(),
        responses={
            200: {
                "content": {SSE_MEDIA_TYPE: {"schema": {"type": "string"}}},
                "description": "`{session_id, events}`; or, with `Accept: "
                "text/event-stream` or `?stream=true`, one SSE per event (`event:` "
                "its type, `data:` its JSON), ending with `turn.end`.",
            },
            **error_responses(400, 401, 404, 413, 429),
        },
    )
    async def run_turn(session_id: str, request: Request, stream: bool = False) -> Any:
        """One turn of the conversation. A failing stage does not fail the request: the
        events end with an `error` event (stable `code`) and a reply saying what to do."""
        entry = store.get(session_id)
        user_input, language = await read_turn_input(request, limits.max_image_pixels)
        if language is not None:
            language = request_language(language) or "auto"
        turn = TurnStream(
            controller,
            entry,
            user_input,
            lambda name, **p: public_url_for(request, name, **p),
            language,
        )
        events = queued(limits.queue("turn"), turn.events())  # full: 429 before the turn
        first = await anext(events)  # started: the place is given back however it ends
        if wants_stream(request, stream):

            async def frames() -> AsyncIterator[bytes]:
                yield sse_frame(0, first)
                index = 1
                async for wire in events:
                    yield sse_frame(index, wire)
                    index += 1

            return StreamingResponse(
                frames(),
                media_type=SSE_MEDIA_TYPE,
                headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
            )
        rest = await _unless_client_leaves(request, turn, events)
        return TurnResponse(session_id=session_id, events=[first, *rest])

    @router.get(
        "/v1/sessions/{session_id}",
        response_model=SessionView,
        summary="The session's edit tree: every image node and the focus",
        responses=error_responses(401, 404),
    )
    async def get_session(session_id: str, request: Request) -> SessionView:
        """Nodes in creation order (nothing is ever deleted; undo and redo move `focus`)."""
        session = store.get(session_id).session
        state = session.state
        nodes = [
            _node_json(
                node,
                public_url_for(
                    request, "get_session_image", session_id=session_id, node_id=node.id
                ),
            )
            for node in state.nodes.values()
        ]
        return SessionView(
            session_id=session_id,
            turns=session.turns,
            focus=state.focus_id,
            can_undo=state.can_undo,
            can_redo=state.can_redo,
            nodes=nodes,
            history=[
                ExchangeView(user=x.user, reply=x.reply, node_id=x.node_id) for x in state.history
            ],
        )

    @router.get(
        "/v1/sessions/{session_id}/images/{node_id}",
        name="get_session_image",
        response_class=FileResponse,
        summary="One image of the session, as PNG",
        responses={
            200: {
                "content": {"image/png": {}},
                "description": "The PNG, with its parameters in its text.",
            },
            **error_responses(401, 404),
        },
    )
    async def get_session_image(session_id: str, node_id: str) -> FileResponse:
        """The node's PNG (it carries its prompt, seed and the rest in its text chunks)."""
        node = store.get(session_id).session.state.nodes.get(node_id)
        if node is None or not Path(node.path).is_file():
            raise ApiError("node-not-found", f"Session {session_id} has no image {node_id!r}.")
        return FileResponse(node.path, media_type="image/png")

    @router.get(
        "/v1/sessions/{session_id}/speech/{turn}",
        name="get_session_speech",
        response_class=FileResponse,
        summary="The spoken reply of one turn, as WAV",
        responses={
            200: {"content": {"audio/wav": {}}, "description": "The reply."},
            **error_responses(401, 404),
        },
    )
    async def get_session_speech(session_id: str, turn: int) -> FileResponse:
        """The reply audio the turn's `tts.end` event links to (kept across restarts)."""
        path = store.get(session_id).speech_path(turn)
        if path is None:
            raise ApiError(
                "file-not-found", f"Turn {turn} of session {session_id} has no spoken reply."
            )
        return FileResponse(path, media_type="audio/wav")

    return router
