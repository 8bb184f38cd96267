"""Buses and meters (Station > Buses and meters…) on a small demo campus in a real SQLite file: a
bus typed wrong then right, a meter added, changed, moved and removed, a meter whose room has an
open account refused, an empty bus removed; a cashier does not see it. What is checked is read
back from the database. Screenshots in English and Chinese."""

from __future__ import annotations

import pytest
from PySide6.QtWidgets import QDialogButtonBox, QMessageBox

from app.simulator.demo_campus import create_demo_campus
from app.storage import campus
from app.ui.language import apply_language
from app.views.bus_editor import BusEditor, BusForm, MeterForm, MoveForm
from tests.gui.conftest import store_readings

PROFILE = "acrel-ddsy1352"


@pytest.fixture
def small_campus(tmp_path):
    db = tmp_path / "small.db"
    create_demo_campus(db, buses=2, meters=3, seed=3)
    return db


def _open(qtbot, window) -> BusEditor:
    window.trigger("buses")
    view = window.dialogs["buses"]
    qtbot.waitUntil(lambda: len(view.setup.buses) == len(campus.buses()), timeout=10_000)
    return view


def _ok(form) -> None:
    form.buttons.button(QDialogButtonBox.StandardButton.Ok).click()


def _then_read(qtbot, view: BusEditor, act) -> None:
    """Do ``act`` and wait until the view has read the buses and meters again after it."""
    before = view.setup
    act()
    qtbot.waitUntil(lambda: view.setup is not before, timeout=10_000)


def _select_bus(view: BusEditor, name: str) -> None:
    view.buses.selectRow([b.name for b in view.setup.buses].index(name))


def _select_meter(view: BusEditor, address: int) -> None:
    view.meters.selectRow([r.meter.address for r in view.shown_meters()].index(address))


def _answer_yes(monkeypatch) -> list[str]:
    asked: list[str] = []

    def question(_parent, _title, text, *_a, **_k):
        asked.append(text)
        return QMessageBox.StandardButton.Yes

    monkeypatch.setattr(QMessageBox, "question", staticmethod(question))
    return asked


def test_buses_and_meters_added_changed_moved_and_removed(qtbot, small_campus, open_window,
                                                          shoot, monkeypatch):
    window = open_window(small_campus, role="maintenance", name="tech")
    store_readings()  # every meter was read: billed from
    assert window.actions_["buses"].isVisible() and window.actions_["buses"].isEnabled()
    view = _open(qtbot, window)
    assert [view.buses.item(r, 0).text() for r in range(view.buses.rowCount())] == \
        ["B01", "B02"]
    assert view.meters.rowCount() == 3 and view.meters.item(0, 3).text() == "1-101"
    shoot(view, "bus_editor_en")

    # a bus: the link typed wrong is refused in the form, then right
    view.add_bus.click()
    form = view.form
    assert isinstance(form, BusForm)
    form.name.setText("B03")
    form.link.setText("COM3")
    _ok(form)
    qtbot.waitUntil(lambda: form.message.text() != "", timeout=10_000)
    assert "bad link 'COM3'" in form.message.text() and form.isVisible()
    shoot(form, "bus_editor_bus_refused_en")
    form.link.setText("tcp://10.0.0.7:4001")
    form.interval.setValue(2.0)
    _then_read(qtbot, view, lambda: _ok(form))
    assert view.message.text() == "Bus B03 added"
    b3 = campus.bus_named("B03")
    assert (b3.link, b3.poll_interval_s) == ("tcp://10.0.0.7:4001", 2.0)
    assert view.current_bus().name == "B01"  # the selection stays

    # a meter on it (no room yet), then changed
    _select_bus(view, "B03")
    assert view.meters.rowCount() == 0 and view.meters_box.title() == "Meters on B03"
    view.add_meter.click()
    form = view.form
    assert isinstance(form, MeterForm) and form.address.value() == 1
    form.address.setValue(7)
    form.serial.setText("310000099007")
    form.profile.setCurrentText(PROFILE)
    shoot(form, "bus_editor_meter_form_en")
    _then_read(qtbot, view, lambda: _ok(form))
    assert view.message.text() == "Meter B03/7 added"
    (added,) = campus.meters(b3.id)
    assert (added.address, added.serial, added.profile, added.node_id) == (
        7, "310000099007", PROFILE, None)
    _select_meter(view, 7)
    view.edit_meter.click()
    form = view.form
    form.address.setValue(8)
    form.enabled.setChecked(False)
    _then_read(qtbot, view, lambda: _ok(form))
    assert view.message.text() == "Meter B03/8 saved"
    assert (campus.meter(added.id).address, campus.meter(added.id).enabled) == (8, False)

    # moved to B02 at an address taken: refused in the form; then a free one
    _select_meter(view, 8)
    view.move_meter.click()
    form = view.form
    assert isinstance(form, MoveForm)
    form.bus.setCurrentIndex(form.bus.findText("B02"))
    form.address.setValue(2)
    _ok(form)
    qtbot.waitUntil(lambda: form.message.text() != "", timeout=10_000)
    assert "address 2 on bus B02 is taken" in form.message.text()
    form.address.setValue(9)
    _then_read(qtbot, view, lambda: _ok(form))
    assert view.message.text() == "Meter moved to B02/9"
    moved = campus.meter(added.id)
    assert (campus.bus(moved.bus_id).name, moved.address) == ("B02", 9)

    # a meter whose room has an open account is refused, with what to do
    asked = _answer_yes(monkeypatch)
    _select_bus(view, "B01")
    _select_meter(view, 1)
    _then_read(qtbot, view, view.remove_meter.click)
    assert "Remove meter B01/1" in asked[-1]
    assert "open account" in view.message.text() and "close the account first" in \
        view.message.text()
    assert len(campus.meters(campus.bus_named("B01").id)) == 3
    shoot(view, "bus_editor_refused_en")

    # the moved meter and the empty bus are removed
    _select_bus(view, "B02")
    _select_meter(view, 9)
    _then_read(qtbot, view, view.remove_meter.click)
    assert view.message.text() == "Meter B02/9 removed"
    assert campus.meter(added.id) is None
    _select_bus(view, "B03")
    _then_read(qtbot, view, view.remove_bus.click)
    assert view.message.text() == "Bus B03 removed" and campus.bus_named("B03") is None

    apply_language("zh_CN")
    window.dialogs.pop("buses").close()
    view = _open(qtbot, window)
    shoot(view, "bus_editor_zh_CN")
    view.add_bus.click()
    shoot(view.form, "bus_editor_bus_form_zh_CN")
    view.form.reject()


def test_a_cashier_does_not_see_it_and_a_viewer_cannot_act(qtbot, small_campus, open_window):
    window = open_window(small_campus, role="cashier")
    assert not window.actions_["buses"].isVisible()
    # opened all the same (an administrator's window switched to a viewer): look, no acts
    view = BusEditor(window.ctx, window)
    qtbot.addWidget(view)
    qtbot.waitUntil(lambda: len(view.setup.buses) == 2, timeout=10_000)
    assert not view.add_bus.isEnabled() and not view.remove_meter.isEnabled()
    assert "needs the 'commission' permission" in view.note.text()


def test_the_window_that_polls_follows_an_edit_made_in_it(qtbot, live_campus, open_window):
    """The window's own reading service (QThreads): a meter switched off in the editor leaves
    its bus's poller within seconds, and the bus polls on with the others."""
    db, _sim = live_campus
    window = open_window(db, start=True, role="maintenance", name="tech")
    source = window.ctx.source
    qtbot.waitUntil(lambda: source.polling and all(
        p.cycles >= 1 for p in source.service.pollers.values()), timeout=20_000)
    (before,) = source.service.pollers.values()
    assert len(before.slots) == 5
    view = _open(qtbot, window)
    _select_meter(view, 5)
    view.edit_meter.click()
    form = view.form
    form.enabled.setChecked(False)
    _then_read(qtbot, view, lambda: _ok(form))
    assert view.message.text() == "Meter B01/5 saved"
    qtbot.waitUntil(lambda: [len(p.slots) for p in source.service.pollers.values()] == [4],
                    timeout=20_000)
    (after,) = source.service.pollers.values()
    qtbot.waitUntil(lambda: after.cycles >= 2, timeout=20_000)
