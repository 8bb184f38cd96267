"""The window's watch on the alarms: each room's worst open alarm for the tree, and a sound and
a tray message for every new danger (level 3) alarm.

Every few seconds it asks the core (``alarms.open_alarms``: one query over the open alarms,
off the UI thread through the runner) and says what it found with two typed signals:
``roomsChanged`` (a ``{node id: RoomAlarm}`` dict, only when it differs from the last one) and
``raised`` (an ``AlarmNotice``, once per look that found new danger alarms). "New" is by id:
the first look, made when the window opens, takes every alarm that exists then as known, so an
alarm raised before the window started never sounds. The sound can be muted (the window
setting ``ALARM_SOUND``); the tray message shows when the desktop has a system tray. It goes on
while the window is locked: a fire alarm must be heard by whoever is in the room.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass

from PySide6.QtCore import QObject, QTimer, Signal
from PySide6.QtGui import QAction
from PySide6.QtWidgets import QApplication, QSystemTrayIcon

from app.core import alarms
from app.core.alarms import OpenAlarms, RaisedAlarm, RoomAlarm
from app.i18n import _, ngettext
from app.ui import settings
from app.ui.context import AppContext
from app.ui.icons import station_icon

log = logging.getLogger("voltkeeper.ui.alarms")

#: How often the window looks at the open alarms.
ALARM_CHECK_MS = 5_000
#: How long a tray message stays up.
TRAY_MESSAGE_MS = 15_000


@dataclass(frozen=True)
class AlarmNotice:
    """New danger alarms the window told the operator about, and how."""

    alarms: tuple[RaisedAlarm, ...]
    title: str
    text: str
    sounded: bool  # False while the sound is muted
    tray: bool  # a tray message was shown (the desktop has a system tray)


class AlarmNotifier(QObject):
    #: each room's worst open alarm changed: ``dict[int, RoomAlarm]``
    roomsChanged = Signal(object)
    #: new danger alarms were announced: ``AlarmNotice``
    raised = Signal(object)
    #: the operator clicked the tray message (the window opens the alarm list)
    messageClicked = Signal()

    def __init__(self, ctx: AppContext, parent: QObject | None = None, *,
                 interval_ms: int = ALARM_CHECK_MS) -> None:
        super().__init__(parent)
        self.ctx = ctx
        first: OpenAlarms = alarms.open_alarms(ctx.operator)  # what exists now is not news
        self.rooms: dict[int, RoomAlarm] = first.rooms
        self.last_id = first.last_id
        #: what makes the sound (QApplication.beep: no sound files, no multimedia module)
        self.sound: Callable[[], None] = QApplication.beep
        self.tray: QSystemTrayIcon | None = None
        self._asking = False
        self.timer = QTimer(self)
        self.timer.setInterval(interval_ms)
        self.timer.timeout.connect(self.check)

    def start(self) -> None:
        self.timer.start()

    def stop(self) -> None:
        self.timer.stop()
        if self.tray is not None:
            self.tray.hide()

    # -- looking -------------------------------------------------------------------------------
    def check(self) -> None:
        """Look at the open alarms now (off the UI thread); one look at a time."""
        if self._asking or not self.ctx.session.signed_in:
            return
        self._asking = True
        operator, after = self.ctx.operator, self.last_id
        self.ctx.runner.run(lambda: alarms.open_alarms(operator, after_id=after),
                            title="alarms", on_done=self._seen, on_error=self._failed,
                            quiet=True)

    def _failed(self, exc: BaseException) -> None:
        self._asking = False
        log.warning("looking at the alarms failed: %s", exc)

    def _seen(self, found: OpenAlarms) -> None:
        self._asking = False
        self.last_id = max(self.last_id, found.last_id)
        if found.rooms != self.rooms:
            self.rooms = found.rooms
            self.roomsChanged.emit(found.rooms)
        if found.raised:
            self.notify(tuple(found.raised))

    # -- telling -------------------------------------------------------------------------------
    def muted(self) -> bool:
        return not self.ctx.settings.get(settings.ALARM_SOUND)

    def set_muted(self, muted: bool) -> None:
        self.ctx.settings.set(settings.ALARM_SOUND, not muted)

    def notify(self, raised: tuple[RaisedAlarm, ...]) -> AlarmNotice:
        """Sound (unless muted) and show a tray message for ``raised``; say so (``raised``)."""
        title = ngettext("{n} new danger alarm", "{n} new danger alarms",
                         len(raised)).format(n=len(raised))
        lines = [self._line(a) for a in raised[:3]]
        if len(raised) > 3:
            lines.append(_("and {n} more: see Station › Alarms").format(n=len(raised) - 3))
        text = "\n".join(lines)
        sounded = not self.muted()
        if sounded:
            self.sound()
        shown = QSystemTrayIcon.isSystemTrayAvailable() \
            and QSystemTrayIcon.supportsMessages()
        if shown:
            tray = self._tray()
            tray.showMessage(title, text, QSystemTrayIcon.MessageIcon.Critical,
                             TRAY_MESSAGE_MS)
        notice = AlarmNotice(raised, title, text, sounded, shown)
        log.warning("%s: %s", title, text.replace("\n", "; "))
        self.raised.emit(notice)
        return notice

    def _line(self, a: RaisedAlarm) -> str:
        node = self.ctx.index.nodes.get(a.node_id) if a.node_id is not None else None
        if node is None:
            return a.text
        return _("{room}: {text}").format(room=node.code or node.name, text=a.text)

    def _tray(self) -> QSystemTrayIcon:
        if self.tray is None:
            self.tray = QSystemTrayIcon(station_icon(), self)
            self.tray.setToolTip("VoltKeeper")
            self.tray.messageClicked.connect(self.messageClicked)
            self.tray.show()
        return self.tray

    # -- the window's menu entry ---------------------------------------------------------------
    def sound_action(self, parent: QObject) -> QAction:
        """A checkable menu entry: sound for new danger alarms on (checked) or muted. Its text
        is set by ``retranslate_action``."""
        action = QAction(parent, checkable=True)
        action.setChecked(not self.muted())
        action.toggled.connect(lambda on: self.set_muted(not on))
        self.retranslate_action(action)
        return action

    @staticmethod
    def retranslate_action(action: QAction) -> None:
        action.setText(_("&Sound for new danger alarms"))
