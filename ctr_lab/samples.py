"""The committed data samples, by logical name, with the recipe and checksum of each file.

Notebooks ask for a sample by name (``sample_path("avazu_raw_50k")``) instead of hard-coding a path.
``make samples`` (:mod:`ctr_lab.tools.make_samples`) regenerates ``data_samples/`` and its README
table from the recipes here.
"""

from __future__ import annotations

import hashlib
import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Dict, List, Optional

from ctr_lab.errors import CtrLabError


@dataclass(frozen=True)
class Sample:
    """How one committed sample is made: generator settings and file names."""

    name: str
    rows: int
    seed: int
    fmt: str
    data_file: str
    truth_file: Optional[str] = None
    damage: bool = False
    about: str = ""

    def command(self) -> str:
        """The ``ctr-lab make-data`` command that makes this sample."""
        parts = [
            "ctr-lab make-data",
            f"--rows {self.rows}",
            f"--seed {self.seed}",
            f"--format {self.fmt}",
            f"--out data_samples/{self.data_file}",
        ]
        if self.truth_file:
            parts.append(f"--truth-out data_samples/{self.truth_file}")
        if self.damage:
            parts.append("--damage")
        return " ".join(parts)

    def files(self) -> List[str]:
        return [self.data_file] + ([self.truth_file] if self.truth_file else [])


SAMPLES: Dict[str, Sample] = {
    s.name: s
    for s in (
        Sample(
            name="avazu_raw_50k",
            rows=50_000,
            seed=2014,
            fmt="raw",
            data_file="avazu_raw_50k.csv.gz",
            truth_file="avazu_raw_50k_truth.csv.gz",
            about="Kaggle Avazu train format, with every row's true click probability",
        ),
        Sample(
            name="course_10k",
            rows=10_000,
            seed=15,
            fmt="course",
            data_file="course_10k.csv",
            damage=True,
            about="the course's 26-column format, ids damaged as a spreadsheet does",
        ),
    )
}


def samples_dir() -> Path:
    """The ``data_samples`` folder: ``$CTR_LAB_DATA_SAMPLES``, else the one beside the package."""
    configured = os.environ.get("CTR_LAB_DATA_SAMPLES")
    candidates = [Path(configured)] if configured else []
    candidates += [
        Path(__file__).resolve().parents[1] / "data_samples",
        Path.cwd() / "data_samples",
    ]
    for folder in candidates:
        if folder.is_dir():
            return folder
    raise CtrLabError(
        "data_samples folder not found (looked in "
        + ", ".join(str(c) for c in candidates)
        + "). Fix: set CTR_LAB_DATA_SAMPLES to the repository's data_samples folder"
    )


def sha256_of(path: Path) -> str:
    """Hex sha256 of a file."""
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def recorded_checksums(readme: Optional[Path] = None) -> Dict[str, str]:
    """The sha256 of each sample file as recorded in ``data_samples/README.md``."""
    text = (readme or samples_dir() / "README.md").read_text()
    return dict(re.findall(r"^\| `([^`]+)` \|.*\| `([0-9a-f]{64})` \|$", text, re.M))


def sample_path(name: str, verify: bool = True) -> str:
    """Path of a committed sample's data file, checked against its recorded sha256.

    Examples
    --------
    >>> sample_path("course_10k").endswith("data_samples/course_10k.csv")
    True
    """
    if name not in SAMPLES:
        raise CtrLabError(f"no sample named {name!r}. Fix: use one of {', '.join(SAMPLES)}")
    path = samples_dir() / SAMPLES[name].data_file
    if verify:
        want = recorded_checksums().get(path.name)
        if not path.is_file() or sha256_of(path) != want:
            raise CtrLabError(
                f"{path}: missing or changed since it was committed (sha256 differs). "
                "Fix: git checkout data_samples/, or run make samples"
            )
    return str(path)
