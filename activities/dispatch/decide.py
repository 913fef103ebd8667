"""The routing decision asked with the whole configuration: what the activities call.

:mod:`activities.dispatch.routing` applies a routing table given the table and the
registry; here both come from the loaded :class:`HotlineConfig`.
"""

from __future__ import annotations

from collections.abc import Collection
from datetime import date, datetime

from activities.dispatch.config import HotlineConfig
from activities.dispatch.lexicon import Category
from activities.dispatch.location import Location
from activities.dispatch.routing import RouteDecision, decide_for
from workflows.model import Unit


def decide_route(
    config: HotlineConfig,
    category: Category | str,
    location: Location,
    *,
    at: datetime | date | None = None,
    exclude: Collection[str] = (),
) -> RouteDecision:
    """Lead and assisting units for a category at a place, skipping ``exclude``d units.

    Args:
        config: the loaded configuration (registry and routing table).
        category: the case's category (or its code).
        location: where it happened (``locate``).
        at: when the case was filed; the rules and units in force then apply (default now).
        exclude: units that returned the case; the next target of the rule leads, then the
            district government of the place, then the city centre.
    """
    code = category if isinstance(category, str) else category.code
    return decide_for(config.routing, config.registry, code, location, at=at, exclude=exclude)



def route(
    config: HotlineConfig, category: Category, location: Location, *,
    at: date | datetime | None = None,
) -> Unit:
    """The lead unit alone (see :func:`decide_route`)."""
    return decide_for(config.routing, config.registry, category.code, location, at=at).lead
