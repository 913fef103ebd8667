"""The demo's live board: what the actors and the lifecycle follower have seen.

One :class:`Board` is shared by every thread of a demo run; it counts each case's stages
(once per case), the notices and handling rules (every occurrence), the actors' traffic
and the problems the hotline processes logged, and renders that as the live view (or one
plain line when the console is not a terminal).
"""

from __future__ import annotations

import threading
import time
from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from rich.console import Group
from rich.progress_bar import ProgressBar
from rich.table import Table
from rich.text import Text

# Silence on the lifecycle topic this long, with cases open, is worth a hint on the board.
STALL_HINT_S = 30.0

# Lifecycle events the board counts, once per case, in lifecycle order.
STAGES: tuple[tuple[str, str, tuple[str, ...]], ...] = (
    ("filed", "filed by the call centre", ()),
    ("accepted", "accepted for dispatch", ("ACCEPTED",)),
    ("closed_at_intake", "answered / redirected / rejected / merged", (
        "ANSWERED_DIRECTLY", "REDIRECTED", "REJECTED", "MERGED")),
    ("dispatched", "dispatched", ("DISPATCHED",)),
    ("signed", "signed for", ("SIGNED",)),
    ("completed", "completed", ("COMPLETED",)),
    ("callback", "called back", ("CALLBACK",)),
    ("reopened", "reopened", ("REOPENED",)),
    ("withdrawn", "withdrawn", ("WITHDRAWN",)),
    ("closed", "closed", ("CLOSED",)),
)
# Stages shown only once something reached them.
OPTIONAL_STAGES = ("closed_at_intake", "reopened", "withdrawn")

# Lifecycle events of the handling rules, counted on the board (every occurrence).
RULE_EVENTS = ("RETURNED", "REDISPATCHED", "EXTENSION_REQUESTED", "WHISTLED",
               "ASSIST_REPLIED", "SUPPLEMENTED", "URGED", "WITHDRAWN", "MERGED", "REOPENED")


@dataclass
class CaseTrack:
    """Where one case of this run stands, as the lifecycle follower saw it."""

    tier: str | None = None
    status: str = "FILED"
    last_event: str = "(not filed yet)"
    last_at: float = 0.0
    seen: set[str] = field(default_factory=set)


class Board:
    """What the actors and the lifecycle follower have seen; shared by every thread."""

    def __init__(self, complaint_ids: Iterable[str]) -> None:
        self._lock = threading.Lock()
        self.cases: dict[str, CaseTrack] = {cid: CaseTrack() for cid in complaint_ids}
        self.stage_counts: Counter[str] = Counter()
        self.notices: Counter[str] = Counter()
        self.rules: Counter[str] = Counter()
        self._event_ids: set[str] = set()
        self.sent: Counter[str] = Counter()
        self.refused = 0
        self.undecodable = 0
        self.errors: list[str] = []
        self.started = time.monotonic()
        self.last_event_at = self.started
        # Problems the worker and bridges logged: {"worker": Counter(level -> lines)}.
        self.log_levels: dict[str, Counter[str]] = {}

    @property
    def total(self) -> int:
        return len(self.cases)

    def filed(self, cid: str) -> None:
        with self._lock:
            track = self.cases[cid]
            track.last_event, track.last_at = "FILED", time.monotonic()
            self.stage_counts["filed"] += 1

    def lifecycle(self, rec: Mapping[str, Any]) -> None:
        """Apply one ``LifecycleEvent`` of this run."""
        event_type = str(rec["event_type"])
        with self._lock:
            track = self.cases[rec["complaint_id"]]
            track.status = str(rec["status"])
            track.tier = rec.get("tier") or track.tier
            track.last_event, track.last_at = event_type, time.monotonic()
            self.last_event_at = track.last_at
            if event_type not in track.seen:
                track.seen.add(event_type)
                for stage, _, events in STAGES:
                    if event_type in events:
                        self.stage_counts[stage] += 1
            event_id = str(rec.get("event_id") or "")
            if event_id in self._event_ids:
                return  # Kafka delivered it twice: count it once
            self._event_ids.add(event_id)
            attrs = rec.get("attributes") or {}
            if event_type == "NOTICE":
                self.notices[attrs.get("notice_type") or rec.get("reason") or "OTHER"] += 1
            elif event_type == "REPLY_REFUSED":
                self.refused += 1
            elif event_type in RULE_EVENTS:
                self.rules[event_type] += 1
                if event_type == "WHISTLED":
                    self.rules["assisting units"] += len(
                        [u for u in str(attrs.get("units") or "").split(",") if u])
            elif event_type == "EXTENSION_DECIDED":
                granted = attrs.get("granted") == "true"
                self.rules["EXTENSION_GRANTED" if granted else "EXTENSION_DENIED"] += 1

    def count_sent(self, what: str) -> None:
        with self._lock:
            self.sent[what] += 1

    def count_undecodable(self) -> None:
        with self._lock:
            self.undecodable += 1

    def fail(self, actor: str, exc: BaseException) -> None:
        with self._lock:
            self.errors.append(f"{actor}: {type(exc).__name__}: {exc}")

    @property
    def closed(self) -> int:
        with self._lock:
            return self.stage_counts["closed"]

    def stuck(self) -> list[tuple[str, CaseTrack]]:
        with self._lock:
            return [(cid, t) for cid, t in self.cases.items() if "CLOSED" not in t.seen]

    def render(self, title: str) -> Group:
        """The live board: one bar per stage, then notices and the actors' traffic."""
        with self._lock:
            table = Table(title=title, title_justify="left", expand=False, box=None,
                          padding=(0, 1))
            table.add_column("stage")
            table.add_column("cases", justify="right")
            table.add_column("", width=42)
            for stage, label, _ in STAGES:
                n = self.stage_counts[stage]
                if stage in OPTIONAL_STAGES and n == 0:
                    continue
                table.add_row(label, f"{n}/{self.total}",
                              ProgressBar(total=self.total, completed=n, width=40))
            notices = " · ".join(f"{k} {v}" for k, v in self.notices.most_common()) or "none"
            sent = self.sent
            lines = [
                Text.assemble(("warnings & escalations: ", "bold yellow"), notices),
                Text.assemble(("handling rules: ", "bold cyan"), self._rules_line()),
                Text(
                    f"unit replies sent: {sent['DispatchSigned']} signed, "
                    f"{sent['DispatchReturned']} returned, {sent['ProgressReported']} "
                    f"progress, {sent['UnitsWhistled']} whistles, "
                    f"{sent['ExtensionRequested']} extension requests, "
                    f"{sent['HandlingCompleted']} completed · citizens: "
                    f"{sent['ComplaintSupplemented']} supplements, {sent['ComplaintUrged']} "
                    f"urges, {sent['ComplaintWithdrawn']} withdrawals, {sent['repeat filing']} "
                    f"repeat filings · supervisor: {sent['decision']} decisions"
                    + (f" ({sent['decision failed']} failed)" if sent["decision failed"] else "")
                    + f" · callbacks: {sent['reached']} reached, {sent['unreached']} unreached"
                    f" · refused replies: {self.refused}"
                ),
                Text(f"elapsed {time.monotonic() - self.started:,.0f} s", style="dim"),
            ]
            problems = self._log_problems()
            if problems:
                lines.insert(2, Text(problems, style="red"))
            return Group(table, *lines)

    def _rules_line(self) -> str:
        r, n = self.rules, self.notices
        return (
            f"returns {r['RETURNED']} · re-dispatches {r['REDISPATCHED']} · city coordination "
            f"{n['CITY_COORDINATION']} · extensions {r['EXTENSION_REQUESTED']} asked, "
            f"{r['EXTENSION_GRANTED']} granted, {r['EXTENSION_DENIED']} denied · whistles "
            f"{r['WHISTLED']} ({r['assisting units']} units, {r['ASSIST_REPLIED']} replies) · "
            f"supplements {r['SUPPLEMENTED']} · urges {r['URGED']} ({n['URGED']} escalated) · "
            f"withdrawals {r['WITHDRAWN']} · merged {r['MERGED']} · reopens {r['REOPENED']}"
        )

    def plain_line(self) -> str:
        """One status line for a log (when the console is not a terminal)."""
        with self._lock:
            counts = self.stage_counts
            r = self.rules
            line = (f"[{time.monotonic() - self.started:5.0f} s] filed {counts['filed']}, "
                    f"dispatched {counts['dispatched']}, completed {counts['completed']}, "
                    f"closed {counts['closed']}/{self.total}; "
                    f"notices {sum(self.notices.values())}; returns {r['RETURNED']}, "
                    f"extensions {r['EXTENSION_REQUESTED']}, whistles {r['WHISTLED']}, "
                    f"urges {r['URGED']}, merged {r['MERGED']}, reopens {r['REOPENED']}")
            problems = self._log_problems()
            return f"{line}; {problems}" if problems else line

    def count_log_lines(self, name: str, levels: Counter[str]) -> None:
        with self._lock:
            self.log_levels.setdefault(name, Counter()).update(levels)

    def _log_problems(self) -> str:
        parts = [f"{name} log: {c['error']} errors, {c['warning']} warnings"
                 for name, c in self.log_levels.items() if c["error"] or c["warning"]]
        failures = sum(c["workflow task failures"] for c in self.log_levels.values())
        if failures:
            parts.append(f"{failures} workflow task failures (a workflow bug, see worker.log)")
        silence = time.monotonic() - self.last_event_at
        if silence > STALL_HINT_S and self.stage_counts["closed"] < self.total:
            parts.append(f"no lifecycle event for {silence:.0f} s: is the worker stuck?")
        return " · ".join(parts)
