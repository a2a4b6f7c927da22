"""The driver JVM's class-data archive: options, and a JVM that really maps it."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from ctr_lab import session
from ctr_lab.errors import CtrLabError
from ctr_lab.session import local_settings
from ctr_lab.tools import jvm


def test_sessions_use_the_archive_only_when_it_exists(tmp_path, monkeypatch):
    archive = tmp_path / "spark.jsa"
    monkeypatch.setenv("CTR_LAB_JVM_ARCHIVE", str(archive))
    assert "SharedArchiveFile" not in local_settings()["spark.driver.extraJavaOptions"]
    archive.write_bytes(b"\0")
    options = local_settings()["spark.driver.extraJavaOptions"].split()
    assert f"-XX:SharedArchiveFile={archive}" in options and "-Xshare:auto" in options
    monkeypatch.setenv("CTR_LAB_JVM_ARCHIVE", "off")
    assert "SharedArchiveFile" not in local_settings()["spark.driver.extraJavaOptions"]


def test_a_path_with_a_space_is_quoted_for_spark(tmp_path, monkeypatch):
    archive = tmp_path / "my archives" / "spark.jsa"
    archive.parent.mkdir()
    archive.write_bytes(b"\0")
    monkeypatch.setenv("CTR_LAB_JVM_ARCHIVE", str(archive))
    assert f'"-XX:SharedArchiveFile={archive}"' in session.java_options()


def test_building_with_the_archive_off_is_a_clear_error(monkeypatch):
    monkeypatch.setenv("CTR_LAB_JVM_ARCHIVE", "off")
    with pytest.raises(CtrLabError, match="CTR_LAB_JVM_ARCHIVE is off"):
        jvm.build_archive()


def _built_archive(tmp_path) -> str:
    """The archive ``make`` built for this environment (``ctr-lab jvm-archive``), checked for
    left-over partial files; where there is none, one built here (quick)."""
    installed = session.archive_path()
    if "CTR_LAB_JVM_ARCHIVE" not in os.environ and os.path.isfile(installed):
        folder = os.path.dirname(installed)
        assert not [n for n in os.listdir(folder) if ".tmp-" in n]  # no partial file left
        return installed
    done = jvm.build_archive(str(tmp_path / "spark.jsa"), quick=True)
    assert done["bytes"] > 10 * 2**20
    assert os.listdir(tmp_path) == ["spark.jsa"]  # no partial file left
    return str(done["path"])


def test_a_built_archive_serves_spark_classes_to_the_next_driver(tmp_path):
    archive = _built_archive(tmp_path / "archive")
    # A second driver started by get_spark, logging where each class came from (one log per
    # JVM: the spark-submit launcher's and the driver's).
    env = dict(
        os.environ,
        CTR_LAB_JVM_ARCHIVE=archive,
        JDK_JAVA_OPTIONS=f"-Xlog:class+load=info:file={tmp_path}/load-%p.log",
    )
    env.pop("CTR_LAB_MASTER", None)
    code = "from ctr_lab.session import get_spark; print(get_spark().range(3).count())"
    result = subprocess.run(
        [sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=300
    )
    assert result.returncode == 0, result.stderr[-2000:]
    logs = "".join(p.read_text() for p in tmp_path.glob("load-*.log"))
    from_archive = [
        line for line in logs.splitlines() if "shared objects file (top)" in line
    ]  # "(top)": the dynamic archive, not the JDK's own base archive
    assert any("org.apache.spark.SparkContext " in line for line in from_archive)
    assert len(from_archive) > 1000
