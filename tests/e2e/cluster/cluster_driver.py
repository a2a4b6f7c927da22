"""A Spark driver for the cluster suite, run as its own process by the remote-side Python.

The interpreter that runs this script has PySpark but not ``ctr_lab`` (``tests/e2e/conftest.py``),
like Livy's REPL on EMR: ``ctr_lab`` becomes importable only after ``sc.addPyFile`` of the zip that
``ctr_lab.tools.bundle.build_zip`` makes, in the driver and in the executors alike.

Usage: ``python cluster_driver.py '<json spec>'``. The spec names the ``task`` (``"train"`` or
``"fit_or_load"``), the ``master``, the ``zip``, the ``data`` file, the ``out`` folder and the
pipeline ``settings``. The script prints one JSON object per line on stdout (``{"event": ...}``),
so the test that started it can follow it and kill it (or one of its executors) at the right time:

``started``
    The session is up: ``app_id``, ``driver_pid`` (the driver JVM), ``python_pid``.
``probe``
    Whether ``import ctr_lab`` works in the driver and in the executors, before and after
    ``addPyFile``, and where executors found the package.
``stages``
    The names of the Spark stages running now (printed when they change, with ``--watch``).
``result``
    The task's numbers; the fitted model's intercept and coefficients go to ``out/coef.npz``.
"""

from __future__ import annotations

import json
import os
import sys
import threading
import time


def emit(event: str, **fields) -> None:
    print(json.dumps({"event": event, "time": time.time(), **fields}), flush=True)


def import_probe(_rows):
    """Run in an executor: can this Python import ctr_lab, and from where?"""
    import os
    import sys

    try:
        import ctr_lab
    except ImportError as exc:
        yield {"ok": False, "error": str(exc), "python": sys.executable, "pid": os.getpid()}
        return
    yield {
        "ok": True,
        "file": ctr_lab.__file__,
        "version": ctr_lab.__version__,
        "python": sys.executable,
        "pid": os.getpid(),
    }


def probe_executors(sc, partitions: int = 4):
    return sc.parallelize(range(partitions), partitions).mapPartitions(import_probe).collect()


def watch_stages(sc, stop: threading.Event) -> None:
    """Print the running stages (name, attempt, failed tasks) whenever they change."""
    tracker = sc.statusTracker()
    last = None
    while not stop.is_set():
        try:
            stages = []
            for stage_id in sorted(tracker.getActiveStageIds()):
                info = tracker.getStageInfo(stage_id)
                if info is not None:
                    stages.append([stage_id, info.name, info.currentAttemptId, info.numFailedTasks])
        except Exception:  # the context is stopping
            return
        if stages != last:
            emit("stages", active=[s[1] for s in stages], stages=stages)
            last = stages
        stop.wait(0.05)


def build_session(spec):
    from pyspark.sql import SparkSession

    builder = SparkSession.builder.master(spec["master"]).appName("ctr-lab-cluster-test")
    conf = {
        # The settings ctr_lab.session.local_settings() gives every session that matter to results.
        "spark.sql.session.timeZone": "UTC",
        "spark.driver.extraJavaOptions": "-Duser.timezone=UTC",
        "spark.executor.extraJavaOptions": "-Duser.timezone=UTC",
        "spark.sql.shuffle.partitions": "4",
        "spark.sql.adaptive.coalescePartitions.enabled": "false",
        "spark.driver.host": "127.0.0.1",
        "spark.driver.bindAddress": "127.0.0.1",
        "spark.driver.memory": "1g",
        "spark.executor.memory": "512m",
        "spark.executor.cores": "1",
        "spark.cores.max": "2",
        "spark.ui.enabled": "false",
        "spark.ui.showConsoleProgress": "false",
        # A lost executor is normal here (the fault test kills one): keep retrying its tasks.
        "spark.task.maxFailures": "8",
    }
    conf.update(spec.get("conf", {}))
    for key, value in conf.items():
        builder = builder.config(key, value)
    spark = builder.getOrCreate()
    spark.sparkContext.setLogLevel("ERROR")
    return spark


def save_coefficients(model, path: str) -> None:
    import numpy as np

    from ctr_lab.train import lr_model_of

    lr = lr_model_of(model)
    np.savez(
        path,
        intercept=np.array([lr.intercept]),
        coefficients=lr.coefficients.toArray(),
    )


def main() -> int:
    spec = json.loads(sys.argv[1])
    os.makedirs(spec["out"], exist_ok=True)
    spark = build_session(spec)
    sc = spark.sparkContext
    emit(
        "started",
        app_id=sc.applicationId,
        python_pid=os.getpid(),
        driver_pid=int(sc._jvm.ProcessHandle.current().pid()),
    )

    probe = {}
    try:
        import ctr_lab
    except ImportError as exc:
        probe["driver_before"] = str(exc)
    else:
        probe["driver_before"] = "imported"
    if spec.get("probe"):
        probe["executors_before"] = probe_executors(sc)
    sc.addPyFile(spec["zip"])
    import ctr_lab

    probe["driver_after"] = ctr_lab.__file__
    if spec.get("probe"):
        probe["executors_after"] = probe_executors(sc)
    emit("probe", **probe)

    from ctr_lab import train
    from ctr_lab.data import load
    from ctr_lab.evaluate import log_loss_of

    df = load(spec["data"], spark).df.repartition(4).cache()
    rows = df.count()
    emit("loaded", rows=rows)

    stop = threading.Event()
    if spec.get("watch"):
        threading.Thread(target=watch_stages, args=(sc, stop), daemon=True).start()
    if spec["task"] == "train":
        # The same fit ``repeat`` times in this one session (a fault test disturbs a later one).
        for i in range(int(spec.get("repeat", 1))):
            emit("training", index=i)
            t0 = time.perf_counter()
            out = train.train_and_evaluate(df, spec["pipeline"], split="time", **spec["settings"])
            model = out.pop("model")
            save_coefficients(model, os.path.join(spec["out"], f"coef{i}.npz"))
            emit("trained", index=i, rows=rows, seconds=time.perf_counter() - t0, **out)
    elif spec["task"] == "fit_or_load":
        # fit_or_load calls in turn, each {"model_dir": ..., "settings": {...}}.
        train_df, test_df = train.time_split(df, test_days=1)
        for i, call in enumerate(spec["calls"]):
            emit("fitting", index=i, model_dir=call["model_dir"])
            model, info = train.fit_or_load(
                spec["pipeline"], train_df, call["model_dir"], **call["settings"]
            )
            scored = train.click_probability(model.transform(test_df))
            save_coefficients(model, os.path.join(spec["out"], f"coef{i}.npz"))
            emit("fitted", index=i, log_loss=log_loss_of(scored, "label", "p_hat"), **info)
    else:
        raise SystemExit(f"cluster_driver: unknown task {spec['task']!r}")
    stop.set()
    emit("done")
    spark.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
