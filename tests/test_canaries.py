"""Canaries: the requests whose decision the project's tests and demo rely on."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import pytest

from activities.dispatch.blind import Decision, accept_decision
from activities.dispatch.canaries import Canary, Pinned, changed, load_canaries, misses
from activities.dispatch.config import load_config
from activities.dispatch.evaluation import EvalError
from workers.cli.routing import LEARN_CANARIES
from workers.runtime.settings import REPO_ROOT, Settings

CANARIES = REPO_ROOT / LEARN_CANARIES


def test_the_shipped_rules_and_models_keep_every_canary() -> None:
    config = load_config(Settings().config_dir)
    canaries = load_canaries(CANARIES)
    assert len(canaries) > 100
    # The lift that has waited three days, which the stack tests file, is among them.
    lift = next(c for c in canaries if c.content.endswith("电梯坏了三天，楼里老人下不了楼"))
    assert lift.decision == Pinned(outcome="DISPATCH", tier="T24H", lead="110105026")
    assert misses(canaries, lambda c: accept_decision(config, c, at=date(2026, 12, 6))) == {}


def test_only_the_pinned_parts_of_a_decision_count() -> None:
    canary = Canary(id="k", content="…", why="a test",
                    decision=Pinned(outcome="DISPATCH", tier="T24H"))
    assert changed(canary, Decision("DISPATCH", "T24H", "bj-anything", None)) is None
    assert changed(canary, Decision("REVIEW", "T7D", None, None)) == \
        "outcome REVIEW instead of DISPATCH; tier T7D instead of T24H"


@pytest.mark.parametrize(("decision", "message"), [
    ('{"outcome": "SENT"}', "unknown outcome SENT"),
    ('{"outcome": "DISPATCH", "tier": "T3D"}', "unknown tier T3D"),
    ('{"outcome": "REDIRECTED", "redirect": "122"}', "unknown service 122"),
])
def test_a_canary_pinning_an_unknown_outcome_tier_or_service_is_refused(
    tmp_path: Path, decision: str, message: str,
) -> None:
    bad = tmp_path / "c.jsonl"
    bad.write_text(f'{{"id": "k", "content": "…", "why": "x", "decision": {decision}}}\n',
                   encoding="utf-8")
    with pytest.raises(EvalError, match=message):
        load_canaries(bad)
