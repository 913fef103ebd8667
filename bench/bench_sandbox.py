"""What a workflow instance costs the worker with and without byte-code for its modules.

Temporal's sandbox imports the workflow modules afresh for every workflow instance: each
new case, and each case that left the sticky cache and comes back (a parked case's
timer). This replays the stored histories (``tests/histories``) with the Replayer — one
new sandboxed instance per replay, exactly the cache-miss path — ``--rounds`` times each
way, interleaved in one process:

- **no byte-code**: ``PYTHONDONTWRITEBYTECODE=1`` with an editable install and no
  ``.pyc`` (what the worker and the image did before ``workers/runtime/bytecode.py``): the
  sandbox compiles ``workflows/complaint.py`` on every instance;
- **byte-code**: ``.pyc`` written once, as the worker now does at start.

Each way gets its own empty ``sys.pycache_prefix``, so the checkout is not touched.
Printed: CPU ms per replayed history, each way, and their ratio.

    .venv/bin/python -m bench.bench_sandbox [--rounds 5] [--replays 40]
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import tempfile
import time
from collections.abc import Sequence
from functools import partial
from pathlib import Path

from temporalio.client import WorkflowHistory
from temporalio.worker import Replayer

from bench._ab import interleaved
from workers.runtime.bytecode import ensure_bytecode
from workers.runtime.settings import REPO_ROOT
from workflows.complaint import ComplaintWorkflow

HISTORIES = REPO_ROOT / "tests" / "histories"


async def replay_all(histories: list[WorkflowHistory], replays: int) -> float:
    """CPU seconds per replay."""
    replayer = Replayer(workflows=[ComplaintWorkflow])
    started = time.process_time()
    for i in range(replays):
        await replayer.replay_workflow(histories[i % len(histories)])
    return (time.process_time() - started) / replays


def main(argv: Sequence[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--rounds", type=int, default=5)
    p.add_argument("--replays", type=int, default=40, help="replays per round and way")
    args = p.parse_args(argv)
    histories = [WorkflowHistory.from_json(f.stem, f.read_text())
                 for f in sorted(HISTORIES.glob("*.json"))]
    sys.dont_write_bytecode = True
    with tempfile.TemporaryDirectory() as bare, tempfile.TemporaryDirectory() as compiled:
        sys.pycache_prefix = compiled
        ensure_bytecode()
        ways = {"no byte-code": bare, "byte-code": compiled}
        asyncio.run(replay_all(histories, 4))  # warm-up

        def measure(prefix: str) -> float:
            sys.pycache_prefix = prefix
            return asyncio.run(replay_all(histories, args.replays))

        med = interleaved({way: partial(measure, prefix) for way, prefix in ways.items()},
                          args.rounds, lambda t: f"{t * 1000:.1f} ms")
        assert not any(Path(bare).iterdir()), "byte-code was written in the bare prefix"
    print(f"\nCPU per replayed history (median of {args.rounds} rounds x {args.replays}): "
          f"no byte-code {med['no byte-code'] * 1000:.1f} ms, byte-code "
          f"{med['byte-code'] * 1000:.1f} ms; ratio {med['byte-code'] / med['no byte-code']:.2f}"
          f" ({med['no byte-code'] / med['byte-code']:.1f}x faster)")


if __name__ == "__main__":
    main()
