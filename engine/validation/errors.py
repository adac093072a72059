"""Validation-specific errors (all are RetrainErrors, so the CLI maps them to exit codes)."""
from __future__ import annotations

from engine.errors import RetrainError


class ValidationError(RetrainError):
    """Validation cannot run or a validation command cannot do what was asked."""


class SuiteError(ValidationError):
    """An expectation suite file is missing, malformed, or uses an unsupported feature."""


class ReleaseError(ValidationError):
    """A partition cannot be released: unknown table/partition, or it is not quarantined."""
