"""Operators, the audit log's rows and station settings: rows in, records out.

Nothing here decides anything (who may do what, how the chain is computed): that is
``core/operators.py`` and ``core/audit.py``.
"""

from __future__ import annotations

from dataclasses import dataclass

from peewee import fn

from app.storage.models import AuditEntry, Meta, Operator, Setting

AUDIT_HEAD = "audit_head"


@dataclass(frozen=True)
class OperatorRow:
    id: int
    name: str
    role: str
    password_hash: str
    must_change_password: bool
    disabled: bool
    failed_attempts: int
    locked_until: float | None
    created_at: float
    created_by: str
    last_sign_in_at: float | None


@dataclass(frozen=True)
class AuditRow:
    id: int
    t: float
    operator: str
    kind: str
    target: str
    node_id: int | None
    before: str
    after: str
    detail: str
    prev_hash: str
    hash: str


def _operator(o: Operator) -> OperatorRow:
    return OperatorRow(o.id, o.name, o.role, o.password_hash, o.must_change_password,
                       o.disabled, o.failed_attempts, o.locked_until, o.created_at,
                       o.created_by, o.last_sign_in_at)


def operator_by_name(name: str) -> OperatorRow | None:
    o = Operator.get_or_none(Operator.name == name)
    return _operator(o) if o else None


def operators() -> list[OperatorRow]:
    return [_operator(o) for o in Operator.select().order_by(Operator.name)]


def count_operators(active_role: str | None = None) -> int:
    q = Operator.select(fn.COUNT(Operator.id))
    if active_role is not None:
        q = q.where((Operator.role == active_role) & (Operator.disabled == False))  # noqa: E712
    return q.scalar() or 0


def insert_operator(name: str, role: str, password_hash: str, must_change: bool,
                    created_by: str, t: float) -> int:
    return Operator.insert(name=name, role=role, password_hash=password_hash,
                           must_change_password=must_change, created_at=t,
                           created_by=created_by, password_changed_at=t).execute()


def update_operator(operator_id: int, **fields: object) -> None:
    Operator.update({getattr(Operator, k): v for k, v in fields.items()}).where(
        Operator.id == operator_id).execute()


# -- the audit log -----------------------------------------------------------------------------
def _audit(a: AuditEntry) -> AuditRow:
    return AuditRow(a.id, a.t, a.operator, a.kind, a.target, a.node, a.before, a.after,
                    a.detail, a.prev_hash, a.hash)


def last_audit() -> AuditRow | None:
    a = AuditEntry.select().order_by(AuditEntry.id.desc()).first()
    return _audit(a) if a else None


def insert_audit(row: AuditRow) -> None:
    AuditEntry.insert(id=row.id, t=row.t, operator=row.operator, kind=row.kind,
                      target=row.target, node=row.node_id, before=row.before, after=row.after,
                      detail=row.detail, prev_hash=row.prev_hash, hash=row.hash).execute()
    Meta.insert(key=AUDIT_HEAD, value=f"{row.id}:{row.hash}").on_conflict_replace().execute()


def audit_head() -> tuple[int, str] | None:
    """The last entry's number and hash as recorded beside the log (to find a cut-off tail)."""
    row = Meta.get_or_none(Meta.key == AUDIT_HEAD)
    if row is None:
        return None
    number, _sep, digest = row.value.partition(":")
    return int(number), digest


def audit_rows(batch: int = 5000):
    """Every entry in order, read in batches (a log of years does not sit in memory)."""
    last = 0
    while True:
        rows = list(AuditEntry.select().where(AuditEntry.id > last)
                    .order_by(AuditEntry.id).limit(batch))
        if not rows:
            return
        for a in rows:
            yield _audit(a)
        last = rows[-1].id


def find_audit(*, since: float | None = None, until: float | None = None,
               operator: str | None = None, kind: str | None = None,
               node_ids: list[int] | None = None, text: str | None = None,
               limit: int = 10_000) -> list[AuditRow]:
    q = AuditEntry.select()
    if since is not None:
        q = q.where(AuditEntry.t >= since)
    if until is not None:
        q = q.where(AuditEntry.t < until)
    if operator:
        q = q.where(AuditEntry.operator == operator)
    if kind:
        q = q.where(AuditEntry.kind == kind)
    if node_ids is not None:
        q = q.where(AuditEntry.node.in_(node_ids))
    if text:
        q = q.where(AuditEntry.target.contains(text) | AuditEntry.detail.contains(text))
    return [_audit(a) for a in q.order_by(AuditEntry.id.desc()).limit(limit)]


def audit_kinds() -> list[str]:
    return [k for (k,) in AuditEntry.select(AuditEntry.kind).distinct()
            .order_by(AuditEntry.kind).tuples()]


def audit_operators() -> list[str]:
    return [k for (k,) in AuditEntry.select(AuditEntry.operator).distinct()
            .order_by(AuditEntry.operator).tuples()]


# -- settings ----------------------------------------------------------------------------------
def setting_values() -> dict[str, str]:
    return {s.key: s.value for s in Setting.select()}


def put_setting(key: str, value: str, by: str, t: float) -> None:
    Setting.insert(key=key, value=value, updated_at=t, updated_by=by).on_conflict_replace() \
        .execute()
