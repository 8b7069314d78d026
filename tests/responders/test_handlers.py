"""The responders' domain on the local backend: real bot, real Pillow, real blob store and bus.

Outcomes of bad input, as each test states: answered (SEND_TWEET), skipped with a reason
(REPLY_SKIPPED from magpie.responders), or raised so the bus retries and parks it for replay.
"""

from __future__ import annotations

import copy
import functools
import io
import json

import numpy as np
import pytest
from botocore.stub import Stubber
from PIL import Image

from chalicelib import backend
from chalicelib.blobs import BlobNotFound
from chalicelib.events import ContractError, MessageAnalysed, ReplySkipped, SendTweet, utc_now_iso
from chalicelib.responders.bot_definition import load_bot_definition
from chalicelib.responders.handlers import (
    annotated_key,
    respond_to_images,
    respond_to_text,
    strip_mentions_and_urls,
)
from chalicelib.responders.lex import LexConversation
from tests.analysis.images import astronaut, grace_hopper, jpeg_bytes, png_bytes
from tests.conftest import ROOT

FIXTURE = json.loads((ROOT / "tests/fixtures/events/MESSAGE_ANALYSED.json").read_text())
AUTHOR_ID = "1712345678901234567"
TWEET_ID = "2077393668393734144"
# Eileen Collins' face in skimage.data.astronaut() (512x512), as Rekognition would box it.
COLLINS_BOX = {"Width": 0.21, "Height": 0.22, "Left": 0.34, "Top": 0.11}
COLLINS_PX = (174, 56, 282, 169)
# An "unrecognised face" box well away from Collins: the rocket, top right.
STRANGER_BOX = {"Width": 0.16, "Height": 0.2, "Left": 0.8, "Top": 0.02}
STRANGER_PX = (410, 10, 491, 112)


def celebrity(name="Eileen Collins", box=COLLINS_BOX):
    return {"Name": name, "Id": "x", "MatchConfidence": 95.0, "Face": {"BoundingBox": box}}


def image(index=0, faces=(), unknown=(), moderation=()):
    return {
        "Key": f"media/2026/11/26/{TWEET_ID}/{index}.jpg",
        "Url": f"https://pbs.twimg.com/media/photo{index}.jpg",
        "Analysis": {
            "Labels": [],
            "TextDetections": [],
            "CelebrityFaces": list(faces),
            "UnrecognizedFaces": [{"BoundingBox": b, "Confidence": 99.0} for b in unknown],
            "ModerationLabels": list(moderation),
        },
    }


def analysed(
    text="@acme_helper_bot tell me a joke",
    images=(),
    kind="MENTION",
    rejected=(),
    sentiment=("NEUTRAL", 0.04),
    **twitter,
):
    detail = copy.deepcopy(FIXTURE)
    detail.update(Text=text, Kind=kind, ReceivedAt=utc_now_iso())
    detail["Analysis"]["Images"] = list(images)
    detail["Analysis"]["RejectedMedia"] = [{"Url": url, "Reason": why} for url, why in rejected]
    detail["Analysis"]["TextSentiment"], negative = sentiment
    detail["Analysis"]["SentimentScore"]["Negative"] = negative
    ids = {"UserId": AUTHOR_ID}
    ids.update({"TweetId": TWEET_ID} if kind == "MENTION" else {"DirectMessageId": "dm-77"})
    detail["Twitter"] = {**ids, **twitter}
    detail["MessageId"] = TWEET_ID if kind == "MENTION" else "dm-77"
    MessageAnalysed.from_detail(detail)  # every detail built here fits the contract
    return detail


def published():
    return [envelope for _, envelope in backend.local_bus_store().events_since(0)]


def store_original(detail_image, data: bytes):
    backend.blob_store().put(detail_image["Key"], data, "image/jpeg")


def decode(data: bytes) -> np.ndarray:
    return np.asarray(Image.open(io.BytesIO(data)).convert("RGB")).astype(int)


def box_pixels(array: np.ndarray, box) -> np.ndarray:
    x0, y0, x1, y1 = box
    return array[y0:y1, x0:x1]


# --- text ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "question"),
    [
        ("@acme_helper_bot tell me a joke", "tell me a joke"),
        ("@a @b_c tell me a fact https://t.co/Xk9PqR2mLa please", "tell me a fact please"),
        ("hey @acme_helper_bot, www.example.com/x joke?", "hey , joke?"),
        ("mail me at ana@example.com", "mail me at ana@example.com"),
        ("@acme_helper_bot https://t.co/abc", ""),
        ("  many\n\n spaces\t", "many spaces"),
    ],
)
def test_mentions_and_urls_are_stripped(text, question):
    assert strip_mentions_and_urls(text) == question


def test_mention_is_answered_in_its_thread_by_the_bot(local_env):
    command = respond_to_text(analysed("@acme_helper_bot tell me a joke https://t.co/x"))

    assert isinstance(command, SendTweet)
    assert command.Intent == "Joke"
    (envelope,) = published()
    assert envelope["source"] == "magpie.responders"
    assert envelope["detail-type"] == "SEND_TWEET"
    detail = envelope["detail"]
    assert detail == command.to_detail()
    assert detail["ReplyToUserId"] == AUTHOR_ID
    assert detail["ReplyToTweetId"] == TWEET_ID
    assert detail["Kind"] == "MENTION"
    assert detail["MessageId"] == TWEET_ID
    assert detail["ImageKeys"] == []
    assert "ImageKey" not in detail
    assert detail["Text"]


def test_direct_message_is_answered_by_direct_message(local_env):
    command = respond_to_text(analysed("tell me an interesting fact", kind="DIRECT_MESSAGE"))

    assert command.Kind == "DIRECT_MESSAGE"
    assert command.Intent == "Fact"
    (envelope,) = published()
    assert "ReplyToTweetId" not in envelope["detail"]
    assert envelope["detail"]["ReplyToUserId"] == AUTHOR_ID
    assert envelope["detail"]["MessageId"] == "dm-77"


def test_only_handles_and_links_are_answered_with_the_help_message(local_env):
    # Answered: Lex refuses empty text, and "what can you do" is the useful answer.
    command = respond_to_text(analysed("@acme_helper_bot https://t.co/Xk9PqR2mLa"))

    assert command.Intent == "FallbackIntent"
    assert command.Text == load_bot_definition().help_message


def test_gibberish_gets_the_fallback_help(local_env):
    command = respond_to_text(analysed("@acme_helper_bot qwxz vbnm plok"))

    assert command.Intent == "FallbackIntent"
    assert command.Text == load_bot_definition().help_message


DM_PHOTO = "https://ton.twitter.com/1.1/ton/data/dm/1/2/q7XzL2mN.jpg"


def test_a_photo_that_could_not_be_fetched_is_named_not_asked_for(local_env):
    # A DM photo on ton.twitter.com is refused (it needs OAuth): the sender did send a photo.
    command = respond_to_text(
        analysed("here is the picture", kind="DIRECT_MESSAGE",
                 rejected=[(DM_PHOTO, "host_not_allowed")])
    )  # fmt: skip
    bot = load_bot_definition()
    assert command.Intent == "UnreadablePhotos"
    assert command.Text != bot.help_message and "send me a photo" not in command.Text
    assert command.Text == (
        "Sorry, I could not open the photo you sent: I can only fetch photos from a public "
        "post, not from a direct message or another site. So I can't say who is in it."
    )


def test_several_unreadable_photos_are_counted_with_each_reason_once(local_env):
    command = respond_to_text(
        analysed(rejected=[("https://pbs.twimg.com/a.jpg", "not_an_image"),
                           ("https://pbs.twimg.com/b.jpg", "timeout"),
                           ("https://pbs.twimg.com/c.jpg", "not_an_image")])
    )  # fmt: skip
    assert command.Text.startswith("Sorry, I could not open the 3 photos you sent: ")
    assert command.Text.count("not a photo I can read") == 1
    assert "took too long to download" in command.Text


def test_readable_and_unreadable_photos_get_names_and_a_note(local_env):
    photo = image(0, faces=[celebrity()])
    store_original(photo, jpeg_bytes(astronaut()))
    command = respond_to_images(
        analysed(images=[photo], rejected=[("https://pbs.twimg.com/b.jpg", "too_large")])
    )
    assert command.Text == (
        "I recognised: Eileen Collins (I could not open 1 of your 2 photos: it is over 5 MB.)"
    )


def with_errors(detail, *errors):
    detail["Analysis"]["Errors"] = [
        {"Capability": capability, "Error": "RuntimeError: boom", "Image": key}
        for capability, key in errors
    ]
    MessageAnalysed.from_detail(detail)
    return detail


def test_a_photo_whose_face_search_failed_is_not_said_to_show_nobody(local_env):
    photo = image(0)
    command = respond_to_images(with_errors(analysed(images=[photo]), ("faces", photo["Key"])))
    assert command.Intent == "UnreadablePhotos"
    assert command.Text == (
        "Sorry, I could not open the photo you sent: something went wrong while I looked at "
        "it. So I can't say who is in it."
    )
    assert "recognised nobody" not in command.Text


def test_names_from_the_photos_looked_at_and_a_note_on_the_one_that_failed(local_env):
    seen, failed = image(0, faces=[celebrity()]), image(1)
    store_original(seen, jpeg_bytes(astronaut()))
    detail = with_errors(analysed(images=[seen, failed]), ("image", failed["Key"]))
    command = respond_to_images(detail)
    assert command.Text == (
        "I recognised: Eileen Collins (I could not open 1 of your 2 photos: something went "
        "wrong while I looked at it.)"
    )
    assert len(command.ImageKeys) == 1


def test_a_message_that_raised_the_negative_alert_gets_a_kind_acknowledgement(local_env):
    text = "@acme_helper_bot your last answer was useless and rude. Worst bot ever"
    command = respond_to_text(analysed(text, sentiment=("NEGATIVE", 0.92)))
    bot = load_bot_definition()
    assert command.Intent == "NegativeAcknowledgement"
    assert command.Text == bot.replies["negative"] != bot.help_message
    assert "person" in command.Text and len(command.Text) <= 100


def test_a_mildly_negative_request_is_still_answered_by_the_bot(local_env):
    # Below the alert's threshold no alert goes out, so no person is promised: the joke is.
    from chalicelib.alerts import ALERT_MIN_NEGATIVE_SCORE

    mild = ("NEGATIVE", ALERT_MIN_NEGATIVE_SCORE - 0.2)
    command = respond_to_text(analysed("@acme_helper_bot tell me a joke please", sentiment=mild))
    assert command.Intent == "Joke"


def test_thread_parent_travels_to_egress_for_the_depth_guard(local_env):
    respond_to_text(analysed(InReplyToTweetId="1999", InReplyToUserId="5"))

    (envelope,) = published()
    assert envelope["detail"]["InReplyToTweetId"] == "1999"


def test_everyone_else_the_mention_tagged_is_left_out_of_the_reply(local_env):
    respond_to_text(analysed(MentionedUserIds=["3333", "4444"]))

    (envelope,) = published()
    assert envelope["detail"]["ExcludeReplyUserIds"] == ["3333", "4444"]


def lex_without_messages():
    client = backend.aws_client("lexv2-runtime")
    stubber = Stubber(client)
    stubber.add_response(
        "recognize_text",
        {
            "sessionState": {
                "intent": {"name": "Joke", "state": "Fulfilled"},
                "dialogAction": {"type": "Close"},
            },
            "interpretations": [
                {"intent": {"name": "Joke"}, "nluConfidence": {"score": 0.91}},
            ],
            "sessionId": AUTHOR_ID,
        },
        {
            "botId": "BOT1234567",
            "botAliasId": "ALIAS12345",
            "localeId": "en_GB",
            "sessionId": AUTHOR_ID,
            "text": "tell me a joke",
        },
    )
    stubber.activate()
    return LexConversation(client, "BOT1234567", "ALIAS12345", "en_GB")


def test_bot_with_nothing_to_say_is_skipped_with_a_reason(local_env, aws_credentials, monkeypatch):
    # Skipped: Lex answered with no message (its code hook said nothing).
    # Cached like the real factory, so backend.reset() can clear it at teardown.
    monkeypatch.setattr(backend, "conversation", functools.cache(lex_without_messages))

    outcome = respond_to_text(analysed("@acme_helper_bot tell me a joke"))

    assert isinstance(outcome, ReplySkipped)
    (envelope,) = published()
    assert envelope["source"] == "magpie.responders"
    assert envelope["detail-type"] == "REPLY_SKIPPED"
    assert envelope["detail"] == {
        "MessageId": TWEET_ID,
        "Kind": "MENTION",
        "Reason": "bot_had_nothing_to_say",
        "ReplyToUserId": AUTHOR_ID,
        "SchemaVersion": "1",
    }


@pytest.mark.parametrize(
    "breakage",
    [
        lambda d: d.pop("MessageId"),
        lambda d: d.update(Text=None),
        lambda d: d["Analysis"].update(Images={}),
        lambda d: d.pop("Twitter"),
    ],
    ids=["no-message-id", "null-text", "images-not-a-list", "no-twitter-ids"],
)
def test_malformed_detail_raises_for_the_bus_to_park(local_env, breakage):
    # Parked for replay: a detail that breaks the contract is a bug to look at.
    detail = analysed()
    breakage(detail)
    with pytest.raises(ContractError):
        respond_to_text(detail)
    assert published() == []


# --- images ----------------------------------------------------------------------------


def test_recognised_person_is_drawn_stored_and_named(local_env):
    photo = image(faces=[celebrity()])
    original = jpeg_bytes(astronaut())
    store_original(photo, original)

    command = respond_to_images(analysed(images=[photo]))

    key = f"annotated/2026/11/26/{TWEET_ID}/0.jpg"
    assert command.Text == "I recognised: Eileen Collins"
    assert command.Intent == "ImageAnnotation"
    assert command.ImageKeys == [key]
    assert command.ImageKey == key
    (envelope,) = published()
    assert envelope["detail"]["ImageKeys"] == [key]
    stored = backend.blob_store().get(key)
    assert stored.startswith(b"\xff\xd8\xff")  # JPEG
    drawn, before = decode(stored), decode(original)
    assert drawn.shape == before.shape
    # The box's outline is drawn in the first label colour (yellow), over the face's edge.
    x0, y0, x1, _ = COLLINS_PX
    edge = drawn[y0 + 1, x0 + 10 : x1 - 10]
    assert np.abs(edge - [255, 214, 0]).mean() < 40
    assert np.abs(before[y0 + 1, x0 + 10 : x1 - 10] - [255, 214, 0]).mean() > 80
    # Far from the face and its label, the photo is unchanged (up to JPEG noise).
    assert np.abs(drawn[400:500, 20:120] - before[400:500, 20:120]).mean() < 3


def test_names_from_every_photo_and_only_named_photos_attached(local_env):
    photos = [
        image(0, faces=[celebrity()]),
        image(1),  # nobody recognised: not sent back
        image(
            2,
            faces=[
                celebrity("Grace Hopper", {"Width": 0.4, "Height": 0.4, "Left": 0.3, "Top": 0.1})
            ],
        ),
    ]
    store_original(photos[0], jpeg_bytes(astronaut()))
    store_original(photos[1], jpeg_bytes(astronaut()))
    store_original(photos[2], jpeg_bytes(grace_hopper()))

    command = respond_to_images(analysed(images=photos))

    assert command.Text == "I recognised: Eileen Collins, Grace Hopper"
    assert [k.rsplit("/", 1)[1] for k in command.ImageKeys] == ["0.jpg", "2.jpg"]
    with pytest.raises(BlobNotFound):
        backend.blob_store().get(f"annotated/2026/11/26/{TWEET_ID}/1.jpg")


def test_nobody_recognised_replies_without_images(local_env):
    photo = image(unknown=[STRANGER_BOX])
    store_original(photo, jpeg_bytes(astronaut()))

    command = respond_to_images(analysed(images=[photo]))

    assert command.Text == "Sorry, I recognised nobody"
    assert command.ImageKeys == []
    (envelope,) = published()
    assert "ImageKey" not in envelope["detail"]
    assert not (local_env / "media" / "annotated").exists()


@pytest.mark.parametrize("blur", [True, False])
def test_unknown_faces_are_blurred_only_when_configured(local_env, monkeypatch, blur):
    monkeypatch.setenv("BLUR_UNKNOWN_FACES", "true" if blur else "false")
    backend.reset()
    photo = image(faces=[celebrity()], unknown=[STRANGER_BOX])
    original = png_bytes(astronaut())
    store_original(photo, original)

    command = respond_to_images(analysed(images=[photo]))

    drawn = decode(backend.blob_store().get(command.ImageKeys[0]))
    before = decode(original)
    detail = lambda a: np.abs(np.diff(box_pixels(a, STRANGER_PX), axis=1)).mean()  # noqa: E731
    if blur:
        assert detail(drawn) < detail(before) * 0.5
    else:
        assert detail(drawn) == pytest.approx(detail(before), rel=0.2)


def test_transparent_png_stays_png(local_env):
    photo = image(faces=[celebrity()])
    store_original(photo, png_bytes(astronaut().convert("RGBA")))

    command = respond_to_images(analysed(images=[photo]))

    assert command.ImageKeys == [f"annotated/2026/11/26/{TWEET_ID}/0.png"]
    assert backend.blob_store().get(command.ImageKeys[0]).startswith(b"\x89PNG")


EXPLICIT = [{"Name": "Explicit Nudity", "Confidence": 97.0, "ParentName": ""}]
SUGGESTIVE = [{"Name": "Swimwear or Underwear", "Confidence": 97.0, "ParentName": "Suggestive"}]


def test_only_explicit_photos_are_skipped_and_never_stored(local_env):
    # Skipped with a reason: never echo, or name anyone in, an explicit photo.
    photo = image(faces=[celebrity()], moderation=EXPLICIT)
    store_original(photo, jpeg_bytes(astronaut()))

    outcome = respond_to_images(analysed(images=[photo]))

    assert isinstance(outcome, ReplySkipped)
    assert outcome.Reason == "explicit_image"
    (envelope,) = published()
    assert (envelope["source"], envelope["detail-type"]) == ("magpie.responders", "REPLY_SKIPPED")
    assert not (local_env / "media" / "annotated").exists()


def test_explicit_photo_among_others_is_left_out(local_env):
    # Answered, about the other photos only.
    photos = [
        image(0, faces=[celebrity("Someone Famous")], moderation=EXPLICIT),
        image(1, faces=[celebrity()], moderation=SUGGESTIVE),
    ]
    for photo in photos:
        store_original(photo, jpeg_bytes(astronaut()))

    command = respond_to_images(analysed(images=photos))

    assert command.Text == "I recognised: Eileen Collins"
    assert [k.rsplit("/", 1)[1] for k in command.ImageKeys] == ["1.jpg"]


def test_at_most_four_photos_are_answered(local_env):
    photos = [image(i, faces=[celebrity(f"Person {i}")]) for i in range(6)]
    for photo in photos:
        store_original(photo, jpeg_bytes(astronaut()))

    command = respond_to_images(analysed(images=photos))

    assert command.Text == "I recognised: Person 0, Person 1, Person 2, Person 3"
    assert len(command.ImageKeys) == 4


def test_direct_message_photo_is_answered_by_direct_message(local_env):
    photo = image(faces=[celebrity()])
    store_original(photo, jpeg_bytes(astronaut()))

    command = respond_to_images(analysed("who is this?", images=[photo], kind="DIRECT_MESSAGE"))

    assert command.Kind == "DIRECT_MESSAGE"
    assert command.ReplyToTweetId is None
    assert len(command.ImageKeys) == 1


def test_redelivery_overwrites_the_same_annotated_key(local_env):
    photo = image(faces=[celebrity()])
    store_original(photo, jpeg_bytes(astronaut()))

    first = respond_to_images(analysed(images=[photo]))
    second = respond_to_images(analysed(images=[photo]))

    assert first.ImageKeys == second.ImageKeys
    assert len(list((local_env / "media" / "annotated").rglob("*.jpg"))) == 1


def test_missing_original_raises_for_the_bus_to_retry(local_env):
    # Parked for replay (after the bus's retries): the photo may still be arriving.
    with pytest.raises(BlobNotFound):
        respond_to_images(analysed(images=[image(faces=[celebrity()])]))
    assert published() == []


def test_unreadable_photo_is_answered_without_it(local_env):
    # Answered: the people are still named, but there is no photo to send back.
    photo = image(faces=[celebrity()])
    store_original(photo, b"this is not an image at all")

    command = respond_to_images(analysed(images=[photo]))

    assert command.Text == "I recognised: Eileen Collins"
    assert command.ImageKeys == []


def test_image_responder_without_images_skips(local_env):
    # Skipped with a reason: only reachable if a rule is widened by mistake.
    outcome = respond_to_images(analysed())
    assert isinstance(outcome, ReplySkipped)
    assert outcome.Reason == "no_images"


@pytest.mark.parametrize(
    ("original", "extension", "expected"),
    [
        ("media/2026/07/15/1/0.jpg", "jpg", "annotated/2026/07/15/1/0.jpg"),
        ("media/2026/07/15/1/0.webp", "png", "annotated/2026/07/15/1/0.png"),
        ("other/a.b/photo", "jpg", "annotated/other/a.b/photo.jpg"),
    ],
)
def test_annotated_key_mirrors_the_original(original, extension, expected):
    assert annotated_key(original, extension) == expected
