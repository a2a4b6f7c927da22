"""Row-level features and the fitted stages, checked against values worked out by hand."""

from __future__ import annotations

import math
from datetime import datetime, timezone

import pytest
from pyspark.ml import Pipeline, PipelineModel
from pyspark.sql import functions as F
from pyspark.testing import assertDataFrameEqual

import ctr_lab.features as features
from ctr_lab.errors import CtrLabError
from ctr_lab.features import (
    ROW_FEATURE_COLUMNS,
    FrequencyEncoder,
    FrequencyEncoderModel,
    RareLevelBucketer,
    RareLevelBucketerModel,
    count_col_name,
    with_all_row_features,
    with_c20_level,
    with_publisher,
    with_time_features,
    with_user,
)
from ctr_lab.schema import CANONICAL_COLUMNS, NULL_APP, NULL_DEVICE_ID, NULL_SITE, canonical_schema


def utc(day: int, hour: int, minute: int = 0) -> datetime:
    """An October 2014 instant in UTC (tz-aware, so the Python zone plays no part)."""
    return datetime(2014, 10, day, hour, minute, tzinfo=timezone.utc)


# ----------------------------------------------------------------------------------------------
# Row-level transforms
# ----------------------------------------------------------------------------------------------

# Calendar facts, checked on a wall calendar: 21 Oct 2014 was a Tuesday, the 25th a Saturday,
# the 26th a Sunday, the 27th a Monday. Monday is 0.
TIME_EXPECTED = [
    # event_time, hour_of_day, day_of_week, is_weekend, hour_bucket
    (utc(21, 0), 0, 1, 0, utc(21, 0)),
    (utc(25, 23, 59), 23, 5, 1, utc(25, 23)),
    (utc(26, 13, 45), 13, 6, 1, utc(26, 13)),
    (utc(27, 5, 30), 5, 0, 0, utc(27, 5)),
]
TIME_SCHEMA = (
    "event_time timestamp, hour_of_day int, day_of_week int, is_weekend int, hour_bucket timestamp"
)


def test_time_features_match_the_calendar(spark):
    df = spark.createDataFrame([(r[0],) for r in TIME_EXPECTED], "event_time timestamp")
    expected = spark.createDataFrame(TIME_EXPECTED, TIME_SCHEMA)
    assertDataFrameEqual(df.transform(with_time_features), expected)


def test_time_features_stay_utc_whatever_the_session_zone(spark):
    # India is UTC+5:30: Spark's hour()/dayofweek() would say 05:30 Wednesday for 00:00 Tuesday.
    df = spark.createDataFrame([(r[0],) for r in TIME_EXPECTED], "event_time timestamp")
    before = spark.conf.get("spark.sql.session.timeZone")
    spark.conf.set("spark.sql.session.timeZone", "Asia/Kolkata")
    try:
        got = [
            tuple(r)
            for r in df.transform(with_time_features)
            .select("hour_of_day", "day_of_week", "is_weekend")
            .collect()
        ]
    finally:
        spark.conf.set("spark.sql.session.timeZone", before)
    assert sorted(got) == sorted((h, d, w) for _, h, d, w, _ in TIME_EXPECTED)


PUB_SCHEMA = (
    "site_id string, site_domain string, site_category string, "
    "app_id string, app_domain string, app_category string"
)


def test_publisher_is_the_app_for_app_traffic(spark):
    site_row = ("s1", "sd1", "sc1", NULL_APP["app_id"], NULL_APP["app_domain"], "ac0")
    app_row = (
        NULL_SITE["site_id"],
        NULL_SITE["site_domain"],
        NULL_SITE["site_category"],
        "a1",
        "ad1",
        "ac1",
    )
    df = spark.createDataFrame([site_row, app_row], PUB_SCHEMA)
    expected = spark.createDataFrame(
        [site_row + ("s1", "sd1", "sc1", 0), app_row + ("a1", "ad1", "ac1", 1)],
        PUB_SCHEMA + ", pub_id string, pub_domain string, pub_category string, is_app int",
    )
    out = df.transform(with_publisher)
    assertDataFrameEqual(out, expected)
    # The course's bug: app rows kept the site's "no site" domain and category.
    app_out = out.where(F.col("is_app") == 1).first()
    assert app_out.pub_domain != NULL_SITE["site_domain"]
    assert app_out.pub_category != NULL_SITE["site_category"]


def test_user_is_device_id_or_ip_and_model(spark):
    df = spark.createDataFrame(
        [(NULL_DEVICE_ID, "ip1", "m1"), ("dev7", "ip2", "m2")],
        "device_id string, device_ip string, device_model string",
    )
    expected = spark.createDataFrame(
        [(NULL_DEVICE_ID, "ip1", "m1", "ip1_m1"), ("dev7", "ip2", "m2", "dev7")],
        "device_id string, device_ip string, device_model string, user string",
    )
    assertDataFrameEqual(df.transform(with_user), expected)


def test_c20_minus_one_is_its_own_level_not_zero(spark):
    df = spark.createDataFrame([(-1,), (0,), (100084,), (None,)], "C20 int")
    expected = spark.createDataFrame(
        [(-1, "missing"), (0, "0"), (100084, "100084"), (None, "missing")],
        "C20 int, C20_level string",
    )
    assertDataFrameEqual(df.transform(with_c20_level), expected)
    as_text = spark.createDataFrame([("-1",), ("7",)], "C20 string").transform(with_c20_level)
    assert sorted(r.C20_level for r in as_text.collect()) == ["7", "missing"]


def test_row_transforms_name_the_missing_column(spark):
    df = spark.createDataFrame([("ip1",)], "device_ip string")
    for transform, column in [
        (with_user, "device_id"),
        (with_publisher, "site_id"),
        (with_time_features, "event_time"),
        (with_c20_level, "C20"),
    ]:
        with pytest.raises(CtrLabError, match=column):
            df.transform(transform)


def canonical_row(**values):
    """One row in the loader's canonical schema: ordinary site traffic unless overridden."""
    row = dict.fromkeys(CANONICAL_COLUMNS, 0)
    row.update(
        id="1",
        label=0,
        event_time=utc(21, 0),
        site_id="s1",
        site_domain="sd1",
        site_category="sc1",
        app_id=NULL_APP["app_id"],
        app_domain=NULL_APP["app_domain"],
        app_category=NULL_APP["app_category"],
        device_id="dev1",
        device_ip="ip1",
        device_model="m1",
        C20=-1,
    )
    row.update(values)
    return tuple(row[c] for c in CANONICAL_COLUMNS)


def test_all_row_features_on_the_canonical_schema(spark):
    app_row = canonical_row(
        id="2",
        event_time=utc(26, 13, 45),
        site_id=NULL_SITE["site_id"],
        site_domain=NULL_SITE["site_domain"],
        site_category=NULL_SITE["site_category"],
        app_id="a1",
        app_domain="ad1",
        app_category="ac1",
        device_id=NULL_DEVICE_ID,
        C20=100084,
    )
    df = spark.createDataFrame([canonical_row(), app_row], canonical_schema())
    out = df.transform(with_all_row_features)
    assert out.columns == list(CANONICAL_COLUMNS) + list(ROW_FEATURE_COLUMNS)
    expected = spark.createDataFrame(
        [
            ("1", 0, 1, 0, utc(21, 0), "s1", "sd1", "sc1", 0, "dev1", "missing"),
            ("2", 13, 6, 1, utc(26, 13), "a1", "ad1", "ac1", 1, "ip1_m1", "100084"),
        ],
        "id string, hour_of_day int, day_of_week int, is_weekend int, hour_bucket timestamp, "
        "pub_id string, pub_domain string, pub_category string, is_app int, user string, "
        "C20_level string",
    )
    assertDataFrameEqual(out.select("id", *ROW_FEATURE_COLUMNS), expected)


# ----------------------------------------------------------------------------------------------
# RareLevelBucketer
# ----------------------------------------------------------------------------------------------

# Training counts: site_category a x3, b x2, c x1; C14 10 x3, 20 x2, 30 x1.
BUCKET_TRAIN = [("a", 10), ("a", 10), ("a", 20), ("b", 20), ("b", 30), ("c", 10)]


def test_rare_level_bucketer_keeps_levels_seen_min_count_times(spark):
    train_df = spark.createDataFrame(BUCKET_TRAIN, "site_category string, C14 int")
    model = RareLevelBucketer(inputCols=["site_category", "C14"], minCount=2).fit(train_df)
    assert model.vocabularies == {"site_category": ["a", "b"], "C14": ["10", "20"]}

    # Unseen ("z", 99), rare ("c", 30) and null values all become __rare__.
    new_df = spark.createDataFrame(
        [("a", 10), ("b", 30), ("c", 20), ("z", 99), (None, None)],
        "site_category string, C14 int",
    )
    expected = spark.createDataFrame(
        [
            ("a", 10, "a", "10"),
            ("b", 30, "b", "__rare__"),
            ("c", 20, "__rare__", "20"),
            ("z", 99, "__rare__", "__rare__"),
            (None, None, "__rare__", "__rare__"),
        ],
        "site_category string, C14 int, site_category_bucketed string, C14_bucketed string",
    )
    assertDataFrameEqual(model.transform(new_df), expected)


def test_rare_level_bucketer_output_names_and_errors(spark):
    train_df = spark.createDataFrame(BUCKET_TRAIN, "site_category string, C14 int")
    model = RareLevelBucketer(
        inputCols=["site_category"], outputCols=["site_category"], minCount=3, rareLabel="R"
    ).fit(train_df)
    # Output replaces the input in place; minCount=3 keeps only "a".
    assert model.transform(train_df).columns == ["site_category", "C14"]
    got = sorted(r[0] for r in model.transform(train_df).select("site_category").collect())
    assert got == ["R", "R", "R", "a", "a", "a"]

    with pytest.raises(CtrLabError, match="site_domain"):
        RareLevelBucketer(inputCols=["site_domain"]).fit(train_df)
    with pytest.raises(CtrLabError, match="outputCols"):
        RareLevelBucketer(inputCols=["site_category", "C14"], outputCols=["x"]).fit(train_df)
    with pytest.raises(CtrLabError, match="minCount"):
        RareLevelBucketer(inputCols=["C14"], minCount=0).fit(train_df)


def _jobs_of(spark, group: str, action) -> int:
    sc = spark.sparkContext
    sc.setJobGroup(group, group)
    try:
        action()
    finally:
        sc.setLocalProperty("spark.jobGroup.id", None)
        sc.setLocalProperty("spark.job.description", None)
    return len(sc.statusTracker().getJobIdsForGroup(group))


def test_rare_level_bucketer_fits_all_columns_in_one_pass(spark):
    train_df = spark.createDataFrame(BUCKET_TRAIN, "site_category string, C14 int")
    one = _jobs_of(spark, "rlb-one", lambda: RareLevelBucketer(inputCols=["C14"]).fit(train_df))
    two = _jobs_of(
        spark,
        "rlb-two",
        lambda: RareLevelBucketer(inputCols=["site_category", "C14"]).fit(train_df),
    )
    assert one == two  # the job count does not grow with the number of columns


def test_rare_level_bucketer_scales_to_many_levels(spark):
    # 50,000 kept levels: too many for a CASE WHEN or map literal, fine for a broadcast join.
    n = 50_000
    train_df = spark.range(n).select(F.col("id").cast("int").alias("C14"))
    model = RareLevelBucketer(inputCols=["C14"], minCount=1).fit(train_df)
    assert len(model.vocabularies["C14"]) == n
    new_df = spark.range(n - 5, n + 5).select(F.col("id").cast("int").alias("C14"))
    rare = model.transform(new_df).where(F.col("C14_bucketed") == "__rare__").count()
    assert rare == 5  # n .. n + 4 were never seen


@pytest.mark.parametrize("odd", ["z\n", "a\x01b"])  # "\x01" takes the per-label route
def test_string_indexer_of_indexes_by_position_with_unseen_last(spark, odd):
    labels = [["", "x,y", "é€", odd], ["only"]]
    indexer = features._string_indexer_of(labels, ["a", "b"], ["ia", "ib"])
    rows = [("", "only"), ("é€", "no"), (odd, None), ("new", "only"), ("x,y", "")]
    out = indexer.transform(spark.createDataFrame(rows, "a string, b string"))
    got = [(r.ia, r.ib) for r in out.collect()]
    # Index = position in the list; unseen values and nulls go to the "keep" bucket, which is
    # at least the list's length (PySpark's own helper pads ragged lists with nulls).
    assert got[0] == (0.0, 0.0) and got[1][0] == 2.0 and got[2][0] == 3.0 and got[4][0] == 1.0
    assert got[3][0] >= 4 and got[1][1] >= 1 and got[2][1] >= 1 and got[4][1] >= 1


# ----------------------------------------------------------------------------------------------
# FrequencyEncoder
# ----------------------------------------------------------------------------------------------

COUNT_SCHEMA = "user string, hour_bucket timestamp, device_ip string"
# Training: u1 three times (twice in hour 21/00, once in 21/01), u2 once; ip1 three times.
COUNT_TRAIN = [
    ("u1", utc(21, 0), "ip1"),
    ("u1", utc(21, 0), "ip1"),
    ("u1", utc(21, 1), "ip2"),
    ("u2", utc(21, 1), "ip1"),
]
# Test: u1 five times, u3 (never in training) twice.
COUNT_TEST = [
    ("u1", utc(21, 0), "ip1"),
    ("u1", utc(21, 1), "ip2"),
    ("u1", utc(21, 2), "ip2"),
    ("u1", utc(21, 2), "ip3"),
    ("u1", utc(21, 3), "ip3"),
    ("u3", utc(21, 0), "ip1"),
    ("u3", utc(21, 0), "ip9"),
]
# Hand counts from COUNT_TRAIN alone: user_count, user_hour_count, device_ip_count.
COUNT_EXPECTED = [
    ("u1", utc(21, 0), "ip1", 3, 2, 3),
    ("u1", utc(21, 1), "ip2", 3, 1, 1),
    ("u1", utc(21, 2), "ip2", 3, 0, 1),
    ("u1", utc(21, 2), "ip3", 3, 0, 0),
    ("u1", utc(21, 3), "ip3", 3, 0, 0),
    ("u3", utc(21, 0), "ip1", 0, 0, 3),
    ("u3", utc(21, 0), "ip9", 0, 0, 0),
]
COUNT_NAMES = ["user_count", "user_hour_count", "device_ip_count"]
COUNT_EXPECTED_SCHEMA = (
    COUNT_SCHEMA + ", user_count long, user_hour_count long, device_ip_count long"
)


def test_frequency_encoder_counts_training_rows_only(spark):
    train_df = spark.createDataFrame(COUNT_TRAIN, COUNT_SCHEMA)
    test_df = spark.createDataFrame(COUNT_TEST, COUNT_SCHEMA)
    model = FrequencyEncoder().fit(train_df)  # default keys: user, user+hour, device_ip
    out = model.transform(test_df)
    assert out.columns == ["user", "hour_bucket", "device_ip", *COUNT_NAMES]
    assertDataFrameEqual(out, spark.createDataFrame(COUNT_EXPECTED, COUNT_EXPECTED_SCHEMA))
    # No leakage: u1 is 3 times in training and 5 in test; counting both would give 8.
    u1_counts = {r.user_count for r in out.where(F.col("user") == "u1").collect()}
    assert u1_counts == {3}


def test_frequency_encoder_log_scale_and_names(spark):
    assert count_col_name("user,hour_bucket") == "user_hour_count"
    assert count_col_name("device_ip") == "device_ip_count"
    train_df = spark.createDataFrame(COUNT_TRAIN, COUNT_SCHEMA)
    model = FrequencyEncoder(keys=["user"], outputCols=["n_user"], logScale=True).fit(train_df)
    got = {r.user: r.n_user for r in model.transform(train_df).collect()}
    assert got["u1"] == pytest.approx(math.log(1 + 3), rel=1e-12)
    assert got["u2"] == pytest.approx(math.log(1 + 1), rel=1e-12)
    assert dict(model.transform(train_df).dtypes)["n_user"] == "double"


def test_frequency_encoder_joins_a_small_count_table_by_broadcast(spark, monkeypatch, tmp_path):
    """Under ``BROADCAST_COUNTS_BELOW`` the count table is broadcast whatever Spark's own line
    says (off here), and the counts are the same either way; over it, Spark decides."""
    # From Parquet, as the lab's rows are: Spark sizes a scan by its files, and cannot size rows
    # made in Python (it takes them for the largest size there is).
    spark.createDataFrame(COUNT_TRAIN, COUNT_SCHEMA).write.parquet(str(tmp_path / "train"))
    train_df = spark.read.parquet(str(tmp_path / "train"))
    test_df = spark.createDataFrame(COUNT_TEST, COUNT_SCHEMA)
    model = FrequencyEncoder().fit(train_df)
    key = "spark.sql.autoBroadcastJoinThreshold"
    before = spark.conf.get(key)
    spark.conf.set(key, "-1")
    try:
        small = model.transform(test_df)
        small_plan = small._jdf.queryExecution().executedPlan().toString()
        monkeypatch.setattr(features, "BROADCAST_COUNTS_BELOW", -1)
        large = model.transform(test_df)
        large_plan = large._jdf.queryExecution().executedPlan().toString()
        assertDataFrameEqual(small, large)
    finally:
        spark.conf.set(key, before)
    assert small_plan.count("BroadcastHashJoin") == 3, small_plan
    assert "BroadcastHashJoin" not in large_plan and "SortMergeJoin" in large_plan, large_plan
    assertDataFrameEqual(small, spark.createDataFrame(COUNT_EXPECTED, COUNT_EXPECTED_SCHEMA))


def test_frequency_encoder_names_missing_columns(spark):
    df = spark.createDataFrame([("ip1",)], "device_ip string")
    with pytest.raises(CtrLabError, match="user"):
        FrequencyEncoder().fit(df)
    with pytest.raises(CtrLabError, match="outputCols"):
        FrequencyEncoder(keys=["device_ip"], outputCols=["a", "b"]).fit(df)
    model = FrequencyEncoder(keys=["device_ip"]).fit(df)
    with pytest.raises(CtrLabError, match="device_ip"):
        model.transform(spark.createDataFrame([("u1",)], "user string"))


# ----------------------------------------------------------------------------------------------
# Save and load inside a Pipeline
# ----------------------------------------------------------------------------------------------


def test_pipeline_with_both_stages_round_trips(spark, tmp_path):
    schema = "site_category string, " + COUNT_SCHEMA
    train_df = spark.createDataFrame(
        [(cat,) + row for cat, row in zip(["a", "a", "b", "c"], COUNT_TRAIN)], schema
    )
    test_df = spark.createDataFrame([("a",) + COUNT_TEST[0], ("z",) + COUNT_TEST[5]], schema)
    pipeline = Pipeline(
        stages=[
            RareLevelBucketer(inputCols=["site_category"], minCount=2),
            FrequencyEncoder(keys=["user", "user,hour_bucket"], logScale=False),
        ]
    )
    pipeline.save(str(tmp_path / "pipeline"))
    reloaded_pipeline = Pipeline.load(str(tmp_path / "pipeline"))
    bucketer, encoder = reloaded_pipeline.getStages()
    assert (bucketer.getInputCols(), bucketer.getMinCount()) == (["site_category"], 2)
    assert encoder.getKeys() == ["user", "user,hour_bucket"]

    model = reloaded_pipeline.fit(train_df)
    model.write().overwrite().save(str(tmp_path / "model"))
    loaded = PipelineModel.load(str(tmp_path / "model"))
    assert [type(s) for s in loaded.stages] == [RareLevelBucketerModel, FrequencyEncoderModel]
    # The loaded counts come from the Parquet files in the model folder, not from train_df.
    assert all(str(tmp_path) in f for t in loaded.stages[1].counts for f in t.inputFiles())

    before = model.transform(test_df)
    after = loaded.transform(test_df).collect()
    assertDataFrameEqual(after, before)
    expected = spark.createDataFrame(
        [("a",) + COUNT_TEST[0] + ("a", 3, 2), ("z",) + COUNT_TEST[5] + ("__rare__", 0, 0)],
        schema + ", site_category_bucketed string, user_count long, user_hour_count long",
    )
    assertDataFrameEqual(after, expected)


# ----------------------------------------------------------------------------------------------
# HashedFeatureVocabulary
# ----------------------------------------------------------------------------------------------

VOCAB_SCHEMA = "site_category string, C1 int, is_app boolean, user_count double"
# site_category a x3, b x2, c x1; C1 1005 x4, 1002 x2; is_app true x2, false x4.
VOCAB_ROWS = [
    ("a", 1005, False, 0.5),
    ("a", 1005, False, 1.5),
    ("a", 1005, True, None),
    ("b", 1002, True, 2.0),
    ("b", 1002, False, 0.0),
    ("c", 1005, False, 3.0),
]


def _spark_hash_index(term: str, num_features: int) -> int:
    """FeatureHasher's index of a term, from an independent MurmurHash3 (x86, 32-bit, seed 42)."""
    from sklearn.utils import murmurhash3_32

    return murmurhash3_32(term.encode("utf-8"), seed=42, positive=False) % num_features


def _hasher(num_features: int):
    from pyspark.ml.feature import FeatureHasher

    return FeatureHasher(
        inputCols=["site_category", "C1", "is_app", "user_count"],
        categoricalCols=["C1"],
        numFeatures=num_features,
        outputCol="features",
    )


def test_hashed_vocabulary_indices_are_the_hashers_own(spark):
    df = spark.createDataFrame(VOCAB_ROWS, VOCAB_SCHEMA)
    hasher = _hasher(1 << 20)
    model = features.HashedFeatureVocabulary.of(hasher).fit(df)
    table = {(c, v): (i, n) for c, v, i, n in model.vocabulary}
    # Counts by hand; the numeric column is counted where present and named by its name.
    assert {k: n for k, (_, n) in table.items()} == {
        ("site_category", "a"): 3,
        ("site_category", "b"): 2,
        ("site_category", "c"): 1,
        ("C1", "1005"): 4,
        ("C1", "1002"): 2,
        ("is_app", "false"): 4,
        ("is_app", "true"): 2,
        ("user_count", None): 5,
    }
    # Every index agrees with an independent MurmurHash3 of the term Spark hashes.
    for (col, value), (index, _) in table.items():
        term = col if value is None else f"{col}={value}"
        assert index == _spark_hash_index(term, 1 << 20), term
    # ... and with the vector the FeatureHasher builds for a real row.
    row = hasher.transform(df).first()
    names = model.names()
    got = sorted(n for i in row.features.indices for n in names[int(i)])
    assert got == ["C1=1005", "is_app=false", "site_category=a", "user_count"]


def test_hashed_vocabulary_reports_collisions_and_keeps_the_most_frequent(spark):
    df = spark.createDataFrame(VOCAB_ROWS, VOCAB_SCHEMA)
    # 2 features: 8 levels on 2 indices, so levels must share an index.
    model = features.HashedFeatureVocabulary.of(_hasher(2), maxLevels=2).fit(df)
    kept = {(c, v) for c, v, _, _ in model.vocabulary}
    assert ("site_category", "c") not in kept  # the third most frequent category
    assert {("site_category", "a"), ("site_category", "b"), ("C1", "1002")} <= kept
    table = model.to_pandas()
    names = model.names()
    for index, group in table.groupby("index"):
        assert len(names[index]) == len(group) == group["shared_by"].iloc[0]
        # The most frequent level first.
        count_of = {
            (c if v is None else f"{c}={v}"): n
            for c, v, n in group[["column", "value", "count"]].values
        }
        assert count_of[names[index][0]] == group["count"].max()
    assert table["shared_by"].max() > 1
    for c, v, index, _ in model.vocabulary:
        assert index == _spark_hash_index(c if v is None else f"{c}={v}", 2)


def test_hashed_vocabulary_round_trips_inside_a_pipeline(spark, tmp_path):
    df = spark.createDataFrame(VOCAB_ROWS, VOCAB_SCHEMA)
    hasher = _hasher(1 << 12)
    model = Pipeline(stages=[features.HashedFeatureVocabulary.of(hasher), hasher]).fit(df)
    model.write().overwrite().save(str(tmp_path / "m"))
    loaded = PipelineModel.load(str(tmp_path / "m"))
    assert isinstance(loaded.stages[0], features.HashedFeatureVocabularyModel)
    assert loaded.stages[0].names() == model.stages[0].names()
    assert len(loaded.stages[0].vocabulary) == 8
    assertDataFrameEqual(loaded.transform(df), model.transform(df))


def test_hashed_vocabulary_errors_name_the_problem(spark):
    df = spark.createDataFrame(VOCAB_ROWS, VOCAB_SCHEMA)
    with pytest.raises(CtrLabError, match="inputCols"):
        features.HashedFeatureVocabulary().fit(df)
    with pytest.raises(CtrLabError, match="pub_id"):
        features.HashedFeatureVocabulary(inputCols=["pub_id"]).fit(df)
    with pytest.raises(CtrLabError, match="maxLevels"):
        features.HashedFeatureVocabulary(inputCols=["C1"], maxLevels=0).fit(df)
