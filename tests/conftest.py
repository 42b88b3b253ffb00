"""Shared fixtures: everything offline, caches outside the repo, models loaded once per run."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

# Never reach for a model hub or phone home from a test.
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")

# Converted weights are cached across runs here (CI re-uses them on the same machine).
DATA_DIR = Path(os.environ.get("ASSISTANT_DATA_DIR", "~/.cache/voice-image-assistant")).expanduser()


@pytest.fixture(scope="module")
def one_torch_thread():
    """One torch thread for a module of image tests: on a shared 2-core machine two OpenMP
    threads of a tiny model spend most of their time waiting for each other (measured: 6.5 s
    vs 0.1 s per 64 px image). Use with ``pytestmark = pytest.mark.usefixtures(...)``."""
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="module")
def tokenizer_cache(tmp_path_factory):
    """A CLIP tokenizer cache per test module (the tokenizer is rebuilt from packaged files)."""
    return tmp_path_factory.mktemp("tokenizer")


@pytest.fixture(scope="session")
def data_dir() -> Path:
    DATA_DIR.mkdir(parents=True, exist_ok=True)
    return DATA_DIR


@pytest.fixture(scope="session")
def tiny_config(tmp_path_factory, data_dir):
    """The tiny profile: tiny random image model, rules-only rewriter, real Whisper and Piper."""
    from assistant.config import load_config

    out = tmp_path_factory.mktemp("outputs")
    return load_config(
        profile="tiny",
        environ={},
        overrides=[("output_dir", str(out)), ("data_dir", str(data_dir))],
    )


# Native thread pools (onnxruntime, CTranslate2, torch) can abort the interpreter during its
# own shutdown if a daemon thread is still inside them ("terminate called without an active
# exception", exit 134) after every result has been reported. End the process with pytest's
# own exit status once it is final. ASSISTANT_TEST_NORMAL_EXIT=1 turns this off for debugging.
_exit_status: list[int] = []


def pytest_sessionfinish(session, exitstatus):
    _exit_status.append(int(exitstatus))


def pytest_unconfigure(config):
    if _exit_status and not os.environ.get("ASSISTANT_TEST_NORMAL_EXIT"):
        import sys

        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(_exit_status[-1])
