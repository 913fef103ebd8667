"""The Temporal worker process: ``ComplaintWorkflow`` and its activities."""

from __future__ import annotations

import asyncio
import signal

import structlog
from psycopg_pool import AsyncConnectionPool
from temporalio.client import Client
from temporalio.worker import Worker

from activities.case import CaseActivities, LedgerDuplicates
from activities.config import load_config
from activities.publisher import KafkaPublisher
from workers.migrate import apply_migrations
from workers.observability import configure_logging, start_metrics_server
from workers.settings import Settings, get_settings
from workflows.complaint import ComplaintWorkflow

log = structlog.get_logger(__name__)


async def run_worker(settings: Settings, stop: asyncio.Event) -> None:
    """Serve the task queue until ``stop`` is set."""
    config = load_config(settings.config_dir)  # bad rules stop the process here, named
    # Idempotent and serialised by an advisory lock, so every worker may run it at start.
    await asyncio.to_thread(apply_migrations, settings.dsn)
    publisher = KafkaPublisher(settings.kafka_bootstrap)
    pool = AsyncConnectionPool(settings.dsn, min_size=1, max_size=8, open=False,
                               check=AsyncConnectionPool.check_connection)
    await pool.open(wait=True, timeout=30)
    try:
        client = await Client.connect(settings.temporal_address,
                                      namespace=settings.temporal_namespace)
        acts = CaseActivities(
            config, publisher, pool, topic_lifecycle=settings.topic_lifecycle,
            topic_dispatches=settings.topic_dispatches, time_scale=settings.time_scale,
            duplicates=LedgerDuplicates(pool), caller_key=settings.caller_hash_key.encode(),
        )
        worker = Worker(
            client, task_queue=settings.task_queue, workflows=[ComplaintWorkflow],
            activities=[acts.accept, acts.route, acts.plan, acts.record_step],
            max_cached_workflows=settings.max_cached_workflows,
        )
        async with worker:
            log.info("worker ready", task_queue=settings.task_queue,
                     namespace=settings.temporal_namespace, time_scale=settings.time_scale)
            await stop.wait()
    finally:
        await pool.close()
        await asyncio.to_thread(publisher.close)


def main() -> None:
    """Entry point of ``hotline worker``."""
    settings = get_settings()
    configure_logging(settings)
    start_metrics_server(settings.worker_metrics_port)

    async def _main() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, stop.set)
        await run_worker(settings, stop)

    asyncio.run(_main())
