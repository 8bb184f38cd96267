"""Meter setup and the raw register tool, opened from a room's panel while this window polls the
bus (the tools take the bus from the window's own poller and give it back): a power limit
changed and read back, a register read and written; hidden from a cashier; screenshots in
English and Chinese, looked at."""

from __future__ import annotations

from app.ui.language import apply_language
from app.views.meter_setup_dialog import MeterSetupDialog
from app.views.raw_register_dialog import RawRegisterDialog


def _room_with_meter(window) -> tuple[int, int]:
    idx = window.ctx.index
    meter_id = min(m for m, rec in idx.meters.items() if rec.node_id is not None
                   and idx.meters[m].address == 2)
    return idx.meters[meter_id].node_id, meter_id


def test_meter_setup_and_registers_from_the_room_panel(qtbot, live_campus, open_window, shoot):
    db, sim = live_campus
    window = open_window(db, start=True, role="maintenance")
    qtbot.waitUntil(lambda: window.ctx.source.service is not None, timeout=10_000)
    node_id, meter_id = _room_with_meter(window)
    window.tree.select_node(node_id)
    panel = window.panel
    qtbot.waitUntil(lambda: panel.meter_id == meter_id, timeout=5_000)
    assert panel.setup_button.isVisible() and panel.registers_button.isVisible()
    shoot(window, "meter_tools_panel")

    panel.setup_button.click()
    setup: MeterSetupDialog = window.dialogs["meter_setup"]
    qtbot.waitUntil(lambda: setup.table.rowCount() >= 8, timeout=20_000)
    cells = {setup.table.item(r, 0).text(): setup.table.item(r, 1).text()
             for r in range(setup.table.rowCount())}
    assert cells["Modbus address"] == "2" and cells["Baud rate"] == "9600"
    assert cells["Power limit"] == f"{sim.meter(1, 2).settings.power_limit_w} W"
    setup.setting.setCurrentIndex(setup.setting.findData("address"))
    assert "database follow" in setup.hint.text()
    setup.setting.setCurrentIndex(setup.setting.findData("power_limit"))
    setup.value.setText("1900")
    asked: list[str] = []
    setup.confirm = lambda text: asked.append(text) or True
    setup.change_button.click()
    qtbot.waitUntil(lambda: sim.meter(1, 2).settings.power_limit_w == 1900, timeout=20_000)
    qtbot.waitUntil(lambda: "1900" in setup.message.text() and setup.refresh_button.isEnabled()
                    and "1900 W" in [setup.table.item(r, 1).text()
                                     for r in range(setup.table.rowCount())], timeout=20_000)
    assert asked and "1900" in asked[0]
    shoot(setup, "meter_setup")

    panel.registers_button.click()
    raw: RawRegisterDialog = window.dialogs["raw_registers"]
    assert raw.bus.currentText() == "B01" and raw.unit.value() == 2
    raw.function.setCurrentIndex(raw.function.findData(3))
    raw.start.setText("0x0481")
    raw.count.setValue(1)
    raw.send_button.click()
    qtbot.waitUntil(lambda: raw.result.rowCount() == 1, timeout=20_000)
    assert raw.result.item(0, 2).text() == "1900 (0x076C)"
    assert raw.warning.text() == ""
    raw.function.setCurrentIndex(raw.function.findData(6))
    assert "audit log" in raw.warning.text() and raw.send_button.text() == "Write…"
    raw.values.setText("2000")
    raw.confirm = lambda text: "0x0481" in text
    raw.send_button.click()
    qtbot.waitUntil(lambda: sim.meter(1, 2).settings.power_limit_w == 2000, timeout=20_000)
    qtbot.waitUntil(lambda: raw.history.rowCount() == 2, timeout=10_000)
    assert "2000" in raw.history.item(0, 6).text()
    # a register the meter does not have: its exception, in red, in the history too
    raw.function.setCurrentIndex(raw.function.findData(3))
    raw.start.setText("0x7000")
    raw.send_button.click()
    qtbot.waitUntil(lambda: raw.history.rowCount() == 3, timeout=20_000)
    assert "exception 2" in raw.message.text()
    raw.function.setCurrentIndex(raw.function.findData(16))
    raw.dtype.setCurrentText("u32")
    raw.start.setText("0x005D")
    raw.values.setText("5880")
    shoot(raw, "raw_registers")

    # the address: the meter moves, the database and the window follow
    setup.setting.setCurrentIndex(setup.setting.findData("address"))
    setup.value.setText("12")
    setup.change_button.click()
    qtbot.waitUntil(lambda: "answers at address 12" in setup.message.text(), timeout=20_000)
    assert sim.meter(1, 12) is not None and 2 not in sim.campus.meters_on(1)
    qtbot.waitUntil(lambda: "B01/12" in setup.head.text() and setup.refresh_button.isEnabled(),
                    timeout=20_000)
    assert "to 12?" in asked[-1] and "database" in asked[-1]

    apply_language("zh_CN")
    zh_setup = MeterSetupDialog(window.ctx, meter_id, window)
    qtbot.addWidget(zh_setup)
    zh_setup.show()
    qtbot.waitUntil(lambda: zh_setup.table.rowCount() >= 8, timeout=20_000)
    zh_setup.setting.setCurrentIndex(zh_setup.setting.findData("address"))
    shoot(zh_setup, "meter_setup_zh")
    zh_raw = RawRegisterDialog(window.ctx, window, bus="B01", unit=12)
    qtbot.addWidget(zh_raw)
    zh_raw.show()
    zh_raw.function.setCurrentIndex(zh_raw.function.findData(4))
    zh_raw.function.setCurrentIndex(zh_raw.function.findData(3))
    zh_raw.start.setText("0x0000")
    zh_raw.dtype.setCurrentText("u32")
    zh_raw.send_button.click()
    qtbot.waitUntil(lambda: zh_raw.result.rowCount() == 1, timeout=20_000)
    zh_raw.function.setCurrentIndex(zh_raw.function.findData(16))
    shoot(zh_raw, "raw_registers_zh")
    apply_language("en")
    zh_setup.close()
    zh_raw.close()


def test_the_tools_are_hidden_from_a_cashier(qtbot, live_campus, open_window):
    db, _sim = live_campus
    window = open_window(db, role="cashier")
    node_id, meter_id = _room_with_meter(window)
    window.tree.select_node(node_id)
    qtbot.waitUntil(lambda: window.panel.meter_id == meter_id, timeout=5_000)
    assert window.panel.setup_button.isHidden() and window.panel.registers_button.isHidden()
