"""The fixed cost of ``ctr_lab.load``: small files, warm session, seconds and Py4J calls.

A load of a small file costs what its plan costs to build, analyse and run, whatever the file's
size. Each file is loaded ``--runs`` times into a new kept-copy folder (``cache_dir=``) and as
many times without one, after two warm-up rounds; the report gives the median seconds of a load
and a count of its rows, and the calls it made through Py4J (counted in
``GatewayClient.send_command``, which every call from Python to the JVM goes through).

    python benchmarks/small_loads.py                 # the tree's ctr_lab, 5 runs
    PYTHONPATH=/path/to/other/tree python benchmarks/small_loads.py --runs 5
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
FILES = ["tests/corpus/bad_hour.csv", "tests/corpus/crlf.csv", "data_samples/course_10k.csv"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()

    import ctr_lab as cl
    from ctr_lab.session import get_spark

    spark = get_spark()
    client = type(spark.sparkContext._gateway._gateway_client)
    send = client.send_command
    calls = [0]

    def counted(self, *a, **k):
        calls[0] += 1
        return send(self, *a, **k)

    client.send_command = counted

    def one(path: str, kept: bool) -> float:
        start = time.perf_counter()
        with tempfile.TemporaryDirectory() as folder:
            cl.load(path, spark, cache_dir=folder if kept else None).df.count()
        return time.perf_counter() - start

    files = [str(REPO / f) for f in FILES]
    for _ in range(2):
        for f in files:
            one(f, True)
            one(f, False)
    print(f"ctr_lab from {Path(cl.__file__).parent}, Spark {spark.version}")
    print("| file | load | seconds (median) | Py4J calls |")
    print("|---|---|---:|---:|")
    for f, name in zip(files, FILES):
        for kept in (True, False):
            seconds = []
            before = calls[0]
            for _ in range(args.runs):
                seconds.append(one(f, kept))
            per_load = (calls[0] - before) // args.runs
            how = "kept copy" if kept else "direct"
            print(f"| `{name}` | {how} | {statistics.median(seconds):.2f} | {per_load:,} |")


if __name__ == "__main__":
    main()
