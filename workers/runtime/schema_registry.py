"""The Schema Registry option of the processes: one :class:`~schemas.registry.ConfluentWire`
per process, made from the settings, and its blocking calls kept off the event loop.

With ``HOTLINE_SCHEMA_REGISTRY_URL`` unset every function here is a no-op around the
single-object codec (docs/schema-registry.md).
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
from collections.abc import Collection
from typing import Any

import structlog

from schemas import codec
from schemas.codec import Decoded, DecodeError
from schemas.registry import ConfluentWire, RegistryUnavailable, SchemaRegistry
from workers.runtime.settings import Settings

__all__ = [
    "RegistryUnavailable",
    "decode_value",
    "register_until_done",
    "registry_wire",
    "writer_wire",
]

log = structlog.get_logger("hotline.schema_registry")

_WIRES: dict[tuple[str, str | None], ConfluentWire] = {}
_WIRES_LOCK = threading.Lock()


def registry_wire(settings: Settings) -> ConfluentWire | None:
    """The process's reader/writer of the Confluent wire format; None without a registry.

    One per registry URL and user, so the bridges of a process share their cache of
    writer schemas and register ``schemas/`` once.
    """
    url = settings.schema_registry_url
    if not url:
        return None
    key = (url, settings.schema_registry_username)
    with _WIRES_LOCK:
        wire = _WIRES.get(key)
        if wire is None:
            password = settings.schema_registry_password
            wire = _WIRES[key] = ConfluentWire(SchemaRegistry(
                url, username=settings.schema_registry_username,
                password=password.get_secret_value() if password else None,
                cafile=settings.schema_registry_ca_file,
            ))
        return wire


def writer_wire(settings: Settings) -> ConfluentWire | None:
    """The wire the worker's publisher writes with: only with ``schema_registry_write``."""
    return registry_wire(settings) if settings.schema_registry_write else None


def _decode_without_registry(value: bytes, expected: Collection[str] | None) -> Decoded:
    """The codec alone; a Confluent-framed value is refused with a detail that says why."""
    try:
        return codec.decode(value, expected)
    except DecodeError as exc:
        if exc.reason == "MALFORMED" and value[:1] == b"\x00":
            raise DecodeError(
                "MALFORMED", f"{exc.detail} (Confluent wire format: 00 + schema "
                "id; set HOTLINE_SCHEMA_REGISTRY_URL to read it)") from exc
        raise


async def decode_value(wire: ConfluentWire | None, value: bytes,
                       expected: Collection[str] | None = None) -> Decoded:
    """Decode a Kafka value in either wire format, fetching a new writer schema on a thread.

    Without a registry a Confluent-framed value is refused with a detail that says so
    (the codec alone would only see a bad marker).

    Raises:
        DecodeError: Not a usable event (dead-letter it with ``reason``).
        RegistryUnavailable: The registry did not answer; retry, do not dead-letter.
    """
    if wire is None:
        return _decode_without_registry(value, expected)
    if wire.needs_fetch(value):
        await asyncio.to_thread(wire.fetch, value)
    return wire.decode(value, expected)


def decode_blocking(settings: Settings, value: bytes,
                    expected: Collection[str] | None = None) -> Decoded:
    """:func:`decode_value` for a command (no event loop): either wire format, the writer
    schema fetched in place when the registry is configured."""
    wire = registry_wire(settings)
    if wire is None:
        return _decode_without_registry(value, expected)
    wire.fetch(value)
    return wire.decode(value, expected)


async def register_until_done(wire: ConfluentWire | None, stop: asyncio.Event,
                              *, process: str, **where: Any) -> None:
    """Register ``schemas/`` with the registry, retrying (capped backoff) until it worked
    or ``stop`` is set. Meant as a background task: reading never waits for it."""
    if wire is None:
        return
    delay = 1.0
    while not stop.is_set():
        try:
            ids = await asyncio.to_thread(wire.register_all)
        except RegistryUnavailable as exc:
            log.warning("schemas not registered, retrying", process=process,
                        registry=wire.registry.url, error=str(exc)[:300],
                        retry_in_s=delay, **where)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), timeout=delay)
            delay = min(delay * 2, 30.0)
        else:
            log.info("schemas registered", process=process, registry=wire.registry.url,
                     subjects=len(ids), **where)
            return
