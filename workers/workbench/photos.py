"""Completion photos: checked (type by magic bytes, size), stored in a folder, served by URL.

A photo is kept under a random name (128 bits), so its URL can travel in an event to other
systems without listing or guessing the others. The type is read from the file's first
bytes, never from its name or the browser's claim; anything but JPEG, PNG or WebP is refused.
"""

from __future__ import annotations

import re
import secrets
from dataclasses import dataclass
from pathlib import Path

MAX_PHOTOS = 6
# The stored name: 32 hex characters and the type's extension (what /photos/ serves).
NAME = re.compile(r"^[0-9a-f]{32}\.(jpg|png|webp)$")
MEDIA_TYPES = {"jpg": "image/jpeg", "png": "image/png", "webp": "image/webp"}


class PhotoError(ValueError):
    """A photo that is too large, of another type, or one too many."""


def photo_type(head: bytes) -> str | None:
    """``jpg``, ``png`` or ``webp`` from a file's first bytes, else ``None``."""
    if head.startswith(b"\xff\xd8\xff"):
        return "jpg"
    if head.startswith(b"\x89PNG\r\n\x1a\n"):
        return "png"
    if len(head) >= 12 and head[:4] == b"RIFF" and head[8:12] == b"WEBP":
        return "webp"
    return None


@dataclass(frozen=True)
class PhotoStore:
    """A folder of photos and the URL they are served under."""

    folder: Path
    base_url: str
    max_bytes: int

    def check(self, filename: str, data: bytes) -> str:
        """The photo's type; raises :class:`PhotoError` with a reason a person can act on."""
        if len(data) > self.max_bytes:
            raise PhotoError(f"{filename}: over {self.max_bytes // (1024 * 1024)} MB")
        kind = photo_type(data[:16])
        if kind is None:
            raise PhotoError(f"{filename}: not a JPEG, PNG or WebP photo")
        return kind

    def save(self, data: bytes, kind: str) -> str:
        """Store a checked photo; returns its URL."""
        self.folder.mkdir(parents=True, exist_ok=True)
        name = f"{secrets.token_hex(16)}.{kind}"
        tmp = self.folder / f".{name}.part"
        tmp.write_bytes(data)
        tmp.replace(self.folder / name)
        return f"{self.base_url}/photos/{name}"

    def path(self, name: str) -> Path | None:
        """The stored file for a served name, or ``None`` (bad name, no such photo)."""
        if not NAME.match(name):
            return None
        path = self.folder / name
        return path if path.is_file() else None
