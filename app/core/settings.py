"""Station settings: declared once here with their type, default and bounds; stored in the
database (every desk and the reading service see the same), changed only by an audited act.

A PC's own window settings (language, layout) are not here: they live in the window's
QSettings (``ui/settings.py``). Tariffs have their own dated history (``core/tariffs.py``).
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Generic, TypeVar

from app.core.audit import act
from app.core.changes import Changes
from app.core.operators import Operator, Permission
from app.errors import UserFacingError
from app.i18n import N_, _
from app.storage import operators as store

T = TypeVar("T", int, str)


@dataclass(frozen=True)
class StationOption(Generic[T]):
    key: str
    type: type[T]
    default: T
    label: str  # marked for translation
    minimum: int | None = None
    maximum: int | None = None
    choices: tuple[str, ...] = ()  # a text option: only these

    def parse(self, raw: object) -> T:
        """The value from text or a number; refuses what is out of bounds or of the wrong type."""
        if self.type is int:
            try:
                value = int(str(raw).strip())
            except ValueError:
                raise UserFacingError(_("{label}: {value!r} is not a whole number").format(
                    label=_(self.label), value=raw)) from None
            if (self.minimum is not None and value < self.minimum) or \
                    (self.maximum is not None and value > self.maximum):
                raise UserFacingError(_("{label}: from {min} to {max}").format(
                    label=_(self.label), min=self.minimum, max=self.maximum))
            return value  # type: ignore[return-value]
        value = str(raw).strip()
        if self.choices and value not in self.choices:
            raise UserFacingError(_("{label}: one of {choices}").format(
                label=_(self.label), choices=", ".join(self.choices)))
        return value  # type: ignore[return-value]


LOCK_AFTER_MIN = StationOption("ui.lock_after_min", int, 10,
                               N_("Lock the window after this many idle minutes (0: never)"),
                               0, 24 * 60)
BACKUP_HOUR = StationOption("backup.hour", int, 3, N_("Daily backup at this hour"), 0, 23)
BACKUP_KEEP = StationOption("backup.keep", int, 30, N_("Backups kept"), 1, 3650)
BACKUP_DIR = StationOption("backup.dir", str, "",
                           N_("Backup folder (empty: 'backups' beside the database)"))

LOW_BALANCE_1_YUAN = StationOption("alarms.low_balance_1", int, 20,
                                   N_("Low balance, first warning below (yuan)"), 0, 100_000)
LOW_BALANCE_2_YUAN = StationOption("alarms.low_balance_2", int, 5,
                                   N_("Low balance, second warning below (yuan)"), 0, 100_000)
RESTORE_DELAY_S = StationOption("control.restore_delay_s", int, 300,
                                N_("Restore power this many seconds after an automatic trip "
                                   "(power limit, malicious load)"), 1, 24 * 3600)
MAX_RESTORES = StationOption("control.max_restores", int, 3,
                             N_("Automatic restores within an hour before a room stays off "
                                "until an operator acts"), 0, 100)

SMS_SENDER = StationOption("sms.sender", str, "none",
                           N_("Texts to residents go through (none, modem or http)"),
                           choices=("none", "modem", "http"))
SMS_MODEM_PORT = StationOption("sms.modem_port", str, "",
                               N_("SMS modem's serial port (e.g. /dev/ttyUSB2 or COM5)"))
SMS_MODEM_BAUD = StationOption("sms.modem_baud", int, 115200, N_("SMS modem's speed (baud)"),
                               1200, 921600)
SMS_HTTP_URL = StationOption("sms.http_url", str, "",
                             N_("SMS gateway's address (https://...; its key in the file "
                                "sms-gateway.key beside the database)"))
SMS_DAILY_CAP = StationOption("sms.daily_cap", int, 5,
                              N_("Texts to one phone number a day, at most"), 1, 100)
SMS_QUIET_FROM = StationOption("sms.quiet_from", int, 22,
                               N_("No texts from this hour (quiet hours)"), 0, 23)
SMS_QUIET_TO = StationOption("sms.quiet_to", int, 7,
                             N_("No texts until this hour (same as the start: no quiet hours)"),
                             0, 23)
SMS_LANG = StationOption("sms.lang", str, "zh_CN", N_("Language of the texts (zh_CN or en)"),
                         choices=("zh_CN", "en"))

OPTIONS: dict[str, StationOption] = {o.key: o for o in (LOCK_AFTER_MIN, BACKUP_HOUR,
                                                         BACKUP_KEEP, BACKUP_DIR,
                                                         LOW_BALANCE_1_YUAN,
                                                         LOW_BALANCE_2_YUAN,
                                                         RESTORE_DELAY_S, MAX_RESTORES,
                                                         SMS_SENDER,
                                                         SMS_MODEM_PORT, SMS_MODEM_BAUD,
                                                         SMS_HTTP_URL, SMS_DAILY_CAP,
                                                         SMS_QUIET_FROM, SMS_QUIET_TO,
                                                         SMS_LANG)}


def get(option: StationOption[T]) -> T:
    """The option's value now (its default unless someone changed it)."""
    raw = store.setting_values().get(option.key)
    if raw is None:
        return option.default
    try:
        return option.parse(raw)
    except UserFacingError:
        return option.default


def values() -> dict[str, object]:
    raw = store.setting_values()
    out: dict[str, object] = {}
    for key, option in OPTIONS.items():
        try:
            out[key] = option.parse(raw[key]) if key in raw else option.default
        except UserFacingError:
            out[key] = option.default
    return out


@dataclass(frozen=True)
class SettingChange:
    key: str
    before: object
    after: object
    changes: Changes


def change(operator: Operator, option: StationOption[T], value: object) -> SettingChange:
    """Set a station setting (administrators), audited with before and after."""
    with act(operator, Permission.SETTINGS, "setting", target=option.key) as a:
        parsed = option.parse(value)
        before = get(option)
        store.put_setting(option.key, str(parsed), operator.name, time.time())
        a.before, a.after = {option.key: before}, {option.key: parsed}
    return SettingChange(option.key, before, parsed, Changes(settings=True))
