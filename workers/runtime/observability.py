"""Logging and metrics plumbing shared by the hotline processes (bridges, worker).

Logs are one JSON object per line on stdout (structlog, also for records from
kafka-python and temporalio through the standard library). Metrics are served by
``prometheus_client``'s WSGI app from a daemon thread, beside the process's
``/healthz`` and ``/readyz`` (:mod:`workers.runtime.health`) on the same port.
"""

from __future__ import annotations

import json
import logging
import re
import socket
import sys
import threading
from collections.abc import Callable, Iterable, MutableMapping
from dataclasses import dataclass
from functools import cache
from socketserver import ThreadingMixIn
from typing import Any, TextIO
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server

import structlog
from prometheus_client import make_wsgi_app
from temporalio.runtime import (
    LogForwardingConfig,
    LoggingConfig,
    PrometheusConfig,
    Runtime,
    TelemetryConfig,
    TelemetryFilter,
)

from workers.runtime.health import Answer, Health
from workers.runtime.settings import Settings

# Personal data never reaches a log line (STYLE.md): these keys are dropped outright ...
PERSONAL_KEYS = frozenset({"caller_phone", "caller_name"})
# ... and phone-number-like digit runs are masked in free-text fields, which may quote an
# error message that quotes a field value.
_FREE_TEXT_KEYS = ("event", "error", "detail", "exception")
_PHONE_LIKE = re.compile(r"(?<!\d)\+?\d[\d -]{6,}\d(?!\d)")

_HANDLER_NAME = "hotline-json"


def redact_personal_data(
    _logger: Any, _method: str, event_dict: MutableMapping[str, Any]
) -> MutableMapping[str, Any]:
    """structlog processor: drop personal-data keys, mask phone-like digits in free text."""
    for key in PERSONAL_KEYS & event_dict.keys():
        del event_dict[key]
    for key in _FREE_TEXT_KEYS:
        value = event_dict.get(key)
        if isinstance(value, str):
            event_dict[key] = _PHONE_LIKE.sub("***", value)
    return event_dict


def configure_logging(settings: Settings, *, stream: TextIO | None = None) -> None:
    """Send structlog and standard-library logging to one JSON-lines handler.

    Idempotent: calling it again replaces the handler it installed before.

    Args:
        settings: Process settings; ``log_level`` sets the root level.
        stream: Where lines go; standard output by default.
    """
    level = logging.getLevelNamesMapping().get(settings.log_level.upper(), logging.INFO)
    shared: list[Any] = [
        structlog.contextvars.merge_contextvars,
        structlog.stdlib.add_log_level,
        structlog.stdlib.add_logger_name,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
    ]
    structlog.configure(
        processors=[
            *shared,
            structlog.stdlib.ProcessorFormatter.wrap_for_formatter,
        ],
        logger_factory=structlog.stdlib.LoggerFactory(),
        wrapper_class=structlog.stdlib.BoundLogger,
        cache_logger_on_first_use=True,
    )
    formatter = structlog.stdlib.ProcessorFormatter(
        foreign_pre_chain=shared,
        processors=[
            structlog.stdlib.ProcessorFormatter.remove_processors_meta,
            structlog.processors.format_exc_info,
            redact_personal_data,
            structlog.processors.JSONRenderer(ensure_ascii=False),
        ],
    )
    # StreamHandler flushes after every record, so a parent process reading a pipe sees
    # "ready" lines at once.
    handler = logging.StreamHandler(stream or sys.stdout)
    handler.set_name(_HANDLER_NAME)
    handler.setFormatter(formatter)
    root = logging.getLogger()
    for old in [h for h in root.handlers if h.get_name() == _HANDLER_NAME]:
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(level)
    # kafka-python logs every connection and rebalance step at INFO.
    logging.getLogger("kafka").setLevel(max(level, logging.WARNING))


# Cached per argument set: asking again for the same metrics port must
# return the runtime already bound to it, never build a second one that cannot bind.
@cache
def temporal_runtime(sdk_metrics_port: int = 0, sdk_metrics_addr: str = "0.0.0.0") -> Runtime:
    """A Temporal runtime whose Core (Rust) logs go through ``logging``, hence JSON.

    Without it Core writes its own coloured lines to stderr (e.g. gRPC retries while the
    server is away). Pass it to ``Client.connect(..., runtime=...)``; one per process.

    Args:
        sdk_metrics_port: When not 0, the SDK's own metrics (workflow task latency, task
            slots, polls, requests) are served on ``sdk_metrics_addr:port/metrics`` by
            Core. Names follow Prometheus conventions: counters end in ``_total``,
            durations are seconds ending in ``_seconds``.
        sdk_metrics_addr: Bind address of that endpoint.
    """
    metrics = None
    if sdk_metrics_port:
        metrics = PrometheusConfig(
            bind_address=f"{sdk_metrics_addr}:{sdk_metrics_port}",
            counters_total_suffix=True,
            unit_suffix=True,
            durations_as_seconds=True,
        )
    return Runtime(
        telemetry=TelemetryConfig(
            logging=LoggingConfig(
                filter=TelemetryFilter(core_level="WARN", other_level="ERROR"),
                forwarding=LogForwardingConfig(logger=logging.getLogger("temporalio.core")),
            ),
            metrics=metrics,
        )
    )


class _ThreadingServer(ThreadingMixIn, WSGIServer):
    # Fire-and-forget request threads: a slow scrape never holds the process at exit.
    daemon_threads = True


class _IPv6Server(_ThreadingServer):
    address_family = socket.AF_INET6


class _SilentHandler(WSGIRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:
        """Probes and scrapes every few seconds are not worth a log line each."""


_StartResponse = Callable[..., Any]


def _json(start_response: _StartResponse, answer: Answer) -> Iterable[bytes]:
    body = json.dumps(answer.body, ensure_ascii=False).encode()
    reason = "OK" if answer.status == 200 else "Service Unavailable"
    start_response(f"{answer.status} {reason}", [("Content-Type", "application/json"),
                                                 ("Content-Length", str(len(body))),
                                                 ("Cache-Control", "no-store")])
    return [body]


def _app(health: Health | None) -> Callable[[dict[str, Any], _StartResponse], Iterable[bytes]]:
    metrics = make_wsgi_app()

    def app(environ: dict[str, Any], start_response: _StartResponse) -> Iterable[bytes]:
        path = environ.get("PATH_INFO", "")
        if health is not None and path == "/healthz":
            return _json(start_response, health.liveness())
        if health is not None and path == "/readyz":
            return _json(start_response, health.readiness_from_thread())
        result: Iterable[bytes] = metrics(environ, start_response)
        return result

    return app


@dataclass
class MetricsServer:
    """A running ``/metrics`` endpoint; ``close()`` stops it."""

    port: int
    _server: WSGIServer
    _thread: threading.Thread

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)


def start_metrics_server(port: int, addr: str = "0.0.0.0", *,
                         health: Health | None = None) -> MetricsServer | None:
    """Serve the default Prometheus registry on ``addr:port`` from a daemon thread.

    Args:
        port: TCP port; 0 means metrics are not served (tests, several processes on
            one host).
        addr: Bind address; the wildcard so a Prometheus on another host can scrape.
        health: When given, ``/healthz`` and ``/readyz`` are answered from it on the
            same port (every other path serves the metrics).

    Returns:
        The running server, or ``None`` when ``port`` is 0.
    """
    if port == 0:
        return None
    server_class = _IPv6Server if ":" in addr else _ThreadingServer
    server = make_server(addr, port, _app(health), server_class, handler_class=_SilentHandler)
    thread = threading.Thread(target=server.serve_forever, name="metrics-server", daemon=True)
    thread.start()
    return MetricsServer(port=port, _server=server, _thread=thread)
