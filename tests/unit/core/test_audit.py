"""The audit log's hash chain against someone editing the database file with sqlite3: each kind
of tampering is found and the first broken entry named; an untouched log passes."""

from __future__ import annotations

import sqlite3

import pytest

from app.core import audit, operators
from app.core.operators import Operator, SignInFailed
from app.storage.db import close_database, open_database
from app.storage.models import AuditEntry

COLUMNS = "t, operator, kind, target, node, before, after, detail, prev_hash, hash"


@pytest.fixture
def log(tmp_path):
    path = tmp_path / "audit.db"
    open_database(path)
    system = Operator.system("test")
    operators.add_operator(system, "alice", "cashier", "alice-pass", must_change=False)
    for n in range(8):
        audit.record("alice", "recharge", target=f"A{n:07d} (1-10{n})",
                     after={"amount_cents": 1000 + n}, node_id=n + 1)
    close_database()  # the tamperer has the file to themselves
    yield path
    close_database()


def _tamper(path, *statements: str) -> None:
    con = sqlite3.connect(path)
    con.execute("DROP TRIGGER audit_entry_no_update")
    con.execute("DROP TRIGGER audit_entry_no_delete")
    for sql in statements:
        con.execute(sql)
    con.commit()
    con.close()


def _check(path) -> audit.ChainCheck:
    open_database(path)
    return audit.verify()


def test_an_untouched_log_is_whole(log):
    check = _check(log)
    assert check.ok and check.entries == 9 and "whole" in check.message()


def test_the_log_refuses_updates_and_deletes_through_sqlite(log):
    con = sqlite3.connect(log)
    with pytest.raises(sqlite3.IntegrityError, match="append-only"):
        con.execute("UPDATE audit_entry SET operator = 'mallory' WHERE id = 3")
    with pytest.raises(sqlite3.IntegrityError, match="append-only"):
        con.execute("DELETE FROM audit_entry WHERE id = 3")
    con.close()


def test_a_changed_amount_is_found(log):
    _tamper(log, "UPDATE audit_entry SET after = replace(after, '1004', '9004') WHERE id = 6")
    check = _check(log)
    assert not check.ok and check.broken_at == 6 and "changed" in check.problem
    assert "entry 6" in check.message()


def test_a_deleted_row_is_found(log):
    _tamper(log, "DELETE FROM audit_entry WHERE id = 4")
    check = _check(log)
    assert not check.ok and check.broken_at == 4 and "missing" in check.problem


def test_a_deleted_last_row_is_found(log):
    _tamper(log, "DELETE FROM audit_entry WHERE id = 9")
    check = _check(log)
    assert not check.ok and check.broken_at == 9 and "missing" in check.problem


def test_two_swapped_rows_are_found(log):
    _tamper(log,
            f"CREATE TEMP TABLE keep AS SELECT id, {COLUMNS} FROM audit_entry "
            "WHERE id IN (3, 7)",
            *(f"UPDATE audit_entry SET ({COLUMNS}) = (SELECT {COLUMNS} FROM keep "
              f"WHERE keep.id = {other}) WHERE id = {row}" for row, other in ((3, 7), (7, 3))))
    check = _check(log)
    assert not check.ok and check.broken_at == 3


def test_swapped_contents_with_their_hashes_kept_in_place_are_found(log):
    fields = "t, operator, kind, target, node, before, after, detail"
    _tamper(log,
            f"CREATE TEMP TABLE keep AS SELECT id, {fields} FROM audit_entry WHERE id IN (2, 5)",
            *(f"UPDATE audit_entry SET ({fields}) = (SELECT {fields} FROM keep "
              f"WHERE keep.id = {other}) WHERE id = {row}" for row, other in ((2, 5), (5, 2))))
    check = _check(log)
    assert not check.ok and check.broken_at == 2 and "changed" in check.problem


def test_a_row_appended_by_hand_with_a_good_hash_is_found(log):
    """Someone who knows the chain's rule computes a valid hash for a forged entry: the record
    of where the log ended gives it away."""
    con = sqlite3.connect(log)
    last_id, last_hash = con.execute(
        "SELECT id, hash FROM audit_entry ORDER BY id DESC LIMIT 1").fetchone()
    con.close()
    t, target, after = 1_800_000_000.0, "A0000001 (1-101)", '{"amount_cents":500000}'
    digest = audit.entry_hash(last_hash, last_id + 1, t, "alice", "recharge", target, 1, "",
                              after, "")
    _tamper(log, f"INSERT INTO audit_entry (id, {COLUMNS}) VALUES ({last_id + 1}, {t}, "
                 f"'alice', 'recharge', '{target}', 1, '', '{after}', '', '{last_hash}', "
                 f"'{digest}')")
    check = _check(log)
    assert not check.ok and check.broken_at == last_id + 1


def test_sign_ins_and_failures_are_in_the_log(log):
    open_database(log)
    operators.sign_in("alice", "alice-pass")
    with pytest.raises(SignInFailed):
        operators.sign_in("alice", "wrong-pass")
    with pytest.raises(SignInFailed):
        operators.sign_in("nobody", "whatever")
    kinds = [(e.kind, e.operator) for e in AuditEntry.select().order_by(AuditEntry.id)][-3:]
    assert kinds == [("sign_in", "alice"), ("sign_in_failed", "alice"),
                     ("sign_in_failed", "?")]  # an unknown name is not kept: it may be a password
    assert not AuditEntry.select().where(AuditEntry.target.contains("nobody")
                                         | AuditEntry.detail.contains("nobody")).exists()
    assert audit.verify().ok
