"""The live panel of one room: who lives there, its meter's values and its power, last hour.

The chart starts from the stored samples (``readings.samples``) and appends each live read of
the meter; the time axis shows clock time. Nothing here polls: values arrive through the
bridge's batches and are looked up in the LiveStore.
"""

from __future__ import annotations

import time

import pyqtgraph as pg
from PySide6.QtCore import Qt
from PySide6.QtWidgets import QFrame, QGridLayout, QHBoxLayout, QLabel, QVBoxLayout, QWidget

from app.core.live import LiveBatch, MeterLive
from app.i18n import N_, _
from app.storage import readings
from app.ui import fmt
from app.ui.context import AppContext
from app.ui.icons import state_icon
from app.ui.live_store import meter_state

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
    if live is None:
        return {key: fmt.NONE for key, _caption in FIELDS}
    return {
        "voltage": fmt.volts(live.voltage_v), "current": fmt.amps(live.current_a),
        "power": fmt.watts(live.power_w), "power_factor": fmt.power_factor(live.power_factor),
        "frequency": fmt.hertz(live.frequency_hz), "energy": fmt.kwh(live.energy_wh),
        "money": fmt.money(live.money_cents), "relay": fmt.relay(live),
        "read_at": fmt.clock(live.read_at),
    }


class MeterPanel(QWidget):
    def __init__(self, ctx: AppContext, parent=None) -> None:
        super().__init__(parent)
        self.ctx = ctx
        self.node_id = 0
        self.meter_id: int | None = None
        self.title = QLabel()
        font = self.title.font()
        font.setPointSizeF(font.pointSizeF() * 1.5)
        font.setBold(True)
        self.title.setFont(font)
        self.where = QLabel()
        self.where.setStyleSheet("color: #666666;")
        self.state_icon = QLabel()
        self.state_text = QLabel()
        self.people = QLabel()
        self.people.setWordWrap(True)
        self.meter_line = QLabel()
        self.meter_line.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
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
        big = self.font()
        big.setPointSizeF(big.pointSizeF() * 1.3)
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
        layout.addWidget(self.meter_line)
        layout.addWidget(box)
        layout.addWidget(self.plot, 1)
        self.retranslate()

    def retranslate(self) -> None:
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
            self.meter_line.setText(_("Meter {where} · serial {serial} · {profile}").format(
                where=idx.bus_address(self.meter_id), serial=m.serial, profile=m.profile))
        self._show_values()
        if reload_chart:
            self._load_chart()

    def _show_values(self) -> None:
        live = self.ctx.store.meter(self.meter_id) if self.meter_id is not None else None
        for key, text in field_texts(live).items():
            self.values[key].setText(text)
        state = meter_state(live)
        self.state_icon.setPixmap(state_icon(state).pixmap(16, 16))
        self.state_text.setText(_(state.value))

    def _load_chart(self) -> None:
        self._t, self._w = [], []
        if self.meter_id is not None:
            for t, w in readings.samples(self.meter_id, time.time() - CHART_WINDOW_S):
                if w is not None:
                    self._t.append(t)
                    self._w.append(w)
            live = self.ctx.store.meter(self.meter_id)
            if live and live.online and live.read_at and live.power_w is not None \
                    and (not self._t or live.read_at > self._t[-1]):
                self._t.append(live.read_at)
                self._w.append(live.power_w)
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
            if m.online and m.read_at and m.power_w is not None \
                    and (not self._t or m.read_at > self._t[-1]):
                self._t.append(m.read_at)
                self._w.append(m.power_w)
                self._redraw_chart()
            return
