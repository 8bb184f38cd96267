"""The wiring plan: read from Excel with Chinese headers, checked whole, bound through the campus
operations (audited)."""

from __future__ import annotations

import pytest
from openpyxl import Workbook

from app.core import wiring_plan
from app.core.operators import PermissionDenied
from app.errors import UserFacingError
from app.storage import campus
from app.storage.db import open_database
from app.storage.models import AuditEntry
from tests.helpers import operator

TECH = operator("maintenance", "wang")


@pytest.fixture
def db(tmp_path):
    d = open_database(tmp_path / "plan.db")
    root = campus.add_node(None, "campus", "湘塘校区")
    building = campus.add_node(root, "building", "3号楼", "3")
    floor = campus.add_node(building, "floor", "2F", "3-2F")
    for r in (201, 202, 203):
        campus.add_node(floor, "room", f"3-{r}", f"3-{r}")
    bus = campus.add_bus("B03", "tcp://127.0.0.1:1502")
    campus.add_meter(bus, 1, "acrel-ddsy1352", "", None)  # wired, not bound yet
    yield d, bus
    d.close()


def _plan(path, rows, headers=("房间", "总线", "地址", "表号")):
    wb = Workbook()
    ws = wb.active
    ws.append(["3号楼 2层 接线表"])  # a title row above the header
    ws.append(list(headers))
    for row in rows:
        ws.append(list(row))
    wb.save(path)
    return path


def test_a_plan_binds_new_and_wired_meters(db, tmp_path):
    _d, bus = db
    plan = _plan(tmp_path / "plan.xlsx", [("3-201", "B03", 1, "310000000301"),
                                          ("3-202", "B03", 2, "310000000302"),
                                          ("3-203", "B03", 3, 310000000303)])
    rows = wiring_plan.read_plan(plan)
    assert [(r.room, r.address, r.serial) for r in rows] == [
        ("3-201", 1, "310000000301"), ("3-202", 2, "310000000302"),
        ("3-203", 3, "310000000303")]
    result = wiring_plan.bind(TECH, rows)
    assert (len(result.added), len(result.changed), len(result.unchanged)) == (2, 1, 0)
    rooms = {n.id: n.code for n in campus.nodes()}
    assert [(m.address, m.serial, rooms[m.node_id]) for m in campus.meters(bus)] == [
        (1, "310000000301", "3-201"), (2, "310000000302", "3-202"),
        (3, "310000000303", "3-203")]
    assert AuditEntry.select().where(AuditEntry.operator == "wang").count() >= 4
    again = wiring_plan.bind(TECH, rows)
    assert (len(again.added), len(again.changed), len(again.unchanged)) == (0, 0, 3)


def test_a_bad_plan_changes_nothing_and_names_every_bad_row(db, tmp_path):
    _d, bus = db
    rows = wiring_plan.read_plan(_plan(tmp_path / "p.xlsx", [
        ("3-201", "B03", 2, "1"), ("3-299", "B03", 3, "2"), ("3-202", "B09", 4, "3"),
        ("3-203", "B03", 2, "4")]))
    with pytest.raises(UserFacingError) as err:
        wiring_plan.bind(TECH, rows)
    text = str(err.value)
    assert "line 4" in text and "3-299" in text and "B09" in text and "line 6" in text
    assert len(campus.meters(bus)) == 1
    with pytest.raises(UserFacingError, match="not 1 to 247"):
        wiring_plan.read_plan(_plan(tmp_path / "q.xlsx", [("3-201", "B03", 300, "")]))
    with pytest.raises(UserFacingError, match="no header row"):
        wiring_plan.read_plan(_plan(tmp_path / "r.xlsx", [], headers=("a", "b")))
    with pytest.raises(PermissionDenied):
        wiring_plan.bind(operator("cashier", "alice"), rows[:1])


def test_english_headers_and_csv(db, tmp_path):
    path = tmp_path / "plan.csv"
    path.write_text("Room,Bus,Address,Serial,Model\n3-203,B03,7,310000000307,acrel-ddsy1352\n",
                    encoding="utf-8")
    rows = wiring_plan.read_plan(path)
    assert rows == [wiring_plan.PlanRow(2, "3-203", "B03", 7, "310000000307",
                                        "acrel-ddsy1352")]
