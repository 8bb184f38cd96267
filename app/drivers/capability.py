"""What one meter actually has: the points its profile names that it refuses, learned by reading.

Meters come from the factory without VoltKeeper's own registers, and a profile's inferred or
vendor-tool points may be wrong for a given firmware. A read the meter refuses with a Modbus
exception 1, 2 or 3 (illegal function, address or value) is split and retried
(``ModbusLink.read``) until the refused points are found; they are remembered here, left out of
later reads, tried again now and then (``RECHECK_MISSING_S``) and forgotten when the meter is
replaced. A meter that has every point but refuses a read spanning several of them (registers it
does not define between them) is read with smaller transactions from then on (``read_mode``).
A timeout or a corrupt reply never makes a point missing: only the meter's own refusal does.

The record belongs to the thread that polls the meter's bus; ``snapshot`` is what is stored.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from dataclasses import dataclass, field

from app.drivers.profile import MeterProfile, Point
from app.drivers.registers import ReadBlock, plan_reads

log = logging.getLogger("voltkeeper.drivers.capability")

#: Modbus exceptions that say "I do not have this": illegal function, address, data value.
MISSING_CODES = frozenset({1, 2, 3})
#: How reads are planned for a meter: as the profile allows, never across registers between
#: points, or one point per transaction.
READ_MODES = ("merged", "no-gaps", "single")
#: Points a meter lacks are tried again this often (a firmware update, a wrong guess).
RECHECK_MISSING_S = 6 * 3600.0
#: What a recharge needs of a meter: the token register and the two it is confirmed by.
RECHARGE_POINTS = ("token", "token_status", "purchase_count")


def point_name(profile: MeterProfile, name: str) -> str | None:
    """The point that holds ``name`` (itself, or the status word a bit field is in)."""
    found = profile.find(name)
    return None if found is None else found[0].name


def lacks_recharge(profile: MeterProfile, missing: Iterable[str]) -> bool:
    """True when a meter missing ``missing`` cannot take a recharge token (or its profile
    offers no recharge at all)."""
    if not profile.can("recharge"):
        return True
    gone = set(missing)
    return any(point_name(profile, n) in gone for n in RECHARGE_POINTS)


@dataclass(frozen=True)
class CapabilitySnapshot:
    """What is stored of a meter's capability (plain data)."""

    missing: tuple[str, ...]
    read_mode: str
    checked_at: float
    serial: str


@dataclass
class MeterCapability:
    """What one meter was found to lack, and how it must be read."""

    missing: set[str] = field(default_factory=set)
    read_mode: str = "merged"
    checked_at: float = 0.0  # when the missing points were last tried
    serial: str = ""  # the meter (by its serial) this was learned from
    dirty: bool = False  # changed since it was last stored

    def __post_init__(self) -> None:
        if self.read_mode not in READ_MODES:
            self.read_mode = "merged"

    # -- questions ---------------------------------------------------------------------------
    def lacks(self, profile: MeterProfile, name: str) -> bool:
        return point_name(profile, name) in self.missing

    def lacks_recharge(self, profile: MeterProfile) -> bool:
        return lacks_recharge(profile, self.missing)

    def recheck_due(self, now: float) -> bool:
        return bool(self.missing) and now - self.checked_at >= RECHECK_MISSING_S

    def plan(self, profile: MeterProfile, points: Iterable[Point]) -> list[ReadBlock]:
        """The reads for ``points`` this meter takes: without what it lacks, as small as it
        needs them."""
        wanted = [p for p in points if p.name not in self.missing]
        if self.read_mode == "single":
            return plan_reads(profile, wanted, single=True)
        if self.read_mode == "no-gaps":
            return plan_reads(profile, wanted, max_gap=0)
        return plan_reads(profile, wanted)

    def snapshot(self) -> CapabilitySnapshot:
        return CapabilitySnapshot(tuple(sorted(self.missing)), self.read_mode, self.checked_at,
                                  self.serial)

    # -- learning ----------------------------------------------------------------------------
    def refuse(self, name: str, now: float) -> None:
        """The meter refused ``name`` (at ``now``: the missing points were just tried)."""
        if name not in self.missing:
            self.missing.add(name)
            self.checked_at = now
            self.dirty = True

    def found(self, name: str) -> None:
        if name in self.missing:
            self.missing.discard(name)
            self.dirty = True

    def escalate(self, block: ReadBlock) -> None:
        """The meter has each of the block's points but refused reading them together: read
        it in smaller transactions from now on."""
        holes = sum(p.count for p in block.points) < block.count
        step = "no-gaps" if holes else "single"
        if READ_MODES.index(step) > READ_MODES.index(self.read_mode):
            log.info("a meter refused reading %d..%d in one transaction: reading %s from now on",
                     block.start, block.start + block.count - 1, step)
            self.read_mode = step
            self.dirty = True

    def checked(self, now: float) -> None:
        self.checked_at = now
        self.dirty = True

    def reset(self, serial: str = "") -> None:
        """A new meter (replaced, or another serial answers): learn it from scratch."""
        if self.missing or self.read_mode != "merged" or serial != self.serial:
            self.missing.clear()
            self.read_mode = "merged"
            self.checked_at = 0.0
            self.serial = serial
            self.dirty = True
