"""Search attributes of a case: what supervisors filter on. Never personal data."""

from __future__ import annotations

from temporalio.common import SearchAttributeKey

STATUS = SearchAttributeKey.for_keyword("HotlineStatus")
TIER = SearchAttributeKey.for_keyword("HotlineTier")
CATEGORY = SearchAttributeKey.for_keyword("HotlineCategory")
LEAD_UNIT = SearchAttributeKey.for_keyword("HotlineLeadUnit")
DISTRICT = SearchAttributeKey.for_keyword("HotlineDistrict")
OVERDUE = SearchAttributeKey.for_bool("HotlineOverdue")
ESCALATION_LEVEL = SearchAttributeKey.for_keyword("HotlineEscalationLevel")

ALL: list[SearchAttributeKey] = [
    STATUS, TIER, CATEGORY, LEAD_UNIT, DISTRICT, OVERDUE, ESCALATION_LEVEL,
]


def cli_type(key: SearchAttributeKey) -> str:
    """The type name ``temporal server start-dev --search-attribute`` expects."""
    return {"KEYWORD": "Keyword", "BOOL": "Bool", "INT": "Int", "TEXT": "Text",
            "FLOAT": "Double", "DATETIME": "Datetime", "KEYWORD_LIST": "KeywordList"}[
        key.indexed_value_type.name.removeprefix("INDEXED_VALUE_TYPE_")
    ]
