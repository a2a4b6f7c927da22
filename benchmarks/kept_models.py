"""Going back to settings tried before: ``fit_or_load`` moves the kept model back.

Fits ``recommended`` on a sample's time split in one warm local session into one model folder:
its default settings, then ``regParam`` 1e-3 (which replaces the first model there), then each
again. Each call's seconds and what it did (trained, reloaded, moved back a kept model) are
printed. Run it on another tree (``PYTHONPATH=/path/to/tree``) to compare.

    python benchmarks/kept_models.py                      # avazu_raw_50k
    python benchmarks/kept_models.py --data course_10k
"""

from __future__ import annotations

import argparse
import tempfile
import time


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", default="avazu_raw_50k", help="a sample's name or a file")
    args = parser.parse_args()

    import ctr_lab as cl
    from ctr_lab.session import get_spark

    get_spark("ctr-lab-kept-models")
    df = cl.load(args.data).df.cache()
    df.count()
    train_df, _ = cl.train.time_split(df)
    model_dir = tempfile.mkdtemp(prefix="ctr-lab-kept-") + "/recommended"
    steps = [("default", {}), ("regParam 1e-3", {"regParam": 1e-3})] * 2
    for i, (name, settings) in enumerate(steps):
        start = time.perf_counter()
        _, info = cl.train.fit_or_load("recommended", train_df, model_dir, **settings)
        seconds = time.perf_counter() - start
        done = (
            "moved back" if "restored_from" in info else "reloaded" if info["loaded"] else "trained"
        )
        print(f"{name + (' again' if i >= 2 else ''):20s} {seconds:6.1f} s  {done}", flush=True)


if __name__ == "__main__":
    main()
