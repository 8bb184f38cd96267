"""Reading the first sheet of an .xlsx workbook fast, numbers as the file writes them.

A statement of 100,000 rows takes openpyxl's read-only mode about 8 s on the station's PC; this
reader streams the sheet's XML with expat (about a quarter of that) and keeps what openpyxl
would turn into a float: the text of each number cell as stored (``Number``), so a 19-digit
transaction id stored as ``<v>4200000000000000002</v>`` keeps its digits. openpyxl still reads
the rest of the format for us where it is small (which number formats are dates, the workbook's
epoch).

Values: ``str`` for text (shared, inline and formula strings, error codes), ``Number`` (a str:
the stored text) for numbers, ``datetime``/``date``/``time`` for numbers with a date format
and ISO dates, ``bool`` for booleans, ``None`` for an empty cell. Rows come with their row
number; rows the file leaves out are given as empty rows, as openpyxl gives them.
"""

from __future__ import annotations

import datetime as dt
import posixpath
import zipfile
from pathlib import Path
from xml.parsers import expat

from openpyxl.styles.numbers import BUILTIN_FORMATS, is_date_format
from openpyxl.utils.datetime import CALENDAR_MAC_1904, CALENDAR_WINDOWS_1900, from_excel

#: Columns past this are ignored (Excel's own limit is 16,384; a statement has a few dozen).
MAX_COLUMNS = 16_384
#: A row number this far past the last one is refused rather than filled with empty rows.
MAX_ROW_GAP = 1_000_000

_EMPTY: list = []  # shared by every row the file leaves out (never changed)


class Number(str):
    """A number cell's text as the file stores it ("4200000000000000002", "25.5", "4.2E+18")."""


class NotAWorkbook(Exception):
    """The file is not a readable .xlsx workbook (the reason is the message)."""


def _local(name: str) -> str:
    return name.rpartition(":")[2].rpartition("}")[2]


def _parse(data: bytes | zipfile.ZipExtFile, start=None, end=None, text=None) -> None:
    p = expat.ParserCreate()
    p.buffer_text = True
    if start is not None:
        p.StartElementHandler = start
    if end is not None:
        p.EndElementHandler = end
    if text is not None:
        p.CharacterDataHandler = text
    if isinstance(data, bytes):
        p.Parse(data, True)
    else:
        p.ParseFile(data)


def _first_sheet(z: zipfile.ZipFile) -> tuple[str, bool]:
    """(path in the archive of the workbook's first sheet, 1904 epoch)."""
    sheets: list[str] = []
    date1904 = [False]

    def start(name, attrs):
        local = _local(name)
        if local == "sheet":
            rid = next((v for k, v in attrs.items() if _local(k) == "id"), None)
            if rid:
                sheets.append(rid)
        elif local == "workbookPr":
            date1904[0] = attrs.get("date1904", "").lower() in ("1", "true")

    _parse(z.read("xl/workbook.xml"), start)
    targets: dict[str, str] = {}

    def rel(name, attrs):
        if _local(name) == "Relationship" and "Id" in attrs:
            targets[attrs["Id"]] = attrs.get("Target", "")

    _parse(z.read("xl/_rels/workbook.xml.rels"), rel)
    if not sheets or sheets[0] not in targets:
        raise NotAWorkbook("no worksheet")
    target = targets[sheets[0]]
    path = target.lstrip("/") if target.startswith("/") else posixpath.normpath(
        posixpath.join("xl", target))
    return path, date1904[0]


def _shared_strings(z: zipfile.ZipFile) -> list[str]:
    if "xl/sharedStrings.xml" not in z.namelist():
        return []
    out: list[str] = []
    parts: list[str] = []
    state = {"t": False, "phonetic": 0}

    def start(name, _attrs):
        local = _local(name)
        if local == "t":
            state["t"] = state["phonetic"] == 0
        elif local == "rPh":
            state["phonetic"] += 1
        elif local == "si":
            parts.clear()

    def end(name):
        local = _local(name)
        if local == "t":
            state["t"] = False
        elif local == "rPh":
            state["phonetic"] -= 1
        elif local == "si":
            out.append("".join(parts))

    def text(data):
        if state["t"]:
            parts.append(data)

    with z.open("xl/sharedStrings.xml") as fh:
        _parse(fh, start, end, text)
    return out


def _date_styles(z: zipfile.ZipFile) -> set[int]:
    """The indexes of the cell formats (``s``) whose number format shows a date or time."""
    if "xl/styles.xml" not in z.namelist():
        return set()
    custom: dict[int, str] = {}
    xfs: list[int] = []
    state = {"cellXfs": False}

    def start(name, attrs):
        local = _local(name)
        if local == "numFmt":
            try:
                custom[int(attrs.get("numFmtId", ""))] = attrs.get("formatCode", "")
            except ValueError:
                pass
        elif local == "cellXfs":
            state["cellXfs"] = True
        elif local == "xf" and state["cellXfs"]:
            try:
                xfs.append(int(attrs.get("numFmtId", "0")))
            except ValueError:
                xfs.append(0)

    def end(name):
        if _local(name) == "cellXfs":
            state["cellXfs"] = False

    _parse(z.read("xl/styles.xml"), start, end)
    dates = set()
    for index, fmt_id in enumerate(xfs):
        code = custom.get(fmt_id, BUILTIN_FORMATS.get(fmt_id))
        if code and is_date_format(code):
            dates.add(index)
    return dates


_columns: dict[str, int] = {}


def _column(ref: str) -> int:
    """0-based column of a cell reference ("B12" -> 1)."""
    letters = ref.rstrip("0123456789")
    found = _columns.get(letters)
    if found is None:
        n = 0
        for ch in letters.upper():
            if not "A" <= ch <= "Z":
                break
            n = n * 26 + ord(ch) - 64
        found = _columns[letters] = n - 1
    return found


def read_first_sheet(path: Path) -> list[tuple[int, list]]:
    """(row number, values) of every row of the workbook's first sheet, from row 1."""
    try:
        z = zipfile.ZipFile(path)
    except (zipfile.BadZipFile, OSError) as exc:
        raise NotAWorkbook(type(exc).__name__) from None
    with z:
        try:
            sheet, date1904 = _first_sheet(z)
            shared = _shared_strings(z)
            dates = _date_styles(z)
            with z.open(sheet) as fh:
                return _read_sheet(fh, shared, dates,
                                   CALENDAR_MAC_1904 if date1904 else CALENDAR_WINDOWS_1900)
        except KeyError as exc:  # a part the workbook needs is missing
            raise NotAWorkbook(f"missing {exc}") from None
        except expat.ExpatError as exc:
            raise NotAWorkbook(f"XML: {exc}") from None
        except (zipfile.BadZipFile, OSError, EOFError, ValueError, IndexError) as exc:
            raise NotAWorkbook(type(exc).__name__) from None


def _read_sheet(fh, shared: list[str], dates: set[int], epoch: dt.datetime
                ) -> list[tuple[int, list]]:
    """The rows of a worksheet's XML. Its handlers run once per element of a file that may hold
    millions: they are kept to a dictionary look-up and a few comparisons."""
    rows: list[tuple[int, list]] = []
    cells: list = []
    text: list[str] = []
    names: dict[str, str] = {}
    row = 0  # the current row's number, the cell's column, type and style
    col = -1
    kind = "n"
    style = -1
    collect = False  # the characters are the cell's value
    in_is = False  # inside an inline string

    def start(name, attrs):
        nonlocal row, col, kind, style, collect, in_is
        tag = names.get(name)
        if tag is None:
            tag = names[name] = _local(name)
        if tag == "c":
            ref = attrs.get("r")
            col = _column(ref) if ref else col + 1
            kind = attrs.get("t", "n")
            s = attrs.get("s")
            style = int(s) if s else -1
            text.clear()
        elif tag == "v":
            collect = True
        elif tag == "t":
            collect = in_is
        elif tag == "is":
            in_is = True
        elif tag == "row":
            r = attrs.get("r")
            number = int(r) if r else row + 1
            if number <= row or number - row > MAX_ROW_GAP:
                raise ValueError(f"row {number} out of order")
            for missing in range(row + 1, number):
                rows.append((missing, _EMPTY))
            row, col = number, -1
            cells.clear()

    def end(name):
        nonlocal collect, in_is
        tag = names[name]
        if tag == "c":
            if col < 0 or col >= MAX_COLUMNS:
                return
            if not text and kind != "inlineStr":
                value = None
            else:
                raw = "".join(text)
                if kind == "inlineStr" or kind == "str" or kind == "e":
                    value = raw
                elif kind == "s":
                    value = shared[int(raw)]
                elif kind == "n":
                    value = from_excel(float(raw), epoch) if style in dates \
                        else Number(raw.strip())
                elif kind == "b":
                    value = raw.strip() in ("1", "true")
                elif kind == "d":
                    value = _iso_date(raw)
                else:
                    value = raw
            n = len(cells)
            if col == n:
                cells.append(value)
            else:
                if col > n:
                    cells.extend([None] * (col - n + 1))
                cells[col] = value
        elif tag == "v" or tag == "t":
            collect = False
        elif tag == "row":
            rows.append((row, list(cells)))
        elif tag == "is":
            in_is = False

    def chars(data):
        if collect:
            text.append(data)

    _parse(fh, start, end, chars)
    return rows


def _iso_date(raw: str) -> dt.datetime | dt.date | dt.time | str:
    s = raw.strip()
    for parse in (dt.datetime.fromisoformat, dt.date.fromisoformat, dt.time.fromisoformat):
        try:
            return parse(s)
        except ValueError:
            continue
    return s
