"""Which slave ids answer on a bus: the scan maintenance runs when a meter does not answer.

Each id of the range is asked once, with a short timeout of its own, for one register; any
reply (values, or a Modbus exception: a device is there and refused the register) means
something answers at that id. On a serial line every combination of the baud rates and
parities asked for is tried in turn, and each id found is not asked again at the others, so a
meter set to another speed is found at its own. What answers is identified through the meter
profiles (model, and the serial number where the profile has one). Bytes without a valid frame
at an id are reported as noise (another meter's speed, or wiring).

Against the database (``scan_bus``): the bus is taken from its poller for the scan
(``core/bus_access.py``; other buses go on polling) and what was found is compared with the
meters the database has on the bus: missing, unexpected, and a meter answering at another
speed than the bus's.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace

from app.core import bus_access
from app.core.operators import Operator, Permission
from app.core.progress import Progress, quiet
from app.drivers.modbus_link import LinkConfig, ModbusLink
from app.drivers.profile import MeterProfile, available_profiles, load_profile
from app.errors import CrcError, DriverError, LinkDown, MeterException, NoResponse, UserFacingError
from app.i18n import _
from app.storage import campus

log = logging.getLogger("voltkeeper.scan")

PARITIES = ("N", "E", "O")
BAUDS = (1200, 2400, 4800, 9600, 19200, 38400, 57600, 115200)


@dataclass(frozen=True)
class Found:
    id: int
    baud: int | None  # None: a TCP link (the gateway's speed is its own)
    parity: str | None
    model: str = ""
    serial: str = ""
    profile: str = ""

    def as_json(self) -> dict:
        return {"id": self.id, "baud": self.baud, "parity": self.parity,
                "model": self.model or None, "serial": self.serial or None}


@dataclass(frozen=True)
class Expected:
    """A meter the database has on the bus."""

    meter_id: int
    id: int
    serial: str
    profile: str
    room: str


@dataclass
class ScanResult:
    found: list[Found] = field(default_factory=list)
    scanned: int = 0
    noise: list[tuple[int, int | None, str | None]] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)  # settings that could not be tried
    # against the database (scan_bus only)
    bus: str = ""
    bus_baud: int | None = None
    bus_parity: str | None = None
    expected: list[Expected] = field(default_factory=list)  # what the database has on it
    missing: list[Expected] = field(default_factory=list)
    unexpected: list[Found] = field(default_factory=list)
    other_setting: list[tuple[Expected, Found]] = field(default_factory=list)
    serial_mismatch: list[tuple[Expected, Found]] = field(default_factory=list)

    def as_json(self) -> dict:
        out: dict = {"found": [f.as_json() for f in self.found], "scanned": self.scanned}
        if self.noise:
            out["noise"] = [{"id": i, "baud": b, "parity": p} for i, b, p in self.noise]
        if self.problems:
            out["problems"] = list(self.problems)
        if self.bus:
            out["bus"] = self.bus
            out["missing"] = [{"id": e.id, "meter": e.meter_id, "room": e.room,
                               "serial": e.serial or None} for e in self.missing]
            out["unexpected"] = [f.as_json() for f in self.unexpected]
            out["other_setting"] = [{"id": e.id, "room": e.room, "baud": f.baud,
                                     "parity": f.parity, "expected_baud": self.bus_baud,
                                     "expected_parity": self.bus_parity}
                                    for e, f in self.other_setting]
            out["serial_mismatch"] = [{"id": e.id, "room": e.room, "expected": e.serial,
                                       "found": f.serial} for e, f in self.serial_mismatch]
        return out


def parse_ids(text: str) -> list[int]:
    """``1-247``, ``5``, ``1-10,20,30-32`` -> sorted ids (1..247)."""
    ids: set[int] = set()
    for part in (p.strip() for p in text.split(",")):
        if not part:
            continue
        lo, dash, hi = part.partition("-")
        try:
            a, b = int(lo), int(hi) if dash else int(lo)
        except ValueError:
            raise UserFacingError(_("{text!r} is not a slave id range (such as 1-247 or "
                                    "1-10,20)").format(text=part)) from None
        if not 1 <= a <= b <= 247:
            raise UserFacingError(_("slave ids are 1 to 247, not {text}").format(text=part))
        ids.update(range(a, b + 1))
    if not ids:
        raise UserFacingError(_("no slave ids to scan"))
    return sorted(ids)


def parse_bauds(text: str) -> list[int]:
    out = []
    for part in (p.strip() for p in text.split(",") if p.strip()):
        if not part.isdigit() or int(part) not in BAUDS:
            raise UserFacingError(_("{text!r} is not a baud rate ({known})").format(
                text=part, known=", ".join(map(str, BAUDS))))
        out.append(int(part))
    return list(dict.fromkeys(out))


def parse_parities(text: str) -> list[str]:
    out = []
    for part in (p.strip().upper() for p in text.split(",") if p.strip()):
        if part not in PARITIES:
            raise UserFacingError(_("{text!r} is not a parity (N, E or O)").format(text=part))
        out.append(part)
    return list(dict.fromkeys(out))


def _profiles(first: Sequence[str] = ()) -> list[MeterProfile]:
    names = list(dict.fromkeys([*first, *available_profiles()]))
    out = []
    for name in names:
        try:
            out.append(load_profile(name))
        except Exception as exc:  # a broken profile file must not stop a scan
            log.warning("profile %s left out of the scan: %s", name, exc)
    return out


def _probe_register(profile: MeterProfile | None) -> tuple[int, int]:
    """(function, register) a scan asks: the profile's serial number or first point."""
    if profile is None or not profile.points:
        return 3, 0
    point = profile.points.get("serial") or min(profile.points.values(),
                                                key=lambda p: (p.function, p.address))
    return point.function, point.address


def identify(link: ModbusLink, unit: int, profiles: Sequence[MeterProfile]
             ) -> tuple[str, str, str]:
    """(model, serial, profile name) of what answers at ``unit``, as far as a profile knows it
    ("" where none does)."""
    fallback = ("", "", "")
    for profile in profiles:
        try:
            if profile.has("serial"):
                values = link.read_points(unit, profile, ["serial"])
                serial = values.get("serial")
                if serial is not None and str(serial).strip():
                    return profile.model, str(serial).strip(), profile.name
                continue
            fast = [p.name for p in profile.poll_points()][:4]
            if fast and len(link.read_points(unit, profile, fast)) == len(fast) \
                    and not fallback[0]:
                fallback = (profile.model, "", profile.name)
        except DriverError as exc:
            if isinstance(exc, LinkDown):
                raise
            continue
    return fallback


def scan_link(config: LinkConfig, ids: Sequence[int], *, timeout_ms: int = 200,
              bauds: Sequence[int] = (), parities: Sequence[str] = (),
              profiles: Sequence[MeterProfile] | None = None,
              progress: Progress | None = None,
              link_factory: Callable[[LinkConfig], ModbusLink] = ModbusLink) -> ScanResult:
    """Ask every id in ``ids`` on the link at each speed and parity asked (serial links;
    ``bauds``/``parities`` empty: the link's own). Progress steps per id asked; Cancel stops
    between two ids."""
    progress = progress or quiet()
    if not 10 <= timeout_ms <= 10_000:
        raise UserFacingError(_("the timeout per id is 10 to 10000 ms, not {ms}").format(
            ms=timeout_ms))
    profiles = list(profiles) if profiles is not None else _profiles()
    serial_line = config.transport == "rtu"
    if serial_line:
        combos = [(b, p) for b in (bauds or [config.baud]) for p in (parities or [config.parity])]
    else:
        combos = [(None, None)]
    function, register = _probe_register(profiles[0] if profiles else None)
    result = ScanResult(scanned=len(ids))
    found: set[int] = set()
    total = len(ids) * len(combos)
    done = 0
    for baud, parity in combos:
        cfg = replace(config, timeout_s=timeout_ms / 1000, retries=0)
        if baud is not None:
            cfg = replace(cfg, baud=baud, parity=parity or "N")
        link = link_factory(cfg)
        where = f"{baud} {parity}" if baud is not None else cfg.url()
        try:
            link.open()
        except LinkDown as exc:
            result.problems.append(_("could not open the line at {where}: {why}").format(
                where=where, why=exc))
            done += len(ids)
            continue
        try:
            for unit in ids:
                progress.step(done, total, _("id {id} at {where}").format(id=unit, where=where))
                done += 1
                if unit in found:
                    continue
                answer = _ask(link, unit, function, register)
                if answer == "noise":
                    result.noise.append((unit, baud, parity))
                if answer != "yes":
                    continue
                found.add(unit)
                model, serial, profile = identify(link, unit, profiles)
                result.found.append(Found(unit, baud, parity, model, serial, profile))
        finally:
            link.close()
    if len(result.problems) == len(combos):
        raise UserFacingError(_("nothing could be scanned: {problems}").format(
            problems="; ".join(result.problems)))
    progress.step(total, total)
    result.found.sort(key=lambda f: f.id)
    result.noise = [n for n in result.noise if n[0] not in found]
    return result


def _ask(link: ModbusLink, unit: int, function: int, register: int) -> str:
    """"yes" (a reply: values or an exception), "noise" (bytes, no valid frame), "no"."""
    try:
        link.read_registers(unit, function, register, 1)
    except MeterException:
        return "yes"
    except CrcError:
        return "noise"
    except NoResponse:
        return "no"
    return "yes"


def expected_meters(bus_id: int) -> list[Expected]:
    nodes = {n.id: n for n in campus.nodes()}
    out = []
    for m in campus.meters(bus_id):
        node = nodes.get(m.node_id) if m.node_id else None
        out.append(Expected(m.id, m.address, m.serial, m.profile,
                            (node.code or node.name) if node is not None else ""))
    return out


def scan_bus(operator: Operator, bus_name: str, ids: Sequence[int] | None = None, *,
             timeout_ms: int = 200, bauds: Sequence[int] = (), parities: Sequence[str] = (),
             progress: Progress | None = None) -> ScanResult:
    """Scan a bus of the database: take it from its poller, ask the ids (default: 1-247),
    give it back; compare with the meters the database has on it."""
    bus = bus_access.find_bus(bus_name)
    expected = expected_meters(bus.id)
    config = LinkConfig.from_url(bus.link)
    profiles = _profiles([e.profile for e in expected])
    ids = list(ids) if ids else list(range(1, 248))
    with bus_access.taken_bus(operator, bus, "scan", permission=Permission.COMMISSION) as taken:
        result = scan_link(taken.link.config, ids, timeout_ms=timeout_ms, bauds=bauds,
                           parities=parities, profiles=profiles, progress=progress)
    result.bus = bus.name
    if config.transport == "rtu":
        result.bus_baud, result.bus_parity = config.baud, config.parity
    compare(result, expected, ids)
    return result


def compare(result: ScanResult, expected: Sequence[Expected], ids: Sequence[int]) -> None:
    """Fill the result's missing, unexpected, other_setting and serial_mismatch."""
    result.expected = list(expected)
    by_id = {f.id: f for f in result.found}
    wanted = {e.id: e for e in expected}
    scanned = set(ids)
    result.missing = [e for e in expected if e.id in scanned and e.id not in by_id]
    result.unexpected = [f for f in result.found if f.id not in wanted]
    for e in expected:
        f = by_id.get(e.id)
        if f is None:
            continue
        if f.baud is not None and (f.baud, f.parity) != (result.bus_baud, result.bus_parity):
            result.other_setting.append((e, f))
        if e.serial and f.serial and e.serial != f.serial:
            result.serial_mismatch.append((e, f))
