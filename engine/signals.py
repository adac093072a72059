"""SIGTERM and SIGINT end a run cleanly (what Airflow, Kubernetes and Slurm send on a timeout,
and Ctrl-C).

Within `handle_termination()` (the entry points enter it once the SparkSession exists, since
PySpark installs its own SIGINT handler when it starts), the first SIGTERM/SIGINT raises
`Terminated` in the main thread, wherever it is (waiting for a Spark job included). The run
unwinds like any failure: the stage and run rows are written with status `failed` and the
error `terminated: ...`, metrics say failed, the lock is released, and the process exits
with 128 + the signal number (143 for SIGTERM, 130 for SIGINT: engine/exit_codes.py).

`Terminated` is a BaseException (like KeyboardInterrupt), so the `except Exception` of steps
that must never fail a run (metrics, maintenance, the report) does not swallow it.

While the failure is being recorded (`deferred()`), a further signal does not interrupt the
write: it is remembered and raised when the block ends. Once terminating, the JVM may be
gone (a signal to the process group reaches it too): `terminating()` tells the run log to
write without Spark.
"""
from __future__ import annotations

import signal
import threading
from contextlib import contextmanager
from typing import Iterator

NAMES = {signal.SIGTERM: "SIGTERM", signal.SIGINT: "SIGINT"}


class Terminated(BaseException):
    """The process was asked to stop (SIGTERM, SIGINT)."""

    def __init__(self, signum: int):
        self.signum = signum
        self.name = NAMES.get(signum, f"signal {signum}")
        super().__init__(f"terminated: {self.name} received; the night is not processed and will be retried")


class _State:
    received: int | None = None  # the first signal
    raised = False
    defer = 0


_state = _State()


def _handler(signum, frame) -> None:
    if _state.received is None:
        _state.received = signum
    if _state.raised or _state.defer:
        return  # already unwinding, or recording: raised when the recording ends
    _state.raised = True
    raise Terminated(signum)


@contextmanager
def handle_termination() -> Iterator[None]:
    """Within the block, SIGTERM and SIGINT raise Terminated (main thread only; elsewhere the
    block runs unchanged). The previous handlers are restored at its end."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    reset()
    previous = {signum: signal.signal(signum, _handler) for signum in NAMES}
    try:
        yield
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)


def terminating() -> int | None:
    """The signal that asked this process to stop, None if none did."""
    return _state.received


@contextmanager
def deferred() -> Iterator[None]:
    """A block a signal must not interrupt (writing a run row): a signal received inside it is
    raised as Terminated when it ends."""
    _state.defer += 1
    try:
        yield
    finally:
        _state.defer -= 1
    if not _state.defer and _state.received is not None and not _state.raised:
        _state.raised = True
        raise Terminated(_state.received)


def failure_text(error: BaseException) -> str:
    """The `error` of a failed stage or run row: 'terminated: ...' when a signal asked the
    process to stop (even if what surfaced first was the JVM going away with it)."""
    if isinstance(error, Terminated):
        return str(error)
    text = f"{type(error).__name__}: {error}"
    if _state.received is not None:
        return f"{Terminated(_state.received)} ({text[:200]})"
    return text


def reset() -> None:
    """Forget a received signal (tests that run several commands in one process)."""
    _state.received, _state.raised, _state.defer = None, False, 0
