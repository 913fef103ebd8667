"""``hotline demo``: a small simulated city played against the real stack.

What it does, in order:

1. ``ensure_stack()``: Temporal, Kafka and PostgreSQL up (reused when already healthy).
2. Starts ``hotline worker``, ``hotline bridges`` and ``hotline projector`` as
   subprocesses with ``HOTLINE_TIME_SCALE`` set, logging to ``<state_dir>/demo/*.log``,
   and waits for their ready lines (:mod:`~workers.devstack.demo_processes`). Processes
   left by an earlier demo (pid files in that folder) are stopped first.
3. Runs the simulated actors of :mod:`~workers.devstack.demo_actors`, each a thread with
   its own Kafka consumer and one shared producer, playing the plans of
   :mod:`workers.devstack.city`:

   - the **call centre** and the citizens' apps (:mod:`~workers.devstack.demo_call_centre`)
     file the cases on ``hotline.intake`` or through an Open311 GeoReport v2 service the
     demo serves on a free port, then the citizens' later calls;
   - the **unit systems** (:mod:`~workers.devstack.demo_units`) answer each dispatch;
   - a **supervisor** and the **callback centre** (:mod:`~workers.devstack.demo_staff`)
     decide long extension requests and call the citizens back.

   The main thread follows ``hotline.lifecycle`` too and shows a live board
   (:mod:`~workers.devstack.demo_board`) until every case is ``CLOSED`` or the timeout
   passes (then it lists the stuck cases).
4. Prints a summary from the PostgreSQL ledger (:mod:`~workers.devstack.demo_summary`)
   and writes the supervisors' monthly report.
5. Stops the processes it started; the stack stays up.

Every run files new complaint ids (a serial derived from the time of day, kept past the
last run's in ``<state_dir>/demo/serial.json``), and the actors' consumers start at the
end of their topics and ignore any case that is not this run's, so old demos never
interfere.
"""

from __future__ import annotations

import contextlib
import json
import signal
import threading
import time
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import psycopg
import typer
from kafka import KafkaConsumer
from rich.console import Console
from rich.live import Live

from activities.dispatch.config import load_config
from schemas.codec import DecodeError, decode
from workers.devstack import demo_processes
from workers.devstack.city import (
    BEIJING,
    OPEN311_CHANNELS,
    generate_city,
    open311_client,
    route_through_open311,
)
from workers.devstack.demo_actors import (
    ActorContext,
    DemoError,
    actor_thread,
    poll_records,
    tail_consumer,
    utc_now,
)
from workers.devstack.demo_board import Board
from workers.devstack.demo_call_centre import call_centre, open311_form, open311_report
from workers.devstack.demo_processes import PROCESSES, DemoProcess, LogWatch
from workers.devstack.demo_staff import callback_centre, supervisor
from workers.devstack.demo_summary import print_stuck, print_summary
from workers.devstack.demo_units import unit_systems
from workers.devstack.processes import ProcessError, tail
from workers.devstack.stack import StackStatus, ensure_stack, ensure_topics
from workers.open311.service import Open311Server
from workers.runtime.kafka_io import make_producer
from workers.runtime.observability import configure_logging
from workers.runtime.settings import Settings, get_settings
from workers.workbench.server import demo_workbench

__all__ = ["DemoError", "open311_form", "run_demo"]

DEFAULT_TIMEOUT_S = 600.0
REFRESH_S = 0.25


def _serial_base(demo_dir: Path, now: datetime, cases: int) -> int:
    """First serial of this run: from the time of day, past the last run's ids of today."""
    day = now.astimezone(BEIJING)
    midnight = day.replace(hour=0, minute=0, second=0, microsecond=0)
    base = int((day - midnight).total_seconds() * 10) + 1
    path = demo_dir / "serial.json"
    with contextlib.suppress(OSError, ValueError, KeyError, TypeError):
        last = json.loads(path.read_text())
        if last["date"] == f"{day:%Y%m%d}":
            base = max(base, int(last["next"]))
    path.write_text(json.dumps({"date": f"{day:%Y%m%d}", "next": base + cases}) + "\n")
    return base


def _follow(ctx: ActorContext, consumer: KafkaConsumer, console: Console, title: str,
            timeout: float, procs: list[DemoProcess]) -> bool:
    """Follow the lifecycle until every case is closed; False on timeout.

    Fails at once when the worker or the bridges exit or an actor fails.
    """
    deadline = time.monotonic() + timeout
    board = ctx.board
    last_plain = 0.0
    watches = [LogWatch(p) for p in procs]
    last_watch = 0.0

    def step() -> bool:
        nonlocal last_watch
        if time.monotonic() - last_watch > 2:
            last_watch = time.monotonic()
            for watch in watches:
                board.count_log_lines(watch.proc.name, watch.new_levels())
                code = watch.proc.popen.poll()
                if code is not None:
                    raise DemoError(
                        f"`hotline {watch.proc.name}` exited with code {code} during the "
                        f"demo. {tail(watch.proc.log_path, lines=20)}"
                    )
        for msg in poll_records(consumer, REFRESH_S):
            try:
                rec = decode(msg.value, expected=("LifecycleEvent",)).record
            except DecodeError:
                board.count_undecodable()
                continue
            if rec["complaint_id"] in ctx.plans:
                board.lifecycle(rec)
        if board.errors:
            raise DemoError("a simulated actor failed: " + "; ".join(board.errors))
        return board.closed >= board.total

    if console.is_terminal:
        with Live(board.render(title), console=console, refresh_per_second=4) as live:
            while time.monotonic() < deadline:
                done = step()
                live.update(board.render(title))
                if done:
                    return True
        return False
    while time.monotonic() < deadline:
        if step():
            console.print(board.plain_line(), soft_wrap=True, highlight=False)
            return True
        if time.monotonic() - last_plain > 10:
            last_plain = time.monotonic()
            console.print(board.plain_line(), soft_wrap=True, highlight=False)
    return False


def run_demo(cases: int = 100, time_scale: float = 0.00002, *,
             timeout: float = DEFAULT_TIMEOUT_S, seed: int | None = None,
             console: Console | None = None) -> None:
    """Bring the stack up and run a small simulated city through every stage.

    Args:
        cases: How many complaints the call centre files.
        time_scale: Multiplies every rule duration in the worker (0.00002: 7 days ≈ 12 s).
        timeout: Give up waiting for the cases to close after this many seconds.
        seed: The city's seed; by default this run's first serial (printed, so a run can
            be repeated).
        console: Where to print (a new rich console by default).

    Raises:
        typer.Exit: With code 1 when the stack, the processes or an actor fail, or when
            cases are still open at the timeout; 130 when interrupted.
    """
    console = console or Console()
    if cases < 1 or time_scale <= 0:
        console.print("[red]--cases must be at least 1 and --time-scale above 0[/]")
        raise typer.Exit(2)
    settings = get_settings().model_copy(update={"time_scale": time_scale})
    demo_dir = settings.state_dir / "demo"
    demo_dir.mkdir(parents=True, exist_ok=True)
    procs: list[DemoProcess] = []
    # `timeout`, `kill` and service managers stop with SIGTERM: clean up as for Ctrl-C.
    previous = None
    if threading.current_thread() is threading.main_thread():
        previous = signal.signal(signal.SIGTERM, _interrupt)
    try:
        with console.status("bringing the stack up (Temporal, Kafka, PostgreSQL)..."):
            status = ensure_stack(settings)
            ensure_topics(settings)
        console.print("stack: " + ", ".join(f"{c.name} {c.address}" for c in status.components)
                      + f" · Temporal UI {status.temporal_ui_url}")

        demo_processes.stop_previous(demo_dir, console)
        with console.status("starting `hotline worker`, `hotline bridges` and "
                            "`hotline projector`..."):
            procs = [demo_processes.start(name, settings, demo_dir) for name in PROCESSES]
            try:
                demo_processes.wait_ready(procs)
            except ProcessError as exc:
                raise DemoError(str(exc)) from None
        for name in PROCESSES:
            others = demo_processes.foreign(name, (p.popen.pid for p in procs))
            if others:
                console.print(
                    f"[yellow]warning: other `hotline {name}` processes are running (pids "
                    f"{', '.join(map(str, others))}); they share the work, and a worker with "
                    f"another time scale will stretch this demo's deadlines.[/]")
        console.print(f"worker, bridges and projector ready (time scale {time_scale:g}); logs in "
                      f"{demo_dir}")
        console.print(
            "metrics: worker http://127.0.0.1:"
            f"{settings.worker_metrics_port}/metrics · Temporal SDK http://127.0.0.1:"
            f"{settings.temporal_sdk_metrics_port}/metrics · bridges http://127.0.0.1:"
            f"{settings.bridge_metrics_port}/metrics")

        ok, board = _run_city(settings, cases, seed, demo_dir, status, console, timeout, procs)
        try:
            print_summary(settings, list(board.cases), board.closed, console)
            # The supervisors' monthly report for the simulated month (this month).
            from workers.reports.monthly import write_monthly_report

            month = datetime.now(ZoneInfo("Asia/Shanghai")).strftime("%Y-%m")
            html_path, csv_path = write_monthly_report(settings, month)
            console.print(f"monthly report for {month}: {html_path} (CSV: {csv_path})")
        except psycopg.Error as exc:
            raise DemoError(f"cannot read the ledger in PostgreSQL: {exc}") from exc
        if not ok:
            raise typer.Exit(1)
    except DemoError as exc:
        console.print(f"[bold red]demo failed:[/] {exc}", highlight=False)
        raise typer.Exit(1) from None
    except KeyboardInterrupt:
        console.print("[yellow]interrupted[/]")
        raise typer.Exit(130) from None
    finally:
        if procs:
            with console.status("stopping the worker and bridges..."):
                demo_processes.stop(procs)
        if previous is not None:
            signal.signal(signal.SIGTERM, previous)
        console.print("stack left running: `hotline stack down` (or `make down`) stops it")


def _interrupt(signum: int, frame: Any) -> None:
    raise KeyboardInterrupt


def _run_city(settings: Settings, cases: int, seed: int | None, demo_dir: Path,
              status: StackStatus, console: Console, timeout: float,
              procs: list[DemoProcess]) -> tuple[bool, Board]:
    start = utc_now()
    serial = _serial_base(demo_dir, start, cases)
    seed = serial if seed is None else seed
    config = load_config(settings.config_dir)
    city = generate_city(cases, seed=seed, start=start.astimezone(BEIJING), serial_base=serial,
                         config=config)
    # Part of the city's apps file through the Open311 API, served here on a free port.
    city = route_through_open311(city)
    via_open311 = [c.plan.complaint_id for c in city if c.open311_key is not None]
    # The service logs in this process: to a file beside the worker's, not over the board.
    configure_logging(settings, stream=(demo_dir / "open311.log").open("a", encoding="utf-8"))
    open311 = Open311Server(settings.model_copy(update={"open311_rate_per_minute": 0}),
                            port=0, config=config,
                            clients=[open311_client(ch) for ch in OPEN311_CHANNELS])
    try:
        open311.start()
    except RuntimeError as exc:
        raise DemoError(f"{exc}; see {demo_dir}/open311.log") from None
    console.print(f"Open311 GeoReport v2 at {open311.url} (e.g. {open311.url}/services.json); "
                  f"{len(via_open311)} of the complaints are filed through it; log "
                  f"{demo_dir}/open311.log")
    workbench, workbench_logins = demo_workbench(settings)
    console.print(workbench_logins, highlight=False, markup=False)
    plans = {c.plan.complaint_id: c.plan for c in city}
    ids = list(plans)
    board = Board(ids)
    title = (f"hotline demo · {ids[0]} … {ids[-1]} · {cases} cases · seed {seed} · "
             f"time scale {settings.time_scale:g}")
    producer = make_producer(settings, client_id="hotline-demo")
    stop = threading.Event()
    threads_of: list[tuple[str, Callable[[ActorContext], None]]] = [
        ("call-centre", call_centre(city)),
        ("unit-systems", unit_systems),
        ("supervisor", supervisor),
        ("callback-centre", callback_centre),
    ]
    # The actors' consumers and the follower's, all at the end of their topics, before the
    # first filing.
    ready = threading.Barrier(len(threads_of) + 1)
    ctx = ActorContext(settings, config, producer, board, plans, stop, ready, open311.url)
    threads = [actor_thread(name, body, ctx) for name, body in threads_of]
    follower = tail_consumer(settings, settings.topic_lifecycle, "demo-monitor")
    try:
        for thread in threads:
            thread.start()
        try:
            ready.wait(timeout=60)
        except threading.BrokenBarrierError:
            raise DemoError("the actors could not start: " + "; ".join(board.errors)) from None
        ok = _follow(ctx, follower, console, title, timeout, procs)
        if ok:
            console.print(f"[bold green]all {cases} cases closed[/] in "
                          f"{time.monotonic() - board.started:.0f} s.")
        else:
            print_stuck(board, status, settings, console, timeout)
        if via_open311:
            open311_report(open311.url, via_open311, console, ok)
        return ok, board
    finally:
        open311.stop()
        workbench.stop()
        stop.set()
        with contextlib.suppress(threading.BrokenBarrierError):
            ready.abort()
        for thread in threads:
            thread.join(timeout=10)
        follower.close(autocommit=False)
        producer.flush(timeout=10)
        producer.close(timeout=10)
