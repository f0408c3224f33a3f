"""Exports of any report or breakdown as CSV or XLSX, for analysts (the same parameters as
the JSON routes, and ``format``)."""
from __future__ import annotations

from typing import Any, Literal

from flask import Blueprint, Response, request
from pydantic import Field

from serving_layer import exports
from serving_layer.access import Access
from serving_layer.api import API_PREFIX, endpoint
from serving_layer.blueprints.reports import BreakdownQuery, ReportQuery, breakdown_answer, report_answer

bp = Blueprint("exports", __name__, url_prefix=API_PREFIX)
Format = Literal["csv", "xlsx"]


class ReportExportQuery(ReportQuery):
    format: Format = Field("csv", description="csv, or xlsx (a spreadsheet)")


class BreakdownExportQuery(BreakdownQuery):
    format: Format = Field("csv", description="csv, or xlsx (a spreadsheet)")


def _file(answer: dict[str, Any], table: exports.Table, fmt: str, what: str) -> Response:
    name = f"{answer['site']}-{what}-{answer['from'][:10]}-{answer['to'][:10]}.{fmt}"
    return Response(exports.render(table, fmt, what), mimetype=exports.MEDIA_TYPES[fmt],
                    headers={"Content-Disposition": f'attachment; filename="{name}"'})


@endpoint(bp, "GET", "/sites/<site>/export/report", Access.SITE_ANALYST, query=ReportExportQuery, tags=["exports"])
def export_report(site: str) -> Response:
    """A report's buckets as a CSV or XLSX file (analysts)."""
    q: ReportExportQuery = request.context.query  # type: ignore[attr-defined]
    answer = report_answer(site, q)[0].body
    return _file(answer, exports.report_table(answer), q.format, "report")


@endpoint(bp, "GET", "/sites/<site>/export/breakdown", Access.SITE_ANALYST, query=BreakdownExportQuery,
          tags=["exports"])
def export_breakdown(site: str) -> Response:
    """A breakdown's rows as a CSV or XLSX file (analysts)."""
    q: BreakdownExportQuery = request.context.query  # type: ignore[attr-defined]
    answer = breakdown_answer(site, q)[0].body
    return _file(answer, exports.breakdown_table(answer), q.format, answer["dimension"])
