"""``ctr_lab.evaluate.metrics`` of a model's scores that are not kept: the test day scored once.

What notebooks 03 and 04 do on the student's data: ``metrics(model.transform(test_df))``, the
predictions neither cached nor saved, so the query reads them straight from the model's
transform. The script generates (or reuses) the bench's data of ``--rows`` rows, loads it,
splits off the last day, fits ``--pipeline`` (5 L-BFGS iterations) and times ``metrics`` on the
unkept test-day scores ``--runs`` times after one warm-up, then counts how many times that query
scored each test row (a Python function in the scores' column counts the rows it passes).

    python benchmarks/unkept_scores.py --rows 1M
    PYTHONPATH=/path/to/other/tree python benchmarks/unkept_scores.py --rows 1M
"""

from __future__ import annotations

import argparse
import statistics
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", default="1M")
    parser.add_argument("--pipeline", default="course_baseline")
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--data-dir", default=str(REPO / "build" / "bench" / "data"))
    args = parser.parse_args()

    from pyspark.sql import functions as F
    from pyspark.sql.types import DoubleType

    import ctr_lab as cl
    from ctr_lab.session import get_spark
    from ctr_lab.tools import bench

    rows = bench.parse_rows([args.rows])[0]
    spec = bench.prepare_data(rows, seed=0, data_dir=args.data_dir)
    spark = get_spark()
    train_df, test_df = cl.train.time_split(cl.load(spec["data"], spark).df, test_days=1)
    model = cl.train.build_pipeline(args.pipeline, maxIter=5).fit(train_df)

    def score() -> float:
        start = time.perf_counter()
        cl.evaluate.metrics(model.transform(test_df))
        return time.perf_counter() - start

    score()
    seconds = [score() for _ in range(args.runs)]
    scored = spark.sparkContext.accumulator(0)

    def counted(p):
        scored.add(1)
        return p

    predictions = model.transform(test_df)
    p_click = F.udf(counted, DoubleType())(cl.evaluate.probability_of_click(predictions))
    result = cl.evaluate.metrics(predictions.withColumn("p", p_click), prob_col="p")
    print(f"ctr_lab from {Path(cl.__file__).parent}, Spark {spark.version}")
    print("| rows | test rows | pipeline | `metrics` seconds (median) | scorings per row |")
    print("|---:|---:|---|---:|---:|")
    print(
        f"| {rows:,} | {result['rows']:,} | `{args.pipeline}` | "
        f"{statistics.median(seconds):.2f} | {scored.value / result['rows']:g} |"
    )


if __name__ == "__main__":
    main()
