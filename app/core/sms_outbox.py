"""Texts to residents: written with the event that causes them, sent by the reading service.

``notify(kind, account_id, event)`` writes one message per phone number of the room's current
occupants, its text rendered at once (room, balance, days it lasts). It only writes rows, so it
belongs inside the transaction of the event (a low-balance alarm, a trip): the event and its
texts are stored together or not at all. A message is unique per (event, phone): the same event
notified twice adds nothing, so a level is texted once per crossing and a trip once per hold.

``SmsDispatcher.run_once`` sends what is due, outside quiet hours (held, not dropped, until
they end), at most ``sms.daily_cap`` a day to one number (beyond: ``skipped``, with the reason).
The crash rule: a message is marked ``sending`` and that is COMMITTED before the sender gets
it; then ``sent`` with its parts, or ``pending`` again with back-off (1, 2, 4, 8 minutes) after
a refusal and ``failed`` after the fifth, or ``unknown`` when it may have gone. A dispatcher
starting finds the messages a crash left in ``sending`` and marks them ``unknown``: they are
never sent again, so no number gets the same event twice. ``run`` is the reading service's
loop around it (started when ``sms.sender`` is not ``none``).
"""

from __future__ import annotations

import logging
import re
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from app.core import balances as live
from app.core import settings
from app.core.balance_days import days_left, days_text
from app.core.money import format_cents
from app.core.operators import Operator, Permission, require
from app.core.sms_templates import KINDS, PLACEHOLDERS, render
from app.drivers.modem import mask_number
from app.drivers.sms_http import HttpGatewaySender
from app.drivers.sms_sender import ModemSender, SmsMaybeSent, SmsNotSent, SmsSender
from app.errors import DriverError, UserFacingError
from app.i18n import N_, _
from app.paths import data_dir
from app.storage import accounts as account_store
from app.storage import busy
from app.storage import sms as store
from app.storage.db import close_database, database_path, write_transaction
from app.storage.models import database

log = logging.getLogger("voltkeeper.sms")

MAX_ATTEMPTS = 5
BACKOFF_S = 60.0
#: A message not sent within a day is stale (a low balance of yesterday): skipped.
MAX_AGE_S = 24 * 3600.0
#: The HTTP gateway's key, beside the database (mode 0600).
KEY_FILE_NAME = "sms-gateway.key"

STATE_TEXT = {"pending": N_("waiting"), "sending": N_("sending"), "sent": N_("sent"),
              "failed": N_("failed"), "skipped": N_("skipped"), "unknown": N_("unknown")}

_PHONE = re.compile(r"\+?[0-9]{5,20}")


def state_text(state: str) -> str:
    label = STATE_TEXT.get(state)
    return _(label) if label else state


def mask_phone(phone: str) -> str:
    """A number as a log shows it, the middle starred (``+86138****8000``)."""
    return mask_number(phone) if phone else ""


def clean_phone(phone: str) -> str:
    """A number as written by a clerk, without spaces, dashes and brackets."""
    return re.sub(r"[\s\-().]", "", phone)


def gateway_key_file() -> Path:
    """``sms-gateway.key`` beside the database's file (the data folder when it has none)."""
    db = database_path()
    return (db.parent if db is not None and db.is_file() else data_dir()) / KEY_FILE_NAME


# -- writing messages ----------------------------------------------------------------------------
def notify(kind: str, account_id: int, event: str, params: dict | None = None) -> int:
    """Write the ``kind`` text for ``event`` to each current occupant's phone of the account's
    room; returns the messages added (0 for an event already notified). ``params`` may hold
    ``balance_cents`` (default: the ledger's balance) and ``room``, ``balance`` or ``days`` to
    say instead. With ``sms.sender`` at ``none`` the messages are written ``skipped``."""
    if kind not in KINDS:
        log.error("no SMS template %r: event %s is not texted", kind, event)
        return 0
    acct = account_store.get_account(account_id)
    if acct is None:
        return 0
    phones = list(dict.fromkeys(clean_phone(p) for p in store.phones_of_node(acct.node_id)))
    phones = [p for p in phones if p]
    if not phones:
        return 0
    params = dict(params or {})
    balance = params.pop("balance_cents", None)
    if not isinstance(balance, int) or isinstance(balance, bool):
        balance = live.balance(account_id)
    values = {"room": acct.room, "balance": format_cents(balance),
              "days": days_text(days_left(account_id, balance))}
    values.update({k: str(v) for k, v in params.items() if k in PLACEHOLDERS})
    text = render(kind, settings.get(settings.SMS_LANG), values)
    off = settings.get(settings.SMS_SENDER) == "none"
    now = time.time()
    rows = []
    for phone in phones:
        row: dict = {"created_at": now, "phone": phone, "text": text, "event": event,
                     "account": account_id}
        if not _PHONE.fullmatch(phone):
            row.update(state="skipped", last_error=_("not a phone number"))
        elif off:
            row.update(state="skipped", last_error=_("texts are off (sms.sender is none)"))
        rows.append(row)
    with database.atomic():
        added = store.add(rows)
    if added:
        log.info("SMS %s for account %s (%s): %d message(s)", kind, account_id, event, added)
    return added


# -- sending -------------------------------------------------------------------------------------
def recover() -> int:
    """Messages left in ``sending`` by a stop between handing over and marking become
    ``unknown`` (never sent again). Run as a dispatcher starts, before it sends."""
    with write_transaction():
        n = store.sending_to_unknown(_("the station stopped while it was being sent: it may "
                                       "have gone, it is not sent again"))
    if n:
        log.warning("%d SMS left in 'sending' by a stop marked unknown (not sent again)", n)
    return n


def in_quiet_hours(t: float, quiet_from: int, quiet_to: int) -> bool:
    """True when the local hour of ``t`` is in [from, to) (across midnight when from > to)."""
    hour = time.localtime(t).tm_hour
    if quiet_from == quiet_to:
        return False
    if quiet_from < quiet_to:
        return quiet_from <= hour < quiet_to
    return hour >= quiet_from or hour < quiet_to


def _local_midnight(t: float) -> float:
    lt = time.localtime(t)
    return time.mktime((lt.tm_year, lt.tm_mon, lt.tm_mday, 0, 0, 0, 0, 0, -1))


@dataclass
class DispatchReport:
    sent: int = 0
    retried: int = 0
    failed: int = 0
    skipped: int = 0
    unknown: int = 0
    held: bool = False  # quiet hours
    waiting: str = ""  # the sender cannot be used now (why)


class SmsDispatcher:
    """Sends the due messages through one sender; one dispatcher per database at a time (the
    process holding the polling lease). Each step commits on its own: never run it inside a
    transaction."""

    def __init__(self, sender: SmsSender, *, clock: Callable[[], float] = time.time,
                 max_attempts: int = MAX_ATTEMPTS, backoff_s: float = BACKOFF_S,
                 batch: int = 20) -> None:
        self.sender = sender
        self.clock = clock
        self.max_attempts = max_attempts
        self.backoff_s = backoff_s
        self.batch = batch
        self._unsaved: list[Callable[[], None]] = []  # outcomes the database did not take yet
        self._last_waiting = ""

    def recover(self) -> int:
        return recover()

    def close(self) -> None:
        self.sender.close()

    def run_once(self) -> DispatchReport:
        if database.in_transaction():
            raise RuntimeError("the SMS dispatcher commits each step: not inside a transaction")
        report = DispatchReport()
        self._save_outcomes()
        now = self.clock()
        if in_quiet_hours(now, settings.get(settings.SMS_QUIET_FROM),
                          settings.get(settings.SMS_QUIET_TO)):
            report.held = True
            return report
        rows = store.due(now, self.batch)
        if not rows:
            return report
        try:
            self.sender.open()
        except (DriverError, UserFacingError) as exc:
            report.waiting = str(exc)
            if report.waiting != self._last_waiting:
                log.error("SMS wait: the %s sender cannot be used: %s", self.sender.name, exc)
            self._last_waiting = report.waiting
            return report
        self._last_waiting = ""
        cap = settings.get(settings.SMS_DAILY_CAP)
        midnight = _local_midnight(now)
        for row in rows:
            if now - row.created_at > MAX_AGE_S:
                self._mark(row.id, "skipped", _("not sent within a day: too old to send"))
                report.skipped += 1
            elif store.handed_since(row.phone, midnight) >= cap:
                self._mark(row.id, "skipped", _("over the daily cap of {n} texts to this "
                                                "number").format(n=cap))
                report.skipped += 1
            else:
                self._send(row, report)
        return report

    def _mark(self, message_id: int, state: str, reason: str) -> None:
        with write_transaction():
            store.mark(message_id, state, reason)

    def _send(self, row: store.SmsRecord, report: DispatchReport) -> None:
        with write_transaction():  # committed before the sender has it: the crash rule
            if not store.claim(row.id, self.clock(), self.sender.name):
                return
        attempt, mid = row.attempts + 1, row.id
        try:
            parts = self.sender.send(row.phone, row.text)
        except SmsNotSent as exc:
            error = str(exc)
            if exc.permanent or attempt >= self.max_attempts:
                self._outcome(lambda: store.mark(mid, "failed", error))
                report.failed += 1
            else:
                later = self.clock() + self.backoff_s * 2 ** (attempt - 1)
                self._outcome(lambda: store.mark_retry(mid, later, error))
                report.retried += 1
            log.warning("SMS %s not sent (attempt %d): %s", mid, attempt, error)
            return
        except SmsMaybeSent as exc:
            error = str(exc)
            self._outcome(lambda: store.mark(mid, "unknown", error))
            report.unknown += 1
            log.error("SMS %s may have gone, it is not sent again: %s", mid, error)
            return
        except BaseException as exc:  # a defect in the sender: it may have gone
            error = f"{type(exc).__name__}: {exc}"
            self._outcome(lambda: store.mark(mid, "unknown", error))
            raise
        t = self.clock()
        self._outcome(lambda: store.mark_sent(mid, parts, t))
        report.sent += 1

    def _outcome(self, save: Callable[[], None]) -> None:
        """Store what became of a message; a busy database keeps it for the next turn (the
        message stays ``sending`` meanwhile: never sent again)."""
        self._unsaved.append(save)
        self._save_outcomes()

    def _save_outcomes(self) -> None:
        while self._unsaved:
            try:
                with write_transaction():
                    self._unsaved[0]()
            except Exception as exc:
                if not busy.unwritable(exc):
                    raise
                log.warning("an SMS outcome waits: the database cannot be written now (%s)",
                            exc)
                return
            self._unsaved.pop(0)


# -- the reading service's loop ------------------------------------------------------------------
def sender_config() -> tuple:
    """What the settings say the sender is (compared to notice a change)."""
    return (settings.get(settings.SMS_SENDER), settings.get(settings.SMS_MODEM_PORT),
            settings.get(settings.SMS_MODEM_BAUD), settings.get(settings.SMS_HTTP_URL))


def make_sender(config: tuple) -> SmsSender | None:
    kind, port, baud, url = config
    if kind == "modem":
        return ModemSender(port, baud)
    if kind == "http":
        return HttpGatewaySender(url, gateway_key_file())
    return None


def run(stop: threading.Event, every_s: float = 5.0,
        sender_factory: Callable[[tuple], SmsSender | None] = make_sender) -> None:
    """Send what is due every ``every_s`` until ``stop``; a changed sender setting is taken at
    the next turn. A busy database waits for the next turn; anything else is the supervisor's
    (which starts this again: the messages left ``sending`` become ``unknown``)."""
    dispatcher: SmsDispatcher | None = None
    config: tuple | None = None
    try:
        recover()
        while not stop.wait(every_s):
            try:
                wanted = sender_config()
                if wanted != config:
                    if dispatcher is not None:
                        dispatcher.close()
                    sender = sender_factory(wanted)
                    dispatcher = SmsDispatcher(sender) if sender is not None else None
                    config = wanted
                    log.info("SMS sender: %s", wanted[0])
                if dispatcher is not None:
                    dispatcher.run_once()
            except Exception as exc:
                if not busy.unwritable(exc):
                    raise
                log.warning("SMS waits: the database cannot be written now (%s)", exc)
    finally:
        if dispatcher is not None:
            dispatcher.close()
        close_database()  # this thread's connection


# -- the log the operator sees -------------------------------------------------------------------
def sms_log(operator: Operator, *, state: str | None = None, limit: int = 200) -> list[dict]:
    """The messages, newest first (``main.py sms log --json`` keys): id, created_at, room,
    phone, event, state, attempts, error, sent_at, sender, parts, text."""
    require(operator, Permission.VIEW)
    if state is not None and state not in store.STATES:
        raise UserFacingError(_("no SMS state {state} (there are {states})").format(
            state=state, states=", ".join(store.STATES)))
    return [{"id": m.id, "created_at": m.created_at, "room": m.room, "phone": m.phone,
             "event": m.event, "state": m.state, "attempts": m.attempts,
             "error": m.last_error, "sent_at": m.sent_at, "sender": m.sender, "parts": m.parts,
             "text": m.text}
            for m in store.messages(state=state, limit=limit)]
