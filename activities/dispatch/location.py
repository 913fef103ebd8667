"""Where a request happened: district and street/town/township, from the event's fields
or, failing that, from the address and the text through the registry's place names
(unit names in every form, the operators' gazetteer of roads, compounds and landmarks).

An honest "unknown" is a result: with no street the district government leads, with no
district either the city centre does (decided by the routing table, not here).
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import date, datetime

from activities.dispatch.registry import (
    DISTRICT_KIND,
    IGNORE_KIND,
    OUTSIDE_KIND,
    LocationConfig,
    Place,
    Registry,
    pick_unit,
)
from activities.dispatch.textindex import clause_around

# How much a kind of place name says about the street (higher wins).
_HEADING = ("去", "到", "往", "开往", "开到", "送到", "拉到")
_DESTINATION = 4  # taken off a destination's strength: below every place not one
_STRENGTH = {
    "name": 4, "street": 4, "former": 4,
    "compound": 3, "landmark": 3, "community": 3,
    "stem": 2, "weak": 2, "road": 2, "community-stem": 2, "community-part": 1,
}


@dataclass(frozen=True)
class Location:
    """District and street unit of a request, and how they were found.

    ``source``: street-field, address, content (where the street came from), or None.
    ``place``: the phrase that located it. ``conflict``: the caller's district disagreed
    with the street they named (the street wins, the disagreement is recorded).
    """

    district: str | None
    street_id: str | None
    source: str | None = None
    place: str | None = None
    property_company: str | None = None
    conflict: str | None = None
    # Places named that could not be used: in several districts (with none given), or
    # outside the city. The dispatch desk reads them.
    ambiguous: tuple[str, ...] = ()
    outside: str | None = None

    @property
    def only_outside(self) -> bool:
        """The only place named is outside Beijing (not even an ambiguous Beijing one): no
        Beijing unit can act there."""
        return (self.outside is not None and self.street_id is None and self.district is None
                and not self.ambiguous)


@dataclass(frozen=True, slots=True)
class _Candidate:
    place: Place
    phrase: str
    strength: int
    order: int  # source rank * 10,000 + position: earlier is better
    source: str
    ambiguous: bool


def _day(at: date | datetime | None) -> date:
    if at is None:
        return date.today()
    return at.date() if isinstance(at, datetime) else at


def _away(cfg: LocationConfig, text: str, start: int, end: int) -> bool:
    """Whether the outside place at ``text[start:end]`` is not where the problem is: said
    of a trip or a friend ("刚从天津回来", "在重庆出差", "上海的朋友"), or the caller says
    they live or stay in Beijing ("我人在北京市里，家是石家庄的")."""
    if cfg.in_beijing is not None and cfg.in_beijing.search(text):
        return True
    before, after = clause_around(text, start, end)
    before = before[-3:]
    return any(w in before for w in cfg.outside_away_before) or any(
        after[:len(w) + 4].find(w) >= 0 for w in cfg.outside_away_after)


def _landmark(cfg: LocationConfig, text: str, start: int, end: int) -> bool:
    """Whether the Beijing place at ``text[start:end]``, named after a place outside the
    city, is said only as a landmark near it ("怀来，离延庆挺近", "涿州不是挨着房山嘛",
    "固安的，北京大兴那边挨着"): a relation word in the three characters before it (离北京
    房山) or within two after it (那边挨着), and no home in its clause (租的房子离国贸很近
    is where the caller lives)."""
    before, after = clause_around(text, start, end)
    if any(w in before or w in after for w in cfg.beijing_landmark_not_with):
        return False
    # "离北京房山": the city's name is not the relation word.
    before = before.removesuffix("北京市").removesuffix("北京")
    return any(w in before[-3:] for w in cfg.beijing_landmark_before) or _landmark_after(
        cfg, after)


def _landmark_after(cfg: LocationConfig, after: str) -> bool:
    """Whether a landmark word (挨着, 交界) begins within two characters of ``after``, the
    clause right after a Beijing place."""
    return any(after[:len(w) + 2].find(w) >= 0 for w in cfg.beijing_landmark_after)


def _outside_road(cfg: LocationConfig, text: str, start: int, end: int,
                  outside_ends: set[int]) -> bool:
    """Whether the Beijing name at ``text[start:end]`` is a road or a district of the
    outside place just before it ("上海的延庆路", "南通市通州区", "长春市朝阳区"): Beijing's
    district names are roads' and districts' names in many cities. A landmark word after it
    ("燕郊通州区交界那块") leaves it Beijing's."""
    right_after = start in outside_ends or (
        text[start - 1:start] in ("的", "市") and start - 1 in outside_ends)
    suffixes = cfg.outside_road_suffixes
    return (right_after and (text[start:end].endswith(suffixes) or text.startswith(suffixes, end))
            and not _landmark_after(cfg, clause_around(text, start, end)[1]))


def _scan(registry: Registry, text: str, source: str, rank: int, day: date,
          outside: list[str] | None = None) -> tuple[list[str], list[_Candidate]]:
    """District mentions and street candidates in one text (places outside the city go
    to ``outside``; a Beijing place said only as a landmark beside one is dropped)."""
    cfg = registry.location_config
    districts: list[str] = []
    areas: list[str] = []
    found: list[_Candidate] = []
    after_district: tuple[int, str | None] = (-1, None)  # where a district name ended
    hits = [(hit, {p.kind for p in hit.values}) for hit in registry.places.scan(text)]
    here: list[str] = []
    first_outside: int | None = None  # where the first place outside the city is named
    outside_ends: set[int] = set()  # where each place outside the city ends
    for hit, kinds in hits:
        if OUTSIDE_KIND in kinds and IGNORE_KIND not in kinds and not _away(
                cfg, text, hit.start, hit.end):
            here.append(hit.phrase)
            outside_ends.add(hit.end)
            if first_outside is None:
                first_outside = hit.start
    if outside is not None:
        outside.extend(here)
    for hit, kinds in hits:
        places = hit.values
        if IGNORE_KIND in kinds or OUTSIDE_KIND in kinds:
            continue
        if (first_outside is not None and first_outside < hit.start
                and (_landmark(cfg, text, hit.start, hit.end)
                     or _outside_road(cfg, text, hit.start, hit.end, outside_ends))):
            continue
        if DISTRICT_KIND in kinds:
            districts.extend(p.district for p in places if p.kind == DISTRICT_KIND)
            after_district = (hit.end, next(p.district for p in places
                                            if p.kind == DISTRICT_KIND))
            continue
        if kinds == {"area"}:
            areas.extend(p.district for p in places)
            continue
        # Right after its own district's name ("通州北苑") a weak stem is that street.
        own_district = after_district[0] == hit.start and any(
            p.district == after_district[1] for p in places)
        if kinds == {"weak"} and not own_district \
                and not text.startswith(cfg.place_words, hit.end):
            continue  # "前门" of a compound, "平房" a bungalow: not the street
        if own_district:
            places = tuple(p for p in places if p.district == after_district[1])
        if (kinds == {"community-stem"}
                and not (own_district and (text.startswith("的", hit.end)
                                           or _ends_here(text[hit.end:])))
                and not text.startswith(cfg.community_stem_words, hit.end)
                and not text.endswith(cfg.community_stem_before, 0, hit.start)
                and not (text.endswith(cfg.community_stem_belong, 0, hit.start)
                         and text.startswith("的", hit.end))
                and not _said_alone(text, hit.start, hit.end, cfg.community_stem_lead_ins)):
            continue  # "精忠" is a place in "精忠那儿" and "我家住精忠", not in "精忠报国"
        usable = [p for p in places if p.kind != "area"]
        # A unit's own full name beside a former unit of the same name (永顺镇, the town,
        # and the street it replaced) makes no doubt: the current unit is meant. A stem
        # (首都机场, 卢沟桥: a landmark too) or a weak one (梨园) stays in doubt.
        units = {p.unit_id for p in usable}
        if any(p.kind == "name" for p in usable):
            units = {p.unit_id for p in usable if p.kind != "former"}
        # A place the caller is going to ("一趟去北京站要一百") is not where the problem is:
        # any other place named outranks it.
        heading = _DESTINATION if text.endswith(_HEADING, 0, hit.start) else 0
        for place in usable:
            found.append(_Candidate(
                place, hit.phrase, _STRENGTH.get(place.kind, 1) - heading,
                rank * 10_000 + hit.start, source, ambiguous=len(units) > 1,
            ))
    return districts + areas, found


_CLAUSE_ENDS = "，。！？；,.!?;"
_TRAILING = ("的", "这儿", "那儿", "这边", "那边")


def _said_alone(text: str, start: int, end: int, lead_ins: tuple[str, ...] = ()) -> bool:
    """Whether the name is the last clause, on its own ("…也不吭声，丁家洼的。") or after a
    lead-in (``lead_ins``: "…，我们在长岭沟门。"): callers add where they are at the end,
    and there a committee's bare name can mean nothing else ("楼下那家饭馆，新开的，油烟大"
    is not 新开村: another clause follows)."""
    head = start
    for lead in lead_ins:
        if text.endswith(lead, 0, start):
            head = start - len(lead)
            break
    if head > 0 and text[head - 1] not in _CLAUSE_ENDS:
        return False
    return _ends_here(text[end:])


def _ends_here(rest: str) -> bool:
    """Whether only a place's tail (的, 这儿…) and the closing punctuation follow."""
    for tail in _TRAILING:
        if rest.startswith(tail):
            rest = rest[len(tail):]
            break
    return not rest.strip("。！？.!? ")


def _best(registry: Registry, candidates: list[_Candidate], district: str | None, day: date
          ) -> _Candidate | None:
    pool = [c for c in candidates if district is None or c.place.district == district]
    if district is None:  # a phrase naming streets in several districts says nothing alone
        pool = [c for c in pool if not c.ambiguous] or _agreed(pool)
    valid = [c for c in pool if c.place.current_at(day)]
    pool = valid or [c for c in pool if c.place.kind == "former"]
    if not pool:
        return None
    # Strongest first; then the operator's fields before the caller's words (the source
    # rank is order // 10,000), the longer of two names, the earlier one.
    pool.sort(key=lambda c: (-c.strength, c.order // 10_000, -len(c.phrase), c.order))
    top = pool[0]
    # Several units under one phrase in one district: the exact official name, else give up.
    same = [c for c in pool if c.order == top.order and c.strength == top.strength]
    if len({c.place.unit_id for c in same}) > 1:
        uid = pick_unit(top.phrase, [c.place for c in same], district, day)
        if uid is None:
            rest = [c for c in pool if c.order != top.order]
            return rest[0] if rest else None
        top = next(c for c in same if c.place.unit_id == uid)
    return top


def locate(
    registry: Registry, district: str | None, street: str | None, address: str | None,
    content: str, *, at: date | datetime | None = None,
) -> Location:
    """District and street from the event fields, else from the address and text.

    Args:
        registry: units and place names.
        district, street, address: the event's fields, as the caller or operator gave them.
        content: the request text.
        at: the day the request was filed (unit names and units change); default today.
    """
    day = _day(at)
    dist = registry.district(district)
    conflict: str | None = None

    if street:
        uid = registry.street(dist, street, at=day)
        if uid is None and dist is not None:
            # The street named is not in the district the caller gave: the street is the
            # more specific fact (callers mix up districts near their borders).
            other = registry.street(None, street, at=day)
            rec = registry.record(other) if other else None
            if rec is not None and rec.district:
                conflict = f"{street} is in {rec.district}, not {dist}"
                uid, dist = other, rec.district
        if uid is not None:
            return _finish(registry, dist, uid, "street-field", street, None, conflict, day)

    texts = [(t, s) for t, s in ((street, "street-field"), (address, "address"),
                                 (content, "content")) if t]
    mentioned: list[str] = []
    candidates: list[_Candidate] = []
    outside: list[str] = []
    for rank, (text, source) in enumerate(texts):
        ds, cs = _scan(registry, text, source, rank, day, outside)
        mentioned.extend(ds)
        candidates.extend(cs)
    if dist is None and mentioned:
        dist = mentioned[0]
    best = _best(registry, candidates, dist, day)
    if best is None and dist is not None and district:
        # Nothing in the district the caller gave, but a landmark or compound elsewhere is
        # named: the place of the problem is more specific than the caller's district
        # ("我住朝阳…北京站门口出租车拒载").
        named = [c for c in candidates if c.strength >= _STRENGTH["compound"]]
        landmark = _best(registry, named, None, day)
        if landmark is not None:
            conflict = f"{landmark.phrase} is in {landmark.place.district}, not {dist}"
            dist, best = landmark.place.district, landmark
    if best is None and dist is None:
        # A compound whose parts lie in several streets of one district ("天通东苑"): the
        # district is known even if the street is not.
        dist = _one_district(candidates, day)
    # A place outside the city is kept even beside a Beijing one ("我是北京大兴人…固安的厂子"):
    # which of them the problem is at is for a person to say.
    away = outside[0] if outside else None
    if best is None:
        unsure = tuple(dict.fromkeys(c.phrase for c in candidates if c.ambiguous))
        return Location(dist, None, conflict=conflict, ambiguous=unsure, outside=away)
    found = _finish(registry, dist or best.place.district, best.place.unit_id, best.source,
                    best.phrase, best.place.property_company, conflict, day)
    return replace(found, outside=away) if away else found


def _agreed(pool: list[_Candidate]) -> list[_Candidate]:
    """Where two phrases, each in several streets, share exactly one ("长辛店东南街": 东南街
    is in 丰台 and 门头沟, 长辛店 a street and a former town), that street's candidates."""
    by_phrase: dict[int, set[str]] = {}
    for c in pool:
        by_phrase.setdefault(c.order, set()).add(c.place.unit_id)
    if len(by_phrase) < 2:
        return []
    common = set.intersection(*by_phrase.values())
    if len(common) != 1:
        return []
    unit = common.pop()
    return [replace(c, ambiguous=False) for c in pool if c.place.unit_id == unit]


def _one_district(candidates: list[_Candidate], day: date) -> str | None:
    strong = [c for c in candidates if c.place.current_at(day)
              and c.strength >= _STRENGTH["compound"]]
    districts = {c.place.district for c in strong}
    return districts.pop() if len(districts) == 1 else None


def _finish(registry: Registry, district: str | None, unit_id: str, source: str, phrase: str,
            company: str | None, conflict: str | None, day: date) -> Location:
    """Follow a retired unit to its successor; district from the unit when not given."""
    current = registry.current(unit_id, day)
    rec = registry.record(unit_id)
    district = district or (rec.district if rec else None)
    if current is None:
        return Location(district, None, source, phrase, None, conflict)
    return Location(district, current, source, phrase, company, conflict)


def find_street(registry: Registry, district: str | None, text: str, day: date) -> str | None:
    """The street/town a text names (within the district when known), or None."""
    _, candidates = _scan(registry, text, "address", 0, day)
    best = _best(registry, candidates, district, day)
    return best.place.unit_id if best else None


def find_street_in(registry: Registry, district: str | None, address: str) -> str | None:
    """The street/town an address names today (within the district when known), or None."""
    return find_street(registry, district, address, date.today())
