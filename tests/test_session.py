"""get_spark(): reuse the active session, or start a deterministic local one."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from ctr_lab import session
from ctr_lab.session import default_driver_memory, get_spark, local_settings, memory_limit_mb
from tests import out_of_heap

PACKAGE = Path(__file__).resolve().parents[1] / "ctr_lab"


def test_returns_the_active_session(spark):
    assert get_spark() is spark
    assert get_spark("another-name", {"spark.sql.shuffle.partitions": "99"}) is spark


def test_local_session_is_deterministic(spark):
    conf = spark.conf
    assert conf.get("spark.sql.session.timeZone") == "UTC"
    assert conf.get("spark.sql.shuffle.partitions") == os.environ["CTR_LAB_SHUFFLE_PARTITIONS"]
    assert spark.sparkContext.master == os.environ["CTR_LAB_MASTER"]
    assert spark.sparkContext.getConf().get("spark.driver.host") == "127.0.0.1"
    # Python workers run this interpreter, not whatever python3 comes first on PATH.
    worker = spark.sparkContext.parallelize([0], 1).map(lambda _: __import__("sys").executable)
    assert worker.collect() == [sys.executable]
    # A YYMMDDHH hour parses to the same wall-clock time whatever the machine's zone.
    row = spark.sql("SELECT to_timestamp('14102100', 'yyMMddHH') AS t").first()
    assert row["t"].isoformat() == "2014-10-21T00:00:00"


def test_settings_come_from_the_environment(monkeypatch):
    monkeypatch.setenv("CTR_LAB_DRIVER_MEMORY", "7g")
    monkeypatch.setenv("CTR_LAB_SHUFFLE_PARTITIONS", "3")
    settings = local_settings({"spark.executor.cores": "1"})
    assert settings["spark.driver.memory"] == "7g"
    assert settings["spark.sql.shuffle.partitions"] == "3"
    assert settings["spark.executor.cores"] == "1"
    log_conf = re.search(
        r"log4j2.configurationFile=file:(\S+)", settings["spark.driver.extraJavaOptions"]
    )
    assert log_conf and Path(log_conf.group(1)).is_file()


def _meminfo_mb() -> int:
    """The machine's memory as /proc/meminfo says (MemTotal, kB): not what the code reads."""
    lines = Path("/proc/meminfo").read_text().splitlines()
    return int(next(x for x in lines if x.startswith("MemTotal")).split()[1]) // 1024


@pytest.mark.skipif(not Path("/proc/meminfo").exists(), reason="needs Linux's /proc/meminfo")
def test_the_memory_limit_is_the_machines_or_its_containers(tmp_path):
    machine = _meminfo_mb()
    assert memory_limit_mb(str(tmp_path)) == machine  # no cgroup files: the machine
    (tmp_path / "memory.max").write_text("max\n")  # cgroup v2, no limit
    assert memory_limit_mb(str(tmp_path)) == machine
    (tmp_path / "memory.max").write_text(f"{6 * 2**30}\n")  # a 6 GiB pod on a larger host
    assert memory_limit_mb(str(tmp_path)) == min(machine, 6 * 1024)
    (tmp_path / "memory.max").unlink()
    (tmp_path / "memory").mkdir()
    (tmp_path / "memory" / "memory.limit_in_bytes").write_text("9223372036854771712\n")  # v1
    assert memory_limit_mb(str(tmp_path)) == machine
    (tmp_path / "memory" / "memory.limit_in_bytes").write_text(f"{3 * 2**30}\n")
    assert memory_limit_mb(str(tmp_path)) == min(machine, 3 * 1024)


def test_the_default_driver_is_half_the_memory_within_bounds(monkeypatch):
    # Half, rounded down to whole GiB, between 4g (what a small laptop had before) and 16g.
    assert [default_driver_memory(mb) for mb in (2048, 8192, 12 * 1024 - 1, 12 * 1024)] == [
        "4g",
        "4g",
        "5g",
        "6g",
    ]
    assert [default_driver_memory(mb) for mb in (32 * 1024, 64 * 1024)] == ["16g", "16g"]
    monkeypatch.setattr(session, "memory_limit_mb", lambda: None)  # nothing could be read
    assert default_driver_memory() == "4g"
    monkeypatch.delenv("CTR_LAB_DRIVER_MEMORY", raising=False)
    monkeypatch.setattr(session, "memory_limit_mb", lambda: 20 * 1024)
    assert local_settings()["spark.driver.memory"] == "10g"
    monkeypatch.setenv("CTR_LAB_DRIVER_MEMORY", "3g")
    assert local_settings()["spark.driver.memory"] == "3g"


def test_no_other_module_picks_a_master():
    pickers = [
        p.name
        for p in PACKAGE.glob("*.py")
        if re.search(r"\.master\(", p.read_text()) and p.name != "session.py"
    ]
    assert pickers == []


def test_missing_java_is_one_clear_line(tmp_path):
    env = dict(os.environ, JAVA_HOME=str(tmp_path / "no-java"), PATH="/usr/bin:/bin")
    env.pop("CTR_LAB_MASTER", None)
    code = "from ctr_lab.session import get_spark; get_spark()"
    result = subprocess.run(
        [sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=120
    )
    assert result.returncode != 0
    last = result.stderr.strip().splitlines()[-1]
    assert last.startswith("ctr_lab.errors.SparkSetupError: could not start local Spark")
    assert "install Java 17" in last and str(tmp_path / "no-java") in last


_CHILD = """
import os, sys
from ctr_lab.session import get_spark, stop_spark
spark = get_spark()
spark.range(3).write.parquet("written")
print(spark._jvm.java.lang.ProcessHandle.current().pid(), flush=True)
if sys.argv[1] == "die":
    os._exit(3)
stop_spark()
"""


def _child(folder: Path, env: dict, how: str = "stop") -> subprocess.CompletedProcess:
    folder.mkdir(parents=True, exist_ok=True)
    return subprocess.run(
        [sys.executable, "-c", _CHILD, how],
        cwd=folder,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )


def _pid(result: subprocess.CompletedProcess) -> int:
    assert result.stdout.strip(), result.stderr[-2000:]
    return int(result.stdout.split()[-1])


# The shared driver serves the lab's tools (the local kernel, `ctr-lab run`, the browser suite),
# which run in the lab environment only: the PySpark 4 pass leaves it out.
@pytest.mark.spark
@pytest.mark.tools
def test_other_processes_start_their_sessions_in_the_shared_driver(tmp_path, monkeypatch):
    from ctr_lab.session import shared_driver

    monkeypatch.setenv("CTR_LAB_SPARK_UI", "false")
    monkeypatch.delenv("CTR_LAB_MASTER", raising=False)
    monkeypatch.setenv("CTR_LAB_DRIVER_MEMORY", "1g")
    with shared_driver(cwd=str(tmp_path)) as driver:
        env = {**os.environ, **driver.env}
        first, second = _child(tmp_path / "a", env), _child(tmp_path / "b" / "c", env)
        assert _pid(first) == _pid(second) == driver.pid()
        # Relative paths start at each process's folder, not at the JVM's.
        assert (tmp_path / "a" / "written" / "_SUCCESS").is_file()
        assert (tmp_path / "b" / "c" / "written" / "_SUCCESS").is_file()
        assert not (tmp_path / "written").exists()
        # Other JVM-start settings: a JVM of its own.
        other = _child(tmp_path / "d", {**env, "CTR_LAB_DRIVER_MEMORY": "768m"})
        assert _pid(other) != driver.pid()
        # A process that dies with its session running: the next one can start only once the
        # leftover session is stopped.
        dead = _child(tmp_path / "e", env, how="die")
        assert dead.returncode == 3 and _pid(dead) == driver.pid()
        assert driver.stop_leftover_session() is True
        assert driver.stop_leftover_session() is False
        assert _pid(_child(tmp_path / "f", env)) == driver.pid()
        pid = driver.pid()
    # The driver's JVM is gone with the block.
    assert not Path(f"/proc/{pid}").exists()


@pytest.mark.spark
def test_a_driver_that_ran_out_of_heap_is_let_go_and_the_next_session_starts(tmp_path):
    # Running out of heap (tests/out_of_heap.py) ends the local driver JVM (in a process of its
    # own: it would end the tests' driver too). PySpark still holds the dead JVM: without
    # lost_driver, get_spark() fails asking that JVM for its active session.
    script = (
        "from ctr_lab.session import get_spark, lost_driver\n"
        "try:\n"
        f"    get_spark().range(1).selectExpr({out_of_heap.EXPRESSION!r}).collect()\n"
        "except Exception as exc:\n"
        "    print('failed with', type(exc).__name__)\n"
        "print(lost_driver())\n"
        "print('then', get_spark().range(3).count())\n"
    )
    env = dict(
        os.environ, CTR_LAB_DRIVER_MEMORY=out_of_heap.DRIVER_MEMORY, CTR_LAB_SPARK_UI="false"
    )
    result = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=180, env=env
    )
    assert result.returncode == 0, result.stderr
    assert "java.lang.OutOfMemoryError: Java heap space" in result.stderr  # the JVM's account
    lines = result.stdout.splitlines()
    assert lines[0].startswith("failed with ")
    assert lines[1:] == ["EndedDriver(code=52, memory='512m')", "then 3"]


def test_a_jvm_fits_a_session_only_with_the_same_start_settings():
    from ctr_lab.session import jvm_fits

    started = {"spark.driver.memory": "2g", "spark.sql.shuffle.partitions": "8"}
    assert jvm_fits(started, {**started, "spark.sql.shuffle.partitions": "4", "spark.x": "1"})
    assert not jvm_fits(started, {**started, "spark.driver.memory": "1g"})
    # A JVM-start setting added later needs a new JVM too: it is read only at start.
    assert not jvm_fits(started, {**started, "spark.jars": "extra.jar"})
    # A setting the JVM started with, left out: the JVM would still apply it.
    assert not jvm_fits(started, {"spark.driver.memory": "2g"})
