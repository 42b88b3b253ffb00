#!/usr/bin/env python3
"""The one entry point of the voice and chat image assistant.

    python run_assistant.py                     # the chat window on http://127.0.0.1:7860
    python run_assistant.py once "draw a lighthouse on a cliff at night" "make it darker"
    python run_assistant.py once --audio request.wav
    python run_assistant.py voice               # hands-free on the microphone (--wake-word ...)
    python run_assistant.py serve               # HTTP API on :8000 (ASSISTANT_API_KEY: a key)
    python run_assistant.py bench               # time one turn stage by stage
    python run_assistant.py prepare             # convert and cache the packaged weights

Common flags: --profile offline|hub|tiny, --set key=value (repeatable), --config FILE.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
from pathlib import Path

# Gradio must not phone home (no network here); set before it is imported.
os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")


def _common_options(top_level: bool) -> argparse.ArgumentParser:
    """The options every command takes. They may come before the command too ("--profile tiny
    once ..."): under a command their defaults are left out, so they do not overwrite what was
    given before it."""
    common = argparse.ArgumentParser(add_help=False)

    def default(value):
        return value if top_level else argparse.SUPPRESS

    common.add_argument(
        "--config", type=Path, default=default(None), help="a config.yaml (default: the repo's)"
    )
    common.add_argument(
        "--profile", choices=["offline", "hub", "tiny"], default=default(None), help="model profile"
    )
    common.add_argument(
        "--set",
        dest="overrides",
        action="append",
        default=default([]),
        metavar="KEY=VALUE",
        help="override a setting, e.g. image.steps=4",
    )
    common.add_argument(
        "--language",
        type=_language_code,
        default=default(None),
        help="the language you speak: an ISO 639-1 code (en, de, ...) or auto to detect it "
        "(asr.language; the chat window and the API can also choose it per session)",
    )
    common.add_argument(
        "-v", "--verbose", action="store_true", default=default(False), help="debug logging"
    )
    return common


def _parser() -> argparse.ArgumentParser:
    from benchmarks.understand_cases import SPLITS  # the understanding sets on disk

    common = _common_options(top_level=False)
    parser = argparse.ArgumentParser(
        description=__doc__,
        parents=[_common_options(top_level=True)],
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    sub = parser.add_subparsers(dest="command")
    chat = sub.add_parser("chat", parents=[common], help="the chat window (default)")
    chat.add_argument("--share", action="store_true", help="also open a public gradio link")
    once = sub.add_parser(
        "once", parents=[common], help="run requests as turns of one session and write the results"
    )
    once.add_argument("text", nargs="*", help="one or more requests, run in order")
    once.add_argument(
        "--audio",
        type=Path,
        action="append",
        default=[],
        help="an audio file with a spoken request (repeatable)",
    )
    once.add_argument("--out", type=Path, help="output folder (default: output_dir)")
    once.add_argument("--json", action="store_true", help="print events as JSON lines")
    once.add_argument("--no-speech", action="store_true", help="skip the spoken reply")
    bench = sub.add_parser("bench", parents=[common], help="benchmarks that print a table")
    bench.add_argument(
        "what",
        nargs="?",
        default="turn",
        choices=[
            "turn",
            "rewrite",
            "image",
            "asr",
            "translate",
            "tts",
            "startup",
            "understand",
            "mishearings",
            "load",
        ],
        help="turn: one spoken turn by stage; rewrite: rules vs LLM on casual "
        "requests; image: the image engine vs plain diffusers; asr: word error rate of each "
        "ASR backend on two synthetic voices; translate: typed requests in other languages "
        "through the LLM; tts: the offline voices (time to first audio, real-time factor, "
        "Whisper round-trip WER); startup: time to ready and memory of once / the chat window; "
        "understand: intent and plan accuracy of rules / router / router + LLM on "
        "benchmarks/understand_set.yaml; mishearings: spoken commands through TTS, Whisper and "
        "the router; load: 20 clients against serve on 127.0.0.1, twice (latency, 429s, RSS)",
    )
    bench.add_argument(
        "--seconds", type=float, default=120.0, help="bench load: seconds per run (two runs)"
    )
    bench.add_argument("--clients", type=int, default=20, help="bench load: client threads")
    bench.add_argument(
        "--malloc-arena-max",
        type=int,
        default=None,
        help="bench load: MALLOC_ARENA_MAX for the server process (glibc malloc arenas)",
    )
    bench.add_argument(
        "--probe-memory",
        action="store_true",
        help="bench load: tracemalloc, object counts and malloc arenas of the server per run",
    )
    bench.add_argument(
        "--split",
        choices=SPLITS,
        help="bench understand: only this split (fresh...: benchmarks/understand_fresh*.yaml)",
    )
    bench.add_argument("--json", action="store_true", help="bench understand: print JSON")
    bench.add_argument(
        "--no-llm", action="store_true", help="bench understand: skip the router + LLM mode"
    )
    bench.add_argument("--repeats", type=int, default=3, help="timed runs after a warm-up")
    bench.add_argument(
        "--compare",
        nargs="*",
        default=None,
        metavar="VARIANT",
        help="bench image: also time variants (channels_last, tiny_vae, threads=1, "
        "compile=default, compile=max-autotune, compile=reduce-overhead, ...) against the "
        "default eager path in the same run; bench rewrite: the LLM runtime (threads=2, "
        "no-prefix-cache, transformers) against llama.cpp on the same requests",
    )
    bench.add_argument(
        "--operations",
        action="store_true",
        help="bench image: time every operation (generate, img2img, inpaint, outpaint, depth, "
        "upscale, ...) with its plain diffusers equivalent where one exists",
    )
    voice = sub.add_parser("voice", parents=[common], help="the hands-free voice loop")
    voice.add_argument("--device", help="microphone: index or part of its name")
    voice.add_argument("--output-device", help="speaker: index or part of its name")
    voice.add_argument(
        "--push-to-talk", action="store_true", help="Enter starts and ends each request"
    )
    voice.add_argument(
        "--wake-word", choices=["hey_jarvis", "okay_nabu", "hey_mycroft", "alexa", "none"]
    )
    serve = sub.add_parser(
        "serve", parents=[common], help="the HTTP API (OpenAI-shaped images/audio routes, turns)"
    )
    serve.add_argument("--port", type=int, default=8000)
    serve.add_argument("--host", help="interface to listen on (default: ui.host)")
    serve.add_argument("--max-upload-mb", type=float, default=25.0)
    sub.add_parser("prepare", parents=[common], help="convert and cache the packaged weights")
    return parser


def _language_code(value: str) -> str:
    """``auto`` or a two-letter language code, lower case ("EN" is "en")."""
    value = value.strip().lower()
    if value != "auto" and not (len(value) == 2 and value.isalpha()):
        raise argparse.ArgumentTypeError(
            f"{value!r} is not a language: use auto or a two-letter code such as en or de"
        )
    return value


def _load_config(args):
    from assistant.config import ConfigError, load_config, parse_override

    try:
        overrides = [parse_override(o) for o in args.overrides]
        if getattr(args, "language", None):  # what the person speaks; auto detects it
            code = "null" if args.language == "auto" else args.language
            overrides.append(parse_override(f"asr.language={code}"))
        return load_config(args.config, overrides=overrides, profile=args.profile)
    except ConfigError as e:
        sys.exit(f"error: {e}")


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    if (args.command or "chat") in ("serve", "chat"):
        from common.malloc import limit_arenas

        limit_arenas()  # before the servers' threads: free memory is not kept per thread
    config = _load_config(args)
    command = args.command or "chat"
    if command == "once":
        from frontends.cli import run_once

        return run_once(
            config, args.text, args.audio, out=args.out, as_json=args.json, speak=not args.no_speech
        )
    if command == "bench":
        if args.what == "rewrite":
            from benchmarks.rewrite import run_rewrite_bench

            compare = False if args.compare is None else (args.compare or True)
            return run_rewrite_bench(config, compare=compare)
        if args.what == "translate":
            from benchmarks.translate import run_translate_bench

            return run_translate_bench(config)
        if args.what == "understand":
            from benchmarks.understand import run_understand_bench

            return run_understand_bench(
                config, split=args.split, as_json=args.json, with_llm=not args.no_llm
            )
        if args.what == "mishearings":
            from benchmarks.mishearings import run_mishearings_bench

            return run_mishearings_bench(config)
        if args.what == "tts":
            from benchmarks.tts import run_tts_bench

            return run_tts_bench(config)
        if args.what == "load":
            from benchmarks.load import run_load_bench

            return run_load_bench(
                config,
                args.config,
                args.profile,
                args.overrides,
                seconds=args.seconds,
                clients=args.clients,
                malloc_arena_max=args.malloc_arena_max,
                probe_memory=args.probe_memory,
            )
        if args.what == "startup":
            from benchmarks.startup import run_startup_bench

            return run_startup_bench(config, args.config, args.profile, args.overrides)
        if args.what == "asr":
            from benchmarks.asr import run_asr_bench

            return run_asr_bench(config)
        if args.what == "image":
            from benchmarks.image import run_image_bench

            compare = False if args.compare is None else (args.compare or True)
            return run_image_bench(
                config, repeats=args.repeats, compare=compare, operations=args.operations
            )
        from benchmarks.turn import run_turn_bench

        return run_turn_bench(config, repeats=args.repeats)
    if command == "voice":
        from frontends.voice_loop import main as voice_main

        return voice_main(
            config,
            device=args.device,
            push_to_talk=args.push_to_talk,
            wake_word=args.wake_word,
            output_device=args.output_device,
        )
    if command == "serve":
        from frontends.api import serve

        return serve(config, port=args.port, host=args.host, max_upload_mb=args.max_upload_mb)
    if command == "prepare":
        from assistant.prepare import prepare

        return prepare(config)
    from frontends.chat_window import launch

    return launch(config, share=getattr(args, "share", False))


if __name__ == "__main__":
    sys.exit(main())
