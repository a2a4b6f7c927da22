"""Splits, named model pipelines, tuning and train-once model storage for CTR logistic regression.

Everything here takes the canonical DataFrame that :func:`ctr_lab.load` returns.

Splits and sampling
    :func:`time_split` (the last calendar days, UTC, as test: how a CTR model is used),
    :func:`hash_split` (the same rows on any cluster), :func:`random_split`,
    :func:`stratified_sample` (``sampleBy``, not the course's ``orderBy(rand()).limit()``) and
    :func:`balanced_sample`.
Pipelines by name
    :func:`build_pipeline` and :data:`PIPELINES`: ``course_baseline`` (CTR_03),
    ``course_improved`` (CTR_04/05 done right) and ``recommended`` (hashed features). The row
    transforms of :mod:`ctr_lab.features` run *inside* each pipeline, as its first stage
    (:class:`RowFeatures`), so a saved ``PipelineModel`` scores raw canonical rows in one call:
    ``PipelineModel.load(path).transform(loaded.df)``.
Tuning and training once
    :func:`tune` fits the feature stages once, caches the features and searches the
    ``LogisticRegression`` grid only; :func:`fit_or_load` reloads a saved model whose fingerprint
    (data, pipeline, settings, versions) matches and otherwise fits and saves it atomically;
    :func:`train_and_evaluate` splits, fits and reports test metrics.

The functions live in modules by concern, and are all reachable from here (``cl.train.tune``):
:mod:`~ctr_lab.train.splits`, :mod:`~ctr_lab.train.stages` (the custom stages a saved model
reloads), :mod:`~ctr_lab.train.pipelines`, :mod:`~ctr_lab.train.tuning`,
:mod:`~ctr_lab.train.store` (train once) and :mod:`~ctr_lab.train.experiment`. Importing this
package loads none of them: each loads (with PySpark) on first use, so the command line can read
:data:`PIPELINE_NAMES` on a machine without Spark.

Examples
--------
>>> import ctr_lab as cl
>>> df = cl.load("course_10k", spark).df.cache()  # parsed and checked once, not per job
>>> train_df, test_df = cl.train.time_split(df, test_days=1)
>>> model_dir = str(tmp_path / "m")
>>> model, info = cl.train.fit_or_load("course_baseline", train_df, model_dir, maxIter=5)
>>> info["loaded"]
False
>>> scored_df = model.transform(test_df)
>>> scored_df.count() == test_df.count()
True
"""

import importlib
from typing import Any

from ctr_lab.train.names import PIPELINE_NAMES

#: Public names, and the module of this package each one lives in.
_EXPORTS = {
    "balanced_sample": "splits",
    "hash_split": "splits",
    "random_split": "splits",
    "stratified_sample": "splits",
    "time_split": "splits",
    "ClassWeighter": "stages",
    "ProbabilityRecalibrator": "stages",
    "RowFeatures": "stages",
    "recalibrate": "stages",
    "COURSE_CATEGORICALS": "pipelines",
    "LR_SETTINGS": "pipelines",
    "PIPELINES": "pipelines",
    "RECOMMENDED_PRIOR_ROWS": "pipelines",
    "build_pipeline": "pipelines",
    "click_probability": "pipelines",
    "fit_featurized": "pipelines",
    "lr_model_of": "pipelines",
    "tune": "tuning",
    "COMPLETE_MARKER": "store",
    "KEPT_MODELS": "store",
    "STALE_SAVE_SECONDS": "store",
    "data_fingerprint": "store",
    "fit_or_load": "store",
    "saved_record": "store",
    "training_record": "store",
    "train_and_evaluate": "experiment",
}
_MODULES = ("splits", "stages", "pipelines", "tuning", "store", "experiment", "names")


def __getattr__(name: str) -> Any:
    if name in _EXPORTS:
        return getattr(importlib.import_module(f"ctr_lab.train.{_EXPORTS[name]}"), name)
    if name in _MODULES:
        return importlib.import_module(f"ctr_lab.train.{name}")
    raise AttributeError(f"module 'ctr_lab.train' has no attribute {name!r}")


def __dir__() -> list:
    return sorted([*globals(), *_EXPORTS, *_MODULES])


__all__ = ["PIPELINE_NAMES", *sorted(_EXPORTS)]
