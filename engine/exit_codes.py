"""The process exit codes of `retrain` and jobs/nightly.py: one mapping for both.

    0  every due model trained (or was rightly skipped / is waiting for history) and
       nothing was quarantined
    1  the run failed (an error, or every (model, segment) pair that tried failed to train:
       the night is not marked processed, the next run retries it)
    2  config or usage error: a config file, an expectation suite or an argument is wrong
       (the message names it); fix it and re-run
    3  finished, but data-quality checks blocked something (a quarantined partition, a
       model not retrained because its window lost too many days)
    4  finished, but some (model, segment) pairs failed to train (the others were trained
       and the night is processed)

Over several nights (a catch-up) the most serious code wins: 1, then 4, then 3, then 0.
"""
from __future__ import annotations

from typing import Iterable

from engine.errors import ConfigError, LockError, UsageError

EXIT_OK, EXIT_FAILED, EXIT_USAGE, EXIT_BLOCKED, EXIT_PAIRS_FAILED = 0, 1, 2, 3, 4

# run status (observability.RunSummary.status) -> exit code
STATUS_CODES = {"success": EXIT_OK, "skipped": EXIT_OK, "blocked": EXIT_BLOCKED,
                "partial": EXIT_PAIRS_FAILED, "failed": EXIT_FAILED}
_SERIOUSNESS = (EXIT_OK, EXIT_BLOCKED, EXIT_PAIRS_FAILED, EXIT_FAILED, EXIT_USAGE)


def exit_code(*, summaries: Iterable = (), error: BaseException | None = None) -> int:
    """The exit code of a command that raised `error` (if any) after producing `summaries`
    (RunSummary objects, or anything with a `.status`)."""
    if error is not None:
        from engine.validation.errors import SuiteError

        return EXIT_USAGE if isinstance(error, (ConfigError, UsageError, SuiteError)) else EXIT_FAILED
    codes = [STATUS_CODES.get(s.status, EXIT_FAILED) for s in summaries]
    return max(codes, key=_SERIOUSNESS.index, default=EXIT_OK)


def error_label(error: BaseException) -> str:
    """How an entry point introduces the one-line message of `error`: 'error' when nothing
    ran (config, usage, another run holds the lakehouse), 'failed' when the run failed."""
    from engine.validation.errors import SuiteError

    return "error" if isinstance(error, (ConfigError, UsageError, LockError, SuiteError)) else "failed"
