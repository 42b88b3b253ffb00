"""`run_endpointing_bench`: end of speech to transcript in the voice loop, per silence window.

The voice loop hears a request as finished after ``silence_ms`` of non-speech
(:class:`voice.endpointing.Endpointer` on Silero VAD probabilities, with hysteresis), then
transcribes it. This bench puts spoken requests (the packaged Piper voice) in a stream,
0.8 s of silence before and 1.5 s after, over a faint noise floor (-60 dBFS), and measures
for each silence window:

- **cut mid-sentence**: requests with a hesitation inserted between two halves (0.25,
  0.4, 0.6 s of silence) that come out as more than one utterance, i.e. a person cut off;
- **natural requests cut**: the same for the whole requests as Piper says them (its own
  pauses at commas);
- **end decision delay**: audio time from the last speech sample (energy) to the moment the
  end is decided (the window plus the VAD's own decay);
- **ASR**: our recognizer's time on the utterance it hands back;
- **end of speech to transcript** = decision delay + ASR (what the person waits for).

A "before" row repeats the 700 ms window with the 30 s-window decode for comparison.
"Speculative" rows set ``pause_ms``: recognition starts at the pause
(:class:`voice.endpointing.SpeechPaused`) and its transcript is used when the utterance ends
with the same speech, so the person waits ``max(pause delay + ASR, end decision delay)``.
"Early end" rows are the voice loop's default path: when that transcript is in, the person
is still silent and it sounds finished (:func:`voice.turn_end.sounds_finished`), the turn
ends at once (:meth:`voice.endpointing.Endpointer.end_now`). Recognition runs for real on
each pause, and the audio that arrives meanwhile (its wall time) is pushed before its result
is looked at, as the voice loop's listening thread would; a guess still running delays the
next one (one decode at a time).
"""

from __future__ import annotations

import logging
import statistics
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from voice.asr import build_asr
from voice.audio import SAMPLE_RATE
from voice.endpointing import EndpointConfig, Endpointer, SpeechPaused, Utterance
from voice.errors import VoiceError
from voice.turn_end import sounds_finished
from voice.vad import FRAME_SAMPLES, SileroVAD

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class Row:
    """One way of listening: a silence window, an optional guess at a pause, an early end.

    ``asr`` names a recognizer of :func:`_recognizers` ("ours": openai-whisper, short
    context; "before": its 30 s window; "faster": faster-whisper int8, short context).
    """

    label: str
    silence_ms: float
    pause_ms: float = 0.0
    asr: str = "ours"
    early_end: bool = False
    early_end_ms: float = 0.0  # least silence before an early end (EndpointConfig)
    hysteresis: float = 0.15  # the VAD's decay: speech goes on down to 0.5 - this

    @property
    def config(self) -> EndpointConfig:
        return EndpointConfig(
            hysteresis=self.hysteresis,
            silence_ms=self.silence_ms,
            pause_ms=self.pause_ms,
            post_roll_ms=min(200.0, self.pause_ms or 200.0),  # as the voice loop sets it
            early_end_ms=self.early_end_ms,
        )


def _early(pause: int, floor: int = 0, asr: str = "ours", hysteresis: float = 0.15) -> Row:
    name = {"ours": "", "faster": ", faster-whisper int8"}[asr]
    tail = f", no earlier than {floor} ms" if floor else ""
    decay = f", hysteresis {hysteresis:g}" if hysteresis != 0.15 else ""
    label = f"700 ms, guess at {pause} ms + early end{tail}{name}{decay}"
    return Row(label, 700, pause, asr, True, floor, hysteresis)


SILENCE_WINDOWS_MS = (700, 500, 400, 300)
# The rows of the first run (issue 13): windows, guesses at a pause, early ends.
WINDOW_ROWS = (
    Row("700 ms, 30 s window (before)", 700, asr="before"),
    *(Row(f"{ms} ms, short context", ms) for ms in SILENCE_WINDOWS_MS),
    *(
        Row(f"{ms} ms, speculative at a {p} ms pause", ms, p)
        for ms, p in ((500, 300), (700, 300), (700, 200))
    ),  # fmt: skip
    _early(200),
    _early(300),
)
# The fifth session's rows: shorter pauses, a floor under the early end, faster-whisper.
EARLY_END_ROWS = (
    _early(200),  # the default before
    _early(120),
    _early(120, 600),  # the default now
    _early(120, asr="faster"),
    _early(120, 450, asr="faster"),
    _early(120, 600, asr="faster"),
)
# Also measured in the fifth session (docs/BENCHMARKS.md): _early(120, 550), _early(64, 550,
# asr="faster") and _early(120, 550, asr="faster", hysteresis=0.05), within 0.01 s of the
# 550 ms floor's own row.
HESITATIONS_S = (0.25, 0.4, 0.6)
LEAD_S, TAIL_S = 0.8, 1.5  # silence before and after each request in the stream
NOISE_DBFS = -60.0  # noise floor of the stream (a quiet room through a microphone)
ENERGY_FRAME = 160  # samples (10 ms) per frame when finding where speech is
ENERGY_MIN_RMS = 0.005  # ~-46 dBFS: a 10 ms frame louder than this holds speech
# (first half, second half): a person pausing mid-request.
SPLIT_REQUESTS = (
    ("Draw a lighthouse", "on a cliff at night."),
    ("Can you paint me a picture", "of a forest with no people?"),
    ("Make an image of two dogs", "playing in the snow."),
    ("Show me a red sports car", "in the rain."),
    ("Now make the sky brighter", "and add some stars."),
    ("Put a small dragon", "on top of the castle."),
)


@dataclass
class WindowResult:
    """Measurements of one silence window."""

    label: str
    cut: dict[float, int] = field(default_factory=dict)  # hesitation s -> requests cut
    natural_cut: int = 0
    ended_early: int = 0
    delays: list[float] = field(default_factory=list)
    asr: list[float] = field(default_factory=list)
    total: list[float] = field(default_factory=list)


def speech_span(samples: np.ndarray) -> tuple[int, int]:
    """First and last+1 sample of the 10 ms frames louder than :data:`ENERGY_MIN_RMS`."""
    n = samples.size // ENERGY_FRAME
    frames = samples[: n * ENERGY_FRAME].reshape(n, ENERGY_FRAME)
    loud = np.flatnonzero(np.sqrt((frames**2).mean(axis=1)) > ENERGY_MIN_RMS)
    return int(loud[0]) * ENERGY_FRAME, (int(loud[-1]) + 1) * ENERGY_FRAME


def _stream(parts: list[np.ndarray], gaps_s: list[float], rng) -> tuple[np.ndarray, int]:
    """Lead silence, the parts (trimmed to their speech) joined by gaps, tail silence.

    Returns the stream and the sample just after its last speech.
    """
    pieces = [np.zeros(int(LEAD_S * SAMPLE_RATE), np.float32)]
    for i, part in enumerate(parts):
        start, end = speech_span(part)
        pieces.append(part[start:end])
        if i < len(gaps_s):
            pieces.append(np.zeros(int(gaps_s[i] * SAMPLE_RATE), np.float32))
    speech_end = sum(p.size for p in pieces)
    pieces.append(np.zeros(int(TAIL_S * SAMPLE_RATE), np.float32))
    stream = np.concatenate(pieces)
    noise = rng.normal(0.0, 10 ** (NOISE_DBFS / 20), stream.size).astype(np.float32)
    return stream + noise, speech_end


@dataclass
class _Heard:
    """One utterance the live path handed back, and when its transcript was there."""

    utterance: Utterance
    decided_at: int  # stream position when the end was decided
    transcript_at: int | None  # stream position when its guess's transcript was ready
    early: bool


def _live(
    stream: np.ndarray, probabilities: np.ndarray, config: EndpointConfig, asr, early_end: bool
) -> list[_Heard]:
    """The voice loop's path over a stream: endpointer, a real guess at each pause, early end.

    Positions are in samples of the stream; a guess's wall time is spent as stream time.
    """
    endpointer = Endpointer(config, clock=lambda: 0.0)
    heard: list[_Heard] = []
    paused: SpeechPaused | None = None
    ready_at, text, judged = 0, None, False
    busy_until = 0  # one decode at a time: a stale guess delays the next
    for i, probability in enumerate(probabilities):
        frame = stream[i * FRAME_SAMPLES : (i + 1) * FRAME_SAMPLES]
        events = endpointer.push(frame, float(probability))
        position = endpointer.position
        if (
            early_end
            and paused is not None
            and not judged
            and position >= ready_at
            and endpointer.may_end_early(paused)
        ):
            judged = True
            if text and sounds_finished(text):
                events += [(e, True) for e in endpointer.end_now(paused)]
        for item in events:
            event, early = item if isinstance(item, tuple) else (item, False)
            if isinstance(event, SpeechPaused):
                start = time.perf_counter()
                try:
                    text = asr.transcribe(event.audio).text
                except VoiceError:
                    text = None
                elapsed = time.perf_counter() - start
                begin = max(position, busy_until)
                ready_at = busy_until = begin + int(elapsed * SAMPLE_RATE)
                paused, judged = event, False
            elif isinstance(event, Utterance):
                same = event.same_speech(paused)
                heard.append(_Heard(event, position, ready_at if same else None, early))
                paused = None
    return heard


def _speak(texts: list[str]) -> list[np.ndarray]:
    from benchmarks.asr import synthesize_clips  # noqa: PLC0415 (avoids an import loop)

    return synthesize_clips(tuple(texts), "piper")


def _recognizers(names: set[str], cache_dir: Path) -> dict:
    """The recognizers the rows name, built and warmed once."""
    builders = {
        "ours": lambda: build_asr("openai-whisper", cache_dir=cache_dir),
        "before": lambda: build_asr("openai-whisper", cache_dir=cache_dir, short_context=False),
        "faster": lambda: build_asr("faster-whisper", cache_dir=cache_dir),
    }
    built = {}
    for name in sorted(names):
        try:
            built[name] = builders[name]()
            built[name].warm_up()
        except VoiceError as e:  # faster-whisper not installed or its weights not converted
            print(f"  ({name} recognizer unavailable: {e.code}; its rows are skipped)")
    return built


def run_endpointing_bench(
    cache_dir: Path, rows: tuple[Row, ...] = WINDOW_ROWS
) -> list[WindowResult]:
    """Measure every row on every stream, interleaved stream by stream; print a markdown table.

    Interleaved, so that load from other work on the machine falls on every row alike.
    """
    from benchmarks.asr import REQUESTS  # noqa: PLC0415 (avoids an import loop)

    rng = np.random.default_rng(0)
    vad = SileroVAD()

    def probabilities(stream: np.ndarray) -> np.ndarray:
        vad.reset()
        return vad.probabilities(stream)

    halves = _speak([h for pair in SPLIT_REQUESTS for h in pair])
    split_streams = [
        (pause, _stream([halves[2 * i], halves[2 * i + 1]], [pause], rng)[0])
        for pause in HESITATIONS_S
        for i in range(len(SPLIT_REQUESTS))
    ]
    split_probs = [probabilities(s) for _, s in split_streams]
    natural = [_stream([clip], [], rng) for clip in _speak(list(REQUESTS))]
    natural_probs = [probabilities(s) for s, _ in natural]

    asrs = _recognizers({row.asr for row in rows}, cache_dir)
    rows = tuple(row for row in rows if row.asr in asrs)
    results = {row: WindowResult(row.label, cut=dict.fromkeys(HESITATIONS_S, 0)) for row in rows}
    for (pause, stream), probs in zip(split_streams, split_probs, strict=True):
        for row in rows:
            heard = _live(stream, probs, row.config, asrs[row.asr], row.early_end)
            results[row].cut[pause] += len(heard) > 1
    for n, ((stream, speech_end), probs) in enumerate(zip(natural, natural_probs, strict=True)):
        for row in rows:
            _natural(results[row], row, asrs[row.asr], stream, speech_end, probs)
        print(f"  request {n + 1}/{len(natural)} done", flush=True)
    _print(list(results.values()), len(natural))
    return list(results.values())


def _natural(r: WindowResult, row: Row, asr, stream, speech_end: int, probs) -> None:
    """One natural request through ``row``'s path: cut or not, and how long the person waits."""
    found = _live(stream, probs, row.config, asr, row.early_end)
    r.natural_cut += len(found) > 1
    if not found:
        return
    last = found[-1]
    r.ended_early += last.early
    delay = (last.decided_at - speech_end) / SAMPLE_RATE
    start = time.perf_counter()
    try:
        asr.transcribe(last.utterance.audio)
    except VoiceError as e:
        logger.warning("%s: no transcript (%s)", row.label, e.code)
    elapsed = time.perf_counter() - start
    r.delays.append(delay)
    r.asr.append(elapsed)
    if last.transcript_at is not None:  # the guess at the pause was reused
        r.total.append((max(last.transcript_at, last.decided_at) - speech_end) / SAMPLE_RATE)
    else:
        r.total.append(delay + elapsed)


def _print(results: list[WindowResult], n_natural: int) -> None:
    hes = " / ".join(f"{p:g}" for p in HESITATIONS_S)
    print(
        f"\nEnd of speech to transcript (Silero VAD + Endpointer, threshold 0.5, hysteresis "
        f"0.15; {n_natural} Piper requests; {len(SPLIT_REQUESTS)} split requests per pause)\n"
    )
    print(
        f"| silence window, ASR | cut mid-sentence at a {hes} s pause | natural requests cut "
        "| end decision delay s (median) | ASR s (median) | end of speech to transcript s "
        "(median / max) | ended early |"
    )
    print("|---|---|---|---|---|---|---|")
    n_split = len(SPLIT_REQUESTS)
    for r in results:
        cuts = " / ".join(f"{r.cut[p]}/{n_split}" for p in HESITATIONS_S)
        print(
            f"| {r.label} | {cuts} | {r.natural_cut}/{n_natural} "
            f"| {statistics.median(r.delays):.2f} | {statistics.median(r.asr):.2f} "
            f"| {statistics.median(r.total):.2f} / {max(r.total):.2f} "
            f"| {r.ended_early}/{n_natural} |"
        )


if __name__ == "__main__":  # python -m benchmarks.asr_endpointing [--early-end]
    import os  # noqa: PLC0415
    import sys  # noqa: PLC0415

    from voice.whisper_weights import DEFAULT_CACHE_DIR  # noqa: PLC0415

    def _stamp() -> str:
        return f"load average {os.getloadavg()}, {time.strftime('%H:%M:%S UTC', time.gmtime())}"

    logging.basicConfig(level=logging.WARNING)
    print(_stamp())
    chosen = EARLY_END_ROWS if "--early-end" in sys.argv else WINDOW_ROWS
    run_endpointing_bench(DEFAULT_CACHE_DIR, chosen)
    print(_stamp())
