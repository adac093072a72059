"""engine.lock with real holder processes."""
from __future__ import annotations

import datetime as dt
import fcntl
import json
import logging
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from engine.errors import LockError
from engine.lock import LOCK_FILE, kernel_locks_reliable, lakehouse_lock

REPO = Path(__file__).resolve().parents[1]

HOLDER = """
import sys, time
from engine.lock import lakehouse_lock
from engine.errors import LockError
lakehouse, ttl, owner, start_at, hold = sys.argv[1], int(sys.argv[2]), sys.argv[3], float(sys.argv[4]), sys.argv[5]
time.sleep(max(0.0, start_at - time.time()))
try:
    with lakehouse_lock(lakehouse, ttl, owner):
        print("acquired", flush=True)
        if hold == "stdin":
            sys.stdin.readline()
        else:
            time.sleep(float(hold))
except LockError as e:
    print("refused:", e, flush=True)
    sys.exit(7)
print("released", flush=True)
"""


def holder(lakehouse, owner, *, ttl=60, start_at=0.0, hold="stdin") -> subprocess.Popen:
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    return subprocess.Popen([sys.executable, "-c", HOLDER, str(lakehouse), str(ttl), owner, str(start_at), hold],
                            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True, env=env, cwd=REPO)


def acquired(proc: subprocess.Popen) -> None:
    line = proc.stdout.readline()
    assert line.strip() == "acquired", (line, proc.stderr.read() if proc.poll() is not None else "")


def release(proc: subprocess.Popen) -> tuple[int, str, str]:
    out, err = proc.communicate("\n", timeout=20)
    return proc.returncode, out, err


def lock_json(lakehouse) -> dict:
    return json.loads((Path(lakehouse) / LOCK_FILE).read_text())


def write_lock(lakehouse, **fields) -> None:
    data = {"host": socket.gethostname(), "pid": os.getpid(), "run_id": "old-run",
            "acquired_at": dt.datetime.now(dt.timezone.utc).isoformat(), "token": "t0",
            "boot_id": None, "pid_start": None} | fields
    Path(lakehouse).mkdir(parents=True, exist_ok=True)
    (Path(lakehouse) / LOCK_FILE).write_text(json.dumps(data))


def test_held_lock_refuses_and_names_the_holder(tmp_path):
    lakehouse = tmp_path / "lakehouse"  # created by the lock
    proc = holder(lakehouse, "run-A")
    try:
        acquired(proc)
        info = lock_json(lakehouse)
        assert (info["host"], info["pid"], info["run_id"]) == (socket.gethostname(), proc.pid, "run-A")

        with pytest.raises(LockError) as e:
            with lakehouse_lock(str(lakehouse), 60, "run-B"):
                pytest.fail("entered a held lock")
        msg = str(e.value)
        assert "run-A" in msg and socket.gethostname() in msg and f"pid {proc.pid}" in msg and "since" in msg
        assert lock_json(lakehouse)["run_id"] == "run-A"  # the refusal left it alone
    finally:
        code, out, err = release(proc)
    assert code == 0, err
    assert not (lakehouse / LOCK_FILE).exists()
    with lakehouse_lock(str(lakehouse), 60, "run-B") as mine:
        assert lock_json(lakehouse)["token"] == mine.token


def test_killed_holder_is_taken_over_even_as_a_zombie(tmp_path, caplog):
    lakehouse = tmp_path / "lakehouse"
    proc = holder(lakehouse, "run-A")
    acquired(proc)
    proc.send_signal(signal.SIGKILL)
    try:
        # Not reaped yet: the pid still exists as a zombie, which must count as gone.
        deadline = time.monotonic() + 10
        while Path(f"/proc/{proc.pid}/stat").exists() and \
                Path(f"/proc/{proc.pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z":
            assert time.monotonic() < deadline, "holder did not die"
            time.sleep(0.02)
        assert lock_json(lakehouse)["pid"] == proc.pid  # a crash leaves the file behind
        with caplog.at_level(logging.WARNING, logger="retrain"):
            with lakehouse_lock(str(lakehouse), 60, "run-B"):
                assert lock_json(lakehouse)["run_id"] == "run-B"
        assert any("run-A" in r.getMessage() and "no longer running" in r.getMessage() for r in caplog.records)
        assert not (lakehouse / LOCK_FILE).exists()
    finally:
        proc.wait(timeout=10)
        proc.stdout.close(), proc.stderr.close(), proc.stdin.close()


def test_expired_lock_is_taken_over_and_the_old_holder_leaves_the_new_lock(tmp_path, caplog):
    lakehouse = tmp_path / "lakehouse"
    proc = holder(lakehouse, "run-A")
    try:
        acquired(proc)
        info = lock_json(lakehouse)
        old = dt.datetime.now(dt.timezone.utc) - dt.timedelta(minutes=90)
        (lakehouse / LOCK_FILE).write_text(json.dumps(info | {"acquired_at": old.isoformat()}))

        with pytest.raises(LockError):  # 90 min old, 120 min TTL: still held (and alive)
            with lakehouse_lock(str(lakehouse), 120, "run-B"):
                pass
        with caplog.at_level(logging.WARNING, logger="retrain"):
            with lakehouse_lock(str(lakehouse), 60, "run-B") as mine:
                assert any("older than the 60 min TTL" in r.getMessage() for r in caplog.records)
                code, out, err = release(proc)  # the hung holder finally ends
                assert code == 0, err
                assert "no longer ours" in err
                assert lock_json(lakehouse)["token"] == mine.token  # it did not delete ours
        assert not (lakehouse / LOCK_FILE).exists()
    finally:
        if proc.poll() is None:
            release(proc)


def test_released_on_exception(tmp_path):
    lakehouse = tmp_path / "lakehouse"
    with pytest.raises(RuntimeError, match="stage failed"):
        with lakehouse_lock(str(lakehouse), 60, "run-A"):
            assert (lakehouse / LOCK_FILE).exists()
            raise RuntimeError("stage failed")
    assert not (lakehouse / LOCK_FILE).exists()
    proc = holder(lakehouse, "run-B", hold="0")  # another process gets it at once
    out, err = proc.communicate(timeout=20)
    assert proc.returncode == 0 and out.split() == ["acquired", "released"], err


def test_other_hosts_lock_is_only_timed_out(tmp_path):
    lakehouse = tmp_path / "lakehouse"
    write_lock(lakehouse, host="other-host.example", pid=999_999_999)  # that pid means nothing here
    with pytest.raises(LockError, match="other-host.example"):
        with lakehouse_lock(str(lakehouse), 60, "run-B"):
            pass
    old = (dt.datetime.now(dt.timezone.utc) - dt.timedelta(hours=2)).isoformat()
    write_lock(lakehouse, host="other-host.example", pid=999_999_999, acquired_at=old)
    with lakehouse_lock(str(lakehouse), 60, "run-B"):
        assert lock_json(lakehouse)["run_id"] == "run-B"


def _own_start() -> int:
    return int(Path(f"/proc/{os.getpid()}/stat").read_text().rsplit(")", 1)[1].split()[19])


def test_reused_pid_is_not_the_holder(tmp_path):
    lakehouse = tmp_path / "lakehouse"
    start = _own_start()
    write_lock(lakehouse, pid=os.getpid(), pid_start=start)  # this very process, alive
    with open(lakehouse / LOCK_FILE) as held:  # and holding the kernel lock, as a holder does
        fcntl.flock(held, fcntl.LOCK_EX)
        with pytest.raises(LockError):
            with lakehouse_lock(str(lakehouse), 60, "run-B"):
                pass
        write_lock(lakehouse, pid=os.getpid(), pid_start=start - 1)  # same pid, another process
        with lakehouse_lock(str(lakehouse), 60, "run-B"):
            assert lock_json(lakehouse)["run_id"] == "run-B"


def test_sigkilled_holder_does_not_block_the_next_run_even_if_its_pid_looks_alive(tmp_path, caplog):
    """The kernel drops a killed holder's flock at once: the next run takes over even when the
    recorded pid now names a live process that the /proc checks cannot tell apart (pid reuse,
    another pid namespace). Without the kernel lock this lock would block until the TTL."""
    lakehouse = tmp_path / "lakehouse"
    if not kernel_locks_reliable(str(tmp_path)):
        pytest.skip(f"{tmp_path} is on shared storage: flock is not used there")
    proc = holder(lakehouse, "run-A")
    acquired(proc)
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=10)
    proc.stdout.close(), proc.stderr.close(), proc.stdin.close()
    info = lock_json(lakehouse)
    assert info["run_id"] == "run-A"  # the killed holder left its file behind
    # Its pid now names a live process of this host that started exactly then (this one).
    (lakehouse / LOCK_FILE).write_text(json.dumps(info | {"pid": os.getpid(), "pid_start": _own_start()}))
    with caplog.at_level(logging.WARNING, logger="retrain"):
        with lakehouse_lock(str(lakehouse), 60, "run-B") as mine:
            assert lock_json(lakehouse)["token"] == mine.token
    assert any("run-A" in r.getMessage() and "kernel lock" in r.getMessage() for r in caplog.records)
    assert not (lakehouse / LOCK_FILE).exists()


def test_live_holder_keeps_its_kernel_lock(tmp_path):
    """A live holder keeps the kernel lock exclusively for the whole run and refuses a second run."""
    lakehouse = tmp_path / "lakehouse"
    proc = holder(lakehouse, "run-A")
    try:
        acquired(proc)
        with open(lakehouse / LOCK_FILE) as f, pytest.raises(BlockingIOError):
            fcntl.flock(f, fcntl.LOCK_SH | fcntl.LOCK_NB)  # the holder has it exclusively
        with pytest.raises(LockError, match="run-A"):
            with lakehouse_lock(str(lakehouse), 60, "run-B"):
                pass
    finally:
        code, out, err = release(proc)
    assert code == 0, err


def test_unwritten_lock_file_waits_for_its_writer_then_goes_stale(tmp_path):
    lakehouse = tmp_path / "lakehouse"
    lakehouse.mkdir()
    (lakehouse / LOCK_FILE).write_text("")  # created, content not written yet
    with pytest.raises(LockError, match="being locked by another run"):
        with lakehouse_lock(str(lakehouse), 60, "run-B"):
            pass
    past = time.time() - 120
    os.utime(lakehouse / LOCK_FILE, (past, past))  # its writer died two minutes ago
    with lakehouse_lock(str(lakehouse), 60, "run-B"):
        assert lock_json(lakehouse)["run_id"] == "run-B"


def test_racing_takeovers_of_a_stale_lock_have_one_winner(tmp_path):
    lakehouse = tmp_path / "lakehouse"
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    write_lock(lakehouse, pid=dead.pid)  # a crashed holder on this host
    start_at = time.time() + 1.5  # all start together once the interpreters are up
    procs = [holder(lakehouse, f"run-{i}", start_at=start_at, hold="2") for i in range(4)]
    results = [p.communicate(timeout=30) + (p.returncode,) for p in procs]
    winners = [out for out, err, code in results if code == 0]
    assert len(winners) == 1, results
    assert all(code == 7 and "refused" in out for out, err, code in results if code != 0), results
    assert not (lakehouse / LOCK_FILE).exists()
