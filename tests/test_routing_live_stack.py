"""``hotline routing blind-live`` end to end on the real stack: Kafka → Temporal → Kafka.

Ten requests written here (not a blind set: those stay unread) are filed on
hotline.intake by the command, decided by a real worker behind the bridges, and scored
from hotline.lifecycle; the figures must be those ``hotline routing blind`` computes in
process for the same requests, outcomes included (dispatched, desk, transferred).
"""

from __future__ import annotations

import asyncio
import json
import os
import sys
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import pytest_asyncio
from typer.testing import CliRunner

from tests.live import Topic, live_services
from workers.cli.main import app
from workers.runtime.settings import Settings

pytestmark = pytest.mark.stack


def _item(n: int, content: str, expect: dict[str, Any], **given: str) -> dict[str, Any]:
    return {"id": f"live-{n}", "content": content, "district": given.get("district"),
            "street": given.get("street"), "address": given.get("address"),
            "urgency_hint": given.get("urgency_hint"), "kind": given.get("kind"),
            "expect": expect}


# Labelled by hand; some labels disagree with the machine so every measure has both.
ITEMS = [
    _item(1, "朝阳区望京街道阜通东大街上有个井盖丢了，晚上黑乎乎的怕有人掉下去",
          {"tier": "T2H", "lead": "110105026", "street": "110105026", "street_named": True},
          district="朝阳区"),
    _item(2, "西城区金融街街道那边的路灯坏了好几盏，晚上走路看不清",
          {"tier": "T7D", "lead": "110102011", "street": "110102011", "street_named": True},
          district="西城区"),
    _item(3, "我家楼下着火了，火苗已经蹿到二楼了，里面好像还有人",
          {"tier": None, "redirect": "119"}, district="海淀区"),
    _item(4, "我想咨询一下，办居住证需要带哪些材料",
          {"tier": None, "no_dispatch": "CONSULTATION"}, kind="CONSULTATION"),
    _item(5, "小黄庄社区门口垃圾堆了三天没人清运",
          {"tier": "T24H", "lead": "UNLOCATED", "ambiguous_place": True}),
    _item(6, "我是北京通州人，在燕郊的家里闻到很大的燃气味",
          {"tier": None, "no_dispatch": "OUTSIDE_BEIJING"}),
    _item(7, "丰台区卢沟桥街道的一家饭馆每天半夜还在外面烧烤，油烟大吵得睡不着",
          {"tier": "T24H", "lead": "110106017", "street": "110106017", "street_named": True},
          district="丰台区", kind="COMPLAINT"),
    _item(8, "海淀区中关村大街旁边的人行道砖翘起来了，老人容易绊倒",
          {"tier": "T24H", "lead": "110108011", "street": "110108011", "street_named": True},
          district="海淀区", street="中关村街道"),
    _item(9, "东城区东华门街道一个老旧小区的楼道灯坏了一个月了",
          {"tier": "T7D", "lead": "110101001", "street": "110101001", "street_named": True},
          district="东城区", address="南池子大街", urgency_hint="T7D"),
    _item(10, "有个老人在路边晕倒了，叫不醒，还在喘气", {"tier": None, "redirect": "120"}),
]


@pytest_asyncio.fixture(scope="module")
async def live() -> AsyncIterator[Settings]:
    async with live_services("blindlive") as settings:
        yield settings


async def _hotline(env: dict[str, str], *args: str) -> tuple[int, str, str]:
    """``hotline ARGS`` in its own process, as an evaluator runs it (this process's
    worker and bridges log on its standard output): exit code, stdout, stderr."""
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "workers.cli.main", *args, env={**os.environ, **env},
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
    out, err = await asyncio.wait_for(proc.communicate(), 180)
    assert proc.returncode is not None
    return proc.returncode, out.decode(), err.decode()


def _write(path: Path, items: list[dict[str, Any]]) -> Path:
    path.write_text("".join(json.dumps(i, ensure_ascii=False) + "\n" for i in items),
                    encoding="utf-8")
    return path


async def test_live_figures_equal_the_in_process_figures(live: Settings,
                                                         tmp_path: Path) -> None:
    s = live
    file = _write(tmp_path / "mine.jsonl", ITEMS)
    prefix = f"LIVETEST{uuid.uuid4().hex[:6]}"
    env = {"HOTLINE_TOPIC_PREFIX": s.topic_prefix, "HOTLINE_POSTGRES_DB": s.postgres_db}
    code, live_out, err = await _hotline(env, "routing", "blind-live", str(file), "--json",
                                     "--quiet", "--timeout", "120", "--prefix", prefix)
    assert code == 0, err
    # The filing day of the live cases (the stack's clock), for the in-process run.
    day = datetime.now(UTC).date().isoformat()
    code, in_process, err = await _hotline(env, "routing", "blind", str(file), "--json",
                                           "--at", day)
    assert code == 0, err

    got, want = json.loads(live_out), json.loads(in_process)
    assert got == want
    # The set reaches every kind of decision, and measures both right and wrong answers.
    assert got["outcomes"] == {"DISPATCH": 6, "REVIEW": 2, "REDIRECTED": 2}
    assert got["redirected"]["ok"] == 2 and got["no_dispatch_sent"]["ok"] == 1
    assert 0 < got["tier"]["ok"] < got["tier"]["of"]
    assert got["street_named"]["of"] == 5

    # Filed as real ComplaintFiled records under the prefix, one per item; no item shown.
    intake = Topic(s, s.topic_intake)
    filed = await asyncio.to_thread(_filed_under, intake, prefix, len(ITEMS))
    assert sorted(r["content"] for r in filed) == sorted(i["content"] for i in ITEMS)
    assert all(r["anonymous"] and r["channel"] == "PHONE" for r in filed)
    assert not any(i["content"] in live_out + err or i["id"] in live_out + err for i in ITEMS)


def _filed_under(intake: Topic, prefix: str, count: int) -> list[dict[str, Any]]:
    def mine() -> list[dict[str, Any]]:
        return [r for n, r in intake.seen
                if n == "ComplaintFiled" and r["complaint_id"].startswith(prefix)]

    intake.wait_for(lambda n, r: len(mine()) >= count, 30)
    return mine()


def test_a_missing_topic_is_one_line_not_a_traceback(tmp_path: Path,
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HOTLINE_TOPIC_PREFIX", f"nosuch{uuid.uuid4().hex[:6]}.")
    file = _write(tmp_path / "mine.jsonl", ITEMS[:1])
    result = CliRunner().invoke(app, ["routing", "blind-live", str(file), "--quiet"])
    assert result.exit_code == 3
    assert "hotline.lifecycle is not on the broker" in result.stderr
    assert "Traceback" not in result.output
