"""The endpointer's pause announcement: recognition may start before the end is decided.

What a user checks: after a short pause the audio so far is offered for recognition; when
they stay quiet, the utterance that follows is that same audio (its transcript can be
reused); when they go on talking, it is not, and nothing is cut.
"""

from __future__ import annotations

import numpy as np
import pytest

from voice.endpointing import EndpointConfig, Endpointer, SpeechPaused, SpeechStarted, Utterance
from voice.vad import FRAME_SAMPLES

CONFIG = EndpointConfig(pre_roll_ms=0, silence_ms=480, pause_ms=288, post_roll_ms=192)


def _run(probabilities: list[float]) -> list:
    endpointer = Endpointer(CONFIG, clock=lambda: 0.0)
    rng = np.random.default_rng(0)
    events = []
    for p in probabilities:
        frame = rng.normal(0, 0.1 if p > 0.5 else 0.001, FRAME_SAMPLES).astype(np.float32)
        events += endpointer.push(frame, p)
    return events


def test_pause_offers_the_audio_the_utterance_will_hold():
    events = _run([0.9] * 20 + [0.05] * 20)

    paused = [e for e in events if isinstance(e, SpeechPaused)]
    utterances = [e for e in events if isinstance(e, Utterance)]
    assert len(paused) == 1 and len(utterances) == 1
    assert utterances[0].same_speech(paused[0])
    np.testing.assert_array_equal(paused[0].audio, utterances[0].audio)
    assert events.index(paused[0]) < events.index(utterances[0])


def test_speech_after_the_pause_continues_the_same_utterance():
    events = _run([0.9] * 20 + [0.05] * 10 + [0.9] * 10 + [0.05] * 20)

    paused = [e for e in events if isinstance(e, SpeechPaused)]
    utterances = [e for e in events if isinstance(e, Utterance)]
    assert len(utterances) == 1  # not cut at the pause
    assert len(paused) == 2
    assert not utterances[0].same_speech(paused[0])  # the first offer is stale
    assert utterances[0].same_speech(paused[1])


def test_no_pause_events_by_default():
    endpointer = Endpointer(EndpointConfig(pre_roll_ms=0, silence_ms=480))
    frame = np.zeros(FRAME_SAMPLES, np.float32)
    events = [e for p in [0.9] * 20 + [0.05] * 20 for e in endpointer.push(frame, p)]
    assert not any(isinstance(e, SpeechPaused) for e in events)


@pytest.mark.parametrize(
    "pause_ms, post_roll_ms", [(480, 192), (600, 192), (100, 192)], ids=["equal", "longer", "short"]
)
def test_pause_must_fall_between_post_roll_and_silence(pause_ms, post_roll_ms):
    with pytest.raises(ValueError, match="pause_ms"):
        EndpointConfig(silence_ms=480, pause_ms=pause_ms, post_roll_ms=post_roll_ms)


def _feed(endpointer, probabilities, rng):
    events = []
    for p in probabilities:
        frame = rng.normal(0, 0.1 if p > 0.5 else 0.001, FRAME_SAMPLES).astype(np.float32)
        events += endpointer.push(frame, p)
    return [e for e in events if not isinstance(e, SpeechStarted)]


def test_end_now_hands_back_the_pause_audio_before_the_silence_window():
    endpointer = Endpointer(CONFIG, clock=lambda: 0.0)
    rng = np.random.default_rng(0)
    (paused,) = _feed(endpointer, [0.9] * 20 + [0.05] * 9, rng)  # the 288 ms pause
    assert isinstance(paused, SpeechPaused) and endpointer.still_paused(paused)
    _feed(endpointer, [0.05] * 3, rng)  # still inside the 480 ms window
    (utterance,) = endpointer.end_now(paused)
    assert isinstance(utterance, Utterance) and utterance.same_speech(paused)
    np.testing.assert_array_equal(utterance.audio, paused.audio)
    # Nothing more comes at the end of the window: that utterance is over.
    assert _feed(endpointer, [0.05] * 10, rng) == [] and not endpointer.in_speech


def test_end_now_does_nothing_once_speech_resumed():
    endpointer = Endpointer(CONFIG, clock=lambda: 0.0)
    rng = np.random.default_rng(0)
    (paused,) = _feed(endpointer, [0.9] * 20 + [0.05] * 9, rng)
    _feed(endpointer, [0.9] * 5, rng)  # the person goes on
    assert not endpointer.still_paused(paused)
    assert endpointer.end_now(paused) == [] and endpointer.in_speech
    events = _feed(endpointer, [0.05] * 20, rng)
    (utterance,) = [e for e in events if isinstance(e, Utterance)]
    assert utterance.speech_frames == 25  # both parts, in one utterance


def test_an_early_end_waits_for_its_floor_however_soon_the_transcript_is_in():
    # The guess at 288 ms may be back at once (a GPU); a 416 ms hesitation is still safe.
    config = EndpointConfig(pre_roll_ms=0, silence_ms=480, pause_ms=288, early_end_ms=416)
    endpointer = Endpointer(config, clock=lambda: 0.0)
    rng = np.random.default_rng(0)
    (paused,) = _feed(endpointer, [0.9] * 20 + [0.05] * 9, rng)  # the pause: 9 frames
    assert endpointer.still_paused(paused) and not endpointer.may_end_early(paused)
    assert endpointer.end_now(paused) == [] and endpointer.in_speech  # too soon: not ended
    _feed(endpointer, [0.05] * 3, rng)  # 12 frames = 384 ms
    assert endpointer.end_now(paused) == []
    _feed(endpointer, [0.05] * 1, rng)  # 13 frames = 416 ms: the floor
    assert endpointer.may_end_early(paused)
    (utterance,) = endpointer.end_now(paused)
    assert utterance.same_speech(paused)


def test_a_hesitation_shorter_than_the_floor_keeps_the_request_whole():
    config = EndpointConfig(
        pre_roll_ms=0, silence_ms=480, pause_ms=192, post_roll_ms=192, early_end_ms=416
    )
    endpointer = Endpointer(config, clock=lambda: 0.0)
    rng = np.random.default_rng(0)
    (paused,) = _feed(endpointer, [0.9] * 20 + [0.05] * 6, rng)
    for _ in range(5):  # a caller asking every frame, transcript "finished" all along
        assert endpointer.end_now(paused) == []
        _feed(endpointer, [0.05], rng)
    _feed(endpointer, [0.9] * 10, rng)  # the person goes on after 352 ms
    events = _feed(endpointer, [0.05] * 20, rng)
    (utterance,) = [e for e in events if isinstance(e, Utterance)]
    assert utterance.speech_frames == 30  # both halves


@pytest.mark.parametrize("early_end_ms", [480, 600, -1])
def test_the_floor_must_fall_inside_the_silence_window(early_end_ms):
    with pytest.raises(ValueError, match="early_end_ms"):
        EndpointConfig(silence_ms=480, pause_ms=288, early_end_ms=early_end_ms)
