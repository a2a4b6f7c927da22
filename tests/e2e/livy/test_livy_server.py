"""The Livy test server over plain HTTP: the contract sparkmagic relies on, and process hygiene.

Expected values come from Livy 0.8's documented behaviour (REST API and ``fake_shell.py``, see
``shared/reference/sparkmagic_livy.md`` §2) and from Python itself, not from the server.
"""

from __future__ import annotations

import base64
import ipaddress

import psutil
import pytest
from livy_helpers import REPO, call, run_statement, start_session, wait_for
from livy_server import HOST, LivyTestServer

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
BODY = {
    "kind": "pyspark",
    "name": "api-check",
    "conf": {"spark.sql.shuffle.partitions": "3", "spark.yarn.appMasterEnv.GREETING": "hello"},
    "driverMemory": "700m",
    "executorCores": 1,
}


@pytest.fixture(scope="module")
def session(livy_server):
    """One session (no pyFiles) for the module; deleting it must end all its processes."""
    base = livy_server.url
    status, created = call(f"{base}/sessions", "POST", BODY)
    assert status == 201 and created["state"] == "starting", created
    info = start_session_from(base, created["id"])
    pids = [p.pid for p in livy_server.leftover_processes()]
    yield base, info["id"]
    assert call(f"{base}/sessions/{info['id']}", "DELETE") == (200, {"msg": "deleted"})
    assert call(f"{base}/sessions/{info['id']}")[0] == 404
    wait_for(lambda: not [p for p in pids if psutil.pid_exists(p)], 60, "the session's processes")


def start_session_from(base: str, sid: int):
    def ready():
        _, s = call(f"{base}/sessions/{sid}")
        assert s["state"] in ("starting", "idle"), s
        return s if s["state"] == "idle" else None

    return wait_for(ready, 300, f"session {sid} to start")


def ok_text(base, sid, code) -> str:
    stmt = run_statement(base, sid, code)
    assert stmt["state"] == "available" and stmt["output"]["status"] == "ok", stmt
    return stmt["output"]["data"]["text/plain"]


def test_session_view_and_settings(session, livy_server):
    base, sid = session
    _, view = call(f"{base}/sessions/{sid}")
    assert view["kind"] == "pyspark" and view["name"] == "api-check"
    assert isinstance(view["log"], list) and view["appId"].startswith("local-")
    assert call(f"{base}/sessions/{sid}/state")[1] == {"id": sid, "state": "idle"}
    listed = call(f"{base}/sessions")[1]
    assert sid in [s["id"] for s in listed["sessions"]] and listed["total"] >= 1
    # conf, name, memory and cores from the POST body reach the session's Spark config.
    assert ok_text(
        base,
        sid,
        "(spark.conf.get('spark.sql.shuffle.partitions'), sc.appName,"
        " sc.getConf().get('spark.driver.memory'), sc.getConf().get('spark.executor.cores'))",
    ) == repr(("3", "api-check", "700m", "1"))
    # spark.yarn.appMasterEnv.* sets the driver's environment, as YARN does on EMR.
    assert ok_text(base, sid, "import os\nos.environ['GREETING']") == "'hello'"
    assert ok_text(
        base, sid, "type(spark).__name__, type(sc).__name__, type(sqlContext).__name__"
    ) == repr(("SparkSession", "SparkContext", "SQLContext"))
    # The REPL is not in the repository and runs the remote Python.
    cwd, exe = ok_text(
        base, sid, "import os, sys\nprint(os.getcwd())\nprint(sys.executable)"
    ).split("\n")
    assert not cwd.startswith(str(REPO)) and exe == str(livy_server.python)
    log = call(f"{base}/sessions/{sid}/log?from=0&size=1000")[1]
    assert log["id"] == sid and isinstance(log["log"], list)


def test_statements_behave_like_livys_python_repl(session, livy_server):
    base, sid = session
    repl = livy_server.get(sid)
    assert repl is not None
    with repl.stderr_lock:
        mark = len(repl.stderr_lines)
    # Only the last statement echoes; stdout and stderr come back, right-stripped.
    assert ok_text(base, sid, "1\n2") == "2"
    assert ok_text(
        base, sid, "x = 6\nprint('out')\nimport sys\nprint('err', file=sys.stderr)\nx * 7"
    ) == ("out\n42\nerr")
    assert ok_text(base, sid, "y = 1") == ""
    assert ok_text(base, sid, "for i in range(2):\n    print(i)\n\n") == "0\n1"
    assert ok_text(base, sid, "spark.range(10).count()") == "10"
    # User exceptions: state available, output status error, the <stdin> frames only.
    stmt = run_statement(base, sid, "def f():\n    return 1 / 0\nf()")
    assert stmt["state"] == "available"
    out = stmt["output"]
    assert (out["status"], out["ename"], out["evalue"]) == (
        "error",
        "ZeroDivisionError",
        "division by zero",
    )
    # fake_shell.py ``execute_reply_error``: the frames below the statement's own only.
    assert out["traceback"] == [
        "Traceback (most recent call last):\n",
        '  File "<stdin>", line 2, in f\n',
        "ZeroDivisionError: division by zero\n",
    ]
    syntax = run_statement(base, sid, "def (")["output"]
    assert syntax["status"] == "error" and syntax["ename"] == "SyntaxError"
    # fake_shell.py ``execute_request`` empties stdout and stderr (``clearOutputs``) only after a
    # statement that succeeds: what a failed one printed comes before the next one's output.
    failed = run_statement(base, sid, "print('before')\n1 / 0")["output"]
    assert failed["status"] == "error" and "before" not in str(failed)
    assert ok_text(base, sid, "print('after')") == "before\nafter"
    # Magics: %json, %matplot, and an unknown one.
    data = run_statement(base, sid, "d = {'a': [1, 2]}\n%json d")["output"]["data"]
    assert data == {"application/json": {"a": [1, 2]}}
    plot = "import matplotlib.pyplot as plt\nfig = plt.figure()\nplt.plot([1, 3, 2])\n%matplot plt"
    data = run_statement(base, sid, plot)["output"]["data"]
    assert base64.b64decode(data["image/png"]).startswith(PNG_MAGIC)
    unknown = run_statement(base, sid, "%nosuch x")["output"]
    assert (unknown["ename"], unknown["evalue"], unknown["traceback"]) == (
        "UnknownMagic",
        "unknown magic command 'nosuch'",
        ["UnknownMagic: unknown magic command 'nosuch'\n"],
    )
    listed = call(f"{base}/sessions/{sid}/statements")[1]
    codes = [s["code"] for s in listed["statements"]]
    assert "1\n2" in codes and listed["total_statements"] == len(codes)
    # The driver JVM's stderr is its log's, not the statement's output or the REPL's stderr.
    assert ok_text(base, sid, "sc._jvm.java.lang.System.err.println('from the JVM')") == ""
    wait_for(lambda: "from the JVM" in repl.log_lines(), 10, "the JVM's line in the log")
    # What Livy keeps for the error of a REPL that dies (ProcessInterpreter.scala ``stderrLines``):
    # fake_shell.py's log of each failed statement (``execute_reply_error``), here four.
    with repl.stderr_lock:
        kept = repl.stderr_lines[mark:]
    assert kept.count("ERROR:fake_shell:execute_reply") == 4, kept
    assert "from the JVM" not in kept


def test_busy_while_running_and_cancel(session):
    """repl/.../Session.scala ``cancel``: a waiting statement is cancelled at once; a running
    one's Spark job group is cancelled, which ends its code with the job's error."""
    base, sid = session
    job = "import time\nsc.parallelize(range(2), 2).map(lambda x: time.sleep(120) or x).count()"
    _, running = call(f"{base}/sessions/{sid}/statements", "POST", {"code": job})
    _, queued = call(f"{base}/sessions/{sid}/statements", "POST", {"code": "'never'"})
    wait_for(lambda: call(f"{base}/sessions/{sid}/state")[1]["state"] == "busy", 30, "busy")
    assert call(f"{base}/sessions/{sid}/statements/{queued['id']}")[1]["state"] == "waiting"
    assert call(f"{base}/sessions/{sid}/statements/{queued['id']}/cancel", "POST", {})[0] == 200
    assert call(f"{base}/sessions/{sid}/statements/{running['id']}/cancel", "POST", {})[0] == 200

    def final(stmt_id):
        _, s = call(f"{base}/sessions/{sid}/statements/{stmt_id}")
        return s if s["state"] in ("available", "cancelled") else None

    assert wait_for(lambda: final(queued["id"]), 60, "queued cancel")["state"] == "cancelled"
    cancelled = wait_for(lambda: final(running["id"]), 60, "running cancel")
    assert cancelled["state"] == "cancelled"
    assert "cancelled part of cancelled job group" in cancelled["output"]["evalue"], cancelled
    wait_for(lambda: call(f"{base}/sessions/{sid}/state")[1]["state"] == "idle", 30, "idle")
    # The REPL survived the interrupt and still runs Spark.
    assert ok_text(base, sid, "spark.range(3).count()") == "3"


def test_import_ctr_lab_needs_the_zip(session, livy_zip):
    base, sid = session
    missing = run_statement(base, sid, "import ctr_lab")["output"]
    assert (missing["ename"], missing["evalue"]) == (
        "ModuleNotFoundError",
        "No module named 'ctr_lab'",
    )
    ok_text(base, sid, f"sc.addPyFile({str(livy_zip)!r})")
    where = ok_text(base, sid, "import ctr_lab\nctr_lab.__file__")
    assert f"{livy_zip.name}/ctr_lab/__init__.py" in where
    remote = ok_text(
        base,
        sid,
        "sc.parallelize(range(4), 2)"
        ".map(lambda _: __import__('ctr_lab').__version__).distinct().collect()",
    )
    import ctr_lab

    assert remote == repr([ctr_lab.__version__])


def _ipv4(ip: str) -> str:
    addr = ipaddress.ip_address(ip)
    mapped = getattr(addr, "ipv4_mapped", None)
    return str(mapped or addr)


def test_listens_on_loopback_only(session, livy_server):
    own = [
        c.laddr
        for c in psutil.Process().net_connections(kind="inet")
        if c.status == psutil.CONN_LISTEN and c.laddr.port == livy_server.port
    ]
    assert [a.ip for a in own] == [HOST]
    # The REPL, the JVM (py4j gateway, block manager, driver RPC) and the Python workers.
    procs = livy_server.leftover_processes()
    assert {p.name() for p in procs} >= {"java"}, procs
    listening = [
        c.laddr.ip
        for p in procs
        for c in p.net_connections(kind="inet")
        if c.status == psutil.CONN_LISTEN
    ]
    assert listening and {_ipv4(ip) for ip in listening} == {HOST}, listening


def test_unknown_ids_are_404(livy_server):
    base = livy_server.url
    assert call(f"{base}/sessions/999")[0] == 404
    assert call(f"{base}/sessions/999/statements", "POST", {"code": "1"})[0] == 404
    assert call(f"{base}/sessions/999", "DELETE")[0] == 404
    status, body = call(f"{base}/sessions", "POST", {"kind": "spark"})
    assert status == 400 and "pyspark" in body["msg"]


def test_reaper_and_stop_leave_no_process(remote_python, livy_zip, driver_java_options, tmp_path):
    """Idle sessions are reaped; stop() ends busy and leaked sessions; nothing survives."""
    server = LivyTestServer(
        remote_python,
        tmp_path / "work",
        local_dir_whitelist=(livy_zip.parent,),
        driver_java_options=driver_java_options,
    ).start()
    try:
        base = server.url
        zip_uri = livy_zip.resolve().as_uri()
        shipped = start_session(base, {"pyFiles": [zip_uri], "name": "shipped"})
        sid = shipped["id"]
        assert shipped["pyFiles"] == [zip_uri]
        # pyFiles in the POST body: ctr_lab imports at once, on the driver and the executors.
        assert ok_text(base, sid, "import ctr_lab\nctr_lab.__name__") == "'ctr_lab'"
        assert (
            ok_text(
                base,
                sid,
                "sc.parallelize([1], 1).map(lambda _: __import__('ctr_lab').__name__).first()",
            )
            == "'ctr_lab'"
        )
        first_pids = [p.pid for p in server.leftover_processes()]
        assert first_pids
        # Left idle, it is reaped: gone from the API, its processes ended. (The timeout is cut
        # only now: Livy's garbage collector also deletes a session still starting after it.)
        server.idle_timeout = 6
        wait_for(lambda: call(f"{base}/sessions/{sid}")[0] == 404, 60, "the idle session reaped")
        assert server.reaped == [sid]
        wait_for(lambda: not any(psutil.pid_exists(p) for p in first_pids), 60, "reaped processes")

        # A busy session nobody deletes (nbval hard-kills kernels): stop() ends it.
        server.idle_timeout = 3600
        busy = start_session(base, {"name": "busy"})
        call(
            f"{base}/sessions/{busy['id']}/statements",
            "POST",
            {"code": "import time\ntime.sleep(600)"},
        )
        wait_for(
            lambda: call(f"{base}/sessions/{busy['id']}/state")[1]["state"] == "busy", 30, "busy"
        )
        pids = [p.pid for p in server.leftover_processes()]
        names = {psutil.Process(p).name() for p in pids}
        assert {"java", "python"} <= names, names
    finally:
        server.stop()
    assert server.leftover_processes() == []
    assert not any(psutil.pid_exists(p) for p in pids), [p for p in pids if psutil.pid_exists(p)]


def test_duration_strings():
    """ClientConf.java ``getTimeAsMs``: trimmed, any case, milliseconds without a suffix."""
    from livy_server import BadRequest, parse_duration

    assert [parse_duration(t) for t in ("90s", " 10M ", "2h", "1500", "2000000us")] == [
        90,
        600,
        7200,
        1.5,
        2,
    ]
    with pytest.raises(BadRequest, match="Invalid time string: soon"):
        parse_duration("soon")
    with pytest.raises(BadRequest, match="Invalid time string: 10 m"):
        parse_duration("10 m")
    with pytest.raises(BadRequest, match='Invalid suffix: "w"'):
        parse_duration("3w")
