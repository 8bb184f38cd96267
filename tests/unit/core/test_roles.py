"""Every operation against every role, in the core, without any UI: allowed or refused.

The expected table is written out here (not derived from the code's own table), so a change of
``ROLE_PERMISSIONS`` that lets a cashier refund fails this test. A refused act changes nothing
(no booking, no operator, no setting) and leaves one "denied" entry in the audit log; an
allowed act leaves its own entry.
"""

from __future__ import annotations

import time
from decimal import Decimal
from pathlib import Path

import pytest

from app.core import accounts, alarms, audit, billing, operators, payments_import, queries
from app.core import backup as backups
from app.core import settings as station_settings
from app.core.operators import Operator, Permission, PermissionDenied, Role
from app.core.recharge import recharge
from app.core.tariffs import TariffVersion
from app.drivers.meter_values import MeterValues
from app.storage import campus, readings
from app.storage.accounts import insert_tariff
from app.storage.db import close_database, open_database
from app.storage.models import AuditEntry, LedgerTxn, Occupant, Setting, Tariff
from app.storage.models import Operator as OperatorRow
from app.storage.readings import PollOutcome

ROLES = ("administrator", "cashier", "finance", "maintenance", "viewer")
SYSTEM = Operator.system("test setup")


def _world(tmp_path: Path) -> dict:
    open_database(tmp_path / "roles.db")
    root = campus.add_node(None, "campus", "湘塘校区", "XT")
    bus = campus.add_bus("B01", "tcp://127.0.0.1:1")
    ids: dict = {"tmp": tmp_path}
    now = time.time()
    for i, code in enumerate(("1-101", "1-102", "1-103")):
        node = campus.add_node(root, "room", code, code)
        meter = campus.add_meter(bus, i + 1, "acrel-ddsy1352", f"31000000100{i}", node)
        campus.add_occupant(node, f"学生{i}", f"2024000{i}")
        ids[f"node:{code}"], ids[f"meter:{code}"] = node, meter
        readings.write_batch([PollOutcome(meter, now, True, values=MeterValues(
            read_at=now, energy_kwh=Decimal("100.00"), remaining_money_cents=0,
            purchase_count=1, relay_closed=True, control_mode="auto"))])
    insert_tariff("dorm", "2000-01-01", "0.588", "", "0", "test")
    for code in ("1-101", "1-103"):
        ids[code] = accounts.open_account(SYSTEM, ids[f"node:{code}"],
                                          mode="station").account.id
    ids["recharge"] = recharge(SYSTEM, ids["1-101"], 100_00, "cash").txn_id
    operators.add_operator(SYSTEM, "victim", "cashier", "victim-pass", must_change=False)
    statement = tmp_path / "statement.csv"
    statement.write_text("transaction id,room,amount\nT1,1-101,10\n", encoding="utf-8")
    ids["statement"] = statement
    return ids


# name -> (the roles that may do it, the act)
CASES = {
    "recharge": ({"administrator", "cashier"},
                 lambda op, w: recharge(op, w["1-101"], 10_00, "cash")),
    "import_payments": ({"administrator", "cashier", "finance"},
                        lambda op, w: payments_import.apply(
                            op, payments_import.preview(w["statement"]))),
    "open_account": ({"administrator", "cashier"},
                     lambda op, w: accounts.open_account(op, w["node:1-102"])),
    "move_in": ({"administrator", "cashier"},
                lambda op, w: accounts.move_in(op, w["node:1-102"], "新生", "20249999")),
    "move_out": ({"administrator", "cashier"},
                 lambda op, w: accounts.move_out_by_name(op, w["node:1-101"], "学生0")),
    "close_account": ({"administrator", "finance"},
                      lambda op, w: accounts.close_account(op, w["1-103"])),
    "refund": ({"administrator", "finance"},
               lambda op, w: accounts.refund(op, w["1-101"], 5_00, "cash", "moved out early")),
    "correct": ({"administrator", "finance"},
                lambda op, w: accounts.correct(op, w["recharge"], "wrong room")),
    "set_tariff": ({"administrator", "finance"},
                   lambda op, w: billing.set_tariff(op, TariffVersion(
                       "dorm", "2099-01-01", Decimal("0.6")))),
    "add_operator": ({"administrator"},
                     lambda op, w: operators.add_operator(op, "newbie", "viewer", "newbie-pw")),
    "reset_password": ({"administrator"},
                       lambda op, w: operators.reset_password(op, "victim", "fresh-pass")),
    "disable_operator": ({"administrator"},
                         lambda op, w: operators.set_disabled(op, "victim", True)),
    "change_setting": ({"administrator"},
                       lambda op, w: station_settings.change(op, station_settings.BACKUP_KEEP,
                                                             7)),
    "backup": ({"administrator", "maintenance"},
               lambda op, w: backups.backup(op, w["tmp"] / "roles.db", w["tmp"] / "backups")),
    "room_overview": (set(ROLES), lambda op, w: queries.room_overview(op, w["node:1-101"])),
    "alarm_list": (set(ROLES), lambda op, w: alarms.alarm_list(op)),
    "audit_log": ({"administrator", "finance"}, lambda op, w: audit.entries(op)),
}


def _footprint() -> tuple:
    """What a refused act must leave as it was."""
    return (LedgerTxn.select().count(), OperatorRow.select().count(),
            [(o.name, o.disabled, o.password_hash) for o in OperatorRow.select()],
            Setting.select().count(), Tariff.select().count(),
            Occupant.select().where(Occupant.moved_out.is_null()).count())


@pytest.mark.parametrize("role", ROLES)
@pytest.mark.parametrize("case", sorted(CASES))
def test_each_operation_checks_the_role(tmp_path, case, role):
    allowed, act = CASES[case]
    world = _world(tmp_path)
    try:
        op = Operator(f"{role}-1", Role(role))
        before, entries = _footprint(), AuditEntry.select().count()
        if role in allowed:
            result = act(op, world)
            assert result is not None
            assert AuditEntry.select().count() >= entries  # acts add their entry
        else:
            with pytest.raises(PermissionDenied) as refused:
                act(op, world)
            assert refused.value.permission.value in str(refused.value)
            assert _footprint() == before
            last = AuditEntry.select().order_by(AuditEntry.id.desc()).first()
            assert AuditEntry.select().count() == entries + 1
            assert (last.kind, last.operator) == ("denied", op.name)
        assert audit.verify().ok
    finally:
        close_database()


def test_acts_leave_an_entry_naming_who_and_what(tmp_path):
    world = _world(tmp_path)
    try:
        cashier = Operator("王老师", Role.CASHIER)
        result = recharge(cashier, world["1-101"], 12_34, "wechat")
        last = AuditEntry.select().order_by(AuditEntry.id.desc()).first()
        assert (last.operator, last.kind, last.node) == ("王老师", "recharge",
                                                         world["node:1-101"])
        assert "1-101" in last.target and '"amount_cents":1234' in last.after
        assert f'"receipt":{result.receipt_no}' in last.after
    finally:
        close_database()


def test_the_issue_s_examples(tmp_path):
    """A cashier can recharge but not refund, correct, change tariffs, trip a building or use
    raw registers."""
    cashier = Operator("c", Role.CASHIER)
    assert cashier.can(Permission.RECHARGE)
    for p in (Permission.REFUND, Permission.CORRECT, Permission.SET_TARIFFS,
              Permission.CONTROL_BATCH, Permission.RAW_REGISTERS):
        assert not cashier.can(p), p
    assert all(not Operator("v", Role.VIEWER).can(p) for p in Permission
               if p is not Permission.VIEW)
