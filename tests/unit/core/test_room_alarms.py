"""Each room's worst open alarm for the tree, from one query: through the alarm's meter or its
account, the highest level first; cleared alarms and a bus's alarms mark no room; the first look
takes every alarm that exists as known, later looks report the danger alarms raised since."""

from __future__ import annotations

import pytest

from app.core import alarms
from app.simulator.demo_campus import create_demo_campus
from app.storage import accounts, campus
from app.storage.db import close_database
from tests.helpers import operator


@pytest.fixture
def small_campus(tmp_path):
    create_demo_campus(tmp_path / "campus.db", buses=2, meters=4)
    yield
    close_database()


def test_worst_open_alarm_per_room_through_meter_or_account(small_campus):
    admin = operator()
    m1, m2 = campus.meters()[:2]
    acct = accounts.open_account_for_node(m2.node_id)
    alarms.raise_alarm("meter_offline", 2, {"meter": "B01/1", "why": "x"}, meter_id=m1.id)
    alarms.raise_alarm("power_limit", 3, {"meter": "B01/1", "power": 2400}, meter_id=m1.id)
    alarms.raise_alarm("low_balance", 1, {"room": "1-102", "account": acct.number,
                                          "balance": "4.00", "level": 1},
                       account_id=acct.id)
    alarms.raise_alarm("bus_down", 3, {"bus": "B02", "error": "gone"},
                       bus_id=campus.buses()[1].id)
    cleared = campus.meters()[2]
    alarms.raise_alarm("meter_offline", 3, {"meter": "B01/3", "why": "x"}, meter_id=cleared.id)
    alarms.clear_alarm("meter_offline", meter_id=cleared.id)
    rooms = alarms.room_alarms(admin)
    assert set(rooms) == {m1.node_id, m2.node_id}
    assert rooms[m1.node_id].level == 3 and rooms[m1.node_id].count == 2
    assert "power limit" in rooms[m1.node_id].text
    assert rooms[m2.node_id] == (1, rooms[m2.node_id].text, 1)
    assert "low balance" in rooms[m2.node_id].text


def test_raised_since_the_last_look(small_campus):
    admin = operator()
    m1, m2 = campus.meters()[:2]
    alarms.raise_alarm("power_limit", 3, {"meter": "B01/1", "power": 2400}, meter_id=m1.id)
    first = alarms.open_alarms(admin)
    assert first.raised == [] and first.last_id > 0
    assert alarms.open_alarms(admin, after_id=first.last_id).raised == []
    low = alarms.raise_alarm("meter_offline", 2, {"meter": "B01/2", "why": "x"}, meter_id=m2.id)
    danger = alarms.raise_alarm("malicious_load", 3, {"meter": "B01/2", "power": 1500},
                                meter_id=m2.id)
    seen = alarms.open_alarms(admin, after_id=first.last_id)
    assert [(a.id, a.node_id, a.level) for a in seen.raised] == [(danger, m2.node_id, 3)]
    assert seen.last_id == danger and low < danger
    assert alarms.open_alarms(admin, after_id=seen.last_id).raised == []
