"""Model quality against the generator's truth: the named pipelines on one time split.

Generates ``--rows`` synthetic rows (seed 7) with their true click probabilities, splits by time
(the last day is the test set), fits each named pipeline with its defaults on the rest and
reports test log loss and AUC next to the Bayes-optimal log loss of the test rows (the log loss
of the true probabilities), with the fit time and the LR iterations used.

    python benchmarks/model_quality.py                       # 200k rows, all three pipelines
    python benchmarks/model_quality.py --rows 1000000 --pipelines recommended
    python benchmarks/model_quality.py --json build/bench/model_quality.json
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=200_000)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument(
        "--pipelines", default="recommended,course_improved,course_baseline", help="comma list"
    )
    parser.add_argument("--data-dir", default="build/bench/model_quality")
    parser.add_argument("--json", default=None, help="also write the results here")
    args = parser.parse_args(argv)

    os.environ.setdefault("CTR_LAB_MASTER", "local[2]")
    os.environ.setdefault("CTR_LAB_SHUFFLE_PARTITIONS", "4")
    os.environ.setdefault("CTR_LAB_SPARK_UI", "false")
    from ctr_lab import train
    from ctr_lab.data import load, read_truth
    from ctr_lab.evaluate import log_loss_of
    from ctr_lab.session import get_spark
    from ctr_lab.tools import synth

    os.makedirs(args.data_dir, exist_ok=True)
    stem = os.path.join(args.data_dir, f"synth_{args.rows}_seed{args.seed}")
    data_path, truth_path = stem + ".csv.gz", stem + "_truth.csv.gz"
    if not (os.path.exists(data_path) and os.path.exists(truth_path)):
        synth.write_dataset(data_path, rows=args.rows, seed=args.seed, truth_path=truth_path)

    spark = get_spark("ctr-lab-model-quality")
    # Parse the gzip CSV once (one task), then work from 4 cached partitions.
    df = load(data_path, spark).df.repartition(4).cache()
    rows = df.count()
    _, test_df = train.time_split(df)
    truth = read_truth(truth_path, spark)
    bayes = log_loss_of(test_df.join(truth, on="id", how="inner"), "label", "p_click")

    results = []
    for name in [p.strip() for p in args.pipelines.split(",") if p.strip()]:
        t0 = time.perf_counter()
        r = train.train_and_evaluate(df, name, split="time")
        results.append(
            {
                "pipeline": name,
                "train_rows": r["train_rows"],
                "test_rows": r["test_rows"],
                "log_loss": r["log_loss"],
                "vs_bayes_pct": 100.0 * (r["log_loss"] / bayes - 1.0),
                "auc": r["auc"],
                "fit_seconds": r["fit_seconds"],
                "total_seconds": time.perf_counter() - t0,
                "iterations": r["iterations"],
            }
        )
        print(json.dumps(results[-1]), file=sys.stderr, flush=True)

    print(f"rows {rows}, seed {args.seed}, Spark {spark.version}, Bayes log loss {bayes:.4f}")
    print("| pipeline | test log loss | vs Bayes | test AUC | fit s | LR iterations |")
    print("|---|---:|---:|---:|---:|---:|")
    for r in results:
        print(
            f"| `{r['pipeline']}` | {r['log_loss']:.4f} | +{r['vs_bayes_pct']:.1f} % | "
            f"{r['auc']:.4f} | {r['fit_seconds']:.0f} | {r['iterations']} |"
        )
    if args.json:
        os.makedirs(os.path.dirname(os.path.abspath(args.json)), exist_ok=True)
        with open(args.json, "w") as fh:
            doc = {"rows": rows, "seed": args.seed, "spark": spark.version, "bayes": bayes}
            json.dump({**doc, "results": results}, fh, indent=2)
    spark.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
