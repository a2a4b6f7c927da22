"""A Livy 0.8-compatible REST server for tests: one real PySpark REPL process per session.

The server speaks the subset of Apache Livy's interactive-session API that sparkmagic uses
(sessions create/get/list/delete/state/log, statements create/get/list/cancel) and runs every
session's code in its own Python process (:mod:`livy_repl`) with its own SparkSession, the way
Livy's Python REPL does. It binds to 127.0.0.1 only. Differences from real Livy that matter to
users are listed in ``README.md`` next to this file.

Run it by hand (``Ctrl-C`` stops it and kills every session)::

    .venv/bin/python tests/e2e/livy/livy_server.py --python /path/to/python --port 8998
"""

from __future__ import annotations

import argparse
import contextlib
import itertools
import json
import os
import queue
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, Dict, List, Optional, Tuple
from urllib.parse import parse_qs, unquote, urlparse

import psutil

from ctr_lab.session import java_options

HOST = "127.0.0.1"
REPL_SCRIPT = Path(__file__).with_name("livy_repl.py")
#: Every REPL, and so every JVM and Python worker under it, carries this variable: its value is
#: the server's token, which lets the server (and the tests) find any process it started.
TOKEN_ENV = "LIVY_TEST_SERVER_TOKEN"
#: Livy's finished states (core/.../sessions/SessionState.scala, ``FinishedSessionState``).
FINAL_STATES = ("dead", "killed", "error", "success")
#: States in which Livy answers statement calls (SessionState.scala ``isActive``; ``error`` is
#: active: a dead interpreter inside a live driver).
ACTIVE_STATES = ("not_started", "starting", "idle", "busy", "error")
#: Settings a request may not set: server/.../sessions/Session.scala ``prepareConf`` rejects the
#: keys of conf/spark-blacklist.conf.template (EMR ships it as /etc/livy/conf/spark-blacklist.conf)
#: plus ``Session.BLACKLIST_CUSTOM_CLASSPATH`` (livy.server.session.allow-custom-classpath off).
SPARK_CONF_BLACKLIST = (
    "spark.master",
    "spark.submit.deployMode",
    "spark.yarn.jar",
    "spark.yarn.jars",
    "spark.yarn.archive",
    "livy.rsc.server.idle-timeout",
    "spark.submit.proxyUser.allowCustomClasspathInClusterMode",
)
#: The ``Option[Int]`` fields of CreateInteractiveRequest.scala. Scala erases ``Option[Int]`` to
#: ``Option[Object]``, so Jackson stores whatever JSON value it is given; InteractiveSession.scala
#: ``create`` then unboxes it (``request.driverCores.map(_.toString)``), which fails with a
#: ClassCastException for anything but a JSON integer: JsonServlet.scala's catch-all, 500.
OPTION_INT_KEYS = ("driverCores", "executorCores", "numExecutors")
#: The Java class Jackson's untyped deserializer gives each JSON value (an integer beyond 32 bits
#: becomes a Long).
JAVA_CLASSES = {
    str: "java.lang.String",
    float: "java.lang.Double",
    bool: "java.lang.Boolean",
    list: "java.util.ArrayList",
    dict: "java.util.LinkedHashMap",
    int: "java.lang.Long",
}
#: Session.scala ``prepareConf``: each list of the request and the Spark setting it merges into
#: (LivyConf.scala ``SPARK_JARS``, ``SPARK_FILES``, ``SPARK_ARCHIVES``, ``SPARK_PY_FILES``).
CONF_LISTS = {
    "jars": "spark.jars",
    "files": "spark.files",
    "archives": "spark.yarn.dist.archives",
    "pyFiles": "spark.submit.pyFiles",
}
#: The rest of LivyConf.scala ``HARDCODED_SPARK_FILE_LISTS`` that a request may set (the others
#: are blacklisted): their entries are resolved and checked like the request's lists.
CONF_ONLY_LISTS = ("spark.yarn.dist.files", "spark.yarn.dist.jars")
#: Settings InteractiveSession.scala ``prepareBuilderProp`` always fills for a pyspark session.
LIVY_SETS = ("spark.submit.pyFiles", "spark.jars")
#: YARN distributes its ``spark.yarn.dist.*`` lists into the driver's container; the double's
#: local master takes them as Spark's own lists.
YARN_DIST_AS_LOCAL = {
    "spark.yarn.dist.archives": "spark.archives",
    "spark.yarn.dist.files": "spark.files",
    "spark.yarn.dist.jars": "spark.jars",
}
#: ASCII characters ``java.net.URI`` refuses anywhere in a URI (RFC 2396 as Java parses it), and
#: ``#`` after the first: Session.scala ``resolveURIs`` turns its URISyntaxException into a 400.
URI_ILLEGAL = set(' "<>[\\]^`{|}') | {chr(c) for c in range(32)} | {chr(127)}
#: The default file system of the double's "cluster" (Hadoop's ``fs.defaultFS``; HDFS on EMR).
DEFAULT_FS = "hdfs://livy-test-namenode:8020"
#: Hadoop's ``ViewFileSystemOverloadScheme`` (hadoop-common 3.3, in PySpark's hadoop-client-api):
#: serves a scheme (here ``hdfs`` and ``s3``) from a mount table, whose fallback link is a folder.
#: The EMR-like mode's stand-in for the cluster's HDFS and for S3 (see ``file_systems``).
OVERLOAD_SCHEME = "org.apache.hadoop.fs.viewfs.ViewFileSystemOverloadScheme"
#: What a call that needs a lost driver answers (500): rsc/.../rpc/Rpc.java ``call`` checks the
#: channel with ``Utils.checkState``; JsonServlet.scala's ``error`` sends ``e.toString``.
LOST_DRIVER = "java.lang.IllegalStateException: RPC channel is closed."
#: rsc/.../RSCConf.java ``JOB_CANCEL_TRIGGER_INTERVAL`` (100 ms): how often a cancel is repeated.
JOB_CANCEL_TRIGGER_INTERVAL = 0.1
#: InteractiveSession.scala ``ensureActive`` (an IllegalArgumentException: 400).
NOT_ACTIVE = "requirement failed: Session isn't active."
#: POST /sessions fields that map onto Spark settings, as Livy maps them.
RESOURCE_KEYS = {
    "driverMemory": "spark.driver.memory",
    "driverCores": "spark.driver.cores",
    "executorMemory": "spark.executor.memory",
    "executorCores": "spark.executor.cores",
    "numExecutors": "spark.executor.instances",
    "queue": "spark.yarn.queue",
}
LIST_KEYS = ("jars", "pyFiles", "files", "archives")
KNOWN_KEYS = (
    set(RESOURCE_KEYS)
    | set(LIST_KEYS)
    | {
        "kind",
        "proxyUser",
        "name",
        "conf",
        "heartbeatTimeoutInSecond",
        "ttl",
    }
)
APP_MASTER_ENV = "spark.yarn.appMasterEnv."


class BadRequest(Exception):
    """An IllegalArgumentException: 400 with ``{"msg": ...}`` (SessionServlet.scala's ``error``
    and ``post("/")`` answer with a ``ResponseMessage``)."""

    def payload(self) -> Any:
        return {"msg": str(self)}


class MappingError(BadRequest):
    """A body Jackson cannot read into its class: JsonServlet.scala's ``error`` answers 400 with
    the exception's message alone, a bare JSON string."""

    def payload(self) -> Any:
        return str(self)


class Rejected(BadRequest):
    """An ``IllegalArgumentException`` while creating a session.

    server/.../SessionServlet.scala ``post("/")`` answers it with 400 and
    ``"Rejected, Reason: " + message``.
    """

    def __init__(self, message: str) -> None:
        super().__init__("Rejected, Reason: " + message)


class ServerError(Exception):
    """JsonServlet.scala's catch-all ``error``: 500 with ``e.toString`` as a bare JSON string."""


def now_ms() -> int:
    return int(time.time() * 1000)


def parse_duration(text: str) -> float:
    """Livy's time strings in seconds: client-common/.../ClientConf.java ``getTimeAsMs``.

    Trimmed and lower-cased, then ``(-?[0-9]+)([a-z]+)?`` with a suffix of ``us``, ``ms``,
    ``s``, ``m``, ``min``, ``h`` or ``d`` (none: milliseconds). Anything else is an
    IllegalArgumentException, which a create request answers with "Rejected, Reason: ...".
    """
    match = re.fullmatch(r"(-?[0-9]+)([a-z]+)?", str(text).strip().lower())
    if not match:
        raise Rejected(f"Invalid time string: {text}")
    factor = {"us": 1e-6, "ms": 0.001, "s": 1, "m": 60, "min": 60, "h": 3600, "d": 86400}
    if match.group(2) and match.group(2) not in factor:
        raise Rejected(f'Invalid suffix: "{match.group(2)}"')
    return int(match.group(1)) * factor[match.group(2) or "ms"]


def check_request(body: Any) -> None:
    """Jackson's checks on a create request (CreateInteractiveRequest.scala, JsonServlet.scala).

    The default ``ObjectMapper`` fails on unknown properties (``UnrecognizedPropertyException``,
    the first one only) and on a value that does not fit the field's type; JsonServlet's
    ``error`` answers both with 400 and the exception's message. The one ``Int`` field takes an
    integer, an integer string or a number (truncated: ``ACCEPT_FLOAT_AS_INT``). The ``Option[Int]``
    fields take anything here (``OPTION_INT_KEYS``).
    """
    if not isinstance(body, dict):
        raise MappingError("the request body must be a JSON object")
    for key in body:
        if key not in KNOWN_KEYS:
            raise MappingError(
                f'Unrecognized field "{key}" (class '
                f"org.apache.livy.server.interactive.CreateInteractiveRequest), not marked as "
                f"ignorable ({len(KNOWN_KEYS)} known properties: {sorted(KNOWN_KEYS)})"
            )
    beat = body.get("heartbeatTimeoutInSecond")
    if not (
        beat is None
        or (isinstance(beat, (int, float)) and not isinstance(beat, bool))
        or (isinstance(beat, str) and re.fullmatch(r"[+-]?\d+", beat.strip()))
    ):
        raise MappingError(
            f"Cannot deserialize value of type `int` from {type(beat).__name__} "
            f"{json.dumps(beat)}: not a valid `int` value (field 'heartbeatTimeoutInSecond')"
        )
    for key in LIST_KEYS:
        if body.get(key) is not None and not isinstance(body[key], list):
            raise MappingError(
                f"Cannot deserialize value of type `scala.collection.immutable.List` from "
                f"{type(body[key]).__name__} (field {key!r}: give a JSON array)"
            )
    if body.get("conf") is not None and not isinstance(body["conf"], dict):
        raise MappingError(
            "Cannot deserialize value of type `scala.collection.immutable.Map` (conf)"
        )


def _java_int(value: Any) -> bool:
    """Is this JSON value a ``java.lang.Integer`` to Jackson's untyped deserializer?"""
    return isinstance(value, int) and not isinstance(value, bool) and -(2**31) <= value < 2**31


def _check_java_uri(entry: str) -> None:
    """``new URI(entry)`` in Session.scala ``resolveURIs``: a character ``java.net.URI`` refuses
    is a URISyntaxException naming the part it is in (authority, path, query or fragment),
    rethrown as an IllegalArgumentException (whose message is the cause's ``toString``): 400."""
    fragment_at = entry.find("#")
    query_at = entry.find("?", 0, fragment_at if fragment_at >= 0 else len(entry))
    host_at = entry.find("://") + 3 if "://" in entry else -1
    host_end = entry.find("/", host_at) if host_at >= 0 else -1
    for index, char in enumerate(entry):
        if char in URI_ILLEGAL or (char == "#" and index > fragment_at >= 0):
            if 0 <= fragment_at < index:
                where = "fragment"
            elif 0 <= query_at < index:
                where = "query"
            elif 0 <= host_at <= index and (host_end < 0 or index < host_end):
                where, index = "authority", host_at  # java.net.URI points at its start
            else:
                where = "path"
            raise Rejected(
                f"java.net.URISyntaxException: Illegal character in {where} at index {index}: "
                f"{entry}"
            )


def check_name(name: Any) -> None:
    """server/.../sessions/Session.scala, the ``Session`` constructor: a name may not be all digits.

    (``sessionName.forall(_.isDigit)``, so the empty name is refused too.) Sessions are looked
    up by id or by name (SessionServlet.scala ``doWithSession``): a number would be ambiguous.
    """
    if name is not None and all(c.isdigit() for c in str(name)):
        raise Rejected(f"Invalid session name: {name}")


class Statement:
    def __init__(self, sid: int, code: str) -> None:
        self.id = sid
        self.code = code
        self.state = "waiting"
        self.output: Optional[Dict[str, Any]] = None
        self.progress = 0.0
        self.started = 0
        self.completed = 0

    def view(self) -> Dict[str, Any]:
        return {
            "id": self.id,
            "code": self.code,
            "state": self.state,
            "output": self.output,
            "progress": self.progress,
            "started": self.started,
            "completed": self.completed,
        }


class Session:
    """One interactive session: its REPL process, statement queue and Livy-visible state."""

    def __init__(self, server: LivyTestServer, sid: int, body: Dict[str, Any]) -> None:
        self.server = server
        self.id = sid
        self.body = body
        self.name = body.get("name")
        self.kind = body.get("kind") or "pyspark"
        self.state = "not_started"
        self.app_id: Optional[str] = None
        self.statements: List[Statement] = []
        self.queue: queue.Queue[Optional[Statement]] = queue.Queue()
        self.lock = threading.RLock()
        self.cancel_lock = threading.Lock()  # Session.scala's single-threaded cancelExecutor
        self.pipe_lock = threading.Lock()  # one writer at a time on the REPL's request pipe
        self.running: Optional[Statement] = None
        self.proc: Optional[subprocess.Popen] = None
        #: The REPL's stderr lines not yet taken, and the thread that reads them.
        self.stderr_lines: List[str] = []
        self.stderr_lock = threading.Lock()
        self.stderr_reader: Optional[threading.Thread] = None
        self.request_w: Optional[Any] = None
        self.reply_r: Optional[Any] = None
        self.last_activity = time.monotonic()
        self.last_heartbeat = time.monotonic()
        self.heartbeat = int(body.get("heartbeatTimeoutInSecond") or 0)
        self.ttl = parse_duration(body["ttl"]) if body.get("ttl") else None
        self.ended_at: Optional[float] = None
        #: When the driver was lost (SIGKILL of the REPL's group): see ``lost_driver``.
        self.lost_at: Optional[float] = None
        self.stopped = threading.Event()
        self.dir = Path(tempfile.mkdtemp(prefix=f"session{sid}-", dir=server.work_dir))
        self.log_path = self.dir / "session.log"
        try:
            self.spark_conf, self.py_files, self.env = self._settings(body)
        except (BadRequest, ServerError):
            shutil.rmtree(self.dir, ignore_errors=True)
            raise

    # -- settings -------------------------------------------------------------------------------
    def _settings(self, body: Dict[str, Any]) -> Tuple[Dict[str, str], List[str], Dict[str, str]]:
        conf = body.get("conf") or {}
        conf = {str(k): str(v).lower() if isinstance(v, bool) else str(v) for k, v in conf.items()}
        # Session.scala prepareConf: blacklisted keys are refused before anything else.
        blacklisted = [k for k in conf if k in SPARK_CONF_BLACKLIST]
        if blacklisted:
            raise Rejected(
                "Blacklisted configuration values in session config: " + ", ".join(blacklisted)
            )
        # Session.scala prepareConf: each list is resolved (resolveURIs) and merged with the
        # same list in conf, the request's entries first.
        fields = {**CONF_LISTS, **{key: key for key in CONF_ONLY_LISTS}}
        for field, conf_key in fields.items():
            in_conf = re.split(r"[, ]+", conf.pop(conf_key, ""))
            entries = list(body.get(field) or []) if field in CONF_LISTS else []
            uris = [self.server.resolve_uri(e) for e in entries + in_conf if e]
            if uris:
                conf[conf_key] = ",".join(uris)
        # InteractiveSession.scala ``create``: the resources become Spark settings.
        for key, spark_key in RESOURCE_KEYS.items():
            value = body.get(key)
            if key in OPTION_INT_KEYS and value is not None and not _java_int(value):
                java = JAVA_CLASSES.get(type(value), "java.math.BigInteger")
                if isinstance(value, int) and abs(value) >= 2**63:
                    java = "java.math.BigInteger"
                raise ServerError(
                    f"java.lang.ClassCastException: class {java} cannot be cast to class "
                    f"java.lang.Integer ({java} and java.lang.Integer are in module java.base "
                    "of loader 'bootstrap')"
                )
            if value is not None:
                conf[spark_key] = str(value)
        if self.name:
            conf["spark.app.name"] = str(self.name)
        conf.setdefault("spark.app.name", f"livy-session-{self.id}")
        # rsc/.../ContextLauncher.java ``writeConfToFile``: the cluster's spark-defaults.conf
        # fills the keys the session's settings lack, unchecked. InteractiveSession.scala
        # ``prepareBuilderProp`` always sets spark.submit.pyFiles (pyspark.zip, py4j) and
        # spark.jars (the REPL's jars), so a default for either never reaches a session.
        for key, value in self.server.spark_defaults.items():
            if key not in conf and key not in LIVY_SETS:
                conf[key] = value
        py_files = [u for u in conf.get(CONF_LISTS["pyFiles"], "").split(",") if u]
        env = {k[len(APP_MASTER_ENV) :]: v for k, v in conf.items() if k.startswith(APP_MASTER_ENV)}
        # What the server decides, as livy.conf decides it on a cluster: master, loopback only,
        # no UI, scratch space inside the session's folder.
        conf.update(
            {
                "spark.master": self.server.master,
                "spark.ui.enabled": "false",
                "spark.driver.host": HOST,
                "spark.driver.bindAddress": HOST,
                "spark.local.dir": str(self.dir / "local"),
                "spark.sql.warehouse.dir": (self.dir / "warehouse").as_uri(),
                **self.server.file_systems(),
            }
        )
        conf.setdefault("spark.sql.shuffle.partitions", "4")
        return conf, py_files, env

    # -- lifecycle ------------------------------------------------------------------------------
    def start(self) -> None:
        self.state = "starting"
        threading.Thread(target=self._run, name=f"livy-session-{self.id}", daemon=True).start()

    def _spawn(self) -> None:
        settings = self.dir / "settings.json"
        conf = dict(self.spark_conf)
        # As a cluster's spark-defaults.conf may: `spark.driver.defaultJavaOptions` is the
        # administrators' option, prepended to the user's extraJavaOptions (Spark's
        # `config/package.scala`, DRIVER_DEFAULT_JAVA_OPTIONS). Here: the lab's class-data archive
        # (ctr_lab.session.java_options) and what the suite adds (``driver_java_options``), which
        # change how fast a driver starts and runs, never what it computes.
        defaults = self.server.driver_java_options
        if defaults:
            conf["spark.driver.defaultJavaOptions"] = defaults
        # What spark-submit does on the cluster: fetch every listed file; a missing one fails
        # the application (YARN reports FAILED, so Livy shows the session ``dead``).
        local: Dict[str, List[str]] = {}
        for conf_key in (*CONF_LISTS.values(), *CONF_ONLY_LISTS):
            uris = [u for u in conf.pop(conf_key, "").split(",") if u]
            local[conf_key] = [self.server.fetch(u) for u in uris]
        for conf_key in ("spark.jars", "spark.files", *YARN_DIST_AS_LOCAL):
            spark_key = YARN_DIST_AS_LOCAL.get(conf_key, conf_key)
            given = [u for u in conf.get(spark_key, "").split(",") if u]
            if local[conf_key] or given:
                conf[spark_key] = ",".join(given + local[conf_key])
        settings.write_text(
            json.dumps(
                {
                    "master": conf.pop("spark.master"),
                    "name": conf["spark.app.name"],
                    "conf": conf,
                    "pyFiles": local["spark.submit.pyFiles"],
                    "spark": self.server.spark,
                }
            )
        )
        cwd = self.dir / "cwd"
        if self.server.emr_like:
            # A YARN container's environment: the node's, not the submitter's (no variable of
            # the test run, such as PWD or JUPYTER_PATH, reaches the driver); its folder as home.
            env = {"PATH": "/usr/local/bin:/usr/bin:/bin", "HOME": str(cwd), "PWD": str(cwd)}
            env.update({k: os.environ[k] for k in ("JAVA_HOME", "LANG") if k in os.environ})
        else:
            env = {
                k: v
                for k, v in os.environ.items()
                if not k.startswith(("PYTHON", "PYSPARK", "SPARK_", "CTR_LAB", "VIRTUAL_ENV"))
            }
        env.update(
            {
                TOKEN_ENV: self.server.token,
                "PYSPARK_PYTHON": str(self.server.python),
                "SPARK_LOCAL_IP": HOST,
                "MPLBACKEND": "Agg",
                "PYTHONUNBUFFERED": "1",
                "PYTHONDONTWRITEBYTECODE": "1",
                # PythonInterpreter.scala sets it for the REPL's Python from the driver's
                # spark.livy.spark_major_version, which InteractiveSession.scala passes on.
                "LIVY_SPARK_MAJOR_VERSION": "3",
            }
        )
        env.update(self.env)
        req_r, req_w = os.pipe()
        rep_r, rep_w = os.pipe()
        cwd.mkdir()
        with open(self.log_path, "ab") as log:
            self.proc = subprocess.Popen(
                [str(self.server.python), str(REPL_SCRIPT), str(req_r), str(rep_w), str(settings)],
                cwd=cwd,
                env=env,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.PIPE,
                pass_fds=(req_r, rep_w),
                start_new_session=True,
            )
        self.stderr_reader = threading.Thread(
            target=self._read_stderr, args=(self.proc,), name=f"stderr-{self.id}", daemon=True
        )
        self.stderr_reader.start()
        os.close(req_r)
        os.close(rep_w)
        self.request_w = os.fdopen(req_w, "w", encoding="utf-8")
        self.reply_r = os.fdopen(rep_r, "r", encoding="utf-8")

    def _read_stderr(self, proc: subprocess.Popen) -> None:
        """repl/.../ProcessInterpreter.scala: a thread keeps every line the REPL writes to its
        stderr (``stderrThread``); when the REPL exits with a code other than 0, the lines not
        yet taken go to the driver's log (``processWatcherThread``: "Process has died with N",
        then ``stderrLines``; a JVM's ``waitFor`` gives 128 + the signal of a killed process).
        Here this runs before :meth:`take_error_lines` takes them, one of the two orders Livy's
        threads can run in."""
        assert proc.stderr is not None
        for raw in proc.stderr:
            line = raw.decode("utf-8", errors="replace").rstrip("\r\n")
            with self.stderr_lock:
                self.stderr_lines.append(line)
        code = proc.wait()
        if code != 0:
            with self.stderr_lock:
                lines = list(self.stderr_lines)
            with contextlib.suppress(OSError):  # a deleted session's folder may be gone
                self._log(f"Process has died with {code if code > 0 else 128 - code}")
                with open(self.log_path, "a", encoding="utf-8") as fh:
                    fh.writelines(f"{line}\n" for line in lines)

    def take_error_lines(self) -> str:
        """ProcessInterpreter.scala ``takeErrorLines``: the stderr lines since the last take.

        Livy takes them as soon as the REPL's reply pipe ends, while its stderr thread may still
        be reading; here the reader is let finish first, so the message is whole every time.
        """
        if self.stderr_reader is not None:
            self.stderr_reader.join(timeout=10)
        with self.stderr_lock:
            lines, self.stderr_lines = self.stderr_lines, []
        return "\n".join(lines)

    def _read_message(self) -> Optional[Dict[str, Any]]:
        assert self.reply_r is not None
        line = self.reply_r.readline()
        return json.loads(line) if line else None

    def _run(self) -> None:
        try:
            self._spawn()
            first = self._read_message()
        except Exception as exc:
            self._log(f"session could not start: {exc}")
            first = None
        if (not first or first.get("type") != "ready") and self.stderr_reader is not None:
            self.stderr_reader.join(timeout=10)  # the REPL's lines logged before the line below
        with self.lock:
            if self.state != "starting":  # deleted while starting: the REPL may be newer
                self.server.terminate(self, wait=False)
                return
            if not first or first.get("type") != "ready":
                # The application failed before the REPL was up: YARN reports FAILED and
                # InteractiveSession.scala ``stateChanged`` moves the session to ``dead``.
                self._finish("dead")
                self._log("the REPL failed to start; see the lines above")
                self.server.terminate(self, wait=False)
                return
            self.app_id = first.get("appId")
            self.state = "idle"
            self.last_activity = time.monotonic()
        while True:
            stmt = self.queue.get()
            if stmt is None:
                return
            with self.lock:
                if stmt.state != "waiting" or self.state not in ("idle", "busy", "error"):
                    continue
                stmt.state = "running"
                stmt.started = now_ms()
                self.running = stmt
                if self.state != "error":
                    self.state = "busy"
            message = None
            if self.state != "error":
                try:
                    self._tell_repl({"id": stmt.id, "code": stmt.code})
                    message = self._read_message()
                    if message is not None and message.get("type") == "started":
                        message = self._read_message()
                except (OSError, ValueError):
                    message = None
            if message is None and self._driver_lost():
                self.lost_driver()  # the statement never completes: see lost_driver
                return
            died = "Interpreter died:\n" + self.take_error_lines() if message is None else ""
            with self.lock:
                self.running = None
                stmt.completed = now_ms()
                stmt.progress = 1.0
                self.last_activity = time.monotonic()
                if message is None:
                    # The Python REPL exited under the statement while the driver lives on:
                    # PythonInterpreter.scala ``sendExecuteRequest`` gets no reply line ->
                    # ``ExecuteAborted(takeErrorLines())``: every stderr line of the REPL's
                    # (fake_shell.py logs each failed statement's traceback there), and
                    # repl/.../Session.scala ``executeCode`` answers "Interpreter died" and
                    # moves the session to ``error``. Later statements meet the same dead
                    # interpreter (no new lines).
                    # Output before state, as Session.scala ``execute`` does: a reader never
                    # sees an ``available`` statement without its output.
                    stmt.output = {
                        "status": "error",
                        "execution_count": stmt.id,
                        "ename": "Error",
                        "evalue": died,
                        "traceback": [],
                    }
                    stmt.state = "available"
                    self.state = "error"
                    continue
                # Session.scala ``execute``: the output is kept whatever the state; running ->
                # available, cancelling -> cancelled, and a statement the cancel's timeout
                # already marked cancelled stays so.
                stmt.output = dict(message["content"], execution_count=stmt.id)
                stmt.state = {"running": "available", "cancelling": "cancelled"}.get(
                    stmt.state, stmt.state
                )
                if self.state == "busy":
                    self.state = "idle"

    def _driver_lost(self) -> bool:
        """Did the REPL die by a signal (its container killed) rather than exit on its own?"""
        if self.proc is None:
            return False
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.proc.wait(timeout=5)
        return self.proc.returncode is not None and self.proc.returncode < 0

    def lost_driver(self) -> None:
        """The driver's container is gone (node lost, OOM-killed, ``kill -9``).

        Livy learns it in two steps. First the RSC connection is broken while YARN still
        reports the application running: calls that go to the driver
        (InteractiveSession.scala ``getStatement``/``statements``/``executeStatement`` via
        ``RSCClient``) fail, which JsonServlet.scala's catch-all answers with 500; the session
        keeps its last REPL state. Then YARN reports the application FAILED:
        ``stateChanged`` -> ``dead``; from then on ``ensureActive`` fails with "requirement
        failed: Session isn't active." (400). ``server.lost_driver_seconds`` is the first step.
        """
        with self.lock:
            if self.lost_at is None and self.state not in FINAL_STATES:
                self.lost_at = time.monotonic()
                self._log("the driver's container was lost")
        self.server.terminate(self, wait=False)

    def check_alive(self, now: float) -> None:
        """Follow a REPL that died while no statement ran, and a lost driver's second step."""
        with self.lock:
            if self.lost_at is not None:
                if now - self.lost_at >= self.server.lost_driver_seconds:
                    self.lost_at = None
                    self.running = None
                    self._finish("dead")
                    self.queue.put(None)
                return
            if self.state in ("idle", "error") and self.proc is not None:
                code = self.proc.poll()
                if code is None:
                    return
                if code < 0:
                    self._log(f"the REPL was killed by signal {-code}")
                    self.lost_at = now
                    self.server.terminate(self, wait=False)

    def _finish(self, state: str) -> None:
        """Enter a finished state; its time starts ``livy.server.session.state-retain.sec``."""
        if self.state not in FINAL_STATES or state != self.state:
            self.state = state
            self.ended_at = time.monotonic()

    def cancel(self, stmt: Statement) -> None:
        """repl/.../Session.scala ``cancel``: a waiting statement is cancelled at once; a
        running one goes ``cancelling``, and one thread per session (``cancelExecutor``) cancels
        its Spark job group every ``livy.rsc.job-cancel.trigger-interval`` until the code ends
        (then ``cancelled``) or ``livy.rsc.job-cancel.timeout`` passes (then ``cancelled`` while
        the code may still run: Python that starts no job is not interrupted, and the session
        stays ``busy`` until it ends)."""
        with self.lock:
            if stmt.state == "waiting":
                stmt.state = "cancelled"
                stmt.completed = now_ms()
                return
            if stmt.state != "running":
                return
            stmt.state = "cancelling"
        threading.Thread(
            target=self._cancel_job_group, args=(stmt,), name=f"cancel-{self.id}", daemon=True
        ).start()

    def _cancel_job_group(self, stmt: Statement) -> None:
        with self.cancel_lock:
            deadline = time.monotonic() + self.server.job_cancel_timeout
            while True:
                with self.lock:
                    if stmt.state != "cancelling":
                        return
                    if time.monotonic() >= deadline:
                        self._log(f"Failed to cancel statement {stmt.id}.")
                        stmt.state = "cancelled"
                        stmt.completed = now_ms()
                        return
                with contextlib.suppress(OSError, ValueError):  # a REPL gone ends its statement
                    self._tell_repl({"type": "cancel", "id": stmt.id})
                time.sleep(JOB_CANCEL_TRIGGER_INTERVAL)

    def _tell_repl(self, request: Dict[str, Any]) -> None:
        """One request line on the REPL's pipe (OSError or ValueError once the REPL is gone)."""
        with self.pipe_lock:
            if self.request_w is None:
                raise ValueError("the REPL has not started")
            self.request_w.write(json.dumps(request) + "\n")
            self.request_w.flush()

    def expired(self, now: float) -> Optional[str]:
        """Why the server deletes the session now, or None.

        server/.../sessions/SessionManager.scala ``collectGarbage``: a finished session goes
        ``retain_seconds`` after it finished; any other, busy included (skip-busy is off by
        default), once inactive longer than ``livy.server.session.timeout`` or its ``ttl``.
        An ``error`` session never goes: InteractiveSession.scala ``state`` builds a fresh
        ``SessionState.Error()`` (time = now) from the REPL's state on every read.
        interactive/SessionHeartbeat.scala: a session whose heartbeat deadline passed goes too,
        whatever its state (``deleteExpiredSessions``).
        """
        if self.heartbeat and now - self.last_heartbeat > self.heartbeat:
            return "its heartbeat expired"
        if self.state == "error" or self.lost_at is not None:
            return None
        if self.state in FINAL_STATES:
            if self.ended_at is not None and now - self.ended_at > self.server.retain_seconds:
                return "its final state was retained long enough"
            return None
        if self.state == "busy" and self.server.skip_busy:
            return None
        timeout = self.ttl if self.ttl is not None else self.server.idle_timeout
        if now - self.activity() > timeout:
            return "it was inactive longer than its timeout"
        return None

    def activity(self) -> float:
        """InteractiveSession.scala ``lastActivity``: the later of the server's record
        (create, statement, cancel) and the REPL's (a statement starting or ending)."""
        latest = self.last_activity
        running = self.running
        if running is not None and running.started:
            latest = max(latest, time.monotonic() - (now_ms() - running.started) / 1000)
        return latest

    # -- views ----------------------------------------------------------------------------------
    def _log(self, text: str) -> None:
        with open(self.log_path, "a", encoding="utf-8") as fh:
            fh.write(f"[livy test server] {text}\n")

    def log_lines(self) -> List[str]:
        try:
            return self.log_path.read_text(encoding="utf-8", errors="replace").splitlines()
        except FileNotFoundError:
            return []

    def view(self) -> Dict[str, Any]:
        """InteractiveSessionServlet.scala ``clientSessionView``: the request's own values (conf,
        lists as sent), 0 for unset integers, the last 10 log lines."""
        body = self.body
        return {
            "id": self.id,
            "name": self.name,
            "appId": self.app_id,
            "owner": None,
            "proxyUser": body.get("proxyUser"),
            "state": self.state,
            "kind": self.kind,
            "appInfo": {"driverLogUrl": None, "sparkUiUrl": None},
            "log": self.log_lines()[-10:],
            "driverMemory": body.get("driverMemory"),
            "driverCores": int(body.get("driverCores") or 0),
            "executorMemory": body.get("executorMemory"),
            "executorCores": int(body.get("executorCores") or 0),
            "numExecutors": int(body.get("numExecutors") or 0),
            "queue": body.get("queue"),
            "conf": body.get("conf") or {},
            "pyFiles": list(body.get("pyFiles") or []),
            "jars": list(body.get("jars") or []),
            "files": list(body.get("files") or []),
            "archives": list(body.get("archives") or []),
            "heartbeatTimeoutInSecond": self.heartbeat,
        }


class LivyTestServer:
    """The HTTP server plus the session registry, the reaper and process clean-up.

    Parameters
    ----------
    python
        The interpreter for the REPLs and Spark's Python workers (the "cluster" Python).
    work_dir
        Scratch space; each session gets a folder inside it (its log, cwd and spark.local.dir).
    port
        0 picks a free port.
    idle_timeout
        ``livy.server.session.timeout`` in seconds (Livy: 1 h): an inactive session is deleted
        after it; a session's ``ttl`` overrides it.
    master
        The Spark master of every session (Livy's ``livy.spark.master``).
    retain_seconds
        ``livy.server.session.state-retain.sec``: how long a finished session stays listed.
    check_interval
        Seconds between garbage-collection and heartbeat checks (Livy: 60 s for both,
        SessionManager.scala ``GarbageCollector``, ``livy.server.heartbeat-watchdog.interval``).
    skip_busy
        ``livy.server.session.timeout-check.skip-busy`` (Livy's default: off, busy sessions
        time out too).
    local_dir_whitelist
        ``livy.file.local-dir-whitelist``: folders whose ``file://`` URIs a request may name.
    default_fs_root
        A local folder standing for the cluster's default file system (``fs.defaultFS``, HDFS
        on EMR): a scheme-less path ``/a/b`` names ``hdfs://…/a/b``, read from here.
    s3_root
        A local folder standing for S3: ``s3://bucket/key`` is read from ``s3_root/bucket/key``.
    lost_driver_seconds
        How long statement calls answer 500 after a driver is lost, before YARN's verdict makes
        the session ``dead`` (see :meth:`Session.lost_driver`).
    job_cancel_timeout
        ``livy.rsc.job-cancel.timeout`` (Livy: 30 s): how long a cancel keeps cancelling the
        statement's Spark jobs before it marks the statement ``cancelled`` anyway.
    emr_like
        True: each session's driver sees what a driver on an EMR cluster sees (README.md, "The
        EMR-like mode"): the default file system is the cluster's HDFS, served from
        ``default_fs_root``, and ``s3://BUCKET/KEY`` is served from ``s3_root/BUCKET/KEY``, both
        through Hadoop's own ``ViewFileSystemOverloadScheme``; a scheme-less path is on HDFS.
    spark_defaults
        The cluster's ``spark-defaults`` (EMR writes its ``spark-defaults`` classification into
        spark-defaults.conf): settings every session gets unless its request sets them.
    spark
        False: the REPL starts no SparkSession (``spark``/``sc`` undefined), for contract tests
        of rules that need no Spark; a session is then idle in about a second.
    driver_java_options
        The drivers' ``spark.driver.defaultJavaOptions`` (default: the lab's class-data archive,
        :func:`ctr_lab.session.java_options`).
    """

    def __init__(
        self,
        python: os.PathLike,
        work_dir: os.PathLike,
        port: int = 0,
        idle_timeout: float = 3600.0,
        master: str = "local[2]",
        retain_seconds: float = 600.0,
        check_interval: float = 1.0,
        skip_busy: bool = False,
        local_dir_whitelist: Tuple[os.PathLike, ...] = (),
        default_fs_root: Optional[os.PathLike] = None,
        s3_root: Optional[os.PathLike] = None,
        lost_driver_seconds: float = 3.0,
        job_cancel_timeout: float = 30.0,
        emr_like: bool = False,
        spark_defaults: Optional[Dict[str, str]] = None,
        spark: bool = True,
        driver_java_options: Optional[str] = None,
    ) -> None:
        self.python = Path(python)
        self.work_dir = Path(work_dir)
        self.work_dir.mkdir(parents=True, exist_ok=True)
        self.idle_timeout = idle_timeout
        self.master = master
        self.retain_seconds = retain_seconds
        self.check_interval = check_interval
        self.skip_busy = skip_busy
        self.local_dir_whitelist = [
            str(Path(d).resolve()).rstrip("/") + "/" for d in local_dir_whitelist
        ]
        self.default_fs_root = Path(default_fs_root or self.work_dir / "defaultfs")
        self.s3_root = Path(s3_root or self.work_dir / "s3")
        self.lost_driver_seconds = lost_driver_seconds
        self.job_cancel_timeout = job_cancel_timeout
        self.emr_like = emr_like
        self.spark_defaults = dict(spark_defaults or {})
        self.spark = spark
        self.driver_java_options = (
            java_options() if driver_java_options is None else driver_java_options
        )
        self.token = uuid.uuid4().hex
        self.sessions: Dict[int, Session] = {}
        self.names: Dict[str, Session] = {}
        self.lock = threading.Lock()
        self._ids = itertools.count()
        self._stmt_ids: Dict[int, itertools.count[int]] = {}
        self._teardowns: List[threading.Thread] = []
        self._stop = threading.Event()
        self.httpd = ThreadingHTTPServer((HOST, port), _make_handler(self))
        self.httpd.daemon_threads = True
        self.reaped: List[int] = []

    @property
    def port(self) -> int:
        return int(self.httpd.server_address[1])

    @property
    def url(self) -> str:
        return f"http://{HOST}:{self.port}"

    def start(self) -> LivyTestServer:
        threading.Thread(target=self.httpd.serve_forever, name="livy-http", daemon=True).start()
        threading.Thread(target=self._reaper, name="livy-reaper", daemon=True).start()
        return self

    def __enter__(self) -> LivyTestServer:
        return self.start()

    def __exit__(self, *exc: Any) -> None:
        self.stop()

    # -- file locations -------------------------------------------------------------------------
    def resolve_uri(self, entry: str) -> str:
        """server/.../sessions/Session.scala ``resolveURI``, as configured on EMR.

        The entry is parsed as a ``java.net.URI`` (a character it refuses: 400). No scheme: the
        path must be absolute and is prefixed with ``fs.defaultFS`` (HDFS), its ``#fragment``
        kept. ``file:``: only under ``livy.file.local-dir-whitelist`` (empty by default). Any
        other scheme (``s3://``, ``hdfs://``) passes unchecked; spark-submit fetches it later.
        """
        _check_java_uri(entry)
        url = urlparse(entry)
        if not url.scheme:
            path = url.path + (f"#{url.fragment}" if "#" in entry else "")
            if not path.startswith("/"):
                raise Rejected(f"requirement failed: Path '{url.path}' is not absolute.")
            return DEFAULT_FS + path
        if url.scheme == "file":
            path = unquote(url.path)
            if not any(path.startswith(d) for d in self.local_dir_whitelist):
                raise Rejected(
                    f"requirement failed: Local path {path} cannot be added to user sessions."
                )
        return entry

    def file_systems(self) -> Dict[str, str]:
        """The Hadoop settings of a session's driver: none, or in the EMR-like mode HDFS and S3.

        On EMR, core-site.xml makes the cluster's HDFS the default file system (a path without a
        scheme, relative ones from ``/user/<user>``) and EMRFS serves ``s3://``. Here Hadoop's
        ``ViewFileSystemOverloadScheme`` serves both schemes from mount tables named after the
        URI's host, each with one fallback link: the namenode's to ``default_fs_root``, each
        bucket's (a folder of ``s3_root`` when the session starts) to that folder. A bucket with
        no folder has no mount table, so Hadoop refuses its URIs, as S3 refuses a missing bucket.
        """
        if not self.emr_like:
            return {}
        mount = "spark.hadoop.fs.viewfs.mounttable.{}.linkFallback"
        self.default_fs_root.mkdir(parents=True, exist_ok=True)
        conf = {
            "spark.hadoop.fs.defaultFS": DEFAULT_FS,
            "spark.hadoop.fs.hdfs.impl": OVERLOAD_SCHEME,
            "spark.hadoop.fs.s3.impl": OVERLOAD_SCHEME,
            mount.format(urlparse(DEFAULT_FS).hostname): self.default_fs_root.resolve().as_uri(),
        }
        buckets = sorted(self.s3_root.iterdir()) if self.s3_root.is_dir() else []
        for bucket in buckets:
            if bucket.is_dir():
                conf[mount.format(bucket.name)] = bucket.resolve().as_uri()
        return conf

    def fetch(self, uri: str) -> str:
        """The local file behind a resolved URI, as spark-submit would download it."""
        url = urlparse(uri)
        if url.scheme == "file":
            path = Path(unquote(url.path))
        elif uri.startswith(DEFAULT_FS) or (url.scheme == "hdfs" and not url.netloc):
            # ``hdfs:///path`` has no namenode: Hadoop takes fs.defaultFS's.
            path = self.default_fs_root / unquote(url.path).lstrip("/")
        elif url.scheme in ("s3", "s3a", "s3n"):
            path = self.s3_root / url.netloc / unquote(url.path).lstrip("/")
        else:
            raise FileNotFoundError(f"java.io.IOException: No FileSystem for scheme: {url.scheme}")
        if not path.is_file():
            raise FileNotFoundError(f"java.io.FileNotFoundException: File {uri} does not exist")
        return str(path)

    # -- registry -------------------------------------------------------------------------------
    def create(self, body: Any) -> Session:
        """SessionServlet.scala ``post("/")``: createSession (Jackson, then the id, then the
        name and settings checks), then SessionManager.scala ``register`` (the name registry).
        An id is consumed by every request that gets past Jackson, as ``nextId()`` runs first."""
        check_request(body)
        if body.get("kind") not in (None, "pyspark"):
            raise BadRequest(f"kind {body['kind']!r}: the test server runs pyspark sessions only")
        with self.lock:
            sid = next(self._ids)
        if body.get("ttl") is not None:  # InteractiveSessionServlet.scala ``createSession``
            parse_duration(body["ttl"])
        check_name(body.get("name"))
        session = Session(self, sid, body)
        with self.lock:
            # SessionManager.register: ``session.name`` is an Option, hence "Some(...)".
            if session.name is not None and session.name in self.names:
                shutil.rmtree(session.dir, ignore_errors=True)
                raise Rejected(f"Duplicate session name: Some({session.name}) for session {sid}")
            if session.name is not None:
                self.names[session.name] = session
            self.sessions[sid] = session
            self._stmt_ids[sid] = itertools.count()
        session.start()
        return session

    def get(self, sid: int) -> Optional[Session]:
        with self.lock:
            return self.sessions.get(sid)

    def find(self, id_or_name: str) -> Optional[Session]:
        """SessionServlet.scala ``doWithSession``: all digits is an id, anything else a name."""
        with self.lock:
            if id_or_name.isdigit():
                return self.sessions.get(int(id_or_name))
            return self.names.get(unquote(id_or_name))

    def add_statement(self, session: Session, code: str) -> Statement:
        """InteractiveSession.scala ``executeStatement``: ``ensureRunning`` throws an
        ``IllegalStateException`` (a 500) unless the driver is up; an ``error`` session's driver
        is, so the statement goes to its dead interpreter."""
        with session.lock:
            if session.lost_at is not None:
                raise ServerError(LOST_DRIVER)
            if session.state not in ("idle", "busy", "error"):
                raise ServerError(
                    f"java.lang.IllegalStateException: Session is in state {session.state}"
                )
            stmt = Statement(next(self._stmt_ids[session.id]), code)
            session.statements.append(stmt)
            session.last_activity = time.monotonic()
        session.queue.put(stmt)
        return stmt

    def delete(self, sid: int, reason: str = "deleted", wait: bool = True) -> bool:
        """SessionManager.scala ``delete``: ``session.stop()`` (InteractiveSession.scala
        ``stopSession``: ``shutting_down``, stop the driver, then ``dead``), and only when that
        has finished the id and the name leave the registry. SessionServlet.scala's DELETE
        waits for it (``Await.ready``); the garbage collector does not."""
        session = self.get(sid)
        if session is None:
            return False
        with session.lock:
            first = session.state != "shutting_down" and not session.stopped.is_set()
            if first:
                session.state = "shutting_down"
                session.lost_at = None
                session._log(f"session {reason}")
        if not first:
            if wait:
                session.stopped.wait(60)
            return True
        session.queue.put(None)

        def stop() -> None:
            self._terminate(session)
            with session.lock:
                session.state = "dead"
                session.ended_at = time.monotonic()
            with self.lock:
                self.sessions.pop(sid, None)
                if session.name is not None and self.names.get(session.name) is session:
                    del self.names[session.name]
            session.stopped.set()

        thread = threading.Thread(target=stop, daemon=True)
        with self.lock:
            self._teardowns.append(thread)
        thread.start()
        if wait:
            thread.join()
        return True

    def kill_application(self, sid: int) -> None:
        """``yarn application -kill``: YARN reports KILLED, InteractiveSession.scala
        ``stateChanged`` -> ``killed`` (kept, with its name, for ``retain_seconds``)."""
        session = self.get(sid)
        if session is None:
            raise KeyError(sid)
        with session.lock:
            session._finish("killed")
            session.queue.put(None)
        self.terminate(session, wait=True)

    # -- processes ------------------------------------------------------------------------------
    def terminate(self, session: Session, wait: bool) -> None:
        """Stop a session's REPL: ask it to exit, then kill its process group and descendants."""
        thread = threading.Thread(target=self._terminate, args=(session,), daemon=True)
        with self.lock:
            self._teardowns.append(thread)
        thread.start()
        if wait:
            thread.join()

    def _terminate(self, session: Session) -> None:
        proc = session.proc
        if proc is None:
            return
        try:
            family = [proc.pid] + [p.pid for p in psutil.Process(proc.pid).children(recursive=True)]
        except psutil.NoSuchProcess:
            family = [proc.pid]
        try:
            with session.pipe_lock:
                if session.request_w is not None:
                    session.request_w.write(json.dumps({"type": "shutdown"}) + "\n")
                    session.request_w.flush()
                    session.request_w.close()
        except (OSError, ValueError):
            pass
        with contextlib.suppress(subprocess.TimeoutExpired):
            proc.wait(timeout=8 if self.spark else 1)  # spark.stop() and exit
        for sig in (signal.SIGTERM, signal.SIGKILL):
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, sig)
            for pid in family:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, sig)
            _, alive = psutil.wait_procs(_existing(family), timeout=5)
            if not alive:
                break
        with contextlib.suppress(subprocess.TimeoutExpired):
            proc.wait(timeout=5)
        if session.reply_r is not None:
            with contextlib.suppress(OSError):
                session.reply_r.close()

    def leftover_processes(self) -> List[psutil.Process]:
        """Every live process that carries this server's token (REPLs, JVMs, Python workers)."""
        found = []
        for proc in psutil.process_iter(["pid"]):
            try:
                if proc.pid != os.getpid() and proc.environ().get(TOKEN_ENV) == self.token:
                    found.append(proc)
            except (psutil.NoSuchProcess, psutil.AccessDenied, psutil.ZombieProcess):
                continue
        return found

    def _reaper(self) -> None:
        """SessionManager.scala's ``GarbageCollector`` and SessionHeartbeat.scala's watchdog."""
        while not self._stop.wait(self.check_interval):
            now = time.monotonic()
            with self.lock:
                sessions = list(self.sessions.values())
            for session in sessions:
                session.check_alive(now)
                if session.state == "shutting_down":
                    continue
                why = session.expired(now)
                if why:
                    self.reaped.append(session.id)
                    self.delete(session.id, reason=f"deleted because {why}", wait=False)

    def stop(self) -> None:
        """Stop serving, delete every session and wait until all their processes are gone."""
        self._stop.set()
        self.httpd.shutdown()
        self.httpd.server_close()
        with self.lock:
            ids = list(self.sessions)
        for sid in ids:
            self.delete(sid, reason="stopped with the server", wait=False)
        with self.lock:
            teardowns = list(self._teardowns)
        for thread in teardowns:
            thread.join(timeout=30)
        for proc in self.leftover_processes():  # e.g. a worker that left the process group
            with contextlib.suppress(psutil.NoSuchProcess):
                proc.kill()
        psutil.wait_procs(self.leftover_processes(), timeout=5)


def _existing(pids: List[int]) -> List[psutil.Process]:
    procs = []
    for pid in pids:
        with contextlib.suppress(psutil.NoSuchProcess):
            procs.append(psutil.Process(pid))
    return procs


def _page(items: List[Any], query: Dict[str, List[str]], size: int = 100) -> Tuple[int, List[Any]]:
    """``from`` and ``size`` (SessionServlet.scala ``get("/")``: 100 sessions by default)."""
    start = int(query.get("from", ["0"])[0])
    size = int(query.get("size", [str(size)])[0])
    return start, items[start : start + size]


def _log_page(lines: List[str], query: Dict[str, List[str]]) -> Tuple[int, List[str]]:
    """SessionServlet.scala ``serializeLogs``: by default the last 100 lines."""
    size = int(query.get("size", ["100"])[0])
    size = len(lines) if size < 0 else size
    start = int(query.get("from", ["-1"])[0])
    start = max(0, len(lines) - size) if start < 0 else start
    return start, lines[start : start + size]


def _driver_call(session: Session) -> None:
    """What a call that goes to the driver meets (InteractiveSession.scala ``statements``,
    ``getStatement``: ``ensureActive``, then the RSC client)."""
    if session.lost_at is not None:
        raise ServerError(LOST_DRIVER)
    if session.state not in ACTIVE_STATES:
        raise BadRequest(NOT_ACTIVE)


def _make_handler(server: LivyTestServer) -> type:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, format: str, *args: Any) -> None:
            pass

        def _send(self, status: int, payload: Any, location: Optional[str] = None) -> None:
            data = json.dumps(payload).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            if location:
                self.send_header("Location", location)
            self.end_headers()
            self.wfile.write(data)

        def _body(self) -> Any:
            length = int(self.headers.get("Content-Length") or 0)
            raw = self.rfile.read(length) if length else b""
            if not raw.strip():
                return {}
            try:
                return json.loads(raw)
            except ValueError as exc:
                raise MappingError(f"the request body is not JSON: {exc}") from None

        def _route(self, method: str) -> None:
            url = urlparse(self.path)
            query = parse_qs(url.query)
            parts = [p for p in url.path.split("/") if p]
            try:
                self._dispatch(method, parts, query)
            except BadRequest as exc:
                self._send(HTTPStatus.BAD_REQUEST, exc.payload())
            except ServerError as exc:
                self._send(HTTPStatus.INTERNAL_SERVER_ERROR, str(exc))
            except (ValueError, KeyError) as exc:
                self._send(HTTPStatus.BAD_REQUEST, {"msg": f"bad request: {exc}"})

        def _session(self, raw: str) -> Optional[Session]:
            session = server.find(raw)
            if session is None:
                self._send(HTTPStatus.NOT_FOUND, {"msg": f"Session '{raw}' not found."})
            else:
                # SessionHeartbeat.scala ``SessionHeartbeatNotifier``: every call under
                # /sessions/{id} refreshes the heartbeat (GET /sessions does not).
                session.last_heartbeat = time.monotonic()
            return session

        def _dispatch(self, method: str, parts: List[str], query: Dict[str, List[str]]) -> None:
            if not parts or parts[0] != "sessions":
                self._send(HTTPStatus.NOT_FOUND, {"msg": f"no route for {self.path}"})
                return
            n = len(parts)
            if n == 1 and method == "GET":
                with server.lock:
                    sessions = sorted(server.sessions.values(), key=lambda s: s.id)
                start, page = _page(sessions, query)
                self._send(
                    200,
                    {"from": start, "total": len(sessions), "sessions": [s.view() for s in page]},
                )
            elif n == 1 and method == "POST":
                session = server.create(self._body())
                self._send(HTTPStatus.CREATED, session.view(), f"/sessions/{session.id}")
            elif (session := self._session(parts[1])) is None:
                return
            elif n == 2 and method == "GET":
                self._send(200, session.view())
            elif n == 2 and method == "DELETE":
                server.delete(session.id)
                self._send(200, {"msg": "deleted"})
            elif n == 3 and parts[2] == "state" and method == "GET":
                self._send(200, {"id": session.id, "state": session.state})
            elif n == 3 and parts[2] == "log" and method == "GET":
                lines = session.log_lines()
                start, page = _log_page(lines, query)
                self._send(200, {"id": session.id, "from": start, "total": len(lines), "log": page})
            elif n == 3 and parts[2] == "statements" and method == "GET":
                _driver_call(session)
                with session.lock:
                    stmts = [s.view() for s in session.statements]
                # InteractiveSessionServlet.scala ``get("/:id/statements")``: ``order=desc``
                # (trimmed, any case) reverses; every statement by default.
                if query.get("order", [""])[0].strip().lower() == "desc":
                    stmts.reverse()
                _, page = _page(stmts, query, size=len(stmts))
                self._send(200, {"total_statements": len(stmts), "statements": page})
            elif n == 3 and parts[2] == "statements" and method == "POST":
                body = self._body()
                if not isinstance(body, dict) or not isinstance(body.get("code"), str):
                    raise BadRequest("a statement needs a JSON body with a string 'code'")
                unknown = sorted(set(body) - {"code", "kind"})
                if unknown:  # ExecuteRequest.scala, read by Jackson (JsonServlet.scala)
                    raise MappingError(
                        f'Unrecognized field "{unknown[0]}" (class '
                        "org.apache.livy.ExecuteRequest), not marked as "
                        'ignorable (2 known properties: "code", "kind")'
                    )
                if body.get("kind") not in (None, "pyspark"):
                    raise BadRequest(f"kind {body['kind']!r}: the test server runs pyspark only")
                stmt = server.add_statement(session, body["code"])
                self._send(
                    HTTPStatus.CREATED, stmt.view(), f"/sessions/{session.id}/statements/{stmt.id}"
                )
            elif n in (4, 5) and parts[2] == "statements":
                if n == 5:  # cancel: InteractiveSession.scala ``cancelStatement``, ensureRunning
                    if session.lost_at is not None:
                        raise ServerError(LOST_DRIVER)
                    if session.state not in ("idle", "busy", "error"):
                        raise ServerError(
                            f"java.lang.IllegalStateException: Session is in state {session.state}"
                        )
                else:
                    _driver_call(session)
                sid = int(parts[3])
                stmt = next((s for s in session.statements if s.id == sid), None)
                if n == 5 and parts[4] == "cancel" and method == "POST":
                    if stmt is not None:  # repl/.../Session.scala ``cancel``: unknown id, no-op
                        session.cancel(stmt)
                        session.last_activity = time.monotonic()
                    self._send(200, {"msg": "canceled"})
                elif stmt is None:
                    # InteractiveSessionServlet.scala: ``NotFound("Statement not found")``.
                    self._send(HTTPStatus.NOT_FOUND, "Statement not found")
                elif n == 4 and method == "GET":
                    with session.lock:
                        view = stmt.view()
                    self._send(200, view)
                else:
                    self._send(HTTPStatus.METHOD_NOT_ALLOWED, {"msg": f"{method} {self.path}"})
            else:
                self._send(HTTPStatus.NOT_FOUND, {"msg": f"no route for {method} {self.path}"})

        def do_GET(self) -> None:
            self._route("GET")

        def do_POST(self) -> None:
            self._route("POST")

        def do_DELETE(self) -> None:
            self._route("DELETE")

    return Handler


def main(argv: Optional[List[str]] = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--python", default=sys.executable, help="interpreter for the REPLs")
    parser.add_argument("--port", type=int, default=8998)
    parser.add_argument("--idle-timeout", type=float, default=3600.0)
    parser.add_argument("--local-dir-whitelist", nargs="*", default=[])
    parser.add_argument("--master", default="local[2]")
    parser.add_argument("--work-dir", default=None)
    args = parser.parse_args(argv)
    work = Path(args.work_dir or tempfile.mkdtemp(prefix="livy-test-server-"))
    server = LivyTestServer(
        args.python,
        work,
        args.port,
        args.idle_timeout,
        args.master,
        local_dir_whitelist=tuple(args.local_dir_whitelist),
    ).start()
    print(f"Livy test server on {server.url} (work dir {work}); Ctrl-C stops it", flush=True)
    try:
        signal.pause()
    except KeyboardInterrupt:
        pass
    finally:
        server.stop()
        shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
