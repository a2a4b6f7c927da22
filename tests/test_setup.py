"""tools/setup_env.sh stops with one clear line when the machine lacks what pip cannot install."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
SCRIPT = REPO / "tools" / "setup_env.sh"
TOOLS = ["bash", "awk", "cut", "id", "cat", "env", "dirname"]


def _bin_dir(tmp_path: Path, java_version: str | None) -> Path:
    """A PATH folder with the basic tools, a python3, and a fake java (or none)."""
    folder = tmp_path / "bin"
    folder.mkdir()
    for tool in TOOLS:
        found = shutil.which(tool)
        if found:
            (folder / tool).symlink_to(found)
    (folder / "python3").symlink_to(sys.executable)
    if java_version:
        java = folder / "java"
        java.write_text(f"#!/bin/bash\necho 'openjdk version \"{java_version}\" 2024-01-01' >&2\n")
        java.chmod(0o755)
    return folder


def _run(tmp_path: Path, java_version: str | None, extras: str = "lab,dev", **env: str):
    folder = _bin_dir(tmp_path, java_version)
    full_env = {"PATH": str(folder), "HOME": str(tmp_path), "CTR_LAB_NO_SYSTEM_INSTALL": "1", **env}
    return subprocess.run(
        ["bash", str(SCRIPT), str(tmp_path / "venv"), extras],
        cwd=REPO,
        env=full_env,
        capture_output=True,
        text=True,
        timeout=60,
    )


def _one_line(result) -> str:
    assert result.returncode == 1
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert not (Path(result.args[2])).exists(), "nothing may be created when a check fails"
    return lines[0]


def test_missing_java(tmp_path):
    line = _one_line(_run(tmp_path, None))
    assert line.startswith("ctr-lab setup: Java not found") and "Java 17" in line


def test_wrong_java(tmp_path):
    line = _one_line(_run(tmp_path, "11.0.22"))
    assert "Java 11.0.22 found" in line and "needs Java 17" in line


def test_old_java_version_scheme(tmp_path):
    line = _one_line(_run(tmp_path, "1.8.0_392"))
    assert "Java 1.8.0_392 found" in line


def test_missing_kerberos_headers_names_the_package(tmp_path):
    # The PATH given to the script has no krb5-config, and system installs are off.
    line = _one_line(_run(tmp_path, "17.0.15"))
    assert "krb5-config" in line and "libkrb5-dev" in line


def test_python_too_old(tmp_path):
    old = shutil.which("python3.9")
    if old is None:
        pytest.skip("no python3.9 on this machine to play the old interpreter")
    line = _one_line(_run(tmp_path, "17.0.15", PYTHON=old))
    assert "is too old for the lab environment" in line and "Python >= 3.11" in line


def _fake(folder: Path, name: str, body: str) -> None:
    path = folder / name
    path.unlink(missing_ok=True)  # a symlink to the real tool must not be written through
    path.write_text("#!/bin/bash\n" + body)
    path.chmod(0o755)


def _system_install_run(tmp_path: Path, apt_exit: int):
    """The script as root with apt-get, where only Chromium is missing; apt-get and pip are fakes.

    Each fake writes when it starts and ends to ``events`` and takes half a second, so the order
    of the lines says whether the two ran side by side.
    """
    folder = _bin_dir(tmp_path, "17.0.15")
    for tool in ("sleep", "mkdir", "cp", "tail", "rm"):
        (folder / tool).symlink_to(shutil.which(tool) or tool)
    events = tmp_path / "events"
    log = f'echo "$1 $2 $3" >> {events}'
    _fake(folder, "id", "echo 0\n")
    _fake(folder, "krb5-config", "exit 0\n")
    _fake(
        folder,
        "apt-get",
        f'{log}; sleep 0.5; echo "apt-get end $1" >> {events}\n'
        f'if [ "$1" = install ] && [ {apt_exit} != 0 ]; then\n'
        f'  echo "E: Unable to locate package $5" >&2; exit {apt_exit}\n'
        "fi\n",
    )
    # The environment's python: plays pip and the final import. python3 answers the version
    # check and makes the environment by copying it.
    _fake(
        folder,
        "venv-python",
        'case "$1 $2" in\n'
        f'  "-m pip") {log}; sleep 0.5; echo "pip end $3" >> {events} ;;\n'
        '  "-c "*) echo "PySpark 3.5.9" ;;\n'
        "esac\n",
    )
    _fake(
        folder,
        "python3",
        'case "$1" in\n'
        "  -) cat >/dev/null ;;\n"
        "  -V) echo Python 3.11.7 ;;\n"
        f'  -m) mkdir -p "$3/bin" && cp {folder / "venv-python"} "$3/bin/python" ;;\n'
        "esac\n",
    )
    result = subprocess.run(
        ["bash", str(SCRIPT), str(tmp_path / "venv"), "lab,dev"],
        cwd=REPO,
        env={"PATH": str(folder), "HOME": str(tmp_path), "TMPDIR": str(tmp_path)},
        capture_output=True,
        text=True,
        timeout=60,
    )
    return result, events.read_text().splitlines()


def test_chromium_installs_beside_pip(tmp_path):
    result, events = _system_install_run(tmp_path, apt_exit=0)
    assert result.returncode == 0, result.stderr
    assert "beside pip" in result.stdout
    pip_started = events.index("-m pip install")
    apt_ended = events.index("apt-get end install")
    assert pip_started < apt_ended, events  # pip did not wait for apt-get
    assert not list(tmp_path.glob("ctr-lab-chromium-*.log")), "the log goes when all went well"


def test_a_failed_chromium_install_stops_the_setup_with_its_log(tmp_path):
    result, _ = _system_install_run(tmp_path, apt_exit=100)
    assert result.returncode == 1
    assert "E: Unable to locate package chromium" in result.stderr
    last = result.stderr.strip().splitlines()[-1]
    assert last.startswith("ctr-lab setup: apt-get could not install chromium and chromium-driver")
    assert "ctr-lab-chromium-" in last
