"""The bus health window, opened from the Station menu, on the seed's campus (12 buses of 27
meters) with health figures as the pollers keep them: a bus with a meter spoilt by CRC errors,
a fair meter, an offline one and one without traffic; strips coloured by health, a click on a
cell selects the meter, the campus's worst meters listed; screenshots in English and Chinese."""

from __future__ import annotations

import time

import pytest
from PySide6.QtCore import Qt

from app.storage import campus, comm_history, readings
from app.storage.comm_history import CommRow
from app.storage.readings import PollOutcome
from app.ui.language import apply_language
from app.views.bus_health_view import STRIP_COLUMN, meter_tooltip

from .conftest import store_readings


def _figures() -> dict[str, int]:
    """Ten minutes of figures for every meter; returns the ids of the special ones."""
    buses = campus.buses()
    now = int(time.time() // 60 * 60)
    by_bus = {b.id: campus.meters(b.id) for b in buses}
    b3 = by_bus[buses[2].id]
    special = {"crc": b3[6].id, "fair": b3[12].id, "offline": b3[20].id, "idle": b3[26].id,
               "slow": by_bus[buses[7].id][3].id}
    rows = []
    for k in range(1, 11):
        start = now - 60 * k
        for b in buses:
            for m in by_bus[b.id]:
                if m.id == special["idle"]:
                    continue
                row = CommRow(b.id, m.id, start, polls=2, ok=2, transactions=8,
                              latency_sum_ms=2 * 78.0, latency_max_ms=80.0 + m.address / 10)
                if m.id == special["crc"]:
                    row.ok, row.transactions, row.crc_errors = 1, 10, 3
                    row.latency_sum_ms = row.latency_max_ms = 81.0
                elif m.id == special["fair"]:
                    row.transactions, row.timeouts = 20, 1
                elif m.id == special["offline"]:
                    row.polls, row.ok, row.transactions, row.timeouts = 1, 0, 1, 1
                elif m.id == special["slow"]:
                    row.latency_max_ms = 480.0
                rows.append(row)
            rows.append(CommRow(b.id, 0, start, cycles=12, cycle_sum_s=12 * 5.3,
                                cycle_max_s=6.1 + b.id / 10, wire_limit_s=6.21))
    comm_history.store(rows)
    readings.write_batch([PollOutcome(special["offline"], time.time(), False,
                                      error_kind="timeout", error="no answer", online=False,
                                      online_changed=True)])
    return special


def _open(qtbot, window):
    window.trigger("bus_health")
    view = window.dialogs["bus_health"]
    qtbot.waitUntil(lambda: view.report is not None and view.buses.rowCount() == 12,
                    timeout=10_000)
    return view


def test_strips_coloured_by_health_and_a_click_selects_the_meter(qtbot, seed_campus,
                                                                  open_window):
    store_readings()
    special = _figures()
    window = open_window(seed_campus)
    assert window.actions_["bus_health"].isVisible()
    view = _open(qtbot, window)
    b03 = next(b for b in view.report.buses if b.name == "B03")
    assert b03.health == "fair" and b03.figures.crc_errors == 30
    health = {m.meter_id: m.health for m in b03.meters}
    assert health[special["crc"]] == "poor" and health[special["fair"]] == "fair"
    assert health[special["offline"]] == "offline" and health[special["idle"]] == "idle"
    row = next(r for r in range(12) if view.buses.item(r, 0).text() == "B03")
    strip = view.buses.cellWidget(row, STRIP_COLUMN)
    assert [m.address for m in strip.meters] == list(range(1, 28))
    assert view.buses.item(row, 9).text() == "6.21"
    # a click on the CRC meter's cell: its bus's meters below, it selected
    crc = next(m for m in strip.meters if m.meter_id == special["crc"])
    index = strip.meters.index(crc)
    qtbot.mouseClick(strip, Qt.MouseButton.LeftButton, pos=strip.cell_rect(index).center())
    assert view.chosen_meter() == special["crc"]
    assert view.meters_label.text().endswith("B03, worst first")
    assert view.meters.item(0, 0).data(Qt.ItemDataRole.UserRole) == special["offline"]
    assert view.meters.item(1, 0).data(Qt.ItemDataRole.UserRole) == special["crc"]
    assert "CRC errors 30" in meter_tooltip(crc) and crc.room in meter_tooltip(crc)
    # the campus's worst: offline first (nothing answered), then the CRC meter, the fair one,
    # then the slowest of the healthy ones
    worst = [int(view.worst.item(r, 2).text()) for r in range(4)]  # their addresses
    assert worst == [21, 7, 13, 4]
    assert view.worst.item(3, 1).text() == "B08"
    # another range asks again, and stays selected
    asked = view.job
    view.range.setCurrentIndex(1)
    qtbot.waitUntil(lambda: view.job is not asked and view.job.done, timeout=10_000)
    assert view.chosen_meter() == special["crc"] and view.timer.interval() == 10_000
    # refreshed by itself while open
    view.timer.setInterval(200)
    before = view.refreshed
    qtbot.waitUntil(lambda: view.refreshed >= before + 2, timeout=10_000)
    view.close()
    assert not view.timer.isActive()


@pytest.mark.parametrize("language", ["en", "zh_CN"])
def test_screenshots(qtbot, seed_campus, open_window, shoot, language):
    store_readings()
    special = _figures()
    apply_language(language)
    window = open_window(seed_campus)
    view = _open(qtbot, window)
    view.choose_meter(campus.buses()[2].id, special["crc"])
    suffix = "" if language == "en" else f"_{language}"
    shoot(view, f"bus_health{suffix}")
    view.tabs.setCurrentIndex(1)
    shoot(view, f"bus_health_worst{suffix}")
