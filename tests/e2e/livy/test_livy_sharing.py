"""The notebooks' session cells on a shared Livy endpoint, through the real sparkmagic kernel.

On EMR several notebooks (and classmates) share one Livy server. What the notebooks do to
sessions is in a few cells: the opening ``%%configure -f`` and any later cell that starts with a
session magic (``%%configure``, ``%%cleanup``, ``%%delete``). Each test runs exactly those cells
of ``notebooks/00_setup.ipynb``, plus plain-Python statements, in kernels against a strict Livy
double without Spark (the rules are about sessions, not Spark), so each takes seconds:

* two notebooks open at once both work, and finishing one leaves the other's session alone
  (Livy refuses a second live session with the same name: SessionManager.scala ``register``;
  sparkmagic's ``%%cleanup -f`` deletes every session on the endpoint: kernelmagics.py);
* a second user's session (another student running the same notebook) survives a notebook run;
* a notebook re-run right after its kernel restarts works, whether the restart let sparkmagic
  delete the session (sparkkernelbase.py ``do_shutdown``) or killed the kernel, leaving the old
  session alive until its heartbeat expires.
"""

from __future__ import annotations

import json
import os
import sys
import time
from pathlib import Path
from typing import Any, Iterator, List, Tuple

import pytest
from jupyter_client.manager import KernelManager
from livy_helpers import REPO, call, derive_test_config, load_template
from livy_server import LivyTestServer

NOTEBOOK = REPO / "notebooks" / "00_setup.ipynb"
SESSION_MAGICS = ("%%configure", "%%cleanup", "%%delete")


def session_cells(path: Path = NOTEBOOK) -> Tuple[str, List[str]]:
    """The notebook's opening ``%%configure`` and its later session-magic cells."""
    cells = [
        "".join(c["source"])
        for c in json.loads(path.read_text(encoding="utf-8"))["cells"]
        if c["cell_type"] == "code"
    ]
    assert cells[0].startswith("%%configure -f\n"), cells[0]
    return cells[0], [c for c in cells[1:] if c.lstrip().startswith(SESSION_MAGICS)]


@pytest.fixture(scope="module")
def quick_livy(livy_zip, tmp_path_factory) -> Iterator[LivyTestServer]:
    server = LivyTestServer(
        sys.executable,
        tmp_path_factory.mktemp("livy-sharing"),
        spark=False,
        local_dir_whitelist=(livy_zip.parent,),
    ).start()
    yield server
    server.stop()
    assert server.leftover_processes() == []


@pytest.fixture(scope="module")
def quick_conf_dir(quick_livy, livy_zip, tmp_path_factory) -> Path:
    conf_dir = tmp_path_factory.mktemp("sparkmagic-sharing")
    config = derive_test_config(load_template(), quick_livy.url, livy_zip)
    (conf_dir / "config.json").write_text(json.dumps(config, indent=2))
    return conf_dir


class Kernel:
    """One sparkmagic kernel, as one open notebook."""

    def __init__(self, name: str, conf_dir: Path, cwd: Path) -> None:
        self.km = KernelManager(kernel_name=name)
        env = {**os.environ, "SPARKMAGIC_CONF_DIR": str(conf_dir)}
        self.km.start_kernel(cwd=str(cwd), env=env)
        self.kc = self.km.client()
        self.kc.start_channels()
        self.kc.wait_for_ready(timeout=120)

    def run(self, code: str) -> Tuple[str, str]:
        """(status, text) of one cell: 'ok' or 'error', and what it printed or raised."""
        out: List[str] = []

        def hook(msg: Any) -> None:
            content = msg["content"]
            if msg["msg_type"] == "stream":
                out.append(content["text"])
            elif msg["msg_type"] == "execute_result":
                out.append(content["data"].get("text/plain", ""))
            elif msg["msg_type"] == "error":
                out.append(f"{content['ename']}: {content['evalue']}")

        reply = self.kc.execute_interactive(code, timeout=180, output_hook=hook)
        return reply["content"]["status"], "".join(out)

    def ok(self, code: str) -> str:
        """The last line a successful cell printed (after sparkmagic's start-up lines)."""
        status, text = self.run(code)
        assert status == "ok", f"{code!r} failed: {text}"
        return (text.strip().splitlines() or [""])[-1]

    def restart(self, now: bool) -> None:
        self.km.restart_kernel(now=now)
        self.kc.wait_for_ready(timeout=120)

    def close(self) -> None:
        self.kc.stop_channels()
        self.km.shutdown_kernel(now=False)


@pytest.fixture
def kernels(sparkmagic_kernel, quick_conf_dir, quick_livy, tmp_path) -> Iterator[Any]:
    """Opens kernels; afterwards closes them and deletes every session (a fresh endpoint)."""
    opened: List[Kernel] = []

    def open_one() -> Kernel:
        kernel = Kernel(sparkmagic_kernel, quick_conf_dir, tmp_path)
        opened.append(kernel)
        return kernel

    yield open_one
    for kernel in opened:
        kernel.close()
    for session in call(f"{quick_livy.url}/sessions")[1]["sessions"]:
        call(f"{quick_livy.url}/sessions/{session['id']}", "DELETE")


def live_sessions(server: LivyTestServer) -> List[dict]:
    return [s for s in call(f"{server.url}/sessions")[1]["sessions"] if s["state"] == "idle"]


def test_two_notebooks_open_at_once_both_work(kernels, quick_livy):
    opening, later = session_cells()
    first, second = kernels(), kernels()
    first.ok(opening)
    assert first.ok("x = 'first'\nx") == "'first'"
    second.ok(opening)
    assert second.ok("x = 'second'\nx") == "'second'"
    for cell in later:  # the first notebook finishes
        first.ok(cell)
    assert second.ok("x") == "'second'"  # the second one still has its session and variables


def test_a_second_users_session_survives_a_notebook_run(kernels, quick_livy):
    opening, later = session_cells()
    body = {"kind": "pyspark", "name": "classmate-assignment"}
    status, classmate = call(f"{quick_livy.url}/sessions", "POST", body)
    assert status == 201, classmate
    notebook = kernels()
    notebook.ok(opening)
    assert notebook.ok("1 + 1") == "2"
    for cell in later:
        notebook.ok(cell)
    view = call(f"{quick_livy.url}/sessions/{classmate['id']}")
    assert view[0] == 200 and view[1]["state"] == "idle", view


@pytest.mark.parametrize("now", [False, True], ids=["graceful-restart", "killed-kernel"])
def test_a_rerun_right_after_a_kernel_restart_works(kernels, quick_livy, now):
    opening, later = session_cells()
    notebook = kernels()
    notebook.ok(opening)
    assert notebook.ok("y = 3\ny") == "3"
    notebook.restart(now=now)
    notebook.ok(opening)
    assert notebook.ok("'y' in dir(), 4") == "(False, 4)"  # a new session, working
    for cell in later:
        notebook.ok(cell)


def _sessionless_livy(tmp_path, livy_zip, idle_timeout: float, **config: Any):
    """A Livy test server whose sessions run no Spark and end after ``idle_timeout`` seconds
    without activity, and a sparkmagic config folder for it (the test config, with ``config``)."""
    server = LivyTestServer(
        sys.executable,
        tmp_path / "livy",
        spark=False,
        idle_timeout=idle_timeout,
        check_interval=0.5,
        local_dir_whitelist=(livy_zip.parent,),
    ).start()
    conf_dir = tmp_path / "sparkmagic"
    conf_dir.mkdir()
    settings = derive_test_config(load_template(), server.url, livy_zip)
    settings.update(config)
    (conf_dir / "config.json").write_text(json.dumps(settings, indent=2))
    return server, conf_dir


def test_a_killed_kernels_session_is_reaped_within_the_session_timeout(
    sparkmagic_kernel, livy_zip, tmp_path
):
    """A killed kernel cannot delete its session, and another notebook's kernel may keep it
    alive: its ``%%configure`` runs ``%%info``, which builds a ``LivySession`` for every session
    on the endpoint (sparkcontroller.py ``get_all_sessions_endpoint``), and each one starts a
    heartbeat thread (livysession.py ``__init__``, ``_start_heartbeat_thread``). So the session
    outlives its heartbeat timeout; Livy's idle check ends it (SessionManager.scala
    ``collectGarbage``: inactive longer than ``livy.server.session.timeout``, which
    ``emr_bootstrap/configurations.json`` keeps on; a heartbeat is not activity).

    Scaled down: heartbeat timeout 6 s (refreshed every second), session timeout 30 s; the
    other notebook keeps running cells meanwhile and keeps its own session."""
    heartbeat, timeout = 6, 30.0
    server, conf_dir = _sessionless_livy(
        tmp_path,
        livy_zip,
        timeout,
        livy_server_heartbeat_timeout_seconds=heartbeat,
        heartbeat_refresh_seconds=1,
    )
    opening, _ = session_cells()
    killed = Kernel(sparkmagic_kernel, conf_dir, tmp_path)
    other = Kernel(sparkmagic_kernel, conf_dir, tmp_path)
    try:
        killed.ok(opening)
        assert killed.ok("1 + 1") == "2"
        (sid,) = [s["id"] for s in live_sessions(server)]
        last_active = server.get(sid).activity()
        other.ok(opening)  # its %%info starts heartbeats for the first notebook's session too
        killed.km.shutdown_kernel(now=True)  # SIGKILL: sparkmagic deletes nothing
        killed_at = time.monotonic()
        while server.get(sid) is not None and server.get(sid).state in ("idle", "busy"):
            assert time.monotonic() - last_active < timeout + 15, "never reaped"
            assert other.ok("2 + 2") == "4"  # the other notebook stays active
            time.sleep(1)
        ended = time.monotonic()
        assert ended - killed_at > heartbeat + 3, "reaped by its heartbeat: nothing kept it alive"
        assert ended - last_active < timeout + 5, f"reaped {ended - last_active:.0f} s after use"
        others = live_sessions(server)
        assert len(others) == 1 and others[0]["id"] != sid, others
    finally:
        other.close()
        server.stop()
    assert server.leftover_processes() == []


def ended_session_advice() -> str:
    """What notebooks/README.md tells a student whose session ended, as one line."""
    text = (REPO / "notebooks" / "README.md").read_text(encoding="utf-8")
    start = text.index("- **After the session ended**")
    end = text.index("\n\n", start)
    return " ".join(text[start:end].split())


def test_a_notebook_whose_session_timed_out_comes_back_as_the_notebooks_say(
    sparkmagic_kernel, livy_zip, tmp_path
):
    """A student back after the cluster's session timeout (or a lost driver): sparkmagic keeps
    asking Livy for the session it started, which Livy has deleted (SessionManager.scala
    ``collectGarbage``; then ``Session 'N' not found.``, 404, SessionServlet.scala
    ``doWithSession``), so every cell fails the same way; sparkmagic starts a new session only
    when ``%%configure -f`` runs or the kernel restarts (kernelmagics.py
    ``_do_not_call_start_session`` starts one once per kernel). The notebooks' README names that
    message and that fix, and the notebook's own first cell is the fix.

    Scaled down: a session timeout of 2 s."""
    server, conf_dir = _sessionless_livy(tmp_path, livy_zip, 2.0)
    opening, _ = session_cells()
    notebook = Kernel(sparkmagic_kernel, conf_dir, tmp_path)
    try:
        notebook.ok(opening)
        assert notebook.ok("x = 1\nx") == "1"
        (sid,) = [s["id"] for s in live_sessions(server)]
        deadline = time.monotonic() + 30
        while server.get(sid) is not None:
            assert time.monotonic() < deadline, "the session was never timed out"
            time.sleep(0.5)
        for _ in range(2):  # not once: every later cell
            status, text = notebook.run("x")
            assert status == "error" and f"Session '{sid}' not found" in text, text
        advice = ended_session_advice()
        assert "not found" in advice and "%%configure -f" in advice, advice
        notebook.ok(opening)
        assert notebook.ok("'x' in dir(), 2") == "(False, 2)"  # a new, empty session
    finally:
        notebook.close()
        server.stop()
    assert server.leftover_processes() == []
