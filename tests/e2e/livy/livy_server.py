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

HOST = "127.0.0.1"
REPL_SCRIPT = Path(__file__).with_name("livy_repl.py")
#: Every REPL, and so every JVM and Python worker under it, carries this variable: its value is
#: the server's token, which lets the server (and the tests) find any process it started.
TOKEN_ENV = "LIVY_TEST_SERVER_TOKEN"
#: Livy's session states (SessionState.scala); the server uses starting, idle, busy, dead, killed.
FINAL_STATES = ("dead", "killed", "error", "success")
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
    """A client error, answered with HTTP 400 and ``{"msg": ...}`` like Livy."""


def now_ms() -> int:
    return int(time.time() * 1000)


def parse_duration(text: str) -> float:
    """Livy's time strings (``"90s"``, ``"10m"``, ``"2h"``, ``"500ms"``) in seconds."""
    match = re.fullmatch(r"\s*(\d+)\s*(ms|s|m|min|h|d)?\s*", str(text))
    if not match:
        raise BadRequest(f"ttl {text!r} is not a duration such as '90s', '10m' or '2h'")
    factor = {"ms": 0.001, "s": 1, "m": 60, "min": 60, "h": 3600, "d": 86400}
    return int(match.group(1)) * factor[match.group(2) or "ms"]


def local_path(entry: str, field: str) -> str:
    """A pyFiles/files entry as an absolute local path; the test server reads nothing remote."""
    path = unquote(entry[len("file://") :]) if entry.startswith("file://") else entry
    if not os.path.isabs(path):
        raise BadRequest(
            f"{field} entry {entry!r}: the test server only reads local files; give an absolute "
            f"path or a file:// URI (on EMR use an s3:// URI)"
        )
    if not os.path.isfile(path):
        raise BadRequest(f"{field} entry {entry!r}: no such file")
    return path


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
        self.running: Optional[Statement] = None
        self.proc: Optional[subprocess.Popen] = None
        self.request_w: Optional[Any] = None
        self.reply_r: Optional[Any] = None
        self.last_activity = time.monotonic()
        self.last_heartbeat = time.monotonic()
        self.heartbeat = int(body.get("heartbeatTimeoutInSecond") or 0)
        self.ttl = parse_duration(body["ttl"]) if body.get("ttl") else None
        self.ended_at: Optional[float] = None
        self.dir = Path(tempfile.mkdtemp(prefix=f"session{sid}-", dir=server.work_dir))
        self.log_path = self.dir / "session.log"
        self.spark_conf, self.py_files, self.env = self._settings(body)

    # -- settings -------------------------------------------------------------------------------
    def _settings(self, body: Dict[str, Any]) -> Tuple[Dict[str, str], List[str], Dict[str, str]]:
        conf = body.get("conf") or {}
        if not isinstance(conf, dict):
            raise BadRequest("conf must be a JSON object of Spark settings")
        conf = {str(k): str(v).lower() if isinstance(v, bool) else str(v) for k, v in conf.items()}
        for key, spark_key in RESOURCE_KEYS.items():
            if body.get(key) is not None:
                conf[spark_key] = str(body[key])
        if self.name:
            conf["spark.app.name"] = str(self.name)
        conf.setdefault("spark.app.name", f"livy-session-{self.id}")
        # pyFiles and spark.submit.pyFiles are merged, as Livy merges them.
        entries = list(body.get("pyFiles") or [])
        entries += [p for p in conf.pop("spark.submit.pyFiles", "").split(",") if p.strip()]
        py_files = [local_path(e.strip(), "pyFiles") for e in entries]
        for key in ("jars", "files", "archives"):
            if body.get(key):
                raise BadRequest(f"{key} is not supported by the test server (pyFiles is)")
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
                "spark.sql.warehouse.dir": str(self.dir / "warehouse"),
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
        settings.write_text(
            json.dumps(
                {
                    "master": conf.pop("spark.master"),
                    "name": conf["spark.app.name"],
                    "conf": conf,
                    "pyFiles": self.py_files,
                }
            )
        )
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
            }
        )
        env.update(self.env)
        req_r, req_w = os.pipe()
        rep_r, rep_w = os.pipe()
        (self.dir / "cwd").mkdir()
        with open(self.log_path, "ab") as log:
            self.proc = subprocess.Popen(
                [str(self.server.python), str(REPL_SCRIPT), str(req_r), str(rep_w), str(settings)],
                cwd=self.dir / "cwd",
                env=env,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                pass_fds=(req_r, rep_w),
                start_new_session=True,
            )
        os.close(req_r)
        os.close(rep_w)
        self.request_w = os.fdopen(req_w, "w", encoding="utf-8")
        self.reply_r = os.fdopen(rep_r, "r", encoding="utf-8")

    def _read_message(self) -> Optional[Dict[str, Any]]:
        assert self.reply_r is not None
        line = self.reply_r.readline()
        return json.loads(line) if line else None

    def _run(self) -> None:
        try:
            self._spawn()
            first = self._read_message()
        except Exception as exc:
            self._log(f"session could not start: {exc!r}")
            first = None
        with self.lock:
            if self.state != "starting":  # deleted while starting
                return
            if not first or first.get("type") != "ready":
                self.state = "dead"
                self.ended_at = time.monotonic()
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
                if stmt.state != "waiting" or self.state in FINAL_STATES:
                    continue
                stmt.state = "running"
                stmt.started = now_ms()
                self.running = stmt
                self.state = "busy"
            try:
                assert self.request_w is not None
                self.request_w.write(json.dumps({"id": stmt.id, "code": stmt.code}) + "\n")
                self.request_w.flush()
                message = self._read_message()
            except (OSError, ValueError):
                message = None
            with self.lock:
                self.running = None
                stmt.completed = now_ms()
                stmt.progress = 1.0
                self.last_activity = time.monotonic()
                if message is None:  # the REPL died under the statement
                    stmt.state = "available"
                    stmt.output = {
                        "status": "error",
                        "execution_count": stmt.id,
                        "ename": "Error",
                        "evalue": "Interpreter died:\n" + "\n".join(self.log_lines()[-20:]),
                        "traceback": [],
                    }
                    if self.state not in FINAL_STATES:
                        self.state = "dead"
                        self.ended_at = time.monotonic()
                    self.server.terminate(self, wait=False)
                    return
                stmt.output = message["content"]
                stmt.state = "cancelled" if stmt.state == "cancelling" else "available"
                if self.state == "busy":
                    self.state = "idle"

    def check_alive(self) -> None:
        """Mark the session dead if its REPL exited while idle (e.g. killed from outside)."""
        with self.lock:
            if self.state == "idle" and self.proc is not None and self.proc.poll() is not None:
                self._log(f"the REPL exited with code {self.proc.returncode}")
                self.state = "dead"
                self.ended_at = time.monotonic()
                self.queue.put(None)
                self.server.terminate(self, wait=False)

    def cancel(self, stmt: Statement) -> None:
        with self.lock:
            if stmt.state == "waiting":
                stmt.state = "cancelled"
                stmt.completed = now_ms()
            elif stmt.state == "running" and self.proc is not None:
                stmt.state = "cancelling"
                # PySpark's SIGINT handler cancels the running jobs and raises KeyboardInterrupt.
                os.kill(self.proc.pid, signal.SIGINT)

    def idle_expired(self, now: float) -> bool:
        timeout = self.ttl if self.ttl is not None else self.server.idle_timeout
        if self.state == "idle" and now - self.last_activity > timeout:
            return True
        return bool(self.heartbeat) and now - self.last_heartbeat > self.heartbeat

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
            "driverCores": body.get("driverCores"),
            "executorMemory": body.get("executorMemory"),
            "executorCores": body.get("executorCores"),
            "numExecutors": body.get("numExecutors"),
            "queue": body.get("queue"),
            "conf": self.spark_conf,
            "pyFiles": self.py_files,
            "jars": [],
            "files": [],
            "archives": [],
            "heartbeatTimeoutInSecond": self.heartbeat,
            "ttl": body.get("ttl"),
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
        Seconds an idle session lives before the reaper deletes it (Livy's
        ``livy.server.session.timeout``; a session's ``ttl`` overrides it).
    master
        The Spark master of every session (Livy's ``livy.spark.master``).
    retain_seconds
        How long a dead session stays visible (``livy.server.session.state-retain.sec``).
    """

    def __init__(
        self,
        python: os.PathLike,
        work_dir: os.PathLike,
        port: int = 0,
        idle_timeout: float = 600.0,
        master: str = "local[2]",
        retain_seconds: float = 600.0,
    ) -> None:
        self.python = Path(python)
        self.work_dir = Path(work_dir)
        self.work_dir.mkdir(parents=True, exist_ok=True)
        self.idle_timeout = idle_timeout
        self.master = master
        self.retain_seconds = retain_seconds
        self.token = uuid.uuid4().hex
        self.sessions: Dict[int, Session] = {}
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

    # -- registry -------------------------------------------------------------------------------
    def create(self, body: Any) -> Session:
        if not isinstance(body, dict):
            raise BadRequest("the request body must be a JSON object")
        unknown = sorted(set(body) - KNOWN_KEYS)
        if unknown:
            raise BadRequest(f"Unrecognized field(s) {unknown} in the session request")
        if body.get("kind") not in (None, "pyspark"):
            raise BadRequest(f"kind {body['kind']!r}: the test server runs pyspark sessions only")
        with self.lock:
            sid = next(self._ids)
            session = Session(self, sid, body)
            self.sessions[sid] = session
            self._stmt_ids[sid] = itertools.count()
        session.start()
        return session

    def get(self, sid: int) -> Optional[Session]:
        with self.lock:
            return self.sessions.get(sid)

    def add_statement(self, session: Session, code: str) -> Statement:
        with session.lock:
            if session.state not in ("idle", "busy"):
                raise BadRequest("requirement failed: Session isn't active.")
            stmt = Statement(next(self._stmt_ids[session.id]), code)
            session.statements.append(stmt)
            session.last_activity = time.monotonic()
        session.queue.put(stmt)
        return stmt

    def delete(self, sid: int, reason: str = "deleted") -> bool:
        with self.lock:
            session = self.sessions.pop(sid, None)
        if session is None:
            return False
        with session.lock:
            if session.state not in FINAL_STATES:
                session.state = "killed"
            session._log(f"session {reason}")
        session.queue.put(None)
        self.terminate(session, wait=False)
        return True

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
            if session.request_w is not None:
                session.request_w.write(json.dumps({"type": "shutdown"}) + "\n")
                session.request_w.flush()
                session.request_w.close()
        except (OSError, ValueError):
            pass
        with contextlib.suppress(subprocess.TimeoutExpired):
            proc.wait(timeout=8)  # spark.stop() and exit
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
        while not self._stop.wait(1.0):
            now = time.monotonic()
            with self.lock:
                sessions = list(self.sessions.values())
            for session in sessions:
                session.check_alive()
                if session.state in FINAL_STATES:
                    if session.ended_at and now - session.ended_at > self.retain_seconds:
                        with self.lock:
                            self.sessions.pop(session.id, None)
                elif session.idle_expired(now):
                    self.reaped.append(session.id)
                    self.delete(session.id, reason="reaped after its idle or heartbeat timeout")

    def stop(self) -> None:
        """Stop serving, delete every session and wait until all their processes are gone."""
        self._stop.set()
        self.httpd.shutdown()
        self.httpd.server_close()
        with self.lock:
            ids = list(self.sessions)
        for sid in ids:
            self.delete(sid, reason="stopped with the server")
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


def _page(items: List[Any], query: Dict[str, List[str]]) -> Tuple[int, List[Any]]:
    start = int(query.get("from", ["0"])[0])
    size = int(query.get("size", ["100"])[0])
    return start, items[start : start + size]


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
                raise BadRequest(f"the request body is not JSON: {exc}") from None

        def _route(self, method: str) -> None:
            url = urlparse(self.path)
            query = parse_qs(url.query)
            parts = [p for p in url.path.split("/") if p]
            try:
                self._dispatch(method, parts, query)
            except BadRequest as exc:
                self._send(HTTPStatus.BAD_REQUEST, {"msg": str(exc)})
            except (ValueError, KeyError) as exc:
                self._send(HTTPStatus.BAD_REQUEST, {"msg": f"bad request: {exc}"})

        def _session(self, raw: str) -> Optional[Session]:
            session = server.get(int(raw))
            if session is None:
                self._send(HTTPStatus.NOT_FOUND, {"msg": f"Session '{raw}' not found."})
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
                session.last_heartbeat = time.monotonic()
                self._send(200, session.view())
            elif n == 2 and method == "DELETE":
                if server.delete(session.id):
                    self._send(200, {"msg": "deleted"})
                else:
                    self._send(
                        HTTPStatus.NOT_FOUND, {"msg": f"Session {session.id} already stopped."}
                    )
            elif n == 3 and parts[2] == "state" and method == "GET":
                self._send(200, {"id": session.id, "state": session.state})
            elif n == 3 and parts[2] == "log" and method == "GET":
                lines = session.log_lines()
                start, page = _page(lines, query)
                self._send(200, {"id": session.id, "from": start, "total": len(lines), "log": page})
            elif n == 3 and parts[2] == "statements" and method == "GET":
                stmts = list(session.statements)
                if query.get("order", [""])[0] == "desc":
                    stmts.reverse()
                _, page = _page(stmts, query)
                self._send(
                    200, {"total_statements": len(stmts), "statements": [s.view() for s in page]}
                )
            elif n == 3 and parts[2] == "statements" and method == "POST":
                body = self._body()
                if not isinstance(body, dict) or not isinstance(body.get("code"), str):
                    raise BadRequest("a statement needs a JSON body with a string 'code'")
                if body.get("kind") not in (None, "pyspark"):
                    raise BadRequest(f"kind {body['kind']!r}: the test server runs pyspark only")
                stmt = server.add_statement(session, body["code"])
                self._send(
                    HTTPStatus.CREATED, stmt.view(), f"/sessions/{session.id}/statements/{stmt.id}"
                )
            elif n in (4, 5) and parts[2] == "statements":
                sid = int(parts[3])
                stmt = next((s for s in session.statements if s.id == sid), None)
                if stmt is None:
                    self._send(HTTPStatus.NOT_FOUND, {"msg": f"Statement {sid} not found."})
                elif n == 4 and method == "GET":
                    self._send(200, stmt.view())
                elif n == 5 and parts[4] == "cancel" and method == "POST":
                    session.cancel(stmt)
                    self._send(200, {"msg": "canceled"})
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
    parser.add_argument("--master", default="local[2]")
    parser.add_argument("--work-dir", default=None)
    args = parser.parse_args(argv)
    work = Path(args.work_dir or tempfile.mkdtemp(prefix="livy-test-server-"))
    server = LivyTestServer(args.python, work, args.port, args.idle_timeout, args.master).start()
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
