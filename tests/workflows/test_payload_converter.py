"""The hotline payload converter: smaller JSON that either converter reads back the same.

Every typed payload of the stored histories (workflow inputs, activity inputs and
results, update arguments) is decoded, written again by the compact converter and read
back by both it and Temporal's default converter: the values must be equal, so a
history written with either converter stays readable by code running the other.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest
from temporalio.converter import default

import workflows.model as model
from bench.bench_payloads import HISTORIES, payloads
from workers.runtime.temporal import DATA_CONVERTER
from workflows.model import (
    Acceptance,
    CaseRow,
    Filing,
    LadderPlan,
    LifecycleRecord,
    StepRecord,
    TierPlan,
)

COMPACT = DATA_CONVERTER.payload_converter
DEFAULT = default().payload_converter
FOUND = payloads()


def test_the_stored_histories_have_typed_payloads() -> None:
    assert {name for _, name in FOUND} >= {"Filing", "AcceptRequest", "Acceptance",
                                           "StepRecord", "SignFor", "CallbackAnswer"}


@pytest.mark.parametrize("name", sorted({name for _, name in FOUND}))
def test_every_stored_payload_round_trips_through_both_converters(name: str) -> None:
    cls = getattr(model, name)
    for payload, _ in (f for f in FOUND if f[1] == name):
        value = DEFAULT.from_payloads([payload], [cls])[0]
        compact = COMPACT.to_payloads([value])[0]
        assert DEFAULT.from_payloads([compact], [cls])[0] == value
        assert COMPACT.from_payloads([compact], [cls])[0] == value
        # Never larger (ASCII payloads with no default-valued field stay the same).
        assert len(compact.data) <= len(payload.data)


def test_the_stored_payloads_shrink_by_a_sixth_or_more() -> None:
    """Measured on the histories Temporal's default converter wrote (v1–v7; v8 on were
    written compact already)."""
    default_written = payloads(p for p in HISTORIES.glob("*.json")
                               if int(p.stem.rsplit("_v", 1)[1]) <= 7)
    before = sum(len(p.data) for p, _ in default_written)
    after = sum(len(COMPACT.to_payloads([DEFAULT.from_payloads([p], [getattr(model, n)])[0]])[0]
                    .data) for p, n in default_written)
    assert after < 0.84 * before  # 0.80 on v1–v7


def test_text_is_utf8_and_default_fields_are_left_out() -> None:
    at = datetime(2026, 12, 6, 9, 30, tzinfo=UTC)
    filing = Filing(event_id="e", complaint_id="c", filed_at=at, channel="PHONE",
                    content="电梯坏了", anonymous=False, attachments=[])
    data = COMPACT.to_payloads([filing])[0].data
    assert data.decode() == ('{"channel":"PHONE","complaint_id":"c","content":"电梯坏了",'
                             '"event_id":"e","filed_at":"2026-12-06T09:30:00Z"}')


@pytest.mark.parametrize(("at", "text"), [
    (datetime(2026, 12, 6, 9, 30, 1, 123456, tzinfo=UTC), "2026-12-06T09:30:01.123456Z"),
    # workflow.now() has milliseconds: the fraction's three zeros go.
    (datetime(2026, 12, 6, 9, 30, 1, 120000, tzinfo=UTC), "2026-12-06T09:30:01.120Z"),
    (datetime(2026, 12, 6, 9, 30, tzinfo=UTC), "2026-12-06T09:30:00Z"),
    # Not UTC, or naive: as the default converter writes it.
    (datetime(2026, 12, 6, 17, 30, tzinfo=timezone(timedelta(hours=8))),
     "2026-12-06T17:30:00+08:00"),
    (datetime(2026, 12, 6, 9, 30, 0, 5), "2026-12-06T09:30:00.000005"),
])
def test_a_timestamp_is_short_iso_8601_that_both_converters_read_back(
    at: datetime, text: str,
) -> None:
    payload = COMPACT.to_payloads([at])[0]
    assert payload.data.decode() == f'"{text}"'
    for converter in (COMPACT, DEFAULT):
        back = converter.from_payloads([payload], [datetime])[0]
        assert back == at and back.utcoffset() == at.utcoffset()


def test_a_value_that_only_compares_equal_to_its_default_is_kept() -> None:
    # overdue=False is CaseRow's default; seq 0 is a value (no default), so is kept;
    # a float 1.0 where the default is the float 1.0 goes, but 0 (int) is not False.
    row = CaseRow(complaint_id="c", version=1, status="FILED", filed_at=datetime.now(UTC),
                  channel="APP", overdue=False)
    text = COMPACT.to_payloads([row])[0].data.decode()
    assert '"version":1' in text and "overdue" not in text
    event = LifecycleRecord(seq=0, at=datetime.now(UTC), event_type="X", status="FILED")
    assert '"seq":0' in COMPACT.to_payloads([event])[0].data.decode()
    ladder = LadderPlan(warning_fractions=[0.5], sign_for_misses_to_district=2,
                        city_after_overdue_fraction=0.5, urges_to_escalate=2, max_returns=2,
                        unreached_attempts=3, unreached_window_seconds=1.0, max_reopens=1,
                        weights={}, extension_max_days=0)
    plan = TierPlan(tier="T2H", deadline_seconds=1.0, sign_for_seconds=1.0,
                    callback_seconds=1.0, due_at=datetime.now(UTC), sign_by=datetime.now(UTC))
    acc = Acceptance(outcome="DISPATCH", kind="HELP", category="x", category_name="x",
                     tier="T2H", reason="r", district=None, street=None, plan=plan,
                     ladder=ladder, confidence=1.0)
    text = COMPACT.to_payloads([acc])[0].data.decode()
    # district/street have no default: None is written; confidence 1.0 is the default.
    assert '"district":null' in text and "confidence" not in text
    assert "extension_max_days" not in text and "reopen_max_tier" not in text
    assert COMPACT.from_payloads([COMPACT.to_payloads([acc])[0]], [Acceptance])[0] == acc
    step = StepRecord(complaint_id="c", step="1-X")
    assert COMPACT.to_payloads([step])[0].data == b'{"complaint_id":"c","step":"1-X"}'


@pytest.mark.parametrize("name", sorted({name for _, name in FOUND}))
def test_every_stored_payload_decodes_as_the_default_converter_decodes_it(name: str) -> None:
    # The hotline converter resolves a dataclass's field types once per class; what it
    # builds must be what the default converter builds from the very same bytes.
    cls = getattr(model, name)
    for payload in (p for p, n in FOUND if n == name):
        ours = COMPACT.from_payloads([payload], [cls])[0]
        theirs = DEFAULT.from_payloads([payload], [cls])[0]
        assert type(ours) is type(theirs) and ours == theirs


def test_a_bad_field_is_the_same_error_as_the_default_converters() -> None:
    payload = DEFAULT.to_payloads([{"content": "x", "filed_at": "not a time"}])[0]
    with pytest.raises(Exception) as ours:
        COMPACT.from_payloads([payload], [Filing])
    with pytest.raises(Exception) as theirs:
        DEFAULT.from_payloads([payload], [Filing])
    assert type(ours.value) is type(theirs.value) and str(ours.value) == str(theirs.value)
    assert "filed_at" in str(ours.value)


def test_a_missing_required_field_is_refused_by_both() -> None:
    payload = DEFAULT.to_payloads([{}])[0]
    for converter in (COMPACT, DEFAULT):
        with pytest.raises(Exception, match="missing"):
            converter.from_payloads([payload], [Filing])
