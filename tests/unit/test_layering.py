"""The layers hold: core, drivers and storage never import Qt; drivers and storage never import
core; storage takes from drivers only the ``MeterValues`` record. Checked on the source, so a
lazy import inside a function is caught too."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

APP = Path(__file__).resolve().parent.parent.parent / "app"


def _imports(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            names.add(node.module)
    return names


@pytest.mark.parametrize("package", ["core", "drivers", "storage"])
def test_no_qt_below_ui(package):
    offenders = {str(p.relative_to(APP)): sorted(n for n in _imports(p)
                                                  if n.split(".")[0] in ("PySide6", "pyqtgraph"))
                 for p in (APP / package).rglob("*.py")}
    assert not {k: v for k, v in offenders.items() if v}


@pytest.mark.parametrize("package", ["drivers", "storage"])
def test_drivers_and_storage_do_not_import_core_or_ui(package):
    bad = {str(p.relative_to(APP)): sorted(n for n in _imports(p)
                                           if n.startswith(("app.core", "app.ui", "app.views")))
           for p in (APP / package).rglob("*.py")}
    assert not {k: v for k, v in bad.items() if v}


def _imported_modules(path: Path) -> set[str]:
    """Every module a file imports, by its full name: ``from app.drivers import registers``
    counts as ``app.drivers.registers``; relative imports are resolved."""
    package = ".".join(("app", *path.relative_to(APP).parent.parts))
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            names.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parent = package.split(".")[:len(package.split(".")) - node.level + 1]
                base = ".".join([*parent, base] if base else parent)
            names.update(f"{base}.{a.name}" for a in node.names)
    return names


def _bad_driver_import(name: str, allowed: str = "app.drivers.meter_values") -> bool:
    in_drivers = name == "app.drivers" or name.startswith("app.drivers.")
    return in_drivers and name != allowed and not name.startswith(allowed + ".")


def test_storage_takes_from_drivers_only_the_meter_values_record():
    """The plain value type of a read is shared; links, profiles and codecs are not."""
    bad = {str(p.relative_to(APP)): sorted(n for n in _imported_modules(p)
                                           if _bad_driver_import(n))
           for p in (APP / "storage").rglob("*.py")}
    assert not {k: v for k, v in bad.items() if v}
    assert "app.drivers.meter_values.MeterValues" in _imported_modules(
        APP / "storage" / "readings.py")


def _offenders(package: str, forbidden: tuple[str, ...]) -> dict[str, list[str]]:
    out = {}
    for p in (APP / package).rglob("*.py"):
        names = sorted(n for n in _imported_modules(p)
                       if n.split(".")[0] in forbidden or n.startswith(forbidden))
        if names:
            out[str(p.relative_to(APP))] = names
    return out


def test_views_ask_the_core_not_the_database():
    """Views import neither storage nor peewee (they ask core queries), nor the simulator."""
    assert _offenders("views", ("app.storage", "peewee", "app.simulator")) == {}


def test_the_toolkit_does_not_reach_up_or_down_past_the_core():
    """ui/ is the toolkit under the screens: it imports no view, and goes through the core."""
    assert _offenders("ui", ("app.views", "app.storage", "peewee", "app.simulator",
                             "app.cli")) == {}


def test_the_command_line_goes_through_the_core():
    """(It starts the window, so it may import the views' start-up; never the database.)"""
    assert _offenders("cli", ("app.storage", "peewee")) == {}


def test_the_core_imports_no_front_end_and_no_simulator():
    assert _offenders("core", ("app.cli", "app.ui", "app.views", "app.simulator",
                               "app.portal")) == {}
    assert _offenders("drivers", ("app.simulator", "app.cli")) == {}
    assert _offenders("storage", ("app.simulator", "app.cli")) == {}
