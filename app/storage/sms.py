"""Texts for residents (the SMS outbox) and their edited templates: rows in, records out.

A message's life: ``pending`` (waiting for its turn, ``next_try_at``) -> ``sending`` (claimed
and committed before the sender has it) -> ``sent``; or back to ``pending`` after a refusal,
``failed`` after the last attempt, ``skipped`` (over the daily cap, no number, too old, SMS
off), ``unknown`` (handed to the sender, and then the station stopped or the sender could not
say: never sent again). ``sent_at`` is when it was handed to the sender (then when it was
confirmed), so what went out today can be counted for the daily cap.
"""

from __future__ import annotations

from dataclasses import dataclass

from peewee import JOIN, fn

from app.storage.models import Account, Node, Occupant, SmsMessage, SmsTemplate

STATES = ("pending", "sending", "sent", "failed", "skipped", "unknown")
#: States of a message that may have reached the phone (what the daily cap counts).
HANDED = ("sending", "sent", "unknown")


@dataclass(frozen=True)
class SmsRecord:
    id: int
    created_at: float
    phone: str
    text: str
    event: str
    account_id: int | None
    room: str | None
    state: str
    attempts: int
    next_try_at: float
    last_error: str
    sent_at: float | None
    sender: str
    parts: int


def _record(m: SmsMessage, room: str | None = None) -> SmsRecord:
    return SmsRecord(m.id, m.created_at, m.phone, m.text, m.event, m.account_id, room, m.state,
                     m.attempts, m.next_try_at, m.last_error, m.sent_at, m.sender, m.parts)


# -- writing -------------------------------------------------------------------------------------
def add(rows: list[dict]) -> int:
    """Insert messages (``phone``, ``text``, ``event``, ``account``, ``created_at``, optionally
    ``state`` and ``last_error``); one already there for the same (event, phone) is left as it
    is. Returns how many were added."""
    if not rows:
        return 0
    return SmsMessage.insert_many(rows).on_conflict_ignore().as_rowcount().execute()


def claim(message_id: int, t: float, sender: str) -> bool:
    """Take a pending message for sending (one more attempt); False when it is no longer
    pending (another dispatcher has it)."""
    return SmsMessage.update(state="sending", attempts=SmsMessage.attempts + 1, sent_at=t,
                             sender=sender).where(
        (SmsMessage.id == message_id) & (SmsMessage.state == "pending")).execute() == 1


def mark_sent(message_id: int, parts: int, t: float) -> None:
    SmsMessage.update(state="sent", parts=parts, sent_at=t, last_error="").where(
        SmsMessage.id == message_id).execute()


def mark_retry(message_id: int, next_try_at: float, error: str) -> None:
    """Refused: pending again, not before ``next_try_at``."""
    SmsMessage.update(state="pending", next_try_at=next_try_at, last_error=error,
                      sent_at=None).where(SmsMessage.id == message_id).execute()


def mark(message_id: int, state: str, error: str) -> None:
    """``failed``, ``skipped`` or ``unknown`` with the reason."""
    if state not in STATES:
        raise ValueError(f"no SMS state {state!r}")
    SmsMessage.update(state=state, last_error=error).where(SmsMessage.id == message_id).execute()


def sending_to_unknown(reason: str) -> int:
    """Messages left in ``sending`` (the station stopped between handing one over and marking
    it) become ``unknown``: they may have gone, so they are never sent again."""
    return SmsMessage.update(state="unknown", last_error=reason).where(
        SmsMessage.state == "sending").execute()


# -- reading -------------------------------------------------------------------------------------
def due(now: float, limit: int = 50) -> list[SmsRecord]:
    """Pending messages whose turn has come, oldest first."""
    q = (SmsMessage.select().where((SmsMessage.state == "pending")
                                   & (SmsMessage.next_try_at <= now))
         .order_by(SmsMessage.created_at, SmsMessage.id).limit(limit))
    return [_record(m) for m in q]


def handed_since(phone: str, since: float) -> int:
    """How many messages were handed to a sender for ``phone`` since ``since``."""
    return SmsMessage.select(fn.COUNT(SmsMessage.id)).where(
        (SmsMessage.phone == phone) & SmsMessage.state.in_(HANDED)
        & (SmsMessage.sent_at >= since)).scalar() or 0


def get(message_id: int) -> SmsRecord | None:
    m = SmsMessage.get_or_none(SmsMessage.id == message_id)
    return _record(m) if m is not None else None


def messages(*, state: str | None = None, event: str | None = None,
             limit: int = 200) -> list[SmsRecord]:
    """The log: newest first, each with its room (the account's node code or name)."""
    q = (SmsMessage.select(SmsMessage, Node.code.alias("room_code"),
                           Node.name.alias("room_name"))
         .join(Account, JOIN.LEFT_OUTER, on=(SmsMessage.account == Account.id))
         .join(Node, JOIN.LEFT_OUTER, on=(Account.node == Node.id)))
    if state is not None:
        q = q.where(SmsMessage.state == state)
    if event is not None:
        q = q.where(SmsMessage.event == event)
    out = []
    q = q.order_by(SmsMessage.created_at.desc(), SmsMessage.id.desc()).limit(limit).objects()
    for m in q:
        out.append(_record(m, (m.room_code or m.room_name) if m.account_id else None))
    return out


def phones_of_node(node_id: int) -> list[str]:
    """The phone numbers of a room's current occupants, as written (blank ones left out)."""
    q = Occupant.select(Occupant.phone).where(
        (Occupant.node == node_id) & Occupant.moved_out.is_null() & (Occupant.phone != "")
    ).order_by(Occupant.id)
    return [phone for (phone,) in q.tuples()]


# -- templates -----------------------------------------------------------------------------------
@dataclass(frozen=True)
class TemplateRow:
    kind: str
    lang: str
    text: str
    updated_at: float
    updated_by: str


def edited_template(kind: str, lang: str) -> str | None:
    row = SmsTemplate.get_or_none((SmsTemplate.kind == kind) & (SmsTemplate.lang == lang))
    return row.text if row is not None else None


def edited_templates() -> list[TemplateRow]:
    q = SmsTemplate.select().order_by(SmsTemplate.kind, SmsTemplate.lang)
    return [TemplateRow(t.kind, t.lang, t.text, t.updated_at, t.updated_by) for t in q]


def put_template(kind: str, lang: str, text: str, by: str, t: float) -> None:
    SmsTemplate.insert(kind=kind, lang=lang, text=text, updated_at=t,
                       updated_by=by).on_conflict_replace().execute()


def drop_template(kind: str, lang: str) -> bool:
    """Back to the default; False when it was not edited."""
    return SmsTemplate.delete().where((SmsTemplate.kind == kind)
                                      & (SmsTemplate.lang == lang)).execute() > 0
