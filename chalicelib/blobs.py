"""Blob store adapters: S3 on AWS, a folder under MAGPIE_HOME locally."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from chalicelib.errors import NotFoundError


class BlobNotFound(NotFoundError, KeyError):
    pass


def _safe_relative(key: str) -> Path:
    path = Path(key)
    if path.is_absolute() or ".." in path.parts or not key:
        raise ValueError(f"invalid blob key {key!r}")
    return path


class LocalBlobStore:
    def __init__(self, root: Path) -> None:
        self.root = root

    def put(self, key: str, data: bytes, content_type: str) -> None:
        target = self.root / _safe_relative(key)
        target.parent.mkdir(parents=True, exist_ok=True)
        tmp = target.with_name(target.name + ".tmp")
        tmp.write_bytes(data)
        os.replace(tmp, target)

    def get(self, key: str) -> bytes:
        target = self.root / _safe_relative(key)
        try:
            return target.read_bytes()
        except FileNotFoundError as exc:
            raise BlobNotFound(key) from exc


class S3BlobStore:
    def __init__(self, client: Any, bucket: str) -> None:
        self._client = client
        self.bucket = bucket

    def put(self, key: str, data: bytes, content_type: str) -> None:
        self._client.put_object(Bucket=self.bucket, Key=key, Body=data, ContentType=content_type)

    def get(self, key: str) -> bytes:
        try:
            return self._client.get_object(Bucket=self.bucket, Key=key)["Body"].read()
        except self._client.exceptions.NoSuchKey as exc:
            raise BlobNotFound(key) from exc
