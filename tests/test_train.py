"""Splits, named pipelines, tuning and train-once storage of ctr_lab.train."""

from __future__ import annotations

import json
import os
import shutil
import time
from datetime import datetime, timezone
from pathlib import Path

import numpy as np
import pytest
from pyspark.ml import Pipeline, PipelineModel
from pyspark.ml.classification import LogisticRegression
from pyspark.ml.feature import VectorAssembler
from pyspark.sql import DataFrame
from pyspark.sql import functions as F
from pyspark.testing import assertDataFrameEqual

from ctr_lab import train
from ctr_lab.data import load
from ctr_lab.errors import CtrLabError
from ctr_lab.evaluate import log_loss_of
from ctr_lab.persistence import read_pipeline_model, write_pipeline_model
from ctr_lab.samples import sample_path
from ctr_lab.train import store

# Few iterations keep the suite fast; the quality numbers come from full fits (see the report).
FAST = {"maxIter": 8}


@pytest.fixture(scope="module")
def sample_df(spark):
    df = load(sample_path("avazu_raw_50k")).df.repartition(4).cache()
    df.count()
    yield df
    df.unpersist()


@pytest.fixture(scope="module")
def sample_split(sample_df):
    return train.time_split(sample_df, test_days=1)


def _utc(*args: int) -> datetime:
    return datetime(*args, tzinfo=timezone.utc)


# ----------------------------------------------------------------------------------------------
# Splits and sampling
# ----------------------------------------------------------------------------------------------


def test_time_split_puts_exactly_the_last_utc_day_in_test(spark):
    times = [
        _utc(2014, 10, 28, 0, 0),
        _utc(2014, 10, 29, 23, 59),  # the last second before the last day
        _utc(2014, 10, 30, 0, 0),
        _utc(2014, 10, 30, 23, 0),
        _utc(2014, 10, 29, 12, 0),
    ]
    df = spark.createDataFrame(
        [(str(i), t) for i, t in enumerate(times)], "id string, event_time timestamp"
    )
    train_df, test_df = train.time_split(df, test_days=1)
    assert sorted(r.id for r in test_df.collect()) == ["2", "3"]
    assert sorted(r.id for r in train_df.collect()) == ["0", "1", "4"]
    _, test2_df = train.time_split(df, test_days=2)
    assert sorted(r.id for r in test2_df.collect()) == ["1", "2", "3", "4"]


def test_time_split_does_not_depend_on_the_session_time_zone(spark):
    df = spark.createDataFrame(
        [("a", _utc(2014, 10, 29, 23, 0)), ("b", _utc(2014, 10, 30, 1, 0))],
        "id string, event_time timestamp",
    )
    before = spark.conf.get("spark.sql.session.timeZone")
    try:
        spark.conf.set("spark.sql.session.timeZone", "America/Los_Angeles")
        _, test_df = train.time_split(df)
        assert [r.id for r in test_df.collect()] == ["b"]
    finally:
        spark.conf.set("spark.sql.session.timeZone", before)


def test_hash_split_is_the_same_on_any_partitioning(spark):
    base = spark.range(2000).select(
        F.when(F.col("id") % 50 == 0, F.lit(None))
        .otherwise(F.col("id").cast("string"))
        .alias("id"),
        (F.col("id") % 7).alias("x"),
    )
    split1 = train.hash_split(base.repartition(1), 0.25, key_col="id", salt="s")
    split7 = train.hash_split(base.repartition(7), 0.25, key_col="id", salt="s")
    assertDataFrameEqual(split1[1], split7[1])
    assertDataFrameEqual(split1[0], split7[0])
    n_test = split1[1].count()
    assert split1[0].count() + n_test == 2000
    assert 400 < n_test < 600
    # Null keys are assigned too, by their other columns, not all to one side.
    null_test = split1[1].where(F.col("id").isNull()).count()
    assert 0 < null_test < 40
    # Another salt draws another split; a list of key columns works as well.
    other = train.hash_split(base, 0.25, key_col=["id", "x"], salt="t")[1]
    assert other.exceptAll(split1[1]).count() > 0


def test_split_arguments_are_checked(spark):
    df = spark.range(3)
    with pytest.raises(CtrLabError, match="between 0 and 1"):
        train.hash_split(df, 1.5, key_col="id")
    with pytest.raises(CtrLabError, match="not found"):
        train.hash_split(df, 0.2, key_col="nope")
    with pytest.raises(CtrLabError, match="test_days"):
        train.time_split(df, test_days=0)


def test_stratified_sample_uses_sample_by_with_the_right_fractions(spark, monkeypatch):
    df = spark.range(40_000).select((F.col("id") % 5 == 0).cast("int").alias("label"), F.col("id"))
    calls = []
    cls = type(df)  # Spark 4's classic DataFrame subclasses pyspark.sql.DataFrame
    original = cls.sampleBy

    def spy(self, *args, **kwargs):
        calls.append(kwargs.get("fractions", args[1] if len(args) > 1 else None))
        return original(self, *args, **kwargs)

    monkeypatch.setattr(cls, "sampleBy", spy)
    sample = train.stratified_sample(df, {0: 0.1, 1: 0.5}, seed=3)
    counts = {r.label: r["count"] for r in sample.groupBy("label").count().collect()}
    assert calls == [{0: 0.1, 1: 0.5}]
    assert counts[0] == pytest.approx(32_000 * 0.1, rel=0.08)
    assert counts[1] == pytest.approx(8_000 * 0.5, rel=0.08)
    balanced, w = train.balanced_sample(df, negatives_per_positive=1.0, seed=3)
    assert w == pytest.approx(4.0)
    bal = {r.label: r["count"] for r in balanced.groupBy("label").count().collect()}
    assert bal[1] == 8_000
    assert bal[0] == pytest.approx(8_000, rel=0.08)


# ----------------------------------------------------------------------------------------------
# Named pipelines
# ----------------------------------------------------------------------------------------------


def _p_hat(model: PipelineModel, df) -> DataFrame:
    return train.click_probability(model.transform(df)).select("id", "p_hat")


@pytest.mark.parametrize(
    ("name", "settings"),
    [
        ("course_baseline", {}),
        ("course_improved", {}),
        ("recommended", {"numFeatures": 1 << 18, "class_weight": 2.0}),
    ],
)
def test_named_pipeline_fits_saves_and_reloads(spark, sample_split, tmp_path, name, settings):
    train_df, test_df = sample_split
    pipeline = train.build_pipeline(name, **FAST, **settings)
    model = train.fit_featurized(pipeline, train_df.limit(12_000))
    path = str(tmp_path / name)
    write_pipeline_model(model, path)
    rows = test_df.limit(2000)
    before = _p_hat(model, rows)
    # Read back by PySpark's reader and by ctr_lab's (which store.fit_or_load uses).
    for reloaded in (PipelineModel.load(path), read_pipeline_model(path)):
        assertDataFrameEqual(before, _p_hat(reloaded, rows), rtol=1e-9)
    p = np.array([r.p_hat for r in before.collect()])
    assert len(p) == 2000 and np.all((p > 0) & (p < 1))
    assert 0.08 < p.mean() < 0.3  # the sample's click rate is about 0.17


def test_train_and_evaluate_reports_the_test_day_as_scikit_learn_scores_it(spark):
    from sklearn.metrics import log_loss, roc_auc_score

    from ctr_lab.evaluate import EvaluationError

    df = load(sample_path("course_10k")).df.cache()
    result = train.train_and_evaluate(df, "course_baseline", split="time", maxIter=5)
    _, test_df = train.time_split(df)
    got = train.click_probability(result["model"].transform(test_df)).collect()
    y, p = [r.label for r in got], [r.p_hat for r in got]
    assert (result["train_rows"], result["test_rows"]) == (df.count() - len(got), len(got))
    assert result["log_loss"] == pytest.approx(log_loss(y, p), abs=1e-12)
    assert result["auc"] == pytest.approx(roc_auc_score(y, p), abs=1e-12)
    # A test day without a click has no ROC AUC: the error roc_auc gives, not a NaN.
    last_day = F.dayofmonth("event_time") == 30
    no_clicks = df.where(~(last_day & (F.col("label") == 1)))
    with pytest.raises(EvaluationError, match="holds only one class"):
        train.train_and_evaluate(no_clicks, "course_baseline", split="time", maxIter=2)
    df.unpersist()


def test_unknown_pipeline_or_setting_is_a_clear_error():
    with pytest.raises(CtrLabError, match="no pipeline named"):
        train.build_pipeline("nope")
    with pytest.raises(CtrLabError, match="unknown setting"):
        train.build_pipeline("recommended", regparam=1.0)
    with pytest.raises(CtrLabError, match=r"extra_features is a list\. Fix: give a dict"):
        train.build_pipeline("recommended", extra_features=["hour_of_day"])
    with pytest.raises(CtrLabError, match="extra_features entry '1x'"):
        train.build_pipeline("course_baseline", extra_features={"1x": "C1"})


@pytest.mark.parametrize(
    ("name", "taken"),
    [
        ("course_baseline", "hour"),  # its time stage's month, day, hour
        ("course_baseline", "Day"),  # Spark compares names without case
        ("course_improved", "site_id_bucketed"),
        ("recommended", "batch_user_hour"),
        ("recommended", "x_hour_dow"),
        ("recommended", "hour_of_day"),  # a column every pipeline's first stage adds
        ("course_improved", "probability"),
    ],
)
def test_an_extra_feature_named_as_a_pipeline_column_is_refused(spark, name, taken):  # JVM stages
    # Fitted, such a name made the later stages' column ambiguous: an AnalysisException.
    with pytest.raises(CtrLabError) as info:
        train.build_pipeline(name, extra_features={"ok_one": "C1", taken: "hour_of_day"})
    message = str(info.value)
    assert message.startswith(f"build_pipeline({name!r}): extra_features name(s) [{taken!r}]")
    assert f"Fix: give your columns new names (e.g. my_{taken})" in message
    train.build_pipeline(name, extra_features={"my_hour": "hour_of_day", "hour_level": "C1"})


@pytest.mark.parametrize("name", ["course_baseline", "course_improved", "recommended"])
def test_extra_features_are_computed_inside_the_pipeline(spark, name):  # stages are JVM objects
    pipeline = train.build_pipeline(name, extra_features={"ad_size": "concat_ws('x', C15, C16)"})
    stages = pipeline.getStages()
    added = [s for s in stages if "AS ad_size" in str(getattr(s, "getStatement", str)())]
    assert len(added) == 1 and stages.index(added[0]) == 1  # right after RowFeatures
    inputs = [c for s in stages if s.hasParam("inputCols") for c in s.getOrDefault("inputCols")]
    assert "ad_size" in inputs  # one-hot encoded or hashed with the pipeline's other columns


# ----------------------------------------------------------------------------------------------
# The LR agrees with scikit-learn; class weights are undone by recalibration
# ----------------------------------------------------------------------------------------------


def _dense_design(spark, n: int = 600, seed: int = 11):
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, 3))
    logit = -1.2 + x @ np.array([0.8, -0.5, 0.3])
    y = (rng.uniform(size=n) < 1 / (1 + np.exp(-logit))).astype(int)
    rows = [(int(i), int(yi), *map(float, xi)) for i, (yi, xi) in enumerate(zip(y, x))]
    df = spark.createDataFrame(rows, "id long, label int, x0 double, x1 double, x2 double")
    return df, x, y


def _dense_pipeline(lam: float, weight: float = 1.0) -> Pipeline:
    lr = LogisticRegression(
        regParam=lam, elasticNetParam=0.0, standardization=False, tol=1e-12, maxIter=500
    )
    stages = [VectorAssembler(inputCols=["x0", "x1", "x2"], outputCol="features")]
    if weight == 1.0:
        return Pipeline(stages=[*stages, lr])
    lr.setWeightCol("class_weight")
    return Pipeline(
        stages=[
            *stages,
            train.ClassWeighter(positiveWeight=weight),
            lr,
            train.ProbabilityRecalibrator(positiveWeight=weight),
        ]
    )


def test_lr_matches_scikit_learn_with_matched_regularisation(spark):
    from sklearn.linear_model import LogisticRegression as SkLogisticRegression
    from sklearn.metrics import log_loss

    df, x, y = _dense_design(spark)
    lam = 0.01
    model = train.fit_featurized(_dense_pipeline(lam), df)
    lr_model = train.lr_model_of(model)
    # Spark minimises mean loss + lam/2 |w|^2; sklearn C * sum loss + 1/2 |w|^2: C = 1/(lam n).
    sk = SkLogisticRegression(C=1.0 / (lam * len(y)), tol=1e-12, max_iter=10_000).fit(x, y)
    assert np.allclose(lr_model.coefficients.toArray(), sk.coef_[0], atol=1e-3)
    assert lr_model.intercept == pytest.approx(sk.intercept_[0], abs=1e-3)
    spark_loss = log_loss_of(train.click_probability(model.transform(df)), "label", "p_hat")
    assert spark_loss == pytest.approx(log_loss(y, sk.predict_proba(x)[:, 1]), abs=1e-4)


def test_class_weight_with_recalibration_keeps_log_loss_honest(spark):
    df, _, _ = _dense_design(spark, n=3000, seed=5)
    plain = train.fit_featurized(_dense_pipeline(0.0), df)
    weighted = train.fit_featurized(_dense_pipeline(0.0, weight=4.0), df)
    loss_plain = log_loss_of(train.click_probability(plain.transform(df)), "label", "p_hat")
    raw = train.lr_model_of(weighted).transform(
        weighted.stages[0].transform(df)
    )  # before recalibration: probabilities inflated
    loss_raw = log_loss_of(train.click_probability(raw), "label", "p_hat")
    loss_cal = log_loss_of(train.click_probability(weighted.transform(df)), "label", "p_hat")
    helper = log_loss_of(train.click_probability(train.recalibrate(raw, 4.0)), "label", "p_hat")
    assert loss_raw > loss_plain + 0.02
    assert loss_cal == pytest.approx(loss_plain, abs=2e-3)
    assert helper == pytest.approx(loss_cal, abs=1e-12)


# ----------------------------------------------------------------------------------------------
# Train once
# ----------------------------------------------------------------------------------------------


@pytest.fixture
def pipeline_fits(monkeypatch):
    """A list that grows by one on every ``Pipeline.fit`` call while the test runs."""
    fits = []
    original = Pipeline.fit

    def counting_fit(self, *args, **kwargs):
        fits.append(1)
        return original(self, *args, **kwargs)

    monkeypatch.setattr(Pipeline, "fit", counting_fit)
    return fits


@pytest.fixture(scope="module")
def small_df(sample_df):
    # limit() may pick other rows on another run: a hash split picks the same ones.
    df = train.hash_split(sample_df, 0.08, salt="fit_or_load")[1].cache()
    df.count()
    yield df
    df.unpersist()


def _kept(models: Path) -> dict:
    """The models kept beside others in ``models`` (``<dir>.v-ID``), by folder: fingerprint."""
    return {
        p.name: json.loads((p / train.COMPLETE_MARKER).read_text())["fingerprint"]
        for p in sorted(models.iterdir())
        if ".v-" in p.name
    }


@pytest.mark.own_logic
def test_fit_or_load_reloads_refits_on_change_and_ignores_half_saved_models(
    spark, small_df, tmp_path, pipeline_fits, monkeypatch
):
    fits = pipeline_fits
    models = tmp_path / "models"
    model_dir = str(models / "baseline")
    settings = {"maxIter": 5}

    model1, info1 = train.fit_or_load("course_baseline", small_df, model_dir, **settings)
    assert info1["loaded"] is False and len(fits) == 1
    assert os.path.isfile(os.path.join(model_dir, train.COMPLETE_MARKER))
    assert sorted(os.listdir(models)) == ["baseline"]  # no .tmp-*, .old-* or kept model

    model2, info2 = train.fit_or_load("course_baseline", small_df, model_dir, **settings)
    assert info2["loaded"] is True and len(fits) == 1
    assert info2["fingerprint"] == info1["fingerprint"]
    assertDataFrameEqual(_p_hat(model1, small_df), _p_hat(model2, small_df), rtol=1e-9)

    # Other settings replace the model and keep it beside the folder; asked for again, it is
    # moved back, not fitted again (a student trying a setting, or a second student's run).
    _, info3 = train.fit_or_load("course_baseline", small_df, model_dir, maxIter=6)
    assert info3["loaded"] is False and len(fits) == 2
    assert list(_kept(models).values()) == [info1["fingerprint"]]
    back, info_back = train.fit_or_load("course_baseline", small_df, model_dir, **settings)
    assert info_back["loaded"] is True and len(fits) == 2
    restored_from = Path(info_back["restored_from"].split(":", 1)[-1])  # a file: URI
    assert restored_from.name.startswith("baseline.v-")
    assert not restored_from.exists()  # moved, not copied
    assertDataFrameEqual(_p_hat(model1, small_df), _p_hat(back, small_df), rtol=1e-9)
    assert list(_kept(models).values()) == [info3["fingerprint"]]

    _, info4 = train.fit_or_load(
        "course_baseline", small_df.where("label = 0"), model_dir, maxIter=6
    )
    assert info4["loaded"] is False and len(fits) == 3
    assert sorted(_kept(models).values()) == sorted([info1["fingerprint"], info3["fingerprint"]])
    # Beyond KEPT_MODELS, the ones saved longest ago go; the model just replaced stays.
    monkeypatch.setattr(store, "KEPT_MODELS", 1)
    _, info5 = train.fit_or_load("course_baseline", small_df, model_dir, maxIter=6)
    assert info5["loaded"] is True and len(fits) == 3
    assert list(_kept(models).values()) == [info4["fingerprint"]]

    # A crash mid-save leaves a folder without the marker: it is never loaded.
    half_dir = str(tmp_path / "models" / "half")
    model1.write().overwrite().save(half_dir)
    _, info5 = train.fit_or_load("course_baseline", small_df, half_dir, **settings)
    assert info5["loaded"] is False and len(fits) == 4
    _, info6 = train.fit_or_load("course_baseline", small_df, half_dir, **settings)
    assert info6["loaded"] is True and len(fits) == 4


def test_fit_or_load_refuses_a_folder_the_cluster_would_take_with_it(spark, small_df):
    """On EMR the default file system is HDFS: a folder without a scheme goes with the cluster."""
    conf = spark._jsc.hadoopConfiguration()
    before = conf.get("fs.defaultFS")
    conf.set("fs.defaultFS", "hdfs://namenode.invalid:8020")
    try:
        with pytest.raises(
            CtrLabError, match=r"'\.\./build/models' has no scheme.*Fix: use an s3://"
        ):
            train.fit_or_load("course_baseline", small_df, "../build/models")
    finally:
        conf.set("fs.defaultFS", before)


def _tree(folder: Path) -> dict:
    """Every file under ``folder``, by relative path, with its bytes."""
    return {str(p.relative_to(folder)): p.read_bytes() for p in folder.rglob("*") if p.is_file()}


@pytest.mark.own_logic
def test_fit_or_load_refuses_a_folder_of_the_users_files_and_keeps_them(
    spark, small_df, tmp_path, pipeline_fits
):
    mydata = tmp_path / "mydata"
    mydata.mkdir()
    shutil.copy(sample_path("course_10k"), mydata / "train.csv")
    (mydata / "notes.txt").write_text("my notes\n")
    (mydata / "runs").mkdir()
    (mydata / "runs" / "1.json").write_text("{}")
    before = _tree(mydata)
    for model_dir in (str(mydata), str(mydata) + "/", mydata.as_uri()):
        with pytest.raises(
            CtrLabError,
            match=r"mydata/?: exists and is not a ctr_lab model \(it holds notes\.txt, runs/, "
            r"train\.csv\)\. Fix: choose a new or empty folder for the model$",
        ):
            train.fit_or_load("course_baseline", small_df, model_dir, maxIter=5)
    assert _tree(mydata) == before and pipeline_fits == []
    assert sorted(os.listdir(tmp_path)) == ["mydata"]  # nothing written beside it either

    # A Spark ML model without the marker is replaced, but not when a user's file is in it.
    spark_model = tmp_path / "spark_model"
    model = train.fit_featurized(train.build_pipeline("course_baseline", maxIter=5), small_df)
    model.write().save(str(spark_model))
    (spark_model / "README.md").write_text("which run this was")
    kept = _tree(spark_model)
    with pytest.raises(CtrLabError, match=r"holds README\.md, metadata/, stages/\)\. Fix: "):
        train.fit_or_load("course_baseline", small_df, str(spark_model), maxIter=5)
    assert _tree(spark_model) == kept

    # The same model in an empty folder is saved there, as in a new one (a leftover of a file
    # browser does not count): what a copy from beside it writes, too.
    for name in ("empty", "browsed"):
        (tmp_path / name).mkdir()
    (tmp_path / "browsed" / ".DS_Store").write_bytes(b"\0")
    _, info = train.fit_or_load("course_baseline", small_df, str(tmp_path / "empty"), maxIter=5)
    assert info["loaded"] is False
    assert (tmp_path / "empty" / train.COMPLETE_MARKER).is_file()
    _, info = train.fit_or_load("course_baseline", small_df, str(tmp_path / "browsed"), maxIter=5)
    assert info["copied_from"].endswith("/empty")
    assert (tmp_path / "browsed" / train.COMPLETE_MARKER).is_file()

    # A ctr_lab model with a user's file put in it is refused too; the user's own folder named
    # like a save's leftover (not ``.old-`` and twelve hex digits) is not swept away.
    (tmp_path / "empty" / "notes.txt").write_text("added later")
    with pytest.raises(CtrLabError, match=r"holds notes\.txt, "):
        train.fit_or_load("course_baseline", small_df, str(tmp_path / "empty"), maxIter=7)
    (tmp_path / "empty" / "notes.txt").unlink()
    (tmp_path / "empty.old-backup").mkdir()
    _, info = train.fit_or_load("course_baseline", small_df, str(tmp_path / "empty"), maxIter=7)
    assert info["loaded"] is False and (tmp_path / "empty.old-backup").is_dir()


@pytest.mark.own_logic
def test_fit_or_load_and_tune_refuse_an_ordinary_file_and_leave_it_as_it_was(
    spark, small_df, tmp_path, pipeline_fits
):
    afile = tmp_path / "afile.txt"
    afile.write_bytes(b"a student's essay\n")
    stamp = afile.stat().st_mtime_ns
    message = r"afile\.txt: exists and is a file, not a ctr_lab model folder\. Fix: choose a new"
    with pytest.raises(CtrLabError, match=message):
        train.fit_or_load("course_baseline", small_df, str(afile), maxIter=5)
    with pytest.raises(CtrLabError, match=message):
        train.tune(small_df, "course_baseline", {"regParam": [0.1]}, model_dir=str(afile))
    assert afile.read_bytes() == b"a student's essay\n" and afile.stat().st_mtime_ns == stamp
    assert sorted(os.listdir(tmp_path)) == ["afile.txt"] and pipeline_fits == []


@pytest.mark.own_logic
def test_fit_or_load_restores_a_model_a_killed_save_left_aside_and_sweeps_the_rest(
    spark, small_df, tmp_path, pipeline_fits
):
    fits = pipeline_fits
    parent = tmp_path / "models"
    model_dir = parent / "baseline"
    settings = {"maxIter": 5}
    model, first = train.fit_or_load("course_baseline", small_df, str(model_dir), **settings)
    assert first["loaded"] is False and len(fits) == 1
    expected = _p_hat(model, small_df)

    def beside(kind):
        return sorted(p.name for p in parent.iterdir() if f".{kind}-" in p.name)

    # Killed between the two renames: the complete model sits in .old-*, nothing in place.
    model_dir.rename(parent / "baseline.old-0123456789ab")
    reloaded, info = train.fit_or_load("course_baseline", small_df, str(model_dir), **settings)
    assert info["loaded"] is True and len(fits) == 1
    assert (model_dir / train.COMPLETE_MARKER).is_file() and beside("old") == []
    assertDataFrameEqual(_p_hat(reloaded, small_df), expected, rtol=1e-9)

    # Killed after the marker, before the rename: the new model is complete in .tmp-*, and a
    # half-written model (no marker) is in place.
    shutil.move(str(model_dir), str(parent / "baseline.tmp-aaaaaaaaaaaa"))
    model.stages[0].write().save(str(model_dir))
    _, info = train.fit_or_load("course_baseline", small_df, str(model_dir), **settings)
    assert info["loaded"] is True and len(fits) == 1
    assert beside("tmp") == [] and beside("old") == []

    # Saves that died before their marker: an old one is deleted, a young one (perhaps another
    # process's save in progress) is kept.
    stale, young = parent / "baseline.tmp-bbbbbbbbbbbb", parent / "baseline.tmp-cccccccccccc"
    for folder in (stale, young):
        model.stages[0].write().save(str(folder))
    long_ago = time.time() - train.STALE_SAVE_SECONDS - 60
    os.utime(stale, (long_ago, long_ago))
    _, info = train.fit_or_load("course_baseline", small_df, str(model_dir), **settings)
    assert info["loaded"] is True and len(fits) == 1
    assert beside("tmp") == [young.name]

    # Another fingerprint is never restored from a leftover: it refits.
    shutil.move(str(model_dir), str(parent / "baseline.old-dddddddddddd"))
    _, info = train.fit_or_load("course_baseline", small_df, str(model_dir), maxIter=6)
    assert info["loaded"] is False and len(fits) == 2
    assert beside("old") == []


@pytest.mark.own_logic
def test_a_folder_without_every_file_its_marker_lists_is_neither_loaded_nor_moved_back(
    spark, small_df, tmp_path, pipeline_fits
):
    """On S3 a rename copies a folder file by file, the marker's name first in S3's order: a copy
    stopped partway leaves the marker with part of the model, in place or kept beside it."""
    fits = pipeline_fits
    models = tmp_path / "models"
    model_dir = models / "baseline"

    def cut(folder: Path) -> None:  # the copy stopped before the LR's coefficients
        coefficients = list(folder.glob("stages/*LogisticRegression*/data/part-*"))
        assert coefficients
        for part in coefficients:
            part.unlink()

    model, _ = train.fit_or_load("course_baseline", small_df, str(model_dir), maxIter=5)
    expected = _p_hat(model, small_df)
    (model_dir / "stages" / ".DS_Store").write_bytes(b"\0" * 6148)  # a file browser's: no harm
    _, info = train.fit_or_load("course_baseline", small_df, str(model_dir), maxIter=5)
    assert info["loaded"] is True and len(fits) == 1
    cut(model_dir)
    again, info = train.fit_or_load("course_baseline", small_df, str(model_dir), maxIter=5)
    assert info["loaded"] is False and len(fits) == 2
    assert _kept(models) == {}  # not kept either: it is no model
    assertDataFrameEqual(_p_hat(again, small_df), expected, rtol=1e-9)

    train.fit_or_load("course_baseline", small_df, str(model_dir), maxIter=6)
    assert len(fits) == 3 and list(_kept(models).values()) == [info["fingerprint"]]
    cut(next(models.glob("baseline.v-*")))
    _, info = train.fit_or_load("course_baseline", small_df, str(model_dir), maxIter=5)
    assert info["loaded"] is False and "restored_from" not in info and len(fits) == 4


@pytest.mark.own_logic
def test_fit_or_load_copies_the_same_model_from_a_folder_beside_it(
    spark, small_df, tmp_path, pipeline_fits
):
    fits = pipeline_fits
    models = tmp_path / "models"
    model, first = train.fit_or_load("course_baseline", small_df, str(models / "a"), maxIter=5)
    assert first["loaded"] is False and len(fits) == 1

    copy, info = train.fit_or_load("course_baseline", small_df, str(models / "b"), maxIter=5)
    assert info["loaded"] is True and len(fits) == 1
    assert info["copied_from"].endswith("/models/a")
    assert sorted(os.listdir(models)) == ["a", "b"]
    marker = json.loads((models / "b" / train.COMPLETE_MARKER).read_text())
    assert marker["fingerprint"] == first["fingerprint"]
    assertDataFrameEqual(_p_hat(copy, small_df), _p_hat(model, small_df), rtol=1e-9)
    # Deleting the original leaves the copy whole.
    shutil.rmtree(models / "a")
    _, again = train.fit_or_load("course_baseline", small_df, str(models / "b"), maxIter=5)
    assert again["loaded"] is True and "copied_from" not in again and len(fits) == 1

    # Other settings, or the same model in a folder that is not beside it: fitted.
    _, other = train.fit_or_load("course_baseline", small_df, str(models / "c"), maxIter=6)
    assert other["loaded"] is False and len(fits) == 2
    _, far = train.fit_or_load(
        "course_baseline", small_df, str(tmp_path / "elsewhere" / "d"), maxIter=5
    )
    assert far["loaded"] is False and len(fits) == 3


@pytest.mark.own_logic
def test_tune_saves_its_winner_as_the_model_fit_or_load_would_fit(
    spark, small_df, tmp_path, pipeline_fits
):
    models = tmp_path / "models"
    tuned, table = train.tune(
        small_df,
        "course_baseline",
        {"regParam": [1e-4, 1e-1]},
        model_dir=str(models / "tuned"),
        maxIter=5,
    )
    winner = float(table["regParam"].iloc[0])
    fitted = train.fit_featurized(
        train.build_pipeline("course_baseline", regParam=winner, maxIter=5), small_df
    )
    fits_before = len(pipeline_fits)
    reloaded, info = train.fit_or_load(
        "course_baseline", small_df, str(models / "mine"), regParam=winner, maxIter=5
    )
    assert info["loaded"] is True and info["copied_from"].endswith("/models/tuned")
    assert len(pipeline_fits) == fits_before
    expected = _p_hat(fitted, small_df)
    assertDataFrameEqual(_p_hat(tuned, small_df), expected, rtol=1e-6)
    assertDataFrameEqual(_p_hat(reloaded, small_df), expected, rtol=1e-6)
    # The loser's settings were not saved: they are fitted.
    loser = float(table["regParam"].iloc[1])
    _, other = train.fit_or_load(
        "course_baseline", small_df, str(models / "other"), regParam=loser, maxIter=5
    )
    assert other["loaded"] is False


@pytest.mark.own_logic
def test_the_same_search_again_loads_its_winner_and_table(spark, small_df, tmp_path, monkeypatch):
    import pandas as pd
    from pyspark.ml.tuning import TrainValidationSplit

    folder = str(tmp_path / "tuned")
    model, table = train.tune(
        small_df, "course_baseline", {"regParam": [1e-4, 1e-1]}, model_dir=folder, maxIter=5
    )
    searches = []
    original = TrainValidationSplit.fit

    def counting_fit(self, *args, **kwargs):
        searches.append(1)
        return original(self, *args, **kwargs)

    monkeypatch.setattr(TrainValidationSplit, "fit", counting_fit)
    again, again_table = train.tune(
        small_df, "course_baseline", {"regParam": [1e-4, 1e-1]}, model_dir=folder, maxIter=5
    )
    assert searches == []
    pd.testing.assert_frame_equal(again_table, table)
    assertDataFrameEqual(_p_hat(again, small_df), _p_hat(model, small_df), rtol=1e-9)
    # Another grid, or another search setting: searched again.
    train.tune(small_df, "course_baseline", {"regParam": [1e-4, 1e-2]}, model_dir=folder, maxIter=5)
    train.tune(
        small_df,
        "course_baseline",
        {"regParam": [1e-4, 1e-2]},
        model_dir=folder,
        maxIter=5,
        train_ratio=0.7,
    )
    assert searches == [1, 1]
    # The first search again: its winner was kept beside the folder, and is moved back.
    first, first_table = train.tune(
        small_df, "course_baseline", {"regParam": [1e-4, 1e-1]}, model_dir=folder, maxIter=5
    )
    assert searches == [1, 1]
    pd.testing.assert_frame_equal(first_table, table)
    assertDataFrameEqual(_p_hat(first, small_df), _p_hat(model, small_df), rtol=1e-9)


# ----------------------------------------------------------------------------------------------
# Tuning and quality
# ----------------------------------------------------------------------------------------------


def test_tune_fits_features_once_and_reports_every_grid_point(spark, sample_split, monkeypatch):
    from ctr_lab.features import RareLevelBucketer

    train_df = sample_split[0].limit(5000)
    fits = []
    original = RareLevelBucketer._fit

    def counting_fit(self, dataset):
        fits.append(1)
        return original(self, dataset)

    monkeypatch.setattr(RareLevelBucketer, "_fit", counting_fit)
    model, table = train.tune(
        train_df,
        "recommended",
        grid={"regParam": [1e-4, 1e-2]},
        numFeatures=1 << 16,
        maxIter=5,
    )
    assert len(fits) == 1  # the feature stages, once, not once per grid point
    assert list(table.columns) == ["regParam", "logLoss"]
    assert sorted(table["regParam"]) == [1e-4, 1e-2]
    assert isinstance(model, PipelineModel)
    assert train.lr_model_of(model).getRegParam() == table["regParam"].iloc[0]


def test_recommended_beats_both_course_pipelines_in_notebook_04():
    """Notebook 04's full fits on the 50k sample (every ``make test`` re-runs it and compares its
    outputs with these): ``recommended`` has the lower log loss and the higher AUC, and no model
    beats the generator's true probabilities on the same last day."""
    import pandas as pd
    from sklearn.metrics import log_loss

    from ctr_lab.tools.casestudy import headlines

    notebook = Path(__file__).parents[1] / "notebooks" / "04_model_improvement.ipynb"
    printed = headlines(json.loads(notebook.read_text())["cells"])
    sample = sample_path("avazu_raw_50k")
    rows = pd.read_csv(sample, usecols=["id", "click", "hour"], dtype=str)
    truth = pd.read_csv(sample.replace(".csv.gz", "_truth.csv.gz"), dtype={"id": str})
    # The time split's test rows: the last UTC day (hour is YYMMDDHH in UTC).
    last_day = rows[rows["hour"].str[:6] == rows["hour"].str[:6].max()].merge(truth, on="id")
    bayes = log_loss(last_day["click"].astype(int), last_day["p_click"], labels=[0, 1])
    rec = printed["recommended"]
    for name in ("course_baseline", "course_improved"):
        other = printed[name]
        assert rec["test_rows"] == other["test_rows"] == len(last_day) > 1000, name
        assert bayes < rec["log_loss"] < other["log_loss"], name
        assert rec["auc"] > other["auc"], name


@pytest.fixture(scope="module")
def recommended_model(spark, sample_split):
    """``recommended`` with its default settings, fitted on 20,000 of the training rows."""
    train_df, _ = sample_split
    return train.fit_featurized(train.build_pipeline("recommended"), train_df.limit(20_000))


def test_recommended_stacks_4_mb_blocks_and_fits_what_1_mb_blocks_fit(
    spark, sample_split, recommended_model
):
    """The block size is a speed setting: Spark's own 1 MB blocks give the same model."""
    train_df, test_df = sample_split
    pipeline = train.build_pipeline("recommended")
    lr = pipeline.getStages()[-1]
    assert lr.getMaxBlockSizeInMB() == 4.0
    lr.setMaxBlockSizeInMB(LogisticRegression().getMaxBlockSizeInMB())  # 0: 1 MB in Spark 3.5
    sparks = train.fit_featurized(pipeline, train_df.limit(20_000))  # the fixture's rows
    assert train.lr_model_of(recommended_model).getMaxBlockSizeInMB() == 4.0
    a, b = (train.lr_model_of(m).coefficients.toArray() for m in (recommended_model, sparks))
    # The same sums in another order: the 60 L-BFGS steps end within 1e-7 of the largest weight.
    np.testing.assert_allclose(a, b, rtol=1e-6, atol=1e-7 * np.abs(b).max())
    losses = [log_loss_of(m.transform(test_df)) for m in (recommended_model, sparks)]
    assert losses[0] == pytest.approx(losses[1], rel=1e-9)


def _hasher_at(model: PipelineModel) -> int:
    from ctr_lab.hashing import SqlFeatureHasher

    return next(i for i, s in enumerate(model.stages) if isinstance(s, SqlFeatureHasher))


def _hashed_rows(model: PipelineModel, df: DataFrame) -> DataFrame:
    """The rows of ``df`` as the model's hasher sees them, with its output."""
    return PipelineModel(stages=model.stages[: _hasher_at(model) + 1]).transform(df)


def test_top_coefficients_of_a_hashed_model_are_named_by_its_hashing(
    spark, sample_df, recommended_model, tmp_path
):
    from ctr_lab.evaluate import top_coefficients
    from tests.spark_sql_hash import level_index

    model = recommended_model
    hasher = model.stages[_hasher_at(model)]
    hashed = hasher.getNumFeatures()
    hasher_input = PipelineModel(stages=model.stages[: _hasher_at(model)]).transform(sample_df)
    kinds = hasher.categorical(hasher_input)
    numeric = [c for c in hasher.getInputCols() if not kinds[c]]
    table = top_coefficients(model, n=15)
    named = table[~table["feature"].str.startswith("feature_")]
    assert len(named) >= 12  # the strongest weights belong to levels seen in training
    levels = []
    for index, feature in zip(named["index"], named["feature"]):
        for label in feature.split(" | "):
            if "=" in label:
                # An independent Spark SQL hash of the column and the value gives the index.
                column, value = label.split("=", 1)
                assert level_index(column, value, hashed) == index, label
                levels.append((index, label, column, value))
            else:  # a number: its own index after the hashed ones
                assert hashed + numeric.index(label) == index, label
    # A row holding that level has that index in the vector Spark built for it: for each level,
    # the vector of one row holding it, all found in one pass over the rows.
    found = (
        _hashed_rows(model, sample_df.limit(20_000))
        .select(
            *[
                F.first(
                    F.when(F.col(col).cast("string") == value, F.col("features")), ignorenulls=True
                ).alias(f"level_{i}")
                for i, (_, _, col, value) in enumerate(levels)
            ]
        )
        .first()
    )
    checked = 0
    for i, (index, label, _, _) in enumerate(levels):
        vector = found[f"level_{i}"]
        if vector is not None:
            assert index in set(vector.indices.tolist()), label
            checked += 1
    assert checked >= 5

    path = str(tmp_path / "rec")
    model.write().overwrite().save(path)
    reloaded = top_coefficients(PipelineModel.load(path), n=15)
    assert reloaded["feature"].tolist() == table["feature"].tolist()
    np.testing.assert_allclose(reloaded["coefficient"], table["coefficient"], rtol=1e-12)


def test_features_for_the_lr_have_at_most_one_partition_per_core(spark):
    cores = spark.sparkContext.defaultParallelism
    many = spark.range(0, 1000, numPartitions=4 * cores)
    merged = train.pipelines._one_partition_per_core(many)
    assert merged.rdd.getNumPartitions() == cores
    assert merged.count() == 1000
    one = spark.range(0, 10, numPartitions=1)
    assert train.pipelines._one_partition_per_core(one).rdd.getNumPartitions() == 1


def test_batch_counts_are_a_users_impressions_in_the_hour_and_day_with_one_shuffle(spark):
    """``recommended``'s in-batch counts, against counts made by hand, and their plan."""
    from pyspark.ml.feature import SQLTransformer

    (batch_counts,) = [
        s
        for s in train.build_pipeline("recommended").getStages()
        if isinstance(s, SQLTransformer) and "batch_user_hour" in s.getStatement()
    ]
    # (user, day of October 2014, hour): user a thrice at 10:00 on the 21st, once at 11:00,
    # twice at 10:00 on the 22nd (the same hour of another day); user b once.
    seen = [("a", 21, 10)] * 3 + [("a", 21, 11)] + [("a", 22, 10)] * 2 + [("b", 21, 10)]
    rows = [
        (i, user, _utc(2014, 10, day, hour, 5 * i), _utc(2014, 10, day, hour))
        for i, (user, day, hour) in enumerate(seen)
    ]
    df = spark.createDataFrame(
        rows, "i int, user string, event_time timestamp, hour_bucket timestamp"
    )
    out = batch_counts.transform(df)
    # Both windows start with the day's keys: the rows are shuffled once, not once per window.
    plan = out._jdf.queryExecution().executedPlan().toString()  # before it runs: one plan
    assert plan.count("Exchange hashpartitioning") == 1, plan
    got = {r["i"]: (r["batch_user_hour"], r["batch_user_day"]) for r in out.collect()}
    by_hand = [(3, 4)] * 3 + [(1, 4)] + [(2, 2)] * 2 + [(1, 1)]
    assert got == {i: (np.log1p(h), np.log1p(d)) for i, (h, d) in enumerate(by_hand)}


def _plan_nodes(node):
    """A physical plan's nodes, depth first (Spark's plan through Py4J)."""
    yield node
    children = node.children()
    for i in range(children.size()):
        yield from _plan_nodes(children.apply(i))


def test_the_batch_counts_window_shuffles_the_rows_before_later_stages_add_columns(
    recommended_model, sample_split
):
    """The window's shuffle moves whole rows: placed before the bucketing, the counts and the
    crosses, it moves the columns as read, not the ones those stages add (61 MiB instead of
    102 MiB for the 1M bench rows; BENCHMARKS.md, "The batch counts' window first")."""
    _, test_df = sample_split
    before_hasher = PipelineModel(stages=recommended_model.stages[: _hasher_at(recommended_model)])
    out = before_hasher.transform(test_df)
    added_later = {c for c in out.columns if c.endswith("_bucketed") or c.startswith("x_")}
    added_later |= {"user_count", "device_ip_count"}
    assert added_later <= set(out.columns)
    windows = [
        n for n in _plan_nodes(out._jdf.queryExecution().sparkPlan()) if n.nodeName() == "Window"
    ]
    assert windows, "no window in the plan"
    for window in windows:
        carried = window.child().output()
        names = {carried.apply(i).name() for i in range(carried.size())}
        assert "user" in names
        assert not names & added_later, sorted(names & added_later)


@pytest.mark.parametrize(
    "expr, spark_says",
    [("hour_of_dayy % 2", "`hour_of_dayy` cannot be resolved"), ("hour_of_day %", "Syntax error")],
    ids=["unknown-column", "syntax"],
)
def test_an_extra_feature_spark_cannot_compute_is_refused_in_one_line(
    small_df, tmp_path, expr, spark_says
):
    """The assignment's fit cell uses MY_FEATURES whatever its check said: a typo there was a
    page of Spark's AnalysisException, with the query plan, after the feature stages had been
    fitted. Now one line names the column, the expression and Spark's reason, before any
    fit, and nothing is saved."""
    model_dir = tmp_path / "mine"
    with pytest.raises(CtrLabError) as info:
        train.fit_or_load(
            "course_baseline", small_df, str(model_dir), extra_features={"odd_hour": expr}
        )
    message = str(info.value)
    assert "\n" not in message, message
    assert f"extra_features 'odd_hour': {expr!r}" in message and spark_says in message, message
    assert "Fix:" in message
    assert not model_dir.exists()
