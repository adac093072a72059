"""The one adapter around Great Expectations' expectation API: everything GX goes through here.

- `SUPPORTED` / `check_version()`: the GX versions this adapter is written and tested for
  (checked once, when GX is first used: an unsupported GX is one ValidationError line).
- `expectation(type, kwargs, meta)`, `suite(name, expectations)`: GX objects from suite-file
  JSON (GX coerces and checks the kwargs).
- `verdict(expectation, metrics)`: GX's verdict from metrics the engine computed in its own
  aggregation (the expectation class's `_validate`), so success, `mostly`, strict bounds and
  the result format are GX's by construction. `unique_proportion(metrics)`: GX's formula.
- `validate_pandas(pdf, expectations)`: GX itself (pandas engine) on one partition's rows;
  `validate_partitions(part, checks, columns, dates)`: that, inside `groupBy(ds).applyInPandas`,
  for the checks the engine does not evaluate from its aggregation. The pandas frame is what
  Spark's Arrow conversion produces, so GX sees NaN and null alike as missing.
- `jsonable(value)`: a JSON-safe copy of a GX result value.

Pinned by tests/test_gx_adapter.py against the installed GX version.
"""
from __future__ import annotations

import datetime as dt
import decimal
import json
import math
import os
from typing import Any

os.environ.setdefault("GX_ANALYTICS_ENABLED", "false")

SUPPORTED = ((1, 3), (2, 0))  # [1.3, 2): the range pyproject.toml pins
RESULT_FORMAT = {"result_format": "BASIC"}
FALLBACK_SCHEMA = "ds date, idx int, success boolean, result string, exception string"


def version() -> tuple[int, ...]:
    """The installed great_expectations version as a tuple of ints (e.g. (1, 24, 0))."""
    import great_expectations as gx

    parts = []
    for part in gx.__version__.split(".")[:3]:
        digits = "".join(ch for ch in part if ch.isdigit())
        parts.append(int(digits or 0))
    return tuple(parts)


def check_version(supported: tuple[tuple[int, int], tuple[int, int]] = SUPPORTED) -> None:
    """Raise ValidationError (one line: the installed and the supported versions) when the
    installed GX is outside `supported`. Called once, when GX is first used (`expectation`,
    `suite`)."""
    import great_expectations as gx

    from engine.validation.errors import ValidationError

    lo, hi = supported
    if not lo <= version() < hi:
        raise ValidationError(f"great_expectations {gx.__version__} is installed; retrain's GX adapter supports "
                              f">={'.'.join(map(str, lo))},<{'.'.join(map(str, hi))} (install the version "
                              "pyproject.toml pins)")


_VERSION_CHECKED = False


def _first_use() -> None:
    global _VERSION_CHECKED
    if not _VERSION_CHECKED:
        check_version()
        _VERSION_CHECKED = True


def expectation(type_: str, kwargs: dict[str, Any], meta: dict[str, Any] | None = None):
    """GX's Expectation for one suite-file entry (kwargs coerced and checked by GX; raises
    GX's own exceptions on an invalid entry)."""
    _first_use()
    from great_expectations.expectations.expectation_configuration import ExpectationConfiguration

    return ExpectationConfiguration(type=type_, kwargs=kwargs, meta=meta or {}).to_domain_obj()


def suite(name: str, expectations: list, meta: dict[str, Any] | None = None):
    """GX's ExpectationSuite of Expectation objects or suite-file dicts."""
    _first_use()
    from great_expectations.core import ExpectationSuite

    return ExpectationSuite(name=name, expectations=expectations, meta=meta or {})


def verdict(expectation, metrics: dict[str, Any]) -> tuple[bool, dict[str, Any], str | None]:
    """GX's verdict for one expectation from metrics computed elsewhere, keyed by GX metric
    names (e.g. `table.row_count`, `column.median`): (success, JSON-safe BASIC result,
    exception message or None). GX catches exceptions per expectation; so does this."""
    try:
        out = expectation._validate(metrics=metrics, runtime_configuration=RESULT_FORMAT, execution_engine=None)
    except Exception as e:
        return False, {}, f"{type(e).__name__}: {e}"
    return bool(out.get("success")), jsonable(out.get("result") or {}), None


def unique_proportion(metrics: dict[str, Any]) -> float:
    """GX's column.unique_proportion from table.row_count, column.distinct_values.count and
    column_values.nonnull.unexpected_count."""
    from great_expectations.expectations.metrics.column_aggregate_metrics.column_proportion_of_unique_values import (
        unique_proportion as gx_unique_proportion,
    )

    return gx_unique_proportion(metrics)


_CONTEXT: dict[str, Any] = {}


def _batch_definition():
    """One ephemeral GX context per process (creating it costs more than validating)."""
    if "bd" not in _CONTEXT:
        import great_expectations as gx
        from great_expectations.data_context.types.base import ProgressBarsConfig

        context = gx.get_context(mode="ephemeral")
        context.variables.progress_bars = ProgressBarsConfig(globally=False)
        source = context.data_sources.add_pandas("retrain_partition")
        asset = source.add_dataframe_asset("partition")
        _CONTEXT["bd"] = asset.add_batch_definition_whole_dataframe("whole")
    return _CONTEXT["bd"]


def jsonable(value: Any) -> Any:
    """A JSON-safe copy of a GX result value (numpy, dates, NaN -> None, sets -> sorted lists)."""
    try:
        import numpy as np
    except ImportError:  # pragma: no cover
        np = None
    if value is None or isinstance(value, (bool, str)):
        return value
    if isinstance(value, int):
        return value
    if isinstance(value, float):
        return None if math.isnan(value) else value
    if np is not None and isinstance(value, np.generic):
        return jsonable(value.item())
    if isinstance(value, decimal.Decimal):
        return jsonable(float(value))
    if isinstance(value, (dt.datetime, dt.date)):
        return value.isoformat()
    if hasattr(value, "isoformat") and hasattr(value, "to_pydatetime"):  # pandas Timestamp
        return value.isoformat()
    if isinstance(value, dict):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [jsonable(v) for v in value]
    if isinstance(value, (set, frozenset)):
        return sorted((jsonable(v) for v in value), key=lambda v: (str(type(v)), str(v)))
    if np is not None and isinstance(value, np.ndarray):
        return [jsonable(v) for v in value.tolist()]
    try:
        import pandas as pd

        if value is pd.NaT:
            return None
    except ImportError:  # pragma: no cover
        pass
    return str(value)


def validate_pandas(pdf, expectations: list[dict[str, Any]], result_format: str = "BASIC") -> list[dict[str, Any]]:
    """Validate a pandas frame with GX; one dict per expectation, in the given order:
    {success, result (JSON-safe), exception (message or None)}."""
    if not expectations:
        return []
    tagged = [{**e, "meta": {**(e.get("meta") or {}), "_retrain_idx": i}} for i, e in enumerate(expectations)]
    batch = _batch_definition().get_batch(batch_parameters={"dataframe": pdf})
    validation = batch.validate(suite("retrain_partition", tagged), result_format=result_format)
    out: list[dict[str, Any] | None] = [None] * len(expectations)
    for r in validation.results:
        idx = r.expectation_config.meta["_retrain_idx"]
        info = r.exception_info or {}
        raised = bool(info.get("raised_exception"))
        if not raised and info and "raised_exception" not in info:  # {metric_id: {...}} form
            msgs = [v.get("exception_message") for v in info.values() if isinstance(v, dict)]
            raised = any(v.get("raised_exception") for v in info.values() if isinstance(v, dict))
            message = "; ".join(m for m in msgs if m) or None
        else:
            message = info.get("exception_message")
        result = {k: v for k, v in (r.result or {}).items()
                  if k not in ("partial_unexpected_index_list", "unexpected_index_query")}
        out[idx] = {"success": bool(r.success), "result": jsonable(result),
                    "exception": (message or "GX raised an exception") if raised else None}
    return [o if o is not None else {"success": False, "result": {}, "exception": "GX returned no result"}
            for o in out]


def fallback_udf(expectations: list[dict[str, Any]], indices: list[int]):
    """The applyInPandas function: GX on each ds group, one output row per expectation."""
    expectations_json = json.dumps(expectations)

    def run(key, pdf):
        import pandas as pd

        exps = json.loads(expectations_json)
        ds = key[0]
        try:
            results = validate_pandas(pdf, exps)
        except Exception as e:  # a GX failure becomes a failed result, never a crashed job
            results = [{"success": False, "result": {}, "exception": f"{type(e).__name__}: {e}"}] * len(exps)
        return pd.DataFrame({
            "ds": [ds] * len(exps),
            "idx": indices,
            "success": [r["success"] for r in results],
            "result": [json.dumps(r["result"]) for r in results],
            "exception": [r["exception"] for r in results],
        })

    return run


def validate_partitions(part, checks: list, columns: list[str], dates: list[dt.date]) -> list:
    """GX (pandas engine) on each `ds` partition of `part` for `checks` (suites.Check), inside
    `groupBy(ds).applyInPandas` (one Spark job), on the driver for dates with no rows; only
    the columns the checks use travel to the Python workers. -> list of CheckOutcome."""
    from pyspark.sql import functions as F

    from engine.validation.outcomes import CheckOutcome
    from engine.validation.plan import q

    used: set[str] = {"ds"}
    whole = False
    for check in checks:
        names = []
        for key in ("column", "column_A", "column_B"):
            if isinstance(check.kwargs.get(key), str):
                names.append(check.kwargs[key])
        for key in ("column_list",):
            if isinstance(check.kwargs.get(key), list):
                names += [n for n in check.kwargs[key] if isinstance(n, str)]
        if not names or check.type.startswith("expect_table_") or check.kwargs.get("row_condition"):
            whole = True
        used.update(n for n in names if n in columns)
    selected = columns if whole else [c for c in columns if c in used]
    exps = [c.as_json() for c in checks]
    idx = [c.index for c in checks]
    frame = part.select(*[F.col(q(c)) for c in selected])
    rows = frame.groupBy("ds").applyInPandas(fallback_udf(exps, idx), FALLBACK_SCHEMA).collect()
    out = [CheckOutcome(r["idx"], r["ds"], bool(r["success"]), json.loads(r["result"]), r["exception"], "gx")
           for r in rows]
    seen = {r["ds"] for r in rows}
    empty = [d for d in dates if d not in seen]
    if empty:
        results = validate_pandas(frame.limit(0).toPandas(), exps)
        for d in empty:
            for i, r in zip(idx, results):
                out.append(CheckOutcome(i, d, r["success"], r["result"], r["exception"], "gx"))
    return out
