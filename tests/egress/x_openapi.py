"""Check a request captured by `responses` against X's API reference.

The operations and their request-body schemas are in tests/fixtures/x-openapi/ (see the README
there for where they come from). `assert_documented(request)` finds the operation from the
method and the URL path, checks the path and query parameters, and validates the body
(JSON, or the fields of a multipart form) against the operation's schema.
"""

from __future__ import annotations

import email.parser
import email.policy
import json
import re
from functools import cache
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import jsonschema

FIXTURE = Path(__file__).resolve().parents[1] / "fixtures" / "x-openapi" / "request-bodies.json"
X_HOSTS = {"api.x.com", "api.twitter.com"}


@cache
def operations() -> dict[str, dict[str, Any]]:
    return json.loads(FIXTURE.read_text())["operations"]


def operation_for(method: str, url: str) -> tuple[str, dict[str, str]]:
    """The documented operation ("METHOD /path/{param}") a request calls, with its path
    parameters; AssertionError if X documents no such operation."""
    parts = urlsplit(url)
    assert parts.scheme == "https" and parts.hostname in X_HOSTS, url
    for key in operations():
        op_method, template = key.split(" ", 1)
        if op_method != method.upper():
            continue
        pattern = "^" + re.sub(r"\\\{(\w+)\\\}", r"(?P<\1>[^/]+)", re.escape(template)) + "$"
        match = re.match(pattern, parts.path)
        if match:
            return key, match.groupdict()
    raise AssertionError(f"{method} {parts.path} is not an operation Magpie has checked")


def multipart_fields(request: Any) -> dict[str, tuple[str | None, str | None, bytes]]:
    """name -> (filename, content type, payload) of a multipart/form-data request."""
    content_type = request.headers["Content-Type"]
    assert content_type.startswith("multipart/form-data; boundary=")
    raw = b"Content-Type: " + content_type.encode() + b"\r\n\r\n" + request.body
    message = email.parser.BytesParser(policy=email.policy.HTTP).parsebytes(raw)
    assert message.is_multipart()
    fields = {}
    for part in message.iter_parts():
        name = part.get_param("name", header="content-disposition")
        fields[name] = (
            part.get_filename(),
            part.get("Content-Type"),
            part.get_payload(decode=True),
        )
    return fields


def request_body(request: Any, content_type: str) -> Any:
    """The body as the schema sees it: parsed JSON, or a form's field names and values."""
    if content_type == "multipart/form-data":
        return {
            name: payload.decode("latin-1")
            for name, (_, _, payload) in multipart_fields(request).items()
        }
    assert request.headers["Content-Type"].startswith("application/json")
    body = request.body
    return json.loads(body.decode() if isinstance(body, bytes) else body)


def assert_documented(request: Any) -> str:
    """Validate one captured request against X's reference; returns the operation's key."""
    key, path_params = operation_for(request.method, request.url)
    operation = operations()[key]
    for name, value in path_params.items():
        jsonschema.validate(value, operation["path_parameters"][name])
    query = dict(parse_qsl(urlsplit(request.url).query))
    allowed = operation.get("query_parameters", {})
    assert set(query) <= set(allowed), (
        f"{key}: undocumented query {sorted(set(query) - set(allowed))}"
    )
    for name, value in query.items():
        schema = allowed[name]
        jsonschema.validate(int(value) if schema.get("type") == "integer" else value, schema)
    schema = operation.get("schema")
    if request.body:
        assert schema is not None, f"{key} takes no body"
        jsonschema.validate(request_body(request, operation["content_type"]), schema)
    else:
        assert not (schema or {}).get("required"), f"{key} needs a body"
    return key
