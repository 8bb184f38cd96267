"""What each meter lacks and the bad values it sent; the polling threads' states; and the two
writes the station makes when a meter turns out to lack the recharge token registers (its
account's money mode, its tokens still waiting). Rows in, plain records out."""

from __future__ import annotations

import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from peewee import EXCLUDED

from app.storage.models import Account, MeterCapability, Outbox, WorkerState


@dataclass(frozen=True)
class CapabilityUpdate:
    """What polling learned about a meter: the points it refuses and how it must be read."""

    missing: tuple[str, ...]
    read_mode: str
    checked_at: float
    serial: str = ""


@dataclass(frozen=True)
class CapabilityRow:
    meter_id: int
    missing: tuple[str, ...]
    read_mode: str
    checked_at: float | None
    serial: str
    bad_values: int
    last_bad: str
    last_bad_at: float | None


@dataclass(frozen=True)
class WorkerRow:
    name: str
    state: str  # running, error, stopped
    error: str
    restarts: int
    last_error_at: float | None
    changed_at: float


def _names(text: str) -> tuple[str, ...]:
    return tuple(n for n in (text or "").split(",") if n)


def _row(r: dict) -> CapabilityRow:
    return CapabilityRow(r["meter"], _names(r["missing"]), r["read_mode"], r["checked_at"],
                         r["serial"], r["bad_values"], r["last_bad"], r["last_bad_at"])


def load(meter_ids: Iterable[int] | None = None) -> dict[int, CapabilityRow]:
    q = MeterCapability.select()
    if meter_ids is not None:
        q = q.where(MeterCapability.meter.in_(list(meter_ids)))
    return {r["meter"]: _row(r) for r in q.dicts()}


def get(meter_id: int) -> CapabilityRow | None:
    return load([meter_id]).get(meter_id)


def store_updates(updates: Mapping[int, CapabilityUpdate], t: float | None = None) -> None:
    """Store what polling learned (inside the caller's transaction)."""
    if not updates:
        return
    t = time.time() if t is None else t
    C = MeterCapability
    C.insert_many([{"meter": m, "missing": ",".join(u.missing), "read_mode": u.read_mode,
                    "checked_at": u.checked_at, "serial": u.serial, "updated_at": t}
                   for m, u in updates.items()]).on_conflict(
        conflict_target=[C.meter],
        update={C.missing: EXCLUDED.missing, C.read_mode: EXCLUDED.read_mode,
                C.checked_at: EXCLUDED.checked_at, C.serial: EXCLUDED.serial,
                C.updated_at: EXCLUDED.updated_at}).execute()


def count_bad_values(counts: Mapping[int, tuple[int, str, float]]) -> None:
    """Add bad readings per meter: (how many, the last one as "point: why", when)."""
    if not counts:
        return
    C = MeterCapability
    C.insert_many([{"meter": m, "bad_values": n, "last_bad": last[:500], "last_bad_at": t,
                    "updated_at": t} for m, (n, last, t) in counts.items()]).on_conflict(
        conflict_target=[C.meter],
        update={C.bad_values: C.bad_values + EXCLUDED.bad_values,
                C.last_bad: EXCLUDED.last_bad, C.last_bad_at: EXCLUDED.last_bad_at,
                C.updated_at: EXCLUDED.updated_at}).execute()


# -- the polling process's threads -----------------------------------------------------------
def store_worker_states(rows: Iterable[WorkerRow]) -> None:
    rows = list(rows)
    if rows:
        WorkerState.insert_many([{"name": r.name, "state": r.state, "error": r.error[:2000],
                                  "restarts": r.restarts, "last_error_at": r.last_error_at,
                                  "changed_at": r.changed_at} for r in rows]) \
            .on_conflict_replace().execute()


def worker_states() -> list[WorkerRow]:
    return [WorkerRow(r.name, r.state, r.error, r.restarts, r.last_error_at, r.changed_at)
            for r in WorkerState.select().order_by(WorkerState.name)]


# -- a meter without the token registers ------------------------------------------------------
def set_account_mode(account_id: int, mode: str) -> None:
    Account.update(mode=mode).where(Account.id == account_id).execute()


def settle_pending_tokens(meter_id: int, note: str) -> list[int]:
    """Recharge tokens still waiting for ``meter_id`` are not sent: their money stays in the
    ledger's balance, which the station now keeps (state ``booked``). Returns their ids."""
    ids = [o.id for o in Outbox.select(Outbox.id).where(
        (Outbox.meter == meter_id) & (Outbox.state == "pending")
        & (Outbox.action == "recharge"))]
    if ids:
        Outbox.update(state="booked", last_error=note, updated_at=time.time()).where(
            Outbox.id.in_(ids)).execute()
    return ids
