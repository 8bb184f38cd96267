"""A room for SMS tests on a real SQLite file: a meter, a tariff, an account with a balance,
occupants with phone numbers, and some days of use."""

from __future__ import annotations

import time
from datetime import date, timedelta
from decimal import Decimal

from app.core import accounts, settings
from app.core.energy import local_day
from app.core.tariffs import TariffVersion, tiers_to_json
from app.storage import accounts as account_store
from app.storage import campus, readings
from app.storage.readings import PollOutcome
from tests.helpers import operator

ADMIN = operator()
NUMBER = "+8613800138000"


def sms_room(code: str = "1-101", phones: tuple[str, ...] = (NUMBER,), *,
             balance_cents: int = 25_00, daily_wh: int | None = 2_000,
             price: str = "0.50") -> tuple[int, int, int]:
    """(account id, room node id, meter id): a station-kept account with ``balance_cents``,
    one occupant per phone, ``daily_wh`` used on each of the last 7 days."""
    root = campus.add_node(None, "campus", "c")
    room = campus.add_node(root, "room", code, code)
    bus = campus.add_bus(f"B-{code}", "tcp://127.0.0.1:1")
    meter = campus.add_meter(bus, 1, "acrel-ddsy1352", "310000001000", room)
    v = TariffVersion("dorm", "2020-01-01", Decimal(price))
    account_store.insert_tariff(v.group, v.starts_on, str(v.price), tiers_to_json(v.tiers),
                                str(v.allowance_kwh), "test")
    acct = accounts.open_account(ADMIN, room, mode="station",
                                 opening_cents=balance_cents).account.id
    for k, phone in enumerate(phones):
        campus.add_occupant(room, f"student {k}", phone=phone)
    if daily_wh is not None:
        for n in range(1, 8):
            day = date.today() - timedelta(days=n)
            t = time.mktime((day.year, day.month, day.day, 12, 0, 0, 0, 0, -1))
            assert local_day(t) == day.isoformat()
            readings.write_batch([PollOutcome(meter, t, True, days=[(day.isoformat(),
                                                                     daily_wh)])])
    return acct, room, meter


def sms_settings(**values: object) -> None:
    """Change SMS settings as an administrator: ``sender="modem", modem_port=...``."""
    for key, value in values.items():
        settings.change(ADMIN, settings.OPTIONS[f"sms.{key}"], value)


def noon(days_ahead: int = 0) -> float:
    """Local noon of today (plus days): outside the default quiet hours."""
    d = date.today() + timedelta(days=days_ahead)
    return time.mktime((d.year, d.month, d.day, 12, 0, 0, 0, 0, -1))
