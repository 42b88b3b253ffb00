"""Casual picture requests, as people say them, with what the prompt must keep and avoid.

Each entry: (what was said, words the prompt must keep, words that belong in the negative).
Used by tests/test_rewrite.py and by `run_assistant.py bench rewrite`.
"""

REQUESTS: list[tuple[str, list[str], list[str]]] = [
    ("draw a lighthouse on a cliff at night", ["lighthouse", "cliff", "night"], []),
    ("Can you paint me a picture of a forest with no people", ["forest"], ["people"]),
    ("a cat wearing a tiny wizard hat, please", ["cat", "tiny", "wizard", "hat"], []),
    ("make an image of two dogs playing in the snow", ["two", "dogs", "playing", "snow"], []),
    (
        "show me a red sports car in the rain without reflections",
        ["red", "sports", "car", "rain"],
        ["reflections"],
    ),
    ("um, draw a castle on a hill at sunset", ["castle", "hill", "sunset"], []),
    (
        "I'd like a watercolor of a fox in autumn leaves",
        ["watercolor", "fox", "autumn", "leaves"],
        [],
    ),
    ("a bowl of ramen, no chopsticks and no text", ["bowl", "ramen"], ["chopsticks", "text"]),
    (
        "generate a cyberpunk city street with neon signs",
        ["cyberpunk", "city", "street", "neon", "signs"],
        [],
    ),
    (
        "sketch an old man reading a newspaper on a bench",
        ["old", "man", "reading", "newspaper", "bench"],
        [],
    ),
    (
        "paint a bowl of fruit in the style of van gogh",
        ["bowl", "fruit", "style", "van", "gogh"],
        [],
    ),
    (
        "a spaceship landing in a desert, without any clouds",
        ["spaceship", "landing", "desert"],
        ["clouds"],
    ),
    ("draw me a happy robot holding a balloon", ["happy", "robot", "holding", "balloon"], []),
    ("a mountain lake at dawn with mist", ["mountain", "lake", "dawn", "mist"], []),
    ("give me a portrait of a knight in shining armor", ["knight", "shining", "armor"], []),
    ("could you create a cozy library with a fireplace", ["cozy", "library", "fireplace"], []),
    ("a penguin surfing a huge wave, thanks!", ["penguin", "surfing", "huge", "wave"], []),
    (
        "an owl on a branch under a full moon, no stars",
        ["owl", "branch", "full", "moon"],
        ["stars"],
    ),
    ("render a steampunk airship over london", ["steampunk", "airship", "london"], []),
    ("a child's drawing of a house with a garden", ["child's", "house", "garden"], []),
    (
        "hey, can you draw a dragon sleeping on a pile of gold",
        ["dragon", "sleeping", "pile", "gold"],
        [],
    ),
    ("I want a photo of a rainy tokyo street at night", ["rainy", "tokyo", "street", "night"], []),
    (
        "a vase of sunflowers on a kitchen table, no people",
        ["vase", "sunflowers", "kitchen", "table"],
        ["people"],
    ),
    ("paint a stormy sea with a small sailboat", ["stormy", "sea", "small", "sailboat"], []),
    ("draw an astronaut riding a horse on the moon", ["astronaut", "riding", "horse", "moon"], []),
    (
        "let's make a cute baby elephant taking a bath",
        ["cute", "baby", "elephant", "taking", "bath"],
        [],
    ),
    (
        "a medieval market square full of people",
        ["medieval", "market", "square", "full", "people"],
        [],
    ),
    (
        "show me a tree house in a giant oak, without ladders",
        ["tree", "house", "giant", "oak"],
        ["ladders"],
    ),
    ("make a logo-style picture of a coffee cup", ["logo-style", "coffee", "cup"], []),
    ("so, uh, a frog playing the violin", ["frog", "playing", "violin"], []),
    (
        "draw a snowy mountain village with warm lights in the windows",
        ["snowy", "mountain", "village", "warm", "lights", "windows"],
        [],
    ),
    ("a close-up of a bee on a lavender flower", ["close-up", "bee", "lavender", "flower"], []),
    ("please draw a pirate ship in a bottle", ["pirate", "ship", "bottle"], []),
    (
        "a futuristic train crossing a desert bridge, no sand storm",
        ["futuristic", "train", "crossing", "desert", "bridge"],
        ["sand storm"],
    ),
    ("generate a bowl of cherries in black and white", ["bowl", "cherries", "black", "white"], []),
    (
        "an underwater city with glowing jellyfish",
        ["underwater", "city", "glowing", "jellyfish"],
        [],
    ),
    ("could you paint a lonely bench in a foggy park", ["lonely", "bench", "foggy", "park"], []),
    (
        "draw my dog, a golden retriever, catching a frisbee",
        ["dog", "golden", "retriever", "catching", "frisbee"],
        [],
    ),
    (
        "a desk with a laptop and a cup of tea, without any cables",
        ["desk", "laptop", "cup", "tea"],
        ["cables"],
    ),
    ("I'd love a pixel art castle with a moat", ["pixel", "art", "castle", "moat"], []),
    (
        "make me an oil painting of a wheat field under a big sky",
        ["oil", "wheat", "field", "big", "sky"],
        [],
    ),
    (
        "a tiny mouse reading a book by candlelight",
        ["tiny", "mouse", "reading", "book", "candlelight"],
        [],
    ),
    (
        "draw a volcano erupting at night, no lava rivers",
        ["volcano", "erupting", "night"],
        ["lava rivers"],
    ),
    (
        "a robot and a girl sharing an umbrella in the rain",
        ["robot", "girl", "sharing", "umbrella", "rain"],
        [],
    ),
]
