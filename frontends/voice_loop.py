"""`run_assistant.py voice`: the hands-free voice loop.

    microphone ─► VAD ─► endpointer ─► (wake word gate) ─► controller turn ─► speaker
        ▲                                                                        │
        └──────────────── barge-in: speech while it talks stops the speaker ◄────┘

Two threads share the work. The *listening* thread (the caller's) reads frames, runs the
VAD, the wake word and the endpointer, and never waits for a turn: it must keep up with
the microphone, and it is what notices barge-in. The *turn* thread runs
``controller.run_turn`` for each utterance, in order, and renders its events: it prints the
transcript, plan and reply lines, says "On it." as soon as the plan will make an image,
and hands each ``tts.chunk`` to the player as soon as it arrives.

Barge-in: when speech starts (under the echo guard's stricter rule) or the wake word is
heard while the assistant is speaking, the player stops at once and the rest of that
turn's speech is dropped; the interrupting utterance becomes the next turn. A turn still
making its picture is not cancelled: the next turn starts when it ends. With a wake word,
speech interrupts only while the mic is open (after a question); the wake word always does.
With ``barge_in=False`` (half duplex) the microphone is ignored while the assistant speaks,
except for the wake word. An interrupting utterance that Whisper hears as the assistant's
own words is dropped (see ``voice.echo``), and so is one Whisper finds no speech in.

Example::

    loop = VoiceLoop(controller, MicrophoneSource("usb"), Player())
    result = loop.run()          # until Ctrl+C, or the source ends
"""

from __future__ import annotations

import logging
import queue
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from assistant.controller import UserInput
from assistant.events import Event, EventType
from assistant.i18n import t
from assistant.plan import IMAGE_INTENTS
from voice.asr_speculative import SpeculativeASR
from voice.echo import EchoGuard, is_echo
from voice.endpointing import (
    EndpointConfig,
    Endpointer,
    PushToTalk,
    SpeechDropped,
    SpeechPaused,
    SpeechStarted,
    Utterance,
    frames_for,
)
from voice.errors import VoiceError
from voice.microphone import FrameSource
from voice.playback import PlayedChunk, Player
from voice.turn_end import sounds_finished
from voice.vad import SAMPLE_RATE, SileroVAD
from voice.wakeword import DEFAULT_ANSWER_S, WakeGate

logger = logging.getLogger(__name__)

ACKNOWLEDGEMENT = "On it."  # said as soon as the plan will make a picture
IMAGE_INTENT_NAMES = frozenset(str(i.value) for i in IMAGE_INTENTS)  # generate, edit, again
SILENT_ERROR_CODES = frozenset({"asr-no-speech"})  # a cough or noise: no reply at all
DRAIN_TIMEOUT_S = 60.0  # s to let the last reply finish playing when the loop ends
JOIN_TIMEOUT_S = 5.0  # s to wait for a cancelled turn to wind down at Ctrl+C
# Silence (ms) after which recognition starts speculatively (voice.asr_speculative); with
# the early end below, end of speech -> transcript is about this + the VAD's decay + ASR.
DEFAULT_PAUSE_MS = 120.0
# Least silence (ms) before a finished-sounding transcript ends the turn early: a person's
# hesitation up to 0.6 s (VAD decay included) is never taken as the end, however fast the
# recognizer (docs/BENCHMARKS.md, "Voice speed and memory, fifth session").
DEFAULT_EARLY_END_MS = 600.0


def _default_endpoint() -> EndpointConfig:
    return EndpointConfig(
        pause_ms=DEFAULT_PAUSE_MS,
        post_roll_ms=min(EndpointConfig.post_roll_ms, DEFAULT_PAUSE_MS),  # the pause's audio
        early_end_ms=DEFAULT_EARLY_END_MS,
    )


@dataclass(frozen=True)
class VoiceLoopSettings:
    """How the loop listens and talks back.

    Parameters
    ----------
    endpoint:
        When utterances start and end (VAD threshold, pre-roll, silence window, ...). Its
        ``pause_ms`` (default 120; 0: off) starts recognition at a short pause; the
        transcript is reused when the person said no more (:mod:`voice.asr_speculative`).
    end_on_transcript:
        With speculative recognition: end the turn as soon as the pause's transcript sounds
        like a finished request (:func:`voice.turn_end.sounds_finished`) and the person is
        still silent, instead of waiting out ``silence_ms``; never before the endpoint's
        ``early_end_ms`` of silence (default 600).
    echo:
        The stricter start rule used while the assistant speaks.
    barge_in:
        Let speech interrupt the assistant. False is half duplex: the microphone is
        ignored while the assistant speaks (safest with a loud speaker and no headset).
    acknowledgement:
        Said at once when a picture will be made; "" for nothing.
    answer_window_s:
        After a question (with a wake word), seconds the next utterance counts without it.
    drop_echo:
        Ignore an interrupting utterance transcribed as the assistant's own words.
    max_turns:
        Stop after this many turns (None: until the source ends or Ctrl+C).
    drain_timeout_s:
        At the end, seconds to wait for the last reply to finish playing.
    """

    endpoint: EndpointConfig = field(default_factory=_default_endpoint)
    end_on_transcript: bool = True
    echo: EchoGuard = field(default_factory=EchoGuard)
    barge_in: bool = True
    acknowledgement: str = ACKNOWLEDGEMENT
    answer_window_s: float = DEFAULT_ANSWER_S
    drop_echo: bool = True
    max_turns: int | None = None
    drain_timeout_s: float = DRAIN_TIMEOUT_S

    @classmethod
    def from_config(cls, config: Any) -> VoiceLoopSettings:
        """Settings from ``config.voice`` when the config has that section, else defaults.

        Parameters
        ----------
        config:
            An ``assistant.config.Config``.

        Returns
        -------
        The settings.
        """
        v = getattr(config, "voice", None)
        if v is None:
            return cls()

        def get(name: str, default):
            value = getattr(v, name, None)
            return default if value is None else value

        e, g = _default_endpoint(), EchoGuard()
        silence_ms = get("silence_ms", e.silence_ms)
        pause_ms = get("pause_ms", e.pause_ms)
        post_roll_ms = min(EndpointConfig.post_roll_ms, pause_ms or EndpointConfig.post_roll_ms)
        if pause_ms and frames_for(pause_ms) >= frames_for(silence_ms):
            pause_ms = 0.0  # a silence window this short leaves no room for a pause
        early_end_ms = get("early_end_ms", e.early_end_ms)
        end_on_transcript = bool(get("end_on_transcript", True))
        if frames_for(early_end_ms) >= frames_for(silence_ms):
            # The window itself ends the turn before an early end could: nothing to do.
            early_end_ms, end_on_transcript = 0.0, False
        return cls(
            endpoint=EndpointConfig(
                threshold=get("vad_threshold", e.threshold),
                pre_roll_ms=get("pre_roll_ms", e.pre_roll_ms),
                silence_ms=silence_ms,
                post_roll_ms=min(post_roll_ms, silence_ms),
                min_speech_ms=get("min_speech_ms", e.min_speech_ms),
                max_utterance_s=get("max_utterance_s", e.max_utterance_s),
                pause_ms=pause_ms,
                early_end_ms=early_end_ms,
            ),
            end_on_transcript=end_on_transcript,
            echo=EchoGuard(
                threshold=get("barge_in_threshold", g.threshold),
                frames=get("barge_in_frames", g.frames),
            ),
            barge_in=get("barge_in", True),
            acknowledgement=get("acknowledgement", ACKNOWLEDGEMENT),
            answer_window_s=get("answer_window_s", DEFAULT_ANSWER_S),
        )


@dataclass(eq=False)
class TurnRecord:
    """What happened in one spoken turn, with its timings (all ``time.monotonic()``).

    Parameters
    ----------
    index:
        1 for the first turn of the loop.
    speech_end_time:
        When the speech it came from ended (the endpointer's last speech frame).
    audio_seconds:
        Length of the audio handed to the controller, s.
    interrupted_previous:
        The speech started while the assistant was speaking (a barge-in).
    """

    index: int
    speech_end_time: float
    audio_seconds: float
    interrupted_previous: bool = False
    transcript: str | None = None
    asr_seconds: float | None = None
    transcript_at: float | None = None
    intent: str | None = None
    prompt: str | None = None
    image_path: str | None = None
    reply: str | None = None
    expects_answer: bool = False
    ok: bool | None = None
    error_code: str | None = None
    ignored: str | None = None  # "no-speech" or "echo": the turn was dropped
    barged_in: bool = False  # its own speech was interrupted
    ack: PlayedChunk | None = None
    reply_chunks: list[PlayedChunk] = field(default_factory=list)

    def _since_speech_end(self, t: float | None) -> float | None:
        return None if t is None else t - self.speech_end_time

    @property
    def speech_end_to_transcript_s(self) -> float | None:
        """Seconds from the end of speech to the transcript (silence window + ASR)."""
        return self._since_speech_end(self.transcript_at)

    @property
    def speech_end_to_ack_s(self) -> float | None:
        """Seconds from the end of speech until "On it." started playing."""
        return self._since_speech_end(self.ack.started_at if self.ack else None)

    @property
    def speech_end_to_first_audio_s(self) -> float | None:
        """Seconds from the end of speech until the reply's first sentence started playing."""
        started = [c.started_at for c in self.reply_chunks if c.started_at is not None]
        return self._since_speech_end(min(started) if started else None)


@dataclass
class VoiceLoopResult:
    """Everything the loop did: its turns, and counts for logs and tests."""

    turns: list[TurnRecord] = field(default_factory=list)
    frames: int = 0
    vad_seconds: float = 0.0
    utterances: int = 0
    dropped: int = 0  # too short to be speech
    ignored: int = 0  # no wake word
    barge_ins: int = 0
    speculated: int = 0  # recognitions started at a pause
    ended_early: int = 0  # turns ended at the pause because the transcript sounded finished

    @property
    def vad_ms_per_frame(self) -> float:
        """Mean VAD time per 32 ms frame, ms."""
        return 1000 * self.vad_seconds / self.frames if self.frames else 0.0


@dataclass(frozen=True, eq=False)
class _Request:
    utterance: Utterance
    audio: np.ndarray
    interrupted_previous: bool


@dataclass(eq=False)
class _Running:
    record: TurnRecord
    cancel: threading.Event = field(default_factory=threading.Event)
    muted: bool = False


class VoiceLoop:
    """Listen, endpoint, run turns, speak, and stop speaking when interrupted.

    Parameters
    ----------
    controller:
        ``assistant.controller.Controller`` (with ASR; with TTS to be heard).
    source:
        Where frames come from (:class:`voice.microphone.MicrophoneSource`, or a fake).
    player:
        Where speech goes.
    wake:
        A :class:`voice.wakeword.WakeGate`, or None: every utterance counts.
    settings:
        :class:`VoiceLoopSettings`.
    vad:
        Speech probability of a frame (default: :class:`voice.vad.SileroVAD`).
    endpointer:
        An :class:`~voice.endpointing.Endpointer` (default, from ``settings.endpoint``)
        or a :class:`~voice.endpointing.PushToTalk`.
    session:
        The controller session to talk in (default: a new one).
    on_line:
        Called with each human-readable line (default: ``print``).
    """

    def __init__(
        self,
        controller: Any,
        source: FrameSource,
        player: Player,
        wake: WakeGate | None = None,
        settings: VoiceLoopSettings | None = None,
        vad: Callable[[np.ndarray], float] | None = None,
        endpointer: Endpointer | PushToTalk | None = None,
        session: Any = None,
        on_line: Callable[[str], None] | None = None,
    ):
        self.controller = controller
        self.source = source
        self.player = player
        self.wake = wake
        self.settings = settings or VoiceLoopSettings()
        self.vad = vad or SileroVAD()
        self.endpointer = endpointer or Endpointer(self.settings.endpoint)
        self.session = session or controller.new_session()
        self._on_line = on_line or (lambda line: print(line, flush=True))
        self.result = VoiceLoopResult()
        self._requests: queue.Queue[_Request | None] = queue.Queue()
        self._stop = threading.Event()
        self._lock = threading.Lock()  # guards _running/muted against the player
        self._running: _Running | None = None
        self._speaking: TurnRecord | None = None  # the turn whose audio was queued last
        self._speaking_text = ""  # what the assistant says now (for the echo check)
        self._barged = False  # the open utterance interrupted the assistant
        # "On it." as (samples, sample rate): in the default voice, rendered at start; in
        # another language's voice, rendered on first need (None: it can't be said).
        self._ack_audio: tuple[np.ndarray, int] | None = None
        self._ack_by_language: dict[str, tuple[np.ndarray, int] | None] = {}
        self._speculative: SpeculativeASR | None = None  # while run() has it installed
        self._paused: SpeechPaused | None = None  # the pause being recognized speculatively
        self._paused_judged = False  # its transcript was read and did not sound finished

    # --- the listening thread ------------------------------------------------------------
    def run(self) -> VoiceLoopResult:
        """Listen until the source ends, ``max_turns`` is reached, or :meth:`stop`.

        Returns
        -------
        The :class:`VoiceLoopResult`.
        """
        self._prepare_acknowledgement()
        self.player.open()
        with self.controller.hearing_through(self._speculation_wrapper()) as hearing:
            self._speculative = hearing if isinstance(hearing, SpeculativeASR) else None
            try:
                self._listen_until_done()
            finally:
                self._speculative = None
        return self.result

    def _speculation_wrapper(self) -> Callable[[Any], Any]:
        """Wraps the controller's recognizer in a :class:`SpeculativeASR` when pauses are on
        (so a pause starts recognition), else leaves it as it is."""
        config = getattr(self.endpointer, "config", None)
        if isinstance(self.endpointer, Endpointer) and config.pause_ms:
            return SpeculativeASR
        return lambda asr: asr

    def _listen_until_done(self) -> None:
        worker = threading.Thread(target=self._work, name="voice-turns", daemon=True)
        worker.start()
        finished = False
        try:
            for frame in self.source:
                self._listen(frame)
                if self._stop.is_set():
                    break
            for event in self.endpointer.flush():
                self._on_endpoint(event, playing=False)
            finished = True
        finally:
            self.source.close()
            if not finished:  # Ctrl+C or an error: stop talking, cancel the turn
                self.stop()
            self._requests.put(None)
            worker.join(None if finished else JOIN_TIMEOUT_S)
            if finished:
                self.player.wait(self.settings.drain_timeout_s)

    def stop(self) -> None:
        """Stop listening, cancel the running turn, and silence the player."""
        self._stop.set()
        self.source.close()
        with self._lock:
            if self._running is not None:
                self._running.cancel.set()
                self._running.muted = True
            self.player.stop()

    def _listen(self, frame: np.ndarray) -> None:
        start = time.perf_counter()
        probability = self.vad(frame)
        self.result.vad_seconds += time.perf_counter() - start
        self.result.frames += 1
        playing = self.player.is_playing()
        if self.wake is not None and self.wake.process(frame):
            self._line(f"(wake word: {self.wake.phrase})")
            if playing:
                self._barge_in("wake word")
        if playing and not self.settings.barge_in:
            probability = 0.0  # half duplex: deaf while speaking
        threshold, frames = self.settings.echo.start_rule(playing)
        for event in self.endpointer.push(
            frame, probability, start_threshold=threshold, start_frames=frames
        ):
            self._on_endpoint(event, playing)
        if self._paused is not None and self.settings.end_on_transcript:
            self._end_if_finished(playing)

    def _on_pause(self, paused: SpeechPaused) -> None:
        """Start recognizing the audio so far, when nothing else needs the CPU."""
        spec = self._speculative
        if spec is None or self.wake is not None:  # the wake gate may trim the audio
            return
        if self._running is not None or not self._requests.empty():
            return  # a turn is drawing or talking: do not slow it down on a guess
        # Asked as the turn will ask it, or the turn would not reuse the answer.
        spec.speculate(paused.audio, **self.controller.hearing_options(self.session))
        self._paused, self._paused_judged = paused, False
        self.result.speculated += 1

    def _end_if_finished(self, playing: bool) -> None:
        """End the turn now when the pause's transcript is in, sounds finished, and the person
        has stayed silent since the pause."""
        if self._paused_judged or not self.endpointer.may_end_early(self._paused):
            return  # judged already, speech resumed, or the silence is still short
        transcript = self._speculative.ready() if self._speculative else None
        if transcript is None:
            return
        self._paused_judged = True
        if not sounds_finished(transcript.text):
            logger.debug("not ended early: %r sounds unfinished", transcript.text)
            return
        events = self.endpointer.end_now(self._paused)
        if events:
            self.result.ended_early += 1
        for event in events:
            self._on_endpoint(event, playing)

    def _on_endpoint(self, event, playing: bool) -> None:
        if isinstance(event, SpeechPaused):
            self._on_pause(event)
            return
        if isinstance(event, Utterance | SpeechDropped):
            self._paused = None
        if isinstance(event, SpeechStarted):
            self._barged = False
            wake_open = self.wake is None or self.wake.is_open
            if playing and self.settings.barge_in and wake_open:
                self._barge_in("speech")
        elif isinstance(event, SpeechDropped):
            self.result.dropped += 1
        elif isinstance(event, Utterance):
            self.result.utterances += 1
            audio = event.audio if self.wake is None else self.wake.accept(event)
            if audio is None:
                self.result.ignored += 1
                logger.info("not for me: %.1f s of speech without the wake word", event.seconds)
                return
            self._requests.put(_Request(event, audio, self._barged))
            self._barged = False

    def _barge_in(self, reason: str) -> None:
        with self._lock:
            running = self._running
            if running is not None:
                running.muted = True
                running.record.barged_in = True
            cut = self.player.stop()
            if cut and self._speaking is not None:  # a finished turn's reply still playing
                self._speaking.barged_in = True
        if cut or running is not None:
            self._barged = True
            self.result.barge_ins += 1
            self._line(f"(interrupted by {reason})")

    # --- the turn thread ----------------------------------------------------------------
    def _work(self) -> None:
        while (request := self._requests.get()) is not None:
            if self._stop.is_set():
                continue
            try:
                self._run_turn(request)
            except Exception:  # the loop keeps listening whatever one turn does
                logger.exception("voice turn failed")
            limit = self.settings.max_turns
            if limit is not None and len(self.result.turns) >= limit:
                self._stop.set()

    def _run_turn(self, request: _Request) -> None:
        record = TurnRecord(
            index=len(self.result.turns) + 1,
            speech_end_time=request.utterance.speech_end_time,
            audio_seconds=request.audio.size / SAMPLE_RATE,
            interrupted_previous=request.interrupted_previous,
        )
        running = _Running(record)
        with self._lock:
            self._running = running
            self.result.turns.append(record)
        events = self.controller.run_turn(
            self.session, UserInput(audio=(SAMPLE_RATE, request.audio)), cancel=running.cancel
        )
        try:
            for event in events:
                if not self._on_event(event, running, request):
                    break  # ignored turn: stop it before it plans or speaks
        finally:
            events.close()
            with self._lock:
                self._running = None
        self._log_timings(record)

    def _on_event(self, event: Event, running: _Running, request: _Request) -> bool:
        """Render one event; False when the rest of the turn must be dropped."""
        record, d = running.record, event.data
        match event.type:
            case EventType.ASR_END:
                record.transcript, record.asr_seconds = d["text"], d["seconds"]
                record.transcript_at = time.monotonic()
                self._line(f"you: {record.transcript}")
                logger.info(
                    "end of speech -> transcript %.2f s (ASR %.2f s on %.1f s of audio)",
                    record.speech_end_to_transcript_s,
                    record.asr_seconds,
                    d["audio_seconds"],
                )
                echo = request.interrupted_previous and is_echo(
                    record.transcript, self._speaking_text
                )
                if self.settings.drop_echo and echo:
                    record.ignored = "echo"
                    self._line("(ignored: that was my own voice)")
                    return False
            case EventType.ERROR:
                record.error_code = d["code"]
                if d["code"] in SILENT_ERROR_CODES:
                    record.ignored = "no-speech"
                    self._line("(no speech heard)")
                    return False
                self._line(f"error [{d['code']}]: {d['message']}")
            case EventType.PLAN:
                record.intent, record.prompt = d["intent"], d.get("prompt") or None
                self._line(
                    f"plan: {d['intent']}" + (f" | {d['prompt']}" if d.get("prompt") else "")
                )
                if d["intent"] in IMAGE_INTENT_NAMES:
                    record.ack = self._acknowledge(running)
            case EventType.IMAGE_DONE:
                if d.get("focus_only"):
                    self._line(f"now showing: {d.get('node_id') or 'nothing'}")
                else:
                    record.image_path = d["path"]
                    self._line(f"image: {d['path']} (seed {d['seed']})")
            case EventType.REPLY:
                record.reply, record.expects_answer = d["text"], bool(d["expects_answer"])
                self._speaking_text = f"{self.settings.acknowledgement} {d['text']}"
                self._line(f"assistant: {d['text']}")
                if record.expects_answer and self.wake is not None:
                    self.wake.reopen(self.settings.answer_window_s)
            case EventType.TTS_CHUNK:
                label = f"turn {record.index} reply {d['index'] + 1}"
                chunk = self._play(running, d["audio"], d["sample_rate"], label)
                if chunk is not None:
                    record.reply_chunks.append(chunk)
            case EventType.TURN_END:
                record.ok = bool(d["ok"])
        return True

    def _prepare_acknowledgement(self) -> None:
        """Render "On it." once, so saying it later costs nothing."""
        if not self.settings.acknowledgement or self.controller.speech_sample_rate is None:
            return
        try:
            self._ack_audio = self.controller.speak(self.settings.acknowledgement, as_reply=False)
        except Exception as e:  # the loop works without it
            logger.warning("Could not render the acknowledgement: %s", e)

    def _acknowledge(self, running: _Running) -> PlayedChunk | None:
        if not self.settings.acknowledgement:
            return None
        # Said before this turn is heard: in the language of the talk so far.
        language = getattr(self.session, "language", "en")
        text = t(language, self.settings.acknowledgement)
        self._line(f"assistant: {text}")
        audio = self._ack_audio if language == "en" else self._ack_in(language, text)
        if audio is None:
            return None
        samples, sample_rate = audio
        return self._play(running, samples, sample_rate, "ack")

    def _ack_in(self, language: str, text: str):
        """The acknowledgement in ``language``'s voice, rendered once (None if it can't be)."""
        if language not in self._ack_by_language:
            if self.controller.speech_sample_rate is None:  # speech output is off
                self._ack_by_language[language] = None
                return None
            try:
                self._ack_by_language[language] = self.controller.speak(
                    text, voice=self.session.settings.voice, language=language, as_reply=False
                )
            except Exception as e:  # the turn goes on without it
                logger.warning("Could not render the acknowledgement in %s: %s", language, e)
                self._ack_by_language[language] = None
        return self._ack_by_language[language]

    def _play(self, running: _Running, samples, sample_rate: int, label: str) -> PlayedChunk | None:
        with self._lock:  # a barge-in between the check and play() would be lost otherwise
            if running.muted:
                return None
            self._speaking = running.record
            return self.player.play(samples, sample_rate, label)

    def _log_timings(self, record: TurnRecord) -> None:
        parts = []
        for name, value in (
            ("transcript", record.speech_end_to_transcript_s),
            ("'On it.'", record.speech_end_to_ack_s),
            ("first reply audio", record.speech_end_to_first_audio_s),
        ):
            if value is not None:
                parts.append(f"{name} {value:.2f} s")
        if parts:
            logger.info("turn %d after end of speech: %s", record.index, ", ".join(parts))

    def _line(self, line: str) -> None:
        try:
            self._on_line(line)
        except Exception:  # a broken printer must not stop the loop
            logger.exception("on_line failed")


def run_voice_loop(
    controller: Any,
    source: FrameSource,
    player: Player,
    wake: WakeGate | None = None,
    settings: VoiceLoopSettings | None = None,
    **kwargs: Any,
) -> VoiceLoopResult:
    """Run the voice loop until the source ends (see :class:`VoiceLoop` for the arguments).

    Returns
    -------
    The :class:`VoiceLoopResult` with every turn and its timings.
    """
    return VoiceLoop(controller, source, player, wake=wake, settings=settings, **kwargs).run()


# --- `run_assistant.py voice` -------------------------------------------------------------


def _voice_setting(config: Any, name: str, given: Any = None) -> Any:
    """``given`` when set (a command-line flag), else ``config.voice.<name>`` if it exists."""
    if given is not None:
        return given
    return getattr(getattr(config, "voice", None), name, None)


def _read_enter(push_to_talk: PushToTalk, stop: threading.Event) -> None:
    """Push-to-talk on the terminal: Enter starts recording, Enter again sends it."""
    for _line in sys.stdin:
        if stop.is_set():
            return
        print("(recording: press Enter to send)" if push_to_talk.toggle() else "(sent)", flush=True)


def main(
    config: Any,
    device: int | str | None = None,
    push_to_talk: bool = False,
    wake_word: str | None = None,
    output_device: int | str | None = None,
) -> int:
    """The voice loop on the local microphone and speaker, until Ctrl+C.

    Parameters
    ----------
    config:
        The loaded ``assistant.config.Config``; ``config.voice`` is used when present.
    device:
        Microphone index or part of its name (default: ``voice.input_device``, else the
        system default).
    push_to_talk:
        Enter starts and ends each utterance, instead of the VAD.
    wake_word:
        ``hey_jarvis``, ``okay_nabu``, ``hey_mycroft``, ``alexa``, or None for none
        (default: ``voice.wake_word``).
    output_device:
        Speaker index or part of its name (default: ``voice.output_device``).

    Returns
    -------
    Exit status: 0 after Ctrl+C, 2 when the microphone or a model is missing.
    """
    from assistant.build import build_controller  # noqa: PLC0415 (loads models)
    from voice.microphone import MicrophoneSource  # noqa: PLC0415
    from voice.playback import NullSink, SoundDeviceSink  # noqa: PLC0415
    from voice.wakeword import WakeWordDetector  # noqa: PLC0415

    settings = VoiceLoopSettings.from_config(config)
    device = _voice_setting(config, "input_device", device)
    output_device = _voice_setting(config, "output_device", output_device)
    wake_word = _voice_setting(config, "wake_word", wake_word)
    push_to_talk = push_to_talk or bool(_voice_setting(config, "push_to_talk"))
    if wake_word in ("none", "off", ""):
        wake_word = None
    if push_to_talk and wake_word:
        print("note: push-to-talk needs no wake word; ignoring it")
        wake_word = None

    # 1. Devices and the wake word first: a missing microphone fails before models load.
    try:
        source = MicrophoneSource(device)
        wake = WakeGate(WakeWordDetector(wake_word)) if wake_word else None
    except VoiceError as e:
        print(f"error [{e.code}]: {e.message}")
        return 2
    try:
        sink = SoundDeviceSink(output_device)
    except VoiceError as e:
        print(f"note: {e.message} Replies will be printed, not spoken.")
        sink = NullSink()

    # 2. Models, loaded once and warmed.
    controller, report = build_controller(config)
    for notice in report.notices:
        print(f"note: {notice}")
    controller.warm_up_hearing()
    player = Player(sink, sample_rate=controller.speech_sample_rate or 22050)

    # 3. Listen.
    endpointer = PushToTalk(settings.endpoint) if push_to_talk else None
    stop_keys = threading.Event()
    if push_to_talk:
        print("Push-to-talk: press Enter, speak, press Enter again. Ctrl+C quits.")
        threading.Thread(
            target=_read_enter, args=(endpointer, stop_keys), name="enter-key", daemon=True
        ).start()
    elif wake is not None:
        print(f"Say '{wake.phrase}', then your request. Ctrl+C quits.")
    else:
        print("Listening: say what to draw. Ctrl+C quits.")
    loop = VoiceLoop(
        controller, source, player, wake=wake, settings=settings, endpointer=endpointer
    )
    print(f"files: {loop.session.folder}")
    try:
        result = loop.run()
    except KeyboardInterrupt:
        result = loop.result
    except VoiceError as e:
        print(f"error [{e.code}]: {e.message}")
        return 2
    finally:
        stop_keys.set()
        player.close()
    print(
        f"{len(result.turns)} turns, {result.barge_ins} interruptions, "
        f"VAD {result.vad_ms_per_frame:.2f} ms per 32 ms frame"
    )
    return 0
