"""``main.py sms send`` as a subprocess against the modem simulator on a pty: exit 0 and the
parts received when the modem confirms; exit 1 with one line (no traceback) when it refuses."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from app.simulator.modem import run_modem

ROOT = Path(__file__).resolve().parent.parent.parent
NUMBER = "+8613800138000"


def _sms(port: str, *extra: str, text: str):
    env = dict(os.environ, LANGUAGE="en")
    return subprocess.run([sys.executable, str(ROOT / "main.py"), "sms", "send", "--modem", port,
                           "--to", NUMBER, "--text", text, *extra],
                          env=env, cwd=ROOT, capture_output=True, text=True, timeout=60)


@pytest.fixture
def sim():
    with run_modem() as sim:
        yield sim


def test_a_long_chinese_message_is_sent_and_confirmed(sim):
    text = "".join(chr(0x4E00 + i) for i in range(200))
    done = _sms(sim.path, "--baud", "115200", text=text)
    assert done.returncode == 0, done.stderr
    refs = [p.mr for p in sim.received]
    assert len(refs) == 3
    for seq, ref in enumerate(refs, start=1):
        assert f"part {seq}/3: reference {ref}" in done.stdout
    assert sim.messages() == [(NUMBER, text)]


def test_a_modem_answering_error_exits_1_with_one_line(sim):
    sim.answer_error = True
    done = _sms(sim.path, text="hello")
    assert done.returncode == 1
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and "ERROR" in lines[0] and "Traceback" not in done.stderr
    assert sim.received == []


def test_a_refused_message_exits_1_naming_the_code(sim):
    sim.fail_next(1, 330)
    done = _sms(sim.path, text="hello")
    assert done.returncode == 1
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and "+CMS ERROR: 330" in lines[0]


def test_a_missing_port_exits_1_with_one_line(tmp_path):
    done = _sms(str(tmp_path / "ttyUSB9"), text="hello")
    assert done.returncode == 1
    assert len(done.stderr.strip().splitlines()) == 1 and "Traceback" not in done.stderr


def test_a_bad_number_is_a_usage_error(sim):
    env = dict(os.environ, LANGUAGE="en")
    done = subprocess.run([sys.executable, str(ROOT / "main.py"), "sms", "send", "--modem",
                           sim.path, "--to", "12ab", "--text", "x"], env=env, cwd=ROOT,
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 2 and "not a phone number" in done.stderr
    assert sim.commands == []
