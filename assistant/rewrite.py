"""Turn what a person said into a Stable Diffusion prompt and negative prompt.

The deterministic rewriter is the floor: it always works, keeps every content word and moves
"no X" / "without X" into the negative prompt. An LLM may enrich the prompt, but what it writes
is validated (not empty, no loops, bounded, keeps the content words, adds nothing negated) and
refused otherwise.
"""

from __future__ import annotations

import logging
import re
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass

from assistant.command_grammar import RELAYED
from assistant.llm_chat import ChatLLM, ChatMessages, warm_prompt
from common.text import drop_restarts

logger = logging.getLogger(__name__)

STOPWORDS = frozenset(
    """a an the of on in at to for with and or but is are be it its this that these those
    me my i you your we our us some any very really just so as by from into onto over under
    there here then than up out off please can could would will should do does did make made
    let lets let's i'd i'm want like have has had give show get draw paint sketch create
    generate render imagine picture image photo photograph painting drawing illustration pic
    one now also more less bit little kind sort something""".split()
)

# Leading politeness and command words that are not part of the picture.
_COMMAND_PREFIX = re.compile(
    r"^\s*(?:(?:(?:hey|hi|hello|hiya)(?: there)?(?=\s*[,.!])|right(?=\s*[,.!])|"
    + RELAYED
    + r"(?=[\s,:]+\w+ \w)|hey|ok|okay|oh|"
    r"also|so|um|uh|and|"
    r"then|now|"
    r"please|"
    r"can you|could you|would you|will you|i want|i'd like|i would like|i'd love|i would love|"
    r"let's|lets|"
    r"go ahead and|(?:can|could|may) (?:i|we) (?:perhaps |maybe |please )?(?:get|have|see)|"
    r"i need|gimme|perhaps|maybe|"
    r"(?:one|another) (?:of|with|where)(?= (?:an?|some|two|three|four|five) )|"
    r"forget (?:it|that|this|about (?:it|that)|(?:about )?the [\w-]+(?: [\w-]+)?)(?=[,.;])|"
    r"by the way|btw|while you're at it|while you are at it|um+|uh+|separately|aight|"
    r"(?:(?:the )?next |a new |new )?(?:panel|page|frame|shot|slide)(?: (?:one|two|three|four|five|"
    r"six|\d+))?(?=\s*[:,-])|"
    r"(?:do|make|give) me (?:a |an )?(?:new|another|different) (?:one|picture|image)(?= *[:,-])|"
    r"(?:a )?new one(?= *[:,-]| (?:an?|some|two|three) )|(?:a )?new picture please|"
    # "next picture: a robot ...", "something different now: a fox ...": a new picture follows
    r"(?:let's |lets )?start (?:a |an )?(?:fresh|new|another|different|clean)(?: one| picture| "
    r"image| page)?\s*[:,.-]|"
    r"(?:next|new|another|a new|a different|different|diff) (?:picture|one|image|subject|topic|"
    r"thing|scene|concept|design)\s*[:,.-]|"
    r"(?:i'd|i would) (?:be (?:ever so |very |really |so )?grateful for|love|appreciate)|"
    r"(?:another|a new) (?:picture|image|one)(?: now| please)?(?:,? if i may)?,?(?: of)?(?= )|"
    r"good (?:morning|afternoon|evening)[,.!]|"
    r"something (?:different|else|new)(?: now)?\s*[:,-]|(?:a )?(?:different|new) idea\s*[:,-])"
    r"(?![a-z])\s*[,.!:]?\s*)*"
    r"(?:(?:draw|paint|sketch|create|generate|make|render|imagine|show|give|produce|"
    r"whip up|knock up|cook up|dream up|conjure up|conjure|come up with|put together|"
    r"do(?= (?:one of|another of|an?|some|two|three|four|a few) )(?: one of| another of)?)"
    r"(?:\s+(?:me|us|(?:my|our) \w+(?= (?:a|an|some|two|three) )))?\s+)?"
    # "a picture of" goes; "a photo of", "a painting of" stay: they name the medium.
    r"(?:(?:(?:a|an|the|some|another)\s+)?(?:new\s+)?(?:picture|image|pic|render)s?\s*[:,-]?\s+"
    r"(?:of\s+)?)?",
    re.IGNORECASE,
)
_NEGATION = re.compile(
    r"\s*,?\s*\b(?<!word )(?<!saying )(?<!says )(?<!reads )(?<!reading )"
    r"(?:but\s+)?(?:without|with\s+no|no|minus|and\s+no|don't\s+(?:include|add|show))"
    r"\s+(?:any\s+)?(?:a\s+|an\s+|the\s+)?([a-z][a-z' -]*?)"
    r"(?=\s*(?:,|\.|;|!|\?|$|\band\b|\bbut\b))",
    re.IGNORECASE,
)
_EDIT_PREFIX = re.compile(
    r"^\s*(?:(?:please|now|ok|okay|and|can you|could you)\s*,?\s*)*"
    r"(?:make\s+(?:it|this|that|the\s+(?:picture|image))\s+|make\s+|change\s+|turn\s+|give\s+it\s+)?",
    re.IGNORECASE,
)
_WORD = re.compile(r"[a-z0-9][a-z0-9'-]*", re.IGNORECASE)


@dataclass(frozen=True)
class Rewrite:
    """A prompt pair and who wrote it."""

    prompt: str
    negative_prompt: str
    rewriter: str  # llm | rules | raw
    note: str | None = None  # why an LLM prompt was refused
    elapsed_s: float = 0.0


def words(text: str) -> list[str]:
    return [w.lower().strip("'-") for w in _WORD.findall(text)]


def _stem(word: str) -> str:
    for suffix in ("ies", "es", "s"):
        if word.endswith(suffix) and len(word) - len(suffix) >= 3:
            return word[: -len(suffix)] + ("y" if suffix == "ies" else "")
    return word


# Words people use for the same thing a prompt names otherwise ("the bike" in "a bicycle").
_SAME_THING = [
    {"bike", "bicycle"}, {"motorbike", "motorcycle"}, {"plane", "airplane", "aeroplane"},
    {"car", "automobile"}, {"sofa", "couch"}, {"puppy", "pup", "doggy", "dog"},
    {"kitten", "kitty", "cat"}, {"bunny", "rabbit"}, {"kid", "child"}, {"mom", "mum", "mother"},
    {"dad", "father"}, {"tv", "television"}, {"ocean", "sea"}, {"boat", "ship"},
    {"grey", "gray"}, {"colour", "color"}, {"daytime", "day", "daylight"},
    {"nighttime", "night"},
]  # fmt: skip
_SAME_AS = {w: group for group in _SAME_THING for w in group}


def thing_stems(text: str) -> set[str]:
    """The stems of ``text``'s words, with the other words for the same things."""
    out: set[str] = set()
    for w in words(text):
        out |= {_stem(x) for x in _SAME_AS.get(_stem(w), {w})} | {_stem(w)}
    return out


def content_words(text: str) -> list[str]:
    """The words that carry what the picture is about (not stop or command words)."""
    seen, out = set(), []
    for w in words(text):
        if w not in STOPWORDS and len(w) > 1 and w not in seen:
            seen.add(w)
            out.append(w)
    return out


def split_negatives(text: str) -> tuple[str, list[str]]:
    """Take "no X" / "without X" out of the text; return (rest, [X, ...])."""
    text = _TRAILING_POLITENESS.sub("", text)
    negatives = [m.group(1).strip() for m in _NEGATION.finditer(text)]
    rest = _NEGATION.sub("", text)
    return _tidy(rest), [n for n in negatives if n]


_TRAILING_POLITENESS = re.compile(r"(?:[\s,]+(?:please|thanks|thank you|for me))+[\s.!?]*$", re.I)


def _tidy(text: str) -> str:
    text = _TRAILING_POLITENESS.sub("", text)
    text = re.sub(r"\s+", " ", text).strip(" ,.;!?")
    return re.sub(r"\s+,", ",", text)


def subject_of(request: str) -> str:
    """The request with leading command words removed: 'draw me a cat' -> 'a cat'."""
    request = drop_restarts(request, keep_repeated_words=True)  # "a dog a dog running": one dog
    stripped = _COMMAND_PREFIX.sub("", request, count=1)
    return _tidy(stripped) or _tidy(request)


def _join(*parts: str | list[str]) -> str:
    flat: list[str] = []
    for part in parts:
        items = part if isinstance(part, list) else [part]
        for item in items:
            item = item.strip(" ,")
            if item and item.lower() not in (f.lower() for f in flat):
                flat.append(item)
    return ", ".join(flat)


def strip_quality(prompt: str, quality_terms: list[str]) -> str:
    keep = [p.strip() for p in prompt.split(",") if p.strip() not in quality_terms]
    return ", ".join(p for p in keep if p)


class RuleRewriter:
    """The deterministic rewriter: command words out, negatives split off, bounded terms added."""

    def __init__(self, quality_terms: list[str], default_negative: list[str]):
        self.quality_terms = list(quality_terms)
        self.default_negative = list(default_negative)

    def negative_for(self, negatives: list[str]) -> str:
        return _join(negatives, self.default_negative)

    def generate(self, request: str) -> Rewrite:
        rest, negatives = split_negatives(request)
        subject = subject_of(rest)
        return Rewrite(_join(subject, self.quality_terms), self.negative_for(negatives), "rules")

    def edit(self, instruction: str, base_prompt: str, base_negative: str) -> Rewrite:
        """Fold an edit ("make it darker") into the prompt of the image being edited."""
        rest, negatives = split_negatives(instruction)
        change = _tidy(_EDIT_PREFIX.sub("", rest, count=1))
        base = strip_quality(base_prompt, self.quality_terms)
        negative = _join(negatives, [p.strip() for p in base_negative.split(",")])
        return Rewrite(_join(base, change, self.quality_terms), negative, "rules")


# --- validating what an LLM wrote ----------------------------------------------------------
def find_problem(candidate: str, subject: str, negatives: list[str], max_words: int) -> str | None:
    """Why an LLM prompt must be refused, or None if it is usable."""
    cand_words = words(candidate)
    if not cand_words:
        return "empty"
    if len(cand_words) > max_words:
        return f"too long ({len(cand_words)} words > {max_words})"
    trigrams = Counter(zip(cand_words, cand_words[1:], cand_words[2:], strict=False))
    if trigrams and trigrams.most_common(1)[0][1] > 1:
        return "repeats itself"
    counts = Counter(w for w in cand_words if w not in STOPWORDS)
    if counts and counts.most_common(1)[0][1] > 3:
        return f"loops on {counts.most_common(1)[0][0]!r}"
    stems = {_stem(w) for w in cand_words}
    missing = [w for w in content_words(subject) if _stem(w) not in stems]
    if missing:
        return f"dropped the words {', '.join(missing)}"
    for negative in negatives:
        neg_words = set(content_words(negative))
        if neg_words and neg_words <= {w for w in cand_words}:
            return f"adds {negative!r}, which was asked to be left out"
    return None


# --- contradictions: what an LLM adds must not undo what was said --------------------------
def _group(text: str) -> frozenset[str]:
    return frozenset(text.split())


_NIGHT = _group("night nighttime midnight moon moonlit moonlight moonrise starry starlit stars")
_DAYLIGHT = _group(
    "day daytime daylight sunlit sunny sunshine sunlight sun sunbeams midday noon morning afternoon"
)
_TWILIGHT = _group("dawn sunrise dusk sunset evening twilight goldenhour")
_NEON = _group("neon")  # city light after dark: not with daylight or a golden hour
_DAWN, _DUSK = _group("dawn sunrise morning"), _group("dusk sunset evening")
_WINTER = _group("winter wintry wintery snow snowy snowfall snowflakes snowing frost frosty icy")
_AUTUMN = _group("autumn autumnal")
_SUMMER = _group("summer summery")
_SPRING = _group("spring springtime blossom blossoms")
_RAIN = _group("rain rainy raining raindrops drizzle storm stormy thunderstorm downpour")
_CLEAR = _group("sunny sunshine cloudless sunlit")
_STORMY = _group("storm stormy thunderstorm rough turbulent windy choppy")
_CALM = _group("calm tranquil still serene peaceful gentle placid")
_MONOCHROME = _group("monochrome grayscale greyscale")
_COLOURFUL = _group("colorful colourful vibrant colors colours rainbow multicolored")
_DESERT = _group("desert deserts dune dunes arid sahara")
_LUSH = _group("lush vegetation jungle rainforest greenery verdant meadow meadows forest foliage")
_UNDERWATER = _group("underwater undersea seabed")
_OLD = _group(
    "medieval ancient victorian renaissance historical roman viking prehistoric steampunk"
)
_MODERN = _group(
    "modern futuristic contemporary skyscraper skyscrapers neon cyberpunk sci-fi high-tech cars"
)
# Said or clearly implied places under the open sky, against an added "cozy interior".
_INDOORS = _group("interior indoors indoor")
_OUTDOORS = _group(
    "outdoors outdoor outside snow snowy field fields forest meadow mountain mountains beach "
    "cliff lake ocean sea desert landscape street river sky garden park hill hills valley island "
    "road"
)
_PHOTO = _group("photo photos photograph photography photographic photorealistic dslr 35mm 85mm")
_ARTWORK = _group(
    "painting painted drawing drawn illustration illustrated sketch cartoon anime watercolor "
    "watercolour oil acrylic pastel pencil ink comic art artwork render 3d cgi pixel paint"
)

# Pairs of word groups that cannot both describe one picture: time of day, season, weather,
# setting, era, medium. An added term with a word of one side is dropped when the other side
# was said (or was added earlier in the same prompt).
OPPOSITES: tuple[tuple[frozenset[str], frozenset[str]], ...] = (
    (_NIGHT, _DAYLIGHT | _TWILIGHT),
    (_DAWN, _DUSK),
    (_WINTER, _AUTUMN | _SUMMER | _SPRING),
    (_AUTUMN, _SUMMER | _SPRING),
    (_SUMMER, _SPRING),
    (_RAIN, _CLEAR),
    (_STORMY, _CALM),
    (_MONOCHROME, _COLOURFUL),
    (_DESERT, _LUSH | _UNDERWATER),
    (_OLD, _MODERN),
    (_PHOTO, _ARTWORK),
    (_NEON, _DAYLIGHT | _TWILIGHT),
    (_INDOORS, _OUTDOORS),
)


# Several words that mean one thing, read as that one word.
_PHRASES = {
    "black and white": "monochrome",
    "black-and-white": "monochrome",
    "b&w": "monochrome",
    "golden hour": "goldenhour",
}


def _meaning_words(text: str) -> set[str]:
    text = text.lower()
    for phrase, word in _PHRASES.items():
        text = text.replace(phrase, word)
    return set(words(text))


def contradiction(term: str, said: set[str]) -> str | None:
    """The said word that ``term`` contradicts ("night" for "bright sunlit day"), or None.
    A term that holds both sides itself ("sunlit night") contradicts itself."""
    term_words = _meaning_words(term)
    for side_a, side_b in OPPOSITES:
        for mine, other in ((side_a, side_b), (side_b, side_a)):
            if term_words & mine:
                clash = (said | term_words) & other
                if clash:
                    return sorted(clash)[0]
    return None


def _names_a_negative(term_words: set[str], negatives: list[str]) -> bool:
    """ "moonlit sky" names "moon" (asked to be left out): word stems, prefixes included."""
    for negative in negatives:
        for neg in content_words(negative):
            stem = _stem(neg)
            if any(w == neg or (len(stem) >= 3 and w.startswith(stem)) for w in term_words):
                return True
    return False


def drop_contradictions(
    candidate: str, said: str, negatives: list[str] | None = None
) -> tuple[str, list[str]]:
    """The candidate prompt without repeated terms, without added terms that contradict what
    was said, and without added terms that name what was asked to be left out; returns
    (prompt, the dropped terms). Terms made only of the person's words always stay."""
    said_words = _meaning_words(said)
    kept, dropped, seen = [], [], set()
    for term in (t.strip() for t in candidate.split(",")):
        key = term.lower()
        if not term or key in seen:
            continue
        seen.add(key)
        term_words = _meaning_words(term)
        if term_words <= said_words:  # the person's own words, never dropped
            kept.append(term)
            continue
        if contradiction(term, said_words) or _names_a_negative(term_words, negatives or []):
            dropped.append(term)
            continue
        kept.append(term)
        said_words |= term_words  # later additions must agree with this one too
    return ", ".join(kept), dropped


# --- the LLM prompt writer ---------------------------------------------------------------
REWRITE_SYSTEM = (
    "You write prompts for Stable Diffusion. The user names a picture. Answer with their words "
    "exactly, then 3 to 6 short comma-separated terms for lighting, mood, composition and "
    "style that fit it. Never contradict their words: keep their time of day, season, "
    "weather, place, era and medium. One line, nothing else."
)
# (subject, what follows it): varied on purpose; a small model copies its examples' words.
REWRITE_EXAMPLES: tuple[tuple[str, str], ...] = (
    ("a cat sitting on a windowsill", "soft window light, cozy interior, detailed fur"),
    ("a castle in the mountains at night", "moonlit sky, stars, dramatic clouds, epic fantasy"),
    ("a photo of an old fisherman", "weathered face, overcast light, 85mm lens, documentary"),
    ("a fox in an autumn forest", "orange leaves, low warm sun, misty, wildlife art"),
    ("a medieval village in a desert", "sandstone houses, heat haze, wide shot, historical"),
    ("a watercolor of a lighthouse", "pastel sky, loose brush strokes, calm sea, paper texture"),
)


class ChatPromptWriter:
    """Writes a picture's prompt line with a chat LLM: the person's words start the answer,
    the model adds the descriptive terms after them (so it cannot drop or reorder them).

    Callable as ``PromptRewriter``'s ``llm``: subject -> prompt line.
    """

    def __init__(self, llm: ChatLLM, max_tokens: int = 48):
        self.llm = llm
        self.max_tokens = max_tokens
        self.name = llm.name

    @staticmethod
    def messages(subject: str) -> ChatMessages:
        messages = [{"role": "system", "content": REWRITE_SYSTEM}]
        for said, addition in REWRITE_EXAMPLES:
            messages.append({"role": "user", "content": said})
            messages.append({"role": "assistant", "content": f"{said}, {addition}"})
        messages.append({"role": "user", "content": subject})
        messages.append({"role": "assistant", "content": f"{subject},"})  # the answer's start
        return messages

    def warm_up(self) -> str:
        """Evaluate the fixed instructions and examples once (or load their saved state), so
        the first real request only pays for its own words."""
        return warm_prompt(self.llm, [self.messages("a picture"), self.messages("two cats")])

    def __call__(self, subject: str) -> str:
        addition = self.llm.chat(self.messages(subject), max_tokens=self.max_tokens, stop=["\n"])
        addition = addition.strip(" ,")
        return f"{subject}, {addition}" if addition else subject


def clean_llm_output(text: str) -> str:
    """First line, without labels, quotes or a trailing period."""
    line = re.sub(r"<[^<>]{1,40}>", " ", text).strip().split("\n", 1)[0]
    line = re.sub(r"^(?:prompt|positive prompt)\s*:\s*", "", line, flags=re.IGNORECASE)
    return line.strip().strip("\"'`").strip().rstrip(".")


class PromptRewriter:
    """The rewriter the controller uses: raw mode, the LLM when it behaves, the rules always."""

    def __init__(
        self,
        rules: RuleRewriter,
        llm: Callable[[str], str] | None = None,
        max_prompt_words: int = 60,
        raw: bool = False,
        styles: dict[str, tuple[str, str]] | None = None,
    ):
        self.rules = rules
        self.llm = llm  # maps a subject to a prompt line (ChatPromptWriter); None = rules only
        self.max_prompt_words = max_prompt_words
        self.raw = raw
        self.styles = styles or {}  # name -> (template with {prompt}, extra negative)

    def restyle(self, style: str, base_prompt: str, base_negative: str) -> Rewrite:
        """Put a picture's own prompt into a style preset's template."""
        template, negative = self.styles[style]
        subject = strip_quality(base_prompt, self.rules.quality_terms)
        for other_template, _ in self.styles.values():  # drop an earlier style's words
            head, _, tail = other_template.partition("{prompt}")
            subject = subject.removeprefix(head).removesuffix(tail)
        prompt = _join(template.format(prompt=subject.strip(" ,")), self.rules.quality_terms)
        negatives = [n.strip() for n in (negative + "," + base_negative).split(",")]
        return Rewrite(prompt, _join(negatives), "rules")

    def generate(self, request: str) -> Rewrite:
        start = time.perf_counter()
        rest, negatives = split_negatives(request)
        if self.raw:
            return Rewrite(
                _tidy(rest) or request.strip(), self.rules.negative_for(negatives), "raw"
            )
        floor = self.rules.generate(request)
        if self.llm is None:
            return floor
        subject = subject_of(rest)
        try:
            candidate = clean_llm_output(self.llm(subject))
        except Exception as e:  # the LLM is optional: any failure falls back to the floor
            logger.warning("LLM rewrite failed, using the rules: %s", e)
            return _with_note(floor, f"LLM failed: {e}", start)
        candidate, dropped = drop_contradictions(candidate, rest, negatives)
        problem = find_problem(candidate, subject, negatives, self.max_prompt_words)
        if problem:
            logger.info("LLM prompt refused (%s): %r", problem, candidate)
            return _with_note(floor, f"LLM prompt refused: {problem}", start)
        note = f"dropped as contradicting the request: {'; '.join(dropped)}" if dropped else None
        if dropped:
            logger.info("LLM prompt %r: %s", candidate, note)
        elapsed = time.perf_counter() - start
        return Rewrite(candidate, floor.negative_prompt, "llm", note, elapsed)

    def edit(self, instruction: str, base_prompt: str, base_negative: str) -> Rewrite:
        if self.raw:
            rest, negatives = split_negatives(instruction)
            return Rewrite(_tidy(rest), self.rules.negative_for(negatives), "raw")
        return self.rules.edit(instruction, base_prompt, base_negative)


def _with_note(rewrite: Rewrite, note: str, start: float) -> Rewrite:
    return Rewrite(
        rewrite.prompt, rewrite.negative_prompt, rewrite.rewriter, note, time.perf_counter() - start
    )
