"""Backups while the reading service polls the simulator and the desk books recharges: every
copy is sound and balanced, the service makes its daily backup once, and restoring a copy
brings back exactly that copy's ledger."""

from __future__ import annotations

import threading
import time

from app.core import backup as core
from app.core import settings
from app.core.operators import Operator, Role
from app.core.recharge import recharge
from app.core.service import ReadingService
from app.drivers.token import save_master_key
from app.paths import default_key_file
from app.storage import backup as store
from app.storage import readings
from app.storage.db import close_database
from app.storage.models import Account
from tests.helpers import ledger_rows

from .conftest import wait_for

ADMIN = Operator("admin", Role.ADMINISTRATOR)
DESK = Operator("desk", Role.CASHIER)


def _balanced(txns: list[tuple], entries: list[tuple]) -> bool:
    sums: dict[int, int] = {}
    for _id, txn, _book, _acct, cents in entries:
        sums[txn] = sums.get(txn, 0) + cents
    return (sum(sums.values()) == 0 and all(v == 0 for v in sums.values())
            and set(sums) == {t[0] for t in txns})  # no booking without its entries


def test_backups_while_polling_and_recharging(sim_campus, tmp_path):
    sim, db_path = sim_campus
    save_master_key(default_key_file(), sim.master_key)  # tokens are delivered: more writes
    settings.change(ADMIN, settings.BACKUP_HOUR, 0)  # the daily backup is due at once
    service = ReadingService(role="test", flush_s=0.05, billing_every_s=0.5, db_path=db_path)
    service.backup_check_every_s = 0.5
    assert service.start()[0]
    accounts = [a.id for a in Account.select().order_by(Account.id)]
    booked: list[int] = []
    stop = threading.Event()

    def desk() -> None:
        try:
            while not stop.is_set():
                k = len(booked)
                booked.append(recharge(DESK, accounts[k % len(accounts)], 1_00 + k,
                                       "cash").txn_id)
                time.sleep(0.02)
        finally:
            close_database()  # this thread's connection

    clerk = threading.Thread(target=desk, name="desk")
    copies = []
    try:
        assert wait_for(lambda: len([r for r in readings.latest() if r.online]) == 10)
        clerk.start()
        for _ in range(4):
            n = len(booked)
            assert wait_for(lambda n=n: len(booked) >= n + 3)
            copies.append(core.backup(ADMIN, db_path, to_dir=tmp_path / "bk", keep=10).path)
        daily = db_path.parent / "backups"
        assert wait_for(lambda: len(store.backup_files(daily, db_path)) == 1)
        time.sleep(1.5)  # a few more checks of the service: still one daily backup
    finally:
        stop.set()
        clerk.join(timeout=30)
        service.stop()
    assert len(store.backup_files(daily, db_path)) == 1
    assert not service.lost_lease
    counts = []
    for path in [*copies, *store.backup_files(daily, db_path)]:
        assert store.check_file(path) == [], path
        txns, entries = ledger_rows(path)
        assert _balanced(txns, entries), path
        counts.append(sum(1 for t in txns if t[2] == "recharge"))
    assert counts[:4] == sorted(counts[:4]) and counts[3] > counts[0]
    # restoring the second copy gives exactly its ledger, without the later recharges
    chosen = copies[1]
    expected = ledger_rows(chosen)
    result = core.restore(None, db_path, chosen)
    assert ledger_rows(db_path) == expected
    assert ledger_rows(result.replaced_path)[0][: len(expected[0])] == expected[0]
    assert len(ledger_rows(result.replaced_path)[0]) > len(expected[0])
