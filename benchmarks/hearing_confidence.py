"""Where to set ``asr.confirm_below``: Whisper's confidence on requests heard right and wrong.

The requests of ``benchmarks.asr`` plus ten follow-ups are spoken by three voices (Piper joe,
hibari, espeak-ng), heard by the configured recognizer as a turn hears them, and counted as
misheard when any word differs. For each threshold the table says how many misheard requests
would be asked about (caught) and how many right ones would be asked about for nothing.

Run: ``python -m benchmarks.hearing_confidence`` (about 2 minutes on 2 cores).
"""

from __future__ import annotations

import sys

from benchmarks.asr import REQUESTS, _levenshtein, normalize_words, synthesize_clips

FOLLOW_UPS = (
    "Make the boat green.",
    "Add a cat on the sofa.",
    "Lose the boat.",
    "Go back to the blue one.",
    "Flip it horizontally.",
    "Three more like that.",
    "Make it a night scene instead.",
    "Get rid of the clouds.",
    "What prompt did you use?",
    "Make the dragon bigger.",
)
VOICES = ("piper", "hibari", "espeak")
THRESHOLDS = (0.5, 0.55, 0.6, 0.65, 0.7, 0.75)


def hear_all(voices: tuple[str, ...] = VOICES) -> list[tuple[float, bool, str, str, str]]:
    """(confidence, misheard, voice, said, heard) for every request and voice."""
    from assistant.build import build_controller
    from assistant.config import load_config

    controller, _ = build_controller(load_config(environ={}))
    requests = REQUESTS + FOLLOW_UPS
    rows = []
    for voice in voices:
        for said, clip in zip(requests, synthesize_clips(requests, voice), strict=True):
            heard = controller.transcribe(clip)  # as a turn first hears it: language detected
            wrong = _levenshtein(normalize_words(said), normalize_words(heard.text)) > 0
            rows.append((heard.confidence, wrong, voice, said, heard.text))
    return rows


def main(voices: tuple[str, ...] = VOICES) -> int:
    rows = sorted(hear_all(voices))
    wrong = sum(r[1] for r in rows)
    print(f"{len(rows)} requests, {wrong} misheard ({', '.join(voices)})\n")
    print("| confirm below | asked | misheard caught | heard right, asked for nothing |")
    print("|---|---|---|---|")
    for limit in THRESHOLDS:
        asked = [r for r in rows if r[0] < limit]
        caught = sum(r[1] for r in asked)
        print(f"| {limit:.2f} | {len(asked)} | {caught}/{wrong} | {len(asked) - caught} |")
    print("\nLowest confidences:")
    for confidence, misheard, voice, said, heard in rows[:15]:
        mark = "misheard" if misheard else "right"
        print(f"  {confidence:.3f} {mark:8s} {voice:6s} {said!r} -> {heard!r}")
    return 0


if __name__ == "__main__":
    sys.exit(main(tuple(sys.argv[1:]) or VOICES))
