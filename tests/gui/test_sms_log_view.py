"""The SMS log view, opened from the Station menu: texts of several rooms in their states,
numbers masked, filtered by state; a screenshot looked at."""

from __future__ import annotations

from app.core import sms_outbox
from app.storage import accounts as account_store
from app.storage import sms as store
from app.storage.models import Occupant, database
from app.views import window_actions
from tests.sms_helpers import sms_settings


def test_the_sms_log_shows_texts_and_filters_by_state(qtbot, seed_campus, open_window, shoot):
    window = open_window(seed_campus)
    sms_settings(sender="modem", lang="zh_CN")
    accts = account_store.open_accounts()[:4]
    for k, acct in enumerate(accts):
        Occupant.update(phone=f"+86138001380{k:02d}").where(Occupant.node == acct.node_id) \
            .execute()
        sms_outbox.notify("low_balance_1" if k % 2 else "trip_arrears", acct.id,
                          event=f"test:{k}")
    rows = store.messages()
    with database.atomic():
        store.mark_sent(rows[0].id, 2, rows[0].created_at + 5)
        store.mark(rows[1].id, "failed", "the modem answered +CMS ERROR: 330 (the SIM card "
                                         "has no SMS centre number)")
        store.mark(rows[2].id, "skipped", "over the daily cap of 5 texts to this number")
    window_actions.sms_log(window)
    view = window.dialogs["sms_log"]
    total = len(rows)
    qtbot.waitUntil(lambda: view.table.rowCount() == total, timeout=5_000)
    phones = {view.table.item(r, 3).text() for r in range(total)}
    assert all("****" in p for p in phones)
    assert {view.table.item(r, 4).text() for r in range(total)} >= {"sent", "failed",
                                                                     "skipped", "waiting"}
    shoot(view, "sms_log")
    view.state.setCurrentIndex(view.state.findData("failed"))
    qtbot.waitUntil(lambda: view.table.rowCount() == 1, timeout=5_000)
    assert "+CMS ERROR: 330" in view.table.item(0, 8).text()
    view.state.setCurrentIndex(0)
    qtbot.waitUntil(lambda: view.table.rowCount() == total, timeout=5_000)
