"""Semantic validation of hotline events, beyond fitting their Avro schema.

A rule takes a field value that is not None (optional fields are only checked when
present) and returns a problem description, or None when the value is fine. Rules that
look inside nested values return a path-qualified problem starting with "." or "[".
Rules apply by field name in every record (``_FIELD_RULES``) or to one field of one record
(``_RECORD_FIELD_RULES``); every ``timestamp-millis`` field gets the timestamp rule, and
no string anywhere may contain NUL.

:func:`compile_plan` turns a record schema into its plan (the field and rule pairs that
apply), once, when the codec loads the schemas; :func:`record_problem` runs a plan on a
record. :func:`has_plain_integer` says whether decoding must also check integer ranges,
and :func:`check_array_items` rejects schemas a corrupted block count could loop on.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from datetime import UTC, datetime, timedelta
from typing import Any, Final, TypeAlias

__all__ = [
    "Plan",
    "check_array_items",
    "compile_plan",
    "has_plain_integer",
    "record_problem",
    "short_name",
]

_TIMESTAMP_MILLIS: Final = "timestamp-millis"

_Rule: TypeAlias = Callable[[Any], "str | None"]
Plan: TypeAlias = tuple[tuple[str, _Rule], ...]

_MAX_ID_LENGTH: Final = 128
_MAX_CONTENT_LENGTH: Final = 10_000
_TIMESTAMP_MIN: Final = datetime(2000, 1, 1, tzinfo=UTC)
_TIMESTAMP_MAX: Final = datetime(2100, 1, 1, tzinfo=UTC)  # exclusive
_EPOCH: Final = datetime(1970, 1, 1, tzinfo=UTC)
_TIMESTAMP_MIN_MS: Final = (_TIMESTAMP_MIN - _EPOCH) // timedelta(milliseconds=1)
_TIMESTAMP_MAX_MS: Final = (_TIMESTAMP_MAX - _EPOCH) // timedelta(milliseconds=1)
_TIMESTAMP_RANGE: Final = "[2000-01-01, 2100-01-01) UTC"


def _identifier(value: str) -> str | None:
    """Ids become workflow ids, Kafka keys and ledger keys, so they must be unambiguous."""
    if not value:
        return "must not be empty"
    if len(value) > _MAX_ID_LENGTH:
        return f"longer than {_MAX_ID_LENGTH} characters ({len(value)})"
    if value != value.strip():
        return "has leading or trailing whitespace"
    # isprintable() is False for control characters and also for invisible format and
    # separator characters (zero-width space, U+3000), which would make two ids that look
    # the same differ.
    if not value.isprintable():
        return "contains control or invisible characters"
    return None


def _text(max_length: int) -> _Rule:
    def rule(value: str) -> str | None:
        if not value.strip():
            return "must not be blank"
        if len(value) > max_length:
            return f"longer than {max_length} characters ({len(value)})"
        return None

    return rule


def _between(low: float, high: float) -> _Rule:
    def rule(value: float) -> str | None:
        # NaN fails every comparison, so it is rejected here too.
        if low <= value <= high:
            return None
        return f"{value!r} is outside [{low}, {high}]"

    return rule


def _timestamp(value: datetime | int) -> str | None:
    """Timestamps far from now are corruption or a unit mix-up (seconds vs millis)."""
    if isinstance(value, datetime):
        if value.tzinfo is None:
            # fastavro would silently read a naive datetime as *local* time.
            return "naive datetime; pass a timezone-aware (UTC) datetime"
        if _TIMESTAMP_MIN <= value < _TIMESTAMP_MAX:
            return None
        return f"{value.isoformat()} is outside {_TIMESTAMP_RANGE}"
    if isinstance(value, int) and not isinstance(value, bool):
        if _TIMESTAMP_MIN_MS <= value < _TIMESTAMP_MAX_MS:
            return None
        return f"{value} ms since the epoch is outside {_TIMESTAMP_RANGE}"
    return f"expected a datetime or epoch milliseconds, got {type(value).__name__}"


#: Rules by field name, applied in every record (top level or nested) that has the field.
_FIELD_RULES: Final[Mapping[str, _Rule]] = {
    "event_id": _identifier,
    "complaint_id": _identifier,
    "dispatch_id": _identifier,
    "unit_id": _identifier,
    "warning_id": _identifier,
    "latitude": _between(-90.0, 90.0),
    "longitude": _between(-180.0, 180.0),
}

#: Rules for one field of one record (short name), in addition to ``_FIELD_RULES``.
_RECORD_FIELD_RULES: Final[Mapping[tuple[str, str], _Rule]] = {
    ("ComplaintFiled", "content"): _text(_MAX_CONTENT_LENGTH),
    ("ExtensionRequested", "extra_days"): _between(1, 60),
}
# Besides the two tables: every timestamp-millis field (found from the schemas) gets
# ``_timestamp``, and no string anywhere in a record may contain NUL (``_find_nul``).


def _qualify(prefix: str, problem: str) -> str:
    """Prefix a problem with a path step: ``entries`` + ``[3].unit_id: …``."""
    return prefix + problem if problem[0] in ".[" else f"{prefix}: {problem}"


def _check_plan(plan: Plan, record: Mapping[str, Any]) -> str | None:
    for name, rule in plan:
        value = record.get(name)
        if value is not None:
            problem = rule(value)
            if problem is not None:
                return _qualify(name, problem)
    return None


def _nested_record(plan: Plan) -> _Rule:
    def rule(value: Mapping[str, Any]) -> str | None:
        problem = _check_plan(plan, value)
        return None if problem is None else "." + problem

    return rule


def _each(inner: _Rule, entries: Callable[[Any], Iterable[tuple[Any, Any]]]) -> _Rule:
    """Rule for an array or map: ``inner`` on each item, a problem named by index or key.

    ``entries`` yields (index or key, item): ``enumerate`` for an array, the items of a
    map. A problem reads ``[3].unit_id: ...`` or ``['k'].unit_id: ...`` (the repr of an
    index is its digits).
    """

    def rule(container: Any) -> str | None:
        for where, item in entries(container):
            if item is not None:
                problem = inner(item)
                if problem is not None:
                    return _qualify(f"[{where!r}]", problem)
        return None

    return rule


def _map_items(values: Mapping[str, Any]) -> Iterable[tuple[str, Any]]:
    return values.items()


def _find_nul(value: Any) -> str | None:
    """Path to a string containing NUL, if any (PostgreSQL text rejects NUL)."""
    if type(value) is str:
        return "" if "\x00" in value else None
    if isinstance(value, dict):
        for key, item in value.items():
            if isinstance(key, str) and "\x00" in key:
                return f"[{key.replace(chr(0), '?')!r}]"
            where = _find_nul(item)
            if where is not None:
                return f"[{key!r}]{where}"
    elif isinstance(value, list):
        for index, item in enumerate(value):
            where = _find_nul(item)
            if where is not None:
                return f"[{index}]{where}"
    return None


def record_problem(name: str, plan: Plan, record: Mapping[str, Any]) -> str | None:
    """First semantic problem of a record, as ``Name.path: problem``, or None."""
    problem = _check_plan(plan, record)
    if problem is not None:
        return f"{name}.{problem}"
    for key, value in record.items():
        if type(value) is str:
            # The common case, inlined: most values are flat strings.
            if "\x00" in value:
                return f"{name}.{key}: contains a NUL character"
        elif isinstance(value, (dict, list)):
            where = _find_nul(value)
            if where is not None:
                return f"{name}.{key}{where}: contains a NUL character"
    return None


# --------------------------------------------------------------------------------------
# What a schema implies for checking, worked out once per schema.
# --------------------------------------------------------------------------------------

Named: TypeAlias = Mapping[str, Any]


def short_name(full_name: str) -> str:
    """``hotline.events.ComplaintFiled`` -> ``ComplaintFiled``."""
    return full_name.rsplit(".", 1)[-1]


def _type_rule(avro_type: Any, named: Named, seen: frozenset[str]) -> _Rule | None:
    """Rule implied by a field's type: timestamps, and records nested inside it."""
    if isinstance(avro_type, list):  # union: only ["null", X] occurs in our contract
        branches = [branch for branch in avro_type if branch != "null"]
        return _type_rule(branches[0], named, seen) if len(branches) == 1 else None
    if isinstance(avro_type, str):
        if avro_type in named and avro_type not in seen:
            return _type_rule(named[avro_type], named, seen)
        return None
    if not isinstance(avro_type, dict):
        return None
    if avro_type.get("logicalType") == _TIMESTAMP_MILLIS:
        return _timestamp
    kind = avro_type.get("type")
    if kind == "record":
        full_name = avro_type["name"]
        return _nested_record(compile_plan(avro_type, named, seen | {full_name}))
    if kind == "array":
        inner = _type_rule(avro_type["items"], named, seen)
        return None if inner is None else _each(inner, enumerate)
    if kind == "map":
        inner = _type_rule(avro_type["values"], named, seen)
        return None if inner is None else _each(inner, _map_items)
    return None


def compile_plan(schema: Mapping[str, Any], named: Named, seen: frozenset[str]) -> Plan:
    """The (field, rule) pairs that apply to a record schema, from the tables and types."""
    record_name = short_name(schema["name"])
    plan: list[tuple[str, _Rule]] = []
    for field in schema["fields"]:
        field_name = field["name"]
        for rule in (
            _FIELD_RULES.get(field_name),
            _RECORD_FIELD_RULES.get((record_name, field_name)),
            _type_rule(field["type"], named, seen),
        ):
            if rule is not None:
                plan.append((field_name, rule))
    return tuple(plan)


def has_plain_integer(avro_type: Any, named: Named, seen: frozenset[str]) -> bool:
    """True when a value of this type may hold an ``int`` or a plain ``long``.

    Read strictly with the writer schema, every value already has its schema's Python
    type (str, float, bool, bytes, datetime, a symbol of the enum, a branch of the
    union); what the reader does not check is the range of a varint, so an ``int``
    field can decode beyond 32 bits (and a ``long`` beyond 64). Only records with such
    fields need fastavro's validation after decoding; skipping it elsewhere saves a
    third of the decode time of a ``ComplaintFiled``.
    """
    if isinstance(avro_type, list):
        return any(has_plain_integer(t, named, seen) for t in avro_type)
    if isinstance(avro_type, str):
        if avro_type in ("int", "long"):
            return True
        if avro_type in named and avro_type not in seen:
            return has_plain_integer(named[avro_type], named, seen | {avro_type})
        return False
    if not isinstance(avro_type, dict):
        return False
    kind = avro_type.get("type")
    if kind in ("int", "long"):
        return avro_type.get("logicalType") != _TIMESTAMP_MILLIS
    if kind == "record":
        inner = seen | {avro_type["name"]}
        return any(has_plain_integer(f["type"], named, inner) for f in avro_type["fields"])
    if kind == "array":
        return has_plain_integer(avro_type["items"], named, seen)
    if kind == "map":
        return has_plain_integer(avro_type["values"], named, seen)
    return False


def _min_encoded_size(avro_type: Any, named: Named, seen: frozenset[str]) -> int:
    """Fewest bytes a value of this type can take in the binary encoding."""
    if isinstance(avro_type, list):
        return 1  # the branch index
    if isinstance(avro_type, str):
        if avro_type == "null":
            return 0
        if avro_type in named:
            if avro_type in seen:
                return 1  # a recursive reference goes through a union or array
            return _min_encoded_size(named[avro_type], named, seen | {avro_type})
        return 1
    kind = avro_type.get("type")
    if kind == "record":
        inner_seen = seen | {avro_type["name"]}
        return sum(_min_encoded_size(f["type"], named, inner_seen) for f in avro_type["fields"])
    if kind == "fixed":
        return int(avro_type["size"])
    if kind in ("array", "map", "enum"):
        return 1
    return _min_encoded_size(kind, named, seen)


def check_array_items(avro_type: Any, named: Named, seen: frozenset[str]) -> None:
    """Reject arrays of zero-byte items.

    A corrupted block count (up to 2**63) makes fastavro loop once per item; items that
    consume at least one byte run out of payload within ``len(data)`` steps, zero-byte
    items never do. Our schemas have none; this keeps registered writers honest too.
    """
    if isinstance(avro_type, list):
        for branch in avro_type:
            check_array_items(branch, named, seen)
    elif isinstance(avro_type, str):
        if avro_type in named and avro_type not in seen:
            check_array_items(named[avro_type], named, seen | {avro_type})
    elif isinstance(avro_type, dict):
        kind = avro_type.get("type")
        if kind == "record":
            inner_seen = seen | {avro_type["name"]}
            for field in avro_type["fields"]:
                check_array_items(field["type"], named, inner_seen)
        elif kind == "array":
            if _min_encoded_size(avro_type["items"], named, seen) == 0:
                raise ValueError("array items must take at least one byte each")
            check_array_items(avro_type["items"], named, seen)
        elif kind == "map":
            check_array_items(avro_type["values"], named, seen)
