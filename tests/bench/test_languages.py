"""The language-share benchmark's own counting (bench/languages.py), not its figures."""

from __future__ import annotations

from bench.languages import reply_language, summarise
from chalicelib.responders.languages import reply_texts


def row(language, detected=None, said=None, replied=True):
    found = {"id": "1", "language": language, "replied": replied}
    if replied:
        found.update(detected=detected, said=said or detected, intent="Joke", text="t")
    else:
        found["reason"] = "explicit_image"
    return found


def test_the_share_leaves_out_undetermined_messages_and_skipped_ones():
    rows = [
        row("fr", "fr"),
        row("fr", "fr"),
        row("es", "pt"),  # taken for Portuguese
        row("cy", "en"),  # not spoken: English
        row("und", "en"),
        row("de", replied=False),
    ]
    result = summarise(rows, [0.1] * 5)
    assert (result["replied"], result["skipped"]) == (5, 1)
    assert (result["answered_in_own_language"], result["replied_with_a_language"]) == (2, 4)
    assert result["share_in_own_language"] == 0.5
    assert result["undetermined_answered_in_english"] == 1
    assert result["by_language"]["es"] == {
        "messages": 1, "replied": 1, "in_own_language": 0, "reply_pt": 1,
    }  # fmt: skip
    assert [m["language"] for m in result["missed"]] == ["es", "cy"]


def test_english_content_after_the_note_counts_as_english_whatever_the_note_says():
    note = reply_texts("es").english_only
    assert reply_language(f"{note} Why did the chicken cross the road?", "es") == "en"
    assert (
        reply_language("¿Por qué la gallina cruzó la carretera? Para llegar al otro lado.", "es")
        == "es"
    )
