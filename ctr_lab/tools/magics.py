"""A local Jupyter kernel that runs sparkmagic notebooks unchanged on a laptop's Spark.

On EMR the notebooks run in sparkmagic's PySpark kernel: every plain cell is sent through Livy to a
remote Python REPL where ``spark``, ``sc`` and ``sqlContext`` exist, and a handful of magics
(``%%configure``, ``%%sql``, ``%%local``, ``%matplot``, ...) move settings, tables and plots between
the notebook and the cluster. This kernel keeps those rules with a local Spark session:

* a plain cell runs in a separate "remote" namespace, the way Livy's REPL runs it: every statement
  but the last is executed, the last is echoed like an interactive prompt, and what it prints comes
  back as plain text; an exception fails the cell (sparkmagic's ``all_errors_are_fatal``);
* ``%%local`` runs in the notebook's own IPython namespace, where ``-o`` results land;
* the session starts on the first cell that needs it, with the settings of ``%%configure``;
  ``%%configure -f`` starts a new session (every variable gone, as with Livy) and a new JVM when a
  setting read at JVM start (driver memory, ``spark.driver.*``, jars) changed.

So a notebook that works here does not lean on anything a Livy session lacks, such as variables
shared between local and remote code. ``ctr-lab kernel install`` installs it under the name of
sparkmagic's kernel, ``pysparkkernel``, which the notebooks declare, so Jupyter opens them with it
("PySpark" in the launcher, as on EMR) and saving keeps the kernelspec EMR needs.

Known differences from sparkmagic + Livy: nothing crosses a network, so ``-o`` and
``%%send_to_spark`` move data in-process (still through JSON records, with the same row cap);
``executorMemory`` has no effect on local Spark; ``executorCores`` × ``numExecutors`` sets the
number of local threads; ``pyFiles`` on ``s3://`` are skipped (the package is installed locally).
"""

from __future__ import annotations

import argparse
import ast
import base64
import contextlib
import contextvars
import html
import io
import itertools
import json
import logging
import os
import sys
import threading
import time
import traceback
import warnings
from collections import OrderedDict
from typing import Any, Dict, Iterator, List, Optional, Tuple

from ctr_lab.errors import CtrLabError, spark_problem

#: The local kernel takes the name of sparkmagic's PySpark kernel, which the notebooks declare
#: (EMR has no other): Jupyter opens them with it, and saving keeps the name EMR needs. Its
#: display name is theirs too: JupyterLab writes the running kernel's into an open notebook,
#: and another one marked every notebook changed as it opened (closing it asked to save it).
KERNEL_NAME = "pysparkkernel"
DISPLAY_NAME = "PySpark"
SPARKMAGIC_DISPLAY_NAME = "PySpark (Livy/EMR, sparkmagic)"
#: The name an earlier version installed the local kernel under.
OLD_KERNEL_NAME = "ctr-lab"

#: Keys of a Livy POST /sessions body (``CreateInteractiveRequest``, Livy 0.8) that
#: ``%%configure`` accepts; anything else is a typo a real Livy would reject too.
SESSION_KEYS = (
    "kind",
    "proxyUser",
    "jars",
    "pyFiles",
    "files",
    "driverMemory",
    "driverCores",
    "executorMemory",
    "executorCores",
    "numExecutors",
    "archives",
    "queue",
    "name",
    "conf",
    "heartbeatTimeoutInSecond",
    "ttl",
)
#: Settings Livy refuses in a session body (Session.scala ``prepareConf``, spark-blacklist.conf).
_LIVY_BLACKLIST = (
    "spark.master",
    "spark.submit.deployMode",
    "spark.yarn.jar",
    "spark.yarn.jars",
    "spark.yarn.archive",
    "livy.rsc.server.idle-timeout",
)
#: The ``Option[Int]`` fields of Livy's ``CreateInteractiveRequest``: erased to
#: ``Option[Object]``, they keep any JSON value, and ``InteractiveSession.create`` fails (500,
#: a ClassCastException) on anything but a JSON integer.
_LIVY_OPTION_INTS = ("driverCores", "executorCores", "numExecutors")
#: Said when a Spark cell runs after ``%%cleanup -f`` (or a stop) ended the session.
SESSION_ENDED = (
    "The Spark session of this notebook was ended (%%cleanup -f); a new one starts now, "
    "without the variables of the cells above."
)
DRIVER_ENDED = (
    "The Spark driver of this notebook ended (the error above says why); a new session starts "
    "now, without the variables of the cells above."
)
RUN_FROM_THE_TOP = (
    "The Spark session was ended and restarted, so earlier cells' variables are gone: "
    "run the notebook from the top (Run > Run All Cells)"
)
#: sparkmagic's magics that take no cell body; a ``%name`` line form is promoted to ``%%name``.
_NO_BODY = ("info", "logs", "cleanup", "delete", "help", "spark", "send_to_spark")
DEFAULT_MAXROWS = 2500


def livy_rejection(body: Dict[str, Any]) -> Optional[str]:
    """Why Livy 0.8 would refuse this ``%%configure`` body, or None.

    >>> livy_rejection({"executorCores": "2"})
    "executorCores must be a JSON integer such as 2, not '2' (Livy answers 500: ClassCastException)"
    >>> livy_rejection({"conf": {"spark.master": "local[4]"}}) is None
    False
    """
    unknown = sorted(set(body) - set(SESSION_KEYS))
    if unknown:
        return f"unknown session setting(s) {unknown}. Fix: use Livy's names: " + ", ".join(
            SESSION_KEYS
        )
    name = body.get("name")
    if name is not None and all(c.isdigit() for c in str(name)):
        return f"an all-digit session name ({name!r}) is refused by Livy"
    for key in _LIVY_OPTION_INTS:
        value = body.get(key)
        if value is not None and (isinstance(value, bool) or not isinstance(value, int)):
            return (
                f"{key} must be a JSON integer such as 2, not {value!r} "
                "(Livy answers 500: ClassCastException)"
            )
    beat = body.get("heartbeatTimeoutInSecond")  # an Int: Jackson coerces numbers and digits
    if beat is not None and (
        isinstance(beat, bool)
        or not isinstance(beat, (int, float, str))
        or (isinstance(beat, str) and not beat.strip().lstrip("+-").isdigit())
    ):
        return f"heartbeatTimeoutInSecond must be an integer, not {beat!r}"
    blacklisted = [k for k in body.get("conf") or {} if k in _LIVY_BLACKLIST]
    if blacklisted:
        return f"Livy does not let a session set {', '.join(blacklisted)}"
    return None


#: The packages whose frames a Spark error's traceback leaves out: PySpark's and Py4J's calls
#: into the JVM, the same few under every mistake, saying nothing of the cell's own code.
_CALLS_INTO_SPARK = ("pyspark", "py4j")


def spark_error_text(exc: Exception) -> Optional[str]:
    """What a Spark error says, without a query plan or a Java stack trace; None for another error.

    An ``AnalysisException`` (a column or table that does not exist, ...) carries the query's
    logical plan after its message; Py4J's error for a job that failed in the JVM carries the
    Java stack traces of the task and the driver, a hundred lines around the one that says why
    (:func:`ctr_lab.errors.spark_problem`). A ``ParseException`` keeps its pointer into the SQL.

    >>> spark_error_text(ValueError("x")) is None
    True
    """
    module = type(exc).__module__ or ""
    if module.split(".")[0] == "py4j":
        return spark_problem(exc)
    if module.split(".")[0] != "pyspark":
        return None
    text = str(exc).strip()
    if type(exc).__name__ == "AnalysisException":
        text = text.split(";\n", 1)[0].rstrip(";")
    return text


def _calls_into_spark(filename: str) -> bool:
    return any(part in _CALLS_INTO_SPARK for part in filename.replace("\\", "/").split("/")[:-1])


class SparkStatementException(Exception):
    """A statement failed in the (local) Spark session; shown like sparkmagic shows it."""

    def __init__(self, ename: str, evalue: str, tb_lines: List[str]) -> None:
        super().__init__(f"{ename}: {evalue}")
        self.ename, self.evalue, self.tb_lines = ename, evalue, tb_lines

    def _render_traceback_(self) -> List[str]:  # IPython shows this instead of our own frames
        return ["An error was encountered:", self.evalue, *"".join(self.tb_lines).splitlines()]


# -- the remote side: a Livy-style REPL over a local Spark session ----------------------------


def _compile_nodes(code: str) -> List[Tuple[str, Any]]:
    """Split code as Livy's Python REPL does: Python, or Python chunks between ``%`` lines."""
    try:
        return [("python", ast.parse(code, "<stdin>"))]
    except SyntaxError:
        if not any(line.startswith("%") for line in code.split("\n")):
            raise
    nodes: List[Tuple[str, Any]] = []
    normal: List[str] = []
    for line in code.rstrip().split("\n"):
        if line.startswith("%"):
            if normal:
                nodes.append(("python", ast.parse("\n".join(normal), "<stdin>")))
                normal = []
            nodes.append(("magic", line))
        else:
            normal.append(line)
    if normal:
        nodes.append(("python", ast.parse("\n".join(normal), "<stdin>")))
    return nodes


def _run_python(tree: ast.Module, namespace: Dict[str, Any]) -> None:
    body = tree.body
    for node in body[:-1]:
        exec(compile(ast.Module([node], type_ignores=[]), "<stdin>", "exec"), namespace)
    for node in body[-1:]:
        exec(compile(ast.Interactive([node]), "<stdin>", "single"), namespace)


def _figure_png(namespace: Dict[str, Any], name: str) -> bytes:
    if name not in namespace:
        raise NameError(f"name '{name}' is not defined")
    buffer = io.BytesIO()
    namespace[name].gcf().savefig(buffer, format="png")
    return buffer.getvalue()


def _run_magic(line: str, namespace: Dict[str, Any]) -> Dict[str, Any]:
    """``%matplot NAME`` and ``%json NAME``, split as Livy's ``fake_shell.py`` splits them: the
    name up to the first space, the rest as it is (a second space is part of the variable's
    name, so ``%matplot  plt`` fails here as on EMR)."""
    name, *rest = line[1:].split(" ", 1)
    if name == "matplot" and rest:
        return {"image/png": _figure_png(namespace, rest[0])}
    if name == "json" and rest:
        return {"application/json": namespace[rest[0]]}
    raise ValueError(f"unknown magic command '{name}'")


#: pandas options whose defaults differ between the plain Python process Livy's REPL runs in
#: and a Jupyter kernel: pandas' ``config_init`` sets ``display.max_columns`` to 0 (fit the
#: terminal: a wide table shows ``...`` and its shape) where ``is_terminal()``, to 20 in a kernel.
PLAIN_PYTHON_PANDAS = {"display.max_columns": 0}


@contextlib.contextmanager
def _plain_python_pandas() -> Iterator[None]:
    """pandas as a plain Python shows it, for the statement's duration (then as it was)."""
    try:
        import pandas as pd
    except ImportError:  # no pandas, nothing to show
        yield
        return
    saved = {key: pd.get_option(key) for key in PLAIN_PYTHON_PANDAS}
    for key, value in PLAIN_PYTHON_PANDAS.items():
        pd.set_option(key, value)
    try:
        yield
    finally:
        for key, value in saved.items():
            pd.set_option(key, value)


def run_statement(code: str, namespace: Dict[str, Any]) -> Dict[str, Any]:
    """Run ``code`` in ``namespace`` as Livy's Python REPL would and return its output data.

    Returns ``{"text/plain": ...}`` (stdout and stderr, right-stripped), or ``{"image/png": ...}``
    when the last node was ``%matplot``. Raises :class:`SparkStatementException` on an error.
    """
    stdout, stderr = sys.stdout, sys.stderr
    hook = sys.displayhook
    captured = io.StringIO()
    result: Dict[str, Any] = {}
    try:
        sys.stdout = sys.stderr = captured
        sys.displayhook = sys.__displayhook__
        with _plain_python_pandas():
            for kind, node in _compile_nodes(code):
                result = _run_magic(node, namespace) if kind == "magic" else {}
                if kind == "python":
                    _run_python(node, namespace)
    except Exception as exc:
        tb = traceback.TracebackException.from_exception(exc)
        frames = list(tb.stack)
        keep = next((i for i, f in enumerate(frames) if f.filename == "<stdin>"), len(frames))
        frames = frames[keep:]
        said = spark_error_text(exc)
        if said is None:
            tb.stack = traceback.StackSummary.from_list(frames)
            lines = list(tb.format(chain=False))
            evalue = str(exc)
        else:  # the cell's own lines, then Spark's message alone
            frames = [f for f in frames if not _calls_into_spark(f.filename)]
            lines = [
                "Traceback (most recent call last):\n",
                *traceback.StackSummary.from_list(frames).format(),
                f"{type(exc).__name__}: {said}\n",
            ]
            evalue = said
        raise SparkStatementException(type(exc).__name__, evalue, lines) from None
    finally:
        sys.stdout, sys.stderr, sys.displayhook = stdout, stderr, hook
    if not result:
        result = {"text/plain": captured.getvalue().rstrip()}
    return result


def records_to_dataframe(records: List[str]):
    """JSON records to pandas, as sparkmagic parses ``-o`` results (no type coercion)."""
    import pandas as pd

    rows = [json.loads(r, object_pairs_hook=OrderedDict) for r in records]
    pdf = pd.DataFrame(rows)
    # Column order from the first record that has every column (toJSON drops null fields).
    for row in rows:
        if len(row) == len(pdf.columns):
            return pdf[list(row.keys())]
    return pdf


def _take_records(sdf, maxrows: int, method: str, fraction: float) -> List[str]:
    if method == "sample":
        sdf = sdf.sample(False, fraction)
    with warnings.catch_warnings():
        # PySpark 4 warns that toJSON will one day return a DataFrame. The kernel reads the RDD
        # it returns, as sparkmagic's %%sql code does in a Livy session: not the student's code.
        warnings.filterwarnings("ignore", "The return type of DataFrame.toJSON", UserWarning)
        records = sdf.toJSON()
    return records.collect() if maxrows < 0 else records.take(maxrows)


class LocalSession:
    """The kernel's stand-in for a Livy session: settings, a namespace and a local SparkSession."""

    def __init__(self) -> None:
        self.configs: Dict[str, Any] = {}
        self.namespace: Dict[str, Any] = {}
        self.spark: Any = None
        self.counter = 0
        self.jvm_settings: Optional[Dict[str, str]] = None  # what the running JVM started with
        #: Set when a session could not be created: sparkmagic then refuses every Spark cell
        #: until the kernel restarts (kernelmagics.py ``_do_not_call_start_session``).
        self.refused: Optional[str] = None
        #: What the first cell after an ended session says about it.
        self.end_note = SESSION_ENDED

    @property
    def started(self) -> bool:
        return self.spark is not None

    def spark_settings(self) -> Tuple[Optional[str], str, Dict[str, str]]:
        """(master, app name, Spark settings) for the stored ``%%configure`` body."""
        cfg = self.configs
        settings = {str(k): str(v) for k, v in (cfg.get("conf") or {}).items()}
        if "driverMemory" in cfg:
            settings["spark.driver.memory"] = str(cfg["driverMemory"])
        if "executorMemory" in cfg:
            settings["spark.executor.memory"] = str(cfg["executorMemory"])
        master = None
        if "executorCores" in cfg or "numExecutors" in cfg:
            cores = int(cfg.get("executorCores", 1)) * int(cfg.get("numExecutors", 1))
            master = f"local[{max(1, min(cores, os.cpu_count() or 1))}]"
        return master, str(cfg.get("name") or "ctr-lab-notebook"), settings

    def start(self) -> None:
        from pyspark import SparkContext

        from ctr_lab.session import get_spark, local_settings, shared_jvm_settings

        master, app_name, settings = self.spark_settings()
        previous = os.environ.get("CTR_LAB_MASTER")
        if master:
            os.environ["CTR_LAB_MASTER"] = master
        new_jvm = SparkContext._gateway is None
        try:
            self.spark = get_spark(app_name, settings, interactive=True)
        finally:
            if master:
                _restore_env("CTR_LAB_MASTER", previous)
        if new_jvm:
            self.jvm_settings = shared_jvm_settings() or local_settings(settings, interactive=True)
        sc = self.spark.sparkContext
        for path in self.configs.get("pyFiles") or []:
            if str(path).startswith(("s3://", "s3a://", "hdfs://")):
                print(f"pyFiles: {path} skipped on local Spark", file=sys.stderr)
            else:
                sc.addPyFile(str(path).replace("file://", "", 1))
        self.counter += 1
        self.namespace = {"__name__": "__main__", "__builtins__": __builtins__}
        self.namespace.update(spark=self.spark, sc=sc, sqlContext=_sql_context(self.spark))

    def stop(self, keep_jvm: bool = False) -> None:
        """Stop Spark and, unless ``keep_jvm``, its JVM (so new memory settings apply)."""
        if self.spark is None:
            return
        from ctr_lab.session import stop_spark

        self.spark.stop()
        self.spark = None
        self.namespace = {}
        if not keep_jvm:
            stop_spark()
            self.jvm_settings = None

    def lost(self) -> Optional[str]:
        """If the session's driver JVM has ended, drop the session and say why, with the fix.

        In local mode a task that runs out of heap ends the driver, and the cell's own error is
        then an unrelated failed call (``ConnectionRefusedError``); every later cell would fail
        the same way until the kernel restarted.
        """
        from ctr_lab.session import lost_driver

        if self.spark is None:
            return None
        ended = lost_driver()
        if ended is None:
            return None
        self.spark = None
        self.namespace = {}
        self.jvm_settings = None
        self.end_note = DRIVER_ENDED
        more = f'"driverMemory": "{ended.more_memory()}" in the %%configure -f cell at the top'
        said = ended.explain(more)
        return (
            f"{said[0].upper()}{said[1:]}. The session went with it, and its cached data and "
            "the variables of the cells above: the next cell starts a new session, so run the "
            "notebook from the top (Run > Run All Cells)"
        )

    def jvm_can_stay(self) -> bool:
        """Whether the stored settings can start a session in the running JVM (``jvm_fits``)."""
        from ctr_lab.session import jvm_fits, local_settings, shared_jvm_settings

        if self.jvm_settings is None:
            return False
        own = shared_jvm_settings() is None  # a JVM of the kernel's own collects with G1
        return jvm_fits(self.jvm_settings, local_settings(self.spark_settings()[2], own))

    def row(self) -> Dict[str, str]:
        sc = self.spark.sparkContext if self.spark is not None else None
        return {
            "id": str(self.counter),
            "app_id": sc.applicationId if sc else "",
            "state": "idle" if sc else "not_started",
            "ui": (sc.uiWebUrl or "") if sc else "",
        }


def _sql_context(spark):
    from pyspark.sql import SQLContext

    try:
        return SQLContext(spark.sparkContext, spark)
    except Exception:  # pragma: no cover - PySpark versions without the legacy constructor
        return spark


def _restore_env(name: str, value: Optional[str]) -> None:
    if value is None:
        os.environ.pop(name, None)
    else:
        os.environ[name] = value


# -- progress display ------------------------------------------------------------------------

#: The MIME type that marks a progress display in a saved notebook: its numbers as JSON, beside
#: the text and HTML a front end shows. Output comparisons (nbval) leave such outputs out.
PROGRESS_MIME = "application/vnd.ctr-lab.spark-progress+json"
_GROUPS = itertools.count(1)


def progress_line(state: Dict[str, Any]) -> str:
    """One line saying what Spark is doing, or, once ``state["done"]``, what it did.

    Examples
    --------
    >>> progress_line({"done": False, "job": 3, "stage": 5, "tasks_done": 12, "tasks": 40,
    ...                "jobs": 2, "stages": 4, "seconds": 4.21})
    'Spark: job 3, stage 5: 12/40 tasks (4 s)'
    >>> progress_line({"done": True, "jobs": 2, "stages": 4, "tasks_done": 52, "tasks": 52,
    ...                "seconds": 9.74})
    'Spark: 2 jobs, 4 stages, 52 tasks in 9.7 s'
    """
    said = "".join(f"\n{line}" for line in state.get("said", []))
    if not state["done"]:
        return (
            f"Spark: job {state['job']}, stage {state['stage']}: "
            f"{state['tasks_done']}/{state['tasks']} tasks ({state['seconds']:.0f} s){said}"
        )
    jobs, stages = state["jobs"], state["stages"]
    return (
        f"Spark: {jobs} job{'s' * (jobs != 1)}, {stages} stage{'s' * (stages != 1)}, "
        f"{state['tasks_done']} tasks in {state['seconds']:.1f} s{said}"
    )


class _Said(logging.Handler):
    """Keeps what the library logs at INFO (``fit_or_load``: trained, reloaded, copied)."""

    def __init__(self) -> None:
        super().__init__(logging.INFO)
        self.lines: List[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(record.getMessage())


class _Progress:
    """A one-line display of what Spark runs for a statement, read from its status tracker.

    The statement's jobs get a job group of their own, so the display counts exactly them. It
    appears with the first job (a cell that starts none shows nothing), is updated in place
    (a display update, so nothing but text and HTML is saved), and ends as a one-line summary,
    followed by what the library said it did (its INFO records, e.g. "trained in 8.1 s").
    """

    def __init__(self, session: LocalSession, code: str = "") -> None:
        self.session = session
        self.code = code
        self.group = ""
        self.handle: Any = None
        self.started = 0.0
        self.done = threading.Event()
        self.thread: Optional[threading.Thread] = None
        self.said = _Said()
        self.logger = logging.getLogger("ctr_lab")
        self.level = self.logger.level
        self._ended: Dict[int, Dict[int, Any]] = {}  # job id -> its stages, once it has ended

    def __enter__(self) -> _Progress:
        if os.environ.get("CTR_LAB_PROGRESS", "1") == "0" or not self.session.started:
            return self
        sc = self.session.spark.sparkContext
        self.group = f"ctr-lab-{os.getpid()}-{next(_GROUPS)}"
        first = next((line for line in self.code.splitlines() if line.strip()), "")
        sc.setJobGroup(self.group, first[:80])
        self.logger.addHandler(self.said)
        if self.logger.getEffectiveLevel() > logging.INFO:
            self.logger.setLevel(logging.INFO)
        self.started = time.perf_counter()
        # The kernel finds a display's cell through context variables: the thread takes them along.
        context = contextvars.copy_context()
        self.thread = threading.Thread(target=context.run, args=(self._poll,), daemon=True)
        self.thread.start()
        return self

    def _state(self, done: bool) -> Optional[Dict[str, Any]]:
        """Jobs, stages and tasks of this statement so far; None before its first job."""
        tracker = self.session.spark.sparkContext.statusTracker()
        jobs = sorted(tracker.getJobIdsForGroup(self.group))
        if not jobs:
            return None
        active = set(tracker.getActiveStageIds())
        by_id: Dict[int, Any] = {}
        for job_id in jobs:
            by_id.update(self._stages_of(tracker, job_id))
        stages = sorted(by_id.items())
        current = [(s, i) for s, i in stages if s in active] or stages[-1:]
        stage, info = current[-1] if current else (0, None)
        # A job lists the stages it skipped (their output was already there): not run, not counted.
        ran = [i for s, i in stages if i.numCompletedTasks or i.numActiveTasks or s in active]
        return {
            "done": done,
            "job": jobs[-1],
            "stage": stage,
            "tasks_done": info.numCompletedTasks if info is not None else 0,
            "tasks": info.numTasks if info is not None else 0,
            "jobs": len(jobs),
            "stages": len(ran),
            "seconds": round(time.perf_counter() - self.started, 1),
            "said": list(self.said.lines),
            **({"tasks_done": sum(i.numCompletedTasks for i in ran)} if done else {}),
        }

    def _stages_of(self, tracker: Any, job_id: int) -> Dict[int, Any]:
        """A job's stages and their infos: read once the job has ended, asked again until then.

        A statement such as a fit runs hundreds of jobs: asking the tracker for every job's stages
        at each update would cost more the longer the cell runs. The status store posts a job's
        end after its stages' and tasks' ends, so an ended job's stage infos no longer change.
        """
        if job_id in self._ended:
            return self._ended[job_id]
        info = tracker.getJobInfo(job_id)
        if info is None:
            return {}
        stages = {s: tracker.getStageInfo(s) for s in info.stageIds}
        stages = {s: stage for s, stage in stages.items() if stage is not None}
        if info.status not in ("RUNNING", "UNKNOWN"):
            self._ended[job_id] = stages
        return stages

    def _show(self, state: Dict[str, Any]) -> None:
        from IPython.display import display

        line = progress_line(state)
        bundle = {
            "text/plain": line,
            "text/html": f"<pre class='ctr-lab-progress'>{html.escape(line)}</pre>",
            PROGRESS_MIME: state,
        }
        if self.handle is None:
            self.handle = display(bundle, raw=True, display_id=True)
        else:
            self.handle.update(bundle, raw=True)

    def _poll(self) -> None:
        while not self.done.wait(1.0):  # the line counts whole seconds
            try:
                state = self._state(done=False)
            except Exception:  # the cell stopped the session: nothing left to watch
                return
            if state is not None:
                self._show(state)

    def _wait_until_ended(self, timeout: float = 5.0) -> None:
        """Wait, briefly, until Spark's status store has every job of the statement as ended.

        An action returns when its last task is done, but the status store learns of finished
        tasks from the listener bus, later; it posts a job's end after its tasks' ends, so a job
        no longer running there has all its tasks counted.
        """
        tracker = self.session.spark.sparkContext.statusTracker()
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            infos = [tracker.getJobInfo(job) for job in tracker.getJobIdsForGroup(self.group)]
            if all(info is None or info.status not in ("RUNNING", "UNKNOWN") for info in infos):
                return
            time.sleep(0.05)

    def __exit__(self, *exc: Any) -> None:
        if not self.group:
            return
        self.done.set()
        self.logger.removeHandler(self.said)
        self.logger.setLevel(self.level)
        if self.thread is not None:
            self.thread.join(timeout=5)
        try:
            self._wait_until_ended()
            state = self._state(done=True)
            sc = self.session.spark.sparkContext
            for key in ("spark.jobGroup.id", "spark.job.description"):
                sc.setLocalProperty(key, None)  # None unsets it
        except Exception:  # the cell stopped the session
            return
        if state is not None:
            self._show(state)


# -- IPython magics --------------------------------------------------------------------------


def _session_table(session: LocalSession) -> str:
    row = session.row()
    ui = f'<a target="_blank" href="{html.escape(row["ui"])}">Link</a>' if row["ui"] else ""
    return (
        "<table><tr><th>ID</th><th>Application ID</th><th>Kind</th><th>State</th>"
        "<th>Spark UI</th><th>Driver log</th><th>Current session?</th></tr>"
        f"<tr><td>{row['id']}</td><td>{html.escape(row['app_id'])}</td><td>pyspark</td>"
        f"<td>{row['state']}</td><td>{ui}</td><td></td><td>\u2714</td></tr></table>"
    )


def _make_magics_class():
    from IPython.core import magic_arguments as ma
    from IPython.core.magic import Magics, cell_magic, line_magic, magics_class
    from IPython.display import HTML, Image, display

    def _cap_options(func):
        func = ma.argument("-c", "--coerce", default="false", help="ignored: never coerced")(func)
        func = ma.argument("-r", "--samplefraction", type=float, default=0.1)(func)
        func = ma.argument("-n", "--maxrows", type=int, default=DEFAULT_MAXROWS)(func)
        func = ma.argument("-m", "--samplemethod", default="take", choices=["take", "sample"])(func)
        return ma.argument("-o", "--output", help="local variable for the result")(func)

    @magics_class
    class LocalSparkMagics(Magics):
        """sparkmagic's kernel magics, served by a local Spark session."""

        shell: Any

        def __init__(self, shell, session: LocalSession) -> None:
            super().__init__(shell)
            self.session = session
            self.after_end = False  # a Spark cell ran after the first session had ended

        def _driver_lost(self) -> Optional[SparkStatementException]:
            """The error that says the session's driver ended, if it has (LocalSession.lost)."""
            lost = self.session.lost()
            return SparkStatementException("SparkDriverEnded", lost, []) if lost else None

        def _ensure_session(self) -> None:
            lost = self._driver_lost()  # while the notebook was idle (killed, say)
            if lost:
                raise lost
            if self.session.started:
                return
            if self.session.refused:
                raise CtrLabError(self.session.refused)
            problem = livy_rejection(self.session.configs)
            print("Starting Spark application")
            try:
                if problem:
                    raise CtrLabError(f"%%configure: {problem}")
                self.session.start()
            except Exception as exc:
                self.session.refused = (
                    f"No Spark session: it could not be created ({exc}). As with sparkmagic "
                    "on EMR, this kernel stays without one. Fix: correct the %%configure cell, "
                    "restart the kernel (Kernel > Restart) and run the notebook again."
                )
                raise
            display(HTML(_session_table(self.session)))
            print("SparkSession available as 'spark'.")

        def _info(self) -> None:
            configs = json.dumps(self.session.configs)
            table = _session_table(self.session) if self.session.started else "No active sessions."
            # Two displays, as sparkmagic's ``info`` shows them (kernelmagics.py ``info``, then
            # sparkmagicsbase.py ``_print_endpoint_info``).
            display(HTML(f"Current session configs: <tt>{html.escape(configs)}</tt><br>"))
            display(HTML(table))

        def _run(self, code: str) -> Dict[str, Any]:
            if not self.session.started and self.session.counter:
                # On Livy the next cell would fail with "session not found"; here a new session
                # starts, so say that the earlier cells' variables did not come with it.
                self.after_end = True
                print(self.session.end_note, file=sys.stderr)
                self.session.end_note = SESSION_ENDED
            self._ensure_session()
            try:
                with _Progress(self.session, code):
                    return run_statement(code, self.session.namespace)
            except Exception as exc:  # a Py4J error's text, asked of a JVM that ended, too
                lost = self._driver_lost()
                if lost:
                    raise lost from None
                if not (isinstance(exc, SparkStatementException) and exc.ename == "NameError"):
                    raise
                if not self.after_end:
                    raise
                evalue = f"{exc.evalue}. {RUN_FROM_THE_TOP}"
                raise SparkStatementException(exc.ename, evalue, exc.tb_lines) from None

        def _to_local(self, sdf, args) -> Any:
            records = _take_records(sdf, args.maxrows, args.samplemethod, args.samplefraction)
            return records_to_dataframe(records)

        @cell_magic
        @ma.magic_arguments()
        @_cap_options
        def spark(self, line: str, cell: str = "") -> None:
            """Run the cell in the Spark session; ``-o VAR`` copies a DataFrame to local pandas."""
            args = ma.parse_argstring(self.spark, line)
            if cell.strip():
                data = self._run(cell)
                if "image/png" in data:
                    display(Image(data=data["image/png"]))
                elif "application/json" in data:
                    display(data["application/json"], raw=False)
                elif data.get("text/plain"):
                    sys.stdout.write(data["text/plain"])
            if args.output:
                self._ensure_session()
                sdf = self.session.namespace.get(args.output)
                if sdf is None or not hasattr(sdf, "toJSON"):
                    raise SparkStatementException(
                        "AttributeError",
                        f"'{args.output}' is not a Spark DataFrame in the Spark session",
                        [],
                    )
                self.shell.user_ns[args.output] = self._to_local(sdf, args)

        @cell_magic
        @ma.magic_arguments()
        @ma.argument("-q", "--quiet", action="store_true", help="do not display the result")
        @_cap_options
        def sql(self, line: str, cell: str = ""):
            """Run a SQL query in the Spark session; the result comes back as pandas."""
            args = ma.parse_argstring(self.sql, line)
            self._ensure_session()
            try:
                sdf = self.session.spark.sql(cell.strip())
                pdf = self._to_local(sdf, args)
            except Exception as exc:
                lost = self._driver_lost()  # first: the error's text may come from the JVM
                if lost:
                    raise lost from None
                said = spark_error_text(exc)
                evalue = str(exc).strip() if said is None else said
                raise SparkStatementException(type(exc).__name__, evalue, []) from None
            if args.output:
                self.shell.user_ns[args.output] = pdf
            return None if args.quiet else pdf

        @cell_magic
        @ma.magic_arguments()
        @ma.argument("-f", "--force", action="store_true", help="restart a running session")
        def configure(self, line: str, cell: str = "") -> None:
            """Store Livy session settings (JSON); ``-f`` restarts a running session with them."""
            args = ma.parse_argstring(self.configure, line)
            try:
                body = json.loads(cell)
                if not isinstance(body, dict):
                    raise ValueError("not an object")
            except ValueError:
                print(f"Could not parse JSON object from input '{cell}'", file=sys.stderr)
                return
            if self.session.started and not args.force:
                print(
                    "A session has already been started. If you intend to recreate the session "
                    "with new configurations, please include the -f argument.",
                    file=sys.stderr,
                )
                return
            self.session.configs = body
            if self.session.started:
                # sparkmagic deletes the running session first, then asks Livy for the new one
                # (kernelmagics.py ``configure``): a body Livy refuses leaves no session.
                problem = livy_rejection(body)
                self.session.stop(keep_jvm=bool(problem) or self.session.jvm_can_stay())
                self._ensure_session()
            elif livy_rejection(body):
                raise CtrLabError(f"%%configure: {livy_rejection(body)}")
            self._info()

        @cell_magic
        def info(self, line: str = "", cell: str = "") -> None:
            """Show the session settings and the session."""
            self._info()

        @cell_magic
        def cleanup(self, line: str = "", cell: str = "") -> None:
            """``%%cleanup -f``: stop this notebook's Spark session, the only one it touches.

            sparkmagic's ``%%cleanup -f`` deletes every session on the Livy endpoint
            (kernelmagics.py ``cleanup``), so the cell says so.
            """
            if "-f" not in line.split():
                print(
                    "Cleanup requires the -f argument to confirm the deletion of all sessions.",
                    file=sys.stderr,
                )
                return
            self.session.stop()
            print(
                "Stopped this notebook's Spark session. On EMR, %%cleanup -f deletes EVERY "
                "session on the Livy endpoint (other notebooks' and users' too); to end only "
                "this notebook's session there, shut down its kernel.",
                file=sys.stderr,
            )

        @cell_magic
        def logs(self, line: str = "", cell: str = "") -> None:
            """Spark's logs are on the console that started Jupyter; say so."""
            print("No logs yet." if not self.session.started else "Logs go to the Jupyter console.")

        @cell_magic
        @ma.magic_arguments()
        @ma.argument("-i", "--input", required=True, help="local variable to send")
        @ma.argument("-t", "--vartype", default="str", choices=["str", "df"])
        @ma.argument("-n", "--varname", help="name in the Spark session (default: the same)")
        @ma.argument("-m", "--maxrows", type=int, default=DEFAULT_MAXROWS)
        def send_to_spark(self, line: str, cell: str = "") -> None:
            """Copy a local string or pandas DataFrame into the Spark session."""
            args = ma.parse_argstring(self.send_to_spark, line)
            if args.input not in self.shell.user_ns:
                raise CtrLabError(f"%%send_to_spark: no local variable named {args.input!r}")
            value = self.shell.user_ns[args.input]
            self._ensure_session()
            name = args.varname or args.input
            if args.vartype == "df":
                records = json.loads(value.head(args.maxrows).to_json(orient="records"))
                spark = self.session.spark
                rdd = spark.sparkContext.parallelize([json.dumps(r) for r in records])
                self.session.namespace[name] = spark.read.json(rdd)
            else:
                self.session.namespace[name] = str(value)

        @cell_magic("help")  # type: ignore[arg-type]
        def help_(self, line: str = "", cell: str = "") -> None:
            """List the magics."""
            rows = "".join(
                f"<tr><td>{html.escape(m)}</td><td>{html.escape(d)}</td></tr>" for m, d in _HELP
            )
            display(HTML(f"<table><tr><th>Magic</th><th>Description</th></tr>{rows}</table>"))

        @line_magic
        def matplot(self, line: str) -> None:
            """``%matplot plt``: show the current figure of the Spark session's ``plt``."""
            data = self._run(f"%matplot {line.strip()}")
            display(Image(data=data["image/png"]))

    return LocalSparkMagics


_HELP = (
    ("%%configure -f", "Livy session settings as JSON; -f restarts a running session"),
    ("%%info", "the session settings and the session"),
    ("%%sql [-o VAR] [-q] [-n N]", "SQL in the Spark session; the result as pandas"),
    ("%%spark -o VAR", "run Spark code; copy a DataFrame into local pandas VAR"),
    ("%%local", "run the cell in the notebook's own Python"),
    ("%%send_to_spark -i VAR -t str|df", "copy a local value into the Spark session"),
    ("%matplot plt", "show the Spark session's current matplotlib figure"),
    ("%%cleanup -f", "stop the Spark session"),
)


# -- the kernel ------------------------------------------------------------------------------


def route(code: str) -> Tuple[str, str]:
    """Where a cell runs and what runs, as sparkmagic's ``UserCodeParser`` decides.

    Returns ``("local", code)`` for ``%%local`` cells (the first word dropped) and
    ``("ipython", code)`` otherwise, where plain code becomes a ``%%spark`` cell.
    """
    parts = code.split(None, 1)
    rest = parts[1] if len(parts) > 1 else ""
    if code.startswith(("%%local", "%local")):
        return "local", rest
    if any(code.startswith("%%" + name) for name in _NO_BODY):
        return "ipython", f"{code}\n "
    if any(code.startswith("%" + name) for name in _NO_BODY):
        return "ipython", f"%{code}\n "
    if code.startswith("%") or not code:
        return "ipython", code
    return "ipython", "%%spark\n" + code


def _kernel_class():
    from ipykernel.ipkernel import IPythonKernel

    class LocalPySparkKernel(IPythonKernel):
        implementation = "ctr_lab_local_pyspark"
        implementation_version = "1"
        banner = "PySpark on local Spark (ctr-lab): sparkmagic's rules, no cluster"
        # sparkmagic's PySpark kernel reports this; Jupyter saves it into the notebook.
        language_info = {  # noqa: RUF012 - IPythonKernel declares it so
            "name": "pyspark",
            "mimetype": "text/x-python",
            "codemirror_mode": {"name": "python", "version": 3},
            "file_extension": ".py",
            "pygments_lexer": "python3",
        }

        def __init__(self, **kwargs: Any) -> None:
            super().__init__(**kwargs)
            self.local_session = LocalSession()
            shell: Any = self.shell
            shell.register_magics(_make_magics_class()(shell, self.local_session))

        async def do_execute(self, code, silent, *args, **kwargs):
            where, to_run = route(code)
            if where != "local":
                return await super().do_execute(to_run, silent, *args, **kwargs)
            remote_figures = _stash_figures()
            try:
                return await super().do_execute(to_run, silent, *args, **kwargs)
            finally:
                _show_local_figures(remote_figures)

        def do_shutdown(self, restart):
            self.local_session.stop()
            return super().do_shutdown(restart)

    return LocalPySparkKernel


def _stash_figures() -> Dict[Any, Any]:
    """Hide the Spark session's open figures: on Livy they live in another process."""
    if "matplotlib.pyplot" not in sys.modules:
        return {}
    from matplotlib._pylab_helpers import Gcf

    stashed = dict(Gcf.figs)
    Gcf.figs.clear()
    return stashed


def _show_local_figures(stashed: Dict[Any, Any]) -> None:
    """Show what a ``%%local`` cell drew, as the inline backend would; then bring back the
    Spark session's figures."""
    if "matplotlib.pyplot" not in sys.modules:
        return
    from IPython.display import display
    from matplotlib._pylab_helpers import Gcf

    plt = sys.modules["matplotlib.pyplot"]
    for number in sorted(plt.get_fignums()):
        figure = plt.figure(number)
        buffer = io.BytesIO()
        figure.savefig(buffer, format="png")
        # The inline backend displays the figure itself: its PNG, and its repr as text/plain
        # (``<Figure size 640x480 with 1 Axes>``), as sparkmagic's own %%local shows it.
        png = base64.b64encode(buffer.getvalue()).decode("ascii")
        display({"image/png": png, "text/plain": repr(figure)}, raw=True)
        plt.close(number)
    Gcf.figs.update(stashed)


def main() -> None:
    """Start the kernel (``python -m ctr_lab.tools.magics -f CONNECTION_FILE``)."""
    # Figures drawn in Spark cells are shown only by %matplot, as on Livy.
    os.environ["MPLBACKEND"] = "Agg"
    from ipykernel.kernelapp import IPKernelApp

    # The Spark JVM writes to the kernel's stdout/stderr: keep that out of the cells. The kernel
    # listens on loopback only; its warning about unencrypted TCP is noise on every start.
    IPKernelApp.launch_instance(
        kernel_class=_kernel_class(), capture_fd_output=False, log_level=logging.ERROR
    )


# -- installing the kernels ------------------------------------------------------------------


def kernel_spec(name: str = KERNEL_NAME) -> Dict[str, Any]:
    """The ``kernel.json`` of the local kernel for this Python."""
    return {
        "argv": [sys.executable, "-m", "ctr_lab.tools.magics", "-f", "{connection_file}"],
        "display_name": DISPLAY_NAME if name == KERNEL_NAME else f"{DISPLAY_NAME} [{name}]",
        "language": "python",
        "metadata": {"debugger": False},
    }


def install(name: str = KERNEL_NAME, prefix: Optional[str] = None, user: bool = False) -> List[str]:
    """Install the local kernel as ``name``; return the installed folders."""
    import tempfile

    from jupyter_client.kernelspec import KernelSpecManager

    with tempfile.TemporaryDirectory() as tmp:
        with open(os.path.join(tmp, "kernel.json"), "w") as fh:
            json.dump(kernel_spec(name), fh, indent=1)
        return [KernelSpecManager().install_kernel_spec(tmp, name, user=user, prefix=prefix)]


def remove_old_kernel(kernels_dir: str) -> Optional[str]:
    """Remove the local kernel an earlier version installed as ``ctr-lab`` beside ``kernels_dir``.

    It would show up in the launcher as a second local kernel. Returns the removed folder.
    """
    import shutil

    old = os.path.join(os.path.dirname(kernels_dir), OLD_KERNEL_NAME)
    try:
        with open(os.path.join(old, "kernel.json")) as fh:
            argv = json.load(fh).get("argv", [])
    except (OSError, ValueError):
        return None
    if not {"ctr_lab.magics", "ctr_lab.tools.magics"} & set(argv):
        return None
    shutil.rmtree(old)
    return old


def sparkmagic_path(prefix: Optional[str] = None) -> str:
    """The Jupyter data folder that holds sparkmagic's kernel for the Livy tests.

    It is outside Jupyter's own search path, so Jupyter opens the notebooks (kernelspec
    ``pysparkkernel``) with the local kernel; the Livy tests put this folder first on
    ``JUPYTER_PATH`` to get sparkmagic's kernel under the same name, as on EMR.
    """
    return os.path.join(prefix or sys.prefix, "share", "ctr-lab", "sparkmagic-kernels")


def install_sparkmagic(prefix: Optional[str] = None) -> str:
    """Install sparkmagic's ``pysparkkernel`` (the EMR kernel) into :func:`sparkmagic_path`."""
    import importlib.util
    import shutil

    spec = importlib.util.find_spec("sparkmagic")
    if spec is None or spec.origin is None:
        raise CtrLabError("sparkmagic is not installed here. Fix: pip install 'ctr-lab[lab]'")
    source = os.path.join(os.path.dirname(spec.origin), "kernels", "pysparkkernel")
    target = os.path.join(sparkmagic_path(prefix), "kernels", "pysparkkernel")
    shutil.rmtree(target, ignore_errors=True)
    shutil.copytree(source, target, ignore=shutil.ignore_patterns("*.py", "__pycache__"))
    with open(os.path.join(target, "kernel.json")) as fh:
        spec_json = json.load(fh)
    spec_json["display_name"] = SPARKMAGIC_DISPLAY_NAME
    with open(os.path.join(target, "kernel.json"), "w") as fh:
        json.dump(spec_json, fh, indent=1)
    return target


def _kernel_command(args: argparse.Namespace) -> int:
    prefix = sys.prefix if args.sys_prefix else args.prefix
    started = time.perf_counter()
    for folder in install(args.name, prefix=prefix, user=args.user):
        print(
            f"installed kernel {args.name!r} ({kernel_spec(args.name)['display_name']}): {folder}"
        )
        removed = remove_old_kernel(folder)
        if removed:
            print(f"removed the kernel an earlier version installed: {removed}")
    if args.sparkmagic:
        where = install_sparkmagic(prefix=None if args.user else prefix)
        print(
            f"installed sparkmagic's kernel 'pysparkkernel' ({SPARKMAGIC_DISPLAY_NAME}) where only "
            f"JUPYTER_PATH={sparkmagic_path(None if args.user else prefix)} sees it: {where}"
        )
    print(f"done in {time.perf_counter() - started:.1f} s")
    return 0


def add_parser(sub: argparse._SubParsersAction) -> None:
    """Register ``ctr-lab kernel install``."""
    kernel = sub.add_parser(
        "kernel",
        help="install the local Jupyter kernel that runs the sparkmagic notebooks on local Spark",
        description=f"Install the Jupyter kernel {KERNEL_NAME!r} ({DISPLAY_NAME}): it runs the "
        "lab's notebooks, written for sparkmagic's PySpark kernel on EMR, unchanged on local "
        "Spark. It takes the name of EMR's kernel, so Jupyter opens the notebooks with it.",
    )
    actions = kernel.add_subparsers(dest="action", metavar="ACTION")
    actions.required = True
    inst = actions.add_parser("install", help="install the kernelspec")
    inst.add_argument("--name", default=KERNEL_NAME, help=f"kernel name (default {KERNEL_NAME})")
    where = inst.add_mutually_exclusive_group()
    where.add_argument("--user", action="store_true", help="install for the current user")
    where.add_argument("--sys-prefix", action="store_true", help="install into this environment")
    where.add_argument("--prefix", help="install under this prefix")
    inst.add_argument(
        "--sparkmagic",
        action="store_true",
        help="also install sparkmagic's pysparkkernel (EMR's kernel, for the Livy tests) into "
        "PREFIX/share/ctr-lab/sparkmagic-kernels, a folder Jupyter searches only when it is on "
        "JUPYTER_PATH",
    )
    inst.set_defaults(func=_kernel_command)


if __name__ == "__main__":
    main()
