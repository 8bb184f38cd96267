"""``main.py report`` as a subprocess on a demo database: finance writes the monthly PDF and
workbook (exit 0, the paths printed, audited), a cashier is refused with exit code 3, a shift
needs --cashier (exit 2), and the journal of today's recharges holds them."""

from __future__ import annotations

import datetime as dt
import os
import sqlite3
import subprocess
import sys
from pathlib import Path

from openpyxl import load_workbook

ROOT = Path(__file__).resolve().parent.parent.parent


def _run(env, *args):
    return subprocess.run([sys.executable, str(ROOT / "main.py"), *args], env=env, cwd=ROOT,
                          capture_output=True, text=True, timeout=120)


def test_report_commands(tmp_path):
    env = dict(os.environ, VOLTKEEPER_HOME=str(tmp_path / "home"),
               VOLTKEEPER_PASSWORD="demo-pass-1", LANGUAGE="en")
    db = str(tmp_path / "c.db")
    assert _run(env, "init-demo", "--db", db, "--buses", "1", "--meters", "3").returncode == 0
    for room, amount, method in (("1-101", "50", "cash"), ("1-102", "20.5", "wechat")):
        r = _run(env, "recharge", "--db", db, "--room", room, "--amount", amount, "--method",
                 method, "--operator", "cashier")
        assert r.returncode == 0, r.stderr
    today = dt.date.today().isoformat()
    month = today[:7]
    pdf, xlsx = tmp_path / "out" / "m.pdf", tmp_path / "out" / "m.xlsx"
    done = _run(env, "report", "monthly", "--db", db, "--operator", "finance", "--month", month,
                "--pdf", str(pdf), "--xlsx", str(xlsx))
    assert done.returncode == 0, done.stderr
    assert f"wrote {pdf}" in done.stdout and f"wrote {xlsx}" in done.stdout
    assert "recharges 70.50" in done.stdout
    assert pdf.stat().st_size > 1000 and load_workbook(xlsx).sheetnames[0] == "Summary"
    conn = sqlite3.connect(db)
    kinds = [k for (k,) in conn.execute("SELECT kind FROM audit_entry ORDER BY id")]
    conn.close()
    assert kinds[-1] == "report"
    denied = _run(env, "report", "monthly", "--db", db, "--operator", "cashier", "--month",
                  month)
    assert denied.returncode == 3 and "'reports'" in denied.stderr
    usage = _run(env, "report", "shift", "--db", db, "--operator", "finance")
    assert usage.returncode == 2 and "--cashier" in usage.stderr
    shift = _run(env, "report", "shift", "--db", db, "--operator", "admin", "--from", today,
                 "--to", today, "--cashier", "cashier", "--pdf", str(tmp_path / "s.pdf"))
    assert shift.returncode == 0, shift.stderr
    assert "cash 50.00" in shift.stdout and "WeChat 20.50" in shift.stdout
    arrears = _run(env, "report", "arrears", "--db", db, "--operator", "finance",
                   "--building", "1号宿舍楼", "--xlsx", str(tmp_path / "a.xlsx"))
    assert arrears.returncode == 0, arrears.stderr
    assert "rooms at or below zero: 1," in arrears.stdout
    unknown = _run(env, "report", "journal", "--db", db, "--operator", "finance",
                   "--building", "nowhere")
    assert unknown.returncode == 1 and "no building" in unknown.stderr
