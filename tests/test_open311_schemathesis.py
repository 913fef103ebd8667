"""Schemathesis against the live Open311 service: every operation of its OpenAPI document.

The service runs in this process on a free port, on the real Kafka and PostgreSQL with a
fresh topic prefix and database. Schemathesis generates valid and invalid requests from
the committed document (the one the service serves) and checks each answer against it:
no server error, documented status codes, content types and bodies. Half the POSTs carry
a real API key, so filings reach Kafka (no worker reads these topics).
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, settings

from workers.devstack.stack import ensure_database, ensure_stack, ensure_topics
from workers.open311.model import ApiClient
from workers.open311.service import OPENAPI_PATH, Open311Server
from workers.runtime.settings import Settings

pytestmark = pytest.mark.stack

KEY = "schemathesis-key-0123456789"
MAX_EXAMPLES = 40  # per operation and phase: the run stays well under a minute


@pytest.fixture(scope="module")
def open311_url() -> Iterator[str]:
    run = uuid.uuid4().hex[:8]
    s = Settings(topic_prefix=f"o311st{run}.", postgres_db=f"o311st_{run}",
                 open311_rate_per_minute=0)
    ensure_stack(Settings())
    ensure_topics(s)
    ensure_database(s, s.postgres_db)
    server = Open311Server(s, port=0, clients=[ApiClient("schemathesis", KEY)])
    with server.running():
        yield server.url


# The committed document; test_open311.py checks it is the one the service serves.
schema = schemathesis.openapi.from_path(OPENAPI_PATH)


@schema.parametrize()
@settings(max_examples=MAX_EXAMPLES, deadline=None,
          suppress_health_check=list(HealthCheck))
def test_open311_conforms_to_its_openapi_document(case: Any, open311_url: str) -> None:
    if isinstance(case.body, dict) and "api_key" in case.body and hash(str(case.body)) % 2:
        case.body["api_key"] = KEY
    case.call_and_validate(base_url=open311_url)
