"""The stack's Kafka: an Apache Kafka 4.x broker in KRaft combined mode, and its topics.

The broker's jars are fetched once from Maven Central (``deploy/local/pom.xml``) into the
download cache; the broker then gets the contract topics of
:data:`workers.runtime.settings.TOPIC_PARTITIONS`.
"""

from __future__ import annotations

import base64
import logging
import shutil
import time
import uuid
from pathlib import Path
from typing import Any

from workers.devstack.processes import (
    file_lock,
    live_pid,
    port_open,
    process_alive,
    run,
    spawn,
    terminate,
)
from workers.devstack.servers import (
    KAFKA,
    LOCAL_DIR,
    ComponentStatus,
    StackError,
    StackPaths,
    await_ports_released,
    checked_status,
    java_binary,
    maven_binary,
    require_ports_free,
    wait_healthy,
)
from workers.runtime.settings import REPO_ROOT, TOPIC_PARTITIONS, Settings

log = logging.getLogger(__name__)

KAFKA_POM = LOCAL_DIR / "pom.xml"
KAFKA_LOG4J = LOCAL_DIR / "log4j2.properties"

# A KRaft broker's controlled shutdown takes 5-10 s; leave room before SIGKILL.
KAFKA_STOP_TIMEOUT_S = 45.0
MAVEN_TIMEOUT_S = 900


def kafka_ports(settings: Settings) -> dict[int, str]:
    """Every port the broker binds, with the setting that moves it."""
    return {
        settings.kafka_port: "HOTLINE_KAFKA_BOOTSTRAP",
        settings.kafka_controller_port: "HOTLINE_KAFKA_CONTROLLER_PORT",
    }


def _kafka_jars_complete(paths: StackPaths) -> bool:
    """True when the marker written after a finished download lists jars all present."""
    try:
        names = paths.kafka_jars_marker.read_text().split()
    except OSError:
        return False
    return bool(names) and all((paths.kafka_jars / name).is_file() for name in names)


def ensure_kafka_jars(settings: Settings) -> Path:
    """The folder of the broker's jars, downloaded with Maven on first use."""
    paths = StackPaths(settings)
    if _kafka_jars_complete(paths):
        return paths.kafka_jars
    mvn = maven_binary("the Kafka jars")
    paths.settings.cache_dir.mkdir(parents=True, exist_ok=True)
    # The cache can be shared by several state dirs (worktrees, CI jobs): one download.
    with file_lock(paths.settings.cache_dir / f"kafka-{settings.kafka_version}.lock"):
        if _kafka_jars_complete(paths):
            return paths.kafka_jars
        paths.kafka_jars_marker.unlink(missing_ok=True)
        partial = paths.kafka_dist / "jars.partial"
        shutil.rmtree(partial, ignore_errors=True)
        shutil.rmtree(paths.kafka_jars, ignore_errors=True)
        partial.mkdir(parents=True)
        started = time.monotonic()
        run(
            [
                mvn,
                "-q",
                "-B",
                "-Dstyle.color=never",
                f"-Dmaven.repo.local={paths.maven_repo}",
                f"-Dkafka.version={settings.kafka_version}",
                "-f",
                str(KAFKA_POM),
                "dependency:copy-dependencies",
                f"-DoutputDirectory={partial}",
            ],
            what=f"Maven download of Kafka {settings.kafka_version} jars",
            timeout=MAVEN_TIMEOUT_S,
            cwd=REPO_ROOT,
        )
        jars = sorted(p.name for p in partial.glob("*.jar"))
        if not any(name.startswith(f"kafka_2.13-{settings.kafka_version}") for name in jars):
            raise StackError(
                f"Maven finished but {partial} holds no kafka_2.13-{settings.kafka_version} jar"
            )
        partial.rename(paths.kafka_jars)
        paths.kafka_jars_marker.write_text("\n".join(jars) + "\n")
        log.info(
            "fetched %d Kafka jars in %.1f s into %s",
            len(jars),
            time.monotonic() - started,
            paths.kafka_jars,
        )
    return paths.kafka_jars


def _kafka_server_properties(settings: Settings, paths: StackPaths) -> str:
    port, controller = settings.kafka_port, settings.kafka_controller_port
    values = {
        "process.roles": "broker,controller",
        "node.id": "1",
        # A dynamic quorum of one (`format --standalone`); controller.quorum.voters would
        # conflict with --standalone.
        "controller.quorum.bootstrap.servers": f"127.0.0.1:{controller}",
        "listeners": f"PLAINTEXT://127.0.0.1:{port},CONTROLLER://127.0.0.1:{controller}",
        "advertised.listeners": f"PLAINTEXT://127.0.0.1:{port}",
        "controller.listener.names": "CONTROLLER",
        "inter.broker.listener.name": "PLAINTEXT",
        "listener.security.protocol.map": "PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT",
        "log.dirs": str(paths.kafka_data),
        "offsets.topic.replication.factor": "1",
        "share.coordinator.state.topic.replication.factor": "1",
        "share.coordinator.state.topic.min.isr": "1",
        "transaction.state.log.replication.factor": "1",
        "transaction.state.log.min.isr": "1",
        # Consumers in tests join one at a time; no 3 s wait for more members.
        "group.initial.rebalance.delay.ms": "0",
        # Topics are part of the contract: created by ensure_topics with their partitions.
        "auto.create.topics.enable": "false",
        "num.partitions": "1",
    }
    header = ("# Generated by `hotline stack up` (workers/devstack/kafka_server.py); "
              "edits are overwritten.\n")
    return header + "".join(f"{key}={value}\n" for key, value in values.items())


def kafka_jvm(paths: StackPaths, jars: Path, *options: str) -> list[str]:
    """The ``java`` command line up to the main class: options, log4j, classpath."""
    return [
        java_binary("Kafka"),
        *options,
        f"-Dlog4j2.configurationFile={KAFKA_LOG4J}",
        f"-Dkafka.logs.dir={paths.kafka_logs}",
        "-Djava.awt.headless=true",
        "-cp",
        f"{jars}/*",
    ]


def kafka_cluster_id() -> str:
    """A new cluster id for ``kafka-storage format``."""
    # Kafka's Uuid text form: 16 random bytes, URL-safe base64 without padding. Like
    # Kafka's own Uuid.randomUuid, never one starting with "-": the storage tool would
    # read it as an option (1 start in 64 failed with "expected one argument").
    while True:
        text = base64.urlsafe_b64encode(uuid.uuid4().bytes).rstrip(b"=").decode()
        if not text.startswith("-"):
            return text


def _kafka_format(settings: Settings, paths: StackPaths, jars: Path) -> None:
    if (paths.kafka_data / "meta.properties").exists():
        return
    # A data folder without meta.properties is a format that never finished.
    shutil.rmtree(paths.kafka_data, ignore_errors=True)
    run(
        [
            *kafka_jvm(paths, jars),
            "kafka.tools.StorageTool",
            "format",
            "-t",
            kafka_cluster_id(),
            "-c",
            str(paths.kafka_properties),
            "--standalone",
        ],
        what="Kafka storage format",
        timeout=120,
        cwd=paths.kafka_dir,
    )


def _admin(settings: Settings, bootstrap_timeout_ms: int = 5000) -> Any:
    from kafka import KafkaAdminClient

    from workers.runtime.security import kafka_security_config

    return KafkaAdminClient(
        bootstrap_servers=settings.kafka_bootstrap,
        client_id="hotline-stack",
        bootstrap_timeout_ms=bootstrap_timeout_ms,
        request_timeout_ms=15000,
        **kafka_security_config(settings),
    )


def ensure_topics(settings: Settings) -> list[str]:
    """Create the contract topics that do not exist yet.

    Topics are ``settings.topic(name)`` for every name in
    :data:`workers.runtime.settings.TOPIC_PARTITIONS`, with its partition count and replication
    factor 1. Existing topics are left alone (a different partition count is logged, not
    changed: that would move keys between partitions).

    Args:
        settings: Names the broker and the topic prefix.

    Returns:
        The full names of the topics this call created, in contract order; empty when all
        existed already.

    Raises:
        StackError: The broker refused to create a topic for another reason than that it
            exists already.
    """
    from kafka.errors import TopicAlreadyExistsError

    wanted = {settings.topic(name): parts for name, parts in TOPIC_PARTITIONS.items()}
    admin = _admin(settings)
    try:
        existing = set(admin.list_topics())
        missing = {name: parts for name, parts in wanted.items() if name not in existing}
        created: list[str] = []
        if missing:
            result = admin.create_topics(
                {
                    name: {"num_partitions": parts, "replication_factor": 1}
                    for name, parts in missing.items()
                },
                raise_errors=False,
            )
            failures = []
            for topic in result["topics"]:
                code = topic["error_code"]
                if code == 0:
                    created.append(topic["name"])
                elif code != TopicAlreadyExistsError.errno:  # created concurrently: fine
                    failures.append(
                        f"{topic['name']}: error {code} {topic.get('error_message') or ''}"
                    )
            if failures:
                raise StackError("Kafka refused to create topics: " + "; ".join(failures))
            # The broker acknowledges before every partition has a leader.
            admin.wait_for_topics(created, timeout_ms=30000)
        described = admin.describe_topics(list(wanted))
        for topic in described:
            expected = wanted.get(topic["name"])
            actual = len(topic.get("partitions") or [])
            if expected is not None and actual != expected:
                log.warning(
                    "topic %s has %d partitions, the contract says %d",
                    topic["name"],
                    actual,
                    expected,
                )
    finally:
        admin.close()
    if created:
        log.info("created topics %s", created)
    return [name for name in wanted if name in created]


def _kafka_check(settings: Settings, topics: bool) -> str:
    if not port_open(settings.kafka_port):
        raise ConnectionError(f"nothing listens on {settings.kafka_bootstrap}")
    admin = _admin(settings, bootstrap_timeout_ms=3000)
    try:
        existing = set(admin.list_topics())
    finally:
        admin.close()
    if not topics:
        return "broker answers"
    wanted = [settings.topic(name) for name in TOPIC_PARTITIONS]
    missing = [name for name in wanted if name not in existing]
    if missing:
        raise StackError(f"contract topics missing: {', '.join(missing)} (run `hotline stack up`)")
    return f"KRaft {settings.kafka_version}, {len(wanted)} contract topics"


def ensure_kafka(settings: Settings) -> ComponentStatus:
    """Start the broker (or reuse a healthy one), wait until it answers, create its topics."""
    paths = StackPaths(settings)
    for folder in (paths.kafka_dir, paths.kafka_logs):
        folder.mkdir(parents=True, exist_ok=True)
    marker = str(paths.kafka_properties)
    pid = live_pid(paths.kafka_pid, marker)
    spawned = pid is None
    if pid is None:
        require_ports_free(KAFKA, kafka_ports(settings))
        jars = ensure_kafka_jars(settings)
        paths.kafka_properties.write_text(_kafka_server_properties(settings, paths))
        _kafka_format(settings, paths, jars)
        cmd = [
            *kafka_jvm(
                paths,
                jars,
                "-Xms256m",
                f"-Xmx{settings.kafka_heap}",
                "-XX:+UseG1GC",
                "-XX:MaxGCPauseMillis=20",
                "-XX:+ExitOnOutOfMemoryError",
            ),
            "kafka.Kafka",
            str(paths.kafka_properties),
        ]
        pid = spawn(cmd, log_path=paths.kafka_console, pid_file=paths.kafka_pid,
                    cwd=paths.kafka_dir).pid
    running = pid
    wait_healthy(
        lambda: _kafka_check(settings, topics=False),
        alive=lambda: process_alive(running, marker),
        spawned=spawned,
        what=f"Kafka broker (pid {pid})",
        logs=(paths.kafka_console, paths.kafka_log),
    )
    ensure_topics(settings)
    detail = _kafka_check(settings, topics=True)
    return ComponentStatus(KAFKA, settings.kafka_bootstrap, pid, True, detail, paths.kafka_log)


def kafka_status(settings: Settings) -> ComponentStatus:
    """The broker's status (and its contract topics), without starting or changing anything."""
    paths = StackPaths(settings)
    return checked_status(
        KAFKA, settings.kafka_bootstrap, live_pid(paths.kafka_pid, str(paths.kafka_properties)),
        settings.kafka_port, paths.kafka_log, lambda: _kafka_check(settings, topics=True),
    )


def stop_kafka(settings: Settings) -> str:
    """Stop the broker (controlled shutdown, SIGKILL after a timeout); its data stays."""
    paths = StackPaths(settings)
    marker = str(paths.kafka_properties)
    pid = live_pid(paths.kafka_pid, marker)
    if pid is None:
        return "not running"
    outcome = terminate(pid, marker, KAFKA_STOP_TIMEOUT_S)
    paths.kafka_pid.unlink(missing_ok=True)
    await_ports_released(KAFKA, kafka_ports(settings))
    return outcome
