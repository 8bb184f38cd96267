"""Counting a bus's health as it polls: per meter and minute, in memory, handed on once a minute.

A ``BusPoller`` owns one ``CommTally`` (its own thread only: no lock). After each read of a
meter, good or failed, the poller calls ``read``: the meter's counts grow by the Modbus
transactions its link counted since the previous read (so a retry, a refused block split in two,
a control written before the read-back all count), by their failures by kind, and by the good
read's response time. After each full cycle it calls ``cycle``. When the minute is over (or, in
tests, ``flush_every_s`` has passed) the next call hands the minute's rows, one per meter that
was read and one for the bus (``meter_id`` 0: its cycles and its wire-time limit), to ``sink``
in one list: the writer stores them in one transaction (``storage/comm_history``).

The work per read is a dict look-up, a few integer subtractions and additions on a list and a
comparison with the next flush time (about a microsecond; ``bench`` figures in the README).

A transaction the link makes between two reads of meters (the outbox delivering to another
meter between cycles) is counted with the next meter read: the link counts per bus, not per
meter. The last, unfinished minute of a poller that stops is not stored.

``wire_limit_s`` is the least time a full cycle can take on a serial line: every meter's read
of its fast points (as ``drivers/registers.plan_reads`` merges them) at the bus's baud, with
the gaps between frames and a meter's turnaround. A Modbus-TCP bus has no such limit.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Callable, Iterable

from app.drivers.modbus_link import LinkConfig, LinkCounters
from app.drivers.profile import MeterProfile
from app.drivers.registers import plan_reads, read_frame_sizes, wire_time
from app.storage.comm_history import CommRow

log = logging.getLogger("voltkeeper.comm_tally")

#: How long a meter takes to start answering after a request, on the wire (the DDSY1352's
#: ~20 ms; the simulator's paced wire uses the same).
TURNAROUND_S = 0.020
MINUTE_S = 60

CommSink = Callable[[list[CommRow]], None]

# the counts kept per meter: a list, for speed
_POLLS, _OK, _TX, _TIMEOUTS, _CRC, _EXC, _LAT_SUM, _LAT_MAX = range(8)


def wire_limit_s(config: LinkConfig, profiles: Iterable[MeterProfile]) -> float | None:
    """The seconds the fast reads of these meters take on the bus's wire (None: Modbus-TCP)."""
    if config.transport == "tcp":
        return None
    total = 0.0
    for profile in profiles:
        for block in plan_reads(profile, profile.poll_points(("fast",))):
            request, response = read_frame_sizes(block.count)
            total += wire_time(request, response, config.baud, config.parity,
                               config.stop_bits, TURNAROUND_S)
    return round(total, 4)


class CommTally:
    def __init__(self, bus_id: int, sink: CommSink, *, wire_limit_s: float | None = None,
                 flush_every_s: float = MINUTE_S,
                 clock: Callable[[], float] = time.time) -> None:
        self.bus_id = bus_id
        self.sink = sink
        self.wire_limit_s = wire_limit_s
        self.flush_every_s = flush_every_s
        self.clock = clock
        self._meters: dict[int, list] = {}
        self._minute = 0
        self._due = -math.inf  # the first call starts the first minute
        self._counters: LinkCounters | None = None
        self._seen = (0, 0, 0, 0)  # the link's counters at the previous read
        self._cycles = 0
        self._cycle_sum = 0.0
        self._cycle_max = 0.0
        self._cycles_seen = 0

    def read(self, meter_id: int, ok: bool, latency_s: float | None,
             counters: LinkCounters | None, now: float) -> None:
        """A read of a meter ended (good or failed): count it with its transactions."""
        if now >= self._due:
            self.flush(now)
        c = self._meters.get(meter_id)
        if c is None:
            c = self._meters[meter_id] = [0, 0, 0, 0, 0, 0, 0.0, 0.0]
        c[_POLLS] += 1
        if counters is not None:
            if counters is not self._counters:  # a new link: its counts start at zero
                self._counters, self._seen = counters, (0, 0, 0, 0)
            tx, to, crc, exc = self._seen
            self._seen = (counters.transactions, counters.timeouts, counters.crc_errors,
                          counters.exceptions)
            c[_TX] += counters.transactions - tx
            c[_TIMEOUTS] += counters.timeouts - to
            c[_CRC] += counters.crc_errors - crc
            c[_EXC] += counters.exceptions - exc
        if ok:
            c[_OK] += 1
            if latency_s is not None:
                ms = latency_s * 1000.0
                c[_LAT_SUM] += ms
                if ms > c[_LAT_MAX]:
                    c[_LAT_MAX] = ms

    def cycle(self, cycles: int, cycle_s: float | None, now: float) -> None:
        """The bus reports its state: counts a cycle when ``cycles`` (the poller's count of
        full cycles) moved on since the last call."""
        if now >= self._due:
            self.flush(now)
        if cycles == self._cycles_seen or cycle_s is None:
            return
        self._cycles_seen = cycles
        self._cycles += 1
        self._cycle_sum += cycle_s
        if cycle_s > self._cycle_max:
            self._cycle_max = cycle_s

    def flush(self, now: float | None = None) -> list[CommRow]:
        """Hand what was counted since the last flush to the sink; start the next period."""
        now = self.clock() if now is None else now
        rows = self.rows()
        self._meters = {}
        self._cycles, self._cycle_sum, self._cycle_max = 0, 0.0, 0.0
        self._minute = int(now // MINUTE_S) * MINUTE_S
        self._due = min(self._minute + MINUTE_S, now + self.flush_every_s)
        if rows:
            try:
                self.sink(rows)
            except Exception:  # the bus polls on whatever happens to its statistics
                log.exception("bus %s: could not hand on its health figures", self.bus_id)
        return rows

    def rows(self) -> list[CommRow]:
        """What was counted since the last flush (nothing before the first call)."""
        if not self._meters and not self._cycles:
            return []
        start = self._minute
        rows = [CommRow(self.bus_id, meter_id, start, c[_POLLS], c[_OK], c[_TX], c[_TIMEOUTS],
                        c[_CRC], c[_EXC], c[_LAT_SUM], c[_LAT_MAX])
                for meter_id, c in self._meters.items()]
        rows.append(CommRow(self.bus_id, 0, start, cycles=self._cycles,
                            cycle_sum_s=self._cycle_sum, cycle_max_s=self._cycle_max,
                            wire_limit_s=self.wire_limit_s))
        return rows
