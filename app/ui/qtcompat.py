"""Work-arounds for defects of the Qt binding, each detected at run time and applied only
where the defect is present.

* PySide6 6.12's ``SignalInstance.emit`` returns ``True`` without taking a reference to it. Every
  emit from Python (ours, Qt models' ``dataChanged``, pyqtgraph's) then costs ``True`` one
  reference; on Python 3.11, where ``True`` is not immortal, a window that runs for hours
  drives it to zero and the interpreter aborts ("bool_dealloc: deallocating True or False").
  ``install`` detects the leak and wraps ``emit`` to give the reference back.
"""

from __future__ import annotations

import ctypes
import logging
import sys

import PySide6
from PySide6.QtCore import QObject, Signal, SignalInstance

log = logging.getLogger("voltkeeper.ui.qtcompat")

_PROBES = 16
_installed = False


class _Probe(QObject):
    ping = Signal()


def emit_leaks_true() -> bool:
    """True if emitting a signal from Python loses a reference to ``True``."""
    probe = _Probe()
    before = sys.getrefcount(True)
    for _ in range(_PROBES):
        probe.ping.emit()
    return sys.getrefcount(True) <= before - _PROBES // 2


def install() -> bool:
    """Apply the work-arounds this binding needs (once). Returns whether any was needed."""
    global _installed
    if _installed:
        return True
    if not emit_leaks_true():
        return False
    original = SignalInstance.emit
    incref = ctypes.pythonapi.Py_IncRef
    incref.argtypes = [ctypes.py_object]
    incref.restype = None

    def emit(self, *args):
        result = original(self, *args)
        if result is True:  # the reference the binding should have taken
            incref(True)
        return result

    SignalInstance.emit = emit
    _installed = True
    log.info("PySide6 %s loses a reference to True on every emit: compensating",
             PySide6.__version__)
    return True
