"""Who may see and do what, against the real stack: a unit sees and acts on its own cases
only (404 for another unit's, and nothing reaches Kafka), every POST needs the session's
CSRF token, sign-in is throttled, and a complaint's text is shown as text.
"""

from __future__ import annotations

import re
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from schemas import codec
from tests.live import Topic, send
from tests.workbench.conftest import PASSWORD, WANGJING, World, filing
from workers.workbench.accounts import NewAccount, save_account
from workers.workbench.app import create_app

pytestmark = pytest.mark.stack

CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')


@pytest.fixture(scope="module")
def app_settings(world: World, tmp_path_factory: pytest.TempPathFactory) -> object:
    return world.settings.model_copy(update={
        "workbench_photo_dir": tmp_path_factory.mktemp("photos"),
        "workbench_outcome_wait_s": 10.0})


@pytest.fixture(scope="module")
def app(app_settings: object) -> Iterator[object]:
    yield create_app(app_settings)  # type: ignore[arg-type]


def client_for(app: object, username: str | None) -> TestClient:
    client = TestClient(app, base_url="http://testserver")  # type: ignore[arg-type]
    client.__enter__()
    if username:
        page = client.get("/login")
        response = client.post("/login", data={"username": username, "password": PASSWORD,
                                               "csrf_token": token(page.text)},
                               follow_redirects=False)
        assert response.status_code == 303, response.text
    return client


def token(html: str) -> str:
    found = CSRF.search(html)
    assert found, html[:500]
    return found.group(1)


@pytest.fixture(scope="module")
def unit_a(app: object) -> Iterator[TestClient]:
    client = client_for(app, "unit-a")
    yield client
    client.__exit__(None, None, None)


def no_record_for(world: World, topic: str, complaint_id: str, seconds: float = 3.0,
                  but: tuple[str, ...] = ()) -> None:
    """Nothing keyed by ``complaint_id`` (other than records named in ``but``) is on
    ``topic``, from its start until ``seconds`` from now."""
    reader = Topic(world.settings, topic)
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        for batch in reader.consumer.poll(timeout_ms=300).values():
            for msg in batch:
                if msg.key == complaint_id.encode():
                    name = codec.decode(msg.value).name
                    assert name in but, f"{name} produced for {complaint_id}"


def wait_listed(client: TestClient, complaint_id: str, timeout: float = 30) -> str:
    """The inbox once it lists the case (the ledger is written just after Kafka)."""
    end = time.monotonic() + timeout
    while True:
        page = client.get("/inbox")
        if complaint_id in page.text or time.monotonic() > end:
            return page.text
        time.sleep(0.3)


def test_a_unit_sees_its_own_cases_and_never_another_units(world: World,
                                                            unit_a: TestClient) -> None:
    mine, theirs = world.case_a["complaint_id"], world.case_b["complaint_id"]
    inbox = wait_listed(unit_a, mine)
    assert mine in inbox and theirs not in inbox
    assert unit_a.get(f"/cases/{mine}").status_code == 200
    # Another unit's case, and a case that does not exist, look the same: 404.
    assert unit_a.get(f"/cases/{theirs}").status_code == 404
    assert unit_a.get("/cases/NO-SUCH-CASE").status_code == 404
    # Pages of other roles are not there for a unit either.
    assert unit_a.get("/review").status_code == 404
    assert unit_a.get("/supervision").status_code == 404


def test_a_unit_acting_on_another_units_case_gets_404_and_nothing_is_produced(
        world: World, unit_a: TestClient) -> None:
    theirs = world.case_b["complaint_id"]
    csrf = token(unit_a.get("/inbox").text)
    for action, data in (("sign", {}), ("return", {"reason": "不归我们管"}),
                         ("complete", {"result": "RESOLVED", "reply_text": "已办结"}),
                         ("progress", {"text": "处理中"}),
                         ("extension", {"extra_days": "3", "reason": "需要时间"}),
                         ("whistle", {"units": "bj-housing", "reason": "需要协助"})):
        response = unit_a.post(f"/cases/{theirs}/{action}", data={"csrf_token": csrf, **data})
        assert response.status_code == 404, (action, response.status_code)
    # A dispatcher cannot act as a unit, nor a unit as a dispatcher.
    desk = client_for(unit_a.app, "desk")
    desk_csrf = token(desk.get("/review").text)
    assert desk.post(f"/cases/{theirs}/sign", data={"csrf_token": desk_csrf}).status_code == 404
    assert unit_a.post(f"/review/{theirs}", data={
        "csrf_token": csrf, "decision": "REJECT"}).status_code == 404
    s = world.settings
    no_record_for(world, s.topic_unit_replies, theirs)
    no_record_for(world, s.topic_intake, theirs, seconds=1, but=("ComplaintFiled",))


def test_posts_without_the_sessions_csrf_token_are_refused(world: World,
                                                          unit_a: TestClient) -> None:
    mine = world.case_a["complaint_id"]
    assert unit_a.post(f"/cases/{mine}/sign", data={}).status_code == 403
    assert unit_a.post(f"/cases/{mine}/sign",
                       data={"csrf_token": "forged"}).status_code == 403
    # Another session's token is not this session's.
    other = client_for(unit_a.app, None)
    foreign = token(other.get("/login").text)
    assert unit_a.post(f"/cases/{mine}/sign", data={"csrf_token": foreign}).status_code == 403
    # Signing in needs the token too.
    assert other.post("/login", data={"username": "unit-a",
                                      "password": PASSWORD}).status_code == 403
    no_record_for(world, world.settings.topic_unit_replies, mine)


def test_the_session_cookie_is_httponly_and_samesite_strict(app: object) -> None:
    client = client_for(app, None)
    cookie = client.get("/login").headers["set-cookie"]
    assert "HttpOnly" in cookie and "SameSite=strict" in cookie.replace("Strict", "strict")


def test_sign_in_is_locked_after_five_failures(world: World, app: object) -> None:
    name = f"throttle-{uuid.uuid4().hex[:6]}"
    save_account(world.settings.dsn, NewAccount(name, "supervisor", PASSWORD))
    client = client_for(app, None)
    for _ in range(5):
        page = client.get("/login")
        bad = client.post("/login", data={"username": name, "password": "wrong password",
                                          "csrf_token": token(page.text)})
        assert bad.status_code in (401, 429)
    page = client.get("/login")
    locked = client.post("/login", data={"username": name, "password": PASSWORD,
                                         "csrf_token": token(page.text)},
                         follow_redirects=False)
    assert locked.status_code == 429
    assert "登录失败次数过多" in locked.text


def test_a_script_in_a_complaint_renders_as_text(world: World, unit_a: TestClient) -> None:
    s = world.settings
    cid = f"WBX-{uuid.uuid4().hex[:8]}"
    dispatches = Topic(s, s.topic_dispatches)
    send(s, s.topic_intake, cid, "ComplaintFiled", filing(
        cid, "<script>alert('x')</script>" + WANGJING[0], WANGJING[1], WANGJING[2]))
    issued = dispatches.wait_for(lambda n, r: n == "DispatchIssued" and r["complaint_id"] == cid)
    assert issued["unit_id"] == world.unit_a
    wait_listed(unit_a, cid)
    page = unit_a.get(f"/cases/{cid}")
    assert page.status_code == 200
    assert "&lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt;" in page.text
    assert "<script>" not in page.text


def test_a_photo_that_is_not_an_image_is_refused_and_nothing_is_produced(
        world: World, unit_a: TestClient, tmp_path: Path) -> None:
    mine = world.case_a["complaint_id"]
    csrf = token(unit_a.get(f"/cases/{mine}").text)
    response = unit_a.post(f"/cases/{mine}/complete", data={
        "csrf_token": csrf, "result": "RESOLVED", "reply_text": "已修复"},
        files=[("photos", ("photo.jpg", b"<html>not a photo</html>", "image/jpeg"))])
    assert response.status_code == 400
    assert "JPEG, PNG or WebP" in response.text
    no_record_for(world, world.settings.topic_unit_replies, mine, seconds=2)


def test_probes_metrics_and_english(app: object, unit_a: TestClient) -> None:
    from prometheus_client import REGISTRY

    probe = client_for(app, None)
    assert probe.get("/healthz").status_code == 200
    assert probe.get("/readyz").status_code == 200  # the ledger and Kafka answer
    english = unit_a.get("/inbox?lang=en")
    assert "Inbox" in english.text and "hotline_wb_lang=en" in english.headers["set-cookie"]
    assert "Inbox" in unit_a.get("/inbox").text  # remembered
    assert "待办工单" in unit_a.get("/inbox?lang=zh").text
    served = REGISTRY.get_sample_value("hotline_workbench_responses_total",
                                       {"route": "/inbox", "code": "200"})
    assert served and served >= 3
