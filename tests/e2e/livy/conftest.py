"""Fixtures of the Livy suite: the test server, the ``ctr_lab`` zip and the sparkmagic config.

The helpers they use live in ``livy_helpers.py``; test modules import from there (a module name
of its own, unlike ``conftest``, which other suites also use).
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from typing import Iterator

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))  # livy_server, livy_helpers

from livy_helpers import KERNEL, LAB_FOLDER, PRESET, REPO, derive_test_config, load_template
from livy_server import LivyTestServer, parse_duration

# ----------------------------------------------------------------------------------------------
# Fixtures
# ----------------------------------------------------------------------------------------------


def serving(server: LivyTestServer) -> Iterator[LivyTestServer]:
    """Start ``server``, yield it, stop it; on teardown no REPL, JVM or worker of it may survive."""
    server.start()
    yield server
    server.stop()
    left = server.leftover_processes()
    assert not left, f"processes of the Livy test server survived its shutdown: {left}"


@pytest.fixture(scope="session")
def livy_zip(tmp_path_factory) -> Path:
    """The pyFiles zip the project builds for EMR."""
    from ctr_lab.tools.bundle import build_zip

    return build_zip(tmp_path_factory.mktemp("dist"))


@pytest.fixture(scope="session")
def livy_server(
    remote_python, livy_zip, driver_java_options, tmp_path_factory
) -> Iterator[LivyTestServer]:
    """One server for the suite.

    Livy's default session timeout (1 h): sessions of kernels that nbval hard-kills go after the
    sparkmagic heartbeat (60 s). The zip's folder is in ``livy.file.local-dir-whitelist``, so
    its ``file://`` URI is accepted, as an admin could allow it on a cluster.
    """
    server = LivyTestServer(
        remote_python,
        tmp_path_factory.mktemp("livy"),
        idle_timeout=3600,
        local_dir_whitelist=(livy_zip.parent,),
        driver_java_options=driver_java_options,
    )
    yield from serving(server)


@pytest.fixture(scope="session")
def sparkmagic_conf_dir(livy_server, livy_zip, tmp_path_factory) -> Path:
    """A SPARKMAGIC_CONF_DIR holding the test config derived from the student template."""
    conf_dir = tmp_path_factory.mktemp("sparkmagic")
    config = derive_test_config(load_template(), livy_server.url, livy_zip)
    (conf_dir / "config.json").write_text(json.dumps(config, indent=2))
    return conf_dir


@pytest.fixture(scope="session")
def sparkmagic_kernel() -> Iterator[str]:
    """sparkmagic's kernelspec, from the folder ``ctr-lab kernel install --sparkmagic`` fills.

    Jupyter's own path has the local kernel under the same name; that folder goes first on
    ``JUPYTER_PATH`` (here and in the kernels and nbval runs this suite starts).
    """
    from jupyter_client.kernelspec import KernelSpecManager, NoSuchKernel

    from ctr_lab.tools.magics import sparkmagic_path

    with pytest.MonkeyPatch.context() as mp:
        mp.setenv(
            "JUPYTER_PATH",
            os.pathsep.join(filter(None, [sparkmagic_path(), os.environ.get("JUPYTER_PATH")])),
        )
        try:
            spec = KernelSpecManager().get_kernel_spec(KERNEL)
        except NoSuchKernel:
            spec = None
        if spec is None or "sparkmagic" not in " ".join(spec.argv):
            pytest.fail(
                f"no sparkmagic '{KERNEL}' kernelspec in {sparkmagic_path()}; install it with "
                f"`{sys.prefix}/bin/ctr-lab kernel install --sys-prefix --sparkmagic`"
            )
        yield KERNEL


# ----------------------------------------------------------------------------------------------
# The EMR-like mode: a bucket filled by `ctr-lab emr upload`, a cluster configured by
# `ctr-lab emr create`
# ----------------------------------------------------------------------------------------------


@pytest.fixture(scope="session")
def lab_bucket(tmp_path_factory) -> Path:
    """The S3 stand-in's root after ``ctr-lab emr upload LAB_FOLDER``: ``ROOT/BUCKET/KEY``.

    ``upload`` runs as the command runs it (the package built from this checkout, every object
    put with boto3), against moto's S3; each object moto then holds is copied to
    ``ROOT/BUCKET/KEY``, where the EMR-like sessions read ``s3://BUCKET/KEY``.

    The bucket's ``models`` folder also gets the complete models the local runs saved in
    ``build/models`` (the browser suite, which ``make test`` runs first, trains them on the same
    sample): what a student's bucket holds after an earlier session on the cluster trained them.
    ``fit_or_load`` reloads a model only if its recorded data fingerprint and settings match, so
    a stale one is trained again. Fits through Livy itself are run by ``test_livy_resume.py``
    and by any notebook whose model is missing here.
    """
    import shutil

    import boto3
    import moto

    from ctr_lab.tools import emr
    from ctr_lab.train import COMPLETE_MARKER

    root = tmp_path_factory.mktemp("s3")
    bucket, prefix = emr.split_s3(LAB_FOLDER)
    with moto.mock_aws():
        s3 = boto3.client("s3", region_name="us-east-1")
        s3.create_bucket(Bucket=bucket)
        # Its own build folder: in `make test` the other lane may be uploading at the same time.
        emr.upload(LAB_FOLDER, s3=s3, dist_dir=tmp_path_factory.mktemp("dist"))
        for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket):
            for item in page.get("Contents", []):
                dest = root / bucket / item["Key"]
                dest.parent.mkdir(parents=True, exist_ok=True)
                s3.download_file(bucket, item["Key"], str(dest))
    # Complete models only (fit_or_load writes a model's marker last, then renames its folder
    # into place): in `make test` the browser suite may still be saving others beside them.
    for marker in sorted((REPO / "build" / "models").glob(f"*/{COMPLETE_MARKER}")):
        shutil.copytree(marker.parent, root / bucket / prefix / "models" / marker.parent.name)
    return root


def cluster_spark_defaults(configs: list) -> dict:
    """The ``spark-defaults`` in ``configs`` (what ``ctr-lab emr create --bucket LAB_FOLDER`` asks
    for), with the shuffle partitions of the local kernel (8), so that the same rounded numbers
    come out on this 2-core machine as in the committed outputs (a real cluster keeps Spark's
    200)."""
    from ctr_lab.tools import emr

    defaults = dict(emr.classification(configs, "spark-defaults")["Properties"])
    defaults["spark.sql.shuffle.partitions"] = "8"
    return defaults


@pytest.fixture(scope="session")
def emr_livy_server(
    remote_python, lab_bucket, driver_java_options, tmp_path_factory
) -> Iterator[LivyTestServer]:
    """A server in the EMR-like mode, configured as ``ctr-lab emr create`` configures Livy.

    Its sessions' drivers start in a fresh folder, with no variable pointing into the
    repository, ``ctr_lab`` only from the zip in the bucket, HDFS as the default file system and
    the bucket as ``s3://`` (``LivyTestServer``'s ``emr_like``). ``livy-conf`` gives the session
    timeout and whether busy sessions are spared; ``spark-defaults`` every session's defaults.
    """
    from ctr_lab.tools import emr

    configs = emr.cluster_configurations(PRESET, LAB_FOLDER)
    props = emr.classification(configs, "livy-conf")["Properties"]
    work = tmp_path_factory.mktemp("livy-emr")
    server = LivyTestServer(
        remote_python,
        work,
        idle_timeout=parse_duration(props["livy.server.session.timeout"]),
        skip_busy=props.get("livy.server.session.timeout-check.skip-busy") == "true",
        emr_like=True,
        spark_defaults=cluster_spark_defaults(configs),
        default_fs_root=work / "hdfs",
        s3_root=lab_bucket,
        driver_java_options=driver_java_options,
    )
    yield from serving(server)


@pytest.fixture(scope="session")
def emr_sparkmagic_conf_dir(emr_livy_server, lab_bucket, tmp_path_factory) -> Path:
    """The sparkmagic config ``ctr-lab emr upload`` put in the bucket (its pyFiles: the zip's
    ``s3://`` URI), with the test changes of ``derive_test_config`` and no other."""
    from ctr_lab.tools import emr

    bucket, prefix = emr.split_s3(LAB_FOLDER)
    template = json.loads((lab_bucket / bucket / prefix / "sparkmagic_config.json").read_text())
    conf_dir = tmp_path_factory.mktemp("sparkmagic-emr")
    config = derive_test_config(template, emr_livy_server.url)
    (conf_dir / "config.json").write_text(json.dumps(config, indent=2))
    return conf_dir
