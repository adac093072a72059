"""The HTML report: one self-contained page a person opens at 7 am.

write_report(spark, cfg, out=None, start=None, end=None) reads the lakehouse (runs,
validation results/profiles/partitions, registry), renders GX's Data Docs for the
validation results (engine.datadocs) and writes ONE HTML file with four sections:
  Runs                 timeline of recent nights and their stages; golden signals per night
  Validation heatmap   days × columns per feature table (valid / warned / quarantined /
                       released; learned-check scores; alert text on hover; click -> Data Docs)
  Column history       profile statistics over time of every column that alerted, flagged days
                       marked, the learned checks' expected band
  Models               metric per night (train, eval, gate) per segment, SLO line, promotions,
                       rejections and failures; the champions' lineage
Charts are plotly (its JavaScript inlined once), so the file opens offline. Default output:
<lakehouse>/reports/latest.html plus the dated copy reports/report-<end>.html.
"""
from __future__ import annotations

import datetime as dt
import logging
import os
import posixpath
import uuid

from engine import catalog
from engine.errors import ReportError
from engine.report_html import data as report_data
from engine.report_html.page import render

log = logging.getLogger("retrain")

__all__ = ["write_report"]


def _link(target: str, page: str) -> str:
    """A link from the report at `page` to `target`: relative when both are local files."""
    t, p = catalog.local_path(target), catalog.local_path(page)
    if t is not None and p is not None:
        rel = os.path.relpath(t, os.path.dirname(os.path.abspath(p)))
        return rel.replace(os.sep, "/")
    if t is not None:
        return "file://" + os.path.abspath(t)
    base = posixpath.dirname(page)
    return target[len(base) + 1:] if target.startswith(base + "/") else target


def _write(uri: str, text: str) -> None:
    """Write the whole file or nothing: a temporary file next to it, then rename."""
    filesystem, path = catalog.filesystem(uri)
    parent = path.rsplit("/", 1)[0]
    tmp = f"{path}.tmp-{uuid.uuid4().hex[:8]}"
    try:
        filesystem.create_dir(parent, recursive=True)
        with filesystem.open_output_stream(tmp) as f:
            f.write(text.encode("utf-8"))
        filesystem.move(tmp, path)
    except OSError as e:
        raise ReportError(f"report {uri}: cannot be written: {e}") from e


def write_report(spark, cfg, *, out: str | None = None, start: dt.date | None = None, end: dt.date | None = None,
                 columns: tuple[str, ...] = (), data_docs: bool = True) -> str:
    """Write the report for [start, end] (default: the 28 days ending at the latest logical
    date) and return its path. `out` defaults to <lakehouse>/reports/latest.html, with a dated
    copy report-<end>.html beside it. `columns` adds column histories ('table:column' or a
    column name) to those that alerted. `data_docs` also (re)builds GX's Data Docs site."""
    if start is not None and end is not None and end < start:
        raise ReportError(f"report: --end {end} is before --start {start}")
    lake = catalog.Catalog.of(cfg)
    data = report_data.load(spark, cfg, start=start, end=end)
    page = out or lake.report()
    docs_index, links = None, {}
    if data_docs:
        from engine.datadocs import build_data_docs

        site = build_data_docs(cfg)
        if site is not None:
            docs_index = _link(site.index, page)
            links = {k: _link(v, page) for k, v in site.pages.items()}
    text = render(data, docs_index=docs_index, doc_links=links, columns=tuple(columns))
    _write(page, text)
    if out is None:
        _write(lake.report(data.end), text)
    log.info("report: %s (%.1f MB)", page, len(text) / 1e6)
    return page
