"""Typed, validated configuration: config.yaml, then the profile, then env vars, then CLI flags."""

from __future__ import annotations

import copy
import os
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from assistant.i18n import N_

DEFAULT_CONFIG_PATH = Path(__file__).resolve().parent.parent / "config.yaml"
ENV_PREFIX = "ASSISTANT__"  # ASSISTANT__IMAGE__STEPS=2 sets image.steps
ENV_PROFILE = "ASSISTANT_PROFILE"
ENV_DATA_DIR = "ASSISTANT_DATA_DIR"


class _Section(BaseModel):
    # A misspelt key is refused rather than silently ignored.
    model_config = ConfigDict(extra="forbid", validate_assignment=True)


class AsrConfig(_Section):
    backend: Literal["openai-whisper", "faster-whisper"] = "openai-whisper"
    compute_type: str | None = None  # faster-whisper only
    cpu_threads: int = Field(0, ge=0, le=64)  # faster-whisper only; 0 = its own choice
    initial_prompt: str | None = None
    model: str = "packaged:base"  # packaged:base, an openai-whisper name, or a .pt path
    language: str | None = None  # null detects the language
    task: Literal["transcribe", "translate"] = "transcribe"
    no_speech_threshold: float = Field(0.6, ge=0.0, le=1.0)
    min_rms_dbfs: float = Field(-55.0, le=0.0)
    max_seconds: float = Field(120, gt=0, le=3600)
    # Confirm a spoken picture request heard with less confidence than this (0: never).
    confirm_below: float = Field(0.6, ge=0.0, le=1.0)


class StylePreset(_Section):
    prompt: str = Field(pattern=r"\{prompt\}")  # a template holding {prompt}
    negative: str = ""


class RewriteConfig(_Section):
    # packaged:qwen2.5-coder-0.5b (offline default), a .gguf file, hub id, local folder, "none"
    llm: str = "packaged:qwen2.5-coder-0.5b"
    # auto: GGUF sources through llama.cpp, hub ids and folders through transformers.
    llm_backend: Literal["auto", "llama.cpp", "transformers"] = "auto"
    # llama.cpp threads; 1 measured fastest on a busy 2-core CPU (2 spin-wait: 10-15x slower).
    llm_threads: int = Field(1, ge=1, le=256)
    # instructions + request + answer: the planner's longest prompt is ~1,200 tokens
    llm_context_tokens: int = Field(2048, ge=512, le=32768)
    llm_repeat_penalty: float = Field(1.3, ge=1.0, le=2.0)  # free text only, never JSON
    max_new_tokens: int = Field(48, ge=8, le=512)
    max_prompt_words: int = Field(60, ge=5, le=200)
    quality_terms: list[str] = ["highly detailed", "sharp focus"]
    default_negative: list[str] = ["blurry", "low quality", "deformed", "watermark", "text"]
    raw: bool = False
    plan_with_llm: bool = True  # ask the LLM what open requests mean (schema-enforced JSON)
    router: bool = True  # intent by meaning (sentence embeddings over example utterances)
    translate_with_llm: bool = False  # typed requests in other languages → English (validated)
    styles: dict[str, StylePreset] = {}


class ImageConfig(_Section):
    model: str = "random:small"  # random:<arch>, hub id, local folder, or .safetensors file
    checkpoint_config: str | None = None  # single-file checkpoints: their diffusers config
    steps: int | None = Field(None, ge=1, le=150)
    guidance: float | None = Field(None, ge=0.0, le=30.0)
    width: int = Field(512, ge=64, le=2048, multiple_of=8)
    height: int = Field(512, ge=64, le=2048, multiple_of=8)
    edit_strength: float = Field(0.6, gt=0.0, le=1.0)
    seed: int = Field(-1, ge=-1, lt=2**32)
    scheduler: str | None = None  # a name from pipelines.schedulers; null = the model's own
    inpaint_model: str | None = None
    upscaler_model: str | None = None
    pix2pix_model: str | None = None
    depth_model: str | None = None  # depth2img checkpoint (hub id / folder) or "random"
    segmenter: str | None = None  # CLIPSeg (hub id / folder) or "random", for "repaint the sky"
    controlnet_models: dict[str, str] = {}
    safety_checker: str | None = None
    watermark: bool | str = False
    vae_tiling: bool = False
    vae_slicing: bool = False
    cpu_offload: Literal["none", "model", "sequential"] = "none"
    attention: Literal["sdpa", "eager", "xformers"] = "sdpa"
    cpu_speedups: list[Literal["channels_last", "bf16_autocast", "prompt_cache"]] = []
    tiny_vae: str | None = None
    compile: Literal["none", "default", "max-autotune", "reduce-overhead"] = "none"
    cpu_runtime: Literal["torch", "openvino"] = "torch"  # the UNet's runtime on a CPU


class TtsConfig(_Section):
    engine: Literal["hibari", "piper", "coqui", "espeak"] = "hibari"
    voice: str | None = None
    speed: float = Field(1.0, gt=0.2, le=4.0)
    enabled: bool = True
    language_voices: dict[str, str] = {}  # reply language → voice ("espeak:de", "piper:<onnx>")


class VoiceConfig(_Section):
    input_device: int | str | None = None  # index or part of the name; null = default
    output_device: int | str | None = None
    wake_word: Literal["hey_jarvis", "okay_nabu", "hey_mycroft", "alexa"] | None = None
    push_to_talk: bool = False
    vad_threshold: float = Field(0.5, ge=0.2, le=1.0)  # the 0.15 hysteresis stays below it
    pre_roll_ms: int = Field(300, ge=0, le=2000)
    silence_ms: int = Field(700, ge=100, le=5000)
    min_speech_ms: int = Field(250, ge=0, le=5000)
    max_utterance_s: float = Field(15, gt=1, le=120)
    barge_in: bool = True
    barge_in_threshold: float = Field(0.9, ge=0.2, le=1.0)
    barge_in_frames: int = Field(6, ge=1, le=32)
    acknowledgement: str = N_("On it.")  # said in the talk's language when a catalog has it
    answer_window_s: float = Field(10, ge=0, le=120)
    # Speculative recognition starts at a pause this long; the turn ends at once when that
    # transcript sounds finished and the person stayed silent (frontends/voice_loop.py).
    pause_ms: int = Field(120, ge=0, le=2000)  # 0: no speculative recognition
    end_on_transcript: bool = True
    # ... but never before this much silence: a hesitation this long is not the end of a turn
    early_end_ms: int = Field(600, ge=0, le=2000)


class UiConfig(_Section):
    host: str = "127.0.0.1"
    port: int = Field(7860, ge=1, le=65535)
    share: bool = False  # a public gradio.live link (needs auth)
    # Logins "user:password" (or ASSISTANT_UI_AUTH="user:pw,user2:pw2"); required beyond
    # localhost or when shared.
    auth: list[str] = []
    # What the settings panel offers besides the configured model / voice (never a typed path).
    image_models: list[str] = []
    voices: list[str] = []


class ApiConfig(_Section):
    """The HTTP API's limits (`serve`): what one request may cost and how long it may take."""

    public_url: str | None = Field(None, pattern=r"^https?://[^\s/?#]+(/[^\s?#]*)?$")
    max_image_pixels: int = Field(50_000_000, ge=64 * 64)  # uploads above: image-too-large
    # Megapixel-steps (width x height x steps x images / 1e6) one image request may cost.
    cost_budget: dict[Literal["cpu", "mps", "cuda"], float] = {
        "cpu": 27.0,
        "mps": 105.0,
        "cuda": 210.0,
    }
    max_queued: int = Field(8, ge=1, le=1000)  # per engine, waiting or running; more: 429
    max_sessions: int = Field(1000, ge=1, le=1_000_000)  # live in memory; more: 429
    session_idle_s: float = Field(3600.0, gt=0)  # an unused session leaves memory after this
    # A stored session unchanged this long is deleted, files and all (null: kept forever).
    session_keep_s: float | None = Field(30 * 86400.0, gt=0)
    header_timeout_s: float = Field(10.0, gt=0, le=600)  # a request's headers must arrive
    body_timeout_s: float = Field(60.0, gt=0, le=3600)  # ... and its whole body
    keep_alive_s: float = Field(5.0, gt=0, le=600)  # an idle kept-alive connection closes


class Config(_Section):
    profile: Literal["offline", "hub", "tiny"] = "offline"
    device: Literal["auto", "cpu", "cuda", "mps"] = "auto"
    data_dir: Path = Path("~/.cache/voice-image-assistant")
    output_dir: Path = Path("outputs")
    warm_up: bool = True
    load_in_background: bool = True  # front ends start before the image model and ASR load
    reply_language: str = "auto"  # "auto" answers in the person's language; or a fixed code
    torch_threads: int | None = Field(None, ge=1, le=256)
    asr: AsrConfig = AsrConfig()
    rewrite: RewriteConfig = RewriteConfig()
    image: ImageConfig = ImageConfig()
    tts: TtsConfig = TtsConfig()
    voice: VoiceConfig = VoiceConfig()
    ui: UiConfig = UiConfig()
    api: ApiConfig = ApiConfig()

    @field_validator("reply_language")
    @classmethod
    def _known_reply_language(cls, value: str) -> str:
        from assistant.i18n import reply_languages  # noqa: PLC0415

        if value != "auto" and value not in reply_languages():
            raise ValueError(f"use auto or one of {', '.join(reply_languages())}")
        return value

    @property
    def cache_dir(self) -> Path:
        """Absolute folder for converted weights and caches (created on demand)."""
        return self.data_dir.expanduser()


class ConfigError(ValueError):
    """A configuration value was refused; the message names the key and what is allowed."""

    code = "config-invalid"


def _deep_merge(base: dict, extra: dict) -> dict:
    out = copy.deepcopy(base)
    for key, value in extra.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = _deep_merge(out[key], value)
        else:
            out[key] = value
    return out


def _set_dotted(tree: dict, dotted: str, value: Any) -> None:
    keys = [k for k in dotted.split(".") if k]
    if not keys:
        raise ConfigError(f"empty setting name in {dotted!r}")
    node = tree
    for key in keys[:-1]:
        node = node.setdefault(key, {})
        if not isinstance(node, dict):
            raise ConfigError(f"{dotted}: {key} is not a section")
    node[keys[-1]] = value


def parse_override(text: str) -> tuple[str, Any]:
    """Split ``image.steps=4`` into (``image.steps``, 4); the value is read as YAML."""
    if "=" not in text:
        raise ConfigError(f"--set expects key=value, got {text!r} (e.g. --set image.steps=4)")
    key, raw = text.split("=", 1)
    return key.strip(), yaml.safe_load(raw) if raw.strip() else None


def _env_overrides(environ: dict[str, str]) -> list[tuple[str, Any]]:
    pairs = []
    for name, raw in environ.items():
        if name.startswith(ENV_PREFIX):
            dotted = name[len(ENV_PREFIX) :].lower().replace("__", ".")
            pairs.append((dotted, yaml.safe_load(raw) if raw else None))
    if environ.get(ENV_PROFILE):
        pairs.append(("profile", environ[ENV_PROFILE]))
    if environ.get(ENV_DATA_DIR):
        pairs.append(("data_dir", environ[ENV_DATA_DIR]))
    return pairs


def _explain(error: ValidationError) -> str:
    lines = []
    for item in error.errors():
        key = ".".join(str(p) for p in item["loc"])
        got = item.get("input")
        lines.append(f"{key}: {item['msg']} (got {got!r})")
    return "invalid configuration:\n  " + "\n  ".join(lines)


def load_config(
    path: str | Path | None = None,
    overrides: list[tuple[str, Any]] | None = None,
    profile: str | None = None,
    environ: dict[str, str] | None = None,
) -> Config:
    """Load config.yaml, apply the profile, env vars and overrides, and validate.

    Parameters
    ----------
    path: the YAML file (default: the repository's config.yaml).
    overrides: (dotted key, value) pairs from the command line; they win over everything.
    profile: a profile name from the command line; wins over the file and ASSISTANT_PROFILE.
    environ: the environment to read (default: os.environ).

    Returns
    -------
    A validated ``Config``. Raises ``ConfigError`` naming the key and the allowed values.
    """
    path = Path(path) if path else DEFAULT_CONFIG_PATH
    try:
        raw = yaml.safe_load(path.read_text()) or {}
    except FileNotFoundError as e:
        raise ConfigError(f"config file {path} not found") from e
    except yaml.YAMLError as e:
        raise ConfigError(f"config file {path} is not valid YAML: {e}") from e
    if not isinstance(raw, dict):
        raise ConfigError(f"config file {path} must hold a mapping of settings")

    profiles = raw.pop("profiles", {}) or {}
    user = {}
    for key, value in _env_overrides(dict(os.environ if environ is None else environ)):
        _set_dotted(user, key, value)
    for key, value in overrides or []:
        _set_dotted(user, key, value)
    if profile:
        user["profile"] = profile

    chosen = user.get("profile", raw.get("profile", "offline"))
    if chosen not in profiles:
        raise ConfigError(
            f"profile: unknown profile {chosen!r}; choose one of {', '.join(sorted(profiles))}"
        )
    merged = _deep_merge(_deep_merge(raw, profiles[chosen] or {}), user)
    try:
        return Config.model_validate(merged)
    except ValidationError as e:
        raise ConfigError(_explain(e)) from e
