"""Automatic control on a real SQLite file: a power-limit breach trips, restores after the delay,
and after N restores within the hour stays off until an operator acts; keep-power blocks every
automatic trip; a room tripped for two reasons closes only when both are over; an operator's
trip is never undone by a recharge; the station's detector trips on a heater but not on a
room's allowed kettle. Readings go through the storage writer as the reading service's do; the
meters' answers to the commands are written as the sender records them."""

from __future__ import annotations

import time

import pytest

from app.core import accounts, commands, power_limits, relay_holds, settings
from app.core.alarms import alarm_list
from app.core.billing import enforce_station_balance
from app.core.writer import StorageWriter
from app.drivers.meter_values import MeterValues
from app.storage import campus, ledger
from app.storage.db import open_database
from app.storage.models import ControlLog, LatestReading, Outbox, RelayHold, SmsMessage
from app.storage.readings import PollOutcome
from tests.helpers import operator

ADMIN = operator()
T0 = float(int(time.time()))  # readings are acted on while fresh (core/writer.py)


@pytest.fixture
def room(tmp_path):
    global T0  # the readings are this test's own, fresh: the writer acts on fresh ones only
    T0 = float(int(time.time()))
    db = open_database(tmp_path / "a.db")
    root = campus.add_node(None, "campus", "c")
    bus = campus.add_bus("B01", "tcp://127.0.0.1:1")
    node = campus.add_node(root, "room", "3-204", "3-204")
    meter = campus.add_meter(bus, 1, "acrel-ddsy1352", "31000000001", node)
    settings.change(ADMIN, settings.RESTORE_DELAY_S, 60)
    settings.change(ADMIN, settings.MAX_RESTORES, 2)
    yield node, meter
    db.close()


def _read(writer: StorageWriter, meter: int, t: float, watts: float, *, pf: float = 1.0,
          mode: str = "auto", closed: bool = True) -> None:
    writer.put([PollOutcome(meter_id=meter, t=t, ok=True, values=MeterValues(
        read_at=t, voltage_v=230.0, active_power_w=watts, power_factor=pf,
        relay_closed=closed, control_mode=mode))])
    writer.flush()


def _relay_commands(meter: int) -> list[tuple[str, str]]:
    return [(o.action, o.state) for o in Outbox.select().where(
        (Outbox.meter == meter) & Outbox.action.in_(("trip", "close"))).order_by(Outbox.id)]


def _meter_obeys(meter: int, t: float) -> str:
    """The sender delivers what is pending and the meter is read back: its mode now."""
    mode = None
    for o in Outbox.select().where((Outbox.meter == meter) & (Outbox.state == "pending")
                                   ).order_by(Outbox.id):
        Outbox.update(state="applied", updated_at=t).where(Outbox.id == o.id).execute()
        mode = {"trip": "forced_trip", "close": "auto"}.get(o.action, mode)
    if mode is not None:
        LatestReading.update(control_mode=mode, relay_closed=mode != "forced_trip",
                             read_at=t + 1).where(LatestReading.meter == meter).execute()
    return LatestReading.get(LatestReading.meter == meter).control_mode


def test_over_the_limit_trips_restores_and_stays_off_after_n_restores(room):
    node, meter = room
    power_limits.set_power_limit(ADMIN, [node], 1000)
    writer = StorageWriter()
    t = T0
    for restore in range(2):  # two restores allowed within the hour
        _read(writer, meter, t, 900.0)
        assert not RelayHold.select().exists()  # under the limit: nothing
        _read(writer, meter, t + 5, 1500.0)
        hold = RelayHold.get(RelayHold.meter == meter)
        assert hold.reason == "power_limit" and hold.restore_at == t + 5 + 60
        assert _meter_obeys(meter, t + 6) == "forced_trip"
        assert relay_holds.restore_due(t + 30) == []  # not yet
        assert relay_holds.restore_due(t + 65) == [meter]
        assert _meter_obeys(meter, t + 66) == "auto", restore
        t += 120
    _read(writer, meter, t, 900.0)
    _read(writer, meter, t + 5, 1500.0)  # a third breach within the hour
    hold = RelayHold.get(RelayHold.meter == meter)
    assert hold.restore_at is None  # stays off until an operator acts
    assert _meter_obeys(meter, t + 6) == "forced_trip"
    assert relay_holds.restore_due(t + 10 * 3600) == []
    assert relay_holds.sync(t + 10 * 3600) == 0  # tripped, nothing to do
    texts = [a.text for a in alarm_list(ADMIN, kind="power_limit")]
    assert len(texts) == 3 and all("1500 W" in x and "1000" in x for x in texts)
    assert ControlLog.select().where(ControlLog.action == "close").count() == 2
    relay_holds.operator_closes([meter], ADMIN.name)  # what control(close) does first
    assert not RelayHold.select().exists()


def test_keep_power_blocks_every_automatic_trip(room):
    node, meter = room
    power_limits.set_power_limit(ADMIN, [node], 1000)
    writer = StorageWriter()
    _read(writer, meter, T0, 100.0, mode="keep_power")
    acct = accounts.open_account(ADMIN, node, mode="station").account.id
    _read(writer, meter, T0 + 5, 3000.0, mode="keep_power")  # over the limit and a heater
    assert not RelayHold.select().where(RelayHold.reason.in_(
        ("power_limit", "malicious_load"))).exists()
    assert [a.kind for a in alarm_list(ADMIN)] == ["malicious_load"]  # told, not tripped
    ledger.post("consumption", [("revenue:electricity", None, -500),
                                ("prepaid", acct, 500)], operator="billing")
    enforce_station_balance(acct)  # in arrears: held, but not tripped on keep-power
    relay_holds.hold([meter], "schedule", source="lights-out")
    relay_holds.hold([meter], "plan", source="shortage")
    assert relay_holds.sync(T0 + 10) == 0
    assert _relay_commands(meter) == []
    # keep-power switched off: the holds that still stand take effect
    LatestReading.update(control_mode="auto").where(LatestReading.meter == meter).execute()
    assert relay_holds.sync(T0 + 20) == 1
    assert relay_holds.sync(T0 + 21) == 0  # the trip is on its way: not twice
    assert _relay_commands(meter) == [("trip", "pending")]


def test_a_room_held_for_two_reasons_closes_when_both_are_over(room):
    node, meter = room
    acct = accounts.open_account(ADMIN, node, mode="station").account.id
    writer = StorageWriter()
    _read(writer, meter, T0, 100.0)
    ledger.post("consumption", [("revenue:electricity", None, -500),
                                ("prepaid", acct, 500)], operator="billing")
    enforce_station_balance(acct)
    relay_holds.hold([meter], "schedule", source="lights-out")
    assert _meter_obeys(meter, T0 + 1) == "forced_trip"
    assert _relay_commands(meter) == [("trip", "applied")]  # one trip for both
    accounts_recharge(acct, 1000)
    enforce_station_balance(acct)  # money back: still lights-out
    assert _relay_commands(meter) == [("trip", "applied")]
    assert relay_holds.release(None, "schedule", source="lights-out") == [meter]
    assert _relay_commands(meter) == [("trip", "applied"), ("close", "pending")]


def test_a_recharge_never_closes_a_room_an_operator_tripped(room):
    node, meter = room
    acct = accounts.open_account(ADMIN, node, mode="station").account.id
    writer = StorageWriter()
    _read(writer, meter, T0, 100.0)
    relay_holds.hold([meter], "operator", source="warden", trip=True)
    assert _meter_obeys(meter, T0 + 1) == "forced_trip"
    accounts_recharge(acct, 1000)
    enforce_station_balance(acct)
    assert _relay_commands(meter) == [("trip", "applied")]
    relay_holds.operator_closes([meter], "warden")
    assert not RelayHold.select().exists()


def test_an_operator_close_overrides_tonights_lights_out_only(room):
    _node, meter = room
    writer = StorageWriter()
    _read(writer, meter, T0, 100.0)
    relay_holds.hold([meter], "schedule", source="lights-out")
    assert _meter_obeys(meter, T0 + 1) == "forced_trip"
    relay_holds.operator_closes([meter], "warden")
    LatestReading.update(control_mode="auto").where(LatestReading.meter == meter).execute()
    assert relay_holds.sync(T0 + 100) == 0  # overridden: not tripped again tonight
    assert RelayHold.get().overridden_by == "warden"
    relay_holds.release(None, "schedule", source="lights-out")  # the night is over
    assert not RelayHold.select().exists()


def test_the_station_trips_a_heater_but_not_the_rooms_allowed_kettle(room):
    node, meter = room
    power_limits.add_appliance(ADMIN, node, "kettle", 1200, room="3-204")
    writer = StorageWriter()
    writer._rules.expire()
    _read(writer, meter, T0, 100.0)
    _read(writer, meter, T0 + 5, 1300.0)  # the kettle (1,200 W, pf 1.0)
    _read(writer, meter, T0 + 10, 100.0)
    _read(writer, meter, T0 + 15, 1000.0, pf=0.7)  # 900 W motor
    assert not RelayHold.select().exists() and alarm_list(ADMIN) == []
    _read(writer, meter, T0 + 20, 100.0)
    _read(writer, meter, T0 + 25, 1600.0)  # 1,500 W resistive step: a heater
    hold = RelayHold.get()
    assert hold.reason == "malicious_load" and hold.restore_at == T0 + 25 + 60
    assert [a.kind for a in alarm_list(ADMIN)] == ["malicious_load"]
    assert _relay_commands(meter) == [("trip", "pending")]


def accounts_recharge(account_id: int, cents: int) -> None:
    ledger.post("recharge", [(ledger.METHOD_BOOKS["cash"], None, cents),
                             ("prepaid", account_id, -cents)], operator="desk")


def test_the_occupants_are_texted_once_a_room_reason_and_hour(room):
    node, meter = room
    campus.add_occupant(node, "张三", "2024001", "13800138000")
    accounts.open_account(ADMIN, node)
    power_limits.set_power_limit(ADMIN, [node], 1000)
    writer = StorageWriter()
    _read(writer, meter, T0, 900.0)
    _read(writer, meter, T0 + 5, 1500.0)
    _meter_obeys(meter, T0 + 6)
    relay_holds.restore_due(T0 + 70)
    _meter_obeys(meter, T0 + 71)
    _read(writer, meter, T0 + 80, 900.0)
    _read(writer, meter, T0 + 85, 1500.0)  # tripped again within the hour: no second text
    relay_holds.hold([meter], "schedule", source="lights-out")  # routine: not texted
    texts = list(SmsMessage.select())
    assert [(m.phone, m.event.split(":")[1]) for m in texts] == [("13800138000", "power_limit")]
    assert "3-204" in texts[0].text


# -- what a review found (each scenario failed before its fix) -----------------------------------
def test_an_operators_trip_is_held_before_it_is_sent_so_billing_cannot_close_it(room):
    node, meter = room
    acct = accounts.open_account(ADMIN, node, mode="station", opening_cents=5000).account.id
    writer = StorageWriter()
    _read(writer, meter, T0, 100.0)
    # what control() writes with the trip it queues, before following it for up to a minute
    relay_holds.hold([meter], "operator", source="warden", detail="fire alarm", trip=False)
    commands.queue(meter, "trip")
    assert _meter_obeys(meter, T0 + 1) == "forced_trip"
    enforce_station_balance(acct)  # billing, with money on the account
    assert _relay_commands(meter) == [("trip", "applied")]


def test_a_keep_power_command_not_yet_read_blocks_automatic_trips(room):
    node, meter = room
    writer = StorageWriter()
    _read(writer, meter, T0, 100.0)
    acct = accounts.open_account(ADMIN, node, mode="station", opening_cents=5000).account.id
    commands.queue(meter, "keep_power_on")  # the warden: medical equipment in the room
    ledger.post("consumption", [("revenue:electricity", None, -6000),
                                ("prepaid", acct, 6000)], operator="billing")
    enforce_station_balance(acct)
    relay_holds.hold([meter], "schedule", source="lights-out")
    assert relay_holds.sync(T0 + 10) == 0
    assert _relay_commands(meter) == []  # nothing queued behind keep-power


def test_a_vacant_room_stays_off_after_lights_out_and_is_let_on_by_its_next_account(room):
    node, meter = room
    writer = StorageWriter()
    _read(writer, meter, T0, 100.0)
    acct = accounts.open_account(ADMIN, node, mode="station", opening_cents=5000).account.id
    accounts.close_account(ADMIN, acct, t=T0 + 2)
    assert _meter_obeys(meter, T0 + 3) == "forced_trip"
    relay_holds.hold([meter], "schedule", source="lights-out")
    relay_holds.release(None, "schedule", source="lights-out")  # morning
    assert _relay_commands(meter) == [("trip", "applied")]  # still off: nobody lives there
    accounts.open_account(ADMIN, node, mode="meter")  # the next student
    assert _relay_commands(meter) == [("trip", "applied"), ("close", "pending")]
    assert not RelayHold.select().exists()


def test_a_second_limiting_plan_on_the_same_rooms_is_refused(room):
    node, _meter = room
    from app.core import limit_plans
    from app.errors import UserFacingError
    accounts.open_account(ADMIN, node, tariff_group="shop")
    limit_plans.save_plan(ADMIN, "shops", "limit", group="shop", limit_w=2000)
    limit_plans.save_plan(ADMIN, "street", "limit", group="shop", limit_w=1000)
    limit_plans.apply_plan(ADMIN, "shops")
    with pytest.raises(UserFacingError, match="undo it before"):
        limit_plans.apply_plan(ADMIN, "street")


def test_a_heater_still_on_when_power_returns_is_tripped_again(room):
    _node, meter = room
    writer = StorageWriter()
    _read(writer, meter, T0, 100.0)
    _read(writer, meter, T0 + 5, 2100.0)  # the heater
    _read(writer, meter, T0 + 10, 2100.0)  # read once more before the trip landed
    assert _meter_obeys(meter, T0 + 11) == "forced_trip"
    _read(writer, meter, T0 + 15, 0.0, mode="forced_trip", closed=False)
    relay_holds.restore_due(T0 + 5 + 61)
    assert _meter_obeys(meter, T0 + 67) == "auto"
    _read(writer, meter, T0 + 70, 2100.0)  # power back, the heater still on
    assert [(h.reason, h.restore_at is not None) for h in RelayHold.select()] == [
        ("malicious_load", True)]
    assert _relay_commands(meter)[-1] == ("trip", "pending")
