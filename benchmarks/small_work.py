"""The fixed costs of small work: loads of small files and fits on 10k rows, warm session.

Work on little data costs what its plans cost to build, analyse and run, whatever the data's
size. Each file is loaded ``--runs`` times into a new kept-copy folder (``cache_dir=``) and as
many times without one; ``recommended`` and ``course_baseline`` are fitted (5 L-BFGS iterations)
on ``course_10k``'s training days and scored with ``ctr_lab.evaluate.metrics`` on its last day
``--runs`` times, and ``train_and_evaluate`` (what ``ctr-lab train`` runs) splits, fits
``course_baseline`` and scores it; all after two warm-up rounds. The report gives the median
seconds and the calls each made through Py4J (counted in ``GatewayClient.send_command``, which
every call from Python to the JVM goes through).

    python benchmarks/small_work.py                 # the tree's ctr_lab, 5 runs
    PYTHONPATH=/path/to/other/tree python benchmarks/small_work.py --runs 5
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

    df = cl.load("course_10k", spark).df.cache()
    train_df, test_df = cl.train.time_split(df, test_days=1)

    fitted = {}

    def fit(name: str) -> float:
        start = time.perf_counter()
        fitted["model"] = cl.train.build_pipeline(name, maxIter=5).fit(train_df)
        return time.perf_counter() - start

    def score() -> float:
        start = time.perf_counter()
        cl.evaluate.metrics(fitted["model"].transform(test_df))
        return time.perf_counter() - start

    def train_and_evaluate() -> float:
        start = time.perf_counter()
        cl.train.train_and_evaluate(df, "course_baseline", split="time", maxIter=5)
        return time.perf_counter() - start

    files = [str(REPO / f) for f in FILES]
    work = [
        (f"load `{name}`, kept copy", lambda f=f: one(f, True)) for f, name in zip(files, FILES)
    ]
    work += [(f"load `{name}`, direct", lambda f=f: one(f, False)) for f, name in zip(files, FILES)]
    for pipeline in ("course_baseline", "recommended"):
        work += [
            (f"fit `{pipeline}`", lambda p=pipeline: fit(p)),
            (f"`metrics` of `{pipeline}`", score),
        ]
    work.append(("`train_and_evaluate` of `course_baseline` (`ctr-lab train`)", train_and_evaluate))
    for _ in range(2):
        for _, run in work:
            run()
    print(f"ctr_lab from {Path(cl.__file__).parent}, Spark {spark.version}")
    print("| work | seconds (median) | Py4J calls |")
    print("|---|---:|---:|")
    seconds = {what: [] for what, _ in work}
    made = {what: 0 for what, _ in work}
    for _ in range(args.runs):
        for what, run in work:
            before = calls[0]
            seconds[what].append(run())
            made[what] += calls[0] - before
    for what, _ in work:
        median = statistics.median(seconds[what])
        print(f"| {what} | {median:.2f} | {made[what] // args.runs:,} |")


if __name__ == "__main__":
    main()
