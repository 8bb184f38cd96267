"""What the screens show, as plain Qt-free questions: a room's overview, finding an account,
the balances of rooms, a meter's recent power, an account's bookings, the tariffs, the campus.

Each takes the operator asking (a viewer may look; the audit log needs its own permission, see
``core/audit.py``) and returns records, never database rows: the views import no storage.
The portal will ask the same questions.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from datetime import date, timedelta

from app.core import balances as live
from app.core.operators import Operator, Permission, require
from app.i18n import N_, _
from app.storage import accounts as store
from app.storage import campus, ledger, readings
from app.storage.accounts import AccountRecord
from app.storage.campus import BusRecord, MeterRecord, NodeRecord, OccupantRecord
from app.storage.ledger import TxnRecord
from app.storage.models import Node, Occupant

__all__ = ["AccountHit", "AccountRecord", "BusRecord", "CampusRecords", "MeterMoney",
           "MeterRecord", "NodeRecord", "OccupantRecord", "RoomBalance", "RoomOverview",
           "TxnRecord"]


@dataclass(frozen=True)
class MeterMoney:
    meter_id: int
    money_cents: int | None  # what the meter holds (meter-keeps-money accounts)
    read_at: float | None


@dataclass(frozen=True)
class Occupancy:
    id: int
    name: str
    person_no: str
    phone: str
    moved_in: float | None = None


@dataclass(frozen=True)
class RoomOverview:
    """A room (or shop) at the desk: its account and balance, who lives there, its meters'
    money, the last days' use and the latest bookings."""

    node_id: int
    room: str
    account: AccountRecord | None
    balance_cents: int | None
    occupants: list[Occupancy]
    meters: list[MeterMoney]
    use_days: list[tuple[str, int]]  # (local day, Wh), oldest first
    bookings: list[TxnRecord] = field(default_factory=list)


@dataclass(frozen=True)
class AccountHit:
    account: AccountRecord
    occupants: list[str]


@dataclass(frozen=True)
class RoomBalance:
    node_id: int
    account_number: str
    mode: str
    #: None while the account waits to take over the meter's money (not known yet)
    balance_cents: int | None


@dataclass(frozen=True)
class CampusRecords:
    nodes: list[NodeRecord]
    meters: list[MeterRecord]
    occupants: list[OccupantRecord]
    buses: list[BusRecord]


def campus_records(operator: Operator) -> CampusRecords:
    """The whole campus tree, meters, current occupants and buses (the window's index)."""
    require(operator, Permission.VIEW)
    return CampusRecords(campus.nodes(), campus.meters(), campus.current_occupants(),
                         campus.buses())


def campus_name() -> str:
    return campus.campus_name()


def room_overview(operator: Operator, node_id: int, *, days: int = 7, bookings: int = 6,
                  account_id: int | None = None) -> RoomOverview:
    """A room at the desk: its open account (or ``account_id``, open or closed), balance,
    occupants, meters' money, the last days' use and the latest bookings (the station's
    consumption charges summed per day, so they do not crowd out recharges)."""
    require(operator, Permission.VIEW)
    node = Node.get_or_none(Node.id == node_id)
    room = (node.code or node.name) if node else str(node_id)
    acct = store.get_account(account_id) if account_id is not None \
        else store.open_account_for_node(node_id)
    occupants = [Occupancy(o.id, o.name, o.person_no, o.phone, o.moved_in)
                 for o in Occupant.select().where((Occupant.node == node_id)
                                                  & Occupant.moved_out.is_null())
                 .order_by(Occupant.id)]
    meter_ids = [m[0] for m in store.meters_of_node(node_id)]
    meters = [MeterMoney(mid, *_money_and_time(mid)) for mid in meter_ids]
    return RoomOverview(node_id, room, acct, live.balance(acct.id) if acct else None,
                        occupants, meters, daily_use(meter_ids, days),
                        recent_bookings(acct.id, bookings) if acct and bookings else [])


#: What each kind of booking is called at the desk.
BOOKING_KIND_TEXT = {
    "recharge": N_("recharge"), "consumption": N_("electricity used"),
    "allowance": N_("free allowance"), "opening": N_("opening balance"), "refund": N_("refund"),
    "carry": N_("carried over"), "correction": N_("correction")}


def booking_kind_text(kind: str) -> str:
    label = BOOKING_KIND_TEXT.get(kind)
    return _(label) if label else kind


#: Booking kinds the station makes by itself many times a day: summed per day for the desk.
DAILY_KINDS = ("consumption", "allowance")


def recent_bookings(account_id: int, limit: int, scan: int = 500) -> list[TxnRecord]:
    """The latest ``limit`` lines of an account's bookings, the billing's own bookings summed
    into one line per kind and local day (its ``id`` is the day's latest booking)."""
    from app.core.energy import local_day

    out: list[TxnRecord] = []
    daily: dict[tuple[str, str], int] = {}  # (kind, day) -> index in out
    for t in ledger.txns(account_id, limit=scan):  # newest first
        day = local_day(t.t)
        if len(out) >= limit and (not daily or day < min(d for _k, d in daily)):
            break  # full, and older than every day still summing
        if t.kind in DAILY_KINDS:
            key = (t.kind, day)
            if key in daily:
                prev = out[daily[key]]
                out[daily[key]] = replace(prev, amount_cents=prev.amount_cents + t.amount_cents)
            elif len(out) < limit:
                daily[key] = len(out)
                out.append(replace(t, memo=day))  # the line's memo names its day
        elif len(out) < limit:
            out.append(t)
    return out


def _money_and_time(meter_id: int) -> tuple[int | None, float | None]:
    money, _count, read_at = store.meter_money(meter_id)
    return money, read_at


def daily_use(meter_ids: list[int], days: int, today: date | None = None
              ) -> list[tuple[str, int]]:
    """Each of the last ``days`` local days with the Wh the meters used, oldest first."""
    today = today or date.today()
    wanted = [(today - timedelta(days=n)).isoformat() for n in range(days - 1, -1, -1)]
    per_day = dict.fromkeys(wanted, 0)
    for meter_id in meter_ids:
        for day, wh in readings.daily_energy(meter_id)[-days * 2:]:
            if day in per_day:
                per_day[day] += int(wh)
    return list(per_day.items())


def find_accounts(operator: Operator, text: str, limit: int = 50,
                  include_closed: bool = True) -> list[AccountHit]:
    """The accounts a room number, account number, occupant name or student number names:
    open ones, and (``include_closed``) a room's last closed one when it has no open one, so
    the desk can say that it is closed."""
    require(operator, Permission.VIEW)
    found = store.find_accounts(text, limit, include_closed) if text.strip() else []
    names: dict[int, list[str]] = {}
    if found:
        for o in Occupant.select(Occupant.node, Occupant.name).where(
                Occupant.node.in_([a.node_id for a in found])
                & Occupant.moved_out.is_null()).order_by(Occupant.id).tuples():
            names.setdefault(o[0], []).append(o[1])
    return [AccountHit(a, names.get(a.node_id, [])) for a in found]


def room_by_number(operator: Operator, code: str) -> tuple[int, AccountRecord | None]:
    """The room or shop numbered ``code`` and its open account (refused when there is none)."""
    from app.errors import UserFacingError
    from app.i18n import _

    require(operator, Permission.VIEW)
    node = Node.get_or_none((Node.code == code.strip()) & Node.kind.in_(("room", "shop")))
    if node is None:
        raise UserFacingError(_("no room or shop {room!r}").format(room=code))
    return node.id, store.open_account_for_node(node.id)


def accounts_of_room(operator: Operator, node_id: int) -> list[AccountRecord]:
    """Every account a room has had, newest first (the open one, if any, first of all)."""
    require(operator, Permission.VIEW)
    return store.accounts_of_node(node_id)


def balance(operator: Operator, account_id: int) -> int:
    require(operator, Permission.VIEW)
    return live.balance(account_id)


def account(operator: Operator, account_id: int) -> AccountRecord | None:
    require(operator, Permission.VIEW)
    return store.get_account(account_id)


def room_balances(operator: Operator, node_ids: list[int] | None = None
                  ) -> dict[int, RoomBalance]:
    """The open account and ledger balance of each room (all rooms, or ``node_ids``)."""
    require(operator, Permission.VIEW)
    if node_ids is not None:  # after an act: a few rooms, not the whole campus
        accounts = [a for n in node_ids if (a := store.open_account_for_node(n)) is not None]
        balances = live.balances([a.id for a in accounts])
    else:
        accounts = store.open_accounts()
        balances = live.balances()
    adopting = set(store.accounts_to_adopt())
    return {a.node_id: RoomBalance(a.node_id, a.number, a.mode,
                                   None if a.id in adopting else balances.get(a.id, 0))
            for a in accounts}


def bookings(operator: Operator, account_id: int, limit: int = 200) -> list[TxnRecord]:
    """An account's bookings, newest first, each with its effect on the balance."""
    require(operator, Permission.VIEW)
    return ledger.txns(account_id, limit=limit)


def power_samples(operator: Operator, meter_id: int, since: float
                  ) -> list[tuple[float, float | None]]:
    """A meter's recent power readings (the live chart's history)."""
    require(operator, Permission.VIEW)
    return readings.samples(meter_id, since)


def tariffs(operator: Operator) -> list[dict]:
    """Every tariff version (group, starts_on, price, tiers, allowance_kwh, created_by)."""
    require(operator, Permission.VIEW)
    return store.tariff_rows()


def open_account_groups(operator: Operator) -> dict[str, int]:
    """The tariff groups of the open accounts, each with how many rooms it holds, by name (what
    the control view offers as a group)."""
    require(operator, Permission.VIEW)
    groups: dict[str, int] = {}
    for a in store.open_accounts():
        groups[a.tariff_group] = groups.get(a.tariff_group, 0) + 1
    return dict(sorted(groups.items()))
