"""The window's campus index and live store: Qt-free, on a real demo database."""

from __future__ import annotations

import pytest

from app.core import queries
from app.core.live import BusLive, LiveBatch, MeterLive
from app.drivers.meter_values import MeterValues
from app.simulator.demo_campus import create_demo_campus
from app.storage.db import close_database
from app.ui.campus_index import CampusIndex
from app.ui.live_store import LiveStore, MeterState, meter_state, worst
from tests.helpers import operator


@pytest.fixture(scope="module")
def index(tmp_path_factory):
    create_demo_campus(tmp_path_factory.mktemp("idx") / "campus.db", buses=4, meters=27)
    yield CampusIndex.load(queries.campus_records(operator()))
    close_database()


def test_tree_shape(index):
    assert index.count("building") == 3  # two dormitory buildings and the shops street
    assert index.count("room") == 27 * 4 - 4 and index.count("shop") == 4
    root = index.children[None][0]
    assert index.nodes[root].kind == "campus"
    room = index.exact("2-305")
    assert index.path(room) == "2号宿舍楼 › 3F › 2-305"
    assert [index.nodes[a].kind for a in index.ancestors(room)] == ["floor", "building",
                                                                     "campus"]
    for node_id, row in index.row_of.items():
        assert index.children[index.parent_of(node_id)][row] == node_id
    building = index.parent_of(index.parent_of(room))
    assert len(index.leaves_under(building)) == 52


@pytest.mark.parametrize("text", ["1-204", " 1-204 ", "b01/14", "B1/14", "1/14", "B01 14",
                                  "310000001014"])
def test_search_finds_a_room_by_code_meter_or_serial(index, text):
    room = index.exact("1-204")
    assert index.search(text)[0] == room
    assert index.exact(text) == room


def test_search_by_occupant_name_and_number(index):
    room = index.exact("2-110")
    person = index.occupants_of[room][0]
    assert room in index.search(person.name)
    assert index.search(person.person_no) == [room]


def test_search_ranks_exact_then_rooms(index):
    found = index.search("1-10")
    assert [index.nodes[n].code for n in found] == [f"1-10{r}" for r in range(1, 10)]
    building = index.exact("1号宿舍楼")
    assert index.nodes[building].kind == "building" and index.search("1号宿舍楼")[0] == building
    assert index.search("") == [] and index.search("no such room") == []
    assert index.search("B99/1") == []


def test_meter_state_priorities():
    base = MeterLive(1, True, MeterValues(read_at=1.0, relay_closed=True,
                                          remaining_money_cents=5000, control_mode="auto"))
    assert meter_state(None) is MeterState.NO_DATA
    assert meter_state(base) is MeterState.ONLINE
    assert meter_state(MeterLive(1, True, MeterValues(1.0, remaining_money_cents=999))) \
        is MeterState.LOW_BALANCE
    assert meter_state(MeterLive(1, True, MeterValues(1.0, remaining_money_cents=1000))) \
        is MeterState.ONLINE
    keep = MeterLive(1, True, MeterValues(1.0, remaining_money_cents=10, relay_closed=True,
                                          control_mode="keep_power"))
    assert meter_state(keep) is MeterState.KEEP_POWER
    tripped = MeterLive(1, True, MeterValues(1.0, remaining_money_cents=0, relay_closed=False))
    assert meter_state(tripped) is MeterState.TRIPPED
    assert meter_state(MeterLive(1, False, MeterValues(1.0, relay_closed=False))) \
        is MeterState.OFFLINE
    assert worst([MeterState.ONLINE, MeterState.TRIPPED, MeterState.LOW_BALANCE]) \
        is MeterState.TRIPPED


def test_store_keeps_values_through_a_failed_poll_and_reports_only_changes():
    store = LiveStore()
    read = MeterLive(7, True, MeterValues(read_at=10.0, voltage_v=220.0, active_power_w=100.0,
                                          remaining_money_cents=123))
    assert store.apply(LiveBatch([read])).meters == [read]
    assert store.apply(LiveBatch([read])).meters == []  # nothing new
    failed = MeterLive(7, False)  # what a failed poll carries: no values
    changed = store.apply(LiveBatch([failed])).meters
    assert changed[0].online is False and changed[0].values.voltage_v == 220.0
    newer = MeterLive(7, True, MeterValues(read_at=20.0, voltage_v=221.0))
    again = MeterLive(7, True, MeterValues(read_at=30.0, voltage_v=222.0))
    assert store.apply(LiveBatch([newer, again])).meters == [again]  # one per meter
    store.apply(LiveBatch(buses=[BusLive(1, "polling", 0.4, 50.0, "", 27, 27),
                                 BusLive(2, "down", 2.5, 40.0, "refused", 0, 27)]))
    assert store.full_cycle_s() == 2.5 and store.last_cycle_at() == 50.0
    assert store.healthy_buses([1, 2, 3]) == 1
