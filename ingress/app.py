"""Ingress: the X webhook. GET answers the CRC challenge; POST accepts signed deliveries."""

from chalice import Chalice, Response

from chalicelib.ingress.http import crc_answer, delivery_answer

app = Chalice(app_name="magpie-ingress")


@app.route("/twitter", methods=["GET"])
def crc_challenge() -> Response:
    query = app.current_request.query_params or {}
    status, body = crc_answer(query.get("crc_token"))
    return Response(body=body, status_code=status)


@app.route("/twitter", methods=["POST"], content_types=["application/json"])
def webhook_delivery() -> Response:
    request = app.current_request
    status, body = delivery_answer(
        request.raw_body, request.headers.get("x-twitter-webhooks-signature")
    )
    return Response(body=body, status_code=status)
