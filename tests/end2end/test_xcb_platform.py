"""The window on a real desktop: Qt's xcb platform plugin loads and shows a window on an X
server (Xvfb, started here on a display it picks), and every library the xcb and Wayland
plugins link against is on the machine (``voltkeeper.sh`` installs them). The rest of the
suite runs offscreen, which needs none of them: without this test a desktop could fail where
CI passes."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

QT = Path(__import__("PySide6").__file__).resolve().parent / "Qt"
#: What the window needs on X11 and on Wayland (not the GTK theme or the virtual keyboard,
#: which Qt does without).
PLUGIN_GLOBS = ("plugins/platforms/libqxcb.so", "plugins/platforms/libqwayland*.so",
                "plugins/xcbglintegrations/*.so", "plugins/wayland-shell-integration/*.so",
                "plugins/wayland-decoration-client/*.so",
                "plugins/wayland-graphics-integration-client/*.so")

CHILD = """
import sys
import time
from PySide6.QtCore import QTimer
from PySide6.QtWidgets import QApplication, QLabel

app = QApplication(sys.argv)
label = QLabel("VoltKeeper")
label.resize(320, 80)
label.show()
deadline = time.monotonic() + 10
seen = []

def look():
    handle = label.windowHandle()
    if handle is not None and handle.isExposed():  # mapped by the X server
        seen.append(label.grab().size().width())
        app.quit()
    elif time.monotonic() > deadline:
        app.quit()

timer = QTimer()
timer.timeout.connect(look)
timer.start(50)
app.exec()
size = app.primaryScreen().size()
print(app.platformName(), bool(seen), f"{size.width()}x{size.height()}")
"""

def test_the_xcb_and_wayland_plugins_find_their_libraries() -> None:
    ldd = shutil.which("ldd")
    if ldd is None:
        pytest.skip("no ldd on this system (not glibc)")
    plugins = [p for pattern in PLUGIN_GLOBS for p in sorted(QT.glob(pattern))]
    assert any(p.name == "libqxcb.so" for p in plugins), f"no xcb plugin under {QT}"
    missing: dict[str, set[str]] = {}
    for plugin in plugins:
        out = subprocess.run([ldd, str(plugin)], capture_output=True, text=True,
                             timeout=30).stdout
        for line in out.splitlines():
            if "not found" in line:
                missing.setdefault(line.split()[0], set()).add(plugin.name)
    assert not missing, ("libraries missing (./voltkeeper.sh setup installs them): "
                         + "; ".join(f"{lib} for {', '.join(sorted(users))}"
                                     for lib, users in sorted(missing.items())))


@pytest.fixture
def x_display(tmp_path: Path):
    """An Xvfb server on a free display (it picks one and tells us: -displayfd)."""
    xvfb = shutil.which("Xvfb")
    if xvfb is None:
        pytest.skip("Xvfb is not installed (./voltkeeper.sh setup installs it)")
    read, write = os.pipe()
    log = (tmp_path / "xvfb.log").open("w")
    proc = subprocess.Popen([xvfb, "-displayfd", str(write), "-screen", "0", "1024x768x24",
                             "-nolisten", "tcp"], pass_fds=(write,), stdout=log,
                            stderr=subprocess.STDOUT)
    os.close(write)
    try:
        with os.fdopen(read) as f:
            number = f.readline().strip()  # written once the server accepts clients
        assert number.isdigit(), (tmp_path / "xvfb.log").read_text()
        yield f":{number}"
    finally:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(5)
        log.close()


def test_a_window_shows_on_x11_through_the_xcb_plugin(x_display: str) -> None:
    env = {k: v for k, v in os.environ.items() if k not in ("WAYLAND_DISPLAY", "XAUTHORITY")}
    env.update(QT_QPA_PLATFORM="xcb", DISPLAY=x_display)
    done = subprocess.run([sys.executable, "-c", CHILD], env=env, capture_output=True,
                          text=True, timeout=60)
    assert done.returncode == 0, (
        f"the xcb platform plugin did not load (exit {done.returncode}):\n{done.stderr}")
    assert done.stdout.split() == ["xcb", "True", "1024x768"], done.stdout + done.stderr
