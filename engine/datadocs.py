"""Great Expectations' Data Docs for the per-partition validation results.

Validation writes each partition's result as GX's own ExpectationSuiteValidationResult JSON
(validation/docs/<feature_set>/ds=<ds>/<run_id>.json). Here GX's Data Docs site builder
renders them, with the suites, into <lakehouse>/reports/data_docs/ (index.html), the pages a
GX user knows: one validation page per partition and run, one page per expectation suite.

The results go into an ephemeral GX context's validation results store, keyed by suite,
run (run name = the retrain run id, run time = when the file was written) and batch
(`<feature_set> ds=<ds>`); pages that exist already are not rendered again (GX renders about
a page a second), and the index always is. A lakehouse on an object store is built in a
local temporary folder and copied up.
"""
from __future__ import annotations

import datetime as dt
import json
import logging
import os
import tempfile
from dataclasses import dataclass, field

from engine import catalog
from engine.errors import ReportError

os.environ.setdefault("GX_ANALYTICS_ENABLED", "false")
log = logging.getLogger("retrain")

SITE = "retrain"


@dataclass(frozen=True)
class StoredResult:
    feature_set: str
    ds: dt.date
    run_id: str
    path: str  # the JSON file
    written_at: dt.datetime


@dataclass
class DataDocsSite:
    index: str  # URI of index.html
    pages: dict[tuple[str, dt.date], str] = field(default_factory=dict)  # (feature set, ds) -> latest page URI
    rendered: int = 0  # pages rendered by this build (the others existed)


def stored_results(lake: catalog.Catalog) -> list[StoredResult]:
    """Every stored validation result document, oldest first."""
    import pyarrow.fs as pafs

    filesystem, base = catalog.filesystem(lake.validation_docs)
    infos = filesystem.get_file_info(pafs.FileSelector(base, recursive=True, allow_not_found=True))
    out = []
    for info in infos:
        if info.type != pafs.FileType.File or not info.base_name.endswith(".json"):
            continue
        parts = info.path[len(base):].strip("/").split("/")
        if len(parts) != 3 or not parts[1].startswith("ds="):
            continue  # not <set>/ds=<ds>/<run>.json
        try:
            ds = dt.date.fromisoformat(parts[1][3:])
        except ValueError:
            continue
        written = info.mtime or dt.datetime.fromtimestamp(0, dt.timezone.utc)
        if written.tzinfo is None:
            written = written.replace(tzinfo=dt.timezone.utc)
        out.append(StoredResult(parts[0], ds, parts[2][:-len(".json")], info.path, written))
    return sorted(out, key=lambda r: (r.written_at, r.feature_set, r.ds))


def _read_json(filesystem, path: str) -> dict:
    try:
        with filesystem.open_input_stream(path) as f:
            return json.loads(f.read())
    except (OSError, ValueError) as e:
        raise ReportError(f"validation result {path}: cannot be read as JSON: {e}") from e


def _add_suites(context, cfg, feature_sets: set[str]) -> None:
    from engine.validation.suites import load_suite, suite_path

    for name in sorted(feature_sets):
        path = suite_path(cfg, name)
        if path.exists():
            context.suites.add(load_suite(path).gx_suite)


def run_identifier(run_id: str, written_at):
    """GX's RunIdentifier of a retrain run. Its name is 'run-<run_id>': GX parses a run name as a
    time when it can (page_renderer._determine_page_title), and dateutil reads a bare run id
    such as 20261021-184736-6316ad as a time with a UTC offset of -63:16, which GX then fails
    to compare (ValueError: the page is not rendered); 'run-...' is not read as a time."""
    from great_expectations.core.run_identifier import RunIdentifier

    return RunIdentifier(run_name=f"run-{run_id}", run_time=written_at)


def build_data_docs(cfg, *, out: str | None = None) -> DataDocsSite | None:
    """Render the stored GX validation results (and suites) as a Data Docs site under `out`
    (default <lakehouse>/reports/data_docs). None when no partition was validated yet."""
    import great_expectations as gx
    from great_expectations.core import ExpectationSuiteValidationResult
    from great_expectations.data_context.types.base import ProgressBarsConfig
    from great_expectations.data_context.types.resource_identifiers import (
        ExpectationSuiteIdentifier,
        ValidationResultIdentifier,
    )

    lake = catalog.Catalog.of(cfg)
    results = stored_results(lake)
    if not results:
        return None
    target = out or lake.data_docs
    local = catalog.local_path(target)
    with tempfile.TemporaryDirectory(prefix="retrain-datadocs-") as tmp:
        base = local if local is not None else tmp
        if local is None:  # an object store: start from the pages already there
            _copy(target, tmp, missing_ok=True)
        context = gx.get_context(mode="ephemeral")
        context.variables.progress_bars = ProgressBarsConfig(globally=False)
        context.add_data_docs_site(SITE, {
            "class_name": "SiteBuilder",
            "store_backend": {"class_name": "TupleFilesystemStoreBackend", "base_directory": base},
            "site_index_builder": {"class_name": "DefaultSiteIndexBuilder"},
        })
        filesystem, _ = catalog.filesystem(lake.validation_docs)
        keys: dict[ValidationResultIdentifier, StoredResult] = {}
        for r in results:
            doc = _read_json(filesystem, r.path)
            try:
                result = ExpectationSuiteValidationResult(**doc)
            except TypeError as e:
                raise ReportError(f"validation result {r.path}: not a GX ExpectationSuiteValidationResult: {e}") from e
            suite = doc.get("suite_name") or r.feature_set
            key = ValidationResultIdentifier(ExpectationSuiteIdentifier(suite),
                                             run_identifier(r.run_id, r.written_at),
                                             f"{r.feature_set} ds={r.ds.isoformat()}")
            context.validation_results_store.set(key, result)
            keys[key] = r
        _add_suites(context, cfg, {r.feature_set for r in results})

        def url(key) -> str | None:
            return context.get_docs_sites_urls(resource_identifier=key, site_name=SITE, only_if_exists=True)[0]["site_url"]

        new = [k for k in keys if url(k) is None]
        index_exists = os.path.exists(os.path.join(base, "index.html"))
        if new or not index_exists:
            suites = [ExpectationSuiteIdentifier(s.name) for s in context.suites.all()]
            context.build_data_docs(site_names=[SITE], resource_identifiers=(new + suites) or None)
        pages = {}
        for key, r in keys.items():  # oldest first: the latest run of a partition wins
            page = url(key)
            if page is None:
                raise ReportError(f"Data Docs: GX did not render {r.path} (see the log for GX's error)")
            pages[(r.feature_set, r.ds)] = catalog.local_path(page) or page
        if local is None:
            _copy(tmp, target)
            pages = {k: catalog.join(target, os.path.relpath(v, tmp)) for k, v in pages.items()}
    index = catalog.join(target, "index.html")
    log.info("data docs: %d pages rendered (%d existed): %s", len(new), len(keys) - len(new), index)
    return DataDocsSite(index=index, pages=pages, rendered=len(new))


def _copy(source: str, destination: str, missing_ok: bool = False) -> None:
    import pyarrow.fs as pafs

    src_fs, src = catalog.filesystem(source)
    if missing_ok and src_fs.get_file_info(src).type == pafs.FileType.NotFound:
        return
    dst_fs, dst = catalog.filesystem(destination)
    pafs.copy_files(src, dst, source_filesystem=src_fs, destination_filesystem=dst_fs)
