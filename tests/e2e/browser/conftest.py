"""Fixtures of the browser suite: a JupyterLab server as ``make lab`` runs it, and Chromium.

The server serves a copy of ``notebooks/`` (the tests save into it; its ``build`` is the
checkout's, where models are kept and reloaded; the notebooks that pose exercises in their
solution versions, :mod:`tests.solution_versions`) with the local kernel
installed as ``ctr-lab kernel install`` installs it, in folders of its own (kernels, settings,
workspaces), so neither the checkout nor the machine's Jupyter setup changes what it sees. Its
kernels start their Spark sessions in one shared driver JVM, one notebook after another, as
``ctr-lab run`` does: the suite pays one JVM start instead of one per notebook.
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator, Optional

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))  # cdp

from cdp import OUT, REPO, Chromium, find_chromium, stop_group

from ctr_lab.tools.casestudy import ordered_notebooks
from tests.solution_versions import write_solution_version

#: JupyterLab settings: every cell rendered (nothing windowed away before it is checked). News
#: and update checks are off by the lab's own defaults (``tools/jupyterlab_overrides.json``,
#: which ``make lab`` and ``make browser`` put in .venv), as a student gets them.
LAB_SETTINGS = {
    "@jupyterlab/notebook-extension/tracker.jupyterlab-settings": {"windowingMode": "none"},
}


@dataclass
class LabServer:
    """A running Jupyter server: where, its token, its folder and the shared driver."""

    url: str
    token: str
    root: Path
    driver: Any

    def api(self, method: str, path: str, body: Optional[dict] = None) -> Any:
        """Call the server's REST API; the decoded JSON reply (None when empty)."""
        request = urllib.request.Request(
            f"{self.url}{path}",
            method=method,
            data=None if body is None else json.dumps(body).encode(),
            headers={"Authorization": f"token {self.token}", "Content-Type": "application/json"},
        )
        with urllib.request.urlopen(request, timeout=60) as reply:
            text = reply.read()
        return json.loads(text) if text else None


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(scope="session")
def lab_home(tmp_path_factory) -> Path:
    """Notebooks to run, the local kernel installed by the command line, fresh Lab settings."""
    home = tmp_path_factory.mktemp("lab")
    shutil.copytree(
        REPO / "notebooks",
        home / "work" / "notebooks",
        ignore=shutil.ignore_patterns(".ipynb_checkpoints"),
    )
    # The notebooks that pose exercises run here in their solution versions, as `make run` runs
    # them (their student versions run through Livy).
    for committed in ordered_notebooks(REPO / "notebooks"):
        copy = home / "work" / "notebooks" / committed.relative_to(REPO / "notebooks")
        write_solution_version(committed, copy)
    # The notebooks keep models and validated data in ../build: the checkout's, so models an
    # earlier run saved are reloaded here, as on a student's second run (on a clean clone this
    # run trains them; the outputs compared are the same either way).
    (REPO / "build").mkdir(exist_ok=True)
    (home / "work" / "build").symlink_to(REPO / "build", target_is_directory=True)
    subprocess.run(
        [
            sys.executable,
            "-m",
            "ctr_lab.tools",
            "kernel",
            "install",
            "--prefix",
            str(home / "prefix"),
        ],
        check=True,
        capture_output=True,
    )
    for name, value in LAB_SETTINGS.items():
        target = home / "settings" / name
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(json.dumps(value))
    return home


@pytest.fixture(scope="session")
def lab_server(lab_home, short_lived_jit) -> Iterator[LabServer]:
    """JupyterLab on 127.0.0.1 with a token, its kernels sharing one driver JVM.

    The shared driver, long-lived, keeps both JIT compilers; a Spark driver a kernel starts in a
    process of its own (``ctr-lab grade`` in the assignment's grade of record, about 30 s) gets
    ``short_lived_jit`` through ``SPARK_SUBMIT_OPTS``, which Spark's launcher adds to its JVM
    options, as the unit tests' child processes do (``tests/conftest.py``).
    """
    from ctr_lab.session import shared_driver
    from ctr_lab.tools.casestudy import driver_settings

    OUT.mkdir(parents=True, exist_ok=True)
    root = lab_home / "work"
    notebooks = ordered_notebooks(root / "notebooks")
    with shared_driver(
        driver_settings(notebooks), cwd=str(root), log=str(OUT / "driver.log")
    ) as driver:
        port, token = _free_port(), secrets.token_hex(16)
        inherited = os.environ.get("SPARK_SUBMIT_OPTS", "")
        env = {
            **os.environ,
            **driver.env,
            "SPARK_SUBMIT_OPTS": f"{inherited} {short_lived_jit}".strip(),
            "JUPYTER_PATH": str(lab_home / "prefix" / "share" / "jupyter"),
            "JUPYTER_DATA_DIR": str(lab_home / "data"),  # not the machine user's kernels
            "JUPYTER_CONFIG_DIR": str(lab_home / "config"),
            "JUPYTER_RUNTIME_DIR": str(lab_home / "runtime"),
            "JUPYTERLAB_SETTINGS_DIR": str(lab_home / "settings"),
            "JUPYTERLAB_WORKSPACES_DIR": str(lab_home / "workspaces"),
        }
        command = [
            str(Path(sys.executable).with_name("jupyter-lab")),
            "--no-browser",
            "--ip=127.0.0.1",
            f"--port={port}",
            "--ServerApp.port_retries=0",
            f"--IdentityProvider.token={token}",
            f"--ServerApp.root_dir={root}",
            "--LabApp.expose_app_in_browser=True",  # window.jupyterapp: Lab's own commands
            *(["--allow-root"] if os.getuid() == 0 else []),
        ]
        with open(OUT / "jupyter.log", "wb") as log:
            proc = subprocess.Popen(
                command, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
            )
        server = LabServer(f"http://127.0.0.1:{port}", token, root, driver)
        try:
            deadline = time.monotonic() + 120
            while True:
                try:
                    server.api("GET", "/api/status")
                    break
                except (urllib.error.URLError, ConnectionError):
                    if proc.poll() is not None or time.monotonic() > deadline:
                        pytest.fail(f"JupyterLab did not start; see {OUT / 'jupyter.log'}")
                    time.sleep(0.5)
            yield server
        finally:
            stop_group(proc)


@pytest.fixture(scope="session")
def browser(lab_home) -> Iterator[Chromium]:
    """Headless Chromium with a fresh profile."""
    binary = find_chromium()
    if binary is None:
        pytest.fail(
            "no chromium on PATH: install Debian's chromium and chromium-driver "
            "(tools/setup_env.sh does as root)"
        )
    OUT.mkdir(parents=True, exist_ok=True)
    chromium = Chromium(binary, lab_home / "chromium-profile", OUT / "chromium.log")
    yield chromium
    chromium.close()
