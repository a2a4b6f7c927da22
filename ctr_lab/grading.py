"""The grade of record: a saved model scored on a test file the student's data does not hold.

:func:`ctr_lab.assignment.grade` runs in the student's session and trusts it: its ``df``, its
``ctr_lab`` functions, and whatever days the model saw. :func:`grade_saved_model` trusts only the
saved model and the instructor's files, and ``ctr-lab grade`` runs it in a process of its own, so
nothing a student does in a notebook session (reassigning ``df``, replacing
``cl.evaluate.log_loss_of``) reaches it. It

* refuses a folder that is not a model ``ctr_lab`` saved (no completion marker, or one without
  the record of the training rows that :func:`ctr_lab.train.fit_or_load` writes), and a model
  whose recorded training hours overlap the test file's;
* refuses a training file (``train_df``) that overlaps the test file: students who were given it
  could tune on the test days;
* lets the model score the test rows without their ``label``, and refuses a model that reads it,
  reads a file or table besides the rows (a SQL stage), or does not give every test row one
  probability in 0-1 (a stage that drops rows would score only the easy ones);
* scores the model next to the constant click-rate predictor (the training click rate for every
  row) and the course's baseline, both fitted on ``train_df``, the data the students got;
* passes the model when its log loss is at least ``pass_mark`` percent below the constant
  predictor's: beating the course's baseline is not enough, since the constant predictor beats it.

The score is that improvement, ``100 * (constant - yours) / constant``, in percent of the constant
predictor's log loss.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field
from typing import Any, Dict, Iterator, List, Optional, Tuple

from ctr_lab.errors import CtrLabError

#: A model passes with a test log loss at least this many percent below the constant predictor's.
DEFAULT_PASS_MARK = 1.0

#: The rows of a grade's table, in order.
CONSTANT_ROW, BASELINE_ROW, YOURS_ROW = 0, 1, 2


#: A relation a parsed SQL statement names, in the plan's text: ``'UnresolvedRelation [a, b]``.
_RELATION = re.compile(r"UnresolvedRelation \[([^\]]*)\]")


class GradingRefused(CtrLabError):
    """The model or the files cannot be graded: the one-line message names what and the fix."""


@dataclass
class Grade:
    """A graded model: the score, pass or fail, the table and the reasons, as an LMS takes them."""

    model_dir: str
    test: str
    pass_mark: float
    score: Optional[float]
    passed: bool
    table: Any = None  # pandas.DataFrame; None when refused
    reasons: List[str] = field(default_factory=list)

    def to_dict(self) -> Dict[str, Any]:
        """The grade as JSON-ready values: ``score``, ``pass``, ``rows`` and ``reasons``."""
        rows = [] if self.table is None else self.table.to_dict("records")
        return {
            "model_dir": self.model_dir,
            "test": self.test,
            "score": self.score,
            "pass": self.passed,
            "pass_mark": self.pass_mark,
            "refused": self.table is None,
            "rows": rows,
            "reasons": list(self.reasons),
        }

    def __str__(self) -> str:
        lines = [] if self.table is None else [self.table.to_string(index=False), ""]
        if self.score is not None:
            verdict = "PASS" if self.passed else "FAIL"
            lines.append(f"score {self.score:.2f} (pass mark {self.pass_mark:g}): {verdict}")
        return "\n".join(lines + self.reasons)


def _hours(record: Dict[str, Any]) -> Optional[Tuple[int, int]]:
    from ctr_lab.train.store import utc_seconds

    if not record.get("first_hour") or not record.get("last_hour"):
        return None
    return utc_seconds(record["first_hour"]), utc_seconds(record["last_hour"])


def _models_near(model_dir: str, spark) -> str:
    """The fix for a folder that is no model: the model it is inside, or those it holds."""
    from ctr_lab.fs import HadoopFs
    from ctr_lab.train.store import COMPLETE_MARKER, saved_record

    base = model_dir.rstrip("/")
    parent = base
    for _ in range(3):  # stages/00_uid/metadata is three folders down a model
        parent = parent.rpartition("/")[0]
        if not parent or parent.endswith((":", ":/")):  # the top of the path or of a bucket URI
            break
        if saved_record(parent, spark).get("fingerprint"):
            return f"{model_dir} is inside the model {parent}: grade {parent}"
    pattern = f"{base}/*/{COMPLETE_MARKER}"
    inner = sorted(p.rpartition("/")[0] for p, _ in HadoopFs(spark, pattern).glob(pattern))
    if inner:
        names = [f"{base}/{p.rpartition('/')[2]}" for p in inner]
        shown = ", ".join(names[:5]) + (f" and {len(names) - 5} more" if len(names) > 5 else "")
        return f"{model_dir} holds model folders ({shown}): grade each of them"
    return (
        "save the model with cl.train.fit_or_load(..., model_dir) or "
        "`ctr-lab train --split none --model-dir DIR`, and grade that folder"
    )


def model_record(model_dir: str, spark) -> Dict[str, Any]:
    """What the saved model in ``model_dir`` recorded about its training rows.

    Raises :class:`GradingRefused` for a folder that does not exist, one that is not a model
    ``ctr_lab`` saved, one whose files differ from those its marker lists (copied partway), or
    one saved without the training period (by a version before it was recorded).
    """
    from ctr_lab.fs import HadoopFs
    from ctr_lab.train.store import COMPLETE_MARKER, files_not_as_listed, saved_record

    if not HadoopFs(spark, model_dir).exists(model_dir):
        raise GradingRefused(
            f"{model_dir}: no such folder. Fix: check the path (a relative one starts in "
            f"{os.getcwd()}), or save the model there first (`ctr-lab train --split none "
            "--model-dir DIR`)"
        )
    marker = saved_record(model_dir, spark)
    differ = [] if marker else files_not_as_listed(model_dir, spark)
    if differ:
        raise GradingRefused(
            f"{model_dir}: the model is not whole: {len(differ)} of the files its "
            f"{COMPLETE_MARKER} lists are missing or of another size (first {differ[0]}). "
            "Fix: copy the whole folder again, or save the model again "
            "(`ctr-lab train --split none --model-dir DIR`)"
        )
    if not marker.get("fingerprint"):
        raise GradingRefused(
            f"{model_dir}: not a model ctr_lab saved (no {COMPLETE_MARKER} with its "
            f"fingerprint). Fix: {_models_near(model_dir, spark)}"
        )
    record = marker.get("training_data") or {}
    if _hours(record) is None:
        raise GradingRefused(
            f"{model_dir}: the model records no training period (saved by an older ctr_lab, or "
            "trained on rows without event_time). Fix: delete the folder and train it again "
            "with this ctr_lab on canonical data (cl.load)"
        )
    return record


def refuse_other_reads(model: Any, model_dir: str, spark) -> None:
    """Refuse a model with a SQL stage that reads a table or file besides the rows it scores.

    A ``SQLTransformer``'s statement, in the model or in a pipeline inside it, may name one
    relation, ``__THIS__``: the rows given to the model. One that also reads a file
    (``csv.`path```) or a table could read the test file's clicks in the grader's process,
    which can read what the students cannot.
    """
    from pyspark.ml.feature import SQLTransformer

    parser = spark._jsparkSession.sessionState().sqlParser()
    for stage in _stages_within(model):
        if not isinstance(stage, SQLTransformer):
            continue
        try:  # the parsed plan's text lists every relation, those of subqueries and CTEs too
            plan = parser.parsePlan(stage.getStatement()).treeString()
        except Exception:  # Py4J: a statement Spark cannot parse fails the scoring, with its line
            continue
        others = sorted(set(_RELATION.findall(plan)) - {"__THIS__"})
        if others:
            raise GradingRefused(
                f"{model_dir}: the model's SQL stage {stage.uid} reads {', '.join(others)} "
                "besides the rows it scores. Fix: compute columns from each row's own values "
                "(extra_features over the canonical columns) and train the model again"
            )


def _stages_within(model: Any) -> Iterator[Any]:
    """The stages of a ``PipelineModel``, those of a pipeline inside it in its place."""
    from pyspark.ml import PipelineModel

    for stage in model.stages:
        if isinstance(stage, PipelineModel):
            yield from _stages_within(stage)
        else:
            yield stage


def check_apart(
    what: str, record: Dict[str, Any], test_name: str, test_record: Dict[str, Any], fix: str
) -> None:
    """Refuse when the hours of ``record`` overlap the test file's.

    ``record`` and ``test_record`` hold ``first_hour`` and ``last_hour``
    (:func:`ctr_lab.train.training_record`); ``what`` names the trained-on rows and ``fix`` is
    the fix the refusal gives.

    Examples
    --------
    >>> train = {"first_hour": "2014-10-21T00:00:00Z", "last_hour": "2014-10-29T23:00:00Z"}
    >>> test = {"first_hour": "2014-10-30T00:00:00Z", "last_hour": "2014-10-30T23:00:00Z"}
    >>> check_apart("models/mine: the model was trained on", train, "day30.csv", test, "...")
    >>> check_apart("models/mine: the model was trained on", test, "day30.csv", test, "retrain")
    Traceback (most recent call last):
    ...
    ctr_lab.grading.GradingRefused: models/mine: the model was trained on hours 2014-10-30T00:00:00Z to 2014-10-30T23:00:00Z, which overlap the test file day30.csv (2014-10-30T00:00:00Z to 2014-10-30T23:00:00Z). Fix: retrain
    """  # noqa: E501
    seen, test = _hours(record), _hours(test_record)
    if seen is None or test is None:
        raise GradingRefused(f"{what} rows without event hours. Fix: {fix}")
    if seen[0] <= test[1] and test[0] <= seen[1]:
        raise GradingRefused(
            f"{what} hours {record['first_hour']} to {record['last_hour']}, which overlap the "
            f"test file {test_name} ({test_record['first_hour']} to "
            f"{test_record['last_hour']}). Fix: {fix}"
        )


def verdict(table: Any, pass_mark: float = DEFAULT_PASS_MARK) -> Tuple[float, bool, List[str]]:
    """The score, pass or fail, and the reasons, from a grade's table.

    ``table`` has the rows constant, baseline, yours (in that order) with ``test_rows`` and
    ``log_loss``. The score is the model's log loss below the constant predictor's, in percent of
    it; the model passes when the score is at least ``pass_mark``.

    Examples
    --------
    >>> import pandas as pd
    >>> table = pd.DataFrame(
    ...     {"model": ["constant", "baseline", "yours"], "test_rows": [100] * 3,
    ...      "log_loss": [0.40, 0.50, 0.39]}
    ... )
    >>> score, passed, reasons = verdict(table, pass_mark=2.0)
    >>> round(score, 6), passed
    (2.5, True)
    >>> print("\\n".join(reasons))
    pass: log loss 0.3900 on 100 test rows, 2.50 % below the constant click-rate predictor's 0.4000 (pass mark 2 %)
    the course baseline: log loss 0.5000; yours is 22.00 % below it
    """  # noqa: E501
    constant = float(table["log_loss"].iloc[CONSTANT_ROW])
    baseline = float(table["log_loss"].iloc[BASELINE_ROW])
    yours = float(table["log_loss"].iloc[YOURS_ROW])
    rows = int(table["test_rows"].iloc[YOURS_ROW])
    score = 100.0 * (constant - yours) / constant
    passed = score >= pass_mark
    below = "below" if score >= 0 else "above"
    vs_base = 100.0 * (baseline - yours) / baseline
    reasons = [
        f"{'pass' if passed else 'fail'}: log loss {yours:.4f} on {rows:,} test rows, "
        f"{abs(score):.2f} % {below} the constant click-rate predictor's {constant:.4f} "
        f"(pass mark {pass_mark:g} %)",
        f"the course baseline: log loss {baseline:.4f}; yours is {abs(vs_base):.2f} % "
        f"{'below' if vs_base >= 0 else 'above'} it",
    ]
    return score, passed, reasons


def grade_saved_model(
    model_dir: str,
    train_df: Any,
    test_df: Any,
    test_name: str = "the test rows",
    train_name: str = "the training rows",
    pass_mark: float = DEFAULT_PASS_MARK,
    baseline: str = "course_baseline",
    baseline_dir: Optional[str] = None,
    baseline_settings: Optional[Dict[str, Any]] = None,
) -> Grade:
    """Grade the model saved in ``model_dir`` on ``test_df``; the references fit on ``train_df``.

    Parameters
    ----------
    model_dir
        A folder :func:`ctr_lab.train.fit_or_load` (or ``ctr-lab train --model-dir``) saved.
    train_df
        Canonical rows the students got (:func:`ctr_lab.load`): the constant predictor's click
        rate and the baseline are fitted on them.
    test_df
        Canonical rows of the test days, kept apart from the students.
    test_name, train_name
        What the refusals and the grade call the two (their paths).
    pass_mark
        The least score that passes, in percent (:func:`verdict`).
    baseline, baseline_dir, baseline_settings
        The course's pipeline, and where it is kept (:func:`ctr_lab.assignment.fit_baseline`);
        keep it in a folder to fit it once for every submission.

    Returns
    -------
    Grade
        With its table: one row each for the constant predictor, the baseline and the model
        (``model``, ``test_rows``, ``log_loss``, ``auc``, and the change in log loss against the
        constant predictor and the baseline in percent, rounded to 4 places).

    Raises
    ------
    GradingRefused
        For a folder that is not a ``ctr_lab`` model or whose model cannot be read, a model or
        a training file whose hours overlap the test file's, a model that reads the test rows'
        labels (it scores them without) or data besides them (:func:`refuse_other_reads`), or
        that does not give each test row one probability.
    """
    from ctr_lab.assignment import fit_baseline, load_model, score_models, with_change
    from ctr_lab.train.store import data_fingerprint, refuse_other_content

    spark = test_df.sparkSession
    record = model_record(model_dir, spark)
    if baseline_dir is not None:  # refused before the scoring, not after it
        refuse_other_content(baseline_dir, spark)
    tested = data_fingerprint(test_df)
    if not tested["rows"]:
        raise GradingRefused(f"{test_name}: no test rows. Fix: give the test days' file")
    check_apart(
        f"{model_dir}: the model was trained on",
        record,
        test_name,
        tested,
        "train only on the data the students got, without the test days "
        "(ctr-lab train --split none --data THAT_DATA --model-dir DIR)",
    )
    given = data_fingerprint(train_df)
    check_apart(
        f"{train_name}: the training file holds",
        given,
        test_name,
        tested,
        "give --train the data the students got; it must not hold the test days",
    )
    if not given.get("clicks") or given["clicks"] == given["rows"]:
        raise GradingRefused(
            f"{train_name}: {given.get('clicks', 0)} clicks in {given['rows']} rows; the click "
            "rate must lie strictly between 0 and 1. Fix: give the students' training file"
        )
    rate = given["clicks"] / given["rows"]
    try:
        yours = load_model(model_dir)  # before the baseline is fitted: refused sooner
    except CtrLabError as exc:  # a marker without a whole model: refused, with a grade
        raise GradingRefused(str(exc)) from None
    refuse_other_reads(yours, model_dir, spark)
    models = [
        (f"constant click rate ({rate:.4f})", rate),
        (
            f"baseline ({baseline})",
            fit_baseline(train_df, baseline, baseline_dir, baseline_settings, known_data=given),
        ),
        ("yours", yours),
    ]
    try:
        table = score_models(test_df, models, called={"yours": model_dir})
    except CtrLabError as exc:  # a model that reads the label, drops or adds rows: refused
        raise GradingRefused(str(exc)) from None
    score, passed, reasons = verdict(table, pass_mark)  # on the unrounded log losses
    table = with_change(table, "log_loss_vs_constant_%", CONSTANT_ROW)
    table = with_change(table, "log_loss_vs_baseline_%", BASELINE_ROW).round(4)
    same = record.get("checksum") == given["checksum"]
    reasons.append(
        f"the model was trained on {record.get('rows', 0):,} rows, hours {record['first_hour']} "
        f"to {record['last_hour']}"
        + (f" (the rows of {train_name})" if same else f"; {train_name} has {given['rows']:,}")
    )
    return Grade(model_dir, test_name, pass_mark, round(score, 4), passed, table, reasons)


def grading_files(df: Any, folder: str, test_days: int = 1) -> Tuple[str, str]:
    """Write ``df`` as an instructor hands it out: the students' days, and the last days apart.

    The students' rows (every day before the last ``test_days``, :func:`ctr_lab.train.time_split`)
    go to ``folder/students``, the held-out days to ``folder/held_out``, each as canonical
    Parquet that :func:`ctr_lab.load` reads; written again (the same rows) on every call. On a
    laptop this stands in for the instructor's files; on EMR the instructor keeps the held-out
    days under a prefix of their own.

    Returns
    -------
    (students, held_out)
        The two folders, for ``ctr-lab grade --train students --test held_out``.
    """
    from ctr_lab.train.splits import time_split

    base = folder.rstrip("/")
    students, held_out = f"{base}/students", f"{base}/held_out"
    train_df, test_df = time_split(df, test_days=test_days)
    train_df.write.mode("overwrite").parquet(students)
    test_df.write.mode("overwrite").parquet(held_out)
    return students, held_out


def grade_command(
    model_dir: str, train: str, test: str, baseline_dir: Optional[str] = None
) -> List[str]:
    """The ``ctr-lab grade`` command line that grades ``model_dir`` on ``test``.

    Examples
    --------
    >>> " ".join(grade_command("models/mine", "data/students", "data/held_out"))
    'ctr-lab grade models/mine --test data/held_out --train data/students'
    """
    command = ["ctr-lab", "grade", model_dir, "--test", test, "--train", train]
    return command + (["--baseline-dir", baseline_dir] if baseline_dir else [])


def grade_of_record(
    model_dir: str, train: str, test: str, baseline_dir: Optional[str] = None
) -> None:
    """Run ``ctr-lab grade`` in a process of its own and print what it prints.

    Nothing of the calling session reaches that process: it starts its own Python and its own
    Spark, and reads only the saved model and the two files. Where ``ctr-lab`` is not installed
    (an EMR driver gets the library's core only), it prints the command the instructor runs
    instead. A refusal prints its one line.

    Raises
    ------
    CtrLabError
        When the command fails for another reason than a refusal; the message holds the end of
        what it printed.
    """
    import importlib.util
    import os
    import shlex
    import subprocess
    import sys

    from ctr_lab.session import GATEWAY_ENV

    command = grade_command(model_dir, train, test, baseline_dir)
    if importlib.util.find_spec("ctr_lab.tools") is None:
        print(
            "ctr-lab is not installed where this session runs (an EMR driver gets the library's "
            "core only); your instructor grades the model with:\n  " + shlex.join(command)
        )
        return
    # A session of this process may run in a shared driver JVM: the grader starts its own.
    env = {k: v for k, v in os.environ.items() if k not in GATEWAY_ENV}
    run = subprocess.run(
        [sys.executable, "-m", "ctr_lab.tools", *command[1:]],
        capture_output=True,
        text=True,
        env=env,
    )
    if run.returncode not in (0, 1) or (run.returncode == 1 and not run.stderr.strip()):
        tail = (run.stdout + run.stderr).strip()[-2000:]
        raise CtrLabError(f"{shlex.join(command)} ended with exit code {run.returncode}: {tail}")
    if run.returncode == 0:
        print(run.stdout.rstrip())
    else:  # the refusal's one line, without the JVM's own warnings before it
        lines = run.stderr.strip().splitlines()
        print(next((x for x in reversed(lines) if x.startswith("ctr-lab:")), lines[-1]))
