"""The fast .xlsx reader: the same cells as openpyxl, numbers as the file stores them, and
workbooks as Excel writes them (shared strings with rich text and phonetic runs, date styles,
the 1904 calendar, rows left out, a namespace prefix)."""

from __future__ import annotations

import datetime as dt
import zipfile

import pytest
from openpyxl import Workbook, load_workbook

from app.core import statements, xlsx


def test_the_same_cells_as_openpyxl(tmp_path):
    wb = Workbook()
    ws = wb.active
    ws.append(["交易号", "金额", "时间", "日期", "标志", None, "备注"])
    ws.append([20261103000002, 25.5, dt.datetime(2026, 11, 3, 12, 0, 5), dt.date(2026, 11, 3),
               True, None, "电费 1-101"])
    ws.append([4.2e18, 0.1 + 0.2, dt.datetime(2026, 1, 1), None, False, 7, "`42"])
    ws.append([])
    ws.append(["=1+1", -3, 1e-7, "", "x" * 300, None, "末尾"])
    ws["B7"] = 12
    path = tmp_path / "mixed.xlsx"
    wb.save(path)
    ours = [(n, [statements._cell_text(v) for v in cells])
            for n, cells in xlsx.read_first_sheet(path)]
    ref = load_workbook(path, read_only=True, data_only=True)
    theirs = [(n, [statements._cell_text(v) for v in row]) for n, row in
              enumerate(ref.worksheets[0].iter_rows(values_only=True), start=1)]
    ref.close()

    def trimmed(rows):
        return [(n, cells[:max((i + 1 for i, c in enumerate(cells) if c), default=0)])
                for n, cells in rows]

    assert trimmed(ours) == trimmed(theirs)


def _xlsx(path, sheet: str, shared: str | None = None, styles: str | None = None,
          date1904: bool = False, prefix: str = ""):
    """A workbook written part by part, as Excel lays it out."""
    ns = "http://schemas.openxmlformats.org/spreadsheetml/2006/main"
    rel = "http://schemas.openxmlformats.org/officeDocument/2006/relationships"
    p = f"{prefix}:" if prefix else ""
    xmlns = f'xmlns{":" + prefix if prefix else ""}="{ns}"'
    workbook = (f'<?xml version="1.0"?><{p}workbook {xmlns} xmlns:r="{rel}">'
                f'<{p}workbookPr date1904="{1 if date1904 else 0}"/><{p}sheets>'
                f'<{p}sheet name="Sheet1" sheetId="1" r:id="rId7"/></{p}sheets></{p}workbook>')
    rels = ('<?xml version="1.0"?><Relationships xmlns="http://schemas.openxmlformats.org/'
            'package/2006/relationships"><Relationship Id="rId7" Type="x" '
            'Target="/xl/worksheets/data.xml"/></Relationships>')
    with zipfile.ZipFile(path, "w") as z:
        z.writestr("[Content_Types].xml", "<Types/>")
        z.writestr("xl/workbook.xml", workbook)
        z.writestr("xl/_rels/workbook.xml.rels", rels)
        z.writestr("xl/worksheets/data.xml", f'<?xml version="1.0"?><{p}worksheet {xmlns}>'
                                             f'<{p}sheetData>{sheet}</{p}sheetData>'
                                             f'</{p}worksheet>')
        if shared is not None:
            z.writestr("xl/sharedStrings.xml", f'<?xml version="1.0"?><sst xmlns="{ns}">'
                                               f'{shared}</sst>')
        if styles is not None:
            z.writestr("xl/styles.xml", f'<?xml version="1.0"?><styleSheet xmlns="{ns}">'
                                        f'{styles}</styleSheet>')
    return path


def test_shared_strings_dates_and_rows_left_out(tmp_path):
    shared = ('<si><t>交易号</t></si>'
              '<si><r><t>电费</t></r><r><rPr><b/></rPr><t xml:space="preserve"> 1-101</t></r>'
              '<rPh sb="0" eb="1"><t>でんき</t></rPh></si>'
              '<si><t>金额</t></si>')
    styles = ('<numFmts count="1"><numFmt numFmtId="164" formatCode="yyyy/mm/dd hh:mm"/>'
              '</numFmts><cellXfs count="3"><xf numFmtId="0"/><xf numFmtId="164"/>'
              '<xf numFmtId="14"/></cellXfs>')
    sheet = ('<row r="2"><c r="A2" t="s"><v>0</v></c><c r="C2" t="s"><v>2</v></c></row>'
             '<row r="5"><c r="A5"><v>4200000000000000002</v></c><c r="B5" t="s"><v>1</v></c>'
             '<c r="C5"><v>12.5</v></c><c r="D5" s="1"><v>46329.5</v></c>'
             '<c r="E5" s="2"><v>46329</v></c><c r="F5" t="b"><v>1</v></c>'
             '<c r="G5" t="inlineStr"><is><t>内联</t></is></c><c r="H5" t="e"><v>#N/A</v></c>'
             '<c r="I5" t="str"><f>A1</f><v>公式</v></c></row>'
             '<row><c><v>4200000123.0</v></c><c t="d"><v>2026-11-03T12:00:00</v></c></row>')
    path = _xlsx(tmp_path / "excel.xlsx", sheet, shared, styles)
    rows = xlsx.read_first_sheet(path)
    assert [n for n, _c in rows] == [1, 2, 3, 4, 5, 6]  # rows 1, 3, 4 left out: empty
    assert rows[1][1] == ["交易号", None, "金额"]
    cells = rows[4][1]
    assert cells[0] == "4200000000000000002" and isinstance(cells[0], xlsx.Number)
    assert cells[1] == "电费 1-101"  # the runs joined, the phonetic reading left out
    assert cells[2] == "12.5"
    assert cells[3] == dt.datetime(2026, 11, 3, 12, 0)
    assert cells[4] == dt.datetime(2026, 11, 3)
    assert cells[5:] == [True, "内联", "#N/A", "公式"]
    assert [statements._cell_text(c) for c in rows[5][1]] == ["4200000123",
                                                              "2026-11-03 12:00:00"]


def test_a_namespace_prefix_and_the_1904_calendar(tmp_path):
    styles = '<cellXfs count="2"><xf numFmtId="0"/><xf numFmtId="14"/></cellXfs>'
    sheet = ('<x:row r="1"><x:c r="B1" s="1"><x:v>1</x:v></x:c>'
             '<x:c r="C1" t="inlineStr"><x:is><x:t>ok</x:t></x:is></x:c></x:row>')
    path = _xlsx(tmp_path / "mac.xlsx", sheet, styles=styles, date1904=True, prefix="x")
    assert xlsx.read_first_sheet(path) == [(1, [None, dt.datetime(1904, 1, 2), "ok"])]


@pytest.mark.parametrize("content", [b"not a zip", b"PK\x03\x04garbage"])
def test_not_a_workbook(tmp_path, content):
    path = tmp_path / "x.xlsx"
    path.write_bytes(content)
    with pytest.raises(xlsx.NotAWorkbook):
        xlsx.read_first_sheet(path)


def test_a_workbook_without_its_sheet(tmp_path):
    path = tmp_path / "x.xlsx"
    with zipfile.ZipFile(path, "w") as z:
        z.writestr("xl/workbook.xml", "<workbook/>")
    with pytest.raises(xlsx.NotAWorkbook):
        xlsx.read_first_sheet(path)


def test_broken_xml_in_the_sheet(tmp_path):
    path = _xlsx(tmp_path / "x.xlsx", '<row r="1"><c><v>1</v></row>')
    with pytest.raises(xlsx.NotAWorkbook, match="XML"):
        xlsx.read_first_sheet(path)
