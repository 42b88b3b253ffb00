"""The local grammar: whole-utterance commands and the slots of the requests it knows.

Matched on normalised text in well under a millisecond, so "undo", "start over" or "flip it"
never wait for a model. Each parser returns None when the utterance is not its kind.
"""

from __future__ import annotations

import re

from assistant.plan import Intent, Transform
from common.text import drop_restarts

# Words passed on from someone else: "my son wants ...", "she says ...", "the client would like".
RELAYED = (
    r"(?:(?:my|our|the) (?:son|daughter|kids?|child|children|boy|girl|little one|grandson|"
    r"granddaughter|nephew|niece|wife|husband|partner|friend|brother|sister|mum|mom|dad|boss|"
    r"client|customer|teacher)|he|she|they) (?:says|said|wants|would like|would love|asked for|"
    r"asks for|is asking for|asked|asks)(?: (?:you |me )?to (?:see|draw|make|add|have))?"
)
_FILLER = re.compile(
    r"^(?:(?:ok|okay|oh|hey|um+|uh+|er+m?|hmm+|so|now|please|and|alright|right|well|"
    r"like(?=,)|just|yeah|yes|cool|wait|oops|ah|ahh|right then|actually|ugh|argh|hmph|no wait|"
    r"no(?=,? the (?:one|picture|version) before\b)|"
    r"nah|naw|nope|yo|bruh|bro|dude|fam|aight|ight|lowkey|honestly|by the way|btw|separately|"
    r"(?:i'm )?(?:so |very |terribly )?sorry(?: to bother you| to be a (?:pain|bother)| to ask)?"
    r"(?:,? but)?|chat (?:says|wants|said)|good (?:morning|afternoon|evening)(?=[\s,.!]+\w+ \w)|"
    r"(?:that's|it's|this is) (?:very |really |so )?(?:nice|lovely|great|good|beautiful),? but|"
    r"(?:is|it is|is it) possible (?:to|that you)|would there be any way (?:of|to)|"
    r"is there (?:any )?way (?:of|to)|might i trouble you for|could i trouble you for|"
    r"oh and|and separately|one more thing|while i think of it|before i forget|"
    r"(?:mummy|mommy|mum|mom|daddy|dad|sweetie|honey|darling)(?=[\s,]+(?:i|can|make|draw|please|"
    r"look|put|give|now)\b)|"
    r"um+|uh+|(?:hi|hello|hiya|hey there)(?=[\s,.!]+\w+ \w)|"
    + RELAYED
    + r"(?=[\s,:]+\w+ \w))[\s,.!:]+)+|"
    r"(?:[\s,]+(?:please|pls|plz|thanks|thank you|now|for me|if you can|if you could))+$"
)
# "thanks, now make it darker": the thanks is politeness, the request follows it.
_THANKS_THEN = re.compile(
    r"^(?:thanks|thank you|great|cool|nice|perfect|awesome|lovely|love it|good)[\s,!.]+"
    r"(?!(?:night|morning|evening|afternoon|day|bye|job|one)\b)"
    r"(?:but |now |and |can you |could you |please )*"
    # Only a request after the thanks: "thanks for watching" is all thanks.
    r"(?=(?:make|add|remove|draw|paint|change|put|turn|give|show|try|do|let's|can|could|"
    r"undo|redo|flip|zoom|crop|upscale|save|go|now|but|and|please|what|how|lose|get rid)\b)"
)


# A laugh or a quip after the request: ", safety first haha".
_LAUGH = r"(?:(?:ha){2,}h?|haha+|he(?:he)+|lol|lmao)"
_LAUGH_AFTER = re.compile(rf",\s*(?:[\w' ]{{0,25}} )?{_LAUGH}$|\s+{_LAUGH}$")


_NUMBERED = re.compile(r"^\s*1[.)]\s+\w")
_NUMBERED_ITEM = re.compile(r"(?:^|[\s.,;]+)\d[.)]\s+")


def normalise(text: str) -> str:
    """Lower case, no trailing punctuation, fillers and politeness trimmed."""
    text = text.lower().strip().replace("’", "'")
    # "um" between words, and a phrase restarted ("a dog a dog running", "make it make it")
    text = drop_restarts(_LAUGH_AFTER.sub("", text.rstrip(" !?.…")))
    if _NUMBERED.match(text):  # "1. make it blue 2. add a cat": one change after another
        items = [i.strip(" .,;") for i in _NUMBERED_ITEM.split(text) if i.strip(" .,;")]
        text = ", then ".join(items)
    text = re.sub(r"\s+", " ", re.sub(r"[!?.…]+$", "", text))
    previous = None
    while previous != text:
        previous, text = text, _FILLER.sub("", text).strip(" ,.!")
    if (m := _THANKS_THEN.match(text)) and len(text) > m.end() + 3:
        text = normalise(text[m.end() :])
    # "undo undo undo": three steps back; "stop, stop, stop": one command said for emphasis
    # "flip h", "mirror v": a power user's shorthand for the direction
    text = re.sub(r"^(flip|mirror)( it)? (?:h|horiz)$", r"\1\2 horizontally", text)
    text = re.sub(r"^(flip|mirror)( it)? (?:v|vert)$", r"\1\2 vertically", text)
    if m := re.fullmatch(r"undo(?:[\s,]+undo){1,4}", text):
        return f"undo {m.group().count('undo')} times"
    return re.sub(r"^(\w+)(?:[\s,]+\1)+$", r"\1", text)


def _rx(*alternatives: str) -> re.Pattern[str]:
    return re.compile("|".join(f"(?:{a})" for a in alternatives))


# Whole-utterance commands, matched on the normalised text.
COMMANDS: list[tuple[Intent, re.Pattern[str]]] = [
    (
        Intent.UNDO,
        _rx(
            r"^undo(?: that| it| this| the last (?:one|change|step|edit)| (?:the|that|what)"
            r" (?:thing|change|edit|step)?(?: (?:you|i) (?:just )?(?:did|made|added))?|"
            r" the (?!undo\b)[\w-]+(?: [\w-]+)?)?$",
            r"^(?:no,? )*(?:go |step )?back(?: one step| a step)?$",
            r"^(?:belay|reverse|scrap) that(?: last)?(?: order| one| change| command| edit)?$",
            r"^undo(?: that| it)? (?:again|once more)$",
            r"^revert(?: that| it)?$",
            r"^take (?:that|it|the|that last|the last) ?(?:change|edit|step)? back$",
            r"^(?:no,? )*(?:put|set|change|make|turn) it back(?: (?:to )?(?:how|the way|what) it "
            r"(?:was|looked))?(?: before)?$",
            r"^(?:it|that|this) (?:was|looked) better before$",
            r"^(?:i )?(?:liked|preferred) it (?:better|more) (?:before|the way it was)$",
            r"^(?:go back to|back to) (?:how it was|the way it was) before\b.*",
            r"^(?:go back to|back to) (?:how it was|the way it was|before)$",
            r"^(?:that's|that is) worse,? (?:go back|undo)$",
        ),
    ),
    (
        Intent.REDO,
        _rx(
            r"^redo(?: that| it)?$",
            r"^(?:go |step )?forward(?: again| one| one step| a step)?$",
            r"\b(?:didn't|did not|don't|didnt) (?:mean|want) to undo\b",
            r"\bi did want (?:that|it|this)\b",
            r"\b(?:preferred|liked) it (?:better )?before (?:i|you) undid\b",
            r"\b(?:bring|bringing|put|putting) back (?:the (?:version|one|picture) )?(?:that )?"
            r"(?:you|i|we) (?:just )?undid\b",
            r"^(?:bring|put) back what (?:you|i|we) (?:just )?undid$",
            r"^undo the undo$",
        ),
    ),
    (
        Intent.CANCEL,
        _rx(
            r"^(?:no,? )*(?:cancel|stop|abort|halt)(?: that| it| this| right there| now)?"
            r"(?:,? (?:stop|cancel|forget)(?: it| that)?)*$",
            r"^scratch that(?: idea)?(?:,? (?:i don't want it|i do not want it|forget it|"
            r"never ?mind)(?: any ?more)?)?$",
            r"^(?:olvídalo|olvidalo|no importa|vergiss es|egal|laisse tomber|oublie ça|"
            r"lascia stare|lascia perdere|esquece|deixa pra lá)\b.*",
            r"^never ?mind\b.*",
            r"^forget (?:it|that|about it)$",
            r"^(?:no,? )?don't (?:bother|do that)$",
        ),
    ),
    (
        Intent.HELP,
        _rx(
            r"^(?:can you |could you )?help(?: me)?$",
            r"^what (?:kind of |sort of )?things can i (?:ask|say|do)(?: you)?(?: for)?$",
            r"^how (?:do|can|should) i (?:save|keep|download|export|get) (?:it|this|these|them|"
            r"the pictures|my pictures|these pictures)\b.*",
            r"^what (?:else )?can you do$",
            r"^how does this work$",
            r"^what (?:can|do|should) i (?:say|do|ask)$",
            r"^(?:i'm|i am) (?:stuck|lost|confused)$",
            r"^what are my options$",
            r"^how do i (?:use|start|do) (?:this|it)\b.*",
            r"\bwhat (?:sort|kind) of things (?:am i able to|can i|could i|may i) (?:ask|say|do)\b",
            r"^(?:can|could|do) you (?:also )?(?:make|do|create|draw) (?:videos?|animations?|gifs?|"
            r"music|songs?|3d models?|text)\b.*",
            r"^how (?:do|can|should|would) i (?:go back|undo|get back|pick|choose|select|save|"
            r"start over|change|edit|fix|get)\b.*",
        ),
    ),
    (
        Intent.RESET,
        _rx(
            r"^(?:let's |can we |could we )?(?:start (?:over|again|afresh|fresh|from scratch)|"
            r"begin again|reset|restart|from scratch|clear(?: it| everything| the canvas| all)?|"
            r"new (?:picture|image|drawing|canvas|session)|scrap (?:it|that|this|everything)|"
            r"fresh start|(?:do|draw|try) something (?:completely )?(?:else|different))$",
            r"^(?:let's |can we |could we )?(?:start (?:over|again|afresh|fresh)|begin again) with "
            r"something (?:else|different|new)$",
            r"^(?:let's |can we )?(?:begin|start) (?:from|with|on) a (?:blank|clean|new|fresh) "
            r"(?:canvas|slate|page)$",
            r"^(?:clear|reset|wipe) (?:it all|everything|the whole thing|all of it|it)$",
            r"^(?:let's |lets |can we |could we |i want to |i'd like to )?start (?:a |an )?"
            r"(?:new|fresh|clean|different) (?:one|picture|image|drawing|page)$",
            r"\bwipe the slate clean\b",
            r"\b(?:we're|we are|let's|let us|we'll) start(?:ing)? (?:all )?(?:over|again|afresh|"
            r"from scratch)\b",
        ),
    ),
    (
        Intent.AGAIN,
        _rx(
            r"^again$",
            r"^(?:give me |show me |make |draw |try |let's see |can i (?:see|get|have) )?"
            r"another(?: one)?(?: (?:of|like) (?:those|these|that|this|it))?$",
            r"^one more(?: time)?$",
            r"^run it back(?: again)?$",
            r"^(?:do|try|make) (?:it|that) again,? but (?:different|differently|another way)$",
            r"^(?:could you |can you )?try (?:that|it|this)(?: one)? (?:one more time|again|"
            r"once more)$",
            r"^(?:i (?:would|'d) like|can i (?:have|get)|give me|i want) (?:one more|another"
            r"(?: one)?)(?:,? (?:a )?different(?: one)?)?$",
            r"^try (?:again|once more|another one)$",
            r"^(?:(?:the )?same (?:prompt|thing|picture),? )?(?:but )?(?:with )?(?:a )?"
            r"(?:different|new|another) seed$",
            r"^(?:roll the dice|give it another (?:go|shot|try))(?: again)?$",
            r"^re-?roll$",
            r"^do (?:it|that) again$",
            r"^same again$",
            r"^(?:i )?(?:don't|do not) (?:like|love) (?:it|this|that|this one|that one)\b.*",
            r"^(?:not (?:quite|great|good)|meh|nope|nah)\b[, ]*(?:try again|another)?$",
            r"^(?:hmm+ )?(?:no,? )?not like (?:that|this)(?:,? try again)?$",
            r"^(?:try|give me|show me|make) (?:something|anything|one) (?:else|different)$",
            r"^(?:try|give me) (?:a different|another) (?:one|version|take)$",
        ),
    ),
    (
        Intent.DESCRIBE,
        _rx(
            r"^(?:what|which) (?:prompt|settings|seed|parameters|model|steps)\b.*",
            r"^(?:the |your )?(?:seed|prompt|settings|parameters)(?: (?:number|used|please))?$",
            r"^how did you (?:make|draw|do|create) (?:it|this|that)$",
            r"^(?:show|tell) me the (?:prompt|settings|seed|parameters)\b.*",
            r"^what(?:'s| is|s) the (?:prompt|seed|negative prompt)$",
            r"^what did you put in the (?:negative )?prompt$",
            r"^what (?:is|was) the prompt\b.*",
            r"^what (?:did you|have you) (?:draw|drawn|make|made|use|used)\b.*",
            r"^what (?:is|'s) (?:this|that|in the picture|in it)$",
            r"\bwhat (?:it was )?you (?:wrote|typed|used|put) (?:down )?(?:to make|for|in)\b",
        ),
    ),
    (
        Intent.HISTORY,
        _rx(
            r"^(?:(?:would|could|can) you (?:please )?)(?:show|list|tell)(?: me| us)? "
            r"(?:all |every )"
            r"(?:of )?(?:the |my |our )?(?:pictures|images|versions|ones|drawings)\b.*",
            r"^(?:show|list)(?: me| us)? (?:all (?:of )?(?:them|those|these|the ones)|"
            r"everything(?: so far| we (?:made|did|have))?)$",
            r"^what(?:'s| has| is)? (?:changed|different)\b.*",
            r"^what(?:'s| is) the difference\b.*",
            r"^what (?:did|have) you (?:just )?(?:take out|took out|remove|removed|add|added)"
            r"(?: (?:of|from|to) (?:it|the picture))?$",
            r"^what (?:did|have) you (?:just )?(?:change|changed|do|done)(?: to it)?"
            r"(?: last time| just now| before| the last time| last| so far| in the last one|"
            r" in that one| in the last picture| to the last one)?$",
            r"^(?:show|list|give|tell)(?: me)? (?:all |every )?(?:of )?(?:the |my |our )?"
            r"(?:pictures|images|history|versions|pics|drawings|everything|ones)\b.*",
            r"^(?:what|which) (?:pictures|images) (?:have|did) (?:we|you|i)\b.*",
            r"^what (?:have|did) (?:we|you) (?:made|make|done|do|drawn|draw)(?: so far)?$",
            r"^how many (?:pictures|images|versions)\b.*",
            r"^what (?:was|were) the (?:first|last|previous) (?:thing|things|request|picture)s?"
            r" (?:i|we) (?:asked|said|requested|wanted)\b.*",
            r"^what did i (?:ask|say|want|request)(?: for)?(?: first| last| before| earlier|"
            r" at the start| at first)?$",
            r"^(?:remind me )?what (?:did i|i) (?:first |originally )?(?:ask|asked)(?: for)?.*",
            r"^(?:where|how) did we start$",
            r"^(?:show|tell) me what (?:we|i|you) (?:made|drew|did|asked for)\b.*",
            r"^which (?:one|picture|image) did (?:i|we) (?:ask for|make|draw|want) (?:first|"
            r"second|third|last|before)$",
            r"^what (?:colou?r|size|style) (?:was|were) the [\w ]+ (?:originally|at first|"
            r"at the start|in the first (?:one|picture)|before)$",
            r"^what (?:was|were) the (?:very )?(?:first|last|previous) (?:picture|image|thing)s?$",
            r"^what did (?:we|you|i) (?:draw|make|ask for) (?:before|after) the \w+$",
        ),
    ),
    (
        Intent.SAVE,
        _rx(
            r"^(?:save|export|download|keep)(?: (?:it|this|that|them|all|everything|"
            r"the session|the pictures|the images|this one|that one|all of (?:them|these|those)|"
            r"these|those))?(?: to (?:my|the) (?:folder|disk|computer|downloads))?$",
            r"^(?:can|could|may) i (?:save|download|export|keep) (?:it|this|that|them|these)"
            r"(?: one)?$",
        ),
    ),
    (
        Intent.CHITCHAT,
        _rx(
            r"^(?:hi|hello|hey there|hey|hiya|good (?:morning|evening|afternoon))\b(?: there)?$",
            r"^(?:thanks|thank you|thx|cheers|great|cool|nice|awesome|perfect|wonderful|"
            r"beautiful|lovely|amazing|wow|love it|i love it|i like it|that's (?:\w+ )?"
            r"(?:great|nice|perfect|cool|lovely|beautiful|good|amazing|it))\b[\w ,'!.]*$",
            r"^(?:who|what) are you$",
            r"^how are you\b.*",
            r"^(?:ok|okay|good|fine|bye|goodbye|see you(?: later)?|good ?night|night night)$",
            r"\b(?:bye|goodbye|bye bye|see you(?: later| tomorrow)?|good ?night)$",
            r"\b(?:ignore|disregard|forget) (?:all |the |your )?(?:previous|prior|"
            r"above)? ?(?:instructions|rules|prompts?)\b",
            r"^(?:you are now|pretend to be|act as)\b",
            r"^(?:thanks|thank you) for watching\b.*",  # Whisper's hallucination on silence
            r"^(?:haha|hehe|lol|lmao)\b.*",
            r"^are you (?:tired|ok|okay|bored|sleepy|real|human|alive|a robot|happy|there)\b.*",
            r"\b(?:i was|i'm|i am) (?:just )?talking to (?:my|someone|somebody|the)\b.*",
            r"\b(?:wasn't|was not|not) talking to you\b",
            r"^do you (?:like|love|enjoy|get tired of|ever get tired)\b.*",
            r"^(?:w|l|gg|ggs|pog|poggers|lfg|ez|goated|huge w|big w)$",
            r"^(?:(?:huh|hm+|oh|well)[.,!]* )?(?:not bad|not too shabby|pretty good|"
            r"that works)\b.*",
            r"^(?:bet|say less|aight|ight|sick|dope|fire|lit|slay|based|no cap|fr|word|sweet|"
            r"neat|rad|nice one|legit|facts)(?: (?:bro|dude|man|fam|tho))?$",
        ),
    ),
]

NUMBERS = {
    "one": 1,
    "two": 2,
    "three": 3,
    "four": 4,
    "five": 5,
    "six": 6,
    "seven": 7,
    "eight": 8,
    "nine": 9,
    "1": 1,
    "2": 2,
    "3": 3,
    "4": 4,
    "5": 5,
    "a few": 3,
    "some": 3,
    "several": 3,
    "a couple of": 2,
    "a couple": 2,
    "twice": 2,
}

VARIATIONS = re.compile(
    r"^(?:(?:give me|show me|make|draw|generate|let's see|can i see|i want|try|can i get|"
    r"could i get|can i have|could i have|can you make|i'd like|let me see|do|can you do|"
    r"could i see|may i see|can we see|can we get|could we get|"
    r"could you do|you could do|maybe|how about|can you show me|could you show me|can you give me|"
    r"could you give me|can you make me) )?"
    r"(?P<n>two|three|four|[234]|a few|some|several|a couple(?: of)?)? ?"
    r"(?:(?:more|other|different|new|extra|alternative) )?(?:more|variations|versions|options|"
    r"alternatives|takes|variants)(?: (?:like|of) (?:this|that|it|this one|these)(?: [\w-]+)?)?"
    r"(?:,? (?:say|like|maybe|about) (?P<n_after>two|three|four|[2-5]))?$|"
    r"^another (?P<n_again>two|three|four|[2-5])(?: (?:more|versions|of (?:those|these|them)))?$|"
    r"^(?:some |a few )?variations(?: of (?:this|that|it))?$|"
    # "make three of those", "can i get two like that one"
    r"^(?:(?:give me|show me|make|make me|draw|generate|do|try|can you make|can you do|"
    r"can i get|could i get|can i have|could i have|i want|i'd like|let's see|let's have) )"
    r"(?P<n_of>two|three|four|five|[2-5]|a few|a couple(?: of)?|some) (?:more )?"
    r"(?:of|like) (?:those|these|that|this|it|them|this one|that one)$"
)
SAME_SEED = re.compile(
    r"^(?:(?:can|could) we |let's )?(?:do |use |keep |with )?(?:the )?(?:same )?seed"
    r"(?: as (?:before|last time|that one|the last one))?"
    r",? (?:but |and )?(?:with |in |as )?(?P<rest>.+)"
)
UNDO_STEPS = re.compile(
    r"^(?:go |step |take it |take me )?back (?P<n>two|three|four|five|\d+)(?: steps?| times|"
    r" pictures| images| versions| changes| edits)?$|"
    r"^undo(?: the last| the past| my last| your last)? (?P<n2>two|three|four|five|\d+)"
    r"(?: steps| times| changes| edits| things| of (?:them|those|these|my changes))?$|"
    r"^undo (?:that )?(?P<n3>twice)$|^undo ?x ?(?P<n4>[2-5])$|^undo (?P<n5>[2-5]) ?x$|"
    r"^(?:please )?(?:perform (?:action|command)[: ]+)?undo[.,]? repeat[: ]+(?P<n6>[2-5]|two|three)"
    r" times?$"
)

ORDINALS = {
    "first": 0,
    "1st": 0,
    "original": 0,
    "very first": 0,
    "second": 1,
    "2nd": 1,
    "third": 2,
    "3rd": 2,
    "fourth": 3,
    "4th": 3,
    "fifth": 4,
    "5th": 4,
    "last": -1,
    "last but one": -2,
    "second to last": -2,
    "second last": -2,
    "penultimate": -2,
    "one before last": -2,
    "earliest": 0,
    "oldest": 0,
    "latest": -1,
    "newest": -1,
    "most recent": -1,
}
PREVIOUS = {
    "previous",
    "one before",
    "last one before",
    "one before that",
    "earlier",
    "earlier one",
    "previous version",
    "old",
    "older",
    "other",
    "other one",
    "one before this",
    "one before this one",
    "last version",
    "precedent",
    "preceding",
    "prior",
    "one from before",
}
SELECT = _rx(
    r"^(?:(?:let's )?go back to|back to|return to|switch to|show(?: me)?|select|pick|choose|"
    r"use|i (?:like|prefer|want|liked)(?: more| better| best)?|let's (?:go with|use|see)|"
    r"go with|(?:can|could|may) "
    r"(?:i|we) (?:see|have|get|go back to)(?: back)?|let me see|bring back|give me back|"
    r"i'll take|i will take|(?:can|could) you bring back|take me back to|bring me back to) the "
    r"(?P<ref>.+?)"
    r"(?: one| image| picture| version| pic| again| back| best| more| most| better)*"
    r"(?:,? (?:please )?(?:show|give|bring|open) (?:it|me it|it to me|that one|it back)"
    r"(?: again)?(?: please)?)?(?:,? the one (?:with|without|where|from) [\w' -]+)?"
    r"(?:, before [\w' -]+)?(?:, (?:redo|bring it back|show it)(?: please)?)?$",
    r"^(?:i think )?i (?:liked|preferred|like|prefer) the (?P<ref9>first|second|third|last|"
    r"previous|"
    r"original|earlier|other) (?:one|picture|version)(?: better| more| best)?\b.*$",
    r"^(?:the )?(?P<ref2>first|second|third|fourth|fifth|last|original|previous|earlier) "
    r"(?:one|image|picture|version)(?: (?:please|again|was better))?$",
    r"^the (?P<ref3>[\w' -]+?) one(?: (?:please|again|was better|is better))?$",
    r"^(?:i (?:liked|preferred) )?(?:the )?(?P<ref4>[\w' -]+?) one (?:was|is) better$",
    r"^(?:(?:go )?back to|show(?: me)?|select|pick|switch to|use|open|let's go with|go with|"
    r"i'll take|i want|let me see|can i see|could i see) "
    r"(?P<ref5>(?:picture |image |number |panel |page |frame |slide |n|#) ?(?:\d+|one|two|three|"
    r"four|five|six|seven|eight|nine))$",
    r"^(?P<ref6>number (?:\d+|one|two|three|four|five|six|seven|eight|nine))$",
    r"^(?:no,? )?(?:not this one,? )?(?:the )?other one,? (?:the )?(?P<ref7>[\w' -]+?)(?: one)?$",
    r"^(?:bring|give me|put) (?:the )?(?P<ref8>[\w' -]+?)(?: one| picture| version)? back$",
)
# An edit or transform that names its picture: "make the second one bigger".
TARGET_PHRASE = re.compile(
    r"\bthe (?P<ord>first|second|third|fourth|fifth|last|previous|original|earlier|other|middle|"
    r"earliest|oldest)(?: one| picture| image| version| pic)\b|"
    r"\bthe (?P<ord2>one from (?:the (?:very )?(?:beginning|start)|before))\b|"
    r"\bthe (?P<words>[\w-]+(?: [\w-]+)?) (?:one|picture|image|pic)\b"
)

OUTPAINT = _rx(
    r"^(?:extend|expand|outpaint|widen|continue|grow)(?: it| the (?:image|picture|scene|[\w-]+))?"
    r"(?: (?:to|on|towards) the| to)? ?(?P<dir>left|right|up|down|top|bottom|upwards|downwards|"
    r"all sides|every side|all around|sides|north|south|east|west)?(?: side)?"
    r"(?: by (?P<px>\d+)(?: ?px| pixels)?)?(?: out| outwards)?(?: (?:past|beyond) [\w' -]+)?"
    r"(?: into an? [\w' -]+?)?(?:,? more [\w' -]+?(?: (?:on|to|at) the (?P<dir4>left|right|top|"
    r"bottom)(?: side)?)?)?"
    r"(?:,? (?:i want (?:to see )?|so i (?:can )?see |to (?:see|show) )more of (?:the )?"
    r"[\w' -]+|,? (?:i need|i want|we need|for|so (?:that )?(?:i|we) (?:can|have)) (?:more|some|"
    r"extra|room|space)\b[\w' -]*)?$",
    r"^zoom out(?: a (?:bit|little|little bit|touch)| slightly)?$",
    r"^(?:the )?(?:picture|image)(?: more)? (?:wide|wider|bigger)\b.*\b(?:in|on|to) (?:the )?"
    r"(?P<dir6>left|right|top|bottom)(?: side)?$",
    r"^make (?:more big|more large|bigger|larger) the (?:picture|image) (?:on|at|to) the "
    r"(?P<dir7>top|bottom|left|right)\b.*",
    r"^(?:extend|expand|widen|grow)(?: it| the (?:image|picture|scene|[\w-]+))? (?P<px2>\d+) ?"
    r"(?:px|pixels) (?:to|on|towards) the (?P<dir5>left|right|top|bottom)(?: side)?$",
    r"^(?:show|give me|let me see|i want to see) more of (?:the )?[\w' -]+?"
    r"(?: (?:on|to|towards) the (?P<dir2>left|right|top|bottom)(?: side)?)?$",
    r"^(?:add |give it |i want |can i have )?more (?:sky|space|room|ground|floor|sea|water|"
    r"background|scenery) (?:at|on|to|above|"
    r"below) the (?P<dir3>top|bottom|left|right)(?: side)?$",
)
DIRECTIONS = {
    "top": "up",
    "upwards": "up",
    "bottom": "down",
    "downwards": "down",
    "all sides": "all",
    "every side": "all",
    "all around": "all",
    "sides": "all",
    "north": "up",
    "south": "down",
    "east": "right",
    "west": "left",
    None: "all",
}
UPSCALE = re.compile(
    r"^(?:(?:can|could) (?:i|you|we) (?:get|have|see|make)|i need|i want|i'd like|give me)?"
    r" ?(?:it |this |that )?(?:in )?(?:an? )?"
    r"(?:upscale|enlarge|make it bigger|bigger|higher resolution|high resolution|more pixels|"
    r"(?:make it )?(?:hella |super |really |way |very |much |a lot |extra )(?:big|bigger|larger|"
    r"huge)|"
    r"(?:bigger|larger|high-?res|higher-?res|print|hd) (?:version|copy)|"
    r"increase (?:the )?resolution|(?:make it )?(?P<n>2|two|4|four) ?(?:x|times)(?: bigger)?|"
    r"make (?:it|this|the (?:picture|image)) (?:a (?:good|great) deal |much |a lot |a bit |way )?"
    r"(?:larger|bigger)|"
    r"(?:the (?:picture|image) )?(?:a (?:good|great) deal|much|a lot|way) (?:larger|bigger)|"
    r"make (?:it|this) (?:larger|high(?:er)? resolution|hi-?res|high-? ?res|higher-? ?res|hd|4k|"
    r"print quality)|hd|"
    r"make it hd)"
    r"(?: it| this| that)?(?: version| copy| one)?"
    r"(?:,? (?:by |like |say |maybe )?(?P<n2>2|two|4|four) ?(?:x|times)|,? x ?(?P<n3>2|4)|"
    r" by (?P<n4>2|two|4|four))?$"
)

_TRANSFORM_PIECES: list[tuple[Transform, re.Pattern[str]]] = [
    (
        Transform.FLIP_VERTICAL,
        _rx(
            r"\b(?:flip|mirror)\b.*\b(?:vertical(?:ly)?|upside down|top to bottom|over)\b",
            r"^(?:flip it )?upside down$",
        ),
    ),
    (Transform.FLIP_HORIZONTAL, _rx(r"\b(?:flip|mirror|reverse)\b", r"\bmirror image\b")),
    (Transform.ROTATE_180, _rx(r"\b(?:rotate|turn)\b.*\b(?:180|upside down|around)\b")),
    (
        Transform.ROTATE_LEFT,
        _rx(r"\b(?:rotate|turn)\b.*\b(?:left|counter-?clockwise|anti-?clockwise)\b"),
    ),
    (Transform.ROTATE_RIGHT, _rx(r"\brotate\b", r"\bturn (?:it|this) (?:90|ninety|sideways)")),
    (Transform.SQUARE, _rx(r"\bsquare\b", r"\b1:1\b")),
    (
        Transform.PORTRAIT,
        _rx(
            r"\bportrait\b(?! of)",
            r"\b(?:tall|vertical)(?: version| format| picture)?$",
            r"\b(?:phone|story) (?:format|size)\b",
            r"\b2:3\b|\b9:16\b",
        ),
    ),
    (
        Transform.WIDE,
        _rx(
            r"\b(?:widescreen|wide ?screen|16:9|cinematic (?:crop|format))\b",
            r"^(?:make it|crop it|turn it|as a|make it a) (?:wide|wider|panorama|panoramic)\b",
        ),
    ),
    (
        Transform.LANDSCAPE,
        _rx(
            r"\blandscape (?:format|orientation|version|mode)\b",
            r"^(?:make it|turn it|crop it|as an?|in) landscape$",
            r"\bhorizontal (?:format|version)\b",
            r"\b3:2\b",
        ),
    ),
    (
        Transform.ZOOM_IN,
        _rx(
            r"\bzoom(?:ed)? in\b",
            r"\bclose[- ]?up\b",
            r"\bcloser\b",
            r"^crop(?: it| in| tighter)?$",
        ),
    ),
    (Transform.BIGGER, _rx(r"^(?:make it |and )?(?:bigger|larger)$")),
    (
        Transform.SMALLER,
        _rx(r"^(?:make it |and )?(?:smaller|tinier)$", r"\bshrink\b", r"\bdownscale\b"),
    ),
]
# Words a transform request may hold besides the operation itself.
_TRANSFORM_WORDS = re.compile(
    r"\b(?:i|i'd|we|need|want|would|like|should|be|get|have|me|us|give|show|let's|for|"
    r"instagram|phone|wallpaper|poster|print|printing|profile|banner|bit|little|lot|"
    r"make|it|this|that|the|picture|image|photo|please|can|you|could|a|an|version|format|"
    r"orientation|mode|crop|cropped|to|by|degrees|90|ninety|180|and|then|also|into|in|on|of|"
    r"flip|flipped|mirror|mirrored|rotate|rotated|turn|horizontally|vertically|horizontal|"
    r"vertical|left|right|clockwise|counterclockwise|anticlockwise|counter-clockwise|upside|"
    r"down|around|over|square|portrait|landscape|wide|widescreen|tall|zoom|zoomed|closer|close-up|"
    r"closeup|bigger|larger|smaller|shrink|downscale|sideways|image|phone|story|size|cinematic|"
    r"reverse|side|sides|other|way|one|first|second|third|last|previous|1:1|2:3|9:16|16:9|3:2|"
    r"tighter|instead|now|just|my|our|your|wallpaper|screen|lock|so|faces?|facing|looks?|desktop|"
    r"mean|kindly|apologise|apologize|sorry|boat|is|are|there|where|"
    r"wider|panorama|panoramic|round|him|her|them|he|she|he's|she's|they're|facing|"
    r"looking|pic|avatar)\b"
)


def parse_transforms(said: str) -> tuple[list[Transform], str | None] | None:
    """The plain image operations an utterance asks for, in order, and what a zoom is aimed at
    ("zoom in on the cat": "the cat"), or None when it asks for something else too."""
    focus = None
    if m := re.search(
        r"\b(?:zoom(?:ed)? in(?:to)?|close[- ]?up|closer|crop(?: it)?)"
        r"(?: (?:on|to|of|at|into|in on))? (?:the |that |this )(?P<what>[\w' -]+?)"
        r"(?: a bit| a little| please)?$",
        said,
    ):
        focus = "the " + m.group("what")
        said = said[: m.start()] + "zoom in"
    pieces = [p for p in re.split(r"\s*(?:,|\band then\b|\bthen\b|\band\b)\s*", said) if p]
    found: list[Transform] = []
    for piece in pieces:
        match = next((t for t, rx in _TRANSFORM_PIECES if rx.search(piece)), None)
        if match is None and not _TRANSFORM_WORDS.sub("", piece).strip():
            continue  # "..., for my phone": why, not what
        if match is None:
            return None
        if not found or found[-1] != match:  # "portrait format please, 2:3": one portrait
            found.append(match)
    if not found or _TRANSFORM_WORDS.sub("", said).strip(" ,"):
        return None  # "flip the pancake in a kitchen" is a picture, not a transform
    if found == [Transform.BIGGER]:
        return None  # "make it bigger" alone is an upscale (an upscaler model, if set)
    return found, focus


RESIZE = re.compile(
    r"^(?:resize|scale|make|crop|change)(?: it| this| the (?:picture|image))?(?: to)? "
    r"(?P<w>\d{2,4}) ?(?:x|by|×) ?(?P<h>\d{2,4})(?: pixels| px)?$"
)
# "merge the first and the last one", "combine both pictures", "put the two side by side".
COMBINE_REFS = re.compile(
    r"^(?:merge|combine|blend|mix|fuse|join|put) (?:the )?(?P<a>first|second|third|fourth|"
    r"last|previous|[\w-]+(?: [\w-]+)?)(?: one| picture| image)? (?:and|with) (?:the )?"
    r"(?P<b>first|second|third|fourth|last|previous|[\w-]+(?: [\w-]+)?)(?: one| picture| image)?"
    r"(?: side by side| together| next to each other)?(?: in (?:one|a single|the same|one big) "
    r"(?:picture|image|scene|shot))?(?:,? (?:like|as if|so) .+)?$|"
    r"^(?:(?:can|could) you )?(?:merge|combine|blend|mix|fuse|join|put|mash|stick|bring) "
    r"(?:the two|both|them|these|those|these two|those two|the 2|these 2|those 2)"
    r"(?: pictures| images| ones)?(?: side by side| together| into one(?: picture| image)?)?$|"
    r"^(?:both|the two|these two) (?:in|into) one (?:picture|image)$|"
    r"^put together (?:the two|both|them|these two|those two)(?: pictures| images)?(?:,? .+)?$"
)
# "make the unicorn ride on the dragon": one picture's thing doing something with another's
COMBINE_DOING = re.compile(
    r"^(?:make|have|let) (?:the )?(?P<a>[\w' -]+?) (?:ride|sit|stand|sleep|dance|perch) "
    r"(?P<how>on top of|on|with|next to|beside) (?:the )?(?P<b>[\w' -]+?)$"
)
COMBINE = _rx(
    r"^(?:(?:can|could|would) you |please |let's )?"
    r"(?:put|place|add|move|combine|merge|blend|mix|fuse|stick) (?:the )?(?P<a>[\w' -]+?) "
    r"(?P<how>on top of|onto|on|in front of|next to|beside|behind|inside|into|in|under|above|"
    r"over|with|and) (?:the )?(?P<b>[\w' -]+?)(?: one| picture| image)?"
    r"(?: (?:into|in) one(?: picture| image)?| together)?$",
)


def count_in(word: str | None, default: int = 1) -> int:
    return NUMBERS.get((word or "").strip(), default)
