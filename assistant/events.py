"""Typed events: every stage of a turn announces itself with these; every front end renders them.

Each event type has one payload dataclass. ``Event(type, {...})`` validates a dict into that
payload (unknown or missing keys fail at once, in the stage that emits them). ``event.data`` is
the payload as a dict for renderers in process (live objects included: previews, audio, file
paths); ``event.to_json()`` is the wire form: JSON-safe, and without server paths.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, fields
from enum import StrEnum
from pathlib import Path
from typing import Any, ClassVar

from assistant.plan import Plan
from assistant.state import ImageNode


class EventType(StrEnum):
    TURN_START = "turn.start"
    ASR_START = "asr.start"
    ASR_END = "asr.end"
    TRANSLATION = "translation"  # a typed request in another language, and its English
    PLAN = "plan"
    IMAGE_START = "image.start"
    IMAGE_PROGRESS = "image.progress"
    IMAGE_DONE = "image.done"
    REPLY = "reply"
    TTS_START = "tts.start"
    TTS_CHUNK = "tts.chunk"
    TTS_END = "tts.end"
    ERROR = "error"
    TURN_END = "turn.end"


@dataclass(frozen=True)
class Payload:
    """The data of one event type. ``LIVE`` fields stay in process (never on the wire)."""

    LIVE: ClassVar[frozenset[str]] = frozenset()

    def as_dict(self) -> dict[str, Any]:
        return {f.name: getattr(self, f.name) for f in fields(self)}

    def to_json(self) -> dict[str, Any]:
        return {k: v for k, v in self.as_dict().items() if k not in self.LIVE}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Payload:
        return cls(**data)


@dataclass(frozen=True)
class TurnStarted(Payload):
    session: str
    turn: int
    input: str  # text | audio


@dataclass(frozen=True)
class AsrStarted(Payload):
    pass


@dataclass(frozen=True)
class Heard(Payload):
    text: str  # English, what the prompt is made from
    heard: str  # as spoken
    language: str
    confidence: float
    no_speech_prob: float
    audio_seconds: float
    seconds: float


@dataclass(frozen=True)
class Translated(Payload):
    text: str
    source_text: str
    language: str
    confidence: float
    via: str
    seconds: float


@dataclass(frozen=True)
class Planned(Payload):
    plan: Plan

    def as_dict(self) -> dict[str, Any]:
        return self.plan.model_dump(mode="json")

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Planned:
        return cls(Plan.model_validate(data))


@dataclass(frozen=True)
class ImageStarted(Payload):
    operation: str
    prompt: str
    negative_prompt: str
    parent: str | None
    region: str | None


@dataclass(frozen=True)
class ImageProgress(Payload):
    LIVE: ClassVar[frozenset[str]] = frozenset({"preview"})
    step: int
    total: int
    preview: Any = None  # a PIL preview of the picture so far, or None


@dataclass(frozen=True)
class ImageDone(Payload):
    """A finished picture (``focus_only`` False) or a change of focus to a recorded one."""

    LIVE: ClassVar[frozenset[str]] = frozenset({"image", "path"})
    node: ImageNode | None
    focus_only: bool = False
    image: Any = None  # the PIL picture, for front ends in process
    seconds: float | None = None

    def as_dict(self) -> dict[str, Any]:
        if self.node is None:  # undo back past the first picture: nothing in view
            return {"node_id": None, "path": None, "focus_only": self.focus_only}
        data = self.node.to_json()
        data["node_id"] = data.pop("id")
        data["focus_only"] = self.focus_only
        if not self.focus_only:
            data.update(image=self.image, seconds=self.seconds)
        return data

    def to_json(self) -> dict[str, Any]:
        data = super().to_json()
        if self.node is not None:
            data["file"] = Path(self.node.path).name  # a name in the session, not a server path
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ImageDone:
        data = dict(data)
        focus_only = data.pop("focus_only", False)
        image, seconds = data.pop("image", None), data.pop("seconds", None)
        node_id = data.pop("node_id", None)
        if node_id is None:
            return cls(None, focus_only)
        return cls(ImageNode(id=node_id, **data), focus_only, image, seconds)


@dataclass(frozen=True)
class Replied(Payload):
    text: str
    expects_answer: bool
    language: str


@dataclass(frozen=True)
class TtsStarted(Payload):
    engine: str


@dataclass(frozen=True)
class TtsChunk(Payload):
    LIVE: ClassVar[frozenset[str]] = frozenset({"audio"})
    index: int
    seconds: float
    sample_rate: int
    audio: Any = None  # float32 samples


@dataclass(frozen=True)
class TtsEnded(Payload):
    LIVE: ClassVar[frozenset[str]] = frozenset({"path"})
    path: str | None  # the reply's WAV on this machine (in process only)
    seconds: float

    def to_json(self) -> dict[str, Any]:
        return {**super().to_json(), "file": Path(self.path).name if self.path else None}


@dataclass(frozen=True)
class ErrorRaised(Payload):
    code: str
    message: str


@dataclass(frozen=True)
class TurnEnded(Payload):
    ok: bool
    code: str | None
    seconds: float
    outcome: str = "ok"  # ok | failed | cancelled


PAYLOADS: dict[EventType, type[Payload]] = {
    EventType.TURN_START: TurnStarted,
    EventType.ASR_START: AsrStarted,
    EventType.ASR_END: Heard,
    EventType.TRANSLATION: Translated,
    EventType.PLAN: Planned,
    EventType.IMAGE_START: ImageStarted,
    EventType.IMAGE_PROGRESS: ImageProgress,
    EventType.IMAGE_DONE: ImageDone,
    EventType.REPLY: Replied,
    EventType.TTS_START: TtsStarted,
    EventType.TTS_CHUNK: TtsChunk,
    EventType.TTS_END: TtsEnded,
    EventType.ERROR: ErrorRaised,
    EventType.TURN_END: TurnEnded,
}


class Event:
    """One thing that happened during a turn: its type and its typed payload."""

    __slots__ = ("type", "payload", "timestamp")

    def __init__(
        self,
        type: EventType,  # noqa: A002 (the wire name)
        payload: Payload | dict[str, Any] | None = None,
        timestamp: float | None = None,
    ):
        kind = PAYLOADS[EventType(type)]
        if not isinstance(payload, Payload):
            payload = kind.from_dict(payload or {})
        elif not isinstance(payload, kind):
            raise TypeError(f"a {type} event carries {kind.__name__}, not {payload!r}")
        self.type = EventType(type)
        self.payload = payload
        self.timestamp = time.time() if timestamp is None else timestamp

    @property
    def data(self) -> dict[str, Any]:
        """The payload as a dict, live objects included (for renderers in this process)."""
        return self.payload.as_dict()

    def to_json(self) -> dict[str, Any]:
        """The wire form: type, JSON-safe data without server paths, timestamp."""
        return {"type": str(self.type), "data": self.payload.to_json(), "timestamp": self.timestamp}

    def __repr__(self) -> str:
        return f"Event({self.type!s}, {self.payload!r})"
