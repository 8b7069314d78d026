"""Ingress: the X webhook. GET answers the CRC challenge; POST accepts signed deliveries."""

from typing import cast

from chalice import Chalice, Response
from chalice.app import Request

from chalicelib.ingress.http import crc_answer, delivery_answer

app = Chalice(app_name="magpie-ingress")


@app.route("/twitter", methods=["GET"])
def crc_challenge() -> Response:
    query = _request().query_params
    status, body = crc_answer(query.get("crc_token") if query else None)
    return Response(body=body, status_code=status)


@app.route("/twitter", methods=["POST"], content_types=["application/json"])
def webhook_delivery() -> Response:
    request = _request()
    status, body = delivery_answer(
        cast(bytes, request.raw_body), request.headers.get("x-twitter-webhooks-signature")
    )
    return Response(body=body, status_code=status)


def _request() -> Request:
    """The request being handled: Chalice sets it before calling a route (and keeps the raw
    body as bytes, though it declares str | bytes)."""
    request = app.current_request
    assert request is not None
    return request
