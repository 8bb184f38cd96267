"""The campus tree, buses and meters: creating them and reading them back as plain records.

The records (dataclasses) are what core and the views use; peewee rows stay inside storage.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

from peewee import JOIN, fn

from app.storage.models import Bus, Meter, Node, Occupant, database


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
