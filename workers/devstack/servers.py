"""What the stack's three servers share: their names, where their files live, how a
server's status is reported, and the start-up wait.

Each server has its own module (:mod:`~workers.devstack.temporal_server`,
:mod:`~workers.devstack.kafka_server`, :mod:`~workers.devstack.postgres_server`);
:mod:`workers.devstack.stack` runs them together.
"""

from __future__ import annotations

import logging
import os
import re
import shutil
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from workers.devstack.processes import (
    ProcessError,
    port_free,
    process_alive,
    spawn,
    terminate,
    wait_for_line,
    wait_ports_free,
    wait_until,
)
from workers.runtime.settings import REPO_ROOT, Settings

log = logging.getLogger(__name__)

LOCAL_DIR = REPO_ROOT / "deploy" / "local"

TEMPORAL = "temporal"
KAFKA = "kafka"
POSTGRES = "postgres"

START_TIMEOUT_S = 60.0
REUSE_TIMEOUT_S = 15.0
# How long a stop waits for an exited server's last threads to let go of its ports.
PORTS_RELEASE_TIMEOUT_S = 5.0


class StackError(ProcessError):
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
class StackPaths:
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


def require_ports_free(component: str, ports: dict[int, str]) -> None:
    """Raise StackError naming each busy port and the setting that moves it."""
    busy = [(port, setting) for port, setting in ports.items() if not port_free(port)]
    if busy:
        lines = [
            f"port {port} on 127.0.0.1 is already in use by another process "
            f"(not the stack's {component}); stop that process or change {setting}"
            for port, setting in busy
        ]
        raise StackError("; ".join(lines))


def await_ports_released(component: str, ports: dict[int, str]) -> None:
    """After a stop, wait up to PORTS_RELEASE_TIMEOUT_S for ``ports`` to be free (the twin
    of :func:`require_ports_free` at a start): an exited server's last threads may still
    hold them for a moment. Still held then: a warning, for the next start to name."""
    if not wait_ports_free(ports, PORTS_RELEASE_TIMEOUT_S):
        log.warning("%s stopped but a port of its is still held after %.0f s", component,
                    PORTS_RELEASE_TIMEOUT_S)


def wait_healthy(
    check: Callable[[], str],
    *,
    alive: Callable[[], bool],
    spawned: bool,
    what: str,
    logs: tuple[Path, ...],
    fatal: tuple[type[BaseException], ...] = (),
) -> str:
    """Call ``check`` until it returns (its detail) or the start-up timeout passes.

    A server started just now gets START_TIMEOUT_S; one found running gets less, since it
    should answer at once. Stops early with the log's tail when the process dies.
    """
    hint = (
        ""
        if spawned
        else " It was already running: if its ports or settings changed since it started, "
        "run `hotline stack down` first."
    )
    return wait_until(
        check,
        alive=alive,
        timeout=START_TIMEOUT_S if spawned else REUSE_TIMEOUT_S,
        what=what,
        logs=logs,
        hint=hint,
        fatal=fatal,
    )


def short(exc: BaseException) -> str:
    """The first line of an error, cut to 200 characters, for a status table."""
    text = str(exc).strip() or type(exc).__name__
    first = text.splitlines()[0]
    return first if len(first) <= 200 else first[:197] + "..."


def checked_status(
    name: str, address: str, pid: int | None, port: int, log_path: Path | None,
    check: Callable[[], str], *, external: bool = False,
) -> ComponentStatus:
    """A component's status: not running (and who holds its port), or its health check."""
    if pid is None and not external:
        detail = "not running"
        if not port_free(port):
            detail += f"; port {port} is used by another process"
        return ComponentStatus(name, address, None, False, detail, log_path)
    try:
        detail = check()
    except Exception as exc:
        return ComponentStatus(name, address, pid, False, short(exc), log_path)
    return ComponentStatus(name, address, pid, True, detail, log_path)


def java_binary(needed_by: str) -> str:
    """The ``java`` to run a server with: ``$JAVA_HOME/bin/java`` if set, else the PATH's."""
    java_home = os.environ.get("JAVA_HOME")
    if java_home and (Path(java_home) / "bin" / "java").exists():
        return str(Path(java_home) / "bin" / "java")
    found = shutil.which("java")
    if found is None:
        raise StackError(f"java not found on PATH ({needed_by} needs Java 17 or newer)")
    return found


def maven_binary(fetches: str) -> str:
    """``mvn``, which downloads a server's jars from Maven Central on first use."""
    mvn = shutil.which("mvn")
    if mvn is None:
        raise StackError(f"mvn not found on PATH: Maven fetches {fetches} on first use")
    return mvn


@contextmanager
def running_java_jar(command: list[str], jar: Path, *, log_path: Path, cwd: Path,
                     ready: str, address: re.Pattern[str], what: str,
                     timeout: float) -> Iterator[str]:
    """A Java server started with ``command`` (its ``jar``), on a port it picks, until exit.

    Waits for the ``ready`` line in its log, then yields the first group of ``address``
    found there (where it listens); stops it and removes its pid file on the way out.

    Raises:
        StackError: It exited or did not log ``ready`` in time, or logged no address.
    """
    pid_file = log_path.with_suffix(".pid")
    proc = spawn(command, log_path=log_path, pid_file=pid_file, cwd=cwd, fresh_log=True)
    marker = str(jar)
    try:
        wait_for_line(log_path, ready, alive=lambda: process_alive(proc.pid, marker),
                      timeout=timeout, what=f"{what} (pid {proc.pid})")
        found = address.search(log_path.read_text(errors="replace"))
        if found is None:
            raise StackError(f"{what} logged no address: see {log_path}")
        yield found.group(1)
    finally:
        terminate(proc.pid, marker, 15.0)
        proc.wait(timeout=15)
        pid_file.unlink(missing_ok=True)

