"""``hotline dlq list|show|redrive``: read the dead-letter topic and re-drive fixed messages.

Reading needs no consumer group: the commands assign every partition of ``hotline.dlq``
and read from the first offset that can match (``--since`` seeks by timestamp), so they
never move a group's offsets and may run while the bridges do.

A dead letter is addressed by its position on the DLQ topic, ``PARTITION:OFFSET`` (as
``list`` prints it; ``dlq:PARTITION:OFFSET`` is accepted too).

Re-driving publishes the original bytes (or fixed bytes from ``--value-file``) to the
original topic with the original key, the ``event-type`` header and a header
``redriven-from: dlq:<partition>:<offset>``; the bridges then apply it like any message.
The re-drive is recorded in the ledger table ``dlq_redrives`` (migration 003) inside the
transaction that waits for the broker's acknowledgement: a dead letter is re-driven at most
once, and a second ``redrive`` of it is refused (exit 1) and names the first one. What
still fails lands on the DLQ again, at a new position, and can be fixed and re-driven in
turn. The case workflow also drops an event whose ``event_id`` it has seen, so even a
message published twice (a crash between the broker's ack and the ledger commit) is
applied once.

Personal data (caller phone and name) is never printed: decoded records are redacted.
"""

from __future__ import annotations

import base64
import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import asdict
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import typer
from rich.table import Table

from schemas.codec import DecodeError
from workers.cli.dead_letters import DeadLetter, fetch_dead_letter, read_dead_letters
from workers.cli.failures import BadFile, HotlineGroup, require_kafka
from workers.cli.output import (
    console,
    err_console,
    fail,
    fmt_time,
    mask_text,
    print_json,
    redact,
    run_as_process,
)
from workers.cli.redrive import RedriveRefused, RedriveResult, redrive, redrive_marks
from workers.runtime.kafka_io import make_producer
from workers.runtime.schema_registry import decode_blocking
from workers.runtime.settings import Settings

__all__ = ["app", "parse_position", "parse_when"]

app = typer.Typer(
    no_args_is_help=True, cls=HotlineGroup,  # one-line failures under python -m too
    help="Dead letters: list and inspect hotline.dlq, re-drive fixed messages once.",
)


# --------------------------------------------------------------------------------------
# Options


_RELATIVE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([smhdw])\s*$", re.IGNORECASE)
_UNITS = {"s": "seconds", "m": "minutes", "h": "hours", "d": "days", "w": "weeks"}


def parse_when(text: str, *, now: datetime | None = None) -> datetime:
    """A point in time from ``--since``/``--until``.

    Accepts a duration back from now (``90s``, ``15m``, ``2h``, ``3d``, ``1w``) or an ISO
    8601 date or date-time; a date-time without an offset is local time.

    Raises:
        typer.BadParameter: Neither form.
    """
    now = now or datetime.now(UTC)
    match = _RELATIVE.match(text)
    if match:
        amount, unit = float(match.group(1)), match.group(2).lower()
        return now - timedelta(**{_UNITS[unit]: amount})
    try:
        when = datetime.fromisoformat(text.strip())
    except ValueError:
        raise typer.BadParameter(
            f"{text!r}: expected a duration such as 30m, 2h, 3d or an ISO date-time "
            "such as 2026-11-22T08:00"
        ) from None
    if when.tzinfo is None:
        when = when.astimezone()  # local time, as an operator types it
    return when.astimezone(UTC)


_POSITION = re.compile(r"^(?:dlq:)?(\d+):(\d+)$")


def parse_position(text: str) -> tuple[int, int]:
    """``PARTITION:OFFSET`` (or ``dlq:PARTITION:OFFSET``) as two integers.

    Raises:
        typer.BadParameter: Another shape.
    """
    match = _POSITION.match(text.strip())
    if not match:
        raise typer.BadParameter(f"{text!r}: expected PARTITION:OFFSET such as 0:42")
    return int(match.group(1)), int(match.group(2))


# --------------------------------------------------------------------------------------
# Presentation


def _short_type(event_type: Any) -> str:
    return str(event_type).rsplit(".", 1)[-1] if event_type else "—"


def _clip(text: str, width: int) -> str:
    text = " ".join(text.split())
    return text if len(text) <= width else text[: width - 1] + "…"


def _summary(letter: DeadLetter, mark: dict[str, Any] | None) -> dict[str, Any]:
    r = letter.record
    return {
        "position": letter.position,
        "at": letter.at.isoformat() if letter.at else None,
        "reason": letter.reason,
        "event_type": r.get("event_type"),
        "key": letter.key_text,
        "topic": r.get("topic"),
        "partition": r.get("partition"),
        "offset": r.get("offset"),
        "consumer_group": r.get("consumer_group"),
        "error": mask_text(str(r.get("error") or letter.problem or "")),
        "value_bytes": len(r.get("value") or b""),
        "redriven": _mark_json(mark),
    }


def _mark_json(mark: dict[str, Any] | None) -> dict[str, Any] | None:
    if not mark:
        return None
    out = dict(mark)
    if isinstance(out.get("redriven_at"), datetime):
        out["redriven_at"] = out["redriven_at"].isoformat()
    return out


def _mark_text(mark: dict[str, Any] | None, marks_known: bool) -> str:
    if not marks_known:
        return "?"
    if not mark:
        return ""
    return f"→ {mark['target_partition']}:{mark['target_offset']}" + (
        " (fixed)" if mark.get("replaced") else ""
    )


def _letters_table(
    letters: Sequence[DeadLetter], marks: Mapping[tuple[int, int], dict[str, Any]] | None,
    title: str,
) -> Table:
    table = Table(title=title, title_justify="left")
    for column in ("position", "dead-lettered", "reason", "event", "key", "from",
                   "error", "re-driven"):
        table.add_column(column, no_wrap=column != "error", overflow="fold")
    for letter in letters:
        r = letter.record
        mark = (marks or {}).get((letter.partition, letter.offset))
        source = f"{r.get('topic')}:{r.get('partition')}:{r.get('offset')}" if r else "?"
        table.add_row(
            letter.position, fmt_time(letter.at), letter.reason, _short_type(r.get("event_type")),
            letter.key_text or "—", source,
            _clip(mask_text(str(r.get("error") or letter.problem or "")), 70),
            _mark_text(mark, marks is not None),
        )
    return table


def _settings() -> Settings:
    # Fresh from the environment on every command (tests change it between invocations).
    settings = Settings()
    require_kafka(settings.kafka_bootstrap)  # at once, not after the client's 30 s retries
    return settings


# --------------------------------------------------------------------------------------
# Commands


@app.command("list")
def list_command(
    reason: list[str] = typer.Option(
        [], "--reason", "-r",
        help="Only this reason code (repeatable): UNKNOWN_CASE, MALFORMED, ...",
    ),
    since: str | None = typer.Option(
        None, help="Dead-lettered at or after: 2h, 3d, or 2026-11-22T08:00 (local time)."
    ),
    until: str | None = typer.Option(None, help="Dead-lettered before (same forms)."),
    topic: str | None = typer.Option(
        None, help="Only messages from this topic (e.g. hotline.unit-replies)."
    ),
    key: str | None = typer.Option(None, help="Only messages with this key (complaint id)."),
    limit: int = typer.Option(100, min=0, help="Show the most recent N matches."),
    as_json: bool = typer.Option(False, "--json", help="JSON instead of a table."),
) -> None:
    """List dead letters, oldest first, with their reason, origin and re-drive state."""
    start = parse_when(since) if since else None
    end = parse_when(until) if until else None
    settings = _settings()
    try:
        letters = read_dead_letters(settings, reasons=reason, since=start, until=end,
                                    topic=topic, key=key, limit=limit)
    except (LookupError, TimeoutError) as exc:
        raise fail(str(exc)) from None
    marks = redrive_marks(settings)
    if as_json:
        print_json([_summary(d, (marks or {}).get((d.partition, d.offset))) for d in letters])
        return
    out = console()
    out.print(_letters_table(letters, marks, f"{settings.topic_dlq}: {len(letters)} dead "
                             f"letter{'s' if len(letters) != 1 else ''}"))
    if marks is None:
        err_console().print("(ledger not reachable: re-drive state unknown)")
    if letters:
        counts: dict[str, int] = {}
        for d in letters:
            counts[d.reason] = counts.get(d.reason, 0) + 1
        out.print("by reason: " + ", ".join(f"{k} {v}" for k, v in sorted(counts.items())))


@app.command("show")
def show_command(
    position: str = typer.Argument(..., help="PARTITION:OFFSET on the DLQ (from `list`)."),
    as_json: bool = typer.Option(False, "--json", help="JSON instead of text."),
) -> None:
    """Show one dead letter: where it came from, the error, and the decoded original."""
    partition, offset = parse_position(position)
    settings = _settings()
    try:
        letter = fetch_dead_letter(settings, partition, offset)
    except (LookupError, TimeoutError) as exc:
        raise fail(str(exc)) from None
    marks = redrive_marks(settings)
    mark = (marks or {}).get((partition, offset))
    r = letter.record
    original: dict[str, Any] = {}
    if r:
        try:
            decoded = decode_blocking(settings, bytes(r["value"]))
            original = {"record": decoded.name, "decoded": redact(decoded.record)}
        except DecodeError as exc:
            raw = bytes(r["value"])
            original = {"record": None, "decode_error": f"{exc.reason}: {exc.detail}",
                        "head_hex": raw[:48].hex(" ")}
    if as_json:
        data = _summary(letter, mark)
        data["error"] = mask_text(str(r.get("error") or letter.problem or ""))
        data["dead_letter_id"] = r.get("event_id")
        data["value_b64"] = base64.b64encode(bytes(r.get("value") or b"")).decode()
        data["original"] = original
        print_json(data)
        return
    out = console()
    table = Table(show_header=False, title=f"dead letter {letter.position} on "
                  f"{settings.topic_dlq}", title_justify="left")
    table.add_column("field", style="bold")
    table.add_column("value", overflow="fold")
    rows = [
        ("dead-lettered", fmt_time(letter.at)),
        ("reason", letter.reason),
        ("from", letter.source),
        ("key", letter.key_text or "—"),
        ("event type", str(r.get("event_type") or "—")),
        ("consumer group", str(r.get("consumer_group") or "—")),
        ("dead letter id", str(r.get("event_id") or "—")),
        ("value", f"{len(r.get('value') or b'')} bytes"),
        ("re-driven", _mark_text(mark, marks is not None) or "no"),
    ]
    for name, value in rows:
        table.add_row(name, value)
    out.print(table)
    out.print("[bold]error[/bold]")
    out.print(mask_text(str(r.get("error") or letter.problem or "")), markup=False)
    if "decoded" in original:
        out.print(f"[bold]original {original['record']} (personal data redacted)[/bold]")
        out.print(json.dumps(original["decoded"], ensure_ascii=False, indent=2), markup=False)
    elif original:
        out.print(f"[bold]original does not decode[/bold]: {original['decode_error']}",
                  markup=False)
        out.print(f"first bytes: {original['head_hex']}", markup=False)


@app.command("redrive")
def redrive_command(
    positions: list[str] = typer.Argument(
        None, help="PARTITION:OFFSET of each dead letter to re-drive."
    ),
    value_file: Path | None = typer.Option(
        None, "--value-file",
        help="Replacement bytes (a fixed message, e.g. from a fix script); one position only.",
    ),
    all_matching: bool = typer.Option(
        False, "--all", help="Re-drive every dead letter that matches the filters below."
    ),
    reason: list[str] = typer.Option([], "--reason", "-r", help="With --all: reason code."),
    since: str | None = typer.Option(None, help="With --all: dead-lettered at or after."),
    until: str | None = typer.Option(None, help="With --all: dead-lettered before."),
    topic: str | None = typer.Option(None, help="With --all: original topic."),
    key: str | None = typer.Option(None, help="With --all: original key (complaint id)."),
    by: str = typer.Option("cli", help="Who re-drives (recorded in the ledger)."),
    force: bool = typer.Option(
        False, help="Send bytes that do not decode as a contract event anyway."
    ),
    dry_run: bool = typer.Option(False, "--dry-run", help="Say what would be re-driven."),
    as_json: bool = typer.Option(False, "--json", help="JSON instead of text."),
) -> None:
    """Re-publish dead letters to their original topic, each at most once.

    Exit status 1 when any named dead letter was refused (already re-driven, or its
    bytes do not decode); with --all, those already re-driven are skipped and reported.
    """
    positions = positions or []
    if bool(positions) == all_matching:
        raise fail("name dead letters as PARTITION:OFFSET, or use --all with filters", 2)
    if value_file is not None and len(positions) != 1:
        raise fail("--value-file replaces the bytes of exactly one dead letter", 2)
    value = value_file.read_bytes() if value_file is not None else None  # OSError: exit 4
    if value is not None and not value:
        raise BadFile(f"{value_file}: empty (a fixed message has bytes)")
    start = parse_when(since) if since else None
    end = parse_when(until) if until else None
    wanted = [parse_position(p) for p in positions]
    settings = _settings()
    try:
        if all_matching:
            letters = read_dead_letters(settings, reasons=reason, since=start, until=end,
                                        topic=topic, key=key)
        else:
            letters = [fetch_dead_letter(settings, *p) for p in wanted]
    except (LookupError, TimeoutError) as exc:
        raise fail(str(exc)) from None

    results: list[RedriveResult] = []
    failed = False
    producer = None if dry_run or not letters else make_producer(
        settings, client_id="hotline-dlq-redrive")
    try:
        for letter in letters:
            if dry_run:
                results.append(RedriveResult(
                    letter.position, False,
                    f"would re-drive {_short_type(letter.record.get('event_type'))} "
                    f"({letter.reason}) to {letter.record.get('topic')}"))
                continue
            try:
                result = redrive(settings, letter, value=value, by=by, force=force,
                                 producer=producer)
            except RedriveRefused as exc:
                result = RedriveResult(letter.position, False, str(exc))
                failed = True
            else:
                if not result.redriven and not all_matching:
                    failed = True
            results.append(result)
    finally:
        if producer is not None:
            producer.close(timeout=10)
    if as_json:
        print_json([{**asdict(r), "previous": _mark_json(r.previous)} for r in results])
    else:
        out = console()
        for r in results:
            style = "green" if r.redriven else ("yellow" if r.previous else "red")
            out.print(f"[{style}]{r.position}[/{style}] {mask_text(r.detail)}")
        done = sum(r.redriven for r in results)
        out.print(f"{done} re-driven, {len(results) - done} not re-driven"
                  + (" (dry run)" if dry_run else ""))
    if failed:
        raise typer.Exit(1)


if __name__ == "__main__":
    run_as_process(app)
