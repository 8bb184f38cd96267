"""Status icons drawn with QPainter (no image files to ship or scale): one per MeterState,
and a building / floor mark tinted by how many of its meters answer; either may carry an alarm
badge (its worst open alarm's level), and the tray shows the station's own mark."""

from __future__ import annotations

from functools import cache

from PySide6.QtCore import QPointF, QRectF, Qt
from PySide6.QtGui import QColor, QIcon, QPainter, QPainterPath, QPen, QPixmap

from app.ui.live_store import MeterState

SIZE = 16

COLOURS = {
    MeterState.NO_DATA: QColor("#9e9e9e"),
    MeterState.OFFLINE: QColor("#757575"),
    MeterState.STALE: QColor("#9e9e9e"),
    MeterState.TRIPPED: QColor("#d32f2f"),
    MeterState.KEEP_POWER: QColor("#1565c0"),
    MeterState.LOW_BALANCE: QColor("#f29900"),
    MeterState.ONLINE: QColor("#2e7d32"),
}


def _canvas(scale: float) -> tuple[QPixmap, QPainter]:
    pm = QPixmap(round(SIZE * scale), round(SIZE * scale))
    pm.setDevicePixelRatio(scale)
    pm.fill(Qt.GlobalColor.transparent)
    p = QPainter(pm)
    p.setRenderHint(QPainter.RenderHint.Antialiasing)
    return pm, p


def _draw_state(p: QPainter, state: MeterState) -> None:
    c = COLOURS[state]
    r = QRectF(2, 2, 12, 12)
    if state in (MeterState.NO_DATA, MeterState.OFFLINE, MeterState.STALE):
        p.setPen(QPen(c, 2))
        p.setBrush(Qt.BrushStyle.NoBrush if state is MeterState.NO_DATA else QColor("#e0e0e0"))
        p.drawEllipse(r.adjusted(1, 1, -1, -1))
        if state is MeterState.OFFLINE:  # a slash: no answer
            p.drawLine(QPointF(4, 12), QPointF(12, 4))
        if state is MeterState.STALE:  # clock hands: an old reading
            p.setPen(QPen(c, 1.5))
            p.drawLine(QPointF(8, 8), QPointF(8, 4.5))
            p.drawLine(QPointF(8, 8), QPointF(10.5, 9.5))
        return
    p.setPen(Qt.PenStyle.NoPen)
    p.setBrush(c)
    if state is MeterState.KEEP_POWER:  # a shield
        path = QPainterPath()
        path.moveTo(8, 1.5)
        path.lineTo(14, 4)
        path.cubicTo(14, 10, 11, 13, 8, 14.5)
        path.cubicTo(5, 13, 2, 10, 2, 4)
        path.closeSubpath()
        p.drawPath(path)
        p.setPen(QPen(QColor("white"), 1.6))
        p.drawLine(QPointF(8, 4.5), QPointF(8, 11.5))
        return
    if state is MeterState.LOW_BALANCE:  # a warning triangle
        path = QPainterPath()
        path.moveTo(8, 1.5)
        path.lineTo(15, 14)
        path.lineTo(1, 14)
        path.closeSubpath()
        p.drawPath(path)
        p.setPen(QPen(QColor("white"), 1.8))
        p.drawLine(QPointF(8, 5.5), QPointF(8, 10))
        p.drawPoint(QPointF(8, 12.2))
        return
    p.drawEllipse(r)
    if state is MeterState.TRIPPED:  # a bar: supply cut
        p.setPen(QPen(QColor("white"), 2))
        p.drawLine(QPointF(5, 8), QPointF(11, 8))


#: The alarm badge's colour for each alarm level (3 danger, 2 warning, 1 notice).
ALARM_COLOURS = {3: QColor("#c62828"), 2: QColor("#e65100"), 1: QColor("#f9a825")}


def _draw_badge(p: QPainter, level: int) -> None:
    """An alarm badge in the top right corner: a disc of the level's colour, ringed in white,
    with an exclamation mark."""
    if level not in ALARM_COLOURS:
        return
    p.setPen(QPen(QColor("white"), 1.2))
    p.setBrush(ALARM_COLOURS[level])
    p.drawEllipse(QRectF(6.1, 0.6, 9.3, 9.3))
    p.setPen(QPen(QColor("white"), 1.6, Qt.PenStyle.SolidLine, Qt.PenCapStyle.RoundCap))
    p.drawLine(QPointF(10.75, 2.7), QPointF(10.75, 5.6))
    p.drawPoint(QPointF(10.75, 7.7))


@cache
def state_icon(state: MeterState, alarm: int = 0) -> QIcon:
    """A room's mark; ``alarm``: the level of its worst open alarm (0: none)."""
    icon = QIcon()
    for scale in (1.0, 2.0):
        pm, p = _canvas(scale)
        _draw_state(p, state)
        _draw_badge(p, alarm)
        p.end()
        icon.addPixmap(pm)
    return icon


@cache
def container_icon(kind: str, health: str, alarm: int = 0) -> QIcon:
    """A building (or floor) mark; ``health`` is "ok", "partial", "down" or "empty";
    ``alarm``: the worst open alarm's level in the rooms under it (0: none)."""
    colour = {"ok": "#2e7d32", "partial": "#f29900", "down": "#757575",
              "empty": "#bdbdbd"}[health]
    icon = QIcon()
    for scale in (1.0, 2.0):
        pm, p = _canvas(scale)
        p.setPen(QPen(QColor("#455a64"), 1))
        p.setBrush(QColor("#eceff1"))
        if kind == "floor":
            p.drawRect(QRectF(1.5, 5.5, 13, 7))
        else:
            p.drawRect(QRectF(2.5, 1.5, 11, 13))
            p.setPen(Qt.PenStyle.NoPen)
            p.setBrush(QColor("#90a4ae"))
            for y in (3.5, 7.0):
                for x in (4.5, 9.5):
                    p.drawRect(QRectF(x, y, 2, 2))
        p.setPen(QPen(QColor("white"), 1))
        p.setBrush(QColor(colour))
        p.drawEllipse(QRectF(8.5, 8.5, 7, 7))
        _draw_badge(p, alarm)
        p.end()
        icon.addPixmap(pm)
    return icon


@cache
def station_icon() -> QIcon:
    """VoltKeeper's own mark (the tray's): a lightning bolt on a blue tile."""
    icon = QIcon()
    for scale in (1.0, 2.0, 4.0):
        pm, p = _canvas(scale)
        p.setPen(Qt.PenStyle.NoPen)
        p.setBrush(QColor("#1565c0"))
        p.drawRoundedRect(QRectF(0.5, 0.5, 15, 15), 3, 3)
        bolt = QPainterPath()
        for i, (x, y) in enumerate(((9.5, 1.8), (4, 9), (7.6, 9), (6.5, 14.2), (12, 6.8),
                                    (8.4, 6.8))):
            if i == 0:
                bolt.moveTo(x, y)
            else:
                bolt.lineTo(x, y)
        bolt.closeSubpath()
        p.setBrush(QColor("#ffd54f"))
        p.drawPath(bolt)
        p.end()
        icon.addPixmap(pm)
    return icon
