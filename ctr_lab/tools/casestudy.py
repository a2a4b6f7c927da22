"""Run the case-study notebooks in order, headless, and summarise them (``ctr-lab run``).

Each notebook runs in the local kernel (:mod:`ctr_lab.tools.magics`), the way a student runs it on
a laptop, in its solution version (:mod:`ctr_lab.tools.solutions`) unless ``--student``. The
executed copies and their HTML go to an output folder, and a table says, for each notebook,
whether it passed, how long it took, and the headline metrics it printed. Notebooks print those
as :func:`ctr_lab.evaluate.headline` lines, so the table needs no second computation.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import re
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Dict, List, Optional

from ctr_lab.errors import CtrLabError

#: The order of the case study; anything else in notebooks/ runs after these, sorted.
ORDER = (
    "00_setup.ipynb",
    "01_exploration.ipynb",
    "02_sampling_and_pipelines.ipynb",
    "03_model_building.ipynb",
    "04_model_improvement.ipynb",
    "05_feature_engineering_and_thresholds.ipynb",
    "06_cluster_management.ipynb",
    "07_quiz.ipynb",
    "assignment/starter.ipynb",
    "assignment/solution.ipynb",
)
#: What sparkmagic's PySpark kernel reports; the committed notebooks carry it.
KERNELSPEC = {"display_name": "PySpark", "language": "python", "name": "pysparkkernel"}
LANGUAGE_INFO = {
    "codemirror_mode": {"name": "python", "version": 3},
    "file_extension": ".py",
    "mimetype": "text/x-python",
    "name": "pyspark",
    "pygments_lexer": "python3",
}
_HEADLINE = re.compile(
    r"^(?P<name>[\w-]+): test log loss (?P<log_loss>[0-9.]+), AUC (?P<auc>[0-9.]+)"
    r"(?: \((?P<test_rows>[0-9,]+) test rows\))?",
    re.M,
)


def headlines(cells: List[Any]) -> Dict[str, Dict[str, float]]:
    """The :func:`ctr_lab.evaluate.headline` lines a notebook's code ``cells`` printed.

    ``cells`` as ``nbformat`` reads them or as the notebook's JSON holds them. Returns name ->
    ``log_loss``, ``auc`` and, where the line gives it, ``test_rows``.

    Examples
    --------
    >>> line = "recommended: test log loss 0.4043, AUC 0.7627 (5,180 test rows)"
    >>> cells = [{"cell_type": "code", "outputs": [{"text": ["load report ..."]}, {"text": line}]}]
    >>> headlines(cells)
    {'recommended': {'log_loss': 0.4043, 'auc': 0.7627, 'test_rows': 5180}}
    """

    def text(value: Any) -> str:
        return "".join(value) if isinstance(value, list) else value

    # Livy-style outputs end without a newline: join outputs on one, so each starts a line.
    printed = "\n".join(
        text(o.get("text", ""))
        for c in cells
        if c.get("cell_type") == "code"
        for o in c.get("outputs", [])
    )
    found: Dict[str, Dict[str, float]] = {}
    for m in _HEADLINE.finditer(printed):
        found[m["name"]] = {"log_loss": float(m["log_loss"]), "auc": float(m["auc"])}
        if m["test_rows"]:
            found[m["name"]]["test_rows"] = int(m["test_rows"].replace(",", ""))
    return found


@dataclass
class NotebookRun:
    """The outcome of one notebook."""

    path: str
    status: str = "not run"
    seconds: float = 0.0
    failed_cell: Optional[str] = None
    headlines: Dict[str, Dict[str, float]] = field(default_factory=dict)
    #: The slowest code cells: ``{"cell": index, "source": first line, "seconds": ...}``.
    slowest_cells: List[Dict[str, Any]] = field(default_factory=list)


def notebooks_dir() -> Path:
    """``notebooks/`` of the checkout this package comes from, else of the working folder."""
    import ctr_lab

    checkout = Path(ctr_lab.__file__).resolve().parents[1]  # the folder that holds ctr_lab/
    for candidate in (checkout / "notebooks", Path.cwd() / "notebooks"):
        if candidate.is_dir():
            return candidate
    raise CtrLabError(
        "no notebooks/ folder beside the package or here. Fix: run from the ctr-lab checkout, "
        "or pass --notebooks DIR"
    )


def ordered_notebooks(folder: Path) -> List[Path]:
    """The case-study notebooks under ``folder``: :data:`ORDER` first, then the rest, sorted."""
    found = sorted(p for p in folder.rglob("*.ipynb") if ".ipynb_checkpoints" not in p.parts)
    rank = {name: i for i, name in enumerate(ORDER)}
    return sorted(found, key=lambda p: (rank.get(p.relative_to(folder).as_posix(), len(rank)), p))


def clean(nb: Any) -> Any:
    """Keep what a committed notebook may carry: tags, outputs, counts, sparkmagic's kernelspec."""
    nb.metadata = {"kernelspec": dict(KERNELSPEC), "language_info": dict(LANGUAGE_INFO)}
    for cell in nb.cells:
        tags = cell.get("metadata", {}).get("tags")
        cell.metadata = {"tags": tags} if tags else {}
        for output in cell.get("outputs", []):
            if "metadata" in output:
                output["metadata"] = {}
            output.get("data", {}).pop("application/vnd.jupyter.widget-view+json", None)
    return nb


def _cell_seconds(cell: Any) -> Optional[float]:
    """How long a cell ran, from the timestamps nbclient records in its metadata."""
    from datetime import datetime

    stamps = cell.get("metadata", {}).get("execution", {})
    start, end = stamps.get("iopub.execute_input"), stamps.get("shell.execute_reply")
    if not (start and end):
        return None
    parse = [datetime.fromisoformat(t.replace("Z", "+00:00")) for t in (start, end)]
    return (parse[1] - parse[0]).total_seconds()


def slowest_cells(nb: Any, n: int = 3) -> List[Dict[str, Any]]:
    """The ``n`` slowest code cells of an executed (not yet cleaned) notebook."""
    timed = []
    for index, cell in enumerate(nb.cells):
        seconds = _cell_seconds(cell) if cell.cell_type == "code" else None
        if seconds is not None:
            timed.append((seconds, index, cell.source.splitlines()[0] if cell.source else ""))
    timed.sort(key=lambda t: -t[0])
    return [
        {"cell": i, "source": first[:60], "seconds": round(sec, 1)} for sec, i, first in timed[:n]
    ]


def _failed_cell(nb: Any, exc: Exception) -> str:
    for index, cell in enumerate(nb.cells):
        for output in cell.get("outputs", []):
            if output.get("output_type") == "error":
                first = cell.source.splitlines()[0] if cell.source else ""
                return f"cell {index} ({first[:60]}): {output.get('ename')}: {output.get('evalue')}"
    return str(exc).strip().splitlines()[-1][:200] if str(exc).strip() else type(exc).__name__


def run_notebook(
    path: Path,
    kernel: str,
    timeout: int,
    env: Optional[Dict[str, str]] = None,
    solutions: Optional[Dict[str, str]] = None,
) -> tuple:
    """Execute one notebook in its folder; return (notebook, NotebookRun).

    ``env`` adds environment variables for the notebook's kernel. With ``solutions``
    (:func:`ctr_lab.tools.solutions.read`), the notebook's solution version runs.
    """
    import nbformat
    from nbclient import NotebookClient

    nb = nbformat.read(path, as_version=4)
    if solutions is not None:
        from ctr_lab.tools.solutions import solution_version

        nb = solution_version(nb, solutions)
    outcome = NotebookRun(path=str(path))
    client = NotebookClient(
        nb,
        kernel_name=kernel,
        timeout=timeout,
        resources={"metadata": {"path": str(path.parent)}},
    )
    started = time.perf_counter()
    try:
        client.execute(env={**os.environ, **(env or {})})
        outcome.status = "ok"
    except Exception as exc:  # nbclient raises CellExecutionError, timeouts, dead kernels
        # On Ctrl-C or SIGTERM nbclient shuts the kernel down (its own signal handler) and the
        # cell fails as if the kernel had died: stop the whole run instead of going on.
        if getattr(client, "_async_cleanup_kernel_future", None) is not None:
            raise KeyboardInterrupt(f"stopped while running {path.name}") from None
        outcome.status = "FAILED"
        outcome.failed_cell = _failed_cell(nb, exc)
    outcome.seconds = time.perf_counter() - started
    outcome.slowest_cells = slowest_cells(nb)
    outcome.headlines = headlines(nb.cells)
    return nb, outcome


def driver_settings(paths: List[Path]) -> Dict[str, str]:
    """The Spark settings of the first ``%%configure`` cell among ``paths``' notebooks.

    The shared driver JVM starts with them, so every notebook that asks for the same JVM-start
    settings (driver memory, Java options) starts its session in it.
    """
    import nbformat

    from ctr_lab.tools.magics import LocalSession

    for path in paths:
        for cell in nbformat.read(path, as_version=4).cells:
            if cell.cell_type == "code" and cell.source.startswith("%%configure"):
                session = LocalSession()
                try:
                    session.configs = json.loads(cell.source.split("\n", 1)[1])
                except (IndexError, ValueError):
                    return {}
                return session.spark_settings()[2]
    return {}


def _write_html(nb: Any, target: Path) -> None:
    from nbconvert import HTMLExporter

    body, _ = HTMLExporter().from_notebook_node(nb)
    target.write_text(body, encoding="utf-8")


def table(runs: List[NotebookRun], root: Path) -> str:
    """The summary table ``ctr-lab run`` prints."""
    lines = [f"{'notebook':<48} {'status':<7} {'seconds':>8}  headline metrics"]
    for r in runs:
        name = Path(r.path).resolve().relative_to(root.resolve()).as_posix()
        heads = ", ".join(
            f"{k} log loss {v['log_loss']:.4f} AUC {v['auc']:.4f}" for k, v in r.headlines.items()
        )
        lines.append(f"{name:<48} {r.status:<7} {r.seconds:>8.1f}  {heads}")
        if r.failed_cell:
            lines.append(f"{'':<48} failed at {r.failed_cell}")
    lines.append(f"{'total':<48} {'':<7} {sum(r.seconds for r in runs):>8.1f}")
    return "\n".join(lines)


def _run(args: argparse.Namespace) -> int:
    # Headless: nobody watches a progress bar, and saved outputs must not carry one.
    os.environ["CTR_LAB_PROGRESS"] = "0"
    root = Path(args.notebooks) if args.notebooks else notebooks_dir()
    paths = ordered_notebooks(root)
    if not paths:
        raise CtrLabError(f"no notebooks to run under {root}")
    if args.only:
        names = [p.relative_to(root).as_posix() for p in paths]
        paths = [p for p, n in zip(paths, names) if any(o in n for o in args.only)]
        if not paths:
            raise CtrLabError(
                f"--only {' '.join(args.only)} matched no notebook under {root}. Fix: give part "
                f"of one of these names: {', '.join(names)}"
            )
    from jupyter_client.kernelspec import KernelSpecManager, NoSuchKernel

    try:
        spec = KernelSpecManager().get_kernel_spec(args.kernel)
    except NoSuchKernel:
        raise CtrLabError(
            f"no Jupyter kernel named {args.kernel!r}. Fix: ctr-lab kernel install --sys-prefix "
            "(or --user)"
        ) from None
    if "sparkmagic" in " ".join(spec.argv):
        raise CtrLabError(
            f"the Jupyter kernel {args.kernel!r} here is sparkmagic's, which needs a Livy server "
            f"({spec.resource_dir}). Fix: ctr-lab kernel install --sys-prefix (the local kernel "
            "takes that name)"
        )
    solutions = None
    if not (args.student or args.in_place):
        from ctr_lab.tools.solutions import read

        solutions = read(root)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    with contextlib.ExitStack() as stack:
        driver = None
        if not args.jvm_per_notebook:
            from ctr_lab.session import shared_driver

            driver = stack.enter_context(
                shared_driver(driver_settings(paths), cwd=str(root), log=str(out / "driver.log"))
            )
        runs = _run_each(args, root, paths, out, driver, solutions)
    print()
    print(table(runs, root))
    summary = out / "summary.json"
    summary.write_text(json.dumps([r.__dict__ for r in runs], indent=2) + "\n")
    print(f"\nexecuted notebooks: {out / 'notebooks'}\nHTML: {out / 'html'}\nsummary: {summary}")
    failed = [r for r in runs if r.status != "ok"]
    if failed:
        print(f"{len(failed)} notebook(s) failed", file=sys.stderr)
        return 1
    return 0


def _run_each(
    args: argparse.Namespace,
    root: Path,
    paths: List[Path],
    out: Path,
    driver: Any,
    solutions: Optional[Dict[str, str]],
) -> List[NotebookRun]:
    import nbformat

    runs: List[NotebookRun] = []
    for path in paths:
        rel = path.relative_to(root)
        print(f"running {rel} ...", flush=True)
        nb, outcome = run_notebook(
            path, args.kernel, args.timeout, driver and driver.env, solutions
        )
        if driver is not None and driver.stop_leftover_session():
            print("  stopped the Spark session it left running", flush=True)
        clean(nb)
        runs.append(outcome)
        copy = out / "notebooks" / rel
        copy.parent.mkdir(parents=True, exist_ok=True)
        nbformat.write(nb, copy)
        page = (out / "html" / rel).with_suffix(".html")
        page.parent.mkdir(parents=True, exist_ok=True)
        _write_html(nb, page)
        if args.in_place and outcome.status == "ok":
            nbformat.write(nb, path)
        print(f"  {outcome.status} in {outcome.seconds:.1f} s", flush=True)
        for slow in outcome.slowest_cells[:1]:
            print(f"  slowest: cell {slow['cell']} ({slow['source']}) {slow['seconds']} s")
    return runs


def add_parser(sub: argparse._SubParsersAction) -> None:
    """Register ``ctr-lab run``."""
    run = sub.add_parser(
        "run",
        help="run the case-study notebooks in order on local Spark and summarise them",
        description="Execute every case-study notebook in order with the local kernel "
        "(ctr-lab kernel install), in its solution version unless --student, write executed "
        "copies and HTML to --out, and print a table: notebook, status, seconds, headline "
        "metrics. Exits 1 if a notebook fails, naming the cell.",
    )
    run.add_argument("--out", default="build/case_study", help="output folder")
    run.add_argument("--notebooks", help="notebooks folder (default: the checkout's notebooks/)")
    run.add_argument(
        "--kernel", default="pysparkkernel", help="Jupyter kernel name (default pysparkkernel)"
    )
    run.add_argument(
        "--only",
        action="append",
        metavar="TEXT",
        help="run only notebooks whose path contains this text (repeat for several)",
    )
    run.add_argument("--timeout", type=int, default=1800, help="seconds allowed per cell")
    run.add_argument(
        "--jvm-per-notebook",
        action="store_true",
        help="start a driver JVM per notebook, as opening each in Jupyter does (default: one "
        "JVM for the run, that each notebook's session starts in; its log is driver.log in --out)",
    )
    run.add_argument(
        "--student",
        action="store_true",
        help="run the notebooks as committed, their exercises open (default: the solution "
        "versions, each exercise cell replaced by its solution from notebooks/solutions.py)",
    )
    run.add_argument(
        "--in-place",
        action="store_true",
        help="also save each passing notebook's outputs back into notebooks/ (for authors; "
        "implies --student)",
    )
    run.set_defaults(func=_run)
