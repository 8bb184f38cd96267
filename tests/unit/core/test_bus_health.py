"""Bus and meter health: counting per minute in the poller's tally, storing and rolling up on a
real SQLite file, and the figures the window and ``main.py health`` show (by hand)."""

from __future__ import annotations

import json
import time

import pytest

from app.cli import main as cli_main
from app.core import bus_health
from app.core.comm_tally import CommTally, wire_limit_s
from app.drivers.modbus_link import LinkConfig, LinkCounters
from app.drivers.profile import load_profile
from app.storage import campus, comm_history
from app.storage.comm_history import CommRow
from app.storage.db import open_database
from app.storage.models import CommHour, CommMinute, LatestReading, Meter
from tests.helpers import operator

T0 = 1_700_000_040  # a minute's start (1_700_000_040 % 60 == 0)


@pytest.fixture
def station(tmp_path):
    path = tmp_path / "h.db"
    db = open_database(path)
    root = campus.add_node(None, "campus", "c")
    b1 = campus.add_bus("B01", "rtu:///dev/ttyS1?baud=9600")
    b2 = campus.add_bus("B02", "tcp://10.0.0.2:502")
    m = {u: campus.add_meter(b1, u, "acrel-ddsy1352", "",
                             campus.add_node(root, "room", f"r{u}", code=f"3-21{u}"))
         for u in (1, 2, 3)}
    m[9] = campus.add_meter(b2, 9, "acrel-ddsy1352", "", campus.add_node(root, "shop", "s9"))
    yield path, {"b1": b1, "b2": b2, **{f"m{u}": i for u, i in m.items()}}
    db.close()


def _tick(counters: LinkCounters, tx: int = 0, timeouts: int = 0, crc: int = 0,
          exc: int = 0) -> LinkCounters:
    counters.transactions += tx
    counters.timeouts += timeouts
    counters.crc_errors += crc
    counters.exceptions += exc
    return counters


def test_the_tally_counts_each_meters_reads_and_transactions_per_minute():
    handed: list[list[CommRow]] = []
    tally = CommTally(1, handed.append, wire_limit_s=0.23)
    link = LinkCounters()
    tally.read(7, True, 0.020, _tick(link, tx=4), T0 + 1)  # 4 blocks, one good read
    tally.read(8, False, None, _tick(link, tx=2, timeouts=2), T0 + 2)  # tried and retried
    tally.cycle(1, 0.9, T0 + 2)
    tally.cycle(1, 0.9, T0 + 3)  # the same cycle reported again (bus state): counted once
    tally.read(7, True, 0.030, _tick(link, tx=5, crc=1), T0 + 4)  # a CRC error, then a retry
    tally.read(8, True, 0.050, _tick(link, tx=4), T0 + 5)
    tally.cycle(2, 1.3, T0 + 5)
    assert handed == []  # nothing before the minute is over
    tally.read(7, True, 0.010, _tick(link, tx=4), T0 + 61)  # the next minute: the first goes
    assert len(handed) == 1
    rows = {r.meter_id: r for r in handed[0]}
    assert rows[7] == CommRow(1, 7, T0, polls=2, ok=2, transactions=9, crc_errors=1,
                              latency_sum_ms=pytest.approx(50.0),
                              latency_max_ms=pytest.approx(30.0))
    assert rows[8] == CommRow(1, 8, T0, polls=2, ok=1, transactions=6, timeouts=2,
                              latency_sum_ms=pytest.approx(50.0),
                              latency_max_ms=pytest.approx(50.0))
    assert rows[0] == CommRow(1, 0, T0, cycles=2, cycle_sum_s=pytest.approx(2.2),
                              cycle_max_s=1.3, wire_limit_s=0.23)
    # a new link (the poller restarted): its counts start at zero, nothing is lost or doubled
    fresh = _tick(LinkCounters(), tx=3)
    tally.read(8, True, 0.020, fresh, T0 + 62)
    assert {r.meter_id: r.transactions for r in tally.rows()} == {7: 4, 8: 3, 0: 0}


def test_a_short_flush_interval_hands_on_the_same_minute_in_parts(station):
    _path, ids = station
    handed: list[list[CommRow]] = []
    tally = CommTally(ids["b1"], handed.append, flush_every_s=2.0)
    link = LinkCounters()
    tally.read(ids["m1"], True, 0.02, _tick(link, tx=4), T0 + 10)
    tally.read(ids["m1"], True, 0.04, _tick(link, tx=4), T0 + 12.5)  # hands the first part
    tally.read(ids["m1"], False, None, _tick(link, tx=1, exc=1), T0 + 15)
    assert [r.start for rows in handed for r in rows] == [T0, T0, T0, T0]
    for rows in handed:
        comm_history.store(rows)
    row = CommMinute.get((CommMinute.meter == ids["m1"]) & (CommMinute.start == T0))
    assert (row.polls, row.ok, row.transactions, row.exceptions) == (2, 2, 8, 0)
    assert row.latency_sum_ms == pytest.approx(60.0) and row.latency_max_ms == pytest.approx(40)


def _minute(bus, meter, start, **kw) -> CommRow:
    return CommRow(bus, meter, start, **kw)


def test_figures_over_a_window_worst_meters_first(station):
    _path, ids = station
    b1, b2, m1, m2, m3, m9 = (ids[k] for k in ("b1", "b2", "m1", "m2", "m3", "m9"))
    now = T0 + 600  # ten minutes on
    rows = []
    for k in range(10):  # ten minutes of figures
        s = T0 + 60 * k
        rows += [_minute(b1, m1, s, polls=12, ok=12, transactions=48, latency_sum_ms=240.0,
                         latency_max_ms=25.0 + k),
                 _minute(b1, m2, s, polls=12, ok=11, transactions=50, crc_errors=2,
                         latency_sum_ms=220.0, latency_max_ms=30.0),
                 _minute(b1, m3, s, polls=12, ok=12, transactions=48, latency_sum_ms=480.0,
                         latency_max_ms=90.0),
                 _minute(b1, 0, s, cycles=12, cycle_sum_s=12 * 0.5, cycle_max_s=0.6 + k / 100,
                         wire_limit_s=0.69),
                 _minute(b2, m9, s, polls=12, ok=6, transactions=12, timeouts=6,
                         latency_sum_ms=60.0, latency_max_ms=12.0)]
    rows.append(_minute(b1, m1, T0 - 60, polls=99, transactions=99, timeouts=99))  # before
    comm_history.store(rows)
    LatestReading.insert_many([{"meter": m, "online": True} for m in (m1, m2, m3)]).execute()
    LatestReading.insert(meter=m9, online=False).execute()

    report = bus_health.health(operator("viewer"), minutes=10, now=now)
    assert report.seconds == 600
    one, two = report.buses
    assert one.name == "B01" and one.figures.transactions == 1460
    assert one.transactions_per_s == pytest.approx(1460 / 600)
    assert one.figures.crc_errors == 20 and one.figures.timeouts == 0
    assert one.figures.success_rate == pytest.approx(1440 / 1460)
    assert one.figures.mean_latency_ms == pytest.approx(9400 / 350)
    assert one.figures.worst_latency_ms == 90.0
    assert (one.cycles, one.cycle_mean_s, one.cycle_max_s) == (120, pytest.approx(0.5), 0.69)
    assert one.wire_limit_s == 0.69
    # worst first: m2's CRC errors (20 of 500 failed), then m3 (no failure, slowest), then m1
    assert [m.meter_id for m in one.meters] == [m2, m3, m1]
    worst = one.meters[0]
    assert worst.room == "3-212" and worst.figures.success_rate == pytest.approx(0.96)
    assert worst.health == "fair" and one.meters[1].health == "good"
    assert [m.address for m in one.strip] == [1, 2, 3]
    assert two.figures.success_rate == 0.5 and two.wire_limit_s is None
    assert two.meters[0].health == "offline" and two.meters[0].room == "s9"
    # the campus's worst: the offline shop's meter (half its transactions failed), then m2
    assert [m.meter_id for m in report.worst[:2]] == [m9, m2]
    only = bus_health.health(operator("viewer"), minutes=10, bus="B02", now=now)
    assert [b.name for b in only.buses] == ["B02"]


def test_a_new_service_rates_over_the_minutes_it_has(station):
    _path, ids = station
    comm_history.store([_minute(ids["b1"], ids["m1"], T0, polls=10, ok=10, transactions=30)])
    comm_history.store([_minute(ids["b1"], ids["m1"], T0 + 60, polls=10, ok=10,
                                transactions=30)])
    # in the third minute, being counted now and not stored yet: the rates are over two
    report = bus_health.health(operator("viewer"), hours=1, now=T0 + 150)
    assert report.seconds == 120
    assert report.buses[0].transactions_per_s == pytest.approx(60 / 120)
    idle = next(m for m in report.buses[0].meters if m.meter_id == ids["m2"])
    assert idle.figures.success_rate is None and idle.health == "idle"


def test_old_minutes_are_rolled_into_hours_and_old_hours_go(station):
    _path, ids = station
    b1, m1, m2 = ids["b1"], ids["m1"], ids["m2"]
    now = float(T0 + 100 * 3600)
    old = int(now - comm_history.MINUTE_KEEP_S) - 3 * 3600  # three hours past the 48
    hour = old - old % 3600
    comm_history.store([
        _minute(b1, m1, hour + 60, polls=5, ok=5, transactions=20, latency_sum_ms=50.0,
                latency_max_ms=20.0),
        _minute(b1, m1, hour + 120, polls=5, ok=4, transactions=21, timeouts=1,
                latency_sum_ms=40.0, latency_max_ms=35.0),
        _minute(b1, 0, hour + 60, cycles=3, cycle_sum_s=3.0, cycle_max_s=1.5, wire_limit_s=0.7),
        _minute(b1, m1, int(now) - 600, polls=1, ok=1, transactions=4),  # recent: stays
        _minute(b1, m2, hour + 60, polls=1, ok=1, transactions=4),
    ])
    CommHour.insert(start=int(now - comm_history.HOUR_KEEP_S) - 3600, bus=b1, meter=m1,
                    polls=1).execute()  # past 90 days
    Meter.delete().where(Meter.id == m2).execute()  # a meter removed
    rolled, gone = comm_history.roll_up(now)
    assert (rolled, gone) == (4, 1)
    assert CommMinute.select().count() == 1
    hours = {(h.meter): h for h in CommHour.select()}
    assert set(hours) == {m1, 0}  # the removed meter's rows are gone too
    h = hours[m1]
    assert (h.start, h.polls, h.ok, h.transactions, h.timeouts) == (hour, 10, 9, 41, 1)
    assert (h.latency_sum_ms, h.latency_max_ms) == (90.0, 35.0)
    assert (hours[0].cycles, hours[0].cycle_max_s, hours[0].wire_limit_s) == (3, 1.5, 0.7)
    # a window reaching past the minutes kept reads the hours too
    report = bus_health.health(operator("viewer"), hours=60, now=now)
    m = next(x for x in report.buses[0].meters if x.meter_id == m1)
    assert m.figures.transactions == 45 and m.figures.timeouts == 1
    # rolled up twice (another run): nothing moves twice
    assert comm_history.roll_up(now) == (0, 0)


def test_the_wire_time_limit_of_a_cycle():
    ddsy = load_profile("acrel-ddsy1352")  # fast reads: 18, 2, 6 and 6 registers
    rtu = LinkConfig.from_url("rtu:///dev/ttyS1?baud=9600")
    # per block (8 + 5 + 2n + 7 characters of 10 bits) / 9600 + 20 ms turnaround
    by_hand = sum((20 + 2 * n) * 10 / 9600 + 0.020 for n in (18, 2, 6, 6))
    assert wire_limit_s(rtu, [ddsy]) == pytest.approx(by_hand, abs=1e-4)
    assert wire_limit_s(rtu, [ddsy, ddsy]) == pytest.approx(2 * by_hand, abs=1e-4)
    even = LinkConfig.from_url("rtu-tcp://gw:4001?baud=19200&parity=E")
    assert wire_limit_s(even, [ddsy]) == pytest.approx(
        sum((20 + 2 * n) * 11 / 19200 + 0.020 for n in (18, 2, 6, 6)), abs=1e-4)
    assert wire_limit_s(LinkConfig.from_url("tcp://gw:502"), [ddsy]) is None


def test_the_health_command(station, capsys):
    path, ids = station
    here = int(time.time() // 60 * 60)  # the command looks at the last minutes from now
    comm_history.store([
        _minute(ids["b1"], ids["m1"], here, polls=10, ok=10, transactions=40,
                latency_sum_ms=200.0, latency_max_ms=30.0),
        _minute(ids["b1"], ids["m2"], here, polls=10, ok=7, transactions=40, crc_errors=4),
        _minute(ids["b1"], 0, here, cycles=10, cycle_sum_s=8.0, cycle_max_s=1.0,
                wire_limit_s=0.69)])
    assert cli_main(["health", "--db", str(path), "--minutes", "5", "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    b1 = data["buses"][0]
    assert b1["bus"] == "B01" and b1["crc_errors"] == 4 and b1["success_rate"] == 0.95
    assert b1["cycle_mean_s"] == 0.8 and b1["wire_limit_s"] == 0.69
    assert data["worst"][0]["room"] == "3-212" and data["worst"][0]["crc_errors"] == 4
    assert cli_main(["health", "--db", str(path), "--bus", "B01", "--worst", "2"]) == 0
    text = capsys.readouterr().out
    assert "B01" in text and "CRC 4" in text and "0.69 s" in text
    assert cli_main(["health", "--db", str(path), "--bus", "nope"]) == 1
    assert cli_main(["health", "--db", str(path), "--minutes", "0"]) == 2
