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
