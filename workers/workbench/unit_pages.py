"""Unit staff's pages: the inbox, the case page, and the actions on a dispatch.

A unit sees a case only when it holds (or held) one of its dispatches; any other case is a
404, for the page and for every action, and nothing is produced. An action names no
dispatch: it acts on the unit's own open dispatch of the case, read from the ledger.
"""

from __future__ import annotations

import asyncio

import structlog
from fastapi import FastAPI, HTTPException, Request
from fastapi.responses import Response
from starlette.datastructures import UploadFile

from workers.workbench.accounts import Account
from workers.workbench.actions import (
    UNIT_ACTIONS,
    ActionError,
    Outcome,
    await_outcome,
    unit_record,
)
from workers.workbench.context import ACTIONS, Workbench
from workers.workbench.i18n import status_label, translator
from workers.workbench.photos import MAX_PHOTOS, PhotoError, PhotoUnavailable

log = structlog.get_logger(__name__)


def banner_for(outcome: Outcome, lang: str) -> tuple[str, str]:
    """(css class, message) for what became of an event."""
    t = translator(lang)
    if outcome.applied is True:
        return "ok", t("applied", status=status_label(lang)(outcome.status))
    if outcome.applied is False:
        return "refused", t("refused", code=outcome.code or "—", reason=outcome.reason or "—")
    return "pending", t("pending")


async def case_page(wb: Workbench, request: Request, complaint_id: str,
                    account: Account, banner: tuple[str, str] | None = None,
                    status: int = 200) -> Response:
    """The case page as ``account`` may see it (the caller has checked access)."""
    case = await wb.reads.case(complaint_id)
    if case is None:
        raise HTTPException(404)
    access = None
    if account.role == "unit" and account.unit_id:
        access = await wb.reads.unit_access(account.unit_id, complaint_id)
    dispatches = await wb.reads.dispatches(complaint_id)
    timeline = await wb.reads.timeline(complaint_id)
    assists = [e for e in timeline if e["event_type"] == "ASSIST_REPLIED"]
    # Photos the units attached (HandlingCompleted.attachments, kept on the event): the
    # workbench's own (folder or bucket) are shown inline, others are links in the timeline.
    photos = [shown for e in timeline
              for url in str((e["attributes"] or {}).get("attachments", "")).split()
              if (shown := wb.photos.shown(url)) is not None]
    filing = await wb.reads.filing(complaint_id)
    return wb.render(request, "case.html", status, case=case, dispatches=dispatches,
                     timeline=timeline, assists=assists, filing=filing, access=access,
                     photos=photos,
                     banner=banner, actions=list(UNIT_ACTIONS))


def register(app: FastAPI, wb: Workbench) -> None:
    """Add the unit pages to ``app``."""

    @app.get("/inbox")
    async def inbox(request: Request) -> Response:
        account = await wb.account(request, "unit")
        assert account.unit_id is not None
        rows = await wb.reads.inbox(account.unit_id)
        return wb.render(request, "inbox.html", rows=rows)

    @app.get("/cases/{complaint_id}")
    async def case(request: Request, complaint_id: str) -> Response:
        account = await wb.account(request)
        if account.role == "unit":
            assert account.unit_id is not None
            if await wb.reads.unit_access(account.unit_id, complaint_id) is None:
                raise HTTPException(404)
        return await case_page(wb, request, complaint_id, account)

    @app.post("/cases/{complaint_id}/{action}")
    async def act(request: Request, complaint_id: str, action: str) -> Response:
        account = await wb.account(request, "unit")
        assert account.unit_id is not None
        form = await wb.form(request)  # 403 without this session's CSRF token
        access = await wb.reads.unit_access(account.unit_id, complaint_id)
        if access is None or action not in UNIT_ACTIONS:
            raise HTTPException(404)
        t = translator(request.state.lang)
        if access.dispatch_id is None:
            return await case_page(wb, request, complaint_id, account,
                                   ("refused", t("no_open_dispatch")), 409)
        fields = {k: v for k, v in form.multi_items() if isinstance(v, str)}
        try:
            urls = await _photos(wb, form.getlist("photos")) if action == "complete" else []
            record = unit_record(action, complaint_id, access.dispatch_id, account.unit_id,
                                 account.username, fields, urls)
        except PhotoError as exc:
            return await case_page(wb, request, complaint_id, account,
                                   ("refused", t("bad_photo", reason=str(exc))), 400)
        except PhotoUnavailable as exc:  # nothing is sent: try again once the store is back
            return await case_page(wb, request, complaint_id, account,
                                   ("refused", t("bad_photo", reason=str(exc))), 503)
        except ActionError as exc:
            return await case_page(wb, request, complaint_id, account,
                                   ("refused", t("bad_field", field=t(str(exc)))), 400)
        name, expected = UNIT_ACTIONS[action]
        after = await wb.reads.last_seq(complaint_id)
        await wb.send(wb.settings.topic_unit_replies, name, record)
        log.info("workbench action sent", complaint_id=complaint_id, action=action,
                 event_id=record["event_id"], unit_id=account.unit_id,
                 username=account.username)
        outcome = await await_outcome(wb.reads, complaint_id, record["event_id"], after,
                                      expected, account.unit_id,
                                      wb.settings.workbench_outcome_wait_s)
        ACTIONS.labels(action, {True: "applied", False: "refused", None: "pending"}
                       [outcome.applied]).inc()
        log.info("workbench action outcome", complaint_id=complaint_id, action=action,
                 event_id=record["event_id"], applied=outcome.applied, code=outcome.code)
        return await case_page(wb, request, complaint_id, account,
                               banner_for(outcome, request.state.lang))


async def _photos(wb: Workbench, files: list[UploadFile | str]) -> list[str]:
    """Check every uploaded photo first, then store them; their URLs."""
    uploads = [f for f in files if isinstance(f, UploadFile) and f.filename]
    if len(uploads) > MAX_PHOTOS:
        raise PhotoError(f"at most {MAX_PHOTOS} photos")
    checked = []
    for upload in uploads:
        data = await upload.read(wb.photos.max_bytes + 1)
        checked.append((data, wb.photos.check(upload.filename or "photo", data)))
    return [await asyncio.to_thread(wb.photos.save, data, kind) for data, kind in checked]
