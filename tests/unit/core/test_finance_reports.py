"""The monthly report against the ledger, to the cent: a month (November 2026) of use billed
daily through a tariff change with a free allowance, recharges by every method, a refund, a
correction and an account opened in the month; bookings after the month do not move it."""

from __future__ import annotations

import time
from decimal import Decimal
from types import SimpleNamespace

import pytest

from app.core import accounts, billing, cash_reports, finance_reports
from app.core.energy import INTERVAL_S, local_day
from app.core.operators import PermissionDenied
from app.core.recharge import book_recharge, recharge
from app.core.tariffs import TariffVersion, tiers_to_json
from app.errors import UserFacingError
from app.storage import accounts as store
from app.storage import campus, ledger, readings
from app.storage.db import open_database
from app.storage.models import database
from app.storage.readings import PollOutcome
from tests.helpers import operator

ADMIN = operator()
ALICE = operator("cashier", "alice")
BOB = operator("cashier", "bob")
DAY = 86400
OCT1 = time.mktime((2026, 10, 1, 0, 0, 0, 0, 0, -1))
NOV1 = time.mktime((2026, 11, 1, 0, 0, 0, 0, 0, -1))
DEC1 = time.mktime((2026, 12, 1, 0, 0, 0, 0, 0, -1))


@pytest.fixture
def db(tmp_path, monkeypatch):
    d = open_database(tmp_path / "rep.db")
    clock = SimpleNamespace(now=OCT1)
    # the ledger books at "now": the bookings of this month happen in it
    monkeypatch.setattr(ledger, "time", SimpleNamespace(time=lambda: clock.now))
    yield SimpleNamespace(db=d, clock=clock)
    d.close()


def _tariff(starts_on, price, allowance="0"):
    v = TariffVersion("dorm", starts_on, Decimal(price), (), Decimal(allowance))
    store.insert_tariff(v.group, v.starts_on, str(v.price), tiers_to_json(v.tiers),
                        str(v.allowance_kwh), "test")


def _campus():
    root = campus.add_node(None, "campus", "湘塘校区")
    bus = campus.add_bus("B1", "tcp://127.0.0.1:1")
    rooms = {}
    for b, bname in ((1, "1号宿舍楼"), (2, "2号宿舍楼")):
        bid = campus.add_node(root, "building", bname, str(b))
        floor = campus.add_node(bid, "floor", "1F", f"{b}-1F")
        for r in (101, 102):
            code = f"{b}-{r}"
            node = campus.add_node(floor, "room", code, code)
            meter = campus.add_meter(bus, len(rooms) + 1, "acrel-ddsy1352", f"31{len(rooms)}",
                                     node)
            rooms[code] = (node, meter)
    return rooms


def _use(meter, start, wh):
    readings.write_batch([PollOutcome(meter, start + 1.0, True, intervals=[(int(start), wh)],
                                      days=[(local_day(start), wh)])])


def _month(env):
    """October: two accounts open and recharge; November: the month reported."""
    rooms = _campus()
    _tariff("2026-01-01", "0.50", allowance="5")
    _tariff("2026-11-16", "0.60", allowance="5")
    env.clock.now = OCT1 + 5 * DAY
    accts = {}
    for code in ("1-101", "1-102", "2-101"):
        accts[code] = accounts.open_account(ADMIN, rooms[code][0], mode="station",
                                            t=env.clock.now).account.id
    recharge(ALICE, accts["1-101"], 10000, "cash", t=OCT1 + 6 * DAY)
    recharge(ALICE, accts["1-102"], 5000, "wechat", t=OCT1 + 6 * DAY)
    for k in range(20):  # October's use, billed in October
        _use(rooms["1-101"][1], OCT1 + 10 * DAY + k * INTERVAL_S, 500)
    env.clock.now = NOV1 - 60
    billing.bill(now=env.clock.now)
    # November: every day 3 rooms use energy at noon; billing runs each evening
    env.clock.now = NOV1 + 2 * DAY
    accts["2-102"] = accounts.open_account(ADMIN, rooms["2-102"][0], mode="station",
                                           opening_cents=1234, t=env.clock.now).account.id
    receipts = {}
    for day in range(30):
        for i, code in enumerate(("1-101", "1-102", "2-101", "2-102")):
            if code == "2-102" and day < 3:
                continue
            _use(rooms[code][1], NOV1 + day * DAY + 12 * 3600, 1000 + 377 * i + 13 * day)
        env.clock.now = NOV1 + day * DAY + 20 * 3600
        billing.bill(now=env.clock.now)
        if day == 3:
            for code, amount, method, who in (("1-101", 2000, "alipay", ALICE),
                                              ("1-102", 3000, "campus_card", BOB),
                                              ("2-101", 4567, "unionpay", ALICE),
                                              ("2-101", 1001, "bank", BOB),
                                              ("2-102", 999, "cash", ALICE)):
                r = recharge(who, accts[code], amount, method, t=env.clock.now)
                receipts[(code, method)] = r
        if day == 19:
            accounts.refund(ADMIN, accts["1-102"], 1500, "cash", "moving out early")
        if day == 21:  # the unionpay recharge was booked to the wrong room
            accounts.correct(ADMIN, receipts[("2-101", "unionpay")].txn_id, "wrong room")
            recharge(ALICE, accts["1-101"], 4567, "unionpay", t=env.clock.now)
    # a day is booked once it is over: the first run of December books November 30th, dated
    # its last instant (in November's report)
    env.clock.now = DEC1 + 60
    billing.bill(now=env.clock.now)
    env.clock.now = DEC1 + 3600
    return rooms, accts


def test_monthly_reconciles_to_the_ledger_to_the_cent(db):
    _rooms, accts = _month(db)
    rep = finance_reports.monthly(operator("finance", "fiona"),
                                  finance_reports.month_period("2026-11"))
    # every account's identity and the totals against the ledger: check() ran, and again here
    rep.check()
    by_room = {line.room: line.figures for line in rep.lines}
    assert set(by_room) == {"1-101", "1-102", "2-101", "2-102"}
    for code, f in by_room.items():
        assert f.expected_closing() == f.closing, code
        assert f.closing == _balance_at(accts[code], DEC1)
        assert f.opening == _balance_at(accts[code], NOV1)
    t = rep.totals
    assert t.recharges == {"alipay": 2000, "campus_card": 3000, "unionpay": 4567 * 2,
                           "bank": 1001, "cash": 999}
    assert t.refunds == 1500 and t.corrections == -4567 and t.adoptions == 1234
    assert by_room["1-101"].opening > 0 and by_room["2-102"].opening == 0
    # the ledger's own figures for November
    total_movement = sum(_balance_at(a, DEC1) - _balance_at(a, NOV1) for a in accts.values())
    assert t.closing - t.opening == total_movement == rep.ledger_movement
    charged = _kind_sum("consumption", NOV1, DEC1)
    allowance = _book_sum("expense:allowance", NOV1, DEC1)
    assert t.consumption == charged + allowance and t.allowance == allowance > 0
    # the tariff change: 16 days at 0.50 and 15 at 0.60 (the allowance the first 5 kWh)
    wh = sum(1000 + 13 * d for d in range(30))
    assert t.consumption > 0 and by_room["1-101"].consumption == _value(wh)
    # buildings add up to the totals
    names = [name for name, _f in rep.buildings]
    assert names == ["1号宿舍楼", "2号宿舍楼"]
    assert sum(f.closing for _n, f in rep.buildings) == t.closing


def _value(wh_total):
    """1-101's November energy at 0.50 to the 15th and 0.60 from the 16th, exact, rounded once
    (billing carries the rounding in the month)."""
    cost = Decimal(0)
    for d in range(30):
        kwh = Decimal(1000 + 13 * d) / 1000
        cost += kwh * (Decimal("0.50") if d < 15 else Decimal("0.60"))
    from app.core.money import to_cents

    return to_cents(cost)


def _balance_at(acct, t):
    from app.storage.models import LedgerEntry, LedgerTxn

    prepaid = ledger._book_id("prepaid")
    rows = (LedgerEntry.select(LedgerEntry.amount_cents).join(LedgerTxn)
            .where((LedgerEntry.account == acct) & (LedgerEntry.book == prepaid)
                   & (LedgerTxn.t < t)).tuples())
    return -sum(c for (c,) in rows)


def _kind_sum(kind, start, end):
    from app.storage.models import LedgerEntry, LedgerTxn

    prepaid = ledger._book_id("prepaid")
    rows = (LedgerEntry.select(LedgerEntry.amount_cents).join(LedgerTxn)
            .where((LedgerTxn.kind == kind) & (LedgerEntry.book == prepaid)
                   & (LedgerTxn.t >= start) & (LedgerTxn.t < end)).tuples())
    return sum(c for (c,) in rows)


def _book_sum(code, start, end):
    from app.storage.models import LedgerEntry, LedgerTxn

    book = ledger._book_id(code)
    rows = (LedgerEntry.select(LedgerEntry.amount_cents).join(LedgerTxn)
            .where((LedgerEntry.book == book) & (LedgerTxn.t >= start)
                   & (LedgerTxn.t < end)).tuples())
    return sum(c for (c,) in rows)


def test_later_bookings_do_not_move_a_past_month(db):
    rooms, accts = _month(db)
    period = finance_reports.month_period("2026-11")
    first = finance_reports.compute_monthly(period).totals_json()
    recharge(ALICE, accts["1-101"], 777, "cash", t=DEC1 + 7200)
    _use(rooms["1-101"][1], DEC1 + 12 * 3600, 2000)
    db.clock.now = DEC1 + 20 * 3600
    billing.bill(now=db.clock.now)
    accounts.refund(ADMIN, accts["1-102"], 100, "cash", "again")
    again = finance_reports.compute_monthly(period).totals_json()
    assert again == first


def test_building_filter_and_journal_and_shift(db):
    _rooms, accts = _month(db)
    # a payment booked by an import (receipt 9), and a number taken but kept nowhere (10: as
    # an import to a station-kept account did before schema 8), between alice's receipts
    book_recharge("import", accts["2-101"], 100, "wechat", t=DEC1 - 2 * DAY)
    with database.atomic():
        ledger.next_counter("receipt")
    recharge(ALICE, accts["2-101"], 200, "cash", t=DEC1 - DAY)
    period = finance_reports.month_period("2026-11")
    one = finance_reports.compute_monthly(period, building="2号宿舍楼")
    assert {line.building for line in one.lines} == {"2号宿舍楼"}
    j = cash_reports.compute_journal(period)
    assert [line.kind for line in j.lines].count("refund") == 1
    assert j.total == 2000 + 3000 + 4567 * 2 + 1001 + 999 - 1500 + 100 + 200
    assert all(line.receipt is not None for line in j.lines if line.kind == "recharge")
    s = cash_reports.compute_shift(period, "alice")
    assert s.recharges == {"alipay": 2000, "unionpay": 4567 * 2, "cash": 999 + 200}
    # bob's two receipts came between alice's, then the import's and one kept nowhere
    assert [(g.first, g.last, g.operator) for g in s.gaps] == [
        (4, 4, "bob"), (6, 6, "bob"), (9, 9, "import"), (10, 10, None)]
    assert "bob" in s.gaps[0].text() and "missing" in s.gaps[3].text()
    assert (s.first_receipt, s.last_receipt) == (3, 11)
    arrears = cash_reports.compute_arrears(DEC1, period=period)
    assert all(line.balance_cents <= 0 for line in arrears.lines)


def test_a_cashier_may_not_print_reports(db):
    with pytest.raises(PermissionDenied):
        finance_reports.monthly(ALICE, finance_reports.month_period("2026-11"))


def test_periods():
    p = finance_reports.month_period("2026-02")
    assert p.last_day.day == 28 and p.month == "2026-02"
    r = finance_reports.range_period("2026-02-01", "2026-02-28")
    assert r.month == "2026-02" and r.end - r.start == 28 * DAY
    assert finance_reports.range_period("2026-02-03", "2026-02-03").month is None
    with pytest.raises(UserFacingError):
        finance_reports.month_period("2026-13")
