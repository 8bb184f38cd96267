"""Binding a bus's addresses to rooms from the wiring plan the electricians work from.

The plan is an Excel sheet (or CSV) with a row per meter: room, bus, address and the meter's
serial number (its model optional), headers in English or Chinese (房间, 总线, 地址, 表号,
型号). The whole plan is checked first (every bus and room exists, addresses 1-247, no address
or serial twice); a plan with a problem changes nothing and names every bad row. Then each row
adds its meter, or brings the meter already at that address to the plan's room and serial,
through the campus operations (``core/campus_edit.py``: audited, the reading service picks the
change up). Binding from the scan's table calls ``bind`` with rows made there.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from app.core import campus_edit
from app.core.operators import Operator, Permission, require
from app.core.progress import Progress, quiet
from app.core.statements import header_key, read_rows
from app.errors import UserFacingError
from app.i18n import _
from app.storage import campus

DEFAULT_PROFILE = "acrel-ddsy1352"
HEADERS = {
    "room": ("room", "room no", "房间", "房间号", "房号", "宿舍"),
    "bus": ("bus", "总线", "总线名"),
    "address": ("address", "modbus address", "slave id", "地址", "通讯地址", "表地址"),
    "serial": ("serial", "serial number", "meter serial", "表号", "电表号", "序列号"),
    "profile": ("profile", "model", "型号", "表型"),
}


@dataclass(frozen=True)
class PlanRow:
    line: int
    room: str
    bus: str
    address: int
    serial: str = ""
    profile: str = ""


@dataclass
class BindResult:
    added: list[str] = field(default_factory=list)
    changed: list[str] = field(default_factory=list)
    unchanged: list[str] = field(default_factory=list)


def read_plan(path: Path) -> list[PlanRow]:
    """The plan's rows (refused whole with every bad row named)."""
    rows = read_rows(Path(path))
    columns: dict[str, int] | None = None
    out: list[PlanRow] = []
    problems: list[str] = []
    for line, cells in rows:
        keys = [header_key(c) for c in cells]
        if columns is None:
            found = {name: next((k for k, key in enumerate(keys) if key in names), -1)
                     for name, names in HEADERS.items()}
            if all(found[n] >= 0 for n in ("room", "bus", "address")):
                columns = {n: k for n, k in found.items() if k >= 0}
            continue
        if not any(c.strip() for c in cells):
            continue

        def cell(name: str, cells: list[str] = cells, columns: dict[str, int] = columns) -> str:
            k = columns.get(name, -1)
            return cells[k].strip() if 0 <= k < len(cells) else ""

        address = cell("address")
        if not address.isdigit() or not 1 <= int(address) <= 247:
            problems.append(_("line {line}: address {text!r} is not 1 to 247").format(
                line=line, text=address))
            continue
        if not cell("room") or not cell("bus"):
            problems.append(_("line {line}: a room and a bus are needed").format(line=line))
            continue
        out.append(PlanRow(line, cell("room"), cell("bus"), int(address), cell("serial"),
                           cell("profile")))
    if columns is None:
        raise UserFacingError(_("{file}: no header row with room, bus and address (房间, 总线, "
                                "地址) was found").format(file=Path(path).name))
    if problems:
        raise UserFacingError("\n".join(problems))
    return out


def check(rows: Sequence[PlanRow]) -> list[str]:
    """Every problem of the plan against the database (none: it can be bound)."""
    buses = {b.name: b for b in campus.buses()}
    rooms = {n.code for n in campus.nodes() if n.kind in ("room", "shop") and n.code}
    problems = []
    seen: dict[tuple[str, int], int] = {}
    serials: dict[str, int] = {}
    for r in rows:
        if r.bus not in buses:
            problems.append(_("line {line}: there is no bus {bus!r}").format(line=r.line,
                                                                            bus=r.bus))
        if r.room not in rooms:
            problems.append(_("line {line}: there is no room {room!r}").format(line=r.line,
                                                                              room=r.room))
        if (r.bus, r.address) in seen:
            problems.append(_("line {line}: {bus} address {address} is on line {other} "
                              "too").format(line=r.line, bus=r.bus, address=r.address,
                                            other=seen[(r.bus, r.address)]))
        seen.setdefault((r.bus, r.address), r.line)
        if r.serial:
            if r.serial in serials:
                problems.append(_("line {line}: serial {serial} is on line {other} too").format(
                    line=r.line, serial=r.serial, other=serials[r.serial]))
            serials.setdefault(r.serial, r.line)
    return problems


def bind(operator: Operator, rows: Sequence[PlanRow],
         progress: Progress | None = None) -> BindResult:
    """Add or bring up to date the meter of every row (checked whole first)."""
    require(operator, Permission.COMMISSION)
    progress = progress or quiet()
    problems = check(rows)
    if problems:
        raise UserFacingError(_("the plan was not bound; nothing changed:") + "\n"
                              + "\n".join(problems))
    buses = {b.name: b for b in campus.buses()}
    result = BindResult()
    for k, r in enumerate(rows):
        progress.step(k, len(rows), f"{r.bus} {r.address} {r.room}")
        bus = buses[r.bus]
        where = f"{r.bus}/{r.address} {r.room}"
        meter = campus.meter_at(bus.id, r.address)
        if meter is None:
            profile = r.profile or next((m.profile for m in campus.meters(bus.id)),
                                        DEFAULT_PROFILE)
            campus_edit.add_meter(operator, bus.id, r.address, profile, r.serial, r.room)
            result.added.append(where)
            continue
        changed = False
        if r.serial and r.serial != meter.serial:
            campus_edit.edit_meter(operator, meter.id, serial=r.serial)
            changed = True
        node = campus.room_numbered(r.room)
        if node is not None and node.id != meter.node_id:
            campus_edit.move_meter(operator, meter.id, room=r.room)
            changed = True
        (result.changed if changed else result.unchanged).append(where)
    progress.step(len(rows), len(rows))
    return result
