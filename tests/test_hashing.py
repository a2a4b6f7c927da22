"""SqlFeatureHasher: its indices against a MurmurHash3 written out here from its definition."""

from __future__ import annotations

import pytest
from pyspark.ml import Pipeline, PipelineModel
from pyspark.ml.linalg import SparseVector

from ctr_lab.errors import CtrLabError
from ctr_lab.features import HashedFeatureVocabulary
from ctr_lab.hashing import SqlFeatureHasher
from tests.spark_sql_hash import hash_bytes, hash_int, level_index


def test_the_reference_hash_is_spark_sqls():
    # Spark SQL's documentation of ``hash``: SELECT hash('Spark', array(123), 2) is -1321691492.
    assert hash_int(2, hash_int(123, hash_bytes(b"Spark", 42))) == -1321691492
    # On whole 4-byte blocks it is MurmurHash3 itself (scikit-learn's, written independently).
    from sklearn.utils import murmurhash3_32

    for text in ["", "abcd", "site_id=", "x_hour_pubcat=13_50e2190"]:
        data = text.encode("utf-8")
        assert hash_bytes(data, 42) == murmurhash3_32(data, seed=42), text


ROWS = [
    ("28905ebd", 1005, True, 2.5, 3.0),
    ("f028772b", None, False, None, 0.0),
    ("é€x", 1002, None, 1.0, None),
]
SCHEMA = "site_category string, C1 int, is_app boolean, user_count double, batch_user_day double"
INPUTS = ["site_category", "C1", "is_app", "user_count", "batch_user_day"]


def _hasher(num_features: int) -> SqlFeatureHasher:
    return SqlFeatureHasher(inputCols=INPUTS, categoricalCols=["C1"], numFeatures=num_features)


def _expected(row, num_features: int) -> SparseVector:
    """The vector worked out from the rules: levels hashed, numbers after them, nulls left out."""
    site, c1, is_app, user_count, batch = row
    entries = {}
    for column, value in [("site_category", site), ("C1", c1), ("is_app", is_app)]:
        if value is not None:
            text = str(value).lower() if isinstance(value, bool) else str(value)
            entries[level_index(column, text, num_features)] = 1.0
    for i, value in enumerate([user_count, batch]):
        if value is not None:
            entries[num_features + i] = float(value)
    return SparseVector(num_features + 2, entries)


@pytest.mark.parametrize("num_features", [1 << 18, 7])
def test_vectors_follow_the_rules(spark, num_features):
    df = spark.createDataFrame(ROWS, SCHEMA)
    got = [r.features for r in _hasher(num_features).transform(df).orderBy("C1").collect()]
    in_order = sorted(ROWS, key=lambda r: (r[1] is not None, r[1]))  # nulls first, as orderBy
    want = [_expected(r, num_features) for r in in_order]
    assert got == want


def test_levels_sharing_an_index_give_one(spark):
    # numFeatures=1: the row's three levels land on index 0, which holds 1.0, not their count.
    df = spark.createDataFrame(ROWS[:1], SCHEMA)
    (row,) = _hasher(1).transform(df).collect()
    assert row.features == SparseVector(3, {0: 1.0, 1: 2.5, 2: 3.0})


def test_the_vectors_are_built_without_interpreted_lambda_functions(spark):
    # array_compact, array_sort and filter are lambda functions Spark evaluates row by row
    # outside its generated code; the hasher keeps to expressions it compiles.
    # The output's own plan is a scan of the input's rows, so the vector's expression is read.
    df = spark.createDataFrame(ROWS, SCHEMA)
    hasher = _hasher(1 << 18)
    vector = hasher._vector(hasher.categorical(df))
    plan = df.selectExpr(vector)._jdf.queryExecution().executedPlan().toString().lower()
    assert "sort_array" in plan and "lambdafunction" not in plan


def test_the_same_text_in_any_type_is_the_same_level(spark):
    # An integer code and its text hash alike (the value's text is hashed), as in FeatureHasher.
    as_int = spark.createDataFrame([(1005,)], "C1 int")
    as_long = spark.createDataFrame([(1005,)], "C1 bigint")
    as_text = spark.createDataFrame([("1005",)], "C1 string")
    hasher = SqlFeatureHasher(inputCols=["C1"], categoricalCols=["C1"], numFeatures=1 << 18)
    frames = (as_int, as_long, as_text)
    vectors = {tuple(hasher.transform(d).first().features.indices) for d in frames}
    assert vectors == {(level_index("C1", "1005", 1 << 18),)}


def test_a_saved_pipeline_hashes_alike(spark, tmp_path):
    df = spark.createDataFrame(ROWS, SCHEMA)
    model = Pipeline(stages=[_hasher(1 << 10)]).fit(df)
    model.write().overwrite().save(str(tmp_path / "m"))
    again = PipelineModel.load(str(tmp_path / "m")).transform(df).orderBy("C1")
    assert [r.features for r in again.collect()] == [
        r.features for r in model.transform(df).orderBy("C1").collect()
    ]


def test_the_vocabulary_names_the_sql_hashers_indices(spark):
    df = spark.createDataFrame(ROWS, SCHEMA)
    hasher = _hasher(1 << 20)
    vocabulary = HashedFeatureVocabulary.of(hasher).fit(df)
    table = {(c, v): i for c, v, i, _ in vocabulary.vocabulary}
    assert table[("site_category", "é€x")] == level_index("site_category", "é€x", 1 << 20)
    assert table[("C1", "1002")] == level_index("C1", "1002", 1 << 20)
    assert table[("is_app", "true")] == level_index("is_app", "true", 1 << 20)
    assert table[("user_count", None)] == 1 << 20
    assert table[("batch_user_day", None)] == (1 << 20) + 1
    names = vocabulary.names()
    first = hasher.transform(df).where("C1 = 1005").first().features
    assert sorted(n for i in first.indices for n in names[int(i)]) == [
        "C1=1005",
        "batch_user_day",
        "is_app=true",
        "site_category=28905ebd",
        "user_count",
    ]


@pytest.mark.parametrize(
    "inputs, message",
    [
        (["site_category", "nope"], "column nope is not in the data"),
        (["site_category", "tags"], "column tags has type array<string>"),
        ([], "inputCols is not set"),
    ],
)
def test_bad_columns_are_named(spark, inputs, message):
    df = spark.createDataFrame([("a", ["x"])], "site_category string, tags array<string>")
    with pytest.raises(CtrLabError, match=message):
        SqlFeatureHasher(inputCols=inputs).transform(df)
