"""The routing decision asked with the whole configuration: what the activities call.

:mod:`activities.dispatch.routing` applies a routing table given the table and the
registry; here both come from the loaded :class:`HotlineConfig`.
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass, replace
from datetime import date, datetime

from activities.dispatch.category_model import apply_category_model
from activities.dispatch.classify import Classification, classify
from activities.dispatch.confidence import Assessment, assess
from activities.dispatch.config import HotlineConfig
from activities.dispatch.lexicon import Category
from activities.dispatch.location import Location, locate
from activities.dispatch.registry import DISTRICT_KIND, STREET_KINDS
from activities.dispatch.routing import RouteDecision, decide_for
from workflows.model import Unit


def decide_route(
    config: HotlineConfig,
    category: Category | str,
    location: Location,
    *,
    at: datetime | date | None = None,
    exclude: Collection[str] = (),
    text: str = "",
) -> RouteDecision:
    """Lead and assisting units for a category at a place, skipping ``exclude``d units.

    Args:
        config: the loaded configuration (registry and routing table).
        category: the case's category (or its code).
        location: where it happened (``locate``).
        at: when the case was filed; the rules and units in force then apply (default now).
        exclude: units that returned the case; the next target of the rule leads, then the
            district government of the place, then the city centre.
        text: the request's words, for rules that look at what the caller named (a transit
            line's operator).
    """
    code = category if isinstance(category, str) else category.code
    return decide_for(config.routing, config.registry, code, location, at=at, exclude=exclude,
                      text=text)



def route(
    config: HotlineConfig, category: Category, location: Location, *,
    at: date | datetime | None = None,
) -> Unit:
    """The lead unit alone (see :func:`decide_route`)."""
    return decide_for(config.routing, config.registry, category.code, location, at=at).lead


def classify_request(
    config: HotlineConfig, content: str, *, kind_hint: str | None = None,
    category_hint: str | None = None, urgency_hint: str | None = None,
) -> Classification:
    """The rules' classification, with the learned model beside them.

    What the model may do, most at stake first (DESIGN.md "Dispatch that fails safe"):
    transfer an emergency in progress the rules missed, when a transfer is its most
    probable reading; raise a tier to T2H where P(urgent) reaches its threshold; choose
    among T24H, T7D and T15D (a model over every outcome: on each writer's set it was not
    trained on it told them apart better than a category's default tier and a few urgency
    words did); and hold back a request it reads as needing no dispatch — a doubt that
    sends it to the dispatch desk (:func:`assess`), never a decision. What it may not do:
    lower a T2H the rules found, change the category, or go against an operator's urgency
    hint (a person who heard the caller outranks a statistical guess). Each change is
    recorded in ``matched`` with its probability.
    """
    cl = classify(config.lexicon, content, kind_hint=kind_hint, category_hint=category_hint,
                  urgency_hint=urgency_hint)
    # The category first: the tier model then sees the case as it will be routed.
    cl = apply_category_model(cl, config.category_model, content)
    model = config.model
    if model is None or "urgency" in cl.hints_used:
        return cl
    reading = model.read(content)
    cl = replace(cl, street_p=reading.p_street)
    notes: list[str] = []
    if reading.redirect and cl.redirect_to is None:
        if over := config.rules.model.in_progress_ruled_out(content):
            notes.append(f"model: transfer to {reading.redirect} (P={reading.redirect_p:.2f})"
                         f" not made: “{over}” says it is not happening now")
        elif street := config.rules.model.street_emergency_in(content):
            notes.append(f"model: transfer to {reading.redirect} (P={reading.redirect_p:.2f})"
                         f" not made: “{street}” is the street's to answer")
        elif reading.redirect == "119" and (
                no_fire := config.rules.model.smoke_but_no_fire(content)):
            words, why = no_fire
            notes.append(f"model: transfer to 119 (P={reading.redirect_p:.2f}) not made: "
                         f"“{words}” {why}")
        else:
            cl = replace(cl, redirect_to=reading.redirect, emergency=True, tier="T2H",
                         urgent=True)
            notes.append(f"model: transfer to {reading.redirect} "
                         f"(P={reading.redirect_p:.2f} ≥ {model.redirect_threshold:g})")
    if cl.tier != "T2H":
        if reading.p_urgent >= model.threshold:
            cl = replace(cl, tier="T2H", urgent=True)
            notes.append(f"model: P(T2H)={reading.p_urgent:.2f} ≥ {model.threshold:g}")
        elif (model.decides_tier and reading.tier != cl.tier and reading.no_dispatch is None
              and reading.tier_p >= config.rules.model.tier_bar(cl.tier)):
            # (Where the model reads no dispatch at all, its share among the tiers says
            # little: a tiny P(T2H) can be half of a tiny mass.)
            notes.append(f"model: {reading.tier} (P={reading.tier_p:.2f}) rather than the "
                         f"rules' {cl.tier}")
            cl = replace(cl, tier=reading.tier, urgent=cl.urgent or reading.tier == "T2H")
    if reading.no_dispatch and cl.redirect_to is None and "kind" not in cl.hints_used:
        # (An operator who typed the kind has judged what the call is.)
        cl = replace(cl, held_back=reading.no_dispatch, held_back_p=reading.no_dispatch_p)
        notes.append(f"model: {reading.no_dispatch} (P={reading.no_dispatch_p:.2f})")
    return replace(cl, matched=[*cl.matched, *notes]) if notes else cl


@dataclass(frozen=True)
class FirstLook:
    """What the machine makes of a request on its own: the ``accept`` activity and the
    blind-set score both start from it. ``routing_version``: the learned model's version
    ("" without one), recorded on the case."""

    classification: Classification
    location: Location
    route: RouteDecision
    doubt: Assessment
    routing_version: str = ""

    def outcome(self, min_confidence: float) -> str:
        """REDIRECTED (an emergency in progress), REVIEW (unsure, and not T2H) or DISPATCH.

        T2H never waits (DESIGN.md) but where the only place named is outside Beijing: no
        Beijing unit can act there, so dispatching one helps nobody in danger; a
        dispatcher sends the caller to the local service at once (every writer of our
        sets labels such a request OUTSIDE_BEIJING, not a dispatch)."""
        cl = self.classification
        if cl.redirect_to:
            return "REDIRECTED"
        if self.doubt.confidence < min_confidence and (
                cl.tier != "T2H" or self.location.only_outside):
            return "REVIEW"
        return "DISPATCH"


def first_look(
    config: HotlineConfig, content: str, *, district: str | None = None,
    street: str | None = None, address: str | None = None, kind_hint: str | None = None,
    category_hint: str | None = None, urgency_hint: str | None = None,
    at: datetime | date | None = None,
) -> FirstLook:
    """Classify, locate and route a request, and say how sure that is."""
    cl = classify_request(config, content, kind_hint=kind_hint, category_hint=category_hint,
                          urgency_hint=urgency_hint)
    loc = locate(config.registry, district, street, address, content, at=at)
    route = decide_route(config, cl.category, loc, at=at, text=content)
    if cl.category_guess_p:
        route = _words_over_a_guess(config, loc, route, at, content)
    route = street_leads(config, cl, loc, route, content)
    return FirstLook(cl, loc, route,
                     assess(config.lexicon, config.registry, cl, loc, route,
                            unit_known_because=why_unit_known(config, cl, route)
                            if cl.category_guess_p else None),
                     config.model.version if config.model else "")


def _words_over_a_guess(config: HotlineConfig, loc: Location, route: RouteDecision,
                        at: datetime | date | None, content: str) -> RouteDecision:
    """Where the category is only the category model's weak guess, a rule that reads the
    caller's words whatever the category (category "*") routes as it would with no
    category at all: a guess must not bar it by its ``except_category`` ("过渡费也停了"
    read as a power cut keeps demolition's rule from the street's resettlement office)."""
    plain = decide_route(config, config.lexicon.fallback.code, loc, at=at, text=content)
    rule = config.routing.rule(plain.rule)
    if rule is not None and rule.reads_words_only:
        return plain
    return route


def why_unit_known(config: HotlineConfig, cl: Classification,
                   route: RouteDecision) -> str | None:
    """Why the lead unit is known though the problem type may not be, if it is: the
    caller's words named its remit (a routing rule that reads its words whatever the
    category, category "*"), or a street leads — chosen by the rules or moved there by the
    learned model — and the learned model is sure the matter is in the street's territory
    (P(street) at least its threshold). Of the requests in our readable sets that had
    waited for a guessed problem type only, 90 of 104 of the first kind and 204 of 230 of
    the second had tier and lead right."""
    rule = config.routing.rule(route.rule)
    if rule is not None and rule.reads_words_only:
        return f"the caller's words name its remit (routing rule {rule.id})"
    model = config.model
    if (model is not None and model.street_threshold is not None and cl.street_p is not None
            and cl.street_p >= model.street_threshold and route.lead.kind in STREET_KINDS):
        return (f"the learned model reads a matter in the street's territory "
                f"(P={cl.street_p:.2f})")
    return None


MODEL_STREET_RULE = "model-street"


def street_leads(config: HotlineConfig, cl: Classification, location: Location,
                 route: RouteDecision, text: str) -> RouteDecision:
    """The dispatch model's lead head beside the routing table: where the rules chose a
    department or utility and the model is sure the matter is in the street's territory
    (直派街乡: inside a compound, a lane, a village), the located street leads and the
    rule's units assist. Nothing changes without a located street: a district government
    is no better a guess than the department; nor, for a utility, where the words put the
    matter on a public road or on the network beyond one building (``rules.yaml``
    ``model.public_road``, ``model.utility_network``), nor where the rule
    keeps its lead (``keep_lead``: the words name the remit exactly)."""
    model = config.model
    p = cl.street_p
    if (model is None or model.street_threshold is None or p is None
            or p < model.street_threshold or location.street_id is None):
        return route
    rule = config.routing.rule(route.rule)
    if rule is not None and rule.keep_lead:
        return route
    lead = config.registry.record(route.lead.unit_id)
    street = config.registry.get(location.street_id)
    if lead is None or lead.kind in (*STREET_KINDS, DISTRICT_KIND) or street is None:
        return route
    limits = config.rules.model
    if lead.kind == "utility" and (limits.on_public_road(text) or limits.on_utility_network(text)):
        return route  # a network under a public road, or beyond one building, is the utility's
    helpers = [u for u in (route.lead, *route.assisting) if u.unit_id != street.unit_id]
    return RouteDecision(
        lead=street, assisting=list(dict.fromkeys(helpers)), rule=MODEL_STREET_RULE,
        table_version=route.table_version,
        note=f"the learned model reads a matter in the street's territory "
             f"(P={p:.2f} ≥ {model.street_threshold:g}); rule {route.rule} named "
             f"{route.lead.name}, now assisting")


def governance_route(config: HotlineConfig, route: RouteDecision,
                     location: Location) -> RouteDecision:
    """A hotspot's governance case: the street where it is leads (DESIGN.md, 未诉先办);
    the units the category's rule names (a department's or utility's remit) assist."""
    street = config.registry.get(location.street_id) if location.street_id else None
    if street is None:
        return route  # no street known: the rule's own lead, then the district (fallback)
    helpers = [u for u in (route.lead, *route.assisting)
               if u.unit_id != street.unit_id and u.kind not in STREET_KINDS]
    return RouteDecision(
        lead=street, assisting=list(dict.fromkeys(helpers)), rule="governance-street",
        table_version=route.table_version,
        note=f"governance case: the street leads; {route.rule} names the assisting units")
