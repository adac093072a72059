"""Plugins (engine/plugins.py): a team's own package registers a transform and an estimator,
project.yaml names it, and a night uses both, on the Spark workers too.

The plugin is written into a temporary project directory (next to conf/, not installed, not
on PYTHONPATH): the driver finds it through the project directory, the Python workers
through the zip `plugins.ship` adds to the session (what --py-files does on a cluster).
"""
from __future__ import annotations

import datetime as dt
import textwrap
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from typer.testing import CliRunner

from engine import catalog, pipeline, plugins, registry, tables
from engine.cli import app
from engine.config import load_config
from engine.errors import ConfigError, PluginError
from engine.transforms import TRANSFORMS

END = dt.date(2026, 10, 10)
DAYS = 10

TINY_FEATURES_PY = '''
"""tiny_team's transforms."""
from pyspark.sql import functions as F

from engine.transforms import feature_transform


@feature_transform("x_squared", outputs=["x_squared"])
def x_squared(df):
    return df.withColumn("x_squared", F.col("x") * F.col("x"))
'''

TINY_ESTIMATORS_PY = '''
"""tiny_team's estimator. The training job ships the factory to the Python workers by
reference (module and name), so they import this module: from the zip plugins.ship added."""
import os

from sklearn.linear_model import Ridge

from engine.training.estimators import register_estimator

MARKER = {marker!r}  # each process that builds a model notes where it imported this module from


def make_ridge(**params):
    with open(MARKER, "a") as f:
        f.write(os.path.abspath(__file__) + "\\n")
    return Ridge(**params)


register_estimator("tiny_team.Ridge", "regression", make_ridge, kind="sklearn")
'''

PROJECT = """
name: plugin-test
lakehouse: ./lake
plugins: [tiny_team]
sources:
  points: {format: parquet, path: ./raw/points}
validation:
  learned: {enabled: false}
"""

FEATURES = """
feature_sets:
  points:
    source: points
    entity: [id]
    columns: [x]
    transforms: [x_squared]
    labels:
      y: {expr: "y", delay_days: 1}
"""

MODEL = """
model_id: tiny
feature_set: points
features: [x, x_squared]
label: y
task: regression
estimator: tiny_team.Ridge
grid: {alpha: [0.1, 1.0]}
train_window_days: 5
eval_window_days: 2
metric: mae
slo: {max: 5.0}
min_rows: 20
"""


def write_plugin(project: Path) -> None:
    package = project / "tiny_team"
    package.mkdir()
    (package / "__init__.py").write_text("from tiny_team import estimators, features  # noqa: F401\n")
    (package / "features.py").write_text(TINY_FEATURES_PY)
    (package / "estimators.py").write_text(TINY_ESTIMATORS_PY.format(marker=str(project / "imports.txt")))


def write_project(project: Path, project_yaml: str = PROJECT, features_yaml: str = FEATURES,
                  model_yaml: str | None = MODEL) -> Path:
    conf = project / "conf"
    (conf / "models").mkdir(parents=True)
    (conf / "project.yaml").write_text(project_yaml)
    (conf / "features.yaml").write_text(features_yaml)
    if model_yaml:
        (conf / "models" / "tiny.yaml").write_text(model_yaml)
    return conf


def write_points(project: Path) -> None:
    schema = pa.schema([("id", pa.string()), ("x", pa.float64()), ("y", pa.float64())])
    for n in range(DAYS):
        ds = END - dt.timedelta(days=DAYS - 1 - n)
        xs = [((i * 7 + n) % 11) / 2.0 for i in range(40)]
        rows = [{"id": f"{ds:%m%d}-{i}", "x": x, "y": 1.0 + 0.5 * x + 0.1 * x * x + (i % 3) * 0.01}
                for i, x in enumerate(xs)]
        folder = project / "raw" / "points" / f"ds={ds.isoformat()}"
        folder.mkdir(parents=True)
        pq.write_table(pa.Table.from_pylist(rows, schema=schema), folder / "part-0.parquet")


@pytest.fixture(scope="module")
def plugin_night(spark, tmp_path_factory):
    project = tmp_path_factory.mktemp("plugin_project")
    write_plugin(project)
    write_points(project)
    cfg = load_config(write_project(project))
    [summary] = pipeline.run(spark, cfg, END)
    return cfg, summary


def test_a_night_uses_the_plugins_transform_and_estimator_on_the_workers(spark, plugin_night):
    cfg, summary = plugin_night
    assert summary.status == "success", (summary.status, summary.notes, [(s.stage, s.status, s.error) for s in summary.stages])
    lake = catalog.Catalog.of(cfg)
    rows = tables.read(spark, lake.features("points")).collect()
    assert len(rows) == 40 * DAYS
    assert all(r.x_squared == r.x * r.x for r in rows)
    # The driver imported tiny_team from the project directory (config checks build the
    # estimator); the Python workers that trained, from the zip plugins.ship added: the
    # project directory is on no worker's path.
    imports = set((cfg.root.parent / "imports.txt").read_text().split())
    assert str(cfg.root.parent / "tiny_team" / "estimators.py") in imports, imports
    assert any(".zip/tiny_team/estimators.py" in path and "/tiny_team-" in path for path in imports), imports
    [champion] = registry.champions(spark, cfg, "tiny")
    assert champion.status == "champion" and champion.logical_date == END
    assert champion.metric_value < 0.1  # the label is a function of x and x_squared
    runs = {r["stage"]: r["status"] for r in tables.read_rows(lake.runs).to_pylist()}
    assert runs["run"] == "success" and runs["train"] == "success", runs


def test_each_plugin_zip_is_shipped_once_per_application(spark, plugin_night):
    cfg, _ = plugin_night
    assert plugins.ship(spark, cfg) == []  # pipeline.run shipped it already
    [package] = plugins.local_packages(cfg.project.plugins, cfg.root.parent)
    assert package == cfg.root.parent / "tiny_team"


# --------------------------------------------------------------------------- errors


def test_a_missing_plugin_is_a_one_line_error_naming_the_key(tmp_path):
    conf = write_project(tmp_path, PROJECT.replace("plugins: [tiny_team]", "plugins: [numpy, no_such_team.features]"))
    with pytest.raises(PluginError) as e:
        load_config(conf)
    message = str(e.value)
    assert message.startswith(f"{conf / 'project.yaml'}: plugins.1: cannot import plugin 'no_such_team.features': "
                              "No module named 'no_such_team'"), message
    assert "\n" not in message and str(tmp_path) in message


def test_a_plugin_that_fails_while_importing_names_the_key_and_the_error(tmp_path):
    (tmp_path / "broken_team.py").write_text("import json\nREGISTERED = 1 / 0\n")
    conf = write_project(tmp_path, PROJECT.replace("plugins: [tiny_team]", "plugins: [broken_team]"))
    with pytest.raises(PluginError, match=r"project\.yaml: plugins\.0: importing plugin 'broken_team' failed: "
                                          r"ZeroDivisionError: division by zero$"):
        load_config(conf)


def test_a_plugin_name_must_be_a_module_name(tmp_path):
    conf = write_project(tmp_path, PROJECT.replace("plugins: [tiny_team]", "plugins: [./tiny_team]"))
    with pytest.raises(ConfigError, match=r"project\.yaml: plugins: plugin 0: expected a module name like "
                                          r"my_team\.features, got './tiny_team'"):
        load_config(conf)


def test_names_the_plugins_do_not_register_are_errors_naming_the_key(tmp_path):
    project = tmp_path / "p"
    project.mkdir()
    write_plugin(project)
    conf = write_project(project, features_yaml=FEATURES.replace("[x_squared]", "[x_cubed]"), model_yaml=None)
    with pytest.raises(ConfigError, match=r"features\.yaml: feature_sets\.points\.transforms\.0: unknown transform "
                                          r"'x_cubed' \(registered in code: \[.*'x_squared'.*\]; plugins: \['tiny_team'\]"):
        load_config(conf)
    other = tmp_path / "q"
    other.mkdir()
    conf = write_project(other, model_yaml=MODEL.replace("tiny_team.Ridge", "tiny_team.Lasso"))
    with pytest.raises(ConfigError, match=r"models/tiny\.yaml: estimator: unknown estimator 'tiny_team\.Lasso'"):
        load_config(conf)


def test_the_cli_prints_a_missing_plugin_in_one_line_and_exits_2(tmp_path):
    conf = write_project(tmp_path, PROJECT.replace("plugins: [tiny_team]", "plugins: [no_such_team]"))
    result = CliRunner().invoke(app, ["run", "--conf", str(conf), "--date", END.isoformat()])
    assert result.exit_code == 2, result.output
    lines = [line for line in result.output.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith(f"error: {conf / 'project.yaml'}: plugins.0: cannot import plugin"), lines


# --------------------------------------------------------------------------- entry points


def write_distribution(site: Path, entry_points: str) -> None:
    """An installed distribution as pip lays it out: the package and its .dist-info."""
    (site / "ep_team").mkdir(parents=True)
    (site / "ep_team" / "__init__.py").write_text(textwrap.dedent('''
        from pyspark.sql import functions as F

        from engine.transforms import feature_transform
        from engine.training.estimators import register_estimator

        @feature_transform("x_doubled", outputs=["x_doubled"])
        def x_doubled(df):
            return df.withColumn("x_doubled", F.col("x") * 2)

        def register():
            from sklearn.linear_model import Lasso
            register_estimator("ep_team.Lasso", "regression", Lasso, kind="sklearn")
    '''))
    info = site / "ep_team-0.1.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: ep-team\nVersion: 0.1\n")
    (info / "entry_points.txt").write_text(entry_points)


def test_an_installed_entry_point_registers_before_validation(tmp_path, monkeypatch):
    site = tmp_path / "site"
    write_distribution(site, "[retrain.plugins]\nep_team = ep_team:register\n")
    monkeypatch.syspath_prepend(str(site))
    monkeypatch.setattr(plugins, "_entry_points_loaded", False)
    conf = write_project(tmp_path / "p", PROJECT.replace("plugins: [tiny_team]", "plugins: []"),
                         FEATURES.replace("[x_squared]", "[x_doubled]"),
                         MODEL.replace("tiny_team.Ridge", "ep_team.Lasso").replace("x_squared", "x_doubled"))
    cfg = load_config(conf)
    assert cfg.models["tiny"].estimator == "ep_team.Lasso" and "x_doubled" in TRANSFORMS
    assert plugins.load_entry_points() == []  # once per process


def test_a_broken_entry_point_names_the_group_and_distribution(tmp_path, monkeypatch):
    site = tmp_path / "site"
    write_distribution(site, "[retrain.plugins]\nbad = no_such_module:register\n")
    monkeypatch.syspath_prepend(str(site))
    monkeypatch.setattr(plugins, "_entry_points_loaded", False)
    with pytest.raises(PluginError, match=r"^entry point bad = 'no_such_module:register' \(group retrain\.plugins, "
                                          r"distribution ep-team\): loading failed: ModuleNotFoundError: "
                                          r"No module named 'no_such_module'$"):
        load_config(write_project(tmp_path / "p", PROJECT.replace("plugins: [tiny_team]", "plugins: []"),
                                  model_yaml=None, features_yaml="feature_sets: {}\n"))
