"""The program as its users run it: simulate, init-demo, serve, status, recharge, all as
subprocesses on one database; a second serve stands by and says who polls."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from app.storage.backup import check_file
from tests.helpers import free_port_base, ledger_rows, run_main, status_json, wait_until

ROOT = Path(__file__).resolve().parent.parent.parent
MAIN = str(ROOT / "main.py")


def _run(args, env, **kw):
    return run_main(args, env, 60, **kw)


_status, _wait = status_json, wait_until


@pytest.fixture
def env(tmp_path):
    e = dict(os.environ, VOLTKEEPER_HOME=str(tmp_path / "home"), PYTHONUNBUFFERED="1",
             VOLTKEEPER_PASSWORD="demo-pass-1")
    e.pop("QT_QPA_PLATFORM", None)  # serve must not need a display at all
    return e


def test_serve_status_recharge_and_standby(tmp_path, env):
    port = free_port_base(2)
    sim = subprocess.Popen([sys.executable, MAIN, "simulate", "--buses", "2", "--meters", "3",
                            "--port", str(port), "--seed", "4", "--speed", "0"],
                           env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                           cwd=ROOT)
    serve = standby = None
    try:
        lines = [sim.stdout.readline() for _ in range(2)]
        assert all("listening on tcp://127.0.0.1:" in line for line in lines), lines
        db = tmp_path / "campus.db"
        made = _run(["init-demo", "--db", str(db), "--buses", "2", "--meters", "3",
                     "--port", str(port), "--seed", "4"], env)
        assert made.returncode == 0, made.stderr
        assert "6 meters on 2 buses" in made.stdout
        again = _run(["init-demo", "--db", str(db)], env)
        assert again.returncode != 0 and "exists already" in again.stderr
        serve = subprocess.Popen([sys.executable, MAIN, "serve", "--db", str(db)], env=env,
                                 stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                                 cwd=ROOT)
        assert _wait(lambda: sum(m["online"] for m in _status(db, env)["meters"]) == 6)
        st = _status(db, env)
        assert st["polled_by"].startswith("serve")
        assert {b["state"] for b in st["buses"]} == {"polling"}
        m = st["meters"][0]
        assert 198 <= m["voltage_v"] <= 242 and isinstance(m["money_cents"], int)
        assert m["room"] == "1-101" and m["control_mode"] == "auto"
        # a second serve is told who polls and stands by
        standby = subprocess.Popen([sys.executable, MAIN, "serve", "--db", str(db)], env=env,
                                   stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                                   cwd=ROOT)
        first = standby.stdout.readline()
        assert "polled by serve" in first and "standing by" in first
        # a recharge from the command line while serve runs reaches the meter
        before = m["money_cents"]
        r = _run(["recharge", "--db", str(db), "--room", "1-101", "--amount", "12.34",
                  "--method", "cash", "--operator", "cashier", "--wait", "30"], env)
        assert r.returncode == 0, r.stdout + r.stderr
        assert "receipt 000001" in r.stdout and "meter: applied" in r.stdout
        assert _wait(lambda: _status(db, env)["meters"][0]["money_cents"] == before + 1234)
        # the station's books agree with the meter: opening balance taken over, plus 12.34
        assert _wait(lambda: _status(db, env)["meters"][0]["balance_cents"] == before + 1234)
        bad = _run(["recharge", "--db", str(db), "--room", "1-101", "--amount", "-1",
                    "--method", "cash", "--operator", "cashier"], env)
        assert bad.returncode == 1 and "more than zero" in bad.stderr
        nobody = _run(["recharge", "--db", str(db), "--room", "9-999", "--amount", "1",
                       "--method", "cash", "--operator", "cashier"], env)
        assert nobody.returncode == 1 and "no open account" in nobody.stderr
        # a backup while serve polls and writes: a consistent, checked copy whose books balance
        copy = _run(["backup", "--db", str(db), "--to", str(tmp_path / "copies")], env)
        assert copy.returncode == 0, copy.stderr
        (made,) = (tmp_path / "copies").glob("*.db")
        assert check_file(made) == []
        txns, entries = ledger_rows(made)
        assert any(t[2] == "recharge" for t in txns) and sum(e[4] for e in entries) == 0
    finally:
        for p in (standby, serve):
            if p is not None:
                p.terminate()
                assert p.wait(20) == 0
        sim.terminate()
        sim.wait(20)
    log = (tmp_path / "campus.log").read_text()
    assert "reading service started" in log
