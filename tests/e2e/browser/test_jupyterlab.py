"""A student's JupyterLab, in a real (headless) browser: each notebook opens with the local
kernel, Run All ends without an error, every ``%matplot`` figure is an image on the page, and
the notebook saved from the page is one the repository and EMR accept, with the outputs nbval
expects: the saved file passes nbval's comparison with the committed one
(:mod:`tests.nbval_compare`), which is how ``make test`` checks the notebooks' outputs on the
local kernel (``make notebooks-check`` runs the same comparison through nbval itself). The
notebooks that pose exercises run in their solution versions (:mod:`tests.solution_versions`):
each check must print pass, and every other output be as committed.

``CTR_LAB_BROWSER_ONLY=TEXT`` runs only the notebooks whose path contains TEXT.
"""

from __future__ import annotations

import contextlib
import json
import os

import nbformat
import pytest
from cdp import OUT, REPO, BrowserError

from ctr_lab.tools.casestudy import ordered_notebooks
from ctr_lab.tools.magics import DISPLAY_NAME, KERNEL_NAME
from tests.lab_markdown_math import math_spans
from tests.nbval_compare import differences
from tests.solution_versions import expected, poses_exercises

ROOT = REPO / "notebooks"
NOTEBOOKS = [
    p.relative_to(ROOT).as_posix()
    for p in ordered_notebooks(ROOT)
    if os.environ.get("CTR_LAB_BROWSER_ONLY", "") in p.relative_to(ROOT).as_posix()
]
#: What a notebook saved for the repository may carry (tests/test_notebooks.py checks the same).
NOTEBOOK_METADATA = {"kernelspec", "language_info"}
WIDGET = "application/vnd.jupyter.widget"
#: JupyterLab's question to a user whose ``fetchNews`` setting is "none" (its default): the
#: announcements plugin, ``packages/apputils-extension/src/announcements.ts``.
NEWS_PROMPT = "official Jupyter news"

# The notebook panel the test works on is window.__nb; Lab's commands act on the current one.
OPEN = """
jupyterapp.commands.execute('docmanager:open', {path: %s, factory: 'Notebook'})
  .then(w => { window.__nb = w; jupyterapp.shell.activateById(w.id);
               return w.context.ready.then(() => w.sessionContext.ready); })
  .then(() => true)
"""
KERNEL_IDLE = """
(() => { const s = window.__nb.sessionContext.session;
         return !!(s && s.kernel && s.kernel.status === 'idle'); })()
"""
KERNEL = """
window.__nb.sessionContext.session.kernel.info.then(info => ({
  name: window.__nb.sessionContext.session.kernel.name,
  display_name: window.__nb.sessionContext.kernelDisplayName,
  implementation: info.implementation}))
"""
RUN_ALL = """
window.__done = null;
jupyterapp.commands.execute('notebook:run-all-cells')
  .then(ok => { window.__done = {ok: ok}; }, e => { window.__done = {error: String(e)}; });
true
"""
# Each code cell as the page holds it: outputs from the model, images from the rendered DOM.
CELLS = """
(() => { const nb = window.__nb.content, out = [];
  nb.widgets.forEach((w, i) => {
    if (w.model.type !== 'code') return;
    const outputs = [];
    for (let j = 0; j < w.model.outputs.length; j++) {
      const o = w.model.outputs.get(j).toJSON();
      outputs.push({type: o.output_type, ename: o.ename || null, evalue: o.evalue || null,
                    mimes: Object.keys(o.data || {})});
    }
    const images = Array.from(w.node.querySelectorAll('.jp-OutputArea-output img'))
      .filter(img => img.complete && img.naturalWidth > 0).length;
    out.push({index: i, source: w.model.sharedModel.getSource(),
              count: w.model.executionCount, outputs: outputs, images: images});
  });
  return out; })()
"""
# Each Markdown cell: its source and how many pieces of it MathJax typeset on the page.
MARKDOWN = """
(() => { const out = [];
  window.__nb.content.widgets.forEach((w, i) => {
    if (w.model.type !== 'markdown') return;
    out.push({index: i, source: w.model.sharedModel.getSource(),
              typeset: w.node.querySelectorAll('mjx-container').length});
  });
  return out; })()
"""
# What docmanager:save does for the current notebook: PUT /api/contents with the model.
SAVE = "window.__nb.context.save().then(() => !window.__nb.context.model.dirty)"
CLOSE = "window.__nb.sessionContext.shutdown().then(() => { window.__nb.dispose(); return true; })"


@pytest.fixture(scope="module")
def lab_page(browser, lab_server):
    """JupyterLab loaded in the browser, logged in with the server's token."""
    browser.navigate(f"{lab_server.url}/lab?token={lab_server.token}")
    browser.wait_for(
        "!!(window.jupyterapp && document.querySelector('.jp-LabShell'))", 120, "JupyterLab"
    )
    browser.evaluate("jupyterapp.restored.then(() => true)")
    return browser


def test_jupyterlab_opens_without_asking_to_fetch_news(lab_page, lab_server):
    """JupyterLab asks a new user whether to fetch Jupyter's news from the internet; the lab's
    defaults (``tools/jupyterlab_overrides.json``) answer no, and turn off update checks."""
    settings = lab_server.api(
        "GET", "/lab/api/settings/@jupyterlab/apputils-extension:notification"
    )
    defaults = {k: v.get("default") for k, v in settings["schema"]["properties"].items()}
    assert defaults["fetchNews"] == "false" and defaults["checkForUpdates"] is False
    # The prompt, when asked, is a notification shown once the application is restored.
    lab_page.evaluate("new Promise(done => setTimeout(() => done(true), 3000))")
    assert not lab_page.evaluate(f"document.body.innerText.includes({json.dumps(NEWS_PROMPT)})")


def test_a_notebook_opened_and_saved_is_the_file_it_was(lab_page, lab_server):
    """Opening a notebook starts the local kernel, whose display name JupyterLab writes into the
    notebook: another one than the notebook's marked it changed as it opened (closing it asked
    to save it) and its autosave rewrote every notebook left open in a student's clone. The
    server's pre-save hook (``tools/jupyter_server_config.json``) keeps EMR's display name."""
    notebook = ordered_notebooks(ROOT)[0].relative_to(ROOT).as_posix()
    path = lab_server.root / "notebooks" / notebook
    before = path.read_bytes()
    lab_page.evaluate(OPEN % json.dumps(f"notebooks/{notebook}"))
    try:
        lab_page.wait_for(KERNEL_IDLE, 120, f"the kernel of {notebook}")
        assert lab_page.evaluate(KERNEL)["display_name"] == DISPLAY_NAME
        assert not lab_page.evaluate("window.__nb.context.model.dirty"), "changed by opening it"
        assert lab_page.evaluate(SAVE)
    finally:
        lab_page.evaluate(CLOSE)
        lab_server.driver.stop_leftover_session()
    assert path.read_bytes() == before


@pytest.mark.parametrize("notebook", NOTEBOOKS)
def test_run_all_in_jupyterlab_then_save(notebook, lab_page, lab_server):
    shot = OUT / (notebook.replace("/", "_").replace(".ipynb", ".png"))
    try:
        _run_and_check(lab_page, notebook)
    finally:
        lab_page.screenshot(shot)
        with contextlib.suppress(BrowserError):  # a failure above may have closed it
            lab_page.evaluate(CLOSE)
        lab_server.driver.stop_leftover_session()
    saved = lab_server.root / "notebooks" / notebook
    _check_saved(json.loads(saved.read_text()), notebook)
    reference = ROOT / notebook
    if poses_exercises(reference):  # it ran in its solution version
        reference = OUT / "expected" / notebook
        reference.parent.mkdir(parents=True, exist_ok=True)
        nbformat.write(expected(ROOT / notebook), reference)
    differ = differences(saved, reference, ROOT / "nbval_sanitize.cfg")
    assert not differ, "\n".join(differ)


def _run_and_check(page, notebook: str) -> None:
    page.evaluate(OPEN % json.dumps(f"notebooks/{notebook}"))
    page.wait_for(KERNEL_IDLE, 120, f"the kernel of {notebook}")
    kernel = page.evaluate(KERNEL)
    assert kernel == {
        "name": KERNEL_NAME,
        "display_name": DISPLAY_NAME,
        "implementation": "ctr_lab_local_pyspark",
    }, f"{notebook} opened with another kernel than the local one: {kernel}"
    page.evaluate(RUN_ALL)
    done = page.wait_for("window.__done", 900, f"Run All of {notebook}", interval=1.0)
    cells = page.evaluate(CELLS)
    errors = [
        f"cell {c['index']} ({c['source'].splitlines()[0] if c['source'] else ''}): "
        f"{o['ename']}: {o['evalue']}"
        for c in cells
        for o in c["outputs"]
        if o["type"] == "error"
    ]
    assert not errors, f"{notebook}: error outputs on the page: {errors}"
    assert done == {"ok": True}, f"{notebook}: Run All ended with {done}"
    assert all(c["count"] is not None for c in cells), f"{notebook}: cells left unexecuted"
    figures = [c for c in cells if "%matplot" in c["source"]]
    missing = [c["index"] for c in figures if c["images"] < c["source"].count("%matplot")]
    assert not missing, f"{notebook}: %matplot cells {missing} show no image on the page"
    # The unit tests' model of what JupyterLab typesets (tests/lab_markdown_math.py) against
    # JupyterLab itself: the same number of formulas in every Markdown cell.
    markdown = page.evaluate(MARKDOWN)
    typeset = {c["index"]: c["typeset"] for c in markdown}
    predicted = {c["index"]: len(math_spans(c["source"])) for c in markdown}
    assert typeset == predicted, (
        f"{notebook}: formulas per Markdown cell {typeset}, the model {predicted}"
    )
    assert page.evaluate(SAVE), f"{notebook}: still unsaved after docmanager:save"


def _check_saved(nb: dict, notebook: str) -> None:
    """What tests/test_notebooks.py and EMR need of the file Lab wrote through /api/contents."""
    assert nb["metadata"]["kernelspec"]["name"] == "pysparkkernel", nb["metadata"]["kernelspec"]
    assert set(nb["metadata"]) <= NOTEBOOK_METADATA, f"{notebook}: metadata {set(nb['metadata'])}"
    for index, cell in enumerate(nb["cells"]):
        where = f"{notebook} cell {index}"
        assert set(cell.get("metadata", {})) <= {"tags"}, f"{where}: {cell['metadata']}"
        if cell["cell_type"] != "code":
            continue
        assert cell["execution_count"] is not None, f"{where} saved unexecuted"
        for output in cell["outputs"]:
            assert output["output_type"] != "error", f"{where}: {output.get('evalue')}"
            assert not output.get("metadata"), f"{where}: output metadata {output['metadata']}"
            mimes = list(output.get("data", {}))
            assert not [m for m in mimes if m.startswith(WIDGET)], f"{where}: widget output"
        if "%matplot" in "".join(cell["source"]):
            assert any("image/png" in o.get("data", {}) for o in cell["outputs"]), where


def test_the_suite_ran_something():
    assert NOTEBOOKS, f"CTR_LAB_BROWSER_ONLY={os.environ.get('CTR_LAB_BROWSER_ONLY')} matches none"
