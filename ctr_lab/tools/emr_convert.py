"""One-time conversion of a gzip CSV (the Avazu ``train.gz``) to Parquet, for ``spark-submit``.

gzip is not splittable: Spark reads a ``.gz`` file in one task on one core, however large the
cluster. Reading it once and writing Parquet in many part files makes every later read parallel.
The columns and values stay exactly as in the CSV (every column a string, the header's names), so
``ctr_lab.load`` validates the Parquet as it would the CSV, and nothing is lost or reinterpreted.

Run it on the cluster with ``ctr-lab emr convert`` (an EMR step), or by hand::

    spark-submit --deploy-mode cluster emr_convert.py s3://B/ctr-lab/data/avazu/train.gz \\
        s3://B/ctr-lab/data/avazu/train_parquet

This file imports nothing from ``ctr_lab`` so that ``spark-submit`` can run it as a lone file.
"""

from __future__ import annotations

import argparse
import sys
import time
from typing import List, Optional

#: Part files per core of the cluster: enough tasks to keep every core busy on later reads.
DEFAULT_PARTITIONS = 96


def convert(spark, source: str, target: str, partitions: int = DEFAULT_PARTITIONS) -> int:
    """Read ``source`` (CSV or gzip CSV with a header), write ``target`` as Parquet; return rows.

    Every column is read as a string (no schema inference: that would be a second full pass
    over the gzip, again on one core). ``repartition`` right after the read spreads the rows
    over ``partitions`` tasks, so the write, and every later read, runs in parallel. An existing
    ``target`` is an error, never overwritten.
    """
    df = spark.read.option("header", "true").option("inferSchema", "false").csv(source)
    df = df.repartition(int(partitions))
    df.write.mode("errorifexists").parquet(target)
    return int(spark.read.parquet(target).count())


def main(argv: Optional[List[str]] = None) -> int:
    """``spark-submit emr_convert.py SOURCE TARGET [--partitions N]``."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("source", help="CSV or .csv.gz/.gz file with a header (s3:// or local)")
    parser.add_argument("target", help="Parquet folder to create (must not exist)")
    parser.add_argument("--partitions", type=int, default=DEFAULT_PARTITIONS)
    args = parser.parse_args(argv)
    if args.partitions < 1:
        parser.error("--partitions must be at least 1")
    from pyspark.sql import SparkSession

    spark = SparkSession.builder.appName("ctr-lab convert").getOrCreate()
    start = time.perf_counter()
    rows = convert(spark, args.source, args.target, args.partitions)
    seconds = time.perf_counter() - start
    print(f"converted {rows:,} rows: {args.source} -> {args.target} in {seconds:.1f} s")
    spark.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
