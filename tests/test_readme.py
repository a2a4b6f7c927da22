"""The README's Python examples and its notebook section's commands run as written."""

from __future__ import annotations

import contextlib
import json
import os
import re
import signal
import socket
import subprocess
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
README = (REPO / "README.md").read_text()
BLOCKS = re.findall(r"```python\n(.*?)```", README, re.S)


def test_readme_has_python_examples():
    assert BLOCKS


@pytest.mark.parametrize("code", BLOCKS, ids=[f"block{i}" for i in range(len(BLOCKS))])
def test_readme_example_runs(code, spark, monkeypatch, capsys):
    monkeypatch.chdir(REPO)
    exec(compile(code, "README.md", "exec"), {})
    assert "load report" in capsys.readouterr().out


# -- the notebook section's shell commands ------------------------------------------------------

SECTION = README.split("## Notebooks\n", 1)[1].split("\n## ", 1)[0]
COMMANDS = [
    line.split("#", 1)[0].strip()
    for block in re.findall(r"```bash\n(.*?)```", SECTION, re.S)
    for line in block.splitlines()
    if line.split("#", 1)[0].strip()
]


def _without_venv() -> dict:
    """This environment as a new shell has it: ``.venv`` not activated."""
    env = {
        k: v for k, v in os.environ.items() if k not in ("VIRTUAL_ENV", "MAKEFLAGS", "MAKELEVEL")
    }
    venv_bin = str(REPO / ".venv" / "bin")
    env["PATH"] = os.pathsep.join(p for p in env["PATH"].split(os.pathsep) if p != venv_bin)
    return env


def _make_lab(tmp_path) -> None:
    """``make lab`` serves JupyterLab on 127.0.0.1 at the notebook, with the local kernel."""
    port = _free_port()
    config = tmp_path / "jupyter-config"
    config.mkdir()
    # The machine's Jupyter settings, not the command: no browser to open, a free port.
    server = {"ServerApp": {"open_browser": False, "port": port, "port_retries": 0}}
    (config / "jupyter_server_config.json").write_text(json.dumps(server))
    env = {**_without_venv(), "JUPYTER_CONFIG_DIR": str(config)}
    env["JUPYTER_RUNTIME_DIR"] = str(tmp_path / "runtime")
    with open(tmp_path / "lab.log", "wb") as log:
        proc = subprocess.Popen(
            ["bash", "-c", "make lab"],
            cwd=REPO,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    try:
        pattern = re.compile(rf"http://127\.0\.0\.1:{port}/lab/tree/00_setup\.ipynb\?token=(\w+)")
        deadline = time.monotonic() + 180
        while not pattern.search((tmp_path / "lab.log").read_text(errors="replace")):
            said = (tmp_path / "lab.log").read_text(errors="replace")
            assert proc.poll() is None, f"make lab exited {proc.returncode}:\n{said[-3000:]}"
            assert time.monotonic() < deadline, f"make lab printed no address:\n{said[-3000:]}"
            time.sleep(0.5)
        token = pattern.search((tmp_path / "lab.log").read_text())[1]
        request = urllib.request.Request(
            f"http://127.0.0.1:{port}/api/kernelspecs", headers={"Authorization": f"token {token}"}
        )
        # The address is printed as the server starts; under load its first connection can
        # still be refused for a moment, so the first request is tried again until the deadline.
        while True:
            try:
                with urllib.request.urlopen(request, timeout=30) as reply:
                    specs = json.load(reply)["kernelspecs"]
                break
            except urllib.error.URLError as exc:
                refused = isinstance(exc.reason, ConnectionRefusedError)
                if not refused or time.monotonic() > deadline or proc.poll() is not None:
                    raise
                time.sleep(0.5)
        assert specs["pysparkkernel"]["spec"]["display_name"] == "PySpark"  # the notebooks' own
        assert "ctr_lab.tools.magics" in specs["pysparkkernel"]["spec"]["argv"]
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(timeout=60)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_readme_notebook_commands_run_as_written(tmp_path):
    assert "make lab" in COMMANDS
    for command in COMMANDS:
        if command == "make lab":
            _make_lab(tmp_path)
            continue
        run = subprocess.run(
            ["bash", "-c", command], cwd=REPO, env=_without_venv(), capture_output=True, text=True
        )
        assert run.returncode == 0, f"{command!r} failed:\n{run.stdout}{run.stderr}"
        if "kernelspec list" in command:
            assert re.search(r"^\s*pysparkkernel\s", run.stdout, re.M), run.stdout


# -- the grading commands -------------------------------------------------------------------------

GRADING = next(b for b in re.findall(r"```bash\n(.*?)```", README, re.S) if "ctr-lab grade" in b)


@pytest.mark.tools
def test_readme_grading_commands_run_as_written(spark, tmp_path, monkeypatch):
    """The split, `ctr-lab train` and `ctr-lab grade` as the README gives them, in a fresh folder;
    the split's days and the grade's rows are checked against the sample's own text."""
    import pandas as pd

    from ctr_lab.tools.cli import main

    (tmp_path / "data_samples").symlink_to(REPO / "data_samples")
    monkeypatch.chdir(tmp_path)
    lines = [ln for ln in GRADING.splitlines() if ln and not ln.startswith("#")]
    shell = "\n".join(ln for ln in lines if not ln.startswith("ctr-lab "))
    subprocess.run(["bash", "-c", shell], check=True)
    sample = pd.read_csv(REPO / "data_samples" / "avazu_raw_50k.csv.gz", dtype=str)
    days = {n: pd.read_csv(n, dtype=str)["hour"].str[4:6] for n in ("train.csv", "test.csv")}
    assert set(days["test.csv"]) == {"30"} and "30" not in set(days["train.csv"])
    assert len(days["train.csv"]) + len(days["test.csv"]) == len(sample)
    for line in (ln for ln in lines if ln.startswith("ctr-lab ")):
        # The suite's Spark JVM keeps the folder it started in: relative paths are anchored here.
        args = [
            a if a.startswith("-") or ("/" not in a and "." not in a) else str(tmp_path / a)
            for a in line.split()[1:]
        ]
        assert main(args) == 0, line
    grade = json.loads(Path("grades/ada.json").read_text())
    assert {r["test_rows"] for r in grade["rows"]} == {len(days["test.csv"])}
    assert grade["pass"] is (grade["score"] >= grade["pass_mark"])
