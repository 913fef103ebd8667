"""The Schema Registry option on the real stack, against a real registry and a producer
that is not ours.

A throwaway Apicurio Registry (Maven Central, in memory, Confluent-compatible API) serves
the module; the worker and the bridges run with ``HOTLINE_SCHEMA_REGISTRY_URL`` and
``HOTLINE_SCHEMA_REGISTRY_WRITE``. An integrator files a complaint with confluent-kafka's
``AvroSerializer`` (its own copy of the schema, an older shape, no ``event-type`` header);
the case is dispatched, and the ``DispatchIssued`` it produces is read back with
confluent-kafka's ``AvroDeserializer``. Garbled Confluent-framed records go to the DLQ
with their reason.
"""

from __future__ import annotations

import asyncio
import json
import urllib.request
import uuid
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime
from typing import Any

import psycopg
import pytest
import pytest_asyncio
from confluent_kafka import Producer
from confluent_kafka.schema_registry import SchemaRegistryClient, record_subject_name_strategy
from confluent_kafka.schema_registry.avro import AvroDeserializer, AvroSerializer
from confluent_kafka.serialization import MessageField, SerializationContext
from kafka import KafkaConsumer, KafkaProducer

from schemas import codec
from schemas.codec import DecodeError
from schemas.registry import ConfluentWire, RegistryUnavailable, SchemaRegistry, record_schemas
from tests.live import Topic, live_services
from workers.devstack.registry_server import running_registry
from workers.devstack.stack import ensure_database
from workers.projector.main import run_projector
from workers.runtime.schema_registry import decode_blocking, decode_value, registry_wire
from workers.runtime.settings import Settings

pytestmark = pytest.mark.stack

FILED = "hotline.events.ComplaintFiled"


@pytest.fixture(scope="module")
def registry_url() -> Iterator[str]:
    settings = Settings()
    log = settings.state_dir / "schema-registry" / f"apicurio-{uuid.uuid4().hex[:8]}.log"
    with running_registry(settings, log) as url:
        yield url


@pytest_asyncio.fixture(scope="module")
async def live(registry_url: str) -> AsyncIterator[Settings]:
    async with live_services("sr", time_scale=0.0005, schema_registry_url=registry_url,
                             schema_registry_write=True) as settings:
        yield settings


def _integrators_schema() -> str:
    """ComplaintFiled as an integrator keeps it: no docs, and an older shape without the
    optional ``attachments`` and ``urgency_hint`` (our reader fills their defaults)."""
    schema = json.loads(record_schemas()[FILED])

    def strip(node: Any) -> Any:
        if isinstance(node, dict):
            return {k: strip(v) for k, v in node.items() if k != "doc"}
        if isinstance(node, list):
            return [strip(v) for v in node]
        return node

    schema = strip(schema)
    schema["fields"] = [f for f in schema["fields"]
                        if f["name"] not in ("attachments", "urgency_hint")]
    # Tier, defined inline in urgency_hint, is gone with it; nothing else uses it here.
    return json.dumps(schema)


def _filing(cid: str) -> dict[str, Any]:
    return {
        "event_id": f"f-{cid}", "complaint_id": cid, "filed_at": datetime.now(UTC),
        "channel": "PHONE", "kind": None,
        "content": "望京街道阜通东大街6号院3号楼电梯坏了三天，楼里老人下不了楼",
        "caller_phone": "13800001111", "caller_name": "张先生", "anonymous": False,
        "district": "朝阳区", "street": "望京街道", "address": "阜通东大街6号院",
        "latitude": None, "longitude": None, "category_hint": None,
        "answered_directly": False,
    }


def _produce(settings: Settings, key: str, value: bytes) -> None:
    producer = Producer({"bootstrap.servers": settings.kafka_bootstrap, "acks": "all"})
    producer.produce(settings.topic_intake, key=key.encode(), value=value)
    assert producer.flush(30) == 0


def _latest_id(registry_url: str, subject: str) -> int:
    with urllib.request.urlopen(f"{registry_url}/subjects/{subject}/versions/latest",
                                timeout=10) as answer:
        return int(json.loads(answer.read())["id"])


def _first(settings: Settings, topic: str, match: Any, timeout_ms: int = 60_000) -> Any:
    """The first raw message of ``topic`` that ``match`` accepts (no decoding)."""
    consumer = KafkaConsumer(topic, bootstrap_servers=settings.kafka_bootstrap,
                             auto_offset_reset="earliest", enable_auto_commit=False,
                             group_id=None, consumer_timeout_ms=timeout_ms)
    try:
        for message in consumer:
            if match(message):
                return message
    finally:
        consumer.close()
    raise AssertionError(f"no matching message on {topic}")


async def test_an_outside_avro_serializer_files_a_complaint_that_gets_dispatched(
    live: Settings, registry_url: str,
) -> None:
    s = live
    cid = f"SR-{uuid.uuid4().hex[:8]}"
    client = SchemaRegistryClient({"url": registry_url})
    serializer = AvroSerializer(client, _integrators_schema(), conf={
        "auto.register.schemas": True,
        "subject.name.strategy": record_subject_name_strategy,
    })
    value = serializer(_filing(cid), SerializationContext(s.topic_intake, MessageField.VALUE))
    assert value is not None and value[:1] == b"\x00"
    await asyncio.to_thread(_produce, s, cid, value)

    issued = await asyncio.to_thread(
        _first, s, s.topic_dispatches,
        lambda m: dict(m.headers).get("event-type") == b"hotline.events.DispatchIssued"
        and m.key == b"110105026" and cid.encode() in m.value)
    # Written in the Confluent wire format with the id of our registered schema...
    assert issued.value[:1] == b"\x00"
    assert (int.from_bytes(issued.value[1:5], "big")
            == _latest_id(registry_url, "hotline.events.DispatchIssued"))
    # ...which an outside deserializer reads with the schema it finds by that id.
    record = AvroDeserializer(client)(
        issued.value, SerializationContext(s.topic_dispatches, MessageField.VALUE))
    assert record is not None
    assert record["complaint_id"] == cid and record["unit_id"] == "110105026"
    assert record["tier"] == "T24H" and record["caller_phone"] == "13800001111"
    # The integrator's schema is another version than ours: the bridge resolved it.
    ours = registry_wire(s)
    assert ours is not None
    assert int.from_bytes(value[1:5], "big") != ours.register_all()[FILED]


async def _cases(dsn: str) -> dict[str, tuple[Any, ...]]:
    async with await psycopg.AsyncConnection.connect(dsn) as conn:
        rows = await (await conn.execute(
            "SELECT complaint_id, tier, lead_unit_id FROM cases")).fetchall()
    return {row[0]: tuple(row[1:]) for row in rows}


async def test_the_projector_rebuilds_the_ledger_from_confluent_lifecycle_events(
    live: Settings,
) -> None:
    s = live
    cid = f"SR-{uuid.uuid4().hex[:8]}"
    wire = registry_wire(s)
    assert wire is not None
    await asyncio.to_thread(_produce, s, cid, wire.encode(FILED, {
        **_filing(cid), "attachments": []}))
    first = await asyncio.to_thread(
        _first, s, s.topic_lifecycle, lambda m: cid.encode() in m.value)
    assert first.value[:1] == b"\x00"  # the worker writes lifecycle events the Confluent way

    name = f"{s.postgres_db}_rebuilt"
    rebuilt = s.model_copy(update={"postgres_db": name,
                                   "consumer_group_prefix": f"{s.consumer_group_prefix}-rb"})
    await asyncio.to_thread(ensure_database, rebuilt, name)
    assert await run_projector(rebuilt, asyncio.Event(), idle_timeout_s=3) > 0
    cases, reference = await _cases(rebuilt.dsn), await _cases(s.dsn)
    assert cid in cases and cases[cid] == reference[cid]
    assert cases.keys() == reference.keys()


async def test_garbled_confluent_records_go_to_the_dead_letter_topic(live: Settings) -> None:
    s = live
    dlq = Topic(s, s.topic_dlq)
    filed_id = _latest_id(s.schema_registry_url or "", FILED)
    truncated = b"\x00" + filed_id.to_bytes(4, "big") + b"\x02\x41"
    unknown_id = b"\x00" + (2**31 - 7).to_bytes(4, "big") + b"\x00"
    producer = KafkaProducer(bootstrap_servers=s.kafka_bootstrap, acks="all")
    try:
        producer.send(s.topic_intake, key=b"truncated", value=truncated).get(30)
        producer.send(s.topic_intake, key=b"unknown-id", value=unknown_id).get(30)
        producer.send(s.topic_intake, key=b"short", value=b"\x00\x00\x01").get(30)
    finally:
        producer.close()

    bad_body = await asyncio.to_thread(dlq.wait_for, lambda n, r: r["key"] == b"truncated")
    assert bad_body["reason"] == "MALFORMED" and bad_body["value"] == truncated
    assert bad_body["topic"] == s.topic_intake
    no_schema = await asyncio.to_thread(dlq.wait_for, lambda n, r: r["key"] == b"unknown-id")
    assert no_schema["reason"] == "UNKNOWN_SCHEMA"
    assert "no schema id 2147483641" in no_schema["error"]
    short = await asyncio.to_thread(dlq.wait_for, lambda n, r: r["key"] == b"short")
    assert short["reason"] == "MALFORMED" and "Confluent header" in short["error"]


def test_our_records_round_trip_through_the_registry(registry_url: str) -> None:
    wire = ConfluentWire(SchemaRegistry(registry_url))
    record = {**_filing("SR-RT"), "attachments": [], "urgency_hint": "T2H"}
    value = wire.encode(FILED, record)
    assert value[:1] == b"\x00" and value[5:] == codec.encode(FILED, record)[10:]
    # A second process (a fresh cache) reads it by fetching the schema by id.
    decoded = ConfluentWire(SchemaRegistry(registry_url)).decode(value, expected=(FILED,))
    assert decoded.name == "ComplaintFiled" and decoded.record["urgency_hint"] == "T2H"
    with pytest.raises(DecodeError) as refused:
        wire.decode(value, expected=("DispatchSigned",))
    assert refused.value.reason == "UNEXPECTED_TYPE"
    # The single-object encoding still reads, registry or not.
    assert wire.decode(codec.encode(FILED, record)).record == decoded.record


def test_a_schema_that_is_not_ours_is_unknown(registry_url: str) -> None:
    registry = SchemaRegistry(registry_url)
    foreign = registry.register("acme.Order", json.dumps(
        {"type": "record", "name": "Order", "namespace": "acme",
         "fields": [{"name": "id", "type": "string"}]}))
    with pytest.raises(DecodeError) as refused:
        ConfluentWire(registry).decode(b"\x00" + foreign.to_bytes(4, "big") + b"\x02a")
    assert refused.value.reason == "UNKNOWN_SCHEMA"
    assert "acme.Order" in refused.value.detail


async def test_an_unreachable_registry_is_a_retry_and_no_registry_a_clear_refusal() -> None:
    down = ConfluentWire(SchemaRegistry("http://127.0.0.1:9/apis/ccompat/v7", timeout_s=2))
    with pytest.raises(RegistryUnavailable):
        await decode_value(down, b"\x00\x00\x00\x00\x01\x02")
    with pytest.raises(DecodeError) as refused:
        await decode_value(None, b"\x00\x00\x00\x00\x01" + b"\x00" * 20)
    assert refused.value.reason == "MALFORMED"
    assert "HOTLINE_SCHEMA_REGISTRY_URL" in refused.value.detail


def test_the_dlq_commands_read_confluent_framed_originals(registry_url: str) -> None:
    """`hotline dlq show` and `redrive` decode a dead letter's original bytes through the
    registry when it is configured (decode_blocking), and say why not when it is not."""
    with_registry = Settings(schema_registry_url=registry_url)
    record = {**_filing("SR-DLQ"), "attachments": []}
    value = ConfluentWire(SchemaRegistry(registry_url)).encode(FILED, record)
    assert decode_blocking(with_registry, value).record["complaint_id"] == "SR-DLQ"
    with pytest.raises(DecodeError) as refused:
        decode_blocking(Settings(schema_registry_url=None), value)
    assert refused.value.reason == "MALFORMED"
