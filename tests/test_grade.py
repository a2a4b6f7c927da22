"""``ctr-lab grade``: the grade of record, outside the student's session, and the ways around it.

The instructor's files are cut from the committed ``course_10k`` sample: the students get days
21-29 (``train.csv``), the instructor keeps day 30 (``test.csv``). Each cheating route of the
in-session grader (:func:`ctr_lab.assignment.grade`) is shown to work there and to fail against
``ctr-lab grade``. The expected numbers come from the CSV text (pandas) and scikit-learn.
"""

from __future__ import annotations

import csv
import json
import math
import shutil
from pathlib import Path
from types import SimpleNamespace

import pandas as pd
import pytest
from sklearn.metrics import log_loss

import ctr_lab as cl
from ctr_lab.errors import CtrLabError
from ctr_lab.grading import verdict
from ctr_lab.samples import sample_path
from ctr_lab.tools.cli import main
from ctr_lab.train import COMPLETE_MARKER

# `ctr-lab grade` and `ctr-lab train` are tools (ctr_lab.tools.cli): the lab environment runs
# them. The core's Spark calls they make run on PySpark 4 too, in other tests: the training
# record through fit_or_load (test_train) and scoring and the baseline through
# cl.assignment.grade (ctr_lab.assignment's example, test_docstrings).
pytestmark = pytest.mark.tools

TEST_DAY = "30"  # the last day of course_10k (October 2014)


def _rows(path: Path) -> pd.DataFrame:
    """The course file's rows as text: click (TRUE/FALSE) and day, read without ctr_lab."""
    return pd.read_csv(path, dtype=str, usecols=["click", "day", "hour"])


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    """The students' file (days before the test day) and the instructor's test file."""
    out = tmp_path_factory.mktemp("grade")
    with open(sample_path("course_10k"), newline="") as fh:
        rows = list(csv.reader(fh))
    day = rows[0].index("day")
    for name, keep in (("train.csv", lambda r: r[day] != TEST_DAY), ("test.csv", None)):
        chosen = [r for r in rows[1:] if (keep(r) if keep else r[day] == TEST_DAY)]
        with open(out / name, "w", newline="") as fh:
            csv.writer(fh).writerows([rows[0], *chosen])
    return SimpleNamespace(
        dir=out, train=out / "train.csv", test=out / "test.csv", baseline=out / "baseline"
    )


def _train(data, model_dir: Path, capsys=None) -> dict:
    """``ctr-lab train --split none`` (what a submission does) with a cheap pipeline."""
    summary = model_dir.parent / f"{model_dir.name}.train.json"
    args = ["train", "--data", str(data), "--split", "none", "--pipeline", "course_baseline"]
    args += ["--max-iter", "10", "--model-dir", str(model_dir), "--json", str(summary)]
    assert main(args) == 0
    if capsys is not None:
        capsys.readouterr()
    return json.loads(summary.read_text())


def _grade(files, model_dir, out: Path, *extra: str, train=None) -> list:
    """The arguments of ``ctr-lab grade`` for ``model_dir``, writing its JSON to ``out``."""
    return [
        "grade",
        str(model_dir),
        "--test",
        str(files.test),
        "--train",
        str(train or files.train),
        "--baseline-dir",
        str(files.baseline),
        "--json",
        str(out),
        *extra,
    ]


@pytest.fixture(scope="module")
def honest(spark, files):
    """A submission trained on the students' file, and its grade (module-wide: trained once)."""
    model_dir = files.dir / "honest"
    summary = _train(files.train, model_dir)
    out = files.dir / "honest.json"
    assert main(_grade(files, model_dir, out)) == 0
    return SimpleNamespace(dir=model_dir, summary=summary, grade=json.loads(out.read_text()))


def _same_grade(got: dict, expected: dict) -> None:
    """The same rows and score, up to the last rounded digit (sums may add up in another order)."""
    assert [r["model"] for r in got["rows"]] == [r["model"] for r in expected["rows"]]
    for mine, theirs in zip(got["rows"], expected["rows"]):
        for key in ("test_rows", "log_loss", "auc"):
            assert mine[key] == pytest.approx(theirs[key], abs=2e-4), key
    assert got["score"] == pytest.approx(expected["score"], abs=2e-3)


def _one_line(err: str) -> str:
    lines = [line for line in err.strip().splitlines() if line.strip()]
    assert len(lines) == 1, lines
    return lines[0]


# --- ctr-lab train --split none -------------------------------------------------------------


def test_split_none_trains_on_every_row_and_records_the_hours(honest, files):
    text = _rows(files.train)
    assert honest.summary["split"] == "none" and honest.summary["test_rows"] == 0
    assert honest.summary["train_rows"] == len(text) == 8950
    marker = json.loads((honest.dir / COMPLETE_MARKER).read_text())
    record = marker["training_data"]
    assert record["rows"] == len(text)
    assert record["clicks"] == int((text["click"] == "TRUE").sum())
    assert (record["first_hour"], record["last_hour"]) == (
        "2014-10-21T00:00:00Z",
        f"2014-10-29T{int(text[text['day'] == '29']['hour'].astype(int).max()):02d}:00:00Z",
    )


def test_split_none_without_a_model_dir_is_one_line(files, capsys):
    assert main(["train", "--data", str(files.train), "--split", "none"]) == 1
    line = _one_line(capsys.readouterr().err)
    assert "--split none" in line and "Fix: add --model-dir" in line


def test_model_and_baseline_folders_of_the_users_files_are_refused_before_any_data(
    spark, files, tmp_path, capsys
):
    mydata = tmp_path / "mydata"
    mydata.mkdir()
    shutil.copy(files.train, mydata / "train.csv")
    (mydata / "notes.txt").write_text("my notes\n")
    before = {p.name: p.read_bytes() for p in mydata.iterdir()}
    refused = (
        f"ctr-lab: error: {mydata}: exists and is not a ctr_lab model (it holds notes.txt, "
        "train.csv). Fix: choose a new or empty folder for the model"
    )
    missing = str(tmp_path / "missing.csv")  # never read: the folder is refused first
    train = ["train", "--data", missing, "--split", "none", "--model-dir", str(mydata)]
    assert main(train) == 1
    assert _one_line(capsys.readouterr().err) == refused

    submitted = tmp_path / "submitted"  # what the grade reads of a model before any data
    submitted.mkdir()
    hours = {"first_hour": "2014-10-21T00:00:00Z", "last_hour": "2014-10-29T23:00:00Z"}
    marker = {"fingerprint": "0" * 64, "training_data": hours}
    (submitted / COMPLETE_MARKER).write_text(json.dumps(marker))
    grade = ["grade", str(submitted), "--test", missing, "--train", missing]
    assert main([*grade, "--baseline-dir", str(mydata)]) == 1
    assert _one_line(capsys.readouterr().err) == refused
    assert {p.name: p.read_bytes() for p in mydata.iterdir()} == before


# --- the grade ------------------------------------------------------------------------------


def test_grade_scores_the_saved_model_on_the_test_file(spark, honest, files):
    from pyspark.ml import PipelineModel

    grade = honest.grade
    assert [r["model"].split(" (")[0] for r in grade["rows"]] == [
        "constant click rate",
        "baseline",
        "yours",
    ]
    assert {r["test_rows"] for r in grade["rows"]} == {len(_rows(files.test))} == {1050}
    # Yours: scikit-learn's log loss of the saved model's probabilities on the test file.
    scored = PipelineModel.load(str(honest.dir)).transform(cl.load(str(files.test), spark).df)
    got = [
        (r.label, float(r.probability[1])) for r in scored.select("label", "probability").collect()
    ]
    expected = log_loss([y for y, _ in got], [p for _, p in got], labels=[0, 1])
    assert grade["rows"][2]["log_loss"] == pytest.approx(expected, abs=6e-5)
    assert grade["score"] == pytest.approx(
        100 * (grade["rows"][0]["log_loss"] - expected) / grade["rows"][0]["log_loss"], abs=0.02
    )
    assert grade["pass"] is (grade["score"] >= grade["pass_mark"])
    assert not grade["refused"] and grade["reasons"][0].startswith(("pass:", "fail:"))


def test_constant_predictor_log_loss_is_the_hand_computed_one(honest, files):
    train, test = _rows(files.train), _rows(files.test)
    p = (train["click"] == "TRUE").mean()  # the training click rate
    k, n = int((test["click"] == "TRUE").sum()), len(test)
    by_hand = -(k * math.log(p) + (n - k) * math.log(1 - p)) / n
    constant = honest.grade["rows"][0]
    assert constant["model"] == f"constant click rate ({p:.4f})"
    assert constant["log_loss"] == pytest.approx(by_hand, abs=6e-5)
    assert constant["auc"] == 0.5  # every row tied


def test_pass_mark():
    table = pd.DataFrame(
        {"model": ["c", "b", "y"], "test_rows": [10] * 3, "log_loss": [0.5, 0.8, 0.49]}
    )
    score, passed, reasons = verdict(table, pass_mark=2.0)  # 100 * 0.01 / 0.5 = 2 %: at the mark
    assert score == pytest.approx(2.0) and passed and reasons[0].startswith("pass:")
    assert verdict(table, pass_mark=2.01)[1] is False
    worse = table.assign(log_loss=[0.5, 0.8, 0.55])  # beats the baseline, not the constant
    score, passed, reasons = verdict(worse, pass_mark=0.0)
    assert score == pytest.approx(-10.0) and not passed
    assert "10.00 % above the constant" in reasons[0] and "31.25 % below it" in reasons[1]


def test_a_feature_of_your_own_is_saved_in_the_model_and_graded_with_it(spark, files, capsys):
    from pyspark.ml import PipelineModel

    model_dir = files.dir / "with_a_feature"
    mine = {"hour_level": "hour_of_day", "ad_size": "concat_ws('x', C15, C16)"}
    train_df = cl.load(str(files.train), spark).df
    cl.train.fit_or_load(
        "course_baseline", train_df, str(model_dir), maxIter=10, extra_features=mine
    )
    out = files.dir / "feature.json"
    assert main(_grade(files, model_dir, out)) == 0
    capsys.readouterr()
    # The grader, given only the folder, computed the columns: the model's own scores agree.
    scored = PipelineModel.load(str(model_dir)).transform(cl.load(str(files.test), spark).df)
    got = scored.select("label", "probability", "ad_size").collect()
    assert {r.ad_size for r in got} == set(
        (_rows_with(files.test, "C15") + "x" + _rows_with(files.test, "C16")).unique()
    )
    expected = log_loss(
        [r.label for r in got], [float(r.probability[1]) for r in got], labels=[0, 1]
    )
    assert json.loads(out.read_text())["rows"][2]["log_loss"] == pytest.approx(expected, abs=6e-5)


def _rows_with(path: Path, column: str) -> pd.Series:
    return pd.read_csv(path, dtype=str, usecols=[column])[column]


# --- refusals -------------------------------------------------------------------------------


def test_a_folder_that_is_no_ctr_lab_model_is_refused_in_one_line(honest, files, capsys):
    # A real Spark PipelineModel, saved without ctr_lab's marker.
    plain = files.dir / "plain_spark_model"
    shutil.copytree(honest.dir, plain, ignore=shutil.ignore_patterns(COMPLETE_MARKER))
    out = files.dir / "plain.json"
    assert main(_grade(files, plain, out)) == 1
    line = _one_line(capsys.readouterr().err)
    assert line.startswith(f"ctr-lab: error: {plain}: not a model ctr_lab saved")
    assert "Fix: save the model with cl.train.fit_or_load" in line
    graded = json.loads(out.read_text())
    assert (graded["pass"], graded["score"], graded["refused"]) == (False, None, True)


def test_a_folder_inside_a_model_or_holding_models_names_the_model_to_grade(
    honest, files, tmp_path, capsys
):
    inside = honest.dir / "stages"
    assert main(_grade(files, inside, tmp_path / "inside.json")) == 1
    line = _one_line(capsys.readouterr().err)
    assert line.endswith(f"Fix: {inside} is inside the model {honest.dir}: grade {honest.dir}")

    submissions = tmp_path / "submissions"  # the folder of every student's model, given whole
    for student in ("ada", "bo"):
        shutil.copytree(honest.dir, submissions / student)
    assert main(_grade(files, submissions, tmp_path / "all.json")) == 1
    line = _one_line(capsys.readouterr().err)
    assert line.startswith(f"ctr-lab: error: {submissions}: not a model ctr_lab saved")
    assert line.endswith(
        f"Fix: {submissions} holds model folders ({submissions}/ada, {submissions}/bo): grade "
        "each of them"
    )


def test_a_model_saved_without_its_training_period_is_refused(honest, files, capsys):
    old = files.dir / "older_model"
    shutil.copytree(honest.dir, old)
    marker = json.loads((old / COMPLETE_MARKER).read_text())
    del marker["training_data"]  # what fit_or_load wrote before the period was recorded
    (old / COMPLETE_MARKER).write_text(json.dumps(marker))
    (old / f".{COMPLETE_MARKER}.crc").unlink()  # the checksum Hadoop wrote beside the old text
    assert main(_grade(files, old, files.dir / "older.json")) == 1
    line = _one_line(capsys.readouterr().err)
    assert f"{old}: the model records no training period" in line and "Fix:" in line


# --- the cheating routes --------------------------------------------------------------------


def test_route_a_training_on_the_test_day_is_refused(spark, honest, files, capsys):
    cheat_dir = files.dir / "trained_on_every_day"
    summary = _train(sample_path("course_10k"), cheat_dir, capsys)
    assert summary["train_rows"] == 10_000  # the test day is in
    out = files.dir / "cheat_a.json"
    assert main(_grade(files, cheat_dir, out)) == 1
    line = _one_line(capsys.readouterr().err)
    assert line.startswith(f"ctr-lab: error: {cheat_dir}: the model was trained on hours ")
    assert f"overlap the test file {files.test}" in line and "Fix: train only on" in line
    assert json.loads(out.read_text())["pass"] is False


def test_route_b_reassigning_df_moves_the_session_grade_not_the_cli(spark, honest, files, capsys):
    from pyspark.sql import functions as F

    df = cl.load(str(files.train), spark).df.cache()
    model = cl.assignment.load_model(str(honest.dir))
    # The session's grading cell (cl.assignment.grade) scores the model on df's last day so:
    fair = cl.assignment.score_models(cl.train.time_split(df)[1], [("yours", model)])
    # The route: reassign df before the grading cell (here: drop most clicks of every day).
    df = df.where((F.col("label") == 0) | (F.hour("event_time") < 6)).cache()
    flattered = cl.assignment.score_models(cl.train.time_split(df)[1], [("yours", model)])
    assert flattered["log_loss"].iloc[0] < fair["log_loss"].iloc[0] - 0.05  # it works there

    # The CLI reads neither the session nor its df: the same grade as before, row for row.
    out = files.dir / "after_b.json"
    assert main(_grade(files, honest.dir, out)) == 0
    capsys.readouterr()
    _same_grade(json.loads(out.read_text()), honest.grade)
    df.unpersist()


def test_route_c_the_test_day_is_in_nothing_the_student_can_tune_on(spark, honest, files, capsys):
    from pyspark.sql import functions as F

    # Re-running the session's grading cell tunes on the last day of the students' data ...
    student_df = cl.load(str(files.train), spark).df
    _, tuned_on = cl.train.time_split(student_df)
    days = {r[0] for r in tuned_on.select(F.dayofmonth("event_time")).distinct().collect()}
    assert days == {29}  # ... which is not the test day (30)
    # ... and the grader refuses to run where the students' file would hold the test day.
    out = files.dir / "cheat_c.json"
    assert main(_grade(files, honest.dir, out, train=sample_path("course_10k"))) == 1
    line = _one_line(capsys.readouterr().err)
    assert "course_10k.csv: the training file holds hours" in line
    assert f"overlap the test file {files.test}" in line
    assert "Fix: give --train the data the students got" in line


def test_route_d_replacing_log_loss_in_the_session_does_not_reach_the_grader(
    spark, honest, files, monkeypatch, tmp_path, capsys
):

    # The route: replace the measures in the session (log_loss_of, and metrics, which the
    # session's grading cell, cl.assignment.grade, scores with): it works there.
    real_metrics = cl.evaluate.metrics
    monkeypatch.setattr(cl.evaluate, "log_loss_of", lambda *args, **kwargs: 0.0)
    monkeypatch.setattr(
        cl.evaluate, "metrics", lambda *a, **k: {**real_metrics(*a, **k), "log_loss": 0.0}
    )
    test_df = cl.load(str(files.test), spark).df
    model = cl.assignment.load_model(str(honest.dir))
    fooled = cl.assignment.score_models(test_df, [("yours", model)])
    assert fooled["log_loss"].tolist() == [0.0]

    # `ctr-lab grade` as the notebook runs it (cl.grading.grade_of_record, on the files
    # cl.grading.grading_files writes): a process of its own, with its own ctr_lab.
    monkeypatch.setenv("CTR_LAB_SPARK_UI", "false")
    df = cl.load(sample_path("course_10k"), spark).df
    students, held_out = cl.grading.grading_files(df, str(tmp_path / "grading"))
    assert cl.load(held_out, spark).df.count() == len(_rows(files.test))  # day 30, as by hand
    assert cl.load(students, spark).df.count() == len(_rows(files.train))
    cl.grading.grade_of_record(str(honest.dir), students, held_out, str(files.baseline))
    printed = capsys.readouterr().out
    yours = [line.split() for line in printed.splitlines() if line.strip().startswith("yours")]
    assert len(yours) == 1, printed
    assert float(yours[0][2]) == pytest.approx(honest.grade["rows"][2]["log_loss"], abs=1e-4)
    assert float(yours[0][2]) > 0.3
    assert printed.splitlines()[-1].startswith("the model was trained on 8,950 rows")


def test_grade_of_record_prints_a_refusal_or_the_instructors_command(
    honest, files, monkeypatch, capsys
):
    import importlib.util

    monkeypatch.setenv("CTR_LAB_SPARK_UI", "false")
    plain = files.dir / "no_marker"
    shutil.copytree(honest.dir, plain, ignore=shutil.ignore_patterns(COMPLETE_MARKER))
    cl.grading.grade_of_record(str(plain), str(files.train), str(files.test))
    out = capsys.readouterr().out.strip()
    assert out.startswith(f"ctr-lab: error: {plain}: not a model ctr_lab saved"), out
    assert len(out.splitlines()) == 1

    # Where the tools are not installed (an EMR driver has the core zip only): the command.
    find_spec = importlib.util.find_spec
    monkeypatch.setattr(
        importlib.util,
        "find_spec",
        lambda name, *a: None if name == "ctr_lab.tools" else find_spec(name, *a),
    )
    cl.grading.grade_of_record("s3://b/models/mine", "s3://b/students", "s3://i/held_out")
    assert capsys.readouterr().out.splitlines() == [
        "ctr-lab is not installed where this session runs (an EMR driver gets the library's "
        "core only); your instructor grades the model with:",
        "  ctr-lab grade s3://b/models/mine --test s3://i/held_out --train s3://b/students",
    ]


def test_rejected_rows_of_the_test_file_are_said_and_counted(honest, files, capsys):
    lines = files.test.read_text().splitlines()
    damaged = files.dir / "test_with_bad_rows.csv"
    day = lines[0].split(",").index("day")
    bad = [",".join("x" if i == day else v for i, v in enumerate(lines[1].split(",")))] * 3
    damaged.write_text("\n".join([*lines, *bad]) + "\n")
    out = files.dir / "with_bad_rows.json"
    args = _grade(files, honest.dir, out)
    args[args.index("--test") + 1] = str(damaged)
    assert main(args) == 0
    assert f"{damaged}: 3 rows rejected (3 " in capsys.readouterr().out
    graded = json.loads(out.read_text())
    assert (graded["test_rows_rejected"], graded["train_rows_rejected"]) == (3, 0)
    _same_grade(graded, honest.grade)


def test_a_model_folder_that_does_not_exist_is_said_so(spark, files, capsys):
    missing = files.dir / "nope_model"
    out = files.dir / "nope.json"
    assert main(_grade(files, missing, out)) == 1
    line = _one_line(capsys.readouterr().err)
    assert line.startswith(f"ctr-lab: error: {missing}: no such folder. Fix: check the path")
    assert json.loads(out.read_text())["refused"] is True


@pytest.mark.parametrize("mark", ["nan", "inf"])
def test_a_pass_mark_that_is_not_a_finite_number_is_refused(files, capsys, mark):
    with pytest.raises(SystemExit) as info:
        main(_grade(files, files.dir / "any_model", files.dir / "x.json", "--pass-mark", mark))
    assert info.value.code == 2
    assert f"must be a finite number, not {mark}" in capsys.readouterr().err


def test_a_model_that_cannot_be_read_is_refused_with_a_json_grade(honest, files, capsys):
    broken = files.dir / "broken"
    shutil.copytree(honest.dir, broken)
    shutil.rmtree(broken / "stages")  # as a copy that stopped before them leaves the folder
    stages = sorted(
        str(p.relative_to(honest.dir)) for p in (honest.dir / "stages").rglob("*") if _listed(p)
    )
    out = files.dir / "broken.json"
    assert main(_grade(files, broken, out)) == 1
    line = _one_line(capsys.readouterr().err)
    assert line.startswith(
        f"ctr-lab: error: {broken}: the model is not whole: {len(stages)} of the files its "
        f"{COMPLETE_MARKER} lists are missing or of another size (first {stages[0]}). Fix: copy "
        "the whole folder"
    ), line
    # A marker is the student's file: one listing what the folder holds still needs a model.
    _list_the_files(broken)
    assert main(_grade(files, broken, out)) == 1
    line = _one_line(capsys.readouterr().err)
    assert line.startswith(f"ctr-lab: error: {broken}: not a saved PipelineModel")
    graded = json.loads(out.read_text())
    assert (graded["pass"], graded["score"], graded["refused"]) == (False, None, True)
    assert graded["reasons"] == [line[len("ctr-lab: error: ") :]]


def _listed(path: Path) -> bool:
    """Whether a completion marker lists ``path``: a file, not Hadoop's checksum, not itself."""
    crc = path.name.startswith(".") and path.name.endswith(".crc")
    return path.is_file() and not crc and path.name != COMPLETE_MARKER


def _list_the_files(folder: Path) -> None:
    """Make the completion marker in ``folder`` list the files the folder holds now."""
    marker = json.loads((folder / COMPLETE_MARKER).read_text())
    marker["files"] = {
        str(p.relative_to(folder)): p.stat().st_size for p in folder.rglob("*") if _listed(p)
    }
    (folder / COMPLETE_MARKER).write_text(json.dumps(marker))
    (folder / f".{COMPLETE_MARKER}.crc").unlink(missing_ok=True)  # Hadoop's checksum of the old


def test_the_sessions_grade_of_a_folder_without_a_model_says_so_before_fitting_the_baseline(
    spark, tmp_path
):
    """``cl.assignment.grade`` with a mistyped model folder: the one line comes first, not
    after the baseline's fit, which takes minutes on the full data on a cluster."""
    df = cl.load("course_10k", spark).df
    baseline = tmp_path / "baseline"
    with pytest.raises(CtrLabError, match="not a saved PipelineModel"):
        cl.assignment.grade(str(tmp_path / "no_model_here"), df, baseline_dir=str(baseline))
    assert not baseline.exists(), "the baseline was fitted first"


def test_route_e_a_feature_that_reads_the_label_learns_nothing_from_the_test_file(
    spark, honest, files, capsys
):
    # The route: an extra feature that is the label itself. Trained so, the model reads each
    # test row's click from the row it scores, unless the grader withholds the label.
    model_dir = files.dir / "reads_the_label"
    train_df = cl.load(str(files.train), spark).df
    cl.train.fit_or_load(
        "course_baseline", train_df, str(model_dir), maxIter=10, extra_features={"leak": "label"}
    )
    out = files.dir / "cheat_e.json"
    code = main(_grade(files, model_dir, out))
    err = capsys.readouterr().err
    graded = json.loads(out.read_text())
    assert graded["pass"] is False, graded["rows"]
    assert code == 1 and graded["refused"] is True
    line = _one_line(err)
    assert line.startswith(f"ctr-lab: error: {model_dir}: the model reads the label")
    assert "Fix:" in line


def test_route_f_a_model_that_drops_test_rows_is_refused(spark, honest, files, capsys, monkeypatch):
    # The route: an extra feature's text closes the pipeline's SELECT and adds a WHERE (the rest
    # of the statement becomes a comment), so the model scores only the hours it likes.
    model_dir = files.dir / "drops_rows"
    train_df = cl.load(str(files.train), spark).df
    dropping = {"x": "1) AS STRING) AS x FROM __THIS__ WHERE hour_of_day < 12 --"}
    with pytest.raises(CtrLabError, match="Spark cannot compute it"):  # fit_or_load's own check
        cl.train.fit_or_load("course_baseline", train_df, str(model_dir), extra_features=dropping)
    # A student fits such a model with code of their own: the grader must refuse it itself.
    monkeypatch.setattr("ctr_lab.train.store.check_extra_features", lambda *_: None)
    cl.train.fit_or_load(
        "course_baseline", train_df, str(model_dir), maxIter=10, extra_features=dropping
    )
    out = files.dir / "cheat_f.json"
    code = main(_grade(files, model_dir, out))
    err = capsys.readouterr().err
    graded = json.loads(out.read_text())
    assert (code, graded["refused"], graded["pass"]) == (1, True, False), graded["rows"]
    kept = int((_rows(files.test)["hour"].astype(int) < 12).sum())
    assert 0 < kept < 1050
    line = _one_line(err)
    assert line.startswith(
        f"ctr-lab: error: {model_dir}: the model gave {kept:,} scores for the 1,050 test rows "
        f"({1050 - kept:,} left without one, 0 scored twice)"
    ), line
    assert "Fix:" in line


def test_route_g_a_model_that_reads_a_file_in_the_grader_is_refused(spark, files, capsys):
    # The route: a column computed from a file the grader can read (here the test file itself).
    model_dir = files.dir / "reads_a_file"
    train_df = cl.load(str(files.train), spark).df
    reading = {"x": f"(SELECT count(*) FROM csv.`{files.test}`)"}
    cl.train.fit_or_load(
        "course_baseline", train_df, str(model_dir), maxIter=10, extra_features=reading
    )
    # The same stage inside a pipeline inside the model, saved with the model's marker.
    from pyspark.ml import PipelineModel
    from pyspark.ml.feature import SQLTransformer

    from ctr_lab.persistence import read_pipeline_model, write_pipeline_model

    nested_dir = files.dir / "reads_a_file_inside"
    stages = read_pipeline_model(str(model_dir)).stages
    sql = [i for i, s in enumerate(stages) if isinstance(s, SQLTransformer)]
    reads = [i for i in sql if "csv." in stages[i].getStatement()]
    assert len(reads) == 1
    stages[reads[0]] = PipelineModel(stages=[stages[reads[0]]])
    write_pipeline_model(PipelineModel(stages=stages), str(nested_dir))
    shutil.copy(model_dir / COMPLETE_MARKER, nested_dir / COMPLETE_MARKER)
    _list_the_files(nested_dir)
    for folder, name in ((model_dir, "cheat_g.json"), (nested_dir, "cheat_g_inside.json")):
        out = files.dir / name
        assert main(_grade(files, folder, out)) == 1
        line = _one_line(capsys.readouterr().err)
        assert line.startswith(f"ctr-lab: error: {folder}: the model's SQL stage SQLTransformer_")
        assert f"reads csv, {files.test} besides the rows it scores" in line and "Fix:" in line
        assert json.loads(out.read_text())["refused"] is True


def test_probabilities_that_are_nan_or_outside_0_1_are_refused_not_clipped(spark, files):
    from pyspark.ml import Transformer
    from pyspark.ml.functions import array_to_vector
    from pyspark.sql import functions as F

    class NotProbabilities(Transformer):  # NaN on banner_pos 0, 1.5 on the rest
        def _transform(self, df):
            p = F.when(F.col("banner_pos") == 0, F.lit(float("nan"))).otherwise(F.lit(1.5))
            return df.withColumn("probability", array_to_vector(F.array(1 - p, p)))

    test_df = cl.load(str(files.test), spark).df
    with pytest.raises(cl.CtrLabError) as info:
        cl.assignment.score_models(test_df, [("odd", NotProbabilities())])
    assert str(info.value) == (
        "odd: the model gives 1,050 of the 1,050 test rows a click probability that is NaN or "
        "outside 0-1. Fix: train it again with a ctr_lab pipeline"
    )
