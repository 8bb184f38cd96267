"""Bad files and bad databases give one clear message: every command, run as a user runs it (a
subprocess of ``main.py``), on a missing, empty, damaged, foreign, read-only database, a folder
or a full disk prints one line saying what is wrong and what to do, no traceback, and exits 1;
an empty file is never made a new station. A broken meter profile does not stop ``serve`` from
polling the meters whose profiles are good. ``status | head`` ends quietly.

The read-only cases run the command as an unprivileged user when the tests run as root (root
writes any file); the full disk is a small tmpfs in a private mount namespace where that is
allowed, and SQLite's ``max_page_count`` (the database may not grow) everywhere.
"""

from __future__ import annotations

import json
import os
import shutil
import sqlite3
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.helpers import free_port_base

ROOT = Path(__file__).resolve().parent.parent.parent
MAIN = str(ROOT / "main.py")
PASSWORD = "demo-pass-1"
NOBODY = 65534


def _env(home: Path) -> dict[str, str]:
    env = dict(os.environ, VOLTKEEPER_HOME=str(home), VOLTKEEPER_PASSWORD=PASSWORD,
               PYTHONUNBUFFERED="1")
    env.pop("QT_QPA_PLATFORM", None)
    return env


def _run(args: list[str], env: dict, *, timeout: float = 60, **kw) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, MAIN, *args], env=env, cwd=ROOT, capture_output=True,
                          text=True, timeout=timeout, stdin=subprocess.DEVNULL, **kw)


def _one_line(out: subprocess.CompletedProcess, *needles: str) -> str:
    """The command refused with exit code 1 and exactly one line on stderr, no traceback."""
    lines = [line for line in out.stderr.splitlines() if line.strip()]
    assert out.returncode == 1, (out.returncode, out.stdout, out.stderr)
    assert len(lines) == 1, out.stderr
    assert lines[0].startswith("error: "), lines[0]
    assert "Traceback" not in out.stderr
    for needle in needles:
        assert needle in lines[0], (needle, lines[0])
    return lines[0]


@pytest.fixture(scope="module")
def station(tmp_path_factory) -> Path:
    """A small station made as a user makes one (init-demo): 1 bus, 2 meters."""
    folder = tmp_path_factory.mktemp("station")
    db = folder / "station.db"
    made = _run(["init-demo", "--db", str(db), "--buses", "1", "--meters", "2", "--port",
                 "5999"], _env(folder / "home"))
    assert made.returncode == 0, made.stderr
    con = sqlite3.connect(db)
    con.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    con.close()
    return db


# what every command is given, and which of them each bad database is tried with
COMMANDS = {
    "status": ["status"],
    "status-json": ["status", "--json"],
    "serve": ["serve"],
    "recharge": ["recharge", "--room", "1-101", "--amount", "1", "--method", "cash",
                 "--operator", "cashier"],
    "account": ["account", "show", "--room", "1-101"],
    "tariff": ["tariff", "list"],
    "operator": ["operator", "list"],
    "audit": ["audit", "verify"],
    "backup": ["backup"],
}


def _command(name: str, db: Path) -> list[str]:
    args = COMMANDS[name]
    return [args[0], "--db", str(db), *args[1:]]


def _bad(kind: str, folder: Path, good: Path) -> Path:
    db = folder / "campus.db"
    if kind == "empty":
        db.touch()
    elif kind == "garbage":
        db.write_bytes(b"VoltKeeper? " * 500)
    elif kind == "truncated":
        db.write_bytes(good.read_bytes()[:5000])
    elif kind == "foreign":
        con = sqlite3.connect(db)
        con.execute("CREATE TABLE photos (id INTEGER PRIMARY KEY, jpeg BLOB)")
        con.commit()
        con.close()
    elif kind == "folder":
        db.mkdir()
    return db


EXPECTED = {
    "missing": "no database at",
    "empty": "is an empty file (0 bytes)",
    "garbage": "is damaged",
    "truncated": "is damaged",
    "foreign": "not a VoltKeeper station's",
    "folder": "is a folder, not a database file",
}
CASES = [("empty", c) for c in COMMANDS] + [
    (kind, c) for kind in ("missing", "garbage", "truncated", "foreign", "folder")
    for c in ("status", "serve", "recharge")]


@pytest.mark.parametrize(("kind", "command"), CASES, ids=[f"{k}-{c}" for k, c in CASES])
def test_a_bad_database_is_one_line_and_nothing_changes(tmp_path, station, kind, command):
    db = _bad(kind, tmp_path, station)
    before = db.read_bytes() if db.is_file() else None
    out = _run(_command(command, db), _env(tmp_path / "home"), timeout=30)
    _one_line(out, EXPECTED[kind], str(db))
    assert out.stdout == ""
    if before is None:
        assert not db.is_file()
    else:
        assert db.read_bytes() == before
    if kind == "empty":  # never silently made a new station
        assert db.stat().st_size == 0
        assert not Path(f"{db}-wal").exists()
    if command == "serve":  # serve says it in its log too
        assert EXPECTED[kind] in (tmp_path / "campus.log").read_text(encoding="utf-8")


def test_a_new_station_is_whole_from_the_start_and_an_empty_one_is_refused(tmp_path):
    """init-demo makes a database; an empty file where one should be is not given a schema."""
    env = _env(tmp_path / "home")
    db = tmp_path / "new.db"
    made = _run(["init-demo", "--db", str(db), "--buses", "1", "--meters", "1"], env)
    assert made.returncode == 0, made.stderr
    assert db.stat().st_size > 0 and oct(db.stat().st_mode & 0o777) == "0o600"
    assert not list(tmp_path.glob(".new.db.*"))  # nothing left of the making
    status = _run(["status", "--db", str(db)], env)
    assert status.returncode == 0, status.stderr
    empty = tmp_path / "empty.db"
    empty.touch()
    again = _run(["init-demo", "--db", str(empty)], env)
    assert again.returncode == 1 and empty.stat().st_size == 0


# -- read-only ------------------------------------------------------------------------------------
@pytest.fixture
def shared_dir() -> Iterator[Path]:
    """A folder another user may enter (tmp_path's parents are private to root)."""
    folder = Path(tempfile.mkdtemp(prefix="vk-readonly-"))
    folder.chmod(0o755)
    try:
        yield folder
    finally:
        for p in [folder, *folder.rglob("*")]:
            if p.is_dir():
                p.chmod(0o755)
        shutil.rmtree(folder, ignore_errors=True)


def _unprivileged(probe_file: Path) -> list[str]:
    """The command prefix that runs a program as a user file permissions apply to: nothing
    for an ordinary user; for root, ``setpriv`` to nobody (no capabilities left). Skips when
    the program cannot run so, or when that user could still write ``probe_file``."""
    if os.geteuid() != 0:
        return []
    setpriv = shutil.which("setpriv")
    if setpriv is None:
        pytest.skip("running as root without setpriv: cannot make a file read-only")
    prefix = [setpriv, "--reuid", str(NOBODY), "--regid", str(NOBODY), "--clear-groups"]
    probe = subprocess.run([*prefix, sys.executable, "-c",
                            "import sys, app.cli\n"
                            "try:\n    open(sys.argv[1], 'ab')\nexcept OSError:\n"
                            "    sys.exit(0)\nsys.exit(3)", str(probe_file)],
                           cwd=ROOT, capture_output=True, text=True, timeout=30)
    if probe.returncode == 3:
        pytest.skip("the unprivileged user can still write a read-only file here")
    if probe.returncode != 0:
        pytest.skip(f"the program cannot run as an unprivileged user: {probe.stderr[-300:]}")
    return prefix


@pytest.mark.parametrize("what", ["file", "folder"])
@pytest.mark.parametrize("command", ["status", "recharge", "serve"])
def test_a_read_only_database_is_one_line(shared_dir, station, what, command):
    home = shared_dir / "home"
    home.mkdir()
    home.chmod(0o777)
    site = shared_dir / "site"
    site.mkdir()
    db = site / "campus.db"
    shutil.copy(station, db)
    log_file = shared_dir / "serve.log"  # serve's log where it may write it
    log_file.touch()
    log_file.chmod(0o666)
    if what == "file":
        site.chmod(0o777)
        db.chmod(0o444)
    else:
        db.chmod(0o666)
        site.chmod(0o555)
    prefix = _unprivileged(db if what == "file" else site / "new-file")
    before = db.read_bytes()
    args = _command(command, db) + (["--log-file", str(log_file)] if command == "serve" else [])
    out = subprocess.run([*prefix, sys.executable, MAIN, *args], env=_env(home), cwd=ROOT,
                         capture_output=True, text=True, timeout=30, stdin=subprocess.DEVNULL)
    line = _one_line(out, "cannot be written", str(db))
    assert ("the file is read-only" if what == "file" else "its folder") in line
    assert db.read_bytes() == before


def _private_mounts(tmp_path: Path) -> list[str]:
    """``unshare`` into a private mount namespace (mounts vanish with the process), or skip."""
    if shutil.which("unshare") is None:
        pytest.skip("no unshare: cannot mount privately")
    probe_dir = tmp_path / "probe"
    probe_dir.mkdir()
    prefix = ["unshare", "-m", "--propagation", "private"]
    probe = subprocess.run([*prefix, "sh", "-c", f"mount -t tmpfs -o size=64k tmpfs {probe_dir}"],
                           capture_output=True)
    if probe.returncode != 0:
        pytest.skip(f"cannot mount here: {probe.stderr.decode()[-200:]}")
    return prefix


@pytest.mark.parametrize("command", ["status", "recharge"])
def test_a_database_on_a_read_only_disk_is_one_line(tmp_path, station, command):
    prefix = _private_mounts(tmp_path)
    site = tmp_path / "site"
    site.mkdir()
    db = site / "campus.db"
    shutil.copy(station, db)
    before = db.read_bytes()
    args = " ".join(_command(command, db))
    done = subprocess.run(
        [*prefix, "sh", "-c", f"mount --bind {site} {site} && mount -o remount,ro,bind {site} "
                              f"&& exec {sys.executable} {MAIN} {args}"],
        env=_env(tmp_path / "home"), cwd=ROOT, capture_output=True, text=True, timeout=60)
    _one_line(done, "cannot be written", "mounted read-only")
    assert db.read_bytes() == before


# -- a full disk ----------------------------------------------------------------------------------
def _booked_recharges(db: Path) -> int:
    con = sqlite3.connect(db)
    try:
        return con.execute("SELECT COUNT(*) FROM ledger_txn WHERE kind = 'recharge'").fetchone()[0]
    finally:
        con.close()


def test_a_full_disk_during_a_recharge_is_one_line(tmp_path, station):
    """A real full disk: a small tmpfs whose last bytes run out during the recharge."""
    prefix = _private_mounts(tmp_path)
    mnt = tmp_path / "mnt"
    mnt.mkdir()
    out_dir = tmp_path / "after"
    out_dir.mkdir()
    free_kb = 128  # room to open the database, not to book the recharge
    script = f"""
set -e
mount -t tmpfs -o size=1m tmpfs {mnt}
cp {station} {mnt}/campus.db
dd if=/dev/zero of={mnt}/fill bs=1k count=2048 2>/dev/null || true
truncate -s -{free_kb}k {mnt}/fill
set +e
{sys.executable} {MAIN} recharge --db {mnt}/campus.db --room 1-101 --amount 5 --method cash \
    --operator cashier
echo "exit=$?" >&2
cp {mnt}/campus.db* {out_dir}/
"""
    done = subprocess.run([*prefix, "sh", "-c", script],
                          env=_env(tmp_path / "home"), cwd=ROOT, capture_output=True,
                          text=True, timeout=120)
    exit_line = [line for line in done.stderr.splitlines() if line.startswith("exit=")]
    assert exit_line == ["exit=1"], done.stderr
    result = subprocess.CompletedProcess(done.args, 1, done.stdout, "\n".join(
        line for line in done.stderr.splitlines() if not line.startswith("exit=")))
    _one_line(result, "is full", "Free space")
    # nothing half-booked: the copy taken afterwards is sound and holds no recharge
    after = out_dir / "campus.db"
    assert _booked_recharges(after) == 0
    status = _run(["status", "--db", str(after)], _env(tmp_path / "home"))
    assert status.returncode == 0, status.stderr


def test_a_database_that_may_not_grow_is_one_line(tmp_path, station):
    """SQLite's own limit (``max_page_count``): the same SQLITE_FULL on any platform."""
    db = tmp_path / "campus.db"
    shutil.copy(station, db)
    wrapper = tmp_path / "capped.py"
    wrapper.write_text(
        "import sqlite3, sys\n"
        "con = sqlite3.connect(sys.argv[1])\n"
        "pages = con.execute('PRAGMA page_count').fetchone()[0]\n"
        "con.close()\n"
        "from app.storage import db\n"
        "db.PRAGMAS['max_page_count'] = pages  # the database may not grow\n"
        "import main\n"
        "sys.argv = ['main.py', *sys.argv[2:]]\n"
        "sys.exit(main.run())\n", encoding="utf-8")
    env = dict(_env(tmp_path / "home"), PYTHONPATH=str(ROOT))
    args = ["recharge", "--db", str(db), "--room", "1-101", "--amount", "1", "--method", "cash",
            "--operator", "cashier"]
    booked = 0
    for _ in range(40):
        out = subprocess.run([sys.executable, str(wrapper), str(db), *args], env=env, cwd=ROOT,
                             capture_output=True, text=True, timeout=60)
        if out.returncode != 0:
            break
        booked += 1
    else:
        pytest.fail("the capped database never filled up")
    _one_line(out, "is full")
    assert _booked_recharges(db) == booked  # the refused recharge left nothing


# -- output cut off -------------------------------------------------------------------------------
@pytest.mark.parametrize("command", ["status", "status-json", "tariff", "operator"])
def test_a_reader_that_goes_away_is_no_traceback(tmp_path, station, command):
    proc = subprocess.Popen([sys.executable, MAIN, *_command(command, station)],
                            env=_env(tmp_path / "home"), cwd=ROOT, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, stdin=subprocess.DEVNULL)
    proc.stdout.close()  # the reader is gone before anything is written
    err = proc.stderr.read().decode()
    code = proc.wait(60)
    assert "Traceback" not in err and "BrokenPipe" not in err and "Exception ignored" not in err
    assert err == "", err
    assert code == 141  # as a program stopped by SIGPIPE


def test_status_into_head(tmp_path):
    """``status --json | head -1`` on a campus whose status is larger than a pipe holds."""
    env = _env(tmp_path / "home")
    db = tmp_path / "big.db"
    assert _run(["init-demo", "--db", str(db), "--buses", "6", "--meters", "27"], env) \
        .returncode == 0
    for command in ("status --json", "status"):
        shell = subprocess.run(
            f"{sys.executable} {MAIN} {command} --db {db} | head -1", shell=True, env=env,
            cwd=ROOT, capture_output=True, text=True, timeout=60)
        assert shell.stderr == "", shell.stderr
        assert shell.returncode == 0
        assert shell.stdout.strip() in ("{", "polled by: nobody: nothing is read now")


# -- a broken meter profile -----------------------------------------------------------------------
def _query(db: Path, sql: str, *params) -> list[tuple]:
    con = sqlite3.connect(db, timeout=10)
    try:
        return con.execute(sql, params).fetchall()
    finally:
        con.close()


def test_one_broken_profile_does_not_stop_serve(tmp_path):
    env = _env(tmp_path / "home")
    port = free_port_base(2)
    sim = subprocess.Popen([sys.executable, MAIN, "simulate", "--buses", "2", "--meters", "3",
                            "--port", str(port), "--seed", "4", "--speed", "0"],
                           env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                           cwd=ROOT)
    serve = None
    try:
        lines = [sim.stdout.readline() for _ in range(2)]
        assert all("listening on tcp://127.0.0.1:" in line for line in lines), lines
        db = tmp_path / "campus.db"
        made = _run(["init-demo", "--db", str(db), "--buses", "2", "--meters", "3", "--port",
                     str(port), "--seed", "4"], env)
        assert made.returncode == 0, made.stderr
        # two meters of B02 are a model whose profile file was edited wrongly (min above max)
        good = (ROOT / "resources" / "meters" / "acrel-ddsy1352.toml").read_text("utf-8")
        assert good.count('min = "0"\nmax = "30000"') == 1
        broken = tmp_path / "site-ddsy.toml"
        broken.write_text(good.replace('min = "0"\nmax = "30000"', 'min = "40000"\nmax = "30000"'),
                          encoding="utf-8")
        _query(db, "SELECT 1")  # (the file is there)
        con = sqlite3.connect(db)
        con.execute("UPDATE meter SET profile = ? WHERE address IN (1, 2) AND bus_id = "
                    "(SELECT id FROM bus WHERE name = 'B02')", (str(broken),))
        con.commit()
        con.close()
        bad_ids = {r[0] for r in _query(db, "SELECT id FROM meter WHERE profile = ?",
                                        str(broken))}
        assert len(bad_ids) == 2
        serve = subprocess.Popen([sys.executable, MAIN, "serve", "--db", str(db)], env=env,
                                 stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                                 cwd=ROOT)

        def status() -> dict:
            out = _run(["status", "--db", str(db), "--json"], env)
            assert out.returncode == 0, out.stderr
            return json.loads(out.stdout)

        deadline = time.monotonic() + 40
        while time.monotonic() < deadline:
            assert serve.poll() is None, serve.stderr.read()
            st = status()
            if sum(m["state"] == "online" for m in st["meters"]) == 4:
                break
            time.sleep(0.3)
        else:
            pytest.fail(f"the good meters were not polled: {st['meters']}")
        states = {m["id"]: m["state"] for m in st["meters"]}
        assert {states[i] for i in bad_ids} <= {"offline", "never_read"}
        assert {b["name"]: b["state"] for b in st["buses"]} == {"B01": "polling",
                                                                "B02": "polling"}
        alarms = _query(db, "SELECT meter_id, message FROM alarm WHERE kind = 'bad_profile'")
        assert {a[0] for a in alarms} == bad_ids
        for _meter, message in alarms:
            assert str(broken) in message and ".min" in message and "above max" in message
    finally:
        if serve is not None:
            serve.terminate()
            assert serve.wait(20) == 0
        sim.terminate()
        sim.wait(20)
    log = (tmp_path / "campus.log").read_text(encoding="utf-8")
    assert log.count("is not polled: its profile is refused") == 2
    assert str(broken) in log and "Traceback" not in log
