"""SMS templates: a default for every kind in zh_CN and en, edits audited and role-checked, a
bad edit refused, and one gone bad in the database never breaks a text (the default goes)."""

from __future__ import annotations

import logging

import pytest

from app.core import audit, sms_templates
from app.core.operators import PermissionDenied
from app.core.sms_templates import KINDS, LANGS, render, set_template, templates
from app.errors import UserFacingError
from app.storage import sms as store
from app.storage.db import open_database
from tests.helpers import operator

ADMIN = operator()
VALUES = {"room": "1-101", "balance": "12.50", "days": "6"}


@pytest.fixture
def db(tmp_path):
    d = open_database(tmp_path / "sms.db")
    yield d
    d.close()


def test_every_kind_has_a_default_in_both_languages_with_the_room(db):
    for kind in KINDS:
        for lang in LANGS:
            text = render(kind, lang, VALUES)
            assert "1-101" in text and "{" not in text
            assert sms_templates.problem(sms_templates.default_text(kind, lang)) is None
    assert "12.50元" in render("low_balance_1", "zh_CN", VALUES)
    assert "6天" in render("low_balance_1", "zh_CN", VALUES)
    assert "about 6 days" in render("low_balance_2", "en", VALUES)


def test_an_edit_is_audited_and_used_and_an_empty_text_sets_the_default_back(db):
    change = set_template(ADMIN, "low_balance_1", "en", "Room {room}: {balance} yuan, {days} d")
    assert change.edited and change.changes.settings
    assert render("low_balance_1", "en", VALUES) == "Room 1-101: 12.50 yuan, 6 d"
    rows = [v for v in templates(ADMIN) if v.kind == "low_balance_1" and v.lang == "en"]
    assert rows[0].edited and rows[0].updated_by == ADMIN.name
    back = set_template(ADMIN, "low_balance_1", "en", "  ")
    assert not back.edited and back.before == "Room {room}: {balance} yuan, {days} d"
    assert render("low_balance_1", "en", VALUES) == \
        sms_templates.default_text("low_balance_1", "en").format(**VALUES)
    assert store.edited_template("low_balance_1", "en") is None
    logged = audit.entries(ADMIN, audit.AuditFilter(kind="sms_template"))
    assert [e.target for e in logged] == ["low_balance_1 (en)"] * 2
    assert "Room {room}" in logged[1].after and "Room {room}" in logged[0].before


def test_editing_needs_the_settings_permission(db):
    with pytest.raises(PermissionDenied):
        set_template(operator("cashier", "alice"), "trip_arrears", "zh_CN", "{room} 断电")
    assert store.edited_template("trip_arrears", "zh_CN") is None


@pytest.mark.parametrize("text,why", [
    ("Room {room", "brace"),
    ("Room {name}", "placeholder"),
    ("Room {room.upper}", "placeholder"),
    ("Room {room:>999999}", "format"),
    ("Room {balance!r}", "format"),
    ("", None),
])
def test_a_bad_template_is_refused(db, text, why):
    if why is None:  # empty: back to the default, not refused
        assert not set_template(ADMIN, "trip_plan", "en", text).edited
        return
    with pytest.raises(UserFacingError, match=why):
        set_template(ADMIN, "trip_plan", "en", text)
    assert store.edited_template("trip_plan", "en") is None


def test_unknown_kind_or_language_is_refused(db):
    with pytest.raises(UserFacingError):
        set_template(ADMIN, "birthday", "en", "Happy birthday {room}")
    with pytest.raises(UserFacingError):
        set_template(ADMIN, "trip_plan", "fr", "{room}")


def test_a_template_gone_bad_in_the_database_falls_back_to_the_default(db, caplog):
    store.put_template("trip_arrears", "zh_CN", "{room} {oops", "someone", 0.0)
    with caplog.at_level(logging.ERROR, logger="voltkeeper.sms"):
        text = render("trip_arrears", "zh_CN", VALUES)
    assert text == sms_templates.default_text("trip_arrears", "zh_CN").format(**VALUES)
    assert any("trip_arrears" in r.getMessage() for r in caplog.records)
