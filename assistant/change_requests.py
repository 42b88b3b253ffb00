"""Read a request that changes the current picture as a structured change.

"lose the boat", "make the car blue", "same thing but at night", "actually, make it a night
scene instead", "turn the cat into a dog", "put it on a beach", "make the sky stormier". The
grammar here is the deterministic floor (the ``tiny`` profile has no LLM); the LLM planner
fills the same ``Change`` for phrasings the grammar does not know.
"""

from __future__ import annotations

import re

from assistant.edit_compiler import COLOURS, COMPARATIVE, MEDIUMS, SEASONS, TIME_OF_DAY, WEATHER
from assistant.plan import Change, ChangeKind

# "same thing but ...", "redo the last one but ...", "actually ... instead": the wrapper says
# "change the current scene"; what follows it is the change.
_WRAPPER = re.compile(
    r"^(?:(?:the )?same (?:thing|picture|scene|image|one|again|"
    r"(?!composition|layout|shapes?|structure|pose|outlines?|edges?|lines)[a-z]+)?|"
    r"(?:re)?do (?:it|that|this|the last one|the same) again|"
    r"redo (?:it|that|this|the last one|the picture|the \w+)|"
    r"again|the whole thing|everything|all of it|(?:just )?like before|as before|"
    r"this time|like (?:this|that)|keep (?:it|everything)(?: the same)?)\s*,?\s*"
    r"(?:but|and|only|just)\s+"
)
_SOFTENERS = re.compile(
    r"^(?:(?:actually|instead|hmm+|wait|(?:no|nah)(?=,)|rather|maybe|perhaps|i think|"
    r"i'd rather have it|i would rather have it|i'd rather|i would rather|i'd prefer|i'd like|"
    r"i would like|i want|can you|could you|would you|will you|let's|lets|try|how about|"
    r"what about|now|then|ok|okay|what if (?:it|this|that|the \w+) (?:were|was|is|had)|"
    r"what if)\b[\s,]*)+"
)
_TRAILING = re.compile(
    r"[\s,]+(?:instead|then|now|please|pls|as well|too|for me|a bit|a little|maybe|perhaps|"
    r"i guess|i think|again|back again)$"
    r"|,? like (?:his|hers|mine|theirs|before|that|the other one|the first one|it was)$"
    r"|,? (?:and )?keep (?:everything|the rest|all|all the rest)(?: else)?"
    r"(?: (?:the same|identical|as it is))?$"
    # "green, not blue", "marble instead of wood": what it was before goes with the old prompt
    r"|,? (?:and )?(?:not|instead of|rather than) (?:a |an |the )?[\w-]+(?: [\w-]+)?$"
)

_REMOVE = re.compile(
    r"^(?:remove|delete|erase|lose|drop|ditch|hide|get rid of|take (?:out|away|off)|crop out|"
    r"paint out|pop|shave off|shave|cut off|rub out|wipe out|wipe off|scrub out|clear away|"
    r"clean up|remove all|throw away|throw out|kill|strip away|strip out|strip|getting rid of|"
    r"removing|losing|taking out|taking away|deleting|erasing|"
    r"cut out|leave out|without|no more|no|i don't want|i do not want|don't want)\s+"
    r"(?:the |that |those |this |these |all (?:the |of the )?|any |a |an |his |her |its )?"
    r"(?P<object>[\w' -]+?)(?: anymore| any more| from (?:it|the (?:picture|image|scene)))?$"
)
# "i don't like the stars, remove them", "the clouds are ugly, take them out": the thing
# named before the pronoun goes.
_NAMED_THEN_REMOVED = re.compile(
    r"^(?:(?:[\w' ]+ )?(?:don't|doesn't|do not|does not|didn't|did not) (?:like|want|love)|"
    r"(?:i |he |she |we |they )?(?:hate|can't stand|dislike)) "
    r"(?:the|those|these|that|this) (?P<object>[\w' -]+?)[,.;]? (?:so |just |please |can you |"
    r"could you )?(?:take (?:it|them|that|those) (?:out|away|off)|get rid of (?:it|them|that|"
    r"those)|remove (?:it|them|that|those)|lose (?:it|them)|delete (?:it|them))$|"
    r"^(?:the|those|these) (?P<object2>[\w' -]+?) (?:are|is|look|looks) [\w' ]+?[,.;]? "
    r"(?:so |just |please )?(?:take (?:it|them) (?:out|away|off)|get rid of (?:it|them)|"
    r"remove (?:it|them)|lose (?:it|them)|delete (?:it|them))$"
)
_TAKE_OUT = re.compile(
    r"^(?:take|get|leave|cut|shave|wipe|rub) (?:the |that |those |his |her |its |their )?"
    r"(?P<object>[\w' -]+?) (?:out|away|off)"
    r"(?: of (?:it|the (?:picture|image|scene))| (?:of )?(?:him|her|them|it|the [\w-]+))?$"
)
_REPLACE = re.compile(
    r"^(?:(?:turn|change|make|transform|shift|switch) (?:the |that |his |her |its )"
    r"(?P<object>[\w' -]+?) (?:into|to)|"
    r"swap (?:the |that |his |her |its )(?P<swapped>[\w' -]+?) (?:for|with)) "
    r"(?P<value>(?:a |an |some )?[\w' -]+)$"
)
# "i want that the taxis are become red buses", "the cat becomes a tiger": one thing turns into
# another (said by people who learnt English later, or by Whisper)
_BECOME = re.compile(
    r"^(?:i (?:want|would like|wish) (?:that )?|i'd like |let |that )?"
    r"(?:the |his |her |its |their )"
    r"(?P<object>[\w' -]+?) (?:are |is |to |should |will |can )?(?:be )?(?:become|becomes|"
    r"became|turn into|turns into|turned into|change into|changes into|changed into|"
    r"be changed into|be turned into) (?P<value>(?:a |an |some )?[\w' -]+)$"
)
# "the dog should be wearing a red collar", "the sign should say closed", "the sky should be pink"
_SHOULD = re.compile(
    r"^(?:(?:the|his|her|its|their) (?P<object>[\w' -]+?)|(?P<pronoun>he|she|they|it)|"
    r"(?!(?:there|this|that|everything|you|i|we)\b)(?P<bare>[\w'-]+(?: [\w'-]+)?)) "
    r"(?:should|could|must|needs to|has to)"
    r" (?P<verb>be wearing|wear|have|hold|be holding|say|read|be|look) (?P<value>.+)$"
)
# "could the teapot be green", "can the sky look stormier", "could he wear a raincoat"
_COULD = re.compile(
    r"^(?:could|can|would|should|may) (?:(?:the|his|her|its|their) (?P<object>[\w' -]+?)|"
    r"(?P<pronoun>he|she|it|they)) "
    r"(?P<verb>be wearing|wear|have|hold|be holding|say|read|be|look) (?P<value>.+)$"
)
# "there should be a cat on the windowsill", "i want a rainbow in it", "give the fox a hat"
# "some pine trees behind it", "a little dog next to her", "a few birds in the sky": a thing
# placed by the picture's own things or parts is added to it (a new scene names its place).
_PLACED_BY_IT = re.compile(
    r"^(?P<value>(?:a|an|some|a few|a couple of|two|three|lots of|more) [\w' -]+? "
    r"(?:(?:behind|in front of|next to|beside|around|under|above|below|on top of|near|on) "
    r"(?:it|him|her|them)|in the (?:background|foreground|sky|distance|corner)))$"
)
_THERE_BE = re.compile(
    r"^(?:there (?:should|could|must|needs to|has to) be|can there be|could there be|"
    r"i want|i'd like|i would like|it needs|it should have|it could use) "
    r"(?P<value>(?:a|an|some|more|two|three|lots of|many) .+?)(?: in (?:it|there|the picture))?$"
)
# "make the puppy wear a little red hat", "the girl is wearing sunglasses"
_WEAR = re.compile(
    r"^(?:(?:make|let|have) (?:the |his |her |its |their )?(?P<o1>[\w' -]+?) (?P<v1>wear|hold|"
    r"have|carry)|(?:i want |i'd like )?(?:the|his|her|its|their) (?P<o2>[\w' -]+?) (?:is |are |"
    r"to be )(?:like )?(?P<v2>wearing|holding|having|carrying)) "
    r"(?P<value>(?:(?:a|an|some|the|his|her|their|two|three|little) )?.+)$"
)
# "the leaves are more orange", "the sky is too grey"
_IS = re.compile(
    r"^(?:the|his|her|its|their) (?P<object>(?:(?!\b(?:should|could|must|would|will|can)\b)"
    r"[\w' -])+?) (?:is|are|looks?) (?P<value>(?:more |"
    r"less |a bit |much |too )?[\w-]+)$"
)
# "i wonder if it might look nicer without the clouds": a removal, said as a wish
_BETTER_WITHOUT = re.compile(
    r"^(?:[\w' ]+ )?(?:look|be|seem|feel) (?:a bit |much |even )?(?:nicer|better|cleaner|good|"
    r"great|calmer|simpler) without (?:the |a |an |those |these |that |any )?(?P<object>[\w' -]+)$"
)
# "make the tower at sunrise": a time, weather or season said after a thing of the picture
_THING_AT = re.compile(
    r"^(?:make|show|put|set|have|see|show me|to see) (?:the |his |her |its )?[\w'-]+(?: [\w'-]+)? "
    r"(?P<phrase>(?:at|in|during|on a|under a|by) [\w -]+)$"
)
# "i want the street empty" (its "i want" already trimmed), "the car blue": a thing and how
_WANT_IT = re.compile(
    r"^(?:i want |i'd like |i would like |i need |let's have |i prefer )?(?:the |his |her )"
    r"(?!(?:too|so|very|really|a|bit)\b)(?P<object>[\w'-]+(?: (?!(?:is|are|was|looks?)\b)"
    r"[\w'-]+)?) "
    r"(?P<value>(?:more |less |a bit |completely |totally )?[\w-]+)$"
)
_STATES = set(
    """empty clean clear full bare open closed shut lit dark bright wet dry quiet busy crowded
    calm tidy messy smaller bigger shiny rusty broken new old""".split()
)
# "let the night fall on it", "winter has come for the wheat": a scene word arriving
_ARRIVES = re.compile(
    r"^(?:let (?:the )?(?P<a>[\w-]+) (?:fall|come|arrive|set in|roll in|creep in)|(?:the )?"
    r"(?P<b>[\w-]+) (?:has come|comes|is coming|arrives|has arrived|falls|has fallen|sets in))"
    r"\b.*$"
)
# "the roof, i want it in green": the thing first, then what it should be
_THING_FIRST = re.compile(
    r"^(?:the|his|her|its) (?P<object>[\w' -]+?),? (?:i want|i'd like|make|can you make|could you "
    r"make|i would like) (?:it|them|him|her) (?:in |to be |more |to look )?(?P<value>[\w -]+)$"
)
# "make the wall behind the sofa a soft sage green": a thing (somewhere) and its new colour
_MAKE_A_COLOUR = re.compile(
    r"^(?:make|paint|colou?r) (?:the |his |her |its )(?P<object>[\w'-]+)"
    r"(?: (?:behind|on|in|near|by|"
    r"under|above) the [\w' -]+?)? (?:a |an )?"
    r"(?P<value>(?!(?:more|less|a bit|slightly|much|even|too)\b)(?:[\w-]+ ){0,3}[\w-]+)$"
)
# "can the dragon breathe fire", "could the cat sleep on the sofa": what a thing does
_CAN_DO = re.compile(
    r"^(?:can|could|would|let|make|have) (?:the |his |her )(?P<object>[\w'-]+) "
    r"(?P<verb>breathe|fly|"
    r"run|jump|swim|dance|sing|smile|sleep|sit|stand|eat|drink|hug|climb|roar|wave|laugh|play|"
    r"read|hold|carry|wear)(?P<rest>(?: [\w' -]+)?)$"
)
# "take the lemons and make them limes"
_TAKE_AND_MAKE = re.compile(
    r"^(?:take|get|grab) (?:the |those |these |his |her )?(?P<object>[\w' -]+?) and (?:make|turn) "
    r"(?:them|it|him|her) (?:into )?(?P<value>(?:a |an |some )?[\w' -]+)$"
)
# "make like painting of Van Gogh", "in the style of Monet"
_PAINTER = re.compile(
    r"^(?:make (?:it )?(?:look )?like (?:a )?(?:painting|picture|work) (?:of|by)|"
    r"(?:make it |do it |paint it )?(?:in|like) the style of) (?P<artist>[\w' .-]+)$"
)
# "it would be even nicer if it were evening time, you know, ...": the change in a wish
_NICER_IF = re.compile(
    r"^(?:i think )?(?:it would|it'd|it might|it could) (?:be|look) (?:even |much |a bit |a lot )?"
    r"(?:nicer|better|lovelier|prettier|cosier|cozier) (?:if it (?:were|was) |with |in |at |as )"
    r"(?P<rest>[^,]+)(?:,.*)?$"
)
# "the smoke's a bit much, tone it down": less of a thing the picture has
_TOO_MUCH_OF = re.compile(
    r"^(?:the |that |those |this )?(?P<object>[\w-]+(?: [\w-]+)??)(?:'s| is| are)? (?:a bit |"
    r"way |far |rather |just |a little )?(?:too much|much|overwhelming|too strong|overdone|"
    r"too heavy|too thick)(?:,? (?:tone (?:it|them) down|less of (?:it|them)))?$"
)
# What is too much as a haze gets fainter; a thing too much ("the scarf") gets subtler.
_HAZES = {"smoke", "fog", "mist", "steam", "haze", "glow", "light", "lighting", "rain", "snow",
          "clouds", "sparkle", "glitter", "shine", "reflection", "blur"}  # fmt: skip
_TONE_DOWN = re.compile(
    r"^tone (?:it|that|this|everything) down$|^tone down the (?P<object>[\w' -]+)$"
)
_COUNTED = re.compile(
    r"^(?:one|two|three|four|five|six|seven|eight|nine|ten|eleven|twelve|\d+) (?P<noun>[\w-]+s)$"
)
# "make the skeleton a zombie (instead)": the thing becomes another
_MAKE_THE_X_A = re.compile(
    r"^(?:make|turn) (?:the |his |her |its )(?P<object>[\w'-]+) (?:a|an) "
    r"(?!(?:bit|little|lot|tad|touch)\b)(?P<value>[\w'-]+(?: [\w'-]+)?)$"
)
# "make his cap a tweed one, a brown tweed": the thing stays, of another kind
_A_KIND_ONE = re.compile(
    r"^(?:make|turn|change) (?:the |his |her |its |their )(?P<object>[\w' -]+?) (?:into )?"
    r"(?:an? )(?P<value>[\w' -]+?) one(?:,? (?:an? |like an? )?(?P<more>[\w' -]+))?$"
)
# "make him younger, like 30": the person's age
_AGE = re.compile(
    r"^(?:make|let) (?:him|her|them|it|the [\w-]+) (?:look )?(?:a (?:bit|little|lot) )?"
    r"(?P<way>younger|older)(?:,? (?:like|about|around|maybe|say|aged?) (?P<age>\d{1,3})"
    r"(?: years?(?: old)?| ish)?)?$"
)
# "make him smile": an action of the person or animal in the picture
_DO = re.compile(
    r"^(?:make|let|have) (?:him|her|them|it|the [\w-]+) (?P<verb>smile|laugh|cry|sleep|dance|"
    r"run|jump|fly|sit|stand|swim|sing|wave|look up|look down|look away|frown|wink|yawn)$"
)
# "strawberries on top instead of the candles"
_INSTEAD = re.compile(
    r"^(?!(?:make|turn|change|paint|colou?r|put|set)\b)(?P<value>(?:a |an |some )?[\w' -]+?) "
    r"instead of (?:the |a |an |those |that )?(?P<object>[\w' -]+)$"
)
_GIVE = re.compile(
    r"^give (?!(?:him|her|them|it)\b)(?:the )?(?P<object>[\w'-]+(?: [\w'-]+)?) "
    r"(?P<value>(?:a|an|some) .+)$"
)
# "it's a bit too dark for me": a complaint names the quality to take away.
_TOO = re.compile(
    r"^(?:(?:i think |hmm |well )?(?:it's|its|it is|that's|this is|it looks|it seems|looks|"
    r"seems|a bit|way|much|a little|still|bit)\s*)*(?:a bit |a little |way |much )?"
    r"too (?P<quality>[\w-]+)(?: for me| to me| now)?$"
)
TOO_MUCH = {  # what "too X" asks for instead
    "dark": "brighter", "bright": "darker", "light": "darker", "busy": "simpler",
    "cold": "warmer", "warm": "cooler", "sad": "happier", "scary": "less scary",
    "red": "less red", "plain": "more detailed", "boring": "more interesting",
    "blurry": "sharper", "small": "bigger", "big": "smaller",
}  # fmt: skip
_SET = re.compile(
    r"^(?:make|paint|colou?r|turn|change) (?:the |his |her |its |their |that |(?!(?:sure|it|this|"
    r"that|me|him|her|them|us|everything|a|an|one|some|another|two|three|new|up|the|his|its|"
    r"their|my|your)\b))"
    r"(?P<object>[\w' -]+?) (?P<value>(?:more |less |a bit |slightly |much |even )?[\w-]+"
    r"(?: and (?:more |less )?[\w-]+| colou?red| tinted| toned)?)$"
)
_SETTING = re.compile(
    r"^(?:put|move|place|set|take) (?:it|him|her|them|everything|the scene|the \w+) "
    r"(?P<value>(?:on|in|at|into|onto|inside|under|near|by|to) .+)$"
)
_ADD = re.compile(
    r"^(?:add|include|put in|throw in|give (?:it|him|her|them)|with|plus|and|"
    r"put (?=(?:a|an|some|two|three) )|"
    r"put (?=[\w' -]+ (?:in the (?:background|foreground|sky|corner|distance)|behind (?:it|him|her|"
    r"them)|next to (?:it|him|her|them))$))\s*"
    r"(?P<value>.+)$"
)
_MORE_OF = re.compile(r"^(?P<value>(?:more|lots of|many|a lot more|some) [\w' -]+s)$")
# "fewer people", "less fog", "not so many birds": less of a thing that is in the picture.
_FEWER = re.compile(
    r"^(?:fewer|less|not so many|not as many|not so much|not as much) (?P<object>[\w-]+)$"
)
_PLURALS = {"people", "children", "men", "women", "sheep", "fish", "deer", "mice", "geese"}
# "the background needs some people watching", "the sky could use a few birds"
_PART_NEEDS = re.compile(
    r"^(?:the |that |this )?(?P<part>background|foreground|sky|scene|picture|image|room|table|"
    r"street|garden|wall|stage) (?:needs|could use|could do with|should have|wants|needs to have)"
    r" (?P<value>(?:a|an|some|more|two|three|a few|lots of|a couple of) [\w' -]+)$"
)
_MAKE_IT = re.compile(
    r"^(?:(?:render|paint|draw|redo|do) (?:it|this|that)(?= (?:in|as) )|"
    r"make (?:it|this|that|everything|the (?:picture|image|scene)|the whole (?:thing|picture|"
    r"image|scene)|(?:him|her|them)(?= (?:look|"
    r"feel|seem|more|less|a|an|younger|older|happier|sadder|bigger|smaller|taller)\b))"
    r"(?: look| feel| seem)?|"
    r"turn (?:it|this|that) into|change (?:it|this|that) (?:in)?to|it should be|"
    r"can it be|let it be|it to be|it to look|it)\s+(?P<value>.+)$"
)
_ADJUST = re.compile(
    r"^(?:(?:a )?(?:bit|little|lot|tad|touch) |slightly |much |way |even |a little bit )?"
    r"(?P<value>(?:more|less) [\w-]+|[\w-]+er)$"
)
_SCENE = re.compile(r"^(?:a |an |the )?(?P<value>[\w -]+?) (?:scene|version|setting|one|look)$")


def _clean(said: str) -> str:
    previous = None
    while previous != said:
        previous = said
        said = _SOFTENERS.sub("", said).strip(" ,")
        said = _TRAILING.sub("", said).strip(" ,")
    return said


def parse_change(said: str) -> tuple[Change, bool] | None:
    """The change a normalised request asks for, and whether it was wrapped as a scene change
    ("same thing but ..."), or None when it does not read as a change."""
    if m := _INSTEAD.match(_SOFTENERS.sub("", said).strip(" ,")):
        obj, value = m.group("object").strip(), m.group("value").strip()
        new, old = _phrase_change(value), _phrase_change(obj)
        if new is not None and old is not None and new.kind == old.kind:  # snow, not rain
            return new, False
        return Change(kind=ChangeKind.REPLACE, object=obj, value=value), False
    said = _clean(re.sub(r"^(?:make it so|make it look like) (?=(?:the|his|her) )", "", said))
    # "do the same bed in late autumn": the scene again, with what follows changed
    said = re.sub(
        r"^(?:do|make|draw|show)(?: me)? (?:the )?same (?:[\w-]+ )?(?:but |and |only )?"
        r"(?=(?:in|at|during|on|under) )",
        "same thing but ",
        said,
    )
    wrapped = False
    if m := _WRAPPER.match(said):
        said, wrapped = _clean(said[m.end() :]), True
    change = _structured(said)
    if change is None and wrapped and said.startswith(_PLACE_WORDS):  # "same car but on a road"
        change = Change(kind=ChangeKind.SETTING, value=said)
    if change is None and wrapped and said:
        change = _phrase_change(said) or Change(kind=ChangeKind.FREE, value=said)
    return (change, wrapped) if change is not None else None


def _structured(said: str) -> Change | None:
    if m := _NAMED_THEN_REMOVED.match(said):
        return Change(kind=ChangeKind.REMOVE, object=(m.group("object") or m.group("object2")))
    if m := (_TAKE_OUT.match(said) or _REMOVE.match(said) or _BETTER_WITHOUT.match(said)):
        return Change(kind=ChangeKind.REMOVE, object=m.group("object").strip())
    if (m := _ARRIVES.match(said)) and (
        phrase := _phrase_change(m.group("a") or m.group("b"))
    ) is not None:
        return phrase
    if m := _THING_FIRST.match(said):
        obj = re.sub(r" (?:looks?|is|are|seems?|feels?) [\w -]+$", "", m.group("object"))
        return _attribute(obj, m.group("value"))
    if m := _THING_AT.match(said):  # "make the tower at sunrise": the scene's time, not a thing
        if (phrase := _phrase_change(m.group("phrase"))) is not None:
            return phrase
    if (m := _WANT_IT.match(said)) and _is_state(m.group("value")):  # "i want the street empty"
        return _attribute(m.group("object"), m.group("value"))
    if m := (_TOO_MUCH_OF.match(said) or _FEWER.match(said)):
        return _less_of(m.group("object"))
    if m := _TONE_DOWN.match(said):
        obj = m.group("object") or ""
        return Change(kind=ChangeKind.ADJUST, object=obj, value="more subtle")
    if m := _TAKE_AND_MAKE.match(said):
        value, obj = m.group("value").strip(), m.group("object").strip()
        if _is_quality(value):
            return _attribute(obj, value)
        return Change(kind=ChangeKind.REPLACE, object=obj, value=value)
    if m := _PAINTER.match(said):
        return Change(kind=ChangeKind.STYLE, value=f"painting in the style of {m.group('artist')}")
    if (m := _NICER_IF.match(said)) and (phrase := _phrase_change(m.group("rest"))) is not None:
        return phrase
    if (m := _MAKE_A_COLOUR.match(said)) and m.group("value").split()[-1] in COLOURS:
        return Change(
            kind=ChangeKind.SET_ATTRIBUTE, object=m.group("object"), value=m.group("value")
        )
    if m := _CAN_DO.match(said):
        obj = m.group("object")
        doing = f"the {obj} {_ing(m.group('verb'))}{m.group('rest')}"
        return Change(kind=ChangeKind.ADD, object=obj, value=doing)
    if m := _AGE.match(said):
        way = "young" if m.group("way") == "younger" else "old"
        age = f", about {m.group('age')} years old" if m.group("age") else ""
        return Change(kind=ChangeKind.ADJUST, value=f"{way}{age}")
    if m := _A_KIND_ONE.match(said):
        value = (m.group("more") or m.group("value")).strip()
        return Change(kind=ChangeKind.SET_ATTRIBUTE, object=m.group("object").strip(), value=value)
    if m := _BECOME.match(said):
        return Change(kind=ChangeKind.REPLACE, object=m.group("object"), value=m.group("value"))
    if m := _REPLACE.match(said):
        value, obj = m.group("value").strip(), (m.group("object") or m.group("swapped")).strip()
        if pattern := _as_pattern(value):  # "change the awning to red and white stripes"
            return Change(kind=ChangeKind.SET_ATTRIBUTE, object=obj, value=pattern)
        if _is_quality(value):
            return _attribute(obj, value)
        return Change(kind=ChangeKind.REPLACE, object=obj, value=value)
    if m := _TOO.match(said):
        quality = m.group("quality")
        return Change(kind=ChangeKind.ADJUST, value=TOO_MUCH.get(quality, f"less {quality}"))
    if m := (_THERE_BE.match(said) or _PLACED_BY_IT.match(said)):
        return Change(kind=ChangeKind.ADD, value=m.group("value").strip())
    if m := _GIVE.match(said):
        obj, value = m.group("object").strip(), m.group("value").strip()
        return Change(kind=ChangeKind.ADD, object=obj, value=f"{value} on the {obj}")
    if m := _DO.match(said):
        verb = m.group("verb").split()
        return Change(kind=ChangeKind.FREE, value=" ".join([_ing(verb[0]), *verb[1:]]))
    if (m := _WEAR.match(said)) and not said.startswith(("add ", "put ", "give ")):
        obj = (m.group("o1") or m.group("o2")).strip()
        verb = m.group("v1") or m.group("v2")
        verb = _VERB_ING.get(verb, verb if verb.endswith("ing") else verb + "ing")
        return Change(kind=ChangeKind.ADD, object=obj, value=f"the {obj} {verb} {m.group('value')}")
    if m := _IS.match(said):
        value = m.group("value")
        if value.startswith("too "):
            quality = value[4:]
            return Change(kind=ChangeKind.ADJUST, object=m.group("object"),
                          value=TOO_MUCH.get(quality, f"less {quality}"))  # fmt: skip
        return _attribute(m.group("object"), value)
    if m := (_SHOULD.match(said) or _COULD.match(said)):
        obj = m.groupdict().get("object") or m.groupdict().get("bare") or ""
        verb, value = m.group("verb"), m.group("value").strip()
        # "could be something other than yellow... lavender, maybe": the colour that follows
        value = re.sub(r"^something (?:other|else) than [\w-]+\W+", "", value)
        value = re.sub(r",? (?:maybe|perhaps|i guess|i think)$", "", value).strip(" .,")
        if not obj:  # "could he wear a raincoat": the person in the picture
            if verb in ("be", "look"):
                return _phrase_change(value) or Change(kind=ChangeKind.ADJUST, value=value)
            return Change(kind=ChangeKind.ADD, value=f"{_VERB_ING.get(verb, verb)} {value}")
        if verb in ("be", "look"):
            return _phrase_change(value) or _attribute(obj, value)
        if verb in ("say", "read"):
            return Change(kind=ChangeKind.ADD, value=f'the {obj} saying "{value}"')
        return Change(kind=ChangeKind.ADD, value=f"the {obj} {_VERB_ING.get(verb, verb)} {value}")
    if m := _SETTING.match(said):
        return Change(kind=ChangeKind.SETTING, value=m.group("value").replace("to ", "in ", 1))
    if (m := _MAKE_IT.match(said)) and (count := _COUNTED.match(m.group("value").strip())):
        # "change it to six candles": the five candles become six
        return Change(kind=ChangeKind.REPLACE, object=count.group("noun"), value=count.group())
    if (m := _MAKE_THE_X_A.match(said)) and not _is_quality(m.group("value")):
        return Change(kind=ChangeKind.REPLACE, object=m.group("object"), value=m.group("value"))
    if m := _MAKE_IT.match(said):
        if m.group("value").strip() in COLOURS:  # "make it yellow": the thing that had a colour
            return Change(kind=ChangeKind.SET_ATTRIBUTE, value=m.group("value").strip())
        scene = re.match(r"^(?:an? |the )?(?P<adj>[\w-]+) (?:[\w-]+)$", m.group("value").strip())
        if scene and (phrase := _phrase_change(scene.group("adj"))) is not None:
            return phrase  # "make it a snowy street": snow, the street stays
        return _phrase_change(m.group("value").strip()) or Change(
            kind=ChangeKind.FREE, value=m.group("value").strip()
        )
    if m := _SET.match(said):
        return _attribute(m.group("object"), m.group("value"))
    if m := (_MORE_OF.match(said)):
        return Change(kind=ChangeKind.ADD, value=m.group("value"))
    if m := _PART_NEEDS.match(said):
        part, value = m.group("part"), m.group("value").strip()
        where = f" in the {part}" if part in ("background", "foreground", "sky") else ""
        return Change(kind=ChangeKind.ADD, value=f"{value}{where}")
    if m := _ADD.match(said):
        return _phrase_change(m.group("value").strip()) or Change(
            kind=ChangeKind.ADD, value=m.group("value").strip()
        )
    if m := _ADJUST.match(said):
        value = m.group("value")
        if value.startswith(("more ", "less ")) or value in COMPARATIVE:
            return _phrase_change(value) or Change(kind=ChangeKind.ADJUST, value=value)
    return _phrase_change(said) if len(said.split()) <= 4 else None


# "make the storm worse": a stronger one of the weather named, not a "worse storm"
_STRONGER = {"worse", "stronger", "heavier", "wilder", "fiercer", "more intense", "more violent"}
_STRONG_WEATHER = {"storm": "fierce", "wind": "howling", "waves": "huge", "sea": "rough",
                   "rain": "heavy", "snow": "heavy", "fog": "thick", "clouds": "dark"}  # fmt: skip


def _ing(verb: str) -> str:
    """ "smile" -> "smiling", "run" -> "running": what the thing in the picture is doing."""
    ing = (verb[:-1] if verb.endswith("e") and verb != "see" else verb) + "ing"
    doubled = {"runing": "running", "swiming": "swimming", "siting": "sitting", "huging": "hugging"}
    return doubled.get(ing, ing)


def _attribute(obj: str, value: str) -> Change:
    obj, value = obj.strip(), re.sub(r"^(?:a bit|slightly|much) ", "", value.strip())
    if value in _STRONGER and obj in _STRONG_WEATHER:
        return Change(kind=ChangeKind.SET_ATTRIBUTE, object=obj, value=_STRONG_WEATHER[obj])
    if value.startswith(("more ", "less ")) or value in COMPARATIVE:
        return Change(kind=ChangeKind.ADJUST, object=obj, value=value)
    return Change(kind=ChangeKind.SET_ATTRIBUTE, object=obj, value=value)


_PATTERNS = {"stripes": "striped", "stripy": "striped", "striped": "striped", "spots": "spotted",
             "dots": "polka-dot", "polka dots": "polka-dot", "checks": "checkered",
             "squares": "checkered", "checkered": "checkered", "plaid": "plaid",
             "tartan": "tartan", "flowers": "floral", "floral": "floral"}  # fmt: skip


def _as_pattern(value: str) -> str | None:
    """ "red and white stripes" -> "red and white striped": a pattern is how a thing looks."""
    value = re.sub(r"^(?:a |an |some |with )", "", value.strip())
    for noun, adjective in _PATTERNS.items():
        if value == noun or value.endswith(" " + noun):
            return (value[: -len(noun)] + adjective).strip()
    return None


def split_phrases(value: str) -> list[Change] | None:
    """ "foggy early morning" -> weather fog, then early morning: a run of scene phrases said
    without a joining word, each a change of its own (None unless every word is in one)."""
    if m := re.match(
        r"^(?P<scene>.+?) (?:with|and) (?P<more>(?:lots of|some|a|an|more|many) .+)$", value
    ):
        scene = _phrase_change(m.group("scene"))  # "at night with lots of stars"
        if scene is not None:
            return [scene, Change(kind=ChangeKind.ADD, value=m.group("more"))]
    tokens = value.split()
    for i in range(1, len(tokens)):
        left = _phrase_change(" ".join(tokens[:i]))
        if left is None:
            continue
        right = _phrase_change(" ".join(tokens[i:]))
        rest = [right] if right is not None else split_phrases(" ".join(tokens[i:]))
        if rest:
            return [left, *rest]
    return None


_SHADES = ("dark", "light", "bright", "pale", "deep", "pastel", "navy", "royal", "sky", "neon")


def _is_state(value: str) -> bool:
    """A word that says how a thing is (a colour, "empty", "rusty"), not another thing."""
    word = value.split()[-1]
    return (
        word in COLOURS
        or word in COMPARATIVE
        or word in _STATES
        or word.endswith(("ful", "ous", "ive", "ish", "ic", "y"))
        and not word.endswith(("ey", "ay", "oy"))
    )


def _is_quality(value: str) -> bool:
    words_ = value.split()
    shade = len(words_) == 2 and words_[0] in _SHADES and words_[1] in COLOURS  # "dark green"
    return shade or value in COLOURS or value in COMPARATIVE or value.startswith(("more ", "less "))


def _phrase_change(value: str) -> Change | None:
    """A short phrase naming a time of day, weather, season, medium or quality."""
    value = _TRAILING.sub("", value.strip(" ,"))
    if m := _SCENE.match(value):
        value = m.group("value")
    bare = re.sub(r"^(?:at|in|by|during|on|into|to|as|a|an|the)\s+", "", value)
    bare = re.sub(r"^(?:the|a|an)\s+", "", bare).removesuffix(" time").strip()
    bare = re.sub(
        r"^(?:late|early|mid|deep|high)[ -](?=(?:autumn|fall|spring|summer|winter)\b)", "", bare
    )
    for table, kind in ((TIME_OF_DAY, ChangeKind.TIME_OF_DAY), (SEASONS, ChangeKind.SEASON)):
        if bare in table or bare.removesuffix("time") in table:
            return Change(kind=kind, value=bare if bare in table else bare.removesuffix("time"))
    if bare in ("nighttime", "night-time"):
        return Change(kind=ChangeKind.TIME_OF_DAY, value="night")
    if bare in WEATHER or (bare.startswith("more ") and bare[5:] in WEATHER):
        return Change(kind=ChangeKind.WEATHER, value=bare.removeprefix("more "))
    if bare.endswith(("ing", "s")) and bare.removesuffix("ing") in WEATHER:  # "raining"
        return Change(kind=ChangeKind.WEATHER, value=bare.removesuffix("ing"))
    medium = re.sub(r"^(?:an? |the )?(.+?)(?: style| painting)?$", r"\1", bare)
    for name in MEDIUMS:
        if bare == name or medium == name or bare in (f"{name} style", f"like a {name}"):
            return Change(kind=ChangeKind.STYLE, value=name)
    if value.startswith("more ") and _is_thing(value[5:]):  # "more trees": more of a thing
        return Change(kind=ChangeKind.ADD, value=value)
    if value.startswith(("more ", "less ")) or value in COMPARATIVE:
        return Change(kind=ChangeKind.ADJUST, value=value)
    return None


_ADJECTIVE_ENDINGS = ("ful", "y", "ic", "ous", "ive", "al", "ish", "ant", "ent", "ed", "le")


def _less_of(obj: str) -> Change:
    """Less of ``obj``: fewer of many things, a fainter haze, a subtler single thing."""
    many = _is_thing(obj) or obj in _PLURALS
    value = "fewer" if many else "faint" if obj in _HAZES else "subtle"
    return Change(kind=ChangeKind.SET_ATTRIBUTE, object=obj, value=value)


def _is_thing(word: str) -> bool:
    """ "trees", "birds": a plural noun rather than a quality ("colorful", "vibrant")."""
    word = word.strip()
    return " " not in word and word.endswith("s") and not word.endswith(_ADJECTIVE_ENDINGS)


_VERB_ING = {"wear": "wearing", "be wearing": "wearing", "have": "with", "hold": "holding",
             "be holding": "holding"}  # fmt: skip
_PLACE_WORDS = ("on ", "in ", "at ", "by ", "near ", "inside ", "under ", "into ", "onto ")


def repair_change(kind: str, obj: str, value: str) -> Change:
    """A change an LLM named, with its kind made consistent with its words.

    Small models pick kinds loosely ("setting" for "the boat should be red"); the words decide
    where they are unambiguous: a time of day, weather, season or medium is that kind, a
    colour or quality of a named thing is an attribute, and a place needs a preposition.
    """
    obj, value = obj.strip(), value.strip()
    if (phrase := _phrase_change(value)) is not None and kind not in ("remove", "replace"):
        return phrase
    if kind == "remove":
        return Change(kind=ChangeKind.REMOVE, object=obj or value)
    if kind == "setting" and not value.lower().startswith(_PLACE_WORDS):
        kind = "set-attribute" if obj and len(value.split()) <= 2 else "add"
    if kind == "set-attribute" and not obj:
        kind = "adjust" if value.startswith(("more ", "less ")) else "add"
    if kind == "replace" and obj and obj.lower() in value.lower():  # "cat" -> "cat with hat"
        rest = re.sub(rf"\b{re.escape(obj)}\b", "", value, flags=re.I).strip(" ,")
        kind, value = "add", rest or value
    return Change(kind=ChangeKind(kind), object=obj, value=value)
