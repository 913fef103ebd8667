"""The end-to-end bench's figures as markdown, and the percentiles they are made of."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

from bench.processes import role


def pct(values: Sequence[float], q: float) -> float | None:
    if not values:
        return None
    ordered = sorted(values)
    k = min(len(ordered) - 1, max(0, round(q / 100 * (len(ordered) - 1))))
    return ordered[k]


def roles(names: Iterable[str]) -> dict[str, list[str]]:
    """Roles played by more than one process (``worker``, ``worker-2``), with their names."""
    out: dict[str, list[str]] = {}
    for name in names:
        out.setdefault(role(name), []).append(name)
    return {r: ns for r, ns in out.items() if len(ns) > 1}


def fmt(v: Any, digits: int = 2) -> str:
    if v is None:
        return "-"
    if isinstance(v, float):
        return f"{v:.{digits}f}"
    return str(v)


def markdown(result: dict[str, Any]) -> str:
    lines = [f"hotline end-to-end benchmark — {result['started']} (time scale "
             f"{result['time_scale']}, {result['cpus']} CPUs, shared machine: absolute "
             "figures are noisy, the ratio is measured in one run)", ""]
    r = result.get("ratio")
    if r:
        names = list(r["variants"])
        lines += ["| burst round | bare cases/s | " + " | ".join(
                      f"{n} cases/s (ratio)" for n in names) + " |",
                  "|---|---|" + "---|" * len(names)]
        for i, b in enumerate(r["bare_rates"]):
            cells = [f"{r['variants'][n]['rates'][i]:.2f} "
                     f"({r['variants'][n]['rates'][i] / b:.2f})" for n in names]
            lines.append(f"| {i + 1} | {b:.2f} | " + " | ".join(cells) + " |")
        cells = [f"{r['variants'][n]['median']:.2f} (**{r['variants'][n]['ratio']:.2f}**)"
                 for n in names]
        lines += [f"| **median** | {r['bare_median']:.2f} | " + " | ".join(cells) + " |", ""]
        for key, what in (("bare_upserts", "{upserts} search-attribute upserts per case"),
                          ("bare_bytes", "{payload_bytes:,}-character steps (200 by default)")):
            x = r.get(key)
            if x:
                lines += [f"Bare workflow with {what.format(**x)}: "
                          + ", ".join(f"{v:.2f}" for v in x["rates"])
                          + f" cases/s, median {x['median']:.2f} "
                          f"({x['median'] / r['bare_median']:.2f}× the bare median).", ""]
        if result.get("shape_mismatch"):
            lines += [f"**Warning**: {result['shape_mismatch']}.", ""]
    if result.get("sustained"):
        s = result["sustained"]
        lines += ["| sustained | value |", "|---|---|",
                  f"| offered | {s['rate_offered']} cases/s for {s['duration_s']:.0f} s |",
                  f"| completed | {s['closed']}/{s['filed']}, "
                  f"{s['completed_per_s']:.2f} cases/s |"]
        for key, label in (("intake_to_dispatch_s", "intake→dispatch"),
                           ("intake_to_closed_s", "intake→closed")):
            p = s[key]
            lines.append(f"| {label} p50 / p95 / p99 | {fmt(p['p50'])} / {fmt(p['p95'])} / "
                         f"{fmt(p['p99'])} s |")
        lines.append("")
    h = result.get("histories")
    if h:
        # hotline, then each variant (its own cases), then bare.
        kinds = ["hotline", *(k for k in h if k not in ("hotline", "bare")), "bare"]
        lines += ["| history per case | " + " | ".join(kinds) + " |",
                  "|---|" + "---|" * len(kinds)]
        for key in ("events", "bytes", "actions", "workflow_started", "activities",
                    "activity_retries", "updates", "signals", "timers", "upserts", "markers",
                    "version_markers"):
            lines.append(f"| {key} | " + " | ".join(fmt(h[k].get(key), 1) for k in kinds)
                         + " |")
        lines.append("")
    c = result.get("cpu_s_per_case", {})
    rss = result["peak_rss_mib"]
    cols = list(c)
    # Without bursts (--rounds 0) there is no CPU per case: only the RSS column.
    lines += ["| process | " + "".join(f"CPU s / case ({k} burst) | " for k in cols)
              + "peak RSS MiB (whole run) |", "|---|" + "---|" * (len(cols) + 1)]
    for name in rss:
        lines.append(f"| {name} | " + "".join(f"{fmt(c[k].get(name), 4)} | " for k in cols)
                     + f"{rss[name]:.0f} |")
    for r, names in roles(rss).items():
        # Several processes of one role (BENCH_WORKERS): their sum, apart from the total.
        sums = [sum(c[k][n] for n in names if n in c[k]) if any(n in c[k] for n in names)
                else None for k in cols]
        lines.append(f"| {r}, {len(names)} processes summed | "
                     + "".join(f"{fmt(v, 4)} | " for v in sums)
                     + f"{sum(rss[n] for n in names):.0f} (sum of peaks) |")
    if cols:
        lines.append("| **total** | " + "".join(f"{fmt(sum(c[k].values()), 4)} | "
                                                for k in cols) + " |")
    busy = result.get("cores_busy")
    if busy:
        kinds = list(busy)
        lines += ["", f"| cores busy over the bursts (CPU s / wall s; {result['cpus']} "
                  "cores) | " + " | ".join(kinds) + " |", "|---|" + "---|" * len(kinds)]
        for name in dict.fromkeys(n for k in kinds for n in busy[k] if n != "machine"):
            lines.append(f"| {name} | " + " | ".join(fmt(busy[k].get(name)) for k in kinds)
                         + " |")
        lines.append("| **machine** (every process on it) | "
                     + " | ".join(fmt(busy[k]["machine"]) for k in kinds) + " |")
    if result.get("open_cases"):
        o = result["open_cases"]
        lines += ["", "| open cases | value |", "|---|---|",
                  # Runs before the backlog bound counted dispatched cases as open.
                  (f"| parked T15D cases signed for | {o['signed']}/{o['filed']} filed "
                   f"({o['open']} asked, at most {o['backlog']} waiting)" if "signed" in o
                   else f"| parked T15D cases dispatched | {o['dispatched']}/{o['filed']} "
                   f"filed ({o['open']} asked)") + f" in {o['filing_s']:.0f} s |"]
        first = next(iter(o["worker_rss_bytes"].values()), None)
        for m, r in o["worker_rss_bytes"].items():
            ratio = r["worker_bytes"] / first["worker_bytes"] if first else 0
            at = r.get("open_at_read", int(m))
            lines.append(f"| worker RSS at {int(m):,} open ({at:,} when read, after "
                         f"{r['elapsed_s']:.0f} s) | "
                         f"{r['worker_bytes'] / 2**20:.0f} MiB ({ratio:.2f}× first mark); "
                         f"Temporal {r['temporal_bytes'] / 2**20:.0f} MiB |")
        if o.get("history"):
            lines.append(f"| history of a parked case | {o['history'].get('events', 0):.0f} "
                         f"events, {o['history'].get('bytes', 0):.0f} bytes |")
        nl = o["notice_late_s"]
        lines.append(f"| escalation notices (deadline → on Kafka) | {o['notices']}, late "
                     f"p50 / p99 / max {fmt(nl['p50'])} / {fmt(nl['p99'])} / "
                     f"{fmt(nl['max'])} s |")
        minutes = o.get("notice_late_by_minute") or []
        if minutes:
            over = [m for m in minutes if (m["p99"] or 0) > 2]
            worst = ", ".join(f"{m['minute']}: p99 {m['p99']:.1f} s" for m in over[:5])
            lines.append(f"| minutes of deadlines with notice p99 > 2 s | {len(over)} of "
                         f"{len(minutes)}{f' (minutes {worst})' if over else ''} |")
    return "\n".join(lines)
