"""Speech recognition: pick a backend by name; one contract for all of them.

``load_asr(backend, **kwargs)`` builds the recognizer an ``asr.backend`` setting names:

- ``openai-whisper``: :class:`voice.asr_whisper.WhisperASR` (torch; the default);
- ``faster-whisper``: :class:`voice.asr_faster.FasterWhisperASR` (CTranslate2, int8 on CPU).

Both take audio (a path, bytes, a gradio ``(rate, samples)`` tuple, samples) and return a
checked :class:`Transcript`; silence and Whisper's hallucinations raise
``VoiceError("asr-no-speech")`` (the shared guard in :mod:`voice.asr_base`). Backends are
imported only when built, so importing this module loads neither torch nor CTranslate2.

Example::

    asr = load_asr("openai-whisper", model="packaged:base")
    print(asr.transcribe("request.wav").text)
"""

from __future__ import annotations

import logging

from voice.asr_base import (
    DEFAULT_INITIAL_PROMPT,
    DOMAIN_PROMPT,
    HALLUCINATIONS,
    NO_SPEECH_MESSAGE,
    TASKS,
    Recognition,
    SpeechRecognizer,
    Transcript,
    is_hallucination,
    normalize_text,
)
from voice.errors import VoiceError

__all__ = [
    "BACKENDS",
    "DEFAULT_INITIAL_PROMPT",
    "DOMAIN_PROMPT",
    "HALLUCINATIONS",
    "NO_SPEECH_MESSAGE",
    "TASKS",
    "Recognition",
    "SpeechRecognizer",
    "Transcript",
    "build_asr",
    "is_hallucination",
    "load_asr",
    "normalize_text",
]

logger = logging.getLogger(__name__)

BACKENDS = ("openai-whisper", "faster-whisper")  # values of asr.backend
# Constructor arguments only some backends understand: dropped, with a warning, for others.
BACKEND_ONLY_KWARGS = {
    "compute_type": ("faster-whisper",),
    "cpu_threads": ("faster-whisper",),
    "context_margin_frames": ("openai-whisper",),
}


def load_asr(backend: str = "openai-whisper", **kwargs) -> SpeechRecognizer:
    """Build the speech recognizer an ``asr.backend`` setting names.

    Parameters
    ----------
    backend:
        ``"openai-whisper"`` or ``"faster-whisper"`` (``_`` and case are forgiven).
    **kwargs:
        Constructor arguments (``model``, ``device``, ``language``, ``task``, ``cache_dir``,
        ``initial_prompt``, thresholds, ``short_context``, ...). ``compute_type`` and
        ``cpu_threads`` are faster-whisper only, ``context_margin_frames`` openai-whisper
        only; other backends drop them with a warning.

    Returns
    -------
    A recognizer with ``transcribe(audio, language=None, task=None) -> Transcript`` and
    ``warm_up()``.

    Raises
    ------
    VoiceError
        ``input-invalid`` naming ``asr.backend`` for an unknown backend; ``model-missing``
        when the weights (or faster-whisper itself) cannot be found.
    """
    name = str(backend).strip().lower().replace("_", "-")
    if name not in BACKENDS:
        raise VoiceError(
            "input-invalid",
            f"asr.backend is {backend!r}; set it to one of {', '.join(BACKENDS)}.",
        )
    for key, owners in BACKEND_ONLY_KWARGS.items():
        if name in owners:
            continue
        if kwargs.get(key) is not None:
            logger.warning("asr.%s applies to %s only; ignored for %s", key, owners[0], name)
        kwargs.pop(key, None)
    if name == "faster-whisper":
        from voice.asr_faster import FasterWhisperASR  # noqa: PLC0415 (optional dependency)

        return FasterWhisperASR(**kwargs)
    from voice.asr_whisper import WhisperASR  # noqa: PLC0415 (imports torch)

    return WhisperASR(**kwargs)


build_asr = load_asr  # the name assistant/build.py and the benchmarks call
