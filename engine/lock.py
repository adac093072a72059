"""One run per lakehouse: a lock file `<lakehouse>/_lock.json`.

The file is created atomically (O_CREAT | O_EXCL) and holds who took it: host, pid, run id,
acquired_at, plus a random token (so a holder only ever removes its own lock) and, on Linux,
the kernel boot id and the process start time (so a reused pid is not mistaken for the
holder). A second run gets LockError naming the holder.

On a local filesystem the holder also keeps a kernel lock (`fcntl.flock`) on the file for as
long as it runs. The kernel drops it the moment the holder dies (SIGKILL, OOM, crash), so a
lock file of this host whose kernel lock is free is taken over at once, whatever its pid now
names. On shared storage (NFS, SMB, FUSE mounts such as DBFS or s3fs, ...) flock is not
reliable across hosts, so there, and for a holder on another host, only the rules below apply.

A lock is stale, and the next run takes it over with a logged warning, when
- it is older than the TTL (`lock_ttl_minutes`, default 6 h: a run should never take that
  long, so the holder is hung or gone), or
- its holder ran on this host and is gone: its kernel lock is free (local filesystems), the
  pid is not running (or is a zombie), it now belongs to a process that started later, or
  the host rebooted since.
A holder on another host is only ever timed out by the TTL.

A takeover renames the stale file aside and checks that it moved the very file it judged
stale (same inode, mtime and bytes); if a faster process replaced it in between, that
lock is put back. Release does the same with the token, so a run whose lock was taken
over after its TTL does not delete its successor's lock.

Only local (POSIX) paths can be locked this way; for object-store URIs (s3://, abfss://,
dbfs:/ ...) the lock is skipped with a warning: there the scheduler's own concurrency limit
(Airflow max_active_runs=1, Databricks max_concurrent_runs=1) must keep runs apart.
"""
from __future__ import annotations

import datetime as dt
import fcntl
import json
import logging
import os
import socket
import uuid
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from typing import Iterator

from engine import catalog
from engine.errors import LockError

log = logging.getLogger("retrain")

LOCK_FILE = catalog.LOCK_FILE
# Filesystems where flock is emulated, local to one client, or not honoured across hosts.
SHARED_FILESYSTEMS = ("nfs", "nfs4", "cifs", "smb3", "smbfs", "ceph", "glusterfs", "lustre", "gpfs",
                      "beegfs", "9p", "afs", "ocfs2", "gfs2", "fuse")
# A lock file without valid content is being written (O_EXCL create, then write); after this
# long its writer has crashed in between and the file is stale.
UNREADABLE_GRACE_SECONDS = 30.0


@dataclass(frozen=True)
class LockInfo:
    host: str
    pid: int
    run_id: str
    acquired_at: str  # ISO 8601, UTC
    token: str
    boot_id: str | None = None
    pid_start: int | None = None  # /proc/<pid>/stat starttime, clock ticks since boot

    @property
    def acquired(self) -> dt.datetime:
        value = dt.datetime.fromisoformat(self.acquired_at)
        return value if value.tzinfo else value.replace(tzinfo=dt.timezone.utc)

    def describe(self) -> str:
        return (f"{self.run_id} (host {self.host}, pid {self.pid}, "
                f"since {self.acquired:%Y-%m-%d %H:%M:%S} UTC)")


def _now() -> dt.datetime:
    return dt.datetime.now(dt.timezone.utc)


def kernel_locks_reliable(path: str) -> bool:
    """Does flock on `path` exclude every process that can open it? False on shared storage
    (by the mount's filesystem type in /proc/mounts) and where /proc does not say."""
    try:
        with open("/proc/mounts") as f:
            mounts = [line.split()[1:3] for line in f if len(line.split()) >= 3]
    except OSError:
        return False
    real = os.path.realpath(path)
    best, fstype = "", None
    for point, kind in mounts:
        point = point.replace("\\040", " ")
        inside = real == point or real.startswith(point.rstrip("/") + "/")
        if inside and len(point) >= len(best):
            best, fstype = point, kind
    return fstype is not None and not fstype.startswith(SHARED_FILESYSTEMS)


# --------------------------------------------------------------------------- processes


def _boot_id() -> str | None:
    try:
        with open("/proc/sys/kernel/random/boot_id") as f:
            return f.read().strip() or None
    except OSError:
        return None


def _proc_stat(pid: int) -> tuple[str, int] | None:
    """(state, starttime) of a pid from /proc, None where /proc does not say."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
        return fields[0], int(fields[19])
    except (OSError, IndexError, ValueError):
        return None


def _alive(pid: int) -> bool:
    if pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        pass  # exists, owned by someone else
    stat = _proc_stat(pid)
    return not (stat and stat[0] in ("Z", "X"))  # a zombie has exited


def stale_reason(info: LockInfo, ttl_minutes: int, now: dt.datetime | None = None) -> str | None:
    """Why a lock may be taken over, or None if its holder must be presumed running."""
    now = now or _now()
    age = now - info.acquired
    if age > dt.timedelta(minutes=ttl_minutes):
        return f"it is {age.total_seconds() / 60:.0f} min old, older than the {ttl_minutes} min TTL"
    if info.host != socket.gethostname():
        return None
    boot = _boot_id()
    if info.boot_id and boot and info.boot_id != boot:
        return f"host {info.host} has rebooted since"
    if not _alive(info.pid):
        return f"pid {info.pid} is no longer running on {info.host}"
    stat = _proc_stat(info.pid)
    if info.pid_start is not None and stat is not None and stat[1] != info.pid_start:
        return f"pid {info.pid} now belongs to another process"
    return None


# --------------------------------------------------------------------------- the lock file


def _parse(raw: bytes) -> LockInfo | None:
    try:
        data = json.loads(raw.decode("utf-8"))
        info = LockInfo(**data)
        info.acquired  # noqa: B018 - validates the timestamp
        return info
    except (ValueError, TypeError):
        return None


def _snapshot(path: str) -> tuple[tuple[int, int], bytes] | None:
    """(inode, mtime) and bytes of a file, None if it does not exist."""
    try:
        with open(path, "rb") as f:
            st = os.fstat(f.fileno())
            return (st.st_ino, st.st_mtime_ns), f.read()
    except FileNotFoundError:
        return None


def _kernel_lock_held(path: str, snap: tuple[tuple[int, int], bytes]) -> bool | None:
    """Does a live process hold the kernel lock of the very file of `snap`? None if unknown
    (the file changed or vanished meanwhile)."""
    try:
        fd = os.open(path, os.O_RDONLY)
    except FileNotFoundError:
        return None
    try:
        if os.fstat(fd).st_ino != snap[0][0]:
            return None
        try:
            fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
        except BlockingIOError:
            return True
        return False
    finally:
        os.close(fd)  # drops the probe's shared lock


def _remove_if_unchanged(path: str, snap: tuple[tuple[int, int], bytes]) -> bool:
    """Remove `path` only if it is still the file of `snap`. True if removed."""
    aside = f"{path}.{uuid.uuid4().hex}.old"
    try:
        os.rename(path, aside)
    except FileNotFoundError:
        return False
    try:
        moved = _snapshot(aside)
        if moved == snap:
            return True
        try:  # we moved a lock someone took a moment ago: put it back
            os.link(aside, path)
        except FileExistsError:
            info = _parse(moved[1]) if moved else None
            log.error("lock %s: a lock of %s was displaced by a concurrent takeover", path,
                      info.describe() if info else "an unknown run")
        return False
    finally:
        try:
            os.unlink(aside)
        except FileNotFoundError:
            pass


def _acquire(path: str, ttl_minutes: int, owner: str, lakehouse: str, kernel: bool) -> tuple[LockInfo, int]:
    """Take the lock file; return what it holds and its open descriptor (which keeps the
    kernel lock when `kernel`)."""
    stat = _proc_stat(os.getpid())
    for _ in range(5):
        try:
            fd = os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
        except FileExistsError:
            snap = _snapshot(path)
            if snap is None:
                continue  # released in the meantime
            info = _parse(snap[1])
            held = _kernel_lock_held(path, snap) if kernel else None
            if info is None:
                age = _now().timestamp() - snap[0][1] / 1e9
                if held or age < UNREADABLE_GRACE_SECONDS:
                    raise LockError(
                        f"lakehouse {lakehouse} is being locked by another run right now "
                        f"({path} was created {age:.0f} s ago and is not written yet)") from None
                reason = f"it is unreadable and {age:.0f} s old"
                holder = "an unknown run"
            else:
                reason = stale_reason(info, ttl_minutes)
                holder = info.describe()
                if reason is None and held is False and info.host == socket.gethostname():
                    reason = "no process holds its kernel lock (its holder died)"
                if reason is None:
                    raise LockError(
                        f"lakehouse {lakehouse} is locked by {holder}; expected no other run. "
                        f"Wait for it to finish; a lock is taken over when its process is gone "
                        f"or after {ttl_minutes} min ({path})") from None
            log.warning("lakehouse %s: taking over the stale lock of %s: %s", lakehouse, holder, reason)
            _remove_if_unchanged(path, snap)
            continue
        info = LockInfo(host=socket.gethostname(), pid=os.getpid(), run_id=owner,
                        acquired_at=_now().isoformat(timespec="seconds"), token=uuid.uuid4().hex,
                        boot_id=_boot_id(), pid_start=stat[1] if stat else None)
        try:
            if kernel:  # before the content is written: a readable lock file is always held
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            os.write(fd, json.dumps(asdict(info), indent=1).encode("utf-8") + b"\n")
            os.fsync(fd)
        except BaseException:
            os.close(fd)
            raise
        return info, fd
    raise LockError(f"lakehouse {lakehouse}: could not take the lock {path}: other runs keep taking it")


def _release(path: str, mine: LockInfo) -> None:
    snap = _snapshot(path)
    info = _parse(snap[1]) if snap else None
    if info is None or info.token != mine.token:
        log.warning("lock %s was no longer ours (now: %s); left in place", path,
                    info.describe() if info else "no lock")
        return
    if not _remove_if_unchanged(path, snap):
        log.warning("lock %s changed while being released; left in place", path)


@contextmanager
def lakehouse_lock(lakehouse_path: str, ttl_minutes: int, owner: str) -> Iterator[LockInfo | None]:
    """Hold the lakehouse for one run (`owner` = the run id). Raises LockError naming the
    holder if another live run has it. Yields the LockInfo written (None when the lakehouse
    is not a local path and cannot be locked). Released on exit, exceptions included."""
    local = catalog.local_path(lakehouse_path)
    if local is None:
        log.warning("lakehouse %s is not a local path: not locked; the scheduler must prevent "
                    "concurrent runs", lakehouse_path)
        yield None
        return
    os.makedirs(local, exist_ok=True)
    path = catalog.local_path(catalog.join(lakehouse_path, LOCK_FILE))
    mine, fd = _acquire(path, ttl_minutes, owner, lakehouse_path, kernel_locks_reliable(local))
    try:
        yield mine
    finally:
        try:
            _release(path, mine)
        finally:
            os.close(fd)  # the kernel lock goes with it
