"""Reports as tables for a spreadsheet: CSV, and XLSX (XlsxWriter).

Stored strings are data a visitor's browser sent (paths, event names, properties): a cell
that begins with ``=``, ``+``, ``-``, ``@``, a tab or a carriage return would be read as a
formula by a spreadsheet, so CSV writes it with a leading ``'``; XLSX writes every string
as a string, which no spreadsheet evaluates.
"""
from __future__ import annotations

import csv
import io
from typing import Any

import xlsxwriter

FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")
Table = tuple[list[str], list[list[Any]]]


def neutralized(value: Any) -> Any:
    """A cell as CSV may carry it: strings that a spreadsheet would evaluate are quoted."""
    if isinstance(value, str) and value.startswith(FORMULA_STARTS):
        return "'" + value
    return value


def report_table(report: dict[str, Any]) -> Table:
    """A report's buckets: start, final, each metric (and the comparison's, if any)."""
    metrics: list[str] = report["metrics"]
    comparison = report.get("comparison")
    header = ["start", "final", *metrics]
    if comparison:
        header += ["previous_start", *(f"previous_{m}" for m in metrics)]
    rows = []
    for i, b in enumerate(report["buckets"]):
        row = [b["start"], b["final"], *(b.get(m) for m in metrics)]
        if comparison:
            p = comparison["buckets"][i] if i < len(comparison["buckets"]) else {}
            row += [p.get("start"), *(p.get(m) for m in metrics)]
        rows.append(row)
    return header, rows


def breakdown_table(breakdown: dict[str, Any]) -> Table:
    """A breakdown's rows, then its "(other)" row."""
    metrics: list[str] = breakdown["metrics"]
    rows = [[r["value"], *(r.get(m) for m in metrics)] for r in breakdown["rows"]]
    if breakdown.get("other"):
        rows.append([breakdown["other"]["value"], *(breakdown["other"].get(m) for m in metrics)])
    return [breakdown["dimension"], *metrics], rows


def to_csv(table: Table) -> bytes:
    header, rows = table
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(header)
    for row in rows:
        writer.writerow(["" if v is None else neutralized(v) for v in row])
    return out.getvalue().encode("utf-8")


def to_xlsx(table: Table, sheet: str) -> bytes:
    header, rows = table
    out = io.BytesIO()
    book = xlsxwriter.Workbook(out, {"in_memory": True, "strings_to_formulas": False, "strings_to_urls": False,
                                     "strings_to_numbers": False})
    ws = book.add_worksheet(sheet[:31])
    bold = book.add_format({"bold": True})
    for col, name in enumerate(header):
        ws.write_string(0, col, name, bold)
    for r, row in enumerate(rows, start=1):
        for col, value in enumerate(row):
            _cell(ws, r, col, value)
    ws.freeze_panes(1, 0)
    book.close()
    return out.getvalue()


def _cell(ws: Any, row: int, col: int, value: Any) -> None:
    if value is None:
        return
    if isinstance(value, bool):
        ws.write_boolean(row, col, value)
    elif isinstance(value, (int, float)):
        ws.write_number(row, col, value)
    else:
        ws.write_string(row, col, str(value))


MEDIA_TYPES = {"csv": "text/csv; charset=utf-8",
               "xlsx": "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"}


def render(table: Table, fmt: str, sheet: str) -> bytes:
    return to_csv(table) if fmt == "csv" else to_xlsx(table, sheet)
