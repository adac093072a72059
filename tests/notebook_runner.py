"""Run a Databricks notebook (source format) locally: a small stand-in for the notebook runtime.

The notebooks under notebooks/ are plain Python files in Databricks' source format:

    # Databricks notebook source
    <python cell>
    # COMMAND ----------
    # MAGIC %md
    # MAGIC ## a markdown cell
    # COMMAND ----------
    <python cell>

On Databricks they run as they are. Locally, `run_notebook(path, spark, widgets)` parses the
cells, skips the `# MAGIC` cells (markdown and other magics), and executes the Python cells in
order in one namespace that holds what Databricks provides: `spark`, `sc`, `dbutils` (only
`dbutils.widgets` and `dbutils.notebook.exit`), `display` and `displayHTML`. As on
Databricks, the working directory during the run is the notebook's folder.

`display(x)` collects x (a Spark DataFrame as `x.limit(100).toPandas()`), and the result
holds everything displayed and printed, per cell, so tests can assert on it.
"""
from __future__ import annotations

import contextlib
import datetime as dt
import io
import os
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping

from engine.errors import RetrainError

HEADER = "# Databricks notebook source"
SEPARATOR = "# COMMAND ----------"
MAGIC = "# MAGIC"
DISPLAY_LIMIT = 100  # rows of a Spark DataFrame that display() keeps, like the notebook UI's preview


class NotebookError(RetrainError):
    """A notebook cannot be parsed, or one of its cells failed."""


class WidgetError(NotebookError):
    """A widget was read before it was defined, or given a value it does not allow."""


class NotebookExit(Exception):
    """Raised by dbutils.notebook.exit(value): stop running cells, return `value`."""

    def __init__(self, value: str):
        super().__init__(value)
        self.value = value


# --------------------------------------------------------------------------- parsing


@dataclass(frozen=True)
class Cell:
    index: int  # 0-based, in notebook order
    line: int  # 1-based line of the cell's first line in the file
    source: str
    magic: str | None  # "md", "sql", "pip", "run", ... for a `# MAGIC %...` cell; None for Python

    @property
    def is_python(self) -> bool:
        return self.magic is None


def parse_notebook(text: str, where: str = "<notebook>") -> list[Cell]:
    """Split a Databricks source-format notebook into cells (empty cells are dropped)."""
    lines = text.splitlines()
    if not lines or lines[0].strip() != HEADER:
        found = lines[0][:60] if lines else "an empty file"
        raise NotebookError(f"{where}: expected the first line {HEADER!r}, found {found!r}")
    cells: list[Cell] = []
    chunk: list[str] = []
    start = 2  # 1-based line number of the chunk's first line

    def flush(first_line: int) -> None:
        body = list(chunk)
        while body and not body[0].strip():  # leading blank lines: keep line numbers right
            body.pop(0)
            first_line += 1
        while body and not body[-1].strip():
            body.pop()
        if not body:
            return
        magic = None
        code = [ln for ln in body if ln.strip()]
        if all(ln.startswith(MAGIC) for ln in code):
            first = code[0][len(MAGIC):].strip()
            magic = first[1:].split()[0] if first.startswith("%") and len(first) > 1 else "magic"
        cells.append(Cell(len(cells), first_line, "\n".join(body) + "\n", magic))

    for number, line in enumerate(lines[1:], start=2):
        if line.strip() == SEPARATOR:
            flush(start)
            chunk = []
            start = number + 1
        else:
            chunk.append(line)
    flush(start)
    return cells


# --------------------------------------------------------------------------- dbutils stand-in


class Widgets:
    """dbutils.widgets: text, dropdown, combobox, multiselect, get, getAll, remove, removeAll.

    A value passed to run_notebook overrides a widget's default (as job parameters do on
    Databricks), and can be read with get() even if no widget of that name was created."""

    def __init__(self, values: Mapping[str, Any] | None = None):
        self._given = {str(k): _widget_value(k, v) for k, v in (values or {}).items()}
        self._defined: dict[str, dict[str, Any]] = {}

    def _define(self, kind: str, name: str, default: str, choices: list[str] | None, label: str | None) -> None:
        if not isinstance(name, str) or not name:
            raise WidgetError(f"widget name must be a non-empty string, got {name!r}")
        default = "" if default is None else str(default)
        value = self._given.get(name, default)
        if choices is not None:
            choices = [str(c) for c in choices]
            defaults = default.split(",") if kind == "multiselect" and default else [default]
            if any(d not in choices for d in defaults) and kind != "combobox":
                raise WidgetError(f"widget {name!r}: default {default!r} is not one of its choices {choices}")
            allowed = value.split(",") if kind == "multiselect" and value else [value]
            bad = [v for v in allowed if v not in choices]
            if bad and kind != "combobox":
                raise WidgetError(f"widget {name!r}: value {value!r} is not one of its choices {choices}")
        self._defined[name] = {"kind": kind, "default": default, "choices": choices, "label": label, "value": value}

    def text(self, name: str, defaultValue: str = "", label: str | None = None) -> None:
        self._define("text", name, defaultValue, None, label)

    def dropdown(self, name: str, defaultValue: str, choices: list[str], label: str | None = None) -> None:
        self._define("dropdown", name, defaultValue, list(choices), label)

    def combobox(self, name: str, defaultValue: str, choices: list[str], label: str | None = None) -> None:
        self._define("combobox", name, defaultValue, list(choices), label)

    def multiselect(self, name: str, defaultValue: str, choices: list[str], label: str | None = None) -> None:
        self._define("multiselect", name, defaultValue, list(choices), label)

    def get(self, name: str) -> str:
        if name in self._defined:
            return self._defined[name]["value"]
        if name in self._given:
            return self._given[name]
        raise WidgetError(f"widget {name!r} is not defined (defined: {sorted(self._defined) or 'none'})")

    def getArgument(self, name: str, defaultValue: str | None = None) -> str:  # noqa: N802 (Databricks API)
        try:
            return self.get(name)
        except WidgetError:
            if defaultValue is None:
                raise
            return defaultValue

    def getAll(self) -> dict[str, str]:  # noqa: N802
        return {**self._given, **{k: w["value"] for k, w in self._defined.items()}}

    def remove(self, name: str) -> None:
        if name not in self._defined:
            raise WidgetError(f"widget {name!r} is not defined")
        del self._defined[name]

    def removeAll(self) -> None:  # noqa: N802
        self._defined.clear()

    @property
    def defined(self) -> dict[str, dict[str, Any]]:
        return dict(self._defined)


def _widget_value(name: Any, value: Any) -> str:
    """Widget values are strings on Databricks; dates, numbers and paths are converted."""
    if isinstance(value, str):
        return value
    if isinstance(value, (dt.date, int, float, Path)) and not isinstance(value, bool):
        return str(value)
    if isinstance(value, bool):
        return "true" if value else "false"
    raise WidgetError(f"widget {name!r}: expected a string value, got {type(value).__name__} {value!r}")


class _NotebookUtils:
    def exit(self, value: Any = "") -> None:
        raise NotebookExit("" if value is None else str(value))


class DBUtils:
    """The part of Databricks' dbutils the notebooks use."""

    def __init__(self, widgets: Mapping[str, Any] | None = None):
        self.widgets = Widgets(widgets)
        self.notebook = _NotebookUtils()


# --------------------------------------------------------------------------- display


@dataclass
class CellOutput:
    index: int
    line: int
    stdout: str = ""
    displayed: list[Any] = field(default_factory=list)


def _displayable(obj: Any, limit: int = DISPLAY_LIMIT) -> Any:
    """What display() keeps: Spark DataFrames as pandas (first `limit` rows); the rest as given."""
    try:
        from pyspark.sql import DataFrame as SparkDataFrame
    except ImportError:  # pragma: no cover - pyspark is a dependency
        SparkDataFrame = ()  # type: ignore[assignment]
    if isinstance(obj, SparkDataFrame) or (hasattr(obj, "toPandas") and hasattr(obj, "limit")):
        return obj.limit(limit).toPandas()
    return obj


# --------------------------------------------------------------------------- running


@contextlib.contextmanager
def _working_directory(path: Path):
    before = os.getcwd()
    os.chdir(path)
    try:
        yield
    finally:
        os.chdir(before)


def run_notebook(path: str | Path, spark, widgets: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """Execute a Databricks source-format notebook locally; return what it produced.

    Result keys:
      displayed   everything passed to display()/displayHTML(), in order (Spark DataFrames
                  as pandas DataFrames of at most 100 rows)
      cells       one CellOutput per executed Python cell (stdout and displays of that cell)
      stdout      everything the cells printed
      skipped     the magic cells that were not run, as (cell index, magic) pairs
      widgets     the widgets the notebook defined, name -> value
      exit_value  the value given to dbutils.notebook.exit(), or None
      namespace   the notebook's global namespace after the run

    A failing cell raises NotebookError naming the notebook, the cell and its first line,
    with the cell's exception as the cause.
    """
    path = Path(path).resolve()
    try:
        text = path.read_text()
    except FileNotFoundError as e:
        raise NotebookError(f"{path}: notebook not found") from e
    cells = parse_notebook(text, str(path))

    dbutils = DBUtils(widgets)
    outputs: list[CellOutput] = []
    displayed: list[Any] = []
    current: list[CellOutput] = []

    def display(obj: Any, *args: Any, **kwargs: Any) -> None:
        value = _displayable(obj)
        displayed.append(value)
        if current:
            current[-1].displayed.append(value)

    def displayHTML(html: str) -> None:  # noqa: N802 (Databricks API)
        display(str(html))

    namespace: dict[str, Any] = {
        "__name__": "__main__",
        "__builtins__": __builtins__,
        "spark": spark,
        "dbutils": dbutils,
        "display": display,
        "displayHTML": displayHTML,
    }
    if spark is not None:
        namespace["sc"] = spark.sparkContext

    exit_value = None
    skipped = [(c.index, c.magic) for c in cells if not c.is_python]
    with _working_directory(path.parent):
        for cell in cells:
            if not cell.is_python:
                continue
            out = CellOutput(cell.index, cell.line)
            outputs.append(out)
            current.append(out)
            buffer = io.StringIO()
            # Pad with blank lines so tracebacks show the notebook file's own line numbers.
            code = compile("\n" * (cell.line - 1) + cell.source, str(path), "exec")
            try:
                with contextlib.redirect_stdout(_Tee(buffer, sys.stdout)):
                    exec(code, namespace)  # noqa: S102 - running the notebook is the point
            except NotebookExit as e:
                exit_value = e.value
                break
            except Exception as e:
                raise NotebookError(
                    f"{path.name}: cell {cell.index + 1} (line {cell.line}) failed: {type(e).__name__}: {e}"
                ) from e
            finally:
                out.stdout = buffer.getvalue()
    return {
        "displayed": displayed,
        "cells": outputs,
        "stdout": "".join(o.stdout for o in outputs),
        "skipped": skipped,
        "widgets": {k: w["value"] for k, w in dbutils.widgets.defined.items()},
        "exit_value": exit_value,
        "namespace": namespace,
    }


class _Tee(io.TextIOBase):
    """Write to the capture buffer and to the real stdout (pytest -s still shows the output)."""

    def __init__(self, *streams):
        self._streams = streams

    def write(self, text: str) -> int:
        for stream in self._streams:
            stream.write(text)
        return len(text)

    def flush(self) -> None:
        for stream in self._streams:
            stream.flush()


__all__ = ["Cell", "CellOutput", "DBUtils", "NotebookError", "WidgetError", "Widgets", "parse_notebook",
           "run_notebook"]
