"""What both backends agree on: partition values as Delta stores them, Spark <-> Arrow
schemas, and the one rule for a write whose schema differs from its table's."""
from __future__ import annotations

import datetime as dt
from typing import Any, Literal, Sequence
from urllib.parse import unquote

import pyarrow as pa

from engine.errors import TableError

PartitionValues = Sequence[Any]

# None: a write must have the table's columns and types (a full overwrite re-creates the
# table, schema included). "merge": new columns are added to the table (null in existing
# rows) and columns the write lacks stay (null in the new rows). "overwrite": the write's
# schema becomes the table's (with a full overwrite only: rewriting some partitions cannot
# drop a column from the others).
SchemaMode = Literal["merge", "overwrite"] | None
SCHEMA_MODES = (None, "merge", "overwrite")


def pv(value: Any) -> str | None:
    """A partition value as Delta stores it (a string)."""
    if value is None:
        return None
    if isinstance(value, dt.datetime):
        return value.isoformat(sep=" ")
    if isinstance(value, dt.date):
        return value.isoformat()
    return str(value)


def typed_pv(text: str | None, type_: pa.DataType) -> Any:
    """A partition value string (Delta's form, or a hive folder's escaped one) as a Python
    value of the column's type."""
    if text is None or text == "__HIVE_DEFAULT_PARTITION__":
        return None
    text = unquote(text)
    if pa.types.is_date(type_):
        return dt.date.fromisoformat(text)
    if pa.types.is_integer(type_):
        return int(text)
    if pa.types.is_timestamp(type_):
        return dt.datetime.fromisoformat(text)
    return text


def spark_to_arrow(schema) -> pa.Schema:
    from pyspark.sql.pandas.types import to_arrow_schema

    return to_arrow_schema(schema, timezone="UTC", prefers_large_types=False)


def arrow_to_spark(schema: pa.Schema):
    from pyspark.sql.pandas.types import from_arrow_schema

    return from_arrow_schema(schema)


def nullable(schema: pa.Schema) -> pa.Schema:
    return pa.schema([f.with_nullable(True) for f in schema])


def describe(schema: pa.Schema) -> str:
    return ", ".join(f"{f.name}: {f.type}" for f in schema)


def check_mode(path: str, mode: str, replace: PartitionValues | None, column: str, partition_by: Sequence[str],
               schema_mode: SchemaMode) -> None:
    if mode not in ("append", "overwrite"):
        raise TableError(f"table {path}: mode must be append or overwrite, got {mode!r}")
    if replace is not None and column not in partition_by:
        raise TableError(f"table {path}: replacing partitions needs the table partitioned by {column!r}")
    if schema_mode not in SCHEMA_MODES:
        raise TableError(f"table {path}: schema_mode must be 'merge', 'overwrite' or None, got {schema_mode!r}")
    if schema_mode == "overwrite" and (mode != "overwrite" or replace is not None):
        raise TableError(f"table {path}: schema_mode='overwrite' replaces the whole table's schema, so it needs "
                         f"mode='overwrite' without replace_partitions; to add or drop columns while keeping "
                         f"other partitions use schema_mode='merge' (a dropped column reads null in new rows)")


def evolve(path: str, existing: pa.Schema | None, incoming: pa.Schema, mode: str, replace: PartitionValues | None,
           schema_mode: SchemaMode) -> pa.Schema:
    """The table's schema after the write (columns compared by name; order is not a change).

    Raises TableError for a write the rule refuses: other columns without schema_mode, or a
    column whose type changes (no mode changes a type: re-create the table)."""
    incoming = nullable(incoming)
    if existing is None:
        return incoming
    existing = nullable(existing)
    full_overwrite = mode == "overwrite" and replace is None
    if full_overwrite and schema_mode != "merge":
        return incoming
    have = {f.name: f.type for f in existing}
    want = {f.name: f.type for f in incoming}
    changed = [n for n in want if n in have and want[n] != have[n]]
    if changed:
        c = changed[0]
        raise TableError(f"table {path}: schema mismatch: the table has ({describe(existing)}), the write has "
                         f"({describe(incoming)}): column {c} is {have[c]} in the table and {want[c]} in the "
                         f"write; no schema_mode changes a type: re-create the table with a full overwrite")
    if set(have) == set(want):
        return existing
    if schema_mode != "merge":
        raise TableError(f"table {path}: schema mismatch: the table has ({describe(existing)}), the write has "
                         f"({describe(incoming)}); pass schema_mode='merge' to add or drop columns, or re-create "
                         f"it with a full overwrite")
    return pa.schema(list(existing) + [f for f in incoming if f.name not in have])
