import json
import re
from pathlib import Path

from chalicelib.egress.delivery import post_with_retries
from chalicelib.egress.outbox import DryRunOutbox
from chalicelib.egress.text_fit import ELLIPSIS, weighted_length
from chalicelib.ports import Poster, ReplyRequest

NOW = 1_700_000_000.25  # 2023-11-14T22:13:20.25Z
JPEG = b"\xff\xd8\xff\xe0fake-jpeg\xff\xd9"
PNG = b"\x89PNG\r\n\x1a\nfake-png"


def outbox(tmp_path: Path) -> DryRunOutbox:
    return DryRunOutbox(tmp_path / "outbox", clock=lambda: NOW)


def read(location: str) -> dict:
    return json.loads(Path(location).read_text(encoding="utf-8"))


def test_a_mention_becomes_one_json_file_with_its_image_beside_it(tmp_path):
    request = ReplyRequest("MENTION", "Here you go 🦜", "42", "1234", [(JPEG, "image/jpeg")])

    result = outbox(tmp_path).post(request)

    assert result.dry_run is True
    assert re.fullmatch(r"dryrun-[0-9a-f]{32}", result.sent_id)
    location = Path(result.location)
    assert location.parent == tmp_path / "outbox"
    assert re.fullmatch(r"20231114T221320250000Z-1234-[0-9a-f]{8}\.json", location.name)
    record = read(result.location)
    assert record["sent_id"] == result.sent_id
    assert record["kind"] == "MENTION"
    assert record["text"] == "Here you go 🦜"
    assert record["reply_to_tweet_id"] == "1234"
    assert record["reply_to_user_id"] == "42"
    assert record["dry_run"] is True
    assert record["written_at"] == "2023-11-14T22:13:20.250000Z"
    (image,) = record["images"]
    assert image["media_type"] == "image/jpeg" and image["bytes"] == len(JPEG)
    image_path = Path(image["path"])
    assert image_path.parent == tmp_path / "outbox" / "media"
    assert image_path.suffix == ".jpg"
    assert image_path.read_bytes() == JPEG
    assert len(result.media_ids) == 1


def test_a_dm_is_named_after_the_user_and_keeps_one_image(tmp_path):
    request = ReplyRequest(
        "DIRECT_MESSAGE", "hello", "987", None, [(PNG, "image/png"), (JPEG, "image/jpeg")]
    )

    result = outbox(tmp_path).post(request)

    record = read(result.location)
    assert "-987-" in Path(result.location).name
    assert record["kind"] == "DIRECT_MESSAGE"
    assert record["reply_to_tweet_id"] is None
    (image,) = record["images"]
    assert Path(image["path"]).read_bytes() == PNG
    assert Path(image["path"]).suffix == ".png"
    assert sorted(p.name for p in (tmp_path / "outbox" / "media").iterdir()) == [
        Path(image["path"]).name
    ]


def test_the_outbox_records_the_text_as_it_would_be_posted(tmp_path):
    request = ReplyRequest("MENTION", "pun " * 200, "42", "1", [])

    record = read(outbox(tmp_path).post(request).location)

    assert record["text"].endswith(ELLIPSIS)
    assert weighted_length(record["text"]) <= 280


def test_each_reply_gets_its_own_file_and_no_temporary_file_is_left(tmp_path):
    box = outbox(tmp_path)
    request = ReplyRequest("MENTION", "same", "42", "1", [(JPEG, "image/jpeg")])

    first, second = box.post(request), box.post(request)

    assert first.location != second.location
    assert first.sent_id != second.sent_id
    files = sorted(p.relative_to(tmp_path / "outbox") for p in (tmp_path / "outbox").rglob("*"))
    names = [str(p) for p in files if p.suffix]
    assert len([n for n in names if n.endswith(".json")]) == 2
    assert len([n for n in names if n.endswith(".jpg")]) == 2
    assert not [n for n in names if n.endswith(".tmp") or "/." in n or n.startswith(".")]


def test_odd_ids_cannot_escape_the_outbox(tmp_path):
    request = ReplyRequest("DIRECT_MESSAGE", "hi", "../../etc/passwd", None, [])

    result = outbox(tmp_path).post(request)

    assert Path(result.location).parent == tmp_path / "outbox"
    assert read(result.location)["reply_to_user_id"] == "../../etc/passwd"


def test_the_outbox_is_a_poster_for_the_retry_policy(tmp_path):
    box: Poster = outbox(tmp_path)
    request = ReplyRequest("MENTION", "hi", "42", "1", [])

    result = post_with_retries(box, request, sleep=lambda s: None)

    assert result.dry_run and Path(result.location).is_file()


def test_a_written_reply_is_found_again_and_only_for_its_own_request(tmp_path):
    box = outbox(tmp_path)
    mention = ReplyRequest("MENTION", "A fact for you", "42", "1234")
    written = box.post(mention)

    found = box.find_reply(mention, since=NOW - 1)
    assert found is not None
    assert (found.sent_id, found.location) == (written.sent_id, written.location)
    assert box.find_reply(mention, since=NOW + 1) is None  # written before the intent
    other_post = ReplyRequest("MENTION", "A fact for you", "42", "9999")
    assert box.find_reply(other_post, since=NOW - 1) is None
    # Another text for the same post still counts: the message was answered already.
    other_text = ReplyRequest("MENTION", "Another fact", "42", "1234")
    assert box.find_reply(other_text, since=NOW - 1).sent_id == written.sent_id
    as_dm = ReplyRequest("DIRECT_MESSAGE", "A fact for you", "42", None)
    assert box.find_reply(as_dm, since=NOW - 1) is None


def test_a_half_written_reply_is_not_found(tmp_path):
    box = outbox(tmp_path)
    request = ReplyRequest("DIRECT_MESSAGE", "Hello", "42", None)
    (tmp_path / "outbox").mkdir()
    # What a crash before the rename leaves: a temporary file, never a reply.
    (tmp_path / "outbox" / ".20231114T221320250000Z-42-abcdef12.json.x1.tmp").write_text("{")
    assert box.find_reply(request, since=0) is None
