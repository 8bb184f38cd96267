"""``--state``: a meter's memory survives a restart as a real meter's survives a power cut; the
file is written whole, refused when it is another campus's or damaged, and kept by one
simulator at a time."""

from __future__ import annotations

import json
from decimal import Decimal
from pathlib import Path

import pytest

from app.drivers.profile import load_profile
from app.drivers.registers import encode_point
from app.drivers.token import MasterKey, TokenStatus, make_token
from app.simulator.campus import SimCampus
from app.simulator.clock import SimClock, parse_start
from app.simulator.meter import TripReason
from app.simulator.state import (
    StateFileError,
    StateKeeper,
    _decode_value,
    _encode_value,
    capture,
    read_state,
    restore,
    write_state,
)

ACREL = load_profile("acrel-ddsy1352")
EVENING = parse_start("2026-03-02T20:00:00")
MASTER = MasterKey.generate()


def campus(start: float = EVENING, speed: float = 0.0, buses: int = 2, meters: int = 3,
           seed: int = 1) -> SimCampus:
    return SimCampus(buses, meters, ACREL, seed=seed, master_key=MASTER,
                     clock=SimClock(start, speed), random_heaters=False)


def write(meter, name: str, value) -> None:
    point = ACREL.points[name]
    if point.states:
        regs = list(point.state_registers(value))
    else:
        regs = encode_point(point, value)
    meter.write_registers(point.address, regs)


def lived(c: SimCampus) -> SimCampus:
    """A campus after an evening: a recharge, a remote trip, a lock-out, settings written."""
    c.clock.advance(3600)
    m = c.meter(1, 1)
    m.sync()
    write(m, "token", make_token(MASTER, m.serial, 1234, m.purchase_count + 1))
    write(c.meter(1, 2), "control_mode", "forced_trip")
    tripped = c.meter(2, 3)
    write(tripped, "power_limit", 1)  # any load is a breach
    write(tripped, "restore_count", 1)  # the first breach locks it out
    write(c.meter(2, 1), "price", Decimal("0.6180"))
    c.clock.advance(600)
    for bus in c.bus_numbers:
        for meter in c.meters_on(bus).values():
            meter.sync()
    assert tripped.trip_reason == TripReason.LOCKED_OUT
    return c


def test_a_restart_keeps_what_a_real_meter_keeps(tmp_path: Path) -> None:
    before = lived(campus())
    path = tmp_path / "sim.json"
    write_state(path, capture(before, sync=True))
    # the simulator is started again a day later (the clock's own start: now)
    after = campus(start=EVENING + 86_400)
    restore(after, read_state(path), path)
    for bus in before.bus_numbers:
        for unit, old in before.meters_on(bus).items():
            new = after.meter(bus, unit)
            assert new.memory() == old.memory(), (bus, unit)
            s_old, s_new = old.snapshot(), new.snapshot()
            for name in ("energy_kwh", "remaining_money_cents", "purchase_count",
                         "relay_closed", "control_mode", "price_per_kwh", "power_limit_w"):
                assert getattr(s_new, name) == getattr(s_old, name), (bus, unit, name)
    assert after.meter(1, 1).token_status == int(TokenStatus.APPLIED)
    assert after.meter(1, 2).snapshot().relay_closed is False
    assert after.meter(2, 3).trip_reason == TripReason.LOCKED_OUT
    assert after.meter(2, 1).snapshot().price_per_kwh == Decimal("0.6180")
    # a token already applied stays applied: the station's resend is refused as replayed
    m = after.meter(1, 1)
    write(m, "token", make_token(MASTER, m.serial, 1234, m.purchase_count))
    assert m.token_status == int(TokenStatus.REPLAYED)


def test_meter_time_never_runs_back_and_the_downtime_is_a_power_cut(tmp_path: Path) -> None:
    fast = lived(campus(speed=0.0))
    saved_at = fast.clock.now()  # an hour and ten minutes after the start
    path = tmp_path / "sim.json"
    write_state(path, capture(fast, sync=True))
    energy = fast.meter(1, 1).energy_units
    # started again with the same --start: meter time resumes where it was saved
    again = campus(speed=0.0)
    restore(again, read_state(path), path)
    assert again.clock.now() == pytest.approx(saved_at)
    m = again.meter(1, 1)
    assert m.time == pytest.approx(saved_at) and m.energy_units == energy
    again.clock.advance(1800)
    m.sync()
    assert m.energy_units > energy  # and the energy keeps counting from the saved value
    # started again much later: the time in between used nothing
    later = campus(start=saved_at + 7 * 86_400)
    restore(later, read_state(path), path)
    assert later.meter(1, 1).energy_units == energy


def test_another_campus_or_a_damaged_file_is_refused_and_changes_nothing(tmp_path: Path) -> None:
    path = tmp_path / "sim.json"
    write_state(path, capture(lived(campus())))
    for other in (campus(buses=3), campus(meters=4), campus(seed=2)):
        fresh = other.meter(1, 1).memory()
        with pytest.raises(StateFileError) as exc:
            restore(other, read_state(path), path)
        message = str(exc.value)
        assert "another campus" in message and str(path) in message and "\n" not in message
        assert other.meter(1, 1).memory() == fresh
    data = json.loads(path.read_text())
    data["meters"]["2.3"]["money_micro"] = "lots"
    path.write_text(json.dumps(data))
    victim = campus()
    fresh = victim.meter(1, 1).memory()
    with pytest.raises(StateFileError, match=r"meter 2\.3: bad 'money_micro'"):
        restore(victim, read_state(path), path)
    assert victim.meter(1, 1).memory() == fresh
    path.write_text('{"format": "voltkeeper-simulator-state", "vers')
    with pytest.raises(StateFileError, match="damaged"):
        read_state(path)
    path.write_text('{"some": "other json"}')
    with pytest.raises(StateFileError, match="not a simulator state file"):
        read_state(path)
    assert read_state(tmp_path / "missing.json") is None


def test_written_values_keep_their_type() -> None:
    for value in (7, -3, True, 1.25, Decimal("0.6180"), b"\x00\xffab", "keep_power"):
        back = _decode_value(json.loads(json.dumps(_encode_value(value))))
        assert back == value and type(back) is type(value)
    with pytest.raises(ValueError):
        _decode_value({"decimal": "x"})


def test_the_keeper_saves_after_a_write_and_at_the_end(tmp_path: Path) -> None:
    c = campus()
    path = tmp_path / "state" / "sim.json"
    keeper = StateKeeper(c, path)
    keeper.acquire()
    try:
        assert keeper.load() is False
        assert keeper.save()
        assert not keeper.due()
        write(c.meter(1, 3), "control_mode", "keep_power")
        assert keeper.due()  # a write is saved at the next look
        assert keeper.save() and not keeper.due()
        assert read_state(path)["meters"]["1.3"]["control_mode"] == "keep_power"
        c.clock.advance(900)  # nobody reads: the final save brings every meter up to now
        assert keeper.save(final=True)
        saved = read_state(path)
        assert saved["sim_time"] == pytest.approx(c.clock.now())
        assert saved["meters"]["1.1"]["energy_units"] == c.meter(1, 1).energy_units
        assert sorted(p.name for p in path.parent.iterdir()) == ["sim.json", "sim.json.lock"]
        second = StateKeeper(campus(), path)
        with pytest.raises(StateFileError, match="another simulator"):
            second.acquire()
    finally:
        keeper.release()
    again = StateKeeper(campus(), path)
    again.acquire()  # free once the first let go
    try:
        assert again.load() is True
        assert again.campus.meter(1, 3).control_mode == "keep_power"
    finally:
        again.release()
