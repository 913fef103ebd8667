"""The local stack on real servers: start-up, idempotency, topics, migrations, CLI.

The stack is left running at the end: the other stack tests reuse it.
"""

from __future__ import annotations

import asyncio
import json
import os
import random
import socket
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest
from kafka import KafkaAdminClient
from temporalio.client import Client
from temporalio.common import SearchAttributeKey, SearchAttributePair, TypedSearchAttributes
from typer.testing import CliRunner

from workers.devstack import processes, temporal_server
from workers.devstack.kafka_server import kafka_cluster_id
from workers.devstack.stack import (
    KAFKA,
    POSTGRES,
    TEMPORAL,
    StackError,
    StackStatus,
    ensure_stack,
    ensure_topics,
    stack_status,
)
from workers.devstack.stack import app as stack_app
from workers.runtime.migrate import MigrationError, apply_migrations, discover, ensure_database
from workers.runtime.settings import REPO_ROOT, TOPIC_PARTITIONS, Settings
from workflows import search_attributes

pytestmark = pytest.mark.stack


@pytest.fixture(scope="module")
def stack() -> StackStatus:
    """The stack up (started here if it was not), with the default settings."""
    return ensure_stack(Settings())


@pytest.fixture()
def fresh_db(stack: StackStatus) -> Iterator[str]:
    """The DSN of a database created for this test, dropped afterwards."""
    settings = Settings()
    name = f"test_stack_{uuid.uuid4().hex[:12]}"
    assert ensure_database(settings, name) is True
    yield f"postgresql://postgres@127.0.0.1:{settings.postgres_port}/{name}"
    admin = f"postgresql://postgres@127.0.0.1:{settings.postgres_port}/postgres"
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def test_ensure_stack_is_idempotent_and_quick(stack: StackStatus) -> None:
    assert stack.healthy, stack
    assert [c.name for c in stack.components] == [TEMPORAL, KAFKA, POSTGRES]

    started = time.monotonic()
    again = ensure_stack(Settings())
    elapsed = time.monotonic() - started

    assert again.healthy, again
    assert again.pids == stack.pids  # reused, not restarted
    assert all(pid is not None for pid in again.pids.values())
    assert elapsed < 5, f"a second ensure_stack took {elapsed:.1f} s"


def test_status_reports_every_component_healthy(stack: StackStatus) -> None:
    settings = Settings()
    status = stack_status(settings)

    assert status.healthy, status
    assert status.pids == stack.pids
    assert status[TEMPORAL].address == settings.temporal_address
    assert status[KAFKA].address == settings.kafka_bootstrap
    assert status[POSTGRES].address == f"127.0.0.1:{settings.postgres_port}"
    for component in status.components:
        assert component.log_path is not None and component.log_path.exists()
    assert str(settings.temporal_ui_port) in status.temporal_ui_url


def test_contract_topics_are_created_once_with_their_partitions(stack: StackStatus) -> None:
    settings = Settings(topic_prefix=f"test-{uuid.uuid4().hex[:8]}.")
    expected = {settings.topic(name): parts for name, parts in TOPIC_PARTITIONS.items()}

    assert ensure_topics(settings) == list(expected)
    assert ensure_topics(settings) == []

    admin = KafkaAdminClient(bootstrap_servers=settings.kafka_bootstrap, client_id="test-stack")
    try:
        described = admin.describe_topics(list(expected))
        admin.delete_topics(list(expected))
    finally:
        admin.close()
    assert {t["name"]: len(t["partitions"]) for t in described} == expected


def test_migrations_apply_once_in_a_fresh_database(fresh_db: str) -> None:
    names = [m.name for m in discover()]
    assert "001_ledger" in names

    assert apply_migrations(fresh_db) == names
    assert apply_migrations(fresh_db) == []

    with psycopg.connect(fresh_db) as conn:
        rows = conn.execute("SELECT version, name FROM schema_migrations ORDER BY 1").fetchall()
        tables = {
            r[0]
            for r in conn.execute(
                "SELECT tablename FROM pg_tables WHERE schemaname = 'public'"
            ).fetchall()
        }
    assert [name for _, name in rows] == names
    assert {"cases", "case_events", "dispatches", "evaluations"} <= tables


def test_ensure_database_is_idempotent(fresh_db: str) -> None:
    name = psycopg.conninfo.conninfo_to_dict(fresh_db)["dbname"]
    assert ensure_database(fresh_db, str(name)) is False
    with psycopg.connect(fresh_db) as conn:
        assert conn.execute("SELECT current_database()").fetchone() == (name,)


def test_a_migration_that_fails_leaves_nothing_behind(fresh_db: str, tmp_path: Path) -> None:
    (tmp_path / "001_ok.sql").write_text("CREATE TABLE ok_table (id int);")
    (tmp_path / "002_broken.sql").write_text("CREATE TABLE broken (id int); SELEC 1;")

    with pytest.raises(MigrationError, match="002_broken"):
        apply_migrations(fresh_db, tmp_path)

    with psycopg.connect(fresh_db) as conn:
        assert conn.execute("SELECT to_regclass('ok_table')").fetchone() == (None,)


def test_the_ledger_database_has_its_migrations(stack: StackStatus) -> None:
    settings = Settings()
    with psycopg.connect(settings.dsn) as conn:
        applied = [r[0] for r in conn.execute("SELECT name FROM schema_migrations ORDER BY 1")]
    assert applied == [m.name for m in discover()]


def test_cli_status_exits_zero(stack: StackStatus) -> None:
    hotline = Path(sys.executable).parent / "hotline"
    cmd = [str(hotline)] if hotline.exists() else [sys.executable, "-m", "workers.cli.main"]
    result = subprocess.run(
        [*cmd, "stack", "status"],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    for name in (TEMPORAL, KAFKA, POSTGRES):
        assert name in result.stdout
    assert "DOWN" not in result.stdout


def test_ports_held_by_another_process_are_named_with_their_setting(
    stack: StackStatus, tmp_path: Path
) -> None:
    # A second state folder on the same ports: the running stack is "another process".
    settings = Settings(state_dir=tmp_path / "state")
    stale = settings.state_dir / TEMPORAL / "temporal.pid"
    stale.parent.mkdir(parents=True)
    stale.write_text("999999999\n")  # no such pid

    with pytest.raises(StackError) as raised:
        ensure_stack(settings)

    message = str(raised.value)
    assert f"port {settings.temporal_port} " in message
    assert "HOTLINE_TEMPORAL_ADDRESS" in message
    assert f"port {settings.kafka_port} " in message
    assert "HOTLINE_KAFKA_BOOTSTRAP" in message
    assert f"port {settings.postgres_port} " in message
    assert "HOTLINE_POSTGRES_PORT" in message
    assert not stale.exists(), "a pid file of a process that is gone is removed"
    assert stack_status(Settings()).pids == stack.pids  # the real stack is untouched


def test_a_stop_waits_for_ports_that_the_exited_server_still_holds() -> None:
    # A Go or JVM server looks exited while its last threads still hold its sockets.
    held = socket.socket()
    held.bind(("127.0.0.1", 0))
    held.listen()
    port = held.getsockname()[1]
    assert not processes.wait_ports_free([port], timeout=0.2)
    threading.Timer(0.3, held.close).start()
    started = time.monotonic()
    assert processes.wait_ports_free([port], timeout=5.0)
    assert time.monotonic() - started >= 0.25


def test_kafka_cluster_ids_never_look_like_an_option() -> None:
    ids = [kafka_cluster_id() for _ in range(5000)]
    assert not [i for i in ids if i.startswith("-")]
    assert all(len(i) == 22 for i in ids) and len(set(ids)) == len(ids)


def _second_temporal(state_dir: Path) -> Settings:
    """Settings for a second Temporal whose ports (gRPC, HTTP, metrics, UI) are all free.

    Below the kernel's ephemeral range, where the servers' own internal ports (the dev
    server binds its history and matching services to free ephemeral ports) cannot take
    one of them between this check and the start.
    """
    low, _ = (int(x) for x in Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split())
    for _ in range(100):
        base = random.randrange(20_000, low - 40)
        settings = Settings(state_dir=state_dir, temporal_address=f"127.0.0.1:{base}",
                            temporal_ui_port=base + 30)
        if all(processes.port_free(port) for port in temporal_server.temporal_ports(settings)):
            return settings
    raise RuntimeError("no free block of ports for a second Temporal")


async def _start_indexed(settings: Settings, key: SearchAttributeKey[str], value: str) -> str:
    """Start a workflow (no worker needed) indexed under ``key``; what the server stored."""
    client = await Client.connect(settings.temporal_address,
                                  namespace=settings.temporal_namespace)
    handle = await client.start_workflow(
        "Nobody", id=f"sa-{uuid.uuid4().hex[:8]}", task_queue="nobody-polls",
        search_attributes=TypedSearchAttributes([SearchAttributePair(key, value)]),
    )
    stored = (await handle.describe()).typed_search_attributes.get(key)
    await handle.terminate()
    return str(stored)


def test_search_attributes_missing_from_an_older_database_are_usable_at_once(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The dev server caches search attributes (it no longer re-reads them from SQLite on
    # every use), so one registered while it runs must not wait for the cache to expire.
    late = search_attributes.ESCALATION_LEVEL
    monkeypatch.setattr(search_attributes, "ALL",
                        [k for k in search_attributes.ALL if k.name != late.name])
    settings = Settings(state_dir=tmp_path / "unused")
    try:
        for attempt in range(3):
            settings = _second_temporal(tmp_path / f"state{attempt}")
            try:
                temporal_server.ensure_temporal(settings)  # a database from before `late`
                break
            except StackError as exc:
                # Ports found free a moment ago can be taken before the server binds them.
                if "already in use" not in str(exc) or attempt == 2:
                    raise
        temporal_server.stop_temporal(settings)
        monkeypatch.undo()

        status = temporal_server.ensure_temporal(settings)

        assert status.healthy, status
        assert asyncio.run(_start_indexed(settings, late, "DISTRICT")) == "DISTRICT"
    finally:
        temporal_server.stop_temporal(settings)


def test_status_as_json_and_the_unreachable_exit_code(stack: StackStatus) -> None:
    runner = CliRunner()
    ok = runner.invoke(stack_app, ["status", "--json"])
    assert ok.exit_code == 0, ok.output
    report = json.loads(ok.stdout)
    assert report["healthy"] and [c["name"] for c in report["components"]] == \
        [TEMPORAL, KAFKA, POSTGRES]
    # The settings are read once per process: a fresh one sees the dead broker.
    down = subprocess.run([sys.executable, "-m", "workers.cli.main", "stack", "status",
                           "--json"], capture_output=True, text=True, timeout=60,
                          env={**os.environ, "HOTLINE_KAFKA_BOOTSTRAP": "127.0.0.1:1"})
    assert down.returncode == 3, down.stderr  # docs/cli.md: a server unreachable
    kafka = next(c for c in json.loads(down.stdout)["components"] if c["name"] == KAFKA)
    assert not kafka["healthy"] and kafka["detail"]
