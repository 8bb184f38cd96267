"""Tariffs, billing and the ledger on a real SQLite file: hand-computed bills to the cent."""

from __future__ import annotations

import time
from decimal import Decimal

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from app.core import accounts, balances, billing
from app.core.energy import INTERVAL_S, local_day
from app.core.money import to_cents
from app.core.recharge import recharge
from app.core.tariffs import TariffVersion
from app.drivers.meter_values import MeterValues
from app.errors import UserFacingError
from app.storage import accounts as store
from app.storage import campus, ledger, readings
from app.storage.db import open_database
from app.storage.models import Alarm, LedgerEntry, LedgerTxn, database
from app.storage.readings import PollOutcome
from tests.helpers import operator

ADMIN = operator()

# a fixed month, far from any DST question: November 2026, local midnight
MONTH0 = time.mktime((2026, 11, 1, 0, 0, 0, 0, 0, -1))


@pytest.fixture
def db(tmp_path):
    d = open_database(tmp_path / "bill.db")
    yield d
    d.close()


def _room(code="1-101", meters=1):
    root = campus.add_node(None, "campus", "c")
    room = campus.add_node(root, "room", code, code)
    bus = campus.add_bus(f"B-{code}", "tcp://127.0.0.1:1")
    ids = [campus.add_meter(bus, i + 1, "acrel-ddsy1352", f"3100000010{i:02d}", room)
           for i in range(meters)]
    return room, ids


def _tariff(group="dorm", starts_on="2026-01-01", price="0.588", tiers=(), allowance="0"):
    v = TariffVersion(group, starts_on, Decimal(price),
                      tuple((None if b is None else Decimal(b), Decimal(p)) for b, p in tiers),
                      Decimal(allowance))
    from app.core.tariffs import tiers_to_json

    store.insert_tariff(v.group, v.starts_on, str(v.price), tiers_to_json(v.tiers),
                        str(v.allowance_kwh), "test")


def _use(meter_id, start, wh):
    readings.write_batch([PollOutcome(meter_id, start + 1.0, True, intervals=[(int(start), wh)],
                                      days=[(local_day(start), wh)])])


def test_flat_month_equals_energy_times_price(db):
    room, (meter,) = _room()
    _tariff(price="0.588")
    acct = accounts.open_account(ADMIN, room, mode="station", t=MONTH0).account.id
    # 30 days x 96 intervals of 37 Wh = 106.560 kWh -> 62.657 28 -> 62.66
    for k in range(30 * 96):
        _use(meter, MONTH0 + k * INTERVAL_S, 37)
    billing.bill(now=MONTH0 + 30 * 86400 + 1)
    assert ledger.balance(acct) == -6266
    # many small billing runs carry the rounding: same total
    txns = ledger.txns(acct)
    assert sum(t.amount_cents for t in txns) == -6266


def test_runs_carry_rounding(db):
    room, (meter,) = _room()
    _tariff(price="0.588")
    acct = accounts.open_account(ADMIN, room, mode="station", t=MONTH0).account.id
    for k in range(200):  # 200 intervals of 3 Wh: each 0.001764 yuan, rounds to 0 alone
        _use(meter, MONTH0 + k * INTERVAL_S, 3)
        billing.bill(now=MONTH0 + (k + 1) * INTERVAL_S)
    # 0.6 kWh x 0.588 = 0.3528 -> 35 cents, not 0; the third day (to 02:00) is not booked yet
    assert balances.balance(acct) == -35
    assert ledger.balance(acct) == -to_cents(Decimal("0.576") * Decimal("0.588"))
    billing.bill(now=MONTH0 + 3 * 86400)
    assert ledger.balance(acct) == balances.balance(acct) == -35
    assert sorted(t.t for t in ledger.txns(acct) if t.kind == "consumption") == [
        MONTH0 + d * 86400 - 0.001 for d in (1, 2)] + [MONTH0 + 3 * 86400 - 0.001]


def test_tiered_and_allowance(db):
    room, (meter,) = _room()
    # first 10 kWh free, then 0.50 up to 50 kWh of monthly use, then 0.80
    _tariff(price="0.50", tiers=(("50", "0.50"), (None, "0.80")), allowance="10")
    acct = accounts.open_account(ADMIN, room, mode="station", t=MONTH0).account.id
    _use(meter, MONTH0, 30_000)  # 30 kWh
    _use(meter, MONTH0 + INTERVAL_S, 40_000)  # 40 more: 20 at 0.50, 20 at 0.80
    report = billing.bill(now=MONTH0 + 2 * INTERVAL_S)
    # hand: 10 free (value 5.00), 20 x 0.50 = 10.00, 20 x 0.50 = 10.00, 20 x 0.80 = 16.00
    assert balances.balance(acct) == -3600
    assert ledger.balance(acct) == 0 and report.allowance_cents == 0  # the day is not over
    report = billing.bill(now=MONTH0 + 86400)
    assert ledger.balance(acct) == -3600
    assert report.allowance_cents == 500
    assert ledger.trial_balance()["expense:allowance"] == 500


def test_tariff_change_mid_month_splits_at_the_interval(db):
    room, (meter,) = _room()
    _tariff(price="0.50", starts_on="2026-01-01")
    _tariff(price="0.60", starts_on="2026-11-16")
    acct = accounts.open_account(ADMIN, room, mode="station", t=MONTH0).account.id
    for day in range(30):
        _use(meter, MONTH0 + day * 86400 + 12 * 3600, 10_000)  # 10 kWh a day at noon
    billing.bill(now=MONTH0 + 30 * 86400)
    # 15 days at 0.50 and 15 at 0.60: 75 + 90 = 165.00
    assert ledger.balance(acct) == -16500


def test_no_tariff_is_reported_not_guessed(db):
    room, (meter,) = _room()
    accounts.open_account(ADMIN, room, mode="station", t=MONTH0)
    _use(meter, MONTH0, 1000)
    report = billing.bill(now=MONTH0 + INTERVAL_S)
    assert report.problems and "no tariff" in report.problems[0]


def test_recharge_close_and_settle(db):
    room, (meter,) = _room()
    _tariff()
    acct = accounts.open_account(ADMIN, room, mode="meter", t=MONTH0).account.id
    r = recharge(operator("cashier", "alice"), acct, 5000, "cash")
    r2 = recharge(operator("cashier", "alice"), acct, 1234, "wechat")
    assert r2.receipt_no == r.receipt_no + 1
    assert ledger.balance(acct) == 6234
    items = store.outbox_items(meter)
    # the purchase count is taken from the meter at delivery, not guessed at booking
    assert [(i.action, i.amount_cents, i.purchase_count, i.receipt_no) for i in items] == [
        ("recharge", 5000, None, r.receipt_no), ("recharge", 1234, None, r2.receipt_no)]
    s = accounts.settle_and_close(ADMIN, acct, "refund")
    assert s.balance_cents == 6234 and ledger.balance(acct) == 0
    assert ledger.trial_balance()["cash"] == 5000 - 6234
    with pytest.raises(UserFacingError):
        recharge(operator("cashier", "alice"), acct, 100, "cash")


@pytest.mark.parametrize("amount", [0, -1, 10_000_00])
def test_recharge_refuses_bad_amounts(db, amount):
    room, _ = _room()
    acct = accounts.open_account(ADMIN, room).account.id
    with pytest.raises(UserFacingError):
        recharge(operator("cashier", "alice"), acct, amount, "cash")
    assert ledger.balance(acct) == 0


def test_ledger_is_append_only(db):
    room, _ = _room()
    acct = accounts.open_account(ADMIN, room).account.id
    recharge(operator("cashier", "alice"), acct, 100, "cash")
    with pytest.raises(Exception, match="append-only"):
        LedgerEntry.update(amount_cents=1).execute()
    with pytest.raises(Exception, match="append-only"):
        LedgerTxn.delete().execute()
    with pytest.raises(ValueError, match="unbalanced"):
        ledger.post("correction", [("cash", None, 5), ("prepaid", acct, -4)], operator="x")


def test_station_mode_trips_at_zero(db):
    room, (meter,) = _room()
    _tariff()
    acct = accounts.open_account(ADMIN, room, mode="station", t=MONTH0).account.id
    readings.write_batch([PollOutcome(meter, MONTH0, True,
                                      values=MeterValues(MONTH0, control_mode="auto"))])
    _use(meter, MONTH0, 1000)
    billing.bill(now=MONTH0 + INTERVAL_S)
    # opened without money: tripped at once (billing in debt adds nothing)
    assert [i.action for i in store.pending_outbox([meter])] == ["trip"]
    assert [h.reason for h in relay_holds_of(meter)] == ["arrears"]
    readings.write_batch([PollOutcome(meter, MONTH0 + 2, True, values=MeterValues(
        MONTH0 + 2, control_mode="forced_trip"))])
    store.set_outbox_state(store.pending_outbox([meter])[0].id, "applied")
    recharge(operator("cashier", "alice"), acct, 1000, "cash")
    assert [i.action for i in store.pending_outbox([meter])] == ["close"]


def test_reconciliation_alarm(db):
    room, (meter,) = _room()
    _tariff()
    acct = accounts.open_account(ADMIN, room, mode="meter", opening_cents=5000).account.id
    now = time.time()
    readings.write_batch([PollOutcome(meter, now, True,
                                      values=MeterValues(now, remaining_money_cents=5000))])
    assert billing.reconcile(acct, now=now) == 0
    readings.write_batch([PollOutcome(meter, now, True,
                                      values=MeterValues(now, remaining_money_cents=9000))])
    assert billing.reconcile(acct, now=now) == 1
    assert Alarm.get(Alarm.kind == "reconciliation").account_id == acct
    assert billing.reconcile(acct, now=now) == 0  # one open alarm, not one per run


@pytest.fixture
def meter_account(db):
    """A room whose meter keeps the money, opened with 50.00: (account id, meter id)."""
    room, (meter,) = _room()
    _tariff()
    return accounts.open_account(ADMIN, room, mode="meter", opening_cents=5000).account.id, meter


def _meter_reads(meter, t, money, count):
    readings.write_batch([PollOutcome(meter, t, True, values=MeterValues(
        t, remaining_money_cents=money, purchase_count=count))])


def test_reconciliation_waits_for_a_reading_after_the_last_applied_token(meter_account):
    acct, meter = meter_account
    t0 = time.time()
    _meter_reads(meter, t0, 5000, 3)
    for k in range(8):  # eight recharges reach the meter, each confirmed by its count
        recharge(operator("cashier", "alice"), acct, 10_00, "cash")
        item = store.pending_outbox([meter])[0]
        store.set_purchase_count(item.id, 4 + k)
        store.set_outbox_state(item.id, "applied")
    # the stored reading is the one from before the tokens: no tampering to see in it
    assert billing.reconcile(acct, now=t0 + 1) == 0
    assert not Alarm.select().where(Alarm.kind == "reconciliation").exists()
    # a reading taken after them agrees with the ledger
    t1 = time.time() + 1
    _meter_reads(meter, t1, 5000 + 80_00, 11)
    assert billing.reconcile(acct, now=t1) == 0
    # and one that does not is alarmed
    _meter_reads(meter, t1 + 1, 5000 + 80_00 + 30_00, 11)
    assert billing.reconcile(acct, now=t1 + 1) == 1


def test_a_new_larger_difference_is_alarmed_while_an_older_one_is_open(meter_account):
    acct, meter = meter_account
    now = time.time()
    _meter_reads(meter, now, 9000, 1)
    assert billing.reconcile(acct, now=now) == 1
    _meter_reads(meter, now + 1, 9100, 1)  # the same difference, give or take
    assert billing.reconcile(acct, now=now + 1) == 0
    _meter_reads(meter, now + 2, 60_000, 1)  # the meter's money keeps growing: news
    assert billing.reconcile(acct, now=now + 2) == 1
    diffs = sorted(billing.open_reconciliation_diffs(meter, acct))
    assert diffs == [4000, 55_000]


OPS = st.lists(st.one_of(
    st.tuples(st.just("recharge"), st.integers(1, 2_000_00), st.sampled_from(
        ["cash", "wechat", "alipay", "campus_card", "bank"])),
    st.tuples(st.just("use"), st.integers(0, 5_000), st.integers(0, 3)),
    st.tuples(st.just("bill"), st.integers(1, 4), st.just(0)),
    st.tuples(st.just("refund"), st.integers(0, 1), st.just(0)),
), max_size=25)


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow,
                                                                   HealthCheck.function_scoped_fixture])
@given(OPS)
def test_no_sequence_of_operations_unbalances_the_ledger(tmp_path_factory, ops):
    path = tmp_path_factory.mktemp("prop") / "p.db"
    d = open_database(path)
    try:
        room, (meter,) = _room()
        _tariff(price="0.5887", tiers=(("20", "0.5887"), (None, "0.8123")), allowance="3")
        acct = accounts.open_account(ADMIN, room, mode="station", t=MONTH0).account.id
        clock = MONTH0
        paid = 0
        refunded = 0
        for op, a, b in ops:
            if op == "recharge":
                recharge(operator("cashier", "prop"), acct, a, b)
                paid += a
            elif op == "use":
                clock += INTERVAL_S * (b + 1)
                _use(meter, clock - INTERVAL_S, a)
            elif op == "bill":
                billing.bill(now=clock + INTERVAL_S * a)
            elif op == "refund" and a:
                bal = ledger.balance(acct)
                if bal:
                    ledger.post("refund", [("prepaid", acct, bal), ("cash", None, -bal)],
                                operator="prop", account_id=acct)
                    refunded += bal
        assert ledger.unbalanced_txns() == []
        tb = ledger.trial_balance()
        assert sum(tb.values()) == 0
        # every cent paid in is either still held, refunded, or earned as revenue
        revenue_from_customer = tb.get("revenue:electricity", 0) + tb.get("expense:allowance", 0)
        assert paid == ledger.balance(acct) + refunded - revenue_from_customer
        assert database.obj is d
    finally:
        d.close()


def relay_holds_of(meter: int):
    from app.storage import holds
    return holds.holds([meter])


def test_close_account_bills_the_running_interval_trips_and_refunds(db):
    room, (meter,) = _room()
    _tariff(price="0.50")
    acct = accounts.open_account(ADMIN, room, mode="station", t=MONTH0).account.id
    recharge(operator("cashier", "alice"), acct, 50_00, "cash", t=MONTH0)
    now = MONTH0 + 3 * INTERVAL_S + 100  # 100 s into the fourth interval
    readings.write_batch([PollOutcome(meter, now, True, values=MeterValues(
        now, remaining_money_cents=0, control_mode="auto"))])
    _use(meter, MONTH0, 2000)  # closed interval: 2 kWh
    _use(meter, MONTH0 + 3 * INTERVAL_S, 1000)  # the running interval: 1 kWh
    s = accounts.close_account(ADMIN, acct, "refund", t=now)
    # 50.00 - (2 + 1) kWh x 0.50 = 48.50 refunded in cash; the account is closed and empty
    assert s.balance_cents == 48_50 and ledger.balance(acct) == 0
    assert store.get_account(acct).closed_at == now
    # opened without money: tripped; recharged: closed (after that trip, never withdrawn);
    # closed: tripped again, and held so until the room's next account opens
    assert [i.action for i in store.pending_outbox([meter])] == ["trip", "close", "trip"]
    assert [(h.reason, h.source) for h in relay_holds_of(meter)] == [("operator",
                                                                       "account closed")]
    assert ledger.trial_balance()["cash"] == 50_00 - 48_50


def test_close_needs_a_fresh_reading(db):
    room, _meters = _room()
    acct = accounts.open_account(ADMIN, room, mode="station").account.id
    with pytest.raises(UserFacingError, match="fresh reading"):
        accounts.close_account(ADMIN, acct)
    assert store.get_account(acct).is_open


def test_a_correction_reverses_once(db):
    room, _ = _room()
    acct = accounts.open_account(ADMIN, room, mode="station").account.id
    r = recharge(operator("cashier", "alice"), acct, 30_00, "cash")
    fix = accounts.correct(ADMIN, r.txn_id, "typed 30 for 3")
    assert ledger.balance(acct) == 0
    assert ledger.txns(acct)[0].kind == "correction" and ledger.txns(acct)[0].id == fix.txn_id
    with pytest.raises(UserFacingError, match="already corrected"):
        accounts.correct(ADMIN, r.txn_id, "again")
    with pytest.raises(UserFacingError, match="reason"):
        accounts.correct(ADMIN, r.txn_id, " ")


def test_low_balance_levels_fire_once_per_crossing_and_rearm_after_a_recharge(db):
    from app.core import low_balance
    from app.core.alarms import alarm_list

    room, _meters = _room()
    _tariff()
    acct = accounts.open_account(ADMIN, room, mode="station", opening_cents=25_00).account.id

    def spend(cents):
        ledger.post("consumption", [("prepaid", acct, cents), ("revenue:electricity", None,
                                                                 -cents)],
                    operator="billing", account_id=acct)

    def levels(open_only=True):
        return sorted(int(a.level) for a in alarm_list(ADMIN, kind="low_balance",
                                                       open_only=open_only))

    assert low_balance.check() == 0 and levels() == []
    spend(10_00)  # 15.00 left: below 20
    assert low_balance.check() == 1 and levels() == [1]
    assert low_balance.check() == 0  # once per crossing, however many runs see it
    spend(12_00)  # 3.00: below 5
    assert low_balance.check() == 1 and levels() == [1, 2]
    spend(3_50)  # -0.50: arrears
    assert low_balance.check() == 1 and levels() == [1, 2, 3]
    recharge(operator("cashier", "alice"), acct, 50_00, "cash")  # back above 20: re-armed
    assert low_balance.check() == 0 and levels() == []
    spend(40_00)  # 9.50: level 1 again, a new alarm
    assert low_balance.check() == 1 and levels() == [1]
    assert len(levels(open_only=False)) == 4
    assert "1-101" in alarm_list(ADMIN, kind="low_balance")[0].text


def test_a_day_is_booked_once_it_is_over_one_booking_a_day(db):
    """Billing runs every quarter hour; the ledger gets one consumption booking a room a day,
    dated the day's last instant, and the balance counts the day's use before it is booked."""
    room, (meter,) = _room()
    _tariff(price="0.588")
    acct = accounts.open_account(ADMIN, room, mode="station", t=MONTH0).account.id
    recharge(operator("cashier", "alice"), acct, 200_00, "cash", t=MONTH0)
    for k in range(3 * 96 + 40):  # three days and ten hours of 37 Wh intervals
        _use(meter, MONTH0 + k * INTERVAL_S, 37)
        billing.bill(now=MONTH0 + (k + 1) * INTERVAL_S)
    days = sorted(t.t for t in ledger.txns(acct) if t.kind == "consumption")
    assert days == [MONTH0 + d * 86400 - 0.001 for d in (1, 2, 3)]
    # each day 96 x 37 Wh = 3.552 kWh x 0.588: the running total rounded once
    assert ledger.balance(acct) == 200_00 - to_cents(Decimal("10.656") * Decimal("0.588"))
    today = to_cents(Decimal("12.136") * Decimal("0.588")) - to_cents(
        Decimal("10.656") * Decimal("0.588"))
    assert balances.balance(acct) == ledger.balance(acct) - today
    assert balances.balances()[acct] == balances.balance(acct)
    assert balances.balances([acct]) == {acct: balances.balance(acct)}


def test_a_day_booked_late_is_dated_when_it_is_booked(db):
    """The station was down over midnight: the day is booked when billing runs again, dated
    then (a report made meanwhile stays true); the month's sum is still exact."""
    room, (meter,) = _room()
    _tariff(price="0.50")
    acct = accounts.open_account(ADMIN, room, mode="station", t=MONTH0).account.id
    _use(meter, MONTH0 + 12 * 3600, 1000)
    billing.bill(now=MONTH0 + 13 * 3600)
    assert ledger.balance(acct) == 0 and balances.balance(acct) == -50
    late = MONTH0 + 86400 + 2 * 3600
    billing.bill(now=late)
    assert [(t.t, t.amount_cents) for t in ledger.txns(acct) if t.kind == "consumption"] == [
        (late, -50)]


def test_arrears_trip_counts_the_days_use_not_booked_yet(db):
    room, (meter,) = _room()
    _tariff(price="0.50")
    acct = accounts.open_account(ADMIN, room, mode="station", t=MONTH0).account.id
    recharge(operator("cashier", "alice"), acct, 1_00, "cash", t=MONTH0)
    readings.write_batch([PollOutcome(meter, MONTH0, True,
                                      values=MeterValues(MONTH0, control_mode="auto"))])
    _use(meter, MONTH0 + 8 * 3600, 3000)  # 1.50 of use this morning
    billing.bill(now=MONTH0 + 9 * 3600)
    assert ledger.balance(acct) == 1_00 and balances.balance(acct) == -50
    assert [h.reason for h in relay_holds_of(meter)] == ["arrears"]
    with pytest.raises(UserFacingError, match="at most the balance"):
        accounts.refund(ADMIN, acct, 1_00, "cash", "the use is owed")


def test_schema_9_settles_the_months_billed_before(tmp_path):
    import sqlite3

    path = tmp_path / "v8.db"
    open_database(path).close()
    con = sqlite3.connect(path)
    for column in ("open_day", "open_cost", "open_allowance", "settled"):
        if column == "settled":
            con.execute("DROP INDEX billing_month_settled")
        con.execute(f"ALTER TABLE billing_month DROP COLUMN {column}")
    con.execute("INSERT INTO node (id, parent_id, kind, name, code, sort_key) "
                "VALUES (1, NULL, 'room', 'r', 'r', 0)")
    con.execute("INSERT INTO account (id, number, node_id, tariff_group, mode, opened_at, "
                "opened_by, adopt_meter_balance) VALUES (1, 'A1', 1, 'dorm', 'station', 0, "
                "'t', 0)")
    this_month = time.strftime("%Y-%m")
    for month in ("2020-01", this_month):
        con.execute("INSERT INTO billing_month (account_id, month, energy_wh, exact_cost, "
                    "booked_cents, exact_allowance, booked_allowance_cents) "
                    "VALUES (1, ?, 1000, '0.5', 50, '0', 0)", (month,))
    con.execute("UPDATE meta SET value = '8' WHERE key = 'schema_version'")
    con.commit()
    con.close()
    d = open_database(path)
    try:
        from app.storage.models import BillingMonth

        assert {(m.month, m.settled) for m in BillingMonth.select()} == {
            ("2020-01", True), (this_month, False)}
        assert balances.unbooked() == {}  # the old billing booked every run
    finally:
        d.close()
