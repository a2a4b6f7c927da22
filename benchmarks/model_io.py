"""Saving and loading a fitted model: ``ctr_lab.persistence`` against PySpark's writer and reader.

Fits ``course_baseline`` and ``recommended`` (5 L-BFGS iterations) on ``course_10k`` in one
warm local session, then saves and loads each ``--runs`` times both ways:

- ``ctr_lab``: ``write_pipeline_model`` and ``read_pipeline_model`` (what ``fit_or_load``,
  ``tune`` and the grader use), no Spark job for a metadata file;
- ``pyspark``: ``model.write().save`` and ``PipelineModel.load`` with ctr_lab's stages given back
  PySpark's ``DefaultParamsWritable.write`` and ``DefaultParamsReadable.read``: the path every
  save and load took before, a Spark job (on PySpark 3.5 in a Python worker) per metadata file.

    python benchmarks/model_io.py             # 4 runs of each
    python benchmarks/model_io.py --runs 8
"""

from __future__ import annotations

import argparse
import shutil
import tempfile
import time
from pathlib import Path
from typing import Callable, List


def _seconds(step: Callable[..., object], *args: object) -> float:
    start = time.perf_counter()
    step(*args)
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=4)
    args = parser.parse_args()

    from pyspark.ml import PipelineModel
    from pyspark.ml.util import DefaultParamsReadable, DefaultParamsWritable

    import ctr_lab as cl
    from ctr_lab.persistence import (
        ParamsReadable,
        ParamsWritable,
        read_pipeline_model,
        write_pipeline_model,
    )
    from ctr_lab.session import get_spark

    spark = get_spark("model-io")
    df = cl.load("course_10k", spark).df.cache()
    df.count()
    ours_write, ours_read = ParamsWritable.write, ParamsReadable.read

    def use(pyspark: bool) -> None:
        writable = DefaultParamsWritable.write if pyspark else ours_write
        readable = DefaultParamsReadable.read if pyspark else ours_read
        ParamsWritable.write = writable  # type: ignore[method-assign]
        ParamsReadable.read = classmethod(readable.__func__)  # type: ignore[method-assign]

    with tempfile.TemporaryDirectory() as folder:
        for name in ("course_baseline", "recommended"):
            model = cl.train.fit_featurized(cl.train.build_pipeline(name, maxIter=5), df)
            for way, save, load in (
                ("ctr_lab", write_pipeline_model, read_pipeline_model),
                ("pyspark", lambda m, p: m.write().save(p), PipelineModel.load),
            ):
                use(pyspark=way == "pyspark")
                saves: List[float] = []
                loads: List[float] = []
                for run in range(args.runs):
                    path = str(Path(folder, f"{name}-{way}-{run}"))
                    saves.append(_seconds(save, model, path))
                    loads.append(_seconds(load, path))
                    shutil.rmtree(path)
                use(pyspark=False)
                print(
                    f"{name:16s} {way:8s} save "
                    + " ".join(f"{s:.2f}" for s in saves)
                    + "  load "
                    + " ".join(f"{s:.2f}" for s in loads),
                    flush=True,
                )
    spark.stop()


if __name__ == "__main__":
    main()
