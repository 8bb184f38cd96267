"""Energy accounting from the register: exact interval split, resets never booked."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from app.core.energy import INTERVAL_S, EnergyAccount, split_over_intervals


def test_same_interval_books_once():
    assert split_over_intervals(1000.0, 1100.0, 37) == [(900, 37)]


def test_split_is_proportional_to_time():
    # 450 s in [900,1800) and 450 s in [1800,2700): half each
    assert split_over_intervals(1350.0, 2250.0, 100) == [(900, 50), (1800, 50)]
    pieces = split_over_intervals(0.0, 3 * INTERVAL_S, 10)
    assert sum(wh for _, wh in pieces) == 10 and [s for s, _ in pieces] == [0, 900, 1800]


def test_end_on_boundary_belongs_to_earlier_interval():
    assert split_over_intervals(1000.0, 1800.0, 5) == [(900, 5)]


@given(st.floats(0, 1e6), st.floats(0.1, 1e5), st.integers(0, 10**7))
def test_split_sums_exactly(t0, dt, wh):
    pieces = split_over_intervals(t0, t0 + dt, wh)
    assert sum(w for _, w in pieces) == wh
    assert all(w >= 0 for _, w in pieces)
    assert len({s for s, _ in pieces}) == len(pieces)


def test_account_books_deltas_and_skips_resets():
    acc = EnergyAccount()
    assert acc.book(100_000, 1000.0).intervals == []  # first read: baseline only
    b = acc.book(100_050, 1010.0)
    assert b.intervals == [(900, 50)] and not b.events
    reset = acc.book(20, 1020.0)  # meter replaced: counter went back
    assert reset.intervals == [] and reset.events[0][0] == "counter_reset"
    after = acc.book(45, 1030.0)  # accounting resumes from the new value
    assert after.intervals == [(900, 25)]
    jump = acc.book(45 + 5_000_000, 1040.0)  # 5 MWh in 10 s: not a dormitory
    assert jump.intervals == [] and jump.events[0][0] == "energy_jump"


def test_days_follow_intervals():
    acc = EnergyAccount(0, 0.0)
    b = acc.book(900, 1800.0)
    assert sum(wh for _, wh in b.days) == 900
