"""The dispatcher's review queue and the supervisor's page.

The review queue lists the cases in ``AWAITING_REVIEW`` with the machine's candidates and
its doubt; each candidate is one button that sends ``DispatchDecided`` on
``hotline.intake``. The supervisor's page shows the overdue and escalated cases by district
and tier, this month's three-rate rankings (the same definition as the monthly report) and
the latest hotspot warnings, each linking to its case.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import structlog
from fastapi import FastAPI, HTTPException, Request
from fastapi.responses import Response

from activities.governance.config import load_governance_config
from activities.governance.rankings import RegistryDirectory, compute_rankings
from workers.workbench.actions import ActionError, await_outcome, decision_record
from workers.workbench.context import ACTIONS, Workbench
from workers.workbench.i18n import translator
from workers.workbench.unit_pages import banner_for

log = structlog.get_logger(__name__)

GOVERNANCE_FILE = "governance.yaml"


def by_district_and_tier(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    counts: dict[tuple[str, str], int] = {}
    for row in rows:
        key = (row["district"] or "—", row["tier"] or "—")
        counts[key] = counts.get(key, 0) + 1
    return [{"district": d, "tier": t, "count": n}
            for (d, t), n in sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))]


def register(app: FastAPI, wb: Workbench) -> None:
    """Add the dispatcher's and the supervisor's pages to ``app``."""

    async def review_page(request: Request, banner: tuple[str, str] | None = None,
                          status: int = 200) -> Response:
        rows = await wb.reads.review_queue()
        return wb.render(request, "review.html", status, rows=rows, banner=banner)

    @app.get("/review")
    async def review(request: Request) -> Response:
        await wb.account(request, "dispatcher")
        return await review_page(request)

    @app.post("/review/{complaint_id}")
    async def decide(request: Request, complaint_id: str) -> Response:
        account = await wb.account(request, "dispatcher")
        form = await wb.form(request)
        case = await wb.reads.case(complaint_id)
        if case is None:
            raise HTTPException(404)
        t = translator(request.state.lang)
        fields = {k: v for k, v in form.multi_items() if isinstance(v, str)}
        try:
            record = decision_record(complaint_id, account.username, fields)
        except ActionError as exc:
            return await review_page(request, ("refused", t("bad_field", field=t(str(exc)))),
                                     400)
        after = await wb.reads.last_seq(complaint_id)
        await wb.send(wb.settings.topic_intake, "DispatchDecided", record)
        log.info("workbench decision sent", complaint_id=complaint_id,
                 decision=record["decision"], unit_id=record["unit_id"],
                 event_id=record["event_id"], username=account.username)
        outcome = await await_outcome(wb.reads, complaint_id, record["event_id"], after, (),
                                      None, wb.settings.workbench_outcome_wait_s)
        ACTIONS.labels("decide", {True: "applied", False: "refused", None: "pending"}
                       [outcome.applied]).inc()
        return await review_page(request, banner_for(outcome, request.state.lang))

    @app.get("/supervision")
    async def supervision(request: Request) -> Response:
        await wb.account(request, "supervisor")
        overdue = await wb.reads.overdue()
        gov = load_governance_config(wb.settings.config_dir / GOVERNANCE_FILE)
        month = datetime.now(UTC).astimezone(gov.tz).strftime("%Y-%m")
        async with wb.pool.connection() as conn:
            rankings = await compute_rankings(conn, month, gov.tz,
                                              wb.config.rules.weights.model_dump(),
                                              RegistryDirectory(wb.config))
        return wb.render(request, "supervision.html", overdue=overdue,
                         groups=by_district_and_tier(overdue), rankings=rankings, month=month,
                         hotspots=await wb.reads.hotspots())
