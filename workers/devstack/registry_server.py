"""A throwaway Schema Registry for tests: Apicurio Registry from Maven Central, in memory.

Apicurio Registry serves the Confluent Schema Registry API under ``/apis/ccompat/v7``,
which is all the Schema Registry option speaks (docs/schema-registry.md). Confluent's own
registry is not on Maven Central. Version 2.6 runs on Java 17, the JDK the local stack
already needs for Kafka; Apicurio 3 needs Java 21.

Not part of ``hotline stack up``: only the tests that need a registry start one
(:func:`running_registry`), on a port the system picks, with in-memory storage (H2), so
nothing outlives the test run. The distribution (~140 MB, once) is fetched with Maven into
the download cache beside Kafka's jars and unpacked there; it starts in about 4 s.
"""

from __future__ import annotations

import logging
import re
import shutil
import tarfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from workers.devstack.kafka_server import MAVEN_TIMEOUT_S
from workers.devstack.processes import (
    file_lock,
    run,
)
from workers.devstack.servers import StackError, java_binary, maven_binary, running_java_jar
from workers.runtime.settings import REPO_ROOT, Settings

log = logging.getLogger(__name__)

APICURIO_VERSION = "2.6.13.Final"
_ARTIFACT = f"io.apicurio:apicurio-registry-app:{APICURIO_VERSION}:tar.gz:all"
_RUNNER = f"apicurio-registry-app-{APICURIO_VERSION}-runner.jar"
#: Where the Confluent-compatible API lives on an Apicurio Registry.
CCOMPAT_PATH = "/apis/ccompat/v7"
START_TIMEOUT_S = 90.0
_LISTENING = re.compile(r"Listening on: (http://[0-9.]+:\d+)")


def registry_dir(settings: Settings) -> Path:
    """The unpacked distribution in the download cache."""
    return settings.cache_dir / f"apicurio-registry-{APICURIO_VERSION}"


def ensure_registry_app(settings: Settings) -> Path:
    """The registry's runner jar, downloaded with Maven and unpacked on first use."""
    home = registry_dir(settings)
    runner = home / _RUNNER
    if runner.is_file():
        return runner
    mvn = maven_binary("Apicurio Registry")
    settings.cache_dir.mkdir(parents=True, exist_ok=True)
    maven_repo = settings.cache_dir / "m2"
    with file_lock(settings.cache_dir / f"apicurio-registry-{APICURIO_VERSION}.lock"):
        if runner.is_file():
            return runner
        started = time.monotonic()
        run([mvn, "-q", "-B", "-Dstyle.color=never", f"-Dmaven.repo.local={maven_repo}",
             "dependency:get", f"-Dartifact={_ARTIFACT}", "-Dtransitive=false"],
            what=f"Maven download of Apicurio Registry {APICURIO_VERSION}",
            timeout=MAVEN_TIMEOUT_S, cwd=REPO_ROOT)
        archive = (maven_repo / "io" / "apicurio" / "apicurio-registry-app" / APICURIO_VERSION
                   / f"apicurio-registry-app-{APICURIO_VERSION}-all.tar.gz")
        partial = home.with_name(home.name + ".partial")
        shutil.rmtree(partial, ignore_errors=True)
        partial.mkdir(parents=True)
        with tarfile.open(archive) as tar:
            tar.extractall(partial, filter="data")
        if not (partial / _RUNNER).is_file():
            raise StackError(f"{archive.name} holds no {_RUNNER}")
        shutil.rmtree(home, ignore_errors=True)
        partial.rename(home)
        # The unpacked copy is the cache; the archive would only double the space.
        archive.unlink(missing_ok=True)
        log.info("fetched Apicurio Registry %s in %.1f s into %s", APICURIO_VERSION,
                 time.monotonic() - started, home)
    return runner


@contextmanager
def running_registry(settings: Settings, log_path: Path) -> Iterator[str]:
    """An Apicurio Registry on 127.0.0.1 and a free port, in memory, until exit.

    Args:
        settings: The download cache (``HOTLINE_CACHE_DIR``).
        log_path: The server's output; the port is read from its "Listening on" line.

    Yields:
        The base URL of its Confluent-compatible API, for ``HOTLINE_SCHEMA_REGISTRY_URL``.

    Raises:
        StackError: No Maven or Java, the download failed, or it did not start in time.
    """
    runner = ensure_registry_app(settings)
    with running_java_jar(
            [java_binary("Apicurio Registry"), "-Xmx256m", "-XX:TieredStopAtLevel=1",
             "-XX:+ExitOnOutOfMemoryError",
             "-Dquarkus.http.host=127.0.0.1", "-Dquarkus.http.port=0", "-jar", str(runner)],
            runner, log_path=log_path, cwd=runner.parent, ready="Listening on: ",
            address=_LISTENING, what="Apicurio Registry", timeout=START_TIMEOUT_S) as url:
        yield url + CCOMPAT_PATH
