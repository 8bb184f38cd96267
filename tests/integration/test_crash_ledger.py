"""A small run of bench/crash_ledger.py: SIGKILLs at random points never unbalance the ledger
nor lose or double a recharge on any meter."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent.parent


def test_small_crash_run():
    out = subprocess.run([sys.executable, str(ROOT / "bench" / "crash_ledger.py"),
                          "--ops", "120", "--kills", "4", "--seed", "5"],
                         capture_output=True, text=True, timeout=300, cwd=ROOT)
    assert out.returncode == 0, out.stdout + out.stderr
    assert "kills survived: 4" in out.stdout
    assert "VIOLATION" not in out.stdout
