"""Feature expressions compute a value from their own row (issue 16, item 5): the textual check
at config load sees through comments and newlines; the check on Spark's parsed tree (run start)
names every function as Spark resolves it and refuses reflection, UDFs, file readers and
subqueries."""
from __future__ import annotations

import shutil
from pathlib import Path

import pytest
import yaml

from engine import expressions
from engine.config import load_config
from engine.errors import ConfigError

REPO = Path(__file__).resolve().parents[1]

BYPASSES = [
    "reflect/**/('java.lang.Runtime', 'getRuntime')",
    "reflect\n('java.lang.Runtime', 'getRuntime')",
    "reflect -- a comment\n ('java.lang.Runtime', 'getRuntime')",
    "java_method/* /* nested */ */('java.lang.System', 'exit', 1)",
    "`system`.`builtin`.java_method('java.lang.System', 'exit', 1)",
    "upper(try_reflect /**/ ('java.lang.Thread', 'sleep', 100000L))",
    "amount + (/**/SELECT max(amount) FROM parquet.`/etc`)",
    "EXISTS (SELECT 1)",
]


@pytest.mark.parametrize("expr", BYPASSES)
def test_textual_check_sees_through_comments_and_newlines(expr):
    with pytest.raises(ValueError, match="not allowed"):
        expressions.check_expression(expr)


def test_normalise_keeps_string_literals_out_of_the_check():
    assert expressions.normalise("concat('reflect(', /* x */ region) -- done") == "concat('', region)"
    expressions.check_expression("concat('reflect(', region)")  # a literal may say anything


# Issue 16: cases the checks had not seen. Spelling variants of the denied calls (both checks),
# and what only Spark's tree shows (a function named by a string, the hidden file column,
# functions that read other rows).
SPELLINGS = [
    "ReFlEcT('java.lang.Runtime', 'getRuntime')",
    "`reflect`('java.lang.Runtime', 'getRuntime')",
    "concat(region, java_method('java.lang.System', 'getenv', 'HOME'))",
    "transform(array(1), x -> reflect('java.lang.Thread', 'sleep', 1000L))",
    "named_struct('a', TRY_REFLECT('java.lang.System', 'getenv', 'HOME'))",
    "IDENTIFIER('reflect')('java.lang.Runtime', 'getRuntime')",  # ran reflection before the fix
    "IDENTIFIER('system.builtin.java_method')('java.lang.System', 'exit', 1)",
]


@pytest.mark.parametrize("expr", SPELLINGS)
def test_textual_check_sees_spelling_variants(expr):
    with pytest.raises(ValueError, match="not allowed"):
        expressions.check_expression(expr)


@pytest.mark.parametrize("expr, says", [
    *[(e, "not allowed") for e in BYPASSES],
    *[(e, "not allowed") for e in SPELLINGS],
    ("IDENTIFIER('amount')", r"calls identifier\(\), which is not allowed \(names a function or column by a string"),
    ("read_files('/etc')", r"calls read_files\(\), which is not a built-in Spark function"),
    ("_metadata.file_path", r"reads the hidden column _metadata, which is not allowed \(reads the file a row came from"),
    ("`_metadata`['file_name']", "reads the hidden column _metadata"),
    ("struct(_metadata.*)", "reads the hidden column _metadata"),
    ("avg(delivery_minutes) OVER (PARTITION BY region)", r"is a window expression \(\.\.\. OVER \(\.\.\.\)\), which is not"),
    ("lag(amount) OVER (ORDER BY event_ts)", "is a window expression"),
    ("amount - max(amount)", r"calls max\(\) \(an aggregate reads other rows\), which is not allowed"),
    ("explode(array(amount, items))", r"calls explode\(\) \(a generator makes several rows of one\)"),
    ("input_file_name()", r"calls input_file_name\(\), which is not allowed \(reads the file a row came from"),
    ("amount IN (SELECT amount FROM orders)", "contains a subquery"),
    ("my_java_udf(amount)", r"calls my_java_udf\(\), which is not a built-in Spark function"),
    ("spark_catalog.default.f(amount)", r"calls spark_catalog\.default\.f\(\), which is not a built-in"),
    ("amount +", "is not a Spark SQL expression: .*PARSE_SYNTAX_ERROR"),
])
def test_tree_check_names_functions_as_spark_resolves_them(spark, expr, says):
    with pytest.raises(ValueError, match=says):
        expressions.check_parsed(spark, expr)


@pytest.mark.parametrize("expr", [
    "amount / items", "concat('reflect(', region)", "CAST(dayofweek(ds) IN (1, 7) AS INT)",
    "extract(HOUR FROM event_ts)", "transform(array(1, 2), x -> x + amount)", "system.builtin.upper(region)",
    "datediff(ds, to_date(event_ts))", "CASE WHEN amount > 10 THEN 1 ELSE 0 END",
    "aggregate(array(amount, items), 0D, (acc, x) -> acc + x)", "array_max(array(amount, items))",
    "greatest(amount, items)", "`amount` / 2",
])
def test_tree_check_accepts_row_expressions(spark, expr):
    expressions.check_parsed(spark, expr)


def test_an_external_xml_entity_is_not_read(spark):
    """xpath functions are allowed: Spark's XML parser does not resolve external entities (if a
    Spark upgrade changed that, a feature could read any file the executor can)."""
    secret = "/etc/passwd"
    expr = f"xpath_string('<!DOCTYPE a [<!ENTITY e SYSTEM \"file://{secret}\">]><a>&e;</a>', 'a')"
    expressions.check_parsed(spark, expr)
    [row] = spark.range(1).selectExpr(f"{expr} AS v").collect()
    assert row.v == ""


@pytest.fixture
def conf(tmp_path):
    target = tmp_path / "conf"
    shutil.copytree(REPO / "conf", target)
    return target


def test_the_shipped_config_passes_the_tree_check(spark, conf):
    expressions.check_config(spark, load_config(conf))


def test_a_function_the_text_check_cannot_judge_fails_at_session_start_naming_file_and_key(spark, conf):
    path = conf / "features.yaml"
    data = yaml.safe_load(path.read_text())
    data["feature_sets"]["orders"]["labels"]["late"]["expr"] = "CAST(my_udf(delivery_minutes) AS INT)"
    path.write_text(yaml.safe_dump(data))
    cfg = load_config(conf)  # no Spark at load: the text check passes it
    with pytest.raises(ConfigError) as info:
        expressions.check_config(spark, cfg)
    assert str(info.value).startswith(f"{path}: feature_sets.orders.labels.late.expr: expression ")
    assert "my_udf() , which" not in str(info.value) and "not a built-in Spark function" in str(info.value)


def test_a_comment_bypass_is_a_config_error_at_load(conf):
    path = conf / "features.yaml"
    data = yaml.safe_load(path.read_text())
    data["feature_sets"]["orders"]["features"]["amount_per_item"] = "reflect/**/('java.lang.Runtime', 'getRuntime')"
    path.write_text(yaml.safe_dump(data))
    with pytest.raises(ConfigError, match=r"features\.yaml: feature_sets\.orders\.features: amount_per_item: .*"
                                          r"calls reflect\(\), which is not allowed"):
        load_config(conf)
