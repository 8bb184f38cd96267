"""Finance's and the desk's account and tariff commands, as subprocesses on a real file."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent.parent


def _run(env, *args):
    return subprocess.run([sys.executable, str(ROOT / "main.py"), *args], env=env, cwd=ROOT,
                          capture_output=True, text=True, timeout=60)


def test_tariffs_and_accounts(tmp_path):
    env = dict(os.environ, VOLTKEEPER_HOME=str(tmp_path / "home"),
               VOLTKEEPER_PASSWORD="demo-pass-1")
    db = str(tmp_path / "c.db")
    assert _run(env, "init-demo", "--db", db, "--buses", "1", "--meters", "2").returncode == 0
    ok = _run(env, "tariff", "--db", db, "set", "--group", "dorm", "--from", "2099-01-01",
              "--price", "0.60", "--tiers", "50:0.60,*:0.90", "--allowance", "10",
              "--operator", "finance")
    assert ok.returncode == 0, ok.stderr
    assert "dorm     2099-01-01      0.60" in ok.stdout
    back = _run(env, "tariff", "--db", db, "set", "--group", "dorm", "--from", "2000-01-02",
                "--price", "0.1", "--operator", "finance")
    assert back.returncode == 1 and "never back" in back.stderr
    bad = _run(env, "tariff", "--db", db, "set", "--from", "2099-02-01", "--price", "0.6",
               "--tiers", "50:0.6,80:0.9", "--operator", "finance")
    assert bad.returncode == 1 and "open last tier" in bad.stderr
    moved = _run(env, "account", "--db", db, "move-in", "--room", "1-101", "--name", "李雷",
                 "--person-no", "2024999", "--operator", "cashier")
    assert moved.returncode == 0 and "李雷 moved into 1-101" in moved.stdout
    out = _run(env, "account", "--db", db, "move-out", "--room", "1-101", "--name", "李雷",
               "--operator", "cashier")
    assert out.returncode == 0 and "moved out" in out.stdout
    # a settlement rests on a fresh reading: with no meter read yet, closing is refused
    close = _run(env, "account", "--db", db, "close", "--room", "1-101", "--operator", "finance")
    assert close.returncode == 1 and "fresh reading" in close.stderr
    twice = _run(env, "account", "--db", db, "open", "--room", "1-101", "--operator", "cashier")
    assert twice.returncode == 1 and "already has an open account" in twice.stderr


def test_one_payment_one_booking_and_inputs_that_mean_what_they_say(tmp_path):
    env = dict(os.environ, VOLTKEEPER_HOME=str(tmp_path / "home"),
               VOLTKEEPER_PASSWORD="demo-pass-1")
    db = str(tmp_path / "c.db")
    assert _run(env, "init-demo", "--db", db, "--buses", "1", "--meters", "2").returncode == 0

    def recharge(*args):
        return _run(env, "recharge", "--db", db, "--method", "wechat", "--operator", "cashier",
                    *args)

    ok = recharge("--room", "1-101", "--amount", "50", "--reference", "4200000123")
    assert ok.returncode == 0, ok.stderr
    # the same payment again, as a statement writes its id: refused in one line, exit 1
    twice = recharge("--room", "1-101", "--amount", "50", "--reference", "`4200000123")
    assert twice.returncode == 1
    assert twice.stderr.strip().splitlines() == [twice.stderr.strip()]
    assert "payment wechat:4200000123 is already booked (booking" in twice.stderr
    # ... and in WeChat's statement: already imported, nothing booked
    bill = tmp_path / "wechat.csv"
    bill.write_text("交易时间,微信订单号,商户订单号,交易状态,订单金额,商品名称\n"
                    "`2026-11-01 10:00:00,`4200000123,`DF1,`SUCCESS,`50.00,`电费充值-1-101\n",
                    encoding="utf-8-sig")
    imported = _run(env, "import-payments", "--db", db, str(bill), "--operator", "finance",
                    "--yes")
    assert imported.returncode == 0, imported.stderr
    assert "4200000123 already imported" in imported.stdout
    assert "nothing to book" in imported.stdout
    shown = _run(env, "account", "--db", db, "show", "--room", "1-101")
    assert shown.stdout.count("recharge") == 1
    # amounts: only plain decimals
    for amount, why in (("3,00", "only groups thousands"), ("1e3", "is not an amount"),
                        ("1_000", "is not an amount")):
        bad = recharge("--room", "1-101", "--amount", amount)
        assert bad.returncode == 1 and why in bad.stderr, (amount, bad.stderr)
    # rooms: named whole, no LIKE wildcards
    for room, why in (("1-1_1", "no open account matches"),
                      ("1-10", "no open account is exactly '1-10'")):
        bad = recharge("--room", room, "--amount", "5")
        assert bad.returncode == 1 and why in bad.stderr, (room, bad.stderr)
    assert _run(env, "account", "--db", db, "show", "--room", "1-101").stdout.count(
        "recharge") == 1
