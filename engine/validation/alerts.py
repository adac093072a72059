"""Column-level alerts: JSON lines in the alerts file, and one POST to a webhook per run.

A webhook failure is logged as a warning and never fails the run (the alerts file and the
validation tables already hold everything).
"""
from __future__ import annotations

import json
import threading
import logging
import os
import urllib.error
import urllib.request
from typing import Any

from engine import catalog
from engine.observability import ValidationFailure, utcnow

log = logging.getLogger("retrain.validation")

WEBHOOK_TIMEOUT_SECONDS = 10


def alert_record(alert: ValidationFailure, run_id: str, observed: Any = None, expected: Any = None) -> dict[str, Any]:
    return {
        "ts": utcnow().isoformat(),
        "kind": "validation_failure",
        "run_id": run_id,
        "table": alert.table,
        "ds": alert.ds.isoformat(),
        "column": alert.column,
        "expectation": alert.expectation,
        "severity": alert.severity,
        "message": alert.message,
        "observed": observed,
        "expected": expected,
    }


def append_lines(path: str, records: list[dict[str, Any]]) -> None:
    """Append JSON lines to the alerts file (local path or a URI pyarrow can open)."""
    if not records:
        return
    text = "".join(json.dumps(r, default=str, ensure_ascii=False) + "\n" for r in records)
    local = catalog.local_path(path)
    if local is not None:
        os.makedirs(os.path.dirname(os.path.abspath(local)), exist_ok=True)
        with open(local, "a", encoding="utf-8") as f:
            f.write(text)
        return
    filesystem, where = catalog.filesystem(path)
    try:
        with filesystem.open_append_stream(where) as f:
            f.write(text.encode())
    except Exception:  # object stores cannot append: rewrite the file
        old = b""
        try:
            with filesystem.open_input_stream(where) as f:
                old = f.read()
        except FileNotFoundError:
            pass
        with filesystem.open_output_stream(where) as f:
            f.write(old + text.encode())


def post_webhook(url: str, records: list[dict[str, Any]], run_id: str, timeout: float = WEBHOOK_TIMEOUT_SECONDS) -> bool:
    """POST {"text", "run_id", "alerts": [...]} as JSON; False (and a warning) if it fails."""
    if not url or not records:
        return False
    lines = [r["message"] for r in records]
    shown = "\n".join(lines[:20]) + (f"\n… and {len(lines) - 20} more" if len(lines) > 20 else "")
    body = json.dumps({"text": f"retrain run {run_id}: {len(records)} data-quality alert(s)\n{shown}",
                       "run_id": run_id, "alerts": records}, default=str).encode()
    request = urllib.request.Request(url, data=body, method="POST",
                                     headers={"Content-Type": "application/json", "User-Agent": "retrain"})
    outcome: list[BaseException | None] = []

    def send() -> None:
        try:
            with urllib.request.urlopen(request, timeout=timeout) as response:
                if response.status >= 300:
                    raise urllib.error.HTTPError(url, response.status, response.reason, response.headers, None)
            outcome.append(None)
        except Exception as e:  # network, HTTP status, timeout: alert delivery is best effort
            outcome.append(e)

    # A total deadline, not only a socket timeout: a server that trickles bytes cannot hold
    # the run (the request goes on in a daemon thread and is abandoned).
    sender = threading.Thread(target=send, name="retrain-webhook", daemon=True)
    sender.start()
    sender.join(timeout)
    error = outcome[0] if outcome else TimeoutError(f"no answer within {timeout:g} s")
    if error is None:
        return True
    log.warning("validation: webhook %s failed (%s); %d alert(s) are in the alerts file", url, error, len(records))
    return False
