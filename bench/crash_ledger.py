"""Crash the ledger: randomized operations in a child process killed with SIGKILL at random
points; after every restart the ledger balances and no recharge is lost or doubled on any meter.

    python bench/crash_ledger.py --ops 300 --kills 10 [--seed 1]

The parent serves four simulated meters (meter time frozen, so money moves only by tokens) and
a station database: two meter-keeps-money accounts, two station-keeps-money accounts. The child
runs operation i = done..ops-1 (recharges, consumption with billing, refunds, statement imports,
and delivery of queued tokens to the meters); each operation but delivery commits with a
progress mark in one transaction, delivery is idempotent by the token's purchase count. The
parent kills the child K times at random moments, restarts it, then lets it finish and drain
the outbox, and checks:

* every booking balances and the books sum to zero;
* each recharge operation was booked exactly once (by its reference);
* each meter's money rose by exactly the recharges booked for it, its purchase count by exactly
  their number, and nothing is left undelivered.

Prints the kills survived; exits 1 on any violation.
"""

from __future__ import annotations

import argparse
import csv
import os
import random
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from app.core.operators import Operator

ADMIN = Operator.system("crash bench")

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

METER_ACCOUNTS = (1, 2)  # units whose account is meter-keeps-money
STATION_ACCOUNTS = (3, 4)
BASE_T = 1_790_000_000.0  # fixed interval times for consumption operations


def op_plan(seed: int, i: int) -> tuple[str, int, int]:
    """Operation i: (kind, a, b), the same in every run."""
    rng = random.Random(seed * 1_000_003 + i)
    kind = rng.choices(["recharge", "use", "bill", "refund", "import", "deliver"],
                       [35, 20, 10, 5, 10, 20])[0]
    return kind, rng.randint(1, 4), rng.randint(1, 50_00)


# -- the child -----------------------------------------------------------------------------
def child(db: Path, endpoint: str, ops: int, seed: int, workdir: Path) -> int:
    from app.core import billing, payments_import
    from app.core.outbox import OutboxDelivery
    from app.core.polling import BusPoller
    from app.core.recharge import recharge
    from app.drivers.profile import load_profile
    from app.drivers.token import load_master_key
    from app.paths import default_key_file
    from app.storage import campus, ledger, readings
    from app.storage.db import open_database
    from app.storage.ledger import DuplicateReference
    from app.storage.models import Meta, database

    open_database(db, create=False)
    meters = campus.meters()
    bus = campus.buses()[0]
    profile = load_profile("acrel-ddsy1352")
    poller = BusPoller(bus, [(m, profile) for m in meters],
                       lambda outs, b: readings.write_batch(outs, [b] if b else []),
                       outbox=OutboxDelivery(load_master_key(default_key_file())))
    accounts_by_unit = {m.address: _account_id(m.node_id) for m in meters}

    def done() -> int:
        row = Meta.get_or_none(Meta.key == "crash_done")
        return int(row.value) if row else 0

    def mark(i: int) -> None:
        Meta.insert(key="crash_done", value=str(i + 1)).on_conflict_replace().execute()

    i = done()
    while i < ops:
        kind, a, b = op_plan(seed, i)
        acct = accounts_by_unit[a]
        if kind == "deliver":
            poller.cycle()
            mark(i)
            print(i, flush=True)
        else:
            with database.atomic():
                if kind == "recharge":
                    try:
                        recharge(ADMIN, acct, b, random.Random(i).choice(
                            ["cash", "wechat", "alipay", "campus_card"]),
                            reference=f"op-{i}")
                    except DuplicateReference:
                        raise AssertionError(f"op {i} booked twice") from None
                elif kind == "use":
                    start = int(BASE_T) + i * 900
                    meter_id = next(m.id for m in meters if m.address == a)
                    readings.write_batch([readings.PollOutcome(
                        meter_id, start + 1.0, True, intervals=[(start, b)])])
                elif kind == "bill":
                    billing.bill(now=BASE_T + (i + 1) * 900, operator="crash")
                elif kind == "refund" and a in STATION_ACCOUNTS:
                    bal = ledger.balance(acct)
                    if bal > 0:
                        amount = min(bal, b)
                        ledger.post("refund", [("prepaid", acct, amount), ("cash", None, -amount)],
                                    operator="crash", account_id=acct)
                elif kind == "import":
                    path = workdir / f"statement-{i % 7}.csv"  # files come back: re-imports
                    if not path.exists():
                        rows = [["交易号", "房间号", "金额"]] + [
                            [f"imp-{i % 7}-{k}", _room_of(accounts_by_unit[1 + (k % 4)]),
                             f"{1 + k}.{k:02d}"] for k in range(3)]
                        with path.open("w", newline="", encoding="utf-8") as fh:
                            csv.writer(fh).writerows(rows)
                    preview = payments_import.preview(path)
                    payments_import.apply(ADMIN, preview)
                mark(i)
            print(i, flush=True)
        i += 1
    for _ in range(40):  # drain: deliver whatever is queued
        from app.storage import accounts as store

        if not store.pending_outbox():
            break
        poller.cycle()
    poller.link and poller.link.close()
    return 0


def _account_id(node_id: int) -> int:
    from app.storage.models import Account

    return Account.get(Account.node == node_id).id


def _room_of(account_id: int) -> str:
    from app.storage import accounts as store

    return store.get_account(account_id).room


# -- the parent ----------------------------------------------------------------------------
def build(db: Path, endpoint: str, sim) -> dict[int, tuple[int, int]]:
    """The station database; returns each unit's meter money and purchase count at start."""
    from app.core import accounts
    from app.simulator import serial_for
    from app.storage import accounts as store
    from app.storage import campus
    from app.storage.db import open_database

    open_database(db)
    root = campus.add_node(None, "campus", "crash")
    bus = campus.add_bus("B01", endpoint, poll_interval_s=0.1)
    start = {}
    for unit in (1, 2, 3, 4):
        node = campus.add_node(root, "room", f"1-10{unit}", f"1-10{unit}")
        campus.add_meter(bus, unit, "acrel-ddsy1352", serial_for(1, unit), node)
        snap = sim.meter(1, unit).snapshot()
        start[unit] = (snap.remaining_money_cents, snap.purchase_count)
        if unit in METER_ACCOUNTS:
            accounts.open_account(ADMIN, node, mode="meter",
                                  opening_cents=snap.remaining_money_cents)
        else:
            accounts.open_account(ADMIN, node, mode="station")
    store.insert_tariff("dorm", "2000-01-01", "0.588", "", "0", "crash")
    return start


def check(sim, start: dict[int, tuple[int, int]], ops: int, seed: int) -> list[str]:
    from app.storage import accounts as store
    from app.storage import campus, ledger
    from app.storage.models import LedgerTxn

    problems = []
    if ledger.unbalanced_txns():
        problems.append(f"unbalanced bookings: {ledger.unbalanced_txns()}")
    if sum(ledger.trial_balance().values()) != 0:
        problems.append(f"the books do not sum to zero: {ledger.trial_balance()}")
    expected = {f"op-{i}" for i in range(ops) if op_plan(seed, i)[0] == "recharge"}
    booked = [r for (r,) in LedgerTxn.select(LedgerTxn.reference)
              .where(LedgerTxn.reference.startswith("op-")).tuples()]
    if sorted(booked) != sorted(expected):
        lost = expected - set(booked)
        problems.append(f"recharges lost {sorted(lost)[:5]} or doubled "
                        f"{len(booked) - len(set(booked))}")
    if store.pending_outbox():
        problems.append(f"{len(store.pending_outbox())} commands never delivered")
    for m in campus.meters():
        items = [i for i in store.outbox_items(m.id) if i.action == "recharge"]
        snap = sim.meter(1, m.address).snapshot()
        money0, count0 = start[m.address]
        sent = sum(i.amount_cents for i in items if i.state == "applied")
        if snap.remaining_money_cents != money0 + sent:
            problems.append(f"meter {m.address}: money {snap.remaining_money_cents}, "
                            f"expected {money0} + {sent}")
        if snap.purchase_count != count0 + len(items):
            problems.append(f"meter {m.address}: purchase count {snap.purchase_count}, "
                            f"expected {count0} + {len(items)}")
        acct = _account_id(m.node_id)
        if m.address in METER_ACCOUNTS:
            recharged = sum(t.amount_cents for t in ledger.txns(acct, limit=100_000)
                            if t.kind == "recharge")
            if recharged != sum(i.amount_cents for i in items):
                problems.append(f"meter {m.address}: booked {recharged}, queued "
                                f"{sum(i.amount_cents for i in items)}")
    return problems


def parent(ops: int, kills: int, seed: int) -> int:
    from app.drivers.token import save_master_key
    from app.paths import default_key_file
    from app.simulator import start_simulator

    rng = random.Random(seed)
    with tempfile.TemporaryDirectory() as tmp:
        os.environ["VOLTKEEPER_HOME"] = tmp
        work = Path(tmp)
        db = work / "crash.db"
        with start_simulator(buses=1, meters=4, transport="tcp", seed=seed, speed=0.0,
                             random_heaters=False) as sim:
            save_master_key(default_key_file(), sim.master_key)
            start = build(db, sim.endpoints[0], sim)
            cmd = [sys.executable, __file__, "--child", "--db", str(db), "--endpoint",
                   sim.endpoints[0], "--ops", str(ops), "--seed", str(seed),
                   "--workdir", str(work)]
            env = {**os.environ, "VOLTKEEPER_HOME": tmp}
            survived = 0
            started = time.perf_counter()
            done = 0
            for k in range(kills):
                # kill after a random number of the remaining operations, a moment into the next
                left = ops - done
                if left <= 1:
                    break
                target = done + rng.randint(1, max(1, 2 * left // (kills - k + 1)))
                proc = subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE,
                                        stderr=subprocess.PIPE, text=True)
                assert proc.stdout is not None
                for line in proc.stdout:
                    done = int(line) + 1
                    if done >= target:
                        time.sleep(rng.uniform(0, 0.004))
                        break
                proc.send_signal(signal.SIGKILL)
                proc.wait()
                if proc.returncode not in (-signal.SIGKILL, 0):
                    print(proc.stderr.read()[-2000:], file=sys.stderr)
                    print("FAIL: the child failed before it was killed", file=sys.stderr)
                    return 1
                if proc.returncode == -signal.SIGKILL:
                    survived += 1
            final = subprocess.run(cmd, env=env, stdout=subprocess.DEVNULL,
                                   stderr=subprocess.PIPE, timeout=600)
            if final.returncode != 0:
                print(final.stderr.decode(errors="replace")[-2000:], file=sys.stderr)
                print("FAIL: the final run failed", file=sys.stderr)
                return 1
            from app.storage.db import open_database

            open_database(db, create=False)
            problems = check(sim, start, ops, seed)
        elapsed = time.perf_counter() - started
    print(f"ops: {ops}, kills survived: {survived}, time: {elapsed:.1f} s")
    for p in problems:
        print(f"VIOLATION: {p}")
    if problems:
        return 1
    print("ledger balanced; every recharge booked once and applied once on its meter")
    return 0


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--ops", type=int, default=300)
    ap.add_argument("--kills", type=int, default=10)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    ap.add_argument("--db", type=Path, help=argparse.SUPPRESS)
    ap.add_argument("--endpoint", help=argparse.SUPPRESS)
    ap.add_argument("--workdir", type=Path, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        return child(args.db, args.endpoint, args.ops, args.seed, args.workdir)
    return parent(args.ops, args.kills, args.seed)


if __name__ == "__main__":
    sys.exit(main())
