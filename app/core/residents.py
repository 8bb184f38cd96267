"""The residents' side (issue 13): signing in to the portal, what a resident may see of their
own room, and the repair or dispute requests the front desk answers. Qt-free, no web here.

* **Sign-in**: room number + student number (the room's current occupant) + password. The desk
  hands out an initial password at account opening (``issue_initial_password``), changed at
  the first sign-in. Only a salted scrypt hash is kept (``core/operators``).
* **No enumeration**: an unknown room, a student number that is not the room's and a wrong
  password get the same answer, at the same cost (a dummy hash is checked).
* **Rate limits**: ``ROOM_FAILURES`` failures for a room number (known or not) within
  ``WINDOW_S`` lock that room's sign-in for ``LOCK_S``; a client address gets at most
  ``CLIENT_FAILURES`` failures within ``WINDOW_S``. Every attempt is audited.
* **Sessions**: a random id in the resident's cookie; the database keeps only its SHA-256, the
  room and occupant, the per-session CSRF token and when it was last used.

A resident's questions take the ``Resident`` the session names, never a room id from outside:
a resident sees only their own room.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
import time
from dataclasses import dataclass
from datetime import date, datetime

from app.core import audit, queries
from app.core import balances as live
from app.core.audit import act
from app.core.balance_days import days_left
from app.core.operators import (
    _DUMMY_HASH,
    MIN_PASSWORD_LENGTH,
    Operator,
    Permission,
    check_password,
    generate_password,
    hash_password,
)
from app.errors import UserFacingError
from app.i18n import N_, _
from app.storage import accounts as account_store
from app.storage import holds as hold_store
from app.storage.db import write_transaction
from app.storage.ledger import TxnRecord
from app.storage.models import (
    Node,
    Occupant,
    PortalSession,
    ResidentLogin,
    ResidentRequest,
    SignInAttempt,
)

WINDOW_S = 15 * 60
ROOM_FAILURES = 5
LOCK_S = 15 * 60
CLIENT_FAILURES = 20
#: A session unused this long is over (the kiosk passes its own, much shorter, idle time).
IDLE_S = 30 * 60
#: A session is over this long after sign-in however busy.
MAX_SESSION_S = 12 * 3600
REQUEST_KINDS = ("repair", "dispute")
MAX_REQUEST_TEXT = 2000
MAX_FIELD = 64

#: What a resident is told for every wrong room, student number or password.
WRONG = N_("room number, student number or password is wrong")
#: What the resident should do about each reason the station keeps the power off.
WHAT_TO_DO = {
    "arrears": N_("Your balance has run out: recharge, and the power comes back."),
    "power_limit": N_("Your room drew more than its power limit: switch off the large "
                      "appliance and wait for the power to come back."),
    "malicious_load": N_("A forbidden appliance (such as a heater) was switched on: switch it "
                         "off and wait for the power to come back."),
    "schedule": N_("Lights-out: the power comes back at {time}."),
    "plan": N_("The building's load is being limited; the power comes back when it ends."),
    "operator": N_("The front desk switched the power off; ask the front desk."),
}
REASON_TEXT = {"arrears": N_("balance used up"), "power_limit": N_("power limit"),
               "malicious_load": N_("forbidden appliance"), "schedule": N_("lights-out"),
               "plan": N_("load limiting"), "operator": N_("front desk")}
KIND_TEXT = {"repair": N_("repair"), "dispute": N_("dispute about a bill")}


class PortalError(UserFacingError):
    """A refusal the portal shows in the resident's own language: ``msgid`` (marked with
    ``N_``) and its ``params``; the text in the process's language is the message."""

    def __init__(self, msgid: str, **params: object) -> None:
        super().__init__(_(msgid).format(**params))
        self.msgid = msgid
        self.params = params


class SignInRefused(PortalError):
    """Wrong room, student number or password, or sign-in paused after failures."""


@dataclass(frozen=True)
class Resident:
    """A signed-in resident: who, in which room (from the session, never from the request)."""

    occupant_id: int
    node_id: int
    room: str
    name: str
    must_change: bool


@dataclass(frozen=True)
class Session:
    resident: Resident
    csrf: str
    created_at: float


@dataclass(frozen=True)
class HoldReason:
    reason: str
    until: str  # "HH:MM" for lights-out, else ""

    @property
    def text(self) -> str:
        label = REASON_TEXT.get(self.reason)
        return _(label) if label else self.reason

    @property
    def what_to_do(self) -> str:
        label = WHAT_TO_DO.get(self.reason, WHAT_TO_DO["operator"])
        return _(label).format(time=self.until or "?")


@dataclass(frozen=True)
class Home:
    room: str
    name: str
    balance_cents: int | None  # None: no open account, or its balance not taken over yet
    days_left: int | None
    power_off: bool
    reasons: list[HoldReason]


@dataclass(frozen=True)
class RequestRecord:
    id: int
    kind: str
    text: str
    created_at: float
    state: str
    answer: str
    answered_by: str
    answered_at: float | None
    room: str = ""

    @property
    def kind_text(self) -> str:
        label = KIND_TEXT.get(self.kind)
        return _(label) if label else self.kind


def _who(room: str) -> str:
    return f"resident {room[:MAX_FIELD]}"


def _digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


# -- the desk ----------------------------------------------------------------------------------
def issue_initial_password(operator: Operator, occupant_id: int) -> str:
    """A new initial password for the occupant's portal sign-in, to hand over once (the
    resident changes it at the first sign-in). Returns the password; keeps only its hash."""
    occ = Occupant.get_or_none(Occupant.id == occupant_id)
    if occ is None or occ.moved_out is not None:
        raise UserFacingError(_("no current occupant {id}").format(id=occupant_id))
    node = Node.get_by_id(occ.node_id)
    password = generate_password(10)
    digest = hash_password(password)
    now = time.time()
    with act(operator, Permission.MANAGE_ACCOUNTS, "resident_password",
             target=node.code or node.name, node_id=node.id) as a:
        updated = (ResidentLogin.update(password_hash=digest, must_change=True, issued_at=now,
                                        issued_by=operator.name, changed_at=None)
                   .where(ResidentLogin.occupant == occ.id).execute())
        if not updated:
            ResidentLogin.create(occupant=occ.id, password_hash=digest, must_change=True,
                                 issued_at=now, issued_by=operator.name)
        a.after = {"occupant": occ.name, "must_change": True}
        # end the occupant's sessions: the old password's holder is out
        PortalSession.delete().where(PortalSession.occupant == occ.id).execute()
    return password


# -- signing in --------------------------------------------------------------------------------
def _room_locked_until(room: str, now: float) -> float | None:
    fails = [t for (t,) in SignInAttempt.select(SignInAttempt.t).where(
        (SignInAttempt.room == room) & (SignInAttempt.ok == False)  # noqa: E712
        & (SignInAttempt.t > now - WINDOW_S - LOCK_S)).order_by(SignInAttempt.t).tuples()]
    until = None
    for i in range(len(fails) - ROOM_FAILURES + 1):
        last = fails[i + ROOM_FAILURES - 1]
        if last - fails[i] <= WINDOW_S and last + LOCK_S > now:
            until = last + LOCK_S
    return until


def _client_failures(client: str, now: float) -> int:
    return (SignInAttempt.select().where((SignInAttempt.client == client)
                                         & (SignInAttempt.ok == False)  # noqa: E712
                                         & (SignInAttempt.t > now - WINDOW_S)).count())


def _paused(remaining_s: float) -> SignInRefused:
    return SignInRefused(N_("too many failed sign-ins; try again in {minutes} min"),
                         minutes=max(1, round(remaining_s / 60)))


def sign_in(room: str, person_no: str, password: str, *, client: str = "",
            now: float | None = None) -> Resident:
    """The resident if ``password`` is theirs; refused (audited, counted) otherwise."""
    now = time.time() if now is None else now
    room = room.strip()[:MAX_FIELD]
    person_no = person_no.strip()[:MAX_FIELD]
    client = client[:MAX_FIELD]
    # the reads and the (slow) password check hold no write lock: the reading service's
    # writes never wait for a sign-in
    until = _room_locked_until(room, now)
    if _client_failures(client, now) >= CLIENT_FAILURES or until is not None:
        why = "room locked" if until is not None else "client paused"
        audit.record(_who(room), "resident_sign_in_failed", target=room,
                     detail=f"portal {client}: {why}", t=now)
        raise _paused(until - now if until is not None else WINDOW_S)
    node = Node.get_or_none((Node.code == room) & Node.kind.in_(("room", "shop"))) \
        if room else None
    occ = Occupant.get_or_none((Occupant.node == node.id) & Occupant.moved_out.is_null()
                               & (Occupant.person_no == person_no)) \
        if node is not None and person_no else None
    login = ResidentLogin.get_or_none(ResidentLogin.occupant == occ.id) \
        if occ is not None else None
    ok = check_password(password, login.password_hash if login else _DUMMY_HASH) \
        and login is not None
    with write_transaction():
        SignInAttempt.delete().where(SignInAttempt.t < now - 86400).execute()
        SignInAttempt.create(t=now, client=client, room=room, ok=ok)
        if ok:
            audit.record(_who(room), "resident_sign_in", target=room, node_id=node.id,
                         detail=f"portal {client}", t=now)
        else:
            why = ("unknown room" if node is None else "not the room's occupant"
                   if occ is None else "no portal password" if login is None
                   else "wrong password")
            audit.record(_who(room), "resident_sign_in_failed", target=room,
                         node_id=node.id if node else None,
                         detail=f"portal {client}: {why}", t=now)
            until = _room_locked_until(room, now)
    if not ok:
        raise _paused(until - now) if until else SignInRefused(WRONG)
    assert node is not None and occ is not None and login is not None
    return Resident(occ.id, node.id, room, occ.name, login.must_change)


def change_password(resident: Resident, current: str, new: str) -> Resident:
    """Change the resident's own password (checked against the current one)."""
    login = ResidentLogin.get_or_none(ResidentLogin.occupant == resident.occupant_id)
    if login is None or not check_password(current, login.password_hash):
        audit.record(_who(resident.room), "resident_password_failed", target=resident.room,
                     node_id=resident.node_id, detail="wrong current password")
        raise PortalError(N_("the current password is wrong"))
    if len(new) < MIN_PASSWORD_LENGTH:
        raise PortalError(N_("a password has at least {n} characters"), n=MIN_PASSWORD_LENGTH)
    if new == current:
        raise PortalError(N_("choose a password different from the current one"))
    digest = hash_password(new)
    with write_transaction():
        ResidentLogin.update(password_hash=digest, must_change=False,
                             changed_at=time.time()).where(ResidentLogin.id == login.id).execute()
        audit.record(_who(resident.room), "resident_password_change", target=resident.room,
                     node_id=resident.node_id)
    return Resident(resident.occupant_id, resident.node_id, resident.room, resident.name, False)


# -- sessions ----------------------------------------------------------------------------------
def start_session(resident: Resident, now: float | None = None) -> str:
    """A new session for ``resident``; returns the random id for the cookie (kept hashed)."""
    now = time.time() if now is None else now
    token = secrets.token_urlsafe(32)
    with write_transaction():
        PortalSession.delete().where(PortalSession.last_seen < now - MAX_SESSION_S).execute()
        PortalSession.create(key=_digest(token), occupant=resident.occupant_id,
                             node=resident.node_id, csrf=secrets.token_urlsafe(32),
                             created_at=now, last_seen=now)
    return token


def session(token: str | None, *, idle_s: float = IDLE_S,
            now: float | None = None) -> Session | None:
    """The live session ``token`` names (touched), or None (unknown, idle too long, over,
    or its occupant moved out)."""
    if not token or len(token) > 100:
        return None
    now = time.time() if now is None else now
    key = _digest(token)
    row = PortalSession.get_or_none(PortalSession.key == key)
    if row is None:
        return None
    occ = Occupant.get_or_none(Occupant.id == row.occupant_id)
    login = ResidentLogin.get_or_none(ResidentLogin.occupant == row.occupant_id)
    if (row.last_seen < now - idle_s or row.created_at < now - MAX_SESSION_S or occ is None
            or occ.moved_out is not None or occ.node_id != row.node_id or login is None):
        PortalSession.delete().where(PortalSession.key == key).execute()
        return None
    if now - row.last_seen >= min(60.0, idle_s / 6):  # not a write on every page view
        PortalSession.update(last_seen=now).where(PortalSession.key == key).execute()
    node = Node.get_by_id(row.node_id)
    return Session(Resident(occ.id, node.id, node.code or node.name, occ.name,
                            login.must_change), row.csrf, row.created_at)


def csrf_ok(sess: Session, token: str | None) -> bool:
    return bool(token) and hmac.compare_digest(sess.csrf.encode(), str(token).encode())


def end_session(token: str | None) -> None:
    if token:
        PortalSession.delete().where(PortalSession.key == _digest(token)).execute()


# -- what a resident sees ----------------------------------------------------------------------
def _meter_ids(resident: Resident) -> list[int]:
    return [m[0] for m in account_store.meters_of_node(resident.node_id)]


def _until(h: hold_store.HoldRecord) -> str:
    if h.restore_at:
        return datetime.fromtimestamp(h.restore_at).strftime("%H:%M")
    m = re.search(r"(\d{1,2}:\d{2})$", h.detail or "")
    return m.group(1) if m else ""


def home(resident: Resident, today: date | None = None) -> Home:
    """The room's balance, how many days it lasts, whether the station keeps the power off
    and why."""
    acct = account_store.open_account_for_node(resident.node_id)
    balance = None
    if acct is not None and acct.id not in set(account_store.accounts_to_adopt()):
        balance = live.balance(acct.id)
    days = days_left(acct.id, balance, today) if acct is not None and balance is not None \
        else None
    reasons: dict[str, HoldReason] = {}
    for h in hold_store.holds(_meter_ids(resident)):
        if h.overridden_by:
            continue  # an operator closed the relay over it: no effect
        reasons.setdefault(h.reason, HoldReason(h.reason, _until(h)))
    return Home(resident.room, resident.name, balance, days, bool(reasons),
                list(reasons.values()))


def daily_use(resident: Resident, days: int = 30, today: date | None = None
              ) -> list[tuple[str, int]]:
    """The room's Wh on each of the last ``days`` local days, oldest first."""
    return queries.daily_use(_meter_ids(resident), days, today)


def ledger_lines(resident: Resident, limit: int = 60) -> list[TxnRecord]:
    """The room's open account's latest bookings (the billing's summed per day)."""
    acct = account_store.open_account_for_node(resident.node_id)
    return queries.recent_bookings(acct.id, limit) if acct is not None else []


def booking_kind_text(kind: str) -> str:
    return queries.booking_kind_text(kind)


# -- requests ----------------------------------------------------------------------------------
def _request(r: ResidentRequest, room: str = "") -> RequestRecord:
    return RequestRecord(r.id, r.kind, r.text, r.created_at, r.state, r.answer, r.answered_by,
                         r.answered_at, room)


def submit_request(resident: Resident, kind: str, text: str) -> RequestRecord:
    text = text.strip()
    if kind not in REQUEST_KINDS:
        raise PortalError(N_("choose repair or dispute"))
    if not text:
        raise PortalError(N_("say what the request is about"))
    if len(text) > MAX_REQUEST_TEXT:
        raise PortalError(N_("a request has at most {n} characters"), n=MAX_REQUEST_TEXT)
    with write_transaction():
        row = ResidentRequest.create(node=resident.node_id, occupant=resident.occupant_id,
                                     kind=kind, text=text, created_at=time.time())
        audit.record(_who(resident.room), "resident_request", target=resident.room,
                     node_id=resident.node_id, after={"request": row.id, "kind": kind})
    return _request(row, resident.room)


def requests_of(resident: Resident) -> list[RequestRecord]:
    """The room's own requests, newest first."""
    q = ResidentRequest.select().where(ResidentRequest.node == resident.node_id) \
        .order_by(ResidentRequest.id.desc()).limit(100)
    return [_request(r, resident.room) for r in q]


def open_requests(operator: Operator) -> list[RequestRecord]:
    """The requests waiting for the front desk, oldest first (with their room)."""
    from app.core.operators import require

    require(operator, Permission.VIEW)
    q = (ResidentRequest.select(ResidentRequest, Node).join(Node)
         .where(ResidentRequest.state == "open").order_by(ResidentRequest.id))
    return [_request(r, r.node.code or r.node.name) for r in q]


def answer_request(operator: Operator, request_id: int, text: str) -> RequestRecord:
    """The front desk's answer to a request (the resident sees it in the portal)."""
    text = text.strip()
    if not text:
        raise UserFacingError(_("write the answer"))
    row = ResidentRequest.get_or_none(ResidentRequest.id == request_id)
    if row is None:
        raise UserFacingError(_("no request {id}").format(id=request_id))
    node = Node.get_by_id(row.node_id)
    with act(operator, Permission.MANAGE_ACCOUNTS, "resident_request_answer",
             target=node.code or node.name, node_id=node.id,
             before={"state": row.state}) as a:
        now = time.time()
        ResidentRequest.update(state="answered", answer=text, answered_by=operator.name,
                               answered_at=now).where(ResidentRequest.id == row.id).execute()
        a.after = {"state": "answered", "request": row.id}
    return _request(ResidentRequest.get_by_id(row.id), node.code or node.name)
