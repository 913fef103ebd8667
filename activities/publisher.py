"""Kafka producer used by activities: Avro-encodes records and waits for the broker's acks."""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Any

from kafka import KafkaProducer

from schemas import codec
from schemas.registry import ConfluentWire


class KafkaPublisher:
    """Sends ``(topic, key, record name, fields)`` and returns once every record is acked.

    kafka-python's producer is thread-safe, so one instance serves every activity thread.
    With ``wire`` (the Schema Registry option, ``HOTLINE_SCHEMA_REGISTRY_WRITE``) values
    go out in the Confluent wire format instead of the single-object encoding; the
    ``event-type`` header is sent either way.
    """

    _wire: ConfluentWire | None = None

    def __init__(self, bootstrap: str, *, client_id: str = "hotline-worker",
                 wire: ConfluentWire | None = None, **config: Any) -> None:
        self._wire = wire
        self._producer = KafkaProducer(
            bootstrap_servers=bootstrap, client_id=client_id, acks="all", linger_ms=2,
            retries=5, **config,
        )

    def publish(self, messages: Sequence[tuple[str, str, str, dict[str, Any]]],
                timeout: float = 30.0) -> None:
        self.publish_encoded(
            [(topic, key, name, codec.encode(name, fields))
             for topic, key, name, fields in messages],
            timeout,
        )

    def publish_encoded(self, messages: Sequence[tuple[str, str, str, bytes]],
                        timeout: float = 30.0) -> None:
        """Send ``(topic, key, record name, Avro bytes)`` already encoded by the caller.

        Returns once every record is acknowledged; raises the first send error, or
        ``KafkaTimeoutError`` when they are not all acknowledged ``timeout`` seconds after
        the call (one deadline for the batch, not ``timeout`` per record).
        """
        deadline = time.monotonic() + timeout
        if self._wire is not None:
            # Blocks on the first call (registers schemas/); RegistryUnavailable fails the
            # activity, which retries.
            messages = [(topic, key, name, self._wire.reframe(name, value))
                        for topic, key, name, value in messages]
        futures = [
            self._producer.send(topic, key=key.encode(), value=value,
                                headers=codec.headers_for(name))
            for topic, key, name, value in messages
        ]
        # Waiting on this call's own records only: flush() would also wait for every
        # other activity thread's records, so one slow batch held up unrelated steps.
        for fut in futures:
            # Raises the send error or KafkaTimeoutError, so the activity retries.
            fut.get(timeout=max(deadline - time.monotonic(), 0.0))

    def close(self) -> None:
        self._producer.close(timeout=10)
