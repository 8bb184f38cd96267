"""A simulated meter's physics with injected time: energy, exact money, relay logic, repeatability.
"""

from __future__ import annotations

from decimal import Decimal

import pytest

from app.drivers.profile import load_profile
from app.drivers.registers import encode_point
from app.drivers.token import MasterKey, TokenStatus, make_token, meter_keys
from app.simulator import curves
from app.simulator.clock import parse_start
from app.simulator.identity import is_shop, serial_for
from app.simulator.meter import SimMeter, TripReason

ACREL = load_profile("acrel-ddsy1352")
SDM = load_profile("eastron-sdm120")
EVENING = parse_start("2026-03-02T20:00:00")  # campus time: the dorms' peak
NIGHT = parse_start("2026-03-03T02:00:00")
MASTER = MasterKey.generate()


def make(start: float = EVENING, unit: int = 1, bus: int = 1, seed: int = 1,
         **kw: object) -> SimMeter:
    keys = {1: meter_keys(MASTER, serial_for(bus, unit))}
    kw.setdefault("random_heaters", False)
    return SimMeter(ACREL, bus, unit, seed=seed, start=start, keys_by_version=keys,
                    **kw)  # type: ignore[arg-type]


def recharge(meter: SimMeter, token: bytes) -> None:
    point = ACREL.points["token"]
    meter.write_registers(point.address, encode_point(point, token))


def test_identity_is_fixed_and_shared() -> None:
    assert serial_for(1, 5) == "310000001005"
    assert serial_for(12, 27) == "310000012027"
    assert is_shop(2, 27, 27) and is_shop(2, 26, 27)
    assert not is_shop(2, 25, 27) and not is_shop(1, 27, 27)
    with pytest.raises(ValueError):
        serial_for(0, 1)


def test_initial_state_from_the_seed() -> None:
    m = make()
    assert 10_000 <= m.energy_units <= 300_000
    assert 20_000_000 <= m.money_micro <= 200_000_000
    assert 1 <= m.purchase_count <= 20
    assert sum(m.tariff_units) == m.energy_units
    s = m.snapshot()
    assert s.serial == "310000001001" and s.relay_closed and s.control_mode == "auto"
    assert s.price_per_kwh == Decimal("0.5880") and s.token_status == 0
    assert s.energy_kwh == Decimal(m.energy_units) / 100


def test_energy_integrates_the_load_minute_by_minute() -> None:
    m = make()
    before = m.energy_units
    expected = sum(m.demand(EVENING + 60 * i)[0] * 60 / 36_000 for i in range(60))
    m.advance(EVENING + 3600)
    assert abs((m.energy_units - before) - expected) < 1.0
    # 250..600 W for an hour: 0.25..0.6 kWh
    assert 25 <= m.energy_units - before <= 60


def test_money_is_deducted_exactly_at_the_price() -> None:
    m = make()
    e0, money0 = m.energy_units, m.money_micro
    m.advance(EVENING + 5 * 3600)
    used = m.energy_units - e0
    assert used > 0
    assert money0 - m.money_micro == used * 5880  # 0.01 kWh at 0.5880 yuan/kWh = 5880 µ¥
    s = m.snapshot()
    assert s.remaining_money_cents == m.money_micro // 10_000
    assert s.remaining_energy_kwh == Decimal(m.money_micro // 5880) / 100
    # tariffs: 20:00-21:00 spike, 21:00-23:00 peak, 23:00-01:00 valley
    assert sum(m.tariff_units) == m.energy_units


def test_zero_balance_trips_and_a_recharge_closes() -> None:
    m = make()
    m.set_money(0)
    assert m.trip_reason == TripReason.ARREARS and not m.relay_closed
    m.set_money(1)  # 1 fen = 10,000 µ¥: two units at 5880
    e0 = m.energy_units
    m.advance(EVENING + 3600)
    assert m.energy_units - e0 == 2  # and not a unit more once the relay opened
    assert m.money_micro == 0 and m.trip_reason == TripReason.ARREARS
    s = m.snapshot()
    assert not s.relay_closed and s.active_power_w == 0 and s.current_a == 0
    assert {"arrears", "alarm1", "alarm2"} <= s.flags
    assert s.trip_reason == 1

    recharge(m, make_token(MASTER, m.serial, 800, m.purchase_count + 1))
    assert m.token_status == TokenStatus.APPLIED
    s = m.snapshot()
    assert s.relay_closed and s.remaining_money_cents == 800
    assert "alarm1" in s.flags and "alarm2" not in s.flags and "arrears" not in s.flags


def test_keep_power_never_trips_and_runs_into_overdraft() -> None:
    m = make()
    m.apply("control_mode", "keep_power")
    m.set_money(1)
    m.plug_in(5000, pf=1.0)  # over the limit and resistive: no trip under keep-power
    m.advance(EVENING + 1800)
    assert m.relay_closed and m.trip_reason == TripReason.CLOSED
    assert m.money_micro < 0
    s = m.snapshot()
    assert s.remaining_money_cents == 0 and "arrears" in s.flags and s.active_power_w > 5000
    m.write_registers(0x57, [0, 0])  # back to auto: no money, so it trips at once
    assert m.trip_reason == TripReason.ARREARS


def test_over_limit_trips_restores_and_locks_out() -> None:
    m = make()
    t = EVENING

    def breach() -> None:
        m.plug_in(3000, pf=0.9)  # not resistive enough to be "malicious"
        m.unplug()

    breach()
    assert m.trip_reason == TripReason.OVER_LIMIT and m.overlimit_trips == 1
    assert "over_limit" in m.snapshot().flags
    m.advance(t + 59)
    assert not m.relay_closed
    m.advance(t + 60)  # restore_delay_min = 1
    assert m.relay_closed and m.overlimit_trips == 1
    breach()
    assert m.trip_reason == TripReason.OVER_LIMIT and m.overlimit_trips == 2
    m.advance(t + 120)
    assert m.relay_closed
    breach()  # the third: restore_count (3) used up
    assert m.trip_reason == TripReason.LOCKED_OUT
    m.advance(t + 7200)
    assert m.trip_reason == TripReason.LOCKED_OUT and "over_limit" in m.snapshot().flags
    m.write_registers(0x57, [0, 0])  # the station's "close" clears the lock-out
    assert m.relay_closed and m.overlimit_trips == 0


def test_a_load_that_stays_over_the_limit_trips_again_after_each_restore() -> None:
    m = make()
    m.write_registers(0x481, [100])  # 100 W: the evening load is above it
    assert m.trip_reason == TripReason.OVER_LIMIT
    m.advance(EVENING + 60)
    assert m.overlimit_trips == 2
    m.advance(EVENING + 120)
    assert m.trip_reason == TripReason.LOCKED_OUT and m.overlimit_trips == 3


def test_malicious_resistive_load_trips() -> None:
    m = make()
    m.plug_in(1000, pf=1.0)
    assert m.trip_reason == TripReason.MALICIOUS and m.overlimit_trips == 1
    m.unplug()
    m.advance(EVENING + 60)
    assert m.relay_closed
    m.plug_in(1000, pf=0.9)  # a motor, not a heater
    assert m.relay_closed
    m.unplug()
    m.plug_in(700, pf=1.0)  # below the 800 W step
    assert m.relay_closed
    m.unplug()
    m.apply("malicious_detection", 0)
    m.plug_in(1500, pf=1.0)
    assert m.relay_closed


def test_remote_trip_and_close() -> None:
    m = make()
    m.write_registers(0x57, [1, 1])
    assert m.trip_reason == TripReason.REMOTE and not m.relay_closed
    m.advance(EVENING + 600)
    assert m.snapshot().active_power_w == 0
    m.write_registers(0x57, [0, 0])
    assert m.relay_closed


def test_hidden_heaters_are_rare_evening_and_seeded() -> None:
    meter = (1, 1)
    found = []
    for day in range(1000):
        evening = parse_start("2026-01-01T19:00:00") + 86_400 * day
        for minute in range(0, 300, 5):
            if curves.hidden_heater(1, meter, evening + 60 * minute) is not None:
                found.append(evening + 60 * minute)
    # 0.2 % an evening hour: about ten heaters in 1000 evenings, each on for 10-60 minutes
    assert 0 < len(found) < 1000 * 60 * 0.01
    first = found[0]
    heater = curves.hidden_heater(1, meter, first)
    assert heater is not None and heater.pf == 1.0 and 800 <= heater.watts <= 2000
    assert curves.hidden_heater(1, meter, first - 12 * 3600) is None  # not in the morning
    m = make(start=first - 600, random_heaters=True)
    m.advance(first + 30)
    assert m.trip_reason in (TripReason.MALICIOUS, TripReason.LOCKED_OUT)


def test_load_curves_and_mains_stay_plausible() -> None:
    night, evening, shop = make(start=NIGHT), make(), make(bus=2, unit=27)
    assert shop.shop
    for i in range(0, 120):
        t = i * 61.0
        assert 20 <= night.demand(NIGHT + t)[0] <= 40
        assert 250 <= evening.demand(EVENING + t)[0] <= 600
        assert 0.85 <= evening.demand(EVENING + t)[1] <= 0.98
        assert 30 <= shop.demand(NIGHT + t)[0] <= 60
        assert 800 <= shop.demand(parse_start("2026-03-03T12:00:00") + t)[0] <= 2000
    for i in range(200):
        s = make(start=EVENING + 10 * i).snapshot()
        assert 198 <= s.voltage_v <= 242 and 49.95 <= s.frequency_hz <= 50.05
        assert s.current_a == pytest.approx(s.active_power_w / s.voltage_v / s.power_factor,
                                            abs=0.02)


def test_same_seed_same_campus_whatever_the_reading_pattern() -> None:
    a, b, c = make(seed=7), make(seed=7), make(seed=8)
    a.advance(EVENING + 3 * 3600)
    for step in range(1, 3 * 3600, 37):  # read every 37 s
        b.advance(EVENING + step)
    b.advance(EVENING + 3 * 3600)
    c.advance(EVENING + 3 * 3600)
    assert a.snapshot() == b.snapshot()
    assert (a.energy_units, a.money_micro) == (b.energy_units, b.money_micro)
    assert c.snapshot() != a.snapshot()


def test_metering_profile_has_no_money_or_relay() -> None:
    m = SimMeter(SDM, 1, 1, seed=1, start=EVENING)
    e0 = m.energy_units
    m.advance(EVENING + 3600)
    s = m.snapshot()
    assert m.energy_units > e0 and s.relay_closed is None and s.remaining_money_cents is None
    assert 198 <= s.voltage_v <= 242 and 250 <= s.active_power_w <= 600
    assert abs(s.energy_kwh - Decimal(m.energy_units) / 100) <= Decimal("0.001")
