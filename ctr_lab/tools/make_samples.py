"""Regenerate the committed samples from their recipes (``make samples``).

``python -m ctr_lab.tools.make_samples --write`` regenerates ``data_samples/`` and its README
table; ``--check`` regenerates into a scratch folder and compares checksums.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path
from typing import Dict, List, Optional

from ctr_lab.samples import SAMPLES, Sample, recorded_checksums, samples_dir, sha256_of


def build(sample: Sample, folder: Path) -> Dict[str, str]:
    """Generate ``sample`` into ``folder``; return {file name: sha256}."""
    from ctr_lab.tools.synth import write_dataset

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

Small samples made by the lab's synthetic generator (`ctr_lab.tools.synth`), committed so that the
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
    parser = argparse.ArgumentParser(
        prog="python -m ctr_lab.tools.make_samples", description=__doc__
    )
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
