"""What decoding a workflow payload costs, by converter and by annotations.

Temporal's default payload converter resolves a dataclass's type hints
(``typing.get_type_hints``) on every decode. Under ``from __future__ import annotations``
every hint is a string that is compiled again each time, so ``workflows.model`` does
without that import; and the hotline's converter (``workers/runtime/temporal.py``)
resolves them once per class. This decodes every payload of the stored histories
(``tests/histories``) that has a type in ``workflows.model``: the workflow input, activity
inputs and results, update inputs. It decodes each one three ways, interleaved in one
process:

- **hotline**: the hotline's converter, ``workflows.model`` as it is;
- **default**: Temporal's default converter, ``workflows.model`` as it is;
- **strings**: the default converter, the same source run again with
  ``from __future__ import annotations``.

Printed: CPU µs per decode each way and their ratios.

    .venv/bin/python -m bench.bench_payloads [--rounds 5] [--passes 20]
"""

import argparse
import base64
import json
import sys
import time
import types
from collections.abc import Iterable, Sequence
from functools import partial
from pathlib import Path
from typing import Any

from temporalio.api.common.v1 import Payload
from temporalio.converter import PayloadConverter, default

import workflows.model as real_model
from bench._ab import interleaved
from workers.runtime.settings import REPO_ROOT
from workers.runtime.temporal import DATA_CONVERTER

HISTORIES = REPO_ROOT / "tests" / "histories"
# Activity name -> (input class, result class), by name in workflows.model.
ACTIVITIES = {"accept": ("AcceptRequest", "Acceptance"), "record_step": ("StepRecord",
              "StepReceipt"), "plan": ("PlanRequest", "TierPlan"),
              "route": ("RouteRequest", "RouteResult")}
UPDATES = {"sign_for": "SignFor", "report_progress": "ReportProgress", "complete": "Complete",
           "callback": "CallbackAnswer", "return_dispatch": "ReturnDispatch",
           "request_extension": "RequestExtension", "urge": "Urge",
           "supplement": "Supplement", "withdraw": "Withdraw"}


def _payload(p: dict[str, Any]) -> Payload:
    return Payload(metadata={k: base64.b64decode(v) for k, v in p["metadata"].items()},
                   data=base64.b64decode(p.get("data", "")))


def payloads(files: Iterable[Path] | None = None) -> list[tuple[Payload, str]]:
    """Every typed payload in the stored histories (or ``files``), with its class name."""
    found: list[tuple[Payload, str]] = []
    for f in sorted(HISTORIES.glob("*.json") if files is None else files):
        scheduled: dict[str, str] = {}
        for e in json.loads(f.read_text())["events"]:
            if a := e.get("workflowExecutionStartedEventAttributes"):
                found.append((_payload(a["input"]["payloads"][0]), "Filing"))
            elif a := e.get("activityTaskScheduledEventAttributes"):
                name = a["activityType"]["name"]
                scheduled[e["eventId"]] = name
                if name in ACTIVITIES:
                    found.append((_payload(a["input"]["payloads"][0]), ACTIVITIES[name][0]))
            elif a := e.get("activityTaskCompletedEventAttributes"):
                name = scheduled.get(a["scheduledEventId"], "")
                if name in ACTIVITIES and a.get("result"):
                    found.append((_payload(a["result"]["payloads"][0]), ACTIVITIES[name][1]))
            elif a := e.get("workflowExecutionUpdateAcceptedEventAttributes"):
                req = a["acceptedRequest"]["input"]
                if req["name"] in UPDATES:
                    found.append((_payload(req["args"]["payloads"][0]), UPDATES[req["name"]]))
    return found


def string_model() -> types.ModuleType:
    """``workflows.model`` run again with string annotations, as it was written before."""
    source = (REPO_ROOT / "workflows" / "model.py").read_text()
    mod = types.ModuleType("bench_model_strings")
    sys.modules[mod.__name__] = mod  # get_type_hints looks the module's globals up here
    exec(compile("from __future__ import annotations\n" + source, "model_strings.py", "exec"),
         mod.__dict__)
    return mod


def decode_all(found: list[tuple[Payload, str]], model: types.ModuleType, passes: int,
               converter: PayloadConverter | None = None) -> float:
    """CPU seconds per decode (by the default converter unless one is given)."""
    converter = converter or default().payload_converter
    typed = [(p, getattr(model, name)) for p, name in found]
    started = time.process_time()
    for _ in range(passes):
        for p, cls in typed:
            converter.from_payloads([p], [cls])
    return (time.process_time() - started) / (passes * len(typed))


def main(argv: Sequence[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--rounds", type=int, default=5)
    p.add_argument("--passes", type=int, default=20, help="passes over the payloads per round")
    args = p.parse_args(argv)
    found = payloads()
    hotline = DATA_CONVERTER.payload_converter
    strings = string_model()
    for model, conv in ((real_model, hotline), (real_model, None), (strings, None)):
        decode_all(found, model, 1, conv)  # warm-up; also proves every payload decodes
    med = interleaved({"hotline": partial(decode_all, found, real_model, args.passes, hotline),
                       "default": partial(decode_all, found, real_model, args.passes),
                       "strings": partial(decode_all, found, strings, args.passes)},
                      args.rounds, lambda t: f"{t * 1e6:.0f} µs")
    us = {way: t * 1e6 for way, t in med.items()}
    print(f"\nCPU per payload decode ({len(found)} payloads from {HISTORIES.name}, median of "
          f"{args.rounds} rounds x {args.passes}): hotline converter {us['hotline']:.0f} µs, "
          f"default converter {us['default']:.0f} µs, default with string annotations "
          f"{us['strings']:.0f} µs; hotline / default {us['hotline'] / us['default']:.2f}, "
          f"default real / strings {us['default'] / us['strings']:.2f}")


if __name__ == "__main__":
    main()
