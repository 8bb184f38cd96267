"""The front desk in the window: Desk > Recharge on the selected room, the money reaches the
meter, and the room's panel shows it."""

from __future__ import annotations

from app.core.money import parse_amount
from app.drivers.token import save_master_key
from app.paths import default_key_file
from app.storage import accounts as store


def _yuan(text: str) -> int:
    return parse_amount(text)  # the panel's own format, read back exactly


def test_a_good_recharge_updates_the_rooms_panel(qtbot, live_campus, open_window, shoot):
    db, sim = live_campus
    save_master_key(default_key_file(), sim.master_key)  # the station's key, as commissioned
    window = open_window(db, start=True)
    room = window.ctx.index.exact("1-101")
    window.tree.select_node(room)
    panel = window.panel
    qtbot.waitUntil(lambda: panel.values["money"].text().startswith("¥"), timeout=15_000)
    # the account takes over the meter's balance at the first billing run (~3 s after start)
    qtbot.waitUntil(lambda: not store.accounts_to_adopt(), timeout=20_000)
    before = _yuan(panel.values["money"].text())
    window.open_recharge()
    dialog = window.recharge_dialog
    qtbot.waitUntil(lambda: dialog.account is not None, timeout=5_000)
    assert dialog.account.room == "1-101"  # opened on the selected room
    dialog.amount.setText("100")
    with qtbot.waitSignal(dialog.recharged, timeout=10_000) as booked:
        assert dialog.confirm()
    result = booked.args[0]
    assert result.amount_cents == 100_00
    qtbot.waitUntil(lambda: dialog.state == "applied", timeout=30_000)
    # the meter uses a little while we wait (meter time runs 60 x): allow five yuan of use
    qtbot.waitUntil(lambda: _yuan(panel.values["money"].text()) >= before + 95_00,
                    timeout=20_000)
    assert _yuan(panel.values["money"].text()) <= before + 100_00
    shoot(dialog, "desk_recharge_applied")
    shoot(window, "desk_panel_after_recharge")
    dialog.close()
