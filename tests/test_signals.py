"""SIGTERM / SIGINT end a run cleanly: a real `retrain run` subprocess is sent the signal (to
its whole process group, driver and Spark JVM, as Airflow and Slurm do) in the middle of a
stage; the failure is recorded, metrics say failed, the lock is released, the exit code is
128 + the signal. No SparkSession in this process."""
from __future__ import annotations

import datetime as dt
import os
import shutil
import signal
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from engine.signals import Terminated, deferred, failure_text, handle_termination, terminating

REPO = Path(__file__).resolve().parents[1]
END = dt.date(2026, 10, 20)


def test_a_signal_raises_once_and_waits_for_a_recording_to_end():
    before = signal.getsignal(signal.SIGTERM)
    with handle_termination():
        with pytest.raises(Terminated) as e:
            os.kill(os.getpid(), signal.SIGTERM)
            threading.Event().wait(5)  # the handler raises in the main thread
        assert e.value.signum == signal.SIGTERM and terminating() == signal.SIGTERM
        assert failure_text(e.value).startswith("terminated: SIGTERM received")
        # A JVM that died with the process group surfaces first as another error: still terminated.
        assert failure_text(ConnectionError("Answer from Java side is empty")).startswith("terminated: SIGTERM")
        os.kill(os.getpid(), signal.SIGTERM)  # a second signal while unwinding: ignored
    with handle_termination():
        written = []
        with pytest.raises(Terminated):
            with deferred():
                os.kill(os.getpid(), signal.SIGINT)
                written.append("row")  # not interrupted
        assert written == ["row"] and terminating() == signal.SIGINT
    assert signal.getsignal(signal.SIGTERM) == before  # restored


def _project(tmp_path: Path, days: int, models: bool) -> Path:
    from engine.demo import generate

    conf = tmp_path / "conf"
    conf.mkdir()
    project = (REPO / "conf" / "project.yaml").read_text().replace("master: local[*]", "master: local[2]")
    sys.path.insert(0, str(REPO / "benchmarks"))
    import chaos

    project = project.replace("spark.sql.shuffle.partitions: 8", "spark.sql.shuffle.partitions: 2\n"
                              f"    spark.driver.extraJavaOptions: \"{chaos.short_jvm_options('driver')}\"")  # C1 only: see chaos.py
    (conf / "project.yaml").write_text(project)
    shutil.copy(REPO / "conf" / "features.yaml", conf)
    if models:
        (conf / "models").mkdir()
        (conf / "models" / "delivery_time.yaml").write_text(chaos.MINI_MODEL)
    generate(str(tmp_path / "lakehouse"), END, days=days, seed=3)
    return tmp_path


def _signal_during(root: Path, stage: str, signum: int) -> tuple[int, str]:
    """Run the night; send `signum` to the process group once `stage` has started."""
    env = {**os.environ, "PYTHONPATH": str(REPO), "PYSPARK_PYTHON": sys.executable}
    proc = subprocess.Popen([sys.executable, "-m", "engine.cli", "run", "--conf", str(root / "conf"),
                             "--date", END.isoformat()], cwd=root, env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True, start_new_session=True)
    lines = []
    for line in proc.stdout:
        lines.append(line)
        if f"retrain: {END} {stage}: started" in line:
            os.killpg(proc.pid, signum)
            break
    lines += proc.stdout.readlines()
    return proc.wait(timeout=300), "".join(lines)


def _check_recorded(root: Path, code: int, output: str, signum: int, stage: str) -> None:
    from deltalake import DeltaTable

    name = signal.Signals(signum).name
    assert code == 128 + signum, output[-3000:]
    assert f"stopped: terminated: {name} received" in output
    rows = DeltaTable(str(root / "lakehouse" / "runs")).to_pyarrow_table().to_pylist()
    by_stage = {r["stage"]: r for r in rows}
    assert by_stage[stage]["status"] == "failed" and by_stage[stage]["error"].startswith(f"terminated: {name}")
    assert by_stage["run"]["status"] == "failed" and by_stage["run"]["error"].startswith(f"terminated: {name}")
    assert not (root / "lakehouse" / "_lock.json").exists()  # released
    metrics = (root / "lakehouse" / "_metrics" / "retrain.prom").read_text()
    assert 'retrain_last_completion_timestamp_seconds{stage="run",status="failed"}' in metrics


def test_sigterm_to_the_process_group_during_validation_is_recorded(tmp_path):
    root = _project(tmp_path, days=14, models=False)
    code, output = _signal_during(root, "validation", signal.SIGTERM)
    _check_recorded(root, code, output, signal.SIGTERM, "validation")


@pytest.mark.slow
def test_sigint_during_training_is_recorded(tmp_path):
    root = _project(tmp_path, days=16, models=True)
    code, output = _signal_during(root, "train", signal.SIGINT)
    _check_recorded(root, code, output, signal.SIGINT, "train")


def test_a_spark_jvm_that_went_away_is_one_line_and_exit_1(capsys):
    """A py4j call to a JVM that is gone (here: a gateway port nobody listens on) ends the
    command with one line and exit 1, not py4j's traceback; other errors keep theirs."""
    import socket

    import typer
    from py4j.java_gateway import GatewayParameters, JavaGateway

    from engine.cli import _exit_codes
    from engine.exit_codes import lost_spark

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    gateway = JavaGateway(gateway_parameters=GatewayParameters(address="127.0.0.1", port=port))
    with pytest.raises(typer.Exit) as e:
        with _exit_codes():
            gateway.jvm.java.lang.System.currentTimeMillis()
    assert e.value.exit_code == 1
    out = capsys.readouterr().err
    assert "the Spark driver JVM went away" in out and "the next run retries it" in out
    assert "Traceback" not in out and len(out.strip().splitlines()) == 1
    assert lost_spark(ConnectionRefusedError("a webhook, not py4j")) is None  # not through py4j
    with pytest.raises(ZeroDivisionError):
        with _exit_codes():
            1 / 0
