"""The campus as the views see it: an in-memory index of nodes, meters, occupants and buses.

Built once per window (O(n) over storage's plain records) and shared through the AppContext, so
the tree, the room table, the meter panel and the search all look things up in dicts instead of
querying per item. Qt-free, so it is tested without a window.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass, field

from app.core.queries import BusRecord, CampusRecords, MeterRecord, NodeRecord, OccupantRecord
from app.i18n import _

CONTAINER_KINDS = ("campus", "building", "floor")
LEAF_KINDS = ("room", "shop")

# "B03/12", "b3/12", "3/12", "B03:12", "B03 12"
_BUS_ADDRESS = re.compile(r"^\s*b?\s*(\d{1,3})\s*[/:.\s]\s*(\d{1,3})\s*$", re.IGNORECASE)
_BUS_NAME_NO = re.compile(r"(\d+)\s*$")


@dataclass
class CampusIndex:
    nodes: dict[int, NodeRecord] = field(default_factory=dict)
    children: dict[int | None, list[int]] = field(default_factory=dict)
    row_of: dict[int, int] = field(default_factory=dict)  # node id -> row under its parent
    meters: dict[int, MeterRecord] = field(default_factory=dict)
    meters_of: dict[int, list[int]] = field(default_factory=dict)  # node id -> meter ids
    occupants_of: dict[int, list[OccupantRecord]] = field(default_factory=dict)
    buses: dict[int, BusRecord] = field(default_factory=dict)
    _haystack: dict[int, str] = field(default_factory=dict)
    _order: dict[int, int] = field(default_factory=dict)  # node id -> pre-order position

    # -- building ------------------------------------------------------------------------------
    @classmethod
    def load(cls, records: CampusRecords) -> CampusIndex:
        """From the campus as the core gives it (``queries.campus_records``)."""
        return cls.build(records.nodes, records.meters, records.occupants, records.buses)

    @classmethod
    def build(cls, nodes: Iterable[NodeRecord], meters: Iterable[MeterRecord],
              occupants: Iterable[OccupantRecord], buses: Iterable[BusRecord]) -> CampusIndex:
        idx = cls()
        for n in nodes:  # already ordered by (sort_key, id)
            idx.nodes[n.id] = n
        for n in idx.nodes.values():
            parent = n.parent_id if n.parent_id in idx.nodes else None
            siblings = idx.children.setdefault(parent, [])
            idx.row_of[n.id] = len(siblings)
            siblings.append(n.id)
        for m in meters:
            idx.meters[m.id] = m
            if m.node_id is not None:
                idx.meters_of.setdefault(m.node_id, []).append(m.id)
        for o in occupants:
            idx.occupants_of.setdefault(o.node_id, []).append(o)
        for b in buses:
            idx.buses[b.id] = b
        idx._number()
        for node_id, n in idx.nodes.items():
            parts = [n.code, n.name]
            for o in idx.occupants_of.get(node_id, ()):
                parts += [o.name, o.person_no]
            for mid in idx.meters_of.get(node_id, ()):
                parts.append(idx.meters[mid].serial)
            idx._haystack[node_id] = "\x00".join(parts).casefold()
        return idx

    def _number(self) -> None:
        stack = list(reversed(self.children.get(None, [])))
        pos = 0
        while stack:
            node_id = stack.pop()
            self._order[node_id] = pos
            pos += 1
            stack.extend(reversed(self.children.get(node_id, [])))

    # -- questions -----------------------------------------------------------------------------
    def parent_of(self, node_id: int) -> int | None:
        parent = self.nodes[node_id].parent_id
        return parent if parent in self.nodes else None

    def ancestors(self, node_id: int) -> list[int]:
        out = []
        parent = self.parent_of(node_id)
        while parent is not None:
            out.append(parent)
            parent = self.parent_of(parent)
        return out

    def campus_name(self) -> str:
        roots = self.children.get(None, [])
        return self.nodes[roots[0]].name if roots else ""

    def path(self, node_id: int) -> str:
        """``1号宿舍楼 › 2F › 1-203``: where a node is, below the campus itself."""
        names = [self.nodes[n].name for n in reversed([node_id, *self.ancestors(node_id)])
                 if self.nodes[n].kind != "campus"]
        return " › ".join(names) or self.nodes[node_id].name

    def is_leaf(self, node_id: int) -> bool:
        return self.nodes[node_id].kind in LEAF_KINDS

    def leaves_under(self, node_id: int) -> list[int]:
        """The rooms and shops under ``node_id`` (itself if it is one), in tree order."""
        out: list[int] = []
        stack = [node_id]
        while stack:
            nid = stack.pop()
            if self.nodes[nid].kind in LEAF_KINDS:
                out.append(nid)
            stack.extend(reversed(self.children.get(nid, [])))
        return out

    def count(self, kind: str) -> int:
        return sum(1 for n in self.nodes.values() if n.kind == kind)

    def node_of_meter(self, meter_id: int) -> int | None:
        m = self.meters.get(meter_id)
        return m.node_id if m else None

    def bus_address(self, meter_id: int) -> str:
        """``B03/12``: the meter's bus name and Modbus address."""
        m = self.meters[meter_id]
        bus = self.buses.get(m.bus_id)
        return f"{bus.name if bus else m.bus_id}/{m.address}"

    def named(self, node_ids: list[int], most: int = 4) -> str:
        """Rooms as a title or a question names them: the first ``most``, and how many more."""
        names = [self.nodes[n].code or self.nodes[n].name for n in node_ids]
        if len(names) <= most:
            return ", ".join(names)
        return _("{rooms} and {n} more").format(rooms=", ".join(names[:most]),
                                                n=len(names) - most)

    def occupant_names(self, node_id: int) -> list[str]:
        return [o.name for o in self.occupants_of.get(node_id, ())]

    # -- search --------------------------------------------------------------------------------
    def search(self, text: str, limit: int | None = None) -> list[int]:
        """Nodes matching ``text``: a room or shop by code or name, an occupant by name or
        person number, a meter by serial or by bus/address ("B03/12", "3/12"), a building or
        floor by name. Best first: exact code, then rooms, then tree order."""
        needle = text.strip().casefold()
        if not needle:
            return []
        found: dict[int, int] = {}  # node id -> rank (lower is better)
        for node_id in self._by_bus_address(needle):
            found[node_id] = 0
        for node_id, hay in self._haystack.items():
            if needle in hay and node_id not in found:
                n = self.nodes[node_id]
                if n.code.casefold() == needle or n.name.casefold() == needle:
                    found[node_id] = 0
                else:
                    found[node_id] = 1 if n.kind in LEAF_KINDS else 2
        ordered = sorted(found, key=lambda nid: (found[nid], self._order.get(nid, 0)))
        return ordered[:limit] if limit is not None else ordered

    def exact(self, text: str) -> int | None:
        """The one node ``text`` names exactly (room code or name, or a meter's bus/address,
        or its full serial), if there is one."""
        needle = text.strip().casefold()
        if not needle:
            return None
        hits = self._by_bus_address(needle)
        if len(hits) == 1:
            return hits[0]
        for node_id, n in self.nodes.items():
            if n.code.casefold() == needle or n.name.casefold() == needle:
                return node_id
        for m in self.meters.values():
            if m.serial and m.serial.casefold() == needle and m.node_id is not None:
                return m.node_id
        return None

    def _by_bus_address(self, needle: str) -> list[int]:
        m = _BUS_ADDRESS.match(needle)
        if not m:
            return []
        bus_no, address = int(m.group(1)), int(m.group(2))
        bus_ids = set()
        for b in self.buses.values():
            tail = _BUS_NAME_NO.search(b.name)
            if b.name.casefold() == f"b{m.group(1)}" or (tail and int(tail.group(1)) == bus_no):
                bus_ids.add(b.id)
        return [meter.node_id for meter in self.meters.values()
                if meter.bus_id in bus_ids and meter.address == address
                and meter.node_id is not None]
