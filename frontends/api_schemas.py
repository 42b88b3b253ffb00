"""Request and response bodies of the HTTP API, shaped like OpenAI's where a route mirrors one.

Field names and meanings follow the ``openai`` package's own types
(``openai.types.ImagesResponse``, ``openai.types.audio.Transcription``, ...). Extra fields
we add (``seed``, ``model``, ``placeholder``, ...) are ones the openai client keeps in
``model_extra``. Other OpenAI request fields we have no use for (``quality``, ``style``,
``user``, ...) are accepted and ignored.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from pipelines.image_engine import MAX_GUIDANCE, MAX_PROMPT_CHARS, MAX_SEED, MAX_STEPS

MAX_IMAGES = 4  # images per request; each gets its own seed
MAX_SPEECH_CHARS = 4096  # OpenAI's limit for /v1/audio/speech input
MIN_SPEED, MAX_SPEED = 0.25, 4.0  # OpenAI's accepted range for speech speed

ImageFormat = Literal["b64_json", "url"]
TranscriptFormat = Literal["json", "text", "verbose_json", "srt", "vtt", "diarized_json"]
SpeechFormat = Literal["wav", "mp3", "opus", "aac", "flac", "pcm"]


class _Lenient(BaseModel):
    model_config = ConfigDict(extra="ignore")


# --- images ---------------------------------------------------------------------------------
class ImageGenerationRequest(_Lenient):
    """POST /v1/images/generations (JSON). OpenAI fields, plus our Stable Diffusion extras."""

    prompt: str = Field(max_length=MAX_PROMPT_CHARS, description="What to draw.")
    n: int = Field(1, ge=1, le=MAX_IMAGES, description="Images to make; each has its own seed.")
    size: str | None = Field(
        None,
        description="`WIDTHxHEIGHT` in pixels, multiples of 8 from 64 to 2048, or "
        "`auto`; default: the configured image.width x image.height.",
    )
    response_format: ImageFormat = Field(
        "b64_json", description="`b64_json` (default here) or `url` (served under /v1/files/)."
    )
    model: str | None = Field(
        None,
        description="Accepted and ignored: the loaded model is used "
        "and reported in the response's `model`.",
    )
    output_format: Literal["png"] = Field("png", description="Only PNG (with its parameters).")
    negative_prompt: str | None = Field(
        None, max_length=MAX_PROMPT_CHARS, description="What to keep out; default: the rewriter's."
    )
    seed: int | None = Field(
        None,
        ge=-1,
        le=MAX_SEED,
        description="Seed of the first image; image i gets seed + i. -1 or absent: random seeds.",
    )
    steps: int | None = Field(None, ge=1, le=MAX_STEPS, description="Denoising steps.")
    guidance: float | None = Field(
        None, ge=0.0, le=MAX_GUIDANCE, description="Classifier-free guidance scale."
    )
    raw: bool = Field(False, description="Use the prompt as given, without the rewriter.")
    stream: Literal[False] = Field(False, description="Streaming is not supported.")


class ImageData(BaseModel):
    """One image: ``b64_json`` or ``url``, and the prompt actually used."""

    b64_json: str | None = None
    url: str | None = None
    revised_prompt: str | None = None
    seed: int | None = Field(None, description="The seed that made it (repeatable).")


class ImagesResponse(BaseModel):
    """The images routes' answer, as ``openai.types.ImagesResponse``."""

    created: int
    data: list[ImageData]
    size: str | None = None
    output_format: Literal["png"] = "png"
    model: str = Field(description="The loaded image model (the request's `model` is ignored).")
    placeholder: bool = Field(
        description="True when the model has random weights: the "
        "pictures are noise, not the prompt."
    )
    notice: str | None = Field(
        None, description="Anything the caller should know, e.g. that a mask was ignored."
    )


# --- audio ----------------------------------------------------------------------------------
class TranscriptionUsage(BaseModel):
    type: Literal["duration"] = "duration"
    seconds: float


class TranscriptionResponse(BaseModel):
    """``response_format=json``: as ``openai.types.audio.Transcription``, plus our extras."""

    text: str
    language: str
    confidence: float = Field(description="0..1, exp of the mean token log probability.")
    usage: TranscriptionUsage


class TranscriptionVerboseResponse(BaseModel):
    """``response_format=verbose_json``: as ``openai.types.audio.TranscriptionVerbose``."""

    task: Literal["transcribe", "translate"]
    language: str = Field(description="ISO code Whisper detected or was configured with.")
    duration: float
    text: str
    confidence: float
    no_speech_prob: float
    usage: TranscriptionUsage


class SpeechRequest(_Lenient):
    """POST /v1/audio/speech (JSON)."""

    model: str = Field(description="Accepted and ignored: the loaded TTS engine speaks.")
    input: str = Field(min_length=1, max_length=MAX_SPEECH_CHARS, description="Text to speak.")
    voice: str | dict[str, Any] = Field(
        "default",
        description="Accepted and ignored (one voice is loaded); the voice used is "
        "in the `X-TTS-Voice` response header.",
    )
    response_format: SpeechFormat = Field(
        "mp3",
        description="mp3 (the default, as OpenAI's), wav, flac, opus (Ogg) or pcm (raw "
        "16-bit little-endian mono at 24 kHz, as OpenAI's); aac is refused.",
    )
    speed: float = Field(
        1.0,
        ge=MIN_SPEED,
        le=MAX_SPEED,
        description="Only 1.0 (the configured tts.speed) is supported.",
    )
    instructions: str | None = Field(None, description="Accepted and ignored.")
    stream_format: Literal["audio"] = Field("audio", description="Only whole audio.")


# --- sessions -------------------------------------------------------------------------------
class SessionCreated(BaseModel):
    session_id: str


class TurnRequest(BaseModel):
    """POST /v1/sessions/{id}/turns as JSON. Multipart takes `text`, `audio`, `image` parts."""

    model_config = ConfigDict(extra="forbid")

    text: str = Field(description="What the person typed, e.g. 'draw a red barn'.")
    language: str | None = Field(
        None,
        description="The language the person speaks in this session from now on (an "
        "ISO-639-1 code such as en), or auto to detect it; left out: unchanged.",
    )


class WireEvent(BaseModel):
    """One event of a turn, as ``assistant.events.Event.to_json()`` gives it."""

    type: str = Field(
        description="turn.start, asr.start, asr.end, translation, plan, image.start, "
        "image.progress, image.done, reply, tts.start, tts.chunk, tts.end, "
        "error, turn.end"
    )
    data: dict[str, Any]
    timestamp: float


class TurnResponse(BaseModel):
    session_id: str
    events: list[WireEvent]


class ExchangeView(BaseModel):
    user: str
    reply: str
    node_id: str | None = None


class SessionView(BaseModel):
    """A session's edit tree: every image node (nothing is deleted) and which is in focus."""

    session_id: str
    turns: int
    focus: str | None
    can_undo: bool
    can_redo: bool
    nodes: list[dict[str, Any]] = Field(
        description="Image nodes in creation order: id, "
        "parent_id, operation, prompt, seed, ..., url."
    )
    history: list[ExchangeView]


# --- health ---------------------------------------------------------------------------------
class HealthResponse(BaseModel):
    status: Literal["ok"] = "ok"
    models: dict[str, str | None] = Field(description="What each slot loaded (None: off).")
    placeholder: bool = Field(
        description="True when pictures are placeholders (random image weights)."
    )
    device: str
    auth: bool = Field(description="Whether /v1 routes need an API key.")
    max_upload_mb: float
