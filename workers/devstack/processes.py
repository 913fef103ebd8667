"""Process control for the local stack and the demo: the one place that starts, finds,
waits for and stops the processes they run.

A process runs detached in its own session (Ctrl-C on the command that started it, or the
end of a test run, does not reach it), with its output in a log file and its pid in a pid
file, so a later command can find it again. Liveness checks look at ``/proc`` and guard
against recycled pids with a marker of the process's command line.
"""

from __future__ import annotations

import contextlib
import fcntl
import logging
import os
import re
import signal
import socket
import subprocess
import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from pathlib import Path
from typing import Any

__all__ = [
    "ProcessError",
    "cmdline",
    "file_lock",
    "live_pid",
    "port_free",
    "port_open",
    "process_alive",
    "read_pid",
    "run",
    "spawn",
    "tail",
    "terminate",
    "terminate_all",
    "wait_for_line",
    "wait_ports_free",
    "wait_until",
]

log = logging.getLogger(__name__)

_ANSI = re.compile(r"\x1b\[[0-9;]*m")

# Popen objects of processes started by this process, kept so they are not garbage
# collected with a ResourceWarning while the (detached) process keeps running.
_CHILDREN: list[subprocess.Popen[bytes]] = []


class ProcessError(RuntimeError):
    """A process could not be run, started, made ready or stopped."""


# --------------------------------------------------------------------------------------
# Finding processes


def read_pid(pid_file: Path) -> int | None:
    """The pid written in ``pid_file``; None when it is missing or unreadable."""
    try:
        return int(pid_file.read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return None


def cmdline(pid: int) -> list[str]:
    """The argv of ``pid`` from ``/proc``; empty when it is gone or unreadable."""
    try:
        raw = Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return []
    return [part.decode(errors="replace") for part in raw.split(b"\0") if part]


def process_alive(pid: int, marker: str | None = None) -> bool:
    """True when ``pid`` runs (not a zombie) and its command line contains ``marker``.

    The marker (for the stack, a path of its state) guards against a recycled pid: after
    a reboot the pid in a stale pid file may belong to an unrelated process. None skips
    that check, for a caller that has already recognised the process.
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
        if marker is None:
            return True
        text = proc.joinpath("cmdline").read_bytes().replace(b"\0", b" ").decode()
    except (OSError, IndexError):
        return False
    return marker in text


def live_pid(pid_file: Path, marker: str) -> int | None:
    """The pid recorded in ``pid_file`` if that process still runs; else removes the file."""
    pid = read_pid(pid_file)
    if pid is not None and process_alive(pid, marker):
        return pid
    if pid_file.exists():
        log.info("removing stale pid file %s (pid %s is gone)", pid_file, pid)
        pid_file.unlink(missing_ok=True)
    return None


# --------------------------------------------------------------------------------------
# Starting and stopping


def spawn(
    cmd: list[str],
    *,
    log_path: Path,
    pid_file: Path,
    cwd: Path,
    env: Mapping[str, str] | None = None,
    fresh_log: bool = False,
) -> subprocess.Popen[bytes]:
    """Start ``cmd`` detached from this process and record its pid in ``pid_file``.

    Args:
        cmd: The command line.
        log_path: Receives the process's stdout and stderr, after a line naming the
            command.
        pid_file: Written with the new pid.
        cwd: The working folder.
        env: The environment; this process's own when None.
        fresh_log: Start a new log (the old one is kept as ``<name>.previous.log``)
            instead of appending, for a caller that looks for a line in the log.

    Returns:
        The started process.
    """
    log_path.parent.mkdir(parents=True, exist_ok=True)
    if fresh_log and log_path.exists():
        log_path.replace(log_path.with_name(f"{log_path.stem}.previous{log_path.suffix}"))
    log.info("starting %s", " ".join(cmd))
    with log_path.open("wb" if fresh_log else "ab") as out:
        out.write(f"\n==== {time.strftime('%Y-%m-%d %H:%M:%S')} {' '.join(cmd)}\n".encode())
        out.flush()
        proc = subprocess.Popen(
            cmd,
            cwd=cwd,
            env=None if env is None else dict(env),
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
            # Own session: Ctrl-C on the starting command or the end of a test run does
            # not reach it; whoever started it stops it by its pid.
            start_new_session=True,
        )
    _CHILDREN.append(proc)
    pid_file.write_text(f"{proc.pid}\n")
    return proc


def terminate_all(
    pids: Iterable[int], timeout: float, marker: str | None = None
) -> dict[int, str]:
    """SIGTERM every process at once, wait up to ``timeout`` seconds, then SIGKILL.

    Signalling them all first lets them shut down side by side. ``marker`` is checked as
    in :func:`process_alive`.

    Returns:
        What happened to each pid: ``not running``, ``stopped`` or ``killed``.
    """
    outcomes: dict[int, str] = {}
    running: list[int] = []
    for pid in pids:
        if not process_alive(pid, marker):
            outcomes[pid] = "not running"
            continue
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGTERM)
        running.append(pid)
    deadline = time.monotonic() + timeout
    for pid in running:
        while time.monotonic() < deadline and process_alive(pid, marker):
            time.sleep(0.1)
        if not process_alive(pid, marker):
            outcomes[pid] = f"stopped (pid {pid})"
            continue
        log.warning("pid %s did not stop within %.0f s; killing it", pid, timeout)
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
        for _ in range(50):
            if not process_alive(pid, marker):
                break
            time.sleep(0.1)
        outcomes[pid] = f"killed after {timeout:.0f} s (pid {pid})"
    return outcomes


def terminate(pid: int, marker: str | None, timeout: float) -> str:
    """SIGTERM, wait up to ``timeout`` seconds, then SIGKILL. Returns what happened."""
    return terminate_all([pid], timeout, marker)[pid]


# --------------------------------------------------------------------------------------
# Waiting


def port_free(port: int, host: str = "127.0.0.1") -> bool:
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


def wait_ports_free(ports: Iterable[int], timeout: float) -> bool:
    """Wait up to ``timeout`` seconds until every port is free; False if one is still held.

    A multi-threaded server (Go, the JVM) shows as exited once its main thread is a
    zombie, while its other threads may still hold the listening sockets for a moment;
    a start right after the stop would then find its own ports busy.
    """
    pending = list(ports)
    deadline = time.monotonic() + timeout
    while True:
        pending = [port for port in pending if not port_free(port)]
        if not pending or time.monotonic() >= deadline:
            return not pending
        time.sleep(0.05)


def port_open(port: int, host: str = "127.0.0.1", timeout: float = 0.5) -> bool:
    """True when something accepts TCP connections on ``host:port``."""
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return True
    except OSError:
        return False


def tail(*paths: Path, lines: int = 25) -> str:
    """The last lines of each log that exists, for error messages."""
    parts = []
    for path in paths:
        try:
            text = path.read_text(errors="replace").splitlines()
        except OSError:
            continue
        parts.append(f"last lines of {path}:\n" + "\n".join(text[-lines:]))
    return "\n".join(parts) or f"(no log at {', '.join(map(str, paths))})"


def wait_until(
    check: Callable[[], str],
    *,
    alive: Callable[[], bool],
    timeout: float,
    what: str,
    logs: tuple[Path, ...],
    hint: str = "",
    interval: float = 0.25,
    fatal: tuple[type[BaseException], ...] = (),
) -> str:
    """Call ``check`` until it returns (its detail) or ``timeout`` seconds pass.

    Any exception from ``check`` means "not yet", except a :class:`ProcessError` or one of
    ``fatal``, which no waiting will cure and is raised at once.

    Raises:
        ProcessError: The process died (``alive`` returned False) or the time ran out;
            the message ends with the tail of ``logs``.
    """
    incurable: tuple[type[BaseException], ...] = (ProcessError, *fatal)
    deadline = time.monotonic() + timeout
    last_error: BaseException | None = None
    while True:
        try:
            return check()
        except incurable:
            raise
        except Exception as exc:
            last_error = exc
        if not alive():
            raise ProcessError(f"{what} exited during start-up. {tail(*logs)}")
        if time.monotonic() >= deadline:
            raise ProcessError(
                f"{what} not healthy after {timeout:.0f} s: {last_error!r}.{hint} {tail(*logs)}"
            )
        time.sleep(interval)


def wait_for_line(
    log_path: Path, line: str, *, alive: Callable[[], bool], timeout: float, what: str
) -> None:
    """Wait until ``line`` appears in ``log_path`` (a process's "ready" line).

    Raises:
        ProcessError: The process died first, or the line did not come within ``timeout``.
    """

    def logged() -> str:
        try:
            text = log_path.read_text(errors="replace")
        except OSError:
            text = ""
        if line not in text:
            raise LookupError(f"no '{line}' in {log_path} yet")
        return line

    wait_until(logged, alive=alive, timeout=timeout, what=what, logs=(log_path,),
               interval=0.2)


# --------------------------------------------------------------------------------------
# Short commands and locks


def run(cmd: list[str], what: str, timeout: float, **kwargs: Any) -> str:
    """Run a short command to completion; raise ProcessError with its output on failure."""
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
        raise ProcessError(f"{what}: {exc}") from exc
    except subprocess.TimeoutExpired as exc:
        raise ProcessError(f"{what}: timed out after {timeout:.0f} s: {' '.join(cmd)}") from exc
    # Maven colours its output even in batch mode: strip the escapes from the message.
    output = _ANSI.sub("", result.stdout.decode(errors="replace")).strip()
    if result.returncode != 0:
        raise ProcessError(f"{what} failed (exit {result.returncode}): {' '.join(cmd)}\n{output}")
    return output


@contextlib.contextmanager
def file_lock(path: Path) -> Iterator[None]:
    """An exclusive inter-process lock (two `stack up` at once, or a test and a demo)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)
