"""Completion photos in an S3 bucket (AWS S3 or any server that speaks its API).

Chosen with ``HOTLINE_WORKBENCH_S3_BUCKET``. A photo is checked exactly as for the folder,
then put under its random name as the object key, with its content type. Its URL is

- ``HOTLINE_WORKBENCH_S3_PUBLIC_BASE_URL`` + key when that is set (a bucket or CDN that
  serves the objects to anyone: the workbench is not in the photo's path), else
- the workbench's own ``/photos/<key>``, which reads the object with the workbench's
  credentials: the bucket stays private, and the URL is the folder store's.

Credentials: ``HOTLINE_WORKBENCH_S3_ACCESS_KEY`` / ``_SECRET_KEY`` when set, else boto3's
usual chain (``AWS_ACCESS_KEY_ID`` / ``AWS_SECRET_ACCESS_KEY``, a profile, a pod's web
identity, an instance role).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import boto3
import structlog
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError

from workers.runtime.settings import Settings
from workers.workbench.photos import (
    CACHE_CONTROL,
    MEDIA_TYPES,
    NAME,
    Photo,
    PhotoConfigError,
    PhotoUnavailable,
    check_photo,
    new_name,
    served_type,
    shown_on_workbench,
    workbench_photo_url,
)

log = structlog.get_logger(__name__)

# Absent objects: S3 says NoSuchKey; some compatible servers answer a bare 404.
_MISSING = {"NoSuchKey", "404", "NotFound"}


def s3_client(settings: Settings) -> Any:
    """A boto3 S3 client for the workbench's bucket, from the settings."""
    access = settings.workbench_s3_access_key
    secret = settings.workbench_s3_secret_key
    if (access is None) != (secret is None):
        raise PhotoConfigError("set both HOTLINE_WORKBENCH_S3_ACCESS_KEY and "
                               "HOTLINE_WORKBENCH_S3_SECRET_KEY, or neither (then boto3 "
                               "reads AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY)")
    config = Config(
        # A compatible server at its own address is reached by path (bucket in the path,
        # not the host name): that needs no wildcard DNS. AWS picks for itself.
        s3={"addressing_style": "path" if settings.workbench_s3_endpoint_url else "auto"},
        # Checksums only where S3 demands them: many compatible servers refuse the
        # trailing checksums boto3 sends by default since 1.36.
        request_checksum_calculation="when_required",
        response_checksum_validation="when_required",
        retries={"max_attempts": 3, "mode": "standard"},
        connect_timeout=5, read_timeout=30)
    try:
        return boto3.session.Session().client(
            "s3", endpoint_url=settings.workbench_s3_endpoint_url,
            region_name=settings.workbench_s3_region,
            aws_access_key_id=access.get_secret_value() if access else None,
            aws_secret_access_key=secret.get_secret_value() if secret else None,
            config=config)
    except (BotoCoreError, ValueError) as exc:  # e.g. an endpoint URL without its scheme
        raise PhotoConfigError(f"HOTLINE_WORKBENCH_S3_*: {exc}") from None


@dataclass(frozen=True)
class S3PhotoStore:
    """Photos as objects in one bucket, keyed by their random names."""

    client: Any  # botocore's S3 client (untyped); clients are safe to share between threads
    bucket: str
    base_url: str  # the workbench's, for /photos/<key>
    max_bytes: int
    public_base_url: str | None = None

    @classmethod
    def from_settings(cls, settings: Settings, base_url: str) -> S3PhotoStore:
        if not settings.workbench_s3_bucket:
            raise PhotoConfigError("HOTLINE_WORKBENCH_S3_BUCKET is not set")
        public = settings.workbench_s3_public_base_url
        return cls(s3_client(settings), settings.workbench_s3_bucket, base_url,
                   settings.workbench_photo_max_bytes,
                   public.rstrip("/") + "/" if public else None)

    def check(self, filename: str, data: bytes) -> str:
        return check_photo(filename, data, self.max_bytes)

    def save(self, data: bytes, kind: str) -> str:
        name = new_name(kind)
        try:
            self.client.put_object(Bucket=self.bucket, Key=name, Body=data,
                                   ContentType=MEDIA_TYPES[kind], CacheControl=CACHE_CONTROL)
        except (BotoCoreError, ClientError) as exc:
            log.error("photo not stored", bucket=self.bucket, key=name, error=_why(exc))
            raise PhotoUnavailable(f"the photo store did not take it ({_why(exc)})") from None
        return self.url(name)

    def url(self, name: str) -> str:
        if self.public_base_url:
            return self.public_base_url + name
        return workbench_photo_url(self.base_url, name)

    def read(self, name: str) -> Photo | None:
        media_type = served_type(name)
        if media_type is None:  # never an arbitrary key of the bucket
            return None
        try:
            answer = self.client.get_object(Bucket=self.bucket, Key=name)
            data = answer["Body"].read()
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") in _MISSING:
                return None
            log.error("photo not read", bucket=self.bucket, key=name, error=_why(exc))
            raise PhotoUnavailable(_why(exc)) from None
        except BotoCoreError as exc:
            log.error("photo not read", bucket=self.bucket, key=name, error=_why(exc))
            raise PhotoUnavailable(_why(exc)) from None
        return Photo(data, media_type)

    def shown(self, url: str) -> str | None:
        if self.public_base_url and url.startswith(self.public_base_url):
            return url if NAME.match(url.removeprefix(self.public_base_url)) else None
        return shown_on_workbench(self.base_url, url)

    def reachable(self) -> str | None:
        """``None`` when the bucket answers, else why not (logged at start-up)."""
        try:
            self.client.head_bucket(Bucket=self.bucket)
        except (BotoCoreError, ClientError) as exc:
            return _why(exc)
        return None


def _why(exc: BaseException) -> str:
    if isinstance(exc, ClientError):
        error = exc.response.get("Error", {})
        return f"{error.get('Code', '?')}: {error.get('Message') or exc}"
    return f"{type(exc).__name__}: {exc}"
