"""``hotline routing blind-live``: the blind-set measures taken on the running system.

``hotline routing blind`` asks the classifier in process what ``accept`` would decide.
This command measures what an outside evaluator sees instead: every item of the set is
filed as a real ``ComplaintFiled`` on ``hotline.intake`` (as an operator would fill it:
content, district, street, address, kind and urgency hints; anonymous, channel PHONE;
a fresh complaint id per item, ``<prefix>-<run>-<n>``), and the decision of each case is
read from what the system publishes on ``hotline.lifecycle`` — the contract any consumer
of the hotline has, where the ledger is the hotline's own store. The first of these
events decides a case:

- ``DISPATCHED``: sent to a unit at once; its ``tier`` and ``lead_unit_id`` are what the
  unit received (``ACCEPTED``, published with it, is not enough: it is the plan, not the
  dispatch);
- ``REVIEW_REQUESTED``: held for the dispatch desk (its tier; the top candidate);
- ``REDIRECTED``: transferred, with ``attributes.redirect_to`` (110/119/120);
- ``ANSWERED_DIRECTLY``, ``REJECTED``, ``MERGED``: closed without a dispatch.

The street is the event's (``district`` + ``street`` name, as the ledger's case row has
it), turned back into the registry's unit id that the blind set's labels use.

Only the totals are printed, the same table as ``hotline routing blind``: per-item output
would unblind the set. The cases stay open on the stack (under the prefix, so they are
recognisable); this is a tool for a development or staging stack, not production.
"""

from __future__ import annotations

import re
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import typer
from kafka import KafkaConsumer, TopicPartition
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from activities.dispatch.blind import BlindItem, Decision, load_blind, score
from activities.dispatch.config import load_config
from activities.dispatch.evaluation import EvalError
from activities.dispatch.lexicon import KINDS
from activities.dispatch.registry import STREET_KINDS, Registry
from activities.dispatch.rules import TIERS
from schemas.codec import DecodeError, encode, headers_for
from workers.cli.blind_table import print_blind_report
from workers.cli.failures import (
    EXIT_NO_ANSWER,
    EXIT_UNREACHABLE,
    STACK_HINT,
    BadFile,
    BadInput,
    require_kafka,
)
from workers.cli.output import err_console, fail
from workers.runtime.kafka_io import consumer_config, make_producer
from workers.runtime.schema_registry import decode_blocking
from workers.runtime.settings import Settings

DEFAULT_PREFIX = "BLINDLIVE"
DEFAULT_TIMEOUT_S = 600.0
SEND_TIMEOUT_S = 30.0
POLL_MS = 300
# The lifecycle event that settles each accept decision → the blind score's outcome.
DECIDING_EVENTS = {
    "DISPATCHED": "DISPATCH",
    "REVIEW_REQUESTED": "REVIEW",
    "REDIRECTED": "REDIRECTED",
    "ANSWERED_DIRECTLY": "ANSWERED_DIRECTLY",
    "REJECTED": "REJECTED",
    "MERGED": "MERGED",
}
# Letters, digits and - _ . only: the prefix starts every complaint and workflow id.
_PREFIX = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,63}")


@dataclass(frozen=True)
class LiveRun:
    """One live measurement: the items, where to file them, and how long to wait."""

    settings: Settings
    registry: Registry
    items: list[BlindItem]
    prefix: str = DEFAULT_PREFIX
    timeout_s: float = DEFAULT_TIMEOUT_S
    # Called with (filed, decided, total) as the run goes (the progress bar).
    progress: Callable[[int, int, int], None] | None = None


@dataclass
class LiveResult:
    """What the running system decided: complaint ids in the order of the items, and the
    decision of each case decided before the timeout."""

    complaint_ids: list[str]
    decisions: dict[str, Decision] = field(default_factory=dict)
    timed_out: bool = False

    @property
    def decided(self) -> int:
        return len(self.decisions)


def filing_record(item: BlindItem, complaint_id: str, filed_at: datetime) -> dict[str, Any]:
    """The ``ComplaintFiled`` an operator files for one blind item (no caller: anonymous).

    A kind or urgency hint the schema has no symbol for is left out, as ``accept``
    ignores one it does not know.
    """
    return {
        "event_id": f"{complaint_id}-filed",
        "complaint_id": complaint_id,
        "filed_at": filed_at,
        "channel": "PHONE",
        "kind": item.kind if item.kind in KINDS else None,
        "content": item.content,
        "anonymous": True,
        "district": item.district,
        "street": item.street,
        "address": item.address,
        "urgency_hint": item.urgency_hint if item.urgency_hint in TIERS else None,
    }


def street_ids(registry: Registry) -> dict[tuple[str | None, str], str]:
    """(district, street name) → street unit id, the names cases carry; current units win
    over retired ones of the same name."""
    out: dict[tuple[str | None, str], str] = {}
    for rec in registry.records.values():
        if rec.kind in STREET_KINDS:
            out.setdefault((rec.district, rec.name), rec.unit_id)
    for unit in registry.units.values():
        if unit.kind in STREET_KINDS:
            out[(unit.district, unit.name)] = unit.unit_id
    return out


def decision_of(event: dict[str, Any], streets: dict[tuple[str | None, str], str]
                ) -> Decision | None:
    """The accept decision a lifecycle event settles, or None for any other event."""
    outcome = DECIDING_EVENTS.get(event["event_type"])
    if outcome is None:
        return None
    name = event.get("street")
    street = streets.get((event.get("district"), name)) if name else None
    if outcome == "REDIRECTED":
        return Decision(outcome, None, None, street,
                        (event.get("attributes") or {}).get("redirect_to"))
    lead = event.get("lead_unit_id")
    if outcome == "REVIEW" and event.get("candidates"):
        lead = event["candidates"][0]["unit_id"]  # what the desk is offered first
    return Decision(outcome, event.get("tier"), lead, street)


def _tail(settings: Settings, topic: str) -> KafkaConsumer:
    """A consumer without a group on every partition of ``topic``, at its current end: the
    events read afterwards are all published after this call."""
    consumer = KafkaConsumer(**consumer_config(
        settings, "", group_id=None, client_id="hotline-routing-blind-live",
        fetch_max_wait_ms=100))
    try:
        partitions = consumer.partitions_for_topic(topic)
        if not partitions:
            raise fail(f"error: topic {topic} is not on the broker at "
                       f"{settings.kafka_bootstrap} (is HOTLINE_TOPIC_PREFIX right?); "
                       f"{STACK_HINT}", EXIT_UNREACHABLE)
        tps = [TopicPartition(topic, p) for p in sorted(partitions)]
        consumer.assign(tps)
        consumer.seek_to_end(*tps)
        for tp in tps:
            consumer.position(tp)  # resolve "end" now, before anything is filed
    except BaseException:
        consumer.close()
        raise
    return consumer


def _file(run: LiveRun, ids: list[str], report: Callable[[int], None]) -> None:
    """File every item on the intake topic, each acknowledged by the broker."""
    settings = run.settings
    producer = make_producer(settings)
    try:
        futures = []
        for item, cid in zip(run.items, ids, strict=True):
            record = filing_record(item, cid, datetime.now(UTC))
            futures.append(producer.send(settings.topic_intake, key=cid.encode(),
                                         value=encode("ComplaintFiled", record),
                                         headers=headers_for("ComplaintFiled")))
        for n, fut in enumerate(futures, 1):
            fut.get(timeout=SEND_TIMEOUT_S)
            report(n)
    finally:
        producer.close(timeout=5)


def measure_live(run: LiveRun) -> LiveResult:
    """File the items and collect each case's decision from ``hotline.lifecycle`` until
    all are decided or ``run.timeout_s`` passes (``timed_out`` then says so)."""
    settings = run.settings
    tag = f"{run.prefix}-{uuid.uuid4().hex[:8]}-"
    ids = [f"{tag}{n:05d}" for n in range(1, len(run.items) + 1)]
    result = LiveResult(ids)
    wanted = set(ids)
    streets = street_ids(run.registry)
    tell = run.progress or (lambda filed, decided, total: None)

    require_kafka(settings.kafka_bootstrap)  # at once, not after the client's retries
    consumer = _tail(settings, settings.topic_lifecycle)
    try:
        intake = consumer.partitions_for_topic(settings.topic_intake)
        if not intake:
            raise fail(f"error: topic {settings.topic_intake} is not on the broker at "
                       f"{settings.kafka_bootstrap}; {STACK_HINT}", EXIT_UNREACHABLE)
        filed = 0

        def filed_now(n: int) -> None:
            nonlocal filed
            filed = n
            tell(filed, result.decided, len(ids))

        _file(run, ids, filed_now)
        deadline = time.monotonic() + run.timeout_s
        prefix = tag.encode()
        while result.decided < len(ids):
            if time.monotonic() >= deadline:
                result.timed_out = True
                break
            for batch in consumer.poll(timeout_ms=POLL_MS).values():
                for msg in batch:
                    # Keyed by complaint id: other cases on the topic are not decoded.
                    if not (msg.key or b"").startswith(prefix) or msg.value is None:
                        continue
                    try:
                        event = decode_blocking(settings, msg.value, ("LifecycleEvent",)).record
                    except DecodeError:
                        continue
                    cid = event["complaint_id"]
                    if cid not in wanted or cid in result.decisions:
                        continue
                    decision = decision_of(event, streets)
                    if decision is not None:
                        result.decisions[cid] = decision
            tell(filed, result.decided, len(ids))
    finally:
        consumer.close()
    return result


@contextmanager
def _progress_bar(total: int, quiet: bool) -> Iterator[Callable[[int, int, int], None]]:
    """Two bars on stderr (filed, decided), so ``--json`` on stdout stays clean."""
    if quiet:
        yield lambda filed, decided, of: None
        return
    columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
               TimeElapsedColumn())
    with Progress(*columns, console=err_console(), transient=True) as bar:
        filed_task = bar.add_task("filed on hotline.intake", total=total)
        decided_task = bar.add_task("decided (hotline.lifecycle)", total=total)

        def update(filed: int, decided: int, of: int) -> None:
            bar.update(filed_task, completed=filed)
            bar.update(decided_task, completed=decided)

        yield update


def blind_live_command(
    file: Path = typer.Argument(..., help="A blind set (JSON Lines, the format of "
                                          "tests/data/blind/)."),
    timeout: float = typer.Option(DEFAULT_TIMEOUT_S, min=1, help="Seconds to wait for every "
                                  "case's decision once all are filed."),
    prefix: str = typer.Option(DEFAULT_PREFIX, help="Start of every complaint id filed "
                               "(<prefix>-<run>-<n>), so the cases are recognisable."),
    as_json: bool = typer.Option(False, "--json", help="Print the measures as JSON."),
    quiet: bool = typer.Option(False, "--quiet", help="No progress bar."),
    config_dir: Path | None = typer.Option(None, help="Config folder whose registry names "
                                           "the streets (default: settings)."),
) -> None:
    """The dispatch measures on a blind set, taken on the running system: each request is
    filed on hotline.intake and its decision read from hotline.lifecycle, as an outside
    evaluator would. Totals only, never the items. Needs the stack, a worker and the
    bridges running (cases stay open, under --prefix)."""
    if not _PREFIX.fullmatch(prefix):
        raise BadInput("--prefix: letters, digits, '-', '_' or '.', at most 64")
    if not file.is_file():
        raise BadFile(f"{file}: no such file" if not file.exists() else f"{file}: not a file")
    try:
        items = load_blind(file)
    except (EvalError, ValueError) as err:
        raise BadFile(str(err)) from None
    settings = Settings()
    folder = config_dir or settings.config_dir
    if not folder.is_dir():
        raise BadFile(f"{folder}: no such config folder")
    registry = load_config(folder, with_model=False, with_category_model=False).registry
    with _progress_bar(len(items), quiet) as progress:
        result = measure_live(LiveRun(settings, registry, items, prefix, timeout, progress))
    if result.timed_out:
        raise fail(f"error: timed out after {timeout:g} s: {result.decided} of "
                   f"{len(items)} cases decided (are `hotline worker` and `hotline bridges` "
                   f"running on topics '{settings.topic_prefix}…'?)", EXIT_NO_ANSWER)
    complaint_of = dict(zip((id(item) for item in items), result.complaint_ids, strict=True))
    report = score(items, lambda item: result.decisions[complaint_of[id(item)]])
    print_blind_report(report, f"Blind set {file.name}, live through Kafka",
                       as_json=as_json)
