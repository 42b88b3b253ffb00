"""Voice activity detection: Silero VAD (the ONNX model packaged in ``silero-vad``), frame by frame.

The model file ships inside the ``silero-vad`` wheel, so nothing is downloaded. It is run
with onnxruntime directly (numpy in, numpy out): the package's own wrapper would import torch
for every 32 ms frame.

Example::

    vad = SileroVAD()
    for frame in source:                 # 512 float32 samples at 16 kHz
        speech_probability = vad(frame)  # 0..1
    vad.reset()                          # before a new, unrelated stream
"""

from __future__ import annotations

import importlib.util
import logging
import time
from pathlib import Path

import numpy as np

from voice.errors import VoiceError

logger = logging.getLogger(__name__)

SAMPLE_RATE = 16000  # Hz, the only rate the voice loop uses
FRAME_SAMPLES = 512  # samples per frame: 32 ms at 16 kHz (the model's fixed window)
FRAME_SECONDS = FRAME_SAMPLES / SAMPLE_RATE  # 0.032 s
CONTEXT_SAMPLES = 64  # samples of the previous frame the model sees before each frame
STATE_SHAPE = (2, 1, 128)  # the model's recurrent state: (layers, batch, units)
MODEL_FILE = "silero_vad.onnx"  # opset 16, 8 and 16 kHz, inside the silero_vad.data package


def packaged_model_path(name: str = MODEL_FILE) -> Path:
    """Path of a model file bundled in the ``silero-vad`` wheel, without importing it.

    (Importing ``silero_vad`` imports torch; only the file is needed here.)

    Parameters
    ----------
    name:
        File name inside ``silero_vad/data``.

    Returns
    -------
    The file's path.

    Raises
    ------
    VoiceError
        ``model-missing`` when the package or the file is not installed.
    """
    spec = importlib.util.find_spec("silero_vad")
    if spec is None or not spec.submodule_search_locations:
        raise VoiceError(
            "model-missing",
            "Voice activity detection needs the silero-vad package: pip install silero-vad.",
        )
    path = Path(next(iter(spec.submodule_search_locations))) / "data" / name
    if not path.is_file():
        raise VoiceError(
            "model-missing", f"The silero-vad package has no {name}; reinstall silero-vad."
        )
    return path


class SileroVAD:
    """Speech probability of each 32 ms frame of one 16 kHz stream.

    The model is recurrent: it keeps state (and the tail of the previous frame) between
    calls, so one instance follows one stream. Call :meth:`reset` before another stream.

    Parameters
    ----------
    model_path:
        An ONNX Silero VAD model; default: the one packaged in ``silero-vad``.
    threads:
        onnxruntime intra-op threads (1 is fastest for a 512-sample frame).
    """

    def __init__(self, model_path: str | Path | None = None, threads: int = 1):
        import onnxruntime  # noqa: PLC0415 (heavy; only when a VAD is built)

        path = Path(model_path) if model_path else packaged_model_path()
        options = onnxruntime.SessionOptions()
        options.intra_op_num_threads = threads
        options.inter_op_num_threads = 1
        options.log_severity_level = 3  # errors only
        start = time.perf_counter()
        try:
            self._session = onnxruntime.InferenceSession(
                str(path), sess_options=options, providers=["CPUExecutionProvider"]
            )
        except Exception as e:
            raise VoiceError(
                "model-missing", f"Could not load the voice activity model {path}: {e}"
            ) from e
        self._sr = np.array(SAMPLE_RATE, dtype=np.int64)
        self.reset()
        logger.info("Loaded Silero VAD (%s) in %.2f s", path.name, time.perf_counter() - start)

    def reset(self) -> None:
        """Forget the stream: zero the recurrent state and the context samples."""
        self._state = np.zeros(STATE_SHAPE, dtype=np.float32)
        self._context = np.zeros(CONTEXT_SAMPLES, dtype=np.float32)

    def __call__(self, frame: np.ndarray) -> float:
        """Speech probability of the next frame of the stream.

        Parameters
        ----------
        frame:
            ``FRAME_SAMPLES`` (512) float32 samples in -1..1 at 16 kHz.

        Returns
        -------
        Probability 0..1 that the frame holds speech.
        """
        frame = np.asarray(frame, dtype=np.float32).reshape(-1)
        if frame.size != FRAME_SAMPLES:
            raise ValueError(
                f"SileroVAD takes frames of {FRAME_SAMPLES} samples (32 ms at 16 kHz), "
                f"got {frame.size}"
            )
        x = np.concatenate([self._context, frame])[np.newaxis, :]
        probability, self._state = self._session.run(
            None, {"input": x, "state": self._state, "sr": self._sr}
        )
        self._context = frame[-CONTEXT_SAMPLES:].copy()
        return float(probability.reshape(-1)[0])

    def probabilities(self, samples: np.ndarray) -> np.ndarray:
        """Speech probability of every whole frame of ``samples`` (continuing the stream).

        Parameters
        ----------
        samples:
            float32 samples at 16 kHz; a last partial frame is ignored.

        Returns
        -------
        One probability per frame.
        """
        samples = np.asarray(samples, dtype=np.float32).reshape(-1)
        n = samples.size // FRAME_SAMPLES
        return np.array(
            [self(samples[i * FRAME_SAMPLES : (i + 1) * FRAME_SAMPLES]) for i in range(n)],
            dtype=np.float32,
        )
