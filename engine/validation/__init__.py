"""MAP 2: per-partition validation against GX suites, profiles, verdicts and alerts.

    validate_partitions(spark, cfg, feature_set, dates, run_id) -> ValidationReport
    quarantined_dates(spark, cfg, feature_set) -> set[date]
    unverdicted_dates(spark, cfg, feature_set) -> list[date]   no verdict for the current content
    unusable_dates(spark, cfg, feature_set) -> set[date]       quarantined or unverdicted
    warned_dates(spark, cfg, feature_set) -> set[date]         valid, with warnings
    partition_statuses(spark, cfg, table=None) -> list[PartitionStatus]
    release_partition(spark, cfg, table, ds, reason, user) -> PartitionStatus
    record_empty_partitions(spark, cfg, feature_set, reasons, run_id)  0-row partitions: quarantined

Modules: suites (GX suite files, severity), evaluate (one grouped aggregation + GX fallback),
verdicts (status, messages), alerts (JSON lines, webhook), store (Delta tables, GX docs),
api (the functions above).
"""
from engine.validation.api import (
    PartitionStatus,
    ValidationReport,
    partition_statuses,
    quarantined_dates,
    record_empty_partitions,
    release_partition,
    unusable_dates,
    unverdicted_dates,
    validate_partitions,
    warned_dates,
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
    "record_empty_partitions",
    "release_partition",
    "supported_types",
    "unusable_dates",
    "unverdicted_dates",
    "validate_partitions",
    "warned_dates",
]
