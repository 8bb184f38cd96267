"""Profiles load, and every kind of mistake is refused with a message naming file and key."""

from __future__ import annotations

import tomllib
from pathlib import Path

import pytest

from app.drivers.profile import (
    PROFILE_DIR,
    ProfileError,
    available_profiles,
    load_profile,
    load_profile_file,
    parse_profile,
)

DDSY = PROFILE_DIR / "acrel-ddsy1352.toml"


def test_shipped_profiles_load():
    assert {"acrel-ddsy1352", "eastron-sdm120"} <= set(available_profiles())
    ddsy = load_profile("acrel-ddsy1352")
    assert ddsy.is_prepaid and ddsy.can("trip") and ddsy.can("recharge")
    assert ddsy.points["energy"].address == 0 and ddsy.points["remaining_money"].address == 0x21F
    assert ddsy.find("relay_closed")[1].shift == 13
    sdm = load_profile("eastron-sdm120")
    assert not sdm.is_prepaid
    assert not sdm.can("trip") and not sdm.can("recharge") and not sdm.has("remaining_money")
    assert all(p.function == 4 and p.type == "float32" for p in sdm.points.values())


def test_voltkeeper_section_is_marked():
    ddsy = load_profile("acrel-ddsy1352")
    assert ddsy.points["token"].source == "voltkeeper"
    assert ddsy.points["frequency"].source == "inferred"
    assert ddsy.points["voltage"].source == "manual"


def _ddsy() -> dict:
    with DDSY.open("rb") as fh:
        return tomllib.load(fh)


def _refused(data: dict, key_fragment: str, problem_fragment: str) -> None:
    with pytest.raises(ProfileError) as exc:
        parse_profile(data, "bad.toml", "bad")
    msg = str(exc.value)
    assert msg.startswith("bad.toml: "), msg
    assert key_fragment in exc.value.key, msg
    assert problem_fragment in exc.value.problem, msg


def test_unknown_key_refused():
    d = _ddsy()
    d["points"]["voltage"]["scael"] = "0.1"
    _refused(d, "points.voltage.scael", "unknown key")
    d = _ddsy()
    d["meter"]["colour"] = "red"
    _refused(d, "meter.colour", "unknown key")
    d = _ddsy()
    d["controls"]["self_destruct"] = {"point": "control_mode"}
    _refused(d, "controls.self_destruct", "unknown control")


def test_wrong_type_refused():
    d = _ddsy()
    d["points"]["voltage"]["type"] = "u17"
    _refused(d, "points.voltage.type", "'u17' is not one of")
    d = _ddsy()
    d["points"]["voltage"]["address"] = "eleven"
    _refused(d, "points.voltage.address", "must be an integer")
    d = _ddsy()
    d["points"]["voltage"]["scale"] = 0.1
    _refused(d, "points.voltage.scale", "decimal string")
    d = _ddsy()
    d["serial"]["parity"] = "X"
    _refused(d, "serial.parity", "is not one of")
    d = _ddsy()
    d["points"]["voltage"]["function"] = 6
    _refused(d, "points.voltage.function", "not a read function")


def test_overlapping_registers_refused():
    d = _ddsy()
    d["points"]["voltage"]["address"] = 0x0001  # inside energy (0000H-0001H)
    _refused(d, "points.", "overlaps points.energy")


def test_missing_required_point_refused():
    d = _ddsy()
    del d["points"]["remaining_money"]
    _refused(d, "points.remaining_money", "required for a prepaid meter")
    d = _ddsy()
    del d["controls"]["trip"]
    _refused(d, "controls.trip", "required for a prepaid meter")
    d = _ddsy()
    del d["points"]["status"]  # relay_closed lives there
    _refused(d, "points.relay_closed", "required")


def test_control_must_name_a_writable_point_and_a_real_state():
    d = _ddsy()
    d["controls"]["trip"]["state"] = "explode"
    _refused(d, "controls.trip.state", "no state 'explode'")
    d = _ddsy()
    d["controls"]["price"]["point"] = "voltage"
    _refused(d, "controls.price.point", "not writable")


def test_bits_and_states_checked():
    d = _ddsy()
    d["points"]["status"]["bits"]["fault"] = 13
    _refused(d, "points.status.bits", "bit 13 is also")
    d = _ddsy()
    d["points"]["control_mode"]["states"]["auto"] = [0]
    _refused(d, "points.control_mode.states.auto", "list of 2")


def test_syntax_error_names_the_file(tmp_path: Path):
    bad = tmp_path / "broken.toml"
    bad.write_text("[meter\nmodel = 1\n")
    with pytest.raises(ProfileError) as exc:
        load_profile_file(bad)
    assert str(bad) in str(exc.value) and "(syntax)" in str(exc.value)


def test_unknown_profile_lists_known():
    with pytest.raises(ProfileError) as exc:
        load_profile("no-such-meter")
    assert "acrel-ddsy1352" in str(exc.value)
