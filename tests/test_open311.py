"""Open311 mapping and the HTTP layer without the stack: services, parsing, statuses, formats.

The HTTP tests use FastAPI's TestClient without the app's lifespan, so nothing here
touches Kafka or PostgreSQL; the requests they make are answered before either is needed.
"""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from functools import cache
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from prometheus_client import generate_latest

from activities.dispatch.config import HotlineConfig, load_config
from schemas import codec
from workers.open311.clients import find_client, load_clients
from workers.open311.ledger import RequestQuery
from workers.open311.model import (
    ApiClient,
    Open311Error,
    complaint_id_for,
    filing_record,
    parse_request,
    request_view,
    service_definition,
    services,
    status_of,
    to_xml,
)
from workers.open311.service import (
    OPENAPI_PATH,
    create_app,
    openapi_document,
)
from workers.runtime.settings import Settings

KEY = "unit-test-key-0123456789"


@cache
def config() -> HotlineConfig:
    return load_config(Settings().config_dir)


def _form(**fields: str) -> dict[str, str]:
    return {"api_key": KEY, "service_code": "housing.lift",
            "description": "3号楼电梯坏了三天", "address_string": "朝阳区望京街道阜通东大街6号院",
            **fields}


# --- services ------------------------------------------------------------------------------


def test_every_category_is_a_service_with_its_group() -> None:
    lexicon = config().lexicon
    listed = services(lexicon)
    assert [s["service_code"] for s in listed] == [c.code for c in lexicon.categories]
    lift = next(s for s in listed if s["service_code"] == "housing.lift")
    assert lift["service_name"] == "住房/电梯" and lift["group"] == "住房"
    assert lift["metadata"] is True and "电梯" in lift["keywords"]
    assert "24 hours" in lift["description"]


def test_a_service_definition_lists_kinds_and_every_district() -> None:
    cfg = config()
    lift = cfg.lexicon.category("housing.lift")
    assert lift is not None
    definition = service_definition(lift, cfg.lexicon, cfg.registry)
    attrs = {a["code"]: a for a in definition["attributes"]}
    assert [v["key"] for v in attrs["kind"]["values"]][:3] == ["CONSULTATION", "HELP",
                                                               "COMPLAINT"]
    districts = {v["key"] for v in attrs["district"]["values"]}
    assert len(districts) == 16 and "朝阳区" in districts
    assert attrs["street"]["datatype"] == "string"


# --- filing ----------------------------------------------------------------------------------


def test_a_form_becomes_a_complaint_filed_record_that_encodes() -> None:
    cfg = config()
    req = parse_request(_form(phone="13800001111", first_name="伟", last_name="张",
                              email="zhang@example.com", lat="39.99", long="116.47",
                              media_url="https://files.example/a.jpg",
                              **{"attribute[kind]": "HELP", "attribute[district]": "朝阳区"}),
                        cfg.lexicon, cfg.registry)
    client = ApiClient("civic-app", KEY, "MINI_PROGRAM")
    at = datetime(2026, 11, 22, 8, 0, tzinfo=UTC)
    record = filing_record(req, "311-abc", client, at)
    assert record["channel"] == "MINI_PROGRAM" and record["category_hint"] == "housing.lift"
    assert record["caller_phone"] == "13800001111" and record["caller_name"] == "伟 张"
    assert record["anonymous"] is False and record["kind"] == "HELP"
    assert record["attachments"] == ["https://files.example/a.jpg"]
    assert "zhang@example.com" not in json.dumps(record, default=str)  # nowhere to put it
    decoded = codec.decode(codec.encode("ComplaintFiled", record))
    assert decoded.record["complaint_id"] == "311-abc"
    assert decoded.record["latitude"] == 39.99


def test_anonymous_is_an_attribute_and_off_by_default() -> None:
    cfg = config()
    plain = parse_request(_form(phone="13800001111"), cfg.lexicon, cfg.registry)
    record = filing_record(plain, "311-x", ApiClient("a", KEY), datetime.now(UTC))
    assert record["anonymous"] is False and record["channel"] == "APP"
    hidden = parse_request(_form(phone="13800001111", **{"attribute[anonymous]": "true"}),
                           cfg.lexicon, cfg.registry)
    assert hidden.anonymous is True and hidden.caller_phone == "13800001111"


@pytest.mark.parametrize(("fields", "code", "says"), [
    ({"service_code": "nope.nope"}, 404, "not found"),
    ({"service_code": ""}, 400, "service_code is required"),
    ({"description": "   "}, 400, "description is required"),
    ({"description": "长" * 4001}, 400, "longer than 4000"),
    ({"lat": "north"}, 400, "lat is not a number"),
    ({"lat": "91", "long": "116"}, 400, "within"),
    ({"lat": "39.9"}, 400, "lat and long go together"),
    ({"lat": "nan", "long": "116"}, 400, "within"),
    ({"address_string": ""}, 400, "a location is required"),
    ({"media_url": "file:///etc/passwd"}, 400, "http(s) URL"),
    ({"attribute[kind]": "RANT"}, 400, "attribute[kind]"),
    ({"attribute[district]": "火星区"}, 400, "attribute[district] must be one of"),
    ({"attribute[anonymous]": "maybe"}, 400, "must be one of false, true"),
    ({"attribute[kind]": ""}, 400, "attribute[kind]"),
    ({"lat": "", "long": ""}, 400, "lat is not a number"),
    ({"address_id": "x" * 501}, 400, "address_id is longer than 500"),
    ({"email": "a\x00b@example.com"}, 400, "email contains a NUL"),
    ({"description": "电梯\x00坏了"}, 400, "NUL"),
])
def test_bad_forms_are_refused_with_the_field_named(fields: dict[str, str], code: int,
                                                    says: str) -> None:
    cfg = config()
    with pytest.raises(Open311Error) as err:
        parse_request(_form(**fields), cfg.lexicon, cfg.registry)
    assert err.value.code == code and says in err.value.description


def test_coordinates_alone_are_a_location() -> None:
    cfg = config()
    req = parse_request(_form(address_string="", lat="39.9", long="116.4"),
                        cfg.lexicon, cfg.registry)
    assert (req.latitude, req.longitude, req.address) == (39.9, 116.4, None)


def test_an_idempotency_key_fixes_the_complaint_id_per_client() -> None:
    assert complaint_id_for("app", "k1") == complaint_id_for("app", "k1")
    assert complaint_id_for("app", "k1") != complaint_id_for("other", "k1")
    assert complaint_id_for("app") != complaint_id_for("app")
    assert codec.encode("ComplaintFiled", {  # a valid workflow id and key
        **filing_record(parse_request(_form(), config().lexicon, config().registry),
                        complaint_id_for("app", "k1"), ApiClient("app", KEY),
                        datetime.now(UTC))})


# --- statuses --------------------------------------------------------------------------------


@pytest.mark.parametrize(("status", "outcome", "resolved", "withdrawn", "expected"), [
    ("FILED", None, None, False, ("open", "OPEN")),
    ("ACCEPTED", "DISPATCH", None, False, ("open", "OPEN")),
    ("DISPATCHED", "DISPATCH", None, False, ("open", "ACTION_SCHEDULED")),
    ("SIGNED", "DISPATCH", None, False, ("open", "IN_PROGRESS")),
    ("REOPENED", "DISPATCH", None, False, ("open", "IN_PROGRESS")),
    ("COMPLETED", "DISPATCH", None, False, ("open", "IN_PROGRESS")),
    ("CLOSED", "DISPATCH", True, False, ("closed", "FIXED")),
    ("CLOSED", "DISPATCH", False, False, ("closed", "NO_FURTHER_ACTION")),
    ("CLOSED", "DISPATCH", None, True, ("closed", "CLOSED")),
    ("WITHDRAWN", "DISPATCH", None, True, ("closed", "CLOSED")),
    ("MERGED", "MERGED", None, False, ("closed", "DUPLICATE")),
    ("CLOSED", "MERGED", None, False, ("closed", "DUPLICATE")),
    ("REJECTED", "REDIRECTED", None, False, ("closed", "NOT_COUNCILS_RESPONSIBILITY")),
    ("CLOSED", "REJECTED", None, False, ("closed", "NO_FURTHER_ACTION")),
    ("CLOSED", "ANSWERED_DIRECTLY", None, False, ("closed", "CLOSED")),
])
def test_case_statuses_map_to_open311_and_fixmystreet_statuses(
    status: str, outcome: str | None, resolved: bool | None, withdrawn: bool,
    expected: tuple[str, str],
) -> None:
    state, extended, notes = status_of(status, outcome, resolved, withdrawn)
    assert (state, extended) == expected and notes


def _row(**fields: Any) -> dict[str, Any]:
    due = datetime(2026, 11, 23, 2, 0, tzinfo=UTC)
    return {"complaint_id": "BJ20261122-000001", "status": "DISPATCHED", "outcome": "DISPATCH",
            "resolved": None, "withdrawn": False, "service_code": "housing.lift",
            "lead_unit_id": "110105026", "tier": "T24H", "address": None,
            "district": "朝阳区", "street": "望京街道", "due_at": due, "description": None,
            "requested_at": due - timedelta(hours=24), "updated_at": due - timedelta(hours=23),
            "latitude": None, "longitude": None, "media_url": None, **fields}


def test_a_ledger_row_becomes_a_service_request() -> None:
    cfg = config()
    view = request_view(_row(), cfg.lexicon, cfg.registry)
    assert view["status"] == "open" and view["extended_status"] == "ACTION_SCHEDULED"
    assert view["expected_datetime"] == "2026-11-23T10:00:00+08:00"  # the tier deadline
    assert view["requested_datetime"] == "2026-11-22T10:00:00+08:00"
    assert view["agency_responsible"] == "望京街道" and view["service_name"] == "住房/电梯"
    assert view["address"] == "朝阳区望京街道"  # a case filed by phone: district and street
    merged = request_view(_row(status="CLOSED", outcome="MERGED", referral="311-abc"),
                          cfg.lexicon, cfg.registry)
    assert merged["extended_status"] == "DUPLICATE" and merged["status_notes"].endswith(
        ": 311-abc")
    closed = request_view(_row(status="CLOSED", resolved=True), cfg.lexicon, cfg.registry)
    assert closed["expected_datetime"] is None and closed["extended_status"] == "FIXED"


def test_xml_follows_the_spec_element_names() -> None:
    doc = ET.fromstring(to_xml("service_requests", [
        {"service_request_id": "1", "status": "open", "lat": None, "flag": True}]))
    assert doc.tag == "service_requests"
    request = doc.find("request")
    assert request is not None and request.findtext("status") == "open"
    assert request.findtext("lat") == "" and request.findtext("flag") == "true"
    errors = ET.fromstring(to_xml("errors", [{"code": 404, "description": "x"}]))
    assert errors.findtext("error/code") == "404"


def test_the_ids_filter_overrides_the_others() -> None:
    def filters(sql: str) -> str:  # the WHERE of the page query
        return sql.split(") r")[1].split("ORDER BY")[0]

    sql, args = RequestQuery(ids=("a", "b"), service_codes=("x",), statuses=("open",)).sql()
    assert "complaint_id = ANY" in filters(sql) and "service_code" not in filters(sql)
    assert args[0] == ["a", "b"]
    sql, args = RequestQuery(statuses=("open", "closed"), page=3, page_size=10).sql()
    assert "status" not in filters(sql) and args[-2:] == [10, 20]


# --- clients and limits ----------------------------------------------------------------------


def test_clients_come_from_the_environment_and_a_keys_file(tmp_path: Path) -> None:
    keys = tmp_path / "keys.yaml"
    keys.write_text("clients:\n  - {name: wechat-mp, key: wechat-key-0123456789, "
                    "channel: MINI_PROGRAM}\n", encoding="utf-8")
    settings = Settings(open311_api_keys={"civic": KEY}, open311_api_keys_file=keys)
    clients = load_clients(settings)
    assert [(c.name, c.channel) for c in clients] == [("civic", "APP"),
                                                      ("wechat-mp", "MINI_PROGRAM")]
    assert find_client(clients, "wechat-key-0123456789") == clients[1]
    assert find_client(clients, "wrong") is None and find_client(clients, None) is None
    keys.write_text("clients:\n  - {name: x, key: short}\n", encoding="utf-8")
    with pytest.raises(ValueError, match="shorter than 16"):
        load_clients(Settings(open311_api_keys_file=keys))
    keys.write_text("clients:\n  - {name: x, key: long-enough-key-123, channel: FAX}\n",
                    encoding="utf-8")
    with pytest.raises(ValueError, match="FAX"):
        load_clients(Settings(open311_api_keys_file=keys))


# --- HTTP, without the stack -----------------------------------------------------------------


@pytest.fixture(scope="module")
def http() -> Iterator[TestClient]:
    # No rate limit: its counts live in PostgreSQL (tests/test_open311_rate_limit.py).
    settings = Settings(open311_rate_per_minute=0, open311_max_body_bytes=2048)
    app = create_app(settings, config=config(), clients=[ApiClient("civic", KEY)])
    yield TestClient(app)  # no `with`: the lifespan (Kafka, PostgreSQL) never starts


def test_services_in_json_and_xml(http: TestClient) -> None:
    listed = http.get("/services.json")
    assert listed.status_code == 200 and listed.headers["content-type"] == "application/json"
    assert len(listed.json()) == len(config().lexicon.categories)
    xml = ET.fromstring(http.get("/services.xml").content)
    assert xml.tag == "services" and xml.find("service/service_code") is not None
    definition = http.get("/services/housing.lift.xml")
    assert ET.fromstring(definition.content).findtext("service_code") == "housing.lift"
    discovery = http.get("/discovery.json").json()
    assert discovery["endpoints"][0]["specification"] == "http://wiki.open311.org/GeoReport_v2"


def test_errors_are_the_spec_error_bodies(http: TestClient) -> None:
    missing = http.get("/services/nope.nope.json")
    assert missing.status_code == 404
    assert missing.json() == [{"code": 404, "description": "service_code 'nope.nope' not found"}]
    xml = http.get("/services/nope.nope.xml")
    assert xml.status_code == 404
    assert ET.fromstring(xml.content).findtext("error/code") == "404"
    assert http.get("/services.yaml").json()[0]["code"] == 400
    assert http.get("/nowhere.json").json()[0]["code"] == 404
    bad_page = http.get("/requests.json", params={"page": "0"})
    assert bad_page.status_code == 400 and "page" in bad_page.json()[0]["description"]
    bad_date = http.get("/requests.json", params={"start_date": "yesterday"})
    assert bad_date.status_code == 400
    wrong_method = http.delete("/requests.json")
    assert wrong_method.status_code == 405 and wrong_method.headers["allow"] == "GET, POST"


def test_posting_needs_a_valid_key_and_a_small_form(http: TestClient) -> None:
    no_key = http.post("/requests.json", data={**_form(), "api_key": "guess"})
    assert no_key.status_code == 403 and no_key.json()[0]["code"] == 403
    not_form = http.post("/requests.json", json=_form())
    assert not_form.status_code == 400 and "x-www-form-urlencoded" in not_form.text
    bad = http.post("/requests.json", data=_form(lat="north", long="1"))
    assert bad.status_code == 400 and "lat" in bad.json()[0]["description"]
    big = http.post("/requests.json", data=_form(description="长" * 1000))
    assert big.status_code == 413


def test_answers_are_counted_by_route_template_and_code(http: TestClient) -> None:
    http.get("/services/nope.again.json")
    assert http.get("/metrics").status_code == 404  # served on their own port only
    text = generate_latest().decode()
    assert ('hotline_open311_responses_total{code="404",'
            'operation="GET /services/{service_code}.{fmt}"}') in text
    assert "nope.again" not in text
    assert "hotline_open311_response_seconds_bucket" in text


def test_the_committed_openapi_document_is_the_served_one() -> None:
    committed = json.loads(OPENAPI_PATH.read_text(encoding="utf-8"))
    assert committed == openapi_document(), (
        "deploy/open311/openapi.json is stale: run `hotline open311 --write-openapi`")
    post = committed["paths"]["/requests.{fmt}"]["post"]
    assert set(post["responses"]) == {"201", "400", "403", "404", "409", "413", "429", "503"}
    assert "application/x-www-form-urlencoded" in post["requestBody"]["content"]


# --- the demo's apps -------------------------------------------------------------------------


def test_the_demo_files_a_fifth_of_its_city_through_open311() -> None:
    from activities.dispatch.decide import classify_request
    from workers.devstack.city import generate_city, open311_client, route_through_open311
    from workers.devstack.demo import open311_form

    city = generate_city(100, seed=7, config=config())
    routed = route_through_open311(city)
    assert route_through_open311(city) == routed  # deterministic
    picked = [c for c in routed if c.open311_key is not None]
    assert len(picked) == 20
    repeated = {c.plan.duplicate_of for c in routed if c.plan.duplicate_of}
    before = {c.plan.complaint_id: c for c in city}
    for case in picked:
        original = before[case.open311_key]
        client = open311_client(case.filing["channel"])
        assert case.plan.complaint_id == complaint_id_for(client.name, case.open311_key)
        assert case.plan.complaint_id not in repeated and not case.plan.duplicate_of
        # The form the app posts files what the call centre would have filed.
        form = open311_form(case)
        req = parse_request(form, config().lexicon, config().registry)
        assert find_client([client], form["api_key"]) == client
        record = filing_record(req, case.plan.complaint_id, client, datetime.now(UTC))
        for name in ("channel", "kind", "content", "caller_phone", "caller_name", "anonymous",
                     "district", "street", "address", "latitude", "longitude", "attachments"):
            assert record[name] == original.filing[name], name
        # The app's category (the service code) gives the tier the plan expects.
        hinted = classify_request(config(), record["content"], kind_hint=record["kind"],
                                  category_hint=record["category_hint"])
        assert hinted.tier == case.plan.tier
    untouched = [c for c in routed if c.open311_key is None]
    assert all(before[c.plan.complaint_id] == c for c in untouched)


def test_the_form_schema_says_what_the_parser_accepts() -> None:
    import jsonschema

    cfg = config()
    schema = openapi_document()["paths"]["/requests.{fmt}"]["post"]["requestBody"][
        "content"]["application/x-www-form-urlencoded"]["schema"]
    validator = jsonschema.Draft202012Validator(schema)

    def numbers(form: dict[str, str]) -> dict[str, Any]:  # the schema types lat and long
        return {k: float(v) if k in ("lat", "long") else v for k, v in form.items()}

    good = [_form(), _form(address_string="", lat="39.9", long="116.4"),
            _form(media_url="", phone="", **{"attribute[district]": "朝阳区"})]
    bad = [_form(service_code="housing"), _form(description=" \n"), _form(address_string=""),
           _form(lat="39.9"), _form(media_url="ftp://x"), _form(**{"attribute[kind]": "x"})]
    for form in good:
        assert validator.is_valid(numbers(form)), form
        parse_request(form, cfg.lexicon, cfg.registry)
    for form in bad:
        assert not validator.is_valid(numbers(form)), form
        with pytest.raises(Open311Error):
            parse_request(form, cfg.lexicon, cfg.registry)


def test_a_day_past_the_months_end_is_its_last_day(http: TestClient) -> None:
    from workers.open311.service import _datetime

    assert _datetime("2026-02-30T08:00:00+08:00", "start_date") == datetime.fromisoformat(
        "2026-02-28T08:00:00+08:00")
    assert _datetime("2026-11-22", "end_date") == datetime.fromisoformat(
        "2026-11-22T00:00+08:00")  # a day alone: Beijing time
    assert http.get("/requests.json", params={"start_date": "2026-11-22T08:00"}
                    ).status_code == 400  # a time needs its offset


@pytest.mark.parametrize("blank", ["\x1f", "\ufeff", " \u3000\n", "\x85"])
def test_blank_descriptions_are_blank_to_the_schema_too(blank: str) -> None:
    import re

    from workers.open311.model import NOT_BLANK

    cfg = config()
    assert re.match(NOT_BLANK, blank) is None
    with pytest.raises(Open311Error, match="description is required"):
        parse_request(_form(description=blank), cfg.lexicon, cfg.registry)
