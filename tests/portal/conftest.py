"""The residents' portal's tests: a demo campus with two rooms ready to sign in."""

from __future__ import annotations

import time
from dataclasses import dataclass
from datetime import date, timedelta

import pytest

from app.core import accounts, residents
from app.core.energy import local_day
from app.core.recharge import recharge
from app.simulator.demo_campus import create_demo_campus
from app.storage import holds, readings
from app.storage.models import Meter, Node, Occupant, database
from app.storage.readings import PollOutcome
from tests.helpers import operator

CASHIER = operator("cashier", "desk")


@dataclass
class Room:
    node_id: int
    code: str
    meter_id: int
    account_id: int
    occupant_id: int
    person_no: str
    password: str


@dataclass
class Campus:
    db: object
    a: Room
    b: Room


def _room(node: Node, opening_cents: int) -> Room:
    meter = Meter.get(Meter.node == node.id)
    occ = Occupant.select().where(Occupant.node == node.id).order_by(Occupant.id).first()
    acct = accounts.open_account(CASHIER, node.id, mode="station",
                                 opening_cents=opening_cents).account.id
    password = residents.issue_initial_password(CASHIER, occ.id)
    return Room(node.id, node.code, meter.id, acct, occ.id, occ.person_no, password)


@pytest.fixture
def demo(tmp_path) -> Campus:
    """Rooms A (123.45 recharged on 0, a power-limit trip, 30 days of use) and B (9.99)."""
    db_path = tmp_path / "campus.db"
    create_demo_campus(db_path, buses=1, meters=4, open_accounts=False, password="demo-pass-1")
    rooms = list(Node.select().join(Meter, on=(Meter.node == Node.id))
                 .where(Node.kind == "room").order_by(Node.id).distinct())
    a, b = _room(rooms[0], 0), _room(rooms[1], 999)
    recharge(CASHIER, a.account_id, 12345, "cash")
    today = date.today()
    for n in range(30):
        day = today - timedelta(days=n)
        t = time.mktime(day.timetuple()) + 3600
        readings.write_batch([PollOutcome(a.meter_id, t, True, days=[(local_day(t), 1000 + n)])])
    readings.write_batch([PollOutcome(b.meter_id, time.time(), True,
                                      days=[(local_day(time.time()), 77777)])])
    holds.add_hold(a.meter_id, "power_limit", "", time.time(), None, "2300")
    yield Campus(db_path, a, b)
    database.close()
