"""Completion photos: checked (type by magic bytes, size), stored, and served by URL.

One :class:`PhotoStore` protocol, two stores chosen by the settings: a folder
(:class:`FolderPhotoStore`, the default) and an S3 bucket
(:class:`~workers.workbench.photos_s3.S3PhotoStore`, with ``HOTLINE_WORKBENCH_S3_BUCKET``).
Both check a photo the same way and keep it under the same random name, so a photo's URL
looks the same whichever holds it, and a folder's files copied into a bucket keep theirs.

A photo is kept under a random name (128 bits), so its URL can travel in an event to other
systems without listing or guessing the others. The type is read from the file's first
bytes, never from its name or the browser's claim; anything but JPEG, PNG or WebP is refused.
"""

from __future__ import annotations

import re
import secrets
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

MAX_PHOTOS = 6
# The stored name: 32 hex characters and the type's extension (what /photos/ serves).
NAME = re.compile(r"^[0-9a-f]{32}\.(jpg|png|webp)$")
MEDIA_TYPES = {"jpg": "image/jpeg", "png": "image/png", "webp": "image/webp"}
# A name is never reused for other bytes, so a browser may keep a photo for good.
CACHE_CONTROL = "public, max-age=31536000, immutable"


class PhotoError(ValueError):
    """A photo that is too large, of another type, or one too many."""


class PhotoUnavailable(RuntimeError):
    """The store did not answer (an object store that is down or refuses our keys)."""


class PhotoConfigError(ValueError):
    """Settings that cannot make a photo store (e.g. an access key without its secret)."""


@dataclass(frozen=True)
class Photo:
    """A stored photo's bytes and the content type it is served with."""

    data: bytes
    media_type: str


def photo_type(head: bytes) -> str | None:
    """``jpg``, ``png`` or ``webp`` from a file's first bytes, else ``None``."""
    if head.startswith(b"\xff\xd8\xff"):
        return "jpg"
    if head.startswith(b"\x89PNG\r\n\x1a\n"):
        return "png"
    if len(head) >= 12 and head[:4] == b"RIFF" and head[8:12] == b"WEBP":
        return "webp"
    return None


def check_photo(filename: str, data: bytes, max_bytes: int) -> str:
    """The photo's type; raises :class:`PhotoError` with a reason a person can act on."""
    if len(data) > max_bytes:
        raise PhotoError(f"{filename}: over {_size(max_bytes)}")
    kind = photo_type(data[:16])
    if kind is None:
        raise PhotoError(f"{filename}: not a JPEG, PNG or WebP photo")
    return kind


def _size(n: int) -> str:
    for unit, size in (("MB", 1024 * 1024), ("KB", 1024)):
        if n >= size:
            return f"{n / size:.3g} {unit}"
    return f"{n} bytes"


def new_name(kind: str) -> str:
    """A fresh random name for a photo of type ``kind``."""
    return f"{secrets.token_hex(16)}.{kind}"


def served_type(name: str) -> str | None:
    """The content type ``/photos/<name>`` answers with, or ``None`` for a foreign name.

    The type comes from the name the workbench gave the photo after reading its bytes,
    never from what the store says: an object changed in a bucket is still no web page.
    """
    return MEDIA_TYPES[name.rsplit(".", 1)[1]] if NAME.match(name) else None


class PhotoStore(Protocol):
    """Where completion photos are kept, and the URLs they travel under."""

    @property
    def max_bytes(self) -> int:
        """The largest photo accepted."""
        ...

    def check(self, filename: str, data: bytes) -> str:
        """The photo's type; raises :class:`PhotoError` with the reason."""
        ...

    def save(self, data: bytes, kind: str) -> str:
        """Store a checked photo; returns its URL. Blocks: call it on a thread.

        Raises:
            PhotoUnavailable: The store did not take it.
        """
        ...

    def read(self, name: str) -> Photo | None:
        """The photo served at ``/photos/<name>``, or ``None`` (bad name, no such photo).
        Blocks: call it on a thread.

        Raises:
            PhotoUnavailable: The store did not answer.
        """
        ...

    def shown(self, url: str) -> str | None:
        """Where a page shows the photo at ``url`` (an ``img`` source), or ``None`` when
        the URL is not one of this store's (another system's link)."""
        ...


def workbench_photo_url(base_url: str, name: str) -> str:
    """The URL the workbench serves a photo at."""
    return f"{base_url}/photos/{name}"


def shown_on_workbench(base_url: str, url: str) -> str | None:
    """``/photos/<name>`` for one of the workbench's own photo URLs, else ``None``."""
    name = url.removeprefix(f"{base_url}/photos/")
    return f"/photos/{name}" if name != url and NAME.match(name) else None


@dataclass(frozen=True)
class FolderPhotoStore:
    """A folder of photos, served by the workbench at ``/photos/<name>``."""

    folder: Path
    base_url: str
    max_bytes: int

    def check(self, filename: str, data: bytes) -> str:
        return check_photo(filename, data, self.max_bytes)

    def save(self, data: bytes, kind: str) -> str:
        self.folder.mkdir(parents=True, exist_ok=True)
        name = new_name(kind)
        tmp = self.folder / f".{name}.part"
        tmp.write_bytes(data)
        tmp.replace(self.folder / name)
        return workbench_photo_url(self.base_url, name)

    def path(self, name: str) -> Path | None:
        """The stored file for a served name, or ``None`` (bad name, no such photo)."""
        if not NAME.match(name):
            return None
        path = self.folder / name
        return path if path.is_file() else None

    def read(self, name: str) -> Photo | None:
        path = self.path(name)
        media_type = served_type(name)
        if path is None or media_type is None:
            return None
        return Photo(path.read_bytes(), media_type)

    def shown(self, url: str) -> str | None:
        return shown_on_workbench(self.base_url, url)
