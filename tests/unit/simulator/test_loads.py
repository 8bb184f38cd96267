"""The ``--faults`` ``load=W:PF`` appliance and what the simulated meter does with it: its own
power limit and malicious-load rule, written by the station through the profile's registers, and
keep-power blocking both. Pure: meters and a campus driven by a frozen clock, no sockets.
"""

from __future__ import annotations

import math

import pytest

from app.drivers.profile import load_profile
from app.drivers.registers import encode_point
from app.simulator import curves
from app.simulator.campus import SimCampus
from app.simulator.clock import SimClock, parse_start
from app.simulator.faults import Effects, FaultPlan, FaultSpecError, parse_faults
from app.simulator.meter import SimMeter, TripReason

ACREL = load_profile("acrel-ddsy1352")
EVENING = parse_start("2026-03-02T20:00:00")  # campus time: dorm demand 250..600 W


def make(unit: int = 1) -> SimMeter:
    return SimMeter(ACREL, 1, unit, start=EVENING, random_heaters=False)


def write(meter: SimMeter, name: str, value: object) -> None:
    """What the station does: FC10 of the profile's point."""
    point = ACREL.points[name]
    meter.write_registers(point.address, encode_point(point, value))  # type: ignore[arg-type]


def base(meter: SimMeter) -> curves.Load:
    return meter.demand()[2][0]


# ----------------------------------------------------------------------------- the grammar

def test_load_effect_parses_with_a_default_power_factor_and_combines() -> None:
    plan = FaultPlan("1.3:load=2000:1.0; 2:load=900:0.7, slow=40; 1.4:load=1500; 1.4:load=0")
    assert plan.effects(1, 3) == Effects(load_w=2000, load_pf=1.0)
    assert plan.effects(1, 3).appliance == (2000, 1.0)
    assert not plan.effects(1, 3).any  # an appliance is no fault of the line
    assert FaultPlan("1:load=1200").effects(1, 9).appliance == (1200, 1.0)
    assert plan.effects(1, 4).appliance is None  # load=0: switched off by the later rule
    assert plan.effects(1, 5).appliance is None
    assert parse_faults("*:load=800:0.95,offline=0")[0].values == {
        "load_w": 800.0, "load_pf": 0.95, "offline": False}


def test_load_effect_on_a_whole_bus_and_with_spaces() -> None:
    plan = FaultPlan(" 2 : load = 900 : 0.7 , slow=40 ")
    assert plan.effects(2, 1) == Effects(load_w=900, load_pf=0.7, slow_ms=40)


@pytest.mark.parametrize(("spec", "names"), [
    ("1.3:load", "load needs a value"),
    ("1.3:load=", "load needs a value"),
    ("1.3:load=lots", "load='lots' is not a power"),
    ("1.3:load=-5", "load='-5' is not a power of 0..20000 W"),
    ("1.3:load=20001", "'20001'"),
    ("1.3:load=nan", "'nan'"),
    ("1.3:load=inf:1", "'inf'"),
    ("1.3:load=2000:0", "power factor '0' is not a number above 0 and at most 1"),
    ("1.3:load=2000:1.2", "power factor '1.2'"),
    ("1.3:load=2000:-0.5", "power factor '-0.5'"),
    ("1.3:load=2000:x", "power factor 'x'"),
    ("1.3:load=2000:", "power factor ''"),
    ("1.3:load=2000:0.9:1", "power factor '0.9:1'"),
    ("1.3:load=2000,drop=3", "0..1"),
])
def test_bad_load_values_are_refused_naming_them(spec: str, names: str) -> None:
    with pytest.raises(FaultSpecError, match=f"rule '{spec}'.*" + names.replace(".", r"\.")):
        parse_faults(spec)


# ----------------------------------------------------------------------------- the appliance

def test_the_appliance_adds_its_power_and_power_factor_to_the_readings() -> None:
    m = make()
    write(m, "malicious_detection", 0)
    before = base(m)
    m.set_appliance(900, 0.7)
    watts, pf, loads = m.demand()
    assert loads == [before, curves.Load(900.0, 0.7)]
    assert watts == pytest.approx(before.watts + 900)
    q = before.vars + 900 * math.tan(math.acos(0.7))
    assert pf == pytest.approx(watts / math.hypot(watts, q))
    assert 0.7 < pf < before.pf  # the mix, not either load alone
    s = m.snapshot()
    assert m.relay_closed and s.active_power_w == pytest.approx(watts, abs=1)
    assert s.power_factor == pytest.approx(pf, abs=0.001)
    assert s.current_a == pytest.approx(watts / (s.voltage_v * pf), abs=0.01)
    m.set_appliance(0)
    assert m.demand()[0] == pytest.approx(before.watts) and m.appliance is None


def test_a_campus_plugs_the_fault_appliance_in_from_the_start_and_follows_set_faults() -> None:
    campus = SimCampus(1, 4, ACREL, clock=SimClock(EVENING, 0), random_heaters=False,
                       faults="1.3:load=2000:1.0;1.4:load=900:0.7")
    heater, motor, other = campus.meter(1, 3), campus.meter(1, 4), campus.meter(1, 1)
    assert heater.appliance == curves.Load(2000.0, 1.0)
    assert heater.trip_reason == TripReason.MALICIOUS and not heater.relay_closed
    assert heater.snapshot().active_power_w == 0 and heater.demand()[0] > 2000
    assert motor.relay_closed and motor.appliance == curves.Load(900.0, 0.7)
    assert other.relay_closed and other.appliance is None
    campus.set_faults("1.1:load=1500")
    assert heater.appliance is None and motor.appliance is None
    assert other.trip_reason == TripReason.MALICIOUS


# ----------------------------------------------------------------------------- power limit

def test_over_the_power_limit_the_meter_trips_itself() -> None:
    m = make()
    write(m, "power_limit", 1000)
    m.set_appliance(1200, 0.8)  # inductive: no malicious load, but over 1000 W with the room's
    assert m.trip_reason == TripReason.OVER_LIMIT and not m.relay_closed
    assert m.control_mode == "auto" and m.overlimit_trips == 1
    s = m.snapshot()
    assert s.relay_closed is False and s.active_power_w == 0
    assert "over_limit" in s.flags and s.control_mode == "auto"
    trip_reason = ACREL.points["trip_reason"]
    assert m.read_registers(3, trip_reason.address, 1) == [int(TripReason.OVER_LIMIT)]
    m.advance(EVENING + 60)  # restored after a minute, still over: trips again
    assert m.trip_reason == TripReason.OVER_LIMIT and m.overlimit_trips == 2


def test_a_zero_power_limit_means_no_limit_and_under_the_limit_nothing_happens() -> None:
    m = make()
    write(m, "power_limit", 0)
    m.set_appliance(6000, 0.8)
    m.advance(EVENING + 600)
    assert m.relay_closed and m.snapshot().active_power_w > 6000
    m.set_appliance(0)
    write(m, "power_limit", 2500)
    m.set_appliance(1000, 0.8)  # 1000 W + the room's 250..600 W
    m.advance(EVENING + 1200)
    assert m.relay_closed and m.overlimit_trips == 0


def test_keep_power_blocks_the_limit_trip_and_the_malicious_trip() -> None:
    m = make()
    write(m, "control_mode", "keep_power")
    write(m, "power_limit", 1000)
    m.set_appliance(3000, 1.0)  # over the limit and a malicious load
    m.advance(EVENING + 1800)
    assert m.relay_closed and m.trip_reason == TripReason.CLOSED and m.overlimit_trips == 0
    assert m.snapshot().active_power_w > 3000
    write(m, "control_mode", "auto")  # keep-power off: the heater trips it at once
    assert m.trip_reason == TripReason.MALICIOUS


# ----------------------------------------------------------------------------- malicious load

def test_a_1500_w_resistive_step_trips_with_detection_on() -> None:
    m = make()
    write(m, "malicious_detection", 1)
    write(m, "malicious_step", 1000)
    m.set_appliance(1500, 1.0)  # an immersion heater; under the 2500 W limit with the room
    assert m.demand()[0] < 2500
    assert m.trip_reason == TripReason.MALICIOUS and not m.relay_closed
    s = m.snapshot()
    assert s.relay_closed is False and "over_limit" not in s.flags
    trip_reason = ACREL.points["trip_reason"]
    assert m.read_registers(3, trip_reason.address, 1) == [int(TripReason.MALICIOUS)]


def test_a_900_w_load_at_power_factor_0_7_does_not_trip() -> None:
    m = make()
    write(m, "malicious_detection", 1)
    write(m, "malicious_step", 800)
    m.set_appliance(900, 0.7)  # a motor: above the step, far from resistive
    m.advance(EVENING + 1800)
    assert m.relay_closed and m.overlimit_trips == 0
    assert m.snapshot().power_factor < 0.85


def test_detection_off_step_and_power_factor_thresholds() -> None:
    m = make()
    write(m, "malicious_detection", 0)
    m.set_appliance(1500, 1.0)
    assert m.relay_closed
    m.set_appliance(0)
    write(m, "malicious_detection", 1)
    write(m, "malicious_step", 1500)
    m.set_appliance(1500, 1.0)  # not larger than the step
    assert m.relay_closed
    m.set_appliance(1510, 0.94)  # larger, but below the 0.95 threshold
    assert m.relay_closed
    m.set_appliance(1510, 0.95)
    assert m.trip_reason == TripReason.MALICIOUS
