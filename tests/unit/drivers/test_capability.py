"""Meters as they come, in the pure parts: documented and optional points, plausible ranges,
values a meter cannot have measured, splitting a refused read, what a meter was found to lack."""

from __future__ import annotations

import math
import struct
import tomllib
from decimal import Decimal

import pytest

from app.drivers.capability import MeterCapability, lacks_recharge
from app.drivers.meter_values import values_from_points
from app.drivers.profile import PROFILE_DIR, ProfileError, load_profile, parse_profile
from app.drivers.registers import block_of, decode_checked, implausible, plan_reads, split_block

DDSY = load_profile("acrel-ddsy1352")
SDM = load_profile("eastron-sdm120")


def _float_regs(value: float) -> list[int]:
    return list(struct.unpack(">HH", struct.pack(">f", value)))


def test_documented_follows_the_source_unless_the_profile_says():
    assert DDSY.points["voltage"].documented and DDSY.points["energy"].documented
    for name in ("frequency", "token", "token_status", "remaining_money", "status", "price"):
        assert not DDSY.points[name].documented, name
    assert all(p.documented for p in SDM.points.values())  # datasheet
    data = _ddsy()
    data["points"]["remaining_money"]["documented"] = True
    assert parse_profile(data, "x.toml", "x").points["remaining_money"].documented
    data["points"]["remaining_money"]["documented"] = "yes"
    with pytest.raises(ProfileError, match="documented"):
        parse_profile(data, "x.toml", "x")


def test_plausible_ranges_in_the_points_own_unit():
    p = DDSY.points
    assert (p["voltage"].plausible_min, p["voltage"].plausible_max) == (0, 500)
    assert (p["active_power"].plausible_min, p["active_power"].plausible_max) == (-100, 100)  # kW
    assert (SDM.points["active_power"].plausible_min,
            SDM.points["active_power"].plausible_max) == (-100_000, 100_000)  # W
    assert p["energy"].plausible_max == Decimal("1e9") and p["frequency"].plausible_min == 40
    assert p["power_limit"].plausible_max == 30000  # the profile's own max wins
    assert p["status"].plausible_max is None and p["control_mode"].plausible_min is None
    assert p["remaining_money"].plausible_min == Decimal("-1e8")


def test_profile_refuses_a_range_it_cannot_check():
    data = _ddsy()
    data["points"]["voltage"]["unit"] = "furlong"
    with pytest.raises(ProfileError, match="give min and max"):
        parse_profile(data, "x.toml", "x")
    data["points"]["voltage"].update(min="0", max="300")
    assert parse_profile(data, "x.toml", "x").points["voltage"].plausible_max == 300
    data["points"]["voltage"].update(min="400", max="300")
    with pytest.raises(ProfileError, match="above max"):
        parse_profile(data, "x.toml", "x")


@pytest.mark.parametrize("value", [math.nan, math.inf, -math.inf, 1e30, 1e20, -5.0])
def test_impossible_energy_is_refused(value):
    assert implausible(SDM.points["energy"], value) is not None


def test_plausible_values_pass():
    assert implausible(SDM.points["energy"], 1234.5) is None
    assert implausible(DDSY.points["voltage"], Decimal("220.1")) is None
    assert implausible(DDSY.points["status"], 0xFFFF) is None  # a status word has no range
    assert implausible(DDSY.points["voltage"], Decimal("6553.5")) is not None


def test_a_bad_value_costs_only_itself():
    block = plan_reads(SDM, SDM.poll_points())[0]
    regs = [0] * block.count
    for name, value in (("voltage", 230.0), ("energy", math.nan), ("frequency", 50.0)):
        off = SDM.points[name].address - block.start
        regs[off:off + 2] = _float_regs(value)
    bad: list[tuple[str, str]] = []
    decoded = decode_checked(block, regs, bad)
    assert "energy" not in decoded and decoded["voltage"] == 230.0
    assert decoded["frequency"] == 50.0
    assert bad == [("energy", "nan not a number")]
    units = {n: p.unit for n, p in SDM.points.items()}
    values = values_from_points(decoded, units, 0.0, bad)
    assert values.energy_kwh is None and values.voltage_v == 230.0


def test_a_value_that_cannot_be_converted_is_left_out():
    bad: list[tuple[str, str]] = []
    v = values_from_points({"energy": Decimal("NaN"), "voltage": 230.0}, {}, 0.0, bad)
    assert v.energy_kwh is None and v.voltage_v == 230.0 and bad[0][0] == "energy"
    with pytest.raises(ValueError):
        values_from_points({"energy": Decimal("NaN")}, {}, 0.0)


def test_a_refused_read_splits_optional_points_off_first_then_halves():
    block = plan_reads(DDSY, DDSY.poll_points())[0]
    assert block.start == 0 and DDSY.points["frequency"] in block.points
    documented, optional = split_block(block)
    assert [p.name for p in optional.points] == ["frequency"]
    assert all(p.documented for p in documented.points) and documented.count == 0x11
    halves = split_block(documented)
    assert sum(len(b.points) for b in halves) == len(documented.points)
    assert block_of([DDSY.points["voltage"]]).count == 1


def test_read_modes_plan_smaller_transactions():
    points = SDM.poll_points()
    assert len(plan_reads(SDM, points)) == 1
    no_gaps = plan_reads(SDM, points, max_gap=0)
    assert [(b.start, b.count) for b in no_gaps] == [
        (0, 2), (6, 2), (12, 2), (18, 2), (24, 2), (30, 2), (70, 4)]
    assert len(plan_reads(SDM, points, single=True)) == len(points)


def test_capability_learns_plans_and_forgets():
    cap = MeterCapability()
    assert not cap.lacks_recharge(DDSY) and lacks_recharge(SDM, ())
    cap.refuse("token_status", 50.0)
    assert cap.lacks_recharge(DDSY) and cap.dirty
    assert all(b.start != 0x1010 for b in cap.plan(DDSY, DDSY.poll_points()))
    sdm_block = plan_reads(SDM, SDM.poll_points())[0]
    cap.escalate(sdm_block)
    assert cap.read_mode == "no-gaps"
    cap.escalate(block_of([SDM.points["frequency"], SDM.points["energy"]]))  # contiguous
    assert cap.read_mode == "single"
    cap.escalate(sdm_block)
    assert cap.read_mode == "single"  # never back to larger reads by itself
    assert cap.checked_at == 50.0  # a refusal is a try
    cap.checked(100.0)
    assert not cap.recheck_due(200.0) and cap.recheck_due(100.0 + 6 * 3600)
    cap.reset("310000001002")
    assert cap.missing == set() and cap.read_mode == "merged" and cap.serial == "310000001002"
    cap.found("token_status")  # nothing to forget
    assert MeterCapability(read_mode="bogus").read_mode == "merged"


def _ddsy() -> dict:
    with (PROFILE_DIR / "acrel-ddsy1352.toml").open("rb") as fh:
        return tomllib.load(fh)
