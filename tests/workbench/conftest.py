"""One live stack for the workbench's tests: a worker and the bridges on fresh topics and a
fresh database (tests/live.py), run on a thread of their own so that plain (synchronous)
tests, TestClient and the browser can use them while they keep working; cases filed to two
different units; an account for each role.
"""

from __future__ import annotations

import asyncio
import threading
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from activities.dispatch.registry import load_registry
from tests.live import Topic, live_services, send
from workers.runtime.settings import Settings
from workers.workbench.accounts import NewAccount, save_account

PASSWORD = "correct horse battery"
# The same T24H elevator case as tests/test_end_to_end.py: 望京街道 (110105026) leads.
WANGJING = ("望京街道阜通东大街6号院3号楼电梯坏了三天，楼里老人下不了楼", "朝阳区", "望京街道")
DONGHUAMEN = ("东华门街道南池子大街小区门口垃圾堆了三天没人清运", "东城区", "东华门街道")
AMBIGUOUS = "小黄庄社区门口垃圾堆了三天没人清运"  # 小黄庄 is in 东城 and in 朝阳 (the desk)


class LiveThread:
    """``live_services`` on its own thread and event loop, until ``close``."""

    def __init__(self, tag: str, **overrides: Any) -> None:
        self.tag, self.overrides = tag, overrides
        self.ready, self.stop = threading.Event(), threading.Event()
        self.failure: BaseException | None = None
        self.settings: Settings | None = None
        self.thread = threading.Thread(target=self._run, name=f"live-{tag}", daemon=True)

    def _run(self) -> None:
        try:
            asyncio.run(self._main())
        except BaseException as exc:  # reported to the test that waits for it
            self.failure = exc
            self.ready.set()

    async def _main(self) -> None:
        async with live_services(self.tag, **self.overrides) as settings:
            self.settings = settings
            self.ready.set()
            await asyncio.to_thread(self.stop.wait)

    def open(self, timeout: float = 180) -> Settings:
        self.thread.start()
        if not self.ready.wait(timeout) or self.settings is None:
            raise RuntimeError(f"the live services did not start: {self.failure!r}")
        return self.settings

    def close(self) -> None:
        self.stop.set()
        self.thread.join(timeout=90)


def filing(cid: str, content: str, district: str | None = None,
           street: str | None = None) -> dict[str, Any]:
    return {"event_id": f"f-{cid}", "complaint_id": cid, "filed_at": datetime.now(UTC),
            "channel": "PHONE", "content": content, "anonymous": False,
            # A caller of its own: the same caller and problem would merge into one case.
            "caller_phone": f"139{uuid.uuid4().int % 10**8:08d}", "caller_name": "张先生",
            "district": district, "street": street}


def file_case(s: Settings, dispatches: Topic, prefix: str, content: str,
              district: str | None = None, street: str | None = None) -> dict[str, Any]:
    """File a complaint; its ``DispatchIssued`` (the unit it went to)."""
    cid = f"{prefix}-{uuid.uuid4().hex[:8]}"
    send(s, s.topic_intake, cid, "ComplaintFiled", filing(cid, content, district, street))
    return dispatches.wait_for(lambda n, r: n == "DispatchIssued" and r["complaint_id"] == cid)


@dataclass(frozen=True)
class World:
    """The live settings, two units' cases, and the accounts (all with ``PASSWORD``)."""

    settings: Settings
    unit_a: str
    unit_b: str
    case_a: dict[str, Any]  # DispatchIssued of a case held by unit A
    case_b: dict[str, Any]  # ... and one held by unit B


def config_with_long_review(folder: Path) -> Path:
    """The config folder in force, but a review window that lasts a minute at the tests'
    time scale (15 minutes would be 0.45 s: the desk would never get to decide)."""
    real = Settings().config_dir
    for item in real.iterdir():
        if item.name != "rules.yaml":
            (folder / item.name).symlink_to(item.resolve())
    rules = (real / "rules.yaml").read_text(encoding="utf-8")
    assert "window: 15m" in rules
    (folder / "rules.yaml").write_text(rules.replace("window: 15m", "window: 2000m", 1),
                                       encoding="utf-8")
    return folder


@pytest.fixture(scope="session")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    # T24H is due in 43 s and signed for within 1.8 s: an unsigned case is escalated to the
    # district within seconds (the supervisor's list), a signed one stays open long enough.
    live = LiveThread("wb", time_scale=0.0005,
                      config_dir=config_with_long_review(tmp_path_factory.mktemp("config")))
    s = live.open()
    try:
        dispatches = Topic(s, s.topic_dispatches)
        case_a = file_case(s, dispatches, "WBA", *WANGJING)
        case_b = file_case(s, dispatches, "WBB", *DONGHUAMEN)
        assert case_a["unit_id"] != case_b["unit_id"], (case_a["unit_id"], case_b["unit_id"])
        registry = load_registry(s.config_dir)
        for username, role, unit in (("unit-a", "unit", case_a["unit_id"]),
                                     ("unit-b", "unit", case_b["unit_id"]),
                                     ("desk", "dispatcher", None),
                                     ("supervisor", "supervisor", None)):
            save_account(s.dsn, NewAccount(username, role, PASSWORD, unit), registry)
        yield World(s, case_a["unit_id"], case_b["unit_id"], case_a, case_b)
    finally:
        live.close()
