"""Typed, frozen configuration, parsed once from a conf directory.

conf/project.yaml     lakehouse root, sources, Spark settings, validation, metrics
conf/features.yaml    feature sets (MAP 1)
conf/models/*.yaml    one file per model (REDUCE + TRAIN)

Every model is frozen and forbids unknown keys. Errors name the file, the key path and
what was expected.
"""
from __future__ import annotations

import datetime as dt
import re
from pathlib import Path
from typing import Annotated, Any, Literal

import yaml
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
    model_validator,
)

from engine import catalog, plugins
from engine.errors import ConfigError
from engine.expressions import check_expression
from engine.transforms import TRANSFORMS

IDENT = r"^[A-Za-z_][A-Za-z0-9_]*$"


class Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


# --------------------------------------------------------------------------- project


class Source(Frozen):
    """A raw table: Delta, or Parquet partitioned by ds in hive-style ds=YYYY-MM-DD folders."""

    format: Literal["delta", "parquet"]
    path: str


class JdbcSource(Frozen):
    """A relational table (or query) read through Spark's JDBC source, with a `ds` date column
    (alias it in `query` if it has another name). Credentials come from the environment
    variables named here, never from the YAML; the driver jar is in jars/ (`make install`)."""

    format: Literal["jdbc"]
    url: str  # jdbc:postgresql://host:5432/db, without user or password
    table: str | None = None
    query: str | None = None
    partition_column: str | None = None  # a date/number column splitting the read into parallel tasks
    num_partitions: int = Field(4, ge=1)
    user_env: str | None = None  # e.g. ORDERS_DB_USER: the environment variable holding the user
    password_env: str | None = None
    driver: str | None = None  # the JDBC driver class, if Spark cannot tell it from the url

    @model_validator(mode="after")
    def _one_relation_no_secrets(self) -> "JdbcSource":
        if (self.table is None) == (self.query is None):
            raise ValueError("a jdbc source needs exactly one of table or query")
        if not self.url.startswith("jdbc:"):
            raise ValueError(f"url must start with jdbc:, got {self.url!r}")
        if re.search(r"(?i)(password|passwd|pwd)=", self.url) or re.search(r"//[^/@]+:[^/@]+@", self.url):
            raise ValueError("url must not contain a password: name the environment variable in password_env")
        return self

    @property
    def path(self) -> str:
        """Where it is read from, for messages (there is no file path)."""
        return f"{self.url} {self.table or '(query)'}"


class SparkSettings(Frozen):
    master: str = "local[*]"  # ignored when spark-submit sets a master
    conf: dict[str, str] = Field(default_factory=dict)

    @field_validator("conf", mode="before")
    @classmethod
    def _stringify(cls, value: Any) -> Any:
        if isinstance(value, dict):
            return {str(k): str(v).lower() if isinstance(v, bool) else str(v) for k, v in value.items()}
        return value


class LearnedSettings(Frozen):
    """Learned checks: each partition against the table's own history (issue 10)."""

    enabled: bool = True
    severity: Literal["block", "warn"] = "warn"  # block once precision is proven (README)
    min_history: int = Field(14, ge=3)  # valid partitions before leaving learning mode
    history_days: int = Field(90, ge=7)  # valid partitions a day is compared with
    false_alarm_budget: float = Field(1.0, gt=0.0, le=100.0)  # alerts per 100 clean partitions
    columns: list[str] | None = None  # watched columns (default: all)
    exclude: list[str] = Field(default_factory=list)
    segment_by: list[str] = Field(default_factory=list)  # per-segment row shares (beyond models' segment_by)
    # block mode: a run whose learned checks would quarantine more than this share of the days
    # it judged (and more than two) quarantines none of them and reports instead
    max_quarantine_share: float = Field(0.2, gt=0.0, le=1.0)

    def merged(self, override: "LearnedSettings | None") -> "LearnedSettings":
        """These settings with the keys a feature set sets explicitly replaced."""
        if override is None:
            return self
        return self.model_validate({**self.model_dump(), **override.model_dump(exclude_unset=True)})


class ValidationSettings(Frozen):
    # A model whose training window lost more than this share of partitions is not retrained.
    max_quarantined_share: float = Field(0.2, ge=0.0, le=1.0)
    alerts_file: str = "alerts.jsonl"  # under the lakehouse root unless absolute
    webhook_url: str | None = None
    learned: LearnedSettings = Field(default_factory=LearnedSettings)


class MetricsSettings(Frozen):
    textfile: str | None = "_metrics/retrain.prom"  # under the lakehouse root unless absolute
    pushgateway: str | None = None  # e.g. http://127.0.0.1:9091
    job: str = "retrain"


class TrainingSettings(Frozen):
    """Bounds every night's fits stay within (checked at config load and while training)."""

    max_n_estimators: int = Field(5000, ge=1)  # n_estimators / max_iter of any estimator
    pair_timeout_seconds: float = Field(3600.0, gt=0)  # one pair's grid search + refit
    max_depth: int = Field(64, ge=1)  # max_depth of any tree estimator
    max_grid_points: int = Field(256, ge=1)  # parameter combinations one model's grid may search


class MlflowSettings(Frozen):
    """Optional: mirror every trained (model, segment) to MLflow (the registry stays the truth)."""

    tracking_uri: str | None = None  # e.g. http://127.0.0.1:5000 or sqlite:///mlflow.db
    registry_uri: str | None = None
    experiment_prefix: str = "retrain"


class ReportSettings(Frozen):
    nightly: bool = True  # `retrain run` / jobs/nightly.py end by writing <lakehouse>/reports/latest.html
    data_docs: bool = True  # and GX's Data Docs site for the validated partitions


class Project(Frozen):
    name: str = "retrain"
    lakehouse: str = "./lakehouse"
    start_date: dt.date | None = None  # earliest ds the pipeline computes (default: all)
    sources: dict[str, Annotated[Source | JdbcSource, Field(discriminator="format")]]
    spark: SparkSettings = Field(default_factory=SparkSettings)
    validation: ValidationSettings = Field(default_factory=ValidationSettings)
    metrics: MetricsSettings = Field(default_factory=MetricsSettings)
    training: TrainingSettings = Field(default_factory=TrainingSettings)
    mlflow: MlflowSettings = Field(default_factory=MlflowSettings)
    reports: ReportSettings = Field(default_factory=ReportSettings)
    lock_ttl_minutes: int = Field(360, ge=1)  # a lock older than this is stale
    # Python modules that register transforms and estimators (engine/plugins.py), imported
    # before the rest of the config is validated.
    plugins: list[str] = Field(default_factory=list)

    @field_validator("plugins")
    @classmethod
    def _module_names(cls, value: list[str]) -> list[str]:
        for i, name in enumerate(value):
            if not re.match(r"^[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)*$", name):
                raise ValueError(f"plugin {i}: expected a module name like my_team.features, got {name!r}")
        return value

    @field_validator("sources")
    @classmethod
    def _source_names(cls, value: dict[str, Source]) -> dict[str, Source]:
        for name in value:
            if not re.match(IDENT, name):
                raise ValueError(f"source name {name!r} must be an identifier")
        return value


# --------------------------------------------------------------------------- features

Agg = Literal["sum", "count", "mean", "min", "max"]


class Rolling(Frozen):
    """An aggregate per key over the N days before ds (ds-N .. ds-1)."""

    name: str = Field(pattern=IDENT)
    by: list[str] = Field(min_length=1)
    column: str  # a Spark SQL expression; "1" with agg=count counts rows
    agg: Agg
    days: int = Field(ge=1, le=366)

    @field_validator("column")
    @classmethod
    def _safe(cls, value: str) -> str:
        check_expression(value)
        return value


class AsOfJoin(Frozen):
    """Join the latest row of another source at or before the event time, never a later one."""

    source: str
    keys: list[str] = Field(min_length=1)  # equal on these columns ("on" is a YAML boolean)
    time: str  # the other source's timestamp column
    max_lag_hours: int = Field(24, ge=1, le=24 * 31)
    columns: dict[str, str]  # output name -> column of the other source


class Label(Frozen):
    expr: str  # Spark SQL expression over the source row
    delay_days: int = Field(0, ge=0)  # the label for ds is known at ds + delay_days

    @field_validator("expr")
    @classmethod
    def _safe(cls, value: str) -> str:
        check_expression(value)
        return value


class FeatureSet(Frozen):
    name: str = ""
    source: str
    entity: list[str] = Field(min_length=1)
    event_time: str | None = None  # needed for as-of joins
    columns: list[str] = Field(default_factory=list)  # passed through unchanged
    features: dict[str, str] = Field(default_factory=dict)  # name -> Spark SQL expression
    rolling: list[Rolling] = Field(default_factory=list)
    as_of_joins: list[AsOfJoin] = Field(default_factory=list)
    transforms: list[str] = Field(default_factory=list)  # registered Python transforms
    labels: dict[str, Label] = Field(default_factory=dict)
    learned: LearnedSettings | None = None  # overrides validation.learned of project.yaml

    @field_validator("features")
    @classmethod
    def _safe_features(cls, value: dict[str, str]) -> dict[str, str]:
        for name, expr in value.items():
            try:
                check_expression(expr)
            except ValueError as e:
                raise ValueError(f"{name}: {e}") from e
        return value

    @field_validator("event_time")
    @classmethod
    def _safe_event_time(cls, value: str | None) -> str | None:
        if value is not None:
            check_expression(value)
        return value

    @model_validator(mode="after")
    def _check(self) -> "FeatureSet":
        if self.as_of_joins and not self.event_time:
            raise ValueError("as_of_joins need event_time (the column to join as of)")
        names = list(self.columns) + list(self.features) + [r.name for r in self.rolling]
        names += [c for j in self.as_of_joins for c in j.columns] + list(self.labels)
        dupes = sorted({n for n in names if names.count(n) > 1})
        if dupes:
            raise ValueError(f"output columns defined twice: {', '.join(dupes)}")
        for name in list(self.features) + list(self.labels):
            if not re.match(IDENT, name):
                raise ValueError(f"output column {name!r} must be an identifier")
        return self

    @property
    def max_lookback_days(self) -> int:
        days = [r.days for r in self.rolling]
        days += [(j.max_lag_hours + 23) // 24 for j in self.as_of_joins]
        return max(days, default=0)

    @property
    def output_columns(self) -> list[str]:
        cols = list(self.entity) + [c for c in self.columns if c not in self.entity]
        if self.event_time and self.event_time not in cols:
            cols.append(self.event_time)
        cols += list(self.features) + [r.name for r in self.rolling]
        cols += [c for j in self.as_of_joins for c in j.columns]
        return cols + list(self.labels)


# --------------------------------------------------------------------------- models

Task = Literal["classification", "regression"]
Metric = Literal["auc", "logloss", "accuracy", "f1", "rmse", "mae", "r2"]
HIGHER_IS_BETTER: dict[str, bool] = {
    "auc": True, "logloss": False, "accuracy": True, "f1": True,
    "rmse": False, "mae": False, "r2": True,
}
CLASSIFICATION_METRICS = {"auc", "logloss", "accuracy", "f1"}


class Slo(Frozen):
    """The metric must be at least `min` (higher-is-better) or at most `max`."""

    min: float | None = None
    max: float | None = None

    def met(self, value: float) -> bool:
        if value != value:  # NaN never meets an SLO
            return False
        if self.min is not None and value < self.min:
            return False
        return not (self.max is not None and value > self.max)


class Promotion(Frozen):
    min_delta: float = Field(0.0, ge=0.0)


class ModelConfig(Frozen):
    model_id: str = Field(pattern=IDENT)
    feature_set: str
    features: list[str] = Field(min_length=1)
    label: str
    task: Task
    estimator: str  # a name from engine.training.estimators' allowlist
    params: dict[str, Any] = Field(default_factory=dict)  # fixed parameters
    grid: dict[str, list[Any]] = Field(default_factory=dict)  # searched parameters
    segment_by: str | None = None
    train_window_days: int = Field(ge=1)
    eval_window_days: int = Field(ge=1)
    refit: bool = True  # refit the chosen params on train + eval window
    cadence: str = "daily"  # daily | weekly | a 5-field cron expression
    metric: Metric
    slo: Slo = Field(default_factory=Slo)
    promotion: Promotion = Field(default_factory=Promotion)
    min_rows: int = Field(50, ge=1)
    max_quarantined_share: float | None = Field(None, ge=0.0, le=1.0)

    @field_validator("cadence")
    @classmethod
    def _cadence(cls, value: str) -> str:
        if value in ("daily", "weekly"):
            return value
        from croniter import croniter

        if len(value.split()) != 5 or not croniter.is_valid(value):
            raise ValueError(f"expected 'daily', 'weekly' or a 5-field cron expression, got {value!r}")
        return value

    @model_validator(mode="after")
    def _check(self) -> "ModelConfig":
        if (self.task == "classification") != (self.metric in CLASSIFICATION_METRICS):
            fits = sorted(m for m in HIGHER_IS_BETTER if (m in CLASSIFICATION_METRICS) == (self.task == "classification"))
            raise ValueError(f"metric: {self.metric!r} is not a {self.task} metric (expected one of {fits} for "
                             f"task {self.task})")
        if self.eval_window_days >= self.train_window_days:
            raise ValueError("eval_window_days must be smaller than train_window_days")
        for i, name in enumerate(self.features):
            if name == self.label:
                raise ValueError(f"features.{i}: {name!r} is the label (label {self.label!r} is also listed as a "
                                 "feature: the model would learn its own answer)")
            if name in self.features[:i]:
                raise ValueError(f"features.{i}: {name!r} is listed twice (also features.{self.features.index(name)})")
        return self

    def due(self, day: dt.date) -> bool:
        """Is this model due to retrain on logical date `day`?"""
        if self.cadence == "daily":
            return True
        if self.cadence == "weekly":
            return day.weekday() == 0  # Mondays
        from croniter import croniter

        return croniter.match(self.cadence, dt.datetime.combine(day, dt.time()))


# --------------------------------------------------------------------------- loading


class Config(Frozen):
    root: Path  # the conf directory
    project: Project
    feature_sets: dict[str, FeatureSet]
    models: dict[str, ModelConfig]

    def resolve(self, path: str) -> str:
        """A path from the config: URIs and absolute paths as given, relative ones against
        the project directory (the conf directory's parent)."""
        return catalog.resolve(path, self.root.parent)

    @property
    def lakehouse(self) -> str:
        return self.resolve(self.project.lakehouse)


class _Loader(yaml.SafeLoader):
    """safe_load that refuses a key defined twice in one mapping (PyYAML keeps the last one
    silently: a second `label:` would retrain a model on another label)."""


def _unique_mapping(loader: _Loader, node: yaml.MappingNode, deep: bool = False) -> dict:
    first: dict[Any, int] = {}
    for key_node, _ in node.value:
        if key_node.tag == "tag:yaml.org,2002:merge":  # `<<: *base`: merged keys may be overridden
            continue
        key = loader.construct_object(key_node, deep=True)
        try:
            seen = first.setdefault(key, key_node.start_mark.line)
        except TypeError:  # an unhashable key: construct_mapping says so
            continue
        if seen != key_node.start_mark.line:
            raise yaml.constructor.ConstructorError(
                None, None, f"key {key!r} is defined twice (first at line {seen + 1})", key_node.start_mark)
    return loader.construct_mapping(node, deep=deep)


_Loader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _unique_mapping)


def _read_yaml(path: Path) -> Any:
    """The YAML document of `path`; a ConfigError on one line naming the file, line and column."""
    try:
        data = path.read_bytes()
    except FileNotFoundError as e:
        raise ConfigError(f"{path}: file not found") from e
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as e:
        line = data.count(b"\n", 0, e.start) + 1
        column = e.start - (data.rfind(b"\n", 0, e.start) + 1) + 1
        raise ConfigError(f"{path}: not valid UTF-8 at line {line}, column {column} (byte 0x{data[e.start]:02x}): "
                          "expected a UTF-8 text file (save it as UTF-8)") from None
    try:
        return yaml.load(text, Loader=_Loader)  # noqa: S506 (a SafeLoader)
    except yaml.MarkedYAMLError as e:
        mark = e.problem_mark or e.context_mark
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        problem = " ".join(str(e.problem or e.context or "").split())
        if "'\\t'" in problem:
            problem += " (YAML indents with spaces, not tabs)"
        raise ConfigError(f"{path}: not valid YAML{where}: {problem}") from None
    except yaml.YAMLError as e:
        raise ConfigError(f"{path}: not valid YAML: {' '.join(str(e).split())}") from None


def _parse(model: type[BaseModel], data: Any, file: Path, prefix: str = "", **extra: Any):
    if data is None and not prefix:
        raise ConfigError(f"{file}: the file is empty (or holds only comments), expected a mapping")
    if not isinstance(data, dict):
        where = f" at {prefix}" if prefix else ""
        raise ConfigError(f"{file}{where}: expected a mapping, got {type(data).__name__}")
    try:
        return model.model_validate({**data, **extra})
    except ValidationError as e:
        raise ConfigError(_format_errors(file, prefix, e, model)) from e


def _format_errors(file: Path, prefix: str, error: ValidationError, model: type[BaseModel] | None = None) -> str:
    import difflib

    errors = error.errors()
    fields = list(model.model_fields) if model is not None else []
    # a misspelt key (`featurs:`) is one error, "unknown key (did you mean 'features'?)", not
    # also "features: required key is missing"
    missing = {err["loc"][0] for err in errors if err["type"] == "missing" and len(err["loc"]) == 1}
    meant: dict[str, str] = {}
    for err in errors:
        if err["type"] == "extra_forbidden" and len(err["loc"]) == 1:
            close = difflib.get_close_matches(str(err["loc"][0]), fields, n=1)
            if close:
                meant[str(err["loc"][0])] = close[0]
    lines = []
    for err in errors:
        path = ".".join(str(p) for p in ((prefix,) if prefix else ()) + tuple(err["loc"]))
        msg = err["msg"]
        if err["type"] == "extra_forbidden":
            msg = "unknown key"
            if len(err["loc"]) == 1 and str(err["loc"][0]) in meant:
                msg += f" (did you mean {meant[str(err['loc'][0])]!r}?)"
        elif err["type"] == "missing" and len(err["loc"]) == 1 and err["loc"][0] in missing \
                and err["loc"][0] in meant.values():
            continue  # said with the misspelt key
        elif err["type"] in ("missing", "union_tag_not_found"):
            if err["type"] == "union_tag_not_found":  # a source without `format:`
                path += "." + str(err["ctx"]["discriminator"]).strip("'")
            msg = "required key is missing"
        elif err["type"] == "union_tag_invalid":  # e.g. a source's `format: csv`
            path += "." + str(err["ctx"]["discriminator"]).strip("'")
            msg = f"expected one of {err['ctx']['expected_tags']}, got {err['ctx']['tag']!r}"
        elif "input" in err and err["type"] not in ("value_error",):
            msg = f"{msg}, got {err['input']!r}"
        msg = msg.removeprefix("Value error, ")
        if not path and re.match(r"^[A-Za-z_][\w.]*: ", msg):  # a model check that names its key
            lines.append(f"{file}: {msg}")
            continue
        lines.append(f"{file}: {path or '(top level)'}: {msg}")
    return "\n".join(lines)


def _check_lakehouse_files(project: Project, project_file: Path, base: Path) -> None:
    """Alert and metrics files stay inside the lakehouse unless configured as absolute paths."""
    lakehouse = catalog.Catalog(catalog.resolve(project.lakehouse, base), project.validation.alerts_file,
                                project.metrics.textfile)
    for key, get in (("validation.alerts_file", lambda: lakehouse.alerts_file),
                     ("metrics.textfile", lambda: lakehouse.metrics_file)):
        try:
            get()
        except ValueError as e:
            raise ConfigError(f"{project_file}: {key}: {e}") from e


def load_config(conf_dir: str | Path) -> Config:
    """Parse a conf directory once into typed, frozen objects; raise ConfigError on any fault."""
    root = Path(conf_dir).resolve()
    if not root.is_dir():
        raise ConfigError(f"{conf_dir}: not a directory (expected a conf directory with project.yaml)")
    project_file = root / "project.yaml"
    project = _parse(Project, _read_yaml(project_file), project_file)
    _check_lakehouse_files(project, project_file, root.parent)
    # Plugins register transforms and estimators: import them before checking any name.
    plugins.load(project.plugins, project_file, root.parent)

    features_file = root / "features.yaml"
    feature_sets: dict[str, FeatureSet] = {}
    if features_file.exists():
        data = _read_yaml(features_file) or {}
        if not isinstance(data, dict) or set(data) - {"feature_sets"}:
            extra = sorted(set(data) - {"feature_sets"}) if isinstance(data, dict) else []
            raise ConfigError(f"{features_file}: expected only the key 'feature_sets', found {extra or type(data).__name__}")
        for name, spec in (data.get("feature_sets") or {}).items():
            if not re.match(IDENT, str(name)):
                raise ConfigError(f"{features_file}: feature_sets.{name}: name must be an identifier")
            fs = _parse(FeatureSet, spec, features_file, f"feature_sets.{name}", name=name)
            if fs.source not in project.sources:
                raise ConfigError(
                    f"{features_file}: feature_sets.{name}.source: unknown source {fs.source!r} "
                    f"(expected one of {sorted(project.sources)} from {project_file})"
                )
            for i, join in enumerate(fs.as_of_joins):
                if join.source not in project.sources:
                    raise ConfigError(
                        f"{features_file}: feature_sets.{name}.as_of_joins.{i}.source: unknown source "
                        f"{join.source!r} (expected one of {sorted(project.sources)})"
                    )
            for i, transform in enumerate(fs.transforms):
                if transform not in TRANSFORMS:
                    raise ConfigError(
                        f"{features_file}: feature_sets.{name}.transforms.{i}: unknown transform {transform!r} "
                        f"(registered in code: {sorted(TRANSFORMS)}; plugins: {project.plugins} from {project_file})"
                    )
            feature_sets[name] = fs

    models: dict[str, ModelConfig] = {}
    files = sorted((root / "models").glob("*.y*ml")) if (root / "models").is_dir() else []
    files = [f for f in files if f.suffix in (".yaml", ".yml")]
    by_id: dict[str, list[Path]] = {}
    for file in files:
        by_id.setdefault(file.stem, []).append(file)
    for model_id, same in sorted(by_id.items()):
        if len(same) > 1:
            raise ConfigError(f"{same[0]}: model_id {model_id!r} is also defined by {', '.join(map(str, same[1:]))} "
                              "(expected one file per model: keep one of them)")
    for file in files:
        model = _parse(ModelConfig, _read_yaml(file), file)
        if model.model_id != file.stem:
            raise ConfigError(f"{file}: model_id: expected {file.stem!r} (the file name), got {model.model_id!r}")
        fs = feature_sets.get(model.feature_set)
        if fs is None:
            raise ConfigError(
                f"{file}: feature_set: unknown feature set {model.feature_set!r} "
                f"(expected one of {sorted(feature_sets)} from {features_file})"
            )
        available = set(fs.output_columns) | {c for t in fs.transforms for c in TRANSFORMS[t].outputs}
        for i, col in enumerate(model.features):
            if col not in available or col in fs.labels:
                raise ConfigError(f"{file}: features.{i}: {col!r} is not a feature of feature set {fs.name!r}")
        if model.label not in fs.labels:
            raise ConfigError(
                f"{file}: label: {model.label!r} is not a label of feature set {fs.name!r} "
                f"(expected one of {sorted(fs.labels)})"
            )
        if model.segment_by is not None:
            if model.segment_by in fs.labels:
                raise ConfigError(f"{file}: segment_by: {model.segment_by!r} is a label of feature set {fs.name!r} "
                                  "(expected a column known before the label, e.g. a region or a product line)")
            if model.segment_by in model.features:
                raise ConfigError(f"{file}: segment_by: {model.segment_by!r} is also listed in features (expected a "
                                  "column that is not a feature: it is constant within a segment)")
            if model.segment_by not in available:
                raise ConfigError(f"{file}: segment_by: {model.segment_by!r} is not a column of feature set {fs.name!r}")
        from engine.training.estimators import ParamError, check_estimator, limits_of

        try:
            check_estimator(model.estimator, model.task, model.params, grid=model.grid, limits=limits_of(project))
        except ParamError as e:
            raise ConfigError(f"{file}: {e.key}: {e}") from e
        except ValueError as e:
            raise ConfigError(f"{file}: estimator: {e}") from e
        for key in sorted(set(model.params) & set(model.grid)):
            raise ConfigError(f"{file}: grid.{key}: {key!r} is also set in params ({model.params[key]!r}); the grid "
                              "would replace it: set it in one of them")
        models[model.model_id] = model

    return Config(root=root, project=project, feature_sets=feature_sets, models=models)
