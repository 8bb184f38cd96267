"""Bus and meter health over the last minutes or hours, from the figures kept
(``storage/comm_history``, counted by the pollers: ``core/comm_tally``). Read only
(``Permission.VIEW``); Qt-free: the window, ``main.py health`` and tests ask the same.

Per bus: transactions per second, the share of Modbus transactions that succeeded, timeouts,
CRC errors (corrupt or mismatched replies), exceptions, the mean and worst response time of a
good read, and the full cycle's mean and worst time against its wire-time limit. Per meter the
same, worst first: by failure rate, then by worst response time. A meter that did not answer
at all in the window (offline: probed now and then) has a failure rate of 1 and ranks first.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

from app.core.operators import Operator, Permission, require
from app.errors import UserFacingError
from app.i18n import N_, _
from app.storage import campus, comm_history, readings
from app.storage.comm_history import CommRow

#: A meter (or bus) whose transactions succeed at least this often is healthy (green) ...
GOOD_RATE = 0.99
#: ... at least this often, fair (amber); below it, poor (red).
FAIR_RATE = 0.90
#: The time ranges the window offers (minutes).
RANGES_MIN = (15, 60, 360, 1440)

#: What each health class is called where people read it.
HEALTH_TEXT = {"good": N_("good"), "fair": N_("fair"), "poor": N_("poor"),
               "offline": N_("offline"), "idle": N_("no traffic")}


def health_text(health: str) -> str:
    label = HEALTH_TEXT.get(health)
    return _(label) if label else health


@dataclass(frozen=True)
class Figures:
    """What a meter or a bus did on the wire over a window."""

    polls: int = 0  # reads tried
    ok: int = 0  # good reads
    transactions: int = 0
    timeouts: int = 0
    crc_errors: int = 0
    exceptions: int = 0
    latency_sum_ms: float = 0.0
    latency_max_ms: float = 0.0

    @classmethod
    def of(cls, row: CommRow) -> Figures:
        return cls(row.polls, row.ok, row.transactions, row.timeouts, row.crc_errors,
                   row.exceptions, row.latency_sum_ms, row.latency_max_ms)

    def __add__(self, other: Figures) -> Figures:
        return Figures(self.polls + other.polls, self.ok + other.ok,
                       self.transactions + other.transactions, self.timeouts + other.timeouts,
                       self.crc_errors + other.crc_errors, self.exceptions + other.exceptions,
                       self.latency_sum_ms + other.latency_sum_ms,
                       max(self.latency_max_ms, other.latency_max_ms))

    @property
    def failed(self) -> int:
        """Transactions that failed: no answer, a corrupt answer, a Modbus exception."""
        return min(self.transactions, self.timeouts + self.crc_errors + self.exceptions)

    @property
    def success_rate(self) -> float | None:
        """The share of transactions that succeeded (None: none were made)."""
        if self.transactions:
            return (self.transactions - self.failed) / self.transactions
        if self.polls:  # reads tried without one transaction: the link failed them all
            return 0.0
        return None

    @property
    def failure_rate(self) -> float:
        rate = self.success_rate
        return 0.0 if rate is None else 1.0 - rate

    @property
    def mean_latency_ms(self) -> float | None:
        return self.latency_sum_ms / self.ok if self.ok else None

    @property
    def worst_latency_ms(self) -> float | None:
        return self.latency_max_ms if self.ok else None

    def per_second(self, seconds: float) -> float:
        return self.transactions / seconds if seconds > 0 else 0.0


def classify(rate: float | None, online: bool | None = True) -> str:
    """good, fair or poor by success rate; offline (the meter does not answer now); idle (no
    traffic in the window)."""
    if online is False:
        return "offline"
    if rate is None:
        return "idle"
    if rate >= GOOD_RATE:
        return "good"
    return "fair" if rate >= FAIR_RATE else "poor"


@dataclass(frozen=True)
class MeterHealth:
    meter_id: int
    bus_id: int
    bus: str
    address: int
    room: str  # the room's or shop's number (or name); "" when unassigned
    figures: Figures
    online: bool | None  # answers now (None: never read)
    transactions_per_s: float = 0.0

    @property
    def health(self) -> str:
        return classify(self.figures.success_rate, self.online)

    def rank_key(self) -> tuple:
        """Worst first: the highest failure rate, then the worst response time."""
        f = self.figures
        return (-f.failure_rate, -(f.latency_max_ms if f.ok else 0.0), self.bus, self.address)

    def as_dict(self) -> dict:
        f = self.figures
        return {"meter": self.meter_id, "bus": self.bus, "address": self.address,
                "room": self.room, "online": self.online, "health": self.health,
                "transactions": f.transactions,
                "transactions_per_s": round(self.transactions_per_s, 3),
                "success_rate": None if f.success_rate is None else round(f.success_rate, 4),
                "timeouts": f.timeouts, "crc_errors": f.crc_errors, "exceptions": f.exceptions,
                "reads": f.polls, "good_reads": f.ok,
                "mean_latency_ms": _round(f.mean_latency_ms),
                "worst_latency_ms": _round(f.worst_latency_ms)}


@dataclass(frozen=True)
class BusHealth:
    bus_id: int
    name: str
    link: str
    figures: Figures
    transactions_per_s: float
    cycles: int
    cycle_mean_s: float | None
    cycle_max_s: float | None
    wire_limit_s: float | None  # None: Modbus-TCP, or nothing counted yet
    meters: list[MeterHealth] = field(default_factory=list)  # worst first

    @property
    def health(self) -> str:
        return classify(self.figures.success_rate)

    @property
    def strip(self) -> list[MeterHealth]:
        """Its meters in their order on the bus (by address)."""
        return sorted(self.meters, key=lambda m: m.address)

    def as_dict(self, worst: int | None = None) -> dict:
        f = self.figures
        meters = self.meters if worst is None else self.meters[:worst]
        return {"bus": self.name, "link": self.link, "health": self.health,
                "transactions": f.transactions,
                "transactions_per_s": round(self.transactions_per_s, 3),
                "success_rate": None if f.success_rate is None else round(f.success_rate, 4),
                "timeouts": f.timeouts, "crc_errors": f.crc_errors, "exceptions": f.exceptions,
                "mean_latency_ms": _round(f.mean_latency_ms),
                "worst_latency_ms": _round(f.worst_latency_ms),
                "cycles": self.cycles, "cycle_mean_s": _round(self.cycle_mean_s, 3),
                "cycle_max_s": _round(self.cycle_max_s, 3),
                "wire_limit_s": _round(self.wire_limit_s, 3),
                "meters": [m.as_dict() for m in meters]}


@dataclass(frozen=True)
class HealthReport:
    since: float
    until: float
    seconds: float  # the window's length that had figures (rates are per this)
    buses: list[BusHealth]
    worst: list[MeterHealth]  # the campus's worst meters, worst first

    def as_dict(self, worst: int | None = None) -> dict:
        return {"since": self.since, "until": self.until, "seconds": round(self.seconds, 1),
                "buses": [b.as_dict(worst) for b in self.buses],
                "worst": [m.as_dict() for m in self.worst]}


def _round(v: float | None, digits: int = 1) -> float | None:
    return None if v is None else round(v, digits)


def window_s(minutes: int | None = None, hours: int | None = None) -> float:
    """The window's length in seconds (default: the last 15 minutes)."""
    if hours is not None:
        return hours * 3600.0
    return (minutes if minutes is not None else 15) * 60.0


def health(operator: Operator, *, minutes: int | None = None, hours: int | None = None,
           bus: str | None = None, worst: int = 10, now: float | None = None) -> HealthReport:
    """Each bus's and meter's health over the last ``minutes`` (or ``hours``; default 15
    minutes), or only bus ``bus`` (its name); the campus's ``worst`` meters."""
    require(operator, Permission.VIEW)
    now = time.time() if now is None else now
    since = now - window_s(minutes, hours)
    buses = campus.buses()
    if bus is not None:
        buses = [b for b in buses if b.name == bus]
        if not buses:
            raise UserFacingError(_("no bus named {name}").format(name=bus))
    found, span = comm_history.totals(since, None, [b.id for b in buses])
    # the rates are per the time the figures cover: from the window's start (or the first
    # row's, for a service started 5 minutes ago) to the end of the last row handed on (the
    # minute being counted now is not stored yet)
    seconds = window_s(minutes, hours)
    if span is not None:
        seconds = max(min(now, span.last + span.last_length_s) - max(since, span.first), 1.0)
    online = {r.meter_id: r.online for r in readings.latest()}
    rooms: dict[int, str] = {}
    by_bus: dict[int, list] = {}
    for m, node in campus.meters_with_nodes():
        if not m.enabled:
            continue
        rooms[m.id] = (node.code or node.name) if node else ""
        by_bus.setdefault(m.bus_id, []).append(m)
    out = []
    for b in buses:
        meters = []
        for m in by_bus.get(b.id, []):
            row = found.get((b.id, m.id))
            figures = Figures.of(row) if row is not None else Figures()
            meters.append(MeterHealth(m.id, b.id, b.name, m.address, rooms.get(m.id, ""),
                                      figures, online.get(m.id),
                                      figures.per_second(seconds)))
        meters.sort(key=MeterHealth.rank_key)
        total = sum((m.figures for m in meters), Figures())
        own = found.get((b.id, 0))
        cycles = own.cycles if own is not None else 0
        out.append(BusHealth(
            b.id, b.name, b.link, total, total.per_second(seconds), cycles,
            own.cycle_sum_s / cycles if cycles else None,
            own.cycle_max_s if cycles and own is not None else None,
            own.wire_limit_s if own is not None else None, meters))
    ranked = sorted((m for b in out for m in b.meters), key=MeterHealth.rank_key)
    return HealthReport(since, now, seconds, out, ranked[:worst])
