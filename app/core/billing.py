"""Billing: consumption from stored interval energy, at the tariff in force then.

Each closed 15-minute interval of an open account's meters is priced with the tariff version in
force on its day, tiers counted on the month's use so far and the month's free allowance used
first. The exact Decimal cost is carried per account and month; what is booked is the rounded
running total minus what was booked before, so a month's charges equal its exact cost rounded
once, to the cent, however many billing runs it took.

Also here: the two money modes. ``meter`` accounts (the meter keeps the money): the allowance is
given back to the meter as a token, and a meter whose money drifts from the ledger beyond a
tolerance raises a reconciliation alarm. ``station`` accounts: the station trips the meters at
a zero balance and closes them when money returns. Each run first moves to ``station`` the
``meter`` accounts whose meter turned out to lack the token registers
(``accounts.settle_meters_without_tokens``).
"""

from __future__ import annotations

import json
import logging
import time
from dataclasses import dataclass, field
from datetime import date, timedelta
from decimal import Decimal

from app.core import balances as live
from app.core import commands, low_balance, relay_holds
from app.core.accounts import settle_meters_without_tokens
from app.core.alarms import raise_alarm
from app.core.audit import act
from app.core.changes import Changes
from app.core.energy import INTERVAL_S, interval_start, local_day
from app.core.money import format_cents, to_cents
from app.core.operators import Operator, Permission
from app.core.tariffs import TariffVersion, tiers_from_json, tiers_to_json, version_in_force
from app.errors import UserFacingError
from app.i18n import _
from app.storage import accounts as store
from app.storage import alarms as alarm_store
from app.storage import ledger
from app.storage.accounts import AccountRecord
from app.storage.models import (
    BillingCursor,
    BillingMonth,
    IntervalEnergy,
    database,
)

log = logging.getLogger("voltkeeper.billing")
RECONCILE_TOLERANCE_CENTS = 200
RECONCILE_MAX_AGE_S = 600.0


@dataclass
class BillingReport:
    accounts: int = 0
    intervals: int = 0
    charged_cents: int = 0
    allowance_cents: int = 0
    adopted: int = 0
    problems: list[str] = field(default_factory=list)
    alarms: int = 0
    commands: int = 0
    modes_changed: int = 0  # meter-kept accounts moved to the station (meter lacks tokens)


def load_tariffs() -> dict[str, list[TariffVersion]]:
    out: dict[str, list[TariffVersion]] = {}
    for row in store.tariff_rows():
        out.setdefault(row["group"], []).append(TariffVersion(
            row["group"], row["starts_on"], Decimal(row["price"]),
            tiers_from_json(row["tiers"]), Decimal(row["allowance_kwh"])))
    return out


@dataclass(frozen=True)
class TariffChange:
    tariff_id: int
    version: TariffVersion
    changes: Changes


def set_tariff(operator: Operator, version: TariffVersion, *,
               new_group: bool = False) -> TariffChange:
    """Add a tariff version. It starts on a day not billed yet (tomorrow or later: today's
    first intervals are billed already, and a day has one price), never back; a wrong version
    is corrected by a newer one. A group no tariff or account has yet is refused unless
    ``new_group`` (a typo must not make a group of its own)."""
    with act(operator, Permission.SET_TARIFFS, "tariff_set",
             target=f"{version.group} {version.starts_on}") as a:
        if not version.group.strip():
            raise UserFacingError(_("name the tariff group"))
        try:
            day = date.fromisoformat(version.starts_on)
        except ValueError:
            raise UserFacingError(_("{text!r} is not a date (YYYY-MM-DD)").format(
                text=version.starts_on)) from None
        if day.isoformat() <= local_day(time.time()):
            raise UserFacingError(_("a tariff change applies from tomorrow on, never back to "
                                    "a day already billed"))
        if version.tiers and version.tiers[0][1] != version.price:
            raise UserFacingError(_("with tiers, the price is the first tier's price"))
        tariffs = load_tariffs()
        known = set(tariffs) | store.tariff_groups_in_use()
        if version.group not in known and not new_group:
            raise UserFacingError(_("there is no tariff group {group!r} (groups: {known}); a "
                                    "new group is added deliberately").format(
                group=version.group, known=", ".join(sorted(known)) or "-"))
        versions = tariffs.get(version.group, [])
        if any(v.starts_on == version.starts_on for v in versions):
            raise UserFacingError(_("{group} has a version from {day} already; correct it with "
                                    "a version from a later day").format(
                group=version.group, day=version.starts_on))
        current = version_in_force(versions, version.starts_on)
        tariff_id = store.insert_tariff(version.group, version.starts_on, str(version.price),
                                        tiers_to_json(version.tiers),
                                        str(version.allowance_kwh), operator.name)
        a.before = _tariff_json(current) if current else None
        a.after = _tariff_json(version)
    return TariffChange(tariff_id, version, Changes(tariffs=True))


def _tariff_json(v: TariffVersion) -> dict:
    return {"group": v.group, "starts_on": v.starts_on, "price": str(v.price),
            "tiers": tiers_to_json(v.tiers), "allowance_kwh": str(v.allowance_kwh)}


def _adopt(report: BillingReport, operator: str) -> None:
    for acct_id in store.accounts_to_adopt():
        acct = store.get_account(acct_id)
        meters = store.meters_of_node(acct.node_id)
        if len(meters) != 1:
            continue
        meter_id = meters[0][0]
        money, _count, read_at = store.meter_money(meter_id)
        if money is None or read_at is None:
            continue  # not read yet
        with database.atomic():
            if money:
                ledger.post("opening", [("equity:opening", None, money),
                                        ("prepaid", acct_id, -money)],
                            operator=operator, account_id=acct_id,
                            memo=_("balance taken over from the meter"))
            # bill from the interval after the reading: the meter already charged before it
            BillingCursor.insert(meter=meter_id,
                                 billed_until=interval_start(read_at) + INTERVAL_S) \
                .on_conflict_replace().execute()
            store.adopted(acct_id)
        report.adopted += 1


def bill(now: float | None = None, operator: str = "billing",
         account_id: int | None = None, final: bool = False) -> BillingReport:
    """Bill every open account's closed intervals up to ``now``. Safe to run any time.

    ``account_id`` bills one account; ``final`` also bills its interval still running (the
    closing bill: the meter is tripped as the account closes, nothing is used after it)."""
    now = time.time() if now is None else now
    until = interval_start(now) + (INTERVAL_S if final else 0)
    report = BillingReport()
    report.modes_changed = len(settle_meters_without_tokens())
    _adopt(report, operator)
    tariffs = load_tariffs()
    waiting = set(store.accounts_to_adopt())
    for acct in store.open_accounts():
        if acct.id in waiting or (account_id is not None and acct.id != account_id):
            continue
        try:
            _bill_account(acct, until, tariffs.get(acct.tariff_group, []), operator, report,
                          now=now, final=final)
        except _NoTariff as exc:
            report.problems.append(str(exc))
    if account_id is None:
        report.alarms += low_balance.check()
    return report


class _NoTariff(Exception):
    pass


def _bill_account(acct: AccountRecord, until: int, versions: list[TariffVersion],
                  operator: str, report: BillingReport, *, now: float,
                  final: bool = False) -> None:
    meters = store.meters_of_node(acct.node_id)
    if not meters:
        return
    meter_ids = [m[0] for m in meters]
    opened = interval_start(acct.opened_at)
    cursors = {c.meter_id: c.billed_until
               for c in BillingCursor.select().where(BillingCursor.meter.in_(meter_ids))}
    energy: dict[int, int] = {}
    for mid in meter_ids:
        start = max(cursors.get(mid, opened), opened)
        q = IntervalEnergy.select(IntervalEnergy.start, IntervalEnergy.energy_wh).where(
            (IntervalEnergy.meter == mid) & (IntervalEnergy.start >= start)
            & (IntervalEnergy.start < until)).tuples()
        for s, wh in q:
            energy[s] = energy.get(s, 0) + wh
    months: dict[str, BillingMonth] = {}

    def month_row(month: str) -> BillingMonth:
        bm = months.get(month)
        if bm is None:
            bm = BillingMonth.get_or_none((BillingMonth.account == acct.id)
                                          & (BillingMonth.month == month))
            months[month] = bm or BillingMonth(account=acct.id, month=month)
        return months[month]

    for bm in BillingMonth.select().where((BillingMonth.account == acct.id)
                                          & (BillingMonth.settled == False)):  # noqa: E712
        months.setdefault(bm.month, bm)
    touched: set[str] = set()
    for start in sorted(energy):
        day = local_day(start)
        version = version_in_force(versions, day)
        if version is None:
            raise _NoTariff(_("no tariff for group {group} on {day}").format(
                group=acct.tariff_group, day=day))
        bm = month_row(day[:7])
        touched.add(bm.month)
        if bm.open_day != day:  # the day before is over: it is booked below
            bm.open_day, bm.open_cost, bm.open_allowance = day, "0", "0"
        cost, allowance = version.charge(int(bm.energy_wh), energy[start])
        bm.energy_wh = int(bm.energy_wh) + energy[start]
        bm.exact_cost = str(Decimal(bm.exact_cost) + cost)
        bm.exact_allowance = str(Decimal(bm.exact_allowance) + allowance)
        bm.open_cost = str(Decimal(bm.open_cost) + cost)
        bm.open_allowance = str(Decimal(bm.open_allowance) + allowance)
        report.intervals += 1
    today = local_day(until)  # the day not over yet (at a final bill: none)
    with database.atomic():
        for bm in sorted(months.values(), key=lambda m: m.month):
            _book_month(acct, bm, today, final, now, operator, meters[0][0], report,
                        touched=bm.month in touched)
        for mid in meter_ids:
            BillingCursor.insert(meter=mid, billed_until=until).on_conflict_replace().execute()
    report.accounts += 1
    if acct.mode == "station":
        report.commands += enforce_station_balance(acct.id)
    else:
        report.alarms += reconcile(acct.id, versions=versions)


#: A day's consumption booked this soon after the day ended is dated the day's last instant,
#: so the day is in its own month's report (made ``report_files.DUE_AFTER_S`` after midnight on
#: the 1st); booked later (the station was down), it is dated when it is booked, and a report
#: already made stays true.
BACKDATE_GRACE_S = 20 * 60


def _book_month(acct: AccountRecord, bm: BillingMonth, today: str, final: bool, now: float,
                operator: str, meter_id: int, report: BillingReport, *,
                touched: bool) -> None:
    """Book what the month's days that are over cost and were not booked yet (all of it at a
    final bill), and store the month's state. The month's bookings sum to its exact cost
    rounded once."""
    day_over = final or bm.open_day < today
    cost, allowance = Decimal(bm.exact_cost), Decimal(bm.exact_allowance)
    if not day_over:
        cost -= Decimal(bm.open_cost)
        allowance -= Decimal(bm.open_allowance)
    charge = to_cents(cost) - int(bm.booked_cents)
    allow = to_cents(allowance) - int(bm.booked_allowance_cents)
    through = bm.open_day if day_over else _day_before(today)
    t = now
    if not final and through:
        day_end = _day_start(_day_after(through))
        if day_end <= now <= day_end + BACKDATE_GRACE_S:
            t = day_end - 0.001
    memo_day = {"month": bm.month, "day": through or bm.month}
    if charge:
        ledger.post("consumption", [("prepaid", acct.id, charge),
                                    ("revenue:electricity", None, -charge)],
                    operator=operator, account_id=acct.id, t=t,
                    memo=_("electricity {month}, through {day}").format(**memo_day))
        report.charged_cents += charge
    if allow:
        allowance_txn = ledger.post(
            "allowance", [("expense:allowance", None, allow),
                          ("revenue:electricity", None, -allow)],
            operator=operator, account_id=acct.id, t=t,
            memo=_("free allowance {month}, through {day}").format(**memo_day))
        report.allowance_cents += allow
        if acct.mode == "meter":
            # the meter charged these kWh itself: give their value back to it
            _queue_recharge_token(meter_id, allow, allowance_txn)
            report.commands += 1
    bm.booked_cents = int(bm.booked_cents) + charge
    bm.booked_allowance_cents = int(bm.booked_allowance_cents) + allow
    settled = day_over and (final or bm.month < today[:7])
    if not (touched or charge or allow or settled):
        return  # nothing new: no write
    BillingMonth.insert(account=acct.id, month=bm.month, energy_wh=bm.energy_wh,
                        exact_cost=bm.exact_cost, booked_cents=bm.booked_cents,
                        exact_allowance=bm.exact_allowance,
                        booked_allowance_cents=bm.booked_allowance_cents,
                        open_day=bm.open_day, open_cost=bm.open_cost,
                        open_allowance=bm.open_allowance, settled=settled) \
        .on_conflict_replace().execute()


def _day_start(day: str) -> float:
    return time.mktime(time.strptime(day, "%Y-%m-%d"))


def _day_after(day: str) -> str:
    return (date.fromisoformat(day) + timedelta(days=1)).isoformat()


def _day_before(day: str) -> str:
    return (date.fromisoformat(day) - timedelta(days=1)).isoformat()


def _queue_recharge_token(meter_id: int, cents: int, txn_id: int | None,
                          receipt_no: int | None = None) -> int:
    """Queue a token for the meter. Its purchase count is given at the first delivery, from
    the meter's own count (see core/outbox.py), never guessed here."""
    return commands.queue(meter_id, "recharge", amount_cents=cents, txn_id=txn_id,
                          receipt_no=receipt_no)


def enforce_station_balance(account_id: int) -> int:
    """Station-keeps-money accounts: hold the meters open for arrears at a zero balance, end
    the hold when money returns (``core/relay_holds``: the meter closes unless it is held for
    another reason; keep-power meters are never tripped). Returns how many meters changed."""
    acct = store.get_account(account_id)
    bal = live.balance(account_id)
    meter_ids = [meter_id for meter_id, *_rest in store.meters_of_node(acct.node_id)]
    if bal <= 0:
        return len(relay_holds.hold(meter_ids, "arrears", detail=format_cents(bal)))
    return len(relay_holds.release(meter_ids, "arrears", close_unheld=True))


def open_reconciliation_diffs(meter_id: int, account_id: int) -> list[int]:
    """The differences (cents) of the account's open reconciliation alarms."""
    diffs = []
    for a in alarm_store.find_alarms(kind="reconciliation", meter_ids=[meter_id],
                                     account_id=account_id):
        try:
            params = json.loads(a.data)
            diffs.append(int(params.get("diff_cents",
                                        int(params["meter_cents"]) - int(params["ledger_cents"]))))
        except (ValueError, KeyError, TypeError):
            diffs.append(0)  # unreadable: any difference beyond the tolerance is news
    return diffs


def reconcile(account_id: int, tolerance_cents: int = RECONCILE_TOLERANCE_CENTS,
              now: float | None = None, versions: list[TariffVersion] | None = None) -> int:
    """Meter-keeps-money accounts: compare the meter's money with the ledger. Returns 1 if a
    reconciliation alarm was raised. ``versions``: the account's tariff versions, when the
    caller (a billing run) has them already."""
    now = time.time() if now is None else now
    acct = store.get_account(account_id)
    meters = store.meters_of_node(acct.node_id)
    if len(meters) != 1:
        return 0
    meter_id = meters[0][0]
    money, count, read_at = store.meter_money(meter_id)
    if money is None or read_at is None or now - read_at > RECONCILE_MAX_AGE_S:
        return 0
    if store.pending_count(meter_id):
        return 0  # money on its way: compare once it has arrived
    applied = store.last_applied_token(meter_id)
    if applied is not None and (read_at <= applied[0] or count is None
                                or (applied[1] is not None and count < applied[1])):
        return 0  # the reading is older than the last token the meter took: compare later
    bal = live.balance(account_id)
    # what the meter charged in the interval not billed yet
    cursor = BillingCursor.get_or_none(BillingCursor.meter == meter_id)
    unbilled_wh = 0
    if cursor is not None:
        unbilled_wh = sum(wh for (wh,) in IntervalEnergy.select(IntervalEnergy.energy_wh).where(
            (IntervalEnergy.meter == meter_id)
            & (IntervalEnergy.start >= cursor.billed_until)).tuples())
    if versions is None:
        versions = load_tariffs().get(acct.tariff_group, [])
    version = version_in_force(versions, local_day(now))
    unbilled = to_cents(Decimal(unbilled_wh) / 1000 * version.price) if version else 0
    diff = money - (bal - unbilled)
    if abs(diff) <= tolerance_cents:
        return 0
    # one alarm per difference: a new, larger one is raised even while an older one is open
    raised = open_reconciliation_diffs(meter_id, account_id)
    if any((d < 0) == (diff < 0) and abs(diff) <= abs(d) + tolerance_cents for d in raised):
        return 0
    raise_alarm("reconciliation", 2,
                {"meter_money": format_cents(money), "ledger": format_cents(bal - unbilled),
                 "diff": format_cents(diff), "meter_cents": money,
                 "ledger_cents": bal - unbilled, "diff_cents": diff},
                meter_id=meter_id, account_id=account_id, t=now, once=False)
    log.warning("reconciliation alarm for account %s: meter %s, ledger %s", account_id, money,
                bal - unbilled)
    return 1
