"""Writing poll outcomes in batches, and reading back latest values, energy and samples.

The reading service hands ``PollOutcome`` records to one writer, which commits a whole batch in
one transaction (``write_batch``): one fsync per batch, not per value.

A read travels as the driver's ``MeterValues`` record. Its mapping to the ``LatestReading``
columns (integer Wh, cents, flags as text) lives here only: ``_latest_columns`` writes it and
``_values_from_row`` reads it back, and ``latest()`` returns typed ``LatestRow`` records.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path

from peewee import EXCLUDED, fn

from app.drivers.meter_values import MeterValues
from app.storage import capabilities
from app.storage.capabilities import CapabilityUpdate, WorkerRow
from app.storage.models import (
    BusState,
    CommStats,
    DailyEnergy,
    IntervalEnergy,
    LatestReading,
    MeterEvent,
    Sample,
    database,
)

log = logging.getLogger("voltkeeper.storage.readings")

INTERVAL_S = 900
#: What an INTEGER column holds (SQLite: 64-bit signed).
_INT64 = (-(1 << 63), (1 << 63) - 1)
#: Raw samples older than this are pruned (live charts show the last hour).
SAMPLE_WINDOW_S = 65 * 60
#: A meter's reads are kept as samples at most this often.
SAMPLE_EVERY_S = 15.0


@dataclass
class PollOutcome:
    """What one poll of one meter produced, ready to store."""

    meter_id: int
    t: float
    ok: bool
    values: MeterValues | None = None  # what the read returned, when ok
    intervals: list[tuple[int, int]] = field(default_factory=list)  # (start, Wh) to add
    days: list[tuple[str, int]] = field(default_factory=list)  # (YYYY-MM-DD, Wh) to add
    latency_ms: float | None = None
    error_kind: str = ""  # timeout, crc, exception, link
    error: str = ""
    consecutive_failures: int = 0
    online: bool = True
    online_changed: bool = False
    events: list[tuple[str, str]] = field(default_factory=list)  # (kind, detail)
    sample: bool = False  # also keep this read as a raw sample for the live chart
    bad_values: list[tuple[str, str]] = field(default_factory=list)  # (point, why) left out
    capability: CapabilityUpdate | None = None  # what the poll learned about the meter


@dataclass
class BusOutcome:
    bus_id: int
    state: str
    last_cycle_s: float | None = None
    last_cycle_at: float | None = None
    error: str = ""
    meters_online: int = 0
    meters_total: int = 0


@dataclass(frozen=True)
class LatestRow:
    """A meter's stored latest reading: whether it answers now, and its last good values
    (``None`` when it was never read)."""

    meter_id: int
    online: bool
    changed_at: float
    values: MeterValues | None = None


# -- MeterValues <-> LatestReading columns: the one mapping ------------------------------------
def _storable(value: object) -> object:
    """The value if its column can hold it, else None: an integer beyond 64 bits or a float
    that is not finite never reaches the database (it would fail the whole batch)."""
    if isinstance(value, bool) or value is None:
        return value
    if isinstance(value, int):
        return value if _INT64[0] <= value <= _INT64[1] else None
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    return value


def _latest_columns(v: MeterValues) -> dict[str, object]:
    """A read's values as LatestReading columns (energy in Wh, money in cents)."""
    columns = _mapped_columns(v)
    safe = {k: _storable(c) for k, c in columns.items()}
    dropped = [k for k, c in columns.items() if c is not None and safe[k] is None]
    if dropped:
        log.warning("values a column cannot hold were not stored: %s",
                    ", ".join(f"{k}={columns[k]!r}" for k in dropped))
    return safe


def _mapped_columns(v: MeterValues) -> dict[str, object]:
    return {
        "read_at": v.read_at, "voltage_v": v.voltage_v, "current_a": v.current_a,
        "power_w": v.active_power_w, "power_factor": v.power_factor,
        "frequency_hz": v.frequency_hz, "energy_wh": v.energy_wh,
        "remaining_energy_wh": v.remaining_energy_wh, "money_cents": v.remaining_money_cents,
        "purchase_count": v.purchase_count, "relay_closed": v.relay_closed,
        "control_mode": v.control_mode, "trip_reason": v.trip_reason,
        "flags": ",".join(sorted(v.flags)),
    }


_LATEST_COLUMNS = tuple(_latest_columns(MeterValues(read_at=0.0)))


def _kwh(wh: int | None) -> Decimal | None:
    """Integer Wh back to exact Decimal kWh."""
    return None if wh is None else Decimal(int(wh)).scaleb(-3)


def _values_from_row(row: dict) -> MeterValues | None:
    """The stored values of a LatestReading row (``None`` if the meter was never read). Only
    what the row holds comes back: the slow settings (price, limits, serial, ...) are not
    stored and are ``None``."""
    if row["read_at"] is None:
        return None
    flags = row["flags"] or ""
    return MeterValues(
        read_at=row["read_at"], voltage_v=row["voltage_v"], current_a=row["current_a"],
        active_power_w=row["power_w"], power_factor=row["power_factor"],
        frequency_hz=row["frequency_hz"], energy_kwh=_kwh(row["energy_wh"]),
        remaining_energy_kwh=_kwh(row["remaining_energy_wh"]),
        remaining_money_cents=row["money_cents"], purchase_count=row["purchase_count"],
        relay_closed=row["relay_closed"], control_mode=row["control_mode"],
        trip_reason=row["trip_reason"], flags=frozenset(f for f in flags.split(",") if f),
    )


#: Columns kept from the last read when a read leaves them out as a bad value: the energy
#: register is where accounting resumes after a restart (``baselines``).
_KEEP_IF_BAD = ("energy_wh",)


def write_batch(outcomes: Sequence[PollOutcome], buses: Sequence[BusOutcome] = (),
                workers: Sequence[WorkerRow] = ()) -> None:
    """Store a batch of poll outcomes, bus states and thread states in one transaction."""
    if not outcomes and not buses and not workers:
        return
    now = time.time()
    latest_rows, offline_ids, online_ids = [], [], []
    interval_rows: dict[tuple[int, int], int] = {}
    day_rows: dict[tuple[int, str], int] = {}
    sample_rows, stats_rows, event_rows = [], [], []
    learned: dict[int, CapabilityUpdate] = {}
    bad: dict[int, tuple[int, str, float]] = {}
    for o in outcomes:
        if o.capability is not None:
            learned[o.meter_id] = o.capability
        if o.bad_values:
            n = bad.get(o.meter_id, (0, "", 0.0))[0] + len(o.bad_values)
            bad[o.meter_id] = (n, "; ".join(f"{p}: {why}" for p, why in o.bad_values), o.t)
        if o.ok and o.values is not None:
            row = _latest_columns(o.values)
            row.update(meter=o.meter_id, online=True, changed_at=now)
            latest_rows.append(row)
            if o.sample:
                sample_rows.append({"meter": o.meter_id, "t": o.t,
                                    "power_w": o.values.active_power_w,
                                    "voltage_v": o.values.voltage_v,
                                    "current_a": o.values.current_a})
        elif o.online_changed and not o.online:
            offline_ids.append(o.meter_id)
        if o.ok and o.online_changed:
            online_ids.append(o.meter_id)
        for start, wh in o.intervals:
            key = (o.meter_id, start)
            interval_rows[key] = interval_rows.get(key, 0) + wh
        for day, wh in o.days:
            dkey = (o.meter_id, day)
            day_rows[dkey] = day_rows.get(dkey, 0) + wh
        stats_rows.append({
            "meter": o.meter_id, "reads": 1, "failures": 0 if o.ok else 1,
            "timeouts": 1 if o.error_kind == "timeout" else 0,
            "crc_errors": 1 if o.error_kind == "crc" else 0,
            "exceptions": 1 if o.error_kind == "exception" else 0,
            "consecutive_failures": o.consecutive_failures,
            "last_latency_ms": o.latency_ms, "worst_latency_ms": o.latency_ms,
            "last_error": o.error,
            "offline_since": None if o.online else o.t,
        })
        event_rows.extend({"meter": o.meter_id, "t": o.t, "kind": k, "detail": d}
                          for k, d in o.events)
    with database.atomic():
        if latest_rows:
            update = {getattr(LatestReading, c): getattr(EXCLUDED, c)
                      for c in (*_LATEST_COLUMNS, "online", "changed_at")}
            for c in _KEEP_IF_BAD:
                update[getattr(LatestReading, c)] = fn.COALESCE(getattr(EXCLUDED, c),
                                                                getattr(LatestReading, c))
            LatestReading.insert_many(latest_rows).on_conflict(
                conflict_target=[LatestReading.meter], update=update).execute()
        if offline_ids:
            LatestReading.insert_many(
                [{"meter": m, "online": False, "changed_at": now} for m in offline_ids]
            ).on_conflict(conflict_target=[LatestReading.meter],
                          update={LatestReading.online: False,
                                  LatestReading.changed_at: now}).execute()
        if interval_rows:
            IntervalEnergy.insert_many(
                [{"meter": m, "start": s, "energy_wh": wh}
                 for (m, s), wh in interval_rows.items()]
            ).on_conflict(conflict_target=[IntervalEnergy.meter, IntervalEnergy.start],
                          update={IntervalEnergy.energy_wh:
                                  IntervalEnergy.energy_wh + EXCLUDED.energy_wh}).execute()
        if day_rows:
            DailyEnergy.insert_many(
                [{"meter": m, "day": d, "energy_wh": wh} for (m, d), wh in day_rows.items()]
            ).on_conflict(conflict_target=[DailyEnergy.meter, DailyEnergy.day],
                          update={DailyEnergy.energy_wh:
                                  DailyEnergy.energy_wh + EXCLUDED.energy_wh}).execute()
        if sample_rows:
            Sample.insert_many(sample_rows).on_conflict_ignore().execute()
        if stats_rows:
            _upsert_stats(stats_rows)
        if event_rows:
            MeterEvent.insert_many(event_rows).execute()
        capabilities.store_updates(learned, now)
        capabilities.count_bad_values(bad)
        capabilities.store_worker_states(workers)
        for b in buses:
            BusState.insert(bus=b.bus_id, state=b.state, last_cycle_s=b.last_cycle_s,
                            last_cycle_at=b.last_cycle_at, error=b.error,
                            meters_online=b.meters_online, meters_total=b.meters_total) \
                .on_conflict_replace().execute()


def _upsert_stats(rows: list[dict]) -> None:
    C = CommStats
    C.insert_many(rows).on_conflict(
        conflict_target=[C.meter],
        update={
            C.reads: C.reads + EXCLUDED.reads,
            C.failures: C.failures + EXCLUDED.failures,
            C.timeouts: C.timeouts + EXCLUDED.timeouts,
            C.crc_errors: C.crc_errors + EXCLUDED.crc_errors,
            C.exceptions: C.exceptions + EXCLUDED.exceptions,
            C.consecutive_failures: EXCLUDED.consecutive_failures,
            C.last_latency_ms: fn.COALESCE(EXCLUDED.last_latency_ms, C.last_latency_ms),
            C.worst_latency_ms: fn.MAX(fn.COALESCE(C.worst_latency_ms, 0),
                                       fn.COALESCE(EXCLUDED.worst_latency_ms, 0)),
            C.last_error: fn.IIF(EXCLUDED.last_error == "", C.last_error,
                                 EXCLUDED.last_error),  # the last error, kept
            C.offline_since: fn.IIF(EXCLUDED.offline_since.is_null(), None,
                                    fn.COALESCE(C.offline_since, EXCLUDED.offline_since)),
        },
    ).execute()


def checkpoint_wal(truncate_above: int) -> bool:
    """Truncate the write-ahead log when it grew beyond ``truncate_above`` bytes (readers kept
    it from being checkpointed while writing was blocked). True when it was truncated."""
    db = database.obj
    wal = Path(f"{db.database}-wal") if db is not None else None
    if wal is None or not wal.exists() or wal.stat().st_size <= truncate_above:
        return False
    size = wal.stat().st_size
    busy, _log_pages, _done = database.execute_sql("PRAGMA wal_checkpoint(TRUNCATE)").fetchone()
    log.info("write-ahead log of %.0f MB checkpointed%s", size / 1e6,
             " in part (readers still use it)" if busy else "")
    return not busy


def prune_samples(older_than: float | None = None) -> int:
    cutoff = older_than if older_than is not None else time.time() - SAMPLE_WINDOW_S
    return Sample.delete().where(Sample.t < cutoff).execute()


# -- reading back ----------------------------------------------------------------------------
def latest(meter_ids: Iterable[int] | None = None, changed_since: float | None = None
           ) -> list[LatestRow]:
    """The stored latest reading of the meters (all, or ``meter_ids``), or of those whose row
    changed after ``changed_since``."""
    q = LatestReading.select()
    if meter_ids is not None:
        q = q.where(LatestReading.meter.in_(list(meter_ids)))
    if changed_since is not None:
        q = q.where(LatestReading.changed_at > changed_since)
    return [LatestRow(row["meter"], bool(row["online"]), row["changed_at"], _values_from_row(row))
            for row in q.dicts()]


def baselines() -> dict[int, tuple[int, float]]:
    """Each meter's last stored energy register (Wh) and its time: where accounting resumes."""
    q = LatestReading.select(LatestReading.meter, LatestReading.energy_wh,
                             LatestReading.read_at).where(LatestReading.energy_wh.is_null(False))
    return {m: (e, t) for m, e, t in q.tuples()}


def interval_energy(meter_id: int, start: int | None = None, end: int | None = None
                    ) -> list[tuple[int, int]]:
    q = IntervalEnergy.select(IntervalEnergy.start, IntervalEnergy.energy_wh) \
        .where(IntervalEnergy.meter == meter_id)
    if start is not None:
        q = q.where(IntervalEnergy.start >= start)
    if end is not None:
        q = q.where(IntervalEnergy.start < end)
    return list(q.order_by(IntervalEnergy.start).tuples())


def daily_energy(meter_id: int) -> list[tuple[str, int]]:
    q = DailyEnergy.select(DailyEnergy.day, DailyEnergy.energy_wh) \
        .where(DailyEnergy.meter == meter_id).order_by(DailyEnergy.day)
    return list(q.tuples())


def samples(meter_id: int, since: float) -> list[tuple[float, float | None]]:
    q = Sample.select(Sample.t, Sample.power_w).where(
        (Sample.meter == meter_id) & (Sample.t >= since)).order_by(Sample.t)
    return list(q.tuples())


def comm_stats(meter_ids: Iterable[int] | None = None) -> dict[int, dict]:
    q = CommStats.select()
    if meter_ids is not None:
        q = q.where(CommStats.meter.in_(list(meter_ids)))
    return {row["meter"]: row for row in q.dicts()}


def bus_states() -> dict[int, dict]:
    return {row["bus"]: row for row in BusState.select().dicts()}


def events(meter_id: int | None = None, kind: str | None = None) -> list[dict]:
    q = MeterEvent.select()
    if meter_id is not None:
        q = q.where(MeterEvent.meter == meter_id)
    if kind is not None:
        q = q.where(MeterEvent.kind == kind)
    return list(q.order_by(MeterEvent.t).dicts())
