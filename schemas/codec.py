"""Avro single-object encoding for every hotline event, decoded defensively.

Wire format (Avro spec, "Single-object encoding")::

    C3 01 | 8-byte little-endian CRC-64-AVRO fingerprint of the writer schema | binary body

The fingerprint names the writer schema, so a consumer needs no registry: it looks the
fingerprint up among the current schemas (``schemas/*.avsc``) and the older versions kept
in ``schemas/history/``, then reads the body with the writer schema and resolves it to the
*current* schema of the same full name, so new code reads old events.

Kafka input is untrusted. fastavro reads a fair share of corrupted bodies into records that
look valid, and stops early without complaint when bytes are left over. ``decode`` therefore
checks, in order: framing, known fingerprint, expected type, that fastavro reads the body
and consumes every byte, that the record fits the schema (``fastavro.validation``), and the
semantic rules (:mod:`schemas.validation`). Any failure is a ``DecodeError`` with one of
four reason codes; nothing else escapes, whatever the input.

What it cannot catch: corruption that yields another valid encoding (a flipped bit inside a
string, or a boolean byte 0x02 that fastavro reads as True). Kafka's record-batch CRC
already guards the transport; the checks here are against producer bugs and stray bytes.

Everything schema-related (parsing, fingerprints, rule plans) happens once, at import.
Importing reads the ``.avsc`` files next to this module and has no other side effect.
"""

from __future__ import annotations

import json
from collections.abc import Collection, Mapping
from dataclasses import dataclass
from io import BytesIO
from pathlib import Path
from typing import Any, Final, Literal, TypeAlias

from fastavro import schemaless_reader, schemaless_writer
from fastavro.schema import (
    fingerprint as _fastavro_fingerprint,
)
from fastavro.schema import (
    load_schema,
    parse_schema,
    to_parsing_canonical_form,
)
from fastavro.validation import ValidationError
from fastavro.validation import validate as _fastavro_validate

from schemas.validation import (
    Plan,
    check_array_items,
    compile_plan,
    has_plain_integer,
    record_problem,
    short_name,
)

__all__ = [
    "EVENT_TYPE_HEADER",
    "RECORD_NAMES",
    "DecodeError",
    "DecodeReason",
    "Decoded",
    "EncodeError",
    "decode",
    "encode",
    "fingerprint",
    "headers_for",
    "register_writer_schema",
]

DecodeReason: TypeAlias = Literal[
    "MALFORMED", "UNKNOWN_SCHEMA", "INVALID_RECORD", "UNEXPECTED_TYPE"
]

#: Kafka header that carries the record's full name (DESIGN.md, "The event contract").
EVENT_TYPE_HEADER: Final = "event-type"

_MARKER: Final = b"\xc3\x01"
_HEADER_SIZE: Final = len(_MARKER) + 8  # marker + fingerprint; the body follows
_SCHEMA_DIR: Final = Path(__file__).resolve().parent
_HISTORY_DIR: Final = _SCHEMA_DIR / "history"
# Error details end up in logs and on the DLQ; keep them readable, never a dump.
_MAX_DETAIL: Final = 300


class DecodeError(Exception):
    """Bytes that are not a usable hotline event.

    Attributes:
        reason: Machine-readable code, one of ``MALFORMED`` (not a well-formed
            single-object encoding), ``UNKNOWN_SCHEMA`` (fingerprint of no writer schema we
            know), ``INVALID_RECORD`` (well-formed, but the content breaks a rule) and
            ``UNEXPECTED_TYPE`` (a known event, but not one the caller accepts).
        detail: Human-readable explanation, e.g. ``"trailing bytes: 3 of 57 unread"``.
            It names fields but never quotes strings (they may be personal data); only
            out-of-range numbers and timestamps are shown.
    """

    def __init__(self, reason: DecodeReason, detail: str) -> None:
        super().__init__(f"{reason}: {detail}")
        self.reason: DecodeReason = reason
        self.detail = detail

    def __reduce__(self) -> tuple[type[DecodeError], tuple[DecodeReason, str]]:
        # Exception pickles its ``args`` (the joined message) by default, which would not
        # fit this two-argument constructor; errors may cross process boundaries.
        return (type(self), (self.reason, self.detail))


class EncodeError(ValueError):
    """A record that does not fit its schema or breaks a semantic rule; nothing was encoded."""


@dataclass(frozen=True, slots=True)
class Decoded:
    """A decoded, validated event.

    Attributes:
        name: Short record name, e.g. ``"ComplaintFiled"``.
        full_name: Full record name, e.g. ``"hotline.events.ComplaintFiled"``.
        record: The record in the shape of the *current* schema (defaults filled in for
            fields an older writer did not have); ``timestamp-millis`` fields are
            timezone-aware UTC datetimes.
        fingerprint: The 8-byte fingerprint of the schema the producer wrote with.
    """

    name: str
    full_name: str
    record: dict[str, Any]
    fingerprint: bytes


# --------------------------------------------------------------------------------------
# Schemas, compiled once.
# --------------------------------------------------------------------------------------


def _fingerprint_of(parsed: dict[str, Any]) -> tuple[bytes, str]:
    canonical = to_parsing_canonical_form(parsed)
    # fastavro renders CRC-64-AVRO as the hex of the little-endian bytes, the byte order
    # the single-object encoding puts on the wire.
    return bytes.fromhex(_fastavro_fingerprint(canonical, "CRC-64-AVRO")), canonical


@dataclass(frozen=True, slots=True)
class _Reader:
    """The current schema of one record type, with everything decode/encode needs."""

    name: str
    full_name: str
    schema: dict[str, Any]
    fingerprint: bytes
    header: bytes  # marker + fingerprint, the first 10 bytes of every encoding
    event_type: bytes
    plan: Plan
    field_names: frozenset[str]
    # Whether decode must run fastavro's validation: see _has_plain_integer.
    check_ranges: bool = True


@dataclass(frozen=True, slots=True)
class _Writer:
    """A schema events may have been written with, and the reader it resolves to."""

    schema: dict[str, Any]
    fingerprint: bytes
    canonical: str
    reader: _Reader
    current: bool  # the writer *is* the reader: no resolution step needed


def _load_readers() -> dict[str, _Reader]:
    readers: dict[str, _Reader] = {}
    for path in sorted(_SCHEMA_DIR.glob("*.avsc")):
        if json.loads(path.read_text(encoding="utf-8")).get("type") != "record":
            continue  # enums only exist to be referenced from records
        # load_schema resolves references to the other files in this directory.
        parsed = load_schema(str(path))
        if not isinstance(parsed, dict):
            raise ValueError(f"{path.name}: top-level schema must be a record")
        named = parsed["__named_schemas"]
        check_array_items(parsed, named, frozenset())
        full_name = parsed["name"]
        if path.name != f"{full_name}.avsc":
            raise ValueError(f"{path.name} defines {full_name}; name files by full name")
        name = short_name(full_name)
        if name in readers:
            raise ValueError(f"two record schemas share the short name {name!r}")
        fp, _ = _fingerprint_of(parsed)
        reader = _Reader(
            name=name,
            full_name=full_name,
            schema=parsed,
            fingerprint=fp,
            header=_MARKER + fp,
            event_type=full_name.encode(),
            plan=compile_plan(parsed, named, frozenset({full_name})),
            field_names=frozenset(field["name"] for field in parsed["fields"]),
            check_ranges=has_plain_integer(parsed, named, frozenset()),
        )
        readers[name] = reader
    return readers


_READERS: Final[dict[str, _Reader]] = _load_readers()
# Short and full names both work wherever a name is accepted.
_BY_NAME: Final[dict[str, _Reader]] = {
    **_READERS,
    **{reader.full_name: reader for reader in _READERS.values()},
}
_WRITERS: Final[dict[bytes, _Writer]] = {
    reader.fingerprint: _Writer(
        schema=reader.schema,
        fingerprint=reader.fingerprint,
        canonical=to_parsing_canonical_form(reader.schema),
        reader=reader,
        current=True,
    )
    for reader in _READERS.values()
}
# Writer schemas without logical types, built lazily for the rare error path only.
_PLAIN_WRITERS: dict[bytes, dict[str, Any]] = {}

#: Short names of every record schema in ``schemas/`` (enums excluded).
RECORD_NAMES: Final[frozenset[str]] = frozenset(_READERS)


def _reader_for(name: str) -> _Reader:
    reader = _BY_NAME.get(name)
    if reader is None:
        raise ValueError(f"unknown record {name!r}; known: {', '.join(sorted(RECORD_NAMES))}")
    return reader


def register_writer_schema(schema: dict[str, Any]) -> bytes:
    """Make events written with another (usually older) version of a schema readable.

    The schema must be self-contained (every named type defined inline) and describe a
    record whose full name has a current schema; decoding reads events written with it and
    resolves them to that current schema. Registering the same schema again is harmless.

    Args:
        schema: The writer schema as parsed JSON.

    Returns:
        Its 8-byte fingerprint, as it appears in the single-object encoding.

    Raises:
        ValueError: The schema does not parse, names no known record, or cannot be
            resolved to the current schema (a current field without default is missing).
    """
    try:
        parsed = parse_schema(schema)
    except Exception as exc:
        raise ValueError(f"writer schema does not parse: {exc}") from exc
    if not isinstance(parsed, dict) or parsed.get("type") != "record":
        raise ValueError("writer schema must be a record")
    full_name = parsed["name"]
    reader = _BY_NAME.get(full_name)
    if reader is None or reader.full_name != full_name:
        raise ValueError(f"no current schema named {full_name!r} to read it with")
    check_array_items(parsed, parsed["__named_schemas"], frozenset())
    written = {field["name"] for field in parsed["fields"]}
    for field in reader.schema["fields"]:
        names = {field["name"], *field.get("aliases", ())}
        if not names & written and "default" not in field:
            raise ValueError(
                f"{reader.name}.{field['name']} has no default and the writer lacks it"
            )
    fp, canonical = _fingerprint_of(parsed)
    # An equal canonical form means an identical binary layout; keep the first (for the
    # current schema that is the fast path without resolution).
    if fp not in _WRITERS:
        _WRITERS[fp] = _Writer(
            schema=parsed, fingerprint=fp, canonical=canonical, reader=reader, current=False
        )
    return fp


def _load_history() -> None:
    for path in sorted(_HISTORY_DIR.glob("*.avsc")):
        try:
            register_writer_schema(json.loads(path.read_text(encoding="utf-8")))
        except ValueError as exc:
            raise ValueError(f"schemas/history/{path.name}: {exc}") from exc


_load_history()


def fingerprint(name: str) -> bytes:
    """The 8-byte CRC-64-AVRO fingerprint of a record's current schema.

    Args:
        name: Short (``"ComplaintFiled"``) or full (``"hotline.events.ComplaintFiled"``).

    Raises:
        ValueError: Unknown record name.
    """
    return _reader_for(name).fingerprint


def headers_for(name: str) -> list[tuple[str, bytes]]:
    """Kafka headers for an event: ``[("event-type", b"hotline.events.<Name>")]``.

    Args:
        name: Short or full record name.

    Raises:
        ValueError: Unknown record name.
    """
    return [(EVENT_TYPE_HEADER, _reader_for(name).event_type)]


# --------------------------------------------------------------------------------------
# Encode and decode.
# --------------------------------------------------------------------------------------


def _describe(exc: BaseException) -> str:
    text = f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
    return text if len(text) <= _MAX_DETAIL else text[: _MAX_DETAIL - 1] + "…"


def _schema_problem(record: Mapping[str, Any], reader: _Reader) -> str | None:
    """Why fastavro.validation rejects the record (``Name.field: …``), or None if it fits."""
    # raise_errors=True costs ~15x more (it raises inside every union branch it tries), so
    # ask yes/no first and only collect the explanation on failure.
    if _fastavro_validate(record, reader.schema, raise_errors=False):
        return None
    try:
        _fastavro_validate(record, reader.schema, raise_errors=True)
    except ValidationError as exc:
        problems = []
        for error in exc.errors:
            # fastavro names fields by the record's full name; ours are short.
            field = str(error.field).replace(reader.full_name, reader.name, 1)
            # The type only, never the value: it may be personal data.
            what = (
                "missing or null, but required"
                if error.datum is None
                else f"{type(error.datum).__name__} value does not fit the schema"
            )
            problems.append(f"{field}: {what}")
        if problems:
            # A union reports once per branch tried; say it once.
            return "; ".join(dict.fromkeys(problems))
    except Exception as exc:
        return f"{reader.name}: {_describe(exc)}"
    return f"{reader.name}: does not fit the schema"


def encode(name: str, record: Mapping[str, Any]) -> bytes:
    """Encode a record with its current schema in Avro single-object encoding.

    The record gets the same validation ``decode`` applies, so whatever this produces,
    ``decode`` accepts. Fields with a schema default may be left out.

    Args:
        name: Short or full record name.
        record: Field values; ``timestamp-millis`` fields take timezone-aware datetimes
            or epoch milliseconds.

    Returns:
        ``C3 01`` + 8-byte fingerprint + Avro binary body.

    Raises:
        EncodeError: Unknown name, unknown fields, a value that does not fit the schema,
            a naive datetime, or a broken semantic rule.
    """
    reader = _BY_NAME.get(name)
    if reader is None:
        raise EncodeError(f"unknown record {name!r}; known: {', '.join(sorted(RECORD_NAMES))}")
    if not isinstance(record, Mapping):
        raise EncodeError(f"{reader.name}: expected a mapping, got {type(record).__name__}")
    # A copy: the caller's mapping may change under us, and fastavro wants a real dict.
    values = dict(record)
    unknown = values.keys() - reader.field_names
    if unknown:
        # fastavro would silently drop them, hiding typos in optional field names.
        raise EncodeError(f"{reader.name}: unknown field(s) {', '.join(sorted(unknown))}")
    problem = _schema_problem(values, reader)
    if problem is not None:
        raise EncodeError(problem)
    problem = record_problem(reader.name, reader.plan, values)
    if problem is not None:
        raise EncodeError(problem)
    buffer = BytesIO()
    buffer.write(reader.header)
    try:
        schemaless_writer(buffer, reader.schema, values)
    except Exception as exc:
        raise EncodeError(f"{reader.name}: {_describe(exc)}") from exc
    return buffer.getvalue()


def _plain_writer(writer: _Writer) -> dict[str, Any]:
    """The writer schema with logical types stripped (its canonical form)."""
    plain = _PLAIN_WRITERS.get(writer.fingerprint)
    if plain is None:
        parsed = parse_schema(json.loads(writer.canonical))
        if not isinstance(parsed, dict):  # a record schema parses to a dict
            raise TypeError("writer schema is not a record")
        plain = _PLAIN_WRITERS[writer.fingerprint] = parsed
    return plain


def _out_of_range(data: bytes, writer: _Writer, exc: OverflowError) -> DecodeError:
    """Classify a timestamp too far out for ``datetime`` (fastavro overflows).

    Well-formed bytes with an absurd timestamp are an INVALID_RECORD like any timestamp
    out of range; garbage that happens to overflow is MALFORMED. Reading again without
    logical types tells the two apart; this only runs on the error path.
    """
    buffer = BytesIO(data)
    buffer.seek(_HEADER_SIZE)
    try:
        raw = schemaless_reader(buffer, _plain_writer(writer), None)
    except Exception:
        return DecodeError("MALFORMED", _describe(exc))
    if buffer.tell() != len(data) or not isinstance(raw, dict):
        return DecodeError("MALFORMED", _describe(exc))
    reader = writer.reader
    try:
        # The raw record has the *writer's* field types, which the rules may not expect.
        problem = record_problem(reader.name, reader.plan, raw)
    except Exception:
        problem = None
    if problem is None:
        return DecodeError("MALFORMED", _describe(exc))
    return DecodeError("INVALID_RECORD", problem)


def _read_body(data: bytes, writer: _Writer) -> dict[str, Any]:
    """Read the body strictly with the writer schema, then resolve it to the reader's."""
    size = len(data)
    buffer = BytesIO(data)
    buffer.seek(_HEADER_SIZE)
    try:
        # The writer schema alone, with no resolution: every byte is read and checked.
        # (With a reader schema fastavro *skips* fields the reader lacks, and its skip
        # functions do not notice when the payload ends early.) A length prefix larger
        # than the payload cannot allocate: BytesIO.read() returns at most what is left,
        # and fastavro then fails on the short read.
        record = schemaless_reader(buffer, writer.schema, None)
    except OverflowError as exc:
        raise _out_of_range(data, writer, exc) from exc
    except Exception as exc:
        raise DecodeError("MALFORMED", _describe(exc)) from exc
    if not isinstance(record, dict):
        raise DecodeError("MALFORMED", f"body is a {type(record).__name__}, not a record")
    unread = size - buffer.tell()
    if unread:
        raise DecodeError("MALFORMED", f"trailing bytes: {unread} of {size} unread")

    if writer.current:
        return record
    buffer.seek(_HEADER_SIZE)
    try:
        resolved = schemaless_reader(buffer, writer.schema, writer.reader.schema)
    except Exception as exc:
        # The bytes are sound (read above); the values do not map onto the current
        # schema, e.g. an enum symbol it dropped without a default.
        raise DecodeError(
            "INVALID_RECORD",
            f"cannot be read as the current {writer.reader.name}: {_describe(exc)}",
        ) from exc
    if not isinstance(resolved, dict):
        raise DecodeError("MALFORMED", f"body is a {type(resolved).__name__}, not a record")
    return resolved


def decode(data: bytes, expected: Collection[str] | None = None) -> Decoded:
    """Decode and validate one Kafka message value.

    Args:
        data: The message value (single-object encoding).
        expected: Record names the caller accepts (short or full); None accepts any.

    Returns:
        The validated record, resolved to the current schema of its type.

    Raises:
        DecodeError: For any input that is not a valid event of an expected type; its
            ``reason`` says which check failed. No other exception escapes.
    """
    if type(data) is not bytes:
        if not isinstance(data, (bytearray, memoryview)):
            raise DecodeError("MALFORMED", f"expected bytes, got {type(data).__name__}")
        try:
            data = bytes(data)
        except Exception as exc:  # e.g. a released or non-contiguous memoryview
            raise DecodeError("MALFORMED", _describe(exc)) from exc

    size = len(data)
    if size < _HEADER_SIZE:
        raise DecodeError(
            "MALFORMED", f"too short: {size} bytes, the header alone is {_HEADER_SIZE}"
        )
    if not data.startswith(_MARKER):
        raise DecodeError("MALFORMED", f"bad marker {data[:2].hex()}, expected c301")
    writer = _WRITERS.get(data[2:_HEADER_SIZE])
    if writer is None:
        raise DecodeError(
            "UNKNOWN_SCHEMA", f"no writer schema has fingerprint {data[2:_HEADER_SIZE].hex()}"
        )
    reader = writer.reader
    if expected is not None:
        if isinstance(expected, str):  # "in" on a string would match substrings
            expected = (expected,)
        if reader.name not in expected and reader.full_name not in expected:
            allowed = ", ".join(sorted(map(str, expected)))
            raise DecodeError("UNEXPECTED_TYPE", f"{reader.name} is not one of {allowed}")

    record = _read_body(data, writer)

    # The strict read typed every value; only varint ranges are left to check.
    problem = _schema_problem(record, reader) if reader.check_ranges else None
    if problem is not None:
        # e.g. an "int" field whose varint decoded beyond 32 bits.
        raise DecodeError("INVALID_RECORD", problem)
    problem = record_problem(reader.name, reader.plan, record)
    if problem is not None:
        raise DecodeError("INVALID_RECORD", problem)
    return Decoded(
        name=reader.name,
        full_name=reader.full_name,
        record=record,
        fingerprint=writer.fingerprint,
    )
