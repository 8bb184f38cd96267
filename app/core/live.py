"""Live state for the views: typed records, delivered in batches.

Whether this process polls the buses or another process does (and this one only reads the
database), the views receive the same ``LiveBatch``: a list of changed meters and bus states.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from app.drivers.meter_values import MeterValues


@dataclass(frozen=True)
class MeterLive:
    """A meter for the views: whether it answers now and its last good read (``values``, the
    driver's record itself; ``None`` in a failed poll's record and for a meter never read)."""

    meter_id: int
    online: bool
    values: MeterValues | None = None


@dataclass(frozen=True)
class BusLive:
    bus_id: int
    state: str  # idle, polling, down, error (its thread failed: see error), standby
    last_cycle_s: float | None = None
    last_cycle_at: float | None = None
    error: str = ""
    meters_online: int = 0
    meters_total: int = 0

    @property
    def healthy(self) -> bool:
        return self.state == "polling" and self.meters_online > 0


@dataclass(frozen=True)
class LiveBatch:
    meters: list[MeterLive] = field(default_factory=list)
    buses: list[BusLive] = field(default_factory=list)



# -- what another process stored (the window that does not poll) ------------------------------
def _bus_live(row: dict) -> BusLive:
    return BusLive(row["bus"], row["state"], row.get("last_cycle_s"), row.get("last_cycle_at"),
                   row.get("error") or "", row.get("meters_online") or 0,
                   row.get("meters_total") or 0)


def stored_snapshot() -> tuple[LiveBatch, float]:
    """Every stored meter and bus state now, and the newest ``changed_at`` seen."""
    from app.storage import readings

    rows = readings.latest()
    since = max((r.changed_at for r in rows), default=0.0)
    buses = [_bus_live(r) for r in readings.bus_states().values()]
    return LiveBatch([MeterLive(r.meter_id, r.online, r.values) for r in rows], buses), since


def stored_since(since: float) -> tuple[list[MeterLive], list[BusLive], float]:
    """The meters stored since ``since`` (an indexed question, not a scan), every bus's
    state, and the newest ``changed_at`` now."""
    from app.storage import readings

    rows = readings.latest(changed_since=since)
    if rows:
        since = max(since, max(r.changed_at for r in rows))
    return ([MeterLive(r.meter_id, r.online, r.values) for r in rows],
            [_bus_live(r) for r in readings.bus_states().values()], since)
