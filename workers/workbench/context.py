"""What every workbench page shares: the :class:`Workbench` (pool, producer, reads,
templates), the signed-in account check, the CSRF-checked form, and the metrics.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import jinja2
import structlog
from fastapi import HTTPException, Request
from fastapi.responses import HTMLResponse
from kafka import KafkaProducer
from prometheus_client import Counter, Histogram
from psycopg_pool import AsyncConnectionPool
from starlette.datastructures import FormData

from activities.dispatch.config import HotlineConfig
from workers.runtime.settings import Settings
from workers.workbench.accounts import Account, AccountStore
from workers.workbench.actions import produce
from workers.workbench.i18n import event_label, status_label, translator
from workers.workbench.photos import MAX_PHOTOS, PhotoStore
from workers.workbench.reads import LedgerReads
from workers.workbench.session import CSRF_FIELD, Session, Sessions

log = structlog.get_logger(__name__)

HERE = Path(__file__).resolve().parent
BEIJING = ZoneInfo("Asia/Shanghai")
HOME = {"unit": "/inbox", "dispatcher": "/review", "supervisor": "/supervision"}
MAX_FIELD_BYTES = 64 * 1024

RESPONSES = Counter("hotline_workbench_responses_total",
                    "Workbench answers by route template and HTTP status code.",
                    ["route", "code"])
RESPONSE_TIME = Histogram("hotline_workbench_response_seconds",
                          "Time to answer a workbench request, by route template.", ["route"],
                          buckets=(0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30))
LOGINS = Counter("hotline_workbench_logins_total",
                 "Workbench sign-ins by result (ok, failed, locked).", ["result"])
ACTIONS = Counter("hotline_workbench_actions_total",
                  "Events produced from the workbench, by action and what the case made of "
                  "them (applied, refused, pending).", ["action", "outcome"])


class LoginRequired(Exception):
    """No signed-in account: the browser is sent to the login page."""


@dataclass
class Workbench:
    """What the pages share, opened with the app's lifespan."""

    settings: Settings
    config: HotlineConfig
    sessions: Sessions
    photos: PhotoStore
    templates: jinja2.Environment
    state: dict[str, Any] = field(default_factory=dict)

    @property
    def reads(self) -> LedgerReads:
        reads: LedgerReads = self.state["reads"]
        return reads

    @property
    def accounts(self) -> AccountStore:
        accounts: AccountStore = self.state["accounts"]
        return accounts

    @property
    def pool(self) -> AsyncConnectionPool:
        pool: AsyncConnectionPool = self.state["pool"]
        return pool

    async def send(self, topic: str, name: str, record: dict[str, Any]) -> None:
        """Produce on a thread (kafka-python blocks) and wait for the acknowledgement."""
        producer: KafkaProducer = self.state["producer"]
        await asyncio.to_thread(produce, producer, topic, name, record)

    def unit_name(self, unit_id: str | None) -> str:
        if not unit_id:
            return "—"
        unit = self.config.registry.get(unit_id)
        return unit.name if unit else unit_id

    def category_name(self, code: str | None) -> str:
        if not code:
            return "—"
        if "categories" not in self.state:
            self.state["categories"] = {c.code: c.name for c in self.config.lexicon.categories}
        return str(self.state["categories"].get(code, code))

    def render(self, request: Request, template: str, status: int = 200,
               **context: Any) -> HTMLResponse:
        lang = request.state.lang
        session: Session = request.state.session
        html = self.templates.get_template(template).render(
            request=request, lang=lang, t=translator(lang), status_label=status_label(lang),
            event_label=event_label(lang),
            account=getattr(request.state, "account", None), csrf_field=CSRF_FIELD,
            csrf=session.csrf, when=when, unit_name=self.unit_name,
            category_name=self.category_name, **context)
        return HTMLResponse(html, status)

    async def account(self, request: Request, *roles: str) -> Account:
        """The signed-in account, in one of ``roles``; else login (no account) or 404."""
        session: Session = request.state.session
        account = await self.accounts.get(session.username) if session.username else None
        if account is None:
            raise LoginRequired()
        request.state.account = account
        if roles and account.role not in roles:
            raise HTTPException(404)
        return account

    async def form(self, request: Request) -> FormData:
        """The posted form, refused (403) unless it carries this session's CSRF token."""
        try:
            form = await request.form(max_files=MAX_PHOTOS + 1, max_fields=50,
                                      max_part_size=MAX_FIELD_BYTES)
        except Exception:  # a malformed or oversized multipart body
            raise HTTPException(400) from None
        session: Session = request.state.session
        if not session.csrf_ok(form.get(CSRF_FIELD)):
            log.warning("workbench post without a valid CSRF token", path=request.url.path)
            raise HTTPException(403)
        return form


def when(at: datetime | None) -> str:
    return "—" if at is None else at.astimezone(BEIJING).strftime("%m-%d %H:%M")


def templates() -> jinja2.Environment:
    # Autoescape everywhere: a complaint's text is untrusted input.
    return jinja2.Environment(loader=jinja2.FileSystemLoader(HERE / "templates"),
                              autoescape=True, undefined=jinja2.StrictUndefined)


