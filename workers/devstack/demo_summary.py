"""What ``hotline demo`` prints at the end: the ledger summary, or the stuck cases.

The summary is read from the PostgreSQL ledger: statuses and outcomes, tiers, districts,
notices, the handling rules exercised (returns, re-dispatches, city coordination,
extensions, whistles, supplements, urges, withdrawals, merged repeat filings, reopens,
counted from ``case_events``) and the three rates with the weighted score of
``rules.yaml``.
"""

from __future__ import annotations

import time
from collections.abc import Iterable
from typing import Any

import psycopg
import yaml
from rich.console import Console
from rich.table import Table

from activities.governance.rates import RATE_COUNTS_SQL, ThreeRates
from workers.devstack.demo_board import Board
from workers.devstack.stack import StackStatus
from workers.runtime.settings import Settings


def _weights(settings: Settings) -> dict[str, float]:
    """The weights of the three rates, from ``rules.yaml``."""
    rules: dict[str, Any] = yaml.safe_load(
        (settings.config_dir / "rules.yaml").read_text(encoding="utf-8"))
    return {k: float(v) for k, v in rules["weights"].items()}


def _table(title: str, headers: Iterable[str], rows: Iterable[Iterable[Any]]) -> Table:
    table = Table(title=title, title_justify="left")
    heads = list(headers)
    for i, head in enumerate(heads):
        table.add_column(head, justify="left" if i == 0 else "right")
    for row in rows:
        table.add_row(*(str(v) for v in row))
    return table


# The handling rules in the summary: key, label, condition on ``case_events`` and what one
# event counts for. The conditions are constants of this module, never input.
_DECIDED = "event_type = 'EXTENSION_DECIDED'"
RULE_ROWS: tuple[tuple[str, str, str, str], ...] = (
    ("returns", "returns 退单", "event_type = 'RETURNED'", "1"),
    ("redispatches", "re-dispatches 改派", "event_type = 'REDISPATCHED'", "1"),
    ("city", "city coordinations 市级协调",
     "event_type = 'NOTICE' AND attributes->>'notice_type' = 'CITY_COORDINATION'", "1"),
    ("requested", "extensions requested 延期", "event_type = 'EXTENSION_REQUESTED'", "1"),
    ("by_rule", "  granted by rule", f"{_DECIDED} AND attributes->>'granted' = 'true' "
                                     "AND attributes->>'decided_by' = 'rule'", "1"),
    ("by_supervisor", "  granted by a supervisor",
     f"{_DECIDED} AND attributes->>'granted' = 'true' "
     "AND attributes->>'decided_by' IS DISTINCT FROM 'rule'", "1"),
    ("denied", "  denied", f"{_DECIDED} AND attributes->>'granted' = 'false'", "1"),
    ("whistles", "whistles 吹哨", "event_type = 'WHISTLED'", "1"),
    ("called_in", "  assisting units called in", "event_type = 'WHISTLED'",
     "coalesce(cardinality(string_to_array(attributes->>'units', ',')), 0)"),
    ("assist_replies", "  assisting units' replies", "event_type = 'ASSIST_REPLIED'", "1"),
    ("supplements", "supplements 补充", "event_type = 'SUPPLEMENTED'", "1"),
    ("urges", "urges 催办", "event_type = 'URGED'", "1"),
    ("urged", "  URGED escalations",
     "event_type = 'NOTICE' AND attributes->>'notice_type' = 'URGED'", "1"),
    ("withdrawals", "withdrawals 撤诉", "event_type = 'WITHDRAWN'", "1"),
    ("merged", "merged duplicates 重复件", "event_type = 'MERGED'", "1"),
    ("reopens", "reopens 重办", "event_type = 'REOPENED'", "1"),
    ("refused", "refused replies", "event_type = 'REPLY_REFUSED'", "1"),
)


def _rule_counts(conn: psycopg.Connection[Any], ids: list[str]) -> dict[str, tuple[int, int]]:
    """Key → (events, cases) of each handling rule, from ``case_events``."""
    columns = ",\n".join(
        f"coalesce(sum({amount}) FILTER (WHERE {cond}), 0), "
        f"count(DISTINCT complaint_id) FILTER (WHERE {cond})"
        for _, _, cond, amount in RULE_ROWS)
    row = conn.execute(f"SELECT {columns} FROM case_events WHERE complaint_id = ANY(%s)",
                       (ids,)).fetchone()
    values = list(row or [0] * (2 * len(RULE_ROWS)))
    return {key: (int(values[2 * i]), int(values[2 * i + 1]))
            for i, (key, _, _, _) in enumerate(RULE_ROWS)}


def rules_table(counts: dict[str, tuple[int, int]]) -> Table:
    """The handling rules exercised: events and cases of each, with notes."""
    events = {key: n for key, (n, _) in counts.items()}
    pending = events["requested"] - events["by_rule"] - events["by_supervisor"] - events["denied"]
    notes = {
        "requested": f"{pending} still pending at close" if pending > 0 else "",
        "urges": (f"{events['merged']} of them by merged repeat filings"
                  if events["merged"] else ""),
        "refused": "replies the case's state or holder did not allow" if events["refused"]
                   else "",
    }
    table = Table(title="handling rules (case_events)", title_justify="left")
    for i, head in enumerate(("rule", "events", "cases", "")):
        table.add_column(head, justify="right" if i in (1, 2) else "left")
    for key, label, _, _ in RULE_ROWS:
        n, cases = counts[key]
        table.add_row(label, str(n), str(cases), notes.get(key, ""))
    return table


def _pct(num: int, den: int) -> str:
    return f"{100 * num / den:.1f} %" if den else "n/a"


def print_summary(settings: Settings, complaint_ids: list[str], closed_seen: int,
                  console: Console) -> None:
    """Print this run's results from the PostgreSQL ledger."""
    ids = list(complaint_ids)
    with psycopg.connect(settings.dsn, connect_timeout=10, autocommit=True) as conn:
        # The ledger is written right after the lifecycle event is published: let it catch up.
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline:
            row = conn.execute("SELECT count(*) FROM cases WHERE complaint_id = ANY(%s) "
                               "AND status = 'CLOSED'", (ids,)).fetchone()
            if row and row[0] >= closed_seen:
                break
            time.sleep(0.3)

        def rows(sql: str) -> list[tuple[Any, ...]]:
            return conn.execute(sql, (ids,)).fetchall()

        by_status = rows("""SELECT status, coalesce(outcome, '-'), count(*) FROM cases
                            WHERE complaint_id = ANY(%s) GROUP BY 1, 2 ORDER BY 3 DESC, 1""")
        by_tier = rows("""SELECT coalesce(tier, '-'), count(*),
                                 count(*) FILTER (WHERE overdue),
                                 count(*) FILTER (WHERE escalation_level = 'DISTRICT'),
                                 count(*) FILTER (WHERE escalation_level = 'CITY')
                          FROM cases WHERE complaint_id = ANY(%s)
                          GROUP BY 1 ORDER BY 1""")
        by_district = rows("""SELECT coalesce(district, '(unknown)'), count(*),
                                     count(DISTINCT street)
                              FROM cases WHERE complaint_id = ANY(%s)
                              GROUP BY 1 ORDER BY 2 DESC, 1 LIMIT 16""")
        notices = rows("""SELECT coalesce(attributes->>'notice_type', reason, 'OTHER'),
                                 count(*), count(DISTINCT complaint_id)
                          FROM case_events
                          WHERE complaint_id = ANY(%s) AND event_type = 'NOTICE'
                          GROUP BY 1 ORDER BY 2 DESC""")
        rule_counts = _rule_counts(conn, ids)
        rates = conn.execute(
            f"""SELECT {RATE_COUNTS_SQL}, avg(score) FILTER (WHERE counted)
                  FROM evaluations WHERE complaint_id = ANY(%s)""", (ids,)).fetchone()

    console.rule("summary (PostgreSQL ledger)")
    in_ledger = sum(r[2] for r in by_status)
    console.print(f"{in_ledger} of {len(ids)} cases of this run are in the ledger.")
    console.print(_table("cases by final status and outcome", ("status", "outcome", "cases"),
                         by_status))
    console.print(_table("cases by tier", ("tier", "cases", "overdue", "district supervision",
                                           "city supervision"), by_tier))
    console.print(_table("cases by district", ("district", "cases", "streets"), by_district))
    console.print(_table("notices by type", ("notice", "notices", "cases"), notices or [
        ("none", 0, 0)]))
    console.print(rules_table(rule_counts))

    *counts, mean_score = rates or (0, 0, 0, 0, 0, None)
    counted, responded, resolved, reached, satisfied = counts
    weights = _weights(settings)
    # One definition of the rates with the rankings and the report (satisfaction over the
    # citizens reached).
    score = ThreeRates(*counts).score(weights)
    three = Table(title=f"three rates over {counted} counted cases", title_justify="left")
    three.add_column("rate")
    three.add_column("value", justify="right")
    three.add_column("weight", justify="right")
    three.add_column("how")
    three.add_row("response 响应率", _pct(responded, counted), f"{weights.get('response', 0):g}",
                  f"{responded} responded / {counted} counted")
    three.add_row("resolution 解决率", _pct(resolved, counted),
                  f"{weights.get('resolution', 0):g}", f"{resolved} resolved / {counted} counted")
    three.add_row("satisfaction 满意率", _pct(satisfied, reached),
                  f"{weights.get('satisfaction', 0):g}",
                  f"{satisfied} satisfied or basically satisfied / {reached} reached")
    three.add_row("weighted score", f"{score:.1f}", "", "weights from deploy/config/rules.yaml")
    if mean_score is not None:
        three.add_row("mean case score", f"{float(mean_score):.3f}", "", "evaluations.score")
    console.print(three)


def print_stuck(board: Board, status: StackStatus | None, settings: Settings,
                console: Console, timeout: float) -> None:
    """The cases not closed at the timeout, and where to look at them."""
    stuck = board.stuck()
    console.print(f"[bold red]timed out after {timeout:.0f} s: {len(stuck)} of {board.total} "
                  "cases are not closed.[/]")
    table = Table(title="stuck cases", title_justify="left")
    for head in ("complaint", "tier", "status", "last event", "seconds since"):
        table.add_column(head)
    now = time.monotonic()
    for cid, track in stuck[:30]:
        table.add_row(cid, track.tier or "-", track.status, track.last_event,
                      f"{now - track.last_at:.0f}" if track.last_at else "-")
    console.print(table)
    if len(stuck) > 30:
        console.print(f"... and {len(stuck) - 30} more.")
    ui = status.temporal_ui_url if status else f"http://127.0.0.1:{settings.temporal_ui_port}"
    demo_dir = settings.state_dir / "demo"
    console.print(f"Look at a case in the Temporal UI ({ui}, workflow id complaint-<id>) and "
                  f"at the logs in {demo_dir}/worker.log and {demo_dir}/bridges.log.")

