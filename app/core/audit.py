"""The audit log: who did what, when, to what, with before and after, hash-chained.

Every act that changes money, power or settings, every sign-in and failed sign-in, and every
refused act appends one entry, in the same transaction as the act (an act rolled back leaves no
entry; an entry never describes something that did not happen). The automatic bookkeeping of
the reading service (billing every minute, the meters' readings) is not an act: the ledger and
the readings are their own record.

Each entry's ``hash`` is SHA-256 over the previous entry's hash and the entry's own fields in a
canonical form; the first entry's previous hash is 64 zeros. The newest entry's number and
hash are also kept beside the log (``Meta.audit_head``), so cutting off the tail is found as
well. ``verify`` walks the chain and names the first entry that does not fit: an edited field,
a deleted or inserted row, two rows swapped. The table is append-only (database triggers); the
chain is what catches someone who drops the triggers and edits the file.
"""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from app.core.progress import Progress
from app.i18n import N_, _
from app.storage import operators as store
from app.storage.db import write_transaction
from app.storage.operators import AuditRow

if TYPE_CHECKING:
    from app.core.operators import Operator, Permission

GENESIS = "0" * 64

#: What each kind of entry is called where people read the log.
KIND_TEXT = {
    "sign_in": N_("signed in"), "sign_in_failed": N_("failed sign-in"),
    "denied": N_("refused: not allowed"), "first_administrator": N_("first administrator"),
    "operator_add": N_("operator added"), "operator_disable": N_("operator disabled"),
    "operator_enable": N_("operator enabled"), "operator_role": N_("operator's role changed"),
    "password_change": N_("password changed"),
    "password_change_failed": N_("password change refused"),
    "password_reset": N_("initial password given"), "recharge": N_("recharge"),
    "import_payments": N_("payments imported"), "refund": N_("refund"),
    "correction": N_("correction"), "account_open": N_("account opened"),
    "account_close": N_("account closed"), "move_in": N_("moved in"),
    "move_out": N_("moved out"), "tariff_set": N_("tariff changed"),
    "setting": N_("setting changed"), "backup": N_("backup"), "restore": N_("restore"),
    "backup_failed": N_("backup failed"), "account_mode": N_("account's money moved"),
    "sms_template": N_("SMS template changed"), "report": N_("report made"),
    "control": N_("trip, close or keep power"), "control_result": N_("control outcome"),
    "alarm_ack": N_("alarm acknowledged"), "power_limit": N_("power limit set"),
    "malicious_load_rule": N_("malicious-load rule set"),
    "appliance_allow": N_("appliance allowed"), "appliance_remove": N_("appliance removed"),
    "schedule_save": N_("schedule saved"), "schedule_delete": N_("schedule removed"),
    "schedule_exception": N_("schedule exception set"),
    "schedule_exception_remove": N_("schedule exception removed"),
    "plan_save": N_("limiting plan saved"), "plan_apply": N_("limiting plan applied"),
    "plan_undo": N_("limiting plan undone"),
    "bus_add": N_("bus added"), "bus_edit": N_("bus changed"), "bus_remove": N_("bus removed"),
    "meter_add": N_("meter added"), "meter_edit": N_("meter changed"),
    "meter_move": N_("meter moved"), "meter_remove": N_("meter removed"),
    "bus_take": N_("bus taken from its poller"), "bus_baud": N_("bus speed changed"),
    "meter_setting": N_("meter setting changed"),
    "meter_setting_failed": N_("meter setting not taken"),
    "raw_write": N_("registers written"), "commissioning": N_("bus commissioned"),
    "resident_sign_in": N_("resident signed in"),
    "resident_sign_in_failed": N_("resident's failed sign-in"),
    "resident_password": N_("resident's initial password given"),
    "resident_password_change": N_("resident changed their password"),
    "resident_password_failed": N_("resident's password change refused"),
    "resident_request": N_("resident's request"),
    "resident_request_answer": N_("resident's request answered"),
}


def kind_text(kind: str) -> str:
    label = KIND_TEXT.get(kind)
    return _(label) if label else kind


#: What the fields of an entry's before and after are called where people read them.
FIELD_TEXT = {
    "amount_cents": N_("amount"), "balance_cents": N_("balance"), "method": N_("method"),
    "receipt": N_("receipt"), "txn": N_("booking"), "kind": N_("kind"), "role": N_("role"),
    "disabled": N_("disabled"), "must_change": N_("must change the password"),
    "mode": N_("money kept by"), "account": N_("account"), "tariff_group": N_("tariff group"),
    "opening_cents": N_("opening balance"), "disposition": N_("balance is"),
    "price": N_("price"), "starts_on": N_("from"), "group": N_("group"),
}


def _value_text(key: str, value: Any) -> str:
    if value is None:
        return "–"
    if key.endswith("_cents") and isinstance(value, int):
        from app.core.money import format_cents

        return format_cents(value, symbol=True)
    if isinstance(value, bool):
        return _("yes") if value else _("no")
    return str(value)


def change_text(before: str, after: str) -> str:
    """An entry's before and after as people read them: "balance: ¥0.00 → ¥50.00, ..."."""
    try:
        old = json.loads(before) if before else {}
        new = json.loads(after) if after else {}
    except ValueError:
        return f"{before} → {after}" if before and after else before or after
    if not isinstance(old, dict) or not isinstance(new, dict):
        return f"{before} → {after}" if before and after else before or after
    parts = []
    for key in [*old, *(k for k in new if k not in old)]:
        label = FIELD_TEXT.get(key)
        name = _(label) if label else key
        if key in old and key in new:
            if old[key] == new[key]:
                continue
            parts.append(f"{name}: {_value_text(key, old[key])} → {_value_text(key, new[key])}")
        elif key in new:
            parts.append(f"{name}: {_value_text(key, new[key])}")
        else:
            parts.append(f"{name}: {_value_text(key, old[key])} → –")
    return ", ".join(parts)


def detail_text(kind: str, target: str, detail: str) -> str:
    """An entry's detail as people read it (a refusal names the permission in words)."""
    if kind == "denied":
        from app.core.operators import Permission, permission_text

        try:
            return _("may not {what}").format(what=permission_text(Permission(target)))
        except ValueError:
            return detail
    return detail


def _json(value: Any) -> str:
    if value is None or value == "":
        return ""
    return json.dumps(value, ensure_ascii=False, sort_keys=True, separators=(",", ":"),
                      default=str)


def entry_hash(prev_hash: str, number: int, t: float, operator: str, kind: str, target: str,
               node_id: int | None, before: str, after: str, detail: str) -> str:
    """The chain's hash of one entry (its fields in a fixed order, JSON-encoded)."""
    body = json.dumps([number, repr(float(t)), operator, kind, target, node_id, before, after,
                       detail], ensure_ascii=False, separators=(",", ":"))
    return hashlib.sha256((prev_hash + body).encode("utf-8")).hexdigest()


def record(operator: str, kind: str, *, target: str = "", node_id: int | None = None,
           before: Any = None, after: Any = None, detail: str = "",
           t: float | None = None) -> int:
    """Append one entry (inside the caller's transaction when there is one). Returns its
    number."""
    t = time.time() if t is None else t
    before_s, after_s = _json(before), _json(after)
    with write_transaction():
        last = store.last_audit()
        number = 1 if last is None else last.id + 1
        prev = GENESIS if last is None else last.hash
        digest = entry_hash(prev, number, t, operator, kind, target, node_id, before_s,
                            after_s, detail)
        store.insert_audit(AuditRow(number, t, operator, kind, target, node_id, before_s,
                                    after_s, detail, prev, digest))
    return number


@dataclass
class Act:
    """The audit entry of an act being done: the body of ``act`` fills in what it changed."""

    target: str = ""
    node_id: int | None = None
    before: Any = None
    after: Any = None
    detail: str = ""


@contextmanager
def act(operator: Operator, permission: Permission, kind: str, *, target: str = "",
        node_id: int | None = None, before: Any = None) -> Iterator[Act]:
    """Check the role, then do the act and its audit entry in one write transaction::

        with act(op, Permission.REFUND, "refund", target=acct.number) as a:
            ...  # the work
            a.after = {"balance_cents": new_balance}
    """
    from app.core.operators import require

    require(operator, permission)
    entry = Act(target, node_id, before)
    with write_transaction():
        yield entry
        record(operator.name, kind, target=entry.target, node_id=entry.node_id,
               before=entry.before, after=entry.after, detail=entry.detail)


# -- checking the chain ------------------------------------------------------------------------
@dataclass(frozen=True)
class ChainCheck:
    ok: bool
    entries: int
    broken_at: int | None = None  # the first entry that does not fit
    problem: str = ""

    def message(self) -> str:
        if self.ok:
            return _("the audit log is whole: {n} entries").format(n=self.entries)
        return _("the audit log is broken at entry {n}: {problem}").format(
            n=self.broken_at, problem=self.problem)


def verify(progress: Progress | None = None) -> ChainCheck:
    """Walk the whole chain; the first entry that does not fit is named."""
    prev, expected, count = GENESIS, 1, 0
    for row in store.audit_rows():
        if row.id != expected:
            if row.id > expected:
                return ChainCheck(False, count, expected,
                                  _("entries {first} to {last} are missing").format(
                                      first=expected, last=row.id - 1))
            return ChainCheck(False, count, row.id, _("the entry is out of order"))
        if row.prev_hash != prev:
            return ChainCheck(False, count, row.id,
                              _("it does not follow the entry before it (deleted, inserted "
                                "or moved rows)"))
        digest = entry_hash(row.prev_hash, row.id, row.t, row.operator, row.kind, row.target,
                            row.node_id, row.before, row.after, row.detail)
        if digest != row.hash:
            return ChainCheck(False, count, row.id, _("its content was changed"))
        prev, expected, count = row.hash, expected + 1, count + 1
        if progress is not None and count % 1000 == 0:
            progress.step(count, 0)
    head = store.audit_head()
    if head is not None and (head[0] != count or head[1] != prev):
        if head[0] > count:
            return ChainCheck(False, count, count + 1,
                              _("entries {first} to {last} are missing at the end").format(
                                  first=count + 1, last=head[0]))
        if head[0] < count:
            return ChainCheck(False, count, head[0] + 1,
                              _("entries from here on were not written by VoltKeeper (the log "
                                "ended at entry {last})").format(last=head[0]))
        return ChainCheck(False, count, count,
                          _("the log does not end where it was last written"))
    if head is None and count:
        return ChainCheck(False, count, count, _("the record of the log's end is missing"))
    return ChainCheck(True, count)


# -- reading the log ---------------------------------------------------------------------------
@dataclass(frozen=True)
class AuditFilter:
    since: float | None = None
    until: float | None = None
    operator: str | None = None
    kind: str | None = None
    node_ids: list[int] | None = None
    text: str | None = None
    limit: int = 10_000


#: An entry as the log holds it (its number is ``id``; its hashes come along, harmless).
AuditEntryView = AuditRow


@dataclass(frozen=True)
class AuditPage:
    entries: list[AuditEntryView] = field(default_factory=list)
    kinds: list[str] = field(default_factory=list)
    operators: list[str] = field(default_factory=list)
    check: ChainCheck | None = None


def entries(operator: Operator, flt: AuditFilter | None = None) -> list[AuditEntryView]:
    """The entries that match, newest first (the audit view, ``audit list``)."""
    from app.core.operators import Permission, require

    require(operator, Permission.VIEW_AUDIT)
    flt = flt or AuditFilter()
    return store.find_audit(
        since=flt.since, until=flt.until, operator=flt.operator, kind=flt.kind,
        node_ids=flt.node_ids, text=flt.text, limit=flt.limit)


def page(operator: Operator, flt: AuditFilter | None = None, *,
         check: bool = True) -> AuditPage:
    """What the audit view shows: the entries, the filter's choices and the chain's state."""
    rows = entries(operator, flt)
    return AuditPage(rows, store.audit_kinds(), store.audit_operators(),
                     verify() if check else None)


def export_xlsx(rows: list[AuditEntryView], path: Path) -> Path:
    """The entries as an Excel sheet (times as dates, a frozen header)."""
    from datetime import datetime

    from openpyxl import Workbook

    wb = Workbook(write_only=False)
    ws = wb.active
    ws.title = _("Audit log")
    headers = [_("No."), _("Time"), _("Operator"), _("Act"), _("Target"), _("Before"),
               _("After"), _("Detail")]
    ws.append(headers)
    for r in rows:
        ws.append([r.id, datetime.fromtimestamp(r.t), r.operator, r.kind, r.target,
                   r.before, r.after, r.detail])
    ws.freeze_panes = "A2"
    for row in ws.iter_rows(min_row=2, min_col=2, max_col=2):
        for c in row:
            c.number_format = "yyyy-mm-dd hh:mm:ss"
    for col, width in zip("ABCDEFGH", (8, 20, 14, 18, 28, 30, 30, 40), strict=True):
        ws.column_dimensions[col].width = width
    path = Path(path)
    wb.save(path)
    return path
