"""The monthly report for 10,000 rooms: time and peak memory of its PDF and Excel.

    python bench/reports.py [--rooms 10000] [--keep DIR]

Builds a campus of ``--rooms`` rooms (40 buildings of 10 floors, a bus each) with a meter and
an account each, and a month (November 2026) of 15-minute data inserted directly: every room's
2,880 intervals of energy and its daily totals (28.8 million rows for 10,000 rooms), booked as
billing books them (``core/billing.py``: a day's consumption once the day is over, priced per
interval at 0.588 with the month's first 5 kWh free, the month's running cost rounded once), an
opening recharge in October, two recharges by mixed methods, and a refund or a correction in
one room of fifty. Then, in a fresh process (so its peak memory is the report's alone), computes
the monthly
report through the real code (``finance_reports.compute_monthly``, checked against the ledger),
writes its PDF and its workbook, and prints the time of each step and the peak resident memory
against the target: under 10 s and under 500 MB together.
"""

from __future__ import annotations

import argparse
import random
import resource
import subprocess
import sys
import tempfile
import time
from decimal import Decimal
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

TARGET_S = 10.0
TARGET_MB = 500.0
METHODS = ("cash", "campus_card", "wechat", "alipay", "unionpay", "bank")
PRICE = Decimal("0.588")
FREE_WH = 5000
#: A dorm room's day in quarter hours (Wh at 100%): night, morning, day, the evening peak.
SHAPE = [8] * 28 + [30] * 8 + [15] * 36 + [60] * 16 + [25] * 8


def _t(y, m, d, hh=0, mm=0):
    return time.mktime((y, m, d, hh, mm, 0, 0, 0, -1))


def build(db_path: Path, rooms: int, seed: int = 1) -> tuple[int, int]:
    """The campus and a month of 15-minute data and its bookings, inserted directly. Returns
    the intervals stored and the bookings made."""
    from app.core.money import to_cents
    from app.storage import ledger
    from app.storage.db import open_database

    rng = random.Random(seed)
    db = open_database(db_path)
    conn = db.connection()
    book = {code: ledger._book_id(code) for code in ledger.BOOKS}
    with db.atomic():
        cur = conn.cursor()
        cur.execute("INSERT INTO node (parent_id, kind, name, code, sort_key) "
                    "VALUES (NULL, 'campus', '湘塘校区', 'XT', 0)")
        root = cur.lastrowid
        n = 0
        accounts = []
        meters = []
        for b in range(1, 41):
            cur.execute("INSERT INTO node (parent_id, kind, name, code, sort_key) VALUES "
                        "(?, 'building', ?, ?, ?)", (root, f"{b}号宿舍楼", str(b), b))
            bid = cur.lastrowid
            cur.execute("INSERT INTO bus (name, link, poll_interval_s, enabled) VALUES "
                        "(?, ?, 5.0, 1)", (f"B{b:02d}", f"tcp://10.0.{b}.1:502"))
            bus = cur.lastrowid
            for f in range(1, 11):
                cur.execute("INSERT INTO node (parent_id, kind, name, code, sort_key) VALUES "
                            "(?, 'floor', ?, ?, ?)", (bid, f"{f}F", f"{b}-{f}F", f))
                fid = cur.lastrowid
                for r in range(1, 26):
                    if n >= rooms:
                        break
                    code = f"{b}-{f}{r:02d}"
                    cur.execute("INSERT INTO node (parent_id, kind, name, code, sort_key) "
                                "VALUES (?, 'room', ?, ?, ?)", (fid, code, code, r))
                    node = cur.lastrowid
                    cur.execute("INSERT INTO meter (bus_id, address, serial, profile, node_id, "
                                "enabled) VALUES (?, ?, ?, 'acrel-ddsy1352', ?, 1)",
                                (bus, f * 25 + r - 25, f"31{n:08d}", node))
                    meters.append(cur.lastrowid)
                    cur.execute("INSERT INTO occupant (node_id, name, person_no, phone, "
                                "moved_in) VALUES (?, ?, ?, '', ?)",
                                (node, f"学生{n:05d}", f"2026{n:05d}", _t(2026, 9, 1)))
                    cur.execute("INSERT INTO account (number, node_id, tariff_group, mode, "
                                "opened_at, opened_by, adopt_meter_balance) VALUES "
                                "(?, ?, 'dorm', 'station', ?, 'bench', 0)",
                                (f"A{n + 1:07d}", node, _t(2026, 9, 1)))
                    accounts.append(cur.lastrowid)
                    n += 1
        txns, entries = [], []
        tid = 0

        receipts: list[tuple[int, int]] = []

        def txn(t, kind, acct, method, pairs, operator="bench", corrects=None):
            nonlocal tid
            tid += 1
            txns.append((tid, t, kind, acct, operator, "", None, method, corrects))
            if kind == "recharge":
                receipts.append((len(receipts) + 1, tid))
            for code, a, cents in pairs:
                entries.append((tid, book[code], a, cents))
            return tid

        day_ends = [_t(2026, 11, d) + 86400 - 0.001 for d in range(1, 31)]
        for k, acct in enumerate(accounts):
            amount = rng.randrange(5000, 20000)
            txn(_t(2026, 10, 3, 9), "recharge", acct, "cash",
                [("cash", None, amount), ("prepaid", acct, -amount)], "alice")
            month_wh, cost, allowance, booked, booked_allow = 0, Decimal(0), Decimal(0), 0, 0
            factor = rng.randrange(40, 260)
            intervals, days = [], []
            for d in range(30):
                day0 = int(_t(2026, 11, d + 1))
                day_wh = 0
                for i, base in enumerate(SHAPE):
                    wh = base * factor // 100 + (i * 7 + d * 13 + k) % 5
                    intervals.append((meters[k], day0 + i * 900, wh))
                    free = max(0, min(wh, FREE_WH - month_wh))
                    cost += Decimal(wh - free) / 1000 * PRICE
                    allowance += Decimal(free) / 1000 * PRICE
                    month_wh += wh
                    day_wh += wh
                days.append((meters[k], f"2026-11-{d + 1:02d}", day_wh))
                charge, allow = to_cents(cost) - booked, to_cents(allowance) - booked_allow
                booked, booked_allow = booked + charge, booked_allow + allow
                if charge:  # booked once the day is over, dated its last instant
                    txn(day_ends[d], "consumption", acct, "",
                        [("prepaid", acct, charge), ("revenue:electricity", None, -charge)],
                        "billing")
                if allow:
                    txn(day_ends[d], "allowance", acct, "",
                        [("expense:allowance", None, allow),
                         ("revenue:electricity", None, -allow)], "billing")
            cur.executemany("INSERT INTO interval_energy (meter_id, start, energy_wh) "
                            "VALUES (?, ?, ?)", intervals)
            cur.executemany("INSERT INTO daily_energy (meter_id, day, energy_wh) "
                            "VALUES (?, ?, ?)", days)
            last, last_rows = 0, []
            for _r in range(2):
                method = rng.choice(METHODS)
                amount = rng.randrange(1000, 10000)
                last = txn(_t(2026, 11, rng.randrange(2, 29), 10), "recharge", acct, method,
                           [(ledger.METHOD_BOOKS[method], None, amount),
                            ("prepaid", acct, -amount)], rng.choice(("alice", "bob")))
                last_rows = [(ledger.METHOD_BOOKS[method], None, amount),
                             ("prepaid", acct, -amount)]
            if k % 50 == 0:
                txn(_t(2026, 11, 29, 15), "refund", acct, "cash",
                    [("prepaid", acct, 500), ("cash", None, -500)], "fiona")
            elif k % 50 == 1:
                txn(_t(2026, 11, 29, 16), "correction", acct, "",
                    [(code, a, -c) for code, a, c in last_rows], "fiona", corrects=last)
        cur.executemany("INSERT INTO ledger_txn (id, t, kind, account_id, operator, memo, "
                        "reference, method, corrects) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)", txns)
        cur.executemany("INSERT INTO ledger_entry (txn_id, book_id, account_id, amount_cents) "
                        "VALUES (?, ?, ?, ?)", entries)
        cur.executemany("INSERT INTO receipt (no, txn_id) VALUES (?, ?)", receipts)
        cur.execute("INSERT INTO counter (name, value) VALUES ('receipt', ?)", (len(receipts),))
    intervals = conn.execute("SELECT COUNT(*) FROM interval_energy").fetchone()[0]
    db.close()
    return intervals, len(txns)


def measure(db_path: Path, out: Path) -> int:
    """In this (fresh) process: the report, its PDF and workbook, timed; peak memory."""
    from app.core import finance_reports
    from app.core.report_pdf import write_pdf
    from app.core.report_tables import monthly_document
    from app.core.report_xlsx import write_xlsx
    from app.storage.db import open_database

    open_database(db_path)
    period = finance_reports.month_period("2026-11")
    t0 = time.perf_counter()
    rep = finance_reports.compute_monthly(period, made_by="bench")
    t1 = time.perf_counter()
    doc = monthly_document(rep)
    pdf = write_pdf(doc, out / "monthly-2026-11.pdf")
    t2 = time.perf_counter()
    xlsx = write_xlsx(doc, out / "monthly-2026-11.xlsx")
    t3 = time.perf_counter()
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # kB on Linux
    total = t3 - t0
    pages = subprocess.run(["pdfinfo", str(pdf)], capture_output=True, text=True).stdout
    pages = next((line.split()[-1] for line in pages.splitlines()
                  if line.startswith("Pages:")), "?")
    print(f"accounts:              {len(rep.lines):>8}")
    print(f"figures (SQL + check): {t1 - t0:8.2f} s")
    print(f"PDF ({pages} pages):      {t2 - t1:8.2f} s  {pdf.stat().st_size / 1e6:6.1f} MB")
    print(f"Excel:                 {t3 - t2:8.2f} s  {xlsx.stat().st_size / 1e6:6.1f} MB")
    print(f"total:                 {total:8.2f} s  (target < {TARGET_S:.0f} s)")
    print(f"peak memory (RSS):     {peak_mb:8.0f} MB (target < {TARGET_MB:.0f} MB)")
    ok = total < TARGET_S and peak_mb < TARGET_MB
    print("within target" if ok else "OVER TARGET")
    return 0 if ok else 1


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--rooms", type=int, default=10_000)
    p.add_argument("--keep", type=Path, default=None, metavar="DIR",
                   help="keep the database and the files in DIR")
    p.add_argument("--measure", type=Path, default=None, help=argparse.SUPPRESS)
    p.add_argument("--out", type=Path, default=None, help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.measure is not None:
        return measure(args.measure, args.out)
    with tempfile.TemporaryDirectory() as tmp:
        folder = args.keep or Path(tmp)
        folder.mkdir(parents=True, exist_ok=True)
        db = folder / "bench-reports.db"
        db.unlink(missing_ok=True)
        t0 = time.perf_counter()
        intervals, n = build(db, args.rooms)
        print(f"built {args.rooms} rooms, {intervals} intervals of 15 minutes, {n} bookings "
              f"in {time.perf_counter() - t0:.1f} s ({db.stat().st_size / 1e9:.1f} GB)")
        return subprocess.run([sys.executable, __file__, "--measure", str(db), "--out",
                               str(folder)]).returncode


if __name__ == "__main__":
    sys.exit(main())
