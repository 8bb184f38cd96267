"""``main.py sms log``, ``sms template`` and ``sms key`` on a real station file: the log with
numbers masked (whole in JSON), a template edited by a signed-in administrator and refused to a
cashier, the gateway's key read from standard input into its 0600 file."""

from __future__ import annotations

import io
import json
import os
import sys

import pytest

from app.cli import EXIT_DENIED, EXIT_REFUSED, main
from app.core import operators, sms_outbox, sms_templates
from app.core.sms_outbox import notify
from app.drivers.sms_http import read_key
from app.storage import sms as store
from app.storage.db import open_database
from app.storage.models import database
from tests.sms_helpers import ADMIN, NUMBER, sms_room, sms_settings

PASSWORD = "sms-pass-1"


@pytest.fixture
def station(tmp_path, monkeypatch):
    db_path = tmp_path / "station.db"
    d = open_database(db_path)
    sms_settings(sender="modem")
    acct, _room, _meter = sms_room()
    operators.add_operator(None, "root", "administrator", PASSWORD, must_change=False,
                           check_strength=False)
    operators.add_operator(ADMIN, "alice", "cashier", PASSWORD, must_change=False,
                           check_strength=False)
    monkeypatch.setenv("VOLTKEEPER_PASSWORD", PASSWORD)
    yield acct, db_path
    d.close()


def _main(*args: str) -> int:
    return main(["--language", "en", *args])


def test_the_log_masks_numbers_and_json_gives_them_whole(station, capsys):
    acct, db = station
    notify("trip_arrears", acct, event="hold:1")
    with database.atomic():
        store.mark(store.messages()[0].id, "failed", "+CMS ERROR: 330")
    assert _main("sms", "log", "--db", str(db)) == 0
    out = capsys.readouterr().out
    assert "+86138****8000" in out and NUMBER not in out
    assert "1-101" in out and "failed" in out and "+CMS ERROR: 330" in out
    assert _main("sms", "log", "--db", str(db), "--json", "--state", "failed") == 0
    rows = json.loads(capsys.readouterr().out)
    assert [(r["phone"], r["state"], r["room"]) for r in rows] == [(NUMBER, "failed", "1-101")]
    assert _main("sms", "log", "--db", str(db), "--state", "sent") == 0
    assert "no texts" in capsys.readouterr().out


def test_a_template_is_shown_edited_by_an_administrator_and_refused_to_a_cashier(station,
                                                                                capsys):
    _acct, db = station
    assert _main("sms", "template", "--db", str(db), "--kind", "trip_plan") == 0
    out = capsys.readouterr().out
    assert "trip_plan zh_CN" in out and "trip_plan en" in out and "low_balance" not in out
    text = "{room}: power limited until supply is back"
    assert _main("sms", "template", "--db", str(db), "--operator", "root", "--kind",
                 "trip_plan", "--lang", "en", "--text", text) == 0
    assert "changed" in capsys.readouterr().out
    assert sms_templates.render("trip_plan", "en", {"room": "3-204"}) == \
        "3-204: power limited until supply is back"
    assert _main("sms", "template", "--db", str(db), "--operator", "alice", "--kind",
                 "trip_plan", "--lang", "en", "--text", "{room} x") == EXIT_DENIED
    assert _main("sms", "template", "--db", str(db), "--operator", "root", "--kind",
                 "trip_plan", "--lang", "en", "--text", "{roomz} x") == EXIT_REFUSED
    assert "unknown placeholder" in capsys.readouterr().err
    assert store.edited_template("trip_plan", "en") == text


def test_the_gateway_key_is_read_from_standard_input(station, capsys, monkeypatch):
    _acct, db = station
    monkeypatch.setattr(sys, "stdin", io.StringIO("s3cret-key\n"))
    assert _main("sms", "key", "--db", str(db)) == 0
    path = sms_outbox.gateway_key_file()
    assert str(path) in capsys.readouterr().out and path.parent == db.parent
    assert read_key(path) == "s3cret-key" and os.stat(path).st_mode & 0o777 == 0o600
