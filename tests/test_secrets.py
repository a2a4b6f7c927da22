"""No committed file carries a credential: AWS keys, tokens, private keys, passwords in configs."""

from __future__ import annotations

import re
import subprocess
import zlib
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]

PATTERNS = {
    "AWS access key id": re.compile(r"\b(?:AKIA|ASIA|AGPA|AIDA|AROA|ANPA)[0-9A-Z]{16}\b"),
    "AWS secret access key": re.compile(
        r"(?i)aws_?secret_?access_?key[\"']?\s*[:=]\s*[\"']?[A-Za-z0-9/+]{40}\b"
    ),
    "AWS session token": re.compile(
        r"(?i)aws_?session_?token[\"']?\s*[:=]\s*[\"']?[A-Za-z0-9/+=]{100,}"
    ),
    "private key": re.compile(r"-----BEGIN (?:RSA |EC |DSA |OPENSSH |ENCRYPTED )?PRIVATE KEY-----"),
    "GitHub token": re.compile(r"\b(?:ghp|gho|ghu|ghs|ghr)_[A-Za-z0-9]{36}\b"),
    "Slack token": re.compile(r"\bxox[abprs]-[A-Za-z0-9-]{10,}"),
    "password in a config": re.compile(r"(?i)[\"']password[\"']\s*:\s*[\"'][^\"']+[\"']"),
}


def scan(text: str):
    """Names of the credential patterns found in ``text``."""
    return sorted(name for name, pattern in PATTERNS.items() if pattern.search(text))


def committed_files():
    listed = subprocess.run(
        ["git", "ls-files", "-z"], cwd=REPO, capture_output=True, check=True
    ).stdout.split(b"\0")
    return [REPO / name.decode() for name in listed if name]


def read_text(path: Path) -> str:
    data = path.read_bytes()
    if data[:2] == b"\x1f\x8b":
        # Decompress as far as the data goes: the corpus holds a deliberately truncated gzip.
        data = zlib.decompressobj(wbits=31).decompress(data)
    return data.decode("utf-8", errors="replace")


def test_the_scanner_finds_planted_credentials():
    # Built at run time so that this file itself holds no credential-shaped text.
    planted = {
        "AWS access key id": "AKIA" + "ABCDEFGHIJ234567",
        "AWS secret access key": "aws_secret_access_key = " + "a1B2" * 10,
        "private key": "-----BEGIN " + "RSA PRIVATE KEY-----",
        "GitHub token": "ghp_" + "x1" * 18,
        "password in a config": '{"password": "' + "hunter2" + '"}',
    }
    for name, text in planted.items():
        assert name in scan(text), name
    assert scan('{"password": ""}') == []


def test_git_lists_files():
    if not (REPO / ".git").exists():
        pytest.skip("not a git checkout")
    assert any(p.name == "pyproject.toml" for p in committed_files())


def test_no_committed_file_holds_a_credential():
    if not (REPO / ".git").exists():
        pytest.skip("not a git checkout")
    found = {}
    for path in committed_files():
        if path.is_file():
            hits = scan(read_text(path))
            if hits:
                found[str(path.relative_to(REPO))] = hits
    assert found == {}
