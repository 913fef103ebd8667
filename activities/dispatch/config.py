"""Everything the activities read from the config folder, loaded and checked together."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from activities.dispatch.category_model import (
    CATEGORY_MODEL_FILE,
    CategoryModel,
    load_category_model,
)
from activities.dispatch.communities import load_communities
from activities.dispatch.learned import MODEL_FILE, TierModel, load_model
from activities.dispatch.lexicon import Lexicon, load_lexicon
from activities.dispatch.registry import Registry, load_registry
from activities.dispatch.routing import RoutingTable, load_routing_table
from activities.dispatch.rules import Rules, load_rules


@dataclass(frozen=True)
class HotlineConfig:
    """Rules, unit registry (with its gazetteer), lexicon and routing table; and the
    learned dispatch model when its file is there (:mod:`activities.dispatch.decide`)."""

    rules: Rules
    registry: Registry
    lexicon: Lexicon
    routing: RoutingTable
    model: TierModel | None = None
    category_model: CategoryModel | None = None


def load_config(config_dir: Path, *, with_model: bool = True,
                with_category_model: bool | None = None) -> HotlineConfig:
    """Load and cross-check every config file.

    ``with_model=False`` leaves the learned models out (``hotline routing learn`` replacing
    a broken dispatch model); ``with_category_model`` says otherwise for the category
    model (``routing learn`` compares dispatch models beside the one they will run with).

    Raises:
        RulesError / RegistryError / RoutingError / ModelError: naming the file and the bad
        key or row.
    """
    registry = load_registry(config_dir)
    load_communities(registry, config_dir / "beijing_communities.csv")
    lexicon = load_lexicon(config_dir / "categories.yaml", registry)
    lexicon.shield(registry.unit_place_names())  # "椿树街道" is a place, not about trees
    routing = load_routing_table(config_dir / "routing.yaml", registry, lexicon)
    model_file = config_dir / MODEL_FILE
    model = (load_model(model_file)
             if with_model and model_file.exists() else None)
    category_file = config_dir / CATEGORY_MODEL_FILE
    wanted = with_model if with_category_model is None else with_category_model
    category_model = (load_category_model(category_file, lexicon)
                      if wanted and category_file.exists() else None)
    return HotlineConfig(
        rules=load_rules(config_dir / "rules.yaml"),
        registry=registry,
        lexicon=lexicon,
        routing=routing,
        model=model,
        category_model=category_model,
    )
