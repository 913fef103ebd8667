"""The workbench's pieces without a server: photo checks, signed sessions, ladder stages,
forms into records."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from workers.workbench.actions import ActionError, decision_record, unit_record
from workers.workbench.i18n import pick_lang, translator
from workers.workbench.photos import FolderPhotoStore as PhotoStore
from workers.workbench.photos import PhotoError, photo_type
from workers.workbench.reads import ladder_stage
from workers.workbench.session import Session, Sessions

NOW = datetime(2026, 12, 6, 12, 0, tzinfo=UTC)


def test_photo_types_come_from_the_first_bytes() -> None:
    assert photo_type(b"\xff\xd8\xff\xe0\x00\x10JFIF") == "jpg"
    assert photo_type(b"\x89PNG\r\n\x1a\n\x00\x00") == "png"
    assert photo_type(b"RIFF\x10\x00\x00\x00WEBPVP8 ") == "webp"
    assert photo_type(b"GIF89a") is None
    assert photo_type(b"<svg onload=alert(1)>") is None


def test_the_store_refuses_large_or_foreign_files_and_serves_only_its_names(
        tmp_path: Path) -> None:
    store = PhotoStore(tmp_path, "https://wb.example.org", max_bytes=100)
    with pytest.raises(PhotoError, match="over"):
        store.check("big.jpg", b"\xff\xd8\xff" + b"0" * 100)
    with pytest.raises(PhotoError, match="JPEG, PNG or WebP"):
        store.check("x.png", b"%PDF-1.7")
    url = store.save(b"\x89PNG\r\n\x1a\nabc", store.check("a.png", b"\x89PNG\r\n\x1a\nabc"))
    name = url.rsplit("/", 1)[1]
    assert url.startswith("https://wb.example.org/photos/") and name.endswith(".png")
    assert store.path(name) == tmp_path / name
    assert store.path("../secrets.png") is None and store.path(name.upper()) is None


def test_a_session_cookie_cannot_be_forged_and_expires() -> None:
    sessions = Sessions("k" * 32, max_age_s=60, secure=True)
    session = Session.fresh("unit-a")

    class Jar:
        value = ""

        def set_cookie(self, _name: str, value: str, **_kw: object) -> None:
            Jar.value = value

    sessions.store(Jar(), session)  # type: ignore[arg-type]
    assert sessions.load(Jar.value) == session
    assert Sessions("other-key" * 4, 60, True).load(Jar.value) is None
    assert sessions.load(Jar.value[:-2] + "xx") is None
    assert Sessions("k" * 32, max_age_s=-1, secure=True).load(Jar.value) is None
    assert session.csrf_ok(session.csrf) and not session.csrf_ok(Session.fresh().csrf)
    assert not session.csrf_ok(None)


@pytest.mark.parametrize(("minutes_used", "overdue", "level", "stage"), [
    (10, False, "UNIT", "normal"), (35, False, "UNIT", "warned"),
    (61, False, "UNIT", "overdue"), (10, True, "UNIT", "overdue"),
    (10, False, "DISTRICT", "supervised")])
def test_ladder_stages(minutes_used: int, overdue: bool, level: str, stage: str) -> None:
    issued = NOW - timedelta(minutes=minutes_used)
    assert ladder_stage(NOW, issued, issued + timedelta(minutes=60), overdue, level) == stage


def test_forms_become_records_only_when_complete() -> None:
    record = unit_record("complete", "C1", "C1-d1", "110105026", "unit-a",
                         {"result": "RESOLVED", "reply_text": "已修复"},
                         ["https://wb/photos/a.png"])
    assert record["reply_text"] == "已修复"
    assert record["attachments"] == ["https://wb/photos/a.png"]
    assert record["dispatch_id"] == "C1-d1" and record["unit_id"] == "110105026"
    for action, form in (("return", {"reason": "  "}), ("extension", {"extra_days": "99",
                                                                        "reason": "x"}),
                         ("complete", {"result": "DONE", "reply_text": "x"}),
                         ("whistle", {"units": "", "reason": "x"}), ("delete", {})):
        with pytest.raises(ActionError):
            unit_record(action, "C1", "C1-d1", "u", "s", form, [])
    whistle = unit_record("whistle", "C1", "d", "u", "s",
                          {"units": "bj-housing，bj-police", "reason": "协助"}, [])
    assert whistle["units"] == ["bj-housing", "bj-police"]
    decided = decision_record("C1", "desk", {"decision": "DISPATCH", "unit_id": "110105026",
                                             "tier": "T24H"})
    assert decided["unit_id"] == "110105026" and decided["redirect_to"] is None
    with pytest.raises(ActionError):
        decision_record("C1", "desk", {"decision": "REDIRECT", "redirect_to": "999"})


def test_chinese_first_english_on_request() -> None:
    assert pick_lang(None, None) == "zh" and pick_lang("en", None) == "en"
    assert pick_lang("fr", "en") == "en"
    assert translator("zh")("inbox") == "待办工单" and translator("en")("inbox") == "Inbox"
