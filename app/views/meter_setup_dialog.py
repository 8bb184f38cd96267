"""Meter setup: one meter's own settings as the meter says them now, and a change to one of them.

The settings are read from the meter through its profile (``core/meter_setup.read_settings``:
the bus is taken from its poller for the moment it takes, then given back), through the runner
with progress and Cancel. A change asks for confirmation first; the address and the baud rate
say what happens to them (the database follows an address only once the meter answers there; a
speed is a whole bus's). The dialog only shows and asks.
"""

from __future__ import annotations

from PySide6.QtGui import QColor
from PySide6.QtWidgets import (
    QComboBox,
    QDialog,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QMessageBox,
    QPushButton,
    QTableWidgetItem,
    QVBoxLayout,
    QWidget,
)

from app.core import meter_setup
from app.core.meter_setup import MeterSettings, SettingChange
from app.i18n import N_, _
from app.ui.context import AppContext
from app.ui.widgets import ERROR_STYLE, GOOD_STYLE, message_label, row_table

COLUMNS = (N_("Setting"), N_("On the meter"))


def hint(name: str) -> str:
    """What a change of ``name`` does, as the dialog explains it."""
    if name == "address":
        return _("The new address is written at the old one, then the meter is asked at the new "
                 "one. Only when it answers there does the database follow; if it does not, the "
                 "old address is written back and the database stays as it was.")
    if name == "baud":
        return _("A meter on another speed than its bus cannot be polled: here a meter is only "
                 "brought back to its bus's speed. To change a bus's speed, set every meter of "
                 "it at once (main.py meter-setup --bus NAME --set baud=N).")
    if name == "keep_power":
        return _("Keep power holds the relay closed whatever the balance or the load.")
    return _("The value is written, read back and recorded in the audit log.")


class MeterSetupDialog(QDialog):
    def __init__(self, ctx: AppContext, meter_id: int, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.ctx = ctx
        self.meter_id = meter_id
        self.settings: MeterSettings | None = None
        #: Asks the operator to confirm a change (a test answers for them).
        self.confirm = self._ask
        self.setWindowTitle(_("Meter setup"))
        self.resize(640, 560)
        self.head = QLabel()
        self.head.setObjectName("meter_head")
        self.head.setWordWrap(True)
        self.table = row_table(COLUMNS, 1)
        self.table.setObjectName("settings_table")
        self.refresh_button = QPushButton(_("Read from the meter"))
        self.refresh_button.setObjectName("refresh_button")
        self.refresh_button.clicked.connect(self.refresh)
        self.setting = QComboBox()
        self.setting.setObjectName("setting_choice")
        self.setting.setSizeAdjustPolicy(QComboBox.SizeAdjustPolicy.AdjustToContents)
        self.setting.currentIndexChanged.connect(self._chosen)
        self.value = QLineEdit()
        self.value.setObjectName("new_value")
        self.value.setPlaceholderText(_("new value"))
        self.value.returnPressed.connect(self.change)
        self.change_button = QPushButton(_("Change…"))
        self.change_button.setObjectName("change_button")
        self.change_button.clicked.connect(self.change)
        self.hint = QLabel()
        self.hint.setObjectName("setting_hint")
        self.hint.setWordWrap(True)
        self.hint.setStyleSheet("color: #555555;")
        self.message = message_label("setup_message")
        row = QHBoxLayout()
        row.addWidget(QLabel(_("Change")))
        row.addWidget(self.setting)
        row.addWidget(QLabel(_("to")))
        row.addWidget(self.value, 1)
        row.addWidget(self.change_button)
        top = QHBoxLayout()
        top.addWidget(self.head, 1)
        top.addWidget(self.refresh_button)
        layout = QVBoxLayout(self)
        layout.addLayout(top)
        layout.addWidget(self.table, 1)
        layout.addLayout(row)
        layout.addWidget(self.hint)
        layout.addWidget(self.message)
        self._show_head()
        self._enable(False)
        self.refresh()

    # -- reading -------------------------------------------------------------------------------
    def _show_head(self) -> None:
        idx = self.ctx.index
        meter = idx.meters.get(self.meter_id)
        if meter is None:
            self.head.setText(_("That meter is not there any more."))
            return
        room = ""
        if meter.node_id is not None and meter.node_id in idx.nodes:
            node = idx.nodes[meter.node_id]
            room = node.code or node.name
        self.head.setText(_("Meter {where} · room {room} · serial {serial} · {profile}").format(
            where=idx.bus_address(self.meter_id), room=room or "-", serial=meter.serial or "-",
            profile=meter.profile))

    def _enable(self, on: bool) -> None:
        for w in (self.setting, self.value, self.change_button):
            w.setEnabled(on)

    def refresh(self) -> None:
        self.refresh_button.setEnabled(False)
        self.ctx.runner.run(
            lambda p: meter_setup.read_settings(self.ctx.operator, self.meter_id, p),
            title=_("Reading the meter's settings"), parent=self, progress=True,
            on_done=self._show, on_error=self._failed)

    def _show(self, settings: MeterSettings) -> None:
        self.settings = settings
        self.refresh_button.setEnabled(True)
        self._show_head()
        self.table.setRowCount(0)
        for v in settings.values:
            r = self.table.rowCount()
            self.table.insertRow(r)
            self.table.setItem(r, 0, QTableWidgetItem(_(v.setting.label)))
            item = QTableWidgetItem(v.text)
            if v.problem:
                item.setForeground(QColor("#c62828"))
                item.setToolTip(v.problem)
            self.table.setItem(r, 1, item)
        chosen = self.setting.currentData()
        self.setting.blockSignals(True)
        self.setting.clear()
        for v in settings.values:
            if v.writable and v.setting.name not in meter_setup.READ_ONLY:
                self.setting.addItem(_(v.setting.label), v.setting.name)
        found = self.setting.findData(chosen) if chosen else -1
        self.setting.setCurrentIndex(max(found, 0))
        self.setting.blockSignals(False)
        self._chosen()
        self._enable(self.setting.count() > 0)

    def _failed(self, error: BaseException) -> None:
        self.refresh_button.setEnabled(True)
        self.message.setStyleSheet(ERROR_STYLE)
        self.message.setText(str(error))

    # -- changing ------------------------------------------------------------------------------
    def _chosen(self) -> None:
        name = self.setting.currentData()
        if not name:
            self.hint.setText("")
            return
        self.hint.setText(hint(name))
        if self.settings is not None:
            current = self.settings.get(name)
            setting = meter_setup.BY_NAME[name]
            if setting.kind in ("flag", "keep_power"):
                self.value.setPlaceholderText(_("on or off"))
            elif setting.unit:
                self.value.setPlaceholderText(setting.unit)
            else:
                self.value.setPlaceholderText(_("new value"))
            self.value.setText("" if current is None else (
                ("on" if current else "off") if setting.kind in ("flag", "keep_power")
                else str(meter_setup.json_value(current))))

    def _ask(self, text: str) -> bool:
        answer = QMessageBox.question(self, _("Change a meter setting"), text)
        return answer == QMessageBox.StandardButton.Yes

    def change(self) -> None:
        name = self.setting.currentData()
        value = self.value.text().strip()
        if not name or not value:
            return
        setting = meter_setup.BY_NAME[name]
        text = _("Set {setting} of meter {where} to {value}?").format(
            setting=_(setting.label), where=self.ctx.index.bus_address(self.meter_id),
            value=value)
        if name in ("address", "baud"):
            text += "\n\n" + hint(name)
        if not self.confirm(text):
            return
        self._enable(False)
        self.message.setText("")
        self.ctx.runner.run(
            lambda p: meter_setup.change_setting(self.ctx.operator, self.meter_id, name, value,
                                                 p),
            title=_("Changing a meter setting"), parent=self, progress=True,
            on_done=self._changed, on_error=self._change_failed)

    def _changed(self, change: SettingChange) -> None:
        self.message.setStyleSheet(GOOD_STYLE)
        self.message.setText(change.message)
        self._show_head()
        self.refresh()

    def _change_failed(self, error: BaseException) -> None:
        self._enable(True)
        self._failed(error)
