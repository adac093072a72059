"""The lakehouse catalog: every table and file the engine reads or writes, in one place.

The layout under the lakehouse root is a public interface (users and tools read it):

    table                    partitioned by   one row per
    raw/<source>             ds               source record (demo data)
    features/<feature_set>   ds               entity and ds
    validation/results       ds               run, table, ds, expectation
    validation/profiles      ds               run, table, ds, column
    validation/summaries     ds               run, table, ds, column, statistic
    validation/partitions    -                table, ds (latest status + reasons)
    training_sets            model_id         training row (segment, split, ds)
    registry                 -                model_id, segment, version
    runs                     -                run, stage

    files: artifacts/<model_id>/<segment>/<version>/, validation/docs/<set>/ds=<ds>/<run>.json,
    alerts.jsonl (validation.alerts_file), _metrics/retrain.prom (metrics.textfile),
    reports/ (latest.html, report-<day>.html, data_docs/), _lock.json

Readers and writers ask a `Catalog` for paths; nothing else builds a lakehouse path. The URI
helpers (`local_path`, `is_local`, `join`, `filesystem`) are the only place that knows how a
`file://` URI maps to a local path.
"""
from __future__ import annotations

import datetime as dt
import posixpath
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING
from urllib.parse import quote

import pyarrow as pa

if TYPE_CHECKING:  # pragma: no cover
    from engine.config import Config

# --------------------------------------------------------------------------- URIs


def is_local(uri: str) -> bool:
    """A path on this machine's filesystem (a plain path or file://)."""
    return local_path(uri) is not None


def local_path(uri: str) -> str | None:
    """The local filesystem path of `uri`, or None for an object store / remote URI."""
    if uri.startswith("file://"):
        return uri[len("file://"):]
    if "://" in uri or uri.startswith("dbfs:"):
        return None
    return uri


def join(uri: str, *parts: str) -> str:
    """`uri` with path parts appended by '/' (never os.path: URIs keep their scheme)."""
    out = uri.rstrip("/")
    for part in parts:
        out += "/" + part.strip("/")
    return out


# Spark reaches S3 through Hadoop's s3a:// (s3n:// on old clusters); delta-rs and pyarrow spell
# the same object s3://. The lakehouse root keeps the scheme Spark needs.
_HADOOP_SCHEMES = {"s3a://": "s3://", "s3n://": "s3://"}


def native(uri: str) -> str:
    """`uri` as delta-rs and pyarrow spell it (s3a://bucket/x -> s3://bucket/x)."""
    for hadoop, plain in _HADOOP_SCHEMES.items():
        if uri.startswith(hadoop):
            return plain + uri[len(hadoop):]
    return uri


def filesystem(uri: str):
    """(pyarrow FileSystem, path within it) for a local path or any URI pyarrow supports.

    S3 takes its endpoint from AWS_ENDPOINT_URL_S3 or AWS_ENDPOINT_URL (as delta-rs and the
    AWS SDKs do; pyarrow itself ignores them) and its region from AWS_REGION or
    AWS_DEFAULT_REGION; keys come from the standard AWS chain (AWS_ACCESS_KEY_ID, ...)."""
    import os
    from urllib.parse import urlsplit

    import pyarrow.fs as pafs

    local = local_path(uri)
    if local is not None:
        return pafs.LocalFileSystem(), local
    uri = native(uri)
    endpoint = os.environ.get("AWS_ENDPOINT_URL_S3") or os.environ.get("AWS_ENDPOINT_URL")
    if uri.startswith("s3://") and endpoint:
        parts = urlsplit(endpoint if "://" in endpoint else f"https://{endpoint}")
        region = os.environ.get("AWS_REGION") or os.environ.get("AWS_DEFAULT_REGION")
        fs = pafs.S3FileSystem(endpoint_override=parts.netloc, scheme=parts.scheme, region=region)
        return fs, uri[len("s3://"):].rstrip("/")
    return pafs.FileSystem.from_uri(uri)


def resolve(path: str, base: Path) -> str:
    """A configured path: URIs and absolute paths as given, relative ones against `base`."""
    if "://" in path or path.startswith("dbfs:") or Path(path).is_absolute():
        return path
    return str((base / path).resolve())


def segment_folder(segment: str) -> str:
    """A segment value as one safe folder name: '/', '..' and '' never leave the model's
    folder: percent-encoded, with '.' and '..' as %2E and %2E%2E (quote() leaves dots alone,
    so no other value maps there) and '' as %empty (not a valid escape, so unique)."""
    if segment == "":
        return "%empty"
    encoded = quote(segment, safe="")
    return encoded.replace(".", "%2E") if encoded in (".", "..") else encoded


# --------------------------------------------------------------------------- tables


@dataclass(frozen=True)
class TableSpec:
    name: str  # path under the lakehouse root
    partition_by: tuple[str, ...]
    one_row_per: str
    keys: tuple[str, ...] = ()  # the row key (upserts)
    schema: pa.Schema | None = None  # written on the driver with exactly this schema; None: data-defined


_TS = pa.timestamp("us", tz="UTC")


def _per_partition(*fields: tuple[str, pa.DataType]) -> pa.Schema:
    """Rows a validation run writes about one partition of a feature table."""
    return pa.schema([("run_id", pa.string()), ("table", pa.string()), *fields, ("ds", pa.date32())])


RUNS = TableSpec("runs", (), "run, stage", ("run_id", "stage"), pa.schema([
    ("run_id", pa.string()),
    ("logical_date", pa.date32()),
    ("stage", pa.string()),
    ("status", pa.string()),  # success | failed | skipped | blocked
    ("started_at", _TS),
    ("ended_at", _TS),
    ("rows_in", pa.int64()),
    ("rows_out", pa.int64()),
    ("detail", pa.string()),
    ("error", pa.string()),
    ("seconds", pa.float64()),  # wall time of the stage (of the whole run for stage 'run')
    # Spark jobs the stage started (its job group; the run row: every job of the run, between
    # stages too), so regressions show
    ("spark_jobs", pa.int64()),
]))

VALIDATION_RESULTS = TableSpec("validation/results", ("ds",), "run, table, ds, expectation", (), _per_partition(
    ("expectation_index", pa.int32()),
    ("expectation_type", pa.string()),
    ("column", pa.string()),
    ("kwargs", pa.string()),  # JSON, as written in the suite
    ("success", pa.bool_()),
    ("observed_value", pa.string()),  # JSON: GX's observed_value (map types: their counts)
    ("severity", pa.string()),  # block | warn
    ("unexpected_percent", pa.float64()),
    ("message", pa.string()),  # null when the expectation succeeded
    ("evaluated_by", pa.string()),  # engine (aggregation) | gx (GX itself on the partition)
))

VALIDATION_PROFILES = TableSpec("validation/profiles", ("ds",), "run, table, ds, column", (), _per_partition(
    ("column", pa.string()),
    ("dtype", pa.string()),
    ("row_count", pa.int64()),
    ("null_fraction", pa.float64()),
    ("distinct_count", pa.int64()),  # approximate (HyperLogLog++)
    ("min", pa.string()),
    ("max", pa.string()),
    ("mean", pa.float64()),
    ("stddev", pa.float64()),
    ("p05", pa.float64()),
    ("p25", pa.float64()),
    ("p50", pa.float64()),
    ("p75", pa.float64()),
    ("p95", pa.float64()),
    ("top_values", pa.string()),  # JSON [{value, count}], approximate
))

VALIDATION_PARTITIONS = TableSpec("validation/partitions", (), "table, ds", ("table", "ds"), pa.schema([
    ("table", pa.string()),
    ("ds", pa.date32()),
    ("status", pa.string()),  # valid | quarantined
    ("reasons", pa.string()),  # JSON [{expectation, column, severity, message}]
    ("run_id", pa.string()),
    ("updated_at", _TS),
    ("released_by", pa.string()),
    ("release_reason", pa.string()),
    # What the verdict judged: the feature table's version and the partition's content id
    # (its data files); a verdict whose content_id is not the partition's current one is stale.
    ("table_version", pa.int64()),
    ("content_id", pa.string()),
]))

# Partition summaries for learned checks: long format, so a new statistic is a new row, not a
# schema change. column '*' holds table-level statistics (row count, duplicate keys, ...).
VALIDATION_SUMMARIES = TableSpec("validation/summaries", ("ds",), "run, table, ds, column, statistic", (), _per_partition(
    ("column", pa.string()),
    ("statistic", pa.string()),
    ("value", pa.float64()),
    ("detail", pa.string()),  # JSON where a number is not enough (e.g. value counts), else null
))

TRAINING_SETS = TableSpec("training_sets", ("model_id",), "training row (segment, split, ds)")

REGISTRY = TableSpec("registry", (), "model_id, segment, version", ("model_id", "segment", "version"), pa.schema([
    ("model_id", pa.string()), ("segment", pa.string()), ("version", pa.string()),
    ("run_id", pa.string()), ("logical_date", pa.date32()),
    ("status", pa.string()), ("reason", pa.string()),
    ("estimator", pa.string()), ("task", pa.string()), ("metric", pa.string()),
    ("metric_value", pa.float64()),  # on the latest eval window (model fit on the train split)
    ("train_value", pa.float64()),  # on the train split
    ("champion_version", pa.string()),  # the champion it was compared with
    ("champion_value", pa.float64()),  # that champion's metric on the compared eval rows
    ("gate_value", pa.float64()),  # this model's metric on the same rows
    ("gate_rows", pa.int64()),  # how many eval rows were compared (those the champion did not train on)
    ("train_metrics", pa.string()), ("eval_metrics", pa.string()), ("params", pa.string()),  # JSON
    ("artifact_uri", pa.string()), ("sha256", pa.string()),
    ("training_sets_path", pa.string()), ("training_sets_version", pa.int64()),
    ("feature_set", pa.string()), ("feature_table", pa.string()), ("feature_version", pa.int64()),
    ("validation_run_id", pa.string()),
    ("train_start", pa.date32()), ("train_end", pa.date32()), ("eval_start", pa.date32()), ("eval_end", pa.date32()),
    ("excluded_days", pa.string()),  # JSON list of quarantined days left out of the window
    ("n_train", pa.int64()), ("n_eval", pa.int64()), ("refit", pa.bool_()),
    ("trained_at", _TS), ("updated_at", _TS),
]))

SMALL_TABLES = (RUNS, VALIDATION_RESULTS, VALIDATION_PROFILES, VALIDATION_SUMMARIES, VALIDATION_PARTITIONS, REGISTRY)


def features(feature_set: str) -> TableSpec:
    return TableSpec(f"features/{feature_set}", ("ds",), "entity and ds")


def raw(source: str) -> TableSpec:
    return TableSpec(f"raw/{source}", ("ds",), "source record")


# --------------------------------------------------------------------------- the catalog


ARTIFACTS = "artifacts"
VALIDATION_DOCS = "validation/docs"
REPORTS = "reports"
LOCK_FILE = "_lock.json"


def artifact_name(model_id: str, segment: str, version: str) -> str:
    """An artifact folder relative to the lakehouse root (what registry rows record)."""
    return posixpath.join(ARTIFACTS, model_id, segment_folder(segment), version)


class _Table:
    """`catalog.runs` and the like: the path of a fixed table of the lakehouse."""

    def __init__(self, spec: TableSpec):
        self.spec = spec

    def __get__(self, catalog: "Catalog | None", owner: type) -> "str | _Table":
        return self if catalog is None else catalog.path(self.spec)


@dataclass(frozen=True)
class Catalog:
    """Paths of one lakehouse. `root` is a resolved local path or a URI."""

    root: str
    alerts: str = "alerts.jsonl"  # validation.alerts_file as configured
    metrics: str | None = "_metrics/retrain.prom"  # metrics.textfile as configured

    @classmethod
    def of(cls, cfg: "Config") -> "Catalog":
        return cls(cfg.lakehouse, cfg.project.validation.alerts_file, cfg.project.metrics.textfile)

    def path(self, table: TableSpec | str) -> str:
        return join(self.root, table.name if isinstance(table, TableSpec) else table)

    def file(self, configured: str) -> str:
        """A configured file: under the root unless an absolute path or a URI."""
        if "://" in configured or configured.startswith("dbfs:") or Path(configured).is_absolute():
            return configured
        normal = posixpath.normpath(configured)
        if normal == ".." or normal.startswith("../"):
            raise ValueError(f"{configured!r} leaves the lakehouse {self.root}; configure an absolute path "
                             "to write outside it")
        return join(self.root, normal)

    # tables
    runs = _Table(RUNS)
    registry = _Table(REGISTRY)
    training_sets = _Table(TRAINING_SETS)
    validation_results = _Table(VALIDATION_RESULTS)
    validation_profiles = _Table(VALIDATION_PROFILES)
    validation_summaries = _Table(VALIDATION_SUMMARIES)
    validation_partitions = _Table(VALIDATION_PARTITIONS)

    def features(self, feature_set: str) -> str:
        return self.path(features(feature_set))

    def raw(self, source: str) -> str:
        return self.path(raw(source))

    # files
    @property
    def artifacts(self) -> str:
        return join(self.root, ARTIFACTS)

    def artifact(self, model_id: str, segment: str, version: str) -> str:
        return join(self.root, artifact_name(model_id, segment, version))

    def under(self, relative: str) -> str:
        """A path recorded relative to the root (registry rows, lineage) as a URI of THIS
        lakehouse; an absolute path or URI (rows written before paths were relative) as given."""
        if "://" in relative or relative.startswith("dbfs:") or relative.startswith("/"):
            return relative
        return join(self.root, relative)

    @property
    def validation_docs(self) -> str:
        return join(self.root, VALIDATION_DOCS)

    def validation_doc(self, feature_set: str, ds: dt.date, run_id: str) -> str:
        return join(self.validation_docs, feature_set, f"ds={ds.isoformat()}", f"{run_id}.json")

    @property
    def alerts_file(self) -> str:
        return self.file(self.alerts)

    @property
    def metrics_file(self) -> str | None:
        return self.file(self.metrics) if self.metrics else None

    @property
    def reports(self) -> str:
        return join(self.root, REPORTS)

    @property
    def data_docs(self) -> str:
        """GX's Data Docs site of the validation results (reports/data_docs/index.html)."""
        return join(self.reports, "data_docs")

    def report(self, day: dt.date | None = None) -> str:
        """The HTML report: reports/latest.html, or the dated copy reports/report-<day>.html."""
        return join(self.reports, "latest.html" if day is None else f"report-{day.isoformat()}.html")

    @property
    def lock_file(self) -> str:
        return join(self.root, LOCK_FILE)
