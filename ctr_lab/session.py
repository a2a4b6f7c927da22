"""The one place that decides where Spark runs.

On EMR (sparkmagic + Livy) the session already exists as ``spark`` and :func:`get_spark` returns it
untouched. On a laptop it builds a local session with settings chosen so that results are the same
from run to run and machine to machine. No other module in ``ctr_lab`` picks a master.

A local session runs in a driver JVM its process starts, or in one :func:`shared_driver` started
for several processes in turn (``ctr-lab run`` does that, so notebook after notebook runs in a
JVM whose classes are loaded and whose code is compiled).

Environment variables (local sessions only):

``CTR_LAB_MASTER``
    Spark master URL, default ``local[*]``. Set it to ``spark://host:7077`` to use a standalone
    cluster.
``CTR_LAB_DRIVER_MEMORY``
    Driver memory. In local mode the driver is the whole cluster, so the default is half the
    memory this process may use (the machine's, or its container's limit), at least ``4g`` and
    at most ``16g`` (:func:`default_driver_memory`).
``CTR_LAB_SHUFFLE_PARTITIONS``
    ``spark.sql.shuffle.partitions``, default ``8``: fixed, so group-bys and joins split the same
    way on any number of cores.
``CTR_LAB_JVM_ARCHIVE``
    The driver JVM's class-data archive (built by ``ctr-lab jvm-archive``), or ``off``.
``CTR_LAB_SHARED_JVM``
    Set by :func:`shared_driver` (with PySpark's ``PYSPARK_GATEWAY_PORT`` and
    ``PYSPARK_GATEWAY_SECRET``) for the processes that may start their sessions in its JVM.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import subprocess
import sys
from pathlib import Path
from typing import Any, Dict, Iterator, NamedTuple, Optional

from ctr_lab.errors import CtrLabError, SparkSetupError

#: The local driver's memory when nothing names one: half the memory the process may use, within
#: these bounds (MiB). At 10M rows `recommended` needs about 8 GiB: on a 4 GiB driver its cached
#: features and the LR's blocks spilled, and the fit took three times as long (BENCHMARKS.md,
#: "10M rows on an 8 GiB driver").
MIN_DRIVER_MB = 4 * 1024
MAX_DRIVER_MB = 16 * 1024
DEFAULT_SHUFFLE_PARTITIONS = 8
#: The optimizing (C2) compiler's thresholds, ten times the JVM's: a session runs many short,
#: distinct queries, each on classes Spark generates for it, and with the defaults the unit
#: tests' driver spent 46 % of its CPU in the compilers (38 % in C2), on code that ran a few
#: thousand times. A loop over millions of rows still passes these within seconds (BENCHMARKS.md,
#: History 2026-12-05).
_C2_THRESHOLDS = (
    "-XX:Tier4InvocationThreshold=50000 -XX:Tier4MinInvocationThreshold=6000 "
    "-XX:Tier4CompileThreshold=150000 -XX:Tier4BackEdgeThreshold=400000"
)
#: The collector of a driver JVM that waits on a person between cells: the local kernel's own
#: (not a shared driver's, whose settings the kernel's session must match). G1 gives the heap an
#: idle JVM no longer uses back to the machine (a concurrent cycle after 30 s without one:
#: ``G1PeriodicGCInterval``, JEP 346); the throughput collector keeps its peak until the JVM
#: exits. Fitting `recommended` on the 50k sample left a driver of this machine's default size
#: holding 4.5 GB idle with it, 1.7 GB with G1 (BENCHMARKS.md, "Several notebooks open on a
#: laptop"): a few notebooks left open no longer take a laptop's memory.
INTERACTIVE_GC = "-XX:+UseG1GC -XX:G1PeriodicGCInterval=30000"
_BATCH_GC = "-XX:+UseParallelGC"
#: Settings a JVM reads when it starts: a session in a running JVM cannot change them.
JVM_START_PREFIXES = ("spark.driver.", "spark.jars", "spark.files", "spark.submit.")
SHARED_JVM_ENV = "CTR_LAB_SHARED_JVM"
#: The variables that make a process's session start in a running driver JVM (shared_driver).
GATEWAY_ENV = ("PYSPARK_GATEWAY_PORT", "PYSPARK_GATEWAY_SECRET", SHARED_JVM_ENV)
#: What a Spark JVM exits with when one of its threads runs out of memory (``SparkExitCode.OOM``).
#: In local mode the driver runs the tasks, so a task that runs out of heap ends the driver
#: (``SparkUncaughtExceptionHandler``), and Python then sees whichever call came next fail.
OOM_EXIT_CODE = 52
_MEMORY_UNITS = {"k": 1 / 1024, "m": 1, "g": 1024, "t": 1024 * 1024}


def memory_limit_mb(cgroup_root: str = "/sys/fs/cgroup") -> Optional[int]:
    """MiB of memory this process may use: the machine's, or its container's limit if lower.

    The container's limit is cgroup v2's ``memory.max`` or v1's ``memory.limit_in_bytes`` under
    ``cgroup_root`` (a JupyterHub pod or a Docker container on a larger host); None when
    neither the machine's size nor a limit can be read.
    """
    known = []
    with contextlib.suppress(AttributeError, ValueError, OSError):
        known.append(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") // 2**20)
    for name in ("memory.max", os.path.join("memory", "memory.limit_in_bytes")):
        with contextlib.suppress(OSError, ValueError):
            text = Path(cgroup_root, name).read_text().strip()
            if text != "max":  # v2's "no limit"; v1 writes a huge number instead
                known.append(int(text) // 2**20)
    return min(known) if known else None


def default_driver_memory(limit_mb: Optional[int] = None) -> str:
    """The local driver's memory: half of ``limit_mb`` (default :func:`memory_limit_mb`).

    At least :data:`MIN_DRIVER_MB` (the lab's driver before it was sized to the machine) and at
    most :data:`MAX_DRIVER_MB`, in whole GiB.

    >>> default_driver_memory(8 * 1024), default_driver_memory(24150), default_driver_memory(2**20)
    ('4g', '11g', '16g')
    """
    limit = memory_limit_mb() if limit_mb is None else limit_mb
    half = (limit or 0) // 2
    return f"{max(MIN_DRIVER_MB, min(MAX_DRIVER_MB, half)) // 1024}g"


def memory_mb(text: str) -> int:
    """MiB in a Spark memory string such as ``4g``, ``9216m`` or ``512`` (MiB when no unit).

    >>> memory_mb("4g"), memory_mb("1536m"), memory_mb("512")
    (4096, 1536, 512)
    """
    match = re.fullmatch(r"\s*(\d+)\s*([kmgt])?b?\s*", str(text).lower())
    if not match:
        raise CtrLabError(f"{text!r} is not a Spark memory size. Fix: write it like 4g or 4096m")
    return int(int(match.group(1)) * _MEMORY_UNITS[match.group(2) or "m"])


# ----------------------------------------------------------------------------------------------
# The driver JVM's class-data archive (built by ``ctr-lab jvm-archive``, ctr_lab.tools.jvm)
# ----------------------------------------------------------------------------------------------

#: Set by :func:`build_archive` in the child process: the JVM writes its archive there on exit.
_DUMP_ENV = "_CTR_LAB_JVM_ARCHIVE_DUMP"
#: Keep the JVM quiet about classes it cannot archive (generated or signed ones).
_QUIET = "-Xlog:cds=off -Xlog:cds+dynamic=off"
#: The JVM that writes the archive compiles with C1 only: an archive holds classes, not compiled
#: code, and the warm-up is over before C2's work would pay (BENCHMARKS.md, The test suite).
_DUMP_JIT = "-XX:TieredStopAtLevel=1"


def archive_path() -> str:
    """The archive this environment's local sessions use (``CTR_LAB_JVM_ARCHIVE`` overrides).

    Examples
    --------
    >>> archive_path().endswith(".jsa") or archive_path() == "off"
    True
    """
    override = os.environ.get("CTR_LAB_JVM_ARCHIVE")
    if override:
        return override
    import pyspark

    return os.path.join(sys.prefix, "share", "ctr-lab", f"spark-{pyspark.__version__}.jsa")


def java_options() -> str:
    """Driver JVM options for the archive: use it when it exists; write it when building it."""
    dump = os.environ.get(_DUMP_ENV)
    if dump:
        return f"{_option('ArchiveClassesAtExit', dump)} {_DUMP_JIT} {_QUIET}"
    path = archive_path()
    if path == "off" or not os.path.isfile(path):
        return ""
    return f"{_option('SharedArchiveFile', path)} -Xshare:auto {_QUIET}"


def _option(name: str, path: str) -> str:
    option = f"-XX:{name}={path}"
    return f'"{option}"' if " " in path else option  # Spark splits the options on spaces


def local_settings(
    extra: Optional[Dict[str, str]] = None, interactive: bool = False
) -> Dict[str, str]:
    """Return the Spark settings :func:`get_spark` applies to a new local session.

    Parameters
    ----------
    extra
        Settings that override or add to the defaults.
    interactive
        For a driver JVM that waits on a person between cells: its garbage collector gives
        idle memory back (:data:`INTERACTIVE_GC`) instead of the throughput collector's speed.

    Examples
    --------
    >>> local_settings()["spark.sql.session.timeZone"]
    'UTC'
    """
    log_conf = "-Dlog4j2.configurationFile=file:" + os.path.join(
        os.path.dirname(os.path.abspath(__file__)), "log4j2.properties"
    )
    settings = {
        "spark.driver.memory": os.environ.get("CTR_LAB_DRIVER_MEMORY") or default_driver_memory(),
        "spark.sql.shuffle.partitions": os.environ.get(
            "CTR_LAB_SHUFFLE_PARTITIONS", str(DEFAULT_SHUFFLE_PARTITIONS)
        ),
        # Avazu hours are UTC: parse and display them in UTC whatever the laptop's zone.
        "spark.sql.session.timeZone": "UTC",
        # The throughput collector: a local driver runs batch jobs on few cores, where G1's
        # concurrent work competes with the tasks (a cold `recommended` fit: about 10% faster).
        "spark.driver.extraJavaOptions": (
            f"-Duser.timezone=UTC {log_conf} {INTERACTIVE_GC if interactive else _BATCH_GC} "
            f"{_C2_THRESHOLDS} {java_options()}"
        ).strip(),
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


def jvm_start_settings(settings: Dict[str, str]) -> Dict[str, str]:
    """The part of ``settings`` a JVM reads when it starts (driver memory, Java options, jars).

    Examples
    --------
    >>> jvm_start_settings({"spark.driver.memory": "2g", "spark.sql.shuffle.partitions": "4"})
    {'spark.driver.memory': '2g'}
    """
    return {k: v for k, v in settings.items() if k.startswith(JVM_START_PREFIXES)}


def jvm_fits(started_with: Dict[str, str], settings: Dict[str, str]) -> bool:
    """Whether a new session with ``settings`` can start in a JVM started with ``started_with``.

    The JVM-start settings must be the same (none changed, added or dropped), and every setting
    the JVM started with must be set again: a JVM keeps them as defaults for its next session.

    Examples
    --------
    >>> jvm_fits({"spark.driver.memory": "2g"}, {"spark.driver.memory": "2g", "spark.x": "1"})
    True
    >>> jvm_fits({"spark.driver.memory": "2g"}, {"spark.driver.memory": "1g"})
    False
    """
    return set(started_with) <= set(settings) and jvm_start_settings(
        settings
    ) == jvm_start_settings(started_with)


def shared_jvm_settings() -> Optional[Dict[str, str]]:
    """What the shared driver JVM this process may use started with, or None if there is none."""
    text = os.environ.get(SHARED_JVM_ENV)
    if not text or "PYSPARK_GATEWAY_PORT" not in os.environ:
        return None
    return {str(k): str(v) for k, v in json.loads(text).items()}


def _local_environment() -> None:
    os.environ.setdefault("SPARK_LOCAL_IP", "127.0.0.1")
    # Python workers run the driver's interpreter (the venv's), not whatever python3 is on PATH.
    os.environ.setdefault("PYSPARK_PYTHON", sys.executable)


def _leave_shared_jvm_unless_it_fits(settings: Dict[str, str]) -> None:
    """Forget the shared driver JVM when a new session with ``settings`` cannot start in it.

    A session starts in it only when its JVM-start settings are the ones the JVM started with;
    otherwise this process starts a JVM of its own, now and for every later session.
    """
    from pyspark import SparkContext

    shared = shared_jvm_settings()
    if SparkContext._gateway is not None or shared is None:
        return
    if not jvm_fits(shared, settings):
        for name in GATEWAY_ENV:
            os.environ.pop(name, None)


def _resolve_relative_paths_here(spark) -> None:
    """Make relative Hadoop paths (reads, writes, model folders) start at this process's folder.

    A JVM resolves them against its own working folder, which for a shared driver is not the
    notebook's.
    """
    jvm = spark._jvm
    local_fs = jvm.org.apache.hadoop.fs.FileSystem.getLocal(spark._jsc.hadoopConfiguration())
    local_fs.setWorkingDirectory(jvm.org.apache.hadoop.fs.Path(Path.cwd().as_uri()))


def get_spark(
    app_name: str = "ctr-lab", config: Optional[Dict[str, str]] = None, interactive: bool = False
):
    """Return the active Spark session, or start a local one with deterministic settings.

    A new local session starts in the :func:`shared_driver` JVM this process was given, when its
    JVM-start settings are the ones that JVM started with; else in a JVM of its own.

    Parameters
    ----------
    app_name
        Application name shown in the Spark UI (local sessions only).
    config
        Extra Spark settings for a new local session. Ignored when a session already exists: on
        EMR, change session settings with ``%%configure -f`` instead.
    interactive
        A session that waits on a person between cells (the local kernel's): a JVM of its own
        gives idle memory back (``local_settings(interactive=True)``); in a shared driver it
        runs as that JVM started.

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
    _local_environment()
    settings = local_settings(config)
    _leave_shared_jvm_unless_it_fits(settings)
    if interactive and shared_jvm_settings() is None:
        settings = local_settings(config, interactive=True)
    builder = SparkSession.builder.master(master).appName(app_name)
    for key, value in settings.items():
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
    if shared_jvm_settings() is not None:  # in the shared driver's JVM
        _resolve_relative_paths_here(spark)
    return spark


def stop_spark() -> None:
    """Stop the active local session and its JVM, and wait for the JVM to exit.

    The next :func:`get_spark` starts a new JVM, so settings only a JVM start applies (driver
    memory, Java options) take effect. A JVM another process started (:func:`shared_driver`,
    ``spark-submit``) is left running; this process only lets go of it. Does nothing when no
    session is active.
    """
    from pyspark import SparkContext
    from pyspark.sql import SparkSession

    active = SparkSession.getActiveSession()
    if active is not None:
        active.stop()
    gateway = SparkContext._gateway
    if gateway is None:
        return
    if getattr(gateway, "proc", None) is None:
        gateway.close()
    else:
        _shut_down(gateway)
    SparkContext._gateway = None
    SparkContext._jvm = None


class EndedDriver(NamedTuple):
    """The local driver JVM of this process's session, ended under it: how, and its memory."""

    #: The JVM's exit code (:data:`OOM_EXIT_CODE` when it ran out of memory; minus the signal's
    #: number when a signal ended it).
    code: int
    #: The ``spark.driver.memory`` it started with.
    memory: str

    @property
    def out_of_memory(self) -> bool:
        return self.code == OOM_EXIT_CODE

    def more_memory(self) -> str:
        """Twice the driver's memory, written as Spark reads it.

        >>> EndedDriver(52, "1g").more_memory(), EndedDriver(52, "768m").more_memory()
        ('2g', '1536m')
        """
        twice = 2 * memory_mb(self.memory)
        return f"{twice // 1024}g" if twice % 1024 == 0 else f"{twice}m"

    def explain(self, more_memory: Optional[str] = None) -> str:
        """What happened and the fix; ``more_memory`` says how to give the driver more memory.

        By default, with the variable local sessions read (``CTR_LAB_DRIVER_MEMORY``).

        >>> print(EndedDriver(52, "1g").explain())
        ... # doctest: +NORMALIZE_WHITESPACE
        the local Spark driver ran out of memory (spark.driver.memory=1g) and ended.
        Fix: CTR_LAB_DRIVER_MEMORY=2g (within the machine's memory), or fewer rows
        >>> print(EndedDriver(-9, "1g").explain())
        ... # doctest: +NORMALIZE_WHITESPACE
        the local Spark driver was killed (signal 9: by hand, or by the system when memory ran
        out). Fix: look for the cause in its log (standard error), then run again
        """
        if self.out_of_memory:
            more_memory = more_memory or f"CTR_LAB_DRIVER_MEMORY={self.more_memory()}"
            return (
                f"the local Spark driver ran out of memory (spark.driver.memory={self.memory}) "
                f"and ended. Fix: {more_memory} (within the machine's memory), or fewer rows"
            )
        how = (
            f"was killed (signal {-self.code}: by hand, or by the system when memory ran out)"
            if self.code < 0
            else f"ended (exit code {self.code})"
        )
        return (
            f"the local Spark driver {how}. Fix: look for the cause in its log (standard "
            "error), then run again"
        )


def lost_driver(wait: float = 30.0) -> Optional[EndedDriver]:
    """The driver JVM this process started, when it has ended under a session; else None.

    Call it after a failed Spark call: when the JVM ended (or stopped its session and is
    ending, for up to ``wait`` seconds), PySpark's hold on it is dropped, so the next
    :func:`get_spark` starts a new JVM, and the exit code says why it ended. A JVM another
    process started (:func:`shared_driver`, ``spark-submit``, Livy) is never judged here.
    """
    if "pyspark" not in sys.modules:  # no Spark ran in this process
        return None
    from pyspark import SparkContext
    from pyspark.sql import SparkSession

    gateway: Any = SparkContext._gateway
    sc: Any = SparkContext._active_spark_context
    proc = getattr(gateway, "proc", None)
    if proc is None:
        return None
    code = proc.poll()
    if code is None:
        if sc is None:  # stopped from Python: the JVM stays for the next session
            return None
        try:
            if not sc._jsc.sc().isStopped():
                return None
        except Exception:  # no answer: the JVM is gone or going
            pass
        try:
            code = proc.wait(timeout=wait)
        except subprocess.TimeoutExpired:
            return None
    memory = "1g"  # Spark's default, when the launch named none
    for arg in proc.args:
        if str(arg).startswith("spark.driver.memory="):
            memory = str(arg).split("=", 1)[1]
    with contextlib.suppress(Exception):
        gateway.close()
    with contextlib.suppress(Exception):
        sc._accumulatorServer.shutdown()  # Python's end of the JVM's accumulator updates
    SparkContext._active_spark_context = None
    SparkContext._gateway = None
    SparkContext._jvm = None
    SparkSession._instantiatedSession = None
    SparkSession._activeSession = None
    return EndedDriver(int(code), memory)


def _shut_down(gateway) -> None:
    """Stop the JVM this process started behind ``gateway`` and wait for it to exit."""
    proc = gateway.proc
    gateway.shutdown()
    proc.stdin.close()  # the JVM exits when its stdin closes
    try:
        proc.wait(timeout=60)
    except Exception:
        proc.kill()


class SharedDriver:
    """A local driver JVM that :func:`shared_driver` started; ``env`` lets other processes in."""

    def __init__(self, gateway, env: Dict[str, str]) -> None:
        self._gateway = gateway
        self.env = env

    def pid(self) -> int:
        """The JVM's process id."""
        return int(self._gateway.jvm.java.lang.ProcessHandle.current().pid())

    def stop_leftover_session(self) -> bool:
        """Stop a session a process left running (it died or never stopped it); True if one was.

        The next process could not start its own: a JVM runs one SparkContext at a time.
        """
        jvm = self._gateway.jvm
        # The Scala object itself: SparkContext.getActive has no static forwarder.
        active = getattr(getattr(jvm.org.apache.spark, "SparkContext$"), "MODULE$").getActive()
        if not active.isDefined():
            return False
        active.get().stop()
        jvm.org.apache.spark.sql.SparkSession.clearDefaultSession()
        return True


@contextlib.contextmanager
def shared_driver(
    config: Optional[Dict[str, str]] = None, cwd: Optional[str] = None, log: Optional[str] = None
) -> Iterator[SharedDriver]:
    """Start one local driver JVM that the sessions of other processes start in, one at a time.

    Inside the ``with`` block, a process started with the driver's ``env`` (a notebook kernel,
    say) starts its :func:`get_spark` session in this JVM instead of a JVM of its own, when its
    JVM-start settings (:func:`jvm_start_settings`) are the ones ``config`` gives; otherwise it
    starts its own, as before. Classes loaded and code compiled for one session serve the next.
    One process at a time: after each, :meth:`SharedDriver.stop_leftover_session`.

    Parameters
    ----------
    config
        Settings as for :func:`get_spark`; only the JVM-start ones are used.
    cwd
        The JVM's working folder. Each session resolves relative Hadoop paths against its own
        process's folder anyway.
    log
        File for the JVM's own output (default: this process's stdout and stderr).

    Examples
    --------
    A process started with ``driver.env`` finds the driver's gateway (a real one would call
    :func:`get_spark`):

    >>> import subprocess
    >>> job = [sys.executable, "-c", "import os; print(os.environ['PYSPARK_GATEWAY_PORT'])"]
    >>> with shared_driver(log=str(tmp_path / "driver.log")) as driver:
    ...     run = subprocess.run(
    ...         job, env={**os.environ, **driver.env}, capture_output=True, text=True
    ...     )
    ...     run.stdout.strip() == driver.env["PYSPARK_GATEWAY_PORT"]
    ...     driver.stop_leftover_session()
    True
    False
    """
    from subprocess import STDOUT

    from pyspark import SparkConf
    from pyspark.java_gateway import launch_gateway

    _local_environment()
    start = jvm_start_settings(local_settings(config))
    conf = SparkConf(loadDefaults=False)
    for key, value in start.items():
        conf.set(key, value)
    saved = {name: os.environ.pop(name) for name in GATEWAY_ENV if name in os.environ}
    try:
        with contextlib.ExitStack() as stack:
            popen: Dict[str, object] = {"cwd": cwd}
            if log is not None:
                out = stack.enter_context(open(log, "ab"))
                popen.update(stdout=out, stderr=STDOUT)
            try:
                gateway = launch_gateway(conf, popen_kwargs=popen)
            except Exception as exc:
                first = str(exc).splitlines()[0][:200] if str(exc).strip() else ""
                raise SparkSetupError(
                    f"could not start the shared local driver ({type(exc).__name__}: {first}); "
                    f"JAVA_HOME is {os.environ.get('JAVA_HOME', 'not set')}. Fix: install "
                    "Java 17 and set JAVA_HOME to it"
                ) from None
            params = gateway.gateway_parameters
            driver = SharedDriver(
                gateway,
                {
                    "PYSPARK_GATEWAY_PORT": str(params.port),
                    "PYSPARK_GATEWAY_SECRET": str(params.auth_token),
                    SHARED_JVM_ENV: json.dumps(start, sort_keys=True),
                },
            )
            try:
                yield driver
            finally:
                _shut_down(gateway)
    finally:
        os.environ.update(saved)
