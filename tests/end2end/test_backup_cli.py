"""``main.py backup`` and ``restore`` as subprocesses on a real file; a damaged database is
refused at start naming the newest backup."""

from __future__ import annotations

import os
import random
import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent.parent


def _run(env, *args):
    return subprocess.run([sys.executable, str(ROOT / "main.py"), *args], env=env, cwd=ROOT,
                          capture_output=True, text=True, timeout=60,
                          stdin=subprocess.DEVNULL)  # a script: restore does not ask


def test_backup_restore_and_a_damaged_database(tmp_path):
    env = dict(os.environ, VOLTKEEPER_HOME=str(tmp_path / "home"),
               VOLTKEEPER_PASSWORD="secret123")
    db = tmp_path / "c.db"
    folder = tmp_path / "backups"  # the default folder beside the database
    assert _run(env, "init-demo", "--db", str(db), "--buses", "1", "--meters", "2") \
        .returncode == 0
    made = _run(env, "backup", "--db", str(db), "--to", str(folder))
    assert made.returncode == 0, made.stderr
    backup = Path(re.search(r"backup (\S+\.db) ", made.stdout).group(1))
    assert backup.parent == folder and backup.exists()
    assert re.fullmatch(r"c-\d{8}-\d{6}\.db", backup.name)
    # a cashier may not make backups
    denied = _run(env, "backup", "--db", str(db), "--to", str(folder), "--operator", "cashier")
    assert denied.returncode == 3 and "permission denied" in denied.stderr
    # a truncated backup is refused; the database is left byte for byte
    truncated = tmp_path / "truncated.db"
    truncated.write_bytes(backup.read_bytes()[: backup.stat().st_size // 3])
    before = db.read_bytes()
    refused = _run(env, "restore", "--db", str(db), "--from", str(truncated))
    assert refused.returncode == 1 and "not a usable backup" in refused.stderr
    assert "nothing was replaced" in refused.stderr
    assert db.read_bytes() == before
    assert not list(tmp_path.glob("c.db.replaced-*"))
    # a good backup is restored by an administrator signed in against it
    done = _run(env, "restore", "--db", str(db), "--from", str(backup), "--operator", "admin")
    assert done.returncode == 0, done.stderr
    replaced = list(tmp_path.glob("c.db.replaced-*"))
    assert len(replaced) == 1 and str(replaced[0]) in done.stdout
    verify = _run(env, "audit", "verify", "--db", str(db))
    assert verify.returncode == 0, verify.stdout + verify.stderr
    listed = _run(env, "audit", "list", "--db", str(db))
    assert re.search(r"admin +restore +c\.db", listed.stdout)
    # a damaged database: every command refuses it, naming the newest backup
    with open(db, "r+b") as f:
        f.write(random.Random(3).randbytes(100))
    status = _run(env, "status", "--db", str(db))
    assert status.returncode == 1
    assert "damaged" in status.stderr and "Traceback" not in status.stderr
    assert f"python main.py restore --db {db} --from {backup}" in status.stderr
