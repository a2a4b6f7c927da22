"""The ctr-lab command line: make-data, inspect, help and exit codes."""

from __future__ import annotations

import csv
import gzip
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from ctr_lab.tools.cli import build_parser, main
from tests import out_of_heap

#: The command line is a tool: it runs in the lab environment (PySpark 3.5) only. What its
#: commands call in the core is tested on both Spark lines (test_data, test_corpus, test_train).
pytestmark = pytest.mark.tools

COMMANDS = ["make-data", "inspect", "train", "grade", "run", "kernel", "emr", "bench"]


@pytest.mark.parametrize("command", [[], *([c] for c in COMMANDS)])
def test_every_command_has_help(command, capsys):
    with pytest.raises(SystemExit) as info:
        main([*command, "--help"])
    assert info.value.code == 0
    assert "usage: ctr-lab" in capsys.readouterr().out


def test_parser_lists_every_command():
    text = build_parser().format_help()
    for command in COMMANDS:
        assert command in text


@pytest.mark.real_samples
def test_inspect_real_raw_sample(spark, real_samples, capsys):
    assert main(["inspect", str(real_samples / "avazu_train_sample_100.csv"), "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert (report["format"], report["rows_read"], report["clicks"]) == ("raw", 100, 20)


@pytest.mark.real_samples
def test_inspect_real_course_sample(spark, real_samples, capsys):
    assert main(["inspect", str(real_samples / "course_quiz_sample_10k.csv")]) == 0
    text = capsys.readouterr().out
    assert "course (26 columns" in text
    assert "rows read         10,000" in text
    assert "clicks            1,500" in text
    assert "ids repaired" in text and "ids unrepairable" in text


@pytest.mark.spark
def test_inspect_fatal_error_is_one_line_and_exit_1(tmp_path):
    bad = tmp_path / "labels.csv"
    header = "id,click,hour,C1,banner_pos,site_id,site_domain,site_category,app_id,app_domain,"
    header += "app_category,device_id,device_ip,device_model,device_type,device_conn_type,"
    header += "C14,C15,C16,C17,C18,C19,C20,C21"
    row = "1,maybe,14102100,1005,0,1fbe01fe,f3845767,28905ebd,ecad2386,7801e8d9,07d7df22,"
    row += "a99f214a,ddd2926e,44956a24,1,2,15706,320,50,1722,0,35,-1,79"
    bad.write_text(header + "\n" + row + "\n")
    env = dict(os.environ, CTR_LAB_MASTER="local[1]", CTR_LAB_SPARK_UI="false")
    result = subprocess.run(
        [sys.executable, "-m", "ctr_lab.tools", "inspect", str(bad)],
        capture_output=True,
        text=True,
        timeout=180,
        env=env,
    )
    assert result.returncode == 1
    assert result.stdout == ""
    # Spark 4's JVM announces its incubator vector module itself; nothing else may be printed.
    jvm_notice = "WARNING: Using incubator modules: jdk.incubator.vector"
    lines = [line for line in result.stderr.strip().splitlines() if line != jvm_notice]
    assert lines == [
        f"ctr-lab: error: {bad}: column click has 1 value(s) that are not 0/1/TRUE/FALSE, "
        "e.g. 'maybe'. Fix: map the labels to 0/1 (or TRUE/FALSE) before loading"
    ]


def test_a_command_whose_driver_runs_out_of_heap_says_so_with_the_fix(tmp_path):
    # `inspect` made to run out of heap (tests/out_of_heap.py): in local mode that ends the
    # driver JVM, and the command's own error is then a later, unrelated call (before: a
    # traceback ending in ConnectionRefusedError).
    script = (
        "import sys\n"
        "from ctr_lab.session import get_spark\n"
        "from ctr_lab.tools import cli\n"
        "def out_of_heap(args):\n"
        f"    get_spark().range(1).selectExpr({out_of_heap.EXPRESSION!r}).collect()\n"
        "cli._inspect = out_of_heap\n"
        "sys.exit(cli.main(['inspect', 'any.csv']))\n"
    )
    env = dict(
        os.environ, CTR_LAB_DRIVER_MEMORY=out_of_heap.DRIVER_MEMORY, CTR_LAB_SPARK_UI="false"
    )
    result = subprocess.run(
        [sys.executable, "-c", script],
        capture_output=True,
        text=True,
        timeout=180,
        env=env,
        cwd=tmp_path,
    )
    assert result.returncode == 1, result.stderr
    # The JVM's own account, then the command's one line.
    assert "java.lang.OutOfMemoryError: Java heap space" in result.stderr
    assert result.stderr.rstrip().splitlines()[-1] == (
        "ctr-lab: error: the local Spark driver ran out of memory (spark.driver.memory=512m) and "
        "ended. Fix: CTR_LAB_DRIVER_MEMORY=1g (within the machine's memory), or fewer rows"
    )


def test_make_data_then_inspect(spark, tmp_path, capsys):
    out = tmp_path / "d.csv.gz"
    truth = tmp_path / "t.csv.gz"
    code = main(
        ["make-data", "--rows", "3000", "--seed", "5", "--out", str(out), "--truth-out", str(truth)]
    )
    assert code == 0
    printed = capsys.readouterr().out
    assert "wrote 3,000 rows" in printed and str(truth) in printed

    # Count clicks independently of both the generator's report and the loader.
    with gzip.open(out, "rt") as fh:
        clicks = sum(int(r["click"]) for r in csv.DictReader(fh))
    assert main(["inspect", str(out), "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert (report["rows_read"], report["rows_accepted"], report["clicks"]) == (3000, 3000, clicks)
    with gzip.open(truth, "rt") as fh:
        assert next(csv.reader(fh)) == ["id", "p_click"]


def test_make_data_course_with_damage(spark, tmp_path, capsys):
    out = tmp_path / "course.csv"
    assert (
        main(["make-data", "--rows", "20000", "--format", "course", "--damage", "--out", str(out)])
        == 0
    )
    capsys.readouterr()
    assert main(["inspect", str(out), "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["format"] == "course" and report["rows_accepted"] == 20000
    assert sum(report["ids_repaired"].values()) + sum(report["ids_unrepairable"].values()) > 0


def test_make_data_unknown_file_kind_is_one_line(tmp_path, capsys):
    out = tmp_path / "data.txt"
    assert main(["make-data", "--rows", "10", "--out", str(out)]) == 1
    err = capsys.readouterr().err
    assert err.startswith(f"ctr-lab: error: {out}: ") and ".csv.gz" in err
    assert err.count("\n") == 1 and not out.exists()


def test_make_data_rejects_bad_arguments(capsys):
    with pytest.raises(SystemExit) as info:
        main(["make-data", "--rows", "0", "--out", "x.csv"])
    assert info.value.code == 2
    assert "positive whole number" in capsys.readouterr().err


def test_console_script_is_installed():
    script = Path(sys.executable).with_name("ctr-lab")
    result = subprocess.run([str(script), "--version"], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0 and result.stdout.startswith("ctr-lab ")


def test_train_offers_every_registered_pipeline():
    from ctr_lab.tools.cli import build_parser
    from ctr_lab.train import PIPELINES

    train = build_parser()._subparsers._group_actions[0].choices["train"]
    choices = next(a.choices for a in train._actions if a.dest == "pipeline")
    assert sorted(choices) == sorted(PIPELINES)


def test_train_fits_then_reloads(spark, tmp_path, capsys):
    from ctr_lab.samples import sample_path

    args = [
        "train",
        "--data",
        sample_path("course_10k"),
        "--pipeline",
        "course_baseline",
        "--max-iter",
        "5",
        "--model-dir",
        str(tmp_path / "model"),
    ]
    assert main([*args, "--json", str(tmp_path / "first.json")]) == 0
    assert "course_baseline (fitted), time split" in capsys.readouterr().out
    first = json.loads((tmp_path / "first.json").read_text())
    assert first["loaded"] is False and first["iterations"] <= 5
    assert first["train_rows"] + first["test_rows"] == first["rows_accepted"] == 10_000
    assert 0.2 < first["log_loss"] < 0.7 and 0.5 < first["auc"] <= 1.0

    assert main([*args, "--json", str(tmp_path / "second.json")]) == 0
    assert "(reloaded from" in capsys.readouterr().out
    second = json.loads((tmp_path / "second.json").read_text())
    assert second["loaded"] is True
    assert second["log_loss"] == pytest.approx(first["log_loss"], abs=1e-9)


@pytest.fixture(scope="module")
def raw_lines(tmp_path_factory) -> list:
    """A small raw-format file's lines (header first): 600 rows over ten days of October 2014."""
    from ctr_lab.tools.synth import write_dataset

    out = tmp_path_factory.mktemp("raw") / "raw.csv"
    write_dataset(str(out), rows=600, seed=1, fmt="raw")
    return out.read_text().splitlines()


def _write_rows(path: Path, lines: list) -> Path:
    path.write_text("\n".join(lines) + "\n")
    return path


def _hour_of(line: str) -> str:
    return line.split(",")[2]


def test_train_on_one_day_says_the_time_split_leaves_no_training_rows(
    spark, raw_lines, tmp_path, capsys
):
    one_day = [line for line in raw_lines[1:] if _hour_of(line).startswith("141021")]
    data = _write_rows(tmp_path / "oneday.csv", [raw_lines[0], *one_day])
    assert main(["train", "--data", str(data), "--pipeline", "course_baseline"]) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith(f"ctr-lab: error: {data}: ")
    assert "every row falls on 2014-10-21" in err and "no training rows" in err
    assert "Fix: " in err and "--split random" in err


def test_an_s3_model_dir_without_s3_support_is_the_loaders_one_line(
    spark, raw_lines, tmp_path, capsys
):
    data = _write_rows(tmp_path / "raw.csv", raw_lines)
    train = ["train", "--data", str(data), "--pipeline", "course_baseline", "--max-iter", "2"]
    grade = ["grade", "s3://my-bucket/m", "--test", str(data), "--train", str(data)]
    for args in ([*train, "--model-dir", "s3://my-bucket/m"], grade):
        assert main(args) == 1
        err = capsys.readouterr().err
        assert err.count("\n") == 1
        assert err.startswith("ctr-lab: error: s3://my-bucket/m: ")
        assert 'No FileSystem for scheme "s3"' in err and "Fix: " in err and "hadoop-aws" in err


@pytest.mark.parametrize("command", ["train", "grade"])
def test_a_json_target_that_is_a_folder_or_in_no_folder_is_refused_before_any_work(
    command, tmp_path, capsys, monkeypatch
):
    from ctr_lab.tools import cli

    # Refused before Spark starts: no session, no data read, no model fitted.
    monkeypatch.setattr(cli, "_spark_for_cli", lambda: pytest.fail("work started"))
    args = {
        "train": ["train", "--data", "any.csv", "--model-dir", str(tmp_path / "m")],
        "grade": ["grade", str(tmp_path / "m"), "--test", "t.csv", "--train", "s.csv"],
    }[command]
    (tmp_path / "notes.txt").write_text("a file, not a folder")
    in_a_file = tmp_path / "notes.txt" / "grades" / "out.json"
    for target, said in ((tmp_path, "is a folder, not a file"), (in_a_file, "is a file, so")):
        assert main([*args, "--json", str(target)]) == 1
        err = capsys.readouterr().err
        assert err.count("\n") == 1 and err.startswith(f"ctr-lab: error: --json {target}")
        assert said in err and "Fix: " in err


def _with_hour(line: str, hour: str) -> str:
    fields = line.split(",")
    fields[2] = hour
    return ",".join(fields)


def test_a_file_with_no_accepted_row_is_refused_by_inspect_and_train(
    spark, raw_lines, tmp_path, capsys
):
    bad = [_with_hour(line, "99999999") for line in raw_lines[1:41]]
    data = _write_rows(tmp_path / "allbadhour.csv", [raw_lines[0], *bad])
    reason = "40 for 'event time not a valid YYMMDDHH (raw) or month/day/hour (course)'"

    assert main(["inspect", str(data)]) == 1
    out, err = capsys.readouterr()
    assert "rows accepted     0" in out  # the report is printed first
    assert err.count("\n") == 1 and err.startswith(f"ctr-lab: error: {data}: no row was accepted")
    assert reason in err and "Fix: " in err

    assert main(["train", "--data", str(data), "--pipeline", "course_baseline"]) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith(f"ctr-lab: error: {data}: no row was accepted")
    assert reason in err


def test_train_says_how_many_rows_of_its_file_were_rejected(spark, raw_lines, tmp_path, capsys):
    bad = [_with_hour(raw_lines[1], "99999999"), _with_hour(raw_lines[2], "1410xx00")]
    data = _write_rows(tmp_path / "some_bad.csv", [*raw_lines, *bad])
    args = ["train", "--data", str(data), "--pipeline", "course_baseline", "--max-iter", "2"]
    assert main(args) == 0
    out = capsys.readouterr().out
    assert f"{data}: 2 rows rejected (2 event time not a valid YYMMDDHH (raw)" in out


def test_make_data_refuses_one_file_for_both_outputs_and_a_folder_as_a_file(tmp_path, capsys):
    same = tmp_path / "d.csv"
    runs = [
        (["--out", str(same), "--truth-out", str(same)], "--out and --truth-out are the same"),
        (["--out", str(tmp_path)], f"--out {tmp_path} is a folder, not a file"),
        (["--out", str(same), "--truth-out", str(tmp_path)], "--truth-out"),
    ]
    for args, said in runs:
        assert main(["make-data", "--rows", "10", *args]) == 1
        err = capsys.readouterr().err
        assert err.count("\n") == 1 and err.startswith(f"ctr-lab: error: {said}")
        assert "Fix: " in err
    assert os.listdir(tmp_path) == []
