"""The street ids ``hotline routing blind-live`` reads back from the names lifecycle events
carry (no stack needed)."""

from __future__ import annotations

from activities.dispatch.config import load_config
from activities.dispatch.registry import STREET_KINDS
from workers.cli.routing_live import street_ids
from workers.runtime.settings import Settings

REGISTRY = load_config(Settings().config_dir, with_model=False).registry


def test_a_current_street_maps_back_to_itself_even_where_a_retired_one_had_its_name() -> None:
    streets = street_ids(REGISTRY)
    for unit in REGISTRY.units.values():
        if unit.kind in STREET_KINDS:
            assert streets[(unit.district, unit.name)] == unit.unit_id


def test_a_retired_street_whose_name_nobody_has_now_maps_to_the_retired_unit() -> None:
    streets = street_ids(REGISTRY)
    current = {(u.district, u.name) for u in REGISTRY.units.values()}
    retired = [r for r in REGISTRY.records.values()
               if r.kind in STREET_KINDS and r.valid_to is not None
               and (r.district, r.name) not in current]
    assert retired, "the registry's history has retired streets (beijing_units_history.csv)"
    for rec in retired:
        assert streets[(rec.district, rec.name)] == rec.unit_id
