"""Picture requests typed in other languages, with the English words a translation must keep.

Used by `run_assistant.py bench translate` and tests/test_language.py (language detection).
"""

FOREIGN_REQUESTS: list[tuple[str, str, list[str]]] = [
    ("de", "zeichne einen Leuchtturm auf einer Klippe bei Nacht", ["lighthouse", "cliff", "night"]),
    ("de", "ein roter Drache über einer Burg", ["red", "dragon", "castle"]),
    ("de", "ein Haus am See ohne Menschen", ["house", "lake", "people"]),
    ("de", "mach den Himmel stürmischer", ["sky", "storm"]),
    ("fr", "dessine un phare sur une falaise la nuit", ["lighthouse", "cliff", "night"]),
    ("fr", "une forêt enneigée avec un renard", ["snow", "forest", "fox"]),
    ("fr", "un bateau sur un lac au lever du soleil", ["boat", "lake", "sunrise"]),
    ("fr", "rends le ciel plus sombre", ["sky", "dark"]),
    ("es", "dibuja un faro en un acantilado de noche", ["lighthouse", "cliff", "night"]),
    ("es", "un gato negro durmiendo en un sofá", ["black", "cat", "sleeping", "sofa"]),
    ("es", "una ciudad futurista bajo la lluvia", ["futuristic", "city", "rain"]),
    ("es", "hazlo más oscuro", ["dark"]),
    ("it", "una tazza di caffè su un tavolo di legno", ["cup", "coffee", "wooden", "table"]),
    ("it", "disegna un gatto che dorme", ["cat", "sleep"]),
    ("pt", "um astronauta andando a cavalo", ["astronaut", "horse"]),
]
