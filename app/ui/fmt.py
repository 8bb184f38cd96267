"""How the window writes values: always with their unit, money through ``format_cents``."""

from __future__ import annotations

import time

from app.core.money import format_cents
from app.drivers.meter_values import MeterValues
from app.i18n import _, current_language

NONE = "–"


def volts(v: float | None) -> str:
    return NONE if v is None else f"{v:.1f} V"


def amps(a: float | None) -> str:
    return NONE if a is None else f"{a:.2f} A"


def watts(w: float | None) -> str:
    if w is None:
        return NONE
    return f"{w / 1000:.2f} kW" if abs(w) >= 10_000 else f"{w:.0f} W"


def power_factor(pf: float | None) -> str:
    return NONE if pf is None else f"{pf:.2f}"


def hertz(f: float | None) -> str:
    return NONE if f is None else f"{f:.2f} Hz"


def kwh(wh: int | None) -> str:
    """Integer Wh as kWh with two decimals, without passing through a float."""
    if wh is None:
        return NONE
    sign = "-" if wh < 0 else ""
    whole, rest = divmod(abs(int(wh)), 1000)
    return f"{sign}{whole}.{rest // 10:02d} kWh"


def money(cents: int | None) -> str:
    return format_cents(cents, symbol=True, none=NONE)


def relay(values: MeterValues | None, with_mode: bool = True) -> str:
    if values is None or values.relay_closed is None:
        return NONE
    text = _("closed") if values.relay_closed else _("open (tripped)")
    if with_mode and values.keep_power:
        text += " · " + _("keep power")
    return text


def day(t: float | None) -> str:
    """The local date of an instant, YYYY-MM-DD."""
    return NONE if t is None else time.strftime("%Y-%m-%d", time.localtime(t))


def clock(t: float | None, now: float | None = None) -> str:
    """Local clock time; with the date when not today."""
    if t is None:
        return NONE
    local = time.localtime(t)
    today = time.localtime(time.time() if now is None else now)
    if local[:3] == today[:3]:
        return time.strftime("%H:%M:%S", local)
    return time.strftime("%Y-%m-%d %H:%M", local)


def seconds(s: float | None) -> str:
    return NONE if s is None else f"{s:.2f} s"


def name_list(names: list[str]) -> str:
    return ("、" if current_language() == "zh_CN" else ", ").join(names)
