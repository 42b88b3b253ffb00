"""Speech in and out: recognition, endpointing, the microphone, the speaker, the voices."""

from voice.whisper_lazy import defer_whisper_timing

defer_whisper_timing()  # numba only if word timestamps are ever asked for (~60 MB)
