"""Grading for the assignment: score a saved model on held-out days against the baseline.

The held-out rows are the last day(s) of the data (:func:`ctr_lab.train.time_split`), the rows a
CTR model meets after training. The baseline is the course's model (``course_baseline``) fitted
on the same training days, saved with ``fit_or_load`` so grading twice does not refit it.

Examples
--------
The baseline graded against itself, as a student would grade a saved model: ``grade`` copies
the same baseline (5 iterations here, to keep the example quick) into ``baseline_dir`` instead of
fitting it again, and the student's folder holding the same model scores the same.

>>> import ctr_lab as cl
>>> df = cl.load("course_10k", spark).df.cache()  # parsed and checked once, not per job
>>> train_df, _ = cl.train.time_split(df)
>>> my_model_dir = str(tmp_path / "my_model")
>>> _ = cl.train.fit_or_load("course_baseline", train_df, my_model_dir, maxIter=5)
>>> table = grade(
...     my_model_dir, df, baseline_dir=str(tmp_path / "baseline"), baseline_settings={"maxIter": 5}
... )
>>> print(table[["model", "test_rows", "log_loss_vs_baseline_%"]].to_string(index=False))
                     model  test_rows  log_loss_vs_baseline_%
baseline (course_baseline)       1050                     0.0
                     yours       1050                     0.0
"""

from __future__ import annotations

from typing import Any, Dict, List, Optional

from ctr_lab.errors import CtrLabError


def _scored(model: Any, test_df: Any) -> Any:
    from ctr_lab.train import click_probability

    return click_probability(model.transform(test_df)).select("label", "p_hat")


def _load_model(model: Any) -> Any:
    if not isinstance(model, str):
        return model
    from pyspark.ml import PipelineModel

    try:
        return PipelineModel.load(model)
    except Exception as exc:  # Py4J: a missing or incomplete folder
        first = str(exc).strip().splitlines()[0][:160] if str(exc).strip() else type(exc).__name__
        raise CtrLabError(
            f"{model}: not a saved PipelineModel ({first}). Fix: pass the model_dir you gave "
            "fit_or_load, or the fitted PipelineModel itself"
        ) from None


def grade(
    model: Any,
    df: Any,
    baseline_dir: Optional[str] = None,
    baseline: str = "course_baseline",
    test_days: int = 1,
    baseline_settings: Optional[Dict[str, Any]] = None,
):
    """Score ``model`` and the baseline on the last ``test_days`` days of ``df``.

    Parameters
    ----------
    model
        A fitted ``PipelineModel``, or the folder it was saved to.
    df
        Canonical data (:func:`ctr_lab.load`), the same the model was trained on; only the days
        before the held-out ones may have been used for training.
    baseline_dir
        Where the baseline model is saved (reloaded when its data and settings match).
    baseline
        The pipeline the model is compared with.
    baseline_settings
        Settings for the baseline's pipeline (:func:`ctr_lab.train.build_pipeline`); its
        defaults when None.

    Returns
    -------
    pandas.DataFrame
        One row per model: ``model``, ``test_rows``, ``log_loss``, ``auc`` and the change in log
        loss against the baseline in percent (negative is better), rounded to 4 places.
    """
    import pandas as pd

    from ctr_lab.evaluate import log_loss_of, roc_auc
    from ctr_lab.train import build_pipeline, fit_featurized, fit_or_load, time_split

    train_df, test_df = time_split(df, test_days=test_days)
    settings = dict(baseline_settings or {})
    if baseline_dir is None:
        base_model = fit_featurized(build_pipeline(baseline, **settings), train_df)
    else:
        base_model, _ = fit_or_load(baseline, train_df, baseline_dir, **settings)
    rows: List[dict] = []
    models = ((f"baseline ({baseline})", base_model), ("yours", _load_model(model)))
    for name, fitted in models:
        scored = _scored(fitted, test_df).cache()
        rows.append(
            {
                "model": name,
                "test_rows": scored.count(),
                "log_loss": log_loss_of(scored, "label", "p_hat"),
                "auc": roc_auc(scored, "label", "p_hat"),
            }
        )
        scored.unpersist()
    table = pd.DataFrame(rows)
    base = table["log_loss"].iloc[0]
    table["log_loss_vs_baseline_%"] = 100.0 * (table["log_loss"] - base) / base
    return table.round(4)
