"""Bad inputs the corpus of tests/test_bad_inputs.py had not seen (issue 16, "these checks are
repeated with cases this project has not seen"): the same harness (one module-scoped night,
a copy of the project per case, the CLI in-process), the same assertions (exit code, a one-line
message naming the file / key / partition / column, nothing committed changed).

Not a test module itself: tests/test_bad_inputs.py imports these tests, so they run in that
module and share its one base night (a night costs a minute or two of make test).
"""
from __future__ import annotations

import os
import re
import shutil
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import yaml

from tests.test_bad_inputs import (  # noqa: F401 (base and project are fixtures)
    CASES, DAY, END, RUN, Case, base, committed, edit_yaml, features_of, invoke, model_key, model_param,
    project, raw_day, suite, test_bad_input as _check_case, write,
)

MODEL_FILE = "conf/models/minutes.yaml"
RAW = "lakehouse/raw/orders"


def write_bytes(rel: str, data: bytes):
    def mutate(project: Path) -> None:
        (project / rel).write_bytes(data)
    return mutate


def model_text(change):
    """The model file's text, changed by `change` (a str -> str function)."""
    def mutate(project: Path) -> None:
        path = project / MODEL_FILE
        path.write_text(change(path.read_text()))
    return mutate


def rename_model_key(old: str, new: str):
    def change(data):
        data[new] = data.pop(old)
    return edit_yaml(MODEL_FILE, change)


def latin1_comment(project: Path) -> None:
    """features.yaml saved by an editor in Latin-1: one 'ä' in a comment is byte 0xe4."""
    path = project / "conf" / "features.yaml"
    path.write_bytes(b"# Lieferzeit gem\xe4\xdf SLA\n" + path.read_bytes())


def partition_copy(name: str):
    """A second folder of END's raw orders under another name (ds=20261020, DS=..., ...)."""
    def mutate(project: Path) -> None:
        shutil.copytree(raw_day(project).parent, project / RAW / name)
    return mutate


def symlink_loop(project: Path) -> None:
    """`ln -s . latest` inside a partition folder: a walker that follows links never ends."""
    os.symlink(".", raw_day(project).parent / "latest")


def rename_raw_column(old: str, new: str):
    def mutate(project: Path) -> None:
        path = raw_day(project)
        table = pq.read_table(path)
        pq.write_table(table.rename_columns([new if c == old else c for c in table.column_names]), path)
    return mutate


def raw_ints_as_floats(project: Path) -> None:
    path = raw_day(project)
    table = pq.read_table(path)
    i = table.schema.get_field_index("items")
    pq.write_table(table.set_column(i, "items", table.column("items").cast(pa.float64())), path)


DUPLICATE_LABEL = lambda text: text + "label: late\n"  # noqa: E731 (a second `label:` at the end of the file)

UNSEEN = [
    # ---- model files: shapes and syntax
    Case("model_a_list", write(MODEL_FILE, "- model_id: minutes\n- feature_set: orders\n"), RUN, 2,
         r"models/minutes\.yaml: expected a mapping, got list"),
    Case("model_tab_indent", write(MODEL_FILE, "model_id: minutes\nfeature_set: orders\ngrid:\n\talpha: [1.0]\n"), RUN, 2,
         r"models/minutes\.yaml: not valid YAML at line 4, column 1: .*tab"),
    Case("model_empty_file", write(MODEL_FILE, ""), RUN, 2, r"models/minutes\.yaml: the file is empty \(or holds only comments\), expected a mapping"),
    Case("model_key_twice", model_text(DUPLICATE_LABEL), RUN, 2,
         r"models/minutes\.yaml: not valid YAML at line \d+, column 1: key 'label' is defined twice \(first at line \d+\)"),
    Case("features_latin1", latin1_comment, RUN, 2,
         r"features\.yaml: not valid UTF-8 at line 1, column 17 \(byte 0xe4\): expected a UTF-8 text file"),
    Case("model_key_typo", rename_model_key("features", "featurs"), RUN, 2,
         r"models/minutes\.yaml: featurs: unknown key \(did you mean 'features'\?\)"),
    # ---- model values
    Case("model_train_window_zero", model_key("train_window_days", 0), RUN, 2,
         r"models/minutes\.yaml: train_window_days: Input should be greater than or equal to 1, got 0"),
    Case("model_window_fraction", model_key("eval_window_days", 1.5), RUN, 2,
         r"models/minutes\.yaml: eval_window_days: .*integer.*got 1\.5"),
    Case("model_share_as_percent", model_key("max_quarantined_share", 20), RUN, 2,
         r"models/minutes\.yaml: max_quarantined_share: Input should be less than or equal to 1.*got 20"),
    Case("model_label_as_feature", model_key("features", ["distance_km", "delivery_minutes"]), RUN, 2,
         r"models/minutes\.yaml: features\.1: 'delivery_minutes' is the label"),
    Case("model_feature_twice", model_key("features", ["items", "distance_km", "items"]), RUN, 2,
         r"models/minutes\.yaml: features\.2: 'items' is listed twice"),
    Case("model_grid_empty", model_key("grid", {"alpha": []}), RUN, 2, r"models/minutes\.yaml: grid\.alpha: .*expected a non-empty list"),
    Case("model_param_also_in_grid", model_param("alpha", 2.0), RUN, 2, r"models/minutes\.yaml: grid\.alpha: 'alpha' is also set in params \(2\.0\); the grid would replace it"),
    Case("model_metric_of_other_task", model_key("metric", "auc"), RUN, 2,
         r"models/minutes\.yaml: metric: 'auc' is not a regression metric"),
    # ---- feature sets: columns the source lacks
    Case("entity_unknown_column", features_of(lambda f: f.update(entity=["order_id", "shop_id"])), RUN, 1,
         r"feature set orders: column 'shop_id' cannot be computed from source 'orders'"),
    Case("passthrough_unknown_column", features_of(lambda f: f["columns"].append("tip")), RUN, 1, r"feature set orders: column 'tip' cannot be computed from source 'orders'"),
    Case("rolling_unknown_column", features_of(lambda f: f["rolling"][1].update(column="tip")), RUN, 1,
         r"feature set orders: rolling 'customer_amount_mean_28d' column 'tip' cannot be computed from source "
         r"'orders' \(columns: .*\): .*tip"),
    Case("rolling_by_unknown_column", features_of(lambda f: f["rolling"][0].update(by=["customer"])), RUN, 1,
         r"feature set orders: rolling 'customer_orders_7d': source has no column \['customer'\]"),
    Case("as_of_unknown_column", features_of(lambda f: f["as_of_joins"][0]["columns"].update(wind="wind_kph")), RUN, 1,
         r"feature set orders: as-of join with 'weather': it has no column \['wind_kph'\]"),
    Case("as_of_unknown_time", features_of(lambda f: f["as_of_joins"][0].update(time="observed_at")), RUN, 1,
         r"feature set orders: as-of join with 'weather': it has no column \['observed_at'\]"),
    # ---- suites
    Case("suite_a_list", write("expectations/orders.json", "[]"), RUN, 2, r"expectations/orders\.json: expected a GX suite"),
    Case("suite_column_kwarg_missing", suite(lambda s: s["expectations"].append(
        {"type": "expect_column_values_to_not_be_null", "kwargs": {}})), RUN, 2,
         r"expectations/orders\.json: expectations\[\d+\] \(expect_column_values_to_not_be_null\): not a valid GX "
         r"expectation: .*column"),
    # ---- raw partitions
    Case("raw_ds_impossible_date", lambda p: (p / RAW / "ds=2026-13-45").mkdir(), RUN, 1,
         r"source orders: folder 'ds=2026-13-45' in \S+ is not ds=YYYY-MM-DD"),
    Case("raw_ds_compact_format", partition_copy("ds=20261020"), RUN, 1, r"source orders: folder 'ds=20261020' in \S+ is not ds=YYYY-MM-DD"),
    Case("raw_ds_upper_case", partition_copy(f"DS={END.isoformat()}"), RUN, 1, rf"source orders: folder 'DS={DAY}' in \S+ is not ds=YYYY-MM-DD"),
    Case("raw_symlink_loop", symlink_loop, RUN, 1, rf"source orders ds={DAY}: latest is a folder \(a link to a folder\) in \S+, expected only Parquet files"),
    Case("raw_column_case_changed", rename_raw_column("distance_km", "Distance_KM"), RUN, 1,
         rf"source orders ds={DAY}: part-00000\.parquet has no column distance_km"),
    Case("raw_ints_as_floats", raw_ints_as_floats, RUN, 1, rf"source orders ds={DAY}: part-00000\.parquet: column items is double, expected int32 \(as in 15 other files"),
]


def test_the_unseen_cases_are_unseen():
    seen = {c.id for c in CASES}
    assert len(UNSEEN) >= 12 and len({c.id for c in UNSEEN}) == len(UNSEEN)
    assert not seen & {c.id for c in UNSEEN}
    assert not {(c.mutate, c.args) for c in CASES if c.mutate is None} & {(c.mutate, c.args) for c in UNSEEN}


@pytest.mark.parametrize("case", [pytest.param(c, id=c.id) for c in UNSEEN])
def test_unseen_bad_input(case: Case, project: Path, tmp_path: Path):
    _check_case(case, project, tmp_path)


def test_an_extra_raw_column_is_accepted_and_not_written(project: Path, spark):
    """A source that gains a column (a new upstream field) is not bad input: the day's
    features build from it (the footer checks and Spark's read accept it), keep their own
    columns and every row. (The feature stage only: a whole night costs two minutes here.)"""
    from engine.config import load_config
    from engine.features import SOURCE_DAYS, build_features

    path = raw_day(project)
    table = pq.read_table(path)
    pq.write_table(table.append_column("coupon_code", pa.array(["X"] * table.num_rows)), path)
    cfg = load_config(project / "conf")
    fs = cfg.feature_sets["orders"]
    rows = build_features(spark, cfg, fs, [END])
    assert "coupon_code" not in rows.columns
    assert set(fs.output_columns) <= set(rows.columns) and SOURCE_DAYS in rows.columns
    assert rows.where(rows.ds == END).count() == table.num_rows


def test_a_suite_naming_a_column_the_table_lacks_is_a_config_error(project: Path):
    """An expectation on a column features/orders does not have (a typo: `tip`) used to
    quarantine every partition ('could not be evaluated: column "tip" does not exist', exit 3)
    though the data was fine. It is the suite's fault: exit 2 naming the suite, the
    expectation and the column, before any verdict is written. (The night's feature partition,
    computed before validation reads the suite against the table, stays: it is correct.)"""
    suite(lambda s: s["expectations"].append(
        {"type": "expect_column_values_to_not_be_null", "kwargs": {"column": "tip"}}))(project)
    before = {k: v for k, v in committed(project).items() if not k.startswith("features/")}
    code, output = invoke("run", "--conf", str(project / "conf"), "--date", END.isoformat())
    assert code == 2, output[-2000:]
    assert re.search(r"error: \S*expectations/orders\.json: expectations\[\d+\] \(expect_column_values_to_not_be_null\): "
                     r"kwargs\.column: column 'tip' is not a column of features/orders \(expected one of \[.*'amount'",
                     output), output[-2000:]
    assert "quarantined" not in output and "Traceback" not in output
    assert {k: v for k, v in committed(project).items() if not k.startswith("features/")} == before
