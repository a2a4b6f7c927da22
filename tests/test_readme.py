"""The README's Python examples run as written."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
BLOCKS = re.findall(r"```python\n(.*?)```", (REPO / "README.md").read_text(), re.S)


def test_readme_has_python_examples():
    assert BLOCKS


@pytest.mark.parametrize("code", BLOCKS, ids=[f"block{i}" for i in range(len(BLOCKS))])
def test_readme_example_runs(code, spark, monkeypatch, capsys):
    monkeypatch.chdir(REPO)
    exec(compile(code, "README.md", "exec"), {})
    assert "load report" in capsys.readouterr().out
