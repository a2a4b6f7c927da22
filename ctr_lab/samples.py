"""The committed data samples, by logical name, with the recipe and checksum of each file.

Notebooks ask for a sample by name (``sample_path("avazu_raw_50k")``) instead of hard-coding a path.
``python -m ctr_lab.samples --write`` regenerates ``data_samples/`` and its README table;
``--check`` regenerates into a scratch folder and compares checksums.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import re
import sys
import tempfile
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


def build(sample: Sample, folder: Path) -> Dict[str, str]:
    """Generate ``sample`` into ``folder``; return {file name: sha256}."""
    from ctr_lab.synth import write_dataset

    folder.mkdir(parents=True, exist_ok=True)
    truth = folder / sample.truth_file if sample.truth_file else None
    write_dataset(
        folder / sample.data_file,
        rows=sample.rows,
        seed=sample.seed,
        fmt=sample.fmt,
        truth_path=truth,
        damage=sample.damage,
    )
    return {name: sha256_of(folder / name) for name in sample.files()}


def _readme_table(checksums: Dict[str, str]) -> str:
    rows = ["| file | rows | what | sha256 |", "|---|---|---|---|"]
    for sample in SAMPLES.values():
        for name in sample.files():
            what = sample.about if name == sample.data_file else "true click probability per id"
            rows.append(f"| `{name}` | {sample.rows:,} | {what} | `{checksums[name]}` |")
    return "\n".join(rows)


def write_readme(folder: Path, checksums: Dict[str, str]) -> None:
    """Write ``folder/README.md``: what each sample is, the command that makes it, its sha256."""
    import numpy

    commands = "\n".join(s.command() for s in SAMPLES.values())
    text = f"""# data_samples

Small samples made by the lab's synthetic generator (`ctr_lab.synth`), committed so that the
notebooks and tests run without generating anything. Use them by name:
`ctr_lab.samples.sample_path("avazu_raw_50k")` checks the file against the sha256 below.

{_readme_table(checksums)}

Made with (numpy {numpy.__version__}; `make samples` runs the same):

```bash
{commands}
```

The test suite regenerates every file and compares checksums, so a change to the generator that
changes its output shows up as a failing test until the samples are remade (`make samples`).
"""
    (folder / "README.md").write_text(text)


def main(argv: Optional[List[str]] = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m ctr_lab.samples", description=__doc__)
    action = parser.add_mutually_exclusive_group(required=True)
    action.add_argument("--write", action="store_true", help="regenerate data_samples/")
    action.add_argument("--check", action="store_true", help="regenerate and compare checksums")
    args = parser.parse_args(argv)
    folder = samples_dir()
    if args.write:
        checksums: Dict[str, str] = {}
        for sample in SAMPLES.values():
            checksums.update(build(sample, folder))
        write_readme(folder, checksums)
        for name, digest in checksums.items():
            print(f"{digest}  data_samples/{name}")
        return 0
    recorded = recorded_checksums()
    with tempfile.TemporaryDirectory() as scratch:
        bad = []
        for sample in SAMPLES.values():
            for name, digest in build(sample, Path(scratch)).items():
                if recorded.get(name) != digest:
                    bad.append(name)
    if bad:
        print(f"samples differ from data_samples/README.md: {', '.join(bad)}", file=sys.stderr)
        return 1
    print("all samples reproduce")
    return 0


if __name__ == "__main__":
    sys.exit(main())
