"""Station-side malicious-load detection: a resistive step in a meter's readings.

An immersion heater, a hot plate or a rice cooker is a resistive load: switched on, the meter's
active power P jumps by its rating and the reactive power Q hardly moves. A fridge, a fan or a
charger (power factor 0.6 to 0.8) moves Q as well. So the detector looks at the *step* between
two consecutive readings of one meter, not at the totals: the step's own power factor is
``dP / sqrt(dP**2 + dQ**2)``, where each reading's Q is ``P * tan(acos(pf))`` (the sign of Q and
of pf is ignored: meters disagree on it and a room's loads are inductive or resistive). A
2,000 W heater switched on next to a running 300 W fridge at pf 0.8 gives a room pf of about
0.98 but a step pf of 1.0; a 900 W motor at pf 0.7 gives a step pf of 0.7.

A step is a detection when it is an increase of more than ``step_w`` (exactly ``step_w`` is not)
and its power factor is at least ``min_pf``, unless it matches a whitelisted appliance of the
room: ``|dP - rated_w| <= tolerance * rated_w`` (a 1,200 W kettle covers 1,020 to 1,380 W at
15 %). **A whitelisted match is not reported at all** (``observe`` returns ``None``, as for no
step): an allowed appliance is not an event. A step larger than every match, e.g. the kettle
plus an 1,000 W heater switched on between two reads (2,200 W), is a detection; its
``allowed_as`` names the largest whitelisted appliance the step contains with more than
``step_w`` left over ("kettle, plus 1,000 W"), for the alarm's text; otherwise it is ``None``.

Every reading becomes the meter's new baseline, detection or not, so a heater left on is
reported once, when it is switched on (and again after the relay was opened and closed, since
closing the relay is then a step of its own). Decreases and small steps only move the baseline.
A reading more than ``max_gap_s`` (15 min) after the last, or older than it, only re-baselines:
what changed over a gap is not one appliance switching on. A reading without active power or
power factor (or with a non-finite value, or a power factor of 0 with power drawn) drops the
meter's baseline; the next good reading starts a new one.

Pure: no Qt, no storage, no clock; one instance keeps the baselines of all meters in memory.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

from app.drivers.meter_values import MeterValues

#: A reading this long after the previous one (s) only re-baselines.
MAX_GAP_S = 15 * 60
#: Float round-off allowed at the power-factor and tolerance edges (meters give pf in 0.001).
_EPS = 1e-9


@dataclass(frozen=True)
class Appliance:
    """An appliance a room is allowed to have, e.g. ``Appliance("kettle", 1200.0)``."""

    name: str
    rated_w: float

    def __post_init__(self) -> None:
        if not math.isfinite(self.rated_w) or self.rated_w <= 0:
            raise ValueError(f"rated power of {self.name!r} must be positive, not {self.rated_w}")


@dataclass(frozen=True)
class DetectorSettings:
    """``step_w``: a step must be larger than this (W); ``min_pf``: its power factor at least
    this; ``tolerance``: how far (fraction of the rating) a step may be from a whitelisted
    appliance's rating and still be that appliance; ``max_gap_s``: see the module text."""

    step_w: float = 800.0
    min_pf: float = 0.95
    tolerance: float = 0.15
    max_gap_s: float = MAX_GAP_S

    def __post_init__(self) -> None:
        if not math.isfinite(self.step_w) or self.step_w < 0:
            raise ValueError(f"step_w must be >= 0, not {self.step_w}")
        if not 0.0 <= self.min_pf <= 1.0:
            raise ValueError(f"min_pf must be within 0..1, not {self.min_pf}")
        if not math.isfinite(self.tolerance) or self.tolerance < 0:
            raise ValueError(f"tolerance must be >= 0, not {self.tolerance}")
        if not self.max_gap_s > 0:
            raise ValueError(f"max_gap_s must be > 0, not {self.max_gap_s}")


@dataclass(frozen=True)
class Detection:
    """A resistive step on ``meter_id`` at ``t`` (the reading's ``read_at``): ``step_w`` W of
    active power at power factor ``step_pf``. ``allowed_as``: see the module text."""

    meter_id: int
    step_w: float
    step_pf: float
    t: float
    allowed_as: str | None = None


@dataclass(frozen=True)
class _Baseline:
    p_w: float
    q_var: float
    t: float


def reactive_power(p_w: float, pf: float) -> float | None:
    """Q (var, >= 0) of a reading of ``p_w`` W at power factor ``pf``; ``None`` when the pair
    makes no sense (non-finite, or a power factor of 0 with power drawn)."""
    if not (math.isfinite(p_w) and math.isfinite(pf)):
        return None
    p = abs(p_w)
    if p == 0.0:
        return 0.0  # an idle meter reports pf 0 or 1 as it likes
    pf = min(abs(pf), 1.0)  # 1.001 from rounding is 1
    if pf == 0.0:
        return None
    return p * math.sqrt(1.0 - pf * pf) / pf  # P * tan(acos(pf))


def step_power_factor(dp_w: float, dq_var: float) -> float:
    """The power factor of a step of ``dp_w`` W and ``dq_var`` var (1.0 for no step)."""
    s = math.hypot(dp_w, dq_var)
    return 1.0 if s == 0.0 else abs(dp_w) / s


def match_appliance(step_w: float, whitelist: list[Appliance],
                    tolerance: float) -> Appliance | None:
    """The whitelisted appliance whose rating ``step_w`` is within ``tolerance`` of (the
    closest, relative to its rating, when several are), or ``None``."""
    best: Appliance | None = None
    best_off = math.inf
    for appliance in whitelist:
        off = abs(step_w - appliance.rated_w) / appliance.rated_w
        if off <= tolerance + _EPS and off < best_off:
            best, best_off = appliance, off
    return best


def _contained(step_w: float, whitelist: list[Appliance], threshold_w: float) -> str | None:
    """"kettle, plus 1,000 W" for the largest whitelisted appliance that leaves more than
    ``threshold_w`` of the step unexplained."""
    inside = [a for a in whitelist if step_w - a.rated_w > threshold_w]
    if not inside:
        return None
    largest = max(inside, key=lambda a: a.rated_w)
    return f"{largest.name}, plus {step_w - largest.rated_w:,.0f} W"


@dataclass
class LoadDetector:
    """Per-meter baselines and the rule; feed it every reading of every meter, in order."""

    settings: DetectorSettings = field(default_factory=DetectorSettings)
    _last: dict[int, _Baseline] = field(default_factory=dict, init=False, repr=False)

    def observe(self, meter_id: int, values: MeterValues,
                whitelist: list[Appliance] | None = None) -> Detection | None:
        """Take one reading of ``meter_id``; the detection it makes, if any (see module text)."""
        p, pf, t = values.active_power_w, values.power_factor, values.read_at
        q = None if p is None or pf is None else reactive_power(p, pf)
        if p is None or q is None or not math.isfinite(t):
            self._last.pop(meter_id, None)
            return None
        p = abs(p)
        before = self._last.get(meter_id)
        self._last[meter_id] = _Baseline(p, q, t)
        if before is None or not 0.0 <= t - before.t <= self.settings.max_gap_s:
            return None
        return self._judge(meter_id, p - before.p_w, q - before.q_var, t, whitelist or [])

    def _judge(self, meter_id: int, dp: float, dq: float, t: float,
               whitelist: list[Appliance]) -> Detection | None:
        s = self.settings
        if dp <= s.step_w:
            return None
        pf = step_power_factor(dp, dq)
        if pf < s.min_pf - _EPS:  # a step read at exactly min_pf is one (float round-off)
            return None
        if match_appliance(dp, whitelist, s.tolerance) is not None:
            return None  # an allowed appliance: not reported
        return Detection(meter_id, dp, pf, t, _contained(dp, whitelist, s.step_w))

    def forget(self, meter_id: int) -> None:
        """Drop a meter's baseline (meter replaced or removed)."""
        self._last.pop(meter_id, None)

    def set_baseline(self, meter_id: int, p_w: float, q_var: float, t: float) -> None:
        """Judge the meter's next reading against this (e.g. what it drew before the heater
        its relay was opened for: a heater still on when the relay closes is seen again)."""
        self._last[meter_id] = _Baseline(p_w, q_var, t)

    def baseline(self, meter_id: int) -> tuple[float, float, float] | None:
        """The meter's baseline as (P W, Q var, read_at), or ``None``."""
        b = self._last.get(meter_id)
        return None if b is None else (b.p_w, b.q_var, b.t)
