"""The dialogue-state controller: one turn from input to events, image, reply and speech.

    UserInput ─► ASR ─► understand (grammar / rewriter) ─► Plan ─► image engine ─► node
              ─► reply text ─► TTS, sentence by sentence ─► turn.end

Every stage announces itself with typed events; a failing stage ends the turn with an
``error`` event carrying a stable code, and the session keeps everything it had.
"""

from __future__ import annotations

import logging
import queue
import re
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, ClassVar

import numpy as np

from assistant.confirm import (
    SAY_AGAIN,
    Answer,
    answer_to,
    confirming_question,
    needs_confirming,
)
from assistant.errors import AssistantError
from assistant.events import (
    Event,
    EventType,
    Heard,
    ImageDone,
    Planned,
    Replied,
    TtsEnded,
    TurnEnded,
)
from assistant.i18n import N_, SOURCE_LANGUAGE, reply_languages, t
from assistant.language import MIN_WORDS, detect_language
from assistant.plan import IMAGE_INTENTS, ChangeKind, Intent, Plan
from assistant.pool import release_memory_after_turn
from assistant.replies import (
    command_reply,
    error_reply,
    history_reply,
    image_reply,
    saved_reply,
)
from assistant.rewrite import PromptRewriter
from assistant.sessions import Session, SessionSettings, SessionSummary
from assistant.state import Exchange, ImageNode
from assistant.understand import MAX_REQUEST_CHARS, understand
from common.text import TextInputError, clean_text
from pipelines.image_transforms import transformed

logger = logging.getLogger(__name__)

NEEDS_SEGMENTER = N_(
    "I can find a part of the picture by its position, but finding the {region} needs a "
    "segmentation model (image.segmenter). Say a position like the top half, or brush over it "
    "in the chat window."
)
TYPED_NEEDS_ENGLISH = N_(
    "I can only read typed requests in English so far. Say it out loud and I'll translate it, "
    "or type it in English."
)


@dataclass
class UserInput:
    """What a front end hands the controller: text, or audio (path, bytes, or (rate, array))."""

    text: str | None = None
    audio: Any = None
    image: Any = None  # an uploaded PIL image to start from (edits apply to it)
    mask: Any = None  # a PIL mask brushed on the current picture: white = repaint


@dataclass
class ImageDefaults:
    """Generation settings that the plan does not decide (from config.image)."""

    width: int = 512
    height: int = 512
    steps: int | None = None
    guidance: float | None = None
    edit_strength: float = 0.6
    seed: int = -1

    FIELDS: ClassVar[frozenset[str]] = frozenset(
        {"width", "height", "steps", "guidance", "edit_strength", "seed"}
    )


def first_hearing(language: str | None) -> dict[str, Any]:
    """What a turn's first recognition asks: the language the person set (None: detect it)."""
    return {"language": language or None, "task": "transcribe"}


@dataclass(frozen=True)
class ControllerInfo:
    """What the controller has loaded, read-only, for a front end's health page and limits."""

    image_model: str  # the image model's label ("random:tiny", a hub id, a path's name)
    device: str  # where pictures are made: "cpu", "cuda", "cuda:1", "mps"
    placeholder: bool  # random weights: the pictures are noise
    default_steps: int | None  # denoising steps when a request names none
    rewriter: str  # "raw", "llm+rules" or "rules"
    styles: tuple[str, ...]  # the style names a session may pick
    asr: str | None  # "whisper" when speech input is on, else None
    asr_task: str  # "transcribe" (keep the language) or "translate" (into English)
    tts: str | None  # the default voice's name when speech output is on, else None


__all__ = [
    "Controller",
    "ControllerInfo",
    "ImageDefaults",
    "Session",
    "SessionSettings",
    "UserInput",
]


class Controller:
    """Runs turns for sessions. The engines are built elsewhere and handed in once.

    Parameters
    ----------
    image_engine: ``pipelines.image_engine.ImageEngine`` (or anything with generate / img2img).
    rewriter: the PromptRewriter (LLM + deterministic floor).
    asr: ``voice.asr.WhisperASR`` or None (then audio input is refused).
    tts: a ``voice.tts`` engine with ``stream(text)``, or None (text replies only).
    save_png: writes an image with its parameters (``pipelines.metadata.save_png``).
    write_wav: writes reply audio (``voice.audio.write_wav``).
    image_models, voices: ``assistant.pool.ModelPool`` of other image models / voices a
        session may choose (settings "image_model" / "voice"), loaded on first use.
    translator: turns a typed request in another language into English
        (``assistant.translate.LLMTranslator``), or None: such requests are refused, in the
        person's language, with the way that does work (speaking it).
    reply_language: ``"auto"`` (answer in the person's language) or a fixed ISO code.
    language_voices: the voice (a ``voices`` key such as ``espeak:de``) for replies in each
        language; a language not listed gets espeak-ng's voice for it.
    segmenter: loads the text segmenter (``pipelines.segment``) on first use, for "replace the
        sky with ..."; None: regions can be named by position only.
    """

    def __init__(
        self,
        image_engine: Any,
        rewriter: PromptRewriter,
        save_png: Callable[..., Any],
        write_wav: Callable[..., Any],
        asr: Any = None,
        tts: Any = None,
        defaults: ImageDefaults | None = None,
        output_dir: Path = Path("outputs"),
        store: Any = None,
        image_models: Any = None,
        voices: Any = None,
        planner: Any = None,
        prepare_plans: bool = False,
        router: Any = None,
        translator: Callable[[str, str], Any] | None = None,
        reply_language: str = "auto",
        language_voices: dict[str, str] | None = None,
        segmenter: Callable[[], Any] | None = None,
        image_model_choices: list[str] | None = None,
        voice_choices: list[str] | None = None,
        budget: Any = None,
        confirm_below: float = 0.0,
    ):
        self.image_engine = image_engine
        self.rewriter = rewriter
        self.asr = asr
        self.tts = tts
        self.save_png = save_png
        self.write_wav = write_wav
        self.defaults = defaults or ImageDefaults()
        self.output_dir = Path(output_dir).expanduser().resolve()
        self.store = store  # assistant.store.SessionStore, or None for memory only
        self.image_models = image_models
        self.voices = voices
        self.planner = planner  # assistant.planner.LLMPlanner for open requests, or None
        # Evaluate the planner's view of the session after each turn, in the background.
        self.prepare_plans = prepare_plans and planner is not None
        self._preparing: threading.Thread | None = None  # at most one, behind the LLM's lock
        self.router = router  # assistant.router.IntentRouter (intent by meaning), or None
        self.translator = translator
        self.reply_language = reply_language
        self.language_voices = dict(language_voices or {})
        self.segmenter = segmenter
        # What a session may pick (ui.image_models / ui.voices): never a path typed in a window.
        self.image_model_choices = list(image_model_choices or [])
        self.voice_choices = list(voice_choices or [])
        # assistant.cost.CostBudget: what one turn's pictures may cost (api.cost_budget), or None.
        self.budget = budget
        # A spoken request heard with less confidence than this is confirmed before a picture
        # is made or changed from it (asr.confirm_below; 0: never).
        self.confirm_below = confirm_below

    def engine_for(self, session: Session) -> Any:
        """The image engine this session chose, else the one loaded at start."""
        choice = session.settings.image_model
        if choice and self.image_models is not None:
            return self.image_models.get(choice)
        return self.image_engine

    def voice_for(self, session: Session) -> Any:
        """The TTS engine for this session's next reply (None: text replies only).

        A voice the session chose wins; otherwise a reply in another language gets a voice that
        speaks it (the packaged Piper voice is English-only), else the default.
        """
        choice = session.settings.voice
        if not choice and session.language != SOURCE_LANGUAGE and self.tts is not None:
            choice = self.language_voices.get(session.language, f"espeak:{session.language}")
        if choice and self.voices is not None:
            return self.voices.get(choice)
        return self.tts

    def new_session(self) -> Session:
        session = Session(folder=self.output_dir)
        session.folder = self.output_dir / session.id
        session.folder.mkdir(parents=True, exist_ok=True)
        self._persist(session)
        return session

    def resume(self, session_id: str) -> Session:
        """A stored session, as it was after its last finished image or turn."""
        if self.store is None:
            raise AssistantError("input-invalid", "Sessions are not stored (no session store).")
        try:
            folder, state, extra = self.store.load(session_id)
        except KeyError as e:
            raise AssistantError("input-invalid", f"There is no session {session_id!r}.") from e
        return Session.from_stored(session_id, folder, state, extra)

    def list_sessions(self, limit: int = 50) -> list[SessionSummary]:
        """Stored sessions, most recently used first (empty without a store)."""
        return self.store.summaries(limit) if self.store is not None else []

    @property
    def keeps_sessions(self) -> bool:
        """Whether sessions are stored, so they can be resumed after a restart."""
        return self.store is not None

    def expire_sessions(self, older_than_s: float, keep: set[str]) -> list[str]:
        """Delete stored sessions unchanged for ``older_than_s`` seconds, with their folders,
        except those in ``keep`` (in use); returns their ids."""
        from assistant.expiry import expire_sessions  # noqa: PLC0415

        if self.store is None:
            return []
        return expire_sessions(self.store, self.output_dir, older_than_s, keep=keep)

    def select(self, session: Session, node_id: str) -> Event:
        """Put a recorded picture in focus (a gallery click); persisted. Returns its event."""
        try:
            node = session.state.select(node_id)
        except KeyError as e:
            raise AssistantError(
                "input-invalid", f"This session has no picture {node_id!r}; pick one it shows."
            ) from e
        self._persist(session)
        return Event(EventType.IMAGE_DONE, ImageDone(node, focus_only=True))

    def update_settings(self, session: Session, **changes: Any) -> SessionSettings:
        """Change a session's settings (validated, then persisted); returns the new settings.

        ``None`` resets a setting to the configured default. Image models and voices must be
        among the configured choices (``ui.image_models``, ``ui.voices``).
        """
        allowed = {
            "image_model": self.image_model_choices,
            "voice": self.voice_choices,
            "style": list(self.rewriter.styles),
            "reply_language": reply_languages(),
        }
        for key, choices in allowed.items():
            value = changes.get(key)
            if value is not None and value not in choices:
                listed = ", ".join(choices) or "none are configured"
                raise AssistantError(
                    "input-invalid", f"{value!r} is not an offered {key} (choose from: {listed})."
                )
        try:
            settings = session.settings.model_copy().model_validate(
                {**session.settings.model_dump(), **changes}
            )
        except ValueError as e:
            raise AssistantError("input-invalid", f"Those settings are not valid: {e}") from e
        session.settings = settings
        self._persist(session)
        return settings

    def hear(self, audio: Any, language: str | None = None) -> Heard:
        """Transcribe speech (translated to English when it is in another language)."""
        heard, transcript = self._transcribe(audio, language)
        return self._heard(heard, transcript)

    def speak(
        self,
        text: str,
        voice: str | None = None,
        language: str | None = None,
        as_reply: bool = True,
    ) -> tuple[np.ndarray, int]:
        """Synthesize ``text`` as (float32 samples, sample rate) in a configured voice.

        ``as_reply``: said the way a reply is (no setting names or paths read out); False
        speaks a client's text exactly as sent ("and/or"), in one piece (the API's speech).
        ``model-missing`` when speech output is off.
        """
        if voice is not None and voice not in self.voice_choices:
            listed = ", ".join(self.voice_choices) or "none are configured"
            raise AssistantError(
                "input-invalid", f"{voice!r} is not an offered voice (choose from: {listed})."
            )
        probe = Session(folder=self.output_dir, settings={"voice": voice})
        probe.language = language or SOURCE_LANGUAGE
        tts = self.voice_for(probe)
        if tts is None:
            raise AssistantError("model-missing", "Speech output is off (tts.enabled).")
        if not as_reply:
            speech = tts.synthesize(text)
            return speech.samples, speech.sample_rate
        chunks = list(tts.stream(spoken_text(text)))
        if not chunks:
            return np.zeros(0, dtype=np.float32), getattr(tts, "sample_rate", 22050)
        return np.concatenate([c.samples for c in chunks]), chunks[0].sample_rate

    def draw(self, request: Any, count: int = 1, cancel: threading.Event | None = None) -> list:
        """Text to image for the OpenAI-style routes: ``count`` results, distinct seeds."""
        if count == 1:
            return [self.image_engine.generate(request, cancel=cancel)]
        return self.image_engine.generate_batch(request, count, cancel=cancel)

    def edit(
        self, request: Any, image: Any, mask: Any = None, cancel: threading.Event | None = None
    ) -> Any:
        """Edit ``image`` (inpaint where ``mask`` is white, else img2img), for the API."""
        if mask is not None:
            return self.image_engine.inpaint(request, image, mask, cancel=cancel)
        return self.image_engine.img2img(request, image, cancel=cancel)

    # --- what the front ends read and call besides turns (never the engines themselves) ---
    @property
    def style_choices(self) -> list[str]:
        """The style names a session may pick (``setting "style"``); loads nothing."""
        return list(self.rewriter.styles)

    def describe(self) -> ControllerInfo:
        """What is loaded. Waits for an image model still loading in the background."""
        info = self.image_engine.info
        rewriter = self.rewriter
        writes = "raw" if rewriter.raw else "llm+rules" if rewriter.llm is not None else "rules"
        return ControllerInfo(
            image_model=info.label,
            device=info.device,
            placeholder=bool(info.placeholder),
            default_steps=getattr(info, "default_steps", None),
            rewriter=writes,
            styles=tuple(self.style_choices),
            asr="whisper" if self.asr is not None else None,
            asr_task=str(getattr(self.asr, "task", None) or "transcribe"),
            tts=getattr(self.tts, "name", None) if self.tts is not None else None,
        )

    @contextmanager
    def hearing_stops_on(self, cancel: threading.Event) -> Iterator[None]:
        """Within the block, this thread's transcriptions stop once ``cancel`` is set: the
        decode raises ``asr-cancelled`` (already set: at once). For a turn whose client left."""
        from voice.asr_cancel import cancellable  # noqa: PLC0415 (keeps imports light)

        with cancellable(self.asr, cancel):
            yield

    def transcribe(
        self, audio: Any, language: str | None = None, cancel: threading.Event | None = None
    ) -> Any:
        """Plain speech to text for the API (no session, no translation into English).

        ``language``: the spoken language's code (None: ``asr.language``, else detected).
        Returns the recogniser's ``Transcript``; ``model-missing`` without ASR,
        ``asr-cancelled`` once ``cancel`` is set, the recogniser's codes otherwise.
        """
        if self.asr is None:
            raise AssistantError("model-missing", "Speech input is off: no ASR model is loaded.")
        with self.hearing_stops_on(cancel or threading.Event()):
            return self.asr.transcribe(audio, **({"language": language} if language else {}))

    def rewrite(self, prompt: str) -> Any:
        """The rewriter's ``Rewrite`` (prompt, negative_prompt, rewriter) of a picture's
        description, for the OpenAI image routes: a description, not a conversation."""
        return self.rewriter.generate(prompt)

    def save_image(self, result: Any, path: Path, **extra: Any) -> dict[str, Any]:
        """Write an engine result as PNG with its parameters (and ``extra``, such as the
        request's words) in its text; returns the parameters written."""
        params = {**result.params, **extra}
        self.save_png(result.image, path, params)
        return params

    # --- what a live voice loop needs besides turns -------------------------------------
    @contextmanager
    def hearing_through(self, wrap: Callable[[Any], Any]) -> Iterator[Any]:
        """Within the block, speech is recognized by ``wrap(loaded recognizer)``; after it,
        by the loaded one again. Yields the wrapper (None, and nothing changes, without ASR).

        For a recognizer that answers from work done ahead of the turn (the voice loop's
        ``voice.asr_speculative.SpeculativeASR``): the controller keeps owning its engine and
        is sure to get it back, however the loop ends.
        """
        loaded = self.asr
        if loaded is None:
            yield None
            return
        self.asr = wrapper = wrap(loaded)
        try:
            yield wrapper
        finally:
            self.asr = loaded

    def hearing_options(self, session: Session) -> dict[str, Any]:
        """The ``language`` and ``task`` that ``run_turn``'s first recognition of this
        session's speech passes (``_transcribe`` uses the same), so a recognition started ahead
        of the turn asks the same question and its answer is the one reused."""
        return first_hearing(session.settings.speech_language)

    def warm_up_hearing(self) -> None:
        """Run the recognizer once on near-silence, so the first spoken request does not pay
        for loading kernels (nothing without ASR or a recognizer with no warm-up)."""
        warm_up = getattr(self.asr, "warm_up", None)
        if warm_up is not None:
            warm_up()

    @property
    def speech_sample_rate(self) -> int | None:
        """The default voice's output rate, so a player can open at it before the first reply
        (None: speech output is off). Another voice a session picks says its own in each chunk."""
        if self.tts is None:
            return None
        return int(getattr(self.tts, "sample_rate", 22050))

    def _persist(self, session: Session, node: ImageNode | None = None) -> None:
        if self.store is None:
            return
        extra = session.extra()
        if node is not None:
            self.store.add_node(session.id, session.folder, session.state, node, extra)
        else:
            self.store.save_state(session.id, session.folder, session.state, extra)

    # --- one turn ---------------------------------------------------------------------
    def run_turn(
        self, session: Session, user_input: UserInput, cancel: threading.Event | None = None
    ) -> Iterator[Event]:
        """Run one turn and yield its events; always ends with ``turn.end``."""
        cancel = cancel or threading.Event()
        session.turns += 1
        turn = session.turns
        started = time.perf_counter()
        yield Event(
            EventType.TURN_START,
            {
                "session": session.id,
                "turn": turn,
                "input": "audio" if user_input.audio is not None else "text",
            },
        )
        ok, code, reply, said, plan = True, None, "", user_input.text or "", None
        exchange: Exchange | None = None
        try:
            try:
                text, said, confidence = yield from self._hear(session, user_input)
                if user_input.image is not None:
                    yield from self._adopt_upload(session, user_input.image, text)
                plan = self._plan_heard(text, said, confidence, session, user_input)
                yield Event(EventType.PLAN, Planned(plan))
                reply = yield from self._act(session, plan, cancel, user_input.mask, said)
            except AssistantError as e:
                ok, code = False, e.code
                reply = error_reply(e.code, e.message, session.language)
                yield Event(EventType.ERROR, {"code": e.code, "message": e.message})
            except Exception as e:  # a stage's own error type, or a bug: the session survives
                code = getattr(e, "code", "internal-error")
                message = getattr(e, "message", None) or f"Something went wrong: {e}"
                if code == "internal-error":
                    logger.exception("Turn %s of session %s failed", turn, session.id)
                ok, reply = False, error_reply(code, message, session.language)
                yield Event(EventType.ERROR, {"code": code, "message": message})
            outcome = "ok" if ok else "cancelled" if code == "image-cancelled" else "failed"
            exchange = self._record(session, turn, said, reply, outcome)
            # The plan says whether the reply asks something (the microphone reopens for it).
            expects_answer = bool(plan is not None and plan.expects_answer)
            yield Event(EventType.REPLY, Replied(reply, expects_answer, session.language))
            if not cancel.is_set():  # an abandoned turn does no more work
                speech = yield from self._speak(session, turn, reply, cancel)
                if speech is not None:
                    exchange.speech = speech.name
                    self._persist(session)
            yield Event(
                EventType.TURN_END,
                TurnEnded(ok, code, round(time.perf_counter() - started, 3), outcome),
            )
        finally:
            # A consumer that stops listening (GeneratorExit at a yield) leaves nothing
            # running, and the conversation still shows what was asked.
            if exchange is None:
                cancel.set()
                self._record(session, turn, said, reply, "cancelled")
            release_memory_after_turn()  # freed buffers go back to the OS, in every front end
            if self.prepare_plans:
                self._prepare_next_plan(session)

    def _prepare_next_plan(self, session: Session) -> None:
        """The planner's view of the session after this turn, evaluated on a thread while the
        person reads or listens: an open request next costs ~0.3 s of prompt, not ~1.5 s."""
        from assistant.planner import PlanContext  # noqa: PLC0415

        if self._preparing is not None and self._preparing.is_alive():
            return  # busy sessions: never a queue of head starts in front of real requests
        context = PlanContext.of(session.state)

        def prepare() -> None:
            try:
                self.planner.prepare_for(context)
            except Exception:  # noqa: BLE001 (a head start only: the request itself still works)
                logger.debug("Planner context not prepared", exc_info=True)

        self._preparing = threading.Thread(target=prepare, name="prepare-plan", daemon=True)
        self._preparing.start()

    def _record(self, session: Session, turn: int, said: str, reply: str, outcome: str) -> Exchange:
        exchange = Exchange(
            user=said, reply=reply, node_id=session.state.focus_id, turn=turn, outcome=outcome
        )
        session.state.history.append(exchange)
        self._persist(session)
        return exchange

    # --- stages ----------------------------------------------------------------------
    def _hear(self, session: Session, user_input: UserInput) -> Iterator[Event]:
        """(the request as English text, as the person said it); sets the reply language."""
        if fixed := self._fixed_language(session):
            session.language = fixed  # even for "ok", and for a turn that fails
        """(the English request, what was said or typed, ASR confidence or None if typed)."""
        if user_input.audio is None:
            text = self._check_text(user_input.text)
            return (yield from self._read_typed(session, text)), text, None
        if self.asr is None:
            raise AssistantError("model-missing", "Speech input is off: no ASR model is loaded.")
        yield Event(EventType.ASR_START, {})
        heard, transcript = self._transcribe(user_input.audio, session.settings.speech_language)
        if heard.language:
            self._set_language(session, heard.language)
        yield Event(EventType.ASR_END, self._heard(heard, transcript))
        said = heard.text or transcript.text
        return self._check_text(transcript.text), said, heard.confidence

    def _transcribe(self, audio: Any, language: str | None) -> tuple[Any, Any]:
        """(as heard, in English): a language the person set is not detected again."""
        if self.asr is None:
            raise AssistantError("model-missing", "Speech input is off: no ASR model is loaded.")
        transcript = heard = self.asr.transcribe(audio, **first_hearing(language))
        if heard.language not in ("en", "", None):
            # Prompts are English: Whisper's translate task turns other languages into it.
            fixed = {"language": heard.language} if language else {}
            transcript = self.asr.transcribe(audio, task="translate", **fixed)
        return heard, transcript

    @staticmethod
    def _heard(heard: Any, transcript: Any) -> Heard:
        return Heard(
            text=transcript.text,
            heard=heard.text,
            language=transcript.language,
            confidence=round(transcript.confidence, 3),
            no_speech_prob=round(transcript.no_speech_prob, 3),
            audio_seconds=round(transcript.duration_s, 2),
            seconds=round(transcript.elapsed_s, 3),
        )

    def _fixed_language(self, session: Session) -> str | None:
        """The reply language a tab's setting or ``reply_language`` fixes, or None (follow)."""
        fixed = session.settings.reply_language or self.reply_language
        return None if fixed == "auto" else fixed

    def _set_language(self, session: Session, language: str) -> None:
        if fixed := self._fixed_language(session):
            session.language = fixed
        else:  # a language without a catalog is answered in English
            session.language = language if language in reply_languages() else SOURCE_LANGUAGE

    def _read_typed(self, session: Session, text: str) -> Iterator[Event]:
        """English for a typed request: as it is, or translated, or a refusal that says why."""
        detected = detect_language(text, context=session.language)
        if detected.language == SOURCE_LANGUAGE:
            if len(text.split()) >= MIN_WORDS:  # "ok" or "undo" keep the language of the talk
                self._set_language(session, SOURCE_LANGUAGE)
            return text
        self._set_language(session, detected.language)
        if self.translator is None:
            raise AssistantError("language-unsupported", t(session.language, TYPED_NEEDS_ENGLISH))
        translation = self.translator(text, detected.language)
        yield Event(
            EventType.TRANSLATION,
            {
                "text": translation.text,
                "source_text": text,
                "language": detected.language,
                "confidence": detected.confidence,
                "via": translation.via,
                "seconds": translation.seconds,
            },
        )
        return self._check_text(translation.text)

    @staticmethod
    def _check_text(text: str | None) -> str:
        try:
            text = clean_text(text or "", "request").strip()
        except TextInputError as e:
            raise AssistantError("input-invalid", e.message) from e
        if not text:
            raise AssistantError(
                "input-invalid", N_("The request is empty. Type or say what you'd like me to draw.")
            )
        if len(text) > MAX_REQUEST_CHARS:
            raise AssistantError(
                "input-invalid",
                f"The request is {len(text)} characters long; keep it under {MAX_REQUEST_CHARS} "
                "and describe the picture in a sentence or two.",
            )
        return text

    def _plan_heard(
        self,
        text: str,
        said: str,
        confidence: float | None,
        session: Session,
        user_input: UserInput,
    ) -> Plan:
        """The plan for this turn, with a hearing check: a picture made or changed from words
        heard with little confidence is asked about first, and the answer is read here."""
        state = session.state
        pending, state.pending_confirmation = state.pending_confirmation, None
        if pending is not None:
            answer, rest = answer_to(said)
            if answer == Answer.YES:
                text, confidence = pending, None  # confirmed: as it was heard
            elif answer == Answer.NO and not rest:
                return Plan(intent=Intent.CLARIFY, request=said, question=SAY_AGAIN)
            elif answer == Answer.NO:
                text = rest  # "no, make the boat green": the corrected request
        plan = self._plan(text, session, has_mask=user_input.mask is not None)
        if needs_confirming(confidence, plan.intent in IMAGE_INTENTS, self.confirm_below):
            state.pending_confirmation = text
            question = confirming_question(said, session.language)
            plan = Plan(intent=Intent.CLARIFY, request=said, question=question)
            state.pending_question = question
        return plan

    def _plan(self, text: str, session: Session, has_mask: bool = False) -> Plan:
        rewriter = self.rewriter
        if session.settings.raw and not rewriter.raw:
            rewriter = PromptRewriter(
                rewriter.rules, None, rewriter.max_prompt_words, raw=True, styles=rewriter.styles
            )
        plan = understand(
            text,
            session.state,
            rewriter,
            has_mask=has_mask,
            style=session.settings.style,
            planner=self.planner,
            router=self.router,
        )
        session.state.pending_question = plan.question
        return plan

    def _act(
        self,
        session: Session,
        plan: Plan,
        cancel: threading.Event,
        mask: Any = None,
        said: str | None = None,
    ) -> Iterator[Event]:
        state = session.state
        lang = session.language
        if plan.intent in IMAGE_INTENTS:
            plan = self._paint_out_removals(plan)
            # Variations are children of the picture they vary, each with its own seed.
            source = state.current if plan.intent == Intent.VARIATIONS else None
            for index in range(plan.count):
                node = yield from self._make_image(session, plan, cancel, mask, source, index)
            first = node.placeholder and not session.told_placeholder
            session.told_placeholder = session.told_placeholder or node.placeholder
            return image_reply(plan, node, first, lang, said)
        if plan.intent == Intent.SELECT:
            node = state.select(plan.target_id)
            yield Event(EventType.IMAGE_DONE, ImageDone(node, focus_only=True))
            return command_reply(plan, node, lang)
        if plan.intent == Intent.SAVE:
            if not state.nodes or self.store is None:
                raise AssistantError("no-image", N_("There's nothing to save yet."))
            stamp = time.strftime("%Y%m%d-%H%M%S")
            folder = self.store.export(
                session.id, self.output_dir / "exports" / f"{session.id}-{stamp}"
            )
            # Named inside the outputs folder: no server path reaches a reply.
            return saved_reply(str(folder.relative_to(self.output_dir)), len(state.nodes), lang)
        if plan.intent in (Intent.UNDO, Intent.REDO):
            try:
                node = state.undo() if plan.intent == Intent.UNDO else state.redo()
                for _ in range(plan.steps_back - 1 if plan.intent == Intent.UNDO else 0):
                    if not state.can_undo:  # "go back five steps" with three: as far as it goes
                        break
                    node = state.undo()
            except LookupError as e:
                raise AssistantError(
                    "nothing-to-undo",
                    N_("There's nothing to undo. Ask me to draw something first.")
                    if plan.intent == Intent.UNDO
                    else N_("There's nothing to redo. Ask me to draw something first."),
                ) from e
            yield Event(EventType.IMAGE_DONE, ImageDone(node, focus_only=True))
            return command_reply(plan, node, lang)
        if plan.intent == Intent.RESET:
            state.clear_focus()
            yield Event(EventType.IMAGE_DONE, ImageDone(None, focus_only=True))
            return command_reply(plan, None, lang)
        if plan.intent == Intent.HISTORY:
            return history_reply(plan, state, lang)
        return command_reply(plan, state.current, lang)

    def _paint_out_removals(self, plan: Plan) -> Plan:
        """ "Lose the boat": with a segmenter, repaint just the boat's pixels (the scene's prompt
        without it, the boat in the negative); without one the whole picture is redrawn."""
        change = plan.change
        if (
            self.segmenter is None
            or plan.intent != Intent.EDIT
            or plan.operation != "img2img"
            or change is None
            or change.kind != ChangeKind.REMOVE
        ):
            return plan
        return plan.model_copy(update={"operation": "inpaint", "region": change.object})

    def _make_image(
        self,
        session: Session,
        plan: Plan,
        cancel: threading.Event,
        mask: Any = None,
        source: ImageNode | None = None,
        index: int = 0,
    ) -> Iterator[Event]:
        """One picture of the plan; ``source`` (variations) is the picture it varies."""
        from pipelines.image_engine import ImageRequest  # noqa: PLC0415 (keeps imports light)

        d = replace(self.defaults, **session.settings.image_overrides())
        parent = session.state.nodes.get(plan.target_id) if plan.target_id else None
        if parent is not None and not Path(parent.path).is_file():
            raise AssistantError(
                "no-image",
                f"The file of picture {parent.id} is gone, so I can't change it. "
                "Pick another picture, or ask for a new one.",
            )
        seed = plan.seed if plan.seed is not None else d.seed
        if source is not None:
            seed = variation_seed(seed, source.seed, index)
        sized = parent or source
        request = ImageRequest(
            prompt=plan.prompt,
            negative_prompt=plan.negative_prompt,
            seed=seed,
            steps=d.steps,
            guidance=d.guidance,
            width=sized.width if sized else d.width,
            height=sized.height if sized else d.height,
            strength=plan.strength or d.edit_strength,
        )
        operation = plan.operation if parent is not None else "generate"
        if index == 0 and plan.intent != Intent.TRANSFORM:  # all the turn's pictures, up front
            self._check_cost(session, request, plan.count)
        if operation == "inpaint" and mask is None and plan.region and parent is not None:
            mask = self._region_mask(session, plan.region, parent)
        yield Event(
            EventType.IMAGE_START,
            {
                "operation": operation,
                "prompt": plan.prompt,
                "negative_prompt": plan.negative_prompt,
                "parent": parent.id if parent else None,
                "region": plan.region,
            },
        )
        job = self._image_job(self.engine_for(session), plan, request, parent, mask, cancel)
        result = yield from self._run_with_progress(job)

        params = dict(result.params)
        parent_id = source.id if source is not None else parent.id if parent else None
        node_id, path = self._write_new_image(session, result.image, params, parent_id)
        # One record from the engine to the node: the result says what its node holds.
        node = ImageNode(
            id=node_id,
            parent_id=parent_id,
            path=str(path),
            request=plan.request,
            **result.node_fields(),
        )
        session.state.add_node(node)
        self._persist(session, node)
        seconds = round(params.get("elapsed_s", 0.0), 3)
        yield Event(EventType.IMAGE_DONE, ImageDone(node, False, result.image, seconds))
        return node

    def _check_cost(self, session: Session, request: Any, count: int) -> None:
        """``budget-exceeded`` when the turn's pictures (size x steps x how many) would cost
        more than the budget the API's image routes have (``api.cost_budget``)."""
        if self.budget is None:
            return
        steps = request.steps
        if steps is None:  # the model's own default
            steps = getattr(getattr(self.engine_for(session), "info", None), "default_steps", None)
        if steps is not None:
            self.budget.check(request.width, request.height, int(steps), count)

    def _write_new_image(
        self, session: Session, image: Any, params: dict[str, Any], parent_id: str | None
    ) -> tuple[str, Path]:
        """Reserve a node id, claim its file, then write the PNG: never over another file."""
        session.folder.mkdir(parents=True, exist_ok=True)
        while True:
            node_id = session.state.reserve_node_id()
            path = session.folder / f"{node_id}.png"
            try:
                path.open("xb").close()  # exclusive: a file already there is never replaced
                break
            except FileExistsError:
                logger.warning("%s exists but is not a node of this session: kept", path.name)
        try:
            self.save_png(image, path, params, parent=parent_id)
        except BaseException:
            path.unlink(missing_ok=True)
            raise
        return node_id, path

    def _region_mask(self, session: Session, region: str, parent: ImageNode) -> Any:
        """The mask of a described part of ``parent``: by position, or by the segmenter."""
        from PIL import Image  # noqa: PLC0415

        from pipelines.regions import position_mask, position_of  # noqa: PLC0415

        if position_of(region):
            return position_mask((parent.width, parent.height), region)
        if self.segmenter is None:
            raise AssistantError(
                "input-invalid", t(session.language, NEEDS_SEGMENTER, region=region)
            )
        picture = Image.open(parent.path).convert("RGB")
        return self.segmenter().mask_for(picture, region).mask

    @staticmethod
    def _image_job(
        engine: Any,
        plan: Plan,
        request: Any,
        parent: ImageNode | None,
        mask: Any,
        cancel: threading.Event,
    ) -> Callable[[Callable], Any]:
        """The engine call that carries out the plan, as a function of a progress callback."""
        if parent is None:
            return lambda progress: engine.generate(request, on_progress=progress, cancel=cancel)
        from PIL import Image  # noqa: PLC0415

        init = Image.open(parent.path).convert("RGB")
        if plan.intent == Intent.TRANSFORM:  # plain image operations: no model, no noise
            return lambda progress: transformed(init, plan.transforms, parent.to_json(), plan.size)
        kw: dict[str, Any] = {"cancel": cancel}
        match plan.operation:
            case "inpaint":
                method, args = "inpaint", (request, init, mask)
            case "outpaint":
                method, args = "outpaint", (request, init, plan.direction, plan.pixels)
            case "upscale":
                method, args = "upscale", (init,)
                kw.update(factor=plan.factor or 2, request=request)
            case "controlnet" if "canny" in getattr(engine, "controlnet_models", {}):
                method, args = "controlnet", (request, init, "canny")
            case "depth" | "controlnet" if hasattr(engine, "depth_edit"):
                # Without a canny ControlNet, outlines are kept as well as depth can keep them;
                # without a depth model the engine itself falls back to img2img, and says so.
                method, args = "depth_edit", (request, init)
            case _ if plan.intent == Intent.EDIT and hasattr(engine, "instruct_edit"):
                method, args = "instruct_edit", (request, init, plan.request)
            case _:
                method, args = "img2img", (request, init)
        if not hasattr(engine, method):
            raise AssistantError(
                "input-invalid", f"This image engine cannot {plan.operation} pictures yet."
            )
        call = getattr(engine, method)
        return lambda progress: call(*args, on_progress=progress, **kw)

    def _run_with_progress(self, job: Callable[[Callable], Any]) -> Iterator[Event]:
        """Run the image job in a worker thread, yielding its progress as events."""
        events: queue.Queue = queue.Queue()
        outcome: dict[str, Any] = {}

        def progress(step: int, total: int, preview: Any = None) -> None:
            events.put(
                Event(EventType.IMAGE_PROGRESS, {"step": step, "total": total, "preview": preview})
            )

        def work() -> None:
            try:
                outcome["result"] = job(progress)  # the engine serialises its own calls
            except BaseException as e:  # handed back to the turn's own thread
                outcome["error"] = e
            finally:
                events.put(None)

        worker = threading.Thread(target=work, name="image-job", daemon=True)
        worker.start()
        while (event := events.get()) is not None:
            yield event
        worker.join()
        if "error" in outcome:
            raise outcome["error"]
        return outcome["result"]

    def _adopt_upload(self, session: Session, image: Any, text: str) -> Iterator[Event]:
        """An uploaded picture becomes a node in focus, so the request edits it."""
        from pipelines.image_input import fit_upload  # noqa: PLC0415 (keeps imports light)

        # Recorded at its real size, one the engine can edit (a phone photo is scaled down).
        image, _ = fit_upload(image)
        params = {
            "prompt": "uploaded image",
            "negative_prompt": "",
            "seed": 0,
            "steps": 0,
            "guidance": 0.0,
            "strength": None,
            "width": image.width,
            "height": image.height,
            "model": "upload",
            "operation": "upload",
        }
        node_id, path = self._write_new_image(session, image, params, None)
        node = ImageNode(
            id=node_id,
            parent_id=None,
            operation="upload",
            prompt="uploaded image",
            negative_prompt="",
            seed=0,
            steps=0,
            guidance=0.0,
            strength=None,
            width=image.width,
            height=image.height,
            model="upload",
            path=str(path),
            request=text,
        )
        session.state.add_node(node)
        self._persist(session, node)
        yield Event(EventType.IMAGE_DONE, ImageDone(node, focus_only=True))

    def _speak(
        self, session: Session, turn: int, reply: str, cancel: threading.Event
    ) -> Iterator[Event]:
        """Speak the reply sentence by sentence; returns the WAV written, or None."""
        try:
            tts = self.voice_for(session)
        except Exception as e:  # a chosen voice that cannot load: the reply text still stands
            yield Event(
                EventType.ERROR,
                {
                    "code": getattr(e, "code", "tts-failed"),
                    "message": getattr(e, "message", str(e)),
                },
            )
            return
        if tts is None:
            return None
        yield Event(EventType.TTS_START, {"engine": getattr(tts, "name", "tts")})
        chunks, rate = [], None
        try:
            for index, chunk in enumerate(tts.stream(spoken_text(reply))):
                if cancel.is_set():  # abandoned mid-reply: no more synthesis, no file
                    return None
                chunks.append(chunk.samples)
                rate = chunk.sample_rate
                yield Event(
                    EventType.TTS_CHUNK,
                    {
                        "index": index,
                        "seconds": round(chunk.seconds, 3),
                        "sample_rate": rate,
                        "audio": chunk.samples,
                    },
                )
        except Exception as e:
            # Speech is the last stage: the image and the reply text stand without it.
            logger.warning("TTS failed: %s", e)
            yield Event(
                EventType.ERROR,
                {"code": "tts-failed", "message": f"I couldn't speak the reply: {e}"},
            )
            return None
        path = None
        if chunks:
            path = session.folder / f"turn-{turn:03d}-reply.wav"
            self.write_wav(path, np.concatenate(chunks), rate)
        total = sum(len(c) for c in chunks) / rate if rate else 0.0
        yield Event(EventType.TTS_END, TtsEnded(str(path) if path else None, round(total, 3)))
        return path


# What a reply shows but a voice should not read out: "(image.segmenter)", "image.model",
# "exports/3f9c-20260101" (a setting's dotted name, a file name or folder).
_SETTING_IN_PARENS = re.compile(r"\s*\((?:[a-z_]+\.)+[a-z_]+(?: / (?:[a-z_]+\.)+[a-z_]+)*\)")
_SETTING = re.compile(r"\b(asr|rewrite|image|tts|voice|ui)\.([a-z_]+)\b")
# A path: absolute or from home, two or more slashes, or a folder and a file name with its
# extension. Not "and/or" or "24/7".
_PATHLIKE = re.compile(
    r"(?<![\w.])(?:~?/{seg}(?:/{seg})*|{seg}(?:/{seg}){{2,}}|{seg}/[\w-]+\.[a-z]\w*)".format(
        seg=r"[\w-]+(?:\.[\w-]+)*"  # a name; a sentence's full stop is not part of it
    )
)


def spoken_text(reply: str) -> str:
    """The reply as it is said: no setting names or file paths read out letter by letter."""
    said = _SETTING_IN_PARENS.sub("", reply)
    said = _SETTING.sub(lambda m: f"the {m[1]} {m[2].replace('_', ' ')} setting", said)
    return _PATHLIKE.sub("the outputs folder", said)


def variation_seed(seed: int, source_seed: int, index: int) -> int:
    """The seed of variation ``index`` of a picture drawn with ``source_seed``.

    The engine's ``generate_batch`` rule: a random setting (-1) stays random per picture; a
    fixed one counts on from the source, so "three more like that" are three new pictures.
    """
    from pipelines.image_engine import MAX_SEED  # noqa: PLC0415

    if seed == -1:
        return -1
    return (source_seed + 1 + index) % (MAX_SEED + 1)
