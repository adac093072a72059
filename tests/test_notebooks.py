"""The Databricks notebooks under notebooks/, run end to end through tests/notebook_runner.py's stand-in
against a demo lakehouse (two nightly runs of the shipped conf/, models included)."""
import datetime as dt
import shutil
import textwrap
from pathlib import Path

import pandas as pd
import pytest

from engine.catalog import Catalog
from engine import pipeline, registry, tables
from engine.config import load_config
from engine.demo import generate, read_faults
from tests.notebook_runner import NotebookError, WidgetError, parse_notebook, run_notebook

REPO = Path(__file__).resolve().parents[1]
NOTEBOOKS = REPO / "notebooks"
END = dt.date(2026, 10, 20)
DAYS = 14  # the demo's minimum; its four fault days fall inside the models' windows


@pytest.fixture(scope="module")
def demo(tmp_path_factory, spark):
    """DAYS demo days; the nightly runs of END-1 (history, first champions) and END (challengers)."""
    root = tmp_path_factory.mktemp("notebooks")
    shutil.copytree(REPO / "conf", root / "conf")
    shutil.copytree(REPO / "expectations", root / "expectations")
    generate(str(root / "lakehouse"), END, days=DAYS, seed=7)
    cfg = load_config(root / "conf")
    pipeline.run(spark, cfg, END - dt.timedelta(days=1))
    pipeline.run(spark, cfg, END)
    return cfg


def frame_with(result, *columns):
    """The displayed pandas DataFrames that have all of `columns`."""
    return [d for d in result["displayed"] if isinstance(d, pd.DataFrame) and set(columns) <= set(d.columns)]


# --------------------------------------------------------------------------- the stand-in


def test_source_format_cells_widgets_display_and_errors(tmp_path):
    nb = tmp_path / "nb.py"
    nb.write_text(textwrap.dedent("""\
        # Databricks notebook source
        dbutils.widgets.text("name", "world", "who")
        dbutils.widgets.dropdown("mode", "a", ["a", "b"])
        greeting = "hello " + dbutils.widgets.get("name")

        # COMMAND ----------

        # MAGIC %md
        # MAGIC # not Python: skipped
        # MAGIC print("never")

        # COMMAND ----------

        # MAGIC %sql SELECT 1

        # COMMAND ----------

        import pandas as pd
        print(greeting, dbutils.widgets.get("mode"))
        display(pd.DataFrame({"x": [1, 2]}))
        if dbutils.widgets.get("mode") == "b":
            dbutils.notebook.exit("stopped early")

        # COMMAND ----------

        print("last cell")
        """))
    cells = parse_notebook(nb.read_text())
    assert [c.magic for c in cells] == [None, "md", "sql", None, None]
    assert cells[3].line == 18  # the file's own line numbers

    out = run_notebook(nb, None, {"name": "notebook"})
    assert out["stdout"] == "hello notebook a\nlast cell\n"
    assert out["skipped"] == [(1, "md"), (2, "sql")]
    assert out["widgets"] == {"name": "notebook", "mode": "a"}
    [shown] = out["displayed"]
    assert shown["x"].tolist() == [1, 2] and out["cells"][1].displayed == [shown]

    stopped = run_notebook(nb, None, {"mode": "b"})
    assert stopped["exit_value"] == "stopped early" and "last cell" not in stopped["stdout"]

    with pytest.raises(NotebookError, match="value 'c' is not one of its choices"):
        run_notebook(nb, None, {"mode": "c"})

    bad = tmp_path / "bad.py"
    bad.write_text("# Databricks notebook source\nx = 1\n\n# COMMAND ----------\n\ny = x / 0\n")
    with pytest.raises(NotebookError, match=r"bad.py: cell 2 \(line 6\) failed: ZeroDivisionError") as info:
        run_notebook(bad, None)
    assert isinstance(info.value.__cause__, ZeroDivisionError)
    assert info.value.__cause__.__traceback__.tb_next.tb_lineno == 6

    plain = tmp_path / "plain.py"
    plain.write_text("print('no header')\n")
    with pytest.raises(NotebookError, match="expected the first line '# Databricks notebook source'"):
        run_notebook(plain, None)


def test_widget_values_must_be_defined_or_given():
    from tests.notebook_runner import DBUtils

    dbutils = DBUtils({"date": dt.date(2026, 10, 20)})
    assert dbutils.widgets.get("date") == "2026-10-20"  # given as a job parameter, not created
    with pytest.raises(WidgetError, match="widget 'conf' is not defined"):
        dbutils.widgets.get("conf")
    with pytest.raises(WidgetError, match="default 'x' is not one of its choices"):
        dbutils.widgets.dropdown("action", "x", ["run", "backfill"])


def test_every_notebook_is_in_databricks_source_format():
    paths = sorted(NOTEBOOKS.glob("*.py"))
    assert [p.name for p in paths] == ["01_validation_explorer.py", "02_model_lineage.py", "03_run_pipeline.py"]
    for path in paths:
        cells = parse_notebook(path.read_text(), str(path))
        assert cells[0].magic == "md"  # a title
        assert any(c.is_python and "dbutils.widgets.get" in c.source for c in cells)
        compile(path.read_text(), str(path), "exec")  # MAGIC lines are comments: valid Python as a file


# --------------------------------------------------------------------------- the notebooks


def test_validation_explorer_shows_the_quarantined_fault_days(spark, demo):
    out = run_notebook(NOTEBOOKS / "01_validation_explorer.py", spark, {"conf": str(demo.root), "column": "amount"})
    faults = {dt.date.fromisoformat(f.ds): f for f in read_faults(demo.lakehouse)}

    [flagged] = frame_with(out, "ds", "status", "columns", "reasons")
    assert set(flagged["ds"]) == set(faults)  # exactly the injected faults, nothing else
    assert set(flagged["status"]) == {"quarantined"}
    for _, row in flagged.iterrows():
        fault = faults[row["ds"]]
        assert fault.column in row["columns"].split(", "), (fault, row["columns"])
        assert f"ds={fault.ds}" in row["reasons"]

    [failing] = frame_with(out, "column", "expectation_type", "failing_partitions", "ds")
    by_column = {(r["column"], r["expectation_type"]): r["ds"] for _, r in failing.iterrows()}
    assert by_column[("discount", "expect_column_values_to_not_be_null")] == faults_by_kind(faults, "half_null")
    assert by_column[("amount", "expect_column_mean_to_be_between")] == faults_by_kind(faults, "unit_change_x100")
    assert by_column[("region", "expect_column_values_to_be_in_set")] == faults_by_kind(faults, "category_renamed")

    [history] = frame_with(out, "ds", "mean", "mean_robust_z")
    assert list(history["ds"]) == [END - dt.timedelta(days=DAYS - 1 - i) for i in range(DAYS)]
    worst = history.loc[history["mean_robust_z"].abs().idxmax()]
    assert worst["ds"] == dt.date.fromisoformat(faults_by_kind(faults, "unit_change_x100"))
    assert worst["status"] == "quarantined" and worst["mean_robust_z"] > 10
    assert f"{DAYS} partitions validated" in out["stdout"] and "4 quarantined" in out["stdout"]

    recent = run_notebook(NOTEBOOKS / "01_validation_explorer.py", spark,
                          {"conf": str(demo.root), "days": "3", "column": "no_such_column"})
    [flagged] = frame_with(recent, "ds", "status", "columns", "reasons")
    assert set(flagged["ds"]) == {d for d in faults if d > END - dt.timedelta(days=3)}
    assert "column 'no_such_column' has no profile; profiled columns: amount" in recent["stdout"]


def faults_by_kind(faults, kind):
    return next(f.ds for f in faults.values() if f.kind == kind)


def test_model_lineage_rereads_the_rows_and_compares_champion_and_challenger(spark, demo):
    out = run_notebook(NOTEBOOKS / "02_model_lineage.py", spark,
                       {"conf": str(demo.root), "model_id": "late_delivery", "segment": "north"})
    entries = registry.entries(spark, demo, "late_delivery")
    champion = next(e for e in entries if e.segment == "north" and e.status == "champion")
    latest = max((e for e in entries if e.segment == "north"), key=lambda e: e.version)
    first = "v20261019"  # the first night's model; the second night's was gated against it
    assert (latest.version, latest.champion_version) == ("v20261020", first)
    assert latest.status in ("champion", "rejected")

    [overview] = frame_with(out, "segment", "version", "status", "metric_value")
    assert len(overview) == len(entries) == 8 and set(overview["segment"]) == {"east", "north", "south", "west"}

    [lineage] = frame_with(out, "training_sets", "feature_table", "excluded_days")
    row = lineage.iloc[0]
    assert (row["version"], row["status"]) == (champion.version, "champion")
    assert row["training_sets"].endswith(f"training_sets@v{champion.training_sets_version}")
    assert row["feature_table"].endswith(f"features/orders@v{champion.feature_version}")
    assert row["excluded_days"] == ", ".join(d.isoformat() for d in champion.excluded_days) != ""

    [checks] = frame_with(out, "check", "found", "expected", "ok")
    assert checks["ok"].all(), checks
    assert checks["found"].iloc[0] == champion.n_train > 0 and checks["found"].iloc[1] == champion.n_eval > 0

    [comparison] = frame_with(out, "version", "status", "window_value", "unseen_value", "vs_champion")
    other = first if champion.version == latest.version else latest.version
    assert list(comparison["version"]) == [champion.version, other]
    assert comparison["vs_champion"].iloc[0] == 0
    by_version = comparison.set_index("version")
    # Each artifact was refit on its whole window, so the newest has seen every row of it.
    assert by_version.loc[latest.version, "fit_until"] == latest.eval_end
    assert by_version.loc[latest.version, "unseen_rows"] == 0
    assert pd.isna(by_version.loc[latest.version, "unseen_value"])
    # The engine scored the first model on this window when it gated the second: on the rows it
    # had not trained on if there were any, else on all of them. The notebook gets the same number.
    gated = by_version.loc[first]
    if gated["unseen_rows"] and latest.gate_rows == gated["unseen_rows"]:
        assert gated["unseen_value"] == pytest.approx(latest.champion_value, abs=1e-9)
    else:
        assert latest.gate_rows == latest.n_eval
        assert gated["window_value"] == pytest.approx(latest.champion_value, abs=1e-9)
    [gate] = frame_with(out, "gate_value", "champion_value", "gate_rows")
    assert gate.iloc[0]["version"] == latest.version and gate.iloc[0]["gate_rows"] == latest.gate_rows
    assert f"eval rows of {latest.eval_start} .. {latest.eval_end}" in out["stdout"]


def test_run_notebook_backfills_validates_and_records_runs(spark, demo, tmp_path):
    shutil.copytree(demo.root.parent / "expectations", tmp_path / "expectations")
    (tmp_path / "conf").mkdir()
    for name in ("project.yaml", "features.yaml"):  # no models: these actions do not train
        shutil.copy(demo.root / name, tmp_path / "conf" / name)
    shutil.copytree(demo.lakehouse, tmp_path / "lakehouse")
    cfg = load_config(tmp_path / "conf")
    runs_before = tables.read_rows(Catalog.of(cfg).path("runs")).num_rows
    notebook = NOTEBOOKS / "03_run_pipeline.py"
    conf = str(tmp_path / "conf")

    faults = sorted(dt.date.fromisoformat(f.ds) for f in read_faults(cfg.lakehouse))
    start, end = END - dt.timedelta(days=1), END
    clean = max(d for d in (END - dt.timedelta(days=i) for i in range(DAYS)) if d not in faults)

    out = run_notebook(notebook, spark, {"conf": conf, "action": "backfill", "start": start, "end": end})
    [summary] = frame_with(out, "run_id", "status", "quarantined")
    run_id = summary["run_id"].iloc[0]
    bad = [d.isoformat() for d in faults if start <= d <= end]
    assert bad and summary["status"].iloc[0] == "blocked"
    assert summary["quarantined"].iloc[0] == f"features/orders: {', '.join(bad)}"
    [recorded] = frame_with(out, "run_id", "stage", "status", "detail")
    assert set(recorded["run_id"]) == {run_id}
    # in the order they ended ('dependents' recomputes partitions whose windows read a day quarantined now)
    assert [s for s in recorded["stage"] if s != "dependents"] == ["features", "validation", "run"]
    assert recorded.set_index("stage").loc["features", "detail"] == "features/orders: 2 partitions"
    runs = tables.read_rows(Catalog.of(cfg).path("runs")).to_pylist()
    assert len(runs) == runs_before + len(recorded) and {r["stage"] for r in runs if r["run_id"] == run_id} == set(recorded["stage"])

    out = run_notebook(notebook, spark, {"conf": conf, "action": "validate", "date": clean})
    [summary] = frame_with(out, "run_id", "status", "quarantined")
    assert summary["status"].iloc[0] == "success" and summary["quarantined"].iloc[0] == ""
    [recorded] = frame_with(out, "run_id", "stage", "status", "detail")
    assert list(recorded["stage"]) == ["validation"] and recorded["status"].iloc[0] == "success"

    out = run_notebook(notebook, spark, {"conf": conf, "action": "run", "date": END.isoformat()})
    [summary] = frame_with(out, "run_id", "status", "quarantined")
    assert summary["status"].iloc[0] == "skipped"  # processed by the fixture's nightly run
    assert f"nothing ran: {END} was already processed" in out["stdout"]
    assert tables.read_rows(Catalog.of(cfg).path("runs")).num_rows == runs_before + 4

    with pytest.raises(NotebookError, match="widget date: expected a date YYYY-MM-DD, got '20/10/2026'"):
        run_notebook(notebook, spark, {"conf": conf, "action": "run", "date": "20/10/2026"})
    with pytest.raises(NotebookError, match="backfill: set both widgets start and end"):
        run_notebook(notebook, spark, {"conf": conf, "action": "backfill", "start": start})


def test_notebooks_say_so_when_tables_are_absent(spark, tmp_path):
    (tmp_path / "conf").mkdir()
    for name in ("project.yaml", "features.yaml"):
        shutil.copy(REPO / "conf" / name, tmp_path / "conf" / name)
    conf = str(tmp_path / "conf")
    cfg = load_config(conf)
    assert not Path(cfg.lakehouse).exists()

    out = run_notebook(NOTEBOOKS / "01_validation_explorer.py", spark, {"conf": conf})
    assert out["displayed"] == []
    assert f"validation/partitions: no table at {Catalog.of(cfg).path('validation/partitions')} yet" in out["stdout"]
    assert "features/orders: no validated partitions" in out["stdout"]

    out = run_notebook(NOTEBOOKS / "02_model_lineage.py", spark, {"conf": conf, "model_id": "late_delivery"})
    assert out["displayed"] == []
    assert f"registry: no table at {Catalog.of(cfg).path('registry')} yet" in out["stdout"]
