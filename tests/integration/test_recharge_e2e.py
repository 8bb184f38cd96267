"""End to end on the simulator: a recharge reaches the meter exactly once, even across a retry
and a meter that was silent when the money was booked."""

from __future__ import annotations

import time

import pytest

from app.core import billing
from app.core.recharge import delivery_state, recharge
from app.core.service import ReadingService
from app.drivers.token import save_master_key
from app.paths import default_key_file
from app.simulator import start_simulator
from app.storage import accounts as store
from app.storage import ledger
from app.storage.models import Account, Bus, Meter, Outbox
from tests.helpers import operator

from .conftest import point_buses_at, wait_for


@pytest.fixture
def frozen_campus(tmp_path):
    """1 bus x 3 meters, meter time frozen (money moves only by tokens)."""
    from app.simulator.demo_campus import create_demo_campus
    from app.storage.db import open_database

    with start_simulator(buses=1, meters=3, transport="tcp", seed=3, speed=0.0,
                         random_heaters=False) as sim:
        save_master_key(default_key_file(), sim.master_key)
        db_path = tmp_path / "station.db"
        create_demo_campus(db_path, buses=1, meters=3, seed=3)
        point_buses_at(sim.endpoints)
        service = ReadingService(role="test", flush_s=0.05, billing_every_s=0.5)
        assert service.start()[0]
        try:
            assert wait_for(lambda: billing.bill().adopted >= 0 and
                            not store.accounts_to_adopt(), timeout=20)
            yield sim, service
        finally:
            service.stop()
            open_database(db_path).close()


def _account_of(unit: int) -> tuple[int, int]:
    meter = Meter.get((Meter.address == unit) & (Meter.bus == Bus.get().id))
    return Account.get(Account.node == meter.node_id).id, meter.id


def test_recharge_arrives_exactly_once(frozen_campus):
    sim, _service = frozen_campus
    acct, _mid = _account_of(1)
    before = sim.meter(1, 1).snapshot()
    balance_before = ledger.balance(acct)
    assert balance_before == before.remaining_money_cents  # adopted from the meter
    result = recharge(operator("cashier", "alice"), acct, 12_34, "cash")
    assert wait_for(lambda: delivery_state(result) == "applied")
    after = sim.meter(1, 1).snapshot()
    assert after.remaining_money_cents == before.remaining_money_cents + 12_34
    assert after.purchase_count == before.purchase_count + 1
    # a retry of the same command (a lost reply, a restarted process): nothing changes
    Outbox.update(state="pending").where(Outbox.id == result.outbox_id).execute()
    assert wait_for(lambda: delivery_state(result) == "applied")
    again = sim.meter(1, 1).snapshot()
    assert again.remaining_money_cents == after.remaining_money_cents
    assert again.purchase_count == after.purchase_count
    assert ledger.balance(acct) == balance_before + 12_34


def test_recharge_to_a_silent_meter_applies_once_when_it_returns(frozen_campus):
    sim, service = frozen_campus
    acct, mid = _account_of(2)
    before = sim.meter(1, 2).snapshot()
    sim.set_faults("1.2:offline")
    poller = next(iter(service.pollers.values()))
    slot = next(s for s in poller.slots if s.meter.id == mid)
    assert wait_for(lambda: not slot.online)
    first = recharge(operator("cashier", "bob"), acct, 5_00, "wechat")
    second = recharge(operator("cashier", "bob"), acct, 7_00, "alipay")
    assert wait_for(lambda: poller.cycles > 2)
    assert delivery_state(first) == "pending" and delivery_state(second) == "pending"
    sim.set_faults("")
    slot.next_probe_at = 0.0
    assert wait_for(lambda: delivery_state(second) == "applied", timeout=30)
    after = sim.meter(1, 2).snapshot()
    assert after.remaining_money_cents == before.remaining_money_cents + 12_00
    assert after.purchase_count == before.purchase_count + 2


def test_foreign_key_token_is_refused_and_alarmed(frozen_campus, tmp_path):
    sim, service = frozen_campus
    acct, mid = _account_of(3)
    before = sim.meter(1, 3).snapshot()
    from app.drivers.token import MasterKey

    service.outbox.master_key = MasterKey.generate()  # a station with the wrong key
    result = recharge(operator("cashier", "eve"), acct, 1_00, "cash")
    assert wait_for(lambda: delivery_state(result) == "failed")
    assert sim.meter(1, 3).snapshot().remaining_money_cents == before.remaining_money_cents
    from app.storage.models import Alarm

    assert Alarm.select().where((Alarm.kind == "token_refused") & (Alarm.meter == mid)).exists()


def _raw_insert(db_path, sql: str, params: tuple) -> int:
    """Write to the database file as any program could, past VoltKeeper's operations."""
    import sqlite3

    conn = sqlite3.connect(str(db_path), timeout=30)
    try:
        with conn:
            return conn.execute(sql, params).lastrowid
    finally:
        conn.close()


def test_a_command_written_outside_voltkeeper_is_refused_and_never_sent(frozen_campus):
    sim, _service = frozen_campus
    from app.storage.db import database_path
    from app.storage.models import Alarm

    db_path = database_path()
    acct, mid = _account_of(1)
    before = sim.meter(1, 1).snapshot()
    now = time.time()
    # a token of 5,000.00 with no booking behind it, inserted into the file
    forged = _raw_insert(db_path, "INSERT INTO outbox (meter_id, action, amount_cents, state, "
                         "attempts, last_error, created_at, updated_at, mac) VALUES "
                         "(?, 'recharge', 500000, 'pending', 0, '', ?, ?, '')", (mid, now, now))
    assert wait_for(lambda: store.outbox_item(forged).state == "failed", timeout=20)
    # a genuine recharge's row copied with a larger amount: its MAC no longer fits
    genuine = recharge(operator("cashier", "alice"), acct, 1_00, "cash")
    assert wait_for(lambda: delivery_state(genuine) == "applied")
    item = store.outbox_item(genuine.outbox_id)
    copied = _raw_insert(db_path, "INSERT INTO outbox (meter_id, action, amount_cents, txn_id, "
                         "state, attempts, last_error, created_at, updated_at, mac) VALUES "
                         "(?, 'recharge', 900000, ?, 'pending', 0, '', ?, ?, ?)",
                         (mid, item.txn_id, now, now, item.mac))
    # a trip nobody ordered
    trip = _raw_insert(db_path, "INSERT INTO outbox (meter_id, action, amount_cents, state, "
                       "attempts, last_error, created_at, updated_at, mac) VALUES "
                       "(?, 'trip', 0, 'pending', 0, '', ?, ?, 'f00d')", (mid, now, now))
    assert wait_for(lambda: store.outbox_item(copied).state == "failed"
                    and store.outbox_item(trip).state == "failed", timeout=20)
    time.sleep(1.0)
    after = sim.meter(1, 1).snapshot()
    assert after.remaining_money_cents == before.remaining_money_cents + 1_00
    assert after.purchase_count == before.purchase_count + 1
    assert after.relay_closed
    refused = Alarm.select().where((Alarm.kind == "forged_command") & (Alarm.meter == mid))
    assert refused.count() == 3 and all(a.level == 3 for a in refused)
    assert "not sent" in store.outbox_item(forged).last_error
