"""The GX adapter pinned against the installed great_expectations.

The engine talks to GX only through engine/validation/gx_adapter.py; these tests fail when an
upgrade of GX changes what the adapter relies on: the version range, GX's verdict from
metrics (`Expectation._validate`) for every expectation type the engine evaluates itself,
GX's own run on a pandas frame, and GX's building of expectations and suites.
"""
from __future__ import annotations

import datetime as dt
import re
import tomllib
from pathlib import Path

import great_expectations as gx
import pytest

from engine.validation import gx_adapter
from engine.validation.evaluate import evaluate, supported_types
from engine.validation.suites import parse_suite

DAY = dt.date(2026, 4, 1)
EMPTY = dt.date(2026, 4, 2)
ROWS = [(DAY, 1.0, "a", 3), (DAY, 2.0, "b", 3), (DAY, 2.0, "b", None), (DAY, None, None, 7), (DAY, 5.0, "ab", 9)]
SCHEMA = "ds date, x double, s string, i int"

# one small case per expectation type the engine evaluates from its aggregation
CASES = [
    ("expect_column_values_to_not_be_null", {"column": "x", "mostly": 0.7}),
    ("expect_column_values_to_be_null", {"column": "s"}),
    ("expect_column_values_to_be_between", {"column": "x", "min_value": 1, "max_value": 2}),
    ("expect_column_values_to_be_in_set", {"column": "s", "value_set": ["a", "b"]}),
    ("expect_column_values_to_not_be_in_set", {"column": "s", "value_set": ["ab"]}),
    ("expect_column_values_to_be_unique", {"column": "x"}),
    ("expect_column_values_to_match_regex", {"column": "s", "regex": "^a"}),
    ("expect_column_min_to_be_between", {"column": "x", "min_value": 0, "max_value": 1}),
    ("expect_column_max_to_be_between", {"column": "i", "max_value": 8}),
    ("expect_column_mean_to_be_between", {"column": "x", "min_value": 2, "max_value": 3}),
    ("expect_column_stdev_to_be_between", {"column": "x", "min_value": 0, "max_value": 1}),
    ("expect_column_median_to_be_between", {"column": "x", "min_value": 2, "max_value": 2}),
    ("expect_column_unique_value_count_to_be_between", {"column": "s", "min_value": 3, "max_value": 3}),
    ("expect_column_proportion_of_unique_values_to_be_between", {"column": "s", "min_value": 0.9}),
    ("expect_table_row_count_to_be_between", {"min_value": 1, "max_value": 4}),
    ("expect_table_columns_to_match_set", {"column_set": ["ds", "x", "s", "i"], "exact_match": True}),
    ("expect_column_to_exist", {"column": "i", "column_index": 2}),
]
IGNORED = {"partial_unexpected_list", "partial_unexpected_counts", "partial_unexpected_index_list",
           "unexpected_index_query"}


def _gx_direct(pdf, type_: str, kwargs: dict) -> tuple[bool, dict]:
    """GX's own answer, without the adapter: an ephemeral context, a pandas batch, validate."""
    from great_expectations.expectations.expectation_configuration import ExpectationConfiguration

    context = gx.get_context(mode="ephemeral")
    batch = (context.data_sources.add_pandas("direct").add_dataframe_asset("frame")
             .add_batch_definition_whole_dataframe("whole").get_batch(batch_parameters={"dataframe": pdf}))
    expectation = ExpectationConfiguration(type=type_, kwargs=kwargs).to_domain_obj()
    result = batch.validate(expectation, result_format="BASIC")
    return bool(result.success), gx_adapter.jsonable({k: v for k, v in (result.result or {}).items() if k not in IGNORED})


def _strip(result: dict) -> dict:
    return {k: v for k, v in result.items() if k not in IGNORED}


def test_installed_gx_is_in_the_supported_range():
    lo, hi = gx_adapter.SUPPORTED
    assert lo <= gx_adapter.version() < hi, gx.__version__
    gx_adapter.check_version()  # does not raise
    from engine.validation.errors import ValidationError

    with pytest.raises(ValidationError, match=rf"great_expectations {re.escape(gx.__version__)} is installed; "
                                              r"retrain's GX adapter supports >=0\.1,<0\.2 \(install the version"):
        gx_adapter.check_version(((0, 1), (0, 2)))
    # the adapter's range is the one pyproject.toml pins
    pyproject = tomllib.loads((Path(__file__).resolve().parents[1] / "pyproject.toml").read_text())
    pin = next(d for d in pyproject["project"]["dependencies"] if d.startswith("great-expectations"))
    found = dict(re.findall(r"(>=|<)\s*([\d.]+)", pin))
    pad = lambda v: (tuple(int(p) for p in v.split(".")) + (0, 0))[:2]  # noqa: E731
    assert (pad(found[">="]), pad(found["<"])) == (lo, hi), pin


def test_every_supported_type_has_a_case():
    assert sorted({t for t, _ in CASES}) == supported_types()


def test_engine_verdict_through_the_adapter_equals_gx(spark):
    """For every supported type, the engine's metrics + the adapter's `verdict` give GX's own
    success and result, on a partition with rows and on an empty one."""
    df = spark.createDataFrame(ROWS, SCHEMA)
    suite = parse_suite({"name": "pin", "expectations": [{"type": t, "kwargs": kw} for t, kw in CASES]})
    got = evaluate(spark, df, suite, [DAY, EMPTY], profile=False)
    assert got.native_types == supported_types() and got.gx_types == []
    differences = []
    for d in (DAY, EMPTY):
        pdf = df.where(df.ds == d).toPandas()
        for (type_, kwargs), outcome in zip(CASES, got.outcomes[d]):
            success, result = _gx_direct(pdf, type_, kwargs)
            if outcome.exception is not None or (outcome.success, _strip(outcome.result)) != (success, result):
                differences.append(f"ds={d} {type_}: engine {outcome.success} {outcome.result} "
                                   f"{outcome.exception or ''} != GX {success} {result}")
    assert not differences, "\n".join(differences)
    # the small frame exercises both verdicts
    assert {o.success for o in got.outcomes[DAY]} == {True, False}


def test_validate_pandas_equals_gx_on_a_small_frame(spark):
    """GX run through the adapter (one suite, results back in suite order, JSON-safe) equals
    GX run directly, expectation by expectation; a GX exception becomes a failed result."""
    pdf = spark.createDataFrame(ROWS, SCHEMA).toPandas()
    exps = [{"type": t, "kwargs": kw} for t, kw in CASES]
    exps.append({"type": "expect_column_value_lengths_to_be_between", "kwargs": {"column": "s", "min_value": 1,
                                                                                 "max_value": 1}})
    exps.append({"type": "expect_column_values_to_not_be_null", "kwargs": {"column": "nope"}})
    got = gx_adapter.validate_pandas(pdf, exps)
    assert len(got) == len(exps)
    for e, mine in zip(exps[:-1], got[:-1]):
        success, result = _gx_direct(pdf, e["type"], e["kwargs"])
        assert (mine["success"], _strip(mine["result"])) == (success, result), e["type"]
        assert mine["exception"] is None
    assert got[-1]["success"] is False and "nope" in got[-1]["exception"]


def test_expectations_and_suites_are_built_by_gx():
    e = gx_adapter.expectation("expect_column_min_to_be_between", {"column": "d", "min_value": "2026-01-01"},
                               {"severity": "warn"})
    assert type(e).__name__ == "ExpectColumnMinToBeBetween"
    assert e.column == "d" and e.meta == {"severity": "warn"}
    with pytest.raises(Exception):
        gx_adapter.expectation("expect_no_such_thing", {"column": "x"})
    s = gx_adapter.suite("pinned", [e])
    assert s.name == "pinned" and len(s.expectations) == 1


def test_verdict_turns_a_gx_exception_into_a_failed_result():
    e = gx_adapter.expectation("expect_column_mean_to_be_between", {"column": "x", "min_value": 0})
    success, result, exception = gx_adapter.verdict(e, {"column.mean": "not a number"})
    assert success is False and result == {} and exception.startswith("TypeError")


@pytest.mark.parametrize("run_id", ["20261021-184736-6316ad", "20261021-184736-123456", "20261021-184736-a316ad"])
def test_a_run_id_gx_could_read_as_a_time_still_renders_its_data_docs_page_title(run_id):
    """GX reads a run name as a time where dateutil can: a bare run id ending in digits then
    letters (-6316ad: a UTC offset of -63:16) made GX's page renderer raise and the page was
    not rendered (seen in CI on the demo's Data Docs, depending on the random run id)."""
    from great_expectations.render.renderer.page_renderer import ValidationResultsPageRenderer

    from engine.datadocs import run_identifier

    rid = run_identifier(run_id, dt.datetime(2026, 10, 21, 18, 47, 36, tzinfo=dt.timezone.utc))
    title = ValidationResultsPageRenderer()._determine_page_title(rid.run_name, rid.run_time.isoformat(), "orders",
                                                                 "orders")
    assert run_id in title
