"""Alarm rows: inserted by ``core/alarms.raise_alarm`` only, read back as records."""

from __future__ import annotations

from dataclasses import dataclass

from app.storage.models import Alarm


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


def _record(a: Alarm) -> AlarmRecord:
    return AlarmRecord(a.id, a.t, a.kind, a.level, a.meter_id, a.account_id, a.message, a.data,
                       a.cleared_at)


def open_alarm_exists(kind: str, meter_id: int | None, account_id: int | None) -> bool:
    q = Alarm.select().where((Alarm.kind == kind) & Alarm.cleared_at.is_null())
    q = q.where(Alarm.meter.is_null() if meter_id is None else Alarm.meter == meter_id)
    q = q.where(Alarm.account.is_null() if account_id is None else Alarm.account == account_id)
    return q.exists()


def insert_alarm(t: float, kind: str, level: int, meter_id: int | None,
                 account_id: int | None, message: str, data: str) -> int:
    return Alarm.insert(t=t, kind=kind, level=level, meter=meter_id, account=account_id,
                        message=message, data=data).execute()


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
