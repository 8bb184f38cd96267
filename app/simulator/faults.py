"""Faults a bus can suffer, from ``--faults SPEC``: lost requests, corrupt replies, slow and dead
meters, and appliances in a room that make a meter trip itself.

Grammar (whitespace around parts is ignored)::

    SPEC   = RULE { ";" RULE }
    RULE   = TARGET ":" EFFECT { "," EFFECT }
    TARGET = "*" | BUS | BUS "." UNIT | "*." UNIT
    EFFECT = "drop=" P          ignore the request (probability P, 0..1)
           | "crc=" P           spoil the reply's CRC (Modbus-TCP: send a garbled frame)
           | "slow=" MS ["@" P] delay the reply by MS milliseconds (probability P, default 1)
           | "offline" ["=" 0|1]  never answer (``offline=0`` brings a meter back)
           | "load=" W [":" PF]   an appliance of W watts (0..20000; 0: none) at power factor PF
                                (above 0, up to 1; default 1: resistive) on the meter
           | "baud=" B          the meter is set to B baud: on a serial line (a pty) set to
                                another speed it hears noise and stays silent

``2:drop=0.1;2.7:offline;*:slow=40@0.5`` drops a tenth of bus 2's requests, silences meter 7 on
bus 2 and slows half of all replies by 40 ms. A later rule overrides an earlier one for the same
effect. A bad SPEC raises :class:`FaultSpecError` naming the bad part.

``load`` is not a fault of the line but of the room: ``1.3:load=2000:1.0`` plugs a 2 kW heater
into meter 3 of bus 1 from the start, drawn on top of the room's own demand (the meter's current
and power factor show the mix). The simulated meter then does what the real one does with it
(:mod:`app.simulator.meter`): a resistive appliance larger than its malicious-load step trips it
with the malicious-load reason, and one that takes the room over its power limit trips it with
the over-limit reason; keep-power blocks both. ``1.3:load=900:0.7`` is a motor (a fan, a
compressor) that trips neither while under the limit. Changing the faults at run time
(:meth:`app.simulator.campus.SimCampus.set_faults`) switches the appliances to the new SPEC's
(``load=0`` switches one off). The colon inside ``load=W:PF`` is not the rule's colon: only the
first colon of a rule separates its target, so ``1.3:load=2000:1,slow=40`` is one rule.
"""

from __future__ import annotations

import math
import random
from dataclasses import dataclass, field, replace

EFFECTS = ("drop", "crc", "slow", "offline", "load", "baud")
#: The speeds ``baud=`` takes (those a pty's settings can carry).
BAUDS = (1200, 2400, 4800, 9600, 19200, 38400, 57600, 115200)
#: Largest appliance ``load=`` takes, in W (a single-phase meter's 60 A at 230 V is ~14 kW).
MAX_LOAD_W = 20_000.0


class FaultSpecError(ValueError):
    """A --faults SPEC that cannot be understood; the message names the bad part."""


@dataclass(frozen=True)
class Effects:
    """The faults in force for one meter."""

    drop: float = 0.0
    crc: float = 0.0
    slow_ms: float = 0.0
    slow_p: float = 1.0
    offline: bool = False
    #: An appliance in the room (``load=W:PF``): watts (0: none) and its power factor.
    load_w: float = 0.0
    load_pf: float = 1.0
    baud: int = 0  # the meter's own speed (0: the line's, whatever it is)

    @property
    def any(self) -> bool:
        """Whether the line misbehaves for this meter (an appliance is not a line fault)."""
        return bool(self.drop or self.crc or self.slow_ms or self.offline)

    @property
    def appliance(self) -> tuple[float, float] | None:
        """The ``load=`` appliance as (watts, power factor), or None."""
        return (self.load_w, self.load_pf) if self.load_w > 0 else None


@dataclass(frozen=True)
class Rule:
    bus: int | None  # None: every bus
    unit: int | None  # None: every meter of the bus
    values: dict[str, object] = field(hash=False)

    def matches(self, bus: int, unit: int) -> bool:
        return (self.bus is None or self.bus == bus) and (self.unit is None or self.unit == unit)


def _probability(rule: str, text: str) -> float:
    try:
        p = float(text)
    except ValueError:
        raise FaultSpecError(f"--faults rule {rule!r}: {text!r} is not a probability") from None
    if not 0.0 <= p <= 1.0:
        raise FaultSpecError(f"--faults rule {rule!r}: probability {text} is not within 0..1")
    return p


def _number(rule: str, text: str, what: str, lo: int, hi: int) -> int:
    if not text.strip().isdigit() or not lo <= int(text) <= hi:
        raise FaultSpecError(f"--faults rule {rule!r}: {what} {text!r} is not a number "
                             f"{lo}..{hi}")
    return int(text)


def _target(rule: str, text: str) -> tuple[int | None, int | None]:
    text = text.strip()
    if text == "*":
        return None, None
    bus_text, dot, unit_text = text.partition(".")
    bus = None if bus_text.strip() == "*" else _number(rule, bus_text, "bus", 1, 999)
    unit = _number(rule, unit_text, "meter", 1, 247) if dot else None
    return bus, unit


def _effect(rule: str, text: str) -> dict[str, object]:
    name, eq, value = (s.strip() for s in text.partition("="))
    if name == "offline":
        if eq and value not in ("0", "1"):
            raise FaultSpecError(f"--faults rule {rule!r}: offline takes 0 or 1, not {value!r}")
        return {"offline": not eq or value == "1"}
    if name not in EFFECTS:
        raise FaultSpecError(f"--faults rule {rule!r}: unknown effect {name!r} "
                             f"(known: {', '.join(EFFECTS)})")
    if not eq or not value:
        raise FaultSpecError(f"--faults rule {rule!r}: {name} needs a value ({name}=...)")
    if name == "slow":
        ms_text, at, p_text = value.partition("@")
        try:
            ms = float(ms_text)
        except ValueError:
            raise FaultSpecError(f"--faults rule {rule!r}: slow={ms_text!r} is not a number "
                                 "of milliseconds") from None
        if not 0 <= ms <= 60_000:
            raise FaultSpecError(f"--faults rule {rule!r}: slow={ms_text} is not 0..60000 ms")
        return {"slow_ms": ms, "slow_p": _probability(rule, p_text) if at else 1.0}
    if name == "load":
        return _load(rule, value)
    if name == "baud":
        if not value.isdigit() or int(value) not in BAUDS:
            raise FaultSpecError(f"--faults rule {rule!r}: baud={value} is not one of "
                                 f"{', '.join(map(str, BAUDS))}")
        return {"baud": int(value)}
    return {name: _probability(rule, value)}


def _finite(text: str) -> float | None:
    try:
        value = float(text)
    except ValueError:
        return None
    return value if math.isfinite(value) else None


def _load(rule: str, value: str) -> dict[str, object]:
    """``load=W[:PF]``: watts 0..MAX_LOAD_W, power factor above 0 and at most 1 (default 1)."""
    w_text, colon, pf_text = (s.strip() for s in value.partition(":"))
    watts = _finite(w_text)
    if watts is None or not 0 <= watts <= MAX_LOAD_W:
        raise FaultSpecError(f"--faults rule {rule!r}: load={w_text!r} is not a power of "
                             f"0..{MAX_LOAD_W:.0f} W")
    pf = 1.0
    if colon:
        pf_value = _finite(pf_text)
        if pf_value is None or not 0 < pf_value <= 1:
            raise FaultSpecError(f"--faults rule {rule!r}: load power factor {pf_text!r} is not "
                                 "a number above 0 and at most 1")
        pf = pf_value
    return {"load_w": watts, "load_pf": pf}


def parse_faults(spec: str) -> tuple[Rule, ...]:
    """The rules of a SPEC, in order. Empty SPEC (or only spaces): no faults."""
    rules: list[Rule] = []
    for raw in spec.split(";"):
        rule = raw.strip()
        if not rule:
            continue
        target, colon, effects = rule.partition(":")
        if not colon or not effects.strip():
            raise FaultSpecError(f"--faults rule {rule!r}: expected TARGET:EFFECT[,EFFECT...]")
        bus, unit = _target(rule, target)
        values: dict[str, object] = {}
        for part in effects.split(","):
            values.update(_effect(rule, part))
        rules.append(Rule(bus, unit, values))
    return tuple(rules)


class FaultPlan:
    """The faults in force, and the seeded dice that decide each request's fate."""

    def __init__(self, spec: str = "", seed: int = 1) -> None:
        self.spec = spec
        self.rules = parse_faults(spec)
        self._rng = random.Random(f"faults-{seed}")

    def effects(self, bus: int, unit: int) -> Effects:
        result = Effects()
        for rule in self.rules:
            if rule.matches(bus, unit):
                result = replace(result, **rule.values)  # type: ignore[arg-type]
        return result

    def happens(self, probability: float) -> bool:
        """One throw of the dice; certainties and impossibilities use no randomness."""
        if probability <= 0.0:
            return False
        if probability >= 1.0:
            return True
        return self._rng.random() < probability
