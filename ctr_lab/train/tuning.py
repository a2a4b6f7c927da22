"""Tuning the ``LogisticRegression`` of a named pipeline on features computed once."""

from __future__ import annotations

import logging
import time
from typing import Any, Dict, List, Optional

from pyspark.ml import PipelineModel
from pyspark.sql import DataFrame

from ctr_lab.errors import CtrLabError
from ctr_lab.evaluate import MetricEvaluator
from ctr_lab.fs import HadoopFs as _Fs
from ctr_lab.persistence import read_pipeline_model
from ctr_lab.train.pipelines import _fit_features, _scaled_lr, _split_stages, build_pipeline
from ctr_lab.train.store import (
    _fingerprint,
    _refuse_other_content,
    _restore_kept,
    _save_model,
    _saved_marker,
    data_fingerprint,
    training_record,
)

# What fit_or_load and tune did (trained, reloaded, copied): the local kernel shows these lines
# under a cell; elsewhere they are ordinary INFO records.
_log = logging.getLogger(__name__)


def tune(
    train_df: DataFrame,
    pipeline_name: str,
    grid: Dict[str, List[Any]],
    method: str = "tvs",
    parallelism: int = 2,
    metric: str = "logLoss",
    train_ratio: float = 0.8,
    num_folds: int = 3,
    seed: int = 2014,
    model_dir: Optional[str] = None,
    **settings: Any,
):
    """Search a LogisticRegression grid on features computed once.

    The feature stages are fitted once on ``train_df``; its features are cached; then
    ``TrainValidationSplit`` (``method="tvs"``) or ``CrossValidator`` (``"cv"``) fits the LR
    alone for each grid point, ``parallelism`` at a time. Encoders are never refit per fold
    (a search around the whole pipeline would refit every one of them per grid point). The
    encoders see the validation rows while fitting, which can favour weaker regularisation a
    little; hold a time-split test set out of ``train_df`` for the final number.

    Parameters
    ----------
    grid
        LR param name -> values, e.g. ``{"regParam": [1e-5, 1e-4], "maxIter": [30]}``.
    metric
        ``"logLoss"`` (smaller is better) or ``"areaUnderROC"``.
    model_dir
        Also save the best model there, as :func:`fit_or_load` would save the same pipeline
        with the winning values as settings (refused before the search when it holds files
        that are no model, as there): a later ``fit_or_load`` with those settings, in
        that folder or one beside it, loads it instead of fitting it again. The table is kept
        with it: the same search again (same rows, pipeline, settings, grid and search
        arguments) loads the model and the table instead of searching, also after another
        search replaced it there (it was kept beside the folder, as :func:`fit_or_load` keeps
        the models it replaces).

    Returns
    -------
    (PipelineModel, pandas.DataFrame)
        The feature model + best LR (+ recalibrator) as one model, and one row per grid point
        with its validation metric.

    Examples
    --------
    >>> import ctr_lab as cl
    >>> train_df, _ = cl.train.time_split(cl.load("course_10k", spark).df.cache())
    >>> model, table = tune(train_df, "course_baseline", {"regParam": [0.0, 0.1]}, maxIter=5)
    >>> table.round(3)
       regParam  logLoss
    0       0.1    0.460
    1       0.0    0.524
    """
    import pandas as pd
    from pyspark.ml.tuning import CrossValidator, ParamGridBuilder, TrainValidationSplit

    pipeline = build_pipeline(pipeline_name, **settings)
    spark = train_df.sparkSession
    search_args = {
        "grid": {k: list(v) for k, v in grid.items()},
        "method": method,
        "metric": metric,
        "train_ratio": train_ratio,
        "num_folds": num_folds,
        "seed": seed,
    }
    data: Optional[Dict[str, Any]] = None
    if model_dir is not None:
        fs = _Fs(spark, model_dir)
        _refuse_other_content(fs, model_dir)  # before the search: a save would delete the files
        data = data_fingerprint(train_df)
        search_fp = _fingerprint(spark, pipeline, train_df, settings, data, search_args)
        base = model_dir.rstrip("/")
        saved = _saved_marker(fs, base)
        restored = None
        if saved.get("search_fingerprint") != search_fp:
            restored = _restore_kept(fs, base, "search_fingerprint", search_fp)
            saved = _saved_marker(fs, base) if restored is not None else saved
        if saved.get("search_fingerprint") == search_fp and "search_table" in saved:
            was = f", kept in {restored} when another search replaced it" if restored else ""
            _log.info(
                "tune: reloaded the winner and its table from %s (same search%s)", model_dir, was
            )
            return read_pipeline_model(model_dir), pd.DataFrame(saved["search_table"])
    t0 = time.perf_counter()
    before, lr, after = _split_stages(pipeline.getStages())
    builder = ParamGridBuilder()
    for name, values in grid.items():
        if not lr.hasParam(name):
            raise CtrLabError(f"tune: {name!r} is not a LogisticRegression param")
        builder = builder.addGrid(lr.getParam(name), list(values))
    param_maps = builder.build()

    if metric not in MetricEvaluator.METRICS:
        raise CtrLabError(f"tune: metric {metric!r}. Fix: 'logLoss' or 'areaUnderROC'")
    evaluator = MetricEvaluator(metric)

    cols = ["features", "label"] + ([lr.getWeightCol()] if lr.isSet(lr.weightCol) else [])
    feature_model, features_df, n_rows = _fit_features(before, train_df, cols)
    if "regParam" not in grid:
        fit_rows = n_rows * (train_ratio if method == "tvs" else (num_folds - 1) / num_folds)
        lr = _scaled_lr(lr, int(fit_rows))
    try:
        if method == "tvs":
            search: Any = TrainValidationSplit(
                estimator=lr,
                estimatorParamMaps=param_maps,
                evaluator=evaluator,
                trainRatio=train_ratio,
                parallelism=parallelism,
                seed=seed,
            )
        elif method == "cv":
            search = CrossValidator(
                estimator=lr,
                estimatorParamMaps=param_maps,
                evaluator=evaluator,
                numFolds=num_folds,
                parallelism=parallelism,
                seed=seed,
            )
        else:
            raise CtrLabError(f"tune: method {method!r}. Fix: 'tvs' or 'cv'")
        fitted = search.fit(features_df)
    finally:
        features_df.unpersist()
    metrics = fitted.validationMetrics if method == "tvs" else fitted.avgMetrics
    rows = []
    for params, value in zip(param_maps, metrics):
        row = {p.name: v for p, v in params.items()}
        row[metric] = float(value)
        rows.append(row)
    table = pd.DataFrame(rows).sort_values(metric, ascending=(metric == "logLoss"))
    model = PipelineModel(stages=[*feature_model.stages, fitted.bestModel, *after])
    if model_dir is not None:
        best = {p.name: v for p, v in param_maps[int(table.index[0])].items()}
        won = {**settings, **best}
        won_pipeline = build_pipeline(pipeline_name, **won)
        fingerprint = _fingerprint(spark, won_pipeline, train_df, won, data)
        records = [
            {k: v.item() if hasattr(v, "item") else v for k, v in row.items()}
            for row in table.to_dict("records")
        ]
        kept = {
            "search_fingerprint": search_fp,
            "search_table": records,
            "training_data": training_record(data or {}),
        }
        _save_model(fs, model_dir.rstrip("/"), fingerprint, model=model, extra=kept)
    saved_to = f", saved the winner to {model_dir}" if model_dir is not None else ""
    _log.info(
        "tune: tried %d settings in %.1f s%s", len(param_maps), time.perf_counter() - t0, saved_to
    )
    return model, table.reset_index(drop=True)
