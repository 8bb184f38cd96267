"""The window's own settings (QSettings), declared once with their types and defaults.

Only what belongs to this PC's window lives here (language, layout, last selection, database
path); billing settings live in the database.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from PySide6.QtCore import QByteArray, QSettings


@dataclass(frozen=True)
class Option:
    key: str
    type: type
    default: object


LANGUAGE = Option("language", str, "system")  # "system", "en", "zh_CN"
DATABASE = Option("database", str, "")
GEOMETRY = Option("window/geometry", QByteArray, QByteArray())
WINDOW_STATE = Option("window/state", QByteArray, QByteArray())
SPLITTER = Option("window/splitter", QByteArray, QByteArray())
TABLE_HEADER = Option("window/room_table_header_v2", QByteArray, QByteArray())  # v2: 13 columns
LAST_NODE = Option("window/last_node", int, 0)
RECEIPT_PAPER = Option("desk/receipt_paper", str, "80mm")  # "80mm" roll or "A4"
ALARM_SOUND = Option("alarms/sound", bool, True)  # sound new danger alarms (False: muted)


class UiSettings:
    """Typed access to QSettings; tests pass an INI file so they never touch the user's."""

    def __init__(self, qsettings: QSettings | None = None) -> None:
        self.q = qsettings if qsettings is not None else QSettings("VoltKeeper", "VoltKeeper")

    @classmethod
    def at(cls, path: Path) -> UiSettings:
        return cls(QSettings(str(path), QSettings.Format.IniFormat))

    def get(self, opt: Option):
        value = self.q.value(opt.key, opt.default)
        if value is None:
            return opt.default
        if opt.type is int:
            try:
                return int(value)
            except (TypeError, ValueError):
                return opt.default
        if opt.type is str:
            return str(value)
        if opt.type is bool:  # an INI file or the registry gives "true" / "false"
            if isinstance(value, str):
                return value.strip().lower() in ("true", "1", "yes", "on")
            return bool(value)
        return value if isinstance(value, opt.type) else opt.default

    def set(self, opt: Option, value) -> None:
        self.q.setValue(opt.key, value)

    def sync(self) -> None:
        self.q.sync()
