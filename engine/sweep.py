"""Remove what attempts that never committed left behind: the files of a run killed between
writing and committing.

A Delta write first writes data files, then commits them in one log entry; a run killed in
between (SIGKILL, OOM, a lost node) leaves files that no version names. Readers of the table
never see them, but a plain Parquet reader of the folder does, and they take space. Artifact
folders are the same: executors write them, the registry commit names them.

`sweep(cfg)` deletes, under the lakehouse lock (pipeline.run calls it first thing, and
maintenance does), for each table the engine writes (features/<set>, training_sets, the small
tables):
- every `*.parquet` data file that no entry of its Delta log names: no commit JSON and no
  checkpoint adds or removes it (a file a later version removed stays: it is time travel's,
  and VACUUM's to delete);
- `*.tmp` files in `_delta_log` (a commit being written when the writer died);
and every artifacts/<model>/<segment>/<version>/ folder that no registry row names.

It reads the log itself (JSON and checkpoint Parquet through pyarrow's filesystem for the
table's URI), so it works for tables of either backend. Only the engine writes under the
lakehouse, and only under the lock: a file no commit names is an abandoned attempt's, never
one in flight.
"""
from __future__ import annotations

import json
import logging
import posixpath
from dataclasses import dataclass, field
from urllib.parse import unquote

from engine import catalog
from engine.config import Config

log = logging.getLogger("retrain")

LOG = "_delta_log"


@dataclass
class SweepReport:
    files: list[str] = field(default_factory=list)  # removed data and log files, under the lakehouse
    artifacts: list[str] = field(default_factory=list)  # removed artifact folders

    def __bool__(self) -> bool:
        return bool(self.files or self.artifacts)

    def describe(self) -> str:
        return (f"removed {len(self.files)} files and {len(self.artifacts)} artifact folders "
                f"that no commit names (left by an attempt that did not finish)")


def _named_files(fs, base: str) -> set[str] | None:
    """Every data file path (relative, decoded) any surviving log entry adds or removes;
    None when the table has no log (nothing to judge by)."""
    from pyarrow import fs as pafs

    infos = fs.get_file_info(pafs.FileSelector(f"{base}/{LOG}", allow_not_found=True))
    if not infos:
        return None
    named: set[str] = set()
    for info in infos:
        name = info.base_name
        if info.type != pafs.FileType.File:
            continue
        if name.endswith(".json") and not name.startswith("."):
            with fs.open_input_stream(info.path) as f:
                for line in f.read().decode("utf-8").splitlines():
                    if not line.strip():
                        continue
                    action = json.loads(line)
                    for kind in ("add", "remove"):
                        if kind in action and action[kind].get("path"):
                            named.add(unquote(action[kind]["path"]))
        elif ".checkpoint" in name and name.endswith(".parquet"):
            import pyarrow.parquet as pq

            with fs.open_input_file(info.path) as f:
                table = pq.read_table(f)
            for kind in ("add", "remove"):
                if kind in table.column_names:
                    for entry in table.column(kind).to_pylist():
                        if entry and entry.get("path"):
                            named.add(unquote(entry["path"]))
    return named


def sweep_table(path: str) -> list[str]:
    """Delete the uncommitted data files and abandoned commit temp files of one Delta table;
    return their paths relative to the table."""
    from pyarrow import fs as pafs

    fs, base = catalog.filesystem(path)
    base = base.rstrip("/")
    if fs.get_file_info(base).type != pafs.FileType.Directory:
        return []
    named = _named_files(fs, base)
    if named is None:
        return []
    removed = []
    for info in fs.get_file_info(pafs.FileSelector(base, recursive=True)):
        if info.type != pafs.FileType.File:
            continue
        rel = info.path[len(base) + 1:]
        in_log = rel.startswith(LOG + "/")
        if in_log:
            orphan = rel.endswith(".tmp")
        else:
            orphan = rel.endswith(".parquet") and not info.base_name.startswith((".", "_")) and rel not in named
        if not orphan:
            continue
        fs.delete_file(info.path)
        removed.append(rel)
        crc = f"{info.path.rsplit('/', 1)[0]}/.{info.base_name}.crc"  # Hadoop's checksum twin
        if not in_log and fs.get_file_info(crc).type == pafs.FileType.File:
            fs.delete_file(crc)
    return sorted(removed)


def _table_paths(cfg: Config) -> list[tuple[str, str]]:
    cat = catalog.Catalog.of(cfg)
    out = [(spec.name, cat.path(spec)) for spec in catalog.SMALL_TABLES]
    out.append((catalog.TRAINING_SETS.name, cat.training_sets))
    out += [(catalog.features(name).name, cat.features(name)) for name in cfg.feature_sets]
    return out


def _unnamed_artifacts(cfg: Config) -> list[str]:
    """Artifact folders (artifacts/<model>/<segment>/<version>) no registry row names."""
    from pyarrow import fs as pafs

    from engine import tables
    from engine.registry import RegistryEntry, artifact

    cat = catalog.Catalog.of(cfg)
    fs, root = catalog.filesystem(cat.artifacts)
    root = root.rstrip("/")
    if fs.get_file_info(root).type != pafs.FileType.Directory:
        return []
    rows = tables.read_rows(cat.registry)
    named = set()
    for row in rows.to_pylist() if rows is not None else []:
        e = RegistryEntry.from_row(row)
        if e.artifact_uri:
            named.add(posixpath.normpath(catalog.filesystem(artifact(cat, e))[1]))
    out = []
    for model in fs.get_file_info(pafs.FileSelector(root)):
        for segment in fs.get_file_info(pafs.FileSelector(model.path)) if model.type == pafs.FileType.Directory else []:
            for version in fs.get_file_info(pafs.FileSelector(segment.path)) if segment.type == pafs.FileType.Directory else []:
                if version.type == pafs.FileType.Directory and posixpath.normpath(version.path) not in named:
                    out.append(version.path)
    return out


def sweep(cfg: Config) -> SweepReport:
    """Delete every file and artifact folder that attempts without a commit left (see the
    module doc). Call it only while holding the lakehouse lock."""
    report = SweepReport()
    for name, path in _table_paths(cfg):
        report.files += [f"{name}/{rel}" for rel in sweep_table(path)]
    fs, _ = catalog.filesystem(catalog.Catalog.of(cfg).artifacts)
    for folder in _unnamed_artifacts(cfg):
        fs.delete_dir(folder)
        report.artifacts.append(folder)
    if report:
        log.warning("lakehouse %s: %s: %s", cfg.lakehouse, report.describe(),
                    ", ".join((report.files + report.artifacts)[:5]) + (" ..." if len(report.files) + len(report.artifacts) > 5 else ""))
    return report


# --------------------------------------------------------------------------- unjudged evidence


def _order(validation_id: str) -> tuple[str, int]:
    """Validation ids of one night in the order they ran: '<run id>' (its run's validation
    stage), then '<run id>-dependents-<round>'. Run ids start with the time the run began."""
    base, _, round_ = validation_id.partition("-dependents-")
    return base, int(round_) if round_.isdigit() else 0


def drop_unjudged_evidence(cfg: Config, table: str, dates: list, attempts: set[str]) -> int:
    """Before partitions are validated again: delete the evidence (validation results,
    profiles, summaries) that an unfinished attempt (`attempts`: run ids of this night's
    attempts that never finished) wrote for them without committing their verdict (it was
    killed between the evidence commits and the verdict's, which commits last). Evidence
    whose verdict committed stays, superseded or not; so does every other night's. Returns
    the rows deleted.

    A partition's verdicts commit in the order they ran, so evidence of a validation that
    ran after the partition's current verdict (or of an attempt whose verdict is not there)
    is evidence no verdict ever used."""
    import pyarrow as pa

    from engine import tables
    from engine.validation import partition_statuses

    if not attempts or not dates:
        return 0
    cat = catalog.Catalog.of(cfg)
    current = {s.ds: s.run_id for s in partition_statuses(None, cfg, table)}
    deleted = 0
    for spec in (catalog.VALIDATION_RESULTS, catalog.VALIDATION_PROFILES, catalog.VALIDATION_SUMMARIES):
        path = cat.path(spec)
        rows = tables.read_rows(path)
        if rows is None:
            continue
        orphans: dict = {}
        for r in rows.select(["run_id", "table", "ds"]).to_pylist():
            if r["table"] != table or r["ds"] not in dates or _order(r["run_id"] or "")[0] not in attempts:
                continue
            verdict = current.get(r["ds"])
            if verdict is None or _order(verdict)[0] not in attempts | {_order(r["run_id"])[0]} \
                    or _order(r["run_id"]) > _order(verdict):
                orphans.setdefault(r["ds"], set()).add(r["run_id"])
        if not orphans:
            continue
        keys = [{"table": table, "ds": ds, "run_id": i} for ds, ids in sorted(orphans.items()) for i in sorted(ids)]
        fields = pa.schema([rows.schema.field(c) for c in ("table", "ds", "run_id")])
        n = tables.delete_rows(None, path, pa.Table.from_pylist(keys, fields))
        deleted += n
        log.warning("%s: deleted %d rows of %s that an unfinished attempt wrote for %d partition(s) without "
                    "committing their verdict", spec.name, n, table, len(orphans))
    return deleted
