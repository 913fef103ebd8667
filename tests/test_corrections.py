"""The loop closes (issue 25, item 6), on the real stack: a dispatcher's decision, a unit's
return with a reason and a supervisor's reassignment become labelled corrections
(``hotline routing corrections``, ledger + request text from Temporal), and
``hotline routing learn --corrections`` trains on them and promotes by the held-out rule.
"""

from __future__ import annotations

import asyncio
import json
import shutil
import time
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import psycopg
import pytest
import pytest_asyncio
from typer.testing import CliRunner

from activities.dispatch.config import load_config
from activities.dispatch.corrections import LedgerEvent, Request, corrections, to_jsonl
from activities.dispatch.evaluation import load_labelled
from activities.dispatch.learned import MODEL_FILE, load_model
from activities.dispatch.training import read_examples
from tests.live import Topic, live_services, send
from workers.cli.main import app
from workers.runtime.settings import REPO_ROOT, Settings

AMBIGUOUS = "小黄庄社区门口垃圾堆了三天没人清运"  # 小黄庄 is in 东城 and in 朝阳: the desk
# A street lamp in 望京: dispatched at once; the caller's number must not leave the case.
LAMP = "朝阳区望京街道花家地北里小区门口的路灯坏了一个星期了，联系电话13912345678"
CHAOYANG_XIAOHUANGZHUANG = next(
    p.unit_id for p in load_config(Settings().config_dir).registry.places.get("小黄庄社区")
    if p.district == "朝阳区")
SUPERVISOR_PICK = "bj-urban-mgmt"
RETURN_REASON = "路灯归城市照明管理部门，不属于本街道职责"
LABELLED = REPO_ROOT / "tests" / "data" / "routing_labelled.jsonl"
HOLDOUT = REPO_ROOT / "tests" / "data" / "routing_holdout.jsonl"


@pytest_asyncio.fixture(scope="module")
async def live() -> AsyncIterator[Settings]:
    async with live_services("corr") as settings:
        yield settings


@pytest.fixture
def cli_env(live: Settings, monkeypatch: pytest.MonkeyPatch) -> Settings:
    """The CLI reads its settings from the environment, as a dispatcher's shell would."""
    monkeypatch.setenv("HOTLINE_TOPIC_PREFIX", live.topic_prefix)
    monkeypatch.setenv("HOTLINE_POSTGRES_DB", live.postgres_db)
    return live


def _cli(*args: str) -> Any:
    return asyncio.to_thread(CliRunner().invoke, app, list(args))


async def _file(s: Settings, content: str) -> str:
    cid = f"CORR-{uuid.uuid4().hex[:8]}"
    await asyncio.to_thread(send, s, s.topic_intake, cid, "ComplaintFiled", {
        "event_id": f"f-{cid}", "complaint_id": cid, "filed_at": datetime.now(UTC),
        "channel": "PHONE", "content": content, "anonymous": True})
    return cid


async def _ledger_has(s: Settings, cid: str, event_type: str, timeout: float = 30) -> None:
    """record_step writes the ledger after Kafka: wait for the row."""
    deadline = time.monotonic() + timeout
    async with await psycopg.AsyncConnection.connect(s.dsn, autocommit=True) as conn:
        while time.monotonic() < deadline:
            row = await (await conn.execute(
                "SELECT 1 FROM case_events WHERE complaint_id = %s AND event_type = %s",
                (cid, event_type))).fetchone()
            if row:
                return
            await asyncio.sleep(0.3)
    raise AssertionError(f"{cid}: no {event_type} in the ledger within {timeout}s")


def _learn(tmp: Path, out: Path, *extra: str) -> Any:
    """``routing learn`` on half the labelled set (quick), judged on 40 held-out requests,
    with a copy of the config folder: deploy/config is never written."""
    train = tmp / "train.jsonl"
    if not train.exists():
        train.write_text("".join(LABELLED.read_text(encoding="utf-8")
                                 .splitlines(keepends=True)[::2]), encoding="utf-8")
        (tmp / "holdout.jsonl").write_text("".join(HOLDOUT.read_text(encoding="utf-8")
                                                   .splitlines(keepends=True)[:40]),
                                           encoding="utf-8")
        shutil.copytree(Settings().config_dir, tmp / "config")
    return CliRunner().invoke(app, [
        "routing", "learn", "--train", str(train), "--holdout", str(tmp / "holdout.jsonl"),
        "--out", str(out), "--config-dir", str(tmp / "config"), "--at", "2026-12-06",
        *extra])


@pytest.mark.stack
async def test_desk_decisions_returns_and_reassignments_teach_the_next_model(
    cli_env: Settings, tmp_path: Path,
) -> None:
    s = cli_env
    lifecycle = Topic(s, s.topic_lifecycle)
    dispatches = Topic(s, s.topic_dispatches)
    shipped = (REPO_ROOT / "deploy" / "config" / MODEL_FILE).read_bytes()

    # 1. Unsure → the desk; a dispatcher sends it to 朝阳's street with another tier.
    desk = await _file(s, AMBIGUOUS)
    requested = await asyncio.to_thread(lifecycle.wait_for, lambda n, r: r["complaint_id"]
                                        == desk and r["event_type"] == "REVIEW_REQUESTED")
    machine_tier = requested["candidates"][0]["tier"]
    tier = "T7D" if machine_tier != "T7D" else "T24H"
    result = await _cli("desk", "decide", desk, "--unit", CHAOYANG_XIAOHUANGZHUANG,
                        "--tier", tier, "--dispatcher", "desk-9", "--note", "朝阳的小黄庄",
                        "--wait", "30", "--json")
    assert result.exit_code == 0, result.output

    # 2. Dispatched at once; the unit returns it with a reason; the router sends it on.
    lamp = await _file(s, LAMP)
    issued = await asyncio.to_thread(
        dispatches.wait_for, lambda n, r: n == "DispatchIssued" and r["complaint_id"] == lamp)
    returned_by = issued["unit_id"]
    await asyncio.to_thread(send, s, s.topic_unit_replies, lamp, "DispatchReturned", {
        "event_id": f"r-{lamp}", "complaint_id": lamp, "dispatch_id": issued["dispatch_id"],
        "unit_id": returned_by, "at": datetime.now(UTC), "reason": RETURN_REASON})
    redispatched = await asyncio.to_thread(
        lifecycle.wait_for, lambda n, r: r["complaint_id"] == lamp
        and r["event_type"] == "REDISPATCHED")
    assert SUPERVISOR_PICK not in {returned_by, redispatched["unit_id"]}

    # 3. A supervisor reassigns it to the city's urban management.
    result = await _cli("case", "reassign", lamp, SUPERVISOR_PICK, "--by", "sup-3",
                        "--reason", "城市照明归城管委")
    assert result.exit_code == 0, result.output
    for cid, event_type in ((desk, "REVIEW_DECIDED"), (lamp, "RETURNED")):
        await _ledger_has(s, cid, event_type)
    deadline = time.monotonic() + 30
    async with await psycopg.AsyncConnection.connect(s.dsn, autocommit=True) as conn:
        while (await (await conn.execute(
                "SELECT count(*) FROM case_events WHERE complaint_id = %s "
                "AND event_type = 'REDISPATCHED'", (lamp,))).fetchone() or [0])[0] < 2:
            assert time.monotonic() < deadline, "the reassignment never reached the ledger"
            await asyncio.sleep(0.3)

    # The export: exactly these three labels, with the request texts, in order.
    out = tmp_path / "corrections.jsonl"
    result = await _cli("routing", "corrections", "--out", str(out), "--json")
    assert result.exit_code == 0, result.output
    summary = json.loads(result.stdout)
    assert summary["by_kind"] == {"DISPATCHED": 1, "REASSIGNED": 1, "RETURNED": 1}
    assert summary["teach_tier"] == 1
    records = load_labelled(out)  # the Labelled format, strictly
    got = [(r.correction.kind, r.correction.complaint_id) for r in records if r.correction]
    assert got == [("DISPATCHED", desk), ("RETURNED", lamp), ("REASSIGNED", lamp)]
    decided, returned, reassigned = records
    assert decided.content == AMBIGUOUS
    assert (decided.expect.lead, decided.expect.tier) == (CHAOYANG_XIAOHUANGZHUANG, tier)
    assert decided.correction and decided.correction.teaches_tier
    assert (decided.correction.by, decided.correction.reason) == ("desk-9", "朝阳的小黄庄")
    assert "13912345678" not in returned.content and "***" in returned.content
    assert returned.correction and not returned.correction.teaches_tier
    assert returned.correction.not_lead == returned_by and returned.expect.lead is None
    assert returned.correction.reason == RETURN_REASON
    assert reassigned.expect.lead == SUPERVISOR_PICK and reassigned.content == returned.content

    # Idempotent: the same ledger gives the same bytes, on stdout too; --since filters.
    again = await _cli("routing", "corrections")
    assert again.exit_code == 0 and again.stdout == out.read_text(encoding="utf-8")
    tomorrow = (date.today() + timedelta(days=2)).isoformat()
    later = await _cli("routing", "corrections", "--since", tomorrow, "--json")
    assert later.exit_code == 0 and later.stdout == "" and '"lines": 0' in later.stderr
    bad = await _cli("routing", "corrections", "--since", "last week")
    assert bad.exit_code == 2 and "--since" in bad.output

    # Retrain with them: no current model → written, counting the corrections.
    model = tmp_path / MODEL_FILE
    result = await asyncio.to_thread(_learn, tmp_path, model, "--corrections", str(out))
    assert result.exit_code == 0, result.output
    assert "no current model" in result.output
    doc = json.loads(model.read_text(encoding="utf-8"))
    entry = next(e for e in doc["created_from"] if e["file"] == str(out))
    # The supervisor's reassignment teaches who leads (the lead head), not the tier.
    assert entry == {"file": str(out), "examples": 1, "skipped_no_tier": 0,
                     "corrections": 1, "corrections_not_for_tier": 2, "lead_only": 1}
    assert "tests/data/routing_holdout.jsonl" not in {e["file"] for e in doc["created_from"]}

    # A current model the candidate cannot beat on the held-out set is kept.
    doc.update(version="hand-made", t2h_threshold=1.0)  # never raises: the rules find all
    model.write_text(json.dumps(doc, ensure_ascii=False), encoding="utf-8")
    before = model.read_bytes()
    result = await asyncio.to_thread(_learn, tmp_path, model, "--corrections", str(out))
    assert result.exit_code == 0, result.output
    assert "kept" in result.output and model.read_bytes() == before
    assert load_model(model).version == "hand-made"

    # The corrections file is never the held-out set.
    result = await asyncio.to_thread(_learn, tmp_path, model, "--corrections",
                                     str(tmp_path / "holdout.jsonl"))
    assert result.exit_code == 2 and "cannot also be trained on" in result.output
    assert (REPO_ROOT / "deploy" / "config" / MODEL_FILE).read_bytes() == shipped


# --- the mapping alone (no stack) ----------------------------------------------------

T0 = datetime(2026, 12, 6, 1, 0, tzinfo=UTC)


def _event(cid: str, seq: int, event_type: str, unit: str | None = None,
           reason: str | None = None, **attrs: str) -> LedgerEvent:
    return LedgerEvent(
        event_id=f"{cid}:{seq}", complaint_id=cid, seq=seq, at=T0 + timedelta(minutes=seq),
        event_type=event_type, unit_id=unit, reason=reason, attributes=attrs,
        kind="COMPLAINT", category="environment.rubbish", tier="T24H", district="朝阳区",
        street="望京街道", filed_at=T0)


def test_each_kind_of_correction_teaches_what_it_says() -> None:
    events = [
        _event("B", 5, "REDISPATCHED", "bj-urban-mgmt", "reassigned by sup: 照明",
               rule="supervisor", from_unit="110105026"),
        _event("A", 2, "REVIEW_DECIDED", None, "朝阳", decision="DISPATCH",
               dispatcher_id="d1", unit_id="110105014"),
        _event("B", 3, "RETURNED", "110105026", "不归我们"),
        _event("B", 4, "REDISPATCHED", "110105000", "returned: 不归我们", rule="district"),
        _event("C", 2, "REVIEW_DECIDED", decision="REJECT", dispatcher_id="d1"),
        _event("D", 2, "REVIEW_DECIDED", decision="ANSWER_DIRECTLY", dispatcher_id="d2"),
        _event("E", 2, "REVIEW_DECIDED", decision="REDIRECT", dispatcher_id="d2"),
        _event("F", 3, "RETURNED", "u1", "  "),
        # Returned, then a supervisor gave it back to the same unit: the return was wrong.
        _event("G", 3, "RETURNED", "u1", "不归我们"),
        _event("G", 6, "REDISPATCHED", "u1", "reassigned", rule="supervisor"),
        _event("H", 2, "REVIEW_DECIDED", decision="DISPATCH", dispatcher_id="d1",
               unit_id="u9"),
    ]
    requests: dict[str, Request | None] = {
        cid: Request(content=f"request {cid}") for cid in "ABCDEFG"}
    requests["H"] = None  # past Temporal's retention
    export = corrections(events, requests,
                         street_id=lambda d, s: "110105026" if s == "望京街道" else None)
    lines = {(r.correction.complaint_id, r.correction.kind): r
             for r in export.records if r.correction}
    assert list(lines) == [("A", "DISPATCHED"), ("C", "REJECTED"), ("D", "ANSWERED_DIRECTLY"),
                           ("B", "RETURNED"), ("B", "REASSIGNED"), ("G", "REASSIGNED")]
    assert lines["A", "DISPATCHED"].expect.lead == "110105014"
    assert lines["A", "DISPATCHED"].expect.street == "110105026"
    assert lines["C", "REJECTED"].expect.unreasonable
    assert lines["C", "REJECTED"].expect.lead is None
    assert lines["D", "ANSWERED_DIRECTLY"].expect.lead is None
    assert lines["B", "RETURNED"].correction.not_lead == "110105026"  # type: ignore[union-attr]
    assert lines["B", "REASSIGNED"].expect.lead == "bj-urban-mgmt"
    assert export.for_tier() == 1
    assert sum(export.left_out.values()) == 5 and export.left_out[
        "the request's text is no longer in Temporal"] == 1
    assert any("REDIRECT" in why for why in export.left_out)
    assert to_jsonl(corrections(list(reversed(events)), requests).records) == to_jsonl(
        corrections(events, requests).records)


def test_training_counts_corrections_and_never_learns_a_held_out_request(
    tmp_path: Path,
) -> None:
    events = [_event("A", 2, "REVIEW_DECIDED", decision="DISPATCH", dispatcher_id="d",
                     unit_id="u"),
              _event("B", 2, "REVIEW_DECIDED", decision="DISPATCH", dispatcher_id="d",
                     unit_id="u"),
              _event("C", 3, "RETURNED", "u", "不归我们")]
    held = json.loads(HOLDOUT.read_text(encoding="utf-8").splitlines()[0])["content"]
    requests: dict[str, Request | None] = {"A": Request("楼下垃圾没人清运"), "B": Request(held),
                                           "C": Request("路灯坏了")}
    path = tmp_path / "c.jsonl"
    path.write_text(to_jsonl(corrections(events, requests).records), encoding="utf-8")
    examples, sources = read_examples([path], held_out={held})
    assert [e.text for e in examples] == ["楼下垃圾没人清运"]
    assert sources[0].as_dict() == {
        "file": str(path), "examples": 1, "skipped_no_tier": 0, "corrections": 1,
        "corrections_not_for_tier": 1, "skipped_held_out": 1}
