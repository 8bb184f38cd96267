"""What no meter can plausibly report: the station's default range for each point it knows by
name, in the station's units, and the conversion of a point's unit to the station's.

A profile's point without ``min``/``max`` gets its name's range here, converted to the point's
own unit (``default_range``); a read outside it is a bad reading (``registers.implausible``).
"""

from __future__ import annotations

from decimal import Decimal

#: What no meter can plausibly report, by point name, in the station's unit: (unit, min, max).
#: A point whose profile gives ``min``/``max`` uses those instead (in the point's own unit).
PLAUSIBLE_RANGES: dict[str, tuple[str, str, str]] = {
    "voltage": ("V", "0", "500"),
    "current": ("A", "0", "200"),
    "active_power": ("W", "-100000", "100000"),
    "apparent_power": ("VA", "0", "100000"),
    "reactive_power": ("var", "-100000", "100000"),
    "power_factor": ("", "-1", "1"),
    "frequency": ("Hz", "40", "70"),
    "energy": ("kWh", "0", "1e9"),
    "energy_spike": ("kWh", "0", "1e9"),
    "energy_peak": ("kWh", "0", "1e9"),
    "energy_flat": ("kWh", "0", "1e9"),
    "energy_valley": ("kWh", "0", "1e9"),
    "remaining_energy": ("kWh", "-1e9", "1e9"),
    "remaining_money": ("yuan", "-1e8", "1e8"),
    "price": ("yuan/kWh", "0", "100"),
    "power_limit": ("W", "0", "1000000"),
    "malicious_step": ("W", "0", "1000000"),
}
#: A point's unit as the station's: (station unit, factor: station value = point value x factor).
STATION_UNITS: dict[str, tuple[str, str]] = {
    "kW": ("W", "1000"), "kVA": ("VA", "1000"), "kvar": ("var", "1000"),
    "Wh": ("kWh", "0.001"), "MWh": ("kWh", "1000"), "fen": ("yuan", "0.01"),
    "kV": ("V", "1000"), "mA": ("A", "0.001"),
}
#: The unit a point without ``unit`` is taken to be in (``core`` reads money without one as fen).
_UNITLESS = {"remaining_money": "fen"}


def default_range(name: str, unit: str) -> tuple[Decimal, Decimal]:
    """The plausible range of a point called ``name`` whose unit is ``unit``, in that unit.
    Raises ValueError when the unit is not one the station can convert for that name."""
    station_unit, lo, hi = PLAUSIBLE_RANGES[name]
    unit = unit or _UNITLESS.get(name, station_unit)
    if unit == station_unit:
        factor = Decimal(1)
    elif STATION_UNITS.get(unit, ("", ""))[0] == station_unit:
        factor = Decimal(STATION_UNITS[unit][1])
    else:
        raise ValueError(f"{unit!r} is not a unit of {name} the station knows (its plausible "
                         f"range is in {station_unit or 'no unit'}): give min and max")
    return Decimal(lo) / factor, Decimal(hi) / factor
