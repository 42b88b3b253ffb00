"""Sessions: one conversation, its validated settings, and the store interface that keeps them.

A front end never edits a session by hand: it asks the controller (``update_settings``,
``select``, ``resume``), which validates, emits events and persists through a ``SessionRepository``.
SQLite (``assistant.store.SessionStore``) is the implementation; PostgreSQL could be another.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from pydantic import BaseModel, ConfigDict, Field

from assistant.i18n import SOURCE_LANGUAGE
from assistant.state import DialogueState, ImageNode


class SessionSettings(BaseModel):
    """What a settings panel may choose for one session; None means "the configured default"."""

    model_config = ConfigDict(extra="forbid", validate_assignment=True)

    width: int | None = Field(None, ge=64, le=2048, multiple_of=8)
    height: int | None = Field(None, ge=64, le=2048, multiple_of=8)
    steps: int | None = Field(None, ge=1, le=150)
    guidance: float | None = Field(None, ge=0.0, le=30.0)
    edit_strength: float | None = Field(None, gt=0.0, le=1.0)
    seed: int | None = Field(None, ge=-1, lt=2**32, description="-1 draws a random seed")
    style: str | None = None  # a style preset for new pictures
    raw: bool = False  # use the person's words as the prompt
    image_model: str | None = None  # one of the configured ui.image_models
    voice: str | None = None  # one of the configured ui.voices
    reply_language: str | None = None  # a language with a reply catalog; None follows the person
    speech_language: str | None = None  # what the person speaks (ISO code); None detects it

    def image_overrides(self) -> dict[str, Any]:
        """The chosen generation settings, by ``ImageDefaults`` field name."""
        keys = ("width", "height", "steps", "guidance", "edit_strength", "seed")
        return {k: getattr(self, k) for k in keys if getattr(self, k) is not None}


@dataclass(frozen=True)
class SessionSummary:
    """One line of a list of sessions."""

    id: str
    title: str  # the first request of the conversation ("" before the first turn)
    updated: float  # seconds since the epoch
    pictures: int


@dataclass
class Session:
    """One conversation: its state, its settings, and where its files go."""

    folder: Path
    state: DialogueState = field(default_factory=DialogueState)
    id: str = field(default_factory=lambda: uuid.uuid4().hex[:12])
    turns: int = 0
    told_placeholder: bool = False
    settings: SessionSettings = field(default_factory=SessionSettings)
    language: str = SOURCE_LANGUAGE  # what the person last spoke or typed: replies follow it

    def __setattr__(self, name: str, value: Any) -> None:
        # A plain dict (old callers, stored JSON) is validated into SessionSettings.
        if name == "settings" and not isinstance(value, SessionSettings):
            value = SessionSettings.model_validate(value or {})
        super().__setattr__(name, value)

    def extra(self) -> dict[str, Any]:
        """What the store keeps beside the state, as JSON-safe data."""
        return {
            "turns": self.turns,
            "told_placeholder": self.told_placeholder,
            "settings": self.settings.model_dump(exclude_defaults=True),
            "language": self.language,
        }

    @classmethod
    def from_stored(
        cls, session_id: str, folder: Path, state: DialogueState, extra: dict[str, Any]
    ) -> Session:
        """Rebuild a session from what ``extra`` saved; settings that no longer validate are
        dropped one by one rather than losing the session."""
        settings = SessionSettings()
        for key, value in (extra.get("settings") or {}).items():
            try:
                setattr(settings, key, value)
            except (ValueError, AttributeError):
                continue
        return cls(
            folder=folder,
            state=state,
            id=session_id,
            turns=int(extra.get("turns", 0)),
            told_placeholder=bool(extra.get("told_placeholder", False)),
            settings=settings,
            language=extra.get("language", SOURCE_LANGUAGE),
        )


class SessionRepository(Protocol):
    """Where sessions are kept. ``assistant.store.SessionStore`` (SQLite) implements it."""

    def save_state(
        self, session_id: str, folder: Path, state: DialogueState, extra: dict | None = None
    ) -> None:
        """Record the focus, stacks, conversation and ``extra`` (creating the session if new)."""

    def add_node(
        self,
        session_id: str,
        folder: Path,
        state: DialogueState,
        node: ImageNode,
        extra: dict | None = None,
    ) -> None:
        """Record a finished image whose file is already written, and the new state."""

    def load(self, session_id: str) -> tuple[Path, DialogueState, dict]:
        """(folder, state, extra) of a stored session; KeyError when there is none."""

    def summaries(self, limit: int = 50) -> list[SessionSummary]:
        """The most recently updated sessions, newest first."""

    def export(self, session_id: str, target: str | Path) -> Path:
        """Copy a session's pictures and its tree as JSON into ``target``."""
