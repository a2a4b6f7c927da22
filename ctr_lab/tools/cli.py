"""The ``ctr-lab`` command line: make data, inspect data, train, grade, run the case study.

Every command has ``--help``. Errors the user can fix print one line on stderr and exit 1.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from typing import List, Optional

from ctr_lab import __version__
from ctr_lab import schema as S
from ctr_lab.errors import CtrLabError
from ctr_lab.grading import DEFAULT_PASS_MARK
from ctr_lab.tools.arguments import check_output_file, finite_float, positive_int
from ctr_lab.train.names import PIPELINE_NAMES


def _progress_bar(total: int, desc: str) -> tuple:
    """A tqdm bar on stderr (shown only on a terminal) and the callback that advances it."""
    from tqdm import tqdm

    bar = tqdm(
        total=total, desc=desc, unit="rows", unit_scale=True, disable=not sys.stderr.isatty()
    )

    def advance(done: int, _total: int) -> None:
        bar.update(done - bar.n)

    return bar, advance


def _make_data(args: argparse.Namespace) -> int:
    from ctr_lab.tools.synth import write_dataset

    if args.format != "course" and (args.damage or args.header_typo):
        raise CtrLabError(
            "--damage and --header-typo imitate the course's spreadsheet files. "
            "Fix: add --format course"
        )
    check_output_file(args.out, "--out", "data.csv")
    if args.truth_out:
        check_output_file(args.truth_out, "--truth-out", "truth.csv")
        if os.path.realpath(args.truth_out) == os.path.realpath(args.out):
            raise CtrLabError(
                f"--out and --truth-out are the same file, {args.out}. Fix: give the true click "
                "probabilities a file of their own, e.g. --truth-out truth.csv"
            )
    bar, advance = _progress_bar(args.rows, "generating")
    try:
        report = write_dataset(
            args.out,
            rows=args.rows,
            seed=args.seed,
            fmt=args.format,
            truth_path=args.truth_out,
            damage=args.damage,
            header_typo=args.header_typo,
            progress=advance,
        )
    except (ValueError, OSError) as exc:
        raise CtrLabError(f"{args.out}: {exc}") from None
    finally:
        bar.close()
    if args.json:
        print(json.dumps(report.to_dict(), indent=2))
    else:
        print(
            f"wrote {report.rows:,} rows ({args.format} format) to {report.path}: "
            f"{report.clicks:,} clicks (CTR {report.ctr:.4f}), Bayes-optimal log loss "
            f"{report.bayes_logloss:.4f}, {report.seconds:.1f} s "
            f"({report.rows_per_second:,.0f} rows/s)"
        )
        if report.truth_path:
            print(f"true click probabilities: {report.truth_path}")
    return 0


def _spark_for_cli():
    from ctr_lab.session import get_spark

    # Spark's own console progress bar, only where someone is watching.
    show = "true" if sys.stderr.isatty() else "false"
    return get_spark("ctr-lab-cli", {"spark.ui.showConsoleProgress": show})


def _inspect(args: argparse.Namespace) -> int:
    from ctr_lab.data import load

    loaded = load(args.path, _spark_for_cli(), fmt=args.format)
    print(loaded.report.to_json() if args.json else loaded.report)
    error = loaded.report.nothing_accepted()
    if error is not None:
        raise error
    return 0


def _load_rows(path: str, spark):
    """Load a data file to work on: refuse one without an accepted row, say what was rejected."""
    from ctr_lab.data import load

    loaded = load(path, spark)
    error = loaded.report.nothing_accepted()
    if error is not None:
        raise error
    rejections = loaded.report.rejections()
    if rejections:
        print(rejections)
    return loaded


def _train(args: argparse.Namespace) -> int:
    from ctr_lab.train import train_and_evaluate
    from ctr_lab.train.splits import EmptySplitError

    if args.split == "none" and not args.model_dir:
        raise CtrLabError(
            "--split none trains on every row and tests on none: the saved model is all it "
            "makes. Fix: add --model-dir DIR (then grade it with ctr-lab grade DIR)"
        )
    if args.json:
        check_output_file(args.json, "--json", "metrics.json")
    started = time.perf_counter()
    spark = _spark_for_cli()
    if args.model_dir:  # a file system this machine lacks, or a folder of the user's files
        from ctr_lab.train.store import refuse_other_content

        refuse_other_content(args.model_dir, spark)  # refused before the data is loaded
    loaded = _load_rows(args.data, spark)
    df = loaded.df.cache()
    load_seconds = time.perf_counter() - started
    settings = {"maxIter": args.max_iter} if args.max_iter else {}
    try:
        result = train_and_evaluate(
            df, args.pipeline, split=args.split, model_dir=args.model_dir, **settings
        )
    except EmptySplitError as exc:
        raise CtrLabError(f"{args.data}: {exc}") from None
    df.unpersist()
    summary = {k: v for k, v in result.items() if k != "model"}
    summary.update(
        data=args.data,
        model_dir=args.model_dir,
        rows_accepted=loaded.report.rows_accepted,
        rows_rejected=loaded.report.rows_rejected,
        load_seconds=round(load_seconds, 2),
        total_seconds=round(time.perf_counter() - started, 2),
    )
    how = "reloaded from " + args.model_dir if summary.get("loaded") else "fitted"
    print(f"pipeline {args.pipeline} ({how}), {args.split} split")
    print(f"  train rows   {summary['train_rows']:,}")
    print(f"  test rows    {summary['test_rows']:,}")
    if summary["log_loss"] is None:
        print(f"  model        {args.model_dir} (grade it: ctr-lab grade {args.model_dir} ...)")
    else:
        print(f"  log loss     {summary['log_loss']:.4f}")
        print(f"  ROC AUC      {summary['auc']:.4f}")
    iterations = summary.get("iterations")
    print(f"  iterations   {iterations if iterations is not None else 'n/a (reloaded)'}")
    print(
        f"  seconds      load {load_seconds:.1f}, fit {summary['fit_seconds']:.1f}, "
        f"total {summary['total_seconds']:.1f}"
    )
    if args.json:
        _write_json(args.json, summary)
        print(f"metrics written to {args.json}")
    return 0


def _write_json(path: str, doc: dict) -> None:
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    with open(path, "w") as fh:
        json.dump(doc, fh, indent=2, default=str)


def _grade(args: argparse.Namespace) -> int:
    from ctr_lab.grading import Grade, GradingRefused, grade_saved_model, model_record

    if args.json:
        check_output_file(args.json, "--json", "grade.json")
    spark = _spark_for_cli()
    try:
        model_record(args.model_dir, spark)  # a folder that is no model: refused before any data
        if args.baseline_dir:  # the baseline would be saved there: the same check as train's
            from ctr_lab.train.store import refuse_other_content

            refuse_other_content(args.baseline_dir, spark)
        test = _load_rows(args.test, spark)
        train = _load_rows(args.train, spark)
        test_df, train_df = test.df.cache(), train.df.cache()
        grade = grade_saved_model(
            args.model_dir,
            train_df,
            test_df,
            test_name=args.test,
            train_name=args.train,
            pass_mark=args.pass_mark,
            baseline_dir=args.baseline_dir,
        )
    except GradingRefused as exc:
        if args.json:  # the LMS gets a grade for a refused model too: fail, with the reason
            refused = Grade(
                args.model_dir, args.test, args.pass_mark, None, False, None, [str(exc)]
            )
            _write_json(args.json, refused.to_dict())
        raise
    print(grade)
    if args.json:
        rejected = {
            "test_rows_rejected": test.report.rows_rejected,
            "train_rows_rejected": train.report.rows_rejected,
        }
        _write_json(args.json, {**grade.to_dict(), **rejected})
        print(f"grade written to {args.json}")
    return 0


def build_parser() -> argparse.ArgumentParser:
    """Return the ``ctr-lab`` argument parser."""
    parser = argparse.ArgumentParser(
        prog="ctr-lab",
        description="Click-through-rate prediction with logistic regression on Apache Spark.",
    )
    parser.add_argument("--version", action="version", version=f"ctr-lab {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True

    make = sub.add_parser(
        "make-data",
        help="generate synthetic Avazu-like data with a known click probability",
        description="Generate synthetic Avazu-like click data. The true click probability of "
        "every row is known, so the best achievable log loss is known too.",
    )
    make.add_argument("--rows", type=positive_int, required=True, help="number of rows")
    make.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    make.add_argument(
        "--format",
        choices=list(S.FORMATS),
        default="raw",
        help="raw: Kaggle Avazu train (24 columns); course: the course's 26 columns",
    )
    make.add_argument("--out", required=True, help="output file: .csv, .csv.gz or .parquet")
    make.add_argument(
        "--truth-out",
        metavar="PATH",
        help="also write the true click probabilities (id,p_click or row,p_click)",
    )
    make.add_argument(
        "--damage",
        action="store_true",
        help="course format: damage the ids as a spreadsheet does (2.53E+79, lost zeros)",
    )
    make.add_argument(
        "--header-typo",
        action="store_true",
        help="course format: write the header typo add_category seen in a real copy",
    )
    make.add_argument("--json", action="store_true", help="print the generation report as JSON")
    make.set_defaults(func=_make_data)

    inspect = sub.add_parser(
        "inspect",
        help="load a data file and print its report",
        description="Load a data file (CSV, gzip CSV or Parquet; local or s3://) with ctr_lab's "
        "loader and print the report: format, rows read/accepted/rejected by reason, click rate, "
        "repaired ids. Exits 1 on a fatal problem, with a one-line error on stderr.",
    )
    inspect.add_argument("path", help="a file or folder of part files")
    inspect.add_argument("--format", choices=list(S.FORMATS), help="insist on a format")
    inspect.add_argument("--json", action="store_true", help="print the report as JSON")
    inspect.set_defaults(func=_inspect)

    train = sub.add_parser(
        "train",
        help="load data, fit (or reload) a named pipeline, and evaluate it on a test split",
        description="Load a data file, fit a named pipeline on the training split (or reload it "
        "from --model-dir when data and settings are unchanged), and print test log loss, ROC AUC "
        "and seconds per stage. Works as a spark-submit step on EMR with s3:// paths.",
    )
    train.add_argument("--data", required=True, help="a data file or folder (local or s3://)")
    train.add_argument(
        "--pipeline",
        choices=PIPELINE_NAMES,
        default="recommended",
        help="which pipeline (default recommended)",
    )
    train.add_argument(
        "--split",
        choices=["time", "random", "hash", "none"],
        default="time",
        help="time: the last day is the test set (default); none: train on every row, as an "
        "assignment submission does (needs --model-dir; grade it with ctr-lab grade)",
    )
    train.add_argument("--model-dir", help="save the model here; reload it on the next run")
    train.add_argument("--max-iter", type=positive_int, help="cap the optimizer's iterations")
    train.add_argument("--json", metavar="PATH", help="also write the metrics as JSON")
    train.set_defaults(func=_train)

    grade = sub.add_parser(
        "grade",
        help="grade a saved model on the test days, next to the baseline and a constant predictor",
        description="Score a model saved by ctr_lab (fit_or_load, or ctr-lab train --model-dir) "
        "on a test file kept apart from the students, in this process (not in a notebook "
        "session), next to the course's baseline and the constant click-rate predictor, both "
        "fitted on --train. The score is the model's log loss below the constant predictor's, "
        "in percent of it; the model passes at --pass-mark or more. Refuses, with one line, a "
        "folder that is not a ctr_lab model, or a model (or --train) whose hours overlap the "
        "test file's. Exits 0 when graded (pass or fail: see the table, or pass in --json), 1 "
        "when refused.",
    )
    grade.add_argument("model_dir", metavar="MODEL_DIR", help="the saved model (local or s3://)")
    grade.add_argument(
        "--test", required=True, help="the test days: a file or folder the students never got"
    )
    grade.add_argument(
        "--train",
        required=True,
        help="the data the students got: the baseline and the constant predictor are fitted on it",
    )
    grade.add_argument(
        "--pass-mark",
        type=finite_float,
        default=DEFAULT_PASS_MARK,
        metavar="PCT",
        help="least score that passes: log loss this many percent below the constant "
        f"predictor's (default {DEFAULT_PASS_MARK:g})",
    )
    grade.add_argument(
        "--baseline-dir", help="keep the fitted baseline here: fitted once for every submission"
    )
    grade.add_argument(
        "--json",
        metavar="PATH",
        help="also write the grade as JSON (for an LMS): score, pass, "
        "rows, reasons; written for a refused model too",
    )
    grade.set_defaults(func=_grade)

    # Commands with their own modules: each adds its subparser (imports there stay light).
    from ctr_lab.tools import bench, casestudy, emr, jvm, magics

    for module in (casestudy, magics, jvm, emr, bench):
        module.add_parser(sub)
    return parser


def main(argv: Optional[List[str]] = None) -> int:
    """Run the command line; return the exit code."""
    args = build_parser().parse_args(argv)
    try:
        return args.func(args)
    except CtrLabError as exc:
        print(f"ctr-lab: error: {exc}", file=sys.stderr)
        return 1
    except Exception:
        from ctr_lab.session import lost_driver

        # A local driver that ended under the command leaves it an unrelated failed call.
        ended = lost_driver()
        if ended is None:
            raise
        print(f"ctr-lab: error: {ended.explain()}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("ctr-lab: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
