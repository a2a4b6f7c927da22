"""The ``ctr-lab`` command line: make data, inspect data, train, run the case study.

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
    from ctr_lab.synth import write_dataset

    if args.format != "course" and (args.damage or args.header_typo):
        raise CtrLabError(
            "--damage and --header-typo imitate the course's spreadsheet files. "
            "Fix: add --format course"
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
    return 0


def _run(args: argparse.Namespace) -> int:
    from ctr_lab.data import click_rate_by, load, read_truth
    from ctr_lab.evaluate import log_loss_of
    from ctr_lab.synth import write_dataset

    out = os.path.abspath(args.out)
    data_dir = os.path.join(out, "data")
    os.makedirs(data_dir, exist_ok=True)
    data_path = os.path.join(data_dir, f"avazu_synth_{args.rows}_seed{args.seed}.csv.gz")
    truth_path = os.path.join(data_dir, f"avazu_synth_{args.rows}_seed{args.seed}_truth.csv.gz")
    started = time.perf_counter()

    print(f"[1/3] data: {data_path}")
    if os.path.exists(data_path) and os.path.exists(truth_path):
        print("      already there, reusing it")
    else:
        bar, advance = _progress_bar(args.rows, "generating")
        try:
            made = write_dataset(
                data_path, rows=args.rows, seed=args.seed, truth_path=truth_path, progress=advance
            )
        finally:
            bar.close()
        print(f"      generated {made.rows:,} rows in {made.seconds:.1f} s")

    print("[2/3] load with the data layer (explicit schema, every row accounted for)")
    spark = _spark_for_cli()
    loaded = load(data_path, spark)
    print(loaded.report)
    report_path = os.path.join(out, "load_report.json")
    with open(report_path, "w") as fh:
        fh.write(loaded.report.to_json() + "\n")

    print("[3/3] explore: click rate by the columns the course looks at first")
    df = loaded.df.cache()
    tables: List[str] = []
    for col_name in ("C1", "banner_pos", "device_conn_type", "C15", "C18"):
        table = click_rate_by(df, col_name).toPandas()
        path = os.path.join(out, f"ctr_by_{col_name}.csv")
        table.to_csv(path, index=False)
        tables.append(path)
        print(f"\nclick rate by {col_name}\n{table.head(8).to_string(index=False)}")
    truth_df = read_truth(truth_path, spark)
    scored = df.join(truth_df, on="id", how="inner").select("label", "p_click")
    bayes = log_loss_of(scored, "label", "p_click")
    print(f"\nBayes-optimal log loss (generator's true probabilities): {bayes:.4f}")
    df.unpersist()

    print(f"\ndone in {time.perf_counter() - started:.1f} s. Outputs:")
    for path in [data_path, truth_path, report_path, *tables]:
        print(f"  {os.path.relpath(path)}")
    return 0


PIPELINE_NAMES = ("course_baseline", "course_improved", "recommended")


def _train(args: argparse.Namespace) -> int:
    from ctr_lab.data import load
    from ctr_lab.train import train_and_evaluate

    started = time.perf_counter()
    spark = _spark_for_cli()
    loaded = load(args.data, spark)
    df = loaded.df.cache()
    load_seconds = time.perf_counter() - started
    settings = {"maxIter": args.max_iter} if args.max_iter else {}
    result = train_and_evaluate(
        df, args.pipeline, split=args.split, model_dir=args.model_dir, **settings
    )
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
    print(f"  log loss     {summary['log_loss']:.4f}")
    print(f"  ROC AUC      {summary['auc']:.4f}")
    iterations = summary.get("iterations")
    print(f"  iterations   {iterations if iterations is not None else 'n/a (reloaded)'}")
    print(
        f"  seconds      load {load_seconds:.1f}, fit {summary['fit_seconds']:.1f}, "
        f"total {summary['total_seconds']:.1f}"
    )
    if args.json:
        os.makedirs(os.path.dirname(os.path.abspath(args.json)), exist_ok=True)
        with open(args.json, "w") as fh:
            json.dump(summary, fh, indent=2, default=str)
        print(f"metrics written to {args.json}")
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
    make.add_argument("--rows", type=_positive_int, required=True, help="number of rows")
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
        choices=["time", "random", "hash"],
        default="time",
        help="time: the last day is the test set (default)",
    )
    train.add_argument("--model-dir", help="save the model here; reload it on the next run")
    train.add_argument("--max-iter", type=_positive_int, help="cap the optimizer's iterations")
    train.add_argument("--json", metavar="PATH", help="also write the metrics as JSON")
    train.set_defaults(func=_train)

    run = sub.add_parser(
        "run",
        help="run the case study end to end on local Spark",
        description="Generate the case-study data if missing, load it, and report on it.",
    )
    run.add_argument("--out", default="build/case_study", help="output folder")
    run.add_argument("--rows", type=_positive_int, default=200_000, help="rows to generate")
    run.add_argument("--seed", type=int, default=0, help="random seed")
    run.set_defaults(func=_run)

    # Commands with their own modules: each adds its subparser (imports there stay light).
    from ctr_lab import bench, emr, magics

    for module in (magics, emr, bench):
        module.add_parser(sub)
    return parser


def _positive_int(text: str) -> int:
    try:
        value = int(text.replace("_", "").replace(",", ""))
    except ValueError:
        value = 0
    if value <= 0:
        raise argparse.ArgumentTypeError(f"must be a positive whole number, not {text}")
    return value


def main(argv: Optional[List[str]] = None) -> int:
    """Run the command line; return the exit code."""
    args = build_parser().parse_args(argv)
    try:
        return args.func(args)
    except CtrLabError as exc:
        print(f"ctr-lab: error: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("ctr-lab: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
