"""MAP 2: per-partition validation against GX suites, profiles, verdicts and alerts.

    validate_partitions(spark, cfg, feature_set, dates, run_id) -> ValidationReport
    quarantined_dates(spark, cfg, feature_set) -> set[date]
    partition_statuses(spark, cfg, table=None) -> list[PartitionStatus]
    release_partition(spark, cfg, table, ds, reason, user) -> PartitionStatus

Modules: suites (GX suite files, severity), evaluate (one grouped aggregation + GX fallback),
verdicts (status, messages), alerts (JSON lines, webhook), store (Delta tables, GX docs),
api (the functions above).
"""
from engine.validation.api import (
    PartitionStatus,
    ValidationReport,
    partition_statuses,
    quarantined_dates,
    release_partition,
    validate_partitions,
    validate_range,
)
from engine.validation.errors import ReleaseError, SuiteError, ValidationError
from engine.validation.evaluate import supported_types

__all__ = [
    "PartitionStatus",
    "ReleaseError",
    "SuiteError",
    "ValidationError",
    "ValidationReport",
    "partition_statuses",
    "quarantined_dates",
    "release_partition",
    "supported_types",
    "validate_partitions",
    "validate_range",
]
