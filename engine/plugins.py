"""Plugins: a Task ML engineer's own transforms and estimators, imported before config validation.

Two ways in, both Python conventions:

- `plugins: [my_team.features]` in project.yaml: modules imported by name, from the installed
  packages or, after them, from the project directory (the conf directory's parent), so a
  package kept next to conf/ needs no install.
- the entry-point group `retrain.plugins` of installed distributions (loaded for every project):

      [project.entry-points."retrain.plugins"]
      my_team = "my_team.features"            # a module: importing it registers
      other = "other_team.plugin:register"    # or a callable, called once with no arguments

A plugin registers with `engine.transforms.feature_transform` and
`engine.training.estimators.register_estimator` when it is imported. `load_config` calls
`load` right after parsing project.yaml, so every entry point (the CLI, jobs/nightly.py,
the notebooks, a Python caller) validates transform and estimator names against them.
Each module is imported once per process.

Spark workers unpickle a plugin's functions (a UDF inside a transform, an estimator's
factory or class) by module and name, so they must import the plugin too. `ship` zips every
plugin that was imported from the project directory and adds it with
`SparkContext.addPyFile` (what spark-submit's `--py-files` does), once per Spark
application; in local mode and on a cluster alike. An installed plugin must be installed
where the workers run as well (the same wheel), or shipped with `--py-files`.
"""
from __future__ import annotations

import atexit
import hashlib
import importlib
import importlib.metadata
import logging
import os
import shutil
import sys
import tempfile
import zipfile
from pathlib import Path
from types import ModuleType
from typing import Iterable

from engine.errors import PluginError

ENTRY_POINT_GROUP = "retrain.plugins"
log = logging.getLogger(__name__)

_entry_points_loaded = False
_shipped: dict[int, set[str]] = {}  # id(SparkContext) -> zip names added to it
_zip_dir: str | None = None


def load(names: Iterable[str], project_file: Path | str, project_dir: Path | str) -> list[ModuleType]:
    """Import the installed `retrain.plugins` entry points (once per process) and the modules
    named under `plugins:` in `project_file`; raise PluginError naming the YAML key."""
    load_entry_points()
    project_dir = str(Path(project_dir).resolve())
    if project_dir not in sys.path:
        sys.path.append(project_dir)  # after the installed packages: they win on a clash
        importlib.invalidate_caches()
    modules = []
    for i, name in enumerate(names):
        where = f"{project_file}: plugins.{i}"
        try:
            modules.append(importlib.import_module(name))
        except ModuleNotFoundError as e:
            if e.name and (name == e.name or name.startswith(e.name + ".")):
                raise PluginError(f"{where}: cannot import plugin {name!r}: {e} (looked in the installed "
                                  f"packages and in the project directory {project_dir})") from e
            raise PluginError(f"{where}: importing plugin {name!r} failed: {_one_line(e)}") from e
        except Exception as e:  # the plugin's own code failed while registering
            raise PluginError(f"{where}: importing plugin {name!r} failed: {_one_line(e)}") from e
    return modules


def load_entry_points() -> list[str]:
    """Load every installed entry point of the group `retrain.plugins`, once per process;
    returns the names loaded by this call."""
    global _entry_points_loaded
    if _entry_points_loaded:
        return []
    _entry_points_loaded = True
    loaded = []
    for ep in importlib.metadata.entry_points(group=ENTRY_POINT_GROUP):
        dist = getattr(ep.dist, "name", None) or "?"
        try:
            obj = ep.load()
            if callable(obj) and not isinstance(obj, ModuleType):
                obj()
        except Exception as e:
            _entry_points_loaded = False  # a fixed environment may try again in this process
            raise PluginError(f"entry point {ep.name} = {ep.value!r} (group {ENTRY_POINT_GROUP}, distribution "
                              f"{dist}): loading failed: {_one_line(e)}") from e
        log.info("plugin %s loaded from entry point %s (%s)", ep.value, ep.name, dist)
        loaded.append(ep.name)
    return loaded


def _one_line(e: BaseException) -> str:
    text = str(e).strip().splitlines()
    return f"{type(e).__name__}: {text[0] if text else ''}".rstrip(": ")


# --------------------------------------------------------------------------- Spark workers


def local_packages(names: Iterable[str], project_dir: Path | str) -> list[Path]:
    """The top-level packages (folders) or modules (.py files) of the named plugins that were
    imported from the project directory: what the workers may not have installed."""
    root = Path(project_dir).resolve()
    found: list[Path] = []
    for name in names:
        top = sys.modules.get(name.split(".")[0])
        if top is None:
            continue
        paths = [Path(p) for p in getattr(top, "__path__", [])] or ([Path(top.__file__)] if top.__file__ else [])
        for path in paths:
            path = path.resolve()
            if path.parent == root and path not in found:
                found.append(path)
    return found


def _zip(path: Path) -> Path:
    """`path` (a package folder or a .py module) as <name>-<sha256 of its files>.zip, in a
    directory that lives as long as this process (Spark serves the file from there)."""
    global _zip_dir
    if _zip_dir is None:
        _zip_dir = tempfile.mkdtemp(prefix="retrain-plugins-")
        atexit.register(shutil.rmtree, _zip_dir, True)
    files = ([path] if path.is_file() else
             sorted(p for p in path.rglob("*") if p.is_file() and "__pycache__" not in p.parts and p.suffix != ".pyc"))
    digest = hashlib.sha256()
    for f in files:
        digest.update(str(f.relative_to(path.parent)).encode() + b"\0" + f.read_bytes() + b"\0")
    # The name changes with the content: Spark refuses a second file of the same name.
    dest = Path(_zip_dir) / f"{path.stem if path.is_file() else path.name}-{digest.hexdigest()[:12]}.zip"
    if not dest.exists():
        tmp = dest.with_suffix(".tmp")
        with zipfile.ZipFile(tmp, "w", zipfile.ZIP_DEFLATED) as z:
            for f in files:
                z.write(f, f.relative_to(path.parent))
        os.replace(tmp, dest)
    return dest


def ship(spark, cfg) -> list[str]:
    """Add the plugins of `cfg` that were imported from the project directory to the Spark
    application (`SparkContext.addPyFile`), so that its Python workers import them; once per
    application and content. Returns the file names added by this call."""
    names = list(cfg.project.plugins)
    if not names:
        return []
    sc = spark.sparkContext
    done = _shipped.setdefault(id(sc), set())
    added = []
    for package in local_packages(names, cfg.root.parent):
        shipped = _zip(package)
        if shipped.name in done:
            continue
        sc.addPyFile(str(shipped))
        done.add(shipped.name)
        added.append(shipped.name)
        log.info("plugin %s shipped to the Spark workers as %s", package.name, shipped.name)
    return added
