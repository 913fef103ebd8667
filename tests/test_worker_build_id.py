"""The worker's build id: stamped by Temporal on every workflow task of every history, so
short (issue 30), yet still a mark of the code that ran."""

from __future__ import annotations

import re

from workers.runtime.settings import Settings
from workers.worker.main import build_id


def test_by_default_a_short_hash_of_the_code_that_decides_histories() -> None:
    default = build_id(Settings(worker_build_id=""))
    assert re.fullmatch(r"[0-9a-f]{8}", default)
    assert build_id(Settings(worker_build_id="")) == default  # the same code, the same id


def test_a_configured_build_id_wins() -> None:
    assert build_id(Settings(worker_build_id="rel-2026.12")) == "rel-2026.12"
