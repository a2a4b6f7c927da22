"""`ctr-lab bench --profile`: a real Spark event log, added up per job group, checked against
Spark's own status tracker, the csv module and the files on disk.
"""

from __future__ import annotations

import csv
import glob
import json
import os
import subprocess
import sys
import textwrap

import pytest

from ctr_lab.errors import CtrLabError
from ctr_lab.tools import bench, bench_profile

pytestmark = pytest.mark.tools

ROWS = 3_000

#: A small Spark application: three job groups (a scan, a group-by, a Parquet write) over a
#: CSV split into several tasks, its event log on; it prints what Spark's status tracker says
#: about each group, a reference independent of the event log.
APP = textwrap.dedent(
    """
    import json, os, sys
    from pyspark.sql import SparkSession

    data, logs, written = sys.argv[1:4]
    spark = (
        SparkSession.builder.master("local[2]")
        .config("spark.ui.enabled", "false")
        .config("spark.eventLog.enabled", "true")
        .config("spark.eventLog.dir", "file://" + logs)
        .config("spark.sql.shuffle.partitions", "3")
        .config("spark.sql.files.maxPartitionBytes", "8k")
        .getOrCreate()
    )
    sc = spark.sparkContext
    df = spark.read.schema("k int, v int").option("header", True).csv("file://" + data)
    sc.setJobGroup("scan", "read every row")
    df.write.format("noop").mode("overwrite").save()
    sc.setJobGroup("shuffle", "a group-by")
    df.groupBy("k").count().collect()
    sc.setJobGroup("write", "a Parquet copy")
    df.write.parquet("file://" + written)
    tracker, reference = sc.statusTracker(), {}
    for group in ("scan", "shuffle", "write"):
        jobs = tracker.getJobIdsForGroup(group)
        stages = {s for j in jobs for s in tracker.getJobInfo(j).stageIds}
        infos = [tracker.getStageInfo(s) for s in stages]
        reference[group] = {
            "jobs": len(jobs),
            "tasks": sum(i.numCompletedTasks for i in infos if i is not None),
        }
    spark.stop()
    print("REFERENCE " + json.dumps(reference))
    """
)


@pytest.fixture(scope="module")
def app_log(tmp_path_factory):
    """The event log folder of :data:`APP`, its CSV, its Parquet output and its reference."""
    out = tmp_path_factory.mktemp("profile")
    data, logs, written = out / "rows.csv", out / "events", out / "copy.parquet"
    logs.mkdir()
    with open(data, "w", newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow(["k", "v"])
        writer.writerows([i % 7, i] for i in range(ROWS))
    done = subprocess.run(
        [sys.executable, "-c", APP, str(data), str(logs), str(written)],
        capture_output=True, text=True, timeout=600,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-2000:]
    line = next(x for x in done.stdout.splitlines() if x.startswith("REFERENCE "))
    return {
        "logs": str(logs),
        "data": str(data),
        "written": str(written),
        "reference": json.loads(line[len("REFERENCE ") :]),
    }


def test_totals_per_job_group_match_the_status_tracker_and_the_files(app_log):
    totals = bench_profile.profile(app_log["logs"])
    reference = app_log["reference"]
    assert set(totals) == set(reference)  # every job ran in a group
    for group, expected in reference.items():
        assert totals[group]["jobs"] == expected["jobs"], group
        assert totals[group]["tasks"] == expected["tasks"], group
        assert totals[group]["stages"] >= 1 and totals[group]["task_seconds"] > 0
        assert totals[group]["gc_seconds"] >= 0
        assert totals[group]["spill_disk_bytes"] == 0
    assert totals["scan"]["tasks"] > 1  # the CSV was split, so tasks are really added up
    with open(app_log["data"], newline="") as fh:
        rows = sum(1 for _ in csv.reader(fh)) - 1  # less the header
    assert totals["scan"]["input_records"] == rows == ROWS
    assert totals["scan"]["input_bytes"] >= os.path.getsize(app_log["data"])
    parts = glob.glob(os.path.join(app_log["written"], "part-*.parquet"))
    assert totals["write"]["output_records"] == rows
    assert totals["write"]["output_bytes"] == sum(os.path.getsize(p) for p in parts)
    assert totals["scan"]["output_records"] == totals["shuffle"]["output_records"] == 0
    # Shuffle bytes exactly where the plan shuffles: the group-by.
    for key in ("shuffle_read_bytes", "shuffle_write_bytes"):
        assert {g for g, t in totals.items() if t[key] > 0} == {"shuffle"}, key


def test_reader_takes_the_log_file_or_its_folder_and_names_bad_input(app_log, tmp_path):
    (log_file,) = bench_profile.event_log_files(app_log["logs"])
    events = list(bench_profile.read_events(log_file))
    assert events[0]["Event"] == "SparkListenerLogStart"
    assert bench_profile.aggregate(events) == bench_profile.profile(app_log["logs"])
    with pytest.raises(CtrLabError, match="holds 0 event logs"):
        bench_profile.profile(str(tmp_path))
    squeezed = tmp_path / "local-1.lz4"  # Spark's LZ4 block stream: no reader here
    squeezed.write_bytes(b"LZ4Block")
    with pytest.raises(CtrLabError, match=r"local-1\.lz4: event log compressed with lz4"):
        list(bench_profile.read_events(str(squeezed)))
    broken = tmp_path / "local-2"
    broken.write_text('{"Event": "SparkListenerLogStart"}\nnot json\n')
    with pytest.raises(CtrLabError, match="line 2: not a JSON event"):
        list(bench_profile.read_events(str(broken)))


def test_profiled_stages_run_their_jobs_in_their_own_groups_and_score_the_same(spark):
    from pyspark.ml.classification import LogisticRegression
    from pyspark.ml.feature import OneHotEncoder, StringIndexer, VectorAssembler

    rows = [(f"c{i % 5}", float(i % 3), float(i % 2)) for i in range(200)]
    df = spark.createDataFrame(rows, ["c", "x", "label"])
    train, test = df.limit(150), df.limit(50)

    def stages():
        return [
            StringIndexer(inputCol="c", outputCol="ci"),
            OneHotEncoder(inputCol="ci", outputCol="co"),
            VectorAssembler(inputCols=["co", "x"], outputCol="features"),
            LogisticRegression(maxIter=3),
        ]

    plain = bench._fit_featurized_and_score(stages(), train, test, bench._Timer())
    timer = bench._Timer(profile=True)
    profiled = bench._fit_featurized_and_score(stages(), train, test, timer)
    assert list(profiled[1]) == pytest.approx(list(plain[1]), abs=1e-12)  # same predictions
    assert profiled[2] == plain[2]  # same iterations
    names = [
        "featurize/1 StringIndexer",
        "featurize/2 OneHotEncoder",
        "featurize/3 VectorAssembler",
    ]
    assert set(timer.parts) == {*names, "featurize", "fit", "score"}
    tracker = spark.sparkContext.statusTracker()
    assert tracker.getJobIdsForGroup(names[0])  # StringIndexer counts its labels
    assert len(tracker.getJobIdsForGroup("fit")) >= plain[2]  # a pass per L-BFGS iteration
    assert tracker.getJobIdsForGroup("score")
    assert not tracker.getJobIdsForGroup(names[2])  # a lazy transform starts no job
    assert spark.sparkContext.getLocalProperty("spark.jobGroup.id") is None
