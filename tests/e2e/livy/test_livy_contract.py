"""Livy 0.8's rules, one cheap HTTP-level test each, against the test double.

Expected values come from Livy's source (apache/incubator-livy, tag v0.8.0-incubating; the file
and function are named in each test), not from the double. Rules that need no Spark run on a
server whose REPL starts none (``spark=False``): a session is idle in about a second, so each
test takes seconds. Timeouts (session timeout, heartbeat, retention, the lost-driver window) are
set small here; Livy's defaults are minutes.
"""

from __future__ import annotations

import os
import signal
import sys
import threading
import time
from typing import Any, Dict, Iterator

import psutil
import pytest
from livy_helpers import call, run_statement, wait_for
from livy_server import LivyTestServer

#: What SessionServlet.scala ``post("/")`` puts before an IllegalArgumentException's message.
REJECTED = "Rejected, Reason: "
SLEEP = "import time\ntime.sleep(%d)"


@pytest.fixture
def make_server(tmp_path) -> Iterator[Any]:
    """Servers without Spark, stopped (and checked for leftovers) after the test."""
    servers = []

    def make(**settings: Any) -> LivyTestServer:
        settings = {"check_interval": 0.2, **settings}
        index = len(servers)
        server = LivyTestServer(sys.executable, tmp_path / f"livy{index}", spark=False, **settings)
        servers.append(server.start())
        return server

    yield make
    for server in servers:
        server.stop()
        assert server.leftover_processes() == []


@pytest.fixture
def livy(make_server) -> LivyTestServer:
    return make_server()


def create(base: str, body: Dict[str, Any]):
    return call(f"{base}/sessions", "POST", body)


def idle(base: str, sid: int, timeout: float = 60) -> Dict[str, Any]:
    def ready():
        _, s = call(f"{base}/sessions/{sid}")
        assert s["state"] in ("not_started", "starting", "idle"), s
        return s if s["state"] == "idle" else None

    return wait_for(ready, timeout, f"session {sid} to be idle", interval=0.1)


def started(base: str, body: Dict[str, Any]) -> int:
    status, session = create(base, body)
    assert status == 201, session
    idle(base, session["id"])
    return session["id"]


def state(base: str, sid: int) -> str:
    return call(f"{base}/sessions/{sid}/state")[1]["state"]


# -- names: SessionManager.scala register/delete, Session.scala constructor ----------------------


def test_a_live_name_is_taken_until_its_session_has_stopped(livy):
    base = livy.url
    first = started(base, {"kind": "pyspark", "name": "ctr-lab"})
    status, body = create(base, {"kind": "pyspark", "name": "ctr-lab"})
    # register: the message names the Option (Some(...)) and the id nextId() already consumed.
    assert (status, body) == (
        400,
        {"msg": REJECTED + f"Duplicate session name: Some(ctr-lab) for session {first + 1}"},
    )
    # doWithSession: a name addresses the session too.
    assert call(f"{base}/sessions/ctr-lab")[1]["id"] == first
    # delete: DELETE answers once stop() finished; the id and the name are free at once.
    assert call(f"{base}/sessions/{first}", "DELETE") == (200, {"msg": "deleted"})
    assert call(f"{base}/sessions/{first}")[0] == 404
    status, again = create(base, {"kind": "pyspark", "name": "ctr-lab"})
    assert status == 201 and again["id"] == first + 2, again


def test_a_dead_session_keeps_its_name_until_it_is_deleted(make_server):
    server = make_server(lost_driver_seconds=0.5)
    base = server.url
    sid = started(base, {"name": "run-all"})
    os.killpg(server.get(sid).proc.pid, signal.SIGKILL)  # the driver's container is lost
    wait_for(lambda: state(base, sid) == "dead", 30, "the session to be dead")
    status, body = create(base, {"name": "run-all"})
    assert status == 400 and "Duplicate session name: Some(run-all)" in body["msg"], body
    assert call(f"{base}/sessions/{sid}", "DELETE")[0] == 200
    assert create(base, {"name": "run-all"})[0] == 201


def test_all_digit_names_are_rejected(livy):
    for name in ("123", "0", ""):
        status, body = create(livy.url, {"name": name})
        assert (status, body) == (400, {"msg": REJECTED + f"Invalid session name: {name}"})
    assert create(livy.url, {"name": "lab-1"})[0] == 201


# -- DELETE and the states: SessionServlet.scala delete, InteractiveSession.scala stopSession ----


def test_delete_answers_when_the_session_has_stopped(livy):
    base = livy.url
    sid = started(base, {"name": "to-delete"})
    pid = livy.get(sid).proc.pid
    seen = []
    polling = threading.Event()

    def poll():
        while not polling.is_set():
            status, view = call(f"{base}/sessions/{sid}/state")
            seen.append(view["state"] if status == 200 else status)
            time.sleep(0.005)

    watcher = threading.Thread(target=poll, daemon=True)
    watcher.start()
    time.sleep(0.1)
    assert call(f"{base}/sessions/{sid}", "DELETE") == (200, {"msg": "deleted"})
    assert not psutil.pid_exists(pid) or psutil.Process(pid).status() == psutil.STATUS_ZOMBIE
    assert call(f"{base}/sessions/{sid}")[0] == 404
    polling.set()
    watcher.join()
    # idle until the DELETE, then only shutting_down (stopSession) until it is gone (404);
    # the watcher may stop before it polls once more after the session is gone.
    after = seen[seen.index("idle") :]
    assert set(after) <= {"idle", "shutting_down", 404}, after
    if "shutting_down" in after:
        assert "idle" not in after[after.index("shutting_down") :], after


def test_states_a_session_goes_through(livy):
    base = livy.url
    status, created = create(base, {"name": "states"})
    assert status == 201 and created["state"] in ("not_started", "starting")
    sid = created["id"]
    idle(base, sid)
    _, stmt = call(
        f"{base}/sessions/{sid}/statements", "POST", {"code": "import time\ntime.sleep(1)"}
    )
    assert stmt["state"] in ("waiting", "running")
    wait_for(lambda: state(base, sid) == "busy", 10, "busy")
    wait_for(lambda: state(base, sid) == "idle", 10, "idle again")
    done = call(f"{base}/sessions/{sid}/statements/{stmt['id']}")[1]
    assert done["state"] == "available" and done["output"]["status"] == "ok"
    # YARN kills the application: stateChanged(KILLED) -> killed, still listed.
    livy.kill_application(sid)
    assert state(base, sid) == "killed"
    # ensureRunning: statements on a finished session are an IllegalStateException (500).
    status, body = call(f"{base}/sessions/{sid}/statements", "POST", {"code": "1"})
    # JsonServlet.scala's catch-all answers ``e.toString`` as a bare JSON string.
    assert (status, body) == (500, "java.lang.IllegalStateException: Session is in state killed")
    # ensureActive: reading them is an IllegalArgumentException (400).
    assert call(f"{base}/sessions/{sid}/statements/0") == (
        400,
        {"msg": "requirement failed: Session isn't active."},
    )


# -- outputs: fake_shell.py magic_matplot/magic_json/main ----------------------------------------


def test_matplot_and_json_of_a_missing_variable_are_ok_data(livy):
    """fake_shell.py ``magic_matplot``/``magic_json`` return their error reply as data; the
    variable's name is what follows the first space, so a second space is part of it."""
    base = livy.url
    sid = started(base, {"name": "magics"})
    run_statement(base, sid, "here = {'a': 1}")
    for magic, name in (("matplot", "nothing_here"), ("json", "nothing_here"), ("json", " here")):
        out = run_statement(base, sid, f"%{magic} {name}", timeout=10)["output"]
        assert out["status"] == "ok", out
        assert out["data"] == {
            "msg_type": "execute_reply",
            "content": {
                "status": "error",
                "ename": "KeyError",
                "evalue": repr(name),
                "traceback": [f"KeyError: {name!r}\n"],
            },
        }
    unnamed = run_statement(base, sid, "%", timeout=10)["output"]
    assert (unnamed["ename"], unnamed["evalue"]) == ("UnknownMagic", "magic command not specified")
    assert state(base, sid) == "idle"


TABLE = "application/vnd.livy.table.v1+json"


def test_table_types_each_column_by_its_cells_as_fake_shell_does(livy):
    """fake_shell.py ``magic_table`` and ``magic_table_convert``: each column typed by its first
    cell (exact Python types; a ``NULL_TYPE`` column takes the next type), dicts by sorted key,
    lists by position, Rows as dicts, a value that is not a list one row. A column whose cells
    differ, or an array of mixed items, ends the REPL."""
    base = livy.url
    sid = started(base, {"name": "tables"})
    values = run_statement(
        base,
        sid,
        "import datetime, decimal\nfrom pyspark.sql import Row\n"
        "dicts = [{'n': 1, 'x': 0.5, 's': 'a', 'b': None},\n"
        "         {'n': 2, 'x': 1.5, 's': 'b', 'b': True}]\n"
        "rows = [Row(d=datetime.date(2026, 12, 7), m=decimal.Decimal('1.50'), l=[1, 2], o={3})]\n"
        "one = 3\nmixed = [(1, 'a'), ('b', 2)]",
    )["output"]
    assert values["status"] == "ok", values
    typed = {
        "dicts": {
            "headers": [
                {"name": "b", "type": "BOOLEAN_TYPE"},
                {"name": "n", "type": "INT_TYPE"},
                {"name": "s", "type": "STRING_TYPE"},
                {"name": "x", "type": "DOUBLE_TYPE"},
            ],
            "data": [[None, 1, "a", 0.5], [True, 2, "b", 1.5]],
        },
        "rows": {
            "headers": [
                {"name": "d", "type": "DATE_TYPE"},
                {"name": "l", "type": "ARRAY_TYPE"},
                {"name": "m", "type": "DECIMAL_TYPE"},
                {"name": "o", "type": "STRING_TYPE"},
            ],
            "data": [["2026-12-07", [1, 2], "1.50", "{3}"]],
        },
        "one": {"headers": [{"name": "0", "type": "INT_TYPE"}], "data": [[3]]},
    }
    for name, table in typed.items():
        out = run_statement(base, sid, f"%table {name}", timeout=10)["output"]
        assert out == {
            "status": "ok",
            "execution_count": out["execution_count"],
            "data": {TABLE: table},
        }
    # A column whose cells differ: ``execute_reply_error(Exception, 'table rows have different
    # types', None)`` gives ``traceback.format_exception`` a str for the exception, which lacks
    # the attributes an exception has (``__cause__``, ``__suppress_context__``): that
    # AttributeError is caught nowhere, and the REPL ends.
    died = run_statement(base, sid, "%table mixed", timeout=20)["output"]
    last = died["evalue"].split("\n")[-1]
    assert last.startswith("AttributeError: 'str' object has no attribute '__"), died
    assert state(base, sid) == "error"
    # An array of mixed items: ``magic_table_convert_seq``'s ValueError ends the REPL too.
    sid = started(base, {"name": "tables-2"})
    run_statement(base, sid, "bad = [{'a': [1, 'x']}]")
    died = run_statement(base, sid, "%table bad", timeout=20)["output"]
    assert died["evalue"].endswith("\nValueError: value has inconsistent types"), died
    assert state(base, sid) == "error"


TRACEBACK = "Traceback (most recent call last):"


def test_json_of_a_value_json_cannot_encode_kills_the_repl(make_server):
    server = make_server(idle_timeout=1, retain_seconds=1)
    base = server.url
    sid = started(base, {"name": "json-set"})
    assert run_statement(base, sid, "1 / 0", timeout=10)["output"]["status"] == "error"
    died = run_statement(base, sid, "s = {1, 2}\n%json s", timeout=20)
    out = died["output"]
    # PythonInterpreter.scala: no reply line -> ExecuteAborted(takeErrorLines()); Session.scala
    # -> error state. The lines are every one the REPL wrote to its stderr (ProcessInterpreter
    # .scala): fake_shell.py ``main``'s two lines of what its start printed (nothing here), its
    # log of the failed statement before (``execute_reply_error``, basicConfig's format), then
    # the traceback of the TypeError that ended the REPL.
    assert died["state"] == "available" and out["status"] == "error", died
    assert (out["ename"], out["traceback"]) == ("Error", [])
    lines = out["evalue"].split("\n")
    expected = ["Interpreter died:", "", "", "ERROR:fake_shell:execute_reply", TRACEBACK]
    assert lines[:5] == expected, lines
    assert "ZeroDivisionError: division by zero" in lines
    assert lines.count(TRACEBACK) == 3  # the statement's, its ExecutionError's, the REPL's end
    assert lines[-1] == "TypeError: Object of type set is not JSON serializable", lines
    assert state(base, sid) == "error"
    # The dead interpreter answers every later statement the same way, with no new lines.
    again = run_statement(base, sid, "1 + 1", timeout=10)["output"]
    assert (again["status"], again["evalue"]) == ("error", "Interpreter died:\n")
    # An error session never expires (Error() is rebuilt, time = now, on every read).
    time.sleep(2.5)
    assert state(base, sid) == "error"
    assert create(base, {"name": "json-set"})[0] == 400  # and keeps its name


def test_json_of_a_value_that_refers_to_itself_is_an_internal_error(livy):
    """fake_shell.py ``main``: a reply ``json.dumps`` refuses with a ValueError becomes an
    ``inspect_reply``; PythonInterpreter.scala ``sendExecuteRequest`` asserts ``execute_reply``
    and repl Session.scala ``executeCode`` reports the AssertionError as an internal error."""
    sid = started(livy.url, {"name": "json-loop"})
    out = run_statement(livy.url, sid, "d = {}\nd['d'] = d\n%json d", timeout=20)["output"]
    assert (out["status"], out["ename"], out["evalue"], out["traceback"]) == (
        "error",
        "Internal Error: java.lang.AssertionError",
        "assertion failed",
        [],
    )
    assert state(livy.url, sid) == "idle"


# -- the create request: CreateInteractiveRequest.scala + JsonServlet.scala, Session.scala -------


#: ``new IllegalArgumentException(cause)`` in Session.scala ``resolveURIs``: the cause's toString.
URI_SYNTAX = REJECTED + "java.net.URISyntaxException: Illegal character in "
#: ``request.executorCores.map(_.toString)`` unboxing what Jackson stored in an ``Option[Int]``.
NOT_AN_INTEGER = (
    "java.lang.ClassCastException: class java.lang.{0} cannot be cast to class java.lang.Integer "
    "(java.lang.{0} and java.lang.Integer are in module java.base of loader 'bootstrap')"
)


@pytest.mark.parametrize(
    "body, answer",
    [
        # JsonServlet.scala's ``error``: Jackson's message alone, a bare JSON string.
        ({"driverMemroy": "1g"}, 'Unrecognized field "driverMemroy"'),
        ({"heartbeatTimeoutInSecond": "two"}, "not a valid `int` value"),
        ({"heartbeatTimeoutInSecond": True}, "not a valid `int` value"),
        ({"pyFiles": "s3://b/ctr_lab.zip"}, "scala.collection.immutable.List"),
    ],
)
def test_bodies_jackson_cannot_read(livy, body, answer):
    status, got = create(livy.url, body)
    assert status == 400 and isinstance(got, str) and answer in got, got
    assert call(f"{livy.url}/sessions")[1]["sessions"] == []


@pytest.mark.parametrize(
    "body, java_class",
    [
        ({"executorCores": "2"}, "String"),
        ({"numExecutors": 1.5}, "Double"),
        ({"driverCores": True}, "Boolean"),
    ],
)
def test_a_resource_count_that_is_not_a_json_integer_is_a_500(livy, body, java_class):
    """CreateInteractiveRequest.scala's ``Option[Int]`` fields, erased to ``Option[Object]``:
    Jackson keeps ``"2"`` as a String, and InteractiveSession.scala ``create`` fails unboxing it
    (a ClassCastException, not an IllegalArgumentException: JsonServlet.scala's catch-all)."""
    assert create(livy.url, body) == (500, NOT_AN_INTEGER.format(java_class))


@pytest.mark.parametrize(
    "body, fragment",
    [
        (
            {"conf": {"spark.submit.deployMode": "client"}},
            REJECTED + "Blacklisted configuration values in session config: "
            "spark.submit.deployMode",
        ),
        (
            {"conf": {"spark.master": "local[*]"}},
            REJECTED + "Blacklisted configuration values in session config: spark.master",
        ),
        (
            {"pyFiles": ["ctr_lab.zip"]},
            REJECTED + "requirement failed: Path 'ctr_lab.zip' is not absolute.",
        ),
        (
            {"pyFiles": ["file:///etc/passwd"]},
            REJECTED + "requirement failed: Local path /etc/passwd cannot be added to "
            "user sessions.",
        ),
        (
            {"conf": {"spark.submit.pyFiles": "file:///etc/passwd"}},
            "Local path /etc/passwd cannot be added",
        ),
        # LivyConf.scala ``HARDCODED_SPARK_FILE_LISTS``: YARN's own lists are checked too.
        (
            {"conf": {"spark.yarn.dist.files": "file:///etc/passwd"}},
            "Local path /etc/passwd cannot be added",
        ),
        ({"archives": ["/my files/env.tar.gz"]}, URI_SYNTAX + "path at index 3"),
        ({"pyFiles": ["s3://b/lab.zip#a b"]}, URI_SYNTAX + "fragment at index 16"),
        ({"ttl": "ten minutes"}, REJECTED),
    ],
)
def test_requests_livy_rejects(livy, body, fragment):
    status, answer = create(livy.url, body)
    assert status == 400 and fragment in answer["msg"], answer
    assert call(f"{livy.url}/sessions")[1]["sessions"] == []


def test_file_locations_as_on_emr(make_server, tmp_path):
    allowed = tmp_path / "allowed"
    allowed.mkdir()
    (allowed / "lib.py").write_text("WHERE = 'whitelisted'\n")
    s3_object = tmp_path / "s3" / "bucket" / "lab" / "extra.py"  # s3://bucket/lab/extra.py
    s3_object.parent.mkdir(parents=True)
    s3_object.write_text("WHERE = 's3'\n")
    server = make_server(local_dir_whitelist=(allowed,), s3_root=tmp_path / "s3")
    base = server.url
    # s3:// is accepted (EMRFS fetches it); a whitelisted file:// too; an empty entry is
    # dropped (Session.scala ``resolveURIs``); the Int heartbeat takes a number, truncated
    # (Jackson's ``ACCEPT_FLOAT_AS_INT``).
    ok = {
        "name": "files",
        "pyFiles": [(allowed / "lib.py").as_uri(), "", "s3://bucket/lab/extra.py"],
        "executorCores": 2,
        "heartbeatTimeoutInSecond": 90.7,
    }
    status, created = create(base, ok)
    assert status == 201, created
    assert created["pyFiles"] == ok["pyFiles"] and created["executorCores"] == 2
    assert created["heartbeatTimeoutInSecond"] == 90
    sid = created["id"]
    idle(base, sid)
    # A path with no scheme names the default FS (HDFS on EMR), not this machine: the file is
    # not there, so the application fails to start and the session is dead.
    status, created = create(base, {"name": "hdfs", "pyFiles": [str(allowed / "lib.py")]})
    assert status == 201, created
    wait_for(lambda: state(base, created["id"]) == "dead", 30, "the hdfs session to die")
    log = "\n".join(call(f"{base}/sessions/{created['id']}/log")[1]["log"])
    assert "hdfs://" in log and "does not exist" in log, log


def test_cluster_defaults_fill_only_what_livy_leaves_unset(make_server, tmp_path):
    """rsc/.../ContextLauncher.java ``writeConfToFile``: spark-defaults.conf fills the keys a
    session's settings lack, and is not checked as a request's lists are (Session.scala
    ``prepareConf`` reads the request only). InteractiveSession.scala ``prepareBuilderProp``
    always sets spark.submit.pyFiles and spark.jars, so a cluster default for either never
    reaches a session: here one that names a missing file does not stop the session."""
    local = tmp_path / "notes.txt"
    local.write_text("kept\n")
    server = make_server(
        spark_defaults={
            "spark.submit.pyFiles": "s3://no-such-bucket/lab.zip",
            "spark.jars": "s3://no-such-bucket/lab.jar",
            "spark.files": local.as_uri(),  # a request could not name it (no whitelist)
        }
    )
    sid = started(server.url, {"name": "defaults"})
    assert state(server.url, sid) == "idle"


# -- time: SessionHeartbeat.scala, SessionManager.scala collectGarbage ----------------------------


def test_any_session_call_refreshes_the_heartbeat(make_server):
    server = make_server()
    base = server.url
    sid = started(base, {"name": "beat", "heartbeatTimeoutInSecond": 2})
    # 4 s of calls under /sessions/{id}/ other than GET /sessions/{id}: the session lives.
    end = time.monotonic() + 4
    while time.monotonic() < end:
        assert call(f"{base}/sessions/{sid}/statements")[0] == 200
        time.sleep(0.5)
    assert state(base, sid) == "idle"
    # GET /sessions does not count: without other calls it is deleted after 2 s.
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and sid in [
        s["id"] for s in call(f"{base}/sessions")[1]["sessions"]
    ]:
        time.sleep(0.2)
    assert sid not in [s["id"] for s in call(f"{base}/sessions")[1]["sessions"]]
    assert server.reaped == [sid]


def test_inactive_sessions_are_collected_busy_ones_too(make_server):
    server = make_server(idle_timeout=1.5)
    base = server.url
    idle_sid = started(base, {"name": "idle"})
    busy_sid = started(base, {"name": "busy"})
    call(f"{base}/sessions/{busy_sid}/statements", "POST", {"code": SLEEP % 60})
    kept = started(base, {"name": "ttl", "ttl": "60s"})  # a session's ttl overrides the timeout
    wait_for(lambda: state(base, busy_sid) == "busy", 10, "busy")
    wait_for(lambda: call(f"{base}/sessions/{idle_sid}")[0] == 404, 10, "the idle one collected")
    wait_for(lambda: call(f"{base}/sessions/{busy_sid}")[0] == 404, 10, "the busy one collected")
    assert state(base, kept) == "idle"


def test_finished_sessions_go_after_the_retain_time_and_skip_busy_keeps_busy_ones(make_server):
    """SessionManager.scala ``collectGarbage``: a finished session (here killed) stays listed
    for ``livy.server.session.state-retain.sec``, then goes. With ``timeout-check.skip-busy`` a
    busy session stays however long it has been inactive, and goes once idle."""
    server = make_server(idle_timeout=1, retain_seconds=2, skip_busy=True)
    base = server.url
    killed = started(base, {"name": "killed"})
    busy = started(base, {"name": "busy"})
    call(f"{base}/sessions/{busy}/statements", "POST", {"code": SLEEP % 6})
    wait_for(lambda: state(base, busy) == "busy", 10, "busy")
    server.kill_application(killed)
    time.sleep(1)
    assert state(base, killed) == "killed"
    wait_for(lambda: call(f"{base}/sessions/{killed}")[0] == 404, 10, "the killed one collected")
    assert state(base, busy) == "busy"  # inactive for over 2 s, longer than the timeout
    wait_for(lambda: call(f"{base}/sessions/{busy}")[0] == 404, 20, "collected once idle")


# -- statements: ExecuteRequest, InteractiveSessionServlet.scala get("/:id/statements") ----------


def test_statement_requests_and_lists_as_livy_reads_them(livy):
    """A statement body is an ExecuteRequest (``code``, ``kind``) read by Jackson: any other field
    is a 400. The list holds every statement unless ``size`` says otherwise; ``order=desc``, in
    any case, reverses it."""
    base = livy.url
    sid = started(base, {"name": "statements"})
    url = f"{base}/sessions/{sid}/statements"
    status, body = call(url, "POST", {"code": "1", "cod": "2"})
    assert status == 400 and 'Unrecognized field "cod"' in body, body
    ids = [call(url, "POST", {"code": str(i)})[1]["id"] for i in range(101)]
    wait_for(lambda: call(f"{url}/{ids[-1]}")[1]["state"] == "available", 30, "the last one")
    listed = call(url)[1]
    assert listed["total_statements"] == len(listed["statements"]) == 101
    newest = call(f"{url}?order=DESC&size=2")[1]["statements"]
    assert [s["code"] for s in newest] == ["100", "99"]


# -- cancel: repl/.../Session.scala cancel ---------------------------------------------------------


def test_a_cancel_does_not_stop_python_code(make_server):
    """Session.scala ``cancel`` cancels the statement's Spark job group, nothing else: code that
    starts no job runs on. After ``livy.rsc.job-cancel.timeout`` the statement is ``cancelled``
    anyway while the session stays ``busy``; when the code ends its output is kept, the session
    is idle and takes the next statement. (sparkmagic waits for idle after a cancel, so on EMR
    an interrupted cell of plain Python ends in "Error while cancelling".)"""
    server = make_server(job_cancel_timeout=1)
    base = server.url
    sid = started(base, {"name": "cancel python"})
    _, stmt = call(f"{base}/sessions/{sid}/statements", "POST", {"code": SLEEP % 4 + "\n'slept'"})
    url = f"{base}/sessions/{sid}/statements/{stmt['id']}"
    wait_for(lambda: call(url)[1]["state"] == "running", 10, "running")
    begun = time.monotonic()
    assert call(f"{url}/cancel", "POST", {}) == (200, {"msg": "canceled"})
    assert call(url)[1]["state"] == "cancelling"
    wait_for(lambda: call(url)[1]["state"] == "cancelled", 5, "the cancel's timeout")
    assert state(base, sid) == "busy"
    wait_for(lambda: state(base, sid) == "idle", 15, "the code's end")
    assert time.monotonic() - begun > 3  # the sleep was not cut short
    done = call(url)[1]
    assert (done["state"], done["output"]["data"]) == ("cancelled", {"text/plain": "'slept'"})
    assert run_statement(base, sid, "6 * 7")["output"]["data"] == {"text/plain": "42"}


# -- a lost driver: InteractiveSession.scala via RSCClient, then stateChanged --------------------


def test_a_lost_driver_answers_500_then_dead_then_400(make_server):
    server = make_server(lost_driver_seconds=2)
    base = server.url
    sid = started(base, {"name": "lost"})
    _, stmt = call(
        f"{base}/sessions/{sid}/statements", "POST", {"code": "import time\ntime.sleep(60)"}
    )
    wait_for(lambda: state(base, sid) == "busy", 10, "busy")
    os.killpg(server.get(sid).proc.pid, signal.SIGKILL)
    url = f"{base}/sessions/{sid}/statements/{stmt['id']}"
    first = wait_for(lambda: call(url)[0] != 200 and call(url), 10, "the first failed GET")
    assert first == (500, "java.lang.IllegalStateException: RPC channel is closed.")
    assert state(base, sid) == "busy"  # the last state the REPL reported
    wait_for(lambda: state(base, sid) == "dead", 10, "YARN's verdict")
    assert call(url) == (400, {"msg": "requirement failed: Session isn't active."})
