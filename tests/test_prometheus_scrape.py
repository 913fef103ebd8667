"""A real Prometheus scrapes the running bridges, the workbench and the Temporal SDK, and
alerts fire.

Debian's ``prometheus`` binary runs in a temporary folder on 127.0.0.1 with one-second
scrape and evaluation intervals. It scrapes:

- ``hotline-bridges``: the bridges running in this process (real Kafka and Temporal),
  their ``/metrics`` on a free port (DLQ counter, consumer lag per partition);
- ``hotline-worker-sdk``: the Temporal SDK's own endpoint of a client in this process
  (``temporal_runtime(port)``, as ``hotline worker`` does);
- ``hotline-workbench``: ``hotline workbench`` run as its own process, as it is deployed,
  its ``/metrics`` on ``HOTLINE_WORKBENCH_METRICS_PORT`` (a free port) apart from its pages;
  one page is asked for first, so its response counter has a sample;
- ``hotline-worker``: a free port nobody serves, i.e. a worker that is down.

The rules are ``HotlineDLQGrowing`` and ``HotlineWorkerDown`` from
``deploy/prometheus/alerts.yml``, expressions unchanged, their ``for`` cut to one second.
Malformed bytes pushed to the intake topic go to the DLQ; the real DLQ alert must fire,
and so must the worker-down alert.
"""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.parse
import urllib.request
import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path
from typing import Any, TypeVar

import pytest
import pytest_asyncio
import yaml
from kafka import KafkaProducer
from temporalio.api.workflowservice.v1 import GetSystemInfoRequest
from temporalio.client import Client

from activities.metrics import TEMPORAL_SDK_METRICS
from workers.bridges.main import run_bridges
from workers.devstack.stack import ensure_stack, ensure_topics
from workers.runtime.observability import start_metrics_server, temporal_runtime
from workers.runtime.settings import REPO_ROOT, Settings

pytestmark = pytest.mark.stack

ALERTS = REPO_ROOT / "deploy" / "prometheus" / "alerts.yml"
RULES_UNDER_TEST = ("HotlineDLQGrowing", "HotlineWorkerDown")
DLQ_THRESHOLD = 20  # HotlineDLQGrowing: more than 20 in 10 minutes for one reason

_T = TypeVar("_T")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def prometheus_binary() -> str:
    path = shutil.which("prometheus")
    if path:
        return path
    message = ("prometheus not found: install Debian's prometheus package "
               "(apt-get install -y prometheus; `make test` does it)")
    if os.environ.get("CI"):
        pytest.fail(message)
    pytest.skip(message)


class Prometheus:
    """A Prometheus server in ``folder``, driven through its HTTP API."""

    def __init__(self, folder: Path, config: dict[str, Any], rules: dict[str, Any]) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        (folder / "rules.yml").write_text(yaml.safe_dump(rules, allow_unicode=True))
        (folder / "prometheus.yml").write_text(yaml.safe_dump(config))
        self.log_path = folder / "prometheus.log"
        self._log = self.log_path.open("wb")
        self.proc = subprocess.Popen(
            [prometheus_binary(), f"--config.file={folder / 'prometheus.yml'}",
             f"--storage.tsdb.path={folder / 'data'}",
             f"--web.listen-address=127.0.0.1:{self.port}", "--log.level=warn"],
            cwd=folder, stdout=self._log, stderr=subprocess.STDOUT,
        )

    def get(self, path: str, **params: str) -> Any:
        url = f"{self.url}{path}"
        if params:
            url += "?" + urllib.parse.urlencode(params)
        with urllib.request.urlopen(url, timeout=5) as response:
            body = response.read()
        return json.loads(body)["data"] if path.startswith("/api/") else body

    def query(self, expr: str) -> list[dict[str, Any]]:
        result: list[dict[str, Any]] = self.get("/api/v1/query", query=expr)["result"]
        return result

    def targets(self) -> dict[str, str]:
        """job → health (up, down, unknown) of the active targets."""
        return {t["labels"]["job"]: t["health"]
                for t in self.get("/api/v1/targets")["activeTargets"]}

    def firing(self) -> list[dict[str, str]]:
        return [a["labels"] for a in self.get("/api/v1/alerts")["alerts"]
                if a["state"] == "firing"]

    def log_tail(self) -> str:
        self._log.flush()
        return self.log_path.read_text(errors="replace")[-3000:]

    def stop(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(timeout=5)
        self._log.close()


async def eventually(check: Callable[[], _T | None], what: str, prom: Prometheus,
                     timeout: float = 60.0) -> _T:
    """Poll ``check`` (in a thread) until it returns something truthy."""
    deadline = time.monotonic() + timeout
    last: Exception | None = None
    while time.monotonic() < deadline:
        if prom.proc.poll() is not None:
            raise AssertionError(f"prometheus exited ({prom.proc.returncode}):\n"
                                 f"{prom.log_tail()}")
        try:
            result = await asyncio.to_thread(check)
            if result:
                return result
        except OSError as exc:  # not listening yet
            last = exc
        await asyncio.sleep(0.5)
    raise AssertionError(f"{what} not seen within {timeout:.0f}s (last error: {last});\n"
                         f"prometheus log:\n{prom.log_tail()}")


def rules_under_test() -> dict[str, Any]:
    """The production rules named in RULES_UNDER_TEST, with ``for`` cut to a second."""
    rules = [r for g in yaml.safe_load(ALERTS.read_text())["groups"] for r in g["rules"]
             if r.get("alert") in RULES_UNDER_TEST]
    assert {r["alert"] for r in rules} == set(RULES_UNDER_TEST)
    return {"groups": [{"name": "under-test", "rules": [{**r, "for": "1s"} for r in rules]}]}


@pytest_asyncio.fixture(scope="module")
async def bridges() -> AsyncIterator[tuple[Settings, int]]:
    """The bridges on fresh topics, their /metrics on a free 127.0.0.1 port."""
    run = uuid.uuid4().hex[:8]
    settings = Settings(topic_prefix=f"prom{run}.", consumer_group_prefix=f"prom-{run}",
                        task_queue=f"prom-{run}-unpolled", bridge_metrics_port=0)
    await asyncio.to_thread(ensure_stack, Settings())
    await asyncio.to_thread(ensure_topics, settings)
    port = free_port()
    server = start_metrics_server(port, addr="127.0.0.1")
    stop, ready = asyncio.Event(), asyncio.Event()
    task = asyncio.create_task(run_bridges(settings, stop, ready=ready))
    try:
        await asyncio.wait_for(ready.wait(), 60)
        yield settings, port
    finally:
        stop.set()
        await asyncio.wait_for(task, 60)
        if server is not None:
            server.close()


@pytest.fixture(scope="module")
def workbench(tmp_path_factory: pytest.TempPathFactory) -> Iterator[int]:
    """``hotline workbench`` in a process of its own; yields its metrics port once one page
    (the sign-in page) has been served."""
    ensure_stack(Settings())  # the pages wait for the ledger's schema
    folder = tmp_path_factory.mktemp("workbench")
    pages, metrics = free_port(), free_port()
    env = {**os.environ, "HOTLINE_WORKBENCH_HOST": "127.0.0.1",
           "HOTLINE_WORKBENCH_PORT": str(pages), "HOTLINE_WORKBENCH_METRICS_PORT": str(metrics),
           "HOTLINE_STATE_DIR": str(folder)}
    log_path = folder / "workbench.log"
    with log_path.open("wb") as log:
        proc = subprocess.Popen([str(Path(sys.executable).parent / "hotline"), "workbench"],
                                env=env, stdout=log, stderr=subprocess.STDOUT)
        try:
            deadline = time.monotonic() + 60
            while True:
                assert proc.poll() is None, log_path.read_text(errors="replace")[-3000:]
                assert time.monotonic() < deadline, "the workbench did not serve /login"
                try:
                    with urllib.request.urlopen(f"http://127.0.0.1:{pages}/login",
                                                timeout=5) as response:
                        assert response.status == 200
                    break
                except OSError:  # not listening yet
                    time.sleep(0.25)
            yield metrics
        finally:
            proc.terminate()
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(timeout=5)


@pytest.fixture()
def folder(tmp_path: Path) -> Iterator[Path]:
    yield tmp_path


def _produce(settings: Settings, values: list[bytes]) -> None:
    producer = KafkaProducer(bootstrap_servers=settings.kafka_bootstrap, acks="all")
    try:
        for v in values:
            producer.send(settings.topic_intake, key=b"prom-junk", value=v)
        producer.flush(30)
    finally:
        producer.close()


@pytest.mark.timeout(240)
async def test_prometheus_scrapes_processes_and_alerts_fire(
        bridges: tuple[Settings, int], workbench: int, folder: Path) -> None:
    settings, bridge_port = bridges
    # The Temporal SDK's endpoint, as `hotline worker` serves it; one request to fill it.
    sdk_port = free_port()
    client = await Client.connect(settings.temporal_address,
                                  namespace=settings.temporal_namespace,
                                  runtime=temporal_runtime(sdk_port, "127.0.0.1"))
    await client.workflow_service.get_system_info(GetSystemInfoRequest())
    dead_port = free_port()  # a worker that is down: nothing listens here

    config = {
        "global": {"scrape_interval": "1s", "evaluation_interval": "1s",
                   "scrape_timeout": "1s"},
        "rule_files": ["rules.yml"],
        "scrape_configs": [
            {"job_name": "hotline-bridges",
             "static_configs": [{"targets": [f"127.0.0.1:{bridge_port}"]}]},
            {"job_name": "hotline-worker-sdk",
             "static_configs": [{"targets": [f"127.0.0.1:{sdk_port}"]}]},
            {"job_name": "hotline-workbench",
             "static_configs": [{"targets": [f"127.0.0.1:{workbench}"]}]},
            {"job_name": "hotline-worker",
             "static_configs": [{"targets": [f"127.0.0.1:{dead_port}"]}]},
        ],
    }
    prom = Prometheus(folder, config, rules_under_test())
    try:
        await eventually(lambda: prom.get("/-/ready"), "prometheus ready", prom)

        def scraped() -> dict[str, str] | None:
            health = prom.targets()
            return health if len(health) == 4 and "unknown" not in health.values() else None

        health = await eventually(scraped, "every target scraped once", prom)
        assert health == {"hotline-bridges": "up", "hotline-worker-sdk": "up",
                          "hotline-workbench": "up", "hotline-worker": "down"}

        # The workbench's own series, from its process: the sign-in page it served.
        served = await eventually(
            lambda: prom.query('hotline_workbench_responses_total{job="hotline-workbench",'
                               'route="/login",code="200"}'), "the workbench's responses", prom)
        assert float(served[0]["value"][1]) >= 1

        # The SDK's metrics arrive under the names the catalogue and dashboard expect.
        sdk = await eventually(lambda: prom.query('{job="hotline-worker-sdk"}'),
                               "SDK series", prom)
        names = {s["metric"]["__name__"] for s in sdk} - {
            "up", "scrape_duration_seconds", "scrape_samples_scraped",
            "scrape_samples_post_metric_relabeling", "scrape_series_added"}
        assert "temporal_request_total" in names
        known = set(TEMPORAL_SDK_METRICS) | {
            n + s for n, k in TEMPORAL_SDK_METRICS.items() if k == "histogram"
            for s in ("_bucket", "_sum", "_count")}
        assert names <= known, f"SDK series not in the catalogue: {names - known}"

        # Make sure the MALFORMED series exists in Prometheus before the burst, so the
        # burst shows up in increase() (a counter's first sample is its baseline).
        series = 'hotline_dlq_messages_total{job="hotline-bridges",reason="MALFORMED"}'
        if not prom.query(series):
            await asyncio.to_thread(_produce, settings, [b"not an avro event"])
        before = await eventually(lambda: prom.query(series), "the DLQ counter", prom)
        baseline = float(before[0]["value"][1])
        burst = DLQ_THRESHOLD + 5
        await asyncio.to_thread(
            _produce, settings, [f"junk {i}".encode() for i in range(burst)])
        await eventually(
            lambda: (r := prom.query(series)) and float(r[0]["value"][1]) >= baseline + burst,
            "the burst scraped", prom)

        def fired() -> list[dict[str, str]] | None:
            alerts = prom.firing()
            dlq = [a for a in alerts
                   if a["alertname"] == "HotlineDLQGrowing" and a.get("reason") == "MALFORMED"]
            down = [a for a in alerts if a["alertname"] == "HotlineWorkerDown"
                    and a.get("instance") == f"127.0.0.1:{dead_port}"]
            return dlq + down if dlq and down else None

        alerts = await eventually(fired, "HotlineDLQGrowing and HotlineWorkerDown firing",
                                  prom)
        assert {a["severity"] for a in alerts} == {"warning", "critical"}

        # The bridges report their consumer lag per partition; the burst is consumed.
        def caught_up() -> list[dict[str, Any]] | None:
            lag = prom.query(
                'hotline_bridge_consumer_lag_messages{job="hotline-bridges",'
                'topic="hotline.intake"}')
            done = len(lag) == 12 and all(float(x["value"][1]) == 0 for x in lag)
            return lag if done else None

        lag = await eventually(caught_up, "intake lag 0 on its 12 partitions", prom)
        assert {x["metric"]["partition"] for x in lag} == {str(p) for p in range(12)}
    finally:
        prom.stop()
