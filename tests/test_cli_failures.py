"""Every ``hotline`` command fails in one stderr line with its documented exit code (issue 28).

docs/cli.md: 1 refused or not found, 2 bad input, 3 a server unreachable, 4 bad file,
5 no answer, 70 a bug. Servers are made unreachable by pointing the settings at a port
nothing listens on; the commands run in-process through typer's runner (a subprocess
only where a worker must answer). Reads with ``--json`` are parsed and their keys checked
against a ledger seeded for this module and the real local stack.
"""

from __future__ import annotations

import asyncio
import json
import os
import socket
import subprocess
import sys
import uuid
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import psycopg
import pytest
import pytest_asyncio
import typer
from typer.testing import CliRunner, Result

from schemas import codec
from tests.live import live_services
from tests.test_governance import MONTH, Msg, generate_events
from workers.cli.failures import (
    EXIT_BAD_FILE,
    EXIT_BAD_INPUT,
    EXIT_BUG,
    EXIT_NO_ANSWER,
    EXIT_REFUSED,
    EXIT_UNREACHABLE,
    HotlineGroup,
    classify,
    traceback_option,
)
from workers.cli.main import app
from workers.devstack.stack import ensure_database
from workers.projector.main import Projector
from workers.runtime.migrate import apply_migrations
from workers.runtime.settings import REPO_ROOT, Settings, get_settings

RUNNER = CliRunner()
HOLDOUT = REPO_ROOT / "tests" / "data" / "routing_holdout.jsonl"
PLAN_YAML = """\
plan_id: {plan_id}
category: order.vendors
title: 夜间占道经营治理
tasks:
  - {{task_id: t1, owner_unit_id: "{unit}", description: 设夜市疏导点, due_month: 2026-10}}
"""


def _dead_port() -> int:
    """A port nothing listens on: bound, then released."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port


def _env(monkeypatch: pytest.MonkeyPatch, values: dict[str, str]) -> None:
    for name, value in values.items():
        monkeypatch.setenv(name, value)
    get_settings.cache_clear()  # plan and governance read the cached settings


@pytest.fixture
def dead(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[int]:
    """Temporal, PostgreSQL and Kafka all at a port nothing listens on."""
    port = _dead_port()
    _env(monkeypatch, {
        "HOTLINE_TEMPORAL_ADDRESS": f"127.0.0.1:{port}",
        "HOTLINE_DATABASE_URL": f"postgresql://postgres@127.0.0.1:{port}/hotline",
        "HOTLINE_KAFKA_BOOTSTRAP": f"127.0.0.1:{port}",
        "HOTLINE_STATE_DIR": str(tmp_path)})
    yield port
    get_settings.cache_clear()


def hotline(*args: str | Path) -> Result:
    return RUNNER.invoke(app, [str(a) for a in args])


def assert_fails(result: Result, code: int, *words: str) -> str:
    """Exit ``code``, one stderr line containing ``words``, no traceback anywhere."""
    everything = result.stdout + result.stderr
    assert result.exit_code == code, (result.exit_code, everything)
    assert "Traceback" not in everything
    assert result.exception is None or isinstance(result.exception, SystemExit)
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, result.stderr
    for word in words:
        assert word in lines[0], (word, lines[0])
    return lines[0]


def _plan_file(tmp_path: Path, unit: str = "110105026", plan_id: str = "P-cli") -> Path:
    path = tmp_path / "plan.yaml"
    path.write_text(PLAN_YAML.format(plan_id=plan_id, unit=unit), encoding="utf-8")
    return path


# --------------------------------------------------------------------------------------
# Servers unreachable: 3


TEMPORAL = "Temporal not reachable"
POSTGRES = "PostgreSQL not reachable"
KAFKA = "Kafka not reachable"


@pytest.mark.parametrize(("args", "says"), [
    (["case", "show", "C-1"], POSTGRES),  # and Temporal: both named
    (["case", "escalate", "C-1", "--by", "王科长", "--reason", "r"], TEMPORAL),
    (["case", "reassign", "C-1", "bj-housing", "--by", "王科长", "--reason", "r"], TEMPORAL),
    (["case", "extension", "C-1", "--grant", "--by", "王科长", "--json"], TEMPORAL),
    (["overdue"], POSTGRES),
    (["overdue", "--json"], POSTGRES),
    (["rankings", "--month", "2026-09"], POSTGRES),
    (["priority-streets", "--month", "2026-09", "--json"], POSTGRES),
    (["hotspots", "--json"], POSTGRES),
    (["report", "monthly", "--month", "2026-09"], POSTGRES),
    (["desk", "list"], POSTGRES),
    (["desk", "decide", "C-1", "--dispatcher", "d1"], KAFKA),
    (["dlq", "list"], KAFKA),
    (["dlq", "show", "0:1", "--json"], KAFKA),
    (["dlq", "redrive", "0:1"], KAFKA),
    (["plan", "show", "P-1"], TEMPORAL),
    (["plan", "close", "P-1", "--json"], TEMPORAL),
    (["schedules", "install"], TEMPORAL),
])
def test_unreachable_servers_exit_3(dead: int, args: list[str], says: str) -> None:
    line = assert_fails(hotline(*args), EXIT_UNREACHABLE, says, f"127.0.0.1:{dead}",
                        "hotline stack status")
    if args[:2] == ["case", "show"]:
        assert TEMPORAL in line  # "not found" is not said when neither source answered


def test_plan_start_with_temporal_down_exits_3(dead: int, tmp_path: Path) -> None:
    assert_fails(hotline("plan", "start", _plan_file(tmp_path)), EXIT_UNREACHABLE, TEMPORAL)


def test_a_bad_setting_exits_2(monkeypatch: pytest.MonkeyPatch) -> None:
    _env(monkeypatch, {"HOTLINE_POSTGRES_PORT": "fifty"})
    try:
        assert_fails(hotline("overdue"), EXIT_BAD_INPUT, "HOTLINE_POSTGRES_PORT")
    finally:
        get_settings.cache_clear()


# --------------------------------------------------------------------------------------
# Bad input: 2, told before any server is asked (they are all away here)


@pytest.mark.parametrize(("args", "says"), [
    (["rankings", "--month", "2026-13"], "--month"),
    (["priority-streets", "--month", "09-2026"], "YYYY-MM"),
    (["report", "monthly", "--month", "2026-1"], "YYYY-MM"),
    (["rankings", "--group", "parks"], "--group"),
    (["routing", "explain", "路灯坏了", "--at", "2026-02-30"], "--at"),
    (["routing", "eval", str(HOLDOUT), "--at", "tomorrow"], "YYYY-MM-DD"),
    (["routing", "blind", str(HOLDOUT), "--at", "12/06/2026"], "YYYY-MM-DD"),
    (["routing", "learn", "--at", "x"], "--at"),
    (["dlq", "list", "--since", "yesterday"], "yesterday"),
    (["dlq", "show", "zero"], "PARTITION:OFFSET"),
    (["dlq", "redrive"], "PARTITION:OFFSET"),
    (["overdue", "--tier", "T3D"], "--tier"),
    (["desk", "decide", "C-1", "--dispatcher", "d1", "--decision", "MAYBE"], "--decision"),
    (["hotspots", "--days", "0"], "--days"),
    (["case", "escalate", "C-1"], "--by"),
    (["nosuch"], "nosuch"),
])
def test_bad_input_exits_2(dead: int, args: list[str], says: str) -> None:
    assert_fails(hotline(*args), EXIT_BAD_INPUT, says)


# --------------------------------------------------------------------------------------
# Bad files: 4


def test_bad_files_exit_4(dead: int, tmp_path: Path) -> None:
    missing = tmp_path / "missing.yaml"
    assert_fails(hotline("plan", "start", missing), EXIT_BAD_FILE, str(missing), "no such file")
    garbled = tmp_path / "garbled.yaml"
    garbled.write_text("plan_id: [\n", encoding="utf-8")
    assert_fails(hotline("plan", "start", garbled), EXIT_BAD_FILE, "not YAML")
    assert_fails(hotline("plan", "start", _plan_file(tmp_path, unit="nobody")),
                 EXIT_BAD_FILE, "unknown owner unit 'nobody'")
    not_a_plan = tmp_path / "list.yaml"
    not_a_plan.write_text("- a\n- b\n", encoding="utf-8")
    assert_fails(hotline("plan", "start", not_a_plan), EXIT_BAD_FILE, str(not_a_plan))

    assert_fails(hotline("routing", "eval", missing), EXIT_BAD_FILE, "no such file")
    broken = tmp_path / "broken.jsonl"
    broken.write_text('{"id": 1,\n', encoding="utf-8")
    assert_fails(hotline("routing", "eval", broken), EXIT_BAD_FILE, str(broken))
    assert_fails(hotline("routing", "blind", tmp_path), EXIT_BAD_FILE, "not a file")
    assert_fails(hotline("routing", "learn", "--train", missing), EXIT_BAD_FILE,
                 "no such file")
    assert_fails(hotline("routing", "explain", "路灯坏了", "--config-dir", missing),
                 EXIT_BAD_FILE, "config folder")
    assert_fails(hotline("routing", "explain", "路灯坏了", "--config-dir", tmp_path),
                 EXIT_BAD_FILE, str(tmp_path))
    # Read before Kafka is asked: the file is the problem named.
    assert_fails(hotline("dlq", "redrive", "0:1", "--value-file", missing), EXIT_BAD_FILE,
                 "no such file")


# --------------------------------------------------------------------------------------
# The mechanism: anything else is a bug (70), shown whole with --traceback


def _buggy_app() -> typer.Typer:
    buggy = typer.Typer(cls=HotlineGroup, no_args_is_help=True)

    @buggy.callback()
    def _root(traceback: bool = traceback_option()) -> None:
        """A command with a bug."""

    @buggy.command()
    def divide() -> None:
        print(1 / 0)

    @buggy.command()
    def interrupt() -> None:
        raise KeyboardInterrupt

    return buggy


def test_an_unexpected_error_is_one_line_and_70_with_the_trace_on_request() -> None:
    buggy = _buggy_app()
    result = RUNNER.invoke(buggy, ["divide"])
    assert_fails(result, EXIT_BUG, "ZeroDivisionError", "--traceback")
    result = RUNNER.invoke(buggy, ["--traceback", "divide"])
    assert result.exit_code == EXIT_BUG
    assert "Traceback" in result.stderr and "1 / 0" in result.stderr
    assert_fails(RUNNER.invoke(buggy, ["interrupt"]), 130, "interrupted")


def test_errors_of_the_client_libraries_map_to_the_table() -> None:
    import yaml
    from kafka.errors import KafkaConnectionError
    from temporalio.exceptions import WorkflowAlreadyStartedError
    from temporalio.service import RPCError, RPCStatusCode

    cases: list[tuple[BaseException, int]] = [
        (psycopg.OperationalError("connection failed: Connection refused"), EXIT_UNREACHABLE),
        (RPCError("unavailable", RPCStatusCode.UNAVAILABLE, b""), EXIT_UNREACHABLE),
        (RPCError("workflow not found", RPCStatusCode.NOT_FOUND, b""), EXIT_REFUSED),
        (RPCError("deadline", RPCStatusCode.DEADLINE_EXCEEDED, b""), EXIT_NO_ANSWER),
        (RuntimeError("Failed client connect: tcp connect error"), EXIT_UNREACHABLE),
        (KafkaConnectionError("broken pipe"), EXIT_UNREACHABLE),
        (WorkflowAlreadyStartedError("governance-plan-P", "GovernancePlanWorkflow"),
         EXIT_REFUSED),
        (FileNotFoundError(2, "No such file or directory", "/x/plan.yaml"), EXIT_BAD_FILE),
        (yaml.YAMLError("mapping values are not allowed here"), EXIT_BAD_FILE),
        (KeyError("status"), EXIT_BUG),
    ]
    for exc, code in cases:
        failure = classify(exc)
        assert failure.code == code, (exc, failure)
        assert "\n" not in failure.message


# --------------------------------------------------------------------------------------
# The real stack: unknown ids (1) and --json reads


@pytest_asyncio.fixture(scope="module")
async def ledger() -> AsyncIterator[Settings]:
    """A ledger of its own, seeded with a month of closed cases, one open overdue case and
    a hotspot warning; dropped at the end."""
    s = Settings(postgres_db=f"clif_{uuid.uuid4().hex[:8]}")
    await asyncio.to_thread(ensure_database, s, s.postgres_db)
    await asyncio.to_thread(apply_migrations, s.dsn)
    events = generate_events(seed=3, cases=120)
    msgs = [Msg("t", 0, i, None, codec.encode("LifecycleEvent", ev))
            for i, ev in enumerate(events)]
    now = datetime.now(UTC)
    async with await psycopg.AsyncConnection.connect(s.dsn) as conn:
        await Projector(None, "test").apply_batch(conn, msgs)
        await conn.execute(
            """INSERT INTO cases (complaint_id, version, status, channel, tier, district,
                                  street, lead_unit_id, filed_at, due_at)
               VALUES ('CLIF-late', 1, 'DISPATCHED', 'PHONE', 'T24H', '朝阳区', '望京街道',
                       '110105026', %s, %s)""", (now - timedelta(days=3), now - timedelta(days=2)))
        await conn.execute(
            """INSERT INTO hotspot_warnings (warning_id, district, street, category,
                   window_start, window_end, count, baseline, score, detected_at,
                   complaint_id)
               VALUES ('clif-w1', '朝阳区', '望京街道', 'order.vendors', %s, %s, 21, 1.5, 14,
                       %s, 'HOT-clif')""", (now - timedelta(days=4), now - timedelta(days=1), now))
        await conn.commit()
    yield s
    async with await psycopg.AsyncConnection.connect(
            Settings(postgres_db="postgres").dsn, autocommit=True) as conn:
        await conn.execute(f'DROP DATABASE IF EXISTS "{s.postgres_db}" WITH (FORCE)')


@pytest.fixture
def on_ledger(ledger: Settings, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
              ) -> Iterator[Settings]:
    _env(monkeypatch, {"HOTLINE_POSTGRES_DB": ledger.postgres_db,
                       "HOTLINE_STATE_DIR": str(tmp_path)})
    yield ledger
    get_settings.cache_clear()


def _json(result: Result) -> Any:
    assert result.exit_code == 0, result.stdout + result.stderr
    return json.loads(result.stdout)


@pytest.mark.stack
def test_unknown_ids_exit_1(on_ledger: Settings) -> None:
    nope = f"NOPE-{uuid.uuid4().hex[:8]}"
    assert_fails(hotline("case", "show", nope), EXIT_REFUSED, "not found")
    assert_fails(hotline("case", "escalate", nope, "--by", "王科长", "--reason", "r"),
                 EXIT_REFUSED, f"no running case {nope}")
    assert_fails(hotline("plan", "show", nope), EXIT_REFUSED, f"plan {nope}: no such plan")
    assert_fails(hotline("plan", "close", nope), EXIT_REFUSED, "no such plan")
    assert_fails(hotline("dlq", "show", "0:999999999"), EXIT_REFUSED, "no dead letter")


@pytest.mark.stack
def test_read_commands_print_json(on_ledger: Settings, tmp_path: Path) -> None:
    ranks = _json(hotline("rankings", "--month", MONTH, "--json"))
    assert ranks["month"] == MONTH and set(ranks["groups"]) >= {"streets", "departments"}
    row = ranks["groups"]["streets"][0]
    assert set(row) == {"rank", "unit_id", "unit_name", "cases", "response_rate",
                        "resolution_rate", "satisfaction_rate", "score", "praise"}
    assert row["rank"] == 1 and isinstance(row["score"], float)
    only = _json(hotline("rankings", "--month", MONTH, "--group", "departments", "--json"))
    assert set(only["groups"]) == {"departments"}

    streets = _json(hotline("priority-streets", "--month", MONTH, "--json"))
    assert streets["month"] == MONTH and streets["by"]["volume"]
    assert set(streets["by"]["volume"][0]) == {"rank", "district", "street", "cases",
                                               "population", "per_10k"}

    hot = _json(hotline("hotspots", "--json"))
    warning = next(w for w in hot["warnings"] if w["warning_id"] == "clif-w1")
    assert warning["complaint_id"] == "HOT-clif" and warning["count"] == 21
    assert datetime.fromisoformat(warning["detected_at"]).tzinfo is not None

    late = _json(hotline("overdue", "--json"))
    assert late["total"] == 1 and late["cases"][0]["complaint_id"] == "CLIF-late"
    assert late["cases"][0]["overdue_seconds"] > 86_000

    case = _json(hotline("case", "show", "CLIF-late", "--json"))
    assert case["source"] == "ledger" and case["case"]["status"] == "DISPATCHED"
    assert set(case) == {"complaint_id", "source", "workflow_status", "case", "dispatches",
                         "timeline", "notes"}

    assert _json(hotline("desk", "list", "--json")) == []

    report = _json(hotline("report", "monthly", "--month", MONTH, "--out", tmp_path, "--json"))
    assert Path(report["html"]).is_file() and Path(report["csv"]).is_file()

    explain = _json(hotline("routing", "explain", "朝阳区望京街道路灯坏了", "--json"))
    assert explain["category"] and explain["tier"] in {"T2H", "T24H", "T7D", "T15D"}
    assert explain["lead"]["unit_id"] and isinstance(explain["assisting"], list)


# --------------------------------------------------------------------------------------
# A plan, with a worker to answer: start, started again (1), show and close as JSON


@pytest_asyncio.fixture(scope="module")
async def with_worker() -> AsyncIterator[Settings]:
    async with live_services("clif") as settings:
        await asyncio.to_thread(apply_migrations, settings.dsn)
        yield settings


async def _hotline(settings: Settings, *args: str | Path) -> tuple[int, str, str]:
    """``hotline ARGS`` in a process of its own (the worker runs on this test's loop)."""
    env = {**os.environ, "HOTLINE_TASK_QUEUE": settings.task_queue,
           "HOTLINE_POSTGRES_DB": settings.postgres_db,
           "HOTLINE_TOPIC_PREFIX": settings.topic_prefix}
    env.pop("HOTLINE_DATABASE_URL", None)
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "workers.cli.main", *map(str, args), env=env,
        stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    out, err = await asyncio.wait_for(proc.communicate(), 60)
    assert proc.returncode is not None
    assert b"Traceback" not in out + err
    return proc.returncode, out.decode(), err.decode()


@pytest.mark.stack
async def test_a_plan_started_twice_is_refused(with_worker: Settings, tmp_path: Path) -> None:
    plan_id = f"P-clif-{uuid.uuid4().hex[:8]}"
    plan = _plan_file(tmp_path, plan_id=plan_id)
    code, out, err = await _hotline(with_worker, "plan", "start", plan, "--json")
    assert code == 0, err
    assert json.loads(out) == {"plan_id": plan_id, "workflow_id": f"governance-plan-{plan_id}",
                               "tasks": 1}
    code, out, err = await _hotline(with_worker, "plan", "start", plan)
    assert code == EXIT_REFUSED and out == ""
    assert err.strip().count("\n") == 0 and "started before" in err, err

    code, out, err = await _hotline(with_worker, "plan", "show", plan_id, "--json")
    assert code == 0, err
    shown = json.loads(out)
    assert shown["plan_id"] == plan_id and shown["tasks"] == 1 and shown["closed"] is False
    assert set(shown) == {"plan_id", "category", "tasks", "done", "completion_rate", "trend",
                          "closed"}
    code, out, err = await _hotline(with_worker, "plan", "close", plan_id, "--json")
    assert code == 0, err
    assert json.loads(out)["closed"] is True
    code, out, err = await _hotline(with_worker, "plan", "close", plan_id)
    assert code == EXIT_REFUSED and "closed" in err, err
