"""The layers hold: core, drivers and storage never import Qt; drivers and storage never import
core. Checked on the source, so a lazy import inside a function is caught too."""

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
