"""OpenAI-shaped audio routes: /v1/audio/transcriptions (Whisper) and /v1/audio/speech (TTS).

Both use the models the server loaded at start, through the controller's verbs
(``Controller.transcribe``, ``Controller.speak``); neither loads a model per request. What
differs from OpenAI, on purpose:

- ``model``, ``voice``, ``temperature`` and ``instructions`` are accepted and ignored (one
  model of each kind is loaded; Whisper decodes greedily).
- ``language`` (an ISO-639-1 code) is honoured per request: Whisper decodes that request in
  it, whatever ``asr.language`` says; ``auto`` or none keeps ``asr.language`` (null: detect);
  a code Whisper does not know is refused.
- ``speed`` other than 1.0 is refused: the voice's pace is fixed when it loads (tts.speed).
- ``response_format`` for speech defaults to mp3, as OpenAI's; srt/vtt transcripts and
  aac speech are refused with a clear message.
"""

from __future__ import annotations

import logging
import threading
from typing import Annotated, Any

from fastapi import APIRouter, File, Form, Request, UploadFile
from fastapi.responses import PlainTextResponse, Response

from frontends.api_errors import ApiError, error_responses
from frontends.api_images import clean_field
from frontends.api_jobs import run_blocking
from frontends.api_limits import ApiLimits
from frontends.api_schemas import (
    SpeechRequest,
    TranscriptFormat,
    TranscriptionResponse,
    TranscriptionUsage,
    TranscriptionVerboseResponse,
)
from frontends.api_speech_codecs import CODECS, encode_speech

logger = logging.getLogger(__name__)

TRANSCRIPT_FORMATS = ("json", "text", "verbose_json")


def _loaded(name: str | None, what: str, setting: str) -> str:
    """The loaded model's name (``ControllerInfo.asr`` / ``.tts``), else ``model-missing``."""
    if name is None:
        raise ApiError(
            "model-missing",
            f"{what} is off on this server: no model is loaded "
            f"(check `{setting}` and the server log).",
        )
    return name


def request_language(language: str | None) -> str | None:
    """The request's ``language`` as Whisper's code, None to detect; else ``input-invalid``."""
    from whisper.tokenizer import LANGUAGES, TO_LANGUAGE_CODE

    code = (language or "").strip().lower()
    if code in ("", "auto"):
        return None
    code = TO_LANGUAGE_CODE.get(code, code)  # "english" -> "en", as Whisper takes both
    if code not in LANGUAGES:
        raise ApiError(
            "input-invalid",
            f"`language` {language!r} is not a language Whisper knows: send an ISO-639-1 "
            "code such as en or de, or auto to detect it.",
            param="language",
        )
    return code


def audio_router(controller: Any, limits: ApiLimits) -> APIRouter:
    """The /v1/audio routes, bound to ``controller``, within ``limits``."""
    router = APIRouter(tags=["audio"])

    @router.post(
        "/v1/audio/transcriptions",
        summary="Transcribe speech with Whisper (OpenAI audio.transcriptions.create)",
        response_model=TranscriptionResponse | TranscriptionVerboseResponse,
        responses={
            200: {
                "content": {"text/plain": {"schema": {"type": "string"}}},
                "description": "JSON by default; plain text for `text`.",
            },
            **error_responses(400, 401, 413, 429, 500, 503),
        },
    )
    async def transcribe(
        request: Request,
        file: Annotated[
            UploadFile, File(description="WAV, FLAC, MP3, OGG, WebM or M4A (by content).")
        ],
        model: Annotated[str, Form(description="Accepted and ignored (e.g. whisper-1).")] = "",
        language: Annotated[
            str | None,
            Form(description="ISO-639-1 code of the speech (e.g. en); auto: asr.language."),
        ] = None,
        prompt: Annotated[str | None, Form(description="Accepted and ignored.")] = None,
        response_format: Annotated[TranscriptFormat, Form()] = "json",
        temperature: Annotated[float | None, Form(description="Ignored (greedy).")] = None,
    ) -> Any:
        """Speech to text. Silence, noise and Whisper's known hallucinations are refused
        with `asr-no-speech` (400), unreadable audio with `audio-invalid` (400). The audio
        is decoded from the bytes sent and nothing else; a client that leaves stops it."""
        info = controller.describe()
        _loaded(info.asr, "Speech recognition", "asr.model")
        if response_format not in TRANSCRIPT_FORMATS:
            raise ApiError(
                "input-invalid",
                f"`response_format` {response_format!r} is not "
                f"supported here: use one of {', '.join(TRANSCRIPT_FORMATS)}.",
                param="response_format",
            )
        language = request_language(language)
        data = await file.read()

        def job(cancel: threading.Event) -> Any:
            return controller.transcribe(data, language=language, cancel=cancel)

        transcript = await run_blocking(request, job, limits.queue("transcription"))
        usage = TranscriptionUsage(seconds=round(transcript.duration_s, 3))
        if response_format == "text":
            return PlainTextResponse(transcript.text)
        if response_format == "verbose_json":
            return TranscriptionVerboseResponse(
                task=info.asr_task,
                language=transcript.language,
                duration=round(transcript.duration_s, 3),
                text=transcript.text,
                confidence=round(transcript.confidence, 4),
                no_speech_prob=round(transcript.no_speech_prob, 4),
                usage=usage,
            )
        return TranscriptionResponse(
            text=transcript.text,
            language=transcript.language,
            confidence=round(transcript.confidence, 4),
            usage=usage,
        )

    @router.post(
        "/v1/audio/speech",
        summary="Speak text (OpenAI audio.speech.create)",
        response_class=Response,
        responses={
            200: {
                "content": {media: {} for _, _, media in CODECS.values()},
                "description": "The audio file; `X-TTS-Voice` names the voice.",
            },
            **error_responses(400, 401, 413, 429, 500, 503),
        },
    )
    async def speak(body: SpeechRequest, request: Request) -> Response:
        """Text to speech with the loaded engine (Piper by default), as one audio file."""
        voice = _loaded(controller.describe().tts, "Speech output", "tts.enabled / tts.engine")
        if body.speed != 1.0:
            raise ApiError(
                "input-invalid",
                f"`speed` {body.speed:g} is not supported: the "
                "voice's pace is set when the server starts (tts.speed). Leave "
                "`speed` out or send 1.0.",
                param="speed",
            )

        text = clean_field(body.input, "input")
        if not text.strip():
            raise ApiError("input-invalid", "`input` has no text to speak.", param="input")

        def job(cancel: threading.Event) -> tuple[bytes, str]:
            # Not as a reply (that drops setting names and paths for the ear): a client's
            # text is spoken as sent ("and/or"), by the voice loaded at start.
            samples, rate = controller.speak(text, as_reply=False)
            return encode_speech(samples, rate, body.response_format)

        audio, media_type = await run_blocking(request, job, limits.queue("speech"))
        return Response(audio, media_type=media_type, headers={"X-TTS-Voice": str(voice)})

    return router
