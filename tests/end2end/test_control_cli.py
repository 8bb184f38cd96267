"""Remote control as the maintenance office uses it: simulate, init-demo, serve and control as
subprocesses on one database. A building's trip reaches every meter that answers and is
confirmed by reading the relay back; a silent meter is reported failed with its reason and its
withdrawn command never lands later; the role decides who may trip a building."""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

from tests.helpers import free_port_base, run_main, status_json, wait_until

ROOT = Path(__file__).resolve().parent.parent.parent
MAIN = str(ROOT / "main.py")


def _run(args, env, timeout=90):
    return run_main(args, env, timeout)


_status, _wait = status_json, wait_until


@pytest.fixture
def station(tmp_path):
    """2 buses x 3 meters (building 1号宿舍楼), meter 1.2 silent, polled by serve."""
    env = dict(os.environ, VOLTKEEPER_HOME=str(tmp_path / "home"), PYTHONUNBUFFERED="1",
               VOLTKEEPER_PASSWORD="demo-pass-1")
    env.pop("QT_QPA_PLATFORM", None)
    port = free_port_base(2)
    sim = subprocess.Popen([sys.executable, MAIN, "simulate", "--buses", "2", "--meters", "3",
                            "--port", str(port), "--seed", "4", "--speed", "0",
                            "--faults", "1.2:offline"],
                           env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                           cwd=ROOT)
    serve = None
    try:
        assert all("listening on" in sim.stdout.readline() for _ in range(2))
        db = tmp_path / "campus.db"
        made = _run(["init-demo", "--db", str(db), "--buses", "2", "--meters", "3",
                     "--port", str(port), "--seed", "4"], env)
        assert made.returncode == 0, made.stderr
        serve = subprocess.Popen([sys.executable, MAIN, "serve", "--db", str(db)], env=env,
                                 stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                                 cwd=ROOT)
        assert _wait(lambda: sum(m["state"] == "online"
                                 for m in _status(db, env)["meters"]) == 5)
        yield db, env
    finally:
        for p in (serve, sim):
            if p is not None:
                p.terminate()
                p.wait(20)


def _modes(db, env) -> dict[str, str]:
    return {m["room"]: m["control_mode"] for m in _status(db, env)["meters"]}


def test_a_building_trip_is_confirmed_per_meter_and_a_silent_meter_fails(station):
    db, env = station
    out = _run(["control", "--db", str(db), "--building", "1号宿舍楼", "--action", "trip",
                "--operator", "admin", "--reason", "电路检修", "--wait", "15", "--json"], env)
    assert out.returncode == 4, out.stderr
    result = json.loads(out.stdout)
    rooms = sorted(room for room in _modes(db, env) if room.startswith("1-"))
    assert sorted(r["room"] for r in result) == rooms and len(rooms) >= 3  # shops are not in it
    assert set(result[0]) == {"room", "meter", "outcome", "reason"}
    failed = [r for r in result if r["outcome"] == "failed"]
    assert [r["meter"] for r in failed] == ["B01/2"]
    assert "offline" in failed[0]["reason"]
    assert all(r["outcome"] == "confirmed" for r in result if r["meter"] != "B01/2")
    tripped = sorted(r["room"] for r in result if r["outcome"] == "confirmed")
    # the next poll of each meter stores what its read-back confirmed
    assert _wait(lambda: sorted(room for room, mode in _modes(db, env).items()
                                if mode == "forced_trip") == tripped)
    # the silent meter's trip was withdrawn: closing the rest, it is never tripped
    back = _run(["control", "--db", str(db), "--building", "1号宿舍楼", "--action", "close",
                 "--operator", "admin", "--reason", "检修完毕", "--wait", "15"], env)
    assert back.returncode == 4
    assert "confirmed" in back.stdout and "B01/2" in back.stdout.splitlines()[-1]
    assert _wait(lambda: {_modes(db, env)[r["room"]] for r in result
                          if r["meter"] != "B01/2"} == {"auto"})
    # the silent meter's two commands are withdrawn: never to be sent when it answers again
    with sqlite3.connect(db) as conn:
        states = [s for (s,) in conn.execute(
            "SELECT o.state FROM outbox o JOIN meter m ON m.id = o.meter_id JOIN bus b "
            "ON b.id = m.bus_id WHERE b.name = 'B01' AND m.address = 2")]
    assert states == ["withdrawn", "withdrawn"]
    audit = _run(["audit", "list", "--db", str(db), "--json"], env)
    kinds = [e["kind"] for e in json.loads(audit.stdout)]
    assert kinds.count("control") == 2 and kinds.count("control_result") == 2


def test_who_may_trip_what(station):
    db, env = station
    denied = _run(["control", "--db", str(db), "--building", "1号宿舍楼", "--action", "trip",
                   "--operator", "maintenance", "--reason", "test", "--wait", "5"], env)
    assert denied.returncode == 3 and "permission denied" in denied.stderr
    one = _run(["control", "--db", str(db), "--room", "1-103", "--action", "keep-power-on",
                "--operator", "maintenance", "--reason", "病号保电", "--wait", "15"], env)
    assert one.returncode == 0, one.stdout + one.stderr
    assert "confirmed" in one.stdout
    assert _wait(lambda: _modes(db, env)["1-103"] == "keep_power")
    cashier = _run(["control", "--db", str(db), "--room", "1-103", "--action", "trip",
                    "--operator", "cashier", "--reason", "x", "--wait", "5"], env)
    assert cashier.returncode == 3
    missing = _run(["control", "--db", str(db), "--room", "9-999", "--action", "trip",
                    "--operator", "admin", "--reason", "x"], env)
    assert missing.returncode == 1 and "no room" in missing.stderr


def test_a_silent_meter_is_an_alarm_an_operator_acknowledges(station):
    db, env = station

    def active():
        out = _run(["alarms", "--db", str(db), "--active", "--json"], env)
        assert out.returncode == 0, out.stderr
        return json.loads(out.stdout)

    assert _wait(lambda: any(a["kind"] == "meter_offline" for a in active()))
    [alarm] = [a for a in active() if a["kind"] == "meter_offline"]
    assert set(alarm) == {"id", "kind", "level", "room", "meter", "raised_at", "cleared_at",
                          "acknowledged_by", "text"}
    assert alarm["meter"] == "B01/2" and alarm["room"] and alarm["cleared_at"] is None
    ack = _run(["alarms", "--db", str(db), "ack", "--id", str(alarm["id"]), "--comment",
                "已派人检查接线", "--operator", "maintenance"], env)
    assert ack.returncode == 0, ack.stderr
    [after] = [a for a in active() if a["id"] == alarm["id"]]
    assert after["acknowledged_by"] == "maintenance"
    again = _run(["alarms", "--db", str(db), "ack", "--id", str(alarm["id"]), "--comment",
                  "x", "--operator", "maintenance"], env)
    assert again.returncode == 1
    text = _run(["alarms", "--db", str(db)], env)
    assert "meter_offline" in text.stdout and "acknowledged by maintenance" in text.stdout


def _holds(db, env) -> list[dict]:
    out = _run(["holds", "--db", str(db), "--json"], env)
    assert out.returncode == 0, out.stderr
    return json.loads(out.stdout)


def test_lights_out_a_holiday_and_a_limiting_plan_from_the_command_line(station):
    """The administrator's rules, run by serve: a lights-out window in force now trips the
    building's meters that answer and shows why in ``holds``; a holiday for today ends it and
    they close; a limiting plan's writes reach the meters and its undo writes back what each
    meter had."""
    import time as clock

    db, env = station
    now = clock.localtime()
    day = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")[now.tm_wday]
    start = clock.localtime(clock.time() - 60)
    end = clock.localtime(clock.time() + 1800)
    window = f"{day} {start.tm_hour:02d}:{start.tm_min:02d}-{end.tm_hour:02d}:{end.tm_min:02d}"
    if start.tm_mday != now.tm_mday:  # a minute ago was yesterday: begin at midnight
        window = f"{day} 00:00-{end.tm_hour:02d}:{end.tm_min:02d}"
    bad = _run(["schedule", "add", "--db", str(db), "--operator", "admin", "--name", "熄灯",
                "--building", "1号宿舍楼", "--window", "Sun-Thu 25:00-06:00"], env)
    assert bad.returncode == 1 and "not a time of day" in bad.stderr
    made = _run(["schedule", "add", "--db", str(db), "--operator", "admin", "--name", "熄灯",
                 "--building", "1号宿舍楼", "--window", window], env)
    assert made.returncode == 0, made.stderr
    rooms = sorted(room for room in _modes(db, env) if room.startswith("1-"))
    answering = [r for r in rooms if r != "1-102"]  # B01/2 is silent
    assert _wait(lambda: sorted(r for r, m in _modes(db, env).items() if m == "forced_trip")
                 == answering, timeout=40)
    held = _holds(db, env)
    assert {h["reason"] for h in held} == {"schedule"} and {h["source"] for h in held} == {"熄灯"}
    assert sorted(h["room"] for h in held) == rooms
    listed = json.loads(_run(["schedule", "list", "--db", str(db), "--json"], env).stdout)
    assert listed[0]["in_force"] is True
    holiday = _run(["schedule", "except", "--db", str(db), "--operator", "admin",
                    "--day", clock.strftime("%Y-%m-%d", now), "--note", "校庆"], env)
    assert holiday.returncode == 0, holiday.stderr
    assert _wait(lambda: {_modes(db, env)[r] for r in answering} == {"auto"}, timeout=40)
    assert _holds(db, env) == []
    # a limiting plan for the building, applied and undone
    plan = ["plan", "add", "--db", str(db), "--operator", "admin", "--name", "限电",
            "--do", "limit", "--building", "1号宿舍楼", "--watts", "800"]
    assert _run(plan, env).returncode == 0
    assert _run(["plan", "apply", "--db", str(db), "--operator", "admin", "--name", "限电"],
                env).returncode == 0

    def writes() -> list[tuple]:
        with sqlite3.connect(db) as conn:
            return conn.execute("SELECT meter_id, amount_cents, state, previous FROM outbox "
                                "WHERE action = 'power_limit' ORDER BY id").fetchall()

    assert _wait(lambda: sum(w[2] == "applied" for w in writes()) == len(answering))
    applied = {w[0]: w[3] for w in writes() if w[2] == "applied"}
    assert set(applied.values()) == {"2500"}  # the simulator's factory limit for a dorm room
    undo = _run(["plan", "undo", "--db", str(db), "--operator", "admin", "--name", "限电"], env)
    assert undo.returncode == 0, undo.stderr
    assert _wait(lambda: [(m, a) for m, a, s, _p in writes()[len(rooms):] if s == "applied"]
                 == [(m, 2500) for m in sorted(applied)])
    assert "withdrawn" in {w[2] for w in writes()}  # the silent meter's never lands
