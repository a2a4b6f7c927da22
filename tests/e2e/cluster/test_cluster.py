"""The recommended pipeline on a standalone cluster whose executors lack ctr_lab; a killed executor.

One cluster driver fits ``recommended`` twice in one session: the first fit undisturbed, the
second with one executor JVM killed (SIGKILL) while the LogisticRegression iterations run. A
local-mode driver fits the same pipeline on the same rows as the reference: logistic regression is
deterministic given its data, so every fit must give the same model up to the order in which
partial sums are added.
"""

from __future__ import annotations

import time
from typing import Any, Dict, List

import numpy as np
import psutil
import pytest
from cluster_support import ROWS, wait_until

PIPELINE = "recommended"
# 2^16 hashed features and 20 iterations keep the suite inside its time budget on two cores.
SETTINGS = {"numFeatures": 1 << 16, "maxIter": 20}
# The LR's per-iteration job: killing an executor while one runs disturbs the fit itself.
LR_STAGE = "RDDLossFunction"
# Same data, same partitions, same L-BFGS: differences come from summation order alone.
COEF_ATOL = 1e-9
METRIC_ATOL = 1e-9


def _arg(cmdline: List[str], flag: str) -> str:
    return cmdline[cmdline.index(flag) + 1] if flag in cmdline else ""


def _app_executor_ids(cluster, app_id: str) -> set:
    """Executor ids the workers report for ``app_id``, running or finished."""
    ids = set()
    for i in range(cluster.n_workers):
        state = cluster.worker_state(i)
        for e in state.get("executors", []) + state.get("finishedexecutors", []):
            if e.get("appid") == app_id:
                ids.add(int(e["id"]))
    return ids


def _kill_one_executor_during_lr(cluster, driver, fit_index: int) -> Dict[str, Any]:
    """SIGKILL one executor once fit ``fit_index`` is in its LR iterations; report what happened."""
    started = driver.next_event(lambda e: e["event"] == "started", 300)
    app_id = started["app_id"]
    driver.next_event(lambda e: e["event"] == "training" and e["index"] == fit_index, 900)
    driver.next_event(
        lambda e: e["event"] == "stages" and any(LR_STAGE in n for n in e["active"]), 900
    )
    executors = [p for p in cluster.executor_processes() if app_id in p.cmdline()]
    assert len(executors) == 2, f"expected 2 executors of {app_id}, found {executors}"
    report: Dict[str, Any] = {
        "app_id": app_id,
        "listening": cluster.listening_addresses(),
        "ids_before": _app_executor_ids(cluster, app_id),
    }
    victim = executors[0]
    report["victim_pid"] = victim.pid
    report["victim_id"] = int(_arg(victim.cmdline(), "--executor-id"))
    report["killed_at"] = time.time()
    victim.kill()  # SIGKILL: no shutdown hook, its cached blocks and shuffle files are gone
    gone, _ = psutil.wait_procs([victim], timeout=30)
    report["victim_gone"] = bool(gone)
    # The master gives the app a new executor in the freed core.
    report["ids_after"] = wait_until(
        "a replacement executor",
        lambda: (ids := _app_executor_ids(cluster, app_id)) - report["ids_before"] and ids,
        180,
    )
    return report


@pytest.fixture(scope="module")
def local_reference(start_driver):
    """The same fit in local mode, started at once and collected when a test needs it."""
    return start_driver("local[2]", "local-fit", task="train", pipeline=PIPELINE, settings=SETTINGS)


@pytest.fixture(scope="module")
def cluster_fits(cluster, start_driver, local_reference):
    """Two fits on the cluster in one session; the second one loses an executor mid-fit."""
    driver = start_driver(
        cluster.url,
        "cluster-fit",
        task="train",
        pipeline=PIPELINE,
        settings=SETTINGS,
        probe=True,
        watch=True,
        repeat=2,
    )
    t0 = time.monotonic()
    kill = _kill_one_executor_during_lr(cluster, driver, fit_index=1)
    driver.finish()
    kill["seconds"] = time.monotonic() - t0
    return driver, kill


def test_executors_lack_ctr_lab_until_the_zip_is_added(cluster_fits, remote_python, ctr_lab_zip):
    driver, _ = cluster_fits
    probe = driver.event("probe")
    assert "No module named 'ctr_lab'" in probe["driver_before"]
    before, after = probe["executors_before"], probe["executors_after"]
    assert before and all(not p["ok"] and "No module named 'ctr_lab'" in p["error"] for p in before)
    assert all(p["python"] == str(remote_python) for p in before + after)
    assert all(p["ok"] for p in after)
    # Executors import the package from the shipped zip, not from any installed copy.
    assert all(p["file"].endswith(f"{ctr_lab_zip.name}/ctr_lab/__init__.py") for p in after)
    assert probe["driver_after"].endswith(f"{ctr_lab_zip.name}/ctr_lab/__init__.py")


def test_the_cluster_listens_on_loopback_only(cluster_fits):
    _, kill = cluster_fits
    assert kill["listening"], "no listening sockets found for the cluster processes"
    assert {a.removeprefix("::ffff:") for a in kill["listening"]} == {"127.0.0.1"}


def _same_model(driver, index: int, reference, ref_index: int = 0) -> None:
    b0, w = driver.coefficients(index)
    r0, r = reference.coefficients(ref_index)
    assert w.shape == r.shape and np.count_nonzero(r) > 100
    np.testing.assert_allclose(w, r, rtol=0, atol=COEF_ATOL)
    assert abs(b0 - r0) <= COEF_ATOL


def _metrics(event: Dict[str, Any]) -> Dict[str, Any]:
    keys = ("train_rows", "test_rows", "iterations", "log_loss", "auc")
    return {k: event[k] for k in keys}


def test_recommended_on_the_cluster_equals_local_mode(cluster_fits, local_reference):
    driver, _ = cluster_fits
    local = local_reference.finish()
    ref = next(e for e in local if e["event"] == "trained")
    fit = next(e for e in driver.all("trained") if e["index"] == 0)
    assert fit["train_rows"] + fit["test_rows"] == ref["rows"] == ROWS
    assert (fit["train_rows"], fit["test_rows"]) == (ref["train_rows"], ref["test_rows"])
    assert fit["iterations"] == ref["iterations"]
    assert fit["log_loss"] == pytest.approx(ref["log_loss"], abs=METRIC_ATOL)
    assert fit["auc"] == pytest.approx(ref["auc"], abs=METRIC_ATOL)
    # The model learned something: better than predicting the training click rate everywhere.
    assert fit["auc"] > 0.6
    _same_model(driver, 0, local_reference)


def test_fit_with_a_killed_executor_equals_an_undisturbed_fit(cluster_fits, local_reference):
    driver, kill = cluster_fits
    # The fault happened: the executor died mid-fit and the master replaced it.
    assert kill["victim_gone"] and not psutil.pid_exists(kill["victim_pid"])
    assert kill["victim_id"] in kill["ids_before"]
    assert kill["ids_after"] - kill["ids_before"], kill
    fits = {e["index"]: e for e in driver.all("trained")}
    assert set(fits) == {0, 1}
    # It happened during the second fit: after it began (awaited) and before it returned.
    assert fits[0]["time"] < kill["killed_at"] < fits[1]["time"]
    during = [e for e in driver.all("stages") if e["time"] >= kill["killed_at"]]
    failed = max((s[3] for e in during for s in e["stages"]), default=0)
    retried = max((s[2] for e in during for s in e["stages"]), default=0)
    print(f"after the kill: {failed} failed task(s), stage attempt up to {retried}; {kill}")
    assert _metrics(fits[1]) == pytest.approx(_metrics(fits[0]), abs=METRIC_ATOL)
    _same_model(driver, 1, driver, 0)
    local_reference.finish()
    _same_model(driver, 1, local_reference)
