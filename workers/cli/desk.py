"""``hotline desk list|decide``: the dispatch desk (派单复核) on the command line.

``list`` reads the cases waiting in AWAITING_REVIEW from the ledger, each with the
machine's candidates and why it was unsure. ``decide`` sends a ``DispatchDecided`` on
``hotline.intake`` (the same path a desk system takes), then waits for the case to apply
it: the case leaves the desk (dispatched or closed), or refuses the decision with a
reason (a unit not in the registry, a case not awaiting review).

Exit codes (docs/cli.md): 0 applied; 1 refused by the case; 2 bad arguments; 3 Kafka or
PostgreSQL unreachable; 5 no answer within ``--wait`` seconds (the decision may still apply).
"""

from __future__ import annotations

import json
import time
import uuid
from datetime import UTC, datetime
from typing import Any

import typer
from rich.table import Table

from schemas.codec import encode, headers_for
from workers.cli.failures import (
    EXIT_BAD_INPUT,
    EXIT_NO_ANSWER,
    EXIT_REFUSED,
    EXIT_UNREACHABLE,
    classify,
    require_kafka,
)
from workers.cli.output import console, fail, fmt_time, mask_text, print_json
from workers.runtime.kafka_io import make_producer
from workers.runtime.settings import Settings

app = typer.Typer(help="The dispatch desk (派单复核): cases the machine was unsure of.",
                  no_args_is_help=True)

EXIT_USAGE = EXIT_BAD_INPUT
DECISIONS = ("DISPATCH", "ANSWER_DIRECTLY", "REJECT", "REDIRECT")
TIERS = ("T2H", "T24H", "T7D", "T15D")

_WAITING = """
SELECT c.complaint_id, c.filed_at, c.tier, c.category, c.district, c.street,
       e.reason, e.attributes, e.candidates
  FROM cases c
  JOIN case_events e ON e.complaint_id = c.complaint_id
                    AND e.event_type = 'REVIEW_REQUESTED'
 WHERE c.status = 'AWAITING_REVIEW'
 ORDER BY (c.tier = 'T2H') IS TRUE DESC, c.filed_at
 LIMIT %s"""


def waiting_cases(settings: Settings, limit: int) -> list[dict[str, Any]]:
    """The cases at the desk with candidates and reasons (from the ledger): the urgent
    first (a T2H waits only where no Beijing unit can act), then the oldest."""
    import psycopg
    from psycopg.rows import dict_row

    with psycopg.connect(settings.dsn, connect_timeout=5, row_factory=dict_row) as conn:
        rows = conn.execute(_WAITING, (limit,)).fetchall()
    return [{**row, "filed_at": row["filed_at"].isoformat(),
             "candidates": row["candidates"] or [], "attributes": row["attributes"] or {}}
            for row in rows]


@app.command("list")
def list_command(
    limit: int = typer.Option(100, min=1, help="At most this many, T2H first, then oldest first."),
    as_json: bool = typer.Option(False, "--json", help="JSON instead of a table."),
) -> None:
    """Cases waiting for a dispatcher, with the machine's candidates and its doubts."""
    # The ledger away: psycopg's error, told in one line by HotlineGroup (exit 3).
    cases = waiting_cases(Settings(), limit)
    if as_json:
        print_json(cases)
        return
    table = Table(title=f"dispatch desk: {len(cases)} waiting")
    for column in ("complaint", "filed", "tier", "category", "why unsure", "candidates"):
        table.add_column(column)
    for case in cases:
        candidates = "\n".join(f"{c['unit_id']} {c['unit_name']} ({c['score']:g})"
                               for c in case["candidates"])
        table.add_row(case["complaint_id"], fmt_time(datetime.fromisoformat(case["filed_at"])),
                      case["tier"] or "", case["category"] or "",
                      mask_text(case["reason"] or ""), candidates)
    console().print(table)


@app.command("decide")
def decide_command(
    complaint_id: str = typer.Argument(..., help="The case at the desk."),
    decision: str = typer.Option("DISPATCH", help=f"One of {', '.join(DECISIONS)}."),
    unit: str | None = typer.Option(None, help="DISPATCH: the lead unit (default: the top "
                                               "candidate)."),
    tier: str | None = typer.Option(None, help="DISPATCH: the tier (default: the machine's)."),
    category: str | None = typer.Option(None, help="DISPATCH: the category code."),
    redirect_to: str | None = typer.Option(None, help="REDIRECT: 110, 119, 120, …"),
    note: str | None = typer.Option(None, help="Kept on the case."),
    dispatcher: str = typer.Option(..., help="Who decides (your desk account)."),
    wait: float = typer.Option(15.0, min=0, help="Seconds to wait for the case to apply it "
                                                 "(0: send and return)."),
    as_json: bool = typer.Option(False, "--json", help="Print the outcome as JSON."),
) -> None:
    """Decide a case at the desk: sends DispatchDecided and shows what the case made of it."""
    decision = decision.upper()
    if decision not in DECISIONS:
        raise fail(f"--decision must be one of {', '.join(DECISIONS)}", EXIT_USAGE)
    if tier is not None and tier not in TIERS:
        raise fail(f"--tier must be one of {', '.join(TIERS)}", EXIT_USAGE)
    if decision == "REDIRECT" and not redirect_to:
        raise fail("REDIRECT needs --redirect-to (110, 119, 120, …)", EXIT_USAGE)
    settings = Settings()
    event_id = f"desk-{uuid.uuid4().hex}"
    record = {"event_id": event_id, "complaint_id": complaint_id,
              "decided_at": datetime.now(UTC), "dispatcher_id": dispatcher,
              "decision": decision, "unit_id": unit, "tier": tier, "category": category,
              "note": note, "redirect_to": redirect_to}
    require_kafka(settings.kafka_bootstrap)  # at once, not after the client's 30 s retries
    producer = make_producer(settings)  # kafka.errors.*: one line by HotlineGroup (exit 3)
    try:
        producer.send(settings.topic_intake, key=complaint_id.encode(),
                      value=encode("DispatchDecided", record),
                      headers=headers_for("DispatchDecided")).get(timeout=30)
    finally:
        producer.close(timeout=5)
    outcome = {"complaint_id": complaint_id, "event_id": event_id, "sent": True}
    if wait > 0:
        try:
            outcome.update(await_outcome(settings, complaint_id, event_id, wait))
        except Exception as exc:
            raise fail(f"sent ({event_id}), but the ledger did not answer: "
                       f"{classify(exc).message}", EXIT_UNREACHABLE) from None
    _report(outcome, as_json)


def await_outcome(settings: Settings, complaint_id: str, event_id: str,
                  wait: float) -> dict[str, Any]:
    """Poll the ledger until the case applied or refused ``event_id``, or ``wait`` ends."""
    import psycopg

    end = time.monotonic() + wait
    with psycopg.connect(settings.dsn, connect_timeout=5, autocommit=True) as conn:
        while True:
            refused = conn.execute(
                """SELECT reason, attributes->>'code' FROM case_events
                    WHERE complaint_id = %s AND event_type = 'REPLY_REFUSED'
                      AND attributes->>'refused_event_id' = %s""",
                (complaint_id, event_id)).fetchone()
            if refused:
                return {"applied": False, "code": refused[1], "reason": refused[0]}
            row = conn.execute(
                "SELECT status, lead_unit_id, tier FROM cases WHERE complaint_id = %s",
                (complaint_id,)).fetchone()
            if row and row[0] != "AWAITING_REVIEW":
                return {"applied": True, "status": row[0], "lead_unit_id": row[1],
                        "tier": row[2]}
            if time.monotonic() >= end:
                return {"applied": None, "status": row[0] if row else None}
            time.sleep(0.2)


def _report(outcome: dict[str, Any], as_json: bool) -> None:
    if as_json:
        print(json.dumps(outcome, ensure_ascii=False))
    if outcome.get("applied") is False:
        raise fail(f"{outcome['complaint_id']}: refused ({outcome['code']}): "
                   f"{mask_text(outcome['reason'] or '')}", EXIT_REFUSED)
    if "applied" in outcome and outcome["applied"] is None:
        raise fail(f"{outcome['complaint_id']}: sent ({outcome['event_id']}); no answer yet "
                   "(the case may not exist: see hotline dlq list --key)", EXIT_NO_ANSWER)
    if as_json:
        return
    if outcome.get("applied") is True:
        lead = f" to {outcome['lead_unit_id']}" if outcome.get("lead_unit_id") else ""
        console().print(f"{outcome['complaint_id']}: {outcome['status']}{lead}")
    else:
        console().print(f"{outcome['complaint_id']}: sent ({outcome['event_id']})")
