"""Operators, roles and the audit log from the command line, as subprocesses on a real file:
passwords from VOLTKEEPER_PASSWORD or standard input (never a flag), exit code 3 naming the
missing permission, a wrong password refused, `audit verify` 0 on a whole log and 1 naming the
entry after someone edits the file."""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent.parent
PASSWORD = "demo-pass-1"


def _run(env, *args, stdin: str | None = None, password: str | None = PASSWORD):
    env = dict(env)
    if password is None:
        env.pop("VOLTKEEPER_PASSWORD", None)
    else:
        env["VOLTKEEPER_PASSWORD"] = password
    return subprocess.run([sys.executable, str(ROOT / "main.py"), *args], env=env, cwd=ROOT,
                          input=stdin if stdin is not None else "", capture_output=True,
                          text=True, timeout=60)


@pytest.fixture
def demo(tmp_path):
    env = dict(os.environ, VOLTKEEPER_HOME=str(tmp_path / "home"), LANGUAGE="en")
    db = str(tmp_path / "c.db")
    made = _run(env, "init-demo", "--db", db, "--buses", "1", "--meters", "3")
    assert made.returncode == 0, made.stderr
    assert "the password in VOLTKEEPER_PASSWORD" in made.stdout and PASSWORD not in made.stdout
    return env, db


def test_roles_are_enforced_with_exit_code_3(demo):
    env, db = demo
    ok = _run(env, "recharge", "--db", db, "--room", "1-101", "--amount", "5", "--method",
              "cash", "--operator", "cashier")
    assert ok.returncode == 0, ok.stderr
    denied = _run(env, "account", "--db", db, "refund", "--room", "1-101", "--amount", "1",
                  "--reason", "test", "--operator", "cashier")
    assert denied.returncode == 3
    lines = denied.stderr.strip().splitlines()
    assert len(lines) == 1 and "permission denied" in lines[0] and "'refund'" in lines[0]
    viewer = _run(env, "recharge", "--db", db, "--room", "1-101", "--amount", "5", "--method",
                  "cash", "--operator", "viewer")
    assert viewer.returncode == 3 and "'recharge'" in viewer.stderr
    tariff = _run(env, "tariff", "--db", db, "set", "--from", "2099-01-01", "--price", "0.6",
                  "--operator", "cashier")
    assert tariff.returncode == 3 and "'set_tariffs'" in tariff.stderr


def test_a_wrong_password_is_refused(demo):
    env, db = demo
    wrong = _run(env, "recharge", "--db", db, "--room", "1-101", "--amount", "5", "--method",
                 "cash", "--operator", "cashier", password="not-it")
    assert wrong.returncode not in (0, 3) and "wrong name or password" in wrong.stderr
    none = _run(env, "recharge", "--db", db, "--room", "1-101", "--amount", "5", "--method",
                "cash", "--operator", "cashier", password=None)
    assert none.returncode == 1 and "VOLTKEEPER_PASSWORD" in none.stderr
    # five wrong passwords lock the name, even against the right one
    for _n in range(4):
        _run(env, "recharge", "--db", db, "--room", "1-101", "--amount", "5", "--method",
             "cash", "--operator", "cashier", password="not-it")
    locked = _run(env, "recharge", "--db", db, "--room", "1-101", "--amount", "5", "--method",
                  "cash", "--operator", "cashier")
    assert locked.returncode == 1 and "locked" in locked.stderr


def test_operators_added_listed_changed_and_disabled(demo):
    env, db = demo
    add = _run(env, "operator", "add", "--db", db, "--name", "wang", "--role", "cashier",
               "--operator", "admin", stdin="initial-pw\n")
    assert add.returncode == 0, add.stderr
    assert "initial-pw" not in add.stdout + add.stderr
    # an initial password is to be changed before acting
    first = _run(env, "recharge", "--db", db, "--room", "1-101", "--amount", "1", "--method",
                 "cash", "--operator", "wang", password="initial-pw")
    assert first.returncode == 1 and "change the initial password" in first.stderr
    changed = _run(env, "operator", "passwd", "--db", db, "--name", "wang",
                   password="initial-pw", stdin="my-own-pw\n")
    assert changed.returncode == 0, changed.stderr
    after = _run(env, "recharge", "--db", db, "--room", "1-101", "--amount", "1", "--method",
                 "cash", "--operator", "wang", password="my-own-pw")
    assert after.returncode == 0, after.stderr
    listed = json.loads(_run(env, "operator", "list", "--db", db, "--json").stdout)
    wang = next(o for o in listed if o["name"] == "wang")
    assert wang["role"] == "cashier" and not wang["must_change_password"]
    assert all("hash" not in key for o in listed for key in o)
    by_cashier = _run(env, "operator", "disable", "--db", db, "--name", "wang",
                      "--operator", "cashier")
    assert by_cashier.returncode == 3 and "'manage_operators'" in by_cashier.stderr
    off = _run(env, "operator", "disable", "--db", db, "--name", "wang", "--operator", "admin")
    assert off.returncode == 0
    gone = _run(env, "recharge", "--db", db, "--room", "1-101", "--amount", "1", "--method",
                "cash", "--operator", "wang", password="my-own-pw")
    assert gone.returncode == 1 and "disabled" in gone.stderr
    last = _run(env, "operator", "disable", "--db", db, "--name", "admin", "--operator",
                "admin")
    assert last.returncode == 1 and "last administrator" in last.stderr


def test_first_administrator_on_an_empty_station(tmp_path):
    env = dict(os.environ, VOLTKEEPER_HOME=str(tmp_path / "home"), LANGUAGE="en")
    db = tmp_path / "empty.db"
    from app.storage.db import close_database, open_database

    open_database(db)
    close_database()
    first = _run(env, "operator", "add", "--db", str(db), "--name", "boss", "--role",
                 "administrator", stdin="boss-pass-1\n", password=None)
    assert first.returncode == 0, first.stderr
    second = _run(env, "operator", "add", "--db", str(db), "--name", "eve", "--role",
                  "administrator", stdin="eve-pass-1\n", password=None)
    assert second.returncode == 2 and "needs --operator NAME (an administrator)" in second.stderr


def test_audit_list_and_verify_and_tampering(demo):
    env, db = demo
    _run(env, "recharge", "--db", db, "--room", "1-101", "--amount", "5", "--method", "cash",
         "--operator", "cashier")
    listed = json.loads(_run(env, "audit", "list", "--db", db, "--json").stdout)
    kinds = [e["kind"] for e in listed]
    assert "sign_in" in kinds and "recharge" in kinds
    recharge = next(e for e in listed if e["kind"] == "recharge")
    assert recharge["operator"] == "cashier" and recharge["after"]["amount_cents"] == 500
    since = _run(env, "audit", "list", "--db", db, "--since", "2099-01-01")
    assert since.returncode == 0 and since.stdout.strip() == ""
    ok = _run(env, "audit", "verify", "--db", db)
    assert ok.returncode == 0 and "whole" in ok.stdout
    con = sqlite3.connect(db)
    con.execute("DROP TRIGGER audit_entry_no_update")
    con.execute("UPDATE audit_entry SET after = replace(after, '500', '50000') WHERE id = ?",
                (recharge["number"],))
    con.commit()
    con.close()
    broken = _run(env, "audit", "verify", "--db", db)
    assert broken.returncode == 1 and f"entry {recharge['number']}" in broken.stdout


def test_a_password_flag_is_refused_and_corrections_stay_in_their_room(demo):
    env, db = demo
    flag = _run(env, "recharge", "--db", db, "--room", "1-101", "--amount", "5", "--method",
                "cash", "--operator", "cashier", "--password", "demo-pass-1")
    assert flag.returncode == 2 and "VOLTKEEPER_PASSWORD" in flag.stderr
    assert "demo-pass-1" not in flag.stderr
    paid = _run(env, "recharge", "--db", db, "--room", "1-101", "--amount", "5", "--method",
                "cash", "--operator", "cashier")
    assert paid.returncode == 0, paid.stderr
    shown = _run(env, "account", "--db", db, "show", "--room", "1-101")
    assert shown.returncode == 0
    numbers = [int(line.split()[0]) for line in shown.stdout.splitlines()[1:]]
    assert numbers, shown.stdout
    wrong_room = _run(env, "account", "--db", db, "correct", "--room", "1-102", "--txn",
                      str(numbers[0]), "--reason", "typo", "--operator", "finance")
    assert wrong_room.returncode == 1 and "is not one of 1-102's" in wrong_room.stderr
    no_room = _run(env, "account", "--db", db, "correct", "--txn", str(numbers[0]),
                   "--reason", "typo", "--operator", "finance")
    assert no_room.returncode == 2 and "--room" in no_room.stderr


def test_station_settings_from_the_command_line(demo):
    """A station that runs only serve is configured without the window: an administrator
    changes a setting (audited), a cashier may not, a wrong key or value is one message."""
    env, db = demo
    changed = _run(env, "settings", "--db", db, "set", "--key", "control.max_restores",
                   "--value", "5", "--operator", "admin")
    assert changed.returncode == 0, changed.stderr
    assert "control.max_restores: 3 -> 5" in changed.stdout
    listed = json.loads(_run(env, "settings", "--db", db, "--json").stdout)
    assert listed["control.max_restores"] == 5 and listed["sms.sender"] == "none"
    denied = _run(env, "settings", "--db", db, "set", "--key", "control.max_restores",
                  "--value", "9", "--operator", "cashier")
    assert denied.returncode == 3
    for key, value in (("no.such", "1"), ("control.max_restores", "lots"),
                       ("sms.sender", "pigeon")):
        bad = _run(env, "settings", "--db", db, "set", "--key", key, "--value", value,
                   "--operator", "admin")
        assert bad.returncode == 1 and len(bad.stderr.strip().splitlines()) == 1, bad.stderr
    audit = json.loads(_run(env, "audit", "list", "--db", db, "--json").stdout)
    assert [e for e in audit if e["kind"] == "setting" and e["target"] ==
            "control.max_restores"]
