"""get_spark(): reuse the active session, or start a deterministic local one."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

from ctr_lab.session import get_spark, local_settings

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
