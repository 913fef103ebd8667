"""The Confluent wire format beside our single-object encoding, through a Schema Registry.

Integrators' tools (Kafka Connect, Debezium, NiFi, Flink, call-centre platforms) write
Avro the Confluent way::

    00 | 4-byte big-endian schema id | binary body

where the id names the writer schema in a Schema Registry. With a registry configured
(``HOTLINE_SCHEMA_REGISTRY_URL``), :class:`ConfluentWire` reads both formats: a record
starting ``C3 01`` goes straight to :func:`schemas.codec.decode`; one starting ``00`` has
its writer schema fetched by id (once; cached), registered with the codec as a writer
schema (:func:`schemas.codec.register_writer_schema`), and is then decoded exactly like
a single-object encoding of that schema. Every defensive check of the codec applies,
and the record type comes from the writer schema's full name, so producers need not set
our ``event-type`` header.

Subjects follow Confluent's ``RecordNameStrategy``: the subject of a record is its full
name (``hotline.events.ComplaintFiled``). ``TopicNameStrategy`` (the default, one subject
per topic) cannot hold the several record types our inbound topics carry, and
``TopicRecordNameStrategy`` would register the same schema once per topic and per
``HOTLINE_TOPIC_PREFIX``; a record's schema is one contract wherever it travels.

This module speaks the registry's REST API with the standard library (three calls: a
schema by id, register a version, and nothing else), so the registry adds no dependency.
Calls block: callers on an event loop run :meth:`ConfluentWire.fetch` and the
registration on a thread (``workers.runtime.schema_registry``).
"""

from __future__ import annotations

import base64
import json
import ssl
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Collection
from pathlib import Path
from typing import Any, Final

from fastavro.schema import load_schema

from schemas import codec
from schemas.codec import Decoded, DecodeError, EncodeError

__all__ = [
    "CONFLUENT_MAGIC",
    "ConfluentWire",
    "RegistryUnavailable",
    "SchemaRegistry",
    "record_schemas",
    "subject_for",
]

#: First byte of the Confluent wire format; the schema id follows.
CONFLUENT_MAGIC: Final = b"\x00"
_CONFLUENT_HEADER: Final = 5  # magic + 4-byte schema id
_SINGLE_OBJECT_MARKER: Final = b"\xc3\x01"
_SINGLE_OBJECT_HEADER: Final = 10  # marker + 8-byte fingerprint
_SCHEMA_DIR: Final = Path(__file__).resolve().parent
_CONTENT_TYPE: Final = "application/vnd.schemaregistry.v1+json"
# A registry "no such schema" is remembered this long, so a flood of records with one
# unknown id costs one request a minute, not one each; ids are never reused, but a
# registry restored from a backup may learn an id later.
_MISSING_TTL_S: Final = 60.0
_MAX_REMEMBERED_MISSING: Final = 10_000


class RegistryUnavailable(Exception):
    """The registry did not answer usefully (down, timeout, 5xx, auth): try again later.

    Never a reason to dead-letter a record; the record is not at fault.
    """


def subject_for(full_name: str) -> str:
    """The registry subject of a record (``RecordNameStrategy``): its full name."""
    return full_name


def record_schemas() -> dict[str, str]:
    """Every record schema of ``schemas/``, self-contained, by full name.

    Named types the ``.avsc`` files reference from each other (enums, nested records)
    are written inline where first used, as a registry needs them; docs, defaults and
    logical types are kept (canonical form would drop them).
    """
    found: dict[str, str] = {}
    for path in sorted(_SCHEMA_DIR.glob("*.avsc")):
        if json.loads(path.read_text(encoding="utf-8")).get("type") != "record":
            continue  # enums only exist to be referenced from records
        expanded = load_schema(str(path), _write_hint=False)
        if isinstance(expanded, dict):
            found[expanded["name"]] = json.dumps(expanded, ensure_ascii=False,
                                                 separators=(",", ":"))
    return found


class SchemaRegistry:
    """A blocking client of the Confluent Schema Registry REST API (or a compatible one,
    e.g. Apicurio Registry's ``/apis/ccompat/v7``).

    Args:
        url: Base URL, e.g. ``http://registry:8081`` or
            ``http://apicurio:8080/apis/ccompat/v7``.
        username, password: HTTP basic auth (Confluent Cloud: API key and secret).
        cafile: PEM CA of the registry's certificate (HTTPS with a private CA).
        timeout_s: Per request.
    """

    def __init__(self, url: str, *, username: str | None = None, password: str | None = None,
                 cafile: Path | None = None, timeout_s: float = 10.0) -> None:
        self.url = url.rstrip("/")
        self._timeout_s = timeout_s
        self._headers = {"Accept": f"{_CONTENT_TYPE}, application/json",
                         "Content-Type": _CONTENT_TYPE}
        if username is not None:
            token = base64.b64encode(f"{username}:{password or ''}".encode()).decode()
            self._headers["Authorization"] = f"Basic {token}"
        self._ssl = ssl.create_default_context(cafile=str(cafile)) if cafile else None

    def _call(self, method: str, path: str, body: dict[str, Any] | None = None
              ) -> dict[str, Any] | None:
        """The JSON answer, or None for a 404; RegistryUnavailable for anything else."""
        request = urllib.request.Request(
            self.url + path, method=method, headers=self._headers,
            data=None if body is None else json.dumps(body).encode(),
        )
        try:
            with urllib.request.urlopen(request, timeout=self._timeout_s,
                                        context=self._ssl) as answer:
                payload = json.loads(answer.read())
        except urllib.error.HTTPError as exc:
            if exc.code == 404:
                return None
            detail = exc.read()[:300].decode(errors="replace")
            raise RegistryUnavailable(
                f"{method} {self.url}{path}: HTTP {exc.code} {detail}") from exc
        except (OSError, ValueError) as exc:  # refused, timeout, TLS, not JSON
            raise RegistryUnavailable(f"{method} {self.url}{path}: {exc}") from exc
        if not isinstance(payload, dict):
            raise RegistryUnavailable(f"{method} {self.url}{path}: answer is not an object")
        return payload

    def schema_by_id(self, schema_id: int) -> dict[str, Any] | None:
        """``GET /schemas/ids/{id}``: ``{"schema": text, "schemaType"?, "references"?}``,
        or None when the registry has no such id."""
        return self._call("GET", f"/schemas/ids/{schema_id}")

    def register(self, subject: str, schema: str) -> int:
        """``POST /subjects/{subject}/versions``: the schema's id (the existing one when
        the registry already has it).

        Raises:
            RegistryUnavailable: The registry is away or refused (e.g. incompatible).
        """
        path = f"/subjects/{urllib.parse.quote(subject, safe='')}/versions"
        answer = self._call("POST", path, {"schema": schema})
        schema_id = (answer or {}).get("id")
        if not isinstance(schema_id, int):
            raise RegistryUnavailable(f"POST {self.url}{path}: no schema id in {answer}")
        return schema_id


class ConfluentWire:
    """Reads both wire formats; writes the Confluent one. Thread-safe.

    ``decode`` of a Confluent record whose schema id is not cached yet fetches it, which
    blocks; :meth:`needs_fetch` and :meth:`fetch` let an event loop do that on a thread.
    """

    def __init__(self, registry: SchemaRegistry) -> None:
        self.registry = registry
        self._lock = threading.Lock()
        # schema id -> fingerprint of the writer schema (as the codec knows it)
        self._writers: dict[int, bytes] = {}
        # schema id -> the permanent reason it cannot be read (another schema type...)
        self._unusable: dict[int, DecodeError] = {}
        # schema id -> when the registry said it has no such id
        self._missing: dict[int, float] = {}
        # full record name -> our current schema's id, once registered
        self._ids: dict[str, int] = {}
        self._register_lock = threading.Lock()

    # --- reading ------------------------------------------------------------------------

    @staticmethod
    def schema_id(data: bytes) -> int | None:
        """The schema id of a Confluent-framed value; None for anything else."""
        if len(data) >= _CONFLUENT_HEADER and data[:1] == CONFLUENT_MAGIC:
            return int.from_bytes(data[1:_CONFLUENT_HEADER], "big")
        return None

    def needs_fetch(self, data: bytes) -> bool:
        """True when decoding ``data`` would ask the registry first."""
        schema_id = self.schema_id(data)
        if schema_id is None or schema_id in self._writers or schema_id in self._unusable:
            return False
        seen = self._missing.get(schema_id)
        return seen is None or time.monotonic() - seen > _MISSING_TTL_S

    def fetch(self, data: bytes) -> None:
        """Look up the writer schema of ``data`` (blocking) so ``decode`` need not.

        Raises:
            RegistryUnavailable: Try again later. An id the registry does not know, or a
                schema we cannot read, is remembered and reported by ``decode``.
        """
        schema_id = self.schema_id(data)
        if schema_id is not None and self.needs_fetch(data):
            self._resolve(schema_id)

    def _resolve(self, schema_id: int) -> None:
        answer = self.registry.schema_by_id(schema_id)
        with self._lock:
            if answer is None:
                if len(self._missing) >= _MAX_REMEMBERED_MISSING:
                    self._missing.clear()
                self._missing[schema_id] = time.monotonic()
                return
            self._missing.pop(schema_id, None)
            try:
                self._writers[schema_id] = self._writer_fingerprint(schema_id, answer)
            except DecodeError as err:
                self._unusable[schema_id] = err

    @staticmethod
    def _writer_fingerprint(schema_id: int, answer: dict[str, Any]) -> bytes:
        kind = answer.get("schemaType") or "AVRO"
        if kind != "AVRO":
            raise DecodeError("UNKNOWN_SCHEMA", f"schema id {schema_id} is {kind}, not Avro")
        if answer.get("references"):
            raise DecodeError("UNKNOWN_SCHEMA",
                              f"schema id {schema_id} uses schema references; register it "
                              "self-contained (every named type inline)")
        try:
            schema = json.loads(str(answer.get("schema")))
            # The codec checks it names one of our records and resolves to its current
            # schema; from then on it reads this writer like any schema in history/.
            return codec.register_writer_schema(schema)
        except ValueError as exc:
            raise DecodeError("UNKNOWN_SCHEMA", f"schema id {schema_id}: {exc}") from exc

    def decode(self, data: bytes, expected: Collection[str] | None = None) -> Decoded:
        """Decode a value in either wire format; see :func:`schemas.codec.decode`.

        Raises:
            DecodeError: As the codec, plus ``UNKNOWN_SCHEMA`` for a schema id the
                registry does not have or whose schema is not one of our records.
            RegistryUnavailable: The writer schema could not be fetched; try again later.
        """
        if type(data) is not bytes and isinstance(data, (bytearray, memoryview)):
            data = bytes(data)
        if not isinstance(data, bytes) or data[:1] != CONFLUENT_MAGIC:
            return codec.decode(data, expected)
        schema_id = self.schema_id(data)
        if schema_id is None:
            raise DecodeError("MALFORMED", f"too short: {len(data)} bytes, the Confluent "
                                           f"header alone is {_CONFLUENT_HEADER}")
        self.fetch(data)
        fingerprint = self._writers.get(schema_id)
        if fingerprint is None:
            unusable = self._unusable.get(schema_id)
            if unusable is not None:
                raise DecodeError(unusable.reason, unusable.detail)
            raise DecodeError("UNKNOWN_SCHEMA",
                              f"the schema registry has no schema id {schema_id}")
        return codec.decode(_SINGLE_OBJECT_MARKER + fingerprint + data[_CONFLUENT_HEADER:],
                            expected)

    # --- writing ------------------------------------------------------------------------

    def register_all(self) -> dict[str, int]:
        """Register every record schema of ``schemas/`` (blocking; once per process).

        Returns:
            Full record name -> schema id.

        Raises:
            RegistryUnavailable: Away, or it refused a schema (e.g. its compatibility
                rule rejects our current version); nothing is cached then.
        """
        with self._register_lock:
            if not self._ids:
                ids = {name: self.registry.register(subject_for(name), text)
                       for name, text in record_schemas().items()}
                with self._lock:
                    for name, schema_id in ids.items():
                        # Our own records then decode without asking the registry.
                        self._writers[schema_id] = codec.fingerprint(name)
                    self._ids.update(ids)
            return dict(self._ids)

    def reframe(self, name: str, value: bytes) -> bytes:
        """A single-object encoding of our current schema, in the Confluent wire format.

        Registers our schemas first if this process has not (blocking).

        Raises:
            EncodeError: ``value`` is not a current-schema encoding of ``name``.
            RegistryUnavailable: The schemas could not be registered.
        """
        try:
            header = _SINGLE_OBJECT_MARKER + codec.fingerprint(name)
        except ValueError as exc:
            raise EncodeError(str(exc)) from exc
        if value[:_SINGLE_OBJECT_HEADER] != header:
            raise EncodeError(f"{name}: not encoded with its current schema")
        full_name = codec.headers_for(name)[0][1].decode()
        schema_id = self._ids.get(full_name)
        if schema_id is None:
            schema_id = self.register_all()[full_name]
        return (CONFLUENT_MAGIC + schema_id.to_bytes(4, "big")
                + value[_SINGLE_OBJECT_HEADER:])

    def encode(self, name: str, record: dict[str, Any]) -> bytes:
        """:func:`schemas.codec.encode`, in the Confluent wire format."""
        return self.reframe(name, codec.encode(name, record))
