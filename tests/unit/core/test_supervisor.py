"""The supervisor keeps a loop alive: an exception is logged with its traceback, the state says
``error`` with the reason, the loop is restarted with back-off, and stops when told."""

from __future__ import annotations

import itertools
import logging
import threading
import time

from app.core.supervisor import Supervisor, SupervisorState


def _run(supervisor: Supervisor) -> threading.Thread:
    t = threading.Thread(target=supervisor.run, daemon=True)
    t.start()
    return t


def _until(predicate, timeout: float = 5.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.01)
    return predicate()


def test_a_failing_loop_is_restarted_with_doubling_back_off(caplog):
    caplog.set_level(logging.ERROR, logger="voltkeeper.supervisor")
    stop = threading.Event()
    starts: list[float] = []
    states: list[SupervisorState] = []

    def loop() -> None:
        starts.append(time.monotonic())
        if len(starts) <= 3:
            raise RuntimeError(f"fault {len(starts)}")
        stop.wait()

    sup = Supervisor("worker", loop, stop, on_state=states.append, backoff_start_s=0.05)
    thread = _run(sup)
    assert _until(lambda: len(starts) == 4)
    gaps = [b - a for a, b in itertools.pairwise(starts)]
    assert gaps[0] >= 0.05 and gaps[1] >= 0.1 and gaps[2] >= 0.2  # 0.05, 0.1, 0.2
    assert sup.state.state == "running" and sup.state.restarts == 3
    assert sup.state.error == "RuntimeError: fault 3"  # the last error is kept
    assert [s.state for s in states[:3]] == ["running", "error", "running"]
    assert states[1].describe() == "error: RuntimeError: fault 1"
    assert sup.dead() is True  # three failures in a row, not healthy since
    stop.set()
    thread.join(2)
    assert sup.state.state == "stopped"
    traced = [r for r in caplog.records if r.exc_info]
    assert len(traced) == 3 and "worker failed" in traced[0].getMessage()


def test_a_loop_that_runs_healthily_is_not_dead():
    stop = threading.Event()
    calls = []

    def loop() -> None:
        calls.append(1)
        if len(calls) == 1:
            raise ValueError("once")
        stop.wait()

    sup = Supervisor("once", loop, stop, backoff_start_s=0.01, healthy_after_s=0.1)
    thread = _run(sup)
    assert _until(lambda: len(calls) == 2)
    assert not sup.dead()
    stop.set()
    thread.join(2)


def test_stop_ends_the_back_off_at_once():
    stop = threading.Event()

    def loop() -> None:
        raise RuntimeError("always")

    sup = Supervisor("dying", loop, stop, backoff_start_s=30.0)
    thread = _run(sup)
    assert _until(lambda: sup.state.state == "error")
    started = time.monotonic()
    stop.set()
    thread.join(2)
    assert time.monotonic() - started < 1.0 and sup.state.state == "stopped"


def test_a_failing_state_listener_does_not_stop_the_loop():
    stop = threading.Event()
    ran = threading.Event()

    def listener(_state: SupervisorState) -> None:
        raise RuntimeError("listener broken")

    def loop() -> None:
        ran.set()
        stop.wait()

    thread = _run(Supervisor("quiet", loop, stop, on_state=listener))
    assert ran.wait(2)
    stop.set()
    thread.join(2)
