"""An Open311 request end to end: POST → case dispatched → GET open → completed → GET closed.

The Open311 service, the worker and the bridges run in this process against the real
Temporal, Kafka and PostgreSQL (fresh topics, task queue, groups and database, as in
test_end_to_end.py); the test plays the citizen's app, the unit and the callback centre.
"""

from __future__ import annotations

import asyncio
import time
import uuid
import xml.etree.ElementTree as ET
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest
import pytest_asyncio

from tests.live import live_services
from tests.test_end_to_end import Topic, _reply, _send
from workers.open311.model import BEIJING, ApiClient
from workers.open311.service import Open311Server
from workers.runtime.settings import Settings

pytestmark = pytest.mark.stack

KEY = "civic-app-key-0123456789"
PHONE = "13800002222"
EMAIL = "zhang.wei@example.com"


@pytest_asyncio.fixture(scope="module")
async def live() -> AsyncIterator[tuple[Settings, str]]:
    """The stack up, fresh topics/database, a worker, the bridges and the Open311 service."""
    async with live_services("o311", time_scale=0.0005) as settings:  # T24H: due in 43 s
        server = Open311Server(settings, port=0,
                               clients=[ApiClient("civic-app", KEY, "WECHAT")])
        await asyncio.to_thread(server.start)
        try:
            yield settings, server.url
        finally:
            await asyncio.to_thread(server.stop)


async def _get_until(client: httpx.AsyncClient, path: str,
                     ready: Callable[[list[dict[str, Any]]], bool],
                     timeout: float = 60) -> list[dict[str, Any]]:
    deadline = time.monotonic() + timeout
    body: Any = None
    while time.monotonic() < deadline:
        resp = await client.get(path)
        body = resp.json()
        if resp.status_code == 200 and ready(body):
            return list(body)
        await asyncio.sleep(0.3)
    raise AssertionError(f"GET {path} never became ready; last answer {body}")


def _post(client: httpx.AsyncClient, key: str | None = None, **fields: str) -> Any:
    form = {
        "api_key": KEY, "service_code": "housing.lift",
        "description": "望京街道阜通东大街6号院3号楼电梯坏了三天，楼里老人下不了楼",
        "address_string": "朝阳区望京街道阜通东大街6号院", "phone": PHONE,
        "first_name": "伟", "last_name": "张", "email": EMAIL,
        "media_url": "https://files.example/lift.jpg", **fields,
    }
    headers = {"Idempotency-Key": key} if key else {}
    return client.post("/requests.json", data=form, headers=headers)


async def test_a_request_filed_over_open311_is_followed_to_closed(
    live: tuple[Settings, str],
) -> None:
    s, url = live
    intake = Topic(s, s.topic_intake)
    dispatches = Topic(s, s.topic_dispatches)
    lifecycle = Topic(s, s.topic_lifecycle)
    async with httpx.AsyncClient(base_url=url, timeout=30) as client:
        resp = await _post(client)
        assert resp.status_code == 201, resp.text
        [created] = resp.json()
        cid, token = created["service_request_id"], created["token"]
        assert cid.startswith("311-")

        # The filing on the intake topic: the client's channel, the caller's contacts.
        filed = await asyncio.to_thread(
            intake.wait_for, lambda n, r: n == "ComplaintFiled" and r["complaint_id"] == cid)
        assert filed["channel"] == "WECHAT" and filed["category_hint"] == "housing.lift"
        assert filed["caller_phone"] == PHONE and filed["caller_name"] == "伟 张"
        assert filed["attachments"] == ["https://files.example/lift.jpg"]

        issued = await asyncio.to_thread(
            dispatches.wait_for,
            lambda n, r: n == "DispatchIssued" and r["complaint_id"] == cid)
        assert issued["unit_id"] == "110105026" and issued["tier"] == "T24H"

        [open_] = await _get_until(client, f"/requests/{cid}.json",
                                   lambda b: b[0]["extended_status"] == "ACTION_SCHEDULED")
        assert open_["status"] == "open" and open_["service_code"] == "housing.lift"
        assert open_["expected_datetime"] == (
            issued["due_at"].astimezone(BEIJING).isoformat(timespec="seconds"))
        assert open_["agency_responsible"] == "望京街道"
        assert open_["address"] == "朝阳区望京街道阜通东大街6号院"
        [by_token] = (await client.get(f"/tokens/{token}.json")).json()
        assert by_token == {"token": token, "service_request_id": cid}

        _send(s, s.topic_unit_replies, cid, "DispatchSigned", _reply(issued, signer="王师傅"))
        _send(s, s.topic_unit_replies, cid, "HandlingCompleted",
              _reply(issued, result="RESOLVED", reply_text="电梯已修复并通过检测"))
        await asyncio.to_thread(
            lifecycle.wait_for,
            lambda n, r: r["complaint_id"] == cid and r["event_type"] == "CALLBACK_DUE")
        [waiting] = (await client.get(f"/requests/{cid}.json")).json()
        assert waiting["status"] == "open" and waiting["extended_status"] == "IN_PROGRESS"
        _send(s, s.topic_callbacks, cid, "CallbackResult", {
            "event_id": f"cb-{cid}", "complaint_id": cid, "at": datetime.now(UTC),
            "reached": True, "responded": True, "resolved": True,
            "satisfaction": "SATISFIED", "comment": "修好了"})

        [closed] = await _get_until(client, f"/requests/{cid}.json",
                                    lambda b: b[0]["status"] == "closed")
        assert closed["extended_status"] == "FIXED" and closed["expected_datetime"] is None
        xml = await client.get(f"/requests/{cid}.xml")
        assert xml.headers["content-type"].startswith("application/xml")
        request = ET.fromstring(xml.content).find("request")
        assert request is not None and request.findtext("status") == "closed"
        assert request.findtext("service_request_id") == cid

        # The filters: closed lift requests have it, open ones do not.
        mine = await client.get("/requests.json", params={
            "status": "closed", "service_code": "housing.lift,housing.repair"})
        assert cid in {r["service_request_id"] for r in mine.json()}
        others = await client.get("/requests.json", params={"status": "open"})
        assert cid not in {r["service_request_id"] for r in others.json()}
        # The caller's contact details were filed with the case, never returned.
        for answer in (resp, mine, xml):
            assert PHONE not in answer.text and EMAIL not in answer.text
            assert "张" not in answer.text


async def test_a_retried_post_with_its_idempotency_key_files_one_request(
    live: tuple[Settings, str],
) -> None:
    _, url = live
    key = uuid.uuid4().hex
    async with httpx.AsyncClient(base_url=url, timeout=30) as client:
        first, again = [await _post(client, key,
                                    description="望京街道某小区垃圾没人清运，已经好几天了")
                        for _ in range(2)]
        assert first.status_code == again.status_code == 201
        assert first.json() == again.json()
        reused = await _post(client, key, description="另一件事：路灯不亮")
        assert reused.status_code == 409
        assert "Idempotency-Key" in reused.json()[0]["description"]
        [created] = first.json()
        listed = await _get_until(
            client, f"/requests.json?service_request_id={created['service_request_id']}",
            lambda b: len(b) == 1)
        assert listed[0]["service_request_id"] == created["service_request_id"]
        # Pagination: a page of one, the next page is another request.
        one = (await client.get("/requests.json", params={"page_size": 1})).json()
        two = (await client.get("/requests.json", params={"page_size": 1, "page": 2})).json()
        assert len(one) == len(two) == 1
        assert one[0]["service_request_id"] != two[0]["service_request_id"]
