"""The unit registry: districts, streets/towns/townships, departments and utilities.

Loaded from the CSV files in the config folder and checked at start-up; a bad row stops
the process with the file and line named.
"""

from __future__ import annotations

import csv
from dataclasses import dataclass, field
from pathlib import Path

from workflows.model import Unit

UNIT_KINDS = {"street", "town", "township"}
ORG_KINDS = {"department", "utility"}
# The centre itself (北京市政务服务和数据管理局 runs 12345): leads when nothing is known
# about where a local matter happened.
CITY_CENTRE_ID = "bj-gov-services"
_STREET_SUFFIXES = ("地区办事处", "街道办事处", "街道", "地区", "镇", "乡")


class RegistryError(ValueError):
    """A registry file is missing or has a bad row."""


@dataclass
class Registry:
    """Every unit that can receive a dispatch, with lookups the router needs."""

    units: dict[str, Unit] = field(default_factory=dict)
    # district name → district government unit id (district code)
    districts: dict[str, str] = field(default_factory=dict)
    # (district name, street name) → unit id; plus short forms ("望京" for 望京街道)
    streets: dict[tuple[str, str], str] = field(default_factory=dict)
    # street name → [(district, unit id)], for addresses that name no district
    street_names: dict[str, list[tuple[str, str]]] = field(default_factory=dict)

    def get(self, unit_id: str) -> Unit | None:
        return self.units.get(unit_id)

    def district(self, text: str | None) -> str | None:
        """The registry's district name for what a caller said ("朝阳" → "朝阳区")."""
        if not text:
            return None
        text = text.strip()
        if text in self.districts:
            return text
        for name in self.districts:
            if name.removesuffix("区") == text.removesuffix("区"):
                return name
        return None

    def street(self, district: str | None, text: str | None) -> str | None:
        """The unit id of a named street/town/township, within the district when known."""
        if not text:
            return None
        short = short_street_name(text.strip())
        if district:
            return self.streets.get((district, short))
        matches = self.street_names.get(short, [])
        return matches[0][1] if len(matches) == 1 else None

    def find_street_in(self, district: str | None, address: str) -> str | None:
        """The longest street name that appears in ``address`` (within the district)."""
        best: tuple[int, str] | None = None
        for short, entries in self.street_names.items():
            if len(short) < 2 or short not in address:
                continue
            candidates = [uid for d, uid in entries if district is None or d == district]
            if len(candidates) == 1 and (best is None or len(short) > best[0]):
                best = (len(short), candidates[0])
        return best[1] if best else None


def short_street_name(name: str) -> str:
    for suffix in _STREET_SUFFIXES:
        if name.endswith(suffix) and len(name) > len(suffix):
            return name[: -len(suffix)]
    return name


def _rows(path: Path, required: list[str]) -> list[tuple[int, dict[str, str]]]:
    try:
        with path.open(encoding="utf-8", newline="") as fh:
            reader = csv.DictReader(fh)
            missing = [c for c in required if c not in (reader.fieldnames or [])]
            if missing:
                raise RegistryError(f"{path}: missing columns {missing}")
            rows = []
            for line, row in enumerate(reader, start=2):
                empty = [c for c in required if not (row.get(c) or "").strip()]
                if empty:
                    raise RegistryError(f"{path}:{line}: empty {', '.join(empty)}")
                rows.append((line, {k: (v or "").strip() for k, v in row.items()}))
            return rows
    except FileNotFoundError as err:
        raise RegistryError(f"{path}: file not found") from err


def load_registry(config_dir: Path) -> Registry:
    """Build the registry from ``beijing_units.csv`` and ``beijing_departments.csv``."""
    reg = Registry()
    units_path = config_dir / "beijing_units.csv"
    cols = ["district_code", "district_name", "unit_code", "unit_name", "unit_kind"]
    for line, row in _rows(units_path, cols):
        if row["unit_kind"] not in UNIT_KINDS:
            raise RegistryError(f"{units_path}:{line}: unknown unit_kind {row['unit_kind']!r}")
        if not (row["unit_code"].isdigit() and row["unit_code"].startswith(row["district_code"])):
            raise RegistryError(
                f"{units_path}:{line}: unit_code {row['unit_code']!r} is not in district "
                f"{row['district_code']}"
            )
        if row["unit_code"] in reg.units:
            raise RegistryError(f"{units_path}:{line}: duplicate unit_code {row['unit_code']}")
        district = row["district_name"]
        gov_id = row["district_code"]
        if district not in reg.districts:
            reg.districts[district] = gov_id
            reg.units[gov_id] = Unit(gov_id, f"{district}人民政府", "district", district)
        unit = Unit(row["unit_code"], row["unit_name"], row["unit_kind"], district)
        reg.units[unit.unit_id] = unit
        short = short_street_name(unit.name)
        reg.streets[(district, unit.name)] = unit.unit_id
        reg.streets.setdefault((district, short), unit.unit_id)
        reg.street_names.setdefault(short, []).append((district, unit.unit_id))

    orgs_path = config_dir / "beijing_departments.csv"
    for line, row in _rows(orgs_path, ["slug", "name_zh", "kind"]):
        if row["kind"] not in ORG_KINDS:
            raise RegistryError(f"{orgs_path}:{line}: unknown kind {row['kind']!r}")
        if row["slug"] in reg.units:
            raise RegistryError(f"{orgs_path}:{line}: duplicate slug {row['slug']}")
        reg.units[row["slug"]] = Unit(row["slug"], row["name_zh"], row["kind"], None)
    if CITY_CENTRE_ID not in reg.units:
        raise RegistryError(f"{orgs_path}: the city centre unit {CITY_CENTRE_ID!r} is missing")
    return reg
