"""The Poster adapter for X: `XPoster` uploads a reply's images and posts it or sends the DM.

`Poster` is the port (chalicelib/ports.py); `outbox.DryRunOutbox` is the local adapter. Both
send what `content.py` says a reply carries; `delivery.post_with_retries` is the retry
policy around either.

A reply to a post reaches only the message's author: X would otherwise prefix it with every
user in the thread, so `XPoster` asks X to leave the others out (`exclude_reply_user_ids`;
X never drops the author of the post replied to, so the author is never in that list).
"""

from __future__ import annotations

from chalicelib.egress.content import outgoing_images, outgoing_text
from chalicelib.egress.x_client import DM_IMAGE, TWEET_IMAGE, XClient
from chalicelib.events import DIRECT_MESSAGE, MENTION
from chalicelib.ports import PostResult, ReplyRequest


class XPoster:
    """Delivers to X: uploads the images, then posts the reply or sends the DM."""

    def __init__(self, client: XClient) -> None:
        self._client = client

    def post(self, request: ReplyRequest) -> PostResult:
        text = outgoing_text(request)
        category = TWEET_IMAGE if request.kind == MENTION else DM_IMAGE
        images = outgoing_images(request)
        excluded = [u for u in request.exclude_reply_user_ids if u != request.reply_to_user_id]
        media_ids = [
            self._client.upload_media(data, media_type, media_category=category)
            for data, media_type in images
        ]
        if request.kind == DIRECT_MESSAGE:
            media_id = media_ids[0] if media_ids else None
            sent_id = self._client.send_dm(request.reply_to_user_id, text, media_id)
        elif request.reply_to_tweet_id:
            sent_id = self._client.reply(text, request.reply_to_tweet_id, media_ids, excluded)
        else:  # ReplyRequest already refuses this; kept so the type checker sees a str
            raise ValueError("a MENTION reply needs reply_to_tweet_id")
        return PostResult(sent_id=sent_id, media_ids=media_ids, dry_run=False)
