"""`ctr-lab bench` on tiny data: every peer runs, the JSON has every field, numbers are right.

No timing is asserted here: speed is measured by `make bench` and recorded in BENCHMARKS.md.
"""

from __future__ import annotations

import csv
import importlib.util
import json
import math
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from sklearn.metrics import log_loss, roc_auc_score

from ctr_lab.errors import CtrLabError
from ctr_lab.tools import bench

#: The harness runs in the lab environment (PySpark 3.5) only; the pipelines it times are tested
#: on both Spark lines in test_train.py.
pytestmark = pytest.mark.tools

ROWS = 5_000
#: ``recommended`` runs in test_recommended_takes_bench_settings (with settings that keep it short).
MODEL_PEERS = ["course_ctr04", "course_baseline", "course_improved", "onehot"]
#: Iteration and hash-size caps that keep the slow peers short on 5k rows: the Spark peers' LR
#: (60 to 100 iterations, each a Spark job, mostly per-job overhead on 5k rows) and
#: scikit-learn's L-BFGS over 2^22 weights (100 iterations). The caps are checked, so the peers
#: really read them. ctr_lab's pipelines fit to their own iteration counts in notebook 04.
PEER_MAX_ITER = 5
PYTHON_HASH_BITS = 16
PYTHON_PEERS = {"sklearn_lr": "sklearn", "sklearn_sgd": "sklearn", "vw": "vowpalwabbit"}


@pytest.fixture(scope="module")
def spec(tmp_path_factory):
    """5k generated rows, their time split and truth, as every peer receives them."""
    out = tmp_path_factory.mktemp("bench")
    data = bench.prepare_data(ROWS, seed=3, data_dir=str(out / "data"))
    work = out / "work"
    work.mkdir()
    return {**data, "work_dir": str(work), "settings": {}}


def _independent_split(spec):
    """Test rows, labels and true probabilities read with the csv module, not the bench code."""
    with open(spec["data"], newline="") as fh:
        rows = [(int(r["hour"]), int(r["click"])) for r in csv.DictReader(fh)]
    with open(spec["truth"], newline="") as fh:
        truth = [float(r["p_click"]) for r in csv.DictReader(fh)]
    last_day = max(h for h, _ in rows) // 100
    test = [(y, p) for (h, y), p in zip(rows, truth) if h // 100 == last_day]
    return rows, test


def test_predictions_are_scored_as_scikit_learn_scores_them(spark, tmp_path):
    rng = np.random.default_rng(0)
    y = rng.integers(0, 2, 2_000)
    p = np.round(rng.random(2_000), 2)  # rounded: many tied scores
    path = bench._write_predictions(y, p, str(tmp_path / "p.parquet"))
    scores = bench.score_predictions(path)
    assert scores["auc"] == pytest.approx(roc_auc_score(y, p), abs=1e-12)
    assert scores["log_loss"] == pytest.approx(log_loss(y, np.clip(p, 1e-15, 1 - 1e-15)))


def test_parse_rows():
    assert bench.parse_rows(["100k,300k", "1M", "2_500"]) == [100_000, 300_000, 1_000_000, 2_500]
    for bad in (["0"], ["ten"], ["-5"]):
        with pytest.raises(CtrLabError, match="--rows"):
            bench.parse_rows(bad)


def test_prepare_data_split_and_bayes_floor(spark, spec):
    rows, test = _independent_split(spec)
    assert spec["rows"] == len(rows) == ROWS
    assert spec["test_rows"] == len(test) and spec["train_rows"] == ROWS - len(test)
    assert 0 < spec["test_rows"] < ROWS
    ys = [y for y, _ in test]
    ps = [p for _, p in test]
    by_hand = -sum(math.log(p if y else 1 - p) for y, p in test) / len(test)
    bayes = bench.score_predictions(spec["bayes_predictions"])
    assert bayes["log_loss"] == pytest.approx(by_hand, rel=1e-9)
    assert bayes["auc"] == pytest.approx(roc_auc_score(ys, ps), abs=1e-12)
    # Reused, not regenerated, on the second call.
    again = bench.prepare_data(ROWS, seed=3, data_dir=os.path.dirname(spec["data"]))
    assert again["generate_seconds"] is None and again["test_rows"] == spec["test_rows"]


#: Unregularised LR on thousands of one-hot columns and 4k rows overfits: no upper bound there.
UNREGULARISED = ("course_ctr04", "course_baseline")


@pytest.fixture(scope="module")
def bayes_log_loss(spark, spec):
    return bench.score_predictions(spec["bayes_predictions"])["log_loss"]


def _check_scored(result, spec, bayes_log_loss):
    assert result["status"] == "ok", result["note"]
    assert set(bench.RESULT_FIELDS) <= set(result)
    assert result["test_rows"] == spec["test_rows"]
    assert result["train_rows"] == spec["train_rows"]
    bench.add_scores(result, bayes_log_loss)
    assert math.isfinite(result["log_loss"]) and result["log_loss"] > bayes_log_loss
    if result["peer"] not in UNREGULARISED:
        # Better than nonsense: constant-CTR log loss is ~0.45 on this data.
        assert result["log_loss"] < 0.7
    assert 0.5 < result["auc"] <= 1.0
    vs = 100 * (result["log_loss"] / bayes_log_loss - 1)
    assert result["log_loss_vs_bayes_pct"] == pytest.approx(vs)
    for stage in ("load", "fit", "score"):
        assert result["stages"][stage] >= 0.0
    assert result["iterations"] >= 1


@pytest.mark.parametrize("peer", MODEL_PEERS)
def test_spark_peers_run_on_the_same_split(spark, spec, bayes_log_loss, peer, monkeypatch):
    monkeypatch.setattr(bench, "_CTR04_MAX_ITER", PEER_MAX_ITER)
    stages_of = bench._ctr_lab_pipeline_stages

    def capped(name, settings):  # ctr_lab's pipelines (the onehot peer's included)
        stages = stages_of(name, settings)
        stages[bench._split_at(stages)].setMaxIter(PEER_MAX_ITER)
        return stages

    monkeypatch.setattr(bench, "_ctr_lab_pipeline_stages", capped)
    result = bench.run_peer(peer, spec)
    _check_scored(result, spec, bayes_log_loss)
    assert result["iterations"] <= PEER_MAX_ITER


def test_recommended_takes_bench_settings(spark, spec, bayes_log_loss):
    settings = {
        "maxIter": 3,
        "numFeatures": 1 << 12,
        "aggregationDepth": 3,
        "maxBlockSizeInMB": 2.5,
        "staging": "parquet",
    }
    result = bench.run_peer("recommended", {**spec, "settings": settings})
    _check_scored(result, spec, bayes_log_loss)
    assert result["iterations"] <= 3
    # The LR's own settings are read back from the fitted model: they reached it.
    assert {k: result["settings"][k] for k in settings} == settings
    assert result["settings"]["regParam"] > 0


@pytest.mark.spark
def test_a_peer_whose_driver_runs_out_of_heap_is_reported_as_such_with_the_fix(spec, monkeypatch):
    # A real out-of-memory: 2^28 features make each of the LR's coefficient-sized arrays 2 GiB, on
    # a 1 GiB driver. The task that allocates one ends the local driver JVM, and the peer's own
    # error is then a later, unrelated call (at 10M rows: "An error occurred while calling
    # o2773.fit"; here the pipeline's unpersist).
    monkeypatch.setenv("CTR_LAB_DRIVER_MEMORY", "1g")
    settings = {"maxIter": 1, "numFeatures": 1 << 28}
    result = bench._run_peer_process("recommended", {**spec, "settings": settings}, timeout=600)
    assert result["status"] == "failed"
    note = result["note"]
    assert note.startswith(
        "the local Spark driver ran out of memory (spark.driver.memory=1g) and ended. "
        "Fix: CTR_LAB_DRIVER_MEMORY=2g"
    ), note
    # The JVM's own account, in the peer's log that the note names.
    log_path = note.rsplit("(", 1)[1].rstrip(")")
    assert "java.lang.OutOfMemoryError: Java heap space" in Path(log_path).read_text()


def test_scan_floor(spark, spec):
    result = bench.run_peer("scan", spec)
    assert result["status"] == "ok"
    assert result["stages"]["load"] > 0 and result["log_loss"] is None


@pytest.mark.parametrize("peer", sorted(PYTHON_PEERS))
def test_python_peers_or_their_missing_line(spark, spec, bayes_log_loss, peer, monkeypatch):
    monkeypatch.setattr(bench, "_HASH_BITS", PYTHON_HASH_BITS)
    result = bench.run_peer(peer, spec)
    if importlib.util.find_spec(PYTHON_PEERS[peer]) is None:
        assert result["status"] == "unavailable"
        assert "not installed" in result["note"]
    else:
        _check_scored(result, spec, bayes_log_loss)
        if peer == "vw":
            assert f"-b {PYTHON_HASH_BITS} " in result["settings"]["args"]
        else:
            assert result["settings"]["n_features"] == 1 << PYTHON_HASH_BITS


def _shim_hiding(folder: Path, module: str) -> Path:
    """A folder that, first on PYTHONPATH, makes ``import module`` fail like a missing package."""
    package = folder / module
    package.mkdir(parents=True)
    (package / "__init__.py").write_text(f"raise ImportError('no module named {module}')\n")
    return folder


@pytest.mark.spark
def test_cli_writes_json_table_plot_and_profile_and_names_a_missing_peer(tmp_path):
    shim = _shim_hiding(tmp_path / "shim", "vowpalwabbit")
    out = tmp_path / "out"
    json_path = tmp_path / "results.json"
    env = dict(
        os.environ,
        PYTHONPATH=os.pathsep.join([str(shim), os.environ.get("PYTHONPATH", "")]),
        CTR_LAB_MASTER="local[2]",
        CTR_LAB_DRIVER_MEMORY="1g",
        CTR_LAB_SHUFFLE_PARTITIONS="4",
    )
    done = subprocess.run(
        [sys.executable, "-m", "ctr_lab.tools", "bench", "--rows", "2k,3k", "--peers",
         "scan,sklearn_sgd,vw", "--out", str(out), "--json", str(json_path), "--profile"],
        capture_output=True, text=True, timeout=900, env=env,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-2000:]
    report = json.loads(json_path.read_text())
    assert [d["rows"] for d in report["data"]] == [2_000, 3_000]
    assert {"machine", "memory_method", "load_average_before", "results"} <= set(report)
    assert report["machine"]["driver_memory"] == "1g"  # what its Spark peers' drivers get
    by_peer = {(r["peer"], r["rows"]): r for r in report["results"]}
    assert set(by_peer) == {
        (p, n) for p in ("scan", "sklearn_sgd", "vw", "bayes") for n in (2_000, 3_000)
    }
    for result in report["results"]:
        assert set(bench.RESULT_FIELDS) <= set(result)
    for n in (2_000, 3_000):
        vw = by_peer[("vw", n)]
        assert vw["status"] == "unavailable" and "vowpalwabbit not installed" in vw["note"]
        for peer in ("scan", "sklearn_sgd"):
            r = by_peer[(peer, n)]
            assert r["status"] == "ok"
            assert r["total_seconds"] > 0 and r["rows_per_second"] > 0
            assert r["peak_rss_mib"] > 10  # a Python process with numpy, or a JVM
            assert r["cpu_seconds"] > 0
        data = next(d for d in report["data"] if d["rows"] == n)
        assert by_peer[("bayes", n)]["log_loss"] == data["bayes_log_loss"]
        assert by_peer[("sklearn_sgd", n)]["test_rows"] == data["test_rows"]
    # --profile: the Spark peer's event log, added up per stage of its run.
    scan = by_peer[("scan", 2_000)]
    rows = {row["stage"]: row for row in scan["profile"]["stages"]}
    assert list(rows) == [*bench.STAGES, "evaluate"]
    with open(report["data"][0]["data"], newline="") as fh:
        assert rows["load"]["input_records"] == sum(1 for _ in csv.DictReader(fh)) == 2_000
    assert rows["load"]["jobs"] >= 1 and rows["load"]["tasks"] >= 1
    assert rows["load"]["wall_seconds"] == scan["stages"]["load"]
    for stage in ("start", "featurize", "fit", "score"):
        assert rows[stage]["jobs"] == rows[stage]["tasks"] == 0, stage
    assert rows["evaluate"]["jobs"] == 0  # the scan peer has no predictions to evaluate
    table = (out / "bench.md").read_text()
    assert "**Profile: scan, 2,000 rows**" in table
    # A stage's row holds the earlier stages' lazy work: the report says so beside the table.
    assert "a `featurize/<i>` row holds the jobs its stage's fit started" in table
    assert "| load | " in done.stdout
    assert "| vw | unavailable: vowpalwabbit not installed (pip install vowpalwabbit)" in table
    assert "| sklearn_sgd | " in table and "floor: Bayes-optimal" in table
    assert "**Scaling**" in table
    assert (out / "bench.png").stat().st_size > 1000
    assert "| vw | unavailable" in done.stdout


def test_the_scoring_session_is_local_whatever_master_the_peers_use(monkeypatch):
    # The peers, each in its own process, run on CTR_LAB_MASTER. The parent's scoring session
    # lives from one size to the next: on a standalone cluster it held both cores while the next
    # size's peer waited for them, for ever.
    seen = []
    monkeypatch.setenv("CTR_LAB_MASTER", "spark://127.0.0.1:7077")
    monkeypatch.setattr(
        "ctr_lab.session.get_spark", lambda *a, **k: seen.append(os.environ.get("CTR_LAB_MASTER"))
    )
    bench._scoring_spark()
    assert seen == [None]
    assert os.environ["CTR_LAB_MASTER"] == "spark://127.0.0.1:7077"  # the peers' master again


def test_cli_rejects_unknown_peer(tmp_path, capsys):
    from ctr_lab.tools.cli import main

    assert main(["bench", "--rows", "1000", "--peers", "nope", "--out", str(tmp_path)]) == 1
    assert "unknown nope" in capsys.readouterr().err


@pytest.mark.parametrize(
    "setting, said",
    [("foo=1", "--set: unknown setting(s) ['foo']"), ("maxIter=abc", "--set maxIter='abc'")],
)
def test_cli_refuses_a_setting_before_any_data_is_made(tmp_path, capsys, setting, said):
    from ctr_lab.tools.cli import main

    args = ["bench", "--rows", "2k", "--peers", "recommended", "--out", str(tmp_path / "out")]
    assert main([*args, "--set", setting]) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith(f"ctr-lab: error: {said}") and "Fix: " in err
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize("timeout", ["-1", "0", "nan"])
def test_cli_refuses_a_timeout_that_is_not_a_positive_number(tmp_path, capsys, timeout):
    from ctr_lab.tools.cli import main

    with pytest.raises(SystemExit) as info:
        main(["bench", "--rows", "2k", "--out", str(tmp_path), "--timeout", timeout])
    assert info.value.code == 2
    assert f"must be a positive number, not {timeout}" in capsys.readouterr().err


def test_cli_exits_1_when_every_peer_failed(spark, tmp_path, capsys, monkeypatch):
    from ctr_lab.tools.cli import main

    def fails(peer, spec, timeout):
        result = bench._empty_result(peer, spec)
        result.update(status="failed", note="exit 1: it broke")
        return result

    monkeypatch.setattr(bench, "_run_peer_process", fails)
    monkeypatch.setattr(bench, "_stop_spark", lambda: None)  # the suite's session scores here
    args = ["bench", "--rows", "1000", "--peers", "scan,recommended", "--out", str(tmp_path)]
    assert main(args) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1
    assert err.startswith("ctr-lab: error: every peer failed (2 run(s), none ok). Fix: ")
    report = json.loads((tmp_path / "bench.json").read_text())  # still written, for the notes
    assert {r["status"] for r in report["results"] if r["peer"] != "bayes"} == {"failed"}
