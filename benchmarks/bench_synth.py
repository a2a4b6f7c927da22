"""Generator throughput: rows/s and peak memory by size and output kind.

Each measurement runs in a fresh process, so peak memory is that run's alone.

    python benchmarks/bench_synth.py                      # 100k and 1M rows
    python benchmarks/bench_synth.py --rows 10000000      # add a size
    python benchmarks/bench_synth.py --json build/bench/synth.json
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile

CHILD = """
import json, resource, sys
from ctr_lab.tools import synth
rows, suffix, out = int(sys.argv[1]), sys.argv[2], sys.argv[3]
truth = out + ".truth.csv.gz" if suffix == ".csv.gz" else None
report = synth.write_dataset(out, rows=rows, seed=0, truth_path=truth)
peak_mib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
print(json.dumps({**report.to_dict(), "peak_mib": peak_mib}))
"""


def machine() -> dict:
    """The facts about this machine a reader needs to compare numbers."""
    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as fh:
            names = [line.split(":", 1)[1].strip() for line in fh if line.startswith("model name")]
        cpu = names[0] if names else cpu
    except OSError:
        pass
    pages = os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    return {
        "cpu": cpu,
        "cores": os.cpu_count(),
        "memory_gib": round(pages / 2**30, 1),
        "python": platform.python_version(),
        "os": f"{platform.system()} {platform.release()}",
    }


def run_one(rows: int, suffix: str, folder: str) -> dict:
    out = os.path.join(folder, f"bench_{rows}{suffix}")
    done = subprocess.run(
        [sys.executable, "-c", CHILD, str(rows), suffix, out],
        check=True,
        capture_output=True,
        text=True,
    )
    result = json.loads(done.stdout.strip().splitlines()[-1])
    result["bytes"] = os.path.getsize(out)
    result["suffix"] = suffix
    return result


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, action="append", help="sizes (default 100k and 1M)")
    parser.add_argument("--kinds", default=".csv.gz,.csv,.parquet", help="output kinds")
    parser.add_argument("--json", help="also write the results here")
    args = parser.parse_args(argv)
    sizes = args.rows or [100_000, 1_000_000]
    results = []
    with tempfile.TemporaryDirectory() as folder:
        for rows in sizes:
            for suffix in args.kinds.split(","):
                results.append(run_one(rows, suffix, folder))
                for name in os.listdir(folder):
                    os.remove(os.path.join(folder, name))
    print(f"machine: {json.dumps(machine())}")
    print()
    print("| rows | output | seconds | rows/s | MB written | peak MiB | CTR | Bayes log loss |")
    print("|---:|---|---:|---:|---:|---:|---:|---:|")
    for r in results:
        extra = " + truth" if r["suffix"] == ".csv.gz" else ""
        print(
            f"| {r['rows']:,} | `{r['suffix']}`{extra} | {r['seconds']:.1f} | "
            f"{r['rows_per_second']:,.0f} | {r['bytes'] / 1e6:.1f} | {r['peak_mib']:.0f} | "
            f"{r['ctr']:.4f} | {r['bayes_logloss']:.4f} |"
        )
    if args.json:
        os.makedirs(os.path.dirname(os.path.abspath(args.json)), exist_ok=True)
        with open(args.json, "w") as fh:
            json.dump({"machine": machine(), "results": results}, fh, indent=2)
    return 0


if __name__ == "__main__":
    sys.exit(main())
