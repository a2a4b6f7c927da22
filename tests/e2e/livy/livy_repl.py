"""One test-server session's Python side: a PySpark REPL in the manner of Livy's ``fake_shell.py``.

Started by :mod:`livy_server` with the remote Python (one that lacks ``ctr_lab``) as::

    python livy_repl.py REQUEST_FD REPLY_FD SETTINGS_JSON

It builds a SparkSession from the settings (``master``, ``conf``, ``pyFiles``, ``name``), defines
``spark``, ``sc`` and ``sqlContext``, then answers each request on ``REPLY_FD`` with two JSON
lines: ``started`` as its code begins, then the reply. A ``cancel`` request, read by a thread of
its own while a statement runs, cancels the Spark jobs of that statement's job group.
File descriptor 1 is not the protocol channel: the JVM and the Python workers write there, and
the server points it at the session's log file. File descriptor 2 is the REPL's own stderr, which
the server keeps apart, as Livy's ``ProcessInterpreter.scala`` keeps the stderr lines of
``fake_shell.py``'s process for the error of a statement the REPL dies under; the JVM, which
here is the REPL's child (on Livy the REPL's parent), writes its stderr to fd 1 as well.

Execution follows Livy 0.8's Python REPL: the code is parsed; all statements but the last run in
``exec`` mode and the last one in ``single`` mode, so a trailing expression prints its repr; the
captured stdout + stderr become ``text/plain`` (right-stripped), and what a failed statement
printed comes at the head of the next one's. Only if the code does not parse
as Python are lines starting with ``%`` split out as magics (``%matplot VAR``, ``%json VAR``,
``%table VAR``). An exception becomes ``{"status": "error", "ename", "evalue", "traceback"}``.

This file must run on the remote Python alone: standard library and PySpark only at the top.
"""

import ast
import base64
import datetime
import decimal
import io
import json
import logging
import os
import re
import signal
import sys
import traceback

# fake_shell.py, at its import: the root logger's handler on the process's stderr (the lines
# Livy keeps), for WARNING and above; a library's own logging is left as it sets it up.
logging.basicConfig()
LOG = logging.getLogger("fake_shell")

#: fake_shell.py ``TOP_FRAME_REGEX``: the frame of the statement itself.
TOP_FRAME = re.compile(r'\s*File "<stdin>".*in <module>')


class ExecutionError(Exception):
    """Wraps the exc_info of a failure in user code (fake_shell.py's, its ``args`` included)."""

    def __init__(self, exc_info):
        self.exc_info = exc_info


class UnknownMagic(Exception):
    pass


GLOBALS = {"__name__": "__main__", "__builtins__": __builtins__}


def _error_reply(exc_type, exc_value, tb):
    # fake_shell.py ``execute_reply_error``: the exception being handled (for a failure in the
    # code, the ExecutionError with the code's exception as its context) logged on the stderr.
    LOG.error("execute_reply", exc_info=True)
    lines = traceback.format_exception(exc_type, exc_value, tb, chain=False)
    # fake_shell.py ``execute_reply_error``: the "Traceback" header, then the frames below the
    # statement's own (the REPL's frames and the ``<stdin> ... in <module>`` frame dropped).
    for i, line in enumerate(lines):
        if TOP_FRAME.match(line):
            lines = lines[:1] + lines[i + 1 :]
            break
    return {
        "status": "error",
        "ename": exc_type.__name__,
        "evalue": str(exc_value),
        "traceback": lines,
    }


class NormalNode:
    def __init__(self, code):
        self.code = compile(code, "<stdin>", "exec", ast.PyCF_ONLY_AST, dont_inherit=True)

    def execute(self):
        body = self.code.body
        try:
            for node in body[:-1]:
                mod = ast.Module([node], type_ignores=[])
                exec(compile(mod, "<stdin>", "exec"), GLOBALS)
            for node in body[-1:]:
                exec(compile(ast.Interactive([node]), "<stdin>", "single"), GLOBALS)
        except BaseException:
            raise ExecutionError(sys.exc_info())  # noqa: B904 (fake_shell.py's, context kept)
        return None


def _magic_error():
    """fake_shell.py ``magic_json``/``magic_matplot``/``magic_table``: a failure inside a magic
    is *returned* as ``execute_reply_error(type, value, None)``, so it becomes the data of an
    ``ok`` reply (sparkmagic then finds no ``text/plain`` and fails with a KeyError)."""
    exc_type, exc_value = sys.exc_info()[:2]
    return {"msg_type": "execute_reply", "content": _error_reply(exc_type, exc_value, None)}


def _magic_json(name):
    try:
        value = GLOBALS[name]
    except KeyError:
        return _magic_error()
    return {"application/json": value}


def _magic_matplot(name):
    try:
        figure = GLOBALS[name].gcf()
        buf = io.BytesIO()
        figure.savefig(buf, format="png")
        encoded = base64.b64encode(buf.getvalue()).decode("ascii")
    except BaseException:
        return _magic_error()
    return {"image/png": encoded, "text/plain": ""}


def _table_cell(value):
    """fake_shell.py ``magic_table_convert``: a cell's type by its Python type, matched exactly
    (a bool is not an int; a numpy number, a Row or a set is text)."""
    return TABLE_TYPES.get(type(value), TABLE_TYPES[str])(value)


def _table_seq(items):
    """fake_shell.py ``magic_table_convert_seq``: an array of items of one type. The ValueError
    of another type is caught nowhere in ``fake_shell.py``: the REPL ends."""
    last, converted = None, []
    for item in items:
        item_type, item = _table_cell(item)
        if last is None:
            last = item_type
        elif last != item_type:
            raise ValueError("value has inconsistent types")
        converted.append(item)
    return "ARRAY_TYPE", converted


def _table_map(m):
    """fake_shell.py ``magic_table_convert_map`` as written: ``for key, value in m`` walks a
    dict's keys and unpacks each one, so a dict in a cell mostly ends the REPL."""
    last_key, last_value, converted = None, None, {}
    for key, value in m:
        key_type, key = _table_cell(key)
        value_type, value = _table_cell(value)
        if last_key is None:
            last_key = key_type
        elif last_value != value_type:
            raise ValueError("value has inconsistent types")
        if last_value is None:
            last_value = value_type
        elif last_value != value_type:
            raise ValueError("value has inconsistent types")
        converted[key] = value
    return "MAP_TYPE", converted


TABLE_TYPES = {
    type(None): lambda x: ("NULL_TYPE", x),
    bool: lambda x: ("BOOLEAN_TYPE", x),
    int: lambda x: ("INT_TYPE", x),
    float: lambda x: ("DOUBLE_TYPE", x),
    str: lambda x: ("STRING_TYPE", str(x)),
    datetime.date: lambda x: ("DATE_TYPE", str(x)),
    datetime.datetime: lambda x: ("TIMESTAMP_TYPE", str(x)),
    decimal.Decimal: lambda x: ("DECIMAL_TYPE", str(x)),
    tuple: _table_seq,
    list: _table_seq,
    dict: _table_map,
}


def _magic_table(name):
    """fake_shell.py ``magic_table``: a value that is not a list or tuple is one row; a Row is
    its dict, a dict's cells go by sorted key, a list's or tuple's by position, anything else
    is a row of one cell. A column takes its first cell's type (a ``NULL_TYPE`` column the
    first other type); a cell of another type makes the reply an error, as data."""
    try:
        value = GLOBALS[name]
    except KeyError:
        return _magic_error()
    if not isinstance(value, (list, tuple)):
        value = [value]
    headers, data = {}, []
    for row in value:
        cells = []
        data.append(cells)
        if type(row).__name__ == "Row":
            row = row.asDict()
        if not isinstance(row, (list, tuple, dict)):
            row = [row]
        for key, cell in enumerate(row) if isinstance(row, (list, tuple)) else sorted(row.items()):
            cell_type, cell = _table_cell(cell)
            header = headers.get(key)
            if header is None:
                headers[key] = {"name": str(key), "type": cell_type}
            elif cell_type != "NULL_TYPE" and header["type"] != cell_type:
                if header["type"] != "NULL_TYPE":
                    # An error reply with no exception being handled: ``str`` is the type
                    # ``traceback.format_exception`` names, from the message's own type.
                    reply = _error_reply(Exception, "table rows have different types", None)
                    return {"msg_type": "execute_reply", "content": reply}
                header["type"] = cell_type
            cells.append(cell)
    return {
        "application/vnd.livy.table.v1+json": {
            "headers": [header for _, header in sorted(headers.items())],
            "data": data,
        }
    }


MAGICS = {"json": _magic_json, "matplot": _magic_matplot, "table": _magic_table}


class MagicNode:
    """fake_shell.py ``MagicNode``: the name up to the first space, the rest as it is (``%json
    x`` with a second space names `` x``); a magic without an argument raises TypeError, which
    ends the REPL as any exception outside the code does."""

    def __init__(self, line):
        parts = line[1:].split(" ", 1)
        self.name, self.rest = parts[0], tuple(parts[1:])

    def execute(self):
        if not self.name:
            raise UnknownMagic("magic command not specified")
        if self.name not in MAGICS:
            raise UnknownMagic(f"unknown magic command '{self.name}'")
        return MAGICS[self.name](*self.rest)


def parse(code):
    try:
        return [NormalNode(code)]
    except SyntaxError:
        chunks, normal = [], []
        for line in code.rstrip().split("\n"):
            if line.startswith("%"):
                if normal:
                    chunks.append("\n".join(normal))
                    normal = []
                chunks.append(line)
            else:
                normal.append(line)
        if normal:
            chunks.append("\n".join(normal))
        return [MagicNode(c) if c.startswith("%") else NormalNode(c) for c in chunks]


def clear_outputs():
    """fake_shell.py ``clearOutputs``: the statement's streams closed (what writes to one later,
    such as a handler that kept it, fails as on Livy) and new ones in their place."""
    sys.stdout.close()
    sys.stderr.close()
    sys.stdout, sys.stderr = io.StringIO(), io.StringIO()


def execute(code):
    """fake_shell.py ``execute_request``. ``sys.stdout`` and ``sys.stderr`` are the REPL's own
    ``StringIO`` (from :func:`main` on), emptied only after a statement that succeeds: what a
    failed one printed stays, and comes at the head of the next statement's output."""
    try:
        nodes = parse(code)
    except SyntaxError:
        return _error_reply(*sys.exc_info()[:2], None)
    result = None
    try:
        for node in nodes:
            result = node.execute()
    except UnknownMagic:  # fake_shell.py ``execute_request``: no traceback
        return _error_reply(*sys.exc_info()[:2], None)
    except ExecutionError as e:
        return _error_reply(*e.exc_info)
    result = dict(result or {})
    text = result.pop("text/plain", "") + sys.stdout.getvalue() + sys.stderr.getvalue()
    clear_outputs()
    text = text.rstrip()
    if text or not result:
        result["text/plain"] = text
    return {"status": "ok", "data": result}


def start_spark(settings):
    """The session's SparkSession with its conf, and its pyFiles on the path, as Livy does.

    The JVM's stderr goes where its stdout goes (fd 1, the session's log), not to the REPL's
    stderr: on Livy the driver's JVM is not the REPL's child, and its lines are not among the
    REPL's that Livy hands back when the REPL dies.
    """
    import subprocess

    from pyspark import SparkConf, SparkContext
    from pyspark.java_gateway import launch_gateway
    from pyspark.sql import SparkSession, SQLContext

    conf = SparkConf().setMaster(settings["master"]).setAppName(settings["name"])
    conf.setAll(settings["conf"].items())
    gateway = launch_gateway(conf, popen_kwargs={"stderr": subprocess.STDOUT})
    sc = SparkContext(conf=conf, gateway=gateway)
    spark = SparkSession(sc)
    for path in settings["pyFiles"]:
        sc.addPyFile(path)
    GLOBALS.update(spark=spark, sc=sc, sqlContext=SQLContext(sc))
    return spark


class NoSpark:
    """``spark``/``sc``/``sqlContext`` of a session started without Spark (contract tests).

    sparkmagic checks that ``spark`` evaluates when a session starts; any use of it fails
    with a message that says why.
    """

    def __init__(self, name):
        self._name = name

    def __repr__(self):
        return f"<{self._name}: this test session runs without Spark>"

    def __getattr__(self, attr):
        raise RuntimeError(
            f"{self._name}.{attr}: this test session runs without Spark "
            "(LivyTestServer(spark=False))"
        )


def orphan_watchdog(parent):
    """If the server's process dies (e.g. the test run is killed), take the session down too."""
    import threading
    import time

    def watch():
        while os.getppid() == parent:
            time.sleep(1.0)
        os.killpg(0, signal.SIGKILL)  # this REPL's group: the JVM and Python workers with it

    threading.Thread(target=watch, name="orphan-watchdog", daemon=True).start()


def main(argv):
    request_fd, reply_fd, settings_path = int(argv[1]), int(argv[2]), argv[3]
    orphan_watchdog(os.getppid())
    requests = os.fdopen(request_fd, "r", encoding="utf-8")
    replies = os.fdopen(reply_fd, "w", encoding="utf-8")

    def send(message):
        replies.write(json.dumps(message) + "\n")
        replies.flush()

    with open(settings_path, encoding="utf-8") as fh:
        settings = json.load(fh)
    # fake_shell.py ``main``: stdout and stderr are the REPL's own ``StringIO`` from its start;
    # what Spark's start printed goes to the process's stderr, then the statements' begin.
    sys.stdout, sys.stderr = io.StringIO(), io.StringIO()
    spark = None
    try:
        if settings.get("spark", True):
            spark = start_spark(settings)
        else:
            GLOBALS.update({n: NoSpark(n) for n in ("spark", "sc", "sqlContext")})
    except BaseException:
        sys.stdout, sys.stderr = sys.__stdout__, sys.__stderr__
        traceback.print_exc()
        send({"type": "failed", "error": traceback.format_exc()})
        return 1
    app_id = spark.sparkContext.applicationId if spark else f"no-spark-{os.getpid()}"
    print(sys.stdout.getvalue(), file=sys.__stderr__)
    print(sys.stderr.getvalue(), file=sys.__stderr__)
    clear_outputs()
    send({"type": "ready", "appId": app_id})
    try:
        serve(requests, send)
    finally:
        # fake_shell.py ``main``: ``finally`` stops the SparkContext, also when a reply could
        # not be encoded and the exception ends the REPL, and puts the process's own stdout and
        # stderr back, where that exception's traceback goes.
        sys.stdout, sys.stderr = sys.__stdout__, sys.__stderr__
        if spark is not None:
            spark.stop()
    return 0


def read_requests(requests, statements):
    """The request pipe, read by a thread of its own: a ``cancel`` is carried out at once, as
    Livy's RSC driver does (repl/.../Session.scala ``cancel``: ``sc.cancelJobGroup`` of the
    statement's group, from a thread beside the interpreter's); the rest queue for ``serve``."""
    for line in requests:
        request = json.loads(line)
        if request.get("type") == "cancel":
            sc = GLOBALS.get("sc")
            if sc is not None and not isinstance(sc, NoSpark):
                sc.cancelJobGroup(str(request["id"]))
        else:
            statements.put(request)
    statements.put(None)


def serve(requests, send):
    """Answer each statement: ``started`` when its code is about to run, then its reply.

    Before the code runs, its statement's Spark job group is set, as repl/.../Session.scala
    ``execute`` does (``setJobGroup``: ``sc.setJobGroup("ID", "Job group for statement ID")``
    in the interpreter), so a cancel reaches the Spark jobs the code starts and nothing else:
    Python code that runs no job carries on.
    """
    import queue
    import threading

    statements = queue.Queue()
    threading.Thread(
        target=read_requests, args=(requests, statements), name="requests", daemon=True
    ).start()
    count = 0
    while True:
        request = statements.get()
        if request is None or request.get("type") == "shutdown":
            break
        count += 1
        sc = GLOBALS.get("sc")
        if sc is not None and not isinstance(sc, NoSpark):
            group = str(request["id"])
            sc.setJobGroup(group, f"Job group for statement {group}")
        send({"type": "started", "id": request["id"]})
        reply = execute(request["code"])
        reply["execution_count"] = count
        try:
            json.dumps(reply)
        except ValueError:
            # fake_shell.py ``main`` answers an ``inspect_reply`` here, and Livy's
            # PythonInterpreter.scala ``sendExecuteRequest`` asserts ``execute_reply``: repl
            # Session.scala ``executeCode`` catches the AssertionError as an internal error.
            reply = {
                "status": "error",
                "execution_count": count,
                "ename": "Internal Error: java.lang.AssertionError",
                "evalue": "assertion failed",
                "traceback": [],
            }
        # A TypeError (e.g. ``%json`` of a set) is not caught, as in fake_shell.py ``main``:
        # the REPL exits and Livy reports "Interpreter died" and the session ``error``.
        send({"type": "reply", "id": request["id"], "content": reply})


if __name__ == "__main__":
    sys.exit(main(sys.argv))
