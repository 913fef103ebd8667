"""A throwaway S3-compatible server for tests: S3Proxy from Maven Central, in memory.

S3Proxy (org.gaul:s3proxy, Apache-2.0) serves the S3 API in front of a jclouds blob store;
here its ``transient-nio2`` store, which keeps objects in memory, so nothing outlives the
run. It checks AWS signatures (v2 and v4) against a key pair made for each start, so a
client with wrong credentials is refused as by a real bucket. Its one jar with its
dependencies (~55 MB, once) is fetched with Maven into the download cache beside Kafka's
jars; it runs on Java 17, the JDK the local stack already needs, and starts in about 1 s.

Not part of ``hotline stack up``: only the tests that need a bucket start one
(:func:`running_s3proxy`), on a port the system picks.
"""

from __future__ import annotations

import logging
import re
import secrets
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from workers.devstack.kafka_server import MAVEN_TIMEOUT_S
from workers.devstack.processes import (
    file_lock,
    run,
)
from workers.devstack.servers import StackError, java_binary, maven_binary, running_java_jar
from workers.runtime.settings import REPO_ROOT, Settings

log = logging.getLogger(__name__)

S3PROXY_VERSION = "4.1.0"
_ARTIFACT = f"org.gaul:s3proxy:{S3PROXY_VERSION}:jar:jar-with-dependencies"
START_TIMEOUT_S = 60.0
REGION = "us-east-1"
# Jetty's "Started ServerConnector@…{HTTP/1.1, (http/1.1)}{127.0.0.1:PORT}" line.
_LISTENING = re.compile(r"ServerConnector@.*\{([0-9.]+:\d+)\}")


@dataclass(frozen=True)
class S3Endpoint:
    """Where a running S3Proxy answers, and the key pair it accepts."""

    url: str
    access_key: str
    secret_key: str
    region: str = REGION


def s3proxy_jar(settings: Settings) -> Path:
    """S3Proxy's jar with its dependencies, downloaded with Maven on first use."""
    maven_repo = settings.cache_dir / "m2"
    jar = (maven_repo / "org" / "gaul" / "s3proxy" / S3PROXY_VERSION
           / f"s3proxy-{S3PROXY_VERSION}-jar-with-dependencies.jar")
    if jar.is_file():
        return jar
    mvn = maven_binary("S3Proxy")
    settings.cache_dir.mkdir(parents=True, exist_ok=True)
    with file_lock(settings.cache_dir / f"s3proxy-{S3PROXY_VERSION}.lock"):
        if not jar.is_file():
            run([mvn, "-q", "-B", "-Dstyle.color=never", f"-Dmaven.repo.local={maven_repo}",
                 "dependency:get", f"-Dartifact={_ARTIFACT}", "-Dtransitive=false"],
                what=f"Maven download of S3Proxy {S3PROXY_VERSION}",
                timeout=MAVEN_TIMEOUT_S, cwd=REPO_ROOT)
    if not jar.is_file():
        raise StackError(f"Maven fetched S3Proxy {S3PROXY_VERSION} but {jar} is missing")
    return jar


@contextmanager
def running_s3proxy(settings: Settings, log_path: Path) -> Iterator[S3Endpoint]:
    """An S3Proxy on 127.0.0.1 and a free port, objects in memory, until exit.

    Args:
        settings: The download cache (``HOTLINE_CACHE_DIR``).
        log_path: The server's output (its properties file goes beside it); the port is
            read from Jetty's "Started ServerConnector" line.

    Yields:
        Its URL and the key pair it accepts (made for this start).

    Raises:
        StackError: No Maven or Java, the download failed, or it did not start in time.
    """
    jar = s3proxy_jar(settings)
    access, secret = f"hotline-{secrets.token_hex(4)}", secrets.token_urlsafe(24)
    properties = log_path.with_suffix(".properties")
    properties.parent.mkdir(parents=True, exist_ok=True)
    properties.write_text("\n".join([
        "s3proxy.authorization=aws-v2-or-v4",
        "s3proxy.endpoint=http://127.0.0.1:0",
        f"s3proxy.identity={access}",
        f"s3proxy.credential={secret}",
        "jclouds.provider=transient-nio2",
        f"jclouds.identity={access}",
        f"jclouds.credential={secret}",
        "",
    ]), encoding="utf-8")
    properties.chmod(0o600)
    try:
        # Jetty logs the connector once it listens.
        with running_java_jar(
                [java_binary("S3Proxy"), "-Xmx256m", "-XX:TieredStopAtLevel=1",
                 "-XX:+ExitOnOutOfMemoryError", "-jar", str(jar), "--properties",
                 str(properties)],
                jar, log_path=log_path, cwd=log_path.parent, ready="ServerConnector@",
                address=_LISTENING, what="S3Proxy", timeout=START_TIMEOUT_S) as address:
            log.info("S3Proxy %s at http://%s", S3PROXY_VERSION, address)
            yield S3Endpoint(f"http://{address}", access, secret)
    finally:
        properties.unlink(missing_ok=True)
