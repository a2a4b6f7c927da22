"""Grading for the assignment: score a saved model on held-out days against the constant
click-rate predictor and the baseline.

The held-out rows are the last day(s) of the data (:func:`ctr_lab.train.time_split`), the rows a
CTR model meets after training. The constant predictor gives every row the training days' click
rate: the bar a model's probabilities must clear. The baseline is the course's model
(``course_baseline``) fitted on the same training days, saved with ``fit_or_load`` so grading
twice does not refit it.

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
>>> print(table[["model", "test_rows"]].to_string(index=False))
                        model  test_rows
constant click rate (0.1661)       1050
   baseline (course_baseline)       1050
                        yours       1050
>>> table["log_loss_vs_baseline_%"].tolist()[1:]
[0.0, 0.0]
"""

from __future__ import annotations

from typing import Any, Dict, List, Optional, Sequence, Tuple

from ctr_lab.errors import CtrLabError

#: The test rows' own key while a model scores them: the label stays out of the model's sight.
_ROW_KEY = "_ctr_lab_test_row"


def _scored(model: Any, test_df: Any, name: str = "model") -> Any:
    """``label`` and ``p_hat`` of the test rows: from a fitted model, or a constant click rate.

    A model scores the rows without their ``label``: a stage that reads it (a feature that is
    the click itself) would otherwise know each answer. Its scores are joined back to the
    labels by the grader's own key, which ``test_df`` holds (:func:`score_models` computes it
    once and keeps it); a row the model dropped has a null ``p_hat``, one it repeated is there
    twice (:func:`score_models` refuses both). ``name`` starts a refusal.
    """
    from pyspark.errors import PySparkException
    from pyspark.sql import functions as F

    if isinstance(model, float):
        return test_df.select("label", F.lit(model).alias("p_hat"))
    from ctr_lab.train import click_probability

    try:
        out = model.transform(test_df.drop("label"))
    except PySparkException as exc:  # analysis errors: the columns a stage asks for
        first = str(exc).strip().splitlines()[0][:300] if str(exc).strip() else type(exc).__name__
        try:
            model.transform(test_df)
        except PySparkException:
            raise CtrLabError(
                f"{name}: the model cannot score the test rows ({first}). Fix: train it with "
                "this ctr_lab on canonical data (cl.load) and save it again"
            ) from None
        raise CtrLabError(
            f"{name}: the model reads the label of the rows it scores ({first}): a model must "
            "not use the click it predicts. Fix: leave label out of extra_features and train it "
            "again"
        ) from None
    scores = click_probability(out).select(_ROW_KEY, "p_hat")
    return test_df.select(_ROW_KEY, "label").join(scores, _ROW_KEY, how="left").drop(_ROW_KEY)


def load_model(model: Any) -> Any:
    """``model`` itself, or the ``PipelineModel`` saved in the folder ``model`` names.

    A folder that holds no saved model is refused with one line naming it and the fix.
    """
    if not isinstance(model, str):
        return model
    from ctr_lab.persistence import read_pipeline_model

    try:
        return read_pipeline_model(model)
    except Exception as exc:  # Py4J: a missing or incomplete folder
        first = str(exc).strip().splitlines()[0][:160] if str(exc).strip() else type(exc).__name__
        raise CtrLabError(
            f"{model}: not a saved PipelineModel ({first}). Fix: pass the model_dir you gave "
            "fit_or_load, or the fitted PipelineModel itself"
        ) from None


def fit_baseline(
    train_df: Any,
    baseline: str = "course_baseline",
    baseline_dir: Optional[str] = None,
    baseline_settings: Optional[Dict[str, Any]] = None,
    known_data: Optional[Dict[str, Any]] = None,
) -> Any:
    """The baseline pipeline fitted on ``train_df``; saved in (reloaded from) ``baseline_dir``.

    ``known_data``: ``train_df``'s data fingerprint when the caller has it already
    (:func:`ctr_lab.train.fit_or_load`).
    """
    from ctr_lab.train import build_pipeline, fit_featurized, fit_or_load

    settings = dict(baseline_settings or {})
    if baseline_dir is None:
        return fit_featurized(build_pipeline(baseline, **settings), train_df)
    return fit_or_load(baseline, train_df, baseline_dir, known_data=known_data, **settings)[0]


def _check_scores(scored: Any, name: str, test_rows: int) -> None:
    """Refuse scores (``_scored``'s) that are not one probability in 0-1 for each test row."""
    from pyspark.sql import functions as F

    p = F.col("p_hat")
    found = scored.agg(
        F.count(F.lit(1)).alias("rows"),
        F.count(p).alias("scored"),
        F.sum((F.isnan(p) | (p < 0) | (p > 1)).cast("int")).alias("bad"),
    ).collect()[0]  # an aggregate: one row
    unscored = found["rows"] - found["scored"]
    if found["rows"] != test_rows or unscored:
        raise CtrLabError(
            f"{name}: the model gave {found['scored']:,} scores for the {test_rows:,} test rows "
            f"({unscored:,} left without one, {found['rows'] - test_rows:,} scored twice): a "
            "model scores every row it is given, once. Fix: train it again with a ctr_lab "
            "pipeline, without stages that drop, add or join rows"
        )
    if found["bad"]:
        raise CtrLabError(
            f"{name}: the model gives {found['bad']:,} of the {test_rows:,} test rows a click "
            "probability that is NaN or outside 0-1. Fix: train it again with a ctr_lab pipeline"
        )


def score_models(
    test_df: Any, models: Sequence[Tuple[str, Any]], called: Optional[Dict[str, str]] = None
) -> Any:
    """One row per ``(name, model)`` scored on ``test_df``: ``model``, ``test_rows``, ``log_loss``
    and ``auc`` (:func:`ctr_lab.evaluate.metrics`); each model scores the rows once.

    A model is a fitted ``PipelineModel`` or a float: a constant click probability for every row.
    A model that reads the label, leaves a test row without a score or scores one twice, or
    gives a probability that is NaN or outside 0-1 is refused: a :class:`CtrLabError` that calls
    it ``called[name]`` (its name when ``called`` does not hold it).
    """
    import pandas as pd
    from pyspark import StorageLevel
    from pyspark.sql import functions as F

    from ctr_lab.evaluate import metrics

    rows: List[dict] = []
    keyed = None
    try:
        for name, fitted in models:
            who = (called or {}).get(name, name)
            if isinstance(fitted, float):
                found = metrics(_scored(fitted, test_df, who), prob_col="p_hat")
            else:
                if keyed is None:
                    # Kept: the scores and the labels meet by this key, which a second
                    # computation of rows read in another order would give other rows.
                    keyed = test_df.withColumn(_ROW_KEY, F.monotonically_increasing_id())
                    keyed = keyed.persist(StorageLevel.MEMORY_AND_DISK)
                    test_rows = int(keyed.count())
                scored = _scored(fitted, keyed, who).persist(StorageLevel.MEMORY_AND_DISK)
                try:  # the model scores once, for the check and the metrics
                    _check_scores(scored, who, test_rows)
                    found = metrics(scored, prob_col="p_hat")
                finally:
                    scored.unpersist()
            rows.append(
                {
                    "model": name,
                    "test_rows": found["rows"],
                    "log_loss": found["log_loss"],
                    "auc": found["roc_auc"],
                }
            )
    finally:
        if keyed is not None:
            keyed.unpersist()
    return pd.DataFrame(rows)


def with_change(table: Any, column: str, reference: int) -> Any:
    """``table`` with ``column``: each log loss's change against row ``reference``'s, in percent
    to two places, as the verdict says it. Finer places tell nothing a test day can, and their
    last digit moves with the order of Spark's floating-point sums, which its versions change.

    Examples
    --------
    >>> import pandas as pd
    >>> t = with_change(pd.DataFrame({"log_loss": [0.5, 0.4, 0.45555]}), "vs_first_%", 0)
    >>> t["vs_first_%"].tolist()
    [0.0, -20.0, -8.89]
    """
    base = table["log_loss"].iloc[reference]
    return table.assign(**{column: (100.0 * (table["log_loss"] - base) / base).round(2)})


def grade(
    model: Any,
    df: Any,
    baseline_dir: Optional[str] = None,
    baseline: str = "course_baseline",
    test_days: int = 1,
    baseline_settings: Optional[Dict[str, Any]] = None,
):
    """Score ``model`` and the baseline on the last ``test_days`` days of ``df``.

    This runs in the caller's session and trusts it (its ``df``, its ``ctr_lab``): a check for
    the student. The grade of record is ``ctr-lab grade`` (:mod:`ctr_lab.grading`), which runs in
    its own process on a test file the student's data does not hold.

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
        One row each for the constant click-rate predictor, the baseline and the model, as
        ``ctr-lab grade`` prints them: ``model``, ``test_rows``, ``log_loss``, ``auc`` and the
        change in log loss against the constant predictor and against the baseline, in percent
        (negative is better); the log losses and AUCs to 4 places, the changes to 2.
    """
    from ctr_lab.evaluate import training_click_rate
    from ctr_lab.train import time_split

    yours = load_model(model)  # first: a wrong folder is told before the baseline's fit
    train_df, test_df = time_split(df, test_days=test_days)
    rate = training_click_rate(train_df)
    base_model = fit_baseline(train_df, baseline, baseline_dir, baseline_settings)
    models = (
        (f"constant click rate ({rate:.4f})", rate),
        (f"baseline ({baseline})", base_model),
        ("yours", yours),
    )
    table = with_change(score_models(test_df, models), "log_loss_vs_constant_%", reference=0)
    return with_change(table, "log_loss_vs_baseline_%", reference=1).round(4)
