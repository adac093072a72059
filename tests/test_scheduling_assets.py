"""Scheduling assets, checked without Airflow or Databricks: the Airflow DAG (by its AST),
databricks.yml and the crontab call jobs/nightly.py / `retrain run` with arguments its
parser accepts, on a nightly schedule, never two at once."""
from __future__ import annotations

import ast
import datetime as dt
import os
import re
import shlex
from pathlib import Path

import pytest
import yaml
from croniter import croniter

from engine.config import Project

REPO = Path(__file__).resolve().parents[1]
DAG_FILE = REPO / "deploy" / "airflow" / "retrain_nightly.py"
BUNDLE = REPO / "databricks.yml"
CRONTAB = REPO / "deploy" / "cron" / "retrain.cron"
NIGHTLY = REPO / "jobs" / "nightly.py"
LOCK_TTL = dt.timedelta(minutes=Project.model_fields["lock_ttl_minutes"].default)
DAY = dt.date(2024, 5, 1)


def nightly_parser():
    from jobs.nightly import build_parser

    return build_parser()


def assert_nightly(cron: str) -> None:
    """A valid 5-field cron expression that fires once a day."""
    assert len(cron.split()) == 5 and croniter.is_valid(cron), cron
    it = croniter(cron, dt.datetime(2024, 5, 1, 12, 0))
    first, second, third = it.get_next(dt.datetime), it.get_next(dt.datetime), it.get_next(dt.datetime)
    assert second - first == third - second == dt.timedelta(days=1), cron


# --------------------------------------------------------------------------- Airflow


class Unsupported(Exception):
    pass


def evaluate(node: ast.AST, names: dict, env: dict):
    """Just enough static evaluation for a DAG file's constants and operator arguments."""
    if isinstance(node, ast.Constant):
        return node.value
    if isinstance(node, ast.Name):
        if node.id in names:
            return names[node.id]
        raise Unsupported(node.id)
    if isinstance(node, ast.JoinedStr):
        return "".join(str(evaluate(v, names, env)) for v in node.values)
    if isinstance(node, ast.FormattedValue):
        return evaluate(node.value, names, env)
    if isinstance(node, (ast.List, ast.Tuple)):
        return [evaluate(e, names, env) for e in node.elts]
    if isinstance(node, ast.Dict):
        return {evaluate(k, names, env): evaluate(v, names, env) for k, v in zip(node.keys, node.values)}
    if isinstance(node, ast.BinOp) and isinstance(node.op, ast.Add):
        return evaluate(node.left, names, env) + evaluate(node.right, names, env)
    if isinstance(node, ast.Call):
        func = ast.unparse(node.func)
        args = [evaluate(a, names, env) for a in node.args]
        kwargs = {k.arg: evaluate(k.value, names, env) for k in node.keywords}
        if func in ("os.environ.get", "os.getenv"):
            return env.get(args[0], args[1] if len(args) > 1 else None)
        if func == "os.path.join":
            return os.path.join(*args)
        if func in ("timedelta", "dt.timedelta", "datetime.timedelta"):
            return dt.timedelta(*args, **kwargs)
    raise Unsupported(ast.unparse(node))


def dag_module(env: dict) -> tuple[ast.Module, dict]:
    tree = ast.parse(DAG_FILE.read_text(), filename=str(DAG_FILE))
    names: dict = {}
    for stmt in tree.body:
        if isinstance(stmt, ast.Assign) and len(stmt.targets) == 1 and isinstance(stmt.targets[0], ast.Name):
            try:
                names[stmt.targets[0].id] = evaluate(stmt.value, names, env)
            except Unsupported:
                pass
    return tree, names


def calls(tree: ast.AST, name: str) -> list[ast.Call]:
    return [n for n in ast.walk(tree) if isinstance(n, ast.Call) and ast.unparse(n.func).split(".")[-1] == name]


def kwarg(call: ast.Call, name: str) -> ast.AST:
    for k in call.keywords:
        if k.arg == name:
            return k.value
    raise AssertionError(f"{ast.unparse(call.func)}(...) has no {name}=")


def test_airflow_dag_runs_nightly_py_nightly_one_at_a_time(tmp_path):
    env = {"RETRAIN_HOME": str(REPO)}  # the checkout, as on an Airflow worker
    tree, names = dag_module(env)

    imports = {(n.module, a.name) for n in ast.walk(tree) if isinstance(n, ast.ImportFrom) for a in n.names}
    assert ("airflow.providers.apache.spark.operators.spark_submit", "SparkSubmitOperator") in imports

    [dag] = calls(tree, "DAG")
    assert_nightly(evaluate(kwarg(dag, "schedule"), names, env))
    assert evaluate(kwarg(dag, "catchup"), names, env) is False
    assert evaluate(kwarg(dag, "max_active_runs"), names, env) == 1
    kwarg(dag, "start_date")
    default_args = evaluate(kwarg(dag, "default_args"), names, env)
    assert default_args["execution_timeout"] < LOCK_TTL  # killed before its lock could go stale

    # The task is a SparkSubmitOperator (a subclass mapping exit codes to task states:
    # tests/test_airflow.py runs it in a real Airflow).
    [subclass] = [n for n in tree.body if isinstance(n, ast.ClassDef)
                  and [ast.unparse(b) for b in n.bases] == ["SparkSubmitOperator"]]
    [task] = calls(tree, subclass.name)
    assert evaluate(kwarg(dag, "default_args"), names, env)["retries"] >= 1  # exit 1 is retried
    assert set(names["NO_RETRY"]) == {2, 3, 4}  # the codes a retry cannot change (README: exit codes)
    application = Path(evaluate(kwarg(task, "application"), names, env))
    assert application == NIGHTLY and application.is_file()

    argv = evaluate(kwarg(task, "application_args"), names, env)
    assert all(isinstance(a, str) for a in argv), argv
    rendered = [re.sub(r"\{\{\s*ds\s*\}\}", DAY.isoformat(), a) for a in argv]
    assert rendered != argv, "the logical date should come from {{ ds }}"
    args = nightly_parser().parse_args(rendered)
    assert args.date == DAY
    assert Path(args.conf) == REPO / "conf" and (REPO / "conf" / "project.yaml").is_file()


def test_nightly_parser_rejects_what_it_should():
    """The checks above mean something only if the parser does refuse bad arguments."""
    parser = nightly_parser()
    for bad in (["--date", DAY.isoformat()], ["--conf", "c", "--date", "yesterday"], ["--conf", "c", "--bogus"]):
        with pytest.raises(SystemExit):
            parser.parse_args(bad)


# --------------------------------------------------------------------------- Databricks


def quartz_to_cron(expr: str) -> str:
    fields = expr.split()
    assert len(fields) in (6, 7), expr
    seconds, minute, hour, dom, month, dow = fields[:6]
    assert seconds == "0", expr
    assert "?" in (dom, dow), f"quartz needs ? in day-of-month or day-of-week: {expr}"
    assert dow in ("?", "*"), "day-of-week numbering differs between quartz and cron; not converted"
    return " ".join([minute, hour, "*" if dom == "?" else dom, month, "*"])


def substitute(value: str, variables: dict, job_params: dict) -> str:
    def var(m):
        name = m.group(1)
        if name == "workspace.file_path":
            return str(REPO)  # the bundle's synced files: this checkout
        assert name.startswith("var.") and name[4:] in variables, f"unknown ${{{name}}}"
        return substitute(str(variables[name[4:]]["default"]), variables, job_params)

    value = re.sub(r"\$\{([^}]+)\}", var, value)
    return re.sub(r"\{\{\s*job\.parameters\.(\w+)\s*\}\}", lambda m: job_params[m.group(1)], value)


def test_databricks_bundle_runs_nightly_py_nightly_one_at_a_time():
    bundle = yaml.safe_load(BUNDLE.read_text())
    variables = bundle.get("variables", {})
    [job] = bundle["resources"]["jobs"].values()
    assert job["max_concurrent_runs"] == 1
    assert dt.timedelta(seconds=job["timeout_seconds"]) < LOCK_TTL
    assert job["schedule"]["timezone_id"] == "UTC"
    assert_nightly(quartz_to_cron(job["schedule"]["quartz_cron_expression"]))

    params = {p["name"]: p["default"] for p in job.get("parameters", [])}
    tasks = {t["task_key"]: t for t in job["tasks"]}
    python_tasks = {k: t["spark_python_task"] for k, t in tasks.items() if "spark_python_task" in t}
    assert python_tasks
    dates_passed = []
    for key, spt in python_tasks.items():
        path = (BUNDLE.parent / spt["python_file"]).resolve()
        assert path == NIGHTLY and path.is_file(), spt["python_file"]
        job_params = {**params, "date": DAY.isoformat()}  # a manual run for one date
        args = nightly_parser().parse_args([substitute(a, variables, job_params) for a in spt["parameters"]])
        assert Path(args.conf) == REPO / "conf", key
        dates_passed.append(args.date)
        for dep in tasks[key].get("depends_on", []):
            assert dep["task_key"] in tasks
    # The scheduled run leaves the date to nightly.py (yesterday, UTC); a manual run with
    # date=YYYY-MM-DD passes it on.
    assert sorted(dates_passed, key=str) == [DAY, None]

    conditions = [t["condition_task"] for t in tasks.values() if "condition_task" in t]
    assert conditions == [{"op": "EQUAL_TO", "left": "{{job.parameters.date}}", "right": params["date"]}]
    by_outcome = {d["outcome"]: k for k, t in tasks.items() for d in t.get("depends_on", [])}
    assert "--date" not in python_tasks[by_outcome["true"]]["parameters"]  # date == the default
    assert "--date" in python_tasks[by_outcome["false"]]["parameters"]


def test_databricks_bundle_installs_the_engine_dependencies():
    """The runtime brings Spark, Delta and the scientific stack; everything else that
    pyproject.toml declares must be a task library, or imports fail on the cluster."""
    tomllib = pytest.importorskip("tomllib", reason="Python < 3.11 has no tomllib")
    provided = {"pyspark", "delta-spark", "pyarrow", "pandas", "numpy", "scipy", "scikit-learn", "pyyaml"}
    declared = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["dependencies"]
    needed = {re.split(r"[<>=!~ \[]", d, maxsplit=1)[0].lower() for d in declared} - provided
    bundle = yaml.safe_load(BUNDLE.read_text())
    [job] = bundle["resources"]["jobs"].values()
    for task in job["tasks"]:
        if "spark_python_task" in task:
            libs = {re.split(r"[<>=!~ \[]", lib["pypi"]["package"], maxsplit=1)[0].lower()
                    for lib in task.get("libraries", [])}
            assert needed <= libs, f"{task['task_key']}: missing {sorted(needed - libs)}"


# --------------------------------------------------------------------------- cron


def cron_jobs() -> list[tuple[str, str]]:
    jobs = []
    for line in CRONTAB.read_text().splitlines():
        line = line.strip()
        if not line or line.startswith("#") or re.match(r"^[A-Za-z_][A-Za-z0-9_]*\s*=", line):
            continue
        fields = line.split(None, 5)
        jobs.append((" ".join(fields[:5]), fields[5]))
    return jobs


def test_crontab_line_runs_retrain_nightly():
    [(schedule, command)] = cron_jobs()
    assert_nightly(schedule)
    assert "%" not in command.replace(r"\%", ""), "an unescaped % ends the command in crontab"

    tokens = shlex.split(command)
    assert "retrain" in Path(tokens[tokens.index("run") - 1]).name
    argv = []
    for token in tokens[tokens.index("run") + 1:]:
        if token in ("&&", "||", ";", "|", ">", ">>") or token.startswith(("2>", ">")):
            break
        argv.append(token)
    assert argv[:1] == ["--conf"]

    # The options must be ones `retrain run` takes (the typer command's own parameters).
    import typer.main

    from engine.cli import app

    run = typer.main.get_command(app).commands["run"]
    options = {opt for p in run.params for opt in p.opts}
    assert {a for a in argv if a.startswith("--")} <= options, (argv, options)
    assert "--conf" in options
    # They mean the same to jobs/nightly.py, and the conf directory is the checkout's.
    args = nightly_parser().parse_args(argv)
    cwd = tokens[tokens.index("cd") + 1] if "cd" in tokens else None
    assert cwd is not None, "the command should cd into the checkout"
    assert (REPO / args.conf / "project.yaml").is_file()
