import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from chalicelib.egress.text_fit import ELLIPSIS, fit_text, weighted_length

FAMILY = "\U0001f468\u200d\U0001f469\u200d\U0001f467\u200d\U0001f466"  # 7 code points, 1 emoji
URL = "https://example.com/a/very/long/path?with=query&and=more"


def assert_valid_cut(text: str, result: str, limit: int = 280) -> None:
    assert weighted_length(result) <= limit
    assert result.endswith(ELLIPSIS)
    assert text.startswith(result[: -len(ELLIPSIS)])


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("abc", 3),
        ("日本語", 6),
        ("\U0001f637", 2),
        (FAMILY, 2),
        ("\U0001f1ef\U0001f1f5", 2),  # a flag: two regional indicators, one emoji
        (URL, 23),
        ("x " + URL + " y", 27),
        ("é", 1),
    ],
)
def test_weighted_length_counts_like_x(text, expected):
    assert weighted_length(text) == expected


def test_text_that_fits_is_unchanged():
    text = "hello " + URL + " 日本 \U0001f637"
    assert fit_text(text) == text
    assert fit_text("a" * 280) == "a" * 280


def test_long_urls_count_23_so_the_text_fits_unchanged():
    text = "look: https://example.com/" + "p" * 400
    assert fit_text(text) == text


def test_cuts_at_a_word_boundary_and_ends_with_an_ellipsis():
    text = "word " * 100
    result = fit_text(text)
    assert_valid_cut(text, result)
    # 55 words weigh 274, 276 with the ellipsis; a 56th word would make it 281
    assert result == "word " * 54 + "word" + ELLIPSIS
    assert all(w == "word" for w in result[:-1].split())


def test_the_longest_word_cut_is_chosen():
    text = "ab " * 200  # words of 2 + space
    result = fit_text(text, limit=20)
    # "ab ab ab ab ab ab" is 17, plus the ellipsis 19; one more word would be 22
    assert result == "ab ab ab ab ab ab" + ELLIPSIS


def test_urls_are_kept_whole_and_weigh_23():
    text = " ".join([URL] * 12)  # 12 * 23 + 11 spaces = 287
    result = fit_text(text)
    assert_valid_cut(text, result)
    assert result == " ".join([URL] * 11) + ELLIPSIS  # 11 * 23 + 10 + 2 = 265
    assert weighted_length(result) == 265


def test_emoji_are_never_split():
    text = "\U0001f600" * 200  # weight 400, no spaces: a character cut
    result = fit_text(text)
    assert result == "\U0001f600" * 139 + ELLIPSIS  # 139 * 2 + 2 = 280


def test_zwj_sequences_are_never_split():
    text = FAMILY * 200
    result = fit_text(text)
    assert_valid_cut(text, result)
    body = result[:-1]
    assert body == FAMILY * 139


def test_skin_tones_and_flags_stay_attached():
    thumbs = "\U0001f44d\U0001f3fd"
    flag = "\U0001f1eb\U0001f1f7"
    text = (thumbs + flag) * 100
    result = fit_text(text, limit=11)
    # each emoji weighs 2: four emoji (8) plus the ellipsis (2) = 10; a fifth would be 12
    assert result == thumbs + flag + thumbs + flag + ELLIPSIS


def test_cjk_counts_double():
    text = "日本語" * 100  # 300 characters, weight 600
    result = fit_text(text)
    assert result == text[:139] + ELLIPSIS
    assert weighted_length(result) == 280


def test_combining_marks_stay_with_their_letter():
    text = "e\u0301" * 300  # NFC makes each pair one character
    result = fit_text(text, limit=11)
    assert result == "e\u0301" * 9 + ELLIPSIS


def test_a_1000_character_word_is_cut_by_characters():
    text = "a" * 1000
    assert fit_text(text) == "a" * 278 + ELLIPSIS


def test_a_short_word_then_a_huge_one_keeps_most_of_the_budget():
    text = "hello " + "b" * 1000
    result = fit_text(text)
    assert result == "hello " + "b" * 272 + ELLIPSIS
    assert weighted_length(result) == 280


def test_trailing_space_is_not_kept_before_the_ellipsis():
    text = "one two three four"
    assert fit_text(text, limit=10) == "one two" + ELLIPSIS


def test_a_limit_too_small_for_the_ellipsis_is_refused():
    with pytest.raises(ValueError):
        fit_text("hello", limit=1)


PIECES = st.sampled_from(
    [" ", "\n", "\r\n", URL, "x.com", FAMILY, "\U0001f44d\U0001f3fd", "日本", "e\u0301", "word"]
)
TEXTS = st.lists(st.one_of(st.text(max_size=30), PIECES), max_size=60).map("".join)


@settings(max_examples=150, deadline=None)
@given(text=TEXTS, limit=st.integers(min_value=2, max_value=300))
def test_any_text_fits_and_is_a_prefix(text, limit):
    result = fit_text(text, limit)
    assert weighted_length(result) <= limit
    if weighted_length(text) <= limit:
        assert result == text
    else:
        assert_valid_cut(text, result, limit)
