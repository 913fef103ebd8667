"""Latency of one ``record_step`` publish while other activity threads publish too.

The worker runs many activities at once on threads, all sharing one ``KafkaPublisher``.
``publish_encoded`` used to call ``producer.flush()``, which waits for every record in the
producer, including other threads' ones; now it waits for its own records' acks only.
Both are timed in the same run against the local stack's Kafka: ``--threads`` threads
each publish a step (a lifecycle event and a dispatch record, as a dispatch step does)
in a loop for ``--seconds``; printed are per-call latency p50/p95/p99 and calls/s, and
the ratio of the two.

    .venv/bin/python -m bench.bench_publisher [--threads 8] [--seconds 15]
"""

from __future__ import annotations

import argparse
import statistics
import threading
import time
import uuid
from collections.abc import Callable, Sequence

from activities.publisher import KafkaPublisher
from schemas import codec
from workers.devstack.city import generate_city
from workers.devstack.stack import ensure_stack, ensure_topics
from workers.runtime.security import kafka_security_config
from workers.runtime.settings import Settings

Message = tuple[str, str, str, bytes]
# One filing of the demo city, the size of a real one.
_FILING = generate_city(1, seed=7)[0].filing


def flush_all(publisher: KafkaPublisher, messages: Sequence[Message]) -> None:
    """The earlier behaviour: send, flush the whole producer, then check each future."""
    producer = publisher._producer
    futures = [producer.send(topic, key=key.encode(), value=value,
                             headers=codec.headers_for(name))
               for topic, key, name, value in messages]
    producer.flush(timeout=30)
    for fut in futures:
        fut.get(timeout=30)


def step_messages(settings: Settings, n: int) -> list[Message]:
    cid = f"PUB-{uuid.uuid4().hex[:8]}-{n}"
    rec = {**_FILING, "event_id": f"f-{cid}", "complaint_id": cid}
    # Two records of the size a dispatch step sends, on this run's own (unread) topic.
    value = codec.encode("ComplaintFiled", rec)
    return [(settings.topic_intake, cid, "ComplaintFiled", value)] * 2


def run(label: str, call: Callable[[Sequence[Message]], None], settings: Settings,
        threads: int, seconds: float) -> list[float]:
    latencies: list[float] = []
    lock = threading.Lock()
    end = time.monotonic() + seconds

    def loop(t: int) -> None:
        n = 0
        mine: list[float] = []
        while time.monotonic() < end:
            msgs = step_messages(settings, t * 1_000_000 + n)
            started = time.perf_counter()
            call(msgs)
            mine.append(time.perf_counter() - started)
            n += 1
        with lock:
            latencies.extend(mine)

    workers = [threading.Thread(target=loop, args=(t,)) for t in range(threads)]
    for w in workers:
        w.start()
    for w in workers:
        w.join()
    q = statistics.quantiles(latencies, n=100)
    print(f"{label:28} calls/s {len(latencies) / seconds:8.1f}   latency ms "
          f"p50 {q[49] * 1000:6.1f}  p95 {q[94] * 1000:6.1f}  p99 {q[98] * 1000:6.1f}")
    return latencies


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--threads", type=int, default=8)
    parser.add_argument("--seconds", type=float, default=15.0)
    args = parser.parse_args()
    ensure_stack(Settings())
    # A private topic prefix: no bridge or projector reads what this writes.
    settings = Settings(topic_prefix=f"benchpub{uuid.uuid4().hex[:6]}.")
    ensure_topics(settings)
    publisher = KafkaPublisher(settings.kafka_bootstrap, **kafka_security_config(settings))
    try:
        run("warm-up", publisher.publish_encoded, settings, args.threads, 2)
        rows = []
        for _ in range(2):  # interleaved, so drift on a shared machine hits both
            rows.append((run("flush whole producer", lambda m: flush_all(publisher, m),
                             settings, args.threads, args.seconds),
                         run("wait for own records", publisher.publish_encoded,
                             settings, args.threads, args.seconds)))
        before = [x for pair in rows for x in pair[0]]
        after = [x for pair in rows for x in pair[1]]
        qb, qa = statistics.quantiles(before, n=100), statistics.quantiles(after, n=100)
        print(f"ratio own/flush: p50 {qa[49] / qb[49]:.2f}  p99 {qa[98] / qb[98]:.2f}  "
              f"calls/s {len(after) / len(before):.2f}")
    finally:
        publisher.close()


if __name__ == "__main__":
    main()
