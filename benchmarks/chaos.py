"""Crash safety, measured (issue 9): SIGKILL a nightly run at a random moment, re-run it as a
scheduler would, and compare every table and artifact with a clean run of the same night.

One trial:
  1. a fresh copy of a small demo project (conf/, expectations/, lakehouse/raw: --days of
     demo data ending --end);
  2. `python -m engine.cli run --conf conf --date D` as a subprocess in its own process
     group, killed with SIGKILL (the whole group: driver and Spark JVM) after a delay drawn
     uniformly from [0, 1.1 × the clean run's duration] — real random timing, so kills land
     in Spark start-up, features, validation, training sets, train, the registry commit and
     metrics in proportion to the time each takes;
  3. the scheduler's retry: the same command again (no kill) until it exits 0 or 3 (at most
     three attempts); its exit code must be the clean run's (so must that of a run that
     finished before its kill);
  4. the lakehouse compared with the clean run's:
     - every Delta table under the root (found by its _delta_log), read at its latest
       version, as a multiset of rows without run ids, timestamps of when things ran, Delta
       version numbers and the project path, floats to 10 significant digits; approximate
       statistics within 5 % (profile quantiles: in rank, against the clean partition's
       data, as sketches err in rank; mean and stddev: 5 % of the column's range; distinct
       counts and summary values: 5 % relative); `runs` is a log of attempts, so
       only each logical date's final `run` status is compared;
     - artifacts: every folder artifacts/<model>/<segment>/<version>/ and its model file's
       sha256;
     - orphans: data files under a table that no version of its Delta log ever committed
       (a plain Parquet reader of the folder would see them), and artifact folders no
       registry row names;
     - duplicates: rows with the same key (features: entity + ds; validation/partitions:
       table + ds; registry: model_id + segment + version).
Prints one line per trial and a summary by failure kind. A script, not a test (tests/test_chaos.py
runs two trials).

    python benchmarks/chaos.py --trials 30 [--days 36] [--end 2026-10-19] [--seed 1] [--keep DIR] [--mini]
                               [--backend delta-spark|delta-rs]
"""
from __future__ import annotations

import argparse
import collections
import datetime as dt
import hashlib
import json
import math
import os
import random
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
END = dt.date(2026, 10, 19)  # a Monday: both demo models are due
DAYS = 36  # enough history for late_delivery's 28-day window and its 2-day label delay

# Columns that say when or by which attempt something ran, never what it computed.
VOLATILE = {"run_id", "validation_run_id", "started_at", "ended_at", "trained_at", "updated_at",
            "acquired_at", "duration_seconds", "seconds",
            # a verdict's content id hashes the (random) names of the files it judged: which
            # files, not what they hold; `stale_verdicts` checks it names the current files
            "content_id"}
# Learned checks of severity warn score randomized sketches (KLL quantiles, HLL distinct
# counts: two clean runs differ in their last digits), so which ones a partition gets, the
# bounds they learn and whether one fires near its threshold differ between two clean runs
# too: their rows of validation/results and their entries in a verdict's reasons are left
# out. Block checks are exact and compared exactly (a verdict's status always is).
# Approximate statistics: compared within APPROX_TOLERANCE (relative).
APPROX = {"distinct_count", "mean", "stddev", "p05", "p25", "p50", "p75", "p95", "value", "top_values", "detail",
          "observed_value"}
APPROX_TOLERANCE = 0.05
SHARE_TOLERANCE = 0.01  # approximate shares (0..1): absolute, a relative 5 % of 0.5 % is one row
SKETCH_NOISE_COUNT = 10  # top values all counted this few times: a frequent-items sketch's noise
KEYS = {"validation/partitions": ("table", "ds"), "registry": ("model_id", "segment", "version")}


# --------------------------------------------------------------------------- project


# The nights' JVMs live a minute: the C1 compiler alone spends far less CPU than C2's optimizing
# compiles, which pay off only in long runs (a mini night: 50 instead of 80 CPU seconds, wall
# 38 instead of 46 s). Compiled code computes the same results; test_signals and test_cluster use it too.
SHORT_JVM = "-XX:TieredStopAtLevel=1"


def short_jvm_options(role: str) -> str:
    """spark.<role>.extraJavaOptions: the engine's defaults (engine.spark.DEFAULTS), plus SHORT_JVM."""
    from engine.spark import DEFAULTS

    return f"{DEFAULTS[f'spark.{role}.extraJavaOptions']} {SHORT_JVM}"


MINI_DAYS = 16  # the demo generator's minimum is 14; its four faults land on days 9-14
# The mini project's one model: small, daily, trained on the last days (one HistGradientBoosting
# regressor, whose fits must be reproducible for the tables to match) while the night's
# quarantines make it exit 3 (blocked).
MINI_MODEL = """\
model_id: delivery_time
feature_set: orders
features: [distance_km, courier_load, items, hour_of_day, is_weekend, region, customer_orders_7d]
label: delivery_minutes
task: regression
estimator: sklearn.HistGradientBoostingRegressor
params: {max_iter: 20}
grid: {learning_rate: [0.1, 0.3]}
train_window_days: 8
eval_window_days: 3
refit: true
cadence: daily
metric: mae
promotion: {min_delta: 0.05}
min_rows: 100
max_quarantined_share: 0.6   # the mini window holds the demo's fault days: train anyway
"""


def prepare_source(base: Path, days: int = DAYS, end: dt.date = END, seed: int = 7, mini: bool = False,
                   backend: str | None = None) -> Path:
    """A demo project (conf, expectations, raw data) generated once; trials copy it. `mini`:
    one small daily model over MINI_DAYS days, two shuffle partitions (what `make test` runs).
    `backend`: the storage backend the nights use (default: the CLI's, delta-spark with the jars)."""
    from engine.demo import generate

    src = base / "source"
    if (src / "lakehouse" / "raw").exists():
        return src
    (src / "conf").mkdir(parents=True)
    project = (REPO / "conf" / "project.yaml").read_text().replace("master: local[*]", "master: local[2]")
    if mini:  # two shuffle partitions, no HTML report (Data Docs): a trial in about a minute
        project = project.replace("spark.sql.shuffle.partitions: 8", "spark.sql.shuffle.partitions: 2")
        project += "\nreports: {nightly: false}\n"
    extra = f"    spark.driver.extraJavaOptions: \"{short_jvm_options('driver')}\"\n"
    if backend:
        extra += f"    spark.retrain.storage.backend: {backend}\n"
    project = project.replace("  conf:\n", "  conf:\n" + extra, 1)
    assert SHORT_JVM in project, "conf/project.yaml has no spark.conf section to set the JVM's options in"
    (src / "conf" / "project.yaml").write_text(project)
    shutil.copy(REPO / "conf" / "features.yaml", src / "conf")
    if mini:
        (src / "conf" / "models").mkdir()
        (src / "conf" / "models" / "delivery_time.yaml").write_text(MINI_MODEL)
    else:
        shutil.copytree(REPO / "conf" / "models", src / "conf" / "models")
    shutil.copytree(REPO / "expectations", src / "expectations")
    generate(str(src / "lakehouse"), end, days=MINI_DAYS if mini else days, seed=seed)
    return src


def fresh_project(source: Path, dest: Path) -> Path:
    if dest.exists():
        shutil.rmtree(dest)
    shutil.copytree(source, dest)
    return dest


def command(project: Path, day: dt.date) -> list[str]:
    return [sys.executable, "-m", "engine.cli", "run", "--conf", str(project / "conf"), "--date", day.isoformat()]


def _env() -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = str(REPO) + (os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH") else "")
    env["PYSPARK_PYTHON"] = sys.executable
    env.setdefault("SPARK_LOCAL_IP", "127.0.0.1")
    env.setdefault("GX_ANALYTICS_ENABLED", "false")
    return env


@dataclass
class Attempt:
    code: int | None  # None: killed
    seconds: float
    last_stage: str  # the last stage the run logged as finished ("-": none)


def run_night(project: Path, day: dt.date, kill_after: float | None = None, log: Path | None = None) -> Attempt:
    """Run one night; SIGKILL its process group after `kill_after` seconds if still running."""
    log = log or project / f"run-{time.monotonic_ns()}.log"
    clock = time.monotonic()
    with open(log, "wb") as out:
        proc = subprocess.Popen(command(project, day), cwd=project, env=_env(), stdout=out,
                                stderr=subprocess.STDOUT, start_new_session=True)
        try:
            code = proc.wait(timeout=kill_after)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
            code = None
    seconds = time.monotonic() - clock
    return Attempt(code, seconds, _last_stage(log.read_text(errors="replace"), day))


def _last_stage(text: str, day: dt.date) -> str:
    last = "-"
    for line in text.splitlines():
        for stage in ("features", "validation", "dependents", "training_sets", "train", "run"):
            if f"retrain: {day} {stage}: " in line and not line.rstrip().endswith(": started"):
                last = stage
    return last


def scheduler(project: Path, day: dt.date, attempts: int = 3) -> list[Attempt]:
    """Re-run as a scheduler would: until the run exits 0 (done) or 3 (done, blocked)."""
    out = []
    for i in range(attempts):
        attempt = run_night(project, day, log=project / f"retry-{i}.log")
        out.append(attempt)
        if attempt.code in (0, 3):
            break
    return out


# --------------------------------------------------------------------------- lakehouse state


def delta_tables(root: Path) -> list[str]:
    return sorted(str(p.parent.relative_to(root)) for p in root.rglob("_delta_log") if p.is_dir()
                  and not str(p.parent.relative_to(root)).startswith("raw"))


def _normal(value: Any, prefix: str) -> Any:
    if isinstance(value, float) and not math.isnan(value):
        return float(f"{value:.10g}")  # sums in another order differ in the last bits
    if isinstance(value, str):
        return value.replace(prefix, "<root>")
    if isinstance(value, dict):
        return tuple(sorted((k, _normal(v, prefix)) for k, v in value.items()))
    if isinstance(value, list):
        return tuple(_normal(v, prefix) for v in value)
    return value


def read_table(root: Path, name: str) -> list[dict[str, Any]]:
    from deltalake import DeltaTable

    rows = DeltaTable(str(root / name)).to_pyarrow_table().to_pylist()
    prefix = str(root.parent)
    out = []
    for row in rows:
        if name == "validation/partitions" and row.get("reasons"):
            row = dict(row, reasons=json.dumps([r for r in json.loads(row["reasons"]) if not _learned_warn(r)]))
        if name == "validation/results" and _learned_warn(row):
            continue
        out.append({k: _normal(v, prefix) for k, v in row.items()
                    if k not in VOLATILE and not (k.endswith("_version") and isinstance(v, int))})
    return out


def _learned_warn(row: dict[str, Any]) -> bool:
    check = row.get("expectation_type") or row.get("expectation") or ""
    return str(check).startswith("learned:") and row.get("severity") == "warn"


def _approx(name: str, table: str, row: dict[str, Any] | None = None) -> bool:
    return name in APPROX and table.startswith("validation/")


def _key(row: dict[str, Any], table: str) -> tuple:
    return tuple(sorted((k, repr(v)) for k, v in row.items() if not _approx(k, table, row)))


QUANTILES = ("p05", "p25", "p50", "p75", "p95")


class Ranks:
    """Where a value falls in a feature partition's column: (share below, share at or below).
    Quantile sketches err in rank, not in value; two sketched quantiles agree when their rank
    intervals are within APPROX_TOLERANCE of each other."""

    def __init__(self, root: Path):
        self.root = root
        self.cache: dict[tuple, Any] = {}

    def values(self, table: str, column: str, ds: Any):
        key = (table, column, ds)
        if key not in self.cache:
            import numpy as np
            import pyarrow.compute as pc
            from deltalake import DeltaTable

            try:
                data = DeltaTable(str(self.root / table)).to_pyarrow_table(columns=[column, "ds"])
                col = pc.filter(data.column(column), pc.equal(data.column("ds"), ds)).drop_null()
                self.cache[key] = np.sort(np.asarray(col.to_pylist(), dtype=float))
            except Exception:  # a table-level statistic (column '*'), or not a number: no ranks
                self.cache[key] = np.asarray([], dtype=float)
        return self.cache[key]

    def agree(self, row: dict[str, Any], a: float, b: float) -> bool:
        import numpy as np

        x = self.values(row["table"], row["column"], row["ds"])
        if len(x) == 0:
            return False
        lo = lambda v: np.searchsorted(x, v, side="left") / len(x)  # noqa: E731
        hi = lambda v: np.searchsorted(x, v, side="right") / len(x)  # noqa: E731
        return max(0.0, lo(b) - hi(a), lo(a) - hi(b)) <= APPROX_TOLERANCE


def _scale(row: dict[str, Any], column: str) -> float | None:
    """Mean and stddev (of sampled or sketched data): within the tolerance times the column's
    range (max - min) when the row has one."""
    if column not in ("mean", "stddev"):
        return None
    try:
        return float(row["max"]) - float(row["min"])
    except (KeyError, TypeError, ValueError):
        return None


def _close(a: Any, b: Any, scale: float | None = None) -> bool:
    if (a is None) != (b is None) and isinstance(a if b is None else b, float):
        return abs(a if b is None else b) <= SHARE_TOLERANCE  # a share a sketch saw no value for
    if isinstance(a, (int, float)) and isinstance(b, (int, float)):
        if isinstance(a, float) and math.isnan(a) and isinstance(b, float) and math.isnan(b):
            return True
        if scale is not None:
            return abs(a - b) <= APPROX_TOLERANCE * scale + 1e-9
        if abs(a) <= 1 and abs(b) <= 1 and abs(a - b) <= SHARE_TOLERANCE:
            return True  # a share (null, mode, duplicate fraction): within a percentage point
        return abs(a - b) <= APPROX_TOLERANCE * max(abs(a), abs(b), 1e-9)
    if isinstance(a, str) and isinstance(b, str) and a[:1] in ("[", "{"):
        try:  # JSON top values / value counts: counts within tolerance, the same values above the ties
            ja, jb = json.loads(a), json.loads(b)
            return _counts_agree(_counts(ja), _counts(jb))
        except (ValueError, AttributeError, TypeError):
            return a == b
    if isinstance(a, str) and isinstance(b, str):
        try:  # an observed value written as text: a mean summed in another order differs in its last digits
            return _close(float(a), float(b))
        except ValueError:
            return a == b
    return a == b


def _counts(data: Any) -> dict[str, float]:
    """value -> count of a top-values list ([{"value", "count"}]) or a value-counts mapping."""
    if isinstance(data, dict):
        return {str(k): float(v) for k, v in data.items()}
    return {str(x.get("value")): float(x.get("count", 0)) for x in data}


def _counts_agree(a: dict[str, float], b: dict[str, float]) -> bool:
    """Two top-k lists of the same data: which values tie at the cut-off (the k-th count) is
    arbitrary, so only the values counted more than that must be the same; the counts, in order,
    within APPROX_TOLERANCE."""
    ca, cb = sorted(a.values()), sorted(b.values())
    if max(ca + cb, default=0.0) <= SKETCH_NOISE_COUNT:
        return True  # the most frequent values of a nearly unique column: sketch noise, not content
    if len(ca) != len(cb) or any(not _close(x, y) for x, y in zip(ca, cb)):
        return False
    floor = min(ca[:1] + cb[:1], default=0.0)
    return {v for v, n in a.items() if n > floor} == {v for v, n in b.items() if n > floor}


def _agree(clean: dict, row: dict, table: str, ranks: Ranks | None) -> bool:
    for k in row:
        if not _approx(k, table, row) or _close(clean[k], row[k], _scale(row, k)):
            continue
        # a sketched quantile: a profile's p05..p95 column, or a summary row's value of statistic p05..p95
        quantile = k in QUANTILES or (k == "value" and row.get("statistic") in QUANTILES)
        if quantile and ranks is not None and isinstance(row[k], float) and isinstance(clean[k], float) \
                and ranks.agree(row, clean[k], row[k]):
            continue
        return False
    return True


def compare_table(clean: list[dict], got: list[dict], table: str, ranks: Ranks | None = None) -> str | None:
    """None when equal as multisets (approximate columns within tolerance), else a reason."""
    if table == "runs":
        def final(rows):
            return sorted((str(r["logical_date"]), r["status"]) for r in rows if r["stage"] == "run"
                          and r["status"] != "failed")
        a, b = final(clean), final(got)
        return None if a == b else f"final run status {a} vs {b}"
    if len(clean) != len(got):
        return f"{len(got)} rows, clean run has {len(clean)}"
    index: dict[tuple, list[dict]] = collections.defaultdict(list)
    for row in clean:
        index[_key(row, table)].append(row)
    for row in got:
        bucket = index.get(_key(row, table))
        if not bucket:
            shown = {k: v for k, v in row.items() if not isinstance(v, (tuple, list)) and k != "kwargs"}
            return f"row not in the clean run: {str(shown)[:300]}"
        match = next((c for c in bucket if _agree(c, row, table, ranks)), None)
        if match is None:
            return f"approximate statistics differ beyond {APPROX_TOLERANCE:.0%}: {str(row)[:300]}"
        bucket.remove(match)
    return None


def artifacts(root: Path) -> dict[str, str]:
    """artifacts/<model>/<segment>/<version> -> sha256 of its model file."""
    out = {}
    base = root / "artifacts"
    for meta in base.rglob("metadata.json") if base.exists() else []:
        folder = meta.parent
        models = [f for f in folder.iterdir() if f.name.startswith("model.")]
        digest = ",".join(hashlib.sha256(f.read_bytes()).hexdigest()[:16] for f in sorted(models))
        out[str(folder.relative_to(root))] = digest
    for folder in base.glob("*/*/*") if base.exists() else []:
        if folder.is_dir() and str(folder.relative_to(root)) not in out:
            out[str(folder.relative_to(root))] = "no metadata.json"
    return out


def committed_files(table: Path) -> set[str]:
    """Every data file any version of the Delta log ever added."""
    out = set()
    for entry in sorted((table / "_delta_log").glob("*.json")):
        for line in entry.read_text().splitlines():
            if line.strip():
                action = json.loads(line)
                if "add" in action:
                    from urllib.parse import unquote

                    out.add(unquote(action["add"]["path"]))
    return out


def orphans(root: Path) -> list[str]:
    found = []
    for name in delta_tables(root):
        table = root / name
        known = committed_files(table)
        for f in table.rglob("*.parquet"):
            rel = str(f.relative_to(table))
            if "_delta_log" not in rel and rel not in known:
                found.append(f"{name}/{rel}")
        found += [f"{name}/_delta_log/{f.name}" for f in (table / "_delta_log").iterdir()
                  # a temporary file of a commit that never finished; Hadoop's .crc sidecars of
                  # committed log files (delta-spark writes them) are not residue
                  if f.name.endswith(".tmp") or (f.name.startswith(".") and not f.name.endswith(".crc"))]
    registry = root / "registry"
    named = set()
    if (registry / "_delta_log").exists():
        from deltalake import DeltaTable

        for row in DeltaTable(str(registry)).to_pyarrow_table(columns=["artifact_uri"]).to_pylist():
            named.add(os.path.normpath(str(row["artifact_uri"]).replace("file://", "")).rstrip("/"))
    for folder in artifacts(root):
        path = os.path.normpath(str(root / folder))
        if path not in named and not any(n.endswith(folder) for n in named):
            found.append(folder)
    return found


def stale_verdicts(root: Path) -> list[str]:
    """Verdicts (validation/partitions) that do not judge their partition's current files."""
    from deltalake import DeltaTable

    from engine.validation.store import partition_contents

    if not (root / "validation" / "partitions" / "_delta_log").exists():
        return []
    found = []
    current: dict[str, dict] = {}
    for row in DeltaTable(str(root / "validation" / "partitions")).to_pyarrow_table().to_pylist():
        table = row["table"]
        if table not in current:
            path = root / table
            current[table] = partition_contents(str(path), DeltaTable(str(path)).version()) if path.exists() else {}
        if current[table].get(row["ds"]) != row["content_id"]:
            found.append(f"{table} ds={row['ds']}: the verdict judged other files than the partition's")
    return found


def duplicates(root: Path) -> list[str]:
    from engine.config import load_config

    cfg = load_config(root.parent / "conf")
    keys = dict(KEYS)
    for name, fs in cfg.feature_sets.items():
        keys[f"features/{name}"] = (*fs.entity, "ds")
    found = []
    for name, key in keys.items():
        if not (root / name / "_delta_log").exists():
            continue
        from deltalake import DeltaTable

        rows = DeltaTable(str(root / name)).to_pyarrow_table(columns=list(key)).to_pylist()
        counts = collections.Counter(tuple(r[k] for k in key) for r in rows)
        dupes = [k for k, n in counts.items() if n > 1]
        if dupes:
            found.append(f"{name}: {len(dupes)} duplicate keys {key}, e.g. {dupes[0]}")
    return found


@dataclass
class State:
    root: Path
    tables: dict[str, list[dict]]
    artifacts: dict[str, str]


def state(project: Path) -> State:
    root = project / "lakehouse"
    return State(root, {name: read_table(root, name) for name in delta_tables(root)}, artifacts(root))


def differences(clean: State, project: Path) -> list[tuple[str, str]]:
    """(kind, detail) of every way the lakehouse differs from the clean run's."""
    root = project / "lakehouse"
    got = state(project)
    out = []
    for name in sorted(set(clean.tables) | set(got.tables)):
        if name not in got.tables:
            out.append(("missing table", name))
        elif name not in clean.tables:
            out.append(("extra table", name))
        else:
            reason = compare_table(clean.tables[name], got.tables[name], name, Ranks(clean.root))
            if reason:
                out.append((f"{name} differs", reason))
    if clean.artifacts != got.artifacts:
        extra = sorted(set(got.artifacts) - set(clean.artifacts))
        missing = sorted(set(clean.artifacts) - set(got.artifacts))
        changed = sorted(k for k in set(got.artifacts) & set(clean.artifacts) if got.artifacts[k] != clean.artifacts[k])
        out.append(("artifacts differ", f"extra {extra[:3]}, missing {missing[:3]}, changed {changed[:3]}"))
    out += [("orphan file", f) for f in orphans(root)[:5]]
    out += [("duplicate rows", d) for d in duplicates(root)]
    out += [("stale verdict", d) for d in stale_verdicts(root)[:5]]
    return out


# --------------------------------------------------------------------------- trials


@dataclass
class TrialResult:
    index: int
    kill_after: float
    killed: Attempt
    retries: list[Attempt]
    diffs: list[tuple[str, str]] = field(default_factory=list)

    @property
    def identical(self) -> bool:
        return not self.diffs

    def line(self) -> str:
        killed = "killed" if self.killed.code is None else f"finished (exit {self.killed.code}) before the kill"
        retries = ",".join(str(a.code) for a in self.retries) or "-"
        verdict = "IDENTICAL" if self.identical else "DIFFERENT: " + "; ".join(f"{k}: {d}" for k, d in self.diffs[:4])
        return (f"trial {self.index:2d}: SIGKILL at {self.kill_after:6.1f} s (after stage {self.killed.last_stage}), "
                f"{killed}; re-run exits {retries} -> {verdict}")


def clean_run(source: Path, work: Path, day: dt.date) -> tuple[State, float, int]:
    project = fresh_project(source, work / "clean")
    attempt = run_night(project, day, log=work / "clean.log")
    if attempt.code not in (0, 3):
        raise SystemExit(f"the clean run failed (exit {attempt.code}); see {work / 'clean.log'}")
    return state(project), attempt.seconds, attempt.code


def trial(source: Path, work: Path, day: dt.date, clean: State, clean_seconds: float, index: int,
          rng: random.Random, clean_code: int) -> TrialResult:
    project = fresh_project(source, work / f"trial-{index}")
    kill_after = rng.uniform(0.0, 1.1 * clean_seconds)
    killed = run_night(project, day, kill_after=kill_after, log=project / "killed.log")
    retries = scheduler(project, day)
    result = TrialResult(index, kill_after, killed, retries)
    if not retries or retries[-1].code not in (0, 3):
        result.diffs.append(("re-run failed", f"exit codes {[a.code for a in retries]} (see {project}/retry-*.log)"))
    elif retries[-1].code != clean_code:
        result.diffs.append(("exit code differs", f"re-run exits {retries[-1].code}, the clean run {clean_code}"))
    if killed.code is not None and killed.code != clean_code:
        result.diffs.append(("exit code differs", f"the run that finished before the kill exits {killed.code}, "
                                                  f"the clean run {clean_code}"))
    result.diffs += differences(clean, project)
    return result


def summarize(results: list[TrialResult]) -> str:
    kinds = collections.Counter(k for r in results for k in {k for k, _ in r.diffs})
    same = sum(r.identical for r in results)
    killed = sum(r.killed.code is None for r in results)
    lines = [f"chaos: {len(results)} trials, {same} identical to the clean run, {len(results) - same} different",
             f"  {killed} kills landed in a running night, {len(results) - killed} came after it had finished "
             f"(the kill window is 1.1 x the clean run, timed once: a less loaded machine ends sooner)"]
    lines += [f"  {n:3d} trials: {kind}" for kind, n in kinds.most_common()]
    with open("/proc/loadavg") as f:
        lines.append(f"  load average {' '.join(f.read().split()[:3])}")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> list[TrialResult]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=30)
    parser.add_argument("--days", type=int, default=DAYS)
    parser.add_argument("--end", type=dt.date.fromisoformat, default=END, help="the night to run (demo data ends here)")
    parser.add_argument("--seed", type=int, default=1, help="seed of the kill delays")
    parser.add_argument("--keep", type=Path, default=None, help="work directory to keep (default: a temp dir, removed)")
    parser.add_argument("--mini", action="store_true", help=f"a small project: {MINI_DAYS} days, one small daily model")
    parser.add_argument("--backend", choices=["delta-spark", "delta-rs"], default=None,
                        help="storage backend of the nights (default: the CLI's, delta-spark with the jars)")
    args = parser.parse_args(argv)

    work = args.keep or Path(tempfile.mkdtemp(prefix="retrain-chaos-"))
    work.mkdir(parents=True, exist_ok=True)
    rng = random.Random(args.seed)
    try:
        source = prepare_source(work, args.days, args.end, mini=args.mini, backend=args.backend)
        clean, seconds, code = clean_run(source, work, args.end)
        print(f"clean run of {args.end} ({args.backend or 'default backend'}"
              f"{', mini project' if args.mini else ''}): {seconds:.1f} s, exit {code}, {len(clean.tables)} tables, "
              f"{len(clean.artifacts)} artifacts", flush=True)
        results = []
        for i in range(1, args.trials + 1):
            result = trial(source, work, args.end, clean, seconds, i, rng, code)
            print(result.line(), flush=True)
            results.append(result)
            if args.keep is None and result.identical:
                shutil.rmtree(work / f"trial-{i}", ignore_errors=True)
        print(summarize(results), flush=True)
        return results
    finally:
        if args.keep is None:
            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    sys.path.insert(0, str(REPO))
    main()
