"""The workbench in a real headless Chromium (Debian's ``chromium``, driven by Playwright),
against the real stack: a unit signs in, sees only its cases, signs for one, completes it
with a photo and returns another with a reason; a dispatcher decides a case at the desk; a
supervisor opens the overdue list. Each step is checked against the records on Kafka and
the ledger, and the pages are photographed: into .state/screenshots/ on every run, and into
docs/screenshots/ (which the README shows) with `make screenshots`, so that a test run does
not leave the checkout modified.
"""

from __future__ import annotations

import os
import struct
import time
import zlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import psycopg
import pytest

from tests.live import Topic
from tests.workbench.conftest import (
    AMBIGUOUS,
    PASSWORD,
    WANGJING,
    World,
    file_case,
)
from workers.workbench.server import WorkbenchServer, free_port

pytestmark = pytest.mark.stack

CHROMIUM = Path("/usr/bin/chromium")
ROOT = Path(__file__).resolve().parents[2]
SHOTS = ROOT / ("docs" if os.environ.get("HOTLINE_UPDATE_SCREENSHOTS") == "1" else ".state") \
    / "screenshots"
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
        "--disable-background-networking", "--disable-component-update", "--disable-sync"]
PHONE = {"width": 412, "height": 915}


def png(width: int = 8, height: int = 8) -> bytes:
    """A small real PNG (a red square)."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        return (struct.pack(">I", len(data)) + kind + data
                + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF))
    rows = b"".join(b"\x00" + b"\xcc\x22\x22" * width for _ in range(height))
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 2,
                                                                0, 0, 0))
            + chunk(b"IDAT", zlib.compress(rows)) + chunk(b"IEND", b""))


@pytest.fixture(scope="module")
def server(world: World, tmp_path_factory: pytest.TempPathFactory) -> Iterator[WorkbenchServer]:
    settings = world.settings.model_copy(update={
        "workbench_port": free_port(), "workbench_outcome_wait_s": 15.0,
        "workbench_photo_dir": tmp_path_factory.mktemp("photos")})
    with WorkbenchServer(settings).running() as running:
        yield running


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    if not CHROMIUM.exists():
        pytest.fail("Debian's chromium is missing: run `make browser-tools`")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        chromium = pw.chromium.launch(executable_path=str(CHROMIUM), args=ARGS)
        yield chromium
        chromium.close()


@pytest.fixture
def page_as(browser: Any, server: WorkbenchServer) -> Iterator[Any]:
    contexts: list[Any] = []

    def sign_in(username: str) -> Any:
        context = browser.new_context(viewport=PHONE, locale="zh-CN")
        contexts.append(context)
        page = context.new_page()
        page.set_default_timeout(30_000)
        page.goto(f"{server.url}/login")
        page.fill("input[name=username]", username)
        page.fill("input[name=password]", PASSWORD)
        page.click("form[action='/login'] button")
        page.wait_for_load_state()
        return page

    yield sign_in
    for context in contexts:
        context.close()


def shot(page: Any, name: str) -> None:
    SHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SHOTS / f"{name}.png"), full_page=True)


def ledger(world: World, sql: str, args: tuple[Any, ...], timeout: float = 30) -> tuple[Any, ...]:
    end = time.monotonic() + timeout
    with psycopg.connect(world.settings.dsn, autocommit=True) as conn:
        while True:
            row = conn.execute(sql, args).fetchone()
            if row is not None or time.monotonic() > end:
                assert row is not None, (sql, args)
                return tuple(row)
            time.sleep(0.3)


def until_listed(page: Any, path: str, text: str, timeout: float = 30) -> None:
    """Reload ``path`` until it shows ``text`` (the ledger follows Kafka closely)."""
    end = time.monotonic() + timeout
    while True:
        page.goto(path)
        if text in page.content() or time.monotonic() > end:
            assert text in page.content(), f"{text} never listed on {path}"
            return
        time.sleep(0.5)


def test_a_unit_signs_completes_with_a_photo_and_returns(world: World, server: WorkbenchServer,
                                                        page_as: Any) -> None:
    s = world.settings
    replies = Topic(s, s.topic_unit_replies)
    mine, theirs = world.case_a["complaint_id"], world.case_b["complaint_id"]
    second = file_case(s, Topic(s, s.topic_dispatches), "WBR", *WANGJING)
    assert second["unit_id"] == world.unit_a
    page = page_as("unit-a")
    until_listed(page, f"{server.url}/inbox", second["complaint_id"])
    assert mine in page.content() and theirs not in page.content()
    shot(page, "inbox")

    # Sign for the case, then complete it with a photo.
    page.click(f"a[href='/cases/{mine}']")
    page.click(f"form[action='/cases/{mine}/sign'] button")
    assert "已办理" in page.inner_text(".banner"), page.inner_text(".banner")
    signed = replies.wait_for(lambda n, r: n == "DispatchSigned" and r["complaint_id"] == mine)
    assert signed["unit_id"] == world.unit_a and signed["signer"] == "unit-a"
    assert ledger(world, "SELECT signed_at FROM dispatches WHERE dispatch_id = %s "
                         "AND signed_at IS NOT NULL", (signed["dispatch_id"],))

    form = page.locator(f"form[action='/cases/{mine}/complete']")
    form.locator("select[name=result]").select_option("RESOLVED")
    form.locator("textarea[name=reply_text]").fill("电梯已修复，已电话告知来电人")
    form.locator("input[name=photos]").set_input_files(
        [{"name": "elevator.png", "mimeType": "image/png", "buffer": png()}])
    form.locator("button").click()
    assert "已办理" in page.inner_text(".banner"), page.inner_text(".banner")
    completed = replies.wait_for(
        lambda n, r: n == "HandlingCompleted" and r["complaint_id"] == mine)
    assert completed["result"] == "RESOLVED"
    assert completed["reply_text"] == "电梯已修复，已电话告知来电人"
    [url] = completed["attachments"]
    assert url.startswith(f"{server.url}/photos/") and url.endswith(".png")
    assert httpx.get(url).content == png()
    assert ledger(world, "SELECT result FROM dispatches WHERE dispatch_id = %s "
                         "AND completed_at IS NOT NULL",
                  (completed["dispatch_id"],)) == ("RESOLVED",)
    assert ledger(world, "SELECT attributes->>'attachments' FROM case_events WHERE "
                         "complaint_id = %s AND event_type = 'COMPLETED'", (mine,)) == (url,)
    assert page.locator(f"img[src='{url.removeprefix(server.url)}']").count() == 1
    shot(page, "case")

    # Return the other case with a reason.
    cid = second["complaint_id"]
    page.goto(f"{server.url}/cases/{cid}")
    page.fill(f"form[action='/cases/{cid}/return'] textarea[name=reason]",
              "该楼电梯属产权单位自管，不属本街道职责")
    page.click(f"form[action='/cases/{cid}/return'] button")
    returned = replies.wait_for(lambda n, r: n == "DispatchReturned" and r["complaint_id"] == cid)
    assert returned["reason"] == "该楼电梯属产权单位自管，不属本街道职责"
    assert returned["unit_id"] == world.unit_a
    assert ledger(world, "SELECT reason FROM case_events WHERE complaint_id = %s "
                         "AND event_type = 'RETURNED'", (cid,)) == (returned["reason"],)


def test_a_dispatcher_decides_a_case_at_the_desk(world: World, server: WorkbenchServer,
                                                 page_as: Any) -> None:
    s = world.settings
    lifecycle = Topic(s, s.topic_lifecycle)
    intake = Topic(s, s.topic_intake)
    from tests.live import send
    from tests.workbench.conftest import filing

    cid = f"WBD-{time.time_ns() % 10**8}"
    send(s, s.topic_intake, cid, "ComplaintFiled", filing(cid, AMBIGUOUS))
    requested = lifecycle.wait_for(
        lambda n, r: r["complaint_id"] == cid and r["event_type"] == "REVIEW_REQUESTED")
    top = requested["candidates"][0]
    page = page_as("desk")
    until_listed(page, f"{server.url}/review", cid)
    shot(page, "review-queue")
    page.click(f"#review-{cid} form[action='/review/{cid}'] button >> nth=0")
    decided = intake.wait_for(lambda n, r: n == "DispatchDecided" and r["complaint_id"] == cid)
    assert decided["decision"] == "DISPATCH" and decided["unit_id"] == top["unit_id"]
    assert decided["dispatcher_id"] == "desk"
    assert "已办理" in page.inner_text(".banner"), page.inner_text(".banner")
    status, lead = ledger(world, "SELECT status, lead_unit_id FROM cases WHERE complaint_id = %s "
                                 "AND status <> 'AWAITING_REVIEW'", (cid,))
    assert lead == top["unit_id"] and status == "DISPATCHED"


def test_a_supervisor_opens_the_overdue_list(world: World, server: WorkbenchServer,
                                             page_as: Any) -> None:
    # Unit B never signs its case: the ladder escalates it to the district within seconds.
    theirs = world.case_b["complaint_id"]
    level = ledger(world, "SELECT escalation_level FROM cases WHERE complaint_id = %s "
                          "AND escalation_level <> 'UNIT'", (theirs,), timeout=60)
    assert level[0] in ("DISTRICT", "CITY")
    page = page_as("supervisor")
    until_listed(page, f"{server.url}/supervision", theirs)
    item = page.locator(f"#overdue a[href='/cases/{theirs}']")
    assert "督办" in item.inner_text()
    shot(page, "supervision")
    item.click()
    assert theirs in page.inner_text("h1")
