"""The GSM modem driver against the modem simulator on a pty: long Chinese texts in parts that
reassemble, temporary network errors retried, permanent ones reported, unsolicited lines
ignored, silence typed, and the log never holding the text or the whole number."""

from __future__ import annotations

import logging

import pytest

from app.drivers.modem import GsmModem, mask_number
from app.errors import ModemError, ModemTimeout
from app.simulator.modem import run_modem

NUMBER = "+8613800138000"
TEXT_200 = "".join(chr(0x4E00 + (i * 37) % 20000) for i in range(200))


@pytest.fixture
def sim():
    with run_modem() as sim:
        yield sim


def _modem(sim, **kw) -> GsmModem:
    kw.setdefault("backoff_s", 0.01)
    kw.setdefault("timeout", 2.0)
    kw.setdefault("send_timeout", 2.0)
    return GsmModem(sim.path, **kw)


def test_a_200_character_chinese_text_arrives_as_3_parts_that_reassemble(sim):
    seen = []
    with _modem(sim) as modem:
        refs = modem.send(NUMBER, TEXT_200, on_part=lambda *a: seen.append(a))
    assert sim.commands[:4] == ["AT", "ATE0", "AT+CMEE=1", "AT+CMGF=0"]
    parts = sim.received
    assert refs == [p.mr for p in parts] and len(refs) == 3
    assert seen == [(1, 3, refs[0]), (2, 3, refs[1]), (3, 3, refs[2])]
    assert [len(p.submit.text) for p in parts] == [67, 67, 66]
    assert {p.submit.concat.ref for p in parts} == {parts[0].submit.concat.ref}
    assert sim.messages() == [(NUMBER, TEXT_200)]


def test_two_messages_get_different_references(sim):
    with _modem(sim) as modem:
        modem.send(NUMBER, "中" * 100)
        modem.send(NUMBER, "文" * 100)
    assert sim.messages() == [(NUMBER, "中" * 100), (NUMBER, "文" * 100)]


def test_a_temporary_cms_error_is_retried_then_succeeds(sim, caplog):
    sleeps = []
    with _modem(sim, sleep=sleeps.append, backoff_s=1.0) as modem:
        sim.fail_next(2, 42)  # congestion
        refs = modem.send(NUMBER, "Balance low: 4.50 yuan")
    assert len(refs) == 1
    assert sleeps == [1.0, 2.0]  # back-off doubles
    assert sim.messages() == [(NUMBER, "Balance low: 4.50 yuan")]
    assert sum("AT+CMGS=" in c for c in sim.commands) == 3


def test_retries_are_limited(sim):
    with _modem(sim, retries=2) as modem:
        sim.fail_next(5, 500)
        with pytest.raises(ModemError) as err:
            modem.send(NUMBER, "hello")
    assert (err.value.kind, err.value.code) == ("CMS", 500)
    assert sum("AT+CMGS=" in c for c in sim.commands) == 3
    assert sim.received == []


def test_a_permanent_error_is_reported_at_once(sim):
    with _modem(sim) as modem:
        sim.fail_next(1, 330)  # no SMS centre number on the SIM
        with pytest.raises(ModemError) as err:
            modem.send(NUMBER, "hello")
        assert (err.value.kind, err.value.code) == ("CMS", 330)
        assert "330" in str(err.value) and "SMS centre" in str(err.value)
        assert sum("AT+CMGS=" in c for c in sim.commands) == 1
        # the modem is usable afterwards
        assert len(modem.send(NUMBER, "hello")) == 1


def test_a_modem_answering_error_is_reported_when_opened(sim):
    sim.answer_error = True
    with pytest.raises(ModemError) as err:
        _modem(sim).open()
    assert err.value.kind is None and not isinstance(err.value, ModemTimeout)


def test_unsolicited_lines_are_ignored(sim):
    with _modem(sim) as modem:
        sim.unsolicited("RING", '+CMTI: "SM",3', "^BOOT:1,0,0,0,0")
        assert len(modem.send(NUMBER, "中" * 80)) == 2
        sim.unsolicited("+CREG: 1", "RING")
        assert modem.command("AT") == []
        sim.unsolicited("RING")
        assert modem.command("AT+CMGF=0", expect="+CMGF") == []
    assert sim.messages() == [(NUMBER, "中" * 80)]


def test_a_silent_modem_is_a_typed_timeout(sim):
    sim.silent = True
    with pytest.raises(ModemTimeout):
        _modem(sim, timeout=0.3).open()


def test_a_modem_going_silent_before_the_prompt_is_a_typed_timeout(sim):
    with _modem(sim, timeout=0.3) as modem:
        sim.silent = True
        with pytest.raises(ModemTimeout):
            modem.send(NUMBER, "hello")


def test_the_log_holds_neither_the_text_nor_the_whole_number(sim, caplog):
    caplog.set_level(logging.DEBUG, logger="voltkeeper.drivers.modem")
    with _modem(sim) as modem:
        modem.send(NUMBER, "secret balance 12.34")
    logged = caplog.text
    assert "secret" not in logged and NUMBER not in logged and "13800138000" not in logged
    assert "+86138****8000" in logged


def test_number_masking():
    assert mask_number("+8613800138000") == "+86138****8000"
    assert mask_number("13800138000") == "138****8000"
    assert "0086" not in mask_number("10086")[1:-1]


def test_a_part_whose_confirmation_never_came_is_not_sent_again(sim):
    """The network may have taken it: sending it again could make a duplicate."""
    with _modem(sim, send_timeout=0.5) as modem:
        sim.unanswered_next(1)
        with pytest.raises(ModemTimeout):
            modem.send(NUMBER, "hello")
        assert len(sim.received) == 1
        assert sum("AT+CMGS=" in c for c in sim.commands) == 1
        # a late confirmation is not taken for the next message's
        assert len(modem.send(NUMBER, "again")) == 1
    assert [p.submit.text for p in sim.received] == ["hello", "again"]
