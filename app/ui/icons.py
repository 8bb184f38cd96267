"""Status icons drawn with QPainter (no image files to ship or scale): one per MeterState,
and a building / floor mark tinted by how many of its meters answer."""

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


@cache
def state_icon(state: MeterState) -> QIcon:
    icon = QIcon()
    for scale in (1.0, 2.0):
        pm, p = _canvas(scale)
        _draw_state(p, state)
        p.end()
        icon.addPixmap(pm)
    return icon


@cache
def container_icon(kind: str, health: str) -> QIcon:
    """A building (or floor) mark; ``health`` is "ok", "partial", "down" or "empty"."""
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
        p.end()
        icon.addPixmap(pm)
    return icon
