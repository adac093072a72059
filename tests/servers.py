"""Helpers for the real servers tests start on 127.0.0.1 (Pushgateway, SeaweedFS, ...)."""
from __future__ import annotations

import subprocess


def stop(proc: subprocess.Popen, timeout: float = 10) -> None:
    """Stop a server by its PID: SIGTERM, then SIGKILL if it does not exit in `timeout` s."""
    proc.terminate()
    try:
        proc.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()
