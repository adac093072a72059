"""deploy/slurm/retrain.sbatch on a real single-node Slurm: munged, slurmctld and slurmd
(Debian's munge and slurm-wlm) started on 127.0.0.1 with a generated slurm.conf in a temporary
directory, stopped by PID. The batch job starts a Spark standalone master and a worker inside
its allocation and spark-submits jobs/nightly.py; the test checks the job's state and exit
code as Slurm records them and the lakehouse the night wrote (the tiny plugin project of
tests/test_plugins.py, so the executors import the plugin the driver shipped).

Slow (make test-slow): the JVMs of the master, the worker and the job start at each submit.
"""
from __future__ import annotations

import contextlib
import os
import re
import shutil
import signal
import socket
import subprocess
import time
from pathlib import Path

import pytest

from engine import tables
from engine.catalog import Catalog
from engine.config import load_config
from tests import test_plugins as tiny

REPO = Path(__file__).resolve().parents[1]
SBATCH = REPO / "deploy" / "slurm" / "retrain.sbatch"
DAEMONS = {"munged": "/usr/sbin/munged", "slurmctld": "/usr/sbin/slurmctld", "slurmd": "/usr/sbin/slurmd",
           "mungekey": "/usr/sbin/mungekey"}
JOB_SECONDS = 900

pytestmark = pytest.mark.slow


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _tail(path: Path, lines: int = 30) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return f"({path} not readable)"


SLURM_CONF = """\
ClusterName=retraintest
SlurmctldHost={node}(127.0.0.1)
SlurmctldPort={ctld_port}
SlurmdPort={slurmd_port}
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
AuthInfo=socket={root}/munge.socket
CredType=cred/munge
StateSaveLocation={root}/state
SlurmdSpoolDir={root}/spool
SlurmctldPidFile={root}/slurmctld.pid
SlurmdPidFile={root}/slurmd.pid
SlurmctldLogFile={root}/slurmctld.log
SlurmdLogFile={root}/slurmd.log
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
SelectType=select/cons_tres
SelectTypeParameters=CR_Core
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
MpiDefault=none
SwitchType=switch/none
ReturnToService=2
MinJobAge=3600
NodeName={node} NodeAddr=127.0.0.1 CPUs=2 RealMemory=3000 State=UNKNOWN
PartitionName=retrain Nodes={node} Default=YES MaxTime=INFINITE State=UP
"""


@contextlib.contextmanager
def slurm_cluster(root: Path):
    """munged + slurmctld + slurmd for one node named after this host, on 127.0.0.1."""
    missing = [name for name, path in DAEMONS.items() if not os.access(path, os.X_OK)]
    if missing:
        pytest.fail(f"{missing} not installed: deploy/ci-system-packages.sh installs slurm-wlm and munge")
    root.mkdir(parents=True)
    root.chmod(0o700)
    (root / "state").mkdir()
    (root / "spool").mkdir()
    node = socket.gethostname().split(".")[0]
    conf = root / "slurm.conf"
    conf.write_text(SLURM_CONF.format(node=node, root=root, ctld_port=free_port(), slurmd_port=free_port()))
    env = {**os.environ, "SLURM_CONF": str(conf)}
    subprocess.run([DAEMONS["mungekey"], "--create", f"--keyfile={root / 'munge.key'}"], check=True,
                   capture_output=True)
    (root / "munge.key").chmod(0o600)
    commands = {
        "munged": [DAEMONS["munged"], "--foreground", "--force", f"--socket={root / 'munge.socket'}",
                   f"--key-file={root / 'munge.key'}", f"--log-file={root / 'munged.log'}",
                   f"--pid-file={root / 'munged.pid'}", f"--seed-file={root / 'munged.seed'}"],
        "slurmctld": [DAEMONS["slurmctld"], "-D", "-i", "-f", str(conf)],
        "slurmd": [DAEMONS["slurmd"], "-D", "-N", node, "-f", str(conf)],
    }
    processes: dict[str, subprocess.Popen] = {}
    try:
        for name, cmd in commands.items():
            with open(root / f"{name}.out", "wb") as out:
                processes[name] = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT, env=env,
                                                   start_new_session=True)
            if name == "munged":
                _wait(lambda: (root / "munge.socket").exists(), processes, root, "munged's socket")
        _wait(lambda: " idle " in f" {_sinfo(env)} ", processes, root, "the node idle in sinfo")
        yield env
    finally:
        for name in reversed(list(processes)):  # slurmd, slurmctld, munged; each by its PID
            p = processes[name]
            with contextlib.suppress(ProcessLookupError):
                os.killpg(p.pid, signal.SIGTERM)
            try:
                p.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(p.pid, signal.SIGKILL)
                p.wait(timeout=10)


def _sinfo(env) -> str:
    result = subprocess.run(["sinfo", "-h", "-o", "%T"], env=env, capture_output=True, text=True)
    return result.stdout.strip()


def _wait(ready, processes, root: Path, what: str, seconds: float = 60) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        for name, p in processes.items():
            if p.poll() is not None:
                raise AssertionError(f"{name} exited with {p.returncode}:\n{_tail(root / f'{name}.out')}\n"
                                     f"{_tail(root / f'{name}.log')}")
        if ready():
            return
        time.sleep(0.5)
    logs = "\n".join(f"{n}:\n{_tail(root / f'{n}.out')}\n{_tail(root / f'{n}.log')}" for n in processes)
    raise AssertionError(f"no {what} within {seconds}s\n{logs}")


def submit(env, conf: Path, workdir: Path, *args: str) -> tuple[str, int, str]:
    """sbatch retrain.sbatch and wait for the job to end: (JobState, exit code, job log)."""
    job_env = {**env, "RETRAIN_HOME": str(REPO), "RETRAIN_CONF": str(conf),
               "RETRAIN_PYTHON": os.environ.get("PYSPARK_PYTHON", shutil.which("python3") or "python3"),
               "RETRAIN_WORKER_MEMORY": "1g", "SPARK_MASTER_HOST": "127.0.0.1", "SPARK_LOCAL_IP": "127.0.0.1"}
    log = workdir / "job-%j.log"
    out = subprocess.run(["sbatch", "--parsable", "--export=ALL", f"--output={log}", f"--chdir={workdir}",
                          str(SBATCH), *args], env=job_env, capture_output=True, text=True, check=True)
    job = out.stdout.strip().split(";")[0]
    deadline = time.monotonic() + JOB_SECONDS
    while True:
        info = subprocess.run(["scontrol", "show", "job", job, "-o"], env=env, capture_output=True, text=True).stdout
        state = re.search(r"JobState=(\S+)", info)
        if state and state.group(1) not in ("PENDING", "RUNNING", "CONFIGURING", "COMPLETING"):
            code = int(re.search(r" ExitCode=(\d+):", info).group(1))
            return state.group(1), code, _tail(Path(str(log).replace("%j", job)), 60)
        if time.monotonic() > deadline:
            subprocess.run(["scancel", job], env=env)
            raise AssertionError(f"job {job} did not end in {JOB_SECONDS}s:\n{info}")
        time.sleep(2)


@pytest.mark.timeout(JOB_SECONDS * 2 + 300)
def test_the_sbatch_script_runs_a_night_on_a_spark_cluster_inside_its_allocation(tmp_path):
    project = tmp_path / "project"
    project.mkdir()
    tiny.write_plugin(project)
    tiny.write_points(project)
    conf = tiny.write_project(project)
    broken = tiny.write_project(tmp_path / "broken", tiny.PROJECT.replace("[tiny_team]", "[no_such_team]"))
    with slurm_cluster(tmp_path / "slurm") as env:
        started = time.monotonic()
        state, code, log = submit(env, conf, tmp_path, "--date", tiny.END.isoformat())
        print(f"night: {state} exit {code} in {time.monotonic() - started:.0f}s")
        assert (state, code) == ("COMPLETED", 0), log
        assert "jobs/nightly.py exited with 0" in log, log
        # A config error: the job fails with the nightly job's exit code 2 (README: exit codes).
        state, code, log = submit(env, broken, tmp_path)
        assert (state, code) == ("FAILED", 2), log
        assert "plugins.0: cannot import plugin 'no_such_team'" in log, log

    cfg = load_config(conf)
    lake = Catalog.of(cfg)
    runs = {r["stage"]: r["status"] for r in tables.read_rows(lake.runs).to_pylist()}
    assert runs["run"] == "success" and runs["train"] == "success", runs
    assert len(tables.read_rows(lake.features("points"))) == 40 * tiny.DAYS
    [champion] = [r for r in tables.read_rows(lake.registry).to_pylist() if r["status"] == "champion"]
    assert champion["model_id"] == "tiny" and str(champion["logical_date"]) == tiny.END.isoformat(), champion
    # The executors (started by the Spark worker inside the allocation) imported the plugin
    # from the zip the driver shipped: the project directory is on no executor's path.
    imports = set((project / "imports.txt").read_text().split())
    assert any(".zip/tiny_team/estimators.py" in p for p in imports), imports

