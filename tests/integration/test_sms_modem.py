"""The SMS outbox against the modem simulator on a pty (no mock of the modem): quiet hours hold
texts, the daily cap skips, a +CMS ERROR is retried with back-off, a crash between sending and
marking never sends twice, a 200-character Chinese template goes as 3 parts, and the reading
service's loop sends what notify wrote."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from app.core import sms_outbox, sms_templates
from app.core.sms_outbox import SmsDispatcher, notify
from app.drivers.sms_sender import ModemSender
from app.simulator.modem import run_modem
from app.storage import sms as store
from app.storage.db import open_database
from app.storage.models import SmsMessage
from tests.integration.conftest import wait_for
from tests.sms_helpers import ADMIN, NUMBER, noon, sms_room, sms_settings

ROOT = Path(__file__).resolve().parent.parent.parent


class Clock:
    """The dispatcher's clock (a hand-written fake: time is what a test cannot wait for)."""

    def __init__(self, t: float) -> None:
        self.t = t

    def __call__(self) -> float:
        return self.t


@pytest.fixture
def sim():
    with run_modem() as sim:
        yield sim


@pytest.fixture
def station(tmp_path, sim):
    db_path = tmp_path / "sms.db"
    d = open_database(db_path)
    sms_settings(sender="modem", modem_port=sim.path, lang="zh_CN")
    acct, _room, _meter = sms_room()
    yield acct, db_path
    d.close()


def _dispatcher(sim, clock, **kw) -> SmsDispatcher:
    sender = ModemSender(sim.path, timeout=2.0, send_timeout=2.0)
    return SmsDispatcher(sender, clock=clock, **kw)


def _states() -> list[str]:
    return [m.state for m in reversed(store.messages())]


def test_quiet_hours_hold_texts_until_they_end(sim, station):
    acct, _db = station
    clock = Clock(noon() - 13 * 3600 + 30 * 60)  # 23:30 yesterday
    dispatcher = _dispatcher(sim, clock)
    notify("trip_schedule", acct, event="hold:1")
    assert dispatcher.run_once().held
    clock.t += 7 * 3600  # 06:30: still quiet
    assert dispatcher.run_once().held and sim.received == [] and _states() == ["pending"]
    clock.t += 30 * 60  # 07:00
    assert dispatcher.run_once().sent == 1
    assert _states() == ["sent"] and len(sim.messages()) == 1
    dispatcher.close()


def test_the_daily_cap_skips_with_the_reason(sim, station):
    acct, _db = station
    sms_settings(daily_cap=2)
    clock = Clock(noon())
    dispatcher = _dispatcher(sim, clock)
    for n in range(3):
        notify("trip_power_limit", acct, event=f"hold:{n}")
    report = dispatcher.run_once()
    assert (report.sent, report.skipped) == (2, 1)
    assert _states() == ["sent", "sent", "skipped"]
    assert store.messages(state="skipped")[0].last_error == \
        "over the daily cap of 2 texts to this number"
    assert len(sim.messages()) == 2
    clock.t += 24 * 3600  # another day: the cap starts again
    notify("trip_power_limit", acct, event="hold:9")
    SmsMessage.update(created_at=clock.t).where(SmsMessage.event == "hold:9").execute()
    assert dispatcher.run_once().sent == 1
    dispatcher.close()


def test_a_cms_error_is_retried_with_back_off_then_sent(sim, station):
    acct, _db = station
    clock = Clock(noon())
    dispatcher = _dispatcher(sim, clock)
    notify("low_balance_2", acct, event="low_balance:5")
    sim.fail_next(2, 42)  # network congestion, twice
    assert dispatcher.run_once().retried == 1
    row = store.messages()[0]
    assert (row.state, row.attempts, row.next_try_at) == ("pending", 1, clock.t + 60)
    assert "+CMS ERROR: 42" in row.last_error
    clock.t += 59
    assert dispatcher.run_once().retried == 0  # not before its turn
    clock.t += 1
    assert dispatcher.run_once().retried == 1
    assert store.messages()[0].next_try_at == clock.t + 120  # doubled
    clock.t += 120
    assert dispatcher.run_once().sent == 1
    row = store.messages()[0]
    assert (row.state, row.attempts, row.parts, row.sender) == ("sent", 3, 1, "modem")
    assert sum(c.startswith("AT+CMGS=") for c in sim.commands) == 3
    assert len(sim.messages()) == 1
    dispatcher.close()


def test_after_the_last_attempt_a_text_fails(sim, station):
    acct, _db = station
    clock = Clock(noon())
    dispatcher = _dispatcher(sim, clock, max_attempts=3)
    notify("trip_arrears", acct, event="hold:2")
    sim.fail_next(5, 330)  # no SMS centre number on the SIM
    for _ in range(3):
        dispatcher.run_once()
        clock.t += 3600
    row = store.messages()[0]
    assert (row.state, row.attempts) == ("failed", 3) and "330" in row.last_error
    assert sim.received == []
    dispatcher.close()


def test_a_confirmation_that_never_came_is_unknown_and_never_sent_again(sim, station):
    acct, _db = station
    clock = Clock(noon())
    sender = ModemSender(sim.path, timeout=1.0, send_timeout=0.5)
    dispatcher = SmsDispatcher(sender, clock=clock)
    notify("trip_arrears", acct, event="hold:3")
    sim.unanswered_next(1)  # the network took it, the confirmation was lost
    assert dispatcher.run_once().unknown == 1
    clock.t += 3600
    assert dispatcher.run_once().sent == 0
    assert _states() == ["unknown"] and len(sim.messages()) == 1
    dispatcher.close()


CRASHING_DISPATCHER = """
import os, signal, sys
from app.core.sms_outbox import SmsDispatcher
from app.drivers.sms_sender import ModemSender
from app.storage.db import open_database
from app.storage.models import SmsMessage

class DiesAfterSending(ModemSender):
    def send(self, phone, text):
        parts = super().send(phone, text)  # the modem confirmed it
        os.kill(os.getpid(), signal.SIGKILL)  # the station dies before marking it sent
        return parts

open_database(sys.argv[1], create=False)
SmsDispatcher(DiesAfterSending(sys.argv[2], timeout=2.0, send_timeout=2.0),
              clock=lambda: float(sys.argv[3])).run_once()
"""


def test_a_crash_between_sending_and_marking_never_sends_twice(sim, station):
    acct, db_path = station
    notify("low_balance_3", acct, event="low_balance:9")
    done = subprocess.run([sys.executable, "-c", CRASHING_DISPATCHER, str(db_path), sim.path,
                           str(noon())], cwd=ROOT, env=dict(os.environ), capture_output=True,
                          text=True, timeout=60)
    assert done.returncode == -signal.SIGKILL, done.stderr
    assert len(sim.messages()) == 1  # it went
    assert _states() == ["sending"]  # and was never marked
    clock = Clock(noon())
    dispatcher = _dispatcher(sim, clock)
    assert dispatcher.recover() == 1  # the station starts again
    row = store.messages()[0]
    assert row.state == "unknown" and "not sent again" in row.last_error
    for _ in range(3):
        dispatcher.run_once()
        clock.t += 3600
    assert notify("low_balance_3", acct, event="low_balance:9") == 0  # the event again
    dispatcher.run_once()
    assert len(sim.messages()) == 1  # never twice to the same number for the same event
    dispatcher.close()


def test_a_200_character_chinese_template_goes_as_3_parts(sim, station):
    acct, _db = station
    text = "".join(chr(0x4E00 + (i * 37) % 20000) for i in range(194)) + "{room}"
    assert len(text) == 200
    sms_templates.set_template(ADMIN, "trip_malicious_load", "zh_CN", text)
    notify("trip_malicious_load", acct, event="hold:4")
    dispatcher = _dispatcher(sim, Clock(noon()))
    assert dispatcher.run_once().sent == 1
    expected = text.replace("{room}", "1-101")
    assert [len(p.submit.text) for p in sim.received] == [67, 67, 65]
    assert sim.messages() == [(NUMBER, expected)]
    assert store.messages()[0].parts == 3
    dispatcher.close()


def test_a_modem_that_cannot_be_opened_leaves_the_texts_waiting(station, tmp_path):
    acct, _db = station
    notify("trip_operator", acct, event="hold:5")
    dispatcher = SmsDispatcher(ModemSender(str(tmp_path / "no-such-port")), clock=Clock(noon()))
    report = dispatcher.run_once()
    assert report.waiting and "no-such-port" in report.waiting
    row = store.messages()[0]
    assert (row.state, row.attempts) == ("pending", 0)


def test_the_service_loop_sends_what_notify_wrote(sim, station, monkeypatch):
    acct, _db = station
    sms_settings(quiet_from=0, quiet_to=0)  # no quiet hours, whatever the time of the test
    notify("trip_plan", acct, event="plan:1")
    stop = threading.Event()
    loop = threading.Thread(target=sms_outbox.run, args=(stop, 0.05), daemon=True)
    loop.start()
    try:
        assert wait_for(lambda: len(sim.messages()) == 1, timeout=10)
        assert wait_for(lambda: _states() == ["sent"], timeout=10)
        sms_settings(sender="none")  # turned off: the loop idles
        notify("trip_plan", acct, event="plan:2")
        time.sleep(0.3)
        assert len(sim.messages()) == 1
    finally:
        stop.set()
        loop.join(5)
    assert not loop.is_alive()


def test_the_reading_service_runs_the_sms_loop_when_a_sender_is_set(sim, station):
    from app.core.service import ReadingService

    acct, _db = station
    sms_settings(quiet_from=0, quiet_to=0)
    notify("trip_operator", acct, event="hold:6")
    service = ReadingService(billing_every_s=3600)
    service.sms_every_s = 0.05
    ok, _info = service.start()
    assert ok
    try:
        assert "sms" in service.supervisors
        assert wait_for(lambda: len(sim.messages()) == 1, timeout=10)
    finally:
        service.stop()
    assert service.supervisors["sms"].state.restarts == 0
