"""Checks on the Spark SQL expressions a feature set configures (at config load, so a bad
expression is a config error naming the file and key, never a failure mid-run)."""
from __future__ import annotations

import re

# Functions that reach outside the expression language: Java reflection runs any static
# method of the driver's and executors' JVMs.
FORBIDDEN_FUNCTIONS = ("reflect", "java_method", "try_reflect")
_STRING_LITERAL = re.compile(r"'(?:[^'\\]|\\.)*'|\"(?:[^\"\\]|\\.)*\"")
_CALL = re.compile(r"`?([A-Za-z_][A-Za-z0-9_.]*)`?\s*\(")
_SUBQUERY = re.compile(r"\bselect\b|\(\s*table\b", re.IGNORECASE)  # not FROM: extract(day FROM ts) is fine


def check_expression(expr: str) -> None:
    """Raise ValueError when a feature expression may do more than compute a value from its
    row: Java reflection (`reflect`, `java_method`, `try_reflect`) or a subquery (which can
    read any table or file). Config loading calls it for every
    expression."""
    code = _STRING_LITERAL.sub("''", expr)  # a string literal may say anything
    for match in _CALL.finditer(code):
        name = match.group(1).lower().rsplit(".", 1)[-1]
        if name in FORBIDDEN_FUNCTIONS:
            raise ValueError(f"expression {expr!r} calls {match.group(1)}(), which is not allowed "
                             f"(no {', '.join(FORBIDDEN_FUNCTIONS)} in feature expressions)")
    if _SUBQUERY.search(code):
        raise ValueError(f"expression {expr!r} contains a subquery (SELECT or TABLE), which is not allowed: "
                         "an expression computes a value from its own row")
