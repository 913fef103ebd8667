"""Serving the workbench: uvicorn's config, an in-process server (the demo, tests), and the
demo's accounts.
"""

from __future__ import annotations

import contextlib
import secrets
import socket
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass

import uvicorn

from activities.dispatch.registry import load_registry
from workers.runtime.migrate import apply_migrations
from workers.runtime.settings import Settings
from workers.workbench.accounts import NewAccount, save_account
from workers.workbench.app import base_url, create_app


def server_config(settings: Settings) -> uvicorn.Config:
    return uvicorn.Config(create_app(settings), host=settings.workbench_host,
                          port=settings.workbench_port, log_level="warning", access_log=False,
                          proxy_headers=True)


def free_port(host: str = "127.0.0.1") -> int:
    """A TCP port nothing listens on now (the photo URLs need it before the server starts)."""
    with socket.socket() as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


class WorkbenchServer:
    """The workbench on a uvicorn server in a thread of this process (the demo, tests)."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.server = uvicorn.Server(server_config(settings))
        self.thread = threading.Thread(target=self.server.run, name="workbench", daemon=True)
        self.url = base_url(settings)

    def start(self, timeout: float = 60.0) -> WorkbenchServer:
        self.thread.start()
        deadline = time.monotonic() + timeout
        while not self.server.started:
            if not self.thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError("the workbench did not start")
            time.sleep(0.05)
        return self

    def stop(self) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=30)

    @contextlib.contextmanager
    def running(self) -> Iterator[WorkbenchServer]:
        self.start()
        try:
            yield self
        finally:
            self.stop()


@dataclass(frozen=True)
class DemoLogin:
    username: str
    password: str
    role: str
    unit_id: str | None


# The demo's units: departments the simulated city dispatches to most.
DEMO_UNITS = ("bj-samr", "bj-ecoenv", "bj-police")


def demo_accounts(settings: Settings, units: tuple[str, ...] = DEMO_UNITS) -> list[DemoLogin]:
    """Create (or reset) the demo's accounts, each with a fresh random password."""
    apply_migrations(settings.dsn)
    registry = load_registry(settings.config_dir)
    logins = [DemoLogin("desk", secrets.token_urlsafe(9), "dispatcher", None),
              DemoLogin("supervisor", secrets.token_urlsafe(9), "supervisor", None)]
    logins += [DemoLogin(f"unit-{u}", secrets.token_urlsafe(9), "unit", u) for u in units]
    for login in logins:
        save_account(settings.dsn, NewAccount(login.username, login.role, login.password,
                                              login.unit_id), registry)
    return logins


def _port_free(host: str, port: int) -> bool:
    with socket.socket() as sock:
        try:
            sock.bind((host, port))
        except OSError:
            return False
        return True


def demo_workbench(settings: Settings) -> tuple[WorkbenchServer, str]:
    """The demo's workbench, started, and the lines that tell a person how to sign in.

    On ``workbench_port`` when it is free, else on any free port.
    """
    logins = demo_accounts(settings)
    port = settings.workbench_port
    if not _port_free(settings.workbench_host, port):
        port = free_port(settings.workbench_host)
    server = WorkbenchServer(settings.model_copy(update={
        "workbench_port": port, "workbench_base_url": None})).start()
    lines = [f"workbench (工作台) at {server.url}/ — sign in as:"]
    lines += [f"  {login.username} / {login.password}  ({login.role}"
              + (f" of {login.unit_id}" if login.unit_id else "") + ")" for login in logins]
    return server, "\n".join(lines)
