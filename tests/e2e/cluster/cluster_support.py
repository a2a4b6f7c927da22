"""A Spark standalone cluster and driver processes for the cluster suite (no fixtures here).

A real cluster: one master and two workers on loopback.

The master and workers are the ``org.apache.spark.deploy`` daemons of the installed PySpark
distribution, started with ``bin/spark-class`` (the pip package has no ``sbin/start-*.sh``), each in
its own process group, with every port on 127.0.0.1 and every file in a temporary folder. Drivers
run as separate processes (``cluster_driver.py``) under the remote-side Python, which lacks
``ctr_lab``: the package reaches driver and executors only as the ``build_zip`` zip.
"""

from __future__ import annotations

import contextlib
import json
import os
import queue
import signal
import socket
import subprocess
import threading
import time
import urllib.request
from pathlib import Path
from typing import Any, Callable, Dict, List, Optional

import psutil

HERE = Path(__file__).resolve().parent
DRIVER_SCRIPT = HERE / "cluster_driver.py"
EXECUTOR_CLASS = "CoarseGrainedExecutorBackend"
#: Generated rows every driver reads (raw Kaggle format, ten days): a last day of test rows and an
#: LR that learns something. Neither fault needs more, and each fit's features scale with them.
ROWS = 20_000
#: Rows of the save faults (test_driver_kill.py): what a save writes does not grow with the rows
#: (a model's files are its stages), so a fit there only needs to finish quickly.
SAVE_ROWS = 5_000


def spark_home() -> Path:
    import pyspark

    return Path(pyspark.__file__).resolve().parent


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def get_json(url: str) -> Dict[str, Any]:
    with urllib.request.urlopen(url, timeout=5) as response:
        return json.loads(response.read().decode("utf-8"))


def wait_until(what: str, check: Callable[[], Any], timeout: float, every: float = 0.5) -> Any:
    """Poll ``check`` until it returns something truthy; fail with ``what`` after ``timeout``."""
    deadline = time.monotonic() + timeout
    last_error: Optional[BaseException] = None
    while time.monotonic() < deadline:
        try:
            value = check()
        except (OSError, ValueError) as exc:  # not listening yet, half-written JSON
            last_error = exc
            value = None
        if value:
            return value
        time.sleep(every)
    raise AssertionError(f"timed out after {timeout:.0f}s waiting for {what} (last: {last_error})")


def clean_env(**extra: str) -> Dict[str, str]:
    """This environment without anything that would point a child at the checkout."""
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("PYSPARK_", "SPARK_", "PYTHON", "CTR_LAB_", "VIRTUAL_ENV"))
    }
    env.update(extra)
    return env


class StandaloneCluster:
    """A master and ``workers`` workers (1 core, 1 GiB each) from ``spark-class``."""

    def __init__(self, root: Path, workers: int = 2) -> None:
        self.root = root
        self.home = spark_home()
        self.n_workers = workers
        self.procs: List[subprocess.Popen] = []
        self.logs: List[Path] = []
        self.master_port = free_port()
        self.master_ui = free_port()
        self.worker_uis = [free_port() for _ in range(workers)]
        self.url = f"spark://127.0.0.1:{self.master_port}"
        self.work_dir = root / "work"
        self.work_dir.mkdir(parents=True, exist_ok=True)
        conf_dir = root / "conf"  # empty: no spark-defaults from anywhere else
        conf_dir.mkdir(exist_ok=True)
        self.env = clean_env(
            SPARK_HOME=str(self.home),
            SPARK_CONF_DIR=str(conf_dir),
            SPARK_LOCAL_IP="127.0.0.1",
            SPARK_LOCAL_DIRS=str(root / "local"),
            SPARK_WORKER_DIR=str(self.work_dir),
            SPARK_LOG_DIR=str(root / "logs"),
            SPARK_DAEMON_MEMORY="256m",
        )

    def _spawn(self, name: str, args: List[str]) -> subprocess.Popen:
        log = self.root / f"{name}.log"
        self.logs.append(log)
        with open(log, "wb") as fh:
            proc = subprocess.Popen(
                [str(self.home / "bin" / "spark-class"), *args],
                cwd=self.root,
                env=self.env,
                stdout=fh,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                start_new_session=True,  # its own process group, killed as one
            )
        self.procs.append(proc)
        return proc

    def master_state(self) -> Dict[str, Any]:
        return get_json(f"http://127.0.0.1:{self.master_ui}/json")

    def worker_state(self, i: int) -> Dict[str, Any]:
        return get_json(f"http://127.0.0.1:{self.worker_uis[i]}/json")

    def alive_workers(self) -> int:
        return sum(w.get("state") == "ALIVE" for w in self.master_state().get("workers", []))

    def start(self) -> None:
        self._spawn(
            "master",
            [
                "org.apache.spark.deploy.master.Master",
                "--host",
                "127.0.0.1",
                "--port",
                str(self.master_port),
                "--webui-port",
                str(self.master_ui),
            ],
        )
        wait_until("the master's web UI", lambda: self.master_state().get("status"), 90)
        for i in range(self.n_workers):
            self._spawn(
                f"worker{i}",
                [
                    "org.apache.spark.deploy.worker.Worker",
                    self.url,
                    "--host",
                    "127.0.0.1",
                    "--cores",
                    "1",
                    "--memory",
                    "1g",
                    "--webui-port",
                    str(self.worker_uis[i]),
                    "--work-dir",
                    str(self.work_dir),
                ],
            )
        wait_until(
            f"{self.n_workers} ALIVE workers in the master's JSON",
            lambda: self.alive_workers() == self.n_workers,
            120,
        )

    def executor_processes(self) -> List[psutil.Process]:
        """The executor JVMs the workers have launched and that are running now."""
        found = []
        for proc in self.procs[1:]:
            try:
                children = psutil.Process(proc.pid).children(recursive=True)
            except psutil.NoSuchProcess:
                continue
            for child in children:
                try:
                    if child.is_running() and any(EXECUTOR_CLASS in a for a in child.cmdline()):
                        found.append(child)
                except (psutil.NoSuchProcess, psutil.ZombieProcess):
                    pass
        return found

    def our_processes(self) -> List[psutil.Process]:
        """Every live process started for this cluster (daemons, executors, Python workers)."""
        mine = []
        for proc in psutil.process_iter(["pid", "cmdline", "cwd"]):
            try:
                cwd = proc.info.get("cwd") or ""
                cmd = " ".join(proc.info.get("cmdline") or [])
            except (psutil.NoSuchProcess, psutil.AccessDenied):
                continue
            ours = cwd.startswith(str(self.root)) or self.url in cmd or str(self.work_dir) in cmd
            if ours and proc.pid != os.getpid():
                mine.append(proc)
        return mine

    def listening_addresses(self) -> List[str]:
        addresses = []
        for proc in self.our_processes():
            try:
                connections = proc.net_connections(kind="inet")
            except (psutil.NoSuchProcess, psutil.AccessDenied):
                continue
            addresses += [c.laddr.ip for c in connections if c.status == psutil.CONN_LISTEN]
        return addresses

    def log_tail(self, chars: int = 3000) -> str:
        parts = []
        for log in self.logs:
            if log.exists():
                parts.append(f"--- {log.name}\n{log.read_text(errors='replace')[-chars:]}")
        return "\n".join(parts)

    def stop(self) -> List[str]:
        """Kill every process group; return a description of anything still alive."""
        for proc in reversed(self.procs):
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)
        for proc in self.procs:
            with contextlib.suppress(subprocess.TimeoutExpired):
                proc.wait(timeout=30)
        deadline = time.monotonic() + 30
        left = self.our_processes()
        while left and time.monotonic() < deadline:
            for proc in left:  # executors re-parented away from their worker's group
                with contextlib.suppress(psutil.NoSuchProcess):
                    proc.kill()
            time.sleep(0.5)
            left = self.our_processes()
        return [f"{p.pid}: {' '.join(p.cmdline())[:200]}" for p in left if p.is_running()]


class Driver:
    """A ``cluster_driver.py`` process in its own process group, followed through its events."""

    def __init__(self, python: Path, spec: Dict[str, Any], out: Path) -> None:
        self.spec = dict(spec, out=str(out))
        self.out = out
        out.mkdir(parents=True, exist_ok=True)
        self.stderr_path = out / "driver.stderr"
        self.events: queue.Queue[Dict[str, Any]] = queue.Queue()
        self.seen: List[Dict[str, Any]] = []
        env = clean_env(PYSPARK_PYTHON=str(python), SPARK_LOCAL_IP="127.0.0.1")
        with open(self.stderr_path, "wb") as err:
            self.proc = subprocess.Popen(
                [str(python), str(DRIVER_SCRIPT), json.dumps(self.spec)],
                cwd=out,
                env=env,
                stdout=subprocess.PIPE,
                stderr=err,
                stdin=subprocess.DEVNULL,
                text=True,
                start_new_session=True,
            )
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            line = line.strip()
            if line.startswith("{"):
                with contextlib.suppress(ValueError):
                    self.events.put(json.loads(line))
        self.events.put({"event": "exit"})

    def next_event(self, match: Callable[[Dict[str, Any]], bool], timeout: float) -> Dict[str, Any]:
        """The next event ``match`` accepts; fail if the driver exits or ``timeout`` passes."""
        deadline = time.monotonic() + timeout
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                raise AssertionError(f"driver: no matching event in {timeout:.0f}s\n{self.tail()}")
            try:
                event = self.events.get(timeout=min(left, 1.0))
            except queue.Empty:
                continue
            self.seen.append(event)
            if match(event):
                return event
            if event["event"] == "exit":
                self.proc.wait()
                raise AssertionError(
                    f"driver exited ({self.proc.returncode}) before the awaited event\n"
                    f"{self.tail()}"
                )

    def finish(self, timeout: float = 600) -> List[Dict[str, Any]]:
        """Wait for the driver to end well; return all its events."""
        if not self.event("done"):
            self.next_event(lambda e: e["event"] == "done", timeout)
        code = self.proc.wait(timeout=120)
        assert code == 0, f"driver exited with {code}\n{self.tail()}"
        return self.seen

    def all(self, name: str) -> List[Dict[str, Any]]:
        return [e for e in self.seen if e["event"] == name]

    def event(self, name: str) -> Optional[Dict[str, Any]]:
        return next((e for e in self.seen if e["event"] == name), None)

    def kill(self) -> None:
        """SIGKILL the driver's whole process group: its Python and its JVM at once."""
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.proc.pid, signal.SIGKILL)
        self.proc.wait(timeout=60)

    def group_alive(self, timeout: float = 60) -> List[int]:
        """PIDs of the driver's process group still running (zombies aside) after ``timeout``."""

        def alive() -> List[int]:
            pids = []
            for proc in psutil.process_iter(["pid", "status"]):
                try:
                    same_group = os.getpgid(proc.pid) == self.proc.pid
                except (ProcessLookupError, psutil.NoSuchProcess):
                    continue
                if same_group and proc.info["status"] != psutil.STATUS_ZOMBIE:
                    pids.append(proc.pid)
            return pids

        deadline = time.monotonic() + timeout
        pids = alive()
        while pids and time.monotonic() < deadline:
            time.sleep(0.2)
            pids = alive()
        return pids

    def tail(self, chars: int = 3000) -> str:
        """The driver's first error lines and the end of its stderr."""
        text = self.stderr_path.read_text(errors="replace") if self.stderr_path.exists() else ""
        causes = [
            line
            for line in text.splitlines()
            if ("Error" in line or "Exception" in line) and not line.startswith(("\t", " "))
        ]
        first = "\n".join(causes[:5])
        return f"--- driver errors\n{first}\n--- driver stderr (end)\n{text[-chars:]}"

    def coefficients(self, index: int = 0):
        """(intercept, coefficients) of the ``index``-th model the driver fitted."""
        import numpy as np

        with np.load(self.out / f"coef{index}.npz") as data:
            return float(data["intercept"][0]), data["coefficients"].copy()
