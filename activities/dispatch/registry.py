"""The unit registry: districts, streets/towns/townships, departments, utilities and
property-management companies, with parents and effective dates; and the place names
(unit names in every form callers use, plus the operators' gazetteer) that point at them.

Everything comes from files in the config folder and is checked at start-up; a bad row
stops the process with the file and line named:

- ``beijing_units.csv``: the current streets, towns and townships (NBS codes);
- ``beijing_units_history.csv``: units established, renamed or retired since 2019, with
  the dates of the change, so a case filed in 2020 resolves "卢沟桥街道" to the unit that
  bore the name then;
- ``beijing_departments.csv``: municipal departments and public-service companies;
- ``property_companies.csv``: property-management companies (optional);
- ``gazetteer.csv``: roads, compounds, landmarks and areas → their street (optional);
- ``locations.yaml``: district aliases, name suffixes, and stems that are common words.
"""

from __future__ import annotations

import csv
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import Any

import yaml

from activities.dispatch.textindex import PhraseIndex, any_of
from workflows.model import Unit

STREET_KINDS = ("street", "town", "township")
UNIT_KINDS = set(STREET_KINDS)
ORG_KINDS = {"department", "utility"}
DISTRICT_KIND = "district"
PROPERTY_KIND = "property"
OUTSIDE_KIND = "outside"  # a place outside the city: no unit of ours is there
IGNORE_KIND = "ignore"  # a phrase recognised only so that its parts do not match
# The centre itself (北京市政务服务和数据管理局 runs 12345): leads when nothing is known
# about where a local matter happened.
CITY_CENTRE_ID = "bj-gov-services"
# Kept for callers of short_street_name(); the full list lives in locations.yaml.
_STREET_SUFFIXES = ("地区办事处", "街道办事处", "满族乡", "回族乡", "街道", "地区", "镇", "乡")
GAZETTEER_KINDS = ("road", "compound", "landmark", "area")
HISTORY_CHANGES = ("established", "renamed", "retired")
_DISTRICT_CODE = re.compile(r"^\d{6}$")
_UNIT_CODE = re.compile(r"^\d{9}$")


class RegistryError(ValueError):
    """A registry file is missing or has a bad row."""


@dataclass(frozen=True)
class UnitRecord:
    """Everything the registry knows about one unit.

    ``valid_to`` is exclusive: the unit no longer exists on that day. ``name_since`` is the
    day the current name took effect (a rename); ``former_names`` are (name, until).
    """

    unit_id: str
    name: str
    kind: str
    district: str | None = None
    parent: str | None = None
    valid_from: date | None = None
    valid_to: date | None = None
    successor: str | None = None
    name_since: date | None = None
    former_names: tuple[tuple[str, date], ...] = ()

    def valid_at(self, day: date) -> bool:
        """True when the unit exists on ``day``."""
        if self.valid_from is not None and day < self.valid_from:
            return False
        return self.valid_to is None or day < self.valid_to

    def as_unit(self) -> Unit:
        return Unit(self.unit_id, self.name, self.kind, self.district)


@dataclass(frozen=True, slots=True)
class Place:
    """What a place name found in a text points at.

    ``kind``: district, name (a unit's official name), street (another suffixed form of
    it: "望京地区", "黑庄户乡"), stem (a unit's name
    without suffix), weak (a stem that is also a common word: counts only before a place
    word), former (a name the unit had until ``until``), or a gazetteer kind (road,
    compound, landmark, area). ``unit_id`` is a street unit, or a district government for
    district names and gazetteer areas known only to the district.
    """

    kind: str
    unit_id: str
    district: str
    name: str  # the official (or former) name this phrase stands for
    since: date | None = None
    until: date | None = None
    property_company: str | None = None

    def current_at(self, day: date) -> bool:
        if self.since is not None and day < self.since:
            return False
        return self.until is None or day < self.until


@dataclass(frozen=True)
class GazetteerEntry:
    """One row of ``gazetteer.csv``."""

    name: str
    kind: str
    unit_id: str
    district: str
    property_company: str | None = None
    note: str = ""


@dataclass
class LocationConfig:
    """``locations.yaml``: how callers name districts and streets."""

    district_aliases: dict[str, str] = field(default_factory=dict)
    street_suffixes: list[str] = field(default_factory=lambda: list(_STREET_SUFFIXES))
    name_forms: list[str] = field(default_factory=lambda: ["街道", "地区", "镇", "乡"])
    weak_stems: set[str] = field(default_factory=set)
    place_words: tuple[str, ...] = ()
    noise_words: list[str] = field(default_factory=list)
    # Places outside Beijing callers name (燕郊, 廊坊): the city's units cannot act there.
    outside_places: list[str] = field(default_factory=list)
    # ... unless the place is said of a trip, a job or a friend (right after one of the
    # ``before`` words or right before one of the ``after`` ones, in the same clause), or
    # the caller says they are in Beijing (``in_beijing``, patterns).
    outside_away_before: tuple[str, ...] = ()
    outside_away_after: tuple[str, ...] = ()
    in_beijing: re.Pattern[str] | None = None
    # A Beijing place said only as a landmark beside a place outside the city ("怀来，离
    # 延庆挺近", "固安的，北京大兴那边挨着"): right after a ``before`` word or right before
    # an ``after`` one, it does not make the request a Beijing one.
    beijing_landmark_before: tuple[str, ...] = ()
    beijing_landmark_after: tuple[str, ...] = ()
    beijing_landmark_not_with: tuple[str, ...] = ()
    # A Beijing name right after a place outside the city (nothing, 的 or 市 between) that
    # ends or is followed by one of these is that city's road or district ("上海的延庆路",
    # "南通市通州区"), not Beijing's.
    outside_road_suffixes: tuple[str, ...] = ()
    # A committee's two-character name or a village's name without 村, said alone ("精忠那儿",
    # "我是东石桥的"), is a place only after or before one of these words; names that are also
    # ordinary words are never indexed bare.
    community_stem_words: tuple[str, ...] = ()
    community_stem_before: tuple[str, ...] = ()
    # ... or between one of these and 的 ("我是西钓的": where the caller belongs).
    community_stem_belong: tuple[str, ...] = ()
    # ... or as the last clause after one of these ("…，我们在长岭沟门。", "村子是杨秀店。").
    community_stem_lead_ins: tuple[str, ...] = ()
    # Where a two-character committee's lane ("新鲜胡同") names it (the old city).
    community_lane_districts: frozenset[str] = frozenset()
    community_stem_excluded: set[str] = field(default_factory=set)


@dataclass
class Registry:
    """Every unit that can receive a dispatch, with the lookups the router needs."""

    # units that exist now or are scheduled (no end date), as the workflow's Unit type
    units: dict[str, Unit] = field(default_factory=dict)
    # every unit ever known, retired ones included
    records: dict[str, UnitRecord] = field(default_factory=dict)
    # district name → district government unit id (district code)
    districts: dict[str, str] = field(default_factory=dict)
    # (district name, street name or stem) → unit id
    streets: dict[tuple[str, str], str] = field(default_factory=dict)
    # street stem → [(district, unit id)], for addresses that name no district
    street_names: dict[str, list[tuple[str, str]]] = field(default_factory=dict)
    # every place name → what it points at (unit names in all forms, gazetteer, districts)
    places: PhraseIndex[Place] = field(default_factory=PhraseIndex)
    gazetteer: list[GazetteerEntry] = field(default_factory=list)
    location_config: LocationConfig = field(default_factory=LocationConfig)

    def get(self, unit_id: str) -> Unit | None:
        """The unit with this id, current or retired."""
        unit = self.units.get(unit_id)
        if unit is not None:
            return unit
        record = self.records.get(unit_id)
        return record.as_unit() if record else None

    def record(self, unit_id: str) -> UnitRecord | None:
        return self.records.get(unit_id)

    def district_government(self, district: str) -> str:
        return self.districts[district]

    def current(self, unit_id: str, day: date) -> str | None:
        """``unit_id`` if it exists on ``day``, else its successor that does (or None)."""
        seen: set[str] = set()
        uid: str | None = unit_id
        while uid is not None and uid not in seen:
            seen.add(uid)
            rec = self.records.get(uid)
            if rec is None:
                return None
            if rec.valid_at(day):
                return uid
            if rec.valid_from is not None and day < rec.valid_from:
                return None
            uid = rec.successor
        return None

    def district(self, text: str | None) -> str | None:
        """The registry's district name for what a caller said ("朝阳" → "朝阳区")."""
        if not text:
            return None
        text = text.strip().removeprefix("北京市").removeprefix("北京")
        if text in self.districts:
            return text
        alias = self.location_config.district_aliases.get(text)
        if alias:
            return alias
        for name in self.districts:
            if name.removesuffix("区") == text.removesuffix("区"):
                return name
        for hit in self.places.scan(text):
            for place in hit.values:
                if place.kind == DISTRICT_KIND:
                    return place.district
        return None

    def street(self, district: str | None, text: str | None, *, at: date | None = None
               ) -> str | None:
        """The unit id of a named street/town/township, within the district when known.

        Accepts the forms callers use: "望京", "望京街道", "望京地区办事处", "黑庄户乡" for
        黑庄户地区, a former name (resolved as of ``at``, default today).
        """
        if not text:
            return None
        day = at or date.today()
        name = _clean(text, self.location_config.noise_words)
        for d in self.districts:  # "朝阳区望京街道" in the street field
            if name.startswith(d) and len(name) > len(d):
                name = name[len(d):]
                district = district or d
                break
        candidates = [p for p in self.places.get(name) if p.kind not in (DISTRICT_KIND, "area")]
        if not candidates:
            name = short_street_name(name, self.location_config.street_suffixes)
            candidates = [p for p in self.places.get(name)
                          if p.kind in ("stem", "weak", "street", "name")]
        return pick_unit(name, candidates, district, day)

    def unit_place_names(self) -> set[str]:
        """Every form of every district and unit name (not the gazetteer's entries)."""
        names: set[str] = set()
        for phrase in self.places.phrases():
            kinds = {p.kind for p in self.places.get(phrase)}
            if kinds & {DISTRICT_KIND, "name", "street", "stem", "weak", "former"}:
                names.add(phrase)
        return names


def pick_unit(phrase: str, candidates: list[Place] | tuple[Place, ...], district: str | None,
              day: date) -> str | None:
    """One street unit among the places a phrase names: the one in the district, the one
    whose name is current on ``day`` (an official name before a derived form), else a
    former name; None when it stays ambiguous."""
    if district:
        candidates = [p for p in candidates if p.district == district]
    if not candidates:
        return None
    current = [p for p in candidates if p.current_at(day)]
    exact = [p for p in current if p.name == phrase]
    pool = exact or current or [p for p in candidates if p.kind == "former"]
    ids = {p.unit_id for p in pool}
    return next(iter(ids)) if len(ids) == 1 else None


def short_street_name(name: str, suffixes: tuple[str, ...] | list[str] = _STREET_SUFFIXES
                      ) -> str:
    """The name without its suffix: "望京街道" → "望京", "于家务回族乡" → "于家务"."""
    for suffix in sorted(suffixes, key=len, reverse=True):
        if name.endswith(suffix) and len(name) > len(suffix):
            return name[: -len(suffix)]
    return name


def _clean(text: str, noise: list[str]) -> str:
    text = re.sub(r"\s+", "", text).removeprefix("北京市").removeprefix("北京")
    for word in noise:
        text = text.replace(word, "")
    return text


# --- loading ----------------------------------------------------------------------------------


def rows(path: Path, required: list[str], *, optional: bool = False
          ) -> list[tuple[int, dict[str, str]]]:
    """CSV rows with their line numbers; lines starting with ``#`` are comments."""
    if not path.exists():
        if optional:
            return []
        raise RegistryError(f"{path}: file not found")
    with path.open(encoding="utf-8", newline="") as fh:
        numbered = [(i, line) for i, line in enumerate(fh, start=1)
                    if line.strip() and not line.lstrip().startswith("#")]
    if not numbered:
        raise RegistryError(f"{path}: no header row")
    reader = csv.DictReader(line for _, line in numbered)
    missing = [c for c in required if c not in (reader.fieldnames or [])]
    if missing:
        raise RegistryError(f"{path}: missing columns {missing}")
    rows = []
    for (line, _), row in zip(numbered[1:], reader, strict=True):
        if None in row:
            raise RegistryError(f"{path}:{line}: more fields than the header has")
        empty = [c for c in required if not (row.get(c) or "").strip()]
        if empty:
            raise RegistryError(f"{path}:{line}: empty {', '.join(empty)}")
        rows.append((line, {k: (v or "").strip() for k, v in row.items()}))
    return rows


def _date(path: Path, line: int, column: str, text: str) -> date | None:
    if not text:
        return None
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise RegistryError(f"{path}:{line}: {column} {text!r} is not a date (YYYY-MM-DD)"
                            ) from None


def load_location_config(path: Path) -> LocationConfig:
    """Read ``locations.yaml`` (optional: defaults when absent)."""
    if not path.exists():
        return LocationConfig()
    try:
        data: Any = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except yaml.YAMLError as err:
        raise RegistryError(f"{path}: not valid YAML: {err}") from None
    if not isinstance(data, dict):
        raise RegistryError(f"{path}: must be a mapping")
    known = {"version", "district_aliases", "street_suffixes", "name_forms", "weak_stems",
             "place_words", "noise_words", "outside_places", "community_stem_words",
             "community_stem_before", "community_stem_belong", "community_stem_excluded",
             "community_lane_districts", "community_stem_lead_ins", "outside_away_before",
             "outside_away_after", "in_beijing", "beijing_landmark_before",
             "beijing_landmark_after", "beijing_landmark_not_with",
             "outside_road_suffixes"}
    unknown = sorted(set(data) - known)
    if unknown:
        raise RegistryError(f"{path}: unknown keys {unknown}")

    def strings(key: str) -> list[str]:
        value = data.get(key) or []
        if not isinstance(value, list) or not all(isinstance(v, str) and v for v in value):
            raise RegistryError(f"{path}: {key} must be a list of non-empty strings")
        return value

    aliases = data.get("district_aliases") or {}
    if not isinstance(aliases, dict) or not all(
        isinstance(k, str) and isinstance(v, str) for k, v in aliases.items()
    ):
        raise RegistryError(f"{path}: district_aliases must map names to district names")
    try:
        here = any_of(strings("in_beijing"))
    except re.error as err:
        raise RegistryError(f"{path}: in_beijing: not a valid pattern: {err}") from None
    cfg = LocationConfig(
        district_aliases=dict(aliases),
        weak_stems=set(strings("weak_stems")),
        place_words=tuple(sorted(strings("place_words"), key=len, reverse=True)),
        noise_words=strings("noise_words"),
        outside_places=strings("outside_places"),
        community_stem_words=tuple(sorted(strings("community_stem_words"), key=len,
                                          reverse=True)),
        community_stem_before=tuple(strings("community_stem_before")),
        community_stem_belong=tuple(strings("community_stem_belong")),
        community_stem_lead_ins=tuple(sorted(strings("community_stem_lead_ins"), key=len,
                                             reverse=True)),
        community_lane_districts=frozenset(strings("community_lane_districts")),
        community_stem_excluded=set(strings("community_stem_excluded")),
        outside_away_before=tuple(strings("outside_away_before")),
        outside_away_after=tuple(strings("outside_away_after")),
        in_beijing=here,
        beijing_landmark_before=tuple(strings("beijing_landmark_before")),
        beijing_landmark_after=tuple(strings("beijing_landmark_after")),
        beijing_landmark_not_with=tuple(strings("beijing_landmark_not_with")),
        outside_road_suffixes=tuple(strings("outside_road_suffixes")),
    )
    long = [w for w in cfg.beijing_landmark_before if len(w) > 3]
    if long:
        raise RegistryError(f"{path}: beijing_landmark_before: {long} are longer than the "
                            "three characters looked at before a place")
    if "street_suffixes" in data:
        cfg.street_suffixes = strings("street_suffixes")
    if "name_forms" in data:
        cfg.name_forms = strings("name_forms")
    return cfg


def load_registry(config_dir: Path) -> Registry:
    """Build the registry and its place names from the files in ``config_dir``."""
    reg = Registry()
    reg.location_config = load_location_config(config_dir / "locations.yaml")
    _load_units(reg, config_dir / "beijing_units.csv")
    _load_history(reg, config_dir / "beijing_units_history.csv")
    _load_orgs(reg, config_dir / "beijing_departments.csv")
    companies = _load_property_companies(reg, config_dir / "property_companies.csv")
    _check_aliases(reg, config_dir / "locations.yaml")
    _index_units(reg)
    _load_gazetteer(reg, config_dir / "gazetteer.csv", companies)
    return reg


def _load_units(reg: Registry, path: Path) -> None:
    cols = ["district_code", "district_name", "unit_code", "unit_name", "unit_kind"]
    for line, row in rows(path, cols):
        if row["unit_kind"] not in UNIT_KINDS:
            raise RegistryError(f"{path}:{line}: unknown unit_kind {row['unit_kind']!r}")
        if not _DISTRICT_CODE.match(row["district_code"]):
            raise RegistryError(f"{path}:{line}: district_code {row['district_code']!r} "
                                "is not 6 digits")
        if not (_UNIT_CODE.match(row["unit_code"])
                and row["unit_code"].startswith(row["district_code"])):
            raise RegistryError(
                f"{path}:{line}: unit_code {row['unit_code']!r} is not in district "
                f"{row['district_code']}"
            )
        if row["unit_code"] in reg.records:
            raise RegistryError(f"{path}:{line}: duplicate unit_code {row['unit_code']}")
        district, gov_id = row["district_name"], row["district_code"]
        known = reg.districts.get(district)
        if known is not None and known != gov_id:
            raise RegistryError(f"{path}:{line}: district {district} has code {known}, "
                                f"not {gov_id}")
        if known is None:
            if gov_id in reg.records:
                raise RegistryError(f"{path}:{line}: district code {gov_id} has two names")
            reg.districts[district] = gov_id
            reg.records[gov_id] = UnitRecord(gov_id, f"{district}人民政府", DISTRICT_KIND,
                                             district, parent=None)
        reg.records[row["unit_code"]] = UnitRecord(
            row["unit_code"], row["unit_name"], row["unit_kind"], district, parent=gov_id,
        )


def _load_history(reg: Registry, path: Path) -> None:
    cols = ["unit_code", "unit_name", "district_code", "unit_kind", "change"]
    names_by_code = {code: d for d, code in reg.districts.items()}
    for line, row in rows(path, cols, optional=True):
        code, change = row["unit_code"], row["change"]
        where = f"{path}:{line}"
        if change not in HISTORY_CHANGES:
            raise RegistryError(f"{where}: unknown change {change!r} "
                                f"(one of {', '.join(HISTORY_CHANGES)})")
        valid_from = _date(path, line, "valid_from", row.get("valid_from", ""))
        valid_to = _date(path, line, "valid_to", row.get("valid_to", ""))
        if valid_from and valid_to and valid_from >= valid_to:
            raise RegistryError(f"{where}: valid_from must be before valid_to")
        district = names_by_code.get(row["district_code"])
        if district is None:
            raise RegistryError(f"{where}: unknown district_code {row['district_code']!r}")
        if not (_UNIT_CODE.match(code) and code.startswith(row["district_code"])):
            raise RegistryError(f"{where}: unit_code {code!r} is not in district "
                                f"{row['district_code']}")
        current = reg.records.get(code)
        if change == "established":
            if current is None or current.name != row["unit_name"]:
                raise RegistryError(f"{where}: established unit {code} {row['unit_name']} "
                                    "is not in beijing_units.csv under that name")
            if valid_from is None:
                raise RegistryError(f"{where}: an established unit needs valid_from")
            reg.records[code] = _replace(current, valid_from=valid_from)
        elif change == "renamed":
            if current is None or current.kind == DISTRICT_KIND:
                raise RegistryError(f"{where}: renamed unit {code} is not a current unit")
            if valid_to is None:
                raise RegistryError(f"{where}: a rename needs valid_to (the day the old "
                                    "name ended)")
            reg.records[code] = _replace(
                current, name_since=max(filter(None, (current.name_since, valid_to))),
                former_names=(*current.former_names, (row["unit_name"], valid_to)),
            )
        else:  # retired
            if current is not None:
                raise RegistryError(f"{where}: retired unit {code} is still in "
                                    "beijing_units.csv")
            if valid_to is None:
                raise RegistryError(f"{where}: a retired unit needs valid_to")
            if row["unit_kind"] not in UNIT_KINDS:
                raise RegistryError(f"{where}: unknown unit_kind {row['unit_kind']!r}")
            successor = row.get("successor") or None
            reg.records[code] = UnitRecord(
                code, row["unit_name"], row["unit_kind"], district,
                parent=row["district_code"], valid_from=valid_from, valid_to=valid_to,
                successor=successor,
            )
    for line, row in rows(path, cols, optional=True):
        successor = row.get("successor") or None
        if successor and successor not in reg.records:
            raise RegistryError(f"{path}:{line}: successor {successor!r} is not a known unit")
    for uid, rec in reg.records.items():
        if rec.valid_to is None:
            reg.units[uid] = rec.as_unit()


def _replace(rec: UnitRecord, **changes: Any) -> UnitRecord:
    from dataclasses import replace

    return replace(rec, **changes)


def _load_orgs(reg: Registry, path: Path) -> None:
    for line, row in rows(path, ["slug", "name_zh", "kind"]):
        if row["kind"] not in ORG_KINDS:
            raise RegistryError(f"{path}:{line}: unknown kind {row['kind']!r}")
        if row["slug"] in reg.records:
            raise RegistryError(f"{path}:{line}: duplicate slug {row['slug']}")
        rec = UnitRecord(row["slug"], row["name_zh"], row["kind"], None)
        reg.records[rec.unit_id] = rec
        reg.units[rec.unit_id] = rec.as_unit()
    if CITY_CENTRE_ID not in reg.units:
        raise RegistryError(f"{path}: the city centre unit {CITY_CENTRE_ID!r} is missing")


def _load_property_companies(reg: Registry, path: Path) -> set[str]:
    slugs: set[str] = set()
    for line, row in rows(path, ["slug", "name_zh"], optional=True):
        if row["slug"] in reg.records:
            raise RegistryError(f"{path}:{line}: duplicate unit id {row['slug']}")
        if not row["slug"].startswith("pm-"):
            raise RegistryError(f"{path}:{line}: a property company's slug starts with 'pm-'")
        rec = UnitRecord(row["slug"], row["name_zh"], PROPERTY_KIND, None)
        reg.records[rec.unit_id] = rec
        reg.units[rec.unit_id] = rec.as_unit()
        slugs.add(rec.unit_id)
    return slugs


def _check_aliases(reg: Registry, path: Path) -> None:
    for alias, target in reg.location_config.district_aliases.items():
        if target not in reg.districts:
            raise RegistryError(f"{path}: district_aliases.{alias}: {target!r} is not a "
                                "district")


def _street_forms(rec: UnitRecord, cfg: LocationConfig) -> Iterator[tuple[str, str]]:
    """(phrase, kind) for every way a caller may name the unit today."""
    yield rec.name, "name"
    stem = short_street_name(rec.name, cfg.street_suffixes)
    if len(stem) < 2 or stem == rec.name:
        return
    for suffix in cfg.name_forms:
        if stem + suffix != rec.name:
            yield stem + suffix, "street"
    yield stem, "weak" if stem in cfg.weak_stems else "stem"


def _index_units(reg: Registry) -> None:
    cfg = reg.location_config
    short_districts = {d.removesuffix("区") for d in reg.districts}
    for district, gov_id in reg.districts.items():
        for phrase in {district, district.removesuffix("区"), f"{district}政府",
                       f"{district}人民政府"}:
            reg.places.add(phrase, Place(DISTRICT_KIND, gov_id, district, district))
    for alias, district in cfg.district_aliases.items():
        reg.places.add(alias, Place(DISTRICT_KIND, reg.districts[district], district, district))
    for name in cfg.outside_places:
        reg.places.add(name, Place(OUTSIDE_KIND, "", "", name))
    for word in cfg.noise_words:
        reg.places.add(word, Place(IGNORE_KIND, "", "", word))

    for rec in reg.records.values():
        if rec.kind not in UNIT_KINDS or rec.district is None:
            continue
        retired = rec.valid_to is not None
        for phrase, kind in _street_forms(rec, cfg):
            if phrase in short_districts:  # "海淀" is the district; "海淀街道" the street
                continue
            if retired:  # a retired unit's names are former names of its area
                place = Place("former", rec.unit_id, rec.district, rec.name,
                              since=rec.valid_from, until=rec.valid_to)
            else:
                # a renamed unit's official name starts on the rename; the derived forms
                # (stem, other suffixes) existed before and are shared with the old name
                since = rec.valid_from
                if kind == "name" and rec.name_since:
                    since = max(filter(None, (rec.valid_from, rec.name_since)))
                place = Place(kind, rec.unit_id, rec.district, rec.name, since=since)
            reg.places.add(phrase, place)
            if not retired and kind in ("name", "street", "stem", "weak"):
                reg.streets.setdefault((rec.district, phrase), rec.unit_id)
            if not retired and kind in ("stem", "weak"):
                reg.street_names.setdefault(phrase, []).append((rec.district, rec.unit_id))
        for former, until in rec.former_names:
            stem = short_street_name(former, cfg.street_suffixes)
            forms = {former, *(stem + s for s in cfg.name_forms)}
            if len(stem) >= 2 and stem not in short_districts:
                forms.add(stem)
            for phrase in forms:
                reg.places.add(phrase, Place("former", rec.unit_id, rec.district, former,
                                             until=until))
        if not retired:
            reg.streets[(rec.district, rec.name)] = rec.unit_id


def _load_gazetteer(reg: Registry, path: Path, companies: set[str]) -> None:
    seen: dict[tuple[str, str], tuple[int, str]] = {}
    for line, row in rows(path, ["name", "kind", "unit_code"], optional=True):
        where = f"{path}:{line}"
        name, kind, code = row["name"], row["kind"], row["unit_code"]
        if kind not in GAZETTEER_KINDS:
            raise RegistryError(f"{where}: unknown kind {kind!r} "
                                f"(one of {', '.join(GAZETTEER_KINDS)})")
        if len(name) < 2:
            raise RegistryError(f"{where}: name {name!r} is too short to match safely")
        rec = reg.records.get(code)
        if rec is None or rec.kind not in (*STREET_KINDS, DISTRICT_KIND) or rec.district is None:
            raise RegistryError(f"{where}: unit_code {code!r} is not a street, town, township "
                                "or district code in the registry")
        if rec.valid_to is not None:
            raise RegistryError(f"{where}: unit_code {code} ({rec.name}) was retired on "
                                f"{rec.valid_to}")
        company = row.get("property") or None
        if company and company not in companies:
            raise RegistryError(f"{where}: property {company!r} is not in "
                                "property_companies.csv")
        if company and kind != "compound":
            raise RegistryError(f"{where}: only a compound can have a property company")
        key = (name, rec.district)
        if key in seen and seen[key][1] != code:
            raise RegistryError(f"{where}: {name} in {rec.district} already points at "
                                f"{seen[key][1]} (line {seen[key][0]})")
        seen[key] = (line, code)
        entry = GazetteerEntry(name, kind, code, rec.district, company, row.get("note", ""))
        reg.gazetteer.append(entry)
        place_kind = "area" if rec.kind == DISTRICT_KIND else kind
        reg.places.add(name, Place(place_kind, code, rec.district, name,
                                   property_company=company))

