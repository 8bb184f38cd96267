"""What the automatic-control screen is told: a stored window written back as the operator types
it (and parsed again to the same window), the buildings and floors each named by the one word
the operations accept, and a hold's reason, detail and end in words."""

from __future__ import annotations

import itertools

import pytest

from app.core import control, control_rules, relay_holds, schedules
from app.core.control_rules import window_text
from app.storage import campus
from app.storage.db import open_database
from tests.helpers import operator


@pytest.mark.parametrize("days", [set(c) for n in range(1, 8)
                                  for c in itertools.combinations(range(7), n)])
def test_a_window_written_back_parses_to_itself(days):
    stored = {"days": sorted(days), "off": "23:00", "on": "06:00"}
    text = window_text(stored)
    assert schedules.parse_window(text).as_json() == stored


def test_window_words():
    assert window_text({"days": [6, 0, 1, 2, 3], "off": "23:00", "on": "06:00"}) \
        == "Sun-Thu 23:00-06:00"
    assert window_text({"days": [0, 2], "off": "01:00", "on": "05:30"}) == "Mon,Wed 01:00-05:30"
    assert window_text({"days": list(range(7)), "off": "01:00", "on": "06:00"}) \
        == "Mon-Sun 01:00-06:00"
    assert window_text({"days": list(range(7)), "off": "01:00", "on": "06:00"},
                       with_days=False) == "01:00-06:00"


@pytest.fixture
def campus_db(tmp_path):
    db = open_database(tmp_path / "r.db")
    root = campus.add_node(None, "campus", "湘塘校区", "XT")
    bus = campus.add_bus("B01", "tcp://127.0.0.1:1")
    meters = {}
    for b in (1, 2):
        building = campus.add_node(root, "building", f"{b}号宿舍楼", str(b))
        floor = campus.add_node(building, "floor", "1F", f"{b}-1F")
        room = campus.add_node(floor, "room", f"{b}-101", f"{b}-101")
        meters[f"{b}-101"] = campus.add_meter(bus, b, "acrel-ddsy1352", f"31000000000{b}", room)
    yield meters
    db.close()


def test_every_floor_is_named_by_its_code(campus_db):
    snap = control_rules.snapshot(operator("viewer"))
    assert [(t.path, t.key) for t in snap.targets] == [
        ("湘塘校区", "湘塘校区"), ("1号宿舍楼", "1号宿舍楼"), ("1号宿舍楼 › 1F", "1-1F"),
        ("2号宿舍楼", "2号宿舍楼"), ("2号宿舍楼 › 1F", "2-1F")]
    for t in snap.targets:  # each names its own node to the operations
        assert control.named_node(t.key) == t.node_id


def test_holds_in_words(campus_db):
    relay_holds.hold([campus_db["1-101"]], "power_limit", detail="1850", restore_at=2e9)
    relay_holds.hold([campus_db["2-101"]], "schedule", source="熄灯",
                     detail="2026-06-02 06:00")
    rows = control_rules.hold_rows(operator("cashier"))
    assert [(r.room, r.meter, r.reason_text, r.detail, r.source, r.restore_at, r.ends)
            for r in rows] == [
        ("1-101", "B01/1", "over its power limit", "drawing 1850 W", "the station", 2e9,
         "until an operator acts"),
        ("2-101", "B01/2", "lights-out schedule", "", "熄灯", None,
         "when the window ends (2026-06-02 06:00)")]
