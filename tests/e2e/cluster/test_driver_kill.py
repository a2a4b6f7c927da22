"""A driver killed while ``fit_or_load`` saves its model: the next run never loads a partial model.

Each run is its own driver process; the kill is SIGKILL to the driver's whole process group (its
Python and its JVM at once), sent as soon as the save has written its first files: what a laptop
that loses power, or an EMR primary node that dies, leaves behind. The runs use local Spark: the
save is driver-side bookkeeping plus small write jobs, and a cluster adds nothing to the fault.

1. No model yet: the killed run leaves nothing complete; the next run refits. The partial folder is
   also copied to the model's path first, as an interrupted S3 "rename" (a copy) would leave it,
   so the next run meets a half-written model where the model belongs and must refit anyway.
2. A complete model exists and a run with other settings is killed while saving its own: the
   complete model is untouched, and the next run with the first settings loads it.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import shutil
import time
from pathlib import Path
from typing import Any, Dict

import numpy as np
import pytest

from ctr_lab.train import COMPLETE_MARKER as MARKER
from ctr_lab.train import STALE_SAVE_SECONDS

PIPELINE = "recommended"
SETTINGS_B = {"numFeatures": 1 << 16, "maxIter": 5}
SETTINGS_A = {"numFeatures": 1 << 16, "maxIter": 6}  # another fingerprint
# Kill once the save has written this many files (a complete model has several times more).
KILL_AFTER_FILES = 6


def _tree(root: Path) -> Dict[str, str]:
    """Every file under ``root``: relative path -> sha256."""
    out = {}
    for dirpath, _, files in os.walk(root):
        for name in files:
            path = Path(dirpath, name)
            with contextlib.suppress(FileNotFoundError):  # renamed away while we looked
                out[str(path.relative_to(root))] = hashlib.sha256(path.read_bytes()).hexdigest()
    return out


def _paths(root: Path) -> set:
    found = set()
    for dirpath, _, files in os.walk(root):
        found.update(os.path.join(dirpath, f) for f in files)
    return found


def _kill_during_save(driver, parent: Path, index: int) -> Dict[str, Any]:
    """Wait for call ``index`` to start, then SIGKILL the driver once its save writes files."""
    driver.next_event(lambda e: e["event"] == "fitting" and e["index"] == index, 600)
    before = _paths(parent)
    deadline = time.monotonic() + 600
    new: set = set()
    while time.monotonic() < deadline:
        new = _paths(parent) - before
        if len(new) >= KILL_AFTER_FILES:
            driver.kill()
            break
        assert driver.proc.poll() is None, f"driver ended before saving\n{driver.tail()}"
        time.sleep(0.01)
    else:
        raise AssertionError(f"the save never started\n{driver.tail()}")
    assert not driver.group_alive(), "the driver's processes outlived SIGKILL"
    written = _paths(parent) - before
    return {"new_at_kill": new, "written": written}


def _top_level(parent: Path, paths: set) -> set:
    return {Path(p).relative_to(parent).parts[0] for p in paths}


def _marker_fingerprint(model_dir: Path) -> str:
    return json.loads((model_dir / MARKER).read_text())["fingerprint"]


@pytest.fixture
def local_driver(start_driver, save_csv, tmp_path):
    def start(name: str, calls):
        return start_driver(
            "local[2]",
            name,
            data=save_csv,
            task="fit_or_load",
            pipeline=PIPELINE,
            calls=[{"model_dir": str(d), "settings": s} for d, s in calls],
        )

    return start


def test_driver_killed_while_saving_never_leaves_a_loadable_partial_model(local_driver, tmp_path):
    parent = tmp_path / "models"
    parent.mkdir()
    model_dir = parent / "rec"

    # 1. No model yet; the first save is cut short.
    first = local_driver("kill-first-save", [(model_dir, SETTINGS_B)])
    kill1 = _kill_during_save(first, parent, index=0)
    assert not any(p.endswith(MARKER) for p in kill1["written"]), "killed after the save ended"
    assert not (model_dir / MARKER).exists()
    partial = _top_level(parent, kill1["written"])
    assert len(partial) == 1, partial
    partial_dir = parent / partial.pop()
    if partial_dir != model_dir:  # what an interrupted copy-style rename (S3) leaves
        shutil.copytree(partial_dir, model_dir)
    assert model_dir.is_dir() and not (model_dir / MARKER).exists()

    # 2. The next run refits and saves; then a run with other settings is killed mid-save.
    second = local_driver("refit-then-kill", [(model_dir, SETTINGS_B), (model_dir, SETTINGS_A)])
    refit = second.next_event(lambda e: e["event"] == "fitted" and e["index"] == 0, 900)
    assert refit["loaded"] is False, "a half-written model was loaded"
    assert _marker_fingerprint(model_dir) == refit["fingerprint"]
    complete = _tree(model_dir)
    kill2 = _kill_during_save(second, parent, index=1)
    assert not any(p.endswith(MARKER) for p in kill2["written"]), "killed after the save ended"
    assert _tree(model_dir) == complete, "the complete model changed while another was saved"

    # 3. The next run with the first settings loads the last complete model, and deletes the
    #    killed saves' folders once they are old enough not to be another run's save.
    long_ago = time.time() - STALE_SAVE_SECONDS - 60
    for folder in parent.iterdir():
        if folder != model_dir:
            os.utime(folder, (long_ago, long_ago))
    third = local_driver("load-last-complete", [(model_dir, SETTINGS_B)])
    third.finish()
    loaded = third.all("fitted")[0]
    assert loaded["loaded"] is True and loaded["fingerprint"] == refit["fingerprint"]
    assert loaded["log_loss"] == pytest.approx(refit["log_loss"], rel=1e-12)
    b_saved, w_saved = second.coefficients(0)
    b_loaded, w_loaded = third.coefficients(0)
    assert b_loaded == b_saved and np.array_equal(w_loaded, w_saved)
    assert sorted(p.name for p in parent.iterdir()) == [model_dir.name]
