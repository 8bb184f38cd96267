"""Live state for the views: typed records, delivered in batches.

Whether this process polls the buses or another process does (and this one only reads the
database), the views receive the same ``LiveBatch``: a list of changed meters and bus states.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from app.drivers.meter_values import MeterValues


@dataclass(frozen=True)
class MeterLive:
    meter_id: int
    online: bool
    read_at: float | None = None
    voltage_v: float | None = None
    current_a: float | None = None
    power_w: float | None = None
    power_factor: float | None = None
    frequency_hz: float | None = None
    energy_wh: int | None = None
    money_cents: int | None = None
    relay_closed: bool | None = None
    control_mode: str | None = None
    trip_reason: int | None = None
    flags: frozenset[str] = frozenset()

    @property
    def keep_power(self) -> bool:
        return self.control_mode == "keep_power"

    @classmethod
    def from_row(cls, row: dict) -> MeterLive:
        """From a LatestReading row (storage.readings.latest)."""
        flags = row.get("flags") or ""
        return cls(
            meter_id=row["meter_id"], online=bool(row.get("online")), read_at=row.get("read_at"),
            voltage_v=row.get("voltage_v"), current_a=row.get("current_a"),
            power_w=row.get("power_w"), power_factor=row.get("power_factor"),
            frequency_hz=row.get("frequency_hz"), energy_wh=row.get("energy_wh"),
            money_cents=row.get("money_cents"), relay_closed=row.get("relay_closed"),
            control_mode=row.get("control_mode"), trip_reason=row.get("trip_reason"),
            flags=frozenset(f for f in flags.split(",") if f),
        )


@dataclass(frozen=True)
class BusLive:
    bus_id: int
    state: str  # idle, polling, down, standby
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


def wh(kwh) -> int | None:
    """Exact Decimal kWh to integer Wh."""
    return None if kwh is None else int(kwh * 1000)


def latest_columns(v: MeterValues) -> dict[str, object]:
    """A read's values as LatestReading columns (energy in Wh, money in cents)."""
    return {
        "read_at": v.read_at, "voltage_v": v.voltage_v, "current_a": v.current_a,
        "power_w": v.active_power_w, "power_factor": v.power_factor,
        "frequency_hz": v.frequency_hz, "energy_wh": wh(v.energy_kwh),
        "remaining_energy_wh": wh(v.remaining_energy_kwh), "money_cents": v.remaining_money_cents,
        "purchase_count": v.purchase_count, "relay_closed": v.relay_closed,
        "control_mode": v.control_mode,
        "trip_reason": int(v.extra["trip_reason"]) if "trip_reason" in v.extra else None,
        "flags": ",".join(sorted(v.flags)),
    }
