"""Run Great Expectations itself (pandas engine) on one partition's rows.

Used for expectation types the engine does not evaluate from its aggregation (inside
`groupBy(ds).applyInPandas`, one GX run per partition), and as the reference the
differential test compares the engine with. The pandas frame is what Spark's Arrow
conversion produces (`toPandas` / `applyInPandas`), so GX sees NaN and null alike as missing.
"""
from __future__ import annotations

import datetime as dt
import decimal
import json
import math
import os
from typing import Any

os.environ.setdefault("GX_ANALYTICS_ENABLED", "false")

_CONTEXT: dict[str, Any] = {}

FALLBACK_SCHEMA = "ds date, idx int, success boolean, result string, exception string"


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
    from great_expectations.core import ExpectationSuite

    if not expectations:
        return []
    tagged = [{**e, "meta": {**(e.get("meta") or {}), "_retrain_idx": i}} for i, e in enumerate(expectations)]
    suite = ExpectationSuite(name="retrain_partition", expectations=tagged)
    batch = _batch_definition().get_batch(batch_parameters={"dataframe": pdf})
    validation = batch.validate(suite, result_format=result_format)
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
