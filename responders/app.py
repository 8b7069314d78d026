"""Responders: turn each analysed message into one SEND_TWEET for egress.

EventBridge flattens arrays of objects, so `Analysis.Images.Key` exists exactly when the
message has at least one image: the two patterns split MESSAGE_ANALYSED between the two
handlers, and every message reaches exactly one of them.
"""

from chalice import Chalice
from chalice.app import CloudWatchEvent

from chalicelib.responders.handlers import respond_to_images, respond_to_text

app = Chalice(app_name="magpie-responders")


@app.on_cw_event(
    {
        "source": ["magpie.analysis"],
        "detail-type": ["MESSAGE_ANALYSED"],
        "detail": {"Analysis": {"Images": {"Key": [{"exists": False}]}}},
    }
)
def text_responder(event: CloudWatchEvent) -> None:
    respond_to_text(event.detail)


@app.on_cw_event(
    {
        "source": ["magpie.analysis"],
        "detail-type": ["MESSAGE_ANALYSED"],
        "detail": {"Analysis": {"Images": {"Key": [{"exists": True}]}}},
    }
)
def image_responder(event: CloudWatchEvent) -> None:
    respond_to_images(event.detail)
