"""One exception class per failure kind. Messages say what was expected and what was found.

The entry points map them to exit codes (engine/exit_codes.py): ConfigError and UsageError
-> 2, anything else -> 1.
"""


class RetrainError(Exception):
    """Base class for the engine's own errors."""


class ConfigError(RetrainError):
    """A config file is missing, malformed, or names something that does not exist."""


class PluginError(ConfigError):
    """A plugin named in project.yaml (or an installed `retrain.plugins` entry point) cannot be imported."""


class UsageError(RetrainError):
    """A command was called with arguments that cannot work (dates out of order, ...)."""


class SourceError(RetrainError):
    """A source table is missing, or lacks a column or partition the config expects."""


class TableError(RetrainError):
    """A lakehouse table cannot be read or written as asked."""


class FeatureError(RetrainError):
    """A feature expression or transform failed on the data."""


class LockError(RetrainError):
    """Another run holds the lakehouse."""


class ArtifactError(RetrainError):
    """A model artifact is missing or its sha256 does not match its metadata."""


class ReportError(RetrainError):
    """A report or the Data Docs site cannot be built from the lakehouse as it is."""


class TrackingError(RetrainError):
    """Models cannot be logged to the MLflow tracking server (or an artifact to log is wrong)."""


class BackendError(RetrainError):
    """The storage backend asked for cannot run in this session (e.g. delta-spark without its jars)."""
