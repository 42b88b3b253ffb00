"""`run_assistant.py bench startup`: how long until the assistant is ready, and how big it is.

Every row runs in a fresh Python process (imports and memory are only honest cold):

- one row per heavy import (torch, diffusers' pipelines, transformers, whisper, gradio, the
  TTS engines, the GGUF runtime): seconds and resident memory after the import alone;
- ``once``: ``build_controller`` as ``once "<text>"`` builds it (no ASR), then one typed turn;
- ``chat window``: ``build_controller`` with every engine plus the gradio app, as
  ``run_assistant.py`` (the chat window) builds it before it serves, then one typed turn.

For the two builds: seconds to ready (the front end could answer), seconds until the
background warm-up is done (when there is one), resident memory (RSS) at ready and the
process's peak (VmHWM), each build step's seconds and RSS after it, and the first turn. The
chat-window child caps malloc's arenas as ``run_assistant.py`` does for the window, and
after the turn both children trim as a turn's end does
(:func:`assistant.pool.release_memory_after_turn`); RSS before that trim is shown too.

Run: ``python run_assistant.py bench startup`` (2-3 minutes on 2 busy cores).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
MB = 1024 * 1024
FIRST_REQUEST = "draw a lighthouse on a cliff at night"
CHILD_TIMEOUT_S = 900  # one cold build on a busy 2-core machine stays far below this

# (label, import statement) run alone in a fresh interpreter
IMPORTS = (
    ("python + numpy", "import numpy"),
    ("torch", "import torch"),
    ("diffusers pipelines", "from diffusers import StableDiffusionPipeline"),
    ("transformers (causal LM)", "from transformers import AutoModelForCausalLM"),
    ("openai-whisper", "import whisper"),
    ("gradio", "import gradio"),
    ("hibari voice", "import hibari, onnxruntime"),
    ("piper voice", "import piper"),
    ("cyllama (llama.cpp)", "import cyllama"),
    ("assistant.build", "import assistant.build"),
    ("assistant.controller", "import assistant.controller"),
)


def rss_mb() -> tuple[float, float]:
    """(resident memory now, the process's peak so far), in MB, from /proc/self/status."""
    now = peak = float("nan")
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                now = int(line.split()[1]) / 1024
            elif line.startswith("VmHWM:"):
                peak = int(line.split()[1]) / 1024
    except OSError:
        pass
    return now, peak


def _child_import(statement: str) -> dict:
    start = time.perf_counter()
    exec(statement, {})  # noqa: S102 (a fixed statement from IMPORTS)
    return {"seconds": time.perf_counter() - start, "rss_mb": rss_mb()[0]}


def _child_build(kind: str, config_args: list[str]) -> dict:
    """Build as ``once`` or the chat window does, then run one typed turn."""
    import logging  # noqa: PLC0415

    logging.basicConfig(level=logging.WARNING)
    if kind != "once":  # as run_assistant.py does for the chat window, before its threads
        from common.malloc import limit_arenas  # noqa: PLC0415

        limit_arenas()
    start = time.perf_counter()
    from assistant.build import build_controller  # noqa: PLC0415
    from assistant.config import load_config, parse_override  # noqa: PLC0415
    from assistant.controller import UserInput  # noqa: PLC0415
    from assistant.pool import release_memory_after_turn  # noqa: PLC0415

    pairs = list(zip(config_args[::2], config_args[1::2], strict=True))
    config = load_config(
        next((v for k, v in pairs if k == "--config"), None),
        overrides=[parse_override(v) for k, v in pairs if k == "--set"],
        profile=next((v for k, v in pairs if k == "--profile"), None),
    )
    config.output_dir = Path(os.environ["STARTUP_BENCH_OUT"])
    if kind == "once":
        controller, report = build_controller(config, with_asr=False, with_tts=True)
    else:
        from frontends.chat_window import build_app  # noqa: PLC0415

        controller, report = build_controller(config)
        controller_s = time.perf_counter() - start
        build_app(controller, report.notices)
        report.seconds["gradio app"] = time.perf_counter() - start - controller_s
    ready_s = time.perf_counter() - start
    ready_rss, _ = rss_mb()
    background = getattr(report, "background", None)
    warm_s = None
    if background is not None:
        background.wait()
        warm_s = time.perf_counter() - start
    turn_start = time.perf_counter()
    events = list(controller.run_turn(controller.new_session(), UserInput(text=FIRST_REQUEST)))
    turn_s = time.perf_counter() - turn_start
    errors = [e.data.get("code") for e in events if e.type.value == "error"]
    untrimmed, _ = rss_mb()
    trim_start = time.perf_counter()
    release_memory_after_turn()  # what every front end gets at a turn's end
    trim_s = time.perf_counter() - trim_start
    now, peak = rss_mb()
    from benchmarks.memory_probe import mallinfo, resident_by_mapping  # noqa: PLC0415

    return {
        "malloc_after_trim": mallinfo(),
        "resident_by_mapping": resident_by_mapping(),
        "ready_s": ready_s,
        "warm_s": warm_s,
        "ready_rss_mb": ready_rss,
        "rss_after_turn_mb": now,
        "untrimmed_rss_mb": untrimmed,
        "trim_s": trim_s,
        "peak_rss_mb": peak,
        "first_turn_s": turn_s,
        "turn_errors": errors,
        "steps": report.seconds,
        "step_rss_mb": getattr(report, "rss_mb", {}),
        "heavy_modules": sorted(
            m
            for m in ("diffusers", "transformers", "whisper", "gradio", "piper", "cyllama")
            if m in sys.modules
        ),
    }


def _run_child(args: list[str], out_dir: Path) -> dict:
    env = {**os.environ, "STARTUP_BENCH_OUT": str(out_dir), "PYTHONPATH": str(REPO)}
    env.setdefault("HF_HUB_OFFLINE", "1")
    env.setdefault("TRANSFORMERS_OFFLINE", "1")
    env.setdefault("GRADIO_ANALYTICS_ENABLED", "False")
    done = subprocess.run(
        [sys.executable, "-m", "benchmarks.startup", *args],
        capture_output=True,
        text=True,
        env=env,
        cwd=REPO,
        timeout=CHILD_TIMEOUT_S,
        check=False,
    )
    lines = [line for line in done.stdout.splitlines() if line.startswith("{")]
    if done.returncode != 0 or not lines:
        return {"error": (done.stderr or done.stdout).strip().splitlines()[-1:]}
    return json.loads(lines[-1])


def _load() -> str:
    one, five, fifteen = os.getloadavg()
    return f"load average {one:.2f}, {five:.2f}, {fifteen:.2f}"


def run_startup_bench(
    config,
    config_path: Path | None = None,
    profile: str | None = None,
    overrides: list[str] | None = None,
    imports: bool = True,
) -> int:
    """Print the import table and the two build rows; return 0 if every child ran."""
    import tempfile  # noqa: PLC0415

    config_args: list[str] = []
    if config_path:
        config_args += ["--config", str(config_path)]
    if profile:
        config_args += ["--profile", profile]
    for item in overrides or []:
        config_args += ["--set", item]
    stamp = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())
    print(f"\nStart-up benchmark, profile {config.profile!r}: {os.cpu_count()} cores, {_load()}, "
          f"{stamp}")  # fmt: skip
    failed = False
    with tempfile.TemporaryDirectory() as tmp:
        if imports:
            print("\n| import (fresh process) | seconds | RSS MB |\n|---|---|---|")
            for label, statement in IMPORTS:
                r = _run_child(["--import", statement], Path(tmp))
                if "error" in r:
                    print(f"| {label} | failed: {r['error']} | |")
                    continue
                print(f"| {label} | {r['seconds']:.2f} | {r['rss_mb']:.0f} |", flush=True)
        rows = []
        for kind, label in (("once", "once (typed)"), ("chat", "chat window")):
            r = _run_child(["--build", kind, *config_args], Path(tmp))
            rows.append((label, r))
            failed = failed or "error" in r
        print(
            "\n| build | ready s | warm s | RSS at ready MB | RSS after turn MB (untrimmed; "
            "trim ms) | peak RSS MB | first turn s | heavy modules loaded at the end |"
        )
        print("|---|---|---|---|---|---|---|---|")
        for label, r in rows:
            if "error" in r:
                print(f"| {label} | failed: {r['error']} | | | | | | |")
                continue
            warm = f"{r['warm_s']:.1f}" if r["warm_s"] is not None else "-"
            print(
                f"| {label} | {r['ready_s']:.1f} | {warm} | {r['ready_rss_mb']:.0f} | "
                f"{r['rss_after_turn_mb']:.0f} ({r['untrimmed_rss_mb']:.0f}; "
                f"{1000 * r['trim_s']:.0f}) | "
                f"{r['peak_rss_mb']:.0f} | {r['first_turn_s']:.2f} | "
                f"{', '.join(r['heavy_modules'])} |"
            )
        for label, r in rows:
            if "error" not in r:
                rss = r["step_rss_mb"]
                steps = ", ".join(
                    f"{k} {v:.1f} s" + (f" ({rss[k]:.0f} MB)" if k in rss else "")
                    for k, v in r["steps"].items()
                )
                print(f"\n{label} steps: {steps}")
                where = ", ".join(f"{name} {mb:.0f}" for name, mb in r["resident_by_mapping"])
                print(f"{label} RSS after the turn by mapping, MB: {where}")
                print(f"{label} malloc after the trim, MB: {r['malloc_after_trim']}")
    print(f"\nDone: {_load()}")
    return 1 if failed else 0


def _child_main(argv: list[str]) -> int:
    if argv[:1] == ["--import"]:
        result = _child_import(argv[1])
    else:
        result = _child_build(argv[1], argv[2:])
    sys.stdout.write("\n" + json.dumps(result) + "\n")
    sys.stdout.flush()
    os._exit(0)  # native thread pools may abort a normal interpreter shutdown


if __name__ == "__main__":
    sys.exit(_child_main(sys.argv[1:]))
