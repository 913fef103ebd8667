"""How sure the machine is of a dispatch, why not surer, and whom else it would choose.

DESIGN.md "Dispatch that fails safe": every automatic decision carries a confidence and
its reasons. Each doubt caps the confidence; below the configured minimum
(``rules.yaml`` ``review.min_confidence``) the case waits at the dispatch desk, except
that a T2H case never waits unless its only place is outside Beijing. The caps are
ordered by how little a unit could do with the case as it stands: nothing outside
Beijing or for an unreasonable demand; little for a problem nobody recognised; the right
unit only by luck where the place is ambiguous or not said at all.
"""

from __future__ import annotations

from dataclasses import dataclass

from activities.dispatch.classify import Classification
from activities.dispatch.lexicon import Lexicon
from activities.dispatch.location import Location
from activities.dispatch.registry import CITY_CENTRE_ID, DISTRICT_KIND, Registry
from activities.dispatch.routing import RouteDecision
from workflows.model import ReviewCandidate

OUTSIDE_CITY = 0.2
OUTSIDE_TOO = 0.5
UNREASONABLE = 0.2
UNKNOWN_PROBLEM = 0.3
# The category model's guess where the unit is known all the same (its remit named by the
# caller's words, or the street's by the learned model): most such requests in our readable
# sets had both tier and lead right (decide.why_unit_known says how many).
GUESS_BUT_UNIT_KNOWN = 0.7
AMBIGUOUS_PLACE = 0.4
CONSULTATION = 0.4
DISTRICT_ONLY = 0.7
NO_PLACE = 0.4
HELD_BACK = 0.4
_HELD_BACK_WHAT = {"CONSULTATION": "a consultation the operator may answer",
                   "OUTSIDE_BEIJING": "a place outside Beijing",
                   "UNREASONABLE": "a demand no unit can meet"}


@dataclass(frozen=True)
class Assessment:
    """The confidence (0..1) of a dispatch and the doubts that lowered it."""

    confidence: float
    reasons: list[str]


def assess(lexicon: Lexicon, registry: Registry, cl: Classification, loc: Location,
           route: RouteDecision, *, unit_known_because: str | None = None) -> Assessment:
    """Every doubt about dispatching ``route.lead`` at once, and the confidence left.

    ``unit_known_because``: why the route's unit is known all the same (the caller's words named
    its remit, or the learned model is sure it is the street's), so that a guessed problem
    type says less about whether that unit is the right one."""
    doubts: list[tuple[float, str]] = []
    if loc.only_outside:
        urgent = (": it may be urgent, and no Beijing unit can act there — send the caller "
                  "to the local emergency service or hotline now" if cl.tier == "T2H" else "")
        doubts.append((OUTSIDE_CITY, f"the place is outside Beijing ({loc.outside}){urgent}"))
    elif loc.outside:
        doubts.append((OUTSIDE_TOO, f"a place outside Beijing ({loc.outside}) is named beside "
                                    "a Beijing one: where is the problem?"))
    if cl.unreasonable:
        doubts.append((UNREASONABLE, "the demand looks unreasonable: reject or dispatch?"))
    if cl.category.code == lexicon.fallback.code:
        doubts.append((UNKNOWN_PROBLEM, "the problem type was not recognised"))
    elif cl.category_guess_p:
        guess = (f"the problem type is the category model's guess "
                 f"(P={cl.category_guess_p:.2f}): no phrase of the lexicon matched")
        if unit_known_because:
            doubts.append((GUESS_BUT_UNIT_KNOWN, f"{guess}; the unit is known all the same: "
                                                 f"{unit_known_because}"))
        else:
            doubts.append((UNKNOWN_PROBLEM, guess))
    if loc.street_id is None and loc.ambiguous:
        doubts.append((AMBIGUOUS_PLACE, f"{'、'.join(loc.ambiguous)} is in several districts "
                                        "and the caller named none"))
    if cl.held_back:
        doubts.append((HELD_BACK, f"the learned model reads "
                                  f"{_HELD_BACK_WHAT.get(cl.held_back, cl.held_back)} "
                                  f"(P={cl.held_back_p:.2f}): dispatch, answer or reject?"))
    if cl.kind == "CONSULTATION":
        doubts.append((CONSULTATION, "a consultation: the operator may answer it directly"))
    lead = registry.record(route.lead.unit_id)
    if lead is not None and lead.kind == DISTRICT_KIND and loc.street_id is None:
        doubts.append((DISTRICT_ONLY, "no street found: the district government leads"))
    elif (route.lead.unit_id == CITY_CENTRE_ID and route.note and not loc.ambiguous
          and loc.street_id is None and loc.district is None):
        # A street's matter with no place at all: the city centre would only pass it on,
        # and a dispatcher can ask the caller (an ambiguous place has its own doubt).
        doubts.append((NO_PLACE, "no place found: the city centre would lead; which street?"))
    return Assessment(min([1.0, *(cap for cap, _ in doubts)]),
                      [why for _, why in sorted(doubts)])


def candidates(registry: Registry, cl: Classification, loc: Location, route: RouteDecision,
               confidence: float) -> list[ReviewCandidate]:
    """The units a dispatcher chooses from, best first: the rule's lead, then the district
    government of the place (when known), then the city centre. Where the only place is
    outside Beijing the city centre comes first: if nobody decides in time, it calls the
    caller back with whom to call there, where a Beijing unit could do nothing."""
    category = cl.category.code
    found = [ReviewCandidate(route.lead.unit_id, route.lead.name, cl.tier, category,
                             round(confidence, 3), f"routing rule {route.rule}"
                             + (f" ({route.note})" if route.note else ""))]
    centre = registry.get(CITY_CENTRE_ID)
    if loc.only_outside and centre is not None and route.lead.unit_id != CITY_CENTRE_ID:
        found.insert(0, ReviewCandidate(
            CITY_CENTRE_ID, centre.name, cl.tier, category, round(confidence, 3),
            f"the place is outside Beijing ({loc.outside}): the centre tells the caller whom "
            "to call there"))
    others: list[tuple[str, str]] = []
    if loc.district:
        others.append((registry.district_government(loc.district),
                       f"the district government of {loc.district}"))
    others.append((CITY_CENTRE_ID, "the city centre coordinates what no unit owns"))
    for unit_id, why in others:
        unit = registry.get(unit_id)
        if unit is not None and all(c.unit_id != unit_id for c in found):
            found.append(ReviewCandidate(unit_id, unit.name, cl.tier, category,
                                         round(confidence / 2, 3), why))
    return found
