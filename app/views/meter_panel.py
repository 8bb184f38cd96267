"""The live panel of one room: who lives there, its account and balance, its meter's values
and its power over the last hour, and the room's acts at hand.

The chart starts from the stored samples (``queries.power_samples``) and appends each live
read of the meter; the time axis shows clock time. Nothing here polls: values arrive through
the bridge's batches and are looked up in the LiveStore; the account's balance is the
context's, brought up to date after every act (``on_changes``).
"""

from __future__ import annotations

import time

import pyqtgraph as pg
from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import (
    QFrame,
    QGridLayout,
    QHBoxLayout,
    QLabel,
    QPushButton,
    QVBoxLayout,
    QWidget,
)

from app.core import queries
from app.core.billing import RECONCILE_TOLERANCE_CENTS
from app.core.changes import Changes
from app.core.live import LiveBatch, MeterLive
from app.core.meter_info import meter_details
from app.core.operators import Permission
from app.drivers.meter_values import MeterValues
from app.i18n import N_, _
from app.ui import fmt
from app.ui.context import AppContext
from app.ui.icons import state_icon
from app.ui.live_store import meter_state
from app.ui.widgets import ERROR_STYLE, scaled_font

CHART_WINDOW_S = 3600.0
MIN_CHART_SPAN_S = 300.0

#: (key, caption) of each value shown, in order; captions translated when shown.
FIELDS = (
    ("voltage", N_("Voltage")),
    ("current", N_("Current")),
    ("power", N_("Power")),
    ("power_factor", N_("Power factor")),
    ("frequency", N_("Frequency")),
    ("energy", N_("Energy")),
    ("money", N_("Remaining money")),
    ("relay", N_("Relay")),
    ("read_at", N_("Last read")),
)


def field_texts(live: MeterLive | None) -> dict[str, str]:
    """What each value shows for ``live`` (formatted, with units)."""
    v = live.values if live is not None else None
    if v is None:
        return {key: fmt.NONE for key, _caption in FIELDS}
    return {
        "voltage": fmt.volts(v.voltage_v), "current": fmt.amps(v.current_a),
        "power": fmt.watts(v.active_power_w), "power_factor": fmt.power_factor(v.power_factor),
        "frequency": fmt.hertz(v.frequency_hz), "energy": fmt.kwh(v.energy_wh),
        "money": fmt.money(v.remaining_money_cents), "relay": fmt.relay(v),
        "read_at": fmt.clock(v.read_at),
    }


MODE_TEXT = {"meter": N_("the meter keeps the money"),
             "station": N_("the station keeps the money")}


class MeterPanel(QWidget):
    rechargeRequested = Signal(int)  # node id
    accountRequested = Signal(int)  # node id
    bookingsRequested = Signal(int)  # node id
    setupRequested = Signal(int)  # meter id: meter setup (commission)
    registersRequested = Signal(int)  # meter id: the raw register tool (raw_registers)

    def __init__(self, ctx: AppContext, parent=None) -> None:
        super().__init__(parent)
        self.ctx = ctx
        self.node_id = 0
        self.meter_id: int | None = None
        self.title = QLabel()
        self.title.setFont(scaled_font(self.title.font(), 1.5, bold=True))
        self.where = QLabel()
        self.where.setStyleSheet("color: #666666;")
        self.state_icon = QLabel()
        self.state_text = QLabel()
        self.people = QLabel()
        self.people.setWordWrap(True)
        self.meter_line = QLabel()
        self.meter_line.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.account_line = QLabel()
        self.account_line.setObjectName("account_line")
        self.account_line.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.balance = QLabel()
        self.balance.setObjectName("balance")
        self.balance.setFont(scaled_font(self.balance.font(), 1.3, bold=True))
        self.difference = QLabel()
        self.difference.setObjectName("difference")
        self.recharge_button = QPushButton()
        self.recharge_button.setObjectName("recharge_button")
        self.recharge_button.clicked.connect(lambda: self.rechargeRequested.emit(self.node_id))
        self.account_button = QPushButton()
        self.account_button.setObjectName("account_button")
        self.account_button.clicked.connect(lambda: self.accountRequested.emit(self.node_id))
        self.bookings_button = QPushButton()
        self.bookings_button.setObjectName("bookings_button")
        self.bookings_button.clicked.connect(lambda: self.bookingsRequested.emit(self.node_id))
        self.setup_button = QPushButton()
        self.setup_button.setObjectName("setup_button")
        self.setup_button.clicked.connect(lambda: self.meter_id is not None
                                          and self.setupRequested.emit(self.meter_id))
        self.registers_button = QPushButton()
        self.registers_button.setObjectName("registers_button")
        self.registers_button.clicked.connect(lambda: self.meter_id is not None
                                              and self.registersRequested.emit(self.meter_id))
        meter_row = QHBoxLayout()
        meter_row.addWidget(self.meter_line, 1)
        meter_row.addWidget(self.setup_button)
        meter_row.addWidget(self.registers_button)
        account = QHBoxLayout()
        account.addWidget(self.account_line)
        account.addSpacing(12)
        account.addWidget(self.balance)
        account.addSpacing(12)
        account.addWidget(self.difference)
        account.addStretch(1)
        for button in (self.account_button, self.bookings_button, self.recharge_button):
            account.addWidget(button)
        head = QHBoxLayout()
        head.addWidget(self.title)
        head.addSpacing(12)
        head.addWidget(self.where)
        head.addStretch(1)
        head.addWidget(self.state_icon)
        head.addWidget(self.state_text)

        grid = QGridLayout()
        grid.setHorizontalSpacing(24)
        self.captions: dict[str, QLabel] = {}
        self.values: dict[str, QLabel] = {}
        big = scaled_font(self.font(), 1.3)
        for i, (key, _caption) in enumerate(FIELDS):
            cap, val = QLabel(), QLabel(fmt.NONE)
            cap.setStyleSheet("color: #666666;")
            val.setFont(big)
            val.setObjectName(f"value_{key}")
            val.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
            row, col = divmod(i, 3)
            grid.addWidget(cap, row * 2, col)
            grid.addWidget(val, row * 2 + 1, col)
            self.captions[key], self.values[key] = cap, val
        box = QFrame()
        box.setFrameShape(QFrame.Shape.StyledPanel)
        box.setLayout(grid)

        self.plot = pg.PlotWidget(background="w", axisItems={"bottom": pg.DateAxisItem()})
        self.plot.setMouseEnabled(x=False, y=False)
        self.plot.showGrid(x=True, y=True, alpha=0.25)
        self.plot.hideButtons()
        for name in ("left", "bottom"):
            axis = self.plot.getAxis(name)
            axis.setTextPen("#333333")
            axis.setPen("#888888")
        self.curve = self.plot.plot([], [], pen=pg.mkPen("#1565c0", width=2),
                                    fillLevel=0, brush=(21, 101, 192, 40), symbol="o",
                                    symbolSize=4, symbolBrush="#1565c0", symbolPen=None)
        self._t: list[float] = []
        self._w: list[float] = []

        layout = QVBoxLayout(self)
        layout.addLayout(head)
        layout.addWidget(self.people)
        layout.addLayout(account)
        layout.addLayout(meter_row)
        layout.addWidget(box)
        layout.addWidget(self.plot, 1)
        self.retranslate()

    def retranslate(self) -> None:
        self.recharge_button.setText(_("Recharge this room…"))
        self.account_button.setText(_("Account and occupants…"))
        self.bookings_button.setText(_("Bookings…"))
        self.setup_button.setText(_("Meter setup…"))
        self.registers_button.setText(_("Registers…"))
        for key, caption in FIELDS:
            self.captions[key].setText(_(caption))
        self.plot.setTitle(_("Power, last hour"), color="#333333")
        self.plot.setLabel("left", _("Power"), units="W", color="#333333")
        if self.node_id:
            self.show_node(self.node_id, reload_chart=False)

    # -- what is shown -------------------------------------------------------------------------
    def show_node(self, node_id: int, reload_chart: bool = True) -> None:
        idx = self.ctx.index
        self.node_id = node_id
        node = idx.nodes[node_id]
        meter_ids = idx.meters_of.get(node_id, [])
        self.meter_id = meter_ids[0] if meter_ids else None
        self.title.setText(node.code or node.name)
        self.where.setText(idx.path(idx.parent_of(node_id) or node_id))
        names = idx.occupant_names(node_id)
        self.people.setText(_("Occupants: {names}").format(names=fmt.name_list(names))
                            if names else _("No occupants"))
        if self.meter_id is None:
            self.meter_line.setText(_("No meter serves this room"))
        else:
            m = idx.meters[self.meter_id]
            line = _("Meter {where} · serial {serial} · {profile}").format(
                where=idx.bus_address(self.meter_id), serial=m.serial, profile=m.profile)
            self.meter_line.setText(line + self._lacks(self.meter_id))
        self._show_account()
        self._show_values()
        if reload_chart:
            self._load_chart()

    def _lacks(self, meter_id: int) -> str:
        """What the meter was found to lack (its details), and so who keeps its money."""
        try:
            details = meter_details(self.ctx.operator, meter_id)
        except Exception:  # the details are extra: the panel shows without them
            return ""
        if not details.missing:
            return ""
        text = " · " + _("lacks: {points}").format(
            points=", ".join(p.name for p in details.missing))
        if not details.takes_tokens:
            text += " · " + _("takes no recharge token: the station keeps its money")
        return text

    def _show_account(self) -> None:
        account = self.ctx.balances.get(self.node_id)
        if account is None:
            self.account_line.setText(_("No open account"))
            self.balance.setText("")
        else:
            self.account_line.setText(_("Account {number} · {mode}").format(
                number=account.account_number, mode=_(MODE_TEXT.get(account.mode,
                                                                    account.mode))))
            if account.balance_cents is None:
                self.balance.setText(_("Balance: taken over from the meter at its next reading"))
            else:
                self.balance.setText(_("Balance {balance}").format(
                    balance=fmt.money(account.balance_cents)))
            self.balance.setStyleSheet(ERROR_STYLE if account.balance_cents is not None
                                       and account.balance_cents <= 0 else "")
        self.recharge_button.setEnabled(account is not None)
        self.setup_button.setEnabled(self.meter_id is not None)
        self.registers_button.setEnabled(self.meter_id is not None)
        self.bookings_button.setEnabled(account is not None)

    def _show_difference(self) -> None:
        """A meter that keeps the money: what it holds beside the books, and the difference."""
        account = self.ctx.balances.get(self.node_id)
        live = self.ctx.store.meter(self.meter_id) if self.meter_id is not None else None
        money = live.values.remaining_money_cents if live and live.values else None
        if account is None or account.mode != "meter" or money is None \
                or account.balance_cents is None:
            self.difference.setText("")
            return
        diff = money - account.balance_cents
        text = _("On the meter {money}").format(money=fmt.money(money))
        if diff:
            text += " · " + _("{diff} against the books").format(
                diff=fmt.money(diff) if diff < 0 else "+" + fmt.money(diff))
        self.difference.setText(text)
        self.difference.setStyleSheet(ERROR_STYLE if abs(diff) > RECONCILE_TOLERANCE_CENTS else
                                      "color: #666666;")

    def apply_role(self) -> None:
        self.recharge_button.setVisible(self.ctx.session.can(Permission.RECHARGE))
        self.account_button.setVisible(self.ctx.session.can(Permission.MANAGE_ACCOUNTS)
                                       or self.ctx.session.can(Permission.CLOSE_ACCOUNTS))
        self.bookings_button.setVisible(self.ctx.session.can(Permission.REFUND)
                                        or self.ctx.session.can(Permission.CORRECT))
        self.setup_button.setVisible(self.ctx.session.can(Permission.COMMISSION))
        self.registers_button.setVisible(self.ctx.session.can(Permission.RAW_REGISTERS))

    def on_changes(self, changes: Changes) -> None:
        if self.node_id and self.node_id in changes.nodes:
            self.show_node(self.node_id, reload_chart=False)

    def _show_values(self) -> None:
        live = self.ctx.store.meter(self.meter_id) if self.meter_id is not None else None
        old = self.meter_id is not None and (self.ctx.store.is_stale(self.meter_id)
                                             or (live is not None and not live.online))
        for key, text in field_texts(live).items():
            self.values[key].setText(text)
            self.values[key].setStyleSheet("color: #9e9e9e;" if old else "")
        state = self.ctx.room_state(self.node_id) if self.node_id else meter_state(live)
        self._show_difference()
        self.state_icon.setPixmap(state_icon(state).pixmap(16, 16))
        self.state_text.setText(_(state.value))

    def _load_chart(self) -> None:
        self._t, self._w = [], []
        if self.meter_id is not None:
            for t, w in queries.power_samples(self.ctx.operator, self.meter_id,
                                              time.time() - CHART_WINDOW_S):
                if w is not None:
                    self._t.append(t)
                    self._w.append(w)
            live = self.ctx.store.meter(self.meter_id)
            if live is not None and live.online:
                self._append_read(live.values)
        self._redraw_chart()

    def _redraw_chart(self) -> None:
        now = time.time()
        cut = now - CHART_WINDOW_S
        while self._t and self._t[0] < cut:
            self._t.pop(0)
            self._w.pop(0)
        self.curve.setData(self._t, self._w)
        # the last hour, zoomed in to at least the last ten minutes while data is young
        start = max(cut, min(self._t[0], now - MIN_CHART_SPAN_S)) if self._t else cut
        self.plot.setXRange(start, now, padding=0)

    def on_batch(self, batch: LiveBatch) -> None:
        if self.meter_id is None:
            return
        for m in batch.meters:
            if m.meter_id != self.meter_id:
                continue
            self._show_values()
            if m.online and self._append_read(m.values):
                self._redraw_chart()
            return

    def _append_read(self, v: MeterValues | None) -> bool:
        """Add a read's power to the chart if it is newer than the last point."""
        if v is None or not v.read_at or v.active_power_w is None \
                or (self._t and v.read_at <= self._t[-1]):
            return False
        self._t.append(v.read_at)
        self._w.append(v.active_power_w)
        return True
