"""Queries on the rows ``ctr_lab.load`` returns: a join, a time split, a kept copy's write.

Each query runs in a fresh process on a warm session (a first load of ``course_10k`` compiles
the loader's code), so a slow plan shows as seconds the query alone spent:

- ``join``: the rows, neither cached nor kept, joined to five of their own ids. Spark 3.5 spent
  about 20 s planning it while the row check held the projected columns' expressions
  (BENCHMARKS.md, "Loading").
- ``split``: ``time_split`` of the same rows and a count of the training days.
- ``kept``: ``load(cache_dir=)`` of ``--kept FILE`` into a new folder, the pass that validates the
  text and writes the Parquet copy (left out without ``--kept``).

    python benchmarks/load_queries.py                             # the 50k sample, 2 runs
    python benchmarks/load_queries.py --kept r1m.csv --runs 4     # and a 1M-row file's copy
"""

from __future__ import annotations

import argparse
import subprocess
import sys

CHILD = """
import json, sys, tempfile, time
import ctr_lab as cl
from ctr_lab.session import get_spark
query, data, kept = sys.argv[1:4]
spark = get_spark()
cl.load("course_10k", spark).df.count()
start = time.perf_counter()
if query == "join":
    df = cl.load(data, spark).df
    df.join(df.select("id").limit(5), "id").collect()
elif query == "split":
    train_df, _ = cl.train.time_split(cl.load(data, spark).df)
    train_df.count()
else:
    with tempfile.TemporaryDirectory() as folder:
        cl.load(kept, spark, cache_dir=folder)
print(json.dumps({"query": query, "seconds": round(time.perf_counter() - start, 1)}))
"""


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", default="avazu_raw_50k", help="a sample's name or a path")
    parser.add_argument("--kept", help="a file to time load(cache_dir=) on")
    parser.add_argument("--runs", type=int, default=2)
    args = parser.parse_args(argv)
    queries = ["join", "split"] + (["kept"] if args.kept else [])
    for _ in range(args.runs):
        for query in queries:
            out = subprocess.run(
                [sys.executable, "-c", CHILD, query, args.data, args.kept or ""],
                check=True,
                capture_output=True,
                text=True,
            ).stdout
            print(out.strip().splitlines()[-1], flush=True)  # the child's JSON line
    return 0


if __name__ == "__main__":
    sys.exit(main())
