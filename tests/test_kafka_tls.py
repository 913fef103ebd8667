"""Transport security: Kafka SSL / SASL_SSL and Temporal mutual TLS, from Settings.

The unit tests check what ``workers.runtime.security`` builds from each setting. The stack tests
start a second, private Kafka broker (never the shared one of ``hotline stack up``) from
the cached jars, with certificates made here by ``openssl``:

- an ``SSL`` listener that requires client certificates (mutual TLS),
- a ``SASL_SSL`` listener with SCRAM-SHA-512 (what production uses with Strimzi),
- a plaintext controller listener on loopback only;

and show that the contract topics are created, a message round-trips through the
``kafka_io`` factories, the bridges consume and dead-letter through the SSL listener, the
DLQ command reads it, and that a plaintext client, a client without a certificate and a
wrong password are refused. Temporal's dev server has no TLS, so a TLS-terminating proxy
in front of it (client certificates required) shows the worker's ``Client.connect``
options doing mutual TLS. Everything started here is stopped here.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import socket
import ssl
import subprocess
import sys
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import pytest_asyncio
from kafka import KafkaConsumer, KafkaProducer
from kafka.errors import KafkaError
from temporalio.api.workflowservice.v1 import GetSystemInfoRequest
from temporalio.client import Client
from temporalio.service import TLSConfig

from schemas import codec
from workers.bridges.main import run_bridges
from workers.devstack import stack
from workers.runtime.kafka_io import make_consumer, make_producer
from workers.runtime.security import (
    TransportSecurityError,
    describe_transport,
    kafka_security_config,
    postgres_sslmode,
    temporal_connect_options,
    temporal_tls,
)
from workers.runtime.settings import Settings

SCRAM_USER = "hotline"
SCRAM_PASSWORD = "hotline-scram-secret"


# --- certificates -------------------------------------------------------------------------


@dataclass(frozen=True)
class Pki:
    ca: Path
    server_cert: Path
    server_key: Path
    server_pem: Path  # key + certificate, Kafka's PEM keystore
    client_cert: Path
    client_key: Path


def _openssl(*args: str, cwd: Path) -> None:
    subprocess.run(["openssl", *args], cwd=cwd, check=True, capture_output=True, timeout=60)


def make_pki(folder: Path) -> Pki:
    """A CA, a server certificate for 127.0.0.1/localhost and a client certificate."""
    folder.mkdir(parents=True, exist_ok=True)
    ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes"]
    _openssl("req", "-x509", *ec, "-keyout", "ca.key", "-out", "ca.crt", "-days", "2",
             "-subj", "/CN=hotline-test-ca",
             "-addext", "basicConstraints=critical,CA:TRUE",
             "-addext", "keyUsage=critical,keyCertSign,cRLSign", cwd=folder)
    for name, cn, ext in (
        ("server", "localhost",
         "subjectAltName=DNS:localhost,IP:127.0.0.1,DNS:temporal-frontend\n"
         "extendedKeyUsage=serverAuth,clientAuth\n"),
        ("client", "hotline-worker", "extendedKeyUsage=clientAuth\n"),
    ):
        (folder / f"{name}.ext").write_text(ext)
        _openssl("req", *ec, "-keyout", f"{name}.key", "-out", f"{name}.csr",
                 "-subj", f"/CN={cn}", cwd=folder)
        _openssl("x509", "-req", "-in", f"{name}.csr", "-CA", "ca.crt", "-CAkey", "ca.key",
                 "-CAcreateserial", "-out", f"{name}.crt", "-days", "2",
                 "-extfile", f"{name}.ext", cwd=folder)
    pem = folder / "server.pem"
    pem.write_text((folder / "server.key").read_text() + (folder / "server.crt").read_text())
    return Pki(folder / "ca.crt", folder / "server.crt", folder / "server.key", pem,
               folder / "client.crt", folder / "client.key")


def _free_ports(n: int) -> list[int]:
    sockets = []
    try:
        for _ in range(n):
            s = socket.socket()
            s.bind(("127.0.0.1", 0))
            sockets.append(s)
        return [s.getsockname()[1] for s in sockets]
    finally:
        for s in sockets:
            s.close()


# --- unit tests of workers.runtime.security -------------------------------------------


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Pki:
    return make_pki(tmp_path_factory.mktemp("pki"))


def test_plaintext_is_the_local_default() -> None:
    s = Settings()
    assert kafka_security_config(s) == {"security_protocol": "PLAINTEXT"}
    assert temporal_tls(s) is False
    assert describe_transport(s)["kafka"] == "PLAINTEXT"


def test_kafka_ssl_and_sasl_options(pki: Pki) -> None:
    mtls = Settings(kafka_security_protocol="SSL", kafka_ssl_cafile=pki.ca,
                    kafka_ssl_certfile=pki.client_cert, kafka_ssl_keyfile=pki.client_key)
    assert kafka_security_config(mtls) == {
        "security_protocol": "SSL", "ssl_cafile": str(pki.ca),
        "ssl_certfile": str(pki.client_cert), "ssl_keyfile": str(pki.client_key),
        "ssl_check_hostname": True}
    scram = Settings(kafka_security_protocol="SASL_SSL", kafka_ssl_cafile=pki.ca,
                     kafka_sasl_mechanism="SCRAM-SHA-512", kafka_sasl_username="u",
                     kafka_sasl_password="p")  # type: ignore[arg-type]
    config = kafka_security_config(scram)
    assert config["sasl_mechanism"] == "SCRAM-SHA-512"
    assert (config["sasl_plain_username"], config["sasl_plain_password"]) == ("u", "p")
    # The password never shows in a log line or the settings' repr.
    assert "p'" not in repr(scram.kafka_sasl_password)
    assert "p" not in describe_transport(scram)["kafka"].replace("SASL_SSL", "")


@pytest.mark.parametrize("fields, message", [
    ({"kafka_security_protocol": "SSL", "kafka_ssl_certfile": "CERT"}, "go together"),
    ({"kafka_security_protocol": "PLAINTEXT", "kafka_ssl_cafile": "CA"}, "use SSL"),
    ({"kafka_security_protocol": "SASL_SSL"}, "MECHANISM is required"),
    ({"kafka_security_protocol": "SASL_SSL", "kafka_sasl_mechanism": "PLAIN"},
     "USERNAME and HOTLINE_KAFKA_SASL_PASSWORD"),
    ({"kafka_sasl_mechanism": "PLAIN"}, "use SASL_PLAINTEXT or SASL_SSL"),
    ({"kafka_security_protocol": "SSL", "kafka_ssl_cafile": "/nonexistent/ca.pem"},
     "no such file"),
])
def test_inconsistent_kafka_settings_are_refused(pki: Pki, fields: dict[str, Any],
                                                 message: str) -> None:
    files = {"CERT": pki.client_cert, "CA": pki.ca}
    settings = Settings(**{k: files.get(v, v) for k, v in fields.items()})
    with pytest.raises(TransportSecurityError, match=message):
        kafka_security_config(settings)


def test_temporal_tls_options(pki: Pki) -> None:
    assert temporal_tls(Settings(temporal_tls=True)) is True
    config = temporal_tls(Settings(temporal_tls_ca_file=pki.ca,
                                   temporal_tls_cert_file=pki.client_cert,
                                   temporal_tls_key_file=pki.client_key,
                                   temporal_tls_server_name="temporal-frontend"))
    assert isinstance(config, TLSConfig)
    assert config.server_root_ca_cert == pki.ca.read_bytes()
    assert config.client_cert == pki.client_cert.read_bytes()
    assert config.client_private_key == pki.client_key.read_bytes()
    assert config.domain == "temporal-frontend"
    with pytest.raises(TransportSecurityError, match="go together"):
        temporal_tls(Settings(temporal_tls_cert_file=pki.client_cert))
    assert describe_transport(Settings(temporal_tls_ca_file=pki.ca,
                                       temporal_tls_cert_file=pki.client_cert,
                                       temporal_tls_key_file=pki.client_key))[
        "temporal"] == "mTLS"


def test_postgres_tls_rides_in_the_dsn() -> None:
    assert postgres_sslmode("postgresql://u@db/hotline?sslmode=verify-full"
                            "&sslrootcert=/etc/ca.crt") == "verify-full"
    assert postgres_sslmode("host=db dbname=hotline sslmode=require") == "require"
    assert postgres_sslmode("postgresql://u@db/hotline") == "prefer"


# --- a private broker with SSL listeners ----------------------------------------------------


@dataclass(frozen=True)
class Broker:
    ssl_port: int
    sasl_port: int
    pki: Pki
    pid: int

    def settings(self, **fields: Any) -> Settings:
        """Settings for the mutual-TLS listener, fresh topic prefix and groups."""
        run = uuid.uuid4().hex[:8]
        base: dict[str, Any] = {
            "kafka_bootstrap": f"127.0.0.1:{self.ssl_port}",
            "kafka_security_protocol": "SSL", "kafka_ssl_cafile": self.pki.ca,
            "kafka_ssl_certfile": self.pki.client_cert,
            "kafka_ssl_keyfile": self.pki.client_key,
            "topic_prefix": f"tls{run}.", "consumer_group_prefix": f"tls-{run}",
            "task_queue": f"tls-{run}-unpolled", "bridge_metrics_port": 0,
        }
        base.update(fields)
        return Settings(**base)


def _broker_properties(folder: Path, pki: Pki, ports: list[int]) -> str:
    ssl_port, sasl_port, controller = ports
    values = {
        "process.roles": "broker,controller",
        "node.id": "1",
        "controller.quorum.bootstrap.servers": f"127.0.0.1:{controller}",
        "listeners": (f"SSL://127.0.0.1:{ssl_port},SASL_SSL://127.0.0.1:{sasl_port},"
                      f"CONTROLLER://127.0.0.1:{controller}"),
        "advertised.listeners": f"SSL://127.0.0.1:{ssl_port},SASL_SSL://127.0.0.1:{sasl_port}",
        "controller.listener.names": "CONTROLLER",
        "inter.broker.listener.name": "SSL",
        "listener.security.protocol.map": "SSL:SSL,SASL_SSL:SASL_SSL,CONTROLLER:PLAINTEXT",
        # PEM key store and trust store (Kafka >= 2.7): no JKS conversion needed.
        "ssl.keystore.type": "PEM",
        "ssl.keystore.location": str(pki.server_pem),
        "ssl.truststore.type": "PEM",
        "ssl.truststore.location": str(pki.ca),
        # Mutual TLS on the SSL listener; SCRAM clients authenticate by password instead.
        "ssl.client.auth": "required",
        "listener.name.sasl_ssl.ssl.client.auth": "none",
        "sasl.enabled.mechanisms": "SCRAM-SHA-512",
        "listener.name.sasl_ssl.scram-sha-512.sasl.jaas.config":
            "org.apache.kafka.common.security.scram.ScramLoginModule required;",
        "log.dirs": str(folder / "data"),
        "offsets.topic.replication.factor": "1",
        "share.coordinator.state.topic.replication.factor": "1",
        "share.coordinator.state.topic.min.isr": "1",
        "transaction.state.log.replication.factor": "1",
        "transaction.state.log.min.isr": "1",
        "group.initial.rebalance.delay.ms": "0",
        "auto.create.topics.enable": "false",
    }
    return "".join(f"{k}={v}\n" for k, v in values.items())


@contextlib.contextmanager
def private_broker(folder: Path) -> Iterator[Broker]:
    """A KRaft broker of its own on free ports, stopped (and checked gone) at the end."""
    pki = make_pki(folder / "pki")
    ports = _free_ports(3)
    local = Settings(state_dir=folder / "state")  # the jars come from the shared cache
    paths = stack._Paths(local)
    for d in (paths.kafka_dir, paths.kafka_logs):
        d.mkdir(parents=True, exist_ok=True)
    paths.kafka_properties.write_text(_broker_properties(paths.kafka_dir, pki, ports))
    jars = stack._ensure_kafka_jars(local)
    stack._run(
        [*stack._kafka_jvm(paths, jars), "kafka.tools.StorageTool", "format",
         "-t", stack._kafka_cluster_id(), "-c", str(paths.kafka_properties), "--standalone",
         "--add-scram", f"SCRAM-SHA-512=[name={SCRAM_USER},password={SCRAM_PASSWORD}]"],
        what="format the TLS test broker", timeout=120, cwd=paths.kafka_dir,
    )
    cmd = [*stack._kafka_jvm(paths, jars, "-Xms128m", "-Xmx384m", "-XX:+UseG1GC"),
           "kafka.Kafka", str(paths.kafka_properties)]
    with (paths.kafka_dir / "kafka.out").open("ab") as out:
        proc = subprocess.Popen(cmd, cwd=paths.kafka_dir, stdin=subprocess.DEVNULL,
                                stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        deadline = time.monotonic() + 90
        while not all(stack._port_open(p) for p in ports[:2]):
            if proc.poll() is not None or time.monotonic() > deadline:
                raise AssertionError(
                    "TLS test broker did not start:\n"
                    + stack._tail(paths.kafka_dir / "kafka.out", paths.kafka_log))
            time.sleep(0.25)
        yield Broker(ports[0], ports[1], pki, proc.pid)
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=45)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=15)


@pytest.fixture(scope="module")
def broker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Broker]:
    # The shared stack's Temporal is used by the bridges test; its Kafka is not touched.
    stack.ensure_stack(Settings())
    with private_broker(tmp_path_factory.mktemp("tls-broker")) as running:
        yield running
    assert not stack._process_alive(running.pid, "kafka.Kafka"), "broker left running"


def _round_trip(settings: Settings, topic: str) -> bytes:
    value = f"hello over {settings.kafka_security_protocol} {uuid.uuid4().hex}".encode()
    producer = make_producer(settings, client_id="tls-test")
    try:
        producer.send(topic, key=b"k", value=value).get(timeout=30)
    finally:
        producer.close(timeout=10)
    consumer = make_consumer(settings, [topic], f"{settings.consumer_group_prefix}-rt")
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            for batch in consumer.poll(timeout_ms=500).values():
                for message in batch:
                    if message.value == value:
                        return bytes(message.value)
    finally:
        consumer.close(autocommit=False)
    raise AssertionError(f"{value!r} did not come back on {topic}")


@pytest.mark.stack
def test_mutual_tls_round_trip_through_the_kafka_io_factories(broker: Broker) -> None:
    settings = broker.settings()
    created = stack.ensure_topics(settings)  # the admin client goes through SSL too
    assert settings.topic_intake in created
    assert _round_trip(settings, settings.topic_intake).startswith(b"hello over SSL")


@pytest.mark.stack
def test_scram_over_tls_round_trip_and_a_wrong_password_is_refused(broker: Broker) -> None:
    settings = broker.settings(
        kafka_bootstrap=f"127.0.0.1:{broker.sasl_port}", kafka_security_protocol="SASL_SSL",
        kafka_ssl_certfile=None, kafka_ssl_keyfile=None,
        kafka_sasl_mechanism="SCRAM-SHA-512", kafka_sasl_username=SCRAM_USER,
        kafka_sasl_password=SCRAM_PASSWORD)
    stack.ensure_topics(settings)
    assert _round_trip(settings, settings.topic_dlq).startswith(b"hello over SASL_SSL")
    wrong = broker.settings(
        kafka_bootstrap=f"127.0.0.1:{broker.sasl_port}", kafka_security_protocol="SASL_SSL",
        kafka_ssl_certfile=None, kafka_ssl_keyfile=None,
        kafka_sasl_mechanism="SCRAM-SHA-512", kafka_sasl_username=SCRAM_USER,
        kafka_sasl_password="not-the-password")
    with pytest.raises(KafkaError):
        make_producer(wrong, bootstrap_timeout_ms=5000).send(
            settings.topic_dlq, value=b"x").get(timeout=10)


@pytest.mark.stack
def test_plaintext_and_certificate_less_clients_are_refused(broker: Broker) -> None:
    bootstrap = f"127.0.0.1:{broker.ssl_port}"
    with pytest.raises(KafkaError):
        KafkaProducer(bootstrap_servers=bootstrap, bootstrap_timeout_ms=5000)
    # TLS, trusting the CA, but without a client certificate: the handshake fails.
    no_cert = broker.settings(kafka_ssl_certfile=None, kafka_ssl_keyfile=None)
    with pytest.raises(KafkaError):
        make_producer(no_cert, bootstrap_timeout_ms=5000)
    # And a client that does not trust the broker's CA refuses the broker.
    with pytest.raises(KafkaError):
        KafkaConsumer(bootstrap_servers=bootstrap, security_protocol="SSL",
                      ssl_certfile=str(broker.pki.client_cert),
                      ssl_keyfile=str(broker.pki.client_key), bootstrap_timeout_ms=5000)


@pytest_asyncio.fixture
async def bridges_over_tls(broker: Broker) -> AsyncIterator[Settings]:
    settings = broker.settings()
    await asyncio.to_thread(stack.ensure_topics, settings)
    stop, ready = asyncio.Event(), asyncio.Event()
    task = asyncio.create_task(run_bridges(settings, stop, ready=ready))
    try:
        await asyncio.wait_for(ready.wait(), 90)
        yield settings
    finally:
        stop.set()
        await asyncio.wait_for(task, 60)


@pytest.mark.stack
async def test_the_bridges_consume_and_dead_letter_through_tls(
    bridges_over_tls: Settings,
) -> None:
    s = bridges_over_tls
    ghost = f"TLS-{uuid.uuid4().hex[:8]}"
    producer = make_producer(s, client_id="tls-unit-system")
    await asyncio.to_thread(lambda: producer.send(
        s.topic_unit_replies, key=ghost.encode(),
        value=codec.encode("DispatchSigned", {
            "event_id": f"e-{ghost}", "complaint_id": ghost, "dispatch_id": f"{ghost}-d1",
            "unit_id": "110105026", "at": datetime.now(UTC)}),
        headers=codec.headers_for("DispatchSigned")).get(timeout=30))
    producer.close()

    # The DLQ command reads the dead letter through the same TLS settings, from the env.
    env = {**os.environ,
           "HOTLINE_KAFKA_BOOTSTRAP": s.kafka_bootstrap,
           "HOTLINE_KAFKA_SECURITY_PROTOCOL": "SSL",
           "HOTLINE_KAFKA_SSL_CAFILE": str(s.kafka_ssl_cafile),
           "HOTLINE_KAFKA_SSL_CERTFILE": str(s.kafka_ssl_certfile),
           "HOTLINE_KAFKA_SSL_KEYFILE": str(s.kafka_ssl_keyfile),
           "HOTLINE_TOPIC_PREFIX": s.topic_prefix}
    deadline = time.monotonic() + 60
    while True:
        proc = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "workers.cli.dlq", "list", "--key", ghost, "--json",
            env=env, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
        out, err = await proc.communicate()
        assert proc.returncode == 0, err.decode()
        letters = json.loads(out)
        if letters:
            break
        assert time.monotonic() < deadline, "the bridges never dead-lettered the reply"
        await asyncio.sleep(1)
    [letter] = letters
    assert letter["reason"] == "UNKNOWN_CASE"
    assert letter["consumer_group"] == f"{s.consumer_group_prefix}-unit-replies"


# --- Temporal mutual TLS ------------------------------------------------------------------


async def _pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    try:
        while data := await reader.read(65536):
            writer.write(data)
            await writer.drain()
    except (ConnectionError, OSError):
        pass
    finally:
        with contextlib.suppress(Exception):
            writer.close()


@contextlib.asynccontextmanager
async def tls_proxy(pki: Pki, upstream_port: int) -> AsyncIterator[int]:
    """A TLS terminator requiring client certificates, forwarding to plaintext gRPC."""
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH, cafile=str(pki.ca))
    context.load_cert_chain(str(pki.server_cert), str(pki.server_key))
    context.verify_mode = ssl.CERT_REQUIRED
    context.set_alpn_protocols(["h2"])

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            up_reader, up_writer = await asyncio.open_connection("127.0.0.1", upstream_port)
        except OSError:
            writer.close()
            return
        await asyncio.gather(_pipe(reader, up_writer), _pipe(up_reader, writer))

    server = await asyncio.start_server(handle, "127.0.0.1", 0, ssl=context)
    port = server.sockets[0].getsockname()[1]
    try:
        yield port
    finally:
        server.close()
        with contextlib.suppress(Exception):
            await asyncio.wait_for(server.wait_closed(), 5)


@pytest.mark.stack
async def test_temporal_client_options_do_mutual_tls(pki: Pki) -> None:
    local = Settings()
    await asyncio.to_thread(stack.ensure_stack, local)
    async with tls_proxy(pki, local.temporal_port) as port:
        settings = Settings(
            temporal_address=f"127.0.0.1:{port}", temporal_tls_ca_file=pki.ca,
            temporal_tls_cert_file=pki.client_cert, temporal_tls_key_file=pki.client_key,
            temporal_tls_server_name="temporal-frontend")
        client = await Client.connect(settings.temporal_address,
                                      namespace=settings.temporal_namespace,
                                      **temporal_connect_options(settings))
        info = await client.workflow_service.get_system_info(GetSystemInfoRequest())
        assert info.server_version
        # Without a client certificate the TLS terminator refuses the connection.
        no_cert = Settings(temporal_address=settings.temporal_address,
                           temporal_tls_ca_file=pki.ca,
                           temporal_tls_server_name="temporal-frontend")
        with pytest.raises(RuntimeError):
            await asyncio.wait_for(Client.connect(
                no_cert.temporal_address, namespace=no_cert.temporal_namespace,
                **temporal_connect_options(no_cert)), 30)
