"""Speculative recognition in the voice loop, on synthesized audio (fast, no models).

What a user checks: when they stop talking, the transcript started at the short pause is the
one the turn uses (one recognition, of exactly what they said) and a finished-sounding
request is answered without waiting out the whole silence window; when they go on talking
after the pause, the early guess is thrown away and the turn hears everything they said;
an unfinished-sounding request waits for the silence window.
"""

from __future__ import annotations

import threading
import time

import numpy as np
import pytest

from assistant.controller import Controller
from assistant.events import Event, EventType
from frontends.voice_loop import DEFAULT_EARLY_END_MS, VoiceLoopSettings, run_voice_loop
from voice.asr_base import Transcript
from voice.asr_speculative import SpeculativeASR
from voice.endpointing import EndpointConfig
from voice.errors import VoiceError
from voice.microphone import FakeSource
from voice.playback import FakeSink, Player
from voice.turn_end import sounds_finished
from voice.vad import SAMPLE_RATE

PAUSE_MS, SILENCE_MS = 200.0, 700.0


def burst(seconds: float, seed: int) -> np.ndarray:
    """Loud noise standing in for speech (the fake VAD calls it speech)."""
    rng = np.random.default_rng(seed)
    return rng.normal(0, 0.1, int(seconds * SAMPLE_RATE)).astype(np.float32)


def energy_vad(frame: np.ndarray) -> float:
    return 0.95 if float(np.sqrt(np.mean(frame**2))) > 0.01 else 0.02


class FakeASR:
    """Names what it hears by its length: ``texts[round(seconds of speech)]``-style lookup."""

    def __init__(self, text_of, delay_s: float = 0.15):
        self.text_of, self.delay_s = text_of, delay_s
        self.calls: list[tuple[int, str | None, str | None]] = []
        self.lock = threading.Lock()

    def transcribe(self, audio, language=None, task=None):
        samples = audio[1] if isinstance(audio, tuple) else audio
        with self.lock:
            self.calls.append((samples.size, language, task))
            time.sleep(self.delay_s)
        seconds = samples.size / SAMPLE_RATE
        text = self.text_of(seconds)
        if not text:
            raise VoiceError("asr-no-speech", "nothing")
        return Transcript(text, "en", 0.9, 0.0, seconds, self.delay_s)

    def warm_up(self):
        pass


class HearingController:
    """A controller stand-in that transcribes as the real one does (``self.asr``)."""

    tts = None
    # The verbs the loop calls besides turns, as the real controller has them.
    hearing_through = Controller.hearing_through
    hearing_options = Controller.hearing_options
    speech_sample_rate = Controller.speech_sample_rate

    def __init__(self, asr):
        self.asr = asr
        self.heard: list[tuple[int, str]] = []
        self.asr_seen: list[object] = []

    def new_session(self):
        return type("S", (), {"id": "s", "settings": type("T", (), {"speech_language": None})})()

    def run_turn(self, session, user_input, cancel=None):
        rate, audio = user_input.audio
        self.asr_seen.append(self.asr)
        yield Event(EventType.TURN_START, {"session": "s", "turn": 1, "input": "audio"})
        t = self.asr.transcribe((rate, audio), task="transcribe")
        self.heard.append((audio.size, t.text))
        yield Event(
            EventType.ASR_END,
            {
                "text": t.text,
                "heard": t.text,
                "language": "en",
                "confidence": 0.9,
                "no_speech_prob": 0.0,
                "audio_seconds": audio.size / rate,
                "seconds": t.elapsed_s,
            },
        )
        yield Event(EventType.TURN_END, {"ok": True, "code": None, "seconds": 0.0})


def run(segments, text_of, end_on_transcript=True, early_end_ms=0.0, asr_delay_s=0.15):
    asr = FakeASR(text_of, delay_s=asr_delay_s)
    controller = HearingController(asr)
    endpoint = EndpointConfig(
        pre_roll_ms=0, silence_ms=SILENCE_MS, pause_ms=PAUSE_MS, early_end_ms=early_end_ms
    )
    settings = VoiceLoopSettings(endpoint=endpoint, end_on_transcript=end_on_transcript)
    source = FakeSource(segments, realtime=True, speed=2.0)
    player = Player(FakeSink(speed=20.0))
    try:
        result = run_voice_loop(
            controller, source, player, settings=settings, vad=energy_vad, on_line=lambda _: None
        )
    finally:
        player.close()
    return result, controller, asr


def test_the_pause_transcript_is_used_and_a_finished_request_ends_early():
    result, controller, asr = run(
        [0.5, burst(1.5, 1), 1.5], lambda s: "Draw a lighthouse on a cliff at night."
    )
    (turn,) = result.turns
    assert turn.transcript == "Draw a lighthouse on a cliff at night."
    # One recognition only: the one started at the pause, of the very audio the turn got.
    assert len(asr.calls) == 1 and asr.calls[0][2] == "transcribe"
    assert asr.calls[0][0] == controller.heard[0][0]
    # Ended at the pause + recognition (0.22 + 0.3 s of audio), before the 0.7 s window.
    assert result.speculated == 1 and result.ended_early == 1
    assert controller.asr is asr  # the loop put the controller's own recognizer back
    assert isinstance(controller.asr_seen[0], SpeculativeASR)


def test_speech_after_the_pause_discards_the_guess_and_the_turn_hears_it_all():
    # 1.0 s of speech, 0.4 s gap (past the 200 ms pause, inside the 700 ms window), 1.0 s.
    def text_of(seconds):
        return "Draw a lighthouse." if seconds < 1.6 else "Draw a lighthouse on a cliff at night."

    result, controller, asr = run([0.5, burst(1.0, 1), 0.4, burst(1.0, 2), 1.5], text_of)
    (turn,) = result.turns  # not cut at the pause
    assert turn.transcript == "Draw a lighthouse on a cliff at night."
    heard_size = controller.heard[0][0]
    assert heard_size / SAMPLE_RATE > 2.2  # both bursts and the gap
    # The first guess (1 s of speech) was never handed to the turn.
    sizes = [size for size, _, _ in asr.calls]
    assert sizes[-1] == heard_size and all(s < heard_size for s in sizes[:-1])
    assert result.speculated == len(asr.calls) == 2
    assert result.ended_early == 1  # the second pause sounded finished


def test_an_unfinished_sounding_request_waits_for_the_silence_window():
    result, controller, asr = run([0.5, burst(1.5, 1), 1.5], lambda s: "Draw a lighthouse with")
    (turn,) = result.turns
    assert turn.transcript == "Draw a lighthouse with"
    assert result.ended_early == 0
    assert len(asr.calls) == 1  # the guess was still reused at the normal end


def test_no_speech_in_the_guess_is_no_turn_and_no_second_decode():
    result, controller, asr = run([0.5, burst(1.5, 1), 1.5], lambda s: "")
    assert len(asr.calls) == 1
    assert not controller.heard  # the turn's transcribe raised asr-no-speech from the guess


@pytest.mark.parametrize(
    "text, finished",
    [
        ("Draw a lighthouse on a cliff at night.", True),
        ("Make it darker.", True),
        ("Undo", True),
        ("Draw a lighthouse with", False),
        ("Put a small dragon on top of the", False),
        ("A castle, and", False),
        ("Show me a red sports car,", False),
        ("Paint a bowl of fruit um", False),
        ("Draw a cat...", False),
        ("", False),
    ],
)
def test_sounds_finished(text, finished):
    assert sounds_finished(text) is finished


def test_speculative_asr_answers_only_the_same_audio_and_arguments():
    asr = FakeASR(lambda s: f"{s:.1f} s")
    spec = SpeculativeASR(asr)
    audio = burst(1.0, 3)
    spec.speculate(audio, language=None, task="transcribe")
    other = burst(1.2, 4)
    assert spec.transcribe((SAMPLE_RATE, other), task="transcribe").text == "1.2 s"
    assert spec.discarded == 1 and spec.used == 0
    spec.speculate(audio, task="transcribe")
    # Another task is another question: decoded again.
    assert spec.transcribe((SAMPLE_RATE, audio.copy()), task="translate").text == "1.0 s"
    assert (audio.size, None, "translate") in asr.calls
    spec.speculate(audio, task="transcribe")
    # Taken before its thread may even have begun: still decoded once, by the guess.
    assert spec.transcribe((SAMPLE_RATE, audio.copy()), task="transcribe").text == "1.0 s"
    n = len(asr.calls)
    assert spec.used == 1 and spec.ready() is None  # used up
    assert [c for c in asr.calls if c == (audio.size, None, "transcribe")][-1:]
    assert spec.transcribe(audio.copy(), task="transcribe").text == "1.0 s"
    assert len(asr.calls) == n + 1  # no guess left: decoded as usual


def _halves_heard(early_end_ms: float) -> list[str]:
    """Two finished-sounding halves 0.4 s apart, recognized at once (as on a GPU)."""

    def text_of(seconds):
        return "Draw a lighthouse." if seconds < 1.6 else "Draw a lighthouse on a cliff at night."

    segments = [0.5, burst(1.0, 1), 0.4, burst(1.0, 2), 1.5]
    result, _, _ = run(segments, text_of, early_end_ms=early_end_ms, asr_delay_s=0.0)
    return [turn.transcript for turn in result.turns]


def test_a_hesitation_shorter_than_the_early_end_floor_is_not_taken_as_the_end():
    assert _halves_heard(DEFAULT_EARLY_END_MS) == ["Draw a lighthouse on a cliff at night."]
    # Without the floor, a recognizer this fast ends the turn inside the hesitation.
    assert _halves_heard(0.0)[0] == "Draw a lighthouse."


def test_the_voice_settings_start_guessing_early_and_keep_the_floor():
    from assistant.config import load_config

    config = load_config(None)
    endpoint = VoiceLoopSettings.from_config(config).endpoint
    assert endpoint.pause_ms == config.voice.pause_ms
    assert endpoint.post_roll_ms <= endpoint.pause_ms  # the pause's audio is the utterance's
    assert endpoint.early_end_ms == DEFAULT_EARLY_END_MS

    config.voice.silence_ms = 500  # shorter than the floor: the window ends turns itself
    settings = VoiceLoopSettings.from_config(config)
    assert settings.end_on_transcript is False and settings.endpoint.early_end_ms == 0.0
