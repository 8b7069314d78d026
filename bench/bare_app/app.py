"""A bare Chalice app answering the webhook's routes with constants: the floor Magpie's
ingress is measured against (import time, warm latency). Not deployed."""

from chalice import Chalice, Response

app = Chalice(app_name="bench-bare")


@app.route("/twitter", methods=["GET"])
def crc_challenge() -> Response:
    return Response(body={"response_token": "sha256=bare"}, status_code=200)


@app.route("/twitter", methods=["POST"], content_types=["application/json"])
def webhook_delivery() -> Response:
    return Response(body={"status": "accepted"}, status_code=200)
