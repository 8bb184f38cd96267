"""A small run of bench/crash_ledger.py: SIGKILLs at random points, inside large statement
imports and while a third process holds the database's write lock (once longer than the busy
timeout) never unbalance the ledger, book an import in part, nor lose or double a payment on any
meter."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent.parent
BENCH = ROOT / "bench" / "crash_ledger.py"


def _failure(out: subprocess.CompletedProcess) -> str:
    """The bench's last lines first: the child's error is there, and pytest shortens a long
    message from the end."""
    lines = (out.stdout + out.stderr).rstrip().splitlines()
    return "\n".join([lines[-1] if lines else "(no output)", "--- last lines ---", *lines[-40:]])


@pytest.mark.slow
def test_small_crash_run():
    out = subprocess.run([sys.executable, str(BENCH), "--ops", "120", "--kills", "6",
                          "--seed", "5", "--import-rows", "1500", "--max-hold", "11"],
                         capture_output=True, text=True, timeout=240, cwd=ROOT)
    assert out.returncode == 0, _failure(out)
    assert "VIOLATION" not in out.stdout, _failure(out)
    m = re.search(r"kills survived: (\d+) \((\d+) op, (\d+) import, (\d+) locked\)", out.stdout)
    assert m, _failure(out)
    survived, _op, imports, locked = map(int, m.groups())
    assert survived == 6, _failure(out)
    assert imports >= 1 and locked == 2, _failure(out)
    assert re.search(r"write lock held by a third process 2 times \(1[01]\.\d", out.stdout), \
        _failure(out)


def test_a_failing_child_ends_the_output(tmp_path):
    """The child's own error is the bench's last line, not lost above it."""
    fake = tmp_path / "bench" / "crash_ledger.py"
    fake.parent.mkdir()
    source = BENCH.read_text(encoding="utf-8")
    # the child breaks at its third operation, as the empty statement file once broke it
    source = source.replace('        _say("begin", i, op_plan(seed, i)[0])\n',
                            '        _say("begin", i, op_plan(seed, i)[0])\n'
                            '        if i == 2:\n'
                            '            raise RuntimeError("statement-2.csv is empty")\n', 1)
    assert "statement-2.csv is empty" in source
    fake.write_text(source, encoding="utf-8")
    out = subprocess.run([sys.executable, str(fake), "--ops", "30", "--kills", "2",
                          "--seed", "3"], capture_output=True, text=True, timeout=120, cwd=ROOT,
                         env=_env_with_root())
    assert out.returncode == 1
    last = out.stderr.rstrip().splitlines()[-1]
    assert last.startswith("FAIL: the child failed before it was killed"), out.stderr
    assert "in op 2 (" in last and "RuntimeError: statement-2.csv is empty" in last, last


def _env_with_root() -> dict:
    import os

    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(ROOT), *filter(None, [env.get("PYTHONPATH")])])
    return env
