"""The ratio: bursts of hotline cases against bursts of bare workflows, same run.

The two alternate round by round so machine noise hits both alike; CPU seconds per
case are read over each burst's window.
"""

from __future__ import annotations

import argparse
import asyncio
import signal
import statistics
import time
from dataclasses import dataclass
from typing import Any

from temporalio.client import Client

from bench.bare import UPDATES, BareCase, BareStep
from bench.city import City, wait_until
from bench.histories import history_stats
from bench.processes import Hotline, role, stop_procs, worker_names
from bench.profiling import profile, summarise_profile
from bench.sampling import Sampler
from workflows.ids import complaint_workflow_id


@dataclass
class Window:
    started: float
    ended: float
    cpu: dict[str, float]
    cases: int
    # Wall seconds over which ``cpu`` was read (to the read after the last close), and the
    # CPU seconds the whole machine was busy over them: cores busy, to see the limit.
    wall: float = 0.0
    busy: float = 0.0

    @property
    def rate(self) -> float:
        return self.cases / max(1e-9, self.ended - self.started)


def ours_burst(city: City, sampler: Sampler, n: int, tag: str, timeout: float) -> Window:
    ids = [f"B{tag}-{i:05d}" for i in range(n)]
    cpu0, busy0 = sampler.cpu(), sampler.machine_busy()
    t0 = time.time()
    for cid in ids:
        city.file(cid)
    city.producer.flush()
    ok = wait_until(lambda: all(city.cases[c].closed for c in ids), timeout)
    closed = [t for c in ids if (t := city.cases[c].closed) is not None]
    t1 = max(closed) if closed else time.time()
    cpu1, busy1 = sampler.cpu(), sampler.machine_busy()
    if not ok:
        print(f"  warning: {n - len(closed)} of {n} cases not closed in {timeout:.0f} s")
    return Window(t0, t1, {k: cpu1[k] - cpu0[k] for k in cpu0}, len(closed),
                  time.time() - t0, busy1 - busy0)


async def bare_burst(client: Client, sampler: Sampler, task_queue: str, n: int, tag: str,
                     timeout: float, upserts: int = 0, payload_bytes: int = 200) -> Window:
    cpu0, busy0 = sampler.cpu(), sampler.machine_busy()
    t0 = time.time()
    done: list[float] = []

    async def one(i: int) -> None:
        wid = f"bare-{tag}-{i:05d}"
        case = BareCase(wid, upserts=upserts, payload_bytes=payload_bytes)
        handle = await client.start_workflow("BareWorkflow", case, id=wid,
                                             task_queue=task_queue)
        for name in UPDATES:
            await handle.execute_update(name, BareStep(wid, name))
        await handle.result()
        done.append(time.time())

    results = await asyncio.wait_for(
        asyncio.gather(*(one(i) for i in range(n)), return_exceptions=True), timeout)
    errors = [r for r in results if isinstance(r, BaseException)]
    if errors:
        print(f"  warning: {len(errors)} bare cases failed, e.g. {errors[0]!r}")
    cpu1, busy1 = sampler.cpu(), sampler.machine_busy()
    return Window(t0, max(done) if done else time.time(),
                  {k: cpu1[k] - cpu0[k] for k in cpu0}, len(done), time.time() - t0,
                  busy1 - busy0)


def follow(sampler: Sampler, hotline: Hotline) -> None:
    """Measure the processes a (re)start left running, and drop extra workers now gone."""
    for name in sampler.names():
        if role(name) == "worker" and name not in hotline.procs:
            sampler.drop(name)
    for name, proc in hotline.procs.items():
        sampler.set_pid(name, proc.popen.pid)


def cores_busy(ws: list[Window]) -> dict[str, float]:
    """Cores each process kept busy over the bursts (CPU s / wall s), and the machine's."""
    wall = sum(w.wall for w in ws) or 1e-9
    out = {k: sum(w.cpu.get(k, 0.0) for w in ws) / wall for k in ws[0].cpu}
    return out | {"machine": sum(w.busy for w in ws) / wall}


def _closed(city: City, tag: str, name: str, sample: int) -> list[str]:
    """Workflow ids of up to ``sample`` closed burst cases of variant ``name``."""
    prefixes = tuple(f"B{tag}{r}{name}-" for r in range(100))
    return [complaint_workflow_id(cid) for cid, c in city.cases.items()
            if c.closed and cid.startswith(prefixes)][:sample]


def variants(args: argparse.Namespace) -> list[tuple[str, dict[str, str]]]:
    """``--variant NAME:KEY=VAL,KEY=VAL``: hotline bursts with other settings, same run."""
    out: list[tuple[str, dict[str, str]]] = [("hotline", {})]
    for spec in args.variant or []:
        name, _, pairs = spec.partition(":")
        env = dict(pair.split("=", 1) for pair in pairs.split(",") if pair)
        worker_names(env)  # a bad BENCH_WORKERS stops the run before it starts
        out.append((name, env))
    return out


async def ratio_phase(args: argparse.Namespace, city: City, sampler: Sampler, client: Client,
                      bare_queue: str, tag: str, result: dict[str, Any],
                      hotline: Hotline) -> None:
    print(f"warm-up: {args.warmup} cases of each kind", flush=True)
    await asyncio.to_thread(ours_burst, city, sampler, args.warmup, f"{tag}w", 120)
    await bare_burst(client, sampler, bare_queue, args.warmup, f"{tag}w", 120)
    kinds = variants(args)
    windows: dict[str, list[Window]] = {name: [] for name, _ in kinds}
    bare_w: list[Window] = []
    # Bare bursts that price one cost apart: (label, JSON key, BareCase fields, id tag).
    extras = [(label, key, {field: value}, code) for label, key, field, value, code in (
        ("bare+upserts", "bare_upserts", "upserts", args.bare_upserts, "u"),
        ("bare+bytes", "bare_bytes", "payload_bytes", args.bare_payload_bytes, "y"),
    ) if value]
    extra_w: dict[str, list[Window]] = {label: [] for label, *_ in extras}
    for r in range(args.rounds):
        b = await bare_burst(client, sampler, bare_queue, args.burst, f"{tag}{r}", 600)
        bare_w.append(b)
        line = f"round {r + 1}: bare {b.rate:.2f}/s"
        for label, _, fields, code in extras:
            x = await bare_burst(client, sampler, bare_queue, args.burst, f"{tag}{code}{r}",
                                 600, **fields)
            extra_w[label].append(x)
            line += f", {label} {x.rate:.2f}/s"
        for name, env in kinds:
            if len(kinds) > 1 and hotline.variant != name:
                await asyncio.to_thread(hotline.start, env, name)
                follow(sampler, hotline)
                # Warm the restarted processes up outside the measured window.
                await asyncio.to_thread(ours_burst, city, sampler, args.warmup,
                                        f"{tag}w{r}{name}", 120)
            spies = profile(args, sampler, f"{name}-round{r + 1}") if r == 0 else []
            o = await asyncio.to_thread(ours_burst, city, sampler, args.burst,
                                        f"{tag}{r}{name}", args.burst_timeout)
            stop_procs(spies, signal.SIGINT)  # py-spy writes its output on SIGINT
            for spy in spies:
                print(summarise_profile(
                    args.profile / f"{spy.name[7:]}-{name}-round{r + 1}.txt"))
            windows[name].append(o)
            line += f", {name} {o.rate:.2f}/s (ratio {o.rate / b.rate:.2f})"
        print(line, flush=True)
    bare_rates = [w.rate for w in bare_w]

    def per_case(ws: list[Window]) -> dict[str, float]:
        cases = sum(w.cases for w in ws) or 1
        return {k: sum(w.cpu.get(k, 0.0) for w in ws) / cases for k in ws[0].cpu}

    result["ratio"] = {"burst": args.burst, "bare_rates": bare_rates,
                       "bare_median": statistics.median(bare_rates), "variants": {}}
    result["cpu_s_per_case"] = {"bare": per_case(bare_w)}
    result["cores_busy"] = {"bare": cores_busy(bare_w)}
    for label, key, fields, _ in extras:
        rates = [w.rate for w in extra_w[label]]
        result["ratio"][key] = {**fields, "rates": rates, "median": statistics.median(rates)}
        result["cpu_s_per_case"][label] = per_case(extra_w[label])
    for name, env in kinds:
        rates = [w.rate for w in windows[name]]
        result["ratio"]["variants"][name] = {
            "env": env, "rates": rates, "median": statistics.median(rates),
            "ratio": statistics.median(o / b for o, b in zip(rates, bare_rates, strict=True)),
        }
        result["cpu_s_per_case"][name] = per_case(windows[name])
        result["cores_busy"][name] = cores_busy(windows[name])
    if len(kinds) > 1 and hotline.variant != "hotline":
        await asyncio.to_thread(hotline.start, {}, "hotline")
        follow(sampler, hotline)
    bare_ids = [f"bare-{tag}0-{i:05d}" for i in range(min(args.burst, args.history_sample))]
    result["histories"] = {"hotline": await history_stats(client, _closed(city, tag, "hotline",
                                                                          args.history_sample)),
                           "bare": await history_stats(client, bare_ids)}
    for name, _ in kinds[1:]:
        # Each variant's own cases: a variant may run other code (BENCH_CHECKOUT).
        result["histories"][name] = await history_stats(
            client, _closed(city, tag, name, args.history_sample))
    ours, theirs = (result["histories"][k].get("activities") for k in ("hotline", "bare"))
    if ours is not None and theirs is not None and abs(ours - theirs) >= 0.5:
        # The ratio only means something when both do the same orchestration work.
        result["shape_mismatch"] = (f"the bare workflow ran {theirs:.1f} activities per case, "
                                    f"hotline {ours:.1f}: fix BareCase in bench/bare.py")
        print(f"  warning: {result['shape_mismatch']}", flush=True)
