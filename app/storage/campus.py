"""The campus tree, buses and meters: creating them and reading them back as plain records.

The records (dataclasses) are what core and the views use; peewee rows stay inside storage.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

from peewee import JOIN, fn

from app.storage.models import (
    Bus,
    IntervalEnergy,
    LatestReading,
    Meta,
    Meter,
    Node,
    Occupant,
    Outbox,
    database,
)


@dataclass(frozen=True)
class NodeRecord:
    id: int
    parent_id: int | None
    kind: str
    name: str
    code: str
    sort_key: int


@dataclass(frozen=True)
class BusRecord:
    id: int
    name: str
    link: str
    poll_interval_s: float
    enabled: bool


@dataclass(frozen=True)
class MeterRecord:
    id: int
    bus_id: int
    address: int
    serial: str
    profile: str
    node_id: int | None
    enabled: bool


@dataclass(frozen=True)
class OccupantRecord:
    id: int
    node_id: int
    name: str
    person_no: str
    phone: str


def add_node(parent_id: int | None, kind: str, name: str, code: str = "",
             sort_key: int = 0) -> int:
    return Node.insert(parent=parent_id, kind=kind, name=name, code=code,
                       sort_key=sort_key).execute()


def add_bus(name: str, link: str, poll_interval_s: float = 5.0) -> int:
    return Bus.insert(name=name, link=link, poll_interval_s=poll_interval_s).execute()


def add_meter(bus_id: int, address: int, profile: str, serial: str = "",
              node_id: int | None = None) -> int:
    return Meter.insert(bus=bus_id, address=address, profile=profile, serial=serial,
                        node=node_id).execute()


def add_occupant(node_id: int, name: str, person_no: str = "", phone: str = "",
                 moved_in: float | None = None) -> int:
    return Occupant.insert(node=node_id, name=name, person_no=person_no, phone=phone,
                           moved_in=moved_in if moved_in is not None else time.time()).execute()


def bus_address(m: MeterRecord, bus_names: dict[int, str]) -> str:
    """``B03/12``: the meter's bus name and Modbus address, as the station shows a meter (the
    window's ``CampusIndex.bus_address`` says the same)."""
    return f"{bus_names.get(m.bus_id, m.bus_id)}/{m.address}"


def nodes() -> list[NodeRecord]:
    q = Node.select(Node.id, Node.parent, Node.kind, Node.name, Node.code, Node.sort_key) \
        .order_by(Node.sort_key, Node.id).tuples()
    return [NodeRecord(*row) for row in q]


def buses() -> list[BusRecord]:
    q = Bus.select(Bus.id, Bus.name, Bus.link, Bus.poll_interval_s, Bus.enabled) \
        .order_by(Bus.id).tuples()
    return [BusRecord(*row) for row in q]


def meters(bus_id: int | None = None) -> list[MeterRecord]:
    q = Meter.select(Meter.id, Meter.bus, Meter.address, Meter.serial, Meter.profile,
                     Meter.node, Meter.enabled)
    if bus_id is not None:
        q = q.where(Meter.bus == bus_id)
    return [MeterRecord(*row) for row in q.order_by(Meter.bus, Meter.address).tuples()]


def current_occupants() -> list[OccupantRecord]:
    q = Occupant.select(Occupant.id, Occupant.node, Occupant.name, Occupant.person_no,
                        Occupant.phone).where(Occupant.moved_out.is_null()) \
        .order_by(Occupant.node, Occupant.id).tuples()
    return [OccupantRecord(*row) for row in q]


def campus_name() -> str:
    root = Node.get_or_none(Node.parent.is_null())
    return root.name if root else ""


def count_meters() -> int:
    return Meter.select(fn.COUNT(Meter.id)).scalar() or 0


def is_empty() -> bool:
    return not Node.select().exists()


def meters_with_nodes() -> list[tuple[MeterRecord, NodeRecord | None]]:
    """Every meter with the room or shop it serves (None for an unassigned meter)."""
    q = (Meter.select(Meter, Node).join(Node, JOIN.LEFT_OUTER, on=(Meter.node == Node.id))
         .order_by(Meter.bus, Meter.address))
    out = []
    for m in q:
        rec = MeterRecord(m.id, m.bus_id, m.address, m.serial, m.profile, m.node_id, m.enabled)
        node = m.node if m.node_id is not None else None
        out.append((rec, NodeRecord(node.id, node.parent_id, node.kind, node.name, node.code,
                                    node.sort_key) if node else None))
    return out


def atomic():
    """A transaction (for callers building a campus in one go)."""
    return database.atomic()


# -- buses and meters, edited (core/campus_edit) ------------------------------------------------
#: Bumped by every change of a bus or a meter: a running reading service that sees it move
#: restarts the pollers of the buses that changed (``core/service``).
CONFIG_VERSION = "campus.bus_config"


def bump_config_version() -> int:
    """Say that a bus or a meter changed (in the caller's transaction). Returns the new value."""
    value = config_version() + 1
    Meta.insert(key=CONFIG_VERSION, value=str(value)).on_conflict_replace().execute()
    return value


def config_version() -> int:
    row = Meta.get_or_none(Meta.key == CONFIG_VERSION)
    try:
        return int(row.value) if row is not None else 0
    except ValueError:
        return 0


def _bus_record(b: Bus) -> BusRecord:
    return BusRecord(b.id, b.name, b.link, b.poll_interval_s, b.enabled)


def _meter_record(m: Meter) -> MeterRecord:
    return MeterRecord(m.id, m.bus_id, m.address, m.serial, m.profile, m.node_id, m.enabled)


def bus(bus_id: int) -> BusRecord | None:
    row = Bus.get_or_none(Bus.id == bus_id)
    return _bus_record(row) if row else None


def bus_named(name: str) -> BusRecord | None:
    """The bus called ``name`` (case does not matter)."""
    row = Bus.get_or_none(fn.LOWER(Bus.name) == name.strip().lower())
    return _bus_record(row) if row else None


def update_bus(bus_id: int, **fields: object) -> None:
    Bus.update(**fields).where(Bus.id == bus_id).execute()


def delete_bus(bus_id: int) -> None:
    Bus.delete().where(Bus.id == bus_id).execute()


def meter(meter_id: int) -> MeterRecord | None:
    row = Meter.get_or_none(Meter.id == meter_id)
    return _meter_record(row) if row else None


def meter_at(bus_id: int, address: int) -> MeterRecord | None:
    row = Meter.get_or_none((Meter.bus == bus_id) & (Meter.address == address))
    return _meter_record(row) if row else None


def meters_with_serial(serial: str) -> list[MeterRecord]:
    return [_meter_record(m) for m in Meter.select().where(Meter.serial == serial)]


def count_meters_on(bus_id: int) -> int:
    return Meter.select(fn.COUNT(Meter.id)).where(Meter.bus == bus_id).scalar() or 0


def update_meter(meter_id: int, **fields: object) -> None:
    Meter.update(**fields).where(Meter.id == meter_id).execute()


def delete_meter(meter_id: int) -> None:
    """The meter and, by the database's cascades, its readings, energy and commands."""
    Meter.delete().where(Meter.id == meter_id).execute()


def pending_commands(meter_id: int, actions: tuple[str, ...] | None = None) -> int:
    """How many commands (of ``actions``: recharges, controls, settings) still wait to reach
    the meter."""
    where = (Outbox.meter == meter_id) & (Outbox.state == "pending")
    if actions is not None:
        where &= Outbox.action.in_(actions)
    return Outbox.select(fn.COUNT(Outbox.id)).where(where).scalar() or 0


def was_read(meter_id: int) -> bool:
    """True once the meter was read or energy was booked from it (a meter added by mistake
    and never read has neither)."""
    return (LatestReading.select().where((LatestReading.meter == meter_id)
                                         & LatestReading.read_at.is_null(False)).exists()
            or IntervalEnergy.select().where(IntervalEnergy.meter == meter_id).exists())


def room_numbered(code: str) -> NodeRecord | None:
    """The room or shop numbered ``code`` (e.g. ``3-204``)."""
    row = Node.get_or_none((Node.code == code.strip()) & Node.kind.in_(("room", "shop")))
    return NodeRecord(row.id, row.parent_id, row.kind, row.name, row.code, row.sort_key) \
        if row else None
