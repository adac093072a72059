import shutil
from pathlib import Path

import pydantic
import pytest

from engine.config import load_config
from engine.errors import ConfigError

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture
def conf(tmp_path):
    """A copy of the shipped conf directory to break."""
    target = tmp_path / "conf"
    shutil.copytree(REPO / "conf", target)
    return target


def edit(path: Path, old: str, new: str) -> None:
    text = path.read_text()
    assert old in text, f"{old!r} not in {path}"
    path.write_text(text.replace(old, new, 1))


def error_of(conf) -> str:
    with pytest.raises(ConfigError) as info:
        load_config(conf)
    return str(info.value)


def test_shipped_conf_parses_into_frozen_typed_objects(conf):
    cfg = load_config(conf)
    fs = cfg.feature_sets["orders"]
    assert fs.entity == ["order_id"]
    assert fs.labels["late"].delay_days == 2
    assert fs.rolling[0].days == 7
    assert cfg.project.sources["orders"].format == "parquet"
    assert cfg.lakehouse == str((conf.parent / "lakehouse").resolve())
    with pytest.raises(pydantic.ValidationError):
        fs.source = "other"


def test_unknown_key_names_file_and_key_path(conf):
    edit(conf / "features.yaml", "    rolling:", "    rolling_windows: []\n    rolling:")
    msg = error_of(conf)
    assert f"{conf / 'features.yaml'}: feature_sets.orders.rolling_windows: unknown key" in msg


def test_wrong_type_says_what_was_expected(conf):
    edit(conf / "features.yaml", "agg: count, days: 7}", "agg: count, days: seven}")
    msg = error_of(conf)
    assert "features.yaml: feature_sets.orders.rolling.0.days:" in msg
    assert "integer" in msg and "'seven'" in msg


def test_bad_enum_value(conf):
    edit(conf / "features.yaml", "agg: count, days: 7}", "agg: median, days: 7}")
    msg = error_of(conf)
    assert "feature_sets.orders.rolling.0.agg" in msg and "'median'" in msg


def test_missing_required_key(conf):
    edit(conf / "project.yaml", "    format: parquet ", "    # no format ")
    msg = error_of(conf)
    assert f"{conf / 'project.yaml'}: sources.orders.format: required key is missing" in msg


def test_unknown_source_reference(conf):
    edit(conf / "features.yaml", "    source: orders ", "    source: ordrs ")
    msg = error_of(conf)
    assert "feature_sets.orders.source: unknown source 'ordrs'" in msg and "['orders', 'weather']" in msg


def test_unknown_transform_is_named(conf):
    edit(conf / "features.yaml", "transforms: [distance_band]", "transforms: [distance_bands]")
    msg = error_of(conf)
    assert "feature_sets.orders.transforms.0: unknown transform 'distance_bands'" in msg


def test_not_yaml(conf):
    (conf / "project.yaml").write_text("sources: [unclosed\n")
    assert "project.yaml: not valid YAML" in error_of(conf)


def test_missing_conf_dir(tmp_path):
    with pytest.raises(ConfigError, match="not a directory"):
        load_config(tmp_path / "nope")


def test_duplicate_output_column(conf):
    edit(conf / "features.yaml", "      hour_of_day:", "      amount: \"amount * 2\"\n      hour_of_day:")
    assert "output columns defined twice: amount" in error_of(conf)


def test_model_errors_name_file_and_key(conf):
    models = conf / "models"
    models.mkdir(exist_ok=True)
    base = (
        "model_id: m1\nfeature_set: orders\nfeatures: [amount, items]\nlabel: late\ntask: classification\n"
        "estimator: xgboost.XGBClassifier\ntrain_window_days: 14\neval_window_days: 3\nmetric: auc\n"
    )
    (models / "m1.yaml").write_text(base.replace("label: late", "label: lateness"))
    assert f"{models / 'm1.yaml'}: label: 'lateness' is not a label of feature set 'orders'" in error_of(conf)
    (models / "m1.yaml").write_text(base.replace("xgboost.XGBClassifier", "os.system"))
    assert "m1.yaml: estimator: unknown estimator 'os.system'" in error_of(conf)
    (models / "m1.yaml").write_text(base + "cadence: every night\n")
    assert "m1.yaml: cadence:" in error_of(conf)
    (models / "m1.yaml").write_text(base.replace("metric: auc", "metric: rmse"))
    assert "m1.yaml: metric: 'rmse' is not a classification metric" in error_of(conf)


@pytest.mark.parametrize(("key", "old", "new"), [
    ("validation.alerts_file", "alerts_file: alerts.jsonl", "alerts_file: ../outside/alerts.jsonl"),
    ("metrics.textfile", "textfile: _metrics/retrain.prom", "textfile: _metrics/../../retrain.prom"),
])
def test_alert_and_metrics_files_may_not_leave_the_lakehouse(conf, key, old, new):
    edit(conf / "project.yaml", old, new)
    msg = error_of(conf)
    assert msg.startswith(f"{conf / 'project.yaml'}: {key}: ") and "leaves the lakehouse" in msg


def test_absolute_alert_file_is_allowed_and_catalog_gives_the_paths(conf, tmp_path):
    from engine.catalog import Catalog

    edit(conf / "project.yaml", "alerts_file: alerts.jsonl", f"alerts_file: {tmp_path / 'ops' / 'alerts.jsonl'}")
    cfg = load_config(conf)
    lake = Catalog.of(cfg)
    assert lake.alerts_file == str(tmp_path / "ops" / "alerts.jsonl")
    assert lake.metrics_file == str(conf.parent / "lakehouse" / "_metrics" / "retrain.prom")
    assert not hasattr(cfg, "table") and not hasattr(cfg, "lakehouse_file")


def test_config_does_not_import_the_features_stage():
    """The transform registry is its own module: loading config never imports engine.features."""
    import subprocess
    import sys

    code = ("import sys; from engine.config import load_config; load_config(sys.argv[1]); "
            "print('engine.features' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code, str(REPO / "conf")], capture_output=True, text=True,
                         cwd=REPO, env={"PYTHONPATH": str(REPO), "PATH": "/usr/bin:/bin"})
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "False"
