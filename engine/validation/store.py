"""The validation tables and docs (all small: one row per partition × expectation / column).

validation/results     partitioned by ds; one row per run, table, ds, expectation
validation/profiles    partitioned by ds; one row per run, table, ds, column
validation/partitions  one row per table and ds: the latest status, its reasons, releases
validation/docs/<feature_set>/ds=<date>/<run_id>.json   GX ExpectationSuiteValidationResult
"""
from __future__ import annotations

import datetime as dt
import hashlib
import json
from typing import Any

import pyarrow as pa

from engine import catalog, tables
from engine.observability import ValidationFailure
from engine.validation.evaluate import PROFILE_QUANTILES, CheckOutcome, ColumnProfile
from engine.validation.gx_adapter import jsonable
from engine.validation.suites import Check, Suite

RESULTS_SCHEMA = catalog.VALIDATION_RESULTS.schema
PROFILES_SCHEMA = catalog.VALIDATION_PROFILES.schema
PARTITIONS_SCHEMA = catalog.VALIDATION_PARTITIONS.schema

_QUANTILE_COLUMNS = {0.05: "p05", 0.25: "p25", 0.5: "p50", 0.75: "p75", 0.95: "p95"}
assert set(_QUANTILE_COLUMNS) == set(PROFILE_QUANTILES)


def result_rows(run_id: str, table: str, ds: dt.date, checks: list[Check], outcomes: list[CheckOutcome],
                messages: dict[int, str]) -> list[dict[str, Any]]:
    return [{
        "run_id": run_id, "table": table, "expectation_index": c.index, "expectation_type": c.type,
        "column": c.column, "kwargs": c.kwargs_json, "success": o.success,
        "observed_value": json.dumps(jsonable(o.observed_value)),
        "severity": c.severity, "unexpected_percent": o.unexpected_percent,
        "message": messages.get(c.index), "evaluated_by": "engine" if o.engine == "native" else "gx", "ds": ds,
    } for c, o in zip(checks, outcomes)]


def profile_rows(run_id: str, table: str, ds: dt.date, profiles: list[ColumnProfile]) -> list[dict[str, Any]]:
    rows = []
    for p in profiles:
        row = {"run_id": run_id, "table": table, "column": p.column, "dtype": p.dtype, "row_count": p.row_count,
               "null_fraction": p.null_fraction, "distinct_count": p.distinct_count, "min": p.min, "max": p.max,
               "mean": p.mean, "stddev": p.stddev, "top_values": json.dumps(p.top_values), "ds": ds}
        for q, name in _QUANTILE_COLUMNS.items():
            row[name] = p.quantiles.get(q)
        rows.append(row)
    return rows


def reasons_json(failures: list[ValidationFailure]) -> str:
    return json.dumps([{"expectation": f.expectation, "column": f.column, "severity": f.severity,
                        "message": f.message} for f in failures])


def reasons_from_json(table: str, ds: dt.date, text: str | None) -> list[ValidationFailure]:
    return [ValidationFailure(table=table, ds=ds, column=r.get("column"), expectation=r.get("expectation", ""),
                              severity=r.get("severity", "block"), message=r.get("message", ""))
            for r in json.loads(text or "[]")]


def write_results(spark, cfg, rows: list[dict[str, Any]]) -> None:
    if rows:
        tables.write_rows(spark, catalog.Catalog.of(cfg).validation_results, pa.Table.from_pylist(rows, schema=RESULTS_SCHEMA),
                          mode="append", partition_by=["ds"])


def write_profiles(spark, cfg, rows: list[dict[str, Any]]) -> None:
    if rows:
        tables.write_rows(spark, catalog.Catalog.of(cfg).validation_profiles, pa.Table.from_pylist(rows, schema=PROFILES_SCHEMA),
                          mode="append", partition_by=["ds"])


def write_summaries(spark, cfg, rows: list[dict[str, Any]]) -> None:
    if rows:
        tables.write_rows(spark, catalog.Catalog.of(cfg).validation_summaries,
                          pa.Table.from_pylist(rows, schema=catalog.VALIDATION_SUMMARIES.schema),
                          mode="append", partition_by=["ds"])


def read_summaries(spark, cfg, table: str, since: dt.date) -> list[dict[str, Any]]:
    """The partition summaries of one feature table from `since` on (every run's)."""
    import pyarrow.compute as pc

    rows = tables.read_rows(catalog.Catalog.of(cfg).validation_summaries, spark=spark)
    if rows is None:
        return []
    keep = pc.and_(pc.equal(rows["table"], table), pc.greater_equal(rows["ds"], pa.scalar(since, pa.date32())))
    return rows.filter(keep).to_pylist()


def upsert_statuses(spark, cfg, rows: list[dict[str, Any]]) -> None:
    if rows:
        tables.upsert_rows(spark, catalog.Catalog.of(cfg).validation_partitions, pa.Table.from_pylist(rows, schema=PARTITIONS_SCHEMA),
                           keys=["table", "ds"])


def read_statuses(spark, cfg) -> list[dict[str, Any]]:
    rows = tables.read_rows(catalog.Catalog.of(cfg).validation_partitions, spark=spark)
    return [] if rows is None else rows.to_pylist()


def partition_contents(path: str, version: int, spark=None) -> dict[dt.date, str]:
    """A content id per ds partition of a Delta table at `version`: a hash of its data files'
    names (from the log; no data read). Any rewrite of a partition writes new files, so it
    changes the id; other partitions' ids stay."""
    files = tables.partition_files(path, version, "ds", spark=spark)
    return {d: hashlib.sha256("\n".join(sorted(names)).encode()).hexdigest()[:32] for d, names in files.items()}


def docs_path(cfg, feature_set: str, ds: dt.date, run_id: str) -> str:
    return catalog.Catalog.of(cfg).validation_doc(feature_set, ds, run_id)


def validation_document(suite: Suite, run_id: str, table: str, ds: dt.date,
                        outcomes: list[CheckOutcome]) -> dict[str, Any]:
    """The partition's result as GX's ExpectationSuiteValidationResult (its JSON form): the
    suite's expectations (`outcomes` aligned with `suite.checks`; the engine's own checks,
    such as entity keys and learned checks, are in validation/results, not in GX's docs)."""
    import great_expectations as gx
    from great_expectations.core import ExpectationSuiteValidationResult, ExpectationValidationResult

    outcomes = outcomes[:len(suite.checks)]
    results = []
    for check, o in zip(suite.checks, outcomes):
        results.append(ExpectationValidationResult(
            success=o.success,
            expectation_config=check.expectation.configuration,
            result=o.result,
            meta={"evaluated_by": "engine" if o.engine == "native" else "gx"},
            exception_info={"raised_exception": o.exception is not None, "exception_message": o.exception,
                            "exception_traceback": None},
        ))
    n_ok = sum(1 for o in outcomes if o.success)
    statistics = {
        "evaluated_expectations": len(outcomes),
        "successful_expectations": n_ok,
        "unsuccessful_expectations": len(outcomes) - n_ok,
        "success_percent": (100.0 * n_ok / len(outcomes)) if outcomes else None,
    }
    doc = ExpectationSuiteValidationResult(
        success=all(o.success for o in outcomes), results=results, suite_name=suite.name,
        statistics=statistics,
        meta={"great_expectations_version": gx.__version__, "run_id": run_id, "table": table,
              "ds": ds.isoformat(), "engine": "retrain"},
    )
    return jsonable(doc.to_json_dict())


def write_document(path: str, document: dict[str, Any]) -> None:
    data = json.dumps(document, indent=2, default=str).encode()
    filesystem, where = catalog.filesystem(path)
    filesystem.create_dir(where.rsplit("/", 1)[0], recursive=True)
    with filesystem.open_output_stream(where) as f:
        f.write(data)
