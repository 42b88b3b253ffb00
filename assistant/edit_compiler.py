"""Compile a structured change into the prompt of the new scene.

An edited picture's prompt describes the picture as it should now look ("a blue vintage car
parked on a beach"), never the old prompt with the instruction appended ("..., the car blue"):
the prompt is what a later "go back to the red one" matches against, what "what prompt did
you use?" reads out, and what the next edit starts from. Removed things leave the prompt and
go to the negative prompt. Everything here is deterministic, so the ``tiny`` profile (no LLM)
gets the same coherent prompts as the offline default.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from assistant.plan import Change, ChangeKind
from assistant.rewrite import _stem, strip_quality, thing_stems, words

COLOURS = frozenset(
    """red orange yellow green blue purple violet pink brown black white grey gray golden gold
    silver teal turquoise cyan magenta beige crimson navy maroon lilac lavender cream ivory
    scarlet emerald indigo burgundy sage mint olive coral salmon peach mustard ochre amber
    charcoal cobalt azure aqua rust bronze plum mauve tan khaki ruby sapphire jade lime""".split()
)

# What a thing is made of: a new material replaces the old one ("make the table marble").
MATERIALS = frozenset(
    """wooden wood metal metallic stone marble glass plastic steel iron brass copper concrete
    brick leather velvet paper cardboard crystal ceramic porcelain gravel cobblestone tile slate
    straw wicker bamboo wool silk cotton denim fur ice sand""".split()
)

# Groups of mutually exclusive scene words: a change to one member removes the others.
# Phrases are matched whole-word, longest first.
TIME_OF_DAY = {
    "night": "at night",
    "midnight": "at midnight",
    "dawn": "at dawn",
    "sunrise": "at sunrise",
    "morning": "in the morning",
    "early morning": "in the early morning",
    "noon": "at noon",
    "midday": "at midday",
    "afternoon": "in the afternoon",
    "day": "during the day",
    "daytime": "during the day",
    "daylight": "in daylight",
    "sunset": "at sunset",
    "dusk": "at dusk",
    "evening": "in the evening",
    "twilight": "at twilight",
    "golden hour": "at golden hour",
}
_TIME_WORDS = [
    "at night", "by night", "night time", "nighttime", "night-time", "night scene", "night sky",
    "at midnight", "midnight", "at dawn", "dawn", "at sunrise", "sunrise", "in the morning",
    "in the early morning", "early morning", "morning light", "morning", "at noon", "noon",
    "midday", "in the afternoon", "afternoon",
    "during the day", "in daylight", "bright daylight", "daylight", "daytime", "on a sunny day",
    "sunny day",
    "sunlit", "at sunset", "sunset", "at dusk", "dusk", "in the evening", "evening",
    "at twilight", "twilight", "golden hour", "moonlit", "moonlight", "starry sky", "night",
]  # fmt: skip
WEATHER = {
    "rain": "in the rain",
    "rainy": "in the rain",
    "snow": "in the snow",
    "snowy": "in the snow",
    "snowing": "in the snow",
    "fog": "in thick fog",
    "foggy": "in thick fog",
    "mist": "in the mist",
    "misty": "in the mist",
    "storm": "in a storm, stormy sky",
    "stormy": "in a storm, stormy sky",
    "stormier": "in a storm, stormy sky",
    "thunderstorm": "in a thunderstorm",
    "cloudy": "under a cloudy sky",
    "sunny": "on a sunny day",
    "sunnier": "on a sunny day",
    "clear": "under a clear sky",
    "windy": "on a windy day",
}
_WEATHER_WORDS = [
    "in the rain", "rainy", "raining", "rain", "in the snow", "snowy", "snowing", "snow",
    "in thick fog", "thick fog", "foggy", "fog", "in the mist", "misty", "mist",
    "in a thunderstorm", "thunderstorm", "in a storm", "stormy sky", "stormy", "storm",
    "under a cloudy sky", "cloudy", "overcast", "on a sunny day", "sunny", "under a clear sky",
    "clear sky", "on a windy day", "windy",
]  # fmt: skip
SEASONS = {
    "spring": "in spring",
    "summer": "in summer",
    "autumn": "in autumn",
    "fall": "in autumn",
    "winter": "in winter",
    "wintry": "in winter",
    "wintery": "in winter",
}
_SEASON_WORDS = [
    "in spring", "springtime", "spring", "in summer", "summertime", "summer", "in autumn",
    "autumn leaves", "autumnal", "autumn", "in the fall", "fall foliage", "in winter",
    "wintertime", "wintery", "wintry", "winter", "snowy",
]  # fmt: skip
MEDIUMS = [
    "oil painting", "watercolor painting", "watercolour painting", "watercolor", "watercolour",
    "pencil drawing", "pencil sketch", "charcoal drawing", "ink drawing", "ink", "sketch",
    "drawing",
    "painting", "photograph", "photorealistic", "photo", "digital art", "3d render",
    "pixel art", "cartoon", "anime", "comic book", "illustration", "claymation", "low poly",
    *(TREATMENTS := ["black and white", "monochrome", "sepia", "grayscale", "greyscale"]),
]  # fmt: skip
# A colour treatment keeps the medium: a black and white photo is still a photo.
# Adjustments with an opposite: adding one takes its opposite out of the prompt.
OPPOSITES = {
    "dark": ["bright", "brightly lit", "light"],
    "bright": ["dark", "dim", "gloomy"],
    "warm": ["cold", "cool", "icy"],
    "cold": ["warm", "hot"],
    "happy": ["sad", "gloomy"],
    "sad": ["happy", "cheerful"],
    "calm": ["stormy", "chaotic", "busy"],
    "colorful": ["monochrome", "black and white", "muted colors"],
    "young": ["old", "elderly", "aged", "senior"],
    "fewer": ["many", "countless", "several", "numerous", "dozens", "hundreds"],
    "faint": ["thick", "heavy", "dense"],
    "old": ["young", "youthful"],
    "simple": ["busy", "detailed", "cluttered"],
}
COMPARATIVE = {
    "darker": "dark", "brighter": "bright", "lighter": "bright", "warmer": "warm",
    "colder": "cold", "cooler": "cool", "happier": "happy", "sadder": "sad", "scarier": "scary",
    "softer": "soft", "sharper": "sharp", "calmer": "calm", "busier": "busy",
    "simpler": "simple", "cuter": "cute", "creepier": "creepy", "moodier": "moody",
    "sunnier": "sunny", "stormier": "stormy", "cozier": "cozy", "cosier": "cosy",
    "prettier": "pretty", "older": "old", "younger": "young", "greener": "green",
    "redder": "red", "bluer": "blue", "wider": "wide", "taller": "tall", "shinier": "shiny",
    "fluffier": "fluffy", "spookier": "spooky", "livelier": "lively", "gloomier": "gloomy",
}  # fmt: skip
_LOCATION_START = {"in", "on", "at", "by", "near", "inside", "under", "beneath", "beside", "atop"}
# Words that end the phrase of a removed object (what follows belongs to something else).
_PHRASE_BREAK = {
    "and", "with", "in", "on", "at", "by", "near", "next", "under", "beside", "behind",
    "playing", "sitting", "standing", "parked", "flying", "holding", "wearing", "of", "over",
}  # fmt: skip
# Words that start the phrase of a removed object (what precedes belongs to something else).
_PHRASE_START = {"and", "with", "plus", "holding", "wearing", "carrying", "beside", "near"}


@dataclass(frozen=True)
class CompiledEdit:
    """The new scene's prompt pair, and what could not be applied as asked (for the reply)."""

    prompt: str
    negative_prompt: str
    note: str | None = None


def compile_edit(
    prompt: str, negative_prompt: str, change: Change, quality_terms: list[str]
) -> CompiledEdit:
    """The prompt pair of the picture after ``change``, from the picture's own pair."""
    scene = strip_quality(prompt, quality_terms).strip(" ,")
    negatives = _parts(negative_prompt)
    kind, obj, value = change.kind, change.object.strip(), change.value.strip()
    note = None
    if kind == ChangeKind.REMOVE:
        scene = remove_object(scene, obj)
        negatives = [obj, *[n for n in negatives if not _same(n, obj)]]
    elif kind == ChangeKind.SET_ATTRIBUTE:
        scene = set_attribute(scene, obj, value)
    elif kind == ChangeKind.REPLACE and obj.lower() in COLOURS and _has_term(scene, obj):
        new = re.sub(r"^(?:an?|the)\s+", "", value)  # "the teal" -> "a deep burgundy": the colour
        scene = re.sub(rf"(?<![\w-]){re.escape(obj)}(?![\w-])", new, scene, flags=re.I)
    elif kind == ChangeKind.REPLACE:
        scene, found = replace_object(scene, obj, value)
        if not found:
            note = f"there was no {obj} in the prompt, so I added {value}"
        negatives = [n for n in negatives if not _same(n, value)]
        if found:
            negatives = [obj, *negatives]
    elif kind == ChangeKind.ADD:
        scene = _append(scene, value if _starts_with_link(value) else f"with {value}")
        negatives = [n for n in negatives if not _mentions(value, n)]
    elif kind == ChangeKind.SETTING:
        scene = change_setting(scene, value)
    elif kind == ChangeKind.TIME_OF_DAY:
        phrase = TIME_OF_DAY.get(value, value if _starts_with_link(value) else f"at {value}")
        scene = _append(_drop_terms(scene, _TIME_WORDS), phrase)
    elif kind == ChangeKind.WEATHER:
        phrase = WEATHER.get(value, value)
        scene = _append(_drop_terms(scene, _WEATHER_WORDS), phrase)
        negatives = [n for n in negatives if not _mentions(value, n)]
    elif kind == ChangeKind.SEASON:
        phrase = SEASONS.get(value, f"in {value}")
        scene = _append(_drop_terms(scene, _SEASON_WORDS), phrase)
    elif kind == ChangeKind.STYLE:
        replaced = (
            TREATMENTS if value in TREATMENTS else [m for m in MEDIUMS if m not in TREATMENTS]
        )
        scene = _append(_drop_terms(scene, replaced), value)
    elif kind == ChangeKind.ADJUST:
        scene, negatives = adjust(scene, negatives, obj, value)
    else:  # FREE: the change as said, after the scene
        scene = _append(scene, value)
    prompt_out = _join([_fix_article(scene), *quality_terms])
    return CompiledEdit(prompt_out, _join(negatives), note)


# --- the operations -------------------------------------------------------------------------
# Writing in the picture: "remove the text" also takes out a sign or note that says something.
_WRITING = {"text", "writing", "words", "lettering", "letters", "caption"}
_SAYS = re.compile(r"\b(?:says|saying|reads|reading|that say|with the words)\b")


def remove_object(scene: str, obj: str) -> str:
    """The scene without the phrase that names ``obj`` ("with a small boat", "and a cat")."""
    if obj.lower() in _WRITING:
        scene = ", ".join(p for p in _parts(scene) if not _SAYS.search(p)) or scene
    target = thing_stems(obj)
    if not target:
        return scene
    out = []
    for i, part in enumerate(_parts(scene)):
        tokens = part.split()
        hits = [j for j, tok in enumerate(tokens) if _stem(_bare(tok)) in target]
        if not hits:
            out.append(part)
            continue
        j = hits[-1]
        start = j
        while start > 0 and _bare(tokens[start - 1]) not in _PHRASE_START | _PHRASE_BREAK:
            start -= 1
        if start > 0 and _bare(tokens[start - 1]) in _PHRASE_START:
            start -= 1  # "... and a cat": the joining word goes too
        elif start == 0 and i > 0:
            continue  # the whole comma part was about the thing: drop it
        end = j + 1
        if start > 0 and _bare(tokens[start]) == "with" and end < len(tokens):
            if _bare(tokens[end]) == "and":  # "with a grey beard and a cap" -> "with a cap"
                tokens[end] = "with"
        kept = tokens[:start] + tokens[end:]
        if start == 0 and kept and _bare(kept[0]) in {"and", "with"}:
            kept = kept[1:]
        if kept:
            out.append(" ".join(kept))
    return _join(out)


def set_attribute(scene: str, obj: str, value: str) -> str:
    """ "make the car blue": the colour (or quality) of the named thing becomes ``value``."""
    tokens = scene.split()
    target = thing_stems(obj)
    value_words = value.split()
    is_colour = any(w.lower() in COLOURS for w in value_words)  # "blue and shiny" too
    is_material = any(w.lower() in MATERIALS for w in value_words)
    is_weather = any(w.lower() in WEATHER for w in value_words)  # "the sky clear and blue"
    for j in range(len(tokens) - 1, -1, -1):
        if target and _stem(_bare(tokens[j])) in target:
            start = j
            while (
                start > 0
                and _bare(tokens[start - 1]) not in _DETERMINERS | _PHRASE_BREAK
                and not tokens[start - 1].endswith(",")  # a term ends: its words are not ours
            ):
                start -= 1
            if (
                value_words == ["fewer"]
                and start > 0
                and _bare(tokens[start - 1]) in _MANY | {"some", "several"}
            ):
                start -= 1  # "many birds" -> "fewer birds"
            adjectives = tokens[start:j]
            if value_words == ["fewer"]:  # "some people" -> "fewer people", not "fewer some"
                adjectives = [a for a in adjectives if _bare(a) not in _MANY | {"some"}]
            if is_colour or is_material or is_weather:
                replaced = (COLOURS if is_colour else set()) | (MATERIALS if is_material else set())
                replaced |= set(WEATHER) if is_weather else set()
                adjectives = [a for a in adjectives if _bare(a) not in replaced]
            else:  # a quality replaces its opposite, if any
                drop = {o for o in OPPOSITES.get(value.lower(), []) if " " not in o}
                adjectives = [a for a in adjectives if _bare(a) not in drop | {value.lower()}]
            # "a small red boat" -> "a small green boat": a colour after the words of size,
            # age and opinion ("a big golden oak tree"), a material after the colour too.
            cut = 0
            if is_colour or is_material:
                first = _BEFORE_COLOUR | (COLOURS if not is_colour else set())
                cut = max((i + 1 for i, a in enumerate(adjectives) if _bare(a) in first), default=0)
            tokens[start:j] = [*adjectives[:cut], *value_words, *adjectives[cut:]]
            return _fix_article(" ".join(tokens))
    if not target and is_colour:  # "make it yellow": the first coloured thing changes colour
        for j, token in enumerate(tokens):
            if _bare(token) in COLOURS:
                tokens[j] = value_words[-1]
                return _fix_article(" ".join(tokens))
    return _append(scene, f"{value} {obj}".strip())


def replace_object(scene: str, obj: str, value: str) -> tuple[str, bool]:
    """ "turn the cat into a dog": the thing's noun phrase becomes ``value``."""
    tokens = scene.split()
    target = thing_stems(obj)
    new = re.sub(r"^(?:a|an|the|some)\s+", "", value.strip(), flags=re.I).split()
    for j in range(len(tokens) - 1, -1, -1):
        if target and _stem(_bare(tokens[j])) in target:
            start = j
            while start > 0 and _bare(tokens[start - 1]) not in _DETERMINERS | _PHRASE_BREAK:
                start -= 1
            tokens[start : j + 1] = new + ([tokens[j][-1]] if tokens[j][-1] in ",;" else [])
            return _fix_article(" ".join(tokens)), True
    return _append(scene, value), False


def change_setting(scene: str, value: str) -> str:
    """ "put it on a beach": the first part's place phrase becomes ``value``.

    Time-of-day, weather and season phrases in the old place phrase are kept.
    """
    parts = _parts(scene)
    if not parts:
        return value
    tokens = parts[0].split()
    place = next((i for i, t in enumerate(tokens) if i > 0 and _bare(t) in _LOCATION_START), None)
    if place is None:
        parts[0] = f"{parts[0]} {value}"
        return _join(parts)
    removed = " ".join(tokens[place:])
    kept_terms = [
        t for t in (*_TIME_WORDS, *_WEATHER_WORDS, *_SEASON_WORDS) if _has_term(removed, t)
    ]
    kept_terms = [t for t in kept_terms if not any(t != k and t in k for k in kept_terms)]
    parts[0] = " ".join([*tokens[:place], value, *kept_terms[:1]])
    return _join(parts)


def adjust(scene: str, negatives: list[str], obj: str, value: str) -> tuple[str, list[str]]:
    """ "darker", "more colorful", "less busy", "make the sky stormier"."""
    value = value.lower().strip()
    if value.startswith("less "):
        quality = value.removeprefix("less ").strip()
        base = COMPARATIVE.get(quality, quality)
        return _drop_terms(scene, [base, quality]), [base, *negatives]
    quality = value.removeprefix("more ").strip()
    quality = COMPARATIVE.get(quality, quality)
    negatives = [n for n in negatives if not _same(n, quality)]
    head = quality.split(",", 1)[0]  # "young, about 30 years old": its opposites are old's
    scene = _drop_terms(scene, OPPOSITES.get(head, []))
    if obj:
        return set_attribute(scene, obj, quality), negatives
    if _has_term(scene, quality):
        return scene, negatives
    return _append(scene, quality), negatives


# --- small text helpers ---------------------------------------------------------------------
_MANY = {"many", "several", "countless", "numerous", "lots"}
_BEFORE_COLOUR = set(
    """small big large tiny huge little giant old young new ancient tall short long round cute
    cozy cosy beautiful pretty lovely fluffy fat thin wide narrow""".split()
)
_DETERMINERS = {"a", "an", "the", "some", "two", "three", "four", "many", "several", "his", "her"}
_LINKS = ("with ", "at ", "in ", "on ", "under ", "during ", "and ", "by ", "near ", "wearing ")


def _bare(token: str) -> str:
    return token.lower().strip(",.;:!?\"'()")


def _parts(text: str) -> list[str]:
    return [p.strip() for p in text.split(",") if p.strip()]


def _join(parts: list[str]) -> str:
    out: list[str] = []
    for part in parts:
        for piece in _parts(part):
            if piece.lower() not in (o.lower() for o in out):
                out.append(piece)
    return ", ".join(out)


def _append(scene: str, addition: str) -> str:
    return _join([scene, addition]) if addition.strip() else scene


def _starts_with_link(text: str) -> bool:
    return text.lower().startswith(_LINKS)


def _has_term(text: str, term: str) -> bool:
    return re.search(rf"(?<![\w-]){re.escape(term)}(?![\w-])", text, re.I) is not None


def _drop_terms(scene: str, terms: list[str]) -> str:
    """The scene without any of ``terms`` (whole words, longest first), tidied."""
    for term in sorted(terms, key=len, reverse=True):
        scene = re.sub(rf"(?<![\w-]){re.escape(term)}(?![\w-])", " ", scene, flags=re.I)
    scene = re.sub(r"\b(?:at|in|on|during|under|by)(?:\s+(?:a|an|the))?\s*(?=,|$)", "", scene)
    scene = re.sub(r"\s+", " ", scene)
    scene = re.sub(r"\s*,\s*(?:,\s*)*", ", ", scene)
    # "a photo of a cabin" without "photo": "a cabin"
    parts = [re.sub(r"^(?:(?:an?|the)\s+)?of\s+", "", p) for p in _parts(scene)]
    return _join([p for p in parts if p.lower() not in {"a", "an", "the", "of"}])


def _same(a: str, b: str) -> bool:
    return {_stem(w) for w in words(a)} == {_stem(w) for w in words(b)}


def _mentions(text: str, negative: str) -> bool:
    """Whether a negative prompt entry names something ``text`` now asks for."""
    have = {_stem(w) for w in words(text)}
    neg = {_stem(w) for w in words(negative)}
    return bool(neg) and neg <= have


def _fix_article(text: str) -> str:
    """ "a orange car" -> "an orange car" after a word was swapped in."""
    text = re.sub(r"\ba (?=[aeiouAEIOU]\w)", "an ", text)
    return re.sub(r"\ban (?=[^aeiouAEIOU\W]\w)", "a ", text)
