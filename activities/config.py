"""Everything the activities read from the config folder, loaded and checked together."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from activities.classify import Lexicon, load_lexicon
from activities.registry import Registry, load_registry
from activities.rules import Rules, load_rules


@dataclass(frozen=True)
class HotlineConfig:
    rules: Rules
    registry: Registry
    lexicon: Lexicon


def load_config(config_dir: Path) -> HotlineConfig:
    """Load rules, registry and lexicon; raises RulesError/RegistryError naming the bad key."""
    registry = load_registry(config_dir)
    return HotlineConfig(
        rules=load_rules(config_dir / "rules.yaml"),
        registry=registry,
        lexicon=load_lexicon(config_dir / "categories.yaml", registry),
    )
