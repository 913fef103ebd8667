"""Residents' and villagers' committees (NBS 2023) as place names of their street.

Callers name their community or compound far more often than their street (安慧里,
天通东苑, 北苑家园): ``beijing_communities.csv`` turns those names into the street or
town whose territory they are in. Loaded after the units and the gazetteer, which win.
"""

from __future__ import annotations

import re
from pathlib import Path

from activities.dispatch.registry import (
    IGNORE_KIND,
    STREET_KINDS,
    Place,
    Registry,
    RegistryError,
    rows,
)

# Residents' and villagers' committees: the official name's tail is the committee, not
# the place callers say ("安慧里社区居委会" → 安慧里社区, 安慧里).
# Longest first; 570 rows are written as plain "…社区" (隆恩颐园社区), and callers drop it.
_COMMITTEE_SUFFIX = re.compile(
    r"(社区居民委员会|社区居委会|村民委员会|村委会|居民委员会|居委会|管委会|委员会|社区)$")
# "天通东苑第三北" and "八里庄北里东" are parts of 天通东苑 and 八里庄北里: callers name the whole.
_COMMUNITY_PART = re.compile(r"(第?[一二三四五六七八九十]+[东西南北中]?|[东西南北中])$")
# "天通西苑第三社区" is said "天通西苑三区".
_NUMBERED_PART = re.compile(r"^(.{2,})第([一二三四五六七八九十]+)[东西南北中]?$")
# A name made only of a direction, a part word and a number ("西里二区", "北区", "东里") says
# where in a compound more than which compound: the weakest of places, so that it never
# beats another name in the text ("马家堡西里二区" is 马家堡's), used only where nothing else
# is said and the district is known or it is in one district.
COMMUNITY_PART_KIND = "community-part"
_GENERIC = re.compile(r"^[东西南北中]{0,2}(里|区)?[一二三四五六七八九十]*(区|里)?(社区|小区)?$")
COMMUNITY_KIND = "community"
# A two-character committee name or a village's name without 村, said alone: a place only
# beside a word that makes it one (``community_stem_words``/``_before`` in locations.yaml).
COMMUNITY_STEM_KIND = "community-stem"
# A form ending like a residential compound or a committee ("北苑家园清友园", "西便门东里",
# "鲁谷住宅", "西便门内社区") is that compound's own name, more precise than the area or
# landmark name inside it (北苑, 西便门, 鲁谷), which may be another street's: it is indexed
# even so, and, being longer, wins. ("西单商场" alone still names the mall in 西城.)
_COMPOUND_TAIL = re.compile(r"(里|园|苑|区|住宅|公寓|新村|村|城|庭|府|居|湾|社区)$")
# What a compound's name may hold of another place and still be indexed: area names,
# landmarks and a unit's former name (南方庄社区 holds 方庄), not a unit's own name
# ("望京街道") — that one always says the street.
_YIELDING_KINDS = frozenset({"weak", "stem", "former", "road", "landmark", "compound",
                             "community", IGNORE_KIND})


def _committee(name: str) -> tuple[str, bool] | None:
    """An official committee name without its committee tail, and whether it is a
    villagers' committee; None where the name has no such tail."""
    match = _COMMITTEE_SUFFIX.search(name)
    if match is None:
        return None
    return name[: match.start()], match.group(1) in ("村民委员会", "村委会")


def community_forms(name: str) -> set[str]:
    """The names a caller may use for a committee's area, from its official name."""
    split = _committee(name)
    if split is None:
        return {name}
    base, village = split
    forms = {_as_said(base, village)}
    if not village:
        # Callers call the committee's area their compound (苏活小区 for 苏活社区); the
        # longer form also wins over an area name inside it (双花园小区: not 花园).
        forms.update((f"{base}社区", f"{base}小区"))
    whole = _COMMUNITY_PART.sub("", base)
    while whole != base and len(whole) >= 3:
        forms.add(whole)
        base, whole = whole, _COMMUNITY_PART.sub("", whole)
    # Two characters alone ("银闸", "马坡") are too often other words: only with 社区/村/小区
    # (and, as a ``community_stem``, before a place word).
    return {f for f in forms if len(f) >= 3}


def lane_form(name: str) -> str | None:
    """The lane a two-character residents' committee of the old city is named after
    (新鲜胡同 of 新鲜社区居委会): it says the committee even where the bare name is an
    ordinary word. None for other names."""
    split = _committee(name)
    if split is None or split[1] or len(split[0]) != 2:
        return None
    return f"{split[0]}胡同"


def _as_said(base: str, village: bool) -> str:
    """A committee's own name as callers say it: 安慧里 of 安慧里社区居委会, 马坡村 of
    马坡村委会 (a village's with 村)."""
    return f"{base}村" if village and not base.endswith("村") else base


def _own_name(official: str) -> str | None:
    """``_as_said`` of an official name, or None for a name with no committee tail."""
    split = _committee(official)
    return None if split is None else _as_said(*split)


def _minus_direction(name: str | None, form: str) -> bool:
    """Whether ``form`` is ``name`` without a last direction (南湖中园 of 南湖中园北)."""
    return name is not None and len(name) == len(form) + 1 and name.startswith(form) \
        and name[-1] in "东西南北中"


def numbered_form(name: str) -> str | None:
    """How callers say a numbered committee ("天通西苑第三社区" → "天通西苑三区"), or None.
    Weaker than an official name: another committee officially called so keeps it."""
    split = _committee(name)
    numbered = _NUMBERED_PART.match(split[0] if split else name)
    return f"{numbered.group(1)}{numbered.group(2)}区" if numbered else None


def is_generic(form: str) -> bool:
    """A form made only of a direction, a part word and a number ("西里二区", "北区")."""
    return bool(_GENERIC.match(form))


# The parts a compound's several committees add to its name (芳古园一区, 模式口西里南区):
# what is left is the compound's family name, which callers use alone (芳古园, 模式口).
_FAMILY_PARTS = re.compile(
    r"((?:[东西南北中]|[一二三四五六七八九十]+)[一二三四五六七八九十]*[东西南北中]?(?:区|里))+$")


def family_form(name: str) -> str | None:
    """The name a compound's several committees share, as callers say it ("芳古园" of
    芳古园一区第一社区, "模式口" of 模式口东里社区), or None where the name has no such
    part or leaves fewer than three characters."""
    split = _committee(name)
    if split is None or split[1]:
        return None
    base = _COMMUNITY_PART.sub("", split[0]) or split[0]
    family = _FAMILY_PARTS.sub("", base)
    return family if family != base and len(family) >= 3 else None


def community_stem(name: str) -> str | None:
    """The bare name callers use that ``community_forms`` leaves out for being too short
    or too plain alone: a residents' committee's two characters (精忠 of 精忠社区居委会), a
    village's name without 村 (东石桥 of 东石桥村委会); else None."""
    split = _committee(name)
    if split is None:
        return None
    base, village = split
    if village:
        # (Villages are also named 第一, 太平, 阳光, 湖南: such names are in
        # community_stem_excluded. A bare name kept here also tells that a place name said
        # alone may be this village's, not only the committee's it spells: ambiguous.)
        # (Two characters are a stem even ending in 村: 苏村 of 苏村村委会, too short for
        # community_forms, is a place only beside a place word.)
        return base if len(base) == 2 or (len(base) > 2 and not base.endswith("村")) else None
    return base if len(base) == 2 else None


def _may_hold(form: str, place: Place, district: str) -> bool:
    """Whether a committee's form may hold ``place``'s name and still be indexed: an area
    or landmark inside a compound-like name, the committee's own district (房山矿 in
    房山区), or a weak name ("旧鼓楼" is not 密云's 鼓楼)."""
    return ((_COMPOUND_TAIL.search(form) is not None and place.kind in _YIELDING_KINDS)
            or (place.kind == "district" and place.district == district)
            or place.kind == "weak")


def load_communities(reg: Registry, path: Path) -> None:
    """Committees (NBS codes) → the street or town whose territory they are in."""
    wanted: list[tuple[str, str, str, str]] = []  # form, unit, district, official name
    numbered: list[tuple[str, str, str, str]] = []
    stems: list[tuple[str, str, str, str]] = []  # the same for two-character names alone
    families: dict[str, set[tuple[str, str, str]]] = {}  # family name -> its committees
    excluded = reg.location_config.community_stem_excluded
    lanes = reg.location_config.community_lane_districts
    if unknown := sorted(lanes - {r.district for r in reg.records.values() if r.district}):
        raise RegistryError(f"locations.yaml: community_lane_districts names no district "
                            f"of Beijing: {', '.join(unknown)} (use names like 东城区)")
    for _line, row in rows(path, ["community_name", "street_code"], optional=True):
        rec = reg.records.get(row["street_code"])
        if rec is None or rec.kind not in STREET_KINDS or rec.district is None:
            # Committees of development zones and farms (NBS codes 4xx) belong to no
            # street office that takes dispatches: their names locate nothing.
            continue
        if rec.valid_to is not None:
            continue  # a committee of a retired unit: its successor's own list has it
        wanted.extend((form, rec.unit_id, rec.district, row["community_name"])
                      for form in community_forms(row["community_name"]))
        if rec.district in lanes and (
                lane := lane_form(row["community_name"])) is not None:
            wanted.append((lane, rec.unit_id, rec.district, row["community_name"]))
        if (said := numbered_form(row["community_name"])) is not None:
            numbered.append((said, rec.unit_id, rec.district, row["community_name"]))
        if (family := family_form(row["community_name"])) is not None:
            families.setdefault(family, set()).add((rec.unit_id, rec.district,
                                                    row["community_name"]))
        stem = community_stem(row["community_name"])
        if stem is not None and stem not in excluded:
            stems.append((stem, rec.unit_id, rec.district, row["community_name"]))
    # A committee's own name outranks the same words left when another's direction is
    # cut off (南湖中园 is 望京's 南湖中园社区, not 东湖's 南湖中园北社区 without 北); a
    # number cut off is what residents say (半壁店 for 半壁店第一社区), so that stays.
    # Only where one committee's name gives the form so: two (安德路南 and 安德路北) say it
    # is a road or an area both share, and it stays in both streets.
    names = {official: _own_name(official) for *_, official in wanted}
    own: dict[str, set[str]] = {}  # a committee's own name -> the units it names
    cut: dict[str, set[str]] = {}  # form -> the committees' names that give it by a cut
    for form, unit_id, _district, official in wanted:
        if (name := names[official]) is not None:
            own.setdefault(name, set()).add(unit_id)
            if _minus_direction(name, form):
                cut.setdefault(form, set()).add(name)
    wanted = [w for w in wanted
              if w[0] not in own or w[1] in own[w[0]] or len(cut.get(w[0], ())) > 1
              or not _minus_direction(names[w[3]], w[0])]
    official_forms = {w[0] for w in wanted}
    wanted.extend(n for n in numbered if n[0] not in official_forms)
    # A family name says its street only where two committees or more share it, all in
    # one street, and no committee is itself called so (广渠门外 of one committee is the
    # avenue's name more than a compound's).
    for family, members in families.items():
        if (family not in official_forms and len(members) > 1
                and len({m[0] for m in members}) == 1):
            unit_id, district, official = min(members)
            wanted.append((family, unit_id, district, official))
    # Checked against the units and the gazetteer alone, before any committee is added
    # (one build of the scan tables, not one per committee).
    kept = [
        (form, unit_id, district, official) for form, unit_id, district, official in wanted
        # A unit's own name or a reviewed gazetteer entry says it better; and a form that
        # holds another unit's or a landmark's name would hide that name from the text
        # ("西单商场", a dormitory's committee in 海淀, names 西单 in 西城 first).
        if not reg.places.get(form)
        and not any(p.unit_id != unit_id and not _may_hold(form, p, district)
                    for hit in reg.places.scan(form) for p in hit.values)
    ]
    # A bare name that is already a place (a street's stem, a landmark) keeps that meaning.
    kept_stems = [s for s in stems if not reg.places.get(s[0])]
    for form, unit_id, district, official in kept:
        kind = COMMUNITY_PART_KIND if is_generic(form) else COMMUNITY_KIND
        reg.places.add(form, Place(kind, unit_id, district, official))
    for form, unit_id, district, official in kept_stems:
        reg.places.add(form, Place(COMMUNITY_STEM_KIND, unit_id, district, official))
