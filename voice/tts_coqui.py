"""Coqui TTS: any Coqui voice, by model name (downloaded once by Coqui) or from a local checkpoint.

Coqui downloads a named model with ``requests`` and no timeout, and asks for a
licence on the terminal for some models; either would hang a voice assistant.
So before handing a name to Coqui this module checks Coqui's local model
folder, and only when the model is absent (and downloads are allowed) probes
the download host with a short timeout. An unreachable model is a
``model-missing`` error that names the settings to change, within seconds.
"""

from __future__ import annotations

import logging
import os
import socket
import time
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

import numpy as np

from voice.errors import VoiceError
from voice.tts_base import SentenceSynthesizer, check_speed

logger = logging.getLogger(__name__)

DEFAULT_COQUI_MODEL = "tts_models/en/ljspeech/vits"
CHECKPOINT_NAMES = ("model_file.pth", "model_file.pth.tar", "model.pth", "checkpoint.pth")
CONFIG_NAME = "config.json"
PROBE_TIMEOUT_S = 3.0  # how long to wait for the download host before calling a model missing
HTTPS_PORT = 443
HF_HOST = "huggingface.co"
FAIRSEQ_HOST = "dl.fbaipublicfiles.com"
OFFLINE_ENV_VARS = ("HF_HUB_OFFLINE", "TTS_OFFLINE")  # "1" forbids downloads
_TRUE_VALUES = {"1", "true", "yes", "on"}

_WHAT_TO_DO = (
    "Set `tts.engine` to `piper` (the offline voice), or set `tts.voice` to a local Coqui "
    "model folder (checkpoint + config.json)"
)


def downloads_allowed() -> bool:
    """Return False when ``HF_HUB_OFFLINE`` or ``TTS_OFFLINE`` is set to a true value."""
    return not any(
        os.environ.get(name, "").strip().lower() in _TRUE_VALUES for name in OFFLINE_ENV_VARS
    )


def resolve_local_model(
    model_path: str | Path, config_path: str | Path | None = None
) -> tuple[Path, Path]:
    """Find the checkpoint and config.json of a local Coqui model.

    Parameters
    ----------
    model_path:
        A checkpoint file (``.pth``), or a folder holding one and ``config.json``.
    config_path:
        The model's ``config.json``; ``None`` looks beside the checkpoint.

    Returns
    -------
    tuple[Path, Path]
        ``(checkpoint_path, config_path)``.

    Raises
    ------
    VoiceError
        ``model-missing`` if either file cannot be found.
    """
    path = Path(model_path).expanduser()
    if path.is_dir():
        named = [path / name for name in CHECKPOINT_NAMES if (path / name).is_file()]
        found = named or sorted(p for p in path.iterdir() if p.suffix in (".pth", ".pt", ".tar"))
        if len(found) != 1 and not named:
            raise VoiceError(
                "model-missing",
                f"Coqui model folder {str(path)!r} holds {len(found)} checkpoints; it needs "
                f"exactly one (or one named model.pth). Set `tts.voice` to the checkpoint file.",
            )
        checkpoint = found[0]
        config = Path(config_path) if config_path is not None else path / CONFIG_NAME
    elif path.is_file():
        checkpoint = path
        config = Path(config_path) if config_path is not None else path.parent / CONFIG_NAME
    else:
        raise VoiceError(
            "model-missing",
            f"Coqui model {str(path)!r} does not exist. {_WHAT_TO_DO}.",
        )
    if not config.is_file():
        raise VoiceError(
            "model-missing",
            f"Coqui model config {str(config)!r} does not exist: a local model needs its "
            "config.json beside the checkpoint.",
        )
    return checkpoint, config


def _host_reachable(host: str, timeout_s: float = PROBE_TIMEOUT_S) -> bool:
    """Return True if a TCP connection to ``host`` on port 443 opens within ``timeout_s``."""
    try:
        with socket.create_connection((host, HTTPS_PORT), timeout=timeout_s):
            return True
    except OSError:
        return False


class _ModelEntry:
    """One named model of Coqui's catalogue, and where Coqui keeps its files."""

    def __init__(self, manager: Any, name: str) -> None:
        self.name = name
        parts = name.split("/")
        if len(parts) != 4:
            raise VoiceError(
                "model-missing",
                f"{name!r} is not a Coqui model name (type/language/dataset/model, e.g. "
                f"{DEFAULT_COQUI_MODEL!r}) nor an existing path. {_WHAT_TO_DO}.",
            )
        if "fairseq" in name:
            self.item: dict[str, Any] = {}
        else:
            try:
                self.item = manager.models_dict[parts[0]][parts[1]][parts[2]][parts[3]]
            except KeyError as e:
                raise VoiceError(
                    "model-missing",
                    f"Coqui has no model named {name!r} (`TTS.list_models()` lists them). "
                    f"{_WHAT_TO_DO}.",
                ) from e
        self.folder = Path(manager.output_prefix) / name.replace("/", "--")

    @property
    def host(self) -> str:
        if "repo_id" in self.item:
            return HF_HOST
        url = self.item.get("github_rls_url")
        if isinstance(url, list):
            url = url[0] if url else None
        hostname = urlparse(url).hostname if url else None
        return hostname or FAIRSEQ_HOST

    def is_cached(self) -> bool:
        if "repo_id" in self.item:
            try:
                from huggingface_hub import snapshot_download

                snapshot_download(
                    self.item["repo_id"],
                    allow_patterns=self.item.get("allow"),
                    ignore_patterns=self.item.get("ignore"),
                    local_files_only=True,
                )
            except Exception:  # any failure here means "not in the local cache"
                return False
            return True
        return self.folder.is_dir() and any(self.folder.iterdir())

    def licence_agreed(self) -> bool:
        if not self.item.get("tos_required"):
            return True
        return (self.folder / "tos_agreed.txt").exists() or os.environ.get(
            "COQUI_TOS_AGREED"
        ) == "1"


def ensure_model_available(model_name: str, allow_download: bool | None = None) -> None:
    """Make sure ``TTS(model_name=...)`` will neither hang nor prompt.

    Parameters
    ----------
    model_name:
        A Coqui catalogue name, e.g. ``tts_models/en/ljspeech/vits``.
    allow_download:
        ``None`` follows the environment (see ``downloads_allowed``).

    Raises
    ------
    VoiceError
        ``model-missing`` when the model (or its vocoder) is not cached and cannot be
        downloaded now, or needs a licence agreement first.
    """
    from TTS.utils.manage import ModelManager

    if allow_download is None:
        allow_download = downloads_allowed()
    manager = ModelManager(progress_bar=False)
    entries = [_ModelEntry(manager, model_name)]
    vocoder = entries[0].item.get("default_vocoder")
    if vocoder:
        entries.append(_ModelEntry(manager, vocoder))

    for entry in entries:
        if not entry.licence_agreed():
            raise VoiceError(
                "model-missing",
                f"Coqui model {entry.name!r} needs its licence accepted (CPML): read it, then "
                f"set COQUI_TOS_AGREED=1. {_WHAT_TO_DO}.",
            )
        if entry.is_cached():
            continue
        if not allow_download:
            raise VoiceError(
                "model-missing",
                f"Coqui model {entry.name!r} is not in the local cache ({entry.folder}) and "
                f"downloads are off (HF_HUB_OFFLINE/TTS_OFFLINE). {_WHAT_TO_DO}.",
            )
        if not _host_reachable(entry.host):
            raise VoiceError(
                "model-missing",
                f"Coqui model {entry.name!r} is not downloaded yet and its host {entry.host} "
                f"cannot be reached (offline?). {_WHAT_TO_DO}.",
            )
        logger.info("Coqui will download %s from %s", entry.name, entry.host)


def resolve_device(device: str) -> str:
    """Map ``auto`` to cuda, then mps, then cpu; fall back to cpu with a warning if absent."""
    import torch

    wanted = device.strip().lower()
    cuda_ok = torch.cuda.is_available()
    mps_ok = getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available()
    if wanted == "auto":
        return "cuda" if cuda_ok else "mps" if mps_ok else "cpu"
    if (wanted.startswith("cuda") and not cuda_ok) or (wanted == "mps" and not mps_ok):
        logger.warning("Device %s is not available; Coqui TTS runs on the CPU instead", device)
        return "cpu"
    return wanted


class CoquiTTS(SentenceSynthesizer):
    """Speak with a Coqui TTS model, loaded once.

    Parameters
    ----------
    model_name:
        A Coqui catalogue name (``tts_models/en/ljspeech/vits``); used when no
        ``model_path`` is given; ``None`` means ``DEFAULT_COQUI_MODEL``.
    model_path:
        A local checkpoint file, or a folder holding it and ``config.json``.
    config_path:
        The local model's ``config.json``; ``None`` looks beside the checkpoint.
    speaker:
        Speaker of a multi-speaker model; ``None`` takes its first speaker.
    language:
        Language of a multilingual model; ``None`` takes ``en`` if it has it, else its first.
    device:
        ``cpu``, ``cuda``, ``mps`` or ``auto``.
    speed:
        Speaking-rate multiplier, applied through the model's ``length_scale`` where
        it has one (VITS does).
    allow_download:
        Whether a named model missing from the cache may be downloaded; ``None``
        follows ``HF_HUB_OFFLINE`` / ``TTS_OFFLINE``.

    Raises
    ------
    VoiceError
        ``model-missing`` if the model cannot be had, ``tts-failed`` if it cannot load.
    """

    def __init__(
        self,
        model_name: str | None = None,
        model_path: str | Path | None = None,
        config_path: str | Path | None = None,
        speaker: str | None = None,
        language: str | None = None,
        device: str = "cpu",
        speed: float = 1.0,
        allow_download: bool | None = None,
    ) -> None:
        super().__init__()
        self.speed = check_speed(speed)
        start = time.perf_counter()
        if model_path is not None:
            checkpoint, config = resolve_local_model(model_path, config_path)
            source = str(checkpoint)
            self._tts = self._load(model_path=str(checkpoint), config_path=str(config))
        else:
            source = model_name or DEFAULT_COQUI_MODEL
            ensure_model_available(source, allow_download)
            self._tts = self._load(model_name=source)
        self._tts.to(resolve_device(device))
        self._speaker, self._language = self._pick_speaker_and_language(speaker, language)
        self._apply_speed()
        self.sample_rate = int(self._tts.synthesizer.output_sample_rate)
        self.name = f"coqui:{source}"
        logger.info(
            "Loaded %s (%s Hz) in %.2f s", self.name, self.sample_rate, time.perf_counter() - start
        )

    @staticmethod
    def _load(**kwargs: str) -> Any:
        try:
            from TTS.api import TTS

            return TTS(progress_bar=False, **kwargs)
        except (OSError, ConnectionError) as e:  # requests' errors derive from OSError
            raise VoiceError(
                "model-missing", f"Coqui could not fetch or read the model: {e}. {_WHAT_TO_DO}."
            ) from e
        except Exception as e:
            raise VoiceError("tts-failed", f"Coqui could not load the model: {e}") from e

    def _pick_speaker_and_language(
        self, speaker: str | None, language: str | None
    ) -> tuple[str | None, str | None]:
        speakers = self._tts.speakers if self._tts.is_multi_speaker else None
        languages = self._tts.languages if self._tts.is_multi_lingual else None
        if speakers:
            if speaker is None:
                speaker = speakers[0]
                logger.info("Coqui model has %d speakers; using %r", len(speakers), speaker)
            elif speaker not in speakers:
                raise VoiceError(
                    "model-missing",
                    f"Coqui model has no speaker {speaker!r}; it has {speakers[:10]}.",
                )
        elif speaker is not None:
            logger.warning("Coqui model has one speaker; ignoring speaker %r", speaker)
            speaker = None
        if languages:
            if language is None:
                language = "en" if "en" in languages else languages[0]
            elif language not in languages:
                raise VoiceError(
                    "model-missing",
                    f"Coqui model does not speak {language!r}; it speaks {languages}.",
                )
        elif language is not None:
            logger.warning("Coqui model speaks one language; ignoring language %r", language)
            language = None
        return speaker, language

    def _apply_speed(self) -> None:
        model = self._tts.synthesizer.tts_model
        if self.speed == 1.0:
            return
        if hasattr(model, "length_scale"):
            model.length_scale = model.length_scale / self.speed
        else:
            logger.warning("%s cannot change speed; speaking at its own pace", type(model).__name__)

    def _render(self, sentence: str) -> np.ndarray:
        """Render one sentence (Coqui's own splitting off), without Coqui's trailing pad."""
        wav = self._tts.tts(
            text=sentence,
            speaker=self._speaker,
            language=self._language,
            split_sentences=False,
        )
        samples = np.asarray(wav, dtype=np.float32).reshape(-1)
        return np.trim_zeros(samples, trim="b")  # Coqui appends 10000 zero samples per sentence
