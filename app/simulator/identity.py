"""Who each simulated meter is: its serial number and whether it is a shop.

Exported on their own (no asyncio, no physics) because the station's demo database builds the
same campus: it must give a room the serial the simulator's meter answers with, or recharge
tokens would be refused as foreign.
"""

from __future__ import annotations

#: First serial of the simulated campus; bus and unit are added so every meter differs.
SERIAL_BASE = 310_000_000_000


def serial_for(bus: int, unit: int) -> str:
    """The 12-digit serial (表号) of meter ``unit`` on ``bus``: ``310000001005`` is bus 1 unit 5."""
    if not (1 <= bus <= 999 and 0 <= unit <= 999):
        raise ValueError(f"no simulated meter at bus {bus} unit {unit}")
    return f"{SERIAL_BASE + bus * 1000 + unit:012d}"


def is_shop(bus: int, unit: int, meters_per_bus: int) -> bool:
    """True for the shops of the campus: the last two meters of every even bus.

    The seed's campus has shops besides the dormitories; they follow a shop's day (open 8:00 to
    22:00, kilowatts) rather than a dorm room's.
    """
    return bus % 2 == 0 and unit > meters_per_bus - 2
