"""The Temporal worker process: ``ComplaintWorkflow`` and its activities.

On SIGTERM it stops polling, lets the activities it runs finish (up to
``HOTLINE_GRACEFUL_SHUTDOWN_S``, then they are cancelled and Temporal retries them
elsewhere), and exits 0; ``/readyz`` answers 503 from the signal on.
"""

from __future__ import annotations

import asyncio
import hashlib
import signal
from datetime import timedelta
from pathlib import Path

import structlog
from psycopg_pool import AsyncConnectionPool
from temporalio.runtime import Runtime
from temporalio.worker import Worker

import activities
import workflows
from activities.case import CaseActivities, LedgerDuplicates
from activities.dispatch.config import load_config
from activities.governance import GovernanceActivities, load_governance_config
from activities.metrics import ActivityFailureInterceptor
from activities.publisher import KafkaPublisher
from workers.runtime.bytecode import ensure_bytecode, workflow_runner
from workers.runtime.health import Health, KafkaCheck, PostgresCheck, TemporalCheck
from workers.runtime.metrics_exporter import LedgerGauges
from workers.runtime.migrate import migrate_or_wait
from workers.runtime.observability import configure_logging, start_metrics_server, temporal_runtime
from workers.runtime.schema_registry import writer_wire
from workers.runtime.security import kafka_security_config
from workers.runtime.settings import Settings, get_settings
from workers.runtime.temporal import connect_temporal
from workflows.complaint import ComplaintWorkflow
from workflows.governance import (
    GovernancePlanWorkflow,
    HotspotScanWorkflow,
    MonthlyEvaluationWorkflow,
)

log = structlog.get_logger(__name__)


def build_id(settings: Settings) -> str:
    """The configured build id, else a short hash of the code that decides histories: the
    workflows' and activities' sources (nothing here uses worker versioning: the id only
    tells which code ran a task, and 8 hex digits do; the SDK's default is 32)."""
    if settings.worker_build_id:
        return settings.worker_build_id
    digest = hashlib.sha256()
    for package in (workflows, activities):
        root = Path(next(iter(package.__path__)))
        for path in sorted(root.rglob("*.py")):
            digest.update(path.relative_to(root.parent).as_posix().encode())
            digest.update(path.read_bytes())
    return digest.hexdigest()[:8]


async def run_worker(settings: Settings, stop: asyncio.Event, *,
                     runtime: Runtime | None = None, health: Health | None = None) -> None:
    """Serve the task queue until ``stop`` is set, then drain the running activities.

    ``runtime`` is the Temporal runtime (``main`` passes one serving the SDK's metrics);
    by default one that only forwards Core's logs. ``health`` gets the worker's checks
    (Temporal, Kafka, PostgreSQL) and is told when it serves.
    """
    config = load_config(settings.config_dir)  # bad rules stop the process here, named
    if settings.workflow_sandbox:
        await asyncio.to_thread(ensure_bytecode)
    governance = load_governance_config(settings.config_dir / "governance.yaml")
    if not await migrate_or_wait(settings, stop):
        return
    publisher = KafkaPublisher(settings.kafka_bootstrap, wire=writer_wire(settings),
                               **kafka_security_config(settings))
    pool = AsyncConnectionPool(settings.dsn, min_size=1, max_size=8, open=False,
                               check=AsyncConnectionPool.check_connection)
    await pool.open(wait=True, timeout=30)
    gauges = LedgerGauges(pool).start(settings.ledger_metrics_interval)
    try:
        client = await connect_temporal(settings, runtime=runtime or temporal_runtime(),
                                        timeout=None)
        acts = CaseActivities(
            config, publisher, pool, topic_lifecycle=settings.topic_lifecycle,
            topic_dispatches=settings.topic_dispatches, time_scale=settings.time_scale,
            duplicates=LedgerDuplicates(pool), caller_key=settings.caller_hash_key.encode(),
        )
        gov_acts = GovernanceActivities(
            config, governance, pool, publisher, topic_governance=settings.topic_governance,
            client=client, task_queue=settings.task_queue,
            workflow_version=settings.case_workflow_version,
        )
        worker = Worker(
            client, task_queue=settings.task_queue,
            workflows=[ComplaintWorkflow, MonthlyEvaluationWorkflow, HotspotScanWorkflow,
                       GovernancePlanWorkflow],
            activities=[acts.accept, acts.route, acts.plan, acts.record_step,
                        *gov_acts.all()],
            max_cached_workflows=settings.max_cached_workflows,
            interceptors=[ActivityFailureInterceptor()],
            workflow_runner=workflow_runner(settings.workflow_sandbox),
            # Without it shutdown cancels running activities at once.
            graceful_shutdown_timeout=timedelta(seconds=settings.graceful_shutdown_s),
            build_id=build_id(settings),
        )
        if health is not None:
            health.add(TemporalCheck(client, settings.temporal_namespace),
                       KafkaCheck(settings, settings.topic_lifecycle),
                       PostgresCheck(settings.dsn))
        async with worker:  # leaving it: stop polling, wait for the running activities
            log.info("worker ready", task_queue=settings.task_queue,
                     namespace=settings.temporal_namespace, time_scale=settings.time_scale)
            if health is not None:
                health.serving()
            await stop.wait()
            if health is not None:
                health.begin_shutdown()
            log.info("worker stopping: no new tasks, running activities may finish",
                     graceful_shutdown_s=settings.graceful_shutdown_s)
        log.info("worker stopped")
    finally:
        await gauges.stop()
        await pool.close()
        await asyncio.to_thread(publisher.close)


def main() -> None:
    """Entry point of ``hotline worker``."""
    settings = get_settings()
    configure_logging(settings)
    health = Health("worker")
    start_metrics_server(settings.worker_metrics_port, health=health)
    # Binds the SDK's /metrics now, so a port in use stops the process at once.
    runtime = temporal_runtime(settings.temporal_sdk_metrics_port)
    log.info("metrics served", port=settings.worker_metrics_port or None,
             temporal_sdk_port=settings.temporal_sdk_metrics_port or None)

    async def _main() -> None:
        stop = asyncio.Event()
        health.start()

        def on_signal() -> None:
            health.begin_shutdown()  # not ready from the first moment of the drain
            stop.set()

        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, on_signal)
        try:
            await run_worker(settings, stop, runtime=runtime, health=health)
        finally:
            await health.close()

    asyncio.run(_main())
