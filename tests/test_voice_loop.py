"""The hands-free voice loop, without a sound card.

Real parts: Silero VAD, the endpointer, the microWakeWord model, the controller in the tiny
profile (openai-whisper with the packaged weights, Piper, tiny random diffusers). The
microphone is a FakeSource playing Piper-spoken requests (in real time where timings are
asserted) and the speaker a FakeSink that records what it played. Unit tests drive the
endpointer with synthetic probability sequences and the microphone with a stand-in
sounddevice.
"""

from __future__ import annotations

import logging
import threading
import time
from types import SimpleNamespace

import numpy as np
import pytest

from assistant.controller import Controller
from assistant.events import Event, EventType
from frontends.voice_loop import VoiceLoopSettings, run_voice_loop
from tests.speech import say
from voice.audio import load_audio
from voice.echo import EchoGuard, echo_share, is_echo
from voice.endpointing import (
    EndpointConfig,
    Endpointer,
    PushToTalk,
    SpeechDropped,
    SpeechStarted,
    Utterance,
)
from voice.errors import VoiceError
from voice.microphone import FakeSource, MicrophoneSource, find_device
from voice.playback import FakeSink, Player
from voice.vad import FRAME_SAMPLES, SAMPLE_RATE, SileroVAD
from voice.wakeword import WakeGate

logger = logging.getLogger(__name__)

REQUEST = "Draw a lighthouse on a cliff at night."


# --- shared pieces -------------------------------------------------------------------------


@pytest.fixture(scope="module")
def controller(tiny_config):
    from assistant.build import build_controller

    controller, _ = build_controller(tiny_config)
    return controller


@pytest.fixture(scope="module")
def speech(tmp_path_factory):
    """Piper-spoken clips, resampled to 16 kHz float32."""
    folder = tmp_path_factory.mktemp("speech")
    cache: dict[str, np.ndarray] = {}

    def get(text: str) -> np.ndarray:
        if text not in cache:
            wav = say(text, folder / f"clip{len(cache)}.wav")
            cache[text] = load_audio(str(wav), SAMPLE_RATE)
        return cache[text]

    return get


@pytest.fixture(scope="module")
def vad():
    return SileroVAD()


def frames_of(samples: np.ndarray) -> list[np.ndarray]:
    n = len(samples) // FRAME_SAMPLES
    return [samples[i * FRAME_SAMPLES : (i + 1) * FRAME_SAMPLES] for i in range(n)]


def push_all(endpointer, probabilities, marks=None):
    """Push frames whose first sample is their index (to trace them); collect the events."""
    events = []
    for i, p in enumerate(probabilities):
        frame = np.full(FRAME_SAMPLES, float(i), dtype=np.float32)
        events += endpointer.push(frame, p)
    return events + endpointer.flush()


def frame_ids(utterance: Utterance) -> list[int]:
    return [int(f[0]) for f in frames_of(utterance.audio)]


# --- the loop's logic, with a scripted controller ----------------------------------------


class ScriptedController:
    """A controller stand-in for the loop's own logic: records what it hears, replies on cue.

    ``script`` holds one ``(event type, data)`` list per turn; ``asr.end`` gets a made-up
    transcript unless the script gives one.
    """

    asr = tts = None  # its own hearing; no speech: nothing to play
    # The verbs the loop calls besides turns, as the real controller has them.
    hearing_through = Controller.hearing_through
    hearing_options = Controller.hearing_options
    speech_sample_rate = Controller.speech_sample_rate

    def __init__(self, script):
        self.script, self.heard = list(script), []

    def new_session(self):
        return SimpleNamespace(id="scripted")

    def run_turn(self, session, user_input, cancel=None):
        rate, audio = user_input.audio
        self.heard.append(audio)
        yield Event(
            EventType.TURN_START, {"session": "scripted", "turn": len(self.heard), "input": "audio"}
        )
        for kind, data in self.script[len(self.heard) - 1]:
            if kind == EventType.ASR_END:
                data = {**HEARD, "audio_seconds": len(audio) / rate, **data}
            yield Event(kind, data)
        yield Event(EventType.TURN_END, {"ok": True, "code": None, "seconds": 0.0})


# A complete asr.end payload (events are typed: every field is there).
HEARD = {
    "text": "...",
    "heard": "...",
    "language": "en",
    "confidence": 0.9,
    "no_speech_prob": 0.0,
    "audio_seconds": 0.0,
    "seconds": 0.0,
}


def reply(text: str, expects_answer: bool = False):
    return [
        (EventType.ASR_END, {}),
        (EventType.PLAN, {"intent": "describe", "request": "what prompt did you use"}),
        (EventType.REPLY, {"text": text, "expects_answer": expects_answer, "language": "en"}),
    ]


def test_wake_word_gates_requests_cuts_itself_out_and_a_question_reopens_the_mic(
    controller, speech, vad
):
    pytest.importorskip("pymicro_wakeword")
    from voice.wakeword import WakeWordDetector

    wake_request = speech(f"Hey Jarvis, {REQUEST}")
    scripted = ScriptedController([reply("Which colour?", expects_answer=True), reply("Done.")])
    source = FakeSource(
        [0.5, speech("Draw a red barn."), 1.0, wake_request, 1.5, speech("Make it blue."), 1.0]
        + [speech("Draw a red barn."), 1.0],
        realtime=True,
        speed=4.0,  # the scripted turns are instant; real time only keeps the order honest
    )
    vad.reset()
    player = Player(FakeSink(speed=20.0))
    wake = WakeGate(WakeWordDetector("hey_jarvis"))
    try:
        result = run_voice_loop(scripted, source, player, wake=wake, vad=vad, on_line=print)
    finally:
        player.close()
    # The barns had no wake word (the second came after the one answer was given).
    assert result.utterances == 4 and result.ignored == 2 and wake.detections == 1
    heard_request, heard_answer = scripted.heard
    # "Hey Jarvis, " was cut off before recognition (~0.8 s), the request kept whole.
    assert 0.4 < (len(wake_request) - len(heard_request)) / SAMPLE_RATE < 1.6
    assert 1.0 < len(heard_answer) / SAMPLE_RATE < 2.0  # "Make it blue." got in, no wake word
    # Whisper hears the request without the wake word. (The first ASR call of this file: it
    # also warms Whisper up for the timed turn below, as `run_assistant.py voice` does.)
    transcript = controller.asr.transcribe(heard_request).text.lower()
    assert "lighthouse" in transcript and "jarvis" not in transcript


def test_no_speech_turns_are_dropped_silently(speech, vad):
    scripted = ScriptedController(
        [[(EventType.ERROR, {"code": "asr-no-speech", "message": "I didn't hear any speech."})]]
        + [reply("Should not be reached.")]
    )
    vad.reset()
    lines: list[str] = []
    player = Player(FakeSink(speed=20.0))
    try:
        source = FakeSource([0.3, speech("Hmm."), 1.0])
        result = run_voice_loop(scripted, source, player, vad=vad, on_line=lines.append)
    finally:
        player.close()
    (turn,) = result.turns
    assert turn.ignored == "no-speech" and turn.reply is None
    assert lines == ["(no speech heard)"] and not player.history


def close_when(source: FakeSource, done, timeout_s: float = 30.0) -> None:
    """Close ``source`` (ending the loop) once ``done()`` is true, from a helper thread."""

    def watch() -> None:
        deadline = time.monotonic() + timeout_s
        while not done() and time.monotonic() < deadline:
            time.sleep(0.02)
        source.close()

    threading.Thread(target=watch, daemon=True).start()


@pytest.mark.parametrize("barge_in", [False, True], ids=["half-duplex", "full-duplex"])
def test_the_assistants_own_voice_does_not_become_a_request(speech, vad, barge_in):
    # The reply comes back into the microphone at -20 dB, as from a speaker beside it.
    spoken = "Here's a lighthouse on a cliff at night. Want me to change anything?"
    script = [
        reply(spoken)
        + [
            (
                EventType.TTS_CHUNK,
                {"index": 0, "seconds": 1.0, "audio": speech(spoken), "sample_rate": 16000},
            )
        ],
        # What Whisper would make of the echo:
        [(EventType.ASR_END, {"text": "a lighthouse on a cliff at night"})] + reply("No!")[1:],
    ]
    scripted = ScriptedController(script)
    speed = 1.0  # microphone and speaker in real time: faster drifted apart on a busy machine
    source = FakeSource([0.3, speech(REQUEST), 0.5], realtime=True, then="silence", speed=speed)
    player = Player(FakeSink(speed=speed, echo=source.add_echo, echo_gain=0.1), 16000)
    settings = VoiceLoopSettings(barge_in=barge_in, max_turns=2)
    close_when(
        source, lambda: player.history and player.history[-1].done and not player.is_playing()
    )
    vad.reset()
    try:
        result = run_voice_loop(scripted, source, player, settings=settings, vad=vad, on_line=print)
    finally:
        player.close()
    (chunk,) = player.history
    if not barge_in:  # half duplex: deaf while speaking, the reply plays to the end
        assert len(result.turns) == 1 and result.barge_ins == 0
        assert chunk.played == chunk.samples
    else:  # the known limit: a loud echo interrupts, but is not answered
        assert result.barge_ins == 1 and chunk.stopped
        first, echo = result.turns
        assert echo.interrupted_previous and echo.ignored == "echo" and echo.reply is None


# --- the whole loop ------------------------------------------------------------------------


def test_spoken_request_through_the_loop(controller, speech):
    # 1 s silence + the request + 1.5 s silence, in real time, as a microphone gives it.
    source = FakeSource([1.0, speech(REQUEST), 1.5], realtime=True, noise_dbfs=-70)
    sink = FakeSink(speed=8.0)  # the speaker may play faster than real time here
    player = Player(sink, sample_rate=controller.speech_sample_rate)
    lines: list[str] = []
    session = controller.new_session()
    try:
        result = run_voice_loop(controller, source, player, session=session, on_line=lines.append)
    finally:
        player.close()

    (turn,) = result.turns
    words = turn.transcript.lower()
    for word in ("draw", "lighthouse", "cliff", "night"):
        assert word in words, turn.transcript
    assert turn.intent == "generate" and turn.ok
    (node,) = session.state.nodes.values()  # the picture is a node of the edit tree
    assert node.path == turn.image_path and node.operation == "generate"
    # "On it." was played first, then every sentence of the reply, to the end.
    labels = [c.label for c in player.history]
    assert labels[0] == "ack" and len(labels) >= 2
    assert all(c.played == c.samples and not c.stopped for c in player.history)
    assert sink.received.size == sum(c.samples for c in player.history)
    assert np.sqrt(np.mean(sink.received**2)) > 0.01  # speech, not silence
    assert any(line.startswith("you: ") for line in lines)
    assert any(line.startswith("plan: generate") for line in lines)
    assert any(line.startswith("assistant: On it.") for line in lines)
    # Timings: the transcript comes after the 700 ms silence window plus Whisper.
    latency = turn.speech_end_to_transcript_s
    assert latency is not None and 0.6 < latency < 30
    assert turn.speech_end_to_ack_s >= latency
    assert turn.speech_end_to_first_audio_s >= turn.speech_end_to_ack_s
    assert result.utterances == 1 and result.barge_ins == 0
    logger.warning(
        "voice loop timings: end of speech -> transcript %.2f s (ASR %.2f s), -> 'On it.' "
        "%.2f s, -> first reply audio %.2f s; VAD %.2f ms per 32 ms frame",
        latency,
        turn.asr_seconds,
        turn.speech_end_to_ack_s,
        turn.speech_end_to_first_audio_s,
        result.vad_ms_per_frame,
    )


def test_barge_in_stops_the_reply_and_the_interruption_is_the_next_turn(controller, speech):
    interruption = speech("Make it darker.")
    source = FakeSource([0.5, speech(REQUEST)], realtime=True, then="silence")
    player = Player(FakeSink(speed=1.0), sample_rate=controller.speech_sample_rate)  # ~13 s reply
    pushed_at: list[float] = []

    def interrupt_once_the_reply_is_heard() -> None:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if any(
                c.label.startswith("turn 1 reply") and c.played_seconds > 0.5
                for c in player.history
            ):
                pushed_at.append(time.monotonic())
                source.push(interruption)
                return
            time.sleep(0.02)

    threading.Thread(target=interrupt_once_the_reply_is_heard, daemon=True).start()
    settings = VoiceLoopSettings(max_turns=2, drain_timeout_s=0.0)
    try:
        result = run_voice_loop(controller, source, player, settings=settings, on_line=print)
        stops, stopped_at = player.stops, player.last_stop_at  # before close() stops turn 2
    finally:
        player.close()

    assert pushed_at, "the reply never started playing"
    first, second = result.turns
    assert first.intent == "generate" and first.barged_in
    assert result.barge_ins == 1 and stops == 1
    # The sentence being played was cut short, and nothing of turn 1 was queued after the stop.
    cut = [c for c in first.reply_chunks if c.stopped]
    assert cut and 0 < cut[0].played < cut[0].samples
    assert all(c.queued_at < stopped_at for c in first.reply_chunks)
    reaction = stopped_at - pushed_at[0]
    assert reaction < 1.5  # measured ~0.25 s: 50 ms lead-in, 6 frames of 32 ms, one block
    # The interruption itself became the next turn.
    assert second.interrupted_previous and "darker" in second.transcript.lower()
    assert second.intent == "edit" and second.image_path
    logger.warning(
        "barge-in: playback stopped %.0f ms after the interruption began", 1000 * reaction
    )


# --- VAD and the echo guard ----------------------------------------------------------------


def test_silero_vad_finds_the_speech_and_keeps_state_per_stream(vad, speech):
    clip = np.concatenate([np.zeros(SAMPLE_RATE, np.float32), speech(REQUEST)])
    vad.reset()
    start = time.perf_counter()
    probabilities = vad.probabilities(clip)
    per_frame_ms = 1000 * (time.perf_counter() - start) / len(probabilities)
    silent, spoken = probabilities[:31], probabilities[31:]
    assert silent.max() < 0.1 and (spoken > 0.5).mean() > 0.6
    vad.reset()
    assert np.allclose(vad.probabilities(clip), probabilities)  # reset: same stream, same output
    with pytest.raises(ValueError):
        vad(np.zeros(480, np.float32))
    assert per_frame_ms < 10
    logger.warning("Silero VAD (ONNX): %.2f ms per 32 ms frame", per_frame_ms)


def echo_starts(vad, samples: np.ndarray, guard: EchoGuard) -> bool:
    """Would this audio, heard while the assistant speaks, start an utterance?"""
    vad.reset()
    endpointer = Endpointer()
    threshold, frames = guard.start_rule(playing=True)
    for frame in frames_of(samples):
        events = endpointer.push(frame, vad(frame), start_threshold=threshold, start_frames=frames)
        if any(isinstance(e, SpeechStarted) for e in events):
            return True
    return False


def test_echo_guard_ignores_faint_echo_but_not_a_loud_speaker(vad, speech):
    reply = np.concatenate([speech("Here's a lighthouse on a cliff at night."), np.zeros(8000)])
    guard = EchoGuard()
    assert not echo_starts(vad, reply * 10 ** (-50 / 20), guard)  # -50 dB: well separated
    # The known limit: Silero ignores level, so the reply at -20 dB (a speaker next to
    # the microphone) still looks like speech. is_echo() catches what it then says.
    assert echo_starts(vad, reply * 10 ** (-20 / 20), guard)
    assert not EchoGuard().start_rule(playing=False)[0]


def test_is_echo_compares_the_transcript_with_what_was_said():
    spoken = "On it. Here's a lighthouse on a cliff at night. Want me to change anything?"
    assert is_echo("a lighthouse on a cliff at night", spoken)
    assert not is_echo("make it darker", spoken)
    assert not is_echo("lighthouse", spoken)  # one word: never an echo
    assert echo_share("", spoken) == 0.0


# --- the endpointer on synthetic probabilities -----------------------------------------------


def test_endpointer_keeps_the_pre_roll_and_ends_after_the_silence_window():
    config = EndpointConfig(pre_roll_ms=300, silence_ms=700, post_roll_ms=200, min_speech_ms=250)
    # frames: 20 silence (0-19), 30 speech (20-49), 40 silence (50-89)
    probabilities = [0.05] * 20 + [0.9] * 30 + [0.05] * 40
    endpointer = Endpointer(config)
    events = []
    for i, p in enumerate(probabilities):
        new = endpointer.push(np.full(FRAME_SAMPLES, float(i), np.float32), p)
        if any(isinstance(e, Utterance) for e in new):
            ended_at = i
        events += new
    started, utterance = events
    assert isinstance(started, SpeechStarted) and isinstance(utterance, Utterance)
    # 300 ms pre-roll = 10 frames before the first speech frame; 200 ms post-roll = 7 frames.
    assert frame_ids(utterance) == list(range(10, 57))
    assert started.start_sample == utterance.start_sample == 10 * FRAME_SAMPLES
    assert ended_at == 49 + 22  # 700 ms of silence = 22 frames after the last speech frame
    assert utterance.speech_frames == 30 and not utterance.cut


def test_endpointer_hysteresis_bridges_dips_and_short_pauses():
    config = EndpointConfig(threshold=0.5, hysteresis=0.15, silence_ms=320, pre_roll_ms=0)
    # speech, a dip to 0.4 (still speech), a 7-frame pause (< 10 frames of silence), speech
    probabilities = [0.9] * 10 + [0.4] * 5 + [0.9] * 5 + [0.1] * 7 + [0.9] * 10 + [0.0] * 20
    events = push_all(Endpointer(config), probabilities)
    (utterance,) = [e for e in events if isinstance(e, Utterance)]
    assert frame_ids(utterance)[0] == 0 and utterance.speech_frames == 30


def test_endpointer_drops_blips_shorter_than_the_minimum():
    config = EndpointConfig(min_speech_ms=250, silence_ms=320)
    probabilities = [0.0] * 10 + [0.95] * 5 + [0.0] * 20  # 160 ms of "speech": a cough
    events = push_all(Endpointer(config), probabilities)
    assert [type(e) for e in events] == [SpeechStarted, SpeechDropped]
    assert events[1].speech_ms == pytest.approx(160)


def test_endpointer_cuts_at_the_maximum_length_and_goes_on():
    config = EndpointConfig(max_utterance_s=1.0, pre_roll_ms=0, silence_ms=320)
    probabilities = [0.9] * 50 + [0.0] * 20  # 1.6 s of speech
    events = push_all(Endpointer(config), probabilities)
    utterances = [e for e in events if isinstance(e, Utterance)]
    assert len(utterances) == 2
    assert utterances[0].cut and frame_ids(utterances[0]) == list(range(31))  # 31 frames = 1 s
    assert not utterances[1].cut and frame_ids(utterances[1])[0] == 31


def test_endpointer_stricter_start_rule_needs_consecutive_confident_frames():
    endpointer = Endpointer(EndpointConfig(pre_roll_ms=0))
    rule = {"start_threshold": 0.9, "start_frames": 6}
    bursts = [0.95] * 5 + [0.6] + [0.95] * 5 + [0.0]  # never 6 confident frames in a row
    for p in bursts:
        assert endpointer.push(np.zeros(FRAME_SAMPLES, np.float32), p, **rule) == []
    events = []
    for _ in range(6):
        events += endpointer.push(np.zeros(FRAME_SAMPLES, np.float32), 0.95, **rule)
    assert [type(e) for e in events] == [SpeechStarted]


def test_push_to_talk_records_between_start_and_stop():
    ptt = PushToTalk(EndpointConfig(pre_roll_ms=64, min_speech_ms=100))
    events = []
    for i in range(30):
        if i == 10:
            ptt.start()
        if i == 20:
            ptt.stop()
        events += ptt.push(np.full(FRAME_SAMPLES, float(i), np.float32), 0.0)
    started, utterance = events
    assert isinstance(started, SpeechStarted)
    assert frame_ids(utterance) == list(range(8, 20))  # 2 frames of pre-roll, then 10..19


# --- the wake gate (with a scripted detector) ------------------------------------------------


class ScriptedDetector:
    phrase = "Hey Test"

    def __init__(self, fire_at_frames):
        self.fire, self.n = set(fire_at_frames), 0

    def process(self, frame) -> bool:
        self.n += 1
        return self.n in self.fire


def gate_utterances(gate, probabilities):
    endpointer, accepted = Endpointer(EndpointConfig(pre_roll_ms=0, silence_ms=320)), []
    for i, p in enumerate(probabilities):
        frame = np.full(FRAME_SAMPLES, float(i), np.float32)
        gate.process(frame)
        for event in endpointer.push(frame, p):
            if isinstance(event, Utterance):
                audio = gate.accept(event)
                accepted.append(None if audio is None else [int(f[0]) for f in frames_of(audio)])
    return accepted


def test_wake_gate_trims_the_wake_word_arms_on_its_own_and_reopens_after_a_question():
    speech = [0.9] * 30 + [0.0] * 15  # one 30-frame utterance, then silence
    # No wake word: ignored. Wake word at frame 10 of a 30-frame utterance: the rest counts.
    gate = WakeGate(ScriptedDetector({40 + 45 + 10}), min_command_ms=200)
    accepted = gate_utterances(gate, [0.0] * 40 + speech + speech)
    assert accepted[0] is None and accepted[1][0] == 95 and accepted[1][-1] >= 114
    # The wake word alone (at the end of an utterance) arms the gate for the next one.
    gate = WakeGate(ScriptedDetector({29}), min_command_ms=200, listen_s=5)
    assert gate_utterances(gate, speech + speech + speech) == [None, list(range(45, 82)), None]
    # After a question the next utterance counts without the wake word, once.
    gate = WakeGate(ScriptedDetector(set()))
    gate.reopen(seconds=5)
    accepted = gate_utterances(gate, speech + speech)
    assert accepted[0] is not None and accepted[1] is None


def test_wake_gate_cooldown_ignores_repeated_detections():
    gate = WakeGate(ScriptedDetector({10, 12, 20, 200}), cooldown_s=2.0)
    hits = [gate.process(np.zeros(FRAME_SAMPLES, np.float32)) for _ in range(250)]
    assert [i + 1 for i, hit in enumerate(hits) if hit] == [10, 200]  # 2 s = 62.5 frames


def test_real_wake_word_model_hears_hey_jarvis_and_not_a_plain_request(speech):
    pytest.importorskip("pymicro_wakeword")
    from voice.wakeword import WakeWordDetector

    detector = WakeWordDetector("hey jarvis")
    pad = np.zeros(8000, np.float32)
    plain = np.concatenate([pad, speech(REQUEST), pad])
    assert not any(detector.process(f) for f in frames_of(plain))
    detector.reset()
    said = np.concatenate([pad, speech(f"Hey Jarvis, {REQUEST}"), pad])
    assert any(detector.process(f) for f in frames_of(said))
    with pytest.raises(VoiceError) as info:
        WakeWordDetector("hey computer")
    assert info.value.code == "input-invalid"


# --- playback -------------------------------------------------------------------------------


def test_player_plays_in_order_and_stops_at_once():
    sink = FakeSink(speed=1.0)
    player = Player(sink, sample_rate=16000, tail_s=0.0)
    tone = (0.2 * np.sin(np.arange(32000) / 5)).astype(np.float32)  # 2 s
    first = player.play(tone[:8000], 16000, "first")
    second = player.play(tone, 16000, "second")
    third = player.play(tone, 8000, "third (resampled)")
    assert third.samples == 64000
    time.sleep(0.8)
    assert player.is_playing()
    cut = player.stop()
    assert player.last_stop_at is not None
    stopped_played = second.played
    time.sleep(0.1)
    assert cut == [second, third] and second.stopped and third.stopped
    assert first.played == first.samples and not first.stopped
    assert 0 < second.played == stopped_played < second.samples  # nothing after the stop
    assert third.started_at is None and third.played == 0
    assert not player.is_playing() and player.wait(0.1)
    assert sink.received.size == first.played + second.played
    player.close()


# --- the microphone -------------------------------------------------------------------------

DEVICES = [
    {"index": 0, "name": "Built-in Microphone", "max_input_channels": 2,
     "max_output_channels": 0, "default_samplerate": 44100.0},
    {"index": 1, "name": "HDMI Output", "max_input_channels": 0,
     "max_output_channels": 2, "default_samplerate": 48000.0},
    {"index": 2, "name": "USB Headset Mic", "max_input_channels": 1,
     "max_output_channels": 2, "default_samplerate": 48000.0},
]  # fmt: skip


@pytest.fixture
def fake_sounddevice(monkeypatch):
    import sounddevice

    monkeypatch.setattr(sounddevice, "query_devices", lambda *a, **k: [dict(d) for d in DEVICES])
    monkeypatch.setattr(sounddevice.default, "device", [0, 1])
    return sounddevice


def test_missing_microphone_lists_the_available_inputs(fake_sounddevice):
    with pytest.raises(VoiceError) as info:
        MicrophoneSource("blue yeti")
    assert info.value.code == "audio-device-missing"
    message = info.value.message
    assert "0: Built-in Microphone" in message and "2: USB Headset Mic" in message
    assert "HDMI" not in message  # not an input
    assert "voice.input_device" in message
    with pytest.raises(VoiceError) as info:
        find_device(1, "input")  # exists, but only as an output
    assert info.value.code == "audio-device-missing"
    assert find_device("usb", "input")["index"] == 2
    assert find_device("0", "input")["name"] == "Built-in Microphone"
    assert find_device(None, "input")["index"] == 0
    assert find_device(None, "output")["index"] == 1


def test_no_audio_devices_at_all_is_a_clear_error(fake_sounddevice, monkeypatch):
    monkeypatch.setattr(fake_sounddevice, "query_devices", lambda *a, **k: [])
    with pytest.raises(VoiceError) as info:
        MicrophoneSource()
    assert info.value.code == "audio-device-missing" and "none found" in info.value.message


def test_microphone_frames_come_from_the_input_stream(fake_sounddevice, monkeypatch):
    signal = (0.3 * np.sin(np.arange(48000) * 2 * np.pi * 440 / 48000)).astype(np.float32)

    class FakeInputStream:
        def __init__(self, device, samplerate, channels, dtype, blocksize, callback):
            assert (device, samplerate, channels, dtype) == (2, 48000.0, 1, "float32")
            self.callback = callback

        def start(self):
            def run():
                for i in range(0, signal.size, 480):  # 10 ms blocks, as a device sends them
                    self.callback(
                        signal[i : i + 480, None], 480, None, SimpleNamespace(input_overflow=False)
                    )

            threading.Thread(target=run, daemon=True).start()

        def stop(self):
            pass

        def close(self):
            pass

    def no_16k(**kwargs):  # this device records at 48 kHz only
        raise RuntimeError("Invalid sample rate")

    monkeypatch.setattr(fake_sounddevice, "InputStream", FakeInputStream)
    monkeypatch.setattr(fake_sounddevice, "check_input_settings", no_16k)
    mic = MicrophoneSource("usb")
    assert mic.rate == 48000.0
    frames = []
    for frame in mic:
        frames.append(frame)
        if len(frames) == 25:  # 0.8 s at 16 kHz
            mic.close()
    audio = np.concatenate(frames)
    assert all(f.shape == (FRAME_SAMPLES,) and f.dtype == np.float32 for f in frames)
    spectrum = np.abs(np.fft.rfft(audio[1000:9000]))
    assert abs(np.argmax(spectrum) * SAMPLE_RATE / 8000 - 440) < 5  # resampled, same pitch


def test_voice_command_stops_before_loading_models_when_the_microphone_is_missing(
    fake_sounddevice, tiny_config, capsys
):
    from frontends.voice_loop import main

    assert main(tiny_config, device="blue yeti") == 2
    out = capsys.readouterr().out
    assert "error [audio-device-missing]" in out and "1: Built-in Microphone" not in out
    assert "0: Built-in Microphone" in out


def test_a_german_speaker_hears_the_acknowledgement_and_reply_in_german(
    controller, speech, monkeypatch
):
    from voice.asr import Transcript

    class GermanSpeaker:  # what Whisper gives for "Zeichne einen Leuchtturm bei Nacht"
        sample_rate = 16000

        def transcribe(self, audio, language=None, task=None):
            text = (
                "Draw a lighthouse at night" if task == "translate" else "Zeichne einen Leuchtturm"
            )
            return Transcript(text, "de", 0.9, 0.01, 2.0, 0.5)

    monkeypatch.setattr(controller, "asr", GermanSpeaker())
    source = FakeSource([0.5, speech(REQUEST), 1.5], realtime=True, noise_dbfs=-70)
    player = Player(FakeSink(speed=8.0), sample_rate=controller.speech_sample_rate)
    lines: list[str] = []
    session = controller.new_session()
    try:
        run_voice_loop(controller, source, player, session=session, on_line=lines.append)
    finally:
        player.close()

    assert "assistant: Bin dran." in lines  # said as soon as the request is understood
    assert any(line.startswith("assistant: Hier ist dein Bild: einen Leuchtturm") for line in lines)
    ack = player.history[0]
    assert ack.label == "ack" and ack.played == ack.samples > 1000  # spoken, in a German voice
    assert "espeak" in str(controller.voice_for(session).name)
