"""The one place that decides where Spark runs.

On EMR (sparkmagic + Livy) the session already exists as ``spark`` and :func:`get_spark` returns it
untouched. On a laptop it builds a local session with settings chosen so that results are the same
from run to run and machine to machine. No other module in ``ctr_lab`` picks a master.

Environment variables (local sessions only):

``CTR_LAB_MASTER``
    Spark master URL, default ``local[*]``. Set it to ``spark://host:7077`` to use a standalone
    cluster.
``CTR_LAB_DRIVER_MEMORY``
    Driver memory, default ``4g``. In local mode the driver is the whole cluster.
``CTR_LAB_SHUFFLE_PARTITIONS``
    ``spark.sql.shuffle.partitions``, default ``8``: fixed, so group-bys and joins split the same
    way on any number of cores.
``CTR_LAB_JVM_ARCHIVE``
    The driver JVM's class-data archive (:mod:`ctr_lab.jvm`), or ``off``.
"""

from __future__ import annotations

import os
import sys
from typing import Dict, Optional

from ctr_lab.errors import SparkSetupError
from ctr_lab.jvm import java_options

DEFAULT_DRIVER_MEMORY = "4g"
DEFAULT_SHUFFLE_PARTITIONS = 8


def local_settings(extra: Optional[Dict[str, str]] = None) -> Dict[str, str]:
    """Return the Spark settings :func:`get_spark` applies to a new local session.

    Parameters
    ----------
    extra
        Settings that override or add to the defaults.

    Examples
    --------
    >>> local_settings()["spark.sql.session.timeZone"]
    'UTC'
    """
    log_conf = "-Dlog4j2.configurationFile=file:" + os.path.join(
        os.path.dirname(os.path.abspath(__file__)), "log4j2.properties"
    )
    settings = {
        "spark.driver.memory": os.environ.get("CTR_LAB_DRIVER_MEMORY", DEFAULT_DRIVER_MEMORY),
        "spark.sql.shuffle.partitions": os.environ.get(
            "CTR_LAB_SHUFFLE_PARTITIONS", str(DEFAULT_SHUFFLE_PARTITIONS)
        ),
        # Avazu hours are UTC: parse and display them in UTC whatever the laptop's zone.
        "spark.sql.session.timeZone": "UTC",
        # The throughput collector: a local driver runs batch jobs on few cores, where G1's
        # concurrent work competes with the tasks (a cold `recommended` fit: about 10% faster).
        "spark.driver.extraJavaOptions": (
            f"-Duser.timezone=UTC {log_conf} -XX:+UseParallelGC {java_options()}".strip()
        ),
        "spark.executor.extraJavaOptions": "-Duser.timezone=UTC",
        # Adaptive execution would coalesce partitions by data size: keep the count fixed.
        "spark.sql.adaptive.coalescePartitions.enabled": "false",
        "spark.ui.showConsoleProgress": "false",
        # A laptop session talks to itself only: bind to loopback, never to a public interface.
        "spark.driver.host": "127.0.0.1",
        "spark.driver.bindAddress": "127.0.0.1",
        "spark.ui.enabled": os.environ.get("CTR_LAB_SPARK_UI", "true"),
    }
    settings.update(extra or {})
    return settings


def get_spark(app_name: str = "ctr-lab", config: Optional[Dict[str, str]] = None):
    """Return the active Spark session, or start a local one with deterministic settings.

    Parameters
    ----------
    app_name
        Application name shown in the Spark UI (local sessions only).
    config
        Extra Spark settings for a new local session. Ignored when a session already exists: on
        EMR, change session settings with ``%%configure -f`` instead.

    Returns
    -------
    pyspark.sql.SparkSession

    Examples
    --------
    >>> spark = get_spark()
    >>> spark.conf.get("spark.sql.session.timeZone")
    'UTC'
    """
    from pyspark.sql import SparkSession

    active = SparkSession.getActiveSession()
    if active is not None:
        return active

    master = os.environ.get("CTR_LAB_MASTER", "local[*]")
    os.environ.setdefault("SPARK_LOCAL_IP", "127.0.0.1")
    # Python workers run the driver's interpreter (the venv's), not whatever python3 is on PATH.
    os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
    builder = SparkSession.builder.master(master).appName(app_name)
    for key, value in local_settings(config).items():
        builder = builder.config(key, value)
    try:
        spark = builder.getOrCreate()
    except Exception as exc:  # Py4J / Java start-up failures: say what to do instead
        java_home = os.environ.get("JAVA_HOME", "not set")
        raise SparkSetupError(
            f"could not start local Spark ({type(exc).__name__}: "
            f"{str(exc).splitlines()[0][:200]}); "
            f"JAVA_HOME is {java_home}. Fix: install Java 17 and set JAVA_HOME to it"
        ) from None
    spark.sparkContext.setLogLevel("ERROR")
    return spark


def stop_spark() -> None:
    """Stop the active local session and its JVM, and wait for the JVM to exit.

    The next :func:`get_spark` starts a new JVM, so settings only a JVM start applies (driver
    memory, Java options) take effect. Does nothing when no session is active.
    """
    from pyspark import SparkContext
    from pyspark.sql import SparkSession

    active = SparkSession.getActiveSession()
    if active is not None:
        active.stop()
    gateway = SparkContext._gateway
    if gateway is None:
        return
    proc = getattr(gateway, "proc", None)
    gateway.shutdown()
    if proc is not None:  # the JVM exits when its stdin closes
        proc.stdin.close()
        try:
            proc.wait(timeout=60)
        except Exception:
            proc.kill()
    SparkContext._gateway = None
    SparkContext._jvm = None
