"""Saving through the Jupyter server's contents API after a run keeps a notebook fit to commit.

The server opens a notebook with the kernel its kernelspec names, runs it over the kernel's
WebSocket as a front end does (display updates replace the output they name), and the notebook
goes back through ``PUT /api/contents``. The file on disk must keep EMR's kernelspec, carry no
widget outputs or metadata, and keep the progress display's last state: its summary.
"""

from __future__ import annotations

import json
import urllib.parse
import uuid
from typing import Any, Dict, List

import nbformat
from cdp import REPO

from ctr_lab.tools.magics import DISPLAY_NAME, KERNEL_NAME, PROGRESS_MIME


def _configure_cell() -> str:
    """The notebooks' own ``%%configure -f`` cell: its session fits the shared driver JVM."""
    nb = nbformat.read(REPO / "notebooks" / "00_setup.ipynb", as_version=4)
    return next(c.source for c in nb.cells if c.source.startswith("%%configure"))


def _execute(ws, code: str) -> List[Dict[str, Any]]:
    """Run ``code`` over the kernel channels; the cell's outputs as a front end keeps them."""
    msg_id = uuid.uuid4().hex
    ws.send(
        json.dumps(
            {
                "header": {
                    "msg_id": msg_id,
                    "msg_type": "execute_request",
                    "username": "test",
                    "session": uuid.uuid4().hex,
                    "version": "5.3",
                },
                "parent_header": {},
                "metadata": {},
                "content": {"code": code, "silent": False, "store_history": True},
                "channel": "shell",
                "buffers": [],
            }
        )
    )
    outputs: List[Any] = []
    display_ids: Dict[str, List[int]] = {}
    while True:
        msg = json.loads(ws.recv())
        if msg.get("parent_header", {}).get("msg_id") != msg_id or msg["channel"] != "iopub":
            continue
        kind, content = msg["msg_type"], msg["content"]
        if kind == "status" and content["execution_state"] == "idle":
            return outputs
        display_id = content.get("transient", {}).get("display_id")
        if kind == "update_display_data":
            for index in display_ids.get(display_id, []):
                outputs[index] = nbformat.v4.new_output(
                    "display_data", data=content["data"], metadata=content["metadata"]
                )
        elif kind in ("stream", "display_data", "execute_result", "error"):
            if display_id:
                display_ids.setdefault(display_id, []).append(len(outputs))
            outputs.append(nbformat.v4.output_from_msg(msg))


def test_a_notebook_run_by_the_server_and_saved_through_the_contents_api(lab_server):
    import websocket

    specs = lab_server.api("GET", "/api/kernelspecs")["kernelspecs"]
    assert specs[KERNEL_NAME]["spec"]["display_name"] == DISPLAY_NAME
    nb = nbformat.v4.new_notebook()
    nb.metadata = {"kernelspec": {"name": "pysparkkernel", "display_name": "PySpark"}}
    nb.cells = [
        nbformat.v4.new_code_cell(source)
        for source in (
            _configure_cell(),
            "sc.parallelize(range(100), 4).count()",
            "import matplotlib.pyplot as plt\nplt.figure()\nplt.plot([1, 2])\n%matplot plt",
            "%%cleanup -f",
        )
    ]
    path = "scratch/saved.ipynb"
    (lab_server.root / "scratch").mkdir(exist_ok=True)
    session = lab_server.api(
        "POST",
        "/api/sessions",
        {"path": path, "type": "notebook", "name": "", "kernel": {"name": KERNEL_NAME}},
    )
    kernel = session["kernel"]
    query = urllib.parse.urlencode({"token": lab_server.token})
    ws_url = lab_server.url.replace("http", "ws", 1)
    ws = websocket.create_connection(
        f"{ws_url}/api/kernels/{kernel['id']}/channels?{query}", timeout=300
    )
    try:
        for count, cell in enumerate(nb.cells, start=1):
            cell.outputs = _execute(ws, cell.source)
            cell.execution_count = count
    finally:
        ws.close()
        lab_server.api("DELETE", f"/api/sessions/{session['id']}")
        lab_server.driver.stop_leftover_session()
    body = {"type": "notebook", "format": "json", "content": nb}
    lab_server.api("PUT", f"/api/contents/{path}", json.loads(json.dumps(body)))

    saved = json.loads((lab_server.root / path).read_text())
    assert saved["metadata"]["kernelspec"]["name"] == "pysparkkernel"
    assert "widgets" not in saved["metadata"]
    outputs = [o for c in saved["cells"] for o in c["outputs"]]
    assert not [o for o in outputs if o["output_type"] == "error"], outputs
    assert all(not o.get("metadata") for o in outputs)
    assert not [m for o in outputs for m in o.get("data", {}) if "jupyter.widget" in m]
    (progress,) = [
        o["data"] for o in saved["cells"][1]["outputs"] if PROGRESS_MIME in o.get("data", {})
    ]
    # The last update, not the first display: one job, one stage, a task per partition.
    assert progress[PROGRESS_MIME]["done"] is True
    assert progress[PROGRESS_MIME]["tasks_done"] == 4
    assert "".join(progress["text/plain"]).startswith("Spark: 1 job, 1 stage, 4 tasks in ")
    assert any("image/png" in o.get("data", {}) for o in saved["cells"][2]["outputs"])
