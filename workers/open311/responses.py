"""The Open311 service's answers as pydantic models: the OpenAPI document is written from
these (``deploy/open311/openapi.json``); the handlers render plain dicts of this shape as
JSON or XML.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, Field


class Error(BaseModel):
    code: int
    description: str


class Endpoint(BaseModel):
    specification: str
    url: str
    changeset: str
    type: str
    formats: list[str]


class Discovery(BaseModel):
    changeset: str
    contact: str
    key_service: str
    endpoints: list[Endpoint]


class Service(BaseModel):
    service_code: str
    service_name: str
    description: str
    metadata: bool
    type: Literal["realtime", "batch", "blackbox"]
    keywords: str
    group: str


class AttributeValue(BaseModel):
    key: str
    name: str


class Attribute(BaseModel):
    variable: bool
    code: str
    datatype: Literal["string", "number", "datetime", "text", "singlevaluelist",
                      "multivaluelist"]
    required: bool
    datatype_description: str | None
    order: int
    description: str
    values: list[AttributeValue]


class ServiceDefinition(BaseModel):
    service_code: str
    attributes: list[Attribute]


class ServiceRequest(BaseModel):
    service_request_id: str
    status: Literal["open", "closed"]
    extended_status: str = Field(description="FixMyStreet's extended status: OPEN, "
                                 "ACTION_SCHEDULED, IN_PROGRESS, FIXED, DUPLICATE, "
                                 "NOT_COUNCILS_RESPONSIBILITY, NO_FURTHER_ACTION, CLOSED")
    status_notes: str | None
    service_name: str | None
    service_code: str | None
    description: str | None
    agency_responsible: str | None
    service_notice: str | None
    requested_datetime: str | None
    updated_datetime: str | None
    expected_datetime: str | None = Field(description="the deadline of the case's tier")
    address: str | None
    address_id: str | None
    zipcode: str | None
    lat: float | None
    long: float | None
    media_url: str | None


class RequestCreated(BaseModel):
    service_request_id: str
    token: str
    service_notice: str | None
    account_id: str | None


class TokenResult(BaseModel):
    token: str
    service_request_id: str | None = Field(
        description="present once the case is in the ledger")


def responses(model: Any, ok: int = 200, *extra: int) -> dict[int | str, dict[str, Any]]:
    """An operation's documented answers: ``model`` (JSON or XML) and the spec's errors."""
    xml = {"application/xml": {"schema": {"type": "string"}}}
    out: dict[int | str, dict[str, Any]] = {ok: {"model": model, "content": xml}}
    for code, why in ((400, "invalid request"), (404, "not found"),
                      (429, "rate limit exceeded"), *((c, _WHY[c]) for c in extra),
                      (503, _WHY[503])):
        out[code] = {"model": list[Error], "content": xml, "description": why}
    return out


_WHY = {403: "missing or invalid api_key", 413: "request body too large",
        409: "the Idempotency-Key was used for another request",
        503: "the intake (Kafka) or the ledger is not reachable; retry (a POST with the same "
             "Idempotency-Key)"}
