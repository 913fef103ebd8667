"""Open311 GeoReport v2 mapping: our categories, filings and ledger rows in the spec's shapes.

Pure functions, no I/O: :mod:`workers.open311.service` serves them over HTTP. The spec is
GeoReport v2 (http://wiki.open311.org/GeoReport_v2); statuses beyond open/closed follow
FixMyStreet's Open311 extension (``extended_status``).
"""

from __future__ import annotations

import hashlib
import math
import uuid
import xml.etree.ElementTree as ET
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from zoneinfo import ZoneInfo

from activities.dispatch.lexicon import KINDS, Category, Lexicon
from activities.dispatch.registry import Registry

BEIJING = ZoneInfo("Asia/Shanghai")
SPECIFICATION = "http://wiki.open311.org/GeoReport_v2"
# Our service requests get ids of their own shape, so they never collide with the call
# centre's upstream ids (BJyyyymmdd-NNNNNN).
ID_PREFIX = "311-"
MAX_DESCRIPTION = 4000  # the spec's limit
MAX_FIELD = 500
CHANNELS = ("APP", "WEB", "WECHAT", "MINI_PROGRAM", "EMAIL", "OTHER")

KIND_NAMES: dict[str, str] = {
    "CONSULTATION": "咨询", "HELP": "求助", "COMPLAINT": "投诉", "REPORT": "举报",
    "SUGGESTION": "建议", "PRAISE": "表扬",
}
TIER_NAMES: dict[str, str] = {
    "T2H": "2 hours", "T24H": "24 hours", "T7D": "7 days", "T15D": "15 days",
}

# Form fields of POST requests that are the caller's contact details: used to file the
# case (the unit and the callback centre need them) and never stored here or returned.
CONTACT_FIELDS = ("email", "first_name", "last_name", "phone", "device_id", "account_id")


class Open311Error(Exception):
    """An error the spec reports as ``[{"code": ..., "description": ...}]``."""

    def __init__(self, code: int, description: str) -> None:
        super().__init__(description)
        self.code = code
        self.description = description


@dataclass(frozen=True)
class ApiClient:
    """One app allowed to POST requests; ``channel`` is recorded on its filings."""

    name: str
    key: str
    channel: str = "APP"


# --- services -------------------------------------------------------------------------------


def service(category: Category, lexicon: Lexicon) -> dict[str, Any]:
    """One entry of ``GET services``."""
    group = lexicon.top_levels.get(category.top, category.top)
    keywords = [*category.strong, *category.keywords][:8]
    return {
        "service_code": category.code,
        "service_name": category.name,
        "description": f"{category.name}: handled within {TIER_NAMES[category.tier]}",
        "metadata": True,
        "type": "realtime",
        "keywords": ",".join(keywords),
        "group": group,
    }


def services(lexicon: Lexicon) -> list[dict[str, Any]]:
    return [service(c, lexicon) for c in lexicon.categories]


def service_definition(category: Category, lexicon: Lexicon,
                       registry: Registry) -> dict[str, Any]:
    """``GET services/{code}``: the attributes a request of this category may carry."""
    default_kind = category.default_kind or lexicon.default_kind
    return {
        "service_code": category.code,
        "attributes": [
            {
                "variable": True, "code": "kind", "datatype": "singlevaluelist",
                "required": False, "datatype_description": "one of the listed keys",
                "order": 1,
                "description": f"Kind of request (default for this service: {default_kind}; "
                               "otherwise read from the description)",
                "values": [{"key": k, "name": KIND_NAMES[k]} for k in KINDS],
            },
            {
                "variable": True, "code": "district", "datatype": "singlevaluelist",
                "required": False, "datatype_description": "one of the listed keys",
                "order": 2,
                "description": "District (区); found from the address when not given",
                "values": [{"key": d, "name": d} for d in sorted(registry.districts)],
            },
            {
                "variable": True, "code": "street", "datatype": "string", "required": False,
                "datatype_description": "a street office, town or township name", "order": 3,
                "description": "Street (街道 / 乡镇); found from the address when not given",
                "values": [],
            },
            {
                "variable": True, "code": "anonymous", "datatype": "singlevaluelist",
                "required": False, "datatype_description": "true or false", "order": 4,
                "description": "true: the handling unit is not given the caller's number "
                               "(the hotline still calls back)",
                "values": [{"key": "true", "name": "匿名"}, {"key": "false", "name": "实名"}],
            },
        ],
    }


# --- filing -----------------------------------------------------------------------------------


def complaint_id_for(client: str, idempotency_key: str | None = None) -> str:
    """The complaint id of a new request: fixed by the client's key, so a retry repeats it.

    The same (client, Idempotency-Key) always gives the same id, and the intake starts
    each id's workflow once, so a POST retried after a lost answer files one case.
    """
    if idempotency_key is None:
        return ID_PREFIX + uuid.uuid4().hex[:20]
    digest = hashlib.sha256(f"{client}\x00{idempotency_key}".encode()).hexdigest()
    return ID_PREFIX + digest[:20]


# The form of POST requests, field by field: the parser below and the OpenAPI schema
# (``post_form_schema``) both come from these limits, so what the document allows is
# exactly what the service accepts. An empty optional text counts as not given (apps send
# empty fields); numbers and list values must be valid when present.
TEXT_LIMITS: dict[str, int] = {
    "service_code": 128, "description": MAX_DESCRIPTION, "address_string": MAX_FIELD,
    "address_id": MAX_FIELD, "first_name": 100, "last_name": 100, "phone": 32,
    "media_url": 2048, "attribute[street]": 64,
    # read by nobody: the hotline calls citizens back by phone
    "email": MAX_FIELD, "device_id": MAX_FIELD, "account_id": MAX_FIELD,
}
NO_NUL = r"^[^\u0000]*$"
# Some character that is neither NUL nor blank, blank as Python's str.isspace or as
# ECMAScript's \s says (validators differ: \x1c-\x1f and \x85 are blank to Python only,
# \ufeff to ECMAScript only), so every engine agrees with ``_blank``.
NOT_BLANK = r"^[^\u0000]*[^\u0000\s\u001c-\u001f\u0085\ufeff][^\u0000]*$"
MEDIA_URL = r"^(https?://[^\u0000]*)?$"


def _blank(text: str) -> bool:
    return all(ch.isspace() or ch == "\ufeff" for ch in text)


def _text(form: Mapping[str, str], name: str) -> str | None:
    value = form.get(name)
    if not value:
        return None
    limit = TEXT_LIMITS[name]
    if len(value) > limit:
        raise Open311Error(400, f"{name} is longer than {limit} characters")
    if "\x00" in value:
        raise Open311Error(400, f"{name} contains a NUL character")
    return value


def _choice(form: Mapping[str, str], name: str, allowed: Collection[str]) -> str | None:
    value = form.get(name)
    if value is not None and value not in allowed:
        raise Open311Error(400, f"{name} must be one of {', '.join(sorted(allowed))}")
    return value


def _coordinate(form: Mapping[str, str], name: str, low: float, high: float) -> float | None:
    raw = form.get(name)
    if raw is None:
        return None
    try:
        value = float(raw)
    except ValueError:
        raise Open311Error(400, f"{name} is not a number: {raw[:40]!r}") from None
    if not math.isfinite(value) or not low <= value <= high:
        raise Open311Error(400, f"{name} must be within [{low:g}, {high:g}]")
    return value


def post_form_schema(lexicon: Lexicon, registry: Registry) -> dict[str, Any]:
    """The JSON schema of the POST requests form, as ``parse_request`` checks it."""
    props: dict[str, Any] = {
        name: {"type": "string", "maxLength": limit, "pattern": NO_NUL}
        for name, limit in TEXT_LIMITS.items()
    }
    props["api_key"] = {"type": "string", "description": "the client's API key"}
    props["service_code"] = {"type": "string", "enum": [c.code for c in lexicon.categories]}
    props["description"].update(minLength=1, pattern=NOT_BLANK,
                                description="the request in the citizen's words")
    props["media_url"].update(pattern=MEDIA_URL, description="a link to a photo")
    props["phone"]["description"] = "the callback number; never returned"
    props["lat"] = {"type": "number", "minimum": -90, "maximum": 90}
    props["long"] = {"type": "number", "minimum": -180, "maximum": 180}
    props["attribute[kind]"] = {"type": "string", "enum": list(KINDS)}
    props["attribute[district]"] = {"type": "string", "enum": sorted(registry.districts)}
    props["attribute[anonymous]"] = {"type": "string", "enum": ["true", "false"]}
    given = {"type": "string", "minLength": 1}
    return {
        "type": "object",
        "required": ["api_key", "service_code", "description"],
        "properties": dict(sorted(props.items())),
        "dependentRequired": {"lat": ["long"], "long": ["lat"]},
        # A location: lat and long, or an address (the spec's rule).
        "anyOf": [{"required": ["lat"]},
                  {"required": ["address_string"], "properties": {"address_string": given}},
                  {"required": ["address_id"], "properties": {"address_id": given}}],
    }


@dataclass(frozen=True)
class NewRequest:
    """A validated POST: what the ledger table keeps (no contact details) and the filing."""

    service_code: str
    description: str
    address: str | None
    latitude: float | None
    longitude: float | None
    media_url: str | None
    kind: str | None
    district: str | None
    street: str | None
    caller_phone: str | None
    caller_name: str | None
    anonymous: bool = False


def parse_request(form: Mapping[str, str], lexicon: Lexicon, registry: Registry) -> NewRequest:
    """Validate the form of ``POST requests`` (the API key is checked before).

    Raises:
        Open311Error: 400 naming the field; 404 for an unknown service code.
    """
    code = form.get("service_code")
    if not code:
        raise Open311Error(400, "service_code is required")
    if lexicon.category(code) is None:
        raise Open311Error(404, f"service_code {code[:128]!r} not found")
    description = _text(form, "description")
    if description is None or _blank(description):
        raise Open311Error(400, "description is required: the request in the citizen's words")
    lat = _coordinate(form, "lat", -90, 90)
    lon = _coordinate(form, "long", -180, 180)
    if (lat is None) != (lon is None):
        raise Open311Error(400, "lat and long go together")
    address_string, address_id = _text(form, "address_string"), _text(form, "address_id")
    address = address_string or address_id
    if address is None and lat is None:
        raise Open311Error(400, "a location is required: lat and long, or address_string")
    media_url = _text(form, "media_url")
    if media_url is not None and not media_url.startswith(("https://", "http://")):
        raise Open311Error(400, "media_url must be an http(s) URL")
    kind = _choice(form, "attribute[kind]", KINDS)
    district = _choice(form, "attribute[district]", registry.districts)
    anonymous = _choice(form, "attribute[anonymous]", ("true", "false"))
    for unused in ("email", "device_id", "account_id"):
        _text(form, unused)
    name = " ".join(n for n in (_text(form, "first_name"), _text(form, "last_name"))
                    if n) or None
    return NewRequest(
        service_code=code, description=description, address=address, latitude=lat,
        longitude=lon, media_url=media_url, kind=kind, district=district,
        street=_text(form, "attribute[street]"), caller_phone=_text(form, "phone"),
        caller_name=name, anonymous=anonymous == "true",
    )


def filing_record(req: NewRequest, complaint_id: str, client: ApiClient,
                  requested_at: datetime) -> dict[str, Any]:
    """The ``ComplaintFiled`` record of a request (event id fixed by the complaint id)."""
    return {
        "event_id": f"{complaint_id}/filed",
        "complaint_id": complaint_id,
        "filed_at": requested_at,
        "channel": client.channel,
        "kind": req.kind,
        "content": req.description,
        "caller_phone": req.caller_phone,
        "caller_name": req.caller_name,
        "anonymous": req.anonymous,
        "district": req.district,
        "street": req.street,
        "address": req.address,
        "latitude": req.latitude,
        "longitude": req.longitude,
        "category_hint": req.service_code,
        "urgency_hint": None,
        "answered_directly": False,
        "attachments": [req.media_url] if req.media_url else [],
    }


# --- status -----------------------------------------------------------------------------------

_OPEN_EXTENDED: dict[str, tuple[str, str]] = {
    "FILED": ("OPEN", "received; being classified"),
    "ACCEPTED": ("OPEN", "accepted; being dispatched"),
    "AWAITING_REVIEW": ("OPEN", "accepted; a dispatcher is choosing the responsible unit"),
    "DISPATCHED": ("ACTION_SCHEDULED", "dispatched to the responsible unit"),
    "SIGNED": ("IN_PROGRESS", "the responsible unit has taken it on"),
    "IN_PROGRESS": ("IN_PROGRESS", "the responsible unit is handling it"),
    "REOPENED": ("IN_PROGRESS", "reopened after the callback; being handled again"),
    "COMPLETED": ("IN_PROGRESS", "the unit reports it handled; the citizen will be called back"),
    "CALLBACK": ("IN_PROGRESS", "the citizen is being called back"),
    "EVALUATED": ("IN_PROGRESS", "being closed"),
    "WITHDRAWN": ("CLOSED", "withdrawn by the citizen"),
}
_CLOSED_BY_OUTCOME: dict[str, tuple[str, str]] = {
    "MERGED": ("DUPLICATE", "merged into an open request about the same problem"),
    "REDIRECTED": ("NOT_COUNCILS_RESPONSIBILITY",
                   "an emergency for the police, fire service or ambulance (110/119/120)"),
    "REJECTED": ("NO_FURTHER_ACTION", "not a matter for the hotline"),
    "ANSWERED_DIRECTLY": ("CLOSED", "answered directly"),
}


def status_of(status: str, outcome: str | None, resolved: bool | None,
              withdrawn: bool) -> tuple[str, str, str]:
    """(open|closed, FixMyStreet extended status, status notes) of a ledger case."""
    if status in ("REJECTED", "MERGED", "ANSWERED_DIRECTLY", "CLOSED"):
        if withdrawn:
            return "closed", "CLOSED", "withdrawn by the citizen"
        if outcome in _CLOSED_BY_OUTCOME:
            ext, notes = _CLOSED_BY_OUTCOME[outcome]
            return "closed", ext, notes
        if outcome == "DISPATCH" and status == "CLOSED":
            if resolved:
                return "closed", "FIXED", "handled; the citizen confirmed it resolved"
            return "closed", "NO_FURTHER_ACTION", "handled; not resolved to the citizen's mind"
        if status == "CLOSED":
            return "closed", "CLOSED", "closed"
        # An intake outcome the case has not recorded yet: the state says it all.
        ext, notes = _CLOSED_BY_OUTCOME.get(status, ("CLOSED", "closed"))
        return "closed", ext, notes
    ext, notes = _OPEN_EXTENDED.get(status, ("OPEN", "open"))
    return ("closed" if ext == "CLOSED" else "open"), ext, notes


def w3c(at: datetime | None) -> str | None:
    """A W3C datetime in Beijing time, as the spec's examples give local time with offset."""
    if at is None:
        return None
    if at.tzinfo is None:
        at = at.replace(tzinfo=UTC)
    return at.astimezone(BEIJING).isoformat(timespec="seconds")


def request_view(row: Mapping[str, Any], lexicon: Lexicon,
                 registry: Registry) -> dict[str, Any]:
    """One service request from a row of ``workers.open311.ledger.Ledger.requests``.

    No caller contact detail is in the row, so none can reach the answer.
    """
    state, extended, notes = status_of(row["status"], row["outcome"], row["resolved"],
                                       row["withdrawn"])
    if row.get("referral") and extended in ("DUPLICATE", "NOT_COUNCILS_RESPONSIBILITY"):
        # The request it was merged into, or the emergency number to call.
        notes = f"{notes}: {row['referral']}"
    code = row["service_code"]
    category = lexicon.category(code) if code else None
    unit = registry.get(row["lead_unit_id"]) if row["lead_unit_id"] else None
    address = row["address"]
    if address is None and (row["district"] or row["street"]):
        address = f"{row['district'] or ''}{row['street'] or ''}"
    expected = row["due_at"] if state == "open" else None
    return {
        "service_request_id": row["complaint_id"],
        "status": state,
        "extended_status": extended,
        "status_notes": notes,
        "service_name": category.name if category else None,
        "service_code": code,
        "description": row["description"],
        "agency_responsible": unit.name if unit else None,
        "service_notice": (f"handled within {TIER_NAMES[row['tier']]}"
                           if row["tier"] in TIER_NAMES else None),
        "requested_datetime": w3c(row["requested_at"]),
        "updated_datetime": w3c(row["updated_at"]),
        "expected_datetime": w3c(expected),
        "address": address,
        "address_id": None,
        "zipcode": None,
        "lat": row["latitude"],
        "long": row["longitude"],
        "media_url": row["media_url"],
    }


# --- formats ----------------------------------------------------------------------------------


def _xml_value(parent: ET.Element, tag: str, value: Any, item_tags: Mapping[str, str]) -> None:
    el = ET.SubElement(parent, tag)
    if isinstance(value, Mapping):
        for k, v in value.items():
            _xml_value(el, k, v, item_tags)
    elif isinstance(value, list | tuple):
        child = item_tags.get(tag, "item")
        for v in value:
            _xml_value(el, child, v, item_tags)
    elif isinstance(value, bool):
        el.text = "true" if value else "false"
    elif value is not None:
        el.text = str(value)


# Element names of list items, by the list's element (the spec's XML examples).
XML_ITEMS: dict[str, str] = {
    "services": "service", "service_requests": "request", "attributes": "attribute",
    "values": "value", "endpoints": "endpoint", "formats": "format", "errors": "error",
}


def to_xml(root: str, data: Sequence[Any] | Mapping[str, Any]) -> bytes:
    """The spec's XML: ``<services><service>...`` for lists, named children for objects."""
    el = ET.Element(root)
    if isinstance(data, Mapping):
        for k, v in data.items():
            _xml_value(el, k, v, XML_ITEMS)
    else:
        for v in data:
            _xml_value(el, XML_ITEMS.get(root, "item"), v, XML_ITEMS)
    return b'<?xml version="1.0" encoding="utf-8"?>\n' + ET.tostring(el, encoding="utf-8")


def error_body(code: int, description: str) -> list[dict[str, Any]]:
    return [{"code": code, "description": description}]
