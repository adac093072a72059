"""The storage protocol: what a Delta backend does for the engine. `engine.tables` is the
module-level API callers use; it asks `engine.storage.backend(spark)` for one of the two
implementations (delta_rs.DeltaRs, delta_spark.DeltaSpark) and never branches itself.

Arguments arrive normalised: partition values to replace as Delta's strings (`pv`),
`partition_by` as a list, the mode and schema_mode already checked (`schemas.check_mode`)."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Protocol, Sequence

import pyarrow as pa

from engine.storage.schemas import PartitionValues, SchemaMode


@dataclass(frozen=True)
class Maintenance:
    """What `maintain` did to one table."""

    path: str
    version: int | None
    compacted: int = 0  # files rewritten into fewer
    checkpoint: bool = False
    vacuumed: int = 0  # removed files deleted from storage


class Backend(Protocol):
    name: str

    def exists(self, path: str) -> bool: ...

    def version(self, path: str) -> int | None: ...

    def schema(self, path: str, version: int | None = None) -> pa.Schema: ...

    def partition_files(self, path: str, version: int | None = None, column: str = "ds") -> dict[Any, list[str]]:
        """The live data files (paths relative to the table) per value of `column`."""

    def num_records(self, path: str, version: int | None = None, partitions: PartitionValues | None = None,
                    column: str = "ds") -> int: ...

    def read(self, path: str, version: int | None = None, partitions: PartitionValues | None = None,
             column: str = "ds"): ...

    def read_rows(self, path: str, version: int | None = None) -> pa.Table | None: ...

    def write(self, df, path: str, mode: str, partition_by: list[str], replace: list[str] | None, column: str,
              schema_mode: SchemaMode) -> int: ...

    def write_rows(self, path: str, rows: pa.Table, mode: str, partition_by: list[str], replace: list[str] | None,
                   column: str, schema_mode: SchemaMode) -> int: ...

    def upsert_rows(self, path: str, rows: pa.Table, keys: Sequence[str]) -> int: ...

    def delete_rows(self, path: str, keys: pa.Table) -> int:
        """Delete the rows equal on every column of `keys` to one of its rows (one MERGE
        commit); returns the rows deleted."""

    def maintain(self, path: str, checkpoint_every: int, max_files: int) -> Maintenance: ...
