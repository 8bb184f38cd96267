"""Importing payment statements (campus card, WeChat Pay, Alipay, UnionPay) from Excel or CSV.

``statements.read_statement`` reads a file as the channel exported it (preamble, summary,
backticks, GB18030 or UTF-8 with a BOM; see ``app/core/statements.py`` for the layouts and
which column is the id, the amount and the status); ``preview`` checks every row against the
database (unknown room, bad amount, duplicate transaction id in the file or already booked)
without changing anything; ``apply`` books the valid rows in one transaction or none of them.
Rows that are not payments (refunds, closed orders) are ``skipped`` with the reason.

A payment is booked under its key (``core/payment_key.py``), its channel and its id there:
``wechat:4200...`` (WeChat's 微信订单号), ``alipay:2026...`` (Alipay's 支付宝交易号), the
same key the desk books a payment under; the merchant order number goes into the booking's
memo. A payment is booked once, whatever the door: importing the same file twice applies
nothing new, nor does a payment already booked at the desk, and an id booked under another
channel is an error.

Large files: ``preview`` looks the accounts up in two maps (room, student number: exact, after
NFKC) and the bookings in bulk; ``apply`` stages the rows in a temporary table (no lock on the
database) and books them in one short write transaction with set-based SQL
(``storage/imports.py``): 100,000 rows hold the write lock about a second, so polling goes on.
The rows it writes are those booking each row with ``recharge.book_recharge`` would write.

A row that names neither a room nor a student number is looked up by its memo (商品名称,
附加数据, 备注): ``statements.MEMO_PATTERN`` by default ("电费充值-1-101", "学号20240001"),
or the ``memo_pattern`` given; the first place that names exactly one open account wins.
"""

from __future__ import annotations

import gc
import logging
import re
import time
import unicodedata
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from app.core import balances, commands
from app.core.audit import act
from app.core.billing import enforce_station_balance
from app.core.changes import Changes
from app.core.money import parse_amount
from app.core.operators import Operator, Permission, require
from app.core.payment_key import (
    Booked,
    InexactId,
    bookings_of,
    channel_of,
    method_text,
    payment_key,
    split_key,
    transaction_id,
)
from app.core.progress import Progress
from app.core.recharge import MAX_RECHARGE_CENTS, validate_amount
from app.core.statements import (
    MAX_ROWS,
    MEMO_PATTERN,
    PaymentRow,
    Statement,
    memo_candidates,
    read_statement,
)
from app.errors import UserFacingError
from app.i18n import _
from app.storage import accounts as store
from app.storage import holds, imports
from app.storage.accounts import AccountRecord
from app.storage.ledger import METHOD_BOOKS, DuplicateReference
from app.storage.models import database

log = logging.getLogger("voltkeeper.import")

__all__ = ["MAX_ROWS", "METHOD_WORDS", "ImportPreview", "ImportResult", "PaymentRow", "apply",
           "booking_reference", "preview", "read_statement"]

#: What a method column may say, per payment method (compared without case or width).
METHOD_WORDS = {"campus_card": ("campus_card", "campus card", "校园卡", "一卡通", "校园一卡通"),
                "wechat": ("wechat", "wechat pay", "微信", "微信支付"),
                "alipay": ("alipay", "支付宝", "支付宝支付"),
                "unionpay": ("unionpay", "union pay", "银联", "云闪付", "银联云闪付", "银联支付"),
                "cash": ("cash", "现金"),
                "bank": ("bank", "银行", "bank transfer", "银行转账")}


@dataclass
class ImportPreview:
    path: str
    rows: list[PaymentRow] = field(default_factory=list)
    #: the channel the file belongs to, when it says ("" otherwise)
    channel: str = ""
    header_line: int = 1

    @property
    def valid(self) -> list[PaymentRow]:
        return [r for r in self.rows if r.status == "ok"]

    @property
    def errors(self) -> list[PaymentRow]:
        return [r for r in self.rows if r.status == "error"]

    @property
    def duplicates(self) -> list[PaymentRow]:
        return [r for r in self.rows if r.status == "duplicate"]

    @property
    def skipped(self) -> list[PaymentRow]:
        """Rows that are not payments (refunds, closed orders): never booked."""
        return [r for r in self.rows if r.status == "skipped"]

    @property
    def total_cents(self) -> int:
        return sum(r.amount_cents or 0 for r in self.valid)


def _norm(text: object) -> str:
    return unicodedata.normalize("NFKC", str(text or "")).strip().lower()


def _method(text: str, default: str) -> str | None:
    t = _norm(text)
    if not t:
        return default
    if t in METHOD_BOOKS:
        return t
    for method, words in METHOD_WORDS.items():
        if t in words:
            return method
    return None


def booking_reference(row: PaymentRow) -> str:
    """The ledger reference of a payment: its key, channel and id there (a WeChat and an Alipay
    payment may carry the same id)."""
    return payment_key(row.method, row.reference)


def _key(text: str) -> str:
    if text.isascii():
        return text.strip()
    return unicodedata.normalize("NFKC", text).strip()


class _Directory:
    """The open accounts by room code (or name) and by current occupants' student or staff
    numbers, exactly (after NFKC): loaded once for a whole statement."""

    def __init__(self) -> None:
        self.rooms: dict[str, list[AccountRecord]] = {}
        self.people: dict[str, list[AccountRecord]] = {}
        by_node: dict[int, AccountRecord] = {}
        for acct in store.open_accounts():
            self.rooms.setdefault(_key(acct.room), []).append(acct)
            by_node[acct.node_id] = acct
        for person_no, node_id in imports.occupant_numbers():
            acct = by_node.get(node_id)
            if acct is not None:
                found = self.people.setdefault(_key(person_no), [])
                if acct not in found:
                    found.append(acct)

    def accounts(self, kind: str, key: str) -> list[AccountRecord]:
        """The open accounts a room code or a student number names, exactly."""
        return (self.rooms if kind == "room" else self.people).get(_key(key), [])


def _find_account(r: PaymentRow, pattern: str | re.Pattern[str], directory: _Directory) -> str:
    """Set the row's account from its room, its student number or else its memo; returns the
    problem ("" when found)."""
    if r.room or r.person_no:
        kind, key = ("room", r.room) if r.room else ("person_no", r.person_no)
        matches = directory.accounts(kind, key)
    else:
        candidates = memo_candidates(r.memo, pattern)
        if not candidates and not r.memo:
            return _("no room or student number")
        if not candidates:
            return _("no room or student number: the row names none, nor does its memo "
                     "{memo!r}").format(memo=r.memo)
        kind, key = candidates[0]
        matches = directory.accounts(kind, key)
        for c_kind, c_key in candidates:  # the first place that names one account
            found = directory.accounts(c_kind, c_key)
            if len(found) == 1:
                kind, key, matches = c_kind, c_key, found
                break
        if kind == "room":
            r.room = key
        else:
            r.person_no = key
    if not matches:
        return _("unknown room {room!r}").format(room=key)
    if len(matches) > 1:
        return _("{key!r} matches several accounts").format(key=key)
    r.account_id, r.account_room = matches[0].id, matches[0].room
    return ""


def preview(path: Path, default_method: str = "campus_card",
            maximum: int = MAX_RECHARGE_CENTS, *,
            memo_pattern: str | re.Pattern[str] | None = None) -> ImportPreview:
    """Check every row; nothing is changed. ``default_method``: the method of rows whose file
    names none (a WeChat or Alipay statement names its own); ``memo_pattern``: how a memo names
    the room (``statements.MEMO_PATTERN`` when not given)."""
    pattern = re.compile(memo_pattern or MEMO_PATTERN) \
        if not isinstance(memo_pattern, re.Pattern) else memo_pattern
    with _no_collection():
        statement = read_statement(path)
        result = ImportPreview(str(path), statement.rows, statement.channel,
                               statement.header_line)
        _judge(result.rows, statement, default_method, maximum, pattern)
    return result


@contextmanager
def _no_collection() -> Iterator[None]:
    """Python's cycle collector paused: a statement makes a few objects per row and no cycles,
    and 100,000 rows would have it walk every object again and again (a quarter of the time),
    also while the booking holds the database's write lock."""
    collecting = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if collecting:
            gc.enable()


def _judge(rows: list[PaymentRow], statement: Statement, default_method: str, maximum: int,
           pattern: re.Pattern[str]) -> None:
    for r in rows:
        if statement.channel_from_id:  # 微信订单号, 支付宝交易号: the channel's own statement
            r.method = statement.channel
        elif statement.channel:  # a preamble names it: a row's own method column first
            r.method = _method(r.method, statement.channel) or statement.channel
        else:
            r.method = _method(r.method, default_method) or r.method

    def bad(r: PaymentRow, msg: str) -> None:
        r.status, r.problem = "error", msg

    payments: list[PaymentRow] = []
    for r in rows:
        if r.status != "ok":  # not refunds, not lost ids
            continue
        try:
            r.reference = transaction_id(r.reference)
            keyed = split_key(r.reference)  # an id given as its key already: the id alone
            if keyed:
                r.reference = keyed[1]
        except InexactId as exc:
            bad(r, str(exc))
            continue
        payments.append(r)
    # every form of each id already booked: the same id booked under another channel is an
    # error (a file imported with the wrong default channel must not book twice)
    booked = bookings_of(r.reference for r in payments)
    seen: dict[str, int] = {}
    directory: _Directory | None = None
    for r in payments:
        if not r.reference:
            bad(r, _("no transaction id"))
            continue
        if r.reference in seen:
            bad(r, _("transaction id repeats row {line}").format(line=seen[r.reference]))
            continue
        seen[r.reference] = r.line
        earlier = booked.get(r.reference, [])
        if any(b.method == r.method for b in earlier):
            r.status, r.problem = "duplicate", _("already imported")
            continue
        if earlier:
            bad(r, _("this transaction id is already booked as a {method} payment: check the "
                     "payment method").format(method=method_text(earlier[0].method)))
            continue
        try:
            r.amount_cents = validate_amount(parse_amount(r.amount_text), maximum)
        except UserFacingError as exc:
            bad(r, str(exc))
            continue
        if r.method not in METHOD_BOOKS:
            bad(r, _("unknown payment method {m!r}").format(m=r.method))
            continue
        if directory is None:
            directory = _Directory()
        problem = _find_account(r, pattern, directory)
        if problem:
            bad(r, problem)


@dataclass(frozen=True)
class ImportResult:
    booked: int
    total_cents: int
    changes: Changes
    #: how long the booking held the database's write lock, in seconds
    lock_s: float = 0.0


def _memo(file: str, r: PaymentRow) -> str:
    text = _("imported from {file}, row {line}").format(file=file, line=r.line)
    if r.merchant_order:
        text += ", " + _("merchant order {number}").format(number=r.merchant_order)
    if r.payer:
        text += f", {r.payer}"
    return text


#: Rows staged between two progress steps (each step may cancel).
STAGE_CHUNK = 2_000


def apply(operator: Operator, result: ImportPreview,
          progress: Progress | None = None, *, t: float | None = None) -> ImportResult:
    """Book every valid row in one transaction (all or none), as one audited act.

    The rows are checked and staged first, and everything the booking will write is worked
    out (a temporary table: no lock on the database; cancelling through ``progress`` meanwhile
    books nothing), then booked in one short write transaction, after checking that nothing it
    rests on changed. A row whose payment was booked meanwhile (at the desk, by another
    import) or whose account closed meanwhile refuses the whole import: preview the file
    again. ``t``: the bookings' time (now)."""
    require(operator, Permission.IMPORT_PAYMENTS)
    rows = result.valid
    t = time.time() if t is None else t
    name = Path(result.path).name
    for r in rows:  # the same rules book_recharge applies, before anything is staged
        if r.account_id is None or r.amount_cents is None:
            raise UserFacingError(_("row {line} was not checked: preview the file again")
                                  .format(line=r.line))
        validate_amount(r.amount_cents)
        if r.method not in METHOD_BOOKS:
            raise UserFacingError(_("unknown payment method {method!r} (use: {known})").format(
                method=r.method, known=", ".join(METHOD_BOOKS)))
    keys = [booking_reference(r) for r in rows]
    total = sum(r.amount_cents or 0 for r in rows)
    with imports.Staging() as staging:
        with database.atomic():  # one snapshot: the bookings checked and the last one seen
            seen_until = imports.bases().txn
            booked = bookings_of(r.reference for r in rows)
        for r, key in zip(rows, keys, strict=True):
            if r.reference in booked:
                _refuse_booked(r, key, booked[r.reference][0])
        for start in range(0, len(rows), STAGE_CHUNK):
            chunk = range(start, min(start + STAGE_CHUNK, len(rows)))
            staging.add((rows[i].line, rows[i].account_id, rows[i].amount_cents,
                         rows[i].method, keys[i], _memo(name, rows[i])) for i in chunk)
            if progress is not None:
                progress.step(chunk.stop, len(rows))
        walk = _Rows.of(rows)
        with database.atomic():  # what the booking rests on, read in one snapshot
            plan = _plan(staging, walk)
            staging.set_outbox(_outbox_rows(rows, plan))
        if progress is not None:
            progress.check()
        with _no_collection(), imports.bulk_writing():
            with act(operator, Permission.IMPORT_PAYMENTS, "import_payments",
                     target=name) as a:
                locked = time.perf_counter()
                _refuse_booked_since(rows, keys, seen_until)
                now = _plan(staging, walk)
                if now != plan:  # polling or billing wrote meanwhile: work it out again here
                    log.info("import of %s: the database changed since the rows were staged",
                             name)
                    plan = now
                    staging.set_outbox(_outbox_rows(rows, plan))
                staging.book(operator.name, t, plan.bases, walk.methods, time.time())
                _enforce_station_accounts(plan.station_accounts, walk)
                if progress is not None:
                    progress.check()  # cancelled at the last moment: rolled back whole
                a.after = {"rows": len(rows), "total_cents": total,
                           "wrong_rows": len(result.errors),
                           "already_imported": len(result.duplicates),
                           "not_payments": len(result.skipped)}
            lock_s = time.perf_counter() - locked
    imports.checkpoint()  # the import's pages into the database file, not in polling's time
    log.info("imported %d payments from %s; the write lock was held %.2f s", len(rows), name,
             lock_s)
    return ImportResult(len(rows), total, Changes(nodes=frozenset(plan.nodes)), lock_s)


def _refuse_booked(r: PaymentRow, key: str, booked: Booked) -> None:
    raise DuplicateReference(_("row {line}: payment {key} was booked meanwhile (booking "
                               "{txn}); nothing was booked: preview the file again").format(
        line=r.line, key=key, txn=booked.txn_id))


def _refuse_booked_since(rows: list[PaymentRow], keys: list[str], seen_until: int) -> None:
    """Refuse the import if a payment of it was booked after booking ``seen_until``."""
    since = imports.references_since(seen_until)
    if not since:
        return
    by_id = {r.reference: (r, key) for r, key in zip(rows, keys, strict=True)}
    for txn_id, reference, method in since:
        split = split_key(reference)
        tid = split[1] if split else reference
        if tid in by_id:
            r, key = by_id[tid]
            _refuse_booked(r, key, Booked(txn_id, reference, channel_of(reference, method)))


@dataclass(frozen=True)
class _Plan:
    """What booking the staged rows writes besides the rows themselves, as the database
    stands: the numbers it continues, each meter-keeps-money account's meter, the
    station-keeps-money accounts (whose meters follow their balance after the booking), and
    the rooms touched."""

    bases: imports.Bases
    meter_of: dict[int, int]
    station_accounts: tuple[int, ...]
    nodes: frozenset[int]


@dataclass(frozen=True)
class _Rows:
    """The staged rows as the booking's checks walk them: the accounts in the order of their
    first row, each account's rows (seq, cents), the payment methods in order of first use."""

    accounts: list[int]
    of_account: dict[int, list[tuple[int, int]]]
    methods: list[str]

    @classmethod
    def of(cls, rows: list[PaymentRow]) -> _Rows:
        of_account: dict[int, list[tuple[int, int]]] = {}
        methods: dict[str, None] = {}
        for seq, r in enumerate(rows, start=1):
            of_account.setdefault(r.account_id or 0, []).append((seq, r.amount_cents or 0))
            methods.setdefault(r.method, None)
        return cls(list(of_account), of_account, list(methods))


def _plan(staging: imports.Staging, rows: _Rows) -> _Plan:
    accounts = staging.accounts()
    meter_of: dict[int, int] = {}
    for acct_id in rows.accounts:  # in row order: the first row that cannot be booked is named
        acct = accounts.get(acct_id)
        if acct is None or not acct.is_open:
            raise UserFacingError(_("no open account {id}").format(id=acct_id))
        if acct.mode == "meter":
            if len(acct.meters) != 1:
                raise UserFacingError(_("{room}: a meter-keeps-money account needs one meter")
                                      .format(room=acct.room))
            meter_of[acct.id] = acct.meters[0]
    station = tuple(a for a in rows.accounts if accounts[a].mode == "station")
    return _Plan(imports.bases(), meter_of, station,
                 frozenset(a.node_id for a in accounts.values()))


def _enforce_station_accounts(account_ids: tuple[int, ...], walk: _Rows) -> None:
    """Trips and closes of the station-money accounts, on their balance after the booking:
    only those in debt before or after it, or held for arrears (the rest have nothing to
    change, and asking each costs the write lock time)."""
    after = balances.balances(list(account_ids))
    held = holds.accounts_held_for("arrears", list(account_ids))
    for account_id in account_ids:
        paid = sum(cents for _seq, cents in walk.of_account.get(account_id, ()))
        if after[account_id] <= 0 or after[account_id] - paid <= 0 or account_id in held:
            enforce_station_balance(account_id)


def _outbox_rows(rows: list[PaymentRow], plan: _Plan
                 ) -> list[tuple[int, int, str, int, int | None, int | None, str]]:
    """The outbox rows booking each row in turn queues (``commands.queue``), with the ids,
    bookings and receipt numbers they get and their MACs: a token for each row of a
    meter-keeps-money account."""
    key = commands.command_key()
    out: list[tuple[int, int, str, int, int | None, int | None, str]] = []
    item = plan.bases.outbox
    for seq, r in enumerate(rows, start=1):
        meter = plan.meter_of.get(r.account_id or 0)
        if meter is not None:
            item += 1
            amount, txn, receipt = r.amount_cents or 0, plan.bases.txn + seq, \
                plan.bases.receipt + seq
            out.append((item, meter, "recharge", amount, txn, receipt,
                        commands.mac(item, meter, "recharge", amount, txn, receipt, key)))
    return out

