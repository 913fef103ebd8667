"""Governance plans (一方案三清单) on the command line: ``hotline plan start|show|close``.

A supervisor picks a monthly topic (``hotline report monthly`` lists the candidates) and
writes its plan as YAML: the plan, its task list (owner unit, due month), responsibility
list and policy list. ``start`` validates the file against the unit registry and starts
the plan's workflow ``governance-plan-<plan_id>``. Units report their tasks done with
``PlanTaskReported`` events on ``hotline.unit-replies``; ``show`` prints the completion
rate and the topic's half-monthly volume, and the final report once the plan closed.

Example plan file::

    plan_id: 2026-09-order.vendors
    category: order.vendors
    title: 夜间占道经营治理
    tasks:
      - {task_id: t1, owner_unit_id: "110105026", description: 设夜市疏导点, due_month: 2026-10}
    responsibilities: ["街道: 属地巡查"]
    policies: ["临时疏导点管理办法"]
"""

from __future__ import annotations

import asyncio
import re
from dataclasses import asdict
from datetime import timedelta
from pathlib import Path
from typing import Any

import typer
import yaml
from pydantic import BaseModel, ConfigDict, ValidationError, field_validator
from rich.console import Console
from rich.table import Table
from temporalio.service import RPCError, RPCStatusCode

from activities.dispatch.config import HotlineConfig, load_config
from workers.cli.failures import BadFile, NoAnswer, Refused
from workers.cli.output import print_json
from workers.runtime.settings import Settings, get_settings
from workers.runtime.temporal import connect_temporal
from workflows.governance import (
    GovernancePlanWorkflow,
    PlanInput,
    PlanStatus,
    PlanTask,
)
from workflows.ids import plan_workflow_id

app = typer.Typer(help="Governance plans for monthly topics (一方案三清单).",
                  no_args_is_help=True)
_console = Console()
_MONTH = re.compile(r"^\d{4}-(0[1-9]|1[0-2])$")
_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._:-]{0,99}$")
# How long a person waits for a plan's status, or its report after closing it.
QUERY_TIMEOUT = timedelta(seconds=15)
CLOSE_TIMEOUT = timedelta(seconds=30)


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class TaskSpec(_Strict):
    task_id: str
    owner_unit_id: str
    description: str
    due_month: str

    @field_validator("due_month")
    @classmethod
    def _month(cls, value: str) -> str:
        if not _MONTH.match(value):
            raise ValueError(f"due_month must be YYYY-MM, got {value!r}")
        return value


class PlanSpec(_Strict):
    plan_id: str
    category: str
    title: str
    tasks: list[TaskSpec]
    responsibilities: list[str] = []
    policies: list[str] = []
    review_days: float = 15.0
    max_reviews: int = 12

    @field_validator("plan_id")
    @classmethod
    def _plan_id(cls, value: str) -> str:
        if not _ID.match(value):
            raise ValueError(f"plan_id must be letters, digits and . _ : - (got {value!r})")
        return value


class PlanFileError(ValueError):
    """A plan file that cannot start a plan; the message says what to fix."""


def load_plan(path: Path, config: HotlineConfig) -> PlanInput:
    """Read and check a plan file: known category, known owner units, unique task ids.

    Raises:
        PlanFileError: With every problem found, so the supervisor fixes them at once.
    """
    try:
        raw: Any = yaml.safe_load(path.read_text(encoding="utf-8"))
        spec = PlanSpec.model_validate(raw)
    except ValidationError as exc:  # one clause per problem, not pydantic's page
        raise PlanFileError(f"{path}: " + "; ".join(
            f"{'.'.join(map(str, e['loc'])) or 'the file'}: {e['msg']}"
            for e in exc.errors(include_url=False))) from exc
    except OSError as exc:
        raise PlanFileError(f"{path}: {exc.strerror or exc}") from exc
    except (yaml.YAMLError, UnicodeDecodeError) as exc:
        raise PlanFileError(f"{path}: not YAML ({' '.join(str(exc).split())})") from exc
    problems = []
    if spec.category not in {c.code for c in config.lexicon.categories}:
        problems.append(f"unknown category {spec.category!r}")
    if not spec.tasks:
        problems.append("the task list is empty")
    seen: set[str] = set()
    for task in spec.tasks:
        if task.task_id in seen:
            problems.append(f"task id {task.task_id!r} appears twice")
        seen.add(task.task_id)
        if config.registry.get(task.owner_unit_id) is None:
            problems.append(f"task {task.task_id}: unknown owner unit {task.owner_unit_id!r}")
    if problems:
        raise PlanFileError(f"{path}: " + "; ".join(problems))
    return PlanInput(
        plan_id=spec.plan_id, category=spec.category, title=spec.title,
        tasks=[PlanTask(t.task_id, t.owner_unit_id, t.description, t.due_month)
               for t in spec.tasks],
        responsibilities=list(spec.responsibilities), policies=list(spec.policies),
        review_seconds=spec.review_days * 86400, max_reviews=spec.max_reviews)


async def start_plan(settings: Settings, plan: PlanInput) -> str:
    """Start the plan's workflow; a plan id is used once (a second start is refused)."""
    from temporalio.common import WorkflowIDReusePolicy

    client = await connect_temporal(settings)
    handle = await client.start_workflow(
        GovernancePlanWorkflow.run, plan, id=plan_workflow_id(plan.plan_id),
        task_queue=settings.task_queue,
        id_reuse_policy=WorkflowIDReusePolicy.REJECT_DUPLICATE)
    return handle.id


async def plan_status(settings: Settings, plan_id: str) -> PlanStatus:
    """The running plan's status, or its final report once it closed."""
    from temporalio.client import WorkflowExecutionStatus

    handle = (await connect_temporal(settings)).get_workflow_handle(
        plan_workflow_id(plan_id), result_type=PlanStatus)
    described = await handle.describe(rpc_timeout=QUERY_TIMEOUT)
    if described.status == WorkflowExecutionStatus.RUNNING:
        # No worker polling: DEADLINE_EXCEEDED after QUERY_TIMEOUT (exit 5), not a hang.
        status: PlanStatus = await handle.query(GovernancePlanWorkflow.status,
                                                rpc_timeout=QUERY_TIMEOUT)
        return status
    result: PlanStatus = await handle.result()
    return result


def _print_status(status: PlanStatus, as_json: bool) -> None:
    if as_json:
        print_json(_status_json(status))
        return
    state = "closed (final report)" if status.closed else "open"
    _console.print(f"plan {status.plan_id} — topic {status.category}: {state}; tasks done "
                   f"{status.done}/{status.tasks} ({status.completion_rate:.0%})")
    table = Table(title="topic volume per half month")
    table.add_column("half month ending")
    table.add_column("complaints", justify="right")
    for day, n in status.trend:
        table.add_row(day, str(n))
    _console.print(table)


def _status_json(status: PlanStatus) -> dict[str, Any]:
    data = asdict(status)
    data["trend"] = [{"half_month_ending": day, "complaints": n} for day, n in status.trend]
    return data


def _known_plan(plan_id: str, exc: RPCError) -> Refused | None:
    """A Refused naming the plan when Temporal says its workflow is unknown or closed."""
    if exc.status == RPCStatusCode.NOT_FOUND:
        what = "closed" if "completed" in exc.message.lower() else "no such plan"
        return Refused(f"plan {plan_id}: {what} (workflow {plan_workflow_id(plan_id)}: "
                       f"{exc.message})")
    return None


AsJson = typer.Option(False, "--json", help="JSON on stdout instead of text.")


@app.command("start")
def start_cmd(plan_file: Path = typer.Argument(..., help="The plan as YAML."),
              as_json: bool = AsJson) -> None:
    """Start a plan for a chosen monthly topic.

    Exit 4 when the file is missing or wrong (every problem is named), 1 when a plan
    with its plan_id was started before (a plan id is used once).
    """
    from temporalio.exceptions import WorkflowAlreadyStartedError

    if not plan_file.is_file():
        raise BadFile(f"{plan_file}: no such file")
    settings = get_settings()
    try:
        plan = load_plan(plan_file, load_config(settings.config_dir))
    except PlanFileError as exc:
        raise BadFile(str(exc)) from None
    try:
        workflow_id = asyncio.run(start_plan(settings, plan))
    except WorkflowAlreadyStartedError:
        raise Refused(f"plan {plan.plan_id} was started before (a plan id is used once); "
                      f"see hotline plan show {plan.plan_id}") from None
    if as_json:
        print_json({"plan_id": plan.plan_id, "workflow_id": workflow_id,
                    "tasks": len(plan.tasks)})
        return
    _console.print(f"started {workflow_id}: {len(plan.tasks)} tasks; units report them "
                   "with PlanTaskReported on hotline.unit-replies (key: plan_id)")


@app.command("show")
def show_cmd(plan_id: str, as_json: bool = AsJson) -> None:
    """Completion rate and half-monthly topic volume (the final report once closed)."""
    try:
        status = asyncio.run(plan_status(get_settings(), plan_id))
    except RPCError as exc:
        raise _known_plan(plan_id, exc) or exc from None
    _print_status(status, as_json)


@app.command("close")
def close_cmd(plan_id: str, as_json: bool = AsJson) -> None:
    """Close a plan early (a supervisor decision); it ends with its report."""
    async def _close() -> PlanStatus:
        settings = get_settings()
        handle = (await connect_temporal(settings)).get_workflow_handle(
            plan_workflow_id(plan_id), result_type=PlanStatus)
        await handle.signal(GovernancePlanWorkflow.close)
        try:
            result: PlanStatus = await asyncio.wait_for(handle.result(),
                                                        CLOSE_TIMEOUT.total_seconds())
        except TimeoutError:
            raise NoAnswer(f"plan {plan_id}: asked to close, no report within "
                           f"{CLOSE_TIMEOUT.seconds} s (is a worker running?); it closes "
                           "once one is") from None
        return result

    try:
        status = asyncio.run(_close())
    except RPCError as exc:
        raise _known_plan(plan_id, exc) or exc from None
    _print_status(status, as_json)
