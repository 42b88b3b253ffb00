"""`run_assistant.py once` as a person runs it: requests in, files and printed events out."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
import soundfile as sf

from pipelines.metadata import read_png_params

ROOT = Path(__file__).resolve().parent.parent


def run_cli(*args, cwd=ROOT):
    return subprocess.run(
        [sys.executable, str(ROOT / "run_assistant.py"), *args],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=cwd,
    )


def test_once_runs_turns_of_one_session_and_writes_files(tmp_path, data_dir):
    result = run_cli(
        "once",
        "--profile",
        "tiny",
        "--json",
        "--set",
        f"data_dir={data_dir}",
        "--out",
        str(tmp_path),
        "draw a red barn, no fence",
        "make it darker",
    )
    assert result.returncode == 0, result.stderr[-2000:]
    events = [json.loads(line) for line in result.stdout.splitlines() if line.startswith("{")]
    types = [e["type"] for e in events]
    assert types.count("turn.start") == 2 and types.count("turn.end") == 2
    plans = [e["data"] for e in events if e["type"] == "plan"]
    assert plans[0]["intent"] == "generate" and "fence" in plans[0]["negative_prompt"]
    assert plans[1]["intent"] == "edit"

    (folder,) = [p for p in tmp_path.iterdir() if p.is_dir()]
    first, second = read_png_params(folder / "n1.png"), read_png_params(folder / "n2.png")
    assert "red barn" in first["prompt"] and "fence" not in first["prompt"]
    # The edit's prompt describes the new scene ("dark"), not the instruction ("darker").
    assert second["parent"] == "n1" and "dark" in second["prompt"]
    assert "darker" not in second["prompt"]
    assert read_png_params(folder / "latest.png")["prompt"] == second["prompt"]
    assert "made it darker" in (folder / "reply.txt").read_text()  # says what changed
    audio, rate = sf.read(folder / "turn-002-reply.wav")
    assert rate == 24000 and len(audio) > rate // 2  # the default hibari voice


def test_once_reports_a_bad_setting_by_name(tmp_path):
    result = run_cli("once", "--profile", "tiny", "--set", "image.width=123", "a cat")
    assert result.returncode != 0
    assert "image.width" in result.stderr and "multiple of 8" in result.stderr


def test_language_flag_sets_the_spoken_language_or_detection():
    import run_assistant

    args = run_assistant._parser().parse_args(["voice", "--language", "EN"])
    assert run_assistant._load_config(args).asr.language == "en"
    args = run_assistant._parser().parse_args(["once", "--language", "auto", "a cat"])
    assert run_assistant._load_config(args).asr.language is None
    with pytest.raises(SystemExit) as refused:  # argparse: a clear message, exit status 2
        run_assistant._parser().parse_args(["once", "--language", "english", "a cat"])
    assert refused.value.code == 2


def test_common_options_work_before_the_command_too():
    import run_assistant

    for argv in (["--profile", "tiny", "once", "a cat"], ["once", "--profile", "tiny", "a cat"]):
        args = run_assistant._parser().parse_args(argv)
        assert args.profile == "tiny" and args.text == ["a cat"]
    args = run_assistant._parser().parse_args(["--set", "image.steps=3", "bench", "understand"])
    assert run_assistant._load_config(args).image.steps == 3
