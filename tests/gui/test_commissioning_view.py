"""The commissioning window against the simulator on a pty: scan the bus (an offline meter
missing, a meter at another speed found at its own, an unexpected id bound to a room), run the
checklist, save the record; screenshots in English and Chinese."""

from __future__ import annotations

import shutil
import subprocess

from app.simulator import start_simulator
from app.simulator.demo_campus import create_demo_campus
from app.storage import campus
from app.storage.models import Bus, Meter
from app.ui.language import apply_language
from app.views import window_actions


def test_scan_bind_check_and_record(qtbot, tmp_path, open_window, shoot):
    db = tmp_path / "c.db"
    create_demo_campus(db, buses=1, meters=4, seed=3)
    with start_simulator(buses=1, meters=5, transport="pty", seed=3, speed=120.0,
                         faults="1.2:baud=19200;1.4:offline", random_heaters=False) as sim:
        Bus.update(link=sim.endpoints[0]).execute()
        window = open_window(db, role="maintenance", name="wang")
        window_actions.commissioning(window)
        view = window.dialogs["commissioning"]
        view.ids.setText("1-6")
        view.timeout.setValue(100)
        view.bauds.setText("9600,19200")
        view.start_scan()
        qtbot.waitUntil(lambda: view.scan_result is not None and view.job is None,
                        timeout=30_000)
        result = view.scan_result
        assert [f.id for f in result.found] == [1, 2, 3, 5]
        assert [e.id for e in result.missing] == [4]
        assert [(e.id, f.baud) for e, f in result.other_setting] == [(2, 19200)]
        assert [f.id for f in result.unexpected] == [5]
        findings = {view.scan_table.item(r, 0).text(): view.scan_table.item(r, 5).text()
                    for r in range(view.scan_table.rowCount())}
        assert findings["4"].startswith("missing") and findings["1"] == "as expected"
        shoot(view, "commissioning_scan")
        # bind the unexpected id 5 to a room without a meter
        room = campus.add_node(None, "room", "9-901", "9-901")
        assert room
        row = next(r for r in range(view.scan_table.rowCount())
                   if view.scan_table.item(r, 0).text() == "5")
        view.scan_table.selectRow(row)
        assert view.bind_button.isEnabled()
        view.bind_selected(room="9-901")
        qtbot.waitUntil(lambda: view.job is None and "Bound" in view.status.text(),
                        timeout=10_000)
        bound = Meter.get(Meter.address == 5)
        assert bound.serial == sim.meter(1, 5).serial and bound.node_id == room
        # the checklist: 1, 3 and 5 pass; 2 (another speed) and 4 (offline) fail
        view.tabs.setCurrentIndex(1)
        view.start_checklist()
        qtbot.waitUntil(lambda: view.check_result is not None and view.job is None,
                        timeout=60_000)
        failed = {m.address for m in view.check_result.meters if m.failed}
        assert failed == {2, 4}
        shoot(view, "commissioning_checklist")
        pdf = tmp_path / "record.pdf"
        view.save_record(pdf)
        qtbot.waitUntil(lambda: view.job is None and pdf.exists(), timeout=10_000)
        if shutil.which("pdftotext"):
            text = subprocess.run(["pdftotext", str(pdf), "-"], capture_output=True,
                                  text=True, check=True).stdout
            assert "Commissioning record" in text and "wang" in text
        result = view.check_result
        view.close()
        window.dialogs.pop("commissioning")
        apply_language("zh_CN")
        window_actions.commissioning(window)
        view = window.dialogs["commissioning"]
        view.tabs.setCurrentIndex(1)
        view.show_checklist(result)
        shoot(view, "commissioning_checklist_zh")
