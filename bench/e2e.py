"""End-to-end benchmark: hotline against a bare Temporal workflow, same stack, same run.

What it does (``make bench`` runs the short default):

1. Starts ``hotline worker``, ``hotline bridges`` and the bare-workflow worker
   (:mod:`bench.bare`) as their own processes, on fresh topics, task queues, consumer
   groups and database, so CPU seconds and peak RSS are measured per process (psutil).
2. **Ratio.** Files ``--burst`` happy-path complaints at once as real ``ComplaintFiled``
   events on the intake topic; simulated units (sign, progress, complete on
   ``DispatchIssued``) and the callback centre (on ``CALLBACK_DUE``) answer over Kafka.
   Then starts as many bare workflows and drives the same updates through the client.
   Throughput = cases / (last close − first filing), for both; ratio = ours / bare.
   The two bursts alternate ``--rounds`` times (bare, ours, bare, ours …) so machine
   noise hits both alike; the ratio is the median of the rounds.
3. **Sustained.** Files at ``--rate`` per second for ``--duration`` seconds and reports
   completed cases/s and intake→dispatch and intake→closed latency p50/p95/p99.
4. **Cost per case.** Temporal history events and billable actions per case (from the
   histories of a sample of closed cases of each kind), CPU seconds per case per process
   over the ours-burst windows, peak RSS per process over the run.
5. **Open cases** (``--open-cases N``): parks N open T15D cases (units sign, never
   complete: the escalation ladder's timers stay armed), reports worker RSS at 1k, 10k,
   100k open, history size, and how late escalation notices reach Kafka (deadline →
   notice received) while the cases are filed.

Billable actions are counted from each history with the rule in :func:`count_actions`.

Output: a markdown table on stdout and JSON in ``.state/bench/e2e-<time>.json``.

    .venv/bin/python -m bench.e2e                      # short default (~2-3 min)
    .venv/bin/python -m bench.e2e --duration 600 --rate 5  # sustained 10 minutes
    .venv/bin/python -m bench.e2e --open-cases 100000  # parked cases with armed timers
    .venv/bin/python -m bench.e2e --variant two-workers:BENCH_WORKERS=2  # scale-out check

The machine is shared and noisy; absolute figures move from run to run, the ratio of
the two bursts measured minutes apart in the same run moves much less.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import sys
import uuid
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from kafka import KafkaProducer

from bench.bursts import ratio_phase, variants
from bench.city import ABORT, City
from bench.histories import history_stats
from bench.open_cases import open_cases
from bench.processes import Hotline, start_proc, stop_procs, wait_ready
from bench.report import markdown
from bench.sampling import Sampler
from bench.sustained import sustained
from workers.devstack.stack import ensure_database, ensure_stack, ensure_topics, stack_status
from workers.runtime.settings import Settings
from workers.runtime.temporal import connect_temporal
from workflows.ids import complaint_workflow_id


async def run(args: argparse.Namespace) -> dict[str, Any]:
    base = Settings()
    tag = uuid.uuid4().hex[:6]
    settings = base.model_copy(update={
        "topic_prefix": f"bench{tag}.", "task_queue": f"bench-{tag}",
        "postgres_db": f"bench_{tag}", "consumer_group_prefix": f"bench-{tag}",
        "time_scale": args.time_scale,
    })
    out_dir = base.state_dir / "bench"
    log_dir = out_dir / f"run-{tag}"
    log_dir.mkdir(parents=True, exist_ok=True)
    print(f"bench {tag}: stack up, fresh topics and database (logs in {log_dir})")
    await asyncio.to_thread(ensure_stack, base)
    await asyncio.to_thread(ensure_topics, settings)
    await asyncio.to_thread(ensure_database, settings, settings.postgres_db)

    env = dict(os.environ)
    env.update({
        "HOTLINE_TOPIC_PREFIX": settings.topic_prefix, "HOTLINE_TASK_QUEUE": settings.task_queue,
        "HOTLINE_POSTGRES_DB": settings.postgres_db,
        "HOTLINE_CONSUMER_GROUP_PREFIX": settings.consumer_group_prefix,
        "HOTLINE_TIME_SCALE": repr(settings.time_scale), "HOTLINE_WORKER_METRICS_PORT": "0",
        "HOTLINE_BRIDGE_METRICS_PORT": "0", "HOTLINE_TEMPORAL_SDK_METRICS_PORT": "0",
        "PYTHONUNBUFFERED": "1",
    })
    bare_queue = f"bench-bare-{tag}"
    hotline = Hotline(env, log_dir)
    bare = start_proc("bare-worker", [sys.executable, "-m", "bench.bare", "--task-queue",
                                      bare_queue], env, log_dir)
    producer = KafkaProducer(bootstrap_servers=settings.kafka_bootstrap, acks="all",
                             linger_ms=5)
    city = City(settings, producer)
    try:
        hotline.start()
        wait_ready([(bare, "bare worker ready")])
        status = stack_status(base)
        pids = {"temporal": status["temporal"].pid, "kafka": status["kafka"].pid,
                "postgres": status["postgres"].pid}
        pids |= {name: p.popen.pid for name, p in hotline.procs.items()}
        pids |= {"bare-worker": bare.popen.pid, "bench": os.getpid()}
        sampler = Sampler({k: v for k, v in pids.items() if v},
                          trees=("temporal", "kafka", "postgres")).start()
        city.start()
        client = await connect_temporal(settings, timeout=None)
        started = datetime.now(UTC).isoformat(timespec="seconds")

        result: dict[str, Any] = {
            "started": started, "tag": tag, "time_scale": settings.time_scale,
            "cpus": os.cpu_count(), "args": vars(args),
        }
        if args.rounds > 0:
            await ratio_phase(args, city, sampler, client, bare_queue, tag, result, hotline)

        if args.duration > 0 and args.rate > 0:
            print(f"sustained: {args.rate} cases/s for {args.duration:.0f} s")
            result["sustained"] = await asyncio.to_thread(
                sustained, city, args.rate, args.duration, tag, args.drain)

        if args.open_cases:
            print(f"open cases: parking {args.open_cases} T15D cases")
            result["open_cases"] = await asyncio.to_thread(
                open_cases, city, sampler, args.open_cases, args.open_rate or None, tag,
                args.open_settle, args.open_max_s,
                out_dir / f"open-{tag}-progress.json", args.open_backlog)
            parked = [complaint_workflow_id(c) for c in list(city.parked)[: args.history_sample]]
            result["open_cases"]["history"] = await history_stats(client, parked)

        sampler.stop()
        result["peak_rss_mib"] = {k: v / 2**20 for k, v in sampler.peak_rss.items()}
        return result
    finally:
        ABORT.set()
        city.stop.set()
        with contextlib.suppress(Exception):
            producer.close(timeout=5)
        hotline.stop()
        stop_procs([bare])


def parse(argv: Sequence[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--burst", type=int, default=120, help="cases per burst (ratio)")
    p.add_argument("--rounds", type=int, default=2, help="bare/hotline burst pairs")
    p.add_argument("--bare-upserts", type=int, default=0, metavar="N",
                   help="each round also runs a bare burst with N upserts per case")
    p.add_argument("--bare-payload-bytes", type=int, default=0, metavar="N",
                   help="also a bare burst whose steps carry N characters each way (to price "
                        "history bytes)")
    p.add_argument("--burst-timeout", type=float, default=600)
    p.add_argument("--warmup", type=int, default=20)
    p.add_argument("--rate", type=float, default=2.0, help="sustained cases per second")
    p.add_argument("--duration", type=float, default=45.0, help="sustained seconds (0 = skip)")
    p.add_argument("--drain", type=float, default=120.0, help="seconds to wait for the tail")
    p.add_argument("--time-scale", type=float, default=0.01,
                   help="HOTLINE_TIME_SCALE of the worker (0.01: T24H sign-for in 36 s)")
    p.add_argument("--open-cases", type=int, default=0, help="park N open T15D cases")
    p.add_argument("--open-rate", type=float, default=0, help="filing rate (0 = as fast as "
                   "the system takes them)")
    p.add_argument("--open-max-s", type=float, default=0,
                   help="stop filing parked cases after this many seconds (0 = never); the "
                        "marks reached are reported")
    p.add_argument("--open-backlog", type=int, default=200,
                   help="at most this many parked cases filed and not yet signed for")
    p.add_argument("--open-settle", type=float, default=30,
                   help="seconds to keep watching notices after the last filing")
    p.add_argument("--variant", action="append", metavar="NAME:KEY=VAL,...",
                   help="also burst hotline with these env settings in every round, e.g. "
                        "lockstep:HOTLINE_BRIDGE_PIPELINES=false (worker and bridges restart); "
                        "BENCH_WORKERS=N runs N worker processes on the one task queue")
    p.add_argument("--profile", type=Path, default=None,
                   help="py-spy the worker and bridges during the first hotline burst into "
                        "this folder (collapsed stacks; not for figures: sampling costs CPU)")
    p.add_argument("--history-sample", type=int, default=20)
    p.add_argument("--out", type=Path, default=None, help="JSON file (default .state/bench/)")
    args = p.parse_args(argv)
    try:
        variants(args)
    except ValueError as exc:
        p.error(f"--variant: {exc}")
    return args


def main(argv: Sequence[str] | None = None) -> None:
    args = parse(argv)
    result = asyncio.run(run(args))
    table = markdown(result)
    out = args.out or (Settings().state_dir / "bench" /
                       f"e2e-{result['started'].replace(':', '')}.json")
    out.parent.mkdir(parents=True, exist_ok=True)
    result["markdown"] = table
    out.write_text(json.dumps(result, indent=2, default=str))
    print()
    print(table)
    print(f"\nJSON: {out}")


if __name__ == "__main__":
    main()
