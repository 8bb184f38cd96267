"""Alarm rows: inserted by ``core/alarms.raise_alarm`` only, read back as records."""

from __future__ import annotations

from dataclasses import dataclass

from peewee import JOIN, fn

from app.storage.models import Account, Alarm, Meter


@dataclass(frozen=True)
class AlarmRecord:
    id: int
    t: float
    kind: str
    level: int
    meter_id: int | None
    account_id: int | None
    message: str
    data: str
    cleared_at: float | None
    bus_id: int | None = None
    acknowledged_by: str | None = None
    acknowledged_at: float | None = None
    ack_comment: str = ""


def _record(a: Alarm) -> AlarmRecord:
    return AlarmRecord(a.id, a.t, a.kind, a.level, a.meter_id, a.account_id, a.message, a.data,
                       a.cleared_at, a.bus_id, a.acknowledged_by, a.acknowledged_at,
                       a.ack_comment)


def _same(q, meter_id: int | None, account_id: int | None, bus_id: int | None):
    q = q.where(Alarm.meter.is_null() if meter_id is None else Alarm.meter == meter_id)
    q = q.where(Alarm.account.is_null() if account_id is None else Alarm.account == account_id)
    return q.where(Alarm.bus.is_null() if bus_id is None else Alarm.bus == bus_id)


def open_alarm_exists(kind: str, meter_id: int | None, account_id: int | None,
                      bus_id: int | None = None) -> bool:
    q = Alarm.select().where((Alarm.kind == kind) & Alarm.cleared_at.is_null())
    return _same(q, meter_id, account_id, bus_id).exists()


def insert_alarm(t: float, kind: str, level: int, meter_id: int | None,
                 account_id: int | None, message: str, data: str,
                 bus_id: int | None = None) -> int:
    return Alarm.insert(t=t, kind=kind, level=level, meter=meter_id, account=account_id,
                        message=message, data=data, bus=bus_id).execute()


def clear_alarms(kind: str, t: float, *, meter_id: int | None = None,
                 bus_id: int | None = None, account_id: int | None = None) -> int:
    """Clear the open alarms of a kind for a meter or a bus (the condition is over)."""
    q = Alarm.update(cleared_at=t).where((Alarm.kind == kind) & Alarm.cleared_at.is_null())
    if meter_id is not None:
        q = q.where(Alarm.meter == meter_id)
    if bus_id is not None:
        q = q.where(Alarm.bus == bus_id)
    if account_id is not None:
        q = q.where(Alarm.account == account_id)
    return q.execute()


def clear_ids(alarm_ids: list[int], t: float) -> int:
    if not alarm_ids:
        return 0
    return Alarm.update(cleared_at=t).where(Alarm.id.in_(alarm_ids)
                                            & Alarm.cleared_at.is_null()).execute()


def open_subjects(kind: str) -> set[int]:
    """The meters (or, for a bus's kind, the buses) with an open alarm of ``kind``."""
    col = Alarm.bus if kind == "bus_down" else Alarm.meter
    return {i for (i,) in Alarm.select(col).where(
        (Alarm.kind == kind) & Alarm.cleared_at.is_null() & col.is_null(False)).tuples()}


def acknowledge(alarm_id: int, by: str, comment: str, t: float) -> bool:
    """Acknowledge an alarm (once); False when there is no such alarm or it was already."""
    return Alarm.update(acknowledged_by=by, acknowledged_at=t, ack_comment=comment).where(
        (Alarm.id == alarm_id) & Alarm.acknowledged_by.is_null()).execute() == 1


def get(alarm_id: int) -> AlarmRecord | None:
    a = Alarm.get_or_none(Alarm.id == alarm_id)
    return _record(a) if a is not None else None


def find_alarms(*, open_only: bool = True, kind: str | None = None,
                meter_ids: list[int] | None = None, account_id: int | None = None,
                limit: int = 1000) -> list[AlarmRecord]:
    q = Alarm.select()
    if open_only:
        q = q.where(Alarm.cleared_at.is_null())
    if kind is not None:
        q = q.where(Alarm.kind == kind)
    if meter_ids is not None:
        q = q.where(Alarm.meter.in_(meter_ids))
    if account_id is not None:
        q = q.where(Alarm.account == account_id)
    return [_record(a) for a in q.order_by(Alarm.t.desc()).limit(limit)]


def last_id() -> int:
    """The newest alarm's id (open or cleared), 0 when there is none."""
    return Alarm.select(fn.MAX(Alarm.id)).scalar() or 0


def open_alarms_with_node() -> list[tuple[int | None, AlarmRecord]]:
    """Every open alarm with the node (room or shop) it concerns: its meter's node, or else its
    account's; None for one that concerns no room (a bus's). One query, oldest first."""
    q = (Alarm.select(Alarm, Meter.node.alias("meter_node"), Account.node.alias("account_node"))
         .join(Meter, JOIN.LEFT_OUTER, on=(Alarm.meter == Meter.id))
         .switch(Alarm)
         .join(Account, JOIN.LEFT_OUTER, on=(Alarm.account == Account.id))
         .where(Alarm.cleared_at.is_null())
         .order_by(Alarm.id))
    out = []
    for a in q.objects():
        node = a.meter_node if a.meter_node is not None else a.account_node
        out.append((node, _record(a)))
    return out
