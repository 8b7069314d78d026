"""Generate the benchmark corpus: `python -m bench.make_corpus` writes bench/corpus/*.json.

Everything is made up and deterministic (a seeded RNG): run it again and the files do not
change (tests/bench checks that). The corpus is 240 messages to the bot:

* half text only (mentions and direct messages), half mentions with 1 to 4 photos;
* a mix of languages: English, Spanish, French, German, Portuguese, Japanese (which
  Comprehend reads), Dutch and Welsh (which it does not), and emoji-only text;
* positive, negative, neutral and mixed feelings, requests for jokes and for facts, help;
* photos of known people: an enrolled known face (Eileen Collins, the astronaut photo in
  scikit-image), a celebrity (Grace Hopper, matplotlib's sample photo), strangers, signs
  with text and scenes with no one in them.

Each message carries what a real AI service would answer for it (sentiment, entities, the
intent), and each photo scene what Rekognition would find (bench/corpus/scenes.json): the
AWS benchmark answers Comprehend, Rekognition and Lex with exactly these canned shapes.
Direct messages are text only: DM photos live on ton.twitter.com behind OAuth, which Magpie
does not fetch (not on MEDIA_ALLOWED_HOSTS), so they would only add rejected media.
"""

from __future__ import annotations

import json
import random
from pathlib import Path
from typing import Any

CORPUS_DIR = Path(__file__).resolve().parent / "corpus"
MESSAGES_FILE = CORPUS_DIR / "messages.json"
SCENES_FILE = CORPUS_DIR / "scenes.json"
SEED = 20260715
MESSAGES = 240
BOT_USER_ID = "1876543210987654321"
BOT_SCREEN_NAME = "acme_helper_bot"
FIRST_TIMESTAMP_MS = 1_784_124_000_000  # 2026-07-15, like the bundled samples
IMAGES_PER_MESSAGE_WEIGHTS = {1: 40, 2: 30, 3: 20, 4: 10}  # mean 2.0 photos a photo message

# (language, sentiment, intent, text, entities). The intent is what the bot's NLU should
# pick (Joke, Fact, or FallbackIntent, which answers with help); entities are what
# Comprehend would find, (text, type).
TEXT_TEMPLATES: list[tuple[str, str, str, str, list[tuple[str, str]]]] = [
    ("en", "NEUTRAL", "Joke", "tell me a joke", []),
    ("en", "POSITIVE", "Joke", "got any jokes? I need a laugh today", []),
    ("en", "NEUTRAL", "Joke", "make me laugh please", []),
    ("en", "NEUTRAL", "Joke", "can you tell me a programming joke", []),
    ("en", "NEGATIVE", "Joke", "awful week at work, cheer me up with a joke", []),
    ("en", "NEUTRAL", "Fact", "tell me a fact", []),
    ("en", "POSITIVE", "Fact", "fun fact please! I love learning things", []),
    ("en", "NEUTRAL", "Fact", "tell me something interesting about space", []),
    ("en", "NEUTRAL", "Fact", "I'd like to hear something interesting", []),
    ("en", "NEUTRAL", "Fact", "do you know any facts about NASA", [("NASA", "ORGANIZATION")]),
    (
        "en",
        "NEGATIVE",
        "FallbackIntent",
        "your app crashed again and I lost all my work, this is awful",
        [],
    ),
    (
        "en",
        "NEGATIVE",
        "FallbackIntent",
        "worst customer service ever, nobody in the London office answers",
        [("London", "LOCATION")],
    ),
    (
        "en",
        "NEGATIVE",
        "FallbackIntent",
        "so disappointed with the update on Monday, it broke everything",
        [("Monday", "DATE")],
    ),
    (
        "en",
        "NEGATIVE",
        "FallbackIntent",
        "I have been waiting 3 hours for a refund. Unacceptable.",
        [("3 hours", "QUANTITY")],
    ),
    ("en", "POSITIVE", "FallbackIntent", "love the new logo, great work!", []),
    (
        "en",
        "POSITIVE",
        "FallbackIntent",
        "thanks for the help yesterday, brilliant support from Sam",
        [("yesterday", "DATE"), ("Sam", "PERSON")],
    ),
    (
        "en",
        "NEUTRAL",
        "FallbackIntent",
        "is the service down in Berlin right now?",
        [("Berlin", "LOCATION")],
    ),
    ("en", "NEUTRAL", "FallbackIntent", "what can you do?", []),
    (
        "en",
        "MIXED",
        "FallbackIntent",
        "great food at the Paris launch, awful service though",
        [("Paris", "LOCATION")],
    ),
    (
        "en",
        "MIXED",
        "FallbackIntent",
        "the new phone from Microsoft is fast but the battery is terrible",
        [("Microsoft", "ORGANIZATION")],
    ),
    ("es", "NEUTRAL", "Joke", "cuéntame un chiste", []),
    ("es", "NEUTRAL", "Fact", "dime un dato curioso sobre Madrid", [("Madrid", "LOCATION")]),
    ("es", "NEGATIVE", "FallbackIntent", "el servicio es horrible, estoy muy enfadado", []),
    ("es", "POSITIVE", "FallbackIntent", "me encanta la nueva versión, gracias", []),
    ("fr", "NEUTRAL", "Joke", "raconte-moi une blague", []),
    ("fr", "NEGATIVE", "FallbackIntent", "service nul, je suis très déçu", []),
    (
        "fr",
        "POSITIVE",
        "FallbackIntent",
        "merci pour votre aide à Lyon, c'était parfait",
        [("Lyon", "LOCATION")],
    ),
    ("de", "NEUTRAL", "Joke", "erzähl mir einen Witz", []),
    ("de", "POSITIVE", "FallbackIntent", "ich liebe das neue Logo", []),
    ("de", "NEGATIVE", "FallbackIntent", "schrecklicher Service, niemand antwortet", []),
    ("pt", "NEUTRAL", "Joke", "me conta uma piada", []),
    ("pt", "POSITIVE", "FallbackIntent", "adorei a nova versão do aplicativo", []),
    ("ja", "NEUTRAL", "Joke", "冗談を言ってください", []),
    ("ja", "POSITIVE", "FallbackIntent", "新しいロゴが大好きです", []),
    ("ja", "NEGATIVE", "FallbackIntent", "サービスが最悪です", []),
    ("nl", "NEUTRAL", "Joke", "vertel me een grap", []),
    ("nl", "NEGATIVE", "FallbackIntent", "slechte service, niemand reageert", []),
    ("cy", "NEUTRAL", "Joke", "dywedwch jôc wrthyf", []),
    ("cy", "NEGATIVE", "FallbackIntent", "gwasanaeth ofnadwy heddiw", []),
    ("und", "POSITIVE", "FallbackIntent", "😂😂🔥", []),
    ("und", "NEUTRAL", "FallbackIntent", "", []),
]
TEXT_LANGUAGE_WEIGHTS = {
    "en": 55,
    "es": 10,
    "fr": 8,
    "de": 7,
    "pt": 5,
    "ja": 5,
    "nl": 4,
    "cy": 3,
    "und": 6,
}

# Captions of photo messages: (language, sentiment, text, entities).
CAPTIONS: list[tuple[str, str, str, list[tuple[str, str]]]] = [
    ("en", "NEUTRAL", "who is this?", []),
    ("en", "NEUTRAL", "can you name the people in these?", []),
    ("en", "POSITIVE", "look who I met in Houston today!", [("Houston", "LOCATION")]),
    ("en", "POSITIVE", "what a great day at the museum", []),
    ("en", "NEGATIVE", "this sign outside your shop is wrong and rude", []),
    ("en", "NEUTRAL", "found these old photos, any idea who they are?", []),
    ("en", "MIXED", "lovely photos but the queue was terrible", []),
    ("en", "NEUTRAL", "", []),
    ("es", "NEUTRAL", "¿quién es esta persona?", []),
    ("fr", "POSITIVE", "super journée à Paris", [("Paris", "LOCATION")]),
    ("de", "NEUTRAL", "wer ist das?", []),
    ("ja", "NEUTRAL", "この人は誰ですか", []),
    ("nl", "NEUTRAL", "wie is dit?", []),
]
CAPTION_LANGUAGE_WEIGHTS = {"en": 70, "es": 8, "fr": 7, "de": 6, "ja": 5, "nl": 4}

# Photo scenes: the source picture (bench/corpus_images.py draws it) and what Rekognition
# would report. Boxes are Rekognition ratios of the picture's width and height.
SCENES: dict[str, dict[str, Any]] = {
    "known_person": {
        "source": "astronaut",
        "labels": ["Person", "Astronaut", "Flag", "Clothing"],
        "text": [],
        "celebrities": [],
        "unknown_faces": [{"Width": 0.22, "Height": 0.3, "Left": 0.33, "Top": 0.1}],
        "known": {"Name": "Eileen Collins", "Face": 0},
        "moderation": [],
    },
    "celebrity": {
        "source": "grace_hopper",
        "labels": ["Person", "Uniform", "Military", "Portrait"],
        "text": [],
        "celebrities": [
            {
                "Name": "Grace Hopper",
                "Id": "1aB2cD3e",
                "Box": {"Width": 0.45, "Height": 0.42, "Left": 0.28, "Top": 0.12},
            },
        ],
        "unknown_faces": [],
        "known": None,
        "moderation": [],
    },
    "group": {
        "source": "group",
        "labels": ["Person", "People", "Group"],
        "text": [],
        "celebrities": [
            {
                "Name": "Grace Hopper",
                "Id": "1aB2cD3e",
                "Box": {"Width": 0.2, "Height": 0.35, "Left": 0.62, "Top": 0.1},
            },
        ],
        "unknown_faces": [{"Width": 0.12, "Height": 0.25, "Left": 0.16, "Top": 0.12}],
        "known": {"Name": "Eileen Collins", "Face": 0},
        "moderation": [],
    },
    "stranger": {
        "source": "camera",
        "labels": ["Person", "Camera", "Tripod", "Outdoors"],
        "text": [],
        "celebrities": [],
        "unknown_faces": [{"Width": 0.1, "Height": 0.14, "Left": 0.4, "Top": 0.12}],
        "known": None,
        "moderation": [],
    },
    "sign": {
        "source": "text:OPEN 9 TO 5|NO DOGS",
        "labels": ["Text", "Sign", "Symbol"],
        "text": ["OPEN 9 TO 5", "NO DOGS"],
        "celebrities": [],
        "unknown_faces": [],
        "known": None,
        "moderation": [],
    },
    "coffee": {
        "source": "coffee",
        "labels": ["Cup", "Coffee", "Beverage", "Saucer"],
        "text": [],
        "celebrities": [],
        "unknown_faces": [],
        "known": None,
        "moderation": [],
    },
    "cat": {
        "source": "chelsea",
        "labels": ["Cat", "Pet", "Animal", "Mammal"],
        "text": [],
        "celebrities": [],
        "unknown_faces": [],
        "known": None,
        "moderation": [],
    },
    "rocket": {
        "source": "rocket",
        "labels": ["Rocket", "Launch", "Sky", "Vehicle"],
        "text": ["NASA"],
        "celebrities": [],
        "unknown_faces": [],
        "known": None,
        "moderation": [],
    },
}
SCENE_WEIGHTS = {
    "known_person": 15,
    "celebrity": 15,
    "group": 10,
    "stranger": 15,
    "sign": 10,
    "coffee": 12,
    "cat": 13,
    "rocket": 10,
}
AUTHORS = 60  # distinct users: at most a few messages each, under the hourly reply guard


def _pick(rng: random.Random, weights: dict[Any, int]) -> Any:
    keys = list(weights)
    return rng.choices(keys, weights=[weights[k] for k in keys], k=1)[0]


def _author(index: int) -> dict[str, str]:
    return {
        "id": str(1_700_000_000_000_000_000 + index * 7919),
        "screen_name": f"bench_user_{index:02d}",
    }


def _entities(pairs: list[tuple[str, str]]) -> list[dict[str, str]]:
    return [{"Text": text, "Type": kind} for text, kind in pairs]


def build_corpus(seed: int = SEED, count: int = MESSAGES) -> dict[str, Any]:
    """The corpus as one JSON-ready dict (deterministic for a seed)."""
    rng = random.Random(seed)
    messages: list[dict[str, Any]] = []
    media_seq = 0
    for index in range(count):
        with_images = index % 2 == 1  # interleaved, so any prefix is about half and half
        message_id = str(2_100_000_000_000_000_000 + index * 104_729)
        author = _author(rng.randrange(AUTHORS))
        timestamp = FIRST_TIMESTAMP_MS + index * 15_000
        if with_images:
            language = _pick(rng, CAPTION_LANGUAGE_WEIGHTS)
            options = [c for c in CAPTIONS if c[0] == language]
            _, sentiment, caption, entities = rng.choice(options)
            count_images = _pick(rng, IMAGES_PER_MESSAGE_WEIGHTS)
            images = []
            for _ in range(count_images):
                scene = _pick(rng, SCENE_WEIGHTS)
                media_seq += 1
                images.append(
                    {"scene": scene, "media_id": str(3_100_000_000_000_000_000 + media_seq)}
                )
            messages.append(
                {
                    "id": message_id,
                    "kind": "MENTION",
                    "author": author,
                    "text": f"@{BOT_SCREEN_NAME} {caption}".strip(),
                    "lang": language,
                    "language": language,
                    "sentiment": sentiment,
                    "intent": None,
                    "entities": _entities(entities),
                    "images": images,
                    "timestamp_ms": timestamp,
                }
            )
            continue
        language = _pick(rng, TEXT_LANGUAGE_WEIGHTS)
        options = [t for t in TEXT_TEMPLATES if t[0] == language]
        _, sentiment, intent, text, entities = rng.choice(options)
        # A direct message has text or a photo (ingress skips one with neither), so the bare
        # template is always a mention: `@bot` alone. The draw stays, to keep the sequence.
        direct = rng.random() < 0.3 and bool(text)
        messages.append(
            {
                "id": message_id,
                "kind": "DIRECT_MESSAGE" if direct else "MENTION",
                "author": author,
                "text": text if direct else f"@{BOT_SCREEN_NAME} {text}".strip(),
                # X sets a post's lang (und when it cannot tell); a DM carries none.
                "lang": None if direct else language,
                "language": language,  # what it really is (DMs too): the canned AI answers
                "sentiment": sentiment,
                "intent": intent,
                "entities": _entities(entities),
                "images": [],
                "timestamp_ms": timestamp,
            }
        )
    return {
        "generated_by": "python -m bench.make_corpus",
        "seed": seed,
        "bot_user_id": BOT_USER_ID,
        "bot_screen_name": BOT_SCREEN_NAME,
        "messages": messages,
    }


def build_scenes() -> dict[str, Any]:
    return {"generated_by": "python -m bench.make_corpus", "scenes": SCENES}


def dump(data: dict[str, Any]) -> str:
    return json.dumps(data, ensure_ascii=False, indent=1) + "\n"


def main() -> None:
    CORPUS_DIR.mkdir(parents=True, exist_ok=True)
    MESSAGES_FILE.write_text(dump(build_corpus()), encoding="utf-8")
    SCENES_FILE.write_text(dump(build_scenes()), encoding="utf-8")
    print(f"wrote {MESSAGES_FILE} and {SCENES_FILE}")


if __name__ == "__main__":
    main()
