"""Station-side malicious-load detector: resistive steps fire, whitelisted and inductive ones
do not, gaps and incomplete readings re-baseline."""

from __future__ import annotations

import math

import pytest

from app.core.load_detector import (
    Appliance,
    DetectorSettings,
    LoadDetector,
    match_appliance,
    reactive_power,
    step_power_factor,
)
from app.drivers.meter_values import MeterValues

KETTLE = [Appliance("kettle", 1200.0)]
M = 7


def mv(p: float | None, pf: float | None, t: float) -> MeterValues:
    return MeterValues(read_at=t, active_power_w=p, power_factor=pf)


def step(p0: float, pf0: float, p1: float, pf1: float, whitelist=None, dt: float = 60.0,
         detector: LoadDetector | None = None):
    d = detector or LoadDetector(DetectorSettings())
    assert d.observe(M, mv(p0, pf0, 1000.0), whitelist or []) is None
    return d.observe(M, mv(p1, pf1, 1000.0 + dt), whitelist or [])


def test_resistive_1500w_step_fires():
    det = step(50.0, 1.0, 1550.0, 1.0)
    assert det is not None
    assert det.meter_id == M and det.t == 1060.0 and det.allowed_as is None
    assert det.step_w == pytest.approx(1500.0)
    assert det.step_pf == pytest.approx(1.0)


def test_first_reading_only_baselines():
    d = LoadDetector(DetectorSettings())
    assert d.observe(M, mv(2000.0, 1.0, 0.0), []) is None
    assert d.baseline(M) == (2000.0, 0.0, 0.0)


@pytest.mark.parametrize(("p1", "fires"), [(1250.0, False), (1200.0, False), (1380.0, False),
                                           (1500.0, True)])
def test_whitelisted_kettle(p1, fires):
    det = step(0.0, 1.0, p1, 1.0, KETTLE)
    assert (det is not None) is fires
    if fires:
        # 1,500 W is the kettle plus 300 W: below the threshold, so not "kettle plus something"
        assert det.allowed_as is None and det.step_w == pytest.approx(1500.0)


def test_kettle_without_whitelist_fires():
    assert step(0.0, 1.0, 1200.0, 1.0) is not None


def test_kettle_plus_heater_is_a_detection():
    det = step(0.0, 1.0, 2200.0, 1.0, KETTLE)
    assert det is not None and det.allowed_as == "kettle, plus 1,000 W"


def test_inductive_900w_at_pf_07_does_not_fire():
    assert step(0.0, 1.0, 900.0, 0.7) is None
    # nor a larger inductive load
    assert step(0.0, 1.0, 3000.0, 0.7) is None


def test_heater_on_top_of_fridge_fires_with_step_pf_one():
    # 300 W fridge at pf 0.8 running (Q 225 var); a 2,000 W heater switched on: the room reads
    # 2,300 W, Q unchanged, so pf = 2300 / hypot(2300, 225)
    room_pf = 2300.0 / math.hypot(2300.0, 225.0)
    det = step(300.0, 0.8, 2300.0, room_pf)
    assert det is not None
    assert det.step_w == pytest.approx(2000.0)
    assert det.step_pf == pytest.approx(1.0, abs=1e-6)


def test_fridge_starting_beside_heater_does_not_fire():
    # heater running at 2,000 W, then 1,000 W of motor at pf 0.7 starts: step pf 0.7
    q_motor = reactive_power(1000.0, 0.7)
    total_pf = 3000.0 / math.hypot(3000.0, q_motor)
    assert step(2000.0, 1.0, 3000.0, total_pf) is None


def test_threshold_edge():
    assert step(100.0, 1.0, 900.0, 1.0) is None  # exactly 800 W
    det = step(100.0, 1.0, 901.0, 1.0)
    assert det is not None and det.step_w == pytest.approx(801.0)


def test_min_pf_edge():
    # a step at exactly 0.95 fires, just below does not
    assert step(0.0, 1.0, 1000.0, 0.95) is not None
    assert step(0.0, 1.0, 1000.0, 0.949) is None


def test_decrease_and_small_steps_update_baseline_silently():
    d = LoadDetector(DetectorSettings())
    assert d.observe(M, mv(2000.0, 1.0, 0.0), []) is None
    assert d.observe(M, mv(100.0, 1.0, 60.0), []) is None  # heater off
    assert d.baseline(M)[0] == 100.0
    # creeping up in small steps never fires: each step is 500 W
    for i, p in enumerate((600.0, 1100.0, 1600.0, 2100.0), start=2):
        assert d.observe(M, mv(p, 1.0, 60.0 * i), []) is None
    assert d.baseline(M)[0] == 2100.0


def test_detection_moves_baseline_so_it_fires_once():
    d = LoadDetector(DetectorSettings())
    d.observe(M, mv(0.0, 1.0, 0.0), [])
    assert d.observe(M, mv(1500.0, 1.0, 60.0), []) is not None
    assert d.observe(M, mv(1500.0, 1.0, 120.0), []) is None
    # off, then on again: a new step
    assert d.observe(M, mv(0.0, 1.0, 180.0), []) is None
    assert d.observe(M, mv(1500.0, 1.0, 240.0), []) is not None


def test_gap_rebaselines():
    assert step(0.0, 1.0, 1500.0, 1.0, dt=15 * 60.0) is not None  # exactly 15 min: compared
    assert step(0.0, 1.0, 1500.0, 1.0, dt=15 * 60.0 + 1) is None
    d = LoadDetector(DetectorSettings())
    d.observe(M, mv(0.0, 1.0, 0.0), [])
    assert d.observe(M, mv(1500.0, 1.0, 3600.0), []) is None
    assert d.baseline(M) == (1500.0, 0.0, 3600.0)
    assert d.observe(M, mv(3000.0, 1.0, 3660.0), []) is not None  # next step is compared


def test_reading_back_in_time_rebaselines():
    assert step(0.0, 1.0, 1500.0, 1.0, dt=-60.0) is None


@pytest.mark.parametrize(("p", "pf"), [(None, 1.0), (1500.0, None), (None, None),
                                       (float("nan"), 1.0), (1500.0, 0.0)])
def test_reading_without_power_or_pf_resets(p, pf):
    d = LoadDetector(DetectorSettings())
    d.observe(M, mv(0.0, 1.0, 0.0), [])
    assert d.observe(M, mv(p, pf, 60.0), []) is None
    assert d.baseline(M) is None
    # the next good reading is a new baseline, not a step from the old one
    assert d.observe(M, mv(1500.0, 1.0, 120.0), []) is None
    assert d.observe(M, mv(3000.0, 1.0, 180.0), []) is not None


def test_meters_are_independent():
    d = LoadDetector(DetectorSettings())
    d.observe(1, mv(0.0, 1.0, 0.0), [])
    d.observe(2, mv(5000.0, 1.0, 0.0), [])
    assert d.observe(2, mv(5000.0, 1.0, 60.0), []) is None
    det = d.observe(1, mv(1500.0, 1.0, 60.0), [])
    assert det is not None and det.meter_id == 1
    d.forget(1)
    assert d.baseline(1) is None and d.baseline(2) is not None


def test_settings_are_used():
    d = LoadDetector(DetectorSettings(step_w=2000.0, min_pf=0.6, tolerance=0.05))
    assert step(0.0, 1.0, 1500.0, 1.0, detector=d) is None
    d = LoadDetector(DetectorSettings(step_w=500.0, min_pf=0.6, tolerance=0.05))
    assert step(0.0, 1.0, 900.0, 0.7, detector=d) is not None
    d = LoadDetector(DetectorSettings(tolerance=0.05))
    assert step(0.0, 1.0, 1300.0, 1.0, KETTLE, detector=d) is not None  # 8 % off the kettle


def test_idle_meter_pf_zero_and_sign_ignored():
    # idle meters report pf 0 (or anything) at 0 W; a negative pf is taken by its size
    assert step(0.0, 0.0, 1500.0, -1.0) is not None
    assert reactive_power(0.0, 0.0) == 0.0
    assert reactive_power(1000.0, -0.8) == pytest.approx(750.0)
    assert reactive_power(1000.0, 1.002) == 0.0


def test_helpers():
    assert step_power_factor(0.0, 0.0) == 1.0
    assert step_power_factor(900.0, reactive_power(900.0, 0.7)) == pytest.approx(0.7)
    both = [Appliance("kettle", 1200.0), Appliance("hair dryer", 1300.0)]
    assert match_appliance(1290.0, both, 0.15).name == "hair dryer"
    assert match_appliance(1000.0, both, 0.15) is None  # 16.7 % below the kettle
    with pytest.raises(ValueError):
        Appliance("x", 0.0)
    with pytest.raises(ValueError):
        DetectorSettings(min_pf=1.5)
