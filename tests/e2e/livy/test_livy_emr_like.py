"""The EMR-like mode: a session's driver sees what a Livy driver on an EMR cluster sees.

One Spark session on ``emr_livy_server`` (``conftest.py``): the cluster ``ctr-lab emr create
--bucket`` configures, the bucket ``ctr-lab emr upload`` filled. Expected values come from what
EMR does (the driver in a YARN container: a working folder of its own, no variable of the
notebook's machine, HDFS as the default file system, ``s3://`` through EMRFS), from
spark-submit's rule for spark-defaults (a request's setting wins), and from the bucket's files
as ``upload`` wrote them, not from the server.
"""

from __future__ import annotations

import json

import psutil
import pytest
from livy_helpers import LAB_FOLDER, PRESET, REPO, call, run_statement, start_session, wait_for

from ctr_lab.tools import emr


def ok_text(base: str, sid: int, code: str) -> str:
    stmt = run_statement(base, sid, code)
    assert stmt["state"] == "available" and stmt["output"]["status"] == "ok", stmt
    return stmt["output"]["data"]["text/plain"].strip()


def error_text(base: str, sid: int, code: str) -> str:
    stmt = run_statement(base, sid, code)
    assert stmt["output"]["status"] == "error", stmt
    return f"{stmt['output']['ename']}: {stmt['output']['evalue']}"


@pytest.fixture(scope="module")
def emr_session(emr_livy_server, lab_bucket):
    """A session as sparkmagic starts it from the bucket's config, plus one setting of its own."""
    bucket, prefix = emr.split_s3(LAB_FOLDER)
    config = json.loads((lab_bucket / bucket / prefix / "sparkmagic_config.json").read_text())
    body = dict(config["session_configs_defaults"])
    body.update(kind="pyspark", conf={"spark.ctrlab.dataCache": f"s3://{bucket}/mine"})
    base = emr_livy_server.url
    sid = start_session(base, body)["id"]
    pids = [p.pid for p in emr_livy_server.leftover_processes()]
    yield base, sid
    assert call(f"{base}/sessions/{sid}", "DELETE") == (200, {"msg": "deleted"})
    wait_for(lambda: not [p for p in pids if psutil.pid_exists(p)], 60, "the session's processes")


def test_the_driver_has_a_folder_and_variables_of_its_own(emr_session):
    base, sid = emr_session
    cwd = ok_text(base, sid, "import os\nprint(os.getcwd())")
    assert not cwd.startswith(str(REPO)), cwd
    leaked = ok_text(
        base,
        sid,
        "print(sorted(k for k, v in os.environ.items() "
        f"if k.startswith('CTR_LAB') or {str(REPO)!r} in v))",
    )
    assert leaked == "[]"


def test_ctr_lab_comes_from_the_zip_in_the_bucket(emr_session, lab_bucket):
    base, sid = emr_session
    where = ok_text(base, sid, "import ctr_lab\nprint(ctr_lab.__file__)")
    assert not where.startswith(str(REPO)) and emr.zip_name() in where, where


def test_the_cluster_settings_are_defaults_and_a_request_wins(emr_session):
    base, sid = emr_session
    bucket, prefix = emr.split_s3(LAB_FOLDER)
    props = emr.classification(emr.cluster_configurations(PRESET, LAB_FOLDER), "spark-defaults")
    got = ok_text(
        base,
        sid,
        'print(spark.conf.get("spark.ctrlab.modelDir"), spark.conf.get("spark.ctrlab.dataCache"))',
    )
    assert got == f"{props['Properties']['spark.ctrlab.modelDir']} s3://{bucket}/mine"
    assert props["Properties"]["spark.ctrlab.modelDir"] == f"s3://{bucket}/{prefix}/models"


def test_a_path_without_a_scheme_is_on_hdfs(emr_session, emr_livy_server):
    base, sid = emr_session
    default_fs = ok_text(base, sid, 'print(spark._jsc.hadoopConfiguration().get("fs.defaultFS"))')
    assert default_fs.startswith("hdfs://"), default_fs
    user = ok_text(base, sid, "import getpass\nprint(getpass.getuser())")
    ok_text(base, sid, 'spark.range(5).write.parquet("scratch/five")')
    written = emr_livy_server.default_fs_root / "user" / user / "scratch" / "five"
    assert list(written.glob("part-*.parquet")), f"nothing written under {written}"


def test_s3_reads_the_bucket_upload_filled(emr_session, lab_bucket):
    base, sid = emr_session
    bucket, prefix = emr.split_s3(LAB_FOLDER)
    sums = (lab_bucket / bucket / prefix / "SHA256SUMS").read_text().splitlines()
    got = ok_text(base, sid, f'print(spark.read.text("s3://{bucket}/{prefix}/SHA256SUMS").count())')
    assert int(got) == len(sums)
    missing = error_text(base, sid, 'spark.read.text("s3://no-such-bucket/x").count()')
    assert "no-such-bucket" in missing


def test_the_parameters_cell_refuses_a_model_folder_on_hdfs(emr_session):
    base, sid = emr_session
    got = ok_text(base, sid, 'print(ctr_lab.lab_location(spark, "model_dir", "../build/models"))')
    assert got.startswith("s3://"), got
    ok_text(base, sid, 'spark.conf.unset("spark.ctrlab.modelDir")')
    refused = error_text(base, sid, 'ctr_lab.lab_location(spark, "model_dir", "../build/models")')
    assert "CtrLabError" in refused and "has no scheme" in refused and "Fix:" in refused
    assert "\n" not in refused.strip(), refused
