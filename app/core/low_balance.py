"""Low-balance alarms: level 1 below the first threshold (default 20 yuan), level 2 below the
second (5 yuan), level 3 in arrears (zero or less); thresholds in the station's settings.

Each level fires once per crossing: an account whose balance sinks through level 1 and then
level 2 gets one alarm of each, however many billing runs see it there; a recharge that lifts
it above the first threshold clears them and so re-arms every level. What has fired is the open
``low_balance`` alarms of the account (no state of its own: a restart changes nothing). The
balance is the ledger's (what the station holds for the account). Run after each billing run.

A level newly raised also texts the room's occupants (``sms_outbox.notify``, kind
``low_balance_<level>``, event ``low_balance:<alarm id>``), in the alarm's transaction: each
crossing is texted once, and the next crossing after a recharge is a new alarm and a new text.
"""

from __future__ import annotations

import json

from app.core import balances as live
from app.core import settings
from app.core.alarms import clear_alarm, raise_alarm
from app.core.money import format_cents
from app.core.sms_outbox import notify
from app.storage import accounts as account_store
from app.storage import alarms as alarm_store
from app.storage.db import write_transaction


def level_of(balance_cents: int, first_cents: int, second_cents: int) -> int:
    """0 (fine), 1, 2 or 3 (arrears)."""
    if balance_cents <= 0:
        return 3
    if balance_cents < second_cents:
        return 2
    if balance_cents < first_cents:
        return 1
    return 0


def _fired() -> dict[int, int]:
    """Per account, the highest level of its open low-balance alarms."""
    out: dict[int, int] = {}
    for a in alarm_store.find_alarms(kind="low_balance", limit=1_000_000):
        if a.account_id is None:
            continue
        try:
            level = int(json.loads(a.data).get("level", 0))
        except (ValueError, AttributeError):
            level = 0
        out[a.account_id] = max(out.get(a.account_id, 0), level)
    return out


def check(balances: dict[int, int] | None = None) -> int:
    """Raise the levels newly crossed, re-arm the accounts back above the first threshold.
    Returns how many alarms were raised."""
    first = settings.get(settings.LOW_BALANCE_1_YUAN) * 100
    second = settings.get(settings.LOW_BALANCE_2_YUAN) * 100
    balances = live.balances() if balances is None else balances
    fired = _fired()
    raised = 0
    for acct in account_store.open_accounts():
        balance = balances.get(acct.id, 0)
        level = level_of(balance, first, second)
        done = fired.get(acct.id, 0)
        if level == 0 and done:
            clear_alarm("low_balance", account_id=acct.id)
        elif level > done:
            with write_transaction():
                alarm_id = raise_alarm("low_balance", level, {
                    "room": acct.room, "account": acct.number,
                    "balance": format_cents(balance, symbol=True), "level": level},
                    account_id=acct.id, once=False)
                notify(f"low_balance_{level}", acct.id, event=f"low_balance:{alarm_id}",
                       params={"balance_cents": balance})
            raised += 1
    return raised
