"""Typed events: every stage of a turn announces itself with these; every front end renders them."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any


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


# Keys whose values are live objects (PIL previews, audio arrays): kept for front ends in
# process, dropped from the JSON form sent over the wire or written to golden files.
_LIVE_KEYS = {"preview", "image", "audio"}


@dataclass(frozen=True)
class Event:
    """One thing that happened during a turn."""

    type: EventType
    data: dict[str, Any] = field(default_factory=dict)
    timestamp: float = field(default_factory=time.time)

    def to_json(self) -> dict[str, Any]:
        """The wire form: type, JSON-safe data, timestamp."""
        data = {k: v for k, v in self.data.items() if k not in _LIVE_KEYS}
        return {"type": str(self.type), "data": data, "timestamp": self.timestamp}
