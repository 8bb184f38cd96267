"""Buses and meters (Station > Buses and meters…): the campus's buses, the selected bus's meters,
and the acts that take a site live: a bus added, changed or removed; a meter added, changed,
moved to another bus, address or room, or removed.

Each act asks in a small form (a removal asks for confirmation), runs the core's operation
(``core/campus_edit``) with the signed-in operator through the runner, and reads the buses and
meters again; a refusal shows in the form or in the message line. A running reading service
picks every change up by itself. Only the ``commission`` permission (maintenance,
administrators) may act; others may look.
"""

from __future__ import annotations

from collections.abc import Callable

from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QDialog,
    QDoubleSpinBox,
    QGroupBox,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QMessageBox,
    QPushButton,
    QSpinBox,
    QSplitter,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
    QWidget,
)

from app.core import campus_edit
from app.core.campus_edit import BusSetup, MeterRow
from app.core.operators import Permission
from app.i18n import N_, _
from app.ui.context import ActingContext
from app.ui.errors import error_text
from app.ui.widgets import (
    ERROR_STYLE,
    GOOD_STYLE,
    ActForm,
    message_label,
    refresh_close_bar,
    row_table,
)

BUS_COLUMNS = (N_("Bus"), N_("Link"), N_("Poll interval"), N_("Polled"), N_("Meters"))
METER_COLUMNS = (N_("Address"), N_("Serial number"), N_("Profile"), N_("Room"), N_("Polled"))
LINK_HINT = "rtu:///dev/ttyUSB0?baud=9600&parity=N"


def _yes(flag: bool) -> str:
    return _("yes") if flag else _("no")


def _fill(table: QTableWidget, rows: list[tuple[str, ...]]) -> None:
    table.setRowCount(len(rows))
    for r, cells in enumerate(rows):
        for c, text in enumerate(cells):
            table.setItem(r, c, QTableWidgetItem(text))


def _selected(table: QTableWidget) -> int | None:
    rows = table.selectionModel().selectedRows()
    return rows[0].row() if rows else None


class BusEditor(QDialog):
    def __init__(self, ctx: ActingContext, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("BusEditor")
        self.ctx = ctx
        self.setup = BusSetup()
        self.form: QDialog | None = None  # the form open now
        self.note = QLabel()
        self.note.setWordWrap(True)
        self.buses = row_table(BUS_COLUMNS, 1)
        self.meters = row_table(METER_COLUMNS, 2)
        self.add_bus = QPushButton(_("Add bus…"))
        self.edit_bus = QPushButton(_("Edit bus…"))
        self.remove_bus = QPushButton(_("Remove bus…"))
        self.add_meter = QPushButton(_("Add meter…"))
        self.edit_meter = QPushButton(_("Edit meter…"))
        self.move_meter = QPushButton(_("Move meter…"))
        self.remove_meter = QPushButton(_("Remove meter…"))
        self.meters_box = QGroupBox(_("Meters"))
        bus_box = QGroupBox(_("Buses"))
        left = QVBoxLayout(bus_box)
        left.addWidget(self.buses, 1)
        left.addLayout(_row(self.add_bus, self.edit_bus, self.remove_bus))
        right = QVBoxLayout(self.meters_box)
        right.addWidget(self.meters, 1)
        right.addLayout(_row(self.add_meter, self.edit_meter, self.move_meter,
                             self.remove_meter))
        split = QSplitter()
        split.addWidget(bus_box)
        split.addWidget(self.meters_box)
        split.setSizes([520, 560])
        self.message = message_label("bus_editor_message")
        self.refresh_button, bottom = refresh_close_bar(self, self.message)
        layout = QVBoxLayout(self)
        layout.addWidget(self.note)
        layout.addWidget(split, 1)
        layout.addLayout(bottom)
        self.setWindowTitle(_("Buses and meters"))
        self.resize(1120, 620)
        self.buses.itemSelectionChanged.connect(self.show_meters)
        self.meters.itemSelectionChanged.connect(self._enable)
        self.refresh_button.clicked.connect(self.load)
        self.add_bus.clicked.connect(lambda: self.open_form(BusForm(self.ctx, None, self)))
        self.edit_bus.clicked.connect(self._edit_bus)
        self.remove_bus.clicked.connect(self._remove_bus)
        self.add_meter.clicked.connect(self._add_meter)
        self.edit_meter.clicked.connect(self._edit_meter)
        self.move_meter.clicked.connect(self._move_meter)
        self.remove_meter.clicked.connect(self._remove_meter)
        ctx.session.operatorChanged.connect(self._enable)
        self._enable()
        self.load()

    # -- reading -------------------------------------------------------------------------------
    @property
    def may(self) -> bool:
        return self.ctx.session.can(Permission.COMMISSION)

    def load(self) -> None:
        operator = self.ctx.session.operator
        self.ctx.runner.run(lambda: campus_edit.setup(operator), title=_("Buses and meters"),
                            parent=self, on_done=self.show_setup, quiet=True)

    def show_setup(self, setup: BusSetup) -> None:
        chosen = self.current_bus()
        self.setup = setup
        self.buses.blockSignals(True)
        _fill(self.buses, [(b.name, b.link, _("{s:g} s").format(s=b.poll_interval_s),
                            _yes(b.enabled), str(len(setup.meters_on(b.id))))
                           for b in setup.buses])
        ids = [b.id for b in setup.buses]
        if chosen is not None and chosen.id in ids:
            self.buses.selectRow(ids.index(chosen.id))
        elif ids:
            self.buses.selectRow(0)
        self.buses.blockSignals(False)
        self.show_meters()

    def current_bus(self):
        row = _selected(self.buses)
        return self.setup.buses[row] if row is not None and row < len(self.setup.buses) \
            else None

    def shown_meters(self) -> list[MeterRow]:
        bus = self.current_bus()
        return self.setup.meters_on(bus.id) if bus is not None else []

    def current_meter(self) -> MeterRow | None:
        row, shown = _selected(self.meters), self.shown_meters()
        return shown[row] if row is not None and row < len(shown) else None

    def show_meters(self) -> None:
        bus = self.current_bus()
        chosen = self.current_meter()
        shown = self.shown_meters()
        self.meters_box.setTitle(_("Meters on {bus}").format(bus=bus.name) if bus
                                 else _("Meters"))
        self.meters.blockSignals(True)
        _fill(self.meters, [(str(r.meter.address), r.meter.serial, r.meter.profile,
                             r.room or "–", _yes(r.meter.enabled)) for r in shown])
        ids = [r.meter.id for r in shown]
        if chosen is not None and chosen.meter.id in ids:
            self.meters.selectRow(ids.index(chosen.meter.id))
        self.meters.blockSignals(False)
        self._enable()

    def _enable(self, _operator: object = None) -> None:
        may, bus, meter = self.may, self.current_bus(), self.current_meter()
        self.note.setVisible(not may)
        self.note.setText("" if may else _(
            "You may look at the buses and meters; changing them needs the 'commission' "
            "permission (maintenance, administrators)."))
        self.add_bus.setEnabled(may)
        for b in (self.edit_bus, self.remove_bus, self.add_meter):
            b.setEnabled(may and bus is not None)
        for b in (self.edit_meter, self.move_meter, self.remove_meter):
            b.setEnabled(may and meter is not None)

    # -- acting --------------------------------------------------------------------------------
    def open_form(self, form: QDialog) -> None:
        if self.form is not None and not self.form.isVisible():
            self.form.deleteLater()
        self.form = form
        form.accepted.connect(lambda: self._said(getattr(form, "done_text", ""), GOOD_STYLE))
        form.open()

    def _said(self, text: str, style: str) -> None:
        self.message.setStyleSheet(style)
        self.message.setText(text)
        self.load()

    def act(self, work: Callable[[], object], title: str, done_text: str) -> None:
        self.message.setStyleSheet("")
        self.message.setText(_("working…"))
        self.ctx.runner.run(work, title=title, parent=self,
                            on_done=lambda _result: self._said(done_text, GOOD_STYLE),
                            on_error=lambda exc: self._said(error_text(exc, title), ERROR_STYLE))

    def ask(self, title: str, question: str) -> bool:
        return QMessageBox.question(self, title, question) == QMessageBox.StandardButton.Yes

    def _edit_bus(self) -> None:
        bus = self.current_bus()
        if bus is not None:
            self.open_form(BusForm(self.ctx, bus, self))

    def _remove_bus(self) -> None:
        bus = self.current_bus()
        if bus is None:
            return
        title = _("Remove bus")
        if not self.ask(title, _("Remove bus {bus} ({link})? It is polled no more.").format(
                bus=bus.name, link=bus.link)):
            return
        operator = self.ctx.session.operator
        self.act(lambda: campus_edit.remove_bus(operator, bus.id), title,
                 _("Bus {bus} removed").format(bus=bus.name))

    def _add_meter(self) -> None:
        bus = self.current_bus()
        if bus is not None:
            self.open_form(MeterForm(self.ctx, self.setup, bus, None, self))

    def _edit_meter(self) -> None:
        bus, row = self.current_bus(), self.current_meter()
        if bus is not None and row is not None:
            self.open_form(MeterForm(self.ctx, self.setup, bus, row, self))

    def _move_meter(self) -> None:
        row = self.current_meter()
        if row is not None:
            self.open_form(MoveForm(self.ctx, self.setup, row, self))

    def _remove_meter(self) -> None:
        row = self.current_meter()
        if row is None:
            return
        where = f"{row.bus}/{row.meter.address}"
        title = _("Remove meter")
        if not self.ask(title, _("Remove meter {meter} (serial number {serial}, room {room}) "
                                 "with its readings and energy?").format(
                meter=where, serial=row.meter.serial or "–", room=row.room or "–")):
            return
        operator = self.ctx.session.operator
        self.act(lambda: campus_edit.remove_meter(operator, row.meter.id), title,
                 _("Meter {meter} removed").format(meter=where))


def _row(*buttons: QPushButton) -> QHBoxLayout:
    row = QHBoxLayout()
    for b in buttons:
        row.addWidget(b)
    row.addStretch(1)
    return row


# -- forms --------------------------------------------------------------------------------------
def _room_box(setup: BusSetup, current: str) -> QComboBox:
    """The room a meter serves: a number typed or chosen (empty: none)."""
    box = QComboBox()
    box.setEditable(True)
    box.addItem("")
    box.addItems(setup.rooms)
    box.setCurrentText(current)
    box.lineEdit().setPlaceholderText(_("none, or a room number such as 3-204"))
    box.setMinimumWidth(260)
    return box


class BusForm(ActForm):
    """Add a bus, or change one: its name, link, poll interval, polled or not."""

    def __init__(self, ctx: ActingContext, bus, parent: QWidget | None = None) -> None:
        super().__init__(ctx, _("Edit bus {bus}").format(bus=bus.name) if bus
                         else _("Add a bus"), parent)
        self.bus = bus
        self.name = QLineEdit(bus.name if bus else "")
        self.name.setPlaceholderText(_("e.g. B03"))
        self.link = QLineEdit(bus.link if bus else "")
        self.link.setPlaceholderText(LINK_HINT)
        self.link.setMinimumWidth(360)
        self.interval = QDoubleSpinBox()
        self.interval.setRange(campus_edit.MIN_INTERVAL_S, campus_edit.MAX_INTERVAL_S)
        self.interval.setDecimals(1)
        self.interval.setSuffix(" s")
        self.interval.setValue(bus.poll_interval_s if bus else 5.0)
        self.enabled = QCheckBox(_("Polled (unchecked: kept, but not polled)"))
        self.enabled.setChecked(bus.enabled if bus else True)
        hint = QLabel(_("A serial port: rtu:///dev/ttyUSB0?baud=9600&parity=N (parity N, E or "
                        "O). A Modbus-TCP gateway: tcp://10.0.0.7:502. A serial device server "
                        "passing RTU frames: rtu-tcp://10.0.0.7:4001."))
        hint.setWordWrap(True)
        self.form.addRow(_("Bus name"), self.name)
        self.form.addRow(_("Link"), self.link)
        self.form.addRow("", hint)
        self.form.addRow(_("Poll interval"), self.interval)
        self.form.addRow("", self.enabled)
        self.resize(560, self.sizeHint().height())

    def submit(self) -> None:
        operator = self.ctx.session.operator
        name, link = self.name.text(), self.link.text()
        interval, enabled = self.interval.value(), self.enabled.isChecked()
        if self.bus is None:
            self.run(lambda: campus_edit.add_bus(operator, name, link, interval,
                                                 enabled=enabled),
                     _("Bus {bus} added").format(bus=name.strip()))
            return
        bus_id = self.bus.id
        self.run(lambda: campus_edit.edit_bus(operator, bus_id, name=name, link=link,
                                              poll_interval_s=interval, enabled=enabled),
                 _("Bus {bus} saved").format(bus=name.strip()))


class MeterForm(ActForm):
    """Add a meter to a bus, or change one: its address, serial number, profile, polled or
    not (its room and bus change by Move)."""

    def __init__(self, ctx: ActingContext, setup: BusSetup, bus, row: MeterRow | None,
                 parent: QWidget | None = None) -> None:
        where = f"{bus.name}/{row.meter.address}" if row else ""
        super().__init__(ctx, _("Edit meter {meter}").format(meter=where) if row
                         else _("Add a meter to {bus}").format(bus=bus.name), parent)
        self.bus, self.row = bus, row
        taken = {r.meter.address for r in setup.meters_on(bus.id)}
        self.address = QSpinBox()
        self.address.setRange(1, 247)
        self.address.setValue(row.meter.address if row else
                              next((a for a in range(1, 248) if a not in taken), 1))
        self.serial = QLineEdit(row.meter.serial if row else "")
        self.serial.setPlaceholderText(_("e.g. 310000001005"))
        self.profile = QComboBox()
        self.profile.setEditable(True)  # a profile file of the station's own, by its path
        self.profile.addItems(setup.profiles)
        if row is not None:
            self.profile.setCurrentText(row.meter.profile)
        self.enabled = QCheckBox(_("Polled (unchecked: kept, but not polled)"))
        self.enabled.setChecked(row.meter.enabled if row else True)
        self.room = _room_box(setup, row.room if row else "")
        self.form.addRow(_("Bus"), QLabel(bus.name))
        self.form.addRow(_("Address"), self.address)
        self.form.addRow(_("Serial number"), self.serial)
        self.form.addRow(_("Profile"), self.profile)
        if row is None:
            self.form.addRow(_("Room"), self.room)
        self.form.addRow("", self.enabled)
        self.resize(480, self.sizeHint().height())

    def submit(self) -> None:
        operator = self.ctx.session.operator
        address, serial = self.address.value(), self.serial.text()
        profile, enabled = self.profile.currentText(), self.enabled.isChecked()
        where = f"{self.bus.name}/{address}"
        if self.row is None:
            bus_id, room = self.bus.id, self.room.currentText()
            self.run(lambda: campus_edit.add_meter(operator, bus_id, address, profile, serial,
                                                   room, enabled=enabled),
                     _("Meter {meter} added").format(meter=where))
            return
        meter_id = self.row.meter.id
        self.run(lambda: campus_edit.edit_meter(operator, meter_id, address=address,
                                                serial=serial, profile=profile,
                                                enabled=enabled),
                 _("Meter {meter} saved").format(meter=where))


class MoveForm(ActForm):
    """Move a meter to another bus, address or room."""

    def __init__(self, ctx: ActingContext, setup: BusSetup, row: MeterRow,
                 parent: QWidget | None = None) -> None:
        where = f"{row.bus}/{row.meter.address}"
        super().__init__(ctx, _("Move meter {meter}").format(meter=where), parent)
        self.row = row
        self.bus = QComboBox()
        for b in setup.buses:
            self.bus.addItem(b.name, b.id)
        self.bus.setCurrentIndex(max(0, self.bus.findData(row.meter.bus_id)))
        self.address = QSpinBox()
        self.address.setRange(1, 247)
        self.address.setValue(row.meter.address)
        self.room = _room_box(setup, row.room)
        hint = QLabel(_("A meter leaves a room only when the room has no open account."))
        hint.setWordWrap(True)
        self.form.addRow(_("Meter"), QLabel(f"{where}  {row.meter.serial}"))
        self.form.addRow(_("To bus"), self.bus)
        self.form.addRow(_("Address"), self.address)
        self.form.addRow(_("Room"), self.room)
        self.form.addRow("", hint)
        self.resize(480, self.sizeHint().height())

    def submit(self) -> None:
        operator, meter_id = self.ctx.session.operator, self.row.meter.id
        bus_id, address = self.bus.currentData(), self.address.value()
        room = self.room.currentText()
        where = f"{self.bus.currentText()}/{address}"
        self.run(lambda: campus_edit.move_meter(operator, meter_id, bus_id=bus_id,
                                                address=address, room=room),
                 _("Meter moved to {meter}").format(meter=where))
