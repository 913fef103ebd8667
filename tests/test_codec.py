"""The event codec: wire format, golden bytes, schema evolution and hostile input.

Golden vectors live in ``tests/data/golden`` (see its README). They pin the exact bytes on
the wire; if a schema change alters them on purpose, the previous schema version belongs
in ``schemas/history/`` first. Regenerate with ``HOTLINE_REGENERATE_GOLDEN=1``.
"""

from __future__ import annotations

import json
import math
import os
import pickle
import random
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta, timezone
from io import BytesIO
from pathlib import Path
from typing import Any

import fastavro
import pytest
from fastavro.schema import load_schema, to_parsing_canonical_form
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from schemas import (
    RECORD_NAMES,
    Decoded,
    DecodeError,
    EncodeError,
    decode,
    encode,
    fingerprint,
    headers_for,
    register_writer_schema,
)

ROOT = Path(__file__).resolve().parent.parent
SCHEMA_DIR = ROOT / "schemas"
DATA = Path(__file__).resolve().parent / "data"
GOLDEN_DIR = DATA / "golden"
OLD_SCHEMAS = DATA / "old_schemas"
MARKER = b"\xc3\x01"
REASONS = {"MALFORMED", "UNKNOWN_SCHEMA", "INVALID_RECORD", "UNEXPECTED_TYPE"}
AT = datetime(2025, 6, 1, 8, 30, tzinfo=UTC)

# --- schema helpers, independent of the module under test ------------------------------

RAW: dict[str, dict[str, Any]] = {
    path.name.removesuffix(".avsc"): json.loads(path.read_text(encoding="utf-8"))
    for path in SCHEMA_DIR.glob("*.avsc")
}
RECORD_FILES = {full.rsplit(".", 1)[1] for full, raw in RAW.items() if raw["type"] == "record"}


def _raw(name: str) -> dict[str, Any]:
    return RAW[f"hotline.events.{name}"]


def _resolve(avro_type: Any) -> Any:
    return RAW.get(avro_type, avro_type) if isinstance(avro_type, str) else avro_type


def _non_null(avro_type: Any) -> Any:
    if isinstance(avro_type, list):
        (branch,) = [b for b in avro_type if b != "null"]
        return _resolve(branch)
    return _resolve(avro_type)


def _is_timestamp(avro_type: Any) -> bool:
    return isinstance(avro_type, dict) and avro_type.get("logicalType") == "timestamp-millis"


def _defaults(name: str) -> dict[str, Any]:
    return {f["name"]: f["default"] for f in _raw(name)["fields"] if "default" in f}


def _from_json(name: str, obj: dict[str, Any]) -> dict[str, Any]:
    """Golden JSON -> record: ISO strings become datetimes, hex strings bytes."""
    record = dict(obj)
    for field in _raw(name)["fields"]:
        value = record.get(field["name"])
        if value is None:
            continue
        avro_type = _non_null(field["type"])
        if _is_timestamp(avro_type):
            record[field["name"]] = datetime.fromisoformat(value)
        elif avro_type == "bytes":
            record[field["name"]] = bytes.fromhex(value)
    return record


_SCHEMA_CACHE: dict[str, Any] = {}


def _fastavro_schema(name: str) -> Any:
    """The current schema as fastavro loads it, without going through the codec."""
    if name not in _SCHEMA_CACHE:
        _SCHEMA_CACHE[name] = load_schema(str(SCHEMA_DIR / f"hotline.events.{name}.avsc"))
    return _SCHEMA_CACHE[name]


def _bare_encode(name: str, record: dict[str, Any], schema: Any = None) -> bytes:
    """Single-object bytes built with fastavro alone: no validation, any content."""
    body = BytesIO()
    fastavro.schemaless_writer(body, schema or _fastavro_schema(name), record)
    return MARKER + fingerprint(name) + body.getvalue()


def _varint(n: int) -> bytes:
    """Avro zig-zag varint, for hand-made hostile payloads."""
    z = (n << 1) ^ (n >> 63)
    z &= (1 << 64) - 1
    out = bytearray()
    while z >= 0x80:
        out.append((z & 0x7F) | 0x80)
        z >>= 7
    out.append(z)
    return bytes(out)


# --- CRC-64-AVRO, straight from the spec's reference algorithm --------------------------

_CRC_EMPTY = 0xC15D213AA4D7A795


def _crc64_avro(data: bytes) -> int:
    table = []
    for i in range(256):
        fp = i
        for _ in range(8):
            fp = (fp >> 1) ^ (_CRC_EMPTY & -(fp & 1))
        table.append(fp)
    fp = _CRC_EMPTY
    for byte in data:
        fp = (fp >> 8) ^ table[(fp ^ byte) & 0xFF]
    return fp


def _signed(value: int) -> int:
    return value - (1 << 64) if value >= 1 << 63 else value


@pytest.mark.parametrize(
    ("canonical", "java_fingerprint"),
    [
        # From apache/avro share/test/data/schema-tests.txt (Java's signed longs).
        ('"null"', 7195948357588979594),
        ('"int"', 8247732601305521295),
        ('{"name":"foo","type":"record","fields":[]}', -4824392279771201922),
        ('{"name":"x.y.z.foo","type":"enum","symbols":["A1","A2"]}', -4448647247586288245),
    ],
)
def test_reference_crc_matches_the_avro_project_vectors(
    canonical: str, java_fingerprint: int
) -> None:
    assert _signed(_crc64_avro(canonical.encode())) == java_fingerprint


def test_fingerprint_is_little_endian_crc64_of_the_canonical_form() -> None:
    canonical = to_parsing_canonical_form(_fastavro_schema("ComplaintFiled"))
    assert canonical.startswith('{"name":"hotline.events.ComplaintFiled","type":"record"')
    expected = _crc64_avro(canonical.encode()).to_bytes(8, "little")
    assert fingerprint("ComplaintFiled") == expected
    assert fingerprint("hotline.events.ComplaintFiled") == expected
    # Pinned: if this changes, ComplaintFiled changed on the wire. Keep the previous
    # version in schemas/history/ so events already on the topics stay readable.
    assert expected.hex() == "8f3f9a1cc1214dad"


@pytest.mark.parametrize("name", sorted(RECORD_FILES))
def test_every_fingerprint_matches_the_reference_crc(name: str) -> None:
    canonical = to_parsing_canonical_form(_fastavro_schema(name))
    assert fingerprint(name) == _crc64_avro(canonical.encode()).to_bytes(8, "little")


# --- names and headers --------------------------------------------------------------------


def test_record_names_are_exactly_the_record_schemas() -> None:
    assert RECORD_NAMES == RECORD_FILES
    assert "Channel" not in RECORD_NAMES  # enums are not records


def test_headers_carry_the_full_name() -> None:
    assert headers_for("ComplaintFiled") == [("event-type", b"hotline.events.ComplaintFiled")]
    assert headers_for("hotline.events.DeadLetter") == [
        ("event-type", b"hotline.events.DeadLetter")
    ]


@pytest.mark.parametrize("call", [fingerprint, headers_for])
def test_unknown_names_are_refused(call: Callable[[str], object]) -> None:
    with pytest.raises(ValueError, match="unknown record 'Channel'"):
        call("Channel")


# --- golden vectors -------------------------------------------------------------------------

GOLDEN = sorted(GOLDEN_DIR.glob("*.json"))
REGENERATE = os.environ.get("HOTLINE_REGENERATE_GOLDEN") == "1"


def _golden(path: Path) -> tuple[str, dict[str, Any], Path]:
    name = path.name.split(".")[0]
    record = _from_json(name, json.loads(path.read_text(encoding="utf-8")))
    return name, record, path.with_suffix(".hex")


def test_golden_set_covers_the_contract() -> None:
    names = {path.name.split(".")[0] for path in GOLDEN}
    assert names >= {
        "ComplaintFiled",
        "DispatchSigned",
        "HandlingCompleted",
        "CallbackResult",
        "DispatchIssued",
        "LifecycleEvent",
        "DeadLetter",
    }
    assert {p.stem for p in GOLDEN} >= {"ComplaintFiled.full", "ComplaintFiled.minimal"}


@pytest.mark.parametrize("path", GOLDEN, ids=lambda p: p.stem)
def test_golden_encoding_is_byte_exact(path: Path) -> None:
    name, record, hex_path = _golden(path)
    encoded = encode(name, record)
    if REGENERATE:
        hex_path.write_text(encoded.hex() + "\n", encoding="ascii")
        pytest.skip("golden vector regenerated")
    assert encoded.hex() == hex_path.read_text(encoding="ascii").strip()


@pytest.mark.parametrize("path", GOLDEN, ids=lambda p: p.stem)
def test_golden_bytes_decode_to_the_record(path: Path) -> None:
    name, record, hex_path = _golden(path)
    decoded = decode(bytes.fromhex(hex_path.read_text(encoding="ascii")))
    assert decoded == Decoded(
        name=name,
        full_name=f"hotline.events.{name}",
        record=_defaults(name) | record,
        fingerprint=fingerprint(name),
    )


@pytest.mark.parametrize("path", GOLDEN, ids=lambda p: p.stem)
def test_golden_bytes_agree_with_plain_fastavro_and_the_reference_crc(path: Path) -> None:
    """The same bytes, taken apart without the codec."""
    name, record, hex_path = _golden(path)
    data = bytes.fromhex(hex_path.read_text(encoding="ascii"))
    schema = _fastavro_schema(name)
    assert data[:2] == MARKER
    assert data[2:10] == _crc64_avro(to_parsing_canonical_form(schema).encode()).to_bytes(
        8, "little"
    )
    body = BytesIO(data[10:])
    assert fastavro.schemaless_reader(body, schema, None) == _defaults(name) | record
    assert body.tell() == len(data) - 10


# --- round trip of every record type -------------------------------------------------------


def _sample(avro_type: Any, field: str, full: bool) -> Any:
    """A value that satisfies the schema and the semantic rules."""
    avro_type = _resolve(avro_type)
    if isinstance(avro_type, list):
        return _sample(_non_null(avro_type), field, full) if full else None
    if _is_timestamp(avro_type):
        return AT + timedelta(milliseconds=123)
    kind = avro_type["type"] if isinstance(avro_type, dict) else avro_type
    samples: dict[str, Callable[[], Any]] = {
        "string": lambda: f"{field}-1",
        "int": lambda: 5,
        "long": lambda: 7,
        "double": lambda: 45.5,
        "boolean": lambda: True,
        "bytes": lambda: b"\x00\xff",
        "enum": lambda: avro_type["symbols"][-1],
        "array": lambda: [_sample(avro_type["items"], field, full)],
        "map": lambda: {"k": _sample(avro_type["values"], field, full)},
        # Nested records always in full: the expected values only merge top-level defaults.
        "record": lambda: _sample_record(avro_type, True),
    }
    return samples[kind]()


def _sample_record(schema: dict[str, Any], full: bool) -> dict[str, Any]:
    return {
        f["name"]: _sample(f["type"], f["name"], full)
        for f in schema["fields"]
        if full or "default" not in f
    }


@pytest.mark.parametrize("full", [True, False], ids=["all-fields", "required-only"])
@pytest.mark.parametrize("name", sorted(RECORD_FILES))
def test_every_record_type_round_trips(name: str, full: bool) -> None:
    record = _sample_record(_raw(name), full)
    data = encode(name, record)
    assert data[:10] == MARKER + fingerprint(name)
    decoded = decode(data)
    assert (decoded.name, decoded.full_name) == (name, f"hotline.events.{name}")
    assert decoded.fingerprint == fingerprint(name)
    assert decoded.record == _defaults(name) | record
    assert encode(f"hotline.events.{name}", decoded.record) == data


def test_timestamps_come_back_as_aware_utc_and_accept_epoch_millis() -> None:
    at_ms = int((AT - datetime(1970, 1, 1, tzinfo=UTC)).total_seconds() * 1000)
    record = {**_sample_record(_raw("DispatchSigned"), True), "at": at_ms}
    decoded = decode(encode("DispatchSigned", record))
    assert decoded.record["at"] == AT and decoded.record["at"].tzinfo is not None
    # Another zone is the same instant.
    plus8 = AT.astimezone(timezone(timedelta(hours=8)))
    assert plus8.hour == 16
    assert encode("DispatchSigned", {**record, "at": plus8}) == encode("DispatchSigned", record)


# --- encode refuses what decode would refuse -------------------------------------------------


def _filed(**changes: Any) -> dict[str, Any]:
    return {**_sample_record(_raw("ComplaintFiled"), True), **changes}


@pytest.mark.parametrize(
    ("name", "record", "message"),
    [
        ("Nope", {}, "unknown record 'Nope'"),
        ("ComplaintFiled", _filed(filed_at=datetime(2025, 6, 1, 8, 30)), "naive datetime"),
        ("ComplaintFiled", _filed(compaint_id="x"), "unknown field(s) compaint_id"),
        ("ComplaintFiled", _filed(channel="FAX"), "ComplaintFiled.channel"),
        ("ComplaintFiled", _filed(anonymous="no"), "ComplaintFiled.anonymous"),
        (
            "ComplaintFiled",
            {"event_id": "e-1"},
            "ComplaintFiled.complaint_id: missing or null, but required",
        ),
        ("ComplaintFiled", _filed(attachments="a"), "ComplaintFiled.attachments: str value"),
        ("ComplaintFiled", _filed(complaint_id=""), "complaint_id: must not be empty"),
        ("ComplaintFiled", _filed(latitude=200.0), "latitude: 200.0 is outside"),
    ],
)
def test_encode_refuses_bad_records(name: str, record: dict[str, Any], message: str) -> None:
    with pytest.raises(EncodeError) as caught:
        encode(name, record)
    assert message in str(caught.value)
    assert isinstance(caught.value, ValueError)


def test_encode_error_messages_never_echo_personal_data() -> None:
    with pytest.raises(EncodeError) as caught:
        encode("ComplaintFiled", _filed(caller_phone=13800001111))
    assert "13800001111" not in str(caught.value)
    assert str(caught.value) == ("ComplaintFiled.caller_phone: int value does not fit the schema")


# --- semantic rules, for encode and for valid Avro that arrives anyway --------------------


def _extension(**changes: Any) -> dict[str, Any]:
    return {**_sample_record(_raw("ExtensionRequested"), True), **changes}


def _ranking(**entry_changes: Any) -> dict[str, Any]:
    record = _sample_record(_raw("MonthlyRanking"), True)
    record["entries"] = [record["entries"][0], {**record["entries"][0], **entry_changes}]
    return record


INVALID: list[tuple[str, dict[str, Any], str]] = [
    ("ComplaintFiled", _filed(complaint_id=""), "ComplaintFiled.complaint_id: must not be empty"),
    ("ComplaintFiled", _filed(event_id=" e-1"), "event_id: has leading or trailing whitespace"),
    ("ComplaintFiled", _filed(complaint_id="c\n1"), "complaint_id: contains control"),
    ("ComplaintFiled", _filed(complaint_id="c\u200b1"), "complaint_id: contains control"),
    ("ComplaintFiled", _filed(complaint_id="c" * 129), "complaint_id: longer than 128"),
    ("ComplaintFiled", _filed(content=""), "ComplaintFiled.content: must not be blank"),
    ("ComplaintFiled", _filed(content=" \n "), "ComplaintFiled.content: must not be blank"),
    ("ComplaintFiled", _filed(content="字" * 10_001), "content: longer than 10000"),
    ("ComplaintFiled", _filed(content="a\x00b"), "ComplaintFiled.content: contains a NUL"),
    ("ComplaintFiled", _filed(address="a\x00b"), "ComplaintFiled.address: contains a NUL"),
    ("ComplaintFiled", _filed(attachments=["ok", "a\x00"]), "attachments[1]: contains a NUL"),
    ("ComplaintFiled", _filed(latitude=200.0), "ComplaintFiled.latitude: 200.0 is outside"),
    ("ComplaintFiled", _filed(latitude=math.nan), "ComplaintFiled.latitude: nan is outside"),
    ("ComplaintFiled", _filed(longitude=-180.5), "longitude: -180.5 is outside"),
    (
        "ComplaintFiled",
        _filed(filed_at=datetime(1999, 12, 31, 23, 59, tzinfo=UTC)),
        "ComplaintFiled.filed_at: 1999-12-31T23:59:00+00:00 is outside",
    ),
    ("ComplaintFiled", _filed(filed_at=datetime(2100, 1, 1, tzinfo=UTC)), "filed_at: 2100"),
    ("ExtensionRequested", _extension(extra_days=0), "ExtensionRequested.extra_days: 0 is"),
    ("ExtensionRequested", _extension(extra_days=61), "ExtensionRequested.extra_days: 61 is"),
    ("MonthlyRanking", _ranking(unit_id=""), "MonthlyRanking.entries[1].unit_id: must not"),
    (
        "LifecycleEvent",
        {**_sample_record(_raw("LifecycleEvent"), True), "attributes": {"k": "v\x00"}},
        "LifecycleEvent.attributes['k']: contains a NUL",
    ),
]


@pytest.mark.parametrize(("name", "record", "message"), INVALID, ids=[m for *_, m in INVALID])
def test_encode_applies_the_semantic_rules(name: str, record: dict[str, Any], message: str) -> None:
    with pytest.raises(EncodeError) as caught:
        encode(name, record)
    assert message in str(caught.value)


@pytest.mark.parametrize(("name", "record", "message"), INVALID, ids=[m for *_, m in INVALID])
def test_decode_rejects_valid_avro_that_breaks_a_rule(
    name: str, record: dict[str, Any], message: str
) -> None:
    with pytest.raises(DecodeError) as caught:
        decode(_bare_encode(name, record))
    assert caught.value.reason == "INVALID_RECORD"
    assert message in caught.value.detail


def test_optional_fields_are_only_checked_when_present() -> None:
    record = _filed(latitude=None, longitude=None)
    assert decode(encode("ComplaintFiled", record)).record["latitude"] is None
    notice = _sample_record(_raw("SupervisionNotice"), False)  # dispatch_id left out
    assert decode(encode("SupervisionNotice", notice)).record["dispatch_id"] is None


def test_int_beyond_32_bits_is_invalid() -> None:
    data = _bare_encode("ExtensionRequested", _extension(extra_days=1 << 40))
    with pytest.raises(DecodeError) as caught:
        decode(data)
    assert caught.value.reason == "INVALID_RECORD"
    assert "ExtensionRequested.extra_days" in caught.value.detail


# --- each DecodeError reason -----------------------------------------------------------------


def _signed_reply() -> bytes:
    return encode("DispatchSigned", _sample_record(_raw("DispatchSigned"), True))


def _reason(data: Any, expected: Any = None) -> DecodeError:
    with pytest.raises(DecodeError) as caught:
        decode(data, expected)
    error = caught.value
    assert error.reason in REASONS
    assert str(error) == f"{error.reason}: {error.detail}"
    return error


def test_bad_marker_is_malformed() -> None:
    error = _reason(b"\xc3\x02" + _signed_reply()[2:])
    assert (error.reason, error.detail) == ("MALFORMED", "bad marker c302, expected c301")
    assert _reason(b'{"json": true}').reason == "MALFORMED"


@pytest.mark.parametrize("data", [b"", b"\xc3", b"\xc3\x01" + bytes(7)])
def test_shorter_than_a_header_is_malformed(data: bytes) -> None:
    error = _reason(data)
    assert error.reason == "MALFORMED" and error.detail.startswith("too short")


@pytest.mark.parametrize("data", [None, "c301", 42, [1, 2]])
def test_non_bytes_are_malformed(data: Any) -> None:
    assert _reason(data).reason == "MALFORMED"


def test_bytearray_and_memoryview_are_accepted() -> None:
    data = _signed_reply()
    assert decode(bytearray(data)) == decode(memoryview(data)) == decode(data)


@pytest.mark.parametrize("cut", [1, 2, 5, 20])
def test_truncated_is_malformed(cut: int) -> None:
    data = _signed_reply()
    assert _reason(data[:-cut]).reason == "MALFORMED"


def test_trailing_bytes_are_malformed() -> None:
    data = _signed_reply() + b"\x00\x01\x02"
    error = _reason(data)
    assert (error.reason, error.detail) == (
        "MALFORMED",
        f"trailing bytes: 3 of {len(data)} unread",
    )


def test_unknown_fingerprint() -> None:
    data = _signed_reply()
    error = _reason(data[:2] + bytes(8) + data[10:])
    assert (error.reason, error.detail) == (
        "UNKNOWN_SCHEMA",
        "no writer schema has fingerprint 0000000000000000",
    )


def test_empty_complaint_id_in_valid_avro_is_invalid() -> None:
    record = {**_sample_record(_raw("DispatchSigned"), True), "complaint_id": ""}
    error = _reason(_bare_encode("DispatchSigned", record))
    assert (error.reason, error.detail) == (
        "INVALID_RECORD",
        "DispatchSigned.complaint_id: must not be empty",
    )


def test_latitude_200_in_valid_avro_is_invalid() -> None:
    error = _reason(_bare_encode("ComplaintFiled", _filed(latitude=200.0)))
    assert (error.reason, error.detail) == (
        "INVALID_RECORD",
        "ComplaintFiled.latitude: 200.0 is outside [-90.0, 90.0]",
    )


def test_unexpected_type() -> None:
    data = _signed_reply()
    error = _reason(data, {"ComplaintFiled", "ComplaintUrged"})
    assert (error.reason, error.detail) == (
        "UNEXPECTED_TYPE",
        "DispatchSigned is not one of ComplaintFiled, ComplaintUrged",
    )
    assert decode(data, {"DispatchSigned"}).name == "DispatchSigned"
    assert decode(data, ["hotline.events.DispatchSigned"]).name == "DispatchSigned"
    assert decode(data, "DispatchSigned").name == "DispatchSigned"
    assert _reason(data, "Signed").reason == "UNEXPECTED_TYPE"  # no substring match


def test_decode_error_survives_pickling() -> None:
    error = _reason(_signed_reply() + b"\x00")
    copy = pickle.loads(pickle.dumps(error))
    assert (copy.reason, copy.detail, str(copy)) == (error.reason, error.detail, str(error))


# --- giant lengths and counts: no allocation, no hang -----------------------------------------


def _timed_reason(data: bytes) -> DecodeError:
    start = time.perf_counter()
    error = _reason(data)
    assert time.perf_counter() - start < 1.0
    return error


@pytest.mark.parametrize("length", [1 << 62, (1 << 63) - 1, 1 << 31, 200, -1, -(1 << 62)])
def test_string_length_beyond_the_payload_is_malformed(length: int) -> None:
    data = MARKER + fingerprint("DispatchSigned") + _varint(length) + b"evt-1"
    assert _timed_reason(data).reason == "MALFORMED"


def test_huge_array_count_is_malformed() -> None:
    record = {**_sample_record(_raw("ComplaintSupplemented"), True), "attachments": []}
    data = encode("ComplaintSupplemented", record)
    assert data.endswith(b"\x00")  # the empty array's terminating block
    for count in (1 << 62, -(1 << 62), 1 << 20):
        assert _timed_reason(data[:-1] + _varint(count) + b"\x02a").reason == "MALFORMED"


def test_huge_map_count_is_malformed() -> None:
    # attributes (a map) is followed by three empty ledger fields (null, [], null) and
    # no review candidates (null).
    record = {**_sample_record(_raw("LifecycleEvent"), True), "attributes": {},
              "case_row": None, "dispatch_rows": [], "evaluation_row": None,
              "candidates": None}
    data = encode("LifecycleEvent", record)
    assert data.endswith(b"\x00" * 5)
    assert _timed_reason(data[:-5] + _varint(1 << 62)).reason == "MALFORMED"


def test_overlong_varint_is_malformed() -> None:
    data = MARKER + fingerprint("DispatchSigned") + b"\xff" * 40
    assert _timed_reason(data).reason == "MALFORMED"


def test_timestamp_beyond_datetime_range() -> None:
    """fastavro overflows building the datetime; sound bytes are still just out of range."""
    record = {**_sample_record(_raw("DispatchSigned"), True), "at": 1 << 60}
    data = _bare_encode("DispatchSigned", record)
    error = _reason(data)
    assert error.reason == "INVALID_RECORD"
    assert error.detail.startswith("DispatchSigned.at: 1152921504606846976 ms since the epoch")
    # The same overflow in bytes that are broken anyway stays MALFORMED.
    assert _reason(data + b"\x00").reason == "MALFORMED"
    assert _reason(data[:-1]).reason == "MALFORMED"


# --- schema evolution --------------------------------------------------------------------------

OLD_FILED = OLD_SCHEMAS / "hotline.events.ComplaintFiled.v1.avsc"


@pytest.fixture(scope="module")
def old_filed() -> tuple[Any, bytes]:
    raw = json.loads(OLD_FILED.read_text(encoding="utf-8"))
    fp = register_writer_schema(raw)
    assert register_writer_schema(raw) == fp  # idempotent
    return fastavro.parse_schema(raw), fp


def _old_bytes(schema: Any, fp: bytes, **changes: Any) -> bytes:
    record = {
        "event_id": "evt-old-1",
        "complaint_id": "BJ20230101-0001",
        "filed_at": datetime(2023, 1, 1, 9, 0, tzinfo=UTC),
        "channel": "PHONE",
        "content": "暖气不热",
        "caller_phone": "13800002222",
        "latitude": 39.9,
        "longitude": 116.4,
        "urgency_hint": "T7D",
        "operator_id": "op-17",
        **changes,
    }
    body = BytesIO()
    fastavro.schemaless_writer(body, schema, record)
    return MARKER + fp + body.getvalue()


def test_old_writer_is_read_with_the_current_schema(old_filed: tuple[Any, bytes]) -> None:
    schema, fp = old_filed
    assert fp != fingerprint("ComplaintFiled")
    assert fp == _crc64_avro(to_parsing_canonical_form(schema).encode()).to_bytes(8, "little")
    decoded = decode(_old_bytes(schema, fp), {"ComplaintFiled"})
    assert (decoded.name, decoded.fingerprint) == ("ComplaintFiled", fp)
    record = decoded.record
    # Fields the old writer did not have: the current defaults.
    assert record["kind"] is None
    assert record["answered_directly"] is False
    assert record["attachments"] == []
    # A field the current schema dropped is skipped; the rest comes through.
    assert "operator_id" not in record
    assert set(record) == set(_defaults("ComplaintFiled")) | {
        "event_id",
        "complaint_id",
        "filed_at",
        "channel",
        "content",
    }
    assert record["filed_at"] == datetime(2023, 1, 1, 9, 0, tzinfo=UTC)
    assert (record["urgency_hint"], record["caller_phone"]) == ("T7D", "13800002222")
    # Re-encoding writes the current version.
    assert encode("ComplaintFiled", record)[2:10] == fingerprint("ComplaintFiled")


def test_old_enum_symbol_falls_back_to_the_current_default(old_filed: tuple[Any, bytes]) -> None:
    schema, fp = old_filed
    assert decode(_old_bytes(schema, fp, channel="FAX")).record["channel"] == "OTHER"


def test_old_writer_is_still_validated(old_filed: tuple[Any, bytes]) -> None:
    schema, fp = old_filed
    error = _reason(_old_bytes(schema, fp, complaint_id=" x"))
    assert error.reason == "INVALID_RECORD" and "complaint_id" in error.detail


@pytest.mark.parametrize("cut", [1, 3, 6])
def test_truncated_old_writer_is_malformed(old_filed: tuple[Any, bytes], cut: int) -> None:
    """The dropped field is last; fastavro's skip would not notice it ends early."""
    schema, fp = old_filed
    assert _reason(_old_bytes(schema, fp)[:-cut]).reason == "MALFORMED"


def test_old_writer_trailing_bytes_are_malformed(old_filed: tuple[Any, bytes]) -> None:
    schema, fp = old_filed
    error = _reason(_old_bytes(schema, fp) + b"\x00")
    assert error.reason == "MALFORMED" and error.detail.startswith("trailing bytes: 1 of")


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda s: {**s, "name": "NoSuchRecord"}, "no current schema named"),
        (lambda s: {**s, "type": "enum", "symbols": ["A"]}, "must be a record"),
        (
            lambda s: {**s, "fields": [f for f in s["fields"] if f["name"] != "content"]},
            "ComplaintFiled.content has no default",
        ),
        (
            lambda s: {
                **s,
                "fields": [
                    {**f, "type": "hotline.events.NotInlined"} if f["name"] == "channel" else f
                    for f in s["fields"]
                ],
            },
            "does not parse",
        ),
        (
            lambda s: {**s, "fields": [*s["fields"], {"name": "n", "type": _null_array()}]},
            "at least one byte",
        ),
    ],
)
def test_unusable_writer_schemas_are_refused(
    change: Callable[[dict[str, Any]], dict[str, Any]], message: str
) -> None:
    raw = json.loads(OLD_FILED.read_text(encoding="utf-8"))
    with pytest.raises(ValueError, match=message):
        register_writer_schema(change(raw))


def _null_array() -> dict[str, Any]:
    return {"type": "array", "items": "null"}


# --- hostile input, generated ------------------------------------------------------------------


def _pool() -> list[bytes]:
    hex_files = [p.with_suffix(".hex") for p in GOLDEN]
    pool = [bytes.fromhex(h.read_text(encoding="ascii")) for h in hex_files if h.exists()]
    for name in sorted(RECORD_FILES):
        pool.append(encode(name, _sample_record(_raw(name), True)))
    return pool


POOL = _pool()


@st.composite
def corrupted(draw: st.DrawFn) -> bytes:
    data = bytearray(draw(st.sampled_from(POOL)))
    how = draw(st.sampled_from(["flip", "flip-body", "truncate", "splice", "append", "body"]))
    if how in ("flip", "flip-body"):
        low = 0 if how == "flip" else 10
        for _ in range(draw(st.integers(1, 4))):
            data[draw(st.integers(low, len(data) - 1))] ^= 1 << draw(st.integers(0, 7))
    elif how == "truncate":
        del data[draw(st.integers(0, len(data) - 1)) :]
    elif how == "splice":
        at = draw(st.integers(10, len(data) - 1))
        chunk = draw(st.binary(min_size=1, max_size=12))
        data[at : at + len(chunk)] = chunk
    elif how == "append":
        data += draw(st.binary(min_size=1, max_size=16))
    else:  # a real header over random bytes
        data = data[:10] + bytearray(draw(st.binary(max_size=300)))
    return bytes(data)


def _decodes_or_refuses(data: bytes) -> None:
    start = time.perf_counter()
    try:
        decoded = decode(data)
    except DecodeError as error:
        assert error.reason in REASONS
        assert str(error) == f"{error.reason}: {error.detail}"
    else:
        # Whatever gets through passes the full validation again.
        encode(decoded.name, decoded.record)
    assert time.perf_counter() - start < 1.0


@settings(max_examples=500, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(corrupted())
def test_corrupted_payloads_decode_validly_or_raise_decode_error(data: bytes) -> None:
    _decodes_or_refuses(data)


@settings(max_examples=200, deadline=None)
@given(st.binary(max_size=400))
def test_random_bytes_never_raise_anything_else(data: bytes) -> None:
    _decodes_or_refuses(data)


def test_seeded_corruption_sweep() -> None:
    """The reliability suite's mix, seeded: 2,000 payloads, none escapes as another error."""
    rng = random.Random(12345)
    refused = 0
    for _ in range(2000):
        data = bytearray(rng.choice(POOL))
        kind = rng.randrange(4)
        if kind == 0:
            data[rng.randrange(10, len(data))] ^= 1 << rng.randrange(8)
        elif kind == 1:
            del data[rng.randrange(len(data)) :]
        elif kind == 2:
            data += bytes(rng.randrange(256) for _ in range(rng.randrange(1, 8)))
        else:
            data = data[:10] + bytearray(rng.randbytes(rng.randrange(0, 200)))
        try:
            _decodes_or_refuses(bytes(data))
            decode(bytes(data))
        except DecodeError:
            refused += 1
    assert refused > 1000  # truncation, trailing bytes and random bodies always fail


# --- events already on the topics, written with an older schema ----------------------------


def test_lifecycle_events_written_before_the_location_columns_still_decode() -> None:
    """``hotline.lifecycle`` is replayed from offset 0 to rebuild the ledger, so events
    written before LedgerCase gained latitude/longitude must decode, with those unset."""
    old = json.loads((SCHEMA_DIR / "history" / "hotline.events.LifecycleEvent.v1.avsc")
                     .read_text(encoding="utf-8"))
    hex_v1 = (DATA / "golden_history" / "LifecycleEvent.v1.hex").read_text(encoding="ascii")
    pinned = decode(bytes.fromhex(hex_v1.strip()))
    assert pinned.name == "LifecycleEvent"
    # And one with a case row, written by plain fastavro with the old schema.
    parsed = fastavro.parse_schema(old)
    record = dict(pinned.record)
    record["case_row"] = {
        "complaint_id": record["complaint_id"], "version": 1, "status": "ACCEPTED",
        "filed_at": AT, "channel": "PHONE", "kind": None, "category": None, "tier": None,
        "district": None, "street": None, "lead_unit_id": None, "due_at": None,
        "overdue": False, "escalation_level": "UNIT", "closed_at": None, "outcome": None,
        "caller_hash": None}
    body = BytesIO()
    fastavro.schemaless_writer(body, parsed, record)
    fp = _crc64_avro(to_parsing_canonical_form(parsed).encode()).to_bytes(8, "little")
    decoded = decode(MARKER + fp + body.getvalue())
    row = decoded.record["case_row"]
    assert row["latitude"] is None and row["longitude"] is None
    assert row["filed_at"] == AT and row["status"] == "ACCEPTED"


def test_every_lifecycle_schema_ever_written_is_known() -> None:
    """The ledger is rebuilt from hotline.lifecycle at offset 0, so each LifecycleEvent
    writer schema this project ever shipped must stay readable (schemas/history)."""
    from schemas.codec import _WRITERS

    shipped = {"631f3558038aaabd",   # before the ledger rows rode on the event
               "53857a400bd58308",   # with case/dispatch/evaluation rows
               "4a903c01ef8e2cb9",   # with the case's location
               fingerprint("LifecycleEvent").hex()}  # AWAITING_REVIEW and its candidates
    known = {fp.hex() for fp, w in _WRITERS.items() if w.reader.name == "LifecycleEvent"}
    assert shipped <= known


def test_lifecycle_events_written_before_the_dispatch_desk_still_decode() -> None:
    """Events written before AWAITING_REVIEW and ``candidates`` (schemas/history v2) read
    with no candidates, and an old status stays what it was."""
    hex_v2 = (DATA / "golden_history" / "LifecycleEvent.v2.hex").read_text(encoding="ascii")
    raw = bytes.fromhex(hex_v2.strip())
    assert raw[2:10].hex() == "4a903c01ef8e2cb9"
    event = decode(raw)
    assert event.name == "LifecycleEvent" and event.record["candidates"] is None
    want = json.loads((DATA / "golden_history" / "LifecycleEvent.v2.json")
                      .read_text(encoding="utf-8"))
    assert event.record["status"] == want["status"]
    assert event.record["complaint_id"] == want["complaint_id"]


def test_completions_written_before_attachments_still_decode() -> None:
    """HandlingCompleted before ``attachments`` (schemas/history v0) reads with none."""
    raw = bytes.fromhex((DATA / "golden_history" / "HandlingCompleted.v0.hex")
                        .read_text(encoding="ascii").strip())
    assert raw[2:10] != fingerprint("HandlingCompleted")
    event = decode(raw)
    assert event.name == "HandlingCompleted" and event.record["attachments"] == []
    assert event.record["reply_text"] == "已修补坑洼，排水管改造需区里立项。"

