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
  130  stopped by SIGINT (Ctrl-C) }  128 + the signal number, as a shell reports it: the
  143  stopped by SIGTERM         }  stage and run were recorded as failed with the error
       'terminated: ...', metrics say failed, the lock was released; the night is not
       processed, so the next run retries it (engine/signals.py)

Over several nights (a catch-up) the most serious code wins: 1, then 4, then 3, then 0.
A retry of a night an earlier attempt left unfinished (a crash, a kill) exits with the code
of that night's work, including what the earlier attempt committed (e.g. 3 for partitions it
quarantined).
"""
from __future__ import annotations

from typing import Iterable

from engine.errors import ConfigError, LockError, UsageError

EXIT_OK, EXIT_FAILED, EXIT_USAGE, EXIT_BLOCKED, EXIT_PAIRS_FAILED = 0, 1, 2, 3, 4
EXIT_SIGNAL_BASE = 128  # + the signal number: 143 SIGTERM, 130 SIGINT

# run status (observability.RunSummary.status) -> exit code
STATUS_CODES = {"success": EXIT_OK, "skipped": EXIT_OK, "blocked": EXIT_BLOCKED,
                "partial": EXIT_PAIRS_FAILED, "failed": EXIT_FAILED}
_SERIOUSNESS = (EXIT_OK, EXIT_BLOCKED, EXIT_PAIRS_FAILED, EXIT_FAILED, EXIT_USAGE)


def exit_code(*, summaries: Iterable = (), error: BaseException | None = None) -> int:
    """The exit code of a command that raised `error` (if any) after producing `summaries`
    (RunSummary objects, or anything with a `.status`)."""
    if error is not None:
        from engine.signals import Terminated
        from engine.validation.errors import SuiteError

        if isinstance(error, Terminated):
            return EXIT_SIGNAL_BASE + error.signum

        return EXIT_USAGE if isinstance(error, (ConfigError, UsageError, SuiteError)) else EXIT_FAILED
    # A night already processed ("skipped") exits as it was processed (a retry after a kill
    # that came after the run's commit tells the scheduler the same as the first attempt).
    codes = [STATUS_CODES.get(getattr(s, "processed_as", None) or s.status, EXIT_FAILED) for s in summaries]
    return max(codes, key=_SERIOUSNESS.index, default=EXIT_OK)


def lost_spark(error: BaseException) -> str | None:
    """One line for an error that only says the Spark driver JVM went away (killed with its
    process group, out of memory, its session ended by a heartbeat timeout) — a connection
    error raised inside py4j — instead of a py4j traceback; None for any other error."""
    from py4j.protocol import Py4JNetworkError

    frames, tb = [], error.__traceback__
    while tb is not None:
        frames.append(tb.tb_frame.f_code.co_filename)
        tb = tb.tb_next
    through_py4j = any("/py4j/" in f.replace("\\", "/") for f in frames)
    if not (isinstance(error, Py4JNetworkError) or (through_py4j and (
            isinstance(error, ConnectionError) or "Answer from Java side is empty" in str(error)))):
        return None
    first = (str(error).strip().splitlines() or [""])[0][:200]
    return (f"the Spark driver JVM went away ({type(error).__name__}: {first}); the night is not processed and "
            "the next run retries it (Spark's log above says why the JVM ended)")


def error_label(error: BaseException) -> str:
    """How an entry point introduces the one-line message of `error`: 'error' when nothing
    ran (config, usage, another run holds the lakehouse), 'failed' when the run failed."""
    from engine.signals import Terminated
    from engine.validation.errors import SuiteError

    if isinstance(error, Terminated):
        return "stopped"
    return "error" if isinstance(error, (ConfigError, UsageError, LockError, SuiteError)) else "failed"
