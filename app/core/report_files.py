"""Making a report's files: the operation the command line, the window and the reading service
call. It checks the role (finance or administrator), computes the figures (checked against the
ledger), writes the PDF and/or the workbook, and appends one ``report`` entry to the audit log
naming the files and the totals.

The scheduled monthly report: on the 1st the reading service makes the past month's report
(PDF and Excel in a ``reports`` folder beside the database) and keeps a record of it (schema 8:
month, kind, files, totals); ``monthly_due`` says whether it is made yet.
"""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass
from pathlib import Path

from app.core import cash_reports
from app.core import finance_reports as fr
from app.core.audit import act, record
from app.core.operators import Operator, Permission, require
from app.core.progress import Progress, quiet
from app.core.report_tables import (
    Document,
    arrears_document,
    journal_document,
    monthly_document,
    shift_document,
)
from app.core.station import release_connection
from app.errors import Cancelled, UserFacingError
from app.i18n import _
from app.storage import reports as store

log = logging.getLogger("voltkeeper.reports")

KINDS = ("monthly", "journal", "shift", "arrears")
#: Who the reading service's reports are made by (in the record and the audit log).
SCHEDULER = "scheduler"


@dataclass
class Made:
    kind: str
    document: Document
    paths: list[Path]
    totals: dict


def build(kind: str, period: fr.Period | None, *, building: str | None = None,
          cashier: str | None = None, made_by: str = "", at: float | None = None,
          progress: Progress | None = None) -> tuple[Document, dict]:
    """The document and its totals (no role check: ``make`` does it)."""
    if kind == "monthly":
        if period is None:
            raise UserFacingError(_("the monthly report needs a period"))
        rep = fr.compute_monthly(period, building, progress, made_by=made_by)
        return monthly_document(rep), rep.totals_json()
    if kind == "journal":
        if period is None:
            raise UserFacingError(_("the journal needs a period"))
        j = cash_reports.compute_journal(period, building, made_by=made_by)
        return journal_document(j), {"by_method": j.by_method, "total": j.total,
                                     "rows": len(j.lines)}
    if kind == "shift":
        if period is None or not cashier:
            raise UserFacingError(_("a shift settlement needs a period and a cashier"))
        s = cash_reports.compute_shift(period, cashier, made_by=made_by)
        return shift_document(s), {"recharges": s.recharges, "refunds": s.refunds,
                                   "first_receipt": s.first_receipt,
                                   "last_receipt": s.last_receipt, "gaps": len(s.gaps)}
    if kind == "arrears":
        when = period.end if period is not None else (at if at is not None else time.time())
        a = cash_reports.compute_arrears(when, building, period, made_by=made_by)
        return arrears_document(a), {"rooms": len(a.lines), "total": a.total}
    raise UserFacingError(_("unknown report {kind!r} (use: {known})").format(
        kind=kind, known=", ".join(KINDS)))


def _write(doc: Document, pdf: Path | None, xlsx: Path | None, progress: Progress
           ) -> list[Path]:
    # the writers' libraries load only when a report is written (the service imports this)
    from app.core.report_pdf import write_pdf
    from app.core.report_xlsx import write_xlsx

    paths = []
    if pdf is not None:
        paths.append(write_pdf(doc, pdf, progress))
    if xlsx is not None:
        paths.append(write_xlsx(doc, xlsx, progress))
    return paths


def make(operator: Operator, kind: str, period: fr.Period | None, *,
         building: str | None = None, cashier: str | None = None, pdf: Path | None = None,
         xlsx: Path | None = None, progress: Progress | None = None) -> Made:
    """Compute a report and write its files, audited (the files are written before the audit
    entry; a refused or cancelled report writes nothing)."""
    progress = progress or quiet()
    require(operator, Permission.REPORTS)
    doc, totals = build(kind, period, building=building, cashier=cashier,
                        made_by=operator.name, progress=progress)
    paths = _write(doc, pdf, xlsx, progress)
    target = " ".join(x for x in (kind, period.slug if period else "", building or "",
                                  cashier or "") if x)
    with act(operator, Permission.REPORTS, "report", target=target) as a:
        a.after = {"files": [str(p) for p in paths], "totals": totals}
    return Made(kind, doc, paths, totals)


# -- the scheduled monthly report --------------------------------------------------------------
def reports_folder(db_path: Path) -> Path:
    return Path(db_path).resolve().parent / "reports"


def monthly_due(now: float | None = None) -> fr.Period | None:
    """The past month, when its scheduled report is not made yet (from the 1st, after
    ``DUE_AFTER_S``: the month's last intervals are billed by then) and the station had an
    account in it."""
    now = time.time() if now is None else now
    period = fr.previous_month(now - DUE_AFTER_S)
    assert period.month is not None
    if store.stored_reports("monthly", period.month):
        return None
    if not store.any_account_opened_before(period.end):
        return None
    return period


#: How long after midnight on the 1st the past month's report is made.
DUE_AFTER_S = 30 * 60


class ScheduledReports:
    """The reading service's part: ``check`` (from its maintenance loop) starts the past
    month's report in its own thread when it is due; ``stop`` cancels it."""

    RETRY_AFTER_S = 3600.0

    def __init__(self) -> None:
        self._thread: threading.Thread | None = None
        self._progress = Progress()
        self._retry_at = 0.0

    def check(self, db_path: Path | None) -> None:
        if db_path is None or time.monotonic() < self._retry_at or (
                self._thread is not None and self._thread.is_alive()):
            return
        try:
            period = monthly_due()
        except Exception:
            log.exception("could not check whether the monthly report is due")
            return
        if period is None:
            return
        self._progress = Progress()
        self._thread = threading.Thread(target=self._run, args=(db_path, period),
                                        name="monthly-report", daemon=True)
        self._thread.start()

    def _run(self, db_path: Path, period: fr.Period) -> None:
        try:
            make_scheduled_monthly(db_path, period, self._progress)
        except Cancelled:
            log.info("monthly report cancelled: the reading service stops")
        except Exception:
            log.exception("the monthly report for %s failed", period.month)
            self._retry_at = time.monotonic() + self.RETRY_AFTER_S
        finally:
            release_connection()

    def stop(self) -> None:
        self._progress.cancel()
        if self._thread is not None:
            self._thread.join(timeout=10)
            self._thread = None


def make_scheduled_monthly(db_path: Path, period: fr.Period,
                           progress: Progress | None = None) -> store.StoredReport:
    """Make the month's report as the scheduler and record it (the files first, then the
    record and the audit entry)."""
    progress = progress or quiet()
    assert period.month is not None
    folder = reports_folder(db_path)
    doc, totals = build("monthly", period, made_by=SCHEDULER, progress=progress)
    base = folder / f"monthly-{period.month}"
    paths = _write(doc, base.with_suffix(".pdf"), base.with_suffix(".xlsx"), progress)
    now = time.time()
    from app.storage.db import write_transaction

    with write_transaction():
        rid = store.store_report(period.month, "monthly", [str(p) for p in paths], totals, now,
                                 SCHEDULER)
        record(SCHEDULER, "report", target=f"monthly {period.month}",
               after={"files": [str(p) for p in paths], "record": rid})
    log.info("monthly report for %s made: %s", period.month, ", ".join(map(str, paths)))
    return store.stored_reports("monthly", period.month)[-1]


def regenerate_matches(month: str) -> bool:
    """Whether the month's figures computed again equal those of its stored report."""
    kept = store.stored_reports("monthly", month)
    if not kept:
        raise UserFacingError(_("no stored report for {month}").format(month=month))
    _doc, totals = build("monthly", fr.month_period(month))
    return totals == kept[0].totals
