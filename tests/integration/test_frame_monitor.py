"""The frame monitor's feed, end to end: the reading service polls the simulator (on ptys, RTU
framing) with one meter's replies corrupted; a subscriber in this process, as a window that does
not poll, finds the feed in the database and gets the bus's frames, the corrupt ones flagged and
the good ones explained by the meter's profile; a subscriber too slow costs the bus nothing; a
stranger without the feed's secret is refused; and ``serve`` in another process publishes its
frames the same way."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
from dataclasses import replace

import pytest

from app.core.frame_client import FrameFeedClient, monitor_setup
from app.core.frame_feed import FeedUnavailable, FrameFeed, find_endpoint
from app.core.service import ReadingService
from app.drivers.frames import parse
from app.storage import campus, readings
from app.storage.db import close_database, open_database
from tests.helpers import MAIN, ROOT, free_port_base, operator, run_main

from .conftest import wait_for


def _frames_until(client: FrameFeedClient, enough, timeout: float = 20.0) -> list:
    got: list = []
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and not enough(got):
        got.extend(client.take())
        time.sleep(0.05)
    return got


def test_feed_streams_frames_with_corrupt_ones_flagged(sim_campus):
    sim, _db = sim_campus
    sim.set_faults("1.3:crc=0.5")
    bus_name = {b.id: b.name for b in campus.buses()}
    first_bus = sorted(bus_name.values())[0]
    service = ReadingService(role="test", flush_s=0.05)
    ok, _info = service.start()
    assert ok
    try:
        assert wait_for(lambda: len([r for r in readings.latest() if r.online]) >= 8)
        # nobody watches: no bus's link has a tap
        assert all(p.link is None or p.link.frames is None for p in service.pollers.values())
        endpoint = find_endpoint()
        assert endpoint is not None and endpoint.port == service.frame_feed.endpoint.port
        setup = monitor_setup(operator("maintenance"))
        client = setup.connect([first_bus])
        try:
            assert first_bus in client.feed_buses
            assert wait_for(lambda: service.frame_feed.watched() == [first_bus])
            frames = _frames_until(client, lambda got: sum(
                1 for f in got if f.error == "crc" and f.slave == 3) >= 2 and len(got) > 40)
        finally:
            client.close()
        assert wait_for(lambda: service.frame_feed.watched() == [])
        assert wait_for(lambda: all(p.link.frames is None for p in service.pollers.values()
                                    if p.link is not None))
    finally:
        service.stop()
    assert find_endpoint() is None  # withdrawn when the service stops
    assert frames and {f.bus for f in frames} == {first_bus}
    times = [f.t for f in frames if f.direction == "tx"]
    assert times == sorted(times)
    corrupt = [f for f in frames if f.error == "crc"]
    assert corrupt and all(f.slave == 3 and f.direction == "rx" for f in corrupt)
    assert all(not parse(f.data).valid for f in corrupt)
    assert all(setup.meaning(f).startswith("corrupt frame: CRC") for f in corrupt)
    good = [f for f in frames if f.direction == "rx" and not f.error]
    assert {f.slave for f in good} >= {1, 2, 4, 5}
    meanings = [setup.meaning(f) for f in good]
    assert any("voltage" in m and " V" in m for m in meanings), meanings[:5]
    label = setup.meters[first_bus][1][1]
    assert any(m.startswith(f"meter {label}: ") for m in meanings)
    requests = [setup.meaning(f) for f in frames if f.direction == "tx"]
    assert any(m.startswith("read 0x") and "voltage" in m for m in requests)


def test_a_slow_subscriber_loses_frames_not_the_bus(sim_campus):
    """A subscriber that reads nothing: the feed's queue for it fills, frames are dropped and
    counted, and the bus polls on at its pace."""
    _sim, _db = sim_campus
    service = ReadingService(role="test", flush_s=0.05)
    service.frame_feed.queue_frames = 5  # a tiny queue, soon full
    service.start()
    try:
        assert wait_for(lambda: len([r for r in readings.latest() if r.online]) == 10)
        poller = next(iter(service.pollers.values()))
        healthy = poller.last_cycle_s
        endpoint = find_endpoint()
        sock = socket.socket()
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 1024)
        sock.connect((endpoint.host, endpoint.port))
        try:
            sock.sendall(json.dumps({"secret": endpoint.secret,
                                     "buses": [poller.bus.name]}).encode() + b"\n")
            feed = service.frame_feed
            assert wait_for(lambda: any(s.dropped > 0 for s in list(feed._subscribers)),
                            timeout=30)
            cycles = poller.cycles
            assert wait_for(lambda: poller.cycles >= cycles + 3)
            assert poller.last_cycle_s < healthy + 0.5
        finally:
            sock.close()
    finally:
        service.stop()


def test_the_feed_refuses_a_subscriber_without_its_secret():
    feed = FrameFeed(publish=False)
    endpoint = feed.start()
    try:
        assert endpoint is not None and endpoint.host == "127.0.0.1"
        stranger = replace(endpoint, secret="0" * 32)
        with pytest.raises(FeedUnavailable, match="refused"):
            FrameFeedClient(stranger, ["B01"]).open()
        client = FrameFeedClient(endpoint, ["B01"]).open()
        try:
            assert client.feed_buses == [] and client.alive
        finally:
            client.close()
    finally:
        feed.stop()


def test_a_window_watches_the_frames_of_serve_in_another_process(tmp_path):
    """``simulate`` with CRC faults on one meter (RTU over TCP) and ``serve`` as their users
    run them; this process, as a window that does not poll, finds the feed in the database."""
    env = dict(os.environ, VOLTKEEPER_HOME=str(tmp_path / "home"), PYTHONUNBUFFERED="1")
    env.pop("QT_QPA_PLATFORM", None)
    port = free_port_base(1)
    sim = subprocess.Popen([sys.executable, MAIN, "simulate", "--buses", "1", "--meters", "3",
                            "--transport", "rtu-tcp", "--port", str(port), "--seed", "4",
                            "--faults", "1.2:crc=0.5"], env=env, stdout=subprocess.PIPE,
                           stderr=subprocess.PIPE, text=True, cwd=ROOT)
    serve = None
    db = tmp_path / "campus.db"
    try:
        assert "listening on rtu-tcp://127.0.0.1:" in sim.stdout.readline()
        made = run_main(["init-demo", "--db", str(db), "--buses", "1", "--meters", "3",
                         "--port", str(port), "--transport", "rtu-tcp", "--seed", "4"], env)
        assert made.returncode == 0, made.stderr
        serve = subprocess.Popen([sys.executable, MAIN, "serve", "--db", str(db)], env=env,
                                 stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                                 cwd=ROOT)
        open_database(db)
        assert wait_for(lambda: find_endpoint() is not None, timeout=30)
        endpoint = find_endpoint()
        assert endpoint.pid == serve.pid
        setup = monitor_setup(operator("maintenance"))
        client = setup.connect(["B01"])
        try:
            frames = _frames_until(client, lambda got: any(
                f.error == "crc" for f in got) and sum(
                1 for f in got if f.direction == "rx" and not f.error) >= 6, timeout=30)
        finally:
            client.close()
    finally:
        for proc in (serve, sim):
            if proc is not None:
                proc.terminate()
                proc.wait(timeout=20)
    corrupt = [f for f in frames if f.error == "crc"]
    assert corrupt and {f.slave for f in corrupt} == {2} and all(
        not parse(f.data).valid for f in corrupt)
    good = [setup.meaning(f) for f in frames if f.direction == "rx" and not f.error]
    assert any(m.startswith("meter 1-10") and "voltage" in m for m in good), good[:3]
    assert wait_for(lambda: find_endpoint() is None, timeout=20)  # withdrawn at exit
    close_database()
