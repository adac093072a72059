"""Checks on the Spark SQL expressions a feature set configures: an expression computes a value
from its own row, nothing else.

Two checks, both raising ValueError (config loading turns it into a ConfigError naming the
file and key):
- `check_expression(expr)` at config load, without Spark: the text with string literals,
  comments (`--`, nested `/* */`) and whitespace normalised, so `reflect/**/(` or a newline
  before the parenthesis are the call they are to Spark.
- `check_parsed(spark, expr)` once the run's Spark session exists, before anything is written
  (`check_config`): Spark's own parser builds the expression tree and every function is
  named as Spark resolves it. Allowed: Spark's built-in functions minus DENIED_FUNCTIONS.
  Refused: Java reflection, any function that is not built in (a Java/Hive UDF or a
  catalog function), functions that read outside the row (the file a row came from, also
  through the hidden `_metadata` column), IDENTIFIER('name') (a function named by a string),
  aggregates, window expressions and generators (they read other rows or make several), and
  every subquery (scalar, EXISTS, IN (SELECT ...), which can read any table or file).
"""
from __future__ import annotations

import re
from typing import TYPE_CHECKING, Iterator

if TYPE_CHECKING:  # pragma: no cover
    from engine.config import Config

# Java reflection runs any static method of the driver's and executors' JVMs; the input_file_*
# functions read where a row was stored, not the row (a feature would change with file layout).
DENIED_FUNCTIONS = {
    "reflect": "Java reflection", "java_method": "Java reflection", "try_reflect": "Java reflection",
    "input_file_name": "reads the file a row came from, not the row",
    "input_file_block_start": "reads the file a row came from, not the row",
    "input_file_block_length": "reads the file a row came from, not the row",
    # IDENTIFIER('reflect')(...) calls the function a string names: neither check could judge it
    "identifier": "names a function or column by a string, which the check cannot judge; write the name itself",
}
# `_metadata` is the hidden column of Spark's file sources (_metadata.file_path = input_file_name()).
METADATA_COLUMN = "_metadata"
# Functions of these groups (Spark's ExpressionInfo.getGroup) read other rows or make several
# rows of one; window expressions (... OVER (...)) are refused as such.
DENIED_GROUPS = {
    "agg_funcs": "an aggregate reads other rows", "window_funcs": "a window function reads other rows",
    "generator_funcs": "a generator makes several rows of one",
}
_BUILTIN_QUALIFIERS = ((), ("builtin",), ("system", "builtin"))
_CALL = re.compile(r"`?([A-Za-z_][A-Za-z0-9_.`]*)`?\s*\(")
_SUBQUERY = re.compile(r"\bselect\b|\(\s*table\b", re.IGNORECASE)  # not FROM: extract(day FROM ts) is fine


def normalise(expr: str) -> str:
    """`expr` with string literals replaced by '' and comments by one space (Spark nests block
    comments), whitespace runs collapsed: what the textual check reads."""
    out: list[str] = []
    i, n = 0, len(expr)
    while i < n:
        c = expr[i]
        if c in "'\"":
            j = i + 1
            while j < n and expr[j] != c:
                j += 2 if expr[j] == "\\" else 1
            out.append("''")
            i = j + 1
        elif expr.startswith("--", i):
            j = expr.find("\n", i)
            out.append(" ")
            i = n if j < 0 else j
        elif expr.startswith("/*", i):
            depth, j = 1, i + 2
            while j < n and depth:
                if expr.startswith("/*", j):
                    depth, j = depth + 1, j + 2
                elif expr.startswith("*/", j):
                    depth, j = depth - 1, j + 2
                else:
                    j += 1
            out.append(" ")
            i = j
        else:
            out.append(c)
            i += 1
    return re.sub(r"\s+", " ", "".join(out)).strip()


def _denied(name: str, expr: str) -> ValueError:
    return ValueError(f"expression {expr!r} calls {name}(), which is not allowed ({DENIED_FUNCTIONS[name]}; "
                      f"no {', '.join(DENIED_FUNCTIONS)} in feature expressions)")


def _other_rows(expr: str, what: str) -> ValueError:
    return ValueError(f"expression {expr!r} {what}, which is not allowed: an expression computes a value from its own "
                      "row (use rolling: for aggregates over past days)")


def _metadata(expr: str) -> ValueError:
    return ValueError(f"expression {expr!r} reads the hidden column {METADATA_COLUMN}, which is not allowed (reads "
                      "the file a row came from, not the row)")


def _subquery(expr: str) -> ValueError:
    return ValueError(f"expression {expr!r} contains a subquery (SELECT, EXISTS, IN (SELECT ...) or TABLE), which is "
                      "not allowed: an expression computes a value from its own row")


def check_expression(expr: str) -> None:
    """The textual check at config load (no Spark): raise ValueError when `expr` calls a denied
    function or holds a subquery, whatever comments or whitespace separate a name from its
    parenthesis."""
    code = normalise(expr)
    for match in _CALL.finditer(code):
        name = match.group(1).replace("`", "").lower().rsplit(".", 1)[-1]
        if name in DENIED_FUNCTIONS:
            raise _denied(name, expr)
    if _SUBQUERY.search(code):
        raise _subquery(expr)


# --------------------------------------------------------------------------- Spark's tree


def _children(node) -> Iterator:
    children = node.children()
    for i in range(children.size()):
        yield children.apply(i)


def check_parsed(spark, expr: str) -> None:
    """Raise ValueError unless Spark parses `expr` into a tree whose every function is one of
    Spark's built-ins (as Spark names them, qualifiers included) outside DENIED_FUNCTIONS and
    which holds no subquery."""
    jvm = spark._jvm
    parser = spark._jsparkSession.sessionState().sqlParser()
    try:
        tree = parser.parseExpression(expr)
    except Exception as e:
        first = next((line.strip() for line in str(e).splitlines() if line.strip()), type(e).__name__)
        raise ValueError(f"expression {expr!r} is not a Spark SQL expression: {first}") from None
    registry = jvm.org.apache.spark.sql.catalyst.analysis.FunctionRegistry.builtin()
    stack = [tree]
    while stack:
        node = stack.pop()
        kind = node.getClass().getSimpleName()
        if "Subquery" in kind or kind in ("Exists", "ListQuery"):
            raise _subquery(expr)
        if kind == "ExpressionWithUnresolvedIdentifier":  # IDENTIFIER('name')(...) or IDENTIFIER('col')
            raise _denied("identifier", expr)
        if kind in ("WindowExpression", "UnresolvedWindowExpression"):
            raise _other_rows(expr, "is a window expression (... OVER (...))")
        if kind in ("UnresolvedAttribute", "UnresolvedStar"):
            names = node.nameParts() if kind == "UnresolvedAttribute" else (
                node.target().get() if node.target().isDefined() else None)
            if names is not None and names.size() and str(names.apply(0)).lower() == METADATA_COLUMN:
                raise _metadata(expr)
        if kind == "UnresolvedFunction":
            names = node.nameParts()
            parts = [str(names.apply(i)) for i in range(names.size())]
            name, qualifier = parts[-1].lower(), tuple(p.lower() for p in parts[:-1])
            if name in DENIED_FUNCTIONS:
                raise _denied(name, expr)
            identifier = jvm.org.apache.spark.sql.catalyst.FunctionIdentifier(name)
            if qualifier not in _BUILTIN_QUALIFIERS or not registry.functionExists(identifier):
                raise ValueError(f"expression {expr!r} calls {'.'.join(parts)}(), which is not a built-in Spark "
                                 "function (UDFs and catalog functions are not allowed in feature expressions; "
                                 "register a Python transform in code instead)")
            info = registry.lookupFunction(identifier)
            group = info.get().getGroup() if info.isDefined() else ""
            if group in DENIED_GROUPS:
                raise _other_rows(expr, f"calls {'.'.join(parts)}() ({DENIED_GROUPS[group]})")
        stack.extend(_children(node))


def expressions_of(cfg: "Config") -> Iterator[tuple[str, str]]:
    """(key path in features.yaml, expression) of every Spark SQL expression a config holds."""
    for name, fs in cfg.feature_sets.items():
        where = f"feature_sets.{name}"
        for out, expr in fs.features.items():
            yield f"{where}.features.{out}", expr
        for i, spec in enumerate(fs.rolling):
            yield f"{where}.rolling.{i}.column", spec.column
        for out, label in fs.labels.items():
            yield f"{where}.labels.{out}.expr", label.expr
        if fs.event_time:
            yield f"{where}.event_time", fs.event_time


def check_config(spark, cfg: "Config") -> None:
    """The tree check of every expression of `cfg` (call it once the run's session exists,
    before any write): a ConfigError naming features.yaml and the key. Sessions without a
    JVM (Spark Connect) keep the textual check of config load only."""
    from engine.errors import ConfigError

    if getattr(spark, "_jsparkSession", None) is None:
        import logging

        logging.getLogger("retrain").warning("expressions: no JVM session (Spark Connect?): only the textual check ran")
        return
    for key, expr in expressions_of(cfg):
        try:
            check_parsed(spark, expr)
        except ValueError as e:
            raise ConfigError(f"{cfg.root / 'features.yaml'}: {key}: {e}") from e
