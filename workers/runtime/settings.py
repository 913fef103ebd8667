"""One typed settings object for every hotline process, read from ``HOTLINE_*`` variables.

The README's configuration table lists the same names and defaults; keep them in step.
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import Literal

from pydantic import Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict

from workflows.model import WORKFLOW_VERSION

REPO_ROOT = Path(__file__).resolve().parents[2]


class Settings(BaseSettings):
    """Process configuration. Every field maps to ``HOTLINE_<FIELD>`` in upper case."""

    model_config = SettingsConfigDict(env_prefix="HOTLINE_", extra="ignore")

    # Where the local stack keeps data, logs and pid files (git-ignored).
    state_dir: Path = REPO_ROOT / ".state"
    # Download caches (Maven repository, Kafka jars); git-ignored, survives `stack down`.
    cache_dir: Path = REPO_ROOT / ".cache"
    # Rules, unit registry and other reference data validated at start-up.
    config_dir: Path = REPO_ROOT / "deploy" / "config"

    # Temporal
    temporal_address: str = "127.0.0.1:7233"
    temporal_namespace: str = "hotline"
    temporal_ui_port: int = 8233
    task_queue: str = "hotline-cases"
    # The workflow version the bridges and the hotspot scan start new cases on
    # (``Filing.workflow_version``; ``workflows.model.WORKFLOW_VERSION`` is the newest the
    # workers know). 0: every case asks ``workflow.patched`` as before; set 0 while any
    # worker of a release before 2026-12-07 may still run, then the newest.
    case_workflow_version: int = Field(default=WORKFLOW_VERSION, ge=0, le=WORKFLOW_VERSION)
    # Sticky cache size; STYLE.md: smaller than the cases in flight halves throughput.
    # Each cached case costs the worker ~340 KB sandboxed, about a third of that
    # unsandboxed (measured, docs/performance.md: Memory per open case).
    max_cached_workflows: int = 2000
    # Off by default: a sandbox instance per new or replayed case made escalation
    # notices up to 10x later under load and doubled the worker's RSS
    # (docs/performance.md). The guard against non-deterministic workflow code stays in CI: the
    # workflow and replay tests run sandboxed, and ruff bans clocks, randomness and
    # threads in workflows/ (pyproject.toml, TID251). True runs the worker sandboxed.
    workflow_sandbox: bool = False

    # Kafka
    kafka_bootstrap: str = "127.0.0.1:19092"
    kafka_controller_port: int = 19093
    kafka_heap: str = "768m"
    kafka_version: str = "4.1.1"
    topic_prefix: str = ""
    consumer_group_prefix: str = "hotline"

    # Schema Registry (docs/schema-registry.md). Unset: the single-object encoding only.
    # Set (Confluent's API, or Apicurio's ``.../apis/ccompat/v7``): the bridges and the
    # projector also read the Confluent wire format (``00`` + schema id) and register
    # ``schemas/`` at start (subject = the record's full name, RecordNameStrategy).
    schema_registry_url: str | None = None
    # True (with the URL): the worker's publisher writes the Confluent wire format on
    # hotline.dispatches, .lifecycle and .governance instead of the single-object one.
    # The DLQ stays single-object: it is ours, read by `hotline dlq`.
    schema_registry_write: bool = False
    schema_registry_username: str | None = None  # HTTP basic auth (e.g. an API key)
    schema_registry_password: SecretStr | None = None
    schema_registry_ca_file: Path | None = None  # PEM CA of the registry's certificate

    # PostgreSQL: an external server when set, else the embedded one on postgres_port.
    database_url: str | None = None
    postgres_port: int = 55432
    postgres_db: str = "hotline"

    # Processes
    worker_metrics_port: int = 9464
    bridge_metrics_port: int = 9465
    # The Temporal SDK's own metrics (workflow task latency, slots, polls) on their own
    # /metrics, served by the SDK's Rust core in the worker process; 0 = off.
    temporal_sdk_metrics_port: int = 9466
    # Seconds between refreshes of the ledger gauges (open and overdue cases); 0 = off.
    ledger_metrics_interval: float = Field(default=30.0, ge=0)
    log_level: str = "INFO"
    # True: bridges apply each partition as its own pipeline (paused while its chunk
    # runs). Off by default: benchmarked clean, but no faster than lockstep for more
    # broker and bridge CPU per case (docs/performance.md).
    bridge_pipelines: bool = False
    # Cases (message keys) of one partition's chunk a bridge applies side by side, each
    # case's messages in order; 1 = one case at a time.
    bridge_keys_in_flight: int = Field(default=16, ge=1)
    # The projector's /metrics, /healthz and /readyz; 0 = off.
    projector_metrics_port: int = 9469
    # On SIGTERM: how long the worker lets running activities finish, and the bridges and
    # projector their batch in hand, before giving up on them (uncommitted, so redelivered).
    # Below the pods' terminationGracePeriodSeconds (60), with room to close the clients.
    graceful_shutdown_s: float = Field(default=40.0, ge=0)
    # The worker's build id, stamped by Temporal on every workflow task of every history
    # (~25 per case): empty = the first 8 hex digits of the SDK's hash of the loaded code
    # (its 32 cost 0.5 KB a case, issue 30); a release may set its git commit.
    worker_build_id: str = Field(default="", max_length=64)
    # True: the worker, projector and Open311 apply pending ledger migrations at start
    # (local stack, tests). The Kubernetes manifests set false and run `hotline migrate`
    # as a Job; a process then waits (not ready) until no migration is pending.
    migrate_on_start: bool = True

    # Key of the caller-number hash that finds repeat callers; set a secret in production.
    caller_hash_key: str = "hotline-local-development-key"

    # Transport security; workers/runtime/security.py turns these into client options. Locally
    # everything is plaintext on 127.0.0.1. PostgreSQL TLS rides in database_url
    # (``?sslmode=verify-full&sslrootcert=...``).
    kafka_security_protocol: Literal["PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL"] = (
        "PLAINTEXT"
    )
    kafka_ssl_cafile: Path | None = None
    kafka_ssl_certfile: Path | None = None  # client certificate (mutual TLS)
    kafka_ssl_keyfile: Path | None = None
    kafka_ssl_key_password: SecretStr | None = None
    kafka_ssl_check_hostname: bool = True
    kafka_sasl_mechanism: Literal["PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512"] | None = None
    kafka_sasl_username: str | None = None
    kafka_sasl_password: SecretStr | None = None
    # Temporal: TLS when temporal_tls is set or any file is given; mTLS with cert + key.
    temporal_tls: bool = False
    temporal_tls_ca_file: Path | None = None
    temporal_tls_cert_file: Path | None = None
    temporal_tls_key_file: Path | None = None
    temporal_tls_server_name: str | None = None

    # Open311 GeoReport v2 service (`hotline open311`, workers/open311/service.py).
    open311_host: str = "127.0.0.1"
    open311_port: int = 8311
    # Its /metrics, on a port of their own so the public API (behind the ingress) does not
    # expose them and scrapes and probes are not counted by the rate limiter; 0 = off.
    open311_metrics_port: int = 9467
    # The service's public base URL, as discovery announces it; default from host and port.
    open311_base_url: str | None = None
    # API keys of the clients allowed to POST, as JSON ``{"client": "key", ...}`` (a
    # secret in production), and/or a YAML file of ``clients: [{name, key, channel}]``.
    open311_api_keys: dict[str, SecretStr] = {}
    open311_api_keys_file: Path | None = None
    # Peers whose X-Forwarded-For names the client (uvicorn's forwarded_allow_ips): behind
    # an ingress, its pods' addresses or CIDR; otherwise every client shares the proxy's
    # limit. Not "*" where anything but the ingress can reach the service.
    open311_forwarded_allow_ips: str = "127.0.0.1"
    # Requests per client address (POST: per API client too) in any sliding minute, counted
    # in PostgreSQL so every replica shares them (workers/open311/rate_limit.py); 0 = no limit.
    open311_rate_per_minute: int = Field(default=120, ge=0)
    # Largest request body accepted.
    # 256 KiB: room for every field at its longest, percent-encoded.
    open311_max_body_bytes: int = Field(default=262_144, gt=0)

    # The workbench (`hotline workbench`, workers/workbench): web pages for unit staff,
    # dispatchers and supervisors.
    workbench_host: str = "127.0.0.1"
    workbench_port: int = 8312
    # Its /metrics on a port of their own (not behind the ingress); 0 = off.
    workbench_metrics_port: int = 9468
    # The public base URL (photo links in events, redirects); default from host and port.
    workbench_base_url: str | None = None
    # Key that signs session cookies: set a long random secret in production (every replica
    # the same). Unset: a random key per process, so sessions end when it restarts.
    workbench_secret_key: SecretStr | None = None
    # Cookies marked Secure (sent over HTTPS only): on wherever the workbench is served
    # over HTTPS (it also turns on when the base URL starts with https://).
    workbench_secure_cookies: bool = False
    # A session lasts this long after login.
    workbench_session_minutes: int = Field(default=480, gt=0)
    # Login throttling per account and client address: this many failures lock it for
    # workbench_login_lock_minutes.
    workbench_login_max_failures: int = Field(default=5, ge=1)
    workbench_login_lock_minutes: int = Field(default=15, ge=1)
    # Completion photos: stored in this folder and served by the workbench at /photos/.
    workbench_photo_dir: Path = REPO_ROOT / ".state" / "workbench-photos"
    workbench_photo_max_bytes: int = Field(default=5 * 1024 * 1024, gt=0)
    # ... or, when a bucket is named, in an S3 bucket (AWS, or an S3-compatible server at
    # workbench_s3_endpoint_url), keyed by the same random names (docs/workbench.md).
    workbench_s3_bucket: str | None = None
    workbench_s3_endpoint_url: str | None = None
    workbench_s3_region: str | None = None
    # Both or neither; neither: boto3's chain (AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY,
    # a profile, a pod's web identity, an instance role).
    workbench_s3_access_key: SecretStr | None = None
    workbench_s3_secret_key: SecretStr | None = None
    # Set when the bucket (or a CDN before it) serves its objects to anyone: a photo's URL
    # is then this + its key. Unset: the workbench serves /photos/<key> from the bucket.
    workbench_s3_public_base_url: str | None = None
    # Seconds a page waits after an action for the case to apply or refuse it, before it
    # shows "submitted, pending".
    workbench_outcome_wait_s: float = Field(default=6.0, ge=0)

    # Multiplies every rule duration (tiers, ladder, callback windows). 1.0 in production;
    # the demo uses a small factor so a 7-day case takes seconds.
    time_scale: float = Field(default=1.0, gt=0)

    @property
    def dsn(self) -> str:
        """The PostgreSQL connection string in force."""
        if self.database_url:
            return self.database_url
        return f"postgresql://postgres@127.0.0.1:{self.postgres_port}/{self.postgres_db}"

    @property
    def temporal_host(self) -> str:
        return self.temporal_address.rsplit(":", 1)[0]

    @property
    def temporal_port(self) -> int:
        return int(self.temporal_address.rsplit(":", 1)[1])

    @property
    def kafka_port(self) -> int:
        return int(self.kafka_bootstrap.rsplit(":", 1)[1])

    def topic(self, name: str) -> str:
        """Full topic name for a contract topic such as ``hotline.intake``."""
        return f"{self.topic_prefix}{name}"

    @property
    def topic_intake(self) -> str:
        return self.topic("hotline.intake")

    @property
    def topic_unit_replies(self) -> str:
        return self.topic("hotline.unit-replies")

    @property
    def topic_callbacks(self) -> str:
        return self.topic("hotline.callbacks")

    @property
    def topic_dispatches(self) -> str:
        return self.topic("hotline.dispatches")

    @property
    def topic_lifecycle(self) -> str:
        return self.topic("hotline.lifecycle")

    @property
    def topic_governance(self) -> str:
        return self.topic("hotline.governance")

    @property
    def topic_dlq(self) -> str:
        return self.topic("hotline.dlq")


# Contract topics and their partition counts. Inbound topics are keyed by complaint id, so
# partitions bound how many bridge instances can share the intake; 12 divides evenly for
# 1, 2, 3, 4, 6 or 12 instances.
TOPIC_PARTITIONS: dict[str, int] = {
    "hotline.intake": 12,
    "hotline.unit-replies": 12,
    "hotline.callbacks": 6,
    "hotline.dispatches": 12,
    "hotline.lifecycle": 12,
    "hotline.governance": 3,
    "hotline.dlq": 3,
}


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    """The process-wide settings, read once."""
    return Settings()
