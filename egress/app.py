"""Egress: post each SEND_TWEET to X (or the local dry-run outbox), exactly once.

Only commands from the responders are obeyed: the pattern admits no other source, and
`send_reply` checks the source again in case a rule is ever widened.
"""

from chalice import Chalice
from chalice.app import CloudWatchEvent

from chalicelib.egress.send import send_reply

app = Chalice(app_name="magpie-egress")


@app.on_cw_event({"source": ["magpie.responders"], "detail-type": ["SEND_TWEET"]})
def send_tweet(event: CloudWatchEvent) -> None:
    send_reply(event.detail, source=event.source, context=event.context)
