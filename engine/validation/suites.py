"""Expectation suites: `expectations/<feature_set>.json` in the GX 1.x suite format.

The file is parsed with GX's own classes (`ExpectationConfiguration` -> `Expectation`,
collected in an `ExpectationSuite`), so kwargs are coerced and checked exactly as GX does
(e.g. `min_value: "2026-01-01"` becomes a date). Each expectation's `meta.severity` is
`block` (default: a failure quarantines the partition) or `warn` (a failure only alerts).
"""
from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable

from engine.validation.errors import SuiteError

SEVERITIES = ("block", "warn")

os.environ.setdefault("GX_ANALYTICS_ENABLED", "false")


@dataclass
class Check:
    """One expectation of a suite, as the engine uses it."""

    index: int  # position in the suite file
    type: str  # e.g. expect_column_values_to_not_be_null
    kwargs: dict[str, Any]  # as written in the suite file (JSON values)
    meta: dict[str, Any]
    severity: str  # block | warn
    expectation: Any = field(repr=False)  # the GX Expectation (kwargs coerced by GX)

    @property
    def column(self) -> str | None:
        col = self.kwargs.get("column")
        return col if isinstance(col, str) else None

    @property
    def kwargs_json(self) -> str:
        return json.dumps(self.kwargs, sort_keys=True, default=str)

    def as_json(self) -> dict[str, Any]:
        """The expectation in suite-file form (what GX rebuilds it from)."""
        return {"type": self.type, "kwargs": self.kwargs, "meta": self.meta}


@dataclass
class Suite:
    name: str
    path: str
    checks: list[Check]
    gx_suite: Any = field(repr=False)  # great_expectations.core.ExpectationSuite


def suite_path(cfg, feature_set: str) -> Path:
    """Where the suite of a feature set lives: <project>/expectations/<feature_set>.json."""
    return Path(cfg.root).parent / "expectations" / f"{feature_set}.json"


def load_suite(path: str | Path) -> Suite:
    """Parse a GX 1.x suite file; raise SuiteError naming the file and expectation on any fault."""
    path = Path(path)
    try:
        data = json.loads(path.read_text())
    except FileNotFoundError as e:
        raise SuiteError(f"{path}: suite file not found") from e
    except json.JSONDecodeError as e:
        raise SuiteError(f"{path}: not valid JSON: {e}") from e
    if not isinstance(data, dict) or not isinstance(data.get("expectations"), list):
        raise SuiteError(f"{path}: expected a GX suite object with an 'expectations' list")
    return parse_suite(data, str(path))


COLUMN_KWARGS = ("column", "column_A", "column_B", "column_list")  # kwargs that name columns of the table


def check_columns(suite: Suite, columns: Iterable[str], table: str) -> None:
    """Raise SuiteError when an expectation names a column `table` does not have (validation
    calls it before any verdict is written): a typo in a suite would otherwise quarantine
    every partition ('could not be evaluated')."""
    known = set(columns)
    for check in suite.checks:
        for key in COLUMN_KWARGS:
            value = check.kwargs.get(key)
            for name in ([value] if isinstance(value, str) else value if isinstance(value, list) else []):
                if name not in known:
                    raise SuiteError(f"{suite.path}: expectations[{check.index}] ({check.type}): kwargs.{key}: "
                                     f"column {name!r} is not a column of {table} (expected one of "
                                     f"{sorted(known)})")


def parse_suite(data: dict[str, Any], where: str = "<suite>") -> Suite:
    from engine.validation import gx_adapter

    name = data.get("name") or Path(where).stem
    checks: list[Check] = []
    expectations = []
    for i, raw in enumerate(data.get("expectations") or []):
        label = f"{where}: expectations[{i}]"
        if not isinstance(raw, dict) or not isinstance(raw.get("type"), str):
            raise SuiteError(f"{label}: expected an object with a 'type', got {raw!r}")
        etype = raw["type"]
        kwargs = dict(raw.get("kwargs") or {})
        meta = dict(raw.get("meta") or {})
        if any(isinstance(v, dict) and "$PARAMETER" in v for v in kwargs.values()):
            raise SuiteError(f"{label} ({etype}): suite parameters ($PARAMETER) are not supported; "
                             "write the values into the suite")
        severity = meta.get("severity", "block")
        if severity not in SEVERITIES:
            raise SuiteError(f"{label} ({etype}): meta.severity must be 'block' or 'warn', got {severity!r}")
        try:
            expectation = gx_adapter.expectation(etype, kwargs, meta)
        except Exception as e:  # GX raises several kinds (not found, pydantic, invalid config)
            msg = " ".join(str(e).split())
            raise SuiteError(f"{label} ({etype}): not a valid GX expectation: {msg}") from e
        expectations.append(expectation)
        checks.append(Check(index=i, type=etype, kwargs=kwargs, meta=meta, severity=severity,
                            expectation=expectation))
    try:
        gx_suite = gx_adapter.suite(name, expectations, data.get("meta") or {})
    except Exception as e:
        raise SuiteError(f"{where}: GX cannot build the suite: {e}") from e
    if len(gx_suite.expectations) != len(checks):  # GX drops invalid ones with a log line
        raise SuiteError(f"{where}: GX accepted {len(gx_suite.expectations)} of {len(checks)} expectations")
    # Use GX's own (possibly re-built) objects so their configuration is what GX validates.
    for check, expectation in zip(checks, gx_suite.expectations):
        check.expectation = expectation
    return Suite(name=name, path=where, checks=checks, gx_suite=gx_suite)
