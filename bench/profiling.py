"""``--profile DIR``: py-spy on the worker and the bridges during one hotline burst."""

from __future__ import annotations

import argparse
import os
import sys
import time
from collections import Counter
from pathlib import Path

from bench.processes import Proc, start_proc
from bench.sampling import Sampler
from workers.runtime.settings import REPO_ROOT


def profile(args: argparse.Namespace, sampler: Sampler, label: str) -> list[Proc]:
    """py-spy on the worker and the bridges for one hotline burst (``--profile DIR``)."""
    if not args.profile:
        return []
    args.profile.mkdir(parents=True, exist_ok=True)
    spy = str(Path(sys.executable).parent / "py-spy")
    procs = []
    for name in ("worker", "bridges"):
        pid = sampler.pid(name)
        out = args.profile / f"{name}-{label}.txt"
        procs.append(start_proc(f"py-spy-{name}", [
            spy, "record", "--pid", str(pid), "--format", "raw", "--rate", "50",
            "--output", str(out), "--nonblocking", "--full-filenames", "--gil"],
            dict(os.environ), args.profile))
    time.sleep(1.0)  # attached before the burst starts
    print(f"  profiling worker and bridges into {args.profile}")
    return procs


def summarise_profile(path: Path, top: int = 12) -> str:
    """The hottest frames of a py-spy raw (collapsed) profile: self and inclusive share."""
    if not path.exists():
        return f"  (no profile at {path})"
    own: Counter[str] = Counter()
    incl: Counter[str] = Counter()
    total = 0
    for line in path.read_text(errors="replace").splitlines():
        stack, _, n = line.rpartition(" ")
        if not n.isdigit():
            continue
        frames = [f.strip() for f in stack.split(";") if f.strip()]
        count = int(n)
        total += count
        if frames:
            own[frames[-1]] += count
        for f in set(frames):
            incl[f] += count
    lines = [f"  {path.name}: {total} samples; hottest frames (self %):"]
    lines += [f"    {100 * c / max(total, 1):5.1f}%  {f[:150]}" for f, c in own.most_common(top)]
    root = str(REPO_ROOT)  # a clone anywhere, not only under /work
    ours = [(f, c) for f, c in incl.most_common() if root in f and "/site-packages/"
            not in f and "/.venv/" not in f][:top]
    lines.append("  our code, inclusive %:")
    lines += [f"    {100 * c / max(total, 1):5.1f}%  {f[:150]}" for f, c in ours]
    return "\n".join(lines)
