"""Helpers of the Livy suite: the sparkmagic test config, notebook edits, HTTP and nbval calls.

The kernel side is the real sparkmagic ``pysparkkernel``; its config is derived from the
student template ``emr_bootstrap/sparkmagic_config.json`` (see :func:`derive_test_config`).
The remote side is the ``remote_python`` of ``tests/e2e/conftest.py``, which lacks
``ctr_lab``: the package reaches it only as the zip that ``ctr_lab.tools.bundle.build_zip`` makes,
through ``pyFiles``.
"""

from __future__ import annotations

import copy
import json
import os
import re
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any, Dict, Optional, Tuple

import pytest

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[2]
TEMPLATE = REPO / "emr_bootstrap" / "sparkmagic_config.json"
KERNEL = "pysparkkernel"
#: The lab's folder in the EMR-like mode: what a student passes to ``ctr-lab emr upload`` and
#: ``ctr-lab emr create --bucket``.
LAB_FOLDER = "s3://ctr-lab-test-bucket/ctr-lab"
#: The preset whose configuration the EMR-like "cluster" carries.
PRESET = "quiz"
#: A pyFiles entry that names the ctr_lab zip, whatever its bucket, prefix or version.
ZIP_NAME = re.compile(r"(^|/)ctr_lab[-_.\w]*\.zip$")


# ----------------------------------------------------------------------------------------------
# sparkmagic config and notebooks
# ----------------------------------------------------------------------------------------------


def derive_test_config(
    template: Dict[str, Any], url: str, zip_path: Optional[Path] = None
) -> Dict[str, Any]:
    """The test variant of the student's sparkmagic config.

    Everything of the template is kept except: the Livy URL (the test server, no auth), errors
    from the remote side fail the cell (``all_errors_are_fatal``), no autoviz widgets and no
    dtype guessing (deterministic outputs), a startup timeout for a busy 2-core machine, and,
    given ``zip_path``, ``session_configs_defaults.pyFiles`` = that zip's ``file://`` URI (on
    EMR, and with the bucket's rendered template, its ``s3://`` URI).
    """
    config = copy.deepcopy(template)
    creds = dict(config.get("kernel_python_credentials") or {})
    creds.update({"username": "", "password": "", "base64_password": "", "auth": "None"})
    creds["url"] = url
    config["kernel_python_credentials"] = creds
    if "kernel_python3_credentials" in config:
        config["kernel_python3_credentials"] = dict(creds)
    config.update(
        {
            "all_errors_are_fatal": True,
            "use_auto_viz": False,
            "coerce_dataframe": False,
            "livy_session_startup_timeout_seconds": 240,
            "wait_for_idle_timeout_seconds": 120,
        }
    )
    defaults = dict(config.get("session_configs_defaults") or {})
    if zip_path is not None:
        defaults["pyFiles"] = [zip_path.resolve().as_uri()]  # whitelisted by the server fixture
    # Sizes meant for cluster nodes do not fit a 2-core test machine.
    for key in ("driverMemory", "executorMemory"):
        if key in defaults:
            defaults[key] = "1g"
    for key in ("driverCores", "executorCores", "numExecutors"):
        defaults.pop(key, None)
    config["session_configs_defaults"] = defaults
    return config


def load_template() -> Dict[str, Any]:
    if not TEMPLATE.is_file():
        pytest.fail(f"{TEMPLATE} is missing: the sparkmagic test config is derived from it")
    return json.loads(TEMPLATE.read_text())


def configure_body(source: str) -> Optional[Tuple[str, Dict[str, Any]]]:
    """The first line and JSON body of a ``%%configure`` cell, or None for other cells."""
    first, _, body = source.partition("\n")
    if not first.strip().startswith("%%configure"):
        return None
    return first, json.loads(body)


def point_at_zip(nb: Any, zip_path: Path) -> int:
    """Replace every ctr_lab zip in the notebook's ``%%configure`` bodies by ``zip_path``.

    The notebooks name the zip by its ``s3://`` URI (``pyFiles`` or ``conf.spark.submit.pyFiles``);
    here it is the local zip. Other entries stay. Returns the number of entries replaced.
    """
    replaced = 0
    zip_uri = zip_path.resolve().as_uri()
    for cell in nb.cells:
        parsed = configure_body(cell.source) if cell.cell_type == "code" else None
        if parsed is None:
            continue
        first, body = parsed
        if isinstance(body.get("pyFiles"), list):
            new = [zip_uri if ZIP_NAME.search(p) else p for p in body["pyFiles"]]
            replaced += sum(a != b for a, b in zip(new, body["pyFiles"]))
            body["pyFiles"] = new
        conf = body.get("conf") or {}
        if conf.get("spark.submit.pyFiles"):
            entries = conf["spark.submit.pyFiles"].split(",")
            new = [zip_uri if ZIP_NAME.search(p.strip()) else p for p in entries]
            replaced += sum(a != b for a, b in zip(new, entries))
            conf["spark.submit.pyFiles"] = ",".join(new)
        cell.source = first + "\n" + json.dumps(body, indent=1)
    return replaced


# ----------------------------------------------------------------------------------------------
# Talking to the server and to processes
# ----------------------------------------------------------------------------------------------


def call(url: str, method: str = "GET", body: Any = None) -> Tuple[int, Any]:
    data = None if body is None else json.dumps(body).encode()
    req = urllib.request.Request(
        url, method=method, data=data, headers={"Content-Type": "application/json"}
    )
    try:
        with urllib.request.urlopen(req, timeout=30) as resp:
            return resp.status, json.loads(resp.read() or b"null")
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read() or b"null")


def wait_for(predicate, timeout: float, what: str, interval: float = 0.3):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value is not None and value is not False:  # 0 is a valid session id
            return value
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what}")


def run_statement(base: str, sid: int, code: str, timeout: float = 300) -> Dict[str, Any]:
    status, stmt = call(f"{base}/sessions/{sid}/statements", "POST", {"code": code})
    assert status == 201, stmt

    def done():
        _, s = call(f"{base}/sessions/{sid}/statements/{stmt['id']}")
        return s if s["state"] in ("available", "cancelled") else None

    return wait_for(done, timeout, f"statement {code!r}", interval=0.1)


def start_session(base: str, body: Dict[str, Any], timeout: float = 300) -> Dict[str, Any]:
    status, session = call(f"{base}/sessions", "POST", body)
    assert status == 201, session
    sid = session["id"]

    def ready():
        _, s = call(f"{base}/sessions/{sid}")
        assert s["state"] in ("starting", "idle"), s
        return s if s["state"] == "idle" else None

    return wait_for(ready, timeout, f"session {sid} to start")


def run_nbval(notebook: Path, kernel: str, conf_dir: Path, run_dir: Path, strict: bool = False):
    """``pytest --nbval-lax`` on one notebook with the sparkmagic kernel, in a subprocess.

    ``strict``: ``--nbval`` instead, every output compared with the committed one, sanitized
    with ``notebooks/nbval_sanitize.cfg`` as the local runs are. ``nbval_checks`` (this folder)
    also fails ``%matplot`` cells that show no image, and leaves sparkmagic's progress widgets
    out of the comparison. The run's own pytest settings are empty (``run_dir/pytest.ini``),
    not the repository's.
    """
    ini = run_dir / "pytest.ini"
    if not ini.exists():
        ini.write_text("[pytest]\n")
    env = {k: v for k, v in os.environ.items() if not k.startswith("PYTEST_")}
    env["SPARKMAGIC_CONF_DIR"] = str(conf_dir)
    env["PYTHONPATH"] = str(HERE)  # for -p nbval_checks
    command = [
        sys.executable,
        "-m",
        "pytest",
        "-p",
        "no:cacheprovider",
        "-p",
        "nbval_checks",
        "-q",
        *(
            ["--nbval", f"--nbval-sanitize-with={REPO / 'notebooks' / 'nbval_sanitize.cfg'}"]
            if strict
            else ["--nbval-lax"]
        ),
        f"--nbval-kernel-name={kernel}",
        "--nbval-kernel-startup-timeout=120",
        "--nbval-cell-timeout=1500",
        "-c",
        str(ini),
        "--rootdir",
        str(run_dir),
        str(notebook),
    ]
    return subprocess.run(
        command, cwd=notebook.parent, env=env, capture_output=True, text=True, check=False
    )
