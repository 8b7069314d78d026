"""The one text normaliser at the edge: properties over any string a JSON body can carry."""

from __future__ import annotations

import html
import json

from hypothesis import given
from hypothesis import strategies as st

from chalicelib.ingress.text import (
    MAX_TEXT_BYTES,
    may_hold_surrogates,
    normalise_text,
    repair_all_surrogates,
)

# Every code point, lone surrogates included (what json.loads can hand us).
any_text = st.text(alphabet=st.characters(min_codepoint=0, max_codepoint=0x10FFFF), max_size=3000)
plain = st.text(
    alphabet=st.characters(blacklist_categories=("Cs",), blacklist_characters="&"), max_size=500
)


@given(any_text)
def test_the_result_always_encodes_as_utf8_within_the_limit(text):
    encoded = normalise_text(text).encode("utf-8")  # raises on a lone surrogate
    assert len(encoded) <= MAX_TEXT_BYTES


@given(plain)
def test_text_without_entities_or_surrogates_under_the_limit_is_unchanged(text):
    assert normalise_text(text) == text


@given(plain)
def test_escaped_text_comes_back_as_written(text):
    assert normalise_text(html.escape(text, quote=False)) == text


@given(plain.filter(bool))
def test_a_long_text_is_cut_on_a_character_boundary_never_rewritten(text):
    long_text = text * (1 + MAX_TEXT_BYTES // len(text.encode()))
    result = normalise_text(long_text)
    assert long_text.startswith(result)
    assert MAX_TEXT_BYTES - 4 < len(result.encode()) <= MAX_TEXT_BYTES


def test_lone_surrogates_become_the_replacement_character_and_pairs_are_joined():
    assert normalise_text("a\ud83db") == "a\ufffdb"
    assert normalise_text("\ud83d\ude00") == "\U0001f600"
    assert normalise_text("\ude00\ud83d") == "\ufffd\ufffd"


def test_entities_x_sends_are_decoded():
    assert normalise_text("fish &amp; chips &lt;3 &gt;_&gt;") == "fish & chips <3 >_>"


@given(st.recursive(any_text | st.integers(), lambda c: st.lists(c) | st.dictionaries(any_text, c)))
def test_every_string_in_a_parsed_body_is_repaired(value):
    repaired = repair_all_surrogates(value)
    json.dumps(repaired, ensure_ascii=False).encode("utf-8")


def test_the_pre_check_sees_only_surrogate_escapes():
    assert may_hold_surrogates(b'{"t": "\\ud83d"}')
    assert may_hold_surrogates(b'{"t": "\\uDE00"}')
    assert not may_hold_surrogates(b'{"t": "\\u00e9 \\u2603"}')
