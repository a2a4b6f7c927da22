"""A class-data sharing archive that makes the local Spark driver start faster.

Every notebook opened in Jupyter starts its own Spark driver JVM (``ctr-lab run`` starts one
for all), and a fresh JVM spends seconds loading and verifying the same ~20,000 Spark, Scala and
Hadoop classes before its first job, and more before its first model. Java 17's dynamic
class-data sharing (JEP 350) records those classes once, in their loaded form, in an archive
file; later JVMs map the file instead of loading the classes again. ``ctr-lab jvm-archive``
builds the archive by running a small case study (load, featurize, fit, save, reload, evaluate)
in a JVM that writes it on exit; :func:`ctr_lab.session.java_options` hands it to every local
session :func:`ctr_lab.session.get_spark` starts.

The archive belongs to one environment: it is kept under the environment's prefix and named
after its PySpark version. The JVM checks it against the JDK build and the class path at start
and ignores it silently when they differ (another JDK, another Spark): the session is then as
slow as without it, never wrong. ``make`` builds it when it sets up ``.venv``.

Environment variables:

``CTR_LAB_JVM_ARCHIVE``
    The archive's path, or ``off`` to start local sessions without one.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from typing import Any, Dict, Optional

from ctr_lab.errors import CtrLabError
from ctr_lab.session import _DUMP_ENV, archive_path


def build_archive(
    path: Optional[str] = None, quick: bool = False, timeout: float = 900.0
) -> Dict[str, Any]:
    """Run the warm-up case study in a child process whose JVM writes the archive to ``path``.

    ``quick`` runs a smaller warm-up (one small model): built in seconds, but fewer of the
    classes a notebook loads come from the archive.

    The archive is written next to ``path`` and renamed into place only when complete, so a
    failed or interrupted build leaves the previous archive (or none) in use.

    Returns
    -------
    dict
        ``path``, ``bytes`` and ``seconds``.

    Raises
    ------
    CtrLabError
        The warm-up failed or the JVM wrote no archive; the message has the reason.
    """
    path = os.path.abspath(path or archive_path())
    if os.path.basename(path) == "off":
        raise CtrLabError("CTR_LAB_JVM_ARCHIVE is off. Fix: unset it or set it to a file path")
    os.makedirs(os.path.dirname(path), exist_ok=True)
    partial = f"{path}.tmp-{os.getpid()}"
    env = dict(os.environ, CTR_LAB_JVM_ARCHIVE="off", **{_DUMP_ENV: partial})
    env.pop("CTR_LAB_MASTER", None)  # the archive is for local sessions
    started = time.perf_counter()
    try:
        with tempfile.TemporaryDirectory(prefix="ctr-lab-jvm-") as work:
            result = subprocess.run(
                [
                    sys.executable,
                    "-m",
                    "ctr_lab.tools.jvm",
                    "--warm-up",
                    *(["--quick"] if quick else []),
                ],
                cwd=work,
                env=env,
                capture_output=True,
                text=True,
                timeout=timeout,
            )
        if result.returncode != 0:
            lines = [line for line in result.stderr.strip().splitlines() if line.strip()]
            reason = lines[-1] if lines else f"exit code {result.returncode}"
            raise CtrLabError(f"the warm-up run failed ({reason[:300]}). Fix: check Java 17")
        if not os.path.isfile(partial) or os.path.getsize(partial) == 0:
            raise CtrLabError(
                "the JVM wrote no class-data archive (its JDK may lack the base CDS archive). "
                "Fix: use a JDK 17 build with class-data sharing; Spark works without it"
            )
        os.replace(partial, path)
    except subprocess.TimeoutExpired:
        raise CtrLabError(f"the warm-up run took over {timeout:.0f} s. Fix: re-run") from None
    finally:
        if os.path.exists(partial):
            os.remove(partial)
    return {
        "path": path,
        "bytes": os.path.getsize(path),
        "seconds": time.perf_counter() - started,
    }


def _warm_up(quick: bool = False) -> None:
    """The case study in small: what the notebooks' JVMs load, on 2,000 generated rows.

    The load keeps a validated copy (Parquet written and read); ``course_baseline`` covers the
    indexers and one-hot encoding; ``recommended``, fitted, saved and reloaded, covers the count
    features, hashing, the LR's 2^18-wide gradients and the models' files; a SQL query and an
    evaluation table cover the rest. With this warm-up, drivers that load, fit ``recommended``,
    reload it, evaluate and tune, or fit ``course_improved``, found as many classes in the
    archive (17,037 and 16,519) as with one that fitted, saved and reloaded every pipeline and
    tuned (17,041 and 16,518), built in 57 s instead of 97 (BENCHMARKS.md, The test suite). The
    classes a JVM loads depend on the code it runs, not on the rows: 20,000 rows gave an archive
    of the same size.
    """
    from ctr_lab import evaluate
    from ctr_lab.data import load
    from ctr_lab.session import get_spark, stop_spark
    from ctr_lab.tools.synth import write_dataset
    from ctr_lab.train import train_and_evaluate

    spark = get_spark("ctr-lab-jvm-archive")
    write_dataset("warm_up.csv.gz", rows=2_000, seed=1)
    df = load("warm_up.csv.gz", spark, cache_dir="kept").df.cache()
    train_and_evaluate(df, "course_baseline", maxIter=2)
    if not quick:
        df.createOrReplaceTempView("impressions")
        spark.sql("SELECT hour(event_time) AS h, avg(label) FROM impressions GROUP BY 1").toPandas()
        for _ in range(2):  # fit and save, then reload
            result = train_and_evaluate(df, "recommended", model_dir="models/rec", maxIter=2)
        evaluate.threshold_table(result["model"].transform(df))
    stop_spark()  # the JVM writes the archive as it exits


def _jvm_archive(args: argparse.Namespace) -> int:
    done = build_archive(args.path, quick=args.quick)
    print(
        f"JVM class-data archive: {done['path']} ({done['bytes'] / 2**20:.0f} MiB, built in "
        f"{done['seconds']:.0f} s); local Spark sessions of this environment start with it"
    )
    return 0


def add_parser(sub: argparse._SubParsersAction) -> None:
    """Add ``ctr-lab jvm-archive`` to the command line."""
    parser = sub.add_parser(
        "jvm-archive",
        help="build the class-data archive that makes local Spark start faster",
        description="Run a small case study in a JVM that records the classes it loads in a "
        "class-data sharing archive; local Spark sessions of this environment then map the "
        "archive instead of loading those classes again (a notebook's first jobs and first model "
        "run seconds sooner). `make` builds it when it sets up .venv; re-run it after changing "
        "the JDK or PySpark.",
    )
    parser.add_argument(
        "--path", help="where to write it (default: under the environment's prefix)"
    )
    parser.add_argument(
        "--quick", action="store_true", help="a smaller warm-up: seconds to build, less gained"
    )
    parser.set_defaults(func=_jvm_archive)


if __name__ == "__main__":
    if sys.argv[1:2] == ["--warm-up"] and set(sys.argv[2:]) <= {"--quick"}:
        _warm_up(quick="--quick" in sys.argv)
    else:
        sys.exit(
            "usage: python -m ctr_lab.tools.jvm --warm-up [--quick] (run by ctr-lab jvm-archive)"
        )
