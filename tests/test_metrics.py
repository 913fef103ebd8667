"""The metric catalogue: what each lifecycle step counts, activity failures, the ledger
gauges and consumer lag, and that the dashboard and the alert rules only use metrics
that exist.

The counters are process-global (prometheus_client's default registry), so every check
compares a sample before and after.
"""

from __future__ import annotations

import asyncio
import json
import re
import uuid
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import psycopg
import pytest
import yaml
from prometheus_client import REGISTRY
from temporalio import activity, workflow
from temporalio.common import RetryPolicy
from temporalio.exceptions import ApplicationError
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import UnsandboxedWorkflowRunner, Worker

import workers.bridges.main  # noqa: F401  (registers the bridges' metrics)
from activities.dispatch.config import load_config
from activities.metrics import TEMPORAL_SDK_METRICS, observe_step
from workers.runtime.metrics_exporter import ConsumerLagReporter, LedgerGauges
from workers.runtime.settings import REPO_ROOT, Settings
from workflows.model import CaseRow, DispatchRow, LifecycleRecord, StepRecord, Unit

DASHBOARD = REPO_ROOT / "deploy" / "grafana" / "hotline-dashboard.json"
ALERTS = REPO_ROOT / "deploy" / "prometheus" / "alerts.yml"

T0 = datetime(2026, 3, 2, 8, 0, tzinfo=UTC)
STREET = "110101001"  # 东华门街道, a street office (unit kind "street")
DEPARTMENT = "bj-housing"  # 市住房城乡建设委, a municipal department


@pytest.fixture(scope="module")
def units() -> Any:
    return load_config(Settings().config_dir).registry


def value(name: str, **labels: str) -> float:
    return REGISTRY.get_sample_value(name, labels) or 0.0


class Delta:
    """Sample values read before ``observe``; ``of`` gives the change since."""

    def __init__(self, name: str, **labels: str) -> None:
        self.name, self.labels = name, labels
        self.before = value(name, **labels)

    def __call__(self) -> float:
        return value(self.name, **self.labels) - self.before


def step(event_type: str, *, tier: str | None = "T24H", at: datetime | None = None,
         attrs: dict[str, str] | None = None, unit_id: str | None = None,
         dispatch_id: str | None = None, dispatches: list[DispatchRow] | None = None,
         outcome: str = "DISPATCH", overdue: bool = False,
         level: str = "UNIT") -> StepRecord:
    cid = f"c-{uuid.uuid4().hex[:8]}"
    ev = LifecycleRecord(
        event_id=f"{cid}:1", complaint_id=cid, seq=1, at=at or T0 + timedelta(minutes=5),
        event_type=event_type, status="DISPATCHED", tier=tier, district="东城区",
        unit_id=unit_id, dispatch_id=dispatch_id, escalation_level=level, overdue=overdue,
        attributes=dict(attrs or {}),
    )
    case = CaseRow(complaint_id=cid, version=1, status="DISPATCHED", filed_at=T0,
                   channel="PHONE", tier=tier, district="东城区", outcome=outcome)
    return StepRecord(complaint_id=cid, step=f"1-{event_type}", lifecycle=[ev], case=case,
                      dispatches=list(dispatches or []))


def dispatch(unit_id: str, *, issued: datetime, signed: datetime | None = None,
             completed: datetime | None = None, revoked: datetime | None = None,
             dispatch_id: str = "c-d1") -> DispatchRow:
    return DispatchRow(dispatch_id=dispatch_id, complaint_id="c", unit_id=unit_id,
                       role="LEAD", issued_at=issued, sign_by=issued + timedelta(hours=1),
                       due_at=issued + timedelta(days=1), signed_at=signed,
                       completed_at=completed, revoked_at=revoked)


# --- observe_step -------------------------------------------------------------------------


def test_acceptance_counts_intake_by_tier_and_outcome() -> None:
    dispatched = Delta("hotline_cases_accepted_total", tier="T24H", outcome="DISPATCH")
    answered = Delta("hotline_cases_accepted_total", tier="T7D", outcome="ANSWERED_DIRECTLY")
    events = Delta("hotline_case_events_total", event_type="ACCEPTED")
    observe_step(step("ACCEPTED", attrs={"outcome": "DISPATCH"}))
    observe_step(step("ANSWERED_DIRECTLY", tier="T7D", attrs={"outcome": "ANSWERED_DIRECTLY"}))
    assert (dispatched(), answered(), events()) == (1, 1, 1)


def test_the_dispatch_desk_counts_a_case_once_and_how_it_left() -> None:
    review = Delta("hotline_cases_accepted_total", tier="T24H", outcome="REVIEW")
    rejected = Delta("hotline_cases_accepted_total", tier="T24H", outcome="REJECTED")
    decided = Delta("hotline_dispatch_desk_decisions_total", decision="REJECT")
    expired = Delta("hotline_dispatch_desk_decisions_total", decision="EXPIRED")
    observe_step(step("REVIEW_REQUESTED", attrs={"outcome": "REVIEW"}))
    # The decision rides with the outcome it leads to: REJECTED is not a second intake.
    left = step("REVIEW_DECIDED", attrs={"decision": "REJECT"})
    closing = step("REJECTED", outcome="REJECTED")
    observe_step(StepRecord(complaint_id=left.complaint_id, step="2-REJECTED",
                            lifecycle=[*left.lifecycle, *closing.lifecycle], outbound=[],
                            case=closing.case, dispatches=[]))
    observe_step(step("REVIEW_EXPIRED"))
    assert (review(), rejected(), decided(), expired()) == (1, 0, 1, 1)


def test_acceptance_series_exist_before_the_first_case() -> None:
    # A rate over a counter that never moved must be 0, not absent (intake-stalled alert).
    for tier in ("T2H", "T24H", "T7D", "T15D"):
        for outcome in ("DISPATCH", "REJECTED", "MERGED"):
            assert REGISTRY.get_sample_value(
                "hotline_cases_accepted_total", {"tier": tier, "outcome": outcome}) is not None


def test_dispatch_observes_intake_latency_and_counts_units(units: Any) -> None:
    count = Delta("hotline_intake_to_dispatch_seconds_count", tier="T2H")
    total = Delta("hotline_intake_to_dispatch_seconds_sum", tier="T2H")
    under_5m = Delta("hotline_intake_to_dispatch_seconds_bucket", tier="T2H", le="300.0")
    under_1m = Delta("hotline_intake_to_dispatch_seconds_bucket", tier="T2H", le="60.0")
    street = Delta("hotline_dispatches_total", tier="T2H", unit_kind="street",
                   trigger="dispatch")
    dept = Delta("hotline_dispatches_total", tier="T2H", unit_kind="department",
                 trigger="dispatch")
    at = T0 + timedelta(seconds=90)
    observe_step(step("DISPATCHED", tier="T2H", at=at, unit_id=STREET, dispatch_id="d1",
                      dispatches=[dispatch(STREET, issued=at, dispatch_id="d1"),
                                  dispatch(DEPARTMENT, issued=at, dispatch_id="d2")]),
                 units=units)
    assert count() == 1 and total() == pytest.approx(90.0)
    assert (under_1m(), under_5m()) == (0, 1)
    assert (street(), dept()) == (1, 1)


def test_redispatch_counts_only_the_new_dispatch(units: Any) -> None:
    new = Delta("hotline_dispatches_total", tier="T7D", unit_kind="department",
                trigger="redispatch")
    old = Delta("hotline_dispatches_total", tier="T7D", unit_kind="street",
                trigger="redispatch")
    latency = Delta("hotline_intake_to_dispatch_seconds_count", tier="T7D")
    at = T0 + timedelta(hours=3)
    observe_step(step("REDISPATCHED", tier="T7D", at=at, unit_id=DEPARTMENT, dispatches=[
        dispatch(STREET, issued=T0, revoked=at, dispatch_id="d1"),
        dispatch(DEPARTMENT, issued=at, dispatch_id="d2"),
    ]), units=units)
    assert (new(), old(), latency()) == (1, 0, 0)


def test_sign_for_and_completion_latencies(units: Any) -> None:
    signed = Delta("hotline_dispatch_to_sign_seconds_sum", tier="T24H", unit_kind="street")
    done = Delta("hotline_dispatch_to_completion_seconds_sum", tier="T24H",
                 unit_kind="street")
    issued = T0 + timedelta(minutes=1)
    d = dispatch(STREET, issued=issued, signed=issued + timedelta(minutes=20),
                 completed=issued + timedelta(hours=6))
    observe_step(step("SIGNED", unit_id=STREET, dispatch_id=d.dispatch_id, dispatches=[d]),
                 units=units)
    observe_step(step("COMPLETED", unit_id=STREET, dispatch_id=d.dispatch_id,
                      dispatches=[d]), units=units)
    assert signed() == pytest.approx(1200.0)
    assert done() == pytest.approx(6 * 3600.0)


def test_notices_by_type_level_and_tier() -> None:
    warning = Delta("hotline_notices_total", notice_type="WARNING", level="UNIT", tier="T7D")
    overdue = Delta("hotline_notices_total", notice_type="OVERDUE", level="DISTRICT",
                    tier="T7D")
    city = Delta("hotline_notices_total", notice_type="CITY_SUPERVISION", level="CITY",
                 tier="T7D")
    for notice_type, level in (("WARNING", "UNIT"), ("WARNING", "UNIT"),
                               ("OVERDUE", "DISTRICT"), ("CITY_SUPERVISION", "CITY")):
        observe_step(step("NOTICE", tier="T7D", level=level,
                          attrs={"notice_type": notice_type, "level": level}))
    assert (warning(), overdue(), city()) == (2, 1, 1)


def test_returns_extensions_reopens_and_refusals(units: Any) -> None:
    returned = Delta("hotline_returns_total", tier="T15D", unit_kind="street")
    requested = Delta("hotline_extensions_total", tier="T15D", decision="requested")
    granted = Delta("hotline_extensions_total", tier="T15D", decision="granted")
    denied = Delta("hotline_extensions_total", tier="T15D", decision="denied")
    reopened = Delta("hotline_reopens_total", tier="T7D")
    refused = Delta("hotline_replies_refused_total", code="UNIT_NOT_HOLDING")
    observe_step(step("RETURNED", tier="T15D", unit_id=STREET), units=units)
    observe_step(step("EXTENSION_REQUESTED", tier="T15D", attrs={"extra_days": "3"}))
    observe_step(step("EXTENSION_DECIDED", tier="T15D", attrs={"granted": "true"}))
    observe_step(step("EXTENSION_REQUESTED", tier="T15D", attrs={"extra_days": "9"}))
    observe_step(step("EXTENSION_DECIDED", tier="T15D", attrs={"granted": "false"}))
    observe_step(step("REOPENED", tier="T7D", attrs={"reopens": "1", "tier": "T7D"}))
    observe_step(step("REPLY_REFUSED", attrs={"code": "UNIT_NOT_HOLDING"}))
    assert (returned(), requested(), granted(), denied()) == (1, 2, 1, 1)
    assert (reopened(), refused()) == (1, 1)


def test_callback_outcomes() -> None:
    unhappy = Delta("hotline_callbacks_total", tier="T24H", reached="true", resolved="false",
                    satisfaction="UNSATISFIED")
    unreached = Delta("hotline_callbacks_total", tier="T24H", reached="false",
                      resolved="false", satisfaction="none")
    retry = Delta("hotline_callbacks_due_total", tier="T24H", attempt="2")
    observe_step(step("CALLBACK", attrs={"reached": "true", "responded": "true",
                                         "resolved": "false", "satisfaction": "UNSATISFIED"}))
    observe_step(step("CALLBACK", attrs={"reached": "false", "responded": "false",
                                         "resolved": "false", "satisfaction": ""}))
    observe_step(step("CALLBACK_DUE", attrs={"attempt": "2"}))
    assert (unhappy(), unreached(), retry()) == (1, 1, 1)


def test_evaluation_and_closing() -> None:
    evaluated = Delta("hotline_cases_evaluated_total", tier="T7D", responded="true",
                      resolved="true", satisfied="false")
    handled = Delta("hotline_cases_closed_total", tier="T7D", outcome="HANDLED",
                    overdue="true")
    withdrawn = Delta("hotline_cases_closed_total", tier="T7D", outcome="WITHDRAWN",
                      overdue="false")
    rejected = Delta("hotline_cases_closed_total", tier="T7D", outcome="REJECTED",
                     overdue="false")
    duration = Delta("hotline_case_duration_seconds_sum", tier="T7D", outcome="HANDLED")
    observe_step(step("EVALUATED", tier="T7D", attrs={
        "counted": "true", "responded": "true", "resolved": "true", "satisfied": "false"}))
    observe_step(step("CLOSED", tier="T7D", at=T0 + timedelta(days=6), overdue=True,
                      attrs={"counted": "true"}))
    observe_step(step("CLOSED", tier="T7D", attrs={"counted": "false"}))
    observe_step(step("CLOSED", tier="T7D", outcome="REJECTED", attrs={"counted": "false"}))
    assert (evaluated(), handled(), withdrawn(), rejected()) == (1, 1, 1, 1)
    assert duration() == pytest.approx(6 * 86400.0)


def test_unknown_units_and_missing_tier_get_placeholder_labels() -> None:
    returned = Delta("hotline_returns_total", tier="none", unit_kind="unknown")
    observe_step(step("RETURNED", tier=None, unit_id="no-such-unit"))
    assert returned() == 1


def test_observe_step_never_raises() -> None:
    class Broken:
        def get(self, unit_id: str) -> Unit | None:
            raise RuntimeError("registry bug")

    events = Delta("hotline_case_events_total", event_type="RETURNED")
    observe_step(step("RETURNED", unit_id=STREET), units=Broken())  # logged, not raised
    assert events() == 1


# --- activity failures through the worker interceptor ------------------------------------

_calls: dict[str, int] = {}


@activity.defn(name="metrics_test_flaky")
async def flaky(key: str) -> str:
    _calls[key] = _calls.get(key, 0) + 1
    if _calls[key] == 1:
        raise RuntimeError("first attempt fails")
    if key.startswith("fatal"):
        raise ApplicationError("bad input", type="InvalidFiling", non_retryable=True)
    return "ok"


@workflow.defn(name="MetricsTestWorkflow")
class CallsFlaky:
    @workflow.run
    async def run(self, key: str) -> str:
        try:
            return str(await workflow.execute_activity(
                flaky, key, start_to_close_timeout=timedelta(seconds=10),
                retry_policy=RetryPolicy(maximum_attempts=3,
                                         initial_interval=timedelta(milliseconds=10))))
        except Exception:
            return "failed"


async def test_activity_failures_are_counted_by_activity_and_error(
        time_env: WorkflowEnvironment) -> None:
    from activities.metrics import ActivityFailureInterceptor

    runtime_err = Delta("hotline_activity_failures_total", activity="metrics_test_flaky",
                        error="RuntimeError")
    invalid = Delta("hotline_activity_failures_total", activity="metrics_test_flaky",
                    error="InvalidFiling")
    queue = f"metrics-{uuid.uuid4().hex[:8]}"
    async with Worker(time_env.client, task_queue=queue, workflows=[CallsFlaky],
                      activities=[flaky], interceptors=[ActivityFailureInterceptor()],
                      workflow_runner=UnsandboxedWorkflowRunner()):
        ok = await time_env.client.execute_workflow(
            CallsFlaky.run, f"ok-{queue}", id=f"ok-{queue}", task_queue=queue)
        fatal = await time_env.client.execute_workflow(
            CallsFlaky.run, f"fatal-{queue}", id=f"fatal-{queue}", task_queue=queue)
    assert (ok, fatal) == ("ok", "failed")
    # ok: one failed attempt, then success; fatal: one RuntimeError, one non-retryable.
    assert (runtime_err(), invalid()) == (2, 1)


# --- catalogue hygiene --------------------------------------------------------------------

# Labels that would carry a case, a unit or a person (STYLE.md: never in metric labels).
_FORBIDDEN_LABELS = {"complaint_id", "case_id", "workflow_id", "event_id", "unit_id",
                     "dispatch_id", "caller_phone", "caller_name", "phone", "name", "street"}


def test_catalogue_names_carry_units_and_labels_stay_low_cardinality() -> None:
    collectors = {c for c in REGISTRY._collector_to_names
                  if any(n.startswith("hotline_") for n in REGISTRY._collector_to_names[c])}
    families = {f.name: (f, c) for c in collectors for f in c.collect()}
    assert len(families) >= 25
    for name, (family, collector) in families.items():
        if family.type == "histogram":
            assert name.endswith("_seconds"), name
        if family.type == "gauge":
            # What a gauge counts, or the unit of time it measures (calendar coverage).
            assert name.endswith(("_messages", "_cases", "_days")), name
        labels = set(getattr(collector, "_labelnames", ()))
        assert not labels & _FORBIDDEN_LABELS, (name, labels)


def known_series() -> set[str]:
    """Every series name the processes, the SDK and the recording rules can produce."""
    names: set[str] = {"up", "ALERTS", "ALERTS_FOR_STATE"}
    suffixes = {"counter": ("_total",), "histogram": ("_bucket", "_sum", "_count"),
                "gauge": ("",)}
    for family in REGISTRY.collect():
        names.update(family.name + s for s in suffixes.get(family.type, ("",)))
    for name, kind in TEMPORAL_SDK_METRICS.items():  # counters already end in _total
        names.update(name + s for s in (suffixes[kind] if kind == "histogram" else ("",)))
    for group in yaml.safe_load(ALERTS.read_text())["groups"]:
        names.update(r["record"] for r in group["rules"] if "record" in r)
    return names


_KEYWORDS = {"and", "or", "unless", "bool", "offset", "by", "without", "on", "ignoring",
             "group_left", "group_right", "inf", "nan", "Inf", "NaN"}


def metric_names(expr: str) -> set[str]:
    """The metric names a PromQL expression selects (not functions, labels or keywords)."""
    expr = re.sub(r'"(?:[^"\\]|\\.)*"', '""', expr)  # strings
    expr = re.sub(r"\{[^}]*\}", "", expr)  # label matchers
    expr = re.sub(r"\[[^\]]*\]", "", expr)  # ranges, subqueries
    expr = re.sub(r"\b(by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)", " ", expr)
    names = set()
    for m in re.finditer(r"(?<![\w$.])([A-Za-z_:][\w:]*)(\s*\()?", expr):
        token, call = m.group(1), m.group(2)
        if not call and token not in _KEYWORDS:
            names.add(token)
    return names


def test_metric_names_are_extracted_from_promql() -> None:
    assert metric_names(
        'sum by (le, tier) (rate(hotline_x_seconds_bucket{tier=~"$tier"}[$__rate_interval]))'
        ' / on (tier) group_left sum(up{job="a"}) or vector(0) > bool 0.5'
    ) == {"hotline_x_seconds_bucket", "up"}


def dashboard_panels() -> Iterator[dict[str, Any]]:
    def walk(panels: list[dict[str, Any]]) -> Iterator[dict[str, Any]]:
        for p in panels:
            yield p
            yield from walk(p.get("panels", []))
    yield from walk(json.loads(DASHBOARD.read_text())["panels"])


def dashboard_expressions() -> list[tuple[str, str]]:
    return [(p["title"], t["expr"]) for p in dashboard_panels() for t in p.get("targets", [])]


def test_dashboard_is_valid_and_every_panel_queries_known_metrics() -> None:
    dashboard = json.loads(DASHBOARD.read_text())
    assert dashboard["uid"] and dashboard["title"] and dashboard["schemaVersion"] >= 36
    variables = {v["name"] for v in dashboard["templating"]["list"]}
    assert {"datasource", "tier"} <= variables
    panels = list(dashboard_panels())
    ids = [p["id"] for p in panels]
    assert len(ids) == len(set(ids)), "panel ids must be unique"
    known = known_series()
    for p in panels:
        grid = p["gridPos"]
        assert grid["x"] + grid["w"] <= 24, p["title"]
        if p["type"] == "row":
            continue
        assert p["targets"], f"panel {p['title']!r} has no query"
        assert p["datasource"]["uid"] == "${datasource}", p["title"]
        for t in p["targets"]:
            unknown = metric_names(t["expr"]) - known
            assert not unknown, f"panel {p['title']!r} queries unknown metrics {unknown}"
    titles = " ".join(p["title"] for p in panels).lower()
    for topic in ("intake", "overdue", "escalations", "lag", "dead letters", "activity",
                  "workflow task"):
        assert topic in titles, f"no panel about {topic}"


def test_alert_rules_use_known_metrics() -> None:
    known = known_series()
    rules = [r for g in yaml.safe_load(ALERTS.read_text())["groups"] for r in g["rules"]]
    alerts = {r["alert"] for r in rules if "alert" in r}
    assert {"HotlineIntakeStalled", "HotlineConsumerLagGrowing", "HotlineDLQGrowing",
            "HotlineOverdueRatioHigh", "HotlineWorkerDown"} <= alerts
    for rule in rules:
        unknown = metric_names(rule["expr"]) - known
        assert not unknown, f"{rule.get('alert') or rule.get('record')}: unknown {unknown}"


# --- the ledger gauges and consumer lag on the real stack ----------------------------------


@pytest.fixture(scope="module")
def ledger_dsn() -> Iterator[str]:
    from workers.devstack.stack import ensure_stack
    from workers.runtime.migrate import apply_migrations, ensure_database

    settings = Settings()
    ensure_stack(settings)
    name = f"test_metrics_{uuid.uuid4().hex[:10]}"
    ensure_database(settings, name)
    dsn = f"postgresql://postgres@127.0.0.1:{settings.postgres_port}/{name}"
    apply_migrations(dsn)
    yield dsn
    admin = f"postgresql://postgres@127.0.0.1:{settings.postgres_port}/postgres"
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def _insert_cases(dsn: str, rows: list[tuple[str, str, str | None, str | None, int]]) -> None:
    """(status, tier, district, complaint id suffix, hours until due) rows."""
    with psycopg.connect(dsn, autocommit=True) as conn:
        for status, tier, district, suffix, due_in_hours in rows:
            conn.execute(
                """INSERT INTO cases (complaint_id, version, status, channel, tier, district,
                       filed_at, due_at)
                   VALUES (%s, 1, %s, 'PHONE', %s, %s, now() - interval '1 day',
                           now() + make_interval(hours => %s))""",
                (f"m-{suffix}", status, tier, district, due_in_hours),
            )


@pytest.mark.stack
async def test_ledger_gauges_count_open_and_overdue_cases(ledger_dsn: str) -> None:
    from psycopg_pool import AsyncConnectionPool

    _insert_cases(ledger_dsn, [
        ("DISPATCHED", "T24H", "东城区", "a", -2),   # overdue
        ("SIGNED", "T24H", "东城区", "b", -1),       # overdue
        ("IN_PROGRESS", "T24H", "西城区", "c", -3),  # overdue
        ("IN_PROGRESS", "T24H", "西城区", "d", 5),
        ("COMPLETED", "T24H", "西城区", "e", -5),    # completed: not "in handling"
        ("CLOSED", "T24H", "西城区", "f", -5),
        ("DISPATCHED", "T7D", None, "g", 48),
    ])
    pool = AsyncConnectionPool(ledger_dsn, min_size=1, max_size=2, open=False)
    await pool.open(wait=True, timeout=30)
    try:
        gauges = LedgerGauges(pool)
        await gauges.refresh()
        assert value("hotline_open_cases", status="IN_PROGRESS", tier="T24H") == 2
        assert value("hotline_open_cases", status="COMPLETED", tier="T24H") == 1
        assert REGISTRY.get_sample_value(
            "hotline_open_cases", {"status": "CLOSED", "tier": "T24H"}) is None
        assert value("hotline_open_overdue_cases", tier="T24H", district="东城区") == 2
        assert value("hotline_open_overdue_cases", tier="T24H", district="西城区") == 1
        assert REGISTRY.get_sample_value(
            "hotline_open_overdue_cases", {"tier": "T7D", "district": "none"}) is None
        # Every status/tier pair exists from the first refresh, 0 where no case is.
        assert REGISTRY.get_sample_value(
            "hotline_open_cases", {"status": "REOPENED", "tier": "T2H"}) == 0

        with psycopg.connect(ledger_dsn, autocommit=True) as conn:
            conn.execute("UPDATE cases SET status = 'COMPLETED' WHERE complaint_id IN "
                         "('m-a', 'm-b')")
        gauges.start(0.05)
        await asyncio.sleep(0.5)
        await gauges.stop()
        # A district whose overdue cases were all completed reads 0, not its old value.
        assert REGISTRY.get_sample_value(
            "hotline_open_overdue_cases", {"tier": "T24H", "district": "东城区"}) == 0
        assert value("hotline_open_cases", status="COMPLETED", tier="T24H") == 3
    finally:
        await pool.close()


@pytest.mark.stack
async def test_ledger_gauges_count_a_failed_refresh() -> None:
    from psycopg_pool import AsyncConnectionPool

    failures = Delta("hotline_ledger_metrics_refresh_failures_total")
    # A database that does not exist: every refresh fails, the loop goes on.
    settings = Settings()
    pool = AsyncConnectionPool(
        f"postgresql://postgres@127.0.0.1:{settings.postgres_port}/no_such_db_{uuid.uuid4().hex[:6]}",
        min_size=0, max_size=1, open=False, timeout=1)
    await pool.open(wait=False)
    try:
        gauges = LedgerGauges(pool).start(0.05)
        await asyncio.sleep(2.5)
        await gauges.stop()
    finally:
        await pool.close()
    assert failures() >= 1


@pytest.mark.stack
def test_consumer_lag_is_end_offset_minus_position() -> None:
    from kafka import KafkaAdminClient, KafkaConsumer, KafkaProducer
    from kafka.admin import NewTopic

    from workers.devstack.stack import ensure_stack

    settings = Settings()
    ensure_stack(settings)
    topic = f"lagtest-{uuid.uuid4().hex[:8]}"
    admin = KafkaAdminClient(bootstrap_servers=settings.kafka_bootstrap)
    try:
        admin.create_topics([NewTopic(topic, num_partitions=2, replication_factor=1)])
    finally:
        admin.close()
    producer = KafkaProducer(bootstrap_servers=settings.kafka_bootstrap, acks="all")
    for i in range(13):
        producer.send(topic, value=b"x", partition=0 if i < 10 else 1)
    producer.flush()
    producer.close()

    consumer = KafkaConsumer(topic, bootstrap_servers=settings.kafka_bootstrap,
                             group_id=f"{topic}-g", enable_auto_commit=False,
                             auto_offset_reset="earliest", max_poll_records=4)
    reporter = ConsumerLagReporter("lag.test", min_interval=0)
    lag: Callable[[int], float | None] = lambda p: REGISTRY.get_sample_value(  # noqa: E731
        "hotline_bridge_consumer_lag_messages", {"topic": "lag.test", "partition": str(p)})
    try:
        consumed = 0
        for _ in range(20):  # until assigned and the first batch is in
            consumed += sum(len(b) for b in consumer.poll(timeout_ms=500).values())
            if consumed:
                break
        assert 0 < consumed <= 4
        reporter.report(consumer)
        assert (lag(0) or 0) + (lag(1) or 0) == 13 - consumed
        while consumed < 13:
            consumed += sum(len(b) for b in consumer.poll(timeout_ms=500).values())
        reporter.report(consumer)
        assert (lag(0), lag(1)) == (0, 0)
        # Partitions this member no longer holds are not reported (rebalance).
        consumer.unsubscribe()
        reporter.report(consumer)
        assert (lag(0), lag(1)) == (None, None)
    finally:
        consumer.close()
        admin = KafkaAdminClient(bootstrap_servers=settings.kafka_bootstrap)
        try:
            admin.delete_topics([topic])
        finally:
            admin.close()


def test_dashboard_file_is_in_the_repository() -> None:
    assert Path(DASHBOARD).is_file() and Path(ALERTS).is_file()
