"""Short-utterance rules both Whisper backends share: how much audio context to encode, how
many tokens to allow, and when a decode is looping.

Whisper's encoder always reads a 30 s window (1500 frames of 20 ms); a 3 s request is 90%
padding. Like whisper.cpp's ``audio_ctx``, the backends encode only the frames that hold
the audio plus a margin (:func:`audio_context_frames`). A shortened context makes Whisper
more likely to loop at the end ("a cat. a cat. a cat."), so the decode stops as soon as
its tail repeats (:func:`repeated_tail_start`) and the extra copies are dropped. Pure
Python: no torch, no CTranslate2.
"""

from __future__ import annotations

import math

FRAMES_PER_SECOND = 50  # encoder frames per second of audio (20 ms each)
MEL_FRAMES_PER_FRAME = 2  # the encoder's second convolution halves 10 ms mel frames
FULL_CONTEXT_FRAMES = 1500  # 30 s: Whisper's own window
# Silence kept after the audio, in frames (1 s): room for Whisper to "hear" the end and
# emit end-of-text instead of looping. Chosen in benchmarks/asr.py (see docs/BENCHMARKS.md).
CONTEXT_MARGIN_FRAMES = 50
# Shortest context, in frames (15 s). `bench asr` 2026-12-02 (44 clips of 0.7-3.3 s, Whisper
# base): 8 s gave 21.5% WER against 15.8% for plain whisper.transcribe and 14.7% for the full
# window (the first words went wrong: "Chomia, cozy kitchen", "and do that", and espeak
# requests were heard as Latvian or Finnish); 15 s gave 15.7%, the same words as 30 s on the
# Piper voice. Also keeps CTranslate2 from reading encoded features of n_mels (80/128)
# frames as a mel spectrogram.
CONTEXT_MIN_FRAMES = 750
# A short-context decode less sure than this (mean token log probability) is decoded again
# on the full 30 s window and that result is kept: 6 of 44 clips in the bench above, the
# misheard ones ("make a ninja chat" -0.85, "Pintamoulun frutin" -1.01); WER 15.7% -> 14.1%.
FALLBACK_LOGPROB = -0.5
# Audio longer than this (s) keeps the full 30 s window; beyond 30 s the sliding window.
SHORT_CONTEXT_MAX_SECONDS = 25.0

# Token budget per second of audio (fast speech is ~6 tokens/s): stops a repetition loop
# on a 2 s clip after ~36 tokens instead of Whisper's 224, i.e. seconds sooner on a CPU.
TOKENS_PER_SECOND_MAX = 10
TOKENS_MIN = 16

# A tail that repeats one phrase REPEAT_STOP times (covering at least REPEAT_MIN_TOKENS
# tokens, so "very very" or "no, no" are not loops) ends the decode; a phrase of
# LONG_PHRASE_TOKENS or more ends it on its second copy ("Draw a cat. Draw a cat.").
REPEAT_STOP = 3
REPEAT_MIN_TOKENS = 6
LONG_PHRASE_TOKENS = 5
REPEAT_MAX_NGRAM = 24  # longest repeated phrase looked for, in tokens


def needs_full_window(avg_logprob: float, n_frames: int) -> bool:
    """True when a decode on ``n_frames`` is unsure enough to be redone on the full window."""
    return n_frames < FULL_CONTEXT_FRAMES and avg_logprob < FALLBACK_LOGPROB


def uses_short_context(seconds: float) -> bool:
    """True when audio this long (s) is decoded with a shortened encoder context."""
    return seconds <= SHORT_CONTEXT_MAX_SECONDS


def audio_context_frames(
    seconds: float, margin: int = CONTEXT_MARGIN_FRAMES, minimum: int = CONTEXT_MIN_FRAMES
) -> int:
    """Encoder frames to run for ``seconds`` of audio.

    Parameters
    ----------
    seconds:
        Audio length in seconds.
    margin, minimum:
        Frames of padding kept after the audio, and the fewest frames run.

    Returns
    -------
    ``ceil(seconds * 50) + margin``, at least ``minimum``, at most 1500 (the full window).
    """
    needed = math.ceil(seconds * FRAMES_PER_SECOND - 1e-9) + margin
    return int(min(FULL_CONTEXT_FRAMES, max(minimum, needed)))


def token_budget(seconds: float) -> int:
    """Most tokens to decode for ``seconds`` of audio (at most one 30 s window's worth)."""
    return TOKENS_MIN + math.ceil(min(seconds, 30.0) * TOKENS_PER_SECOND_MAX)


def repeated_tail_start(tokens: list[int]) -> int | None:
    """Where a looping tail begins to repeat, if the sequence ends in a loop.

    Parameters
    ----------
    tokens:
        Decoded text tokens so far (no prompt or start tokens).

    Returns
    -------
    ``k`` such that ``tokens[:k]`` keeps the text with the repeated phrase said once, when
    the sequence ends in ``REPEAT_STOP`` copies of a phrase (2 copies of a long one);
    ``None`` otherwise. Example: ``[7, 1, 2, 1, 2, 1, 2]`` -> 3 (keeps ``[7, 1, 2]``).
    """
    n_tokens = len(tokens)
    for n in range(1, REPEAT_MAX_NGRAM + 1):
        if n >= LONG_PHRASE_TOKENS:
            repeats = 2
        else:
            repeats = max(REPEAT_STOP, math.ceil(REPEAT_MIN_TOKENS / n))
        if n * repeats > n_tokens:
            continue
        phrase = tokens[n_tokens - n :]
        if all(
            tokens[n_tokens - (k + 1) * n : n_tokens - k * n] == phrase for k in range(1, repeats)
        ):
            return n_tokens - (repeats - 1) * n
    return None


def cut_repetition(tokens: list[int]) -> list[int]:
    """``tokens`` up to the first loop, with the looping phrase said once.

    Finds the first prefix that ends in a loop (:func:`repeated_tail_start`), i.e. where a
    decoder that stops on repeats would have stopped, so a loop cut off mid-phrase by the
    token budget (CTranslate2 cannot stop early) is removed too.
    Example: ``[7, 1, 2, 1, 2, 1, 2, 1]`` -> ``[7, 1, 2]``.
    """
    for end in range(1, len(tokens) + 1):
        start = repeated_tail_start(tokens[:end])
        if start is not None:
            return tokens[:start]
    return tokens
