"""The window's copy of the live state: the last known record of every meter and bus.

The bridge applies each batch here (on the UI thread) before telling the views, so a view that
appears later (a room selected now) finds the current values at once. Qt-free.
"""

from __future__ import annotations

import dataclasses
import enum
from collections.abc import Iterable

from app.core.live import BusLive, LiveBatch, MeterLive
from app.i18n import N_

#: Below this balance a room shows the low-balance mark (10 yuan).
LOW_BALANCE_CENTS = 1000


class MeterState(enum.Enum):
    """What a room's icon says, most urgent first."""

    NO_DATA = N_("never read")
    OFFLINE = N_("offline")
    STALE = N_("stale")  # an old reading, no fresh one yet (at start)
    TRIPPED = N_("tripped")
    KEEP_POWER = N_("keep power")
    LOW_BALANCE = N_("low balance")
    ONLINE = N_("online")


#: Each state's place from most to least urgent (for sorting).
STATE_ORDER = {s: i for i, s in enumerate(MeterState)}


def meter_state(live: MeterLive | None, balance_cents: int | None = None,
                stale: bool = False) -> MeterState:
    """What a meter's icon says. ``balance_cents``: the room's ledger balance when it has an
    open account (the money that counts), else the meter's own money decides "low".
    ``stale``: its values are an old reading that no fresh one has replaced yet."""
    if live is None or (live.values is None and not live.online):
        return MeterState.NO_DATA
    if not live.online:
        return MeterState.OFFLINE
    if stale:
        return MeterState.STALE
    v = live.values
    if v is None:
        return MeterState.ONLINE
    if v.relay_closed is False:
        return MeterState.TRIPPED
    if v.keep_power:
        return MeterState.KEEP_POWER
    money = balance_cents if balance_cents is not None else v.remaining_money_cents
    if money is not None and money < LOW_BALANCE_CENTS:
        return MeterState.LOW_BALANCE
    return MeterState.ONLINE


def worst(states: Iterable[MeterState]) -> MeterState:
    return min(states, key=STATE_ORDER.__getitem__, default=MeterState.NO_DATA)


class LiveStore:
    def __init__(self) -> None:
        self.meters: dict[int, MeterLive] = {}
        self.buses: dict[int, BusLive] = {}
        #: meters whose values are an old reading no fresh one has replaced yet
        self.stale: set[int] = set()

    def mark_stale(self, read_before: float) -> int:
        """At start: every meter last read before ``read_before`` is stale until a fresh read
        arrives. Returns how many."""
        self.stale = {m.meter_id for m in self.meters.values()
                      if m.values is not None and m.values.read_at < read_before}
        return len(self.stale)

    def is_stale(self, meter_id: int) -> bool:
        return meter_id in self.stale

    def meter(self, meter_id: int) -> MeterLive | None:
        return self.meters.get(meter_id)

    def apply(self, batch: LiveBatch) -> LiveBatch:
        """Merge ``batch``; return only what changed. A failed poll (no values) keeps the last
        values and changes only ``online``."""
        changed_meters: dict[int, MeterLive] = {}
        for m in batch.meters:
            prev = self.meters.get(m.meter_id)
            if m.values is not None and m.meter_id in self.stale \
                    and (prev is None or prev.values is None
                         or m.values.read_at > prev.values.read_at):
                self.stale.discard(m.meter_id)  # a fresh read
                changed_meters[m.meter_id] = m
            if m.values is None and prev is not None:
                m = dataclasses.replace(prev, online=m.online)
            if m != prev:
                self.meters[m.meter_id] = m
                changed_meters[m.meter_id] = m
        changed_buses: dict[int, BusLive] = {}
        for b in batch.buses:
            if self.buses.get(b.bus_id) != b:
                self.buses[b.bus_id] = b
                changed_buses[b.bus_id] = b
        return LiveBatch(list(changed_meters.values()), list(changed_buses.values()))

    def full_cycle_s(self) -> float | None:
        """How long reading the whole campus takes: buses run in parallel, so the slowest."""
        cycles = [b.last_cycle_s for b in self.buses.values() if b.last_cycle_s is not None]
        return max(cycles) if cycles else None

    def last_cycle_at(self) -> float | None:
        times = [b.last_cycle_at for b in self.buses.values() if b.last_cycle_at is not None]
        return max(times) if times else None

    def healthy_buses(self, bus_ids: Iterable[int]) -> int:
        return sum(1 for b in bus_ids if (s := self.buses.get(b)) is not None and s.healthy)
