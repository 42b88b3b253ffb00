"""Build the controller and its engines from a Config: each model loaded once, warmed at start."""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field, replace
from typing import Any

from assistant.config import Config
from assistant.controller import Controller, ImageDefaults
from assistant.cost import budget_for
from assistant.language import detect_language
from assistant.llm import load_chat_llm
from assistant.llm_chat import ChatLLM
from assistant.planner import LLMPlanner
from assistant.pool import BackgroundLoader, ModelPool, resident_mb
from assistant.rewrite import ChatPromptWriter, PromptRewriter, RuleRewriter
from assistant.store import SessionStore
from assistant.translate import LLMTranslator

logger = logging.getLogger(__name__)


@dataclass
class LoadReport:
    """How long each part took to load, and what the user should know about it."""

    seconds: dict[str, float] = field(default_factory=dict)
    notices: list[str] = field(default_factory=list)
    rss_mb: dict[str, float] = field(default_factory=dict)  # resident memory after each part
    # Loads still running after the build returned (``load_in_background``): ``wait()`` on it.
    background: BackgroundLoader | None = None


def resolve_device(requested: str) -> str:
    from pipelines.loading import resolve_device as _resolve  # noqa: PLC0415

    return _resolve(requested)


def build_llm(config: Config, device: str = "cpu") -> ChatLLM | None:
    """The one chat LLM (``rewrite.llm``) that the planner, rewriter and translator share;
    None when it is "none"."""
    rw = config.rewrite
    return load_chat_llm(
        rw.llm,
        config.cache_dir,
        backend=rw.llm_backend,
        device=device,
        threads=rw.llm_threads,
        context_tokens=rw.llm_context_tokens,
        repeat_penalty=rw.llm_repeat_penalty,
    )


def build_rewriter(config: Config, device: str, llm: ChatLLM | None = None) -> PromptRewriter:
    """The prompt rewriter; ``llm`` is the shared chat LLM (loaded here when not given)."""
    rw = config.rewrite
    rules = RuleRewriter(rw.quality_terms, rw.default_negative)
    if llm is None and not rw.raw:
        llm = build_llm(config, device)
    writer = ChatPromptWriter(llm, rw.max_new_tokens) if llm is not None and not rw.raw else None
    styles = {name: (s.prompt, s.negative) for name, s in rw.styles.items()}
    return PromptRewriter(rules, writer, rw.max_prompt_words, raw=rw.raw, styles=styles)


def build_router(config: Config):
    """The intent router (assistant/router.py); its example embeddings are cached."""
    from assistant.router import IntentRouter  # noqa: PLC0415 (loads the sentence encoder)

    return IntentRouter.load(cache_dir=config.data_dir.expanduser() / "router")


def build_image_engine(config: Config, device: str):
    from pipelines.image_engine import ImageEngine  # noqa: PLC0415
    from pipelines.loading import load_pipeline  # noqa: PLC0415
    from pipelines.speedups import compile_pipeline, cuda_fast_defaults  # noqa: PLC0415

    im = config.image
    pipe, info = load_pipeline(
        im.model,
        device=device,
        tokenizer_cache=config.cache_dir / "clip-tokenizer",
        config=im.checkpoint_config,
        vae_tiling=im.vae_tiling,
        vae_slicing=im.vae_slicing,
        cpu_offload=im.cpu_offload,
        attention=im.attention,
        cpu_speedups=im.cpu_speedups,
        tiny_vae=im.tiny_vae,
        cpu_runtime=im.cpu_runtime,
        runtime_cache=config.cache_dir,
    )
    # GPU speed path: TF32/cuDNN autotuning on CUDA (nothing elsewhere), then image.compile.
    applied = cuda_fast_defaults(info.device) + compile_pipeline(pipe, im.compile, info.device)
    if applied:
        info = replace(info, speedups=(*info.speedups, *applied))
    engine = ImageEngine(
        pipe,
        info,
        inpaint_model=im.inpaint_model,
        upscaler_model=im.upscaler_model,
        pix2pix_model=im.pix2pix_model,
        depth_model=im.depth_model,
        controlnet_models=im.controlnet_models or None,
        safety_checker=im.safety_checker,
        watermark=im.watermark,
    )
    if im.scheduler:
        engine.set_scheduler(im.scheduler)
    return engine


def warm_up_image(engine, config: Config) -> float:
    """The start-up image run. A compiled model warms at the configured size and guidance,
    so the compile (static shapes) happens here and not in the first request; otherwise a
    64 px image is enough to initialise the kernels."""
    im = config.image
    if im.compile == "none":
        return engine.warm_up()
    return engine.warm_up(width=im.width, height=im.height, guidance=im.guidance)


def build_asr(config: Config, device: str):
    from voice.asr import build_asr as build_recognizer  # noqa: PLC0415

    a = config.asr
    extra = {}
    if a.backend == "faster-whisper":
        extra = {"compute_type": a.compute_type, "cpu_threads": a.cpu_threads}
    return build_recognizer(
        a.backend,
        model=a.model,
        device=device,
        language=a.language,
        task=a.task,
        cache_dir=config.cache_dir / "whisper",
        initial_prompt=a.initial_prompt,
        no_speech_threshold=a.no_speech_threshold,
        min_rms_dbfs=a.min_rms_dbfs,
        max_seconds=a.max_seconds,
        **extra,
    )


def build_tts_engine(config: Config, device: str):
    from voice.tts import build_tts  # noqa: PLC0415

    t = config.tts
    return build_tts(t.engine, voice=t.voice, speed=t.speed, device=device, fallback=True)


def build_controller(
    config: Config, with_asr: bool = True, with_tts: bool = True
) -> tuple[Controller, LoadReport]:
    """Load every engine the config names, once, and hand them to a Controller."""
    from pipelines.metadata import save_png  # noqa: PLC0415
    from voice.audio import write_wav  # noqa: PLC0415

    report = LoadReport()
    device = resolve_device(config.device)
    if config.torch_threads:
        import torch  # noqa: PLC0415

        torch.set_num_threads(config.torch_threads)

    def done(name: str, seconds: float) -> None:
        report.seconds[name] = round(seconds, 2)
        report.rss_mb[name] = resident_mb()
        logger.info("Loaded %s in %.2f s", name, seconds)

    def timed(name: str, build):
        start = time.perf_counter()
        value = build()
        done(name, time.perf_counter() - start)
        return value

    # What a typed turn needs first loads first; the chat window is ready before it is done.
    report.background = loader = BackgroundLoader(done) if config.load_in_background else None

    def later(name: str, build):
        return loader.load(name, build) if loader is not None else timed(name, build)

    image_engine = later("image", lambda: _warm_image(build_image_engine(config, device), config))
    if is_placeholder_model(config.image.model):
        report.notices.append(
            f"Image model {config.image.model!r} has random weights: pictures are placeholders "
            "(noise), not your request. For real pictures set image.model to a local model "
            "folder, a .safetensors checkpoint, or a hub id such as stabilityai/sd-turbo "
            "(e.g. --set image.model=/path/to/model or --profile hub)."
        )
        logger.warning(report.notices[-1])
    llm = timed("llm", lambda: build_llm(config, device))  # loaded once, shared by all three
    rewriter = timed("rewriter", lambda: build_rewriter(config, device, llm))
    # Warmed inside its own load: the first spoken request is not the slow one.
    asr = later("asr", lambda: _warm(build_asr(config, device), config)) if with_asr else None
    if config.warm_up:  # the detector's model unpacks in about 1 s: not on the first request
        later("language detector", lambda: detect_language("warm up"))
    tts = (
        timed("tts", lambda: build_tts_engine(config, device))
        if (with_tts and config.tts.enabled)
        else None
    )
    im = config.image
    defaults = ImageDefaults(
        width=im.width,
        height=im.height,
        steps=im.steps,
        guidance=im.guidance,
        edit_strength=im.edit_strength,
        seed=im.seed,
    )
    # The session database lives beside the images it points to.
    store = SessionStore(config.output_dir.expanduser() / "sessions.sqlite3")
    planner = LLMPlanner(llm) if config.rewrite.plan_with_llm and llm is not None else None
    controller = Controller(
        image_engine,
        rewriter,
        save_png=save_png,
        write_wav=write_wav,
        asr=asr,
        tts=tts,
        defaults=defaults,
        output_dir=config.output_dir,
        store=store,
        image_models=ModelPool(
            lambda model: build_image_engine(_with_image_model(config, model), device),
            preloaded={config.image.model: image_engine},
        ),
        # The default voice is shared, not loaded a second time when a tab picks it by name
        # (unless it fell back to another engine at start).
        voices=ModelPool(
            lambda choice: build_voice(choice, config.tts.speed, device),
            preloaded={config.tts.engine: tts}
            if tts is not None
            and not config.tts.voice
            and str(getattr(tts, "name", "")).startswith(config.tts.engine)
            else None,
        ),
        planner=planner,
        prepare_plans=config.warm_up,
        router=later("router", lambda: build_router(config)) if config.rewrite.router else None,
        translator=LLMTranslator(llm)
        if config.rewrite.translate_with_llm and llm is not None
        else None,
        reply_language=config.reply_language,
        segmenter=_segmenter_loader(config, device) if config.image.segmenter else None,
        language_voices=config.tts.language_voices,
        image_model_choices=list(dict.fromkeys([config.image.model, *config.ui.image_models])),
        voice_choices=list(dict.fromkeys([config.tts.engine, *config.ui.voices])),
        # The resolved device, not image_engine.info: that would wait for the background load.
        budget=budget_for(config.api.cost_budget, device),
        confirm_below=config.asr.confirm_below,
    )
    # Last in the background queue (after the router), behind the LLM's lock: the fixed
    # prompts' KV states, loaded from the cache in milliseconds (``prepare`` saved them), or
    # evaluated once (~12 s each on one CPU thread) so that no request pays for them.
    if config.warm_up:
        for name, prompt in warmed_prompts(rewriter, planner):
            later(name, prompt.warm_up)
    if loader is not None:
        loader.start()  # after the foreground loads, which then had the cores to themselves
    return controller, report


def warmed_prompts(rewriter: PromptRewriter, planner: LLMPlanner | None) -> list[tuple[str, Any]]:
    """The LLM prompts whose fixed start is worth evaluating ahead: the rewriter's (every new
    picture), then the planner's (open requests the router is unsure of)."""
    prompts = []
    if isinstance(rewriter.llm, ChatPromptWriter):
        prompts.append(("rewriter prompt", rewriter.llm))
    if planner is not None:
        prompts.append(("planner prompt", planner))
    return prompts


def is_placeholder_model(model: str) -> bool:
    """True for the ``random:`` image models, whose pictures are noise (known before loading)."""
    return model.startswith("random:")


def _warm(engine, config: Config):
    if config.warm_up:
        engine.warm_up()
    return engine


def _warm_image(engine, config: Config):
    """The image engine after its start-up run (``warm_up_image``) when ``warm_up`` is on."""
    if config.warm_up:
        warm_up_image(engine, config)
    return engine


def _segmenter_loader(config: Config, device: str):
    """Load ``image.segmenter`` on the first request that names a region by what it shows."""
    from functools import cache  # noqa: PLC0415

    @cache
    def load():
        from pipelines.segment import load_segmenter  # noqa: PLC0415

        # offline=False: the cache first, then the hub; HF_HUB_OFFLINE=1 still means offline.
        return load_segmenter(
            config.image.segmenter, device, cache_dir=config.cache_dir, offline=False
        )

    return load


def _with_image_model(config: Config, model: str) -> Config:
    chosen = config.model_copy(deep=True)
    chosen.image.model = model
    return chosen


def build_voice(choice: str, speed: float, device: str):
    """A voice a session picked: "hibari", "piper", "espeak", "coqui", or "engine:voice"."""
    from voice.tts import build_tts  # noqa: PLC0415

    engine, _, voice = choice.partition(":")
    return build_tts(engine, voice=voice or None, speed=speed, device=device, fallback=False)
