"""The one way every hotline process connects to Temporal, and how its payloads are written.

Address, namespace and transport security come from :class:`Settings`, so a TLS or
namespace setting reaches the worker, the bridges, the command line and the demo alike.

Payloads (workflow inputs, activity inputs and results, update arguments) are JSON as
Temporal's default converter writes it, with two differences that make every case's
history smaller and every payload still readable by the default converter (and by
code from before this converter; issue 30):

- text as UTF-8, not ``\\uXXXX`` escapes (a Chinese character is 3 bytes, not 6);
- a dataclass field equal to its default is left out. Decoding fills it in again from
  the same default, which ``workflows.model`` never changes (every field added later gets
  a default, so older payloads lacking it decode as before);
- a UTC timestamp ends in ``Z``, not ``+00:00``, and without the zeros of a fraction
  that has only milliseconds (``workflow.now()``) or none: still ISO 8601 that a person
  reads in the Temporal UI and Python 3.11's ``datetime.fromisoformat`` (which the
  default converter decodes with) reads back to an equal value with the same
  ``timezone.utc``. Epoch numbers would be smaller still, but unreadable in the UI and
  undecodable by code from before.

Decoding is the default converter's, except that a dataclass's field types are resolved
once per class (:class:`CachedDataclassConverter`): the default resolves them with
``typing.get_type_hints`` on every decode, which was most of a decode's CPU.
"""

from __future__ import annotations

import asyncio
import dataclasses
import functools
import json
from datetime import datetime, timedelta
from typing import Any, get_type_hints

from temporalio.api.common.v1 import Payload
from temporalio.client import Client
from temporalio.converter import (
    AdvancedJSONEncoder,
    CompositePayloadConverter,
    DataConverter,
    DefaultPayloadConverter,
    JSONPlainPayloadConverter,
    JSONTypeConverter,
    value_to_type,
)
from temporalio.runtime import Runtime

from workers.runtime.security import temporal_connect_options
from workers.runtime.settings import Settings

# A command-line user waits this long for an answer before being told Temporal is away.
CONNECT_TIMEOUT_S = 10.0


def _is_default(f: dataclasses.Field[Any], value: Any) -> bool:
    if f.default is not dataclasses.MISSING:
        default = f.default
    elif f.default_factory is not dataclasses.MISSING:
        default = f.default_factory()
    else:
        return False
    # The type too: False == 0 and 1.0 == 1, but a field never holds the other one.
    return type(value) is type(default) and bool(value == default)


def compact_isoformat(at: datetime) -> str:
    """``at.isoformat()``, shorter for UTC: ``Z`` and no trailing zeros of the fraction."""
    if at.utcoffset() != timedelta(0):
        return at.isoformat()  # naive or another offset: as the default converter writes it
    spec = ("seconds" if not at.microsecond else
            "milliseconds" if not at.microsecond % 1000 else "microseconds")
    return at.replace(tzinfo=None).isoformat(timespec=spec) + "Z"


class CompactJSONEncoder(AdvancedJSONEncoder):
    """A dataclass as its fields that differ from their defaults (nested ones alike), a
    UTC timestamp as :func:`compact_isoformat` writes it."""

    def default(self, o: Any) -> Any:
        if dataclasses.is_dataclass(o) and not isinstance(o, type):
            return {f.name: value for f in dataclasses.fields(o)
                    if not _is_default(f, value := getattr(o, f.name))}
        if isinstance(o, datetime):
            return compact_isoformat(o)
        return super().default(o)


@functools.cache
def _field_types(cls: type) -> tuple[tuple[str, Any, bool], ...]:
    """A dataclass's fields as (name, resolved type, passed to ``__init__``), once per class."""
    hints = get_type_hints(cls)
    return tuple((f.name, hints[f.name], f.init) for f in dataclasses.fields(cls))


class CachedDataclassConverter(JSONTypeConverter):
    """A JSON object into a dataclass the way Temporal's default converter does it (unknown
    keys ignored, a missing required field an error from the class itself, ``init=False``
    fields set afterwards), with the field types resolved once per class. Anything else is
    left to the default converter."""

    def to_typed_value(self, hint: type, value: Any) -> Any:
        if not (isinstance(hint, type) and dataclasses.is_dataclass(hint)
                and isinstance(value, dict)):
            return JSONTypeConverter.Unhandled
        given: dict[str, Any] = {}
        later: dict[str, Any] = {}
        for name, field_type, init in _field_types(hint):
            if name not in value:
                continue
            try:
                converted = value_to_type(field_type, value[name], [self])
            except Exception as err:  # the default converter's error, so unions try the next
                raise TypeError(f"Failed converting field {name} on dataclass {hint}") from err
            (given if init else later)[name] = converted
        obj = hint(**given)
        for name, converted in later.items():
            object.__setattr__(obj, name, converted)
        return obj


class CompactJSONPayloadConverter(JSONPlainPayloadConverter):
    """``json/plain`` as UTF-8, defaults left out; decodes like the default converter,
    a dataclass's field types resolved once per class."""

    def __init__(self) -> None:
        super().__init__(custom_type_converters=[CachedDataclassConverter()])

    def to_payload(self, value: Any) -> Payload | None:
        return Payload(
            metadata={"encoding": self.encoding.encode()},
            data=json.dumps(value, cls=CompactJSONEncoder, separators=(",", ":"),
                            sort_keys=True, ensure_ascii=False).encode(),
        )


class HotlinePayloadConverter(CompositePayloadConverter):
    """Temporal's default converters with :class:`CompactJSONPayloadConverter` for JSON."""

    def __init__(self) -> None:
        super().__init__(*(
            CompactJSONPayloadConverter() if isinstance(c, JSONPlainPayloadConverter) else c
            for c in DefaultPayloadConverter.default_encoding_payload_converters))


DATA_CONVERTER = dataclasses.replace(DataConverter.default,
                                     payload_converter_class=HotlinePayloadConverter)


async def connect_temporal(
    settings: Settings, *, runtime: Runtime | None = None,
    timeout: float | None = CONNECT_TIMEOUT_S,
) -> Client:
    """A Temporal client for ``settings`` (TLS included), bounded by ``timeout`` seconds.

    Args:
        settings: the process's settings (address, namespace, TLS).
        runtime: the process's Temporal runtime (metrics, logging), when it has one.
        timeout: seconds before :class:`TimeoutError`; ``None`` waits as long as it takes.
    """
    connecting = Client.connect(
        settings.temporal_address, namespace=settings.temporal_namespace,
        runtime=runtime, data_converter=DATA_CONVERTER, **temporal_connect_options(settings))
    if timeout is None:
        return await connecting
    return await asyncio.wait_for(connecting, timeout)
