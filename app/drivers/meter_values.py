"""The typed record of one read of a meter, in the station's units whatever the profile's.

Power in W, energy in kWh (exact Decimal, and as exact integer Wh through ``energy_wh``),
money in integer cents (fen), price in yuan/kWh (Decimal). A value the profile does not have, or
that was not read this time, is ``None``.

This one record goes from the driver through storage (``storage/readings``) to the views
(``core/live.MeterLive.values``): nothing turns it into another record with renamed fields.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from app.drivers.registers import Value

#: Status bits a meter may report; any bit field named here lands in ``MeterValues.flags``.
FLAG_NAMES = ("fault", "cost_control", "over_limit", "arrears", "alarm1", "alarm2")

_POWER_FACTORS = {"W": Decimal(1), "kW": Decimal(1000), "VA": Decimal(1), "kVA": Decimal(1000),
                  "var": Decimal(1), "kvar": Decimal(1000)}
_ENERGY_FACTORS = {"kWh": Decimal(1), "Wh": Decimal("0.001"), "MWh": Decimal(1000)}
_MONEY_FACTORS = {"yuan": Decimal(100), "fen": Decimal(1)}


def _dec(value: Any) -> Decimal:
    if isinstance(value, float):
        # float32 registers carry about 7 significant digits; keep 3 decimals of kWh.
        result = Decimal(repr(value)).quantize(Decimal("0.001"))
    else:
        result = Decimal(value)
    if not result.is_finite():
        raise ValueError(f"{value!r} is not a finite number")
    return result


def _float(value: Any, factor: Decimal = Decimal(1)) -> float:
    result = float(_dec(value) * factor) if factor != 1 else float(value)
    if not math.isfinite(result):
        raise ValueError(f"{value!r} is not a finite number")
    return result


def _wh(kwh: Decimal | None) -> int | None:
    return None if kwh is None else int(kwh * 1000)


@dataclass(frozen=True)
class MeterValues:
    """What one read of a meter returned."""

    read_at: float
    voltage_v: float | None = None
    current_a: float | None = None
    active_power_w: float | None = None
    power_factor: float | None = None
    frequency_hz: float | None = None
    energy_kwh: Decimal | None = None
    remaining_energy_kwh: Decimal | None = None
    remaining_money_cents: int | None = None
    purchase_count: int | None = None
    relay_closed: bool | None = None
    control_mode: str | None = None
    trip_reason: int | None = None  # why the relay is open, as the meter codes it
    flags: frozenset[str] = frozenset()
    price_per_kwh: Decimal | None = None
    power_limit_w: int | None = None
    malicious_detection: bool | None = None
    malicious_step_w: int | None = None
    token_status: int | None = None
    serial: str | None = None
    extra: dict[str, Value | bool] = field(default_factory=dict, compare=False)

    @property
    def energy_wh(self) -> int | None:
        """The energy register in integer Wh, computed in Decimal (exact for a register of 1 Wh
        resolution or coarser; a finer register's fraction of a Wh is cut off)."""
        return _wh(self.energy_kwh)

    @property
    def remaining_energy_wh(self) -> int | None:
        """The remaining-energy register in integer Wh, like ``energy_wh``."""
        return _wh(self.remaining_energy_kwh)

    @property
    def keep_power(self) -> bool | None:
        return None if self.control_mode is None else self.control_mode == "keep_power"

    @property
    def forced_trip(self) -> bool | None:
        return None if self.control_mode is None else self.control_mode == "forced_trip"


def values_from_points(decoded: dict[str, Value | bool], units: dict[str, str],
                       read_at: float, bad: list[tuple[str, str]] | None = None) -> MeterValues:
    """Build the record from decoded points (name -> value) and each point's unit.

    With ``bad``, a value that cannot be turned into the station's unit is left out and named
    there (the rest of the read is kept); without it, such a value raises."""
    kw: dict[str, Any] = {"read_at": read_at}
    extra: dict[str, Value | bool] = {}
    flags: set[str] = set()
    for name, value in decoded.items():
        try:
            _convert(name, value, units.get(name, ""), kw, extra, flags)
        except (ArithmeticError, ValueError, TypeError) as exc:
            if bad is None:
                raise
            bad.append((name, f"{value!r} cannot be converted: {exc}"))
    return MeterValues(flags=frozenset(flags), extra=extra, **kw)


def _convert(name: str, value: Value | bool, unit: str, kw: dict[str, Any],
             extra: dict[str, Value | bool], flags: set[str]) -> None:
    """Put one decoded point into the record's fields (``kw``), ``extra`` or ``flags``."""
    if name == "voltage":
        kw["voltage_v"] = _float(value)
    elif name == "current":
        kw["current_a"] = _float(value)
    elif name == "active_power":
        kw["active_power_w"] = _float(value, _POWER_FACTORS.get(unit or "W", Decimal(1)))
    elif name == "power_factor":
        kw["power_factor"] = _float(value)
    elif name == "frequency":
        kw["frequency_hz"] = _float(value)
    elif name in ("energy", "remaining_energy"):
        key = "energy_kwh" if name == "energy" else "remaining_energy_kwh"
        kw[key] = _dec(value) * _ENERGY_FACTORS.get(unit or "kWh", Decimal(1))
    elif name == "remaining_money":
        cents = _dec(value) * _MONEY_FACTORS.get(unit or "fen", Decimal(1))
        kw["remaining_money_cents"] = int(cents.to_integral_value())
    elif name == "purchase_count":
        kw["purchase_count"] = int(value)
    elif name == "relay_closed":
        kw["relay_closed"] = bool(value)
    elif name == "control_mode":
        kw["control_mode"] = str(value)
    elif name == "price":
        kw["price_per_kwh"] = _dec(value)
    elif name == "power_limit":
        kw["power_limit_w"] = int(value)
    elif name == "malicious_detection":
        kw["malicious_detection"] = bool(value)
    elif name == "malicious_step":
        kw["malicious_step_w"] = int(value)
    elif name == "trip_reason":
        kw["trip_reason"] = int(value)
    elif name == "token_status":
        kw["token_status"] = int(value)
    elif name == "serial":
        kw["serial"] = str(value)
    elif name in FLAG_NAMES:
        if value:
            flags.add(name)
    else:
        extra[name] = value
