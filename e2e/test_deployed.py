"""MagpieStack as deployed into LocalStack, driven from outside as X would drive it.

Each test sends what X sends (the CRC challenge, signed webhook deliveries from
examples/webhooks) to the deployed API Gateway URL, then reads what the deployed system did:
the events on its bus, the posts the stub X received, the lake's objects, the alert topic.
"""

from __future__ import annotations

import json
import socket
import time
from pathlib import Path
from typing import Any

import requests
from conftest import BOT_USER_ID, X_KEYS, Deployed

from chalicelib.ingress.signature import SIGNATURE_HEADER, sign

EXAMPLES = Path(__file__).resolve().parents[1] / "examples" / "webhooks"


def delivery(name: str, tweet_id: str | None = None, text: str | None = None) -> bytes:
    """An example delivery, with a tweet id and text of this test's own when given."""
    body = json.loads((EXAMPLES / name).read_text())
    assert body["for_user_id"] == BOT_USER_ID
    tweet = body["tweet_create_events"][0]
    if tweet_id:
        tweet["id"], tweet["id_str"] = int(tweet_id), tweet_id
    if text:
        tweet["text"] = text
        tweet["display_text_range"] = [0, len(text)]
    return json.dumps(body).encode()


def post(deployed: Deployed, body: bytes) -> requests.Response:
    signature = sign(X_KEYS["ApiSecret"], body)
    return requests.post(
        deployed.webhook_path,
        data=body,
        headers={"Content-Type": "application/json", SIGNATURE_HEADER: signature},
        timeout=30,
    )


def tweet_id_of(body: bytes) -> str:
    return json.loads(body)["tweet_create_events"][0]["id_str"]


def received(deployed: Deployed, tweet_id: str) -> dict[str, Any]:
    return deployed.wait_for_event(
        lambda e: (
            e["detail-type"] == "MESSAGE_RECEIVED"
            and e["detail"]["Twitter"].get("TweetId") == tweet_id
        )
    )


def event_of(deployed: Deployed, detail_type: str, message_id: str) -> dict[str, Any]:
    return deployed.wait_for_event(
        lambda e: e["detail-type"] == detail_type and e["detail"].get("MessageId") == message_id
    )


def replies_to(deployed: Deployed, tweet_id: str) -> list[dict[str, Any]]:
    return [
        p for p in deployed.x.posts() if p.get("reply", {}).get("in_reply_to_tweet_id") == tweet_id
    ]


def test_the_emulator_listens_on_loopback_only(deployed: Deployed) -> None:
    port = int(deployed.endpoint.rsplit(":", 1)[1])
    listening = [
        line.split()[1]
        for table in ("/proc/net/tcp", "/proc/net/tcp6")
        for line in Path(table).read_text().splitlines()[1:]
        if line.split()[3] == "0A" and int(line.split()[1].rsplit(":", 1)[1], 16) == port
    ]

    assert listening == [f"0100007F:{port:04X}"]  # 127.0.0.1, and nothing else


def test_crc_challenge_is_answered_with_the_apps_secret(deployed: Deployed) -> None:
    answer = requests.get(deployed.webhook_path, params={"crc_token": "e2e-challenge"}, timeout=30)

    assert answer.status_code == 200, answer.text
    assert answer.json() == {"response_token": sign(X_KEYS["ApiSecret"], b"e2e-challenge")}


def test_an_unsigned_delivery_is_refused(deployed: Deployed) -> None:
    body = delivery("mention-plain.json", tweet_id="2077393608889140001")
    answer = requests.post(deployed.webhook_path, data=body, timeout=30)

    assert answer.status_code in (400, 401, 403), answer.text


def test_a_mention_is_analysed_answered_on_x_and_reported(deployed: Deployed) -> None:
    body = delivery("mention-plain.json", tweet_id="2077393608889140002")
    tweet_id = tweet_id_of(body)

    answer = post(deployed, body)

    assert answer.status_code == 200, answer.text
    message_id = received(deployed, tweet_id)["detail"]["MessageId"]
    analysed = event_of(deployed, "MESSAGE_ANALYSED", message_id)
    analysis = analysed["detail"]["Analysis"]
    assert analysis["TextSentiment"] in {"POSITIVE", "NEGATIVE", "NEUTRAL", "MIXED"}
    assert set(analysis["SentimentScore"]) == {"Positive", "Negative", "Neutral", "Mixed"}
    send = event_of(deployed, "SEND_TWEET", message_id)
    sent = event_of(deployed, "TWEET_SENT", message_id)
    [reply] = replies_to(deployed, tweet_id)
    assert reply["text"] == send["detail"]["Text"]
    assert sent["detail"]["MessageId"] == message_id
    [request] = [
        r
        for r in deployed.x.requests
        if r.path == "/2/tweets" and r.json()["reply"]["in_reply_to_tweet_id"] == tweet_id
    ]
    assert request.headers["Authorization"].startswith("OAuth ")  # signed as X requires


def test_a_direct_message_is_answered_by_direct_message(deployed: Deployed) -> None:
    body = json.loads((EXAMPLES / "direct-message.json").read_text())
    event = body["direct_message_events"][0]
    sender = event["message_create"]["sender_id"]
    raw = json.dumps(body).encode()

    assert post(deployed, raw).status_code == 200

    message = deployed.wait_for_event(
        lambda e: (
            e["detail-type"] == "MESSAGE_RECEIVED"
            and e["detail"]["Twitter"].get("DirectMessageId") == event["id"]
        )
    )
    event_of(deployed, "TWEET_SENT", message["detail"]["MessageId"])
    dms = [
        r for r in deployed.x.requests if r.path == f"/2/dm_conversations/with/{sender}/messages"
    ]
    assert len(dms) == 1
    assert dms[0].json()["text"]


def test_analysed_messages_reach_the_lake(deployed: Deployed) -> None:
    body = delivery("mention-plain.json", tweet_id="2077393608889140003")
    assert post(deployed, body).status_code == 200
    message_id = received(deployed, tweet_id_of(body))["detail"]["MessageId"]
    event_of(deployed, "MESSAGE_ANALYSED", message_id)
    s3 = deployed.client("s3")
    bucket = deployed.outputs["DataLakeBucketName"]

    tweet_id = tweet_id_of(body)
    deadline, analysed, raw = time.monotonic() + 60, [], []
    while not (analysed and raw) and time.monotonic() < deadline:
        keys = [o["Key"] for o in s3.list_objects_v2(Bucket=bucket).get("Contents", [])]
        bodies = {k: s3.get_object(Bucket=bucket, Key=k)["Body"].read().decode() for k in keys}
        analysed = [k for k, b in bodies.items() if message_id in b and "MESSAGE_ANALYSED" in b]
        raw = [k for k, b in bodies.items() if tweet_id in b and "TWITTER_TWEETED" in b]
        time.sleep(1)

    assert analysed, f"no lake object names {message_id}"
    # Magpie's events at the lake's root, X's raw items under their own prefix, apart.
    assert raw and all(key.startswith("x-raw/") for key in raw), raw
    assert not [k for k in analysed if k.startswith("x-raw/")], analysed
    assert "TWITTER_" not in "".join(bodies[k] for k in analysed)


def test_a_negative_message_alerts_on_the_topic(deployed: Deployed) -> None:
    body = delivery(
        "mention-negative.json",
        tweet_id="2077393608889140004",
        text="@acme_helper_bot this is awful, terrible and broken. I hate it, worst ever.",
    )
    assert post(deployed, body).status_code == 200
    author = json.loads(body)["tweet_create_events"][0]["user"]["screen_name"]

    alert = deployed.wait_for_alert(lambda text: "NEGATIVE" in text and author in text)

    assert "2077393608889140004" in alert


def test_a_copy_of_an_ending_on_the_bus_raises_no_second_alert(deployed: Deployed) -> None:
    """EventBridge delivers at least once and an archive replay delivers again: the same
    negative MESSAGE_ANALYSED put on the bus a second time e-mails no second alert."""
    text = "@acme_helper_bot this is awful, terrible and broken. I hate it, worst ever."
    body = delivery("mention-negative.json", tweet_id="2077393608889140011", text=text)
    assert post(deployed, body).status_code == 200
    message_id = received(deployed, tweet_id_of(body))["detail"]["MessageId"]
    analysed = event_of(deployed, "MESSAGE_ANALYSED", message_id)
    deployed.wait_for_alert(lambda alert: "NEGATIVE" in alert and message_id in alert)
    event_of(deployed, "TWEET_SENT", message_id)

    deployed.client("events").put_events(
        Entries=[
            {
                "EventBusName": deployed.outputs["EventBusName"],
                "Source": analysed["source"],
                "DetailType": analysed["detail-type"],
                "Detail": json.dumps(analysed["detail"]),
            }
        ]
    )
    # A later negative message's alert: the copy's alert, had there been one, had as long.
    later = delivery("mention-negative.json", tweet_id="2077393608889140012", text=text)
    assert post(deployed, later).status_code == 200
    later_id = received(deployed, tweet_id_of(later))["detail"]["MessageId"]
    deployed.wait_for_alert(lambda alert: "NEGATIVE" in alert and later_id in alert)
    event_of(deployed, "TWEET_SENT", later_id)

    assert len([a for a in deployed.seen_alerts if message_id in a]) == 1
    assert len(replies_to(deployed, tweet_id_of(body))) == 1


def test_a_duplicate_delivery_is_answered_once(deployed: Deployed) -> None:
    body = delivery("mention-plain.json", tweet_id="2077393608889140005")
    tweet_id = tweet_id_of(body)
    assert post(deployed, body).status_code == 200
    message_id = received(deployed, tweet_id)["detail"]["MessageId"]
    event_of(deployed, "TWEET_SENT", message_id)

    again = post(deployed, body)
    # A later message through the whole path: the duplicate had as long to be answered.
    later = delivery("mention-plain.json", tweet_id="2077393608889140006")
    assert post(deployed, later).status_code == 200
    event_of(deployed, "TWEET_SENT", received(deployed, tweet_id_of(later))["detail"]["MessageId"])

    assert again.status_code == 200, again.text
    assert len(replies_to(deployed, tweet_id)) == 1
    assert (
        len(
            [
                e
                for e in deployed.seen_events
                if e["detail-type"] == "MESSAGE_RECEIVED"
                and e["detail"]["Twitter"].get("TweetId") == tweet_id
            ]
        )
        == 1
    )


def test_a_failing_analysis_publishes_message_analysis_failed(deployed: Deployed) -> None:
    """The text step misconfigured (an unknown provider) fails on every attempt: the state
    machine retries it, then reports MESSAGE_ANALYSIS_FAILED and the alert goes out."""
    lam = deployed.client("lambda")
    name = _function_with_handler(lam, "app.analyse_text")
    environment = lam.get_function_configuration(FunctionName=name)["Environment"]["Variables"]
    _set_environment(lam, name, {**environment, "TEXT_PROVIDER": "unavailable"})
    try:
        body = delivery("mention-plain.json", tweet_id="2077393608889140007")
        assert post(deployed, body).status_code == 200
        message_id = received(deployed, tweet_id_of(body))["detail"]["MessageId"]

        failed = event_of(deployed, "MESSAGE_ANALYSIS_FAILED", message_id)
        alert = deployed.wait_for_alert(
            lambda text: "ANALYSIS_FAILED" in text and message_id in text
        )
    finally:
        _set_environment(lam, name, environment)

    # The failed execution's logged ending reaches analysis_stopped too, through the log
    # group's subscription: a later message through the whole path gives it time to
    # arrive, and what it reports must not be a second MESSAGE_ANALYSIS_FAILED.
    later = delivery("mention-plain.json", tweet_id="2077393608889140009")
    assert post(deployed, later).status_code == 200
    event_of(deployed, "TWEET_SENT", received(deployed, tweet_id_of(later))["detail"]["MessageId"])
    reports = [
        e
        for e in deployed.seen_events
        if e["detail-type"] == "MESSAGE_ANALYSIS_FAILED" and e["detail"]["MessageId"] == message_id
    ]

    assert "TEXT_PROVIDER" in failed["detail"]["Reason"]
    assert "Traceback" not in failed["detail"]["Reason"]
    assert "TEXT_PROVIDER" in alert
    assert not replies_to(deployed, tweet_id_of(body))
    assert len(reports) == 1


def test_a_late_failure_of_an_answered_message_ends_nothing_again(deployed: Deployed) -> None:
    """The crash case of the one-ending rule, deployed: the message is analysed and
    answered, then its workflow's failure step runs for it after all (a Catch after a
    publish that died before answering, a retried execution). The failure step gets the
    message's ending back; no MESSAGE_ANALYSIS_FAILED, no failure alert."""
    body = delivery("mention-plain.json", tweet_id="2077393608889140010")
    assert post(deployed, body).status_code == 200
    message = received(deployed, tweet_id_of(body))["detail"]
    message_id = message["MessageId"]
    event_of(deployed, "TWEET_SENT", message_id)

    lam = deployed.client("lambda")
    late = {"Message": message, "Error": {"Error": "States.Timeout", "Cause": "too late"}}
    answer = lam.invoke(
        FunctionName=_function_with_handler(lam, "app.publish_analysis_failed"),
        Payload=json.dumps(late).encode(),
    )
    ended = json.loads(answer["Payload"].read())

    # A later message through the whole path gives anything the late step published
    # time to show on the bus.
    later = delivery("mention-plain.json", tweet_id="2077393608889140011")
    assert post(deployed, later).status_code == 200
    event_of(deployed, "TWEET_SENT", received(deployed, tweet_id_of(later))["detail"]["MessageId"])
    endings = [
        e["detail-type"]
        for e in deployed.seen_events
        if e["detail-type"] in ("MESSAGE_ANALYSED", "MESSAGE_ANALYSIS_FAILED")
        and e["detail"].get("MessageId") == message_id
    ]

    assert "FunctionError" not in answer, ended
    assert ended["MessageId"] == message_id and "Analysis" in ended  # MESSAGE_ANALYSED's
    assert endings == ["MESSAGE_ANALYSED"]
    assert len(replies_to(deployed, tweet_id_of(body))) == 1


def test_a_step_past_its_timeout_is_cut_off_and_the_analysis_reports_failure(
    deployed: Deployed,
) -> None:
    """Comprehend that accepts the connection and never answers: the text step outlives
    its function timeout on every attempt, is cut off as Lambda cuts it off, and the
    state machine reports MESSAGE_ANALYSIS_FAILED."""
    lam = deployed.client("lambda")
    name = _function_with_handler(lam, "app.analyse_text")
    configuration = lam.get_function_configuration(FunctionName=name)
    environment = configuration["Environment"]["Variables"]
    with socket.socket() as silent:
        silent.bind(("127.0.0.1", 0))
        silent.listen(16)  # connections complete in the backlog; nothing ever answers
        comprehend = f"http://127.0.0.1:{silent.getsockname()[1]}"
        _set_environment(
            lam,
            name,
            {
                **environment,
                "TEXT_PROVIDER": "comprehend",
                "AWS_ENDPOINT_URL_COMPREHEND": comprehend,
            },
            timeout=2,
        )
        try:
            body = delivery("mention-plain.json", tweet_id="2077393608889140008")
            assert post(deployed, body).status_code == 200
            message_id = received(deployed, tweet_id_of(body))["detail"]["MessageId"]
            started = time.monotonic()
            failed = event_of(deployed, "MESSAGE_ANALYSIS_FAILED", message_id)
            elapsed = time.monotonic() - started
        finally:
            _set_environment(lam, name, environment, timeout=configuration["Timeout"])

    assert "Sandbox.Timedout" in failed["detail"]["Reason"]
    assert "timed out after 2.00 seconds" in failed["detail"]["Reason"]
    assert elapsed < 60  # cut off at 2 s per attempt, not botocore's 60 s read timeout


def _function_with_handler(lam: Any, handler: str) -> str:
    [name] = [
        f["FunctionName"]
        for page in lam.get_paginator("list_functions").paginate()
        for f in page["Functions"]
        if f.get("Handler") == handler
    ]
    return name


def _set_environment(
    lam: Any, name: str, variables: dict[str, str], timeout: int | None = None
) -> None:
    extra = {"Timeout": timeout} if timeout else {}
    lam.update_function_configuration(
        FunctionName=name, Environment={"Variables": variables}, **extra
    )
    lam.get_waiter("function_updated_v2").wait(FunctionName=name)
