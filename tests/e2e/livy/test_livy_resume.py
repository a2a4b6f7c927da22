"""A Livy session killed mid-notebook: the kernel says so, and a re-run reuses the saved model.

The notebook trains with ``ctr_lab.train.fit_or_load`` (which saves the model), then its next
cell is running when the session's driver dies (the REPL and its JVM are SIGKILLed, as when YARN
kills the application or a node is lost). The running cell and the next one must fail with the
session's fate in the message. A fresh kernel re-running the whole notebook must then reload the
saved model instead of training again: checked by what the notebook prints and, independently,
by the saved model folder being the very same folder (inode, completion marker) as before.
The notebook names no session and ends without ``%%cleanup -f``, as the course notebooks do.
"""

from __future__ import annotations

import os
import signal
import threading

import nbformat
from livy_helpers import REPO, call, wait_for
from nbclient import NotebookClient

from ctr_lab.train import COMPLETE_MARKER

WIDGET = "application/vnd.jupyter.widget-view+json"


def notebook(data: str, model_dir: str, release: str):
    cells = [
        '%%configure -f\n{"conf": {"spark.sql.shuffle.partitions": "2"}}',
        "import os\nimport time\nimport ctr_lab as cl",
        f"DATA = {data!r}\nMODEL_DIR = {model_dir!r}\nRELEASE = {release!r}",
        "train_df = cl.load(DATA).df.cache()\ntrain_df.count()",
        'model, info = cl.train.fit_or_load("course_baseline", train_df, MODEL_DIR)\n'
        'print("reused the saved model" if info["loaded"] else "fitted and saved")',
        "while not os.path.exists(RELEASE):\n    time.sleep(0.2)\n"
        'scored = model.transform(train_df)\nprint("scored", scored.count())',
        'print("after", scored.filter("probability IS NOT NULL").count())',
    ]
    nb = nbformat.v4.new_notebook(
        metadata={"kernelspec": {"name": "pysparkkernel", "display_name": "PySpark"}}
    )
    nb.cells = [nbformat.v4.new_code_cell(src) for src in cells]
    return nb


def text_of(cell) -> str:
    out = []
    for o in cell.outputs:
        if o.output_type == "stream":
            out.append(o.text)
        elif o.output_type in ("execute_result", "display_data") and WIDGET not in o.data:
            out.append(o.data.get("text/plain", ""))
    return "".join(out)


def error_of(cell) -> str:
    errors = [o for o in cell.outputs if o.output_type == "error"]
    return "\n".join(f"{e.ename}: {e.evalue}\n" + "\n".join(e.traceback) for e in errors)


def client_for(nb, kernel, cwd):
    return NotebookClient(
        nb,
        kernel_name=kernel,
        timeout=900,
        startup_timeout=120,
        allow_errors=True,
        resources={"metadata": {"path": str(cwd)}},
    )


def model_state(model_dir):
    """The saved folder's identity and its completion marker (fingerprint, save time)."""
    with open(os.path.join(model_dir, COMPLETE_MARKER)) as fh:
        return os.stat(model_dir).st_ino, fh.read()


def test_killed_session_then_rerun_reuses_the_model(
    sparkmagic_kernel, sparkmagic_conf_dir, livy_server, tmp_path, monkeypatch
):
    monkeypatch.setenv("SPARKMAGIC_CONF_DIR", str(sparkmagic_conf_dir))
    data = str(REPO / "data_samples" / "course_10k.csv")
    model_dir = str(tmp_path / "models" / "baseline")
    release = str(tmp_path / "release")
    fit, wait, after = 4, 5, 6

    # Run 1: train, then lose the session while the next cell runs.
    nb = notebook(data, model_dir, release)
    client = client_for(nb, sparkmagic_kernel, tmp_path)
    killed = []

    def kill_when_waiting():
        def waiting_session():
            for s in call(f"{livy_server.url}/sessions")[1]["sessions"]:
                stmts = call(f"{livy_server.url}/sessions/{s['id']}/statements")[1]
                if any(
                    "RELEASE" in st["code"] and st["state"] == "running"
                    for st in stmts["statements"]
                ):
                    return s["id"]
            return None

        sid = wait_for(waiting_session, 600, "the notebook to reach the waiting cell", interval=0.5)
        repl = livy_server.get(sid).proc
        os.killpg(repl.pid, signal.SIGKILL)
        killed.append(sid)

    with client.setup_kernel():
        for index in range(fit + 1):
            client.execute_cell(nb.cells[index], index)
        assert not any(error_of(c) for c in nb.cells[: fit + 1]), [error_of(c) for c in nb.cells]
        assert "fitted and saved" in text_of(nb.cells[fit])
        saved = model_state(model_dir)
        killer = threading.Thread(target=kill_when_waiting, daemon=True)
        killer.start()
        client.execute_cell(nb.cells[wait], wait)
        killer.join(timeout=60)
        assert killed, "the session was not killed"
        client.execute_cell(nb.cells[after], after)
        # (the kernel's shutdown deletes the session, so look before leaving the block)
        assert livy_server.get(killed[0]).state == "dead"

    # The kernel reports Livy's sequence: the running cell's polls got 500 (sparkmagic retries
    # them), then 400 once YARN's verdict made the session dead; the next cell fails because
    # the session is dead; neither printed a result.
    assert "Session isn't active" in error_of(nb.cells[wait]), error_of(nb.cells[wait])
    assert "scored" not in text_of(nb.cells[wait])
    assert f"Session {killed[0]} unexpectedly reached final status 'dead'" in error_of(
        nb.cells[after]
    ), error_of(nb.cells[after])

    # Run 2: a fresh kernel re-runs everything; the model is reloaded, not trained again.
    open(release, "w").close()
    nb = notebook(data, model_dir, release)
    client_for(nb, sparkmagic_kernel, tmp_path).execute()
    assert not any(error_of(c) for c in nb.cells), [error_of(c) for c in nb.cells]
    assert "reused the saved model" in text_of(nb.cells[fit]), text_of(nb.cells[fit])
    assert model_state(model_dir) == saved
    assert sorted(os.listdir(tmp_path / "models")) == ["baseline"]  # no half-written siblings
    with open(data) as fh:
        rows = sum(1 for _ in fh) - 1  # the CSV's data lines: the sample has no bad rows
    assert f"scored {rows}" in text_of(nb.cells[wait])
    assert f"after {rows}" in text_of(nb.cells[after])
