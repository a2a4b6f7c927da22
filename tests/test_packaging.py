"""Packaging: the conda and pip paths pin the same things, and the README shows the two commands."""

from __future__ import annotations

import re
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - the test environments run 3.11
    tomllib = pytest.importorskip("tomli")


def _pin(spec: str):
    match = re.fullmatch(r"\s*([A-Za-z0-9_.\-]+)\s*==\s*([^\s;#]+)\s*", spec)
    assert match, f"not an exact pin: {spec!r}"
    return match.group(1).lower().replace("_", "-"), match.group(2)


def _environment_yml_pins():
    """The `pip:` entries of environment.yml, read without a YAML library (the file is simple)."""
    pins, in_pip = {}, False
    for line in (REPO / "environment.yml").read_text().splitlines():
        text = line.split("#", 1)[0].rstrip()
        if re.fullmatch(r"\s*- pip:\s*", text):
            in_pip = True
            continue
        if in_pip and re.match(r"\s{6}- ", text):
            entry = text.strip()[2:].strip()
            if entry.startswith("-e"):
                continue
            name, version = _pin(entry)
            pins[name] = version
        elif in_pip and text.strip():
            in_pip = False
    return pins


def test_environment_yml_matches_pyproject_pins():
    project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    extras = project["optional-dependencies"]
    pip_pins = dict(_pin(spec) for spec in extras["lab"] + extras["dev"])
    conda_pins = _environment_yml_pins()
    assert conda_pins, "environment.yml lists no pip pins"
    only_pip = {k: v for k, v in pip_pins.items() if conda_pins.get(k) != v}
    only_conda = {k: v for k, v in conda_pins.items() if pip_pins.get(k) != v}
    assert not only_pip and not only_conda, (
        f"pyproject.toml and environment.yml disagree: pyproject {only_pip}, environment.yml "
        f"{only_conda}"
    )


def test_environment_yml_has_java_and_kerberos():
    text = (REPO / "environment.yml").read_text()
    assert re.search(r"^\s*- openjdk=17\b", text, re.M)
    assert re.search(r"^\s*- krb5\b", text, re.M)
    python = re.search(r"^\s*- python=(\d+\.\d+)", text, re.M)
    assert python and python.group(1) == "3.11"


def test_lab_pins_the_versions_emr_needs():
    extras = tomllib.loads((REPO / "pyproject.toml").read_text())["project"][
        "optional-dependencies"
    ]
    lab = dict(_pin(spec) for spec in extras["lab"])
    assert lab["pyspark"].startswith("3.5.")
    assert lab["sparkmagic"] == "0.23.0"
    assert int(lab["pandas"].split(".")[0]) < 3
    assert dict(_pin(spec) for spec in extras["spark4"])["pyspark"].startswith("4.")


def test_readme_quickstart_is_the_two_commands():
    readme = (REPO / "README.md").read_text()
    quickstart = readme.split("## Quickstart", 1)[1].split("\n## ", 1)[0]
    blocks = re.findall(r"```(?:bash|sh)?\n(.*?)```", quickstart, re.S)
    commands = [line.strip() for block in blocks for line in block.splitlines() if line.strip()]
    assert commands == ["make run", "make test"]


def test_ci_runs_make_test():
    script = (REPO / ".ci" / "run").read_text()
    assert re.search(r"^make test$", script, re.M)
