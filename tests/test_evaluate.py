"""Metrics computed in Spark agree with scikit-learn."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pytest
from sklearn.metrics import (
    accuracy_score,
    average_precision_score,
    log_loss,
    precision_recall_curve,
    precision_recall_fscore_support,
    roc_auc_score,
    roc_curve,
)

import ctr_lab.evaluate as ev
from ctr_lab.errors import CtrLabError
from ctr_lab.evaluate import log_loss_of


def test_log_loss_matches_scikit_learn(spark):
    rng = np.random.default_rng(7)
    p = rng.uniform(0.01, 0.99, 500)
    y = (rng.uniform(size=500) < p).astype(int)
    p[:3] = [0.0, 1.0, 1.0]  # clipped, as scikit-learn clips
    y[:3] = [0, 1, 0]
    df = spark.createDataFrame([(int(a), float(b)) for a, b in zip(y, p)], "label int, p double")
    assert log_loss_of(df, "label", "p") == pytest.approx(
        log_loss(y, np.clip(p, 1e-15, 1 - 1e-15)), rel=1e-9
    )


def test_log_loss_of_nothing_is_an_error(spark):
    empty = spark.createDataFrame([], "label int, p double")
    with pytest.raises(ValueError, match="no rows"):
        log_loss_of(empty, "label", "p")


# ------------------------------------------------------------------------------------------------
# Shared data: ~2,000 random predictions with deliberate ties, and a tiny table checked on paper.
# ------------------------------------------------------------------------------------------------

N_RANDOM = 2000


@pytest.fixture(scope="module")
def random_np():
    """Labels and probabilities rounded to 2 decimals, so most scores are shared by many rows."""
    rng = np.random.default_rng(20261128)
    logit = rng.normal(-1.6, 1.2, N_RANDOM)
    true_p = 1 / (1 + np.exp(-logit))
    y = (rng.uniform(size=N_RANDOM) < true_p).astype(int)
    p = np.round(np.clip(true_p + rng.normal(0, 0.05, N_RANDOM), 0, 1), 2)
    p[:4] = [0.0, 1.0, 0.5, 0.5]  # the extremes and exact-threshold ties
    return y, p


@pytest.fixture(scope="module")
def random_df(spark, random_np):
    y, p = random_np
    rows = [(int(a), float(b)) for a, b in zip(y, p)]
    return spark.createDataFrame(rows, "label int, p_click double").repartition(3).cache()


@pytest.fixture(scope="module")
def vector_df(spark, random_np):
    """The same predictions as Spark ML writes them: a ``probability`` vector [1 - p, p]."""
    from pyspark.ml.linalg import Vectors

    y, p = random_np
    rows = [(float(a), Vectors.dense([1 - float(b), float(b)])) for a, b in zip(y, p)]
    return spark.createDataFrame(rows, ["click", "probability"])


# Ten rows to compute by hand. Sorted by p (high to low):
#   p      0.9 0.8 0.7 0.6 0.6 0.4 0.3 0.3 0.2 0.1
#   label   1   1   0   1   0   0   1   0   0   0
TINY = [
    (1, 0.9),
    (1, 0.8),
    (0, 0.7),
    (1, 0.6),
    (0, 0.6),
    (0, 0.4),
    (1, 0.3),
    (0, 0.3),
    (0, 0.2),
    (0, 0.1),
]


@pytest.fixture(scope="module")
def tiny_df(spark):
    return spark.createDataFrame(TINY, "label int, p double")


# ------------------------------------------------------------------------------------------------
# Scalar metrics against scikit-learn
# ------------------------------------------------------------------------------------------------


def test_random_data_has_ties_and_both_classes(random_np):
    y, p = random_np
    assert len(np.unique(p)) < N_RANDOM / 10
    assert 0.05 < y.mean() < 0.5


def test_roc_auc_is_exact_with_ties(random_df, random_np):
    y, p = random_np
    assert ev.roc_auc(random_df, prob_col="p_click") == pytest.approx(
        roc_auc_score(y, p), rel=1e-12
    )


def test_pr_auc_is_average_precision(random_df, random_np):
    y, p = random_np
    assert ev.pr_auc(random_df, prob_col="p_click") == pytest.approx(
        average_precision_score(y, p), rel=1e-12
    )


def test_aucs_by_hand_on_tiny(tiny_df):
    # Positives at 0.9, 0.8, 0.6, 0.3; 6 negatives. Negatives below each positive, ties one half:
    # 6 + 6 + (4 + 0.5) + (2 + 0.5) = 19 of 4 x 6 pairs.
    assert ev.roc_auc(tiny_df, prob_col="p") == pytest.approx(19 / 24)
    # Average precision: recall steps of 1/4 at precisions 1, 1, 3/5, 4/8.
    assert ev.pr_auc(tiny_df, prob_col="p") == pytest.approx((1 + 1 + 0.6 + 0.5) / 4)


def test_single_class_auc_is_an_error(spark):
    df = spark.createDataFrame([(0, 0.2), (0, 0.4)], "label int, p double")
    with pytest.raises(ev.EvaluationError, match="only one class"):
        ev.roc_auc(df, prob_col="p")
    with pytest.raises(CtrLabError, match="no clicks"):
        ev.pr_auc(df, prob_col="p")


def test_missing_column_names_the_column(random_df):
    with pytest.raises(ev.EvaluationError, match="'nope'"):
        ev.roc_auc(random_df, prob_col="nope")


@pytest.mark.parametrize("threshold", [0.2, 0.5])
def test_accuracy_and_report_match_scikit_learn(random_df, random_np, threshold):
    y, p = random_np
    y_pred = (p > threshold).astype(int)
    assert ev.accuracy(random_df, threshold, prob_col="p_click") == pytest.approx(
        accuracy_score(y, y_pred)
    )
    report = ev.classification_report(random_df, threshold, prob_col="p_click")
    prec, rec, f1, support = precision_recall_fscore_support(y, y_pred, labels=[0, 1])
    np.testing.assert_allclose(report.loc[[0, 1], "precision"], prec)
    np.testing.assert_allclose(report.loc[[0, 1], "recall"], rec)
    np.testing.assert_allclose(report.loc[[0, 1], "f1"], f1)
    np.testing.assert_array_equal(report.loc[[0, 1], "support"], support)
    for average in ("macro", "weighted"):
        expected = precision_recall_fscore_support(y, y_pred, average=average)[:3]
        np.testing.assert_allclose(
            report.loc[f"{average} avg", ["precision", "recall", "f1"]].astype(float), expected
        )


def test_report_with_nothing_predicted_gives_zero_like_scikit_learn(random_df, random_np):
    y, _ = random_np
    report = ev.classification_report(random_df, threshold=1.0, prob_col="p_click")
    assert report.loc[1, ["precision", "recall", "f1"]].tolist() == [0.0, 0.0, 0.0]
    assert report.loc[1, "support"] == y.sum()


def _expected_metrics(y, p, threshold):
    y_pred = (p > threshold).astype(int)
    prec, rec, f1, _ = precision_recall_fscore_support(y, y_pred, average="binary", zero_division=0)
    return {
        "rows": len(y),
        "clicks": int(y.sum()),
        "ctr": y.mean(),
        "log_loss": log_loss(y, np.clip(p, 1e-15, 1 - 1e-15)),
        "roc_auc": roc_auc_score(y, p),
        "pr_auc": average_precision_score(y, p),
        "accuracy": accuracy_score(y, y_pred),
        "precision": prec,
        "recall": rec,
        "f1": f1,
        "mean_predicted": p.mean(),
        "threshold": threshold,
    }


def test_metrics_match_scikit_learn(random_df, random_np):
    y, p = random_np
    got = ev.metrics(random_df, threshold=0.3, prob_col="p_click")
    expected = _expected_metrics(y, p, 0.3)
    assert set(got) == set(expected)
    for key, value in expected.items():
        assert got[key] == pytest.approx(value, rel=1e-9), key


def test_metrics_read_a_probability_vector(vector_df, random_np):
    y, p = random_np
    got = ev.metrics(vector_df, threshold=0.5, label_col="click")
    expected = _expected_metrics(y, p, 0.5)
    for key, value in expected.items():
        # 1 - (1 - p) is not always p in floating point: allow rounding error.
        assert got[key] == pytest.approx(value, rel=1e-9, abs=1e-12), key
    assert log_loss_of(vector_df, "click") == pytest.approx(expected["log_loss"], rel=1e-9)


def test_metrics_of_nothing_is_an_error(spark):
    empty = spark.createDataFrame([], "label int, p double")
    with pytest.raises(ev.EvaluationError, match="no rows"):
        ev.metrics(empty, prob_col="p")


def test_metrics_score_each_row_once_when_the_scores_are_not_kept(spark, tiny_df):
    """``metrics(model.transform(test_df))`` scores the test rows once, not once per read of the
    scores in its query: the scoring function here counts the rows it scores."""
    from pyspark.sql import functions as F
    from pyspark.sql.types import DoubleType

    scored = spark.sparkContext.accumulator(0)

    def score(p):
        scored.add(1)
        return p

    predictions = tiny_df.withColumn("p", F.udf(score, DoubleType())("p"))
    assert ev.metrics(predictions, prob_col="p")["rows"] == len(TINY)
    assert scored.value == len(TINY)


@pytest.mark.parametrize(
    "measure", ["metrics", "roc_auc", "pr_auc", "lift_table", "roc_curve_table", "pr_curve_table"]
)
def test_rows_without_a_score_are_refused_and_counted(spark, measure):
    df = spark.createDataFrame(
        [(1, 0.9), (0, None), (1, None), (0, 0.2), (0, 0.1)], "label int, p double"
    )
    said = rf"^{measure}: 2 row\(s\) have no score \(null in 'p'\).*Fix: score them, or drop them"
    with pytest.raises(ev.EvaluationError, match=said):
        getattr(ev, measure)(df, prob_col="p")


# ------------------------------------------------------------------------------------------------
# Tables: by hand on the tiny example, and against numpy on the random data
# ------------------------------------------------------------------------------------------------


def test_threshold_table_by_hand(tiny_df):
    table = ev.threshold_table(tiny_df, thresholds=[0.25, 0.6, 0.95], prob_col="p")
    assert table["threshold"].tolist() == [0.25, 0.6, 0.95]
    # p > 0.25: 8 rows, 4 clicks. p > 0.6: 0.9, 0.8, 0.7 (ties at 0.6 excluded), 2 clicks.
    assert table["predicted_positives"].tolist() == [8, 3, 0]
    assert table["true_positives"].tolist() == [4, 2, 0]
    np.testing.assert_allclose(table["precision"].iloc[:2], [4 / 8, 2 / 3])
    assert np.isnan(table["precision"].iloc[2])
    np.testing.assert_allclose(table["recall"], [1.0, 0.5, 0.0])


def test_threshold_table_matches_numpy(random_df, random_np):
    y, p = random_np
    table = ev.threshold_table(random_df, prob_col="p_click")
    assert table["threshold"].tolist() == pytest.approx([0.05 * i for i in range(1, 11)])
    for t, row in zip(ev.DEFAULT_THRESHOLDS, table.itertuples()):
        predicted = p > t
        assert row.predicted_positives == predicted.sum()
        assert row.true_positives == (predicted & (y == 1)).sum()
        assert row.precision == pytest.approx(y[predicted].mean())
        assert row.recall == pytest.approx((predicted & (y == 1)).sum() / y.sum())


def test_business_table_by_hand(tiny_df):
    table = ev.business_table(tiny_df, cost_per_ad=25.0, thresholds=[0.25, 0.6, 0.95], prob_col="p")
    assert table["ads_shown"].tolist() == [8, 3, 0]
    assert table["ad_spend"].tolist() == [200.0, 75.0, 0.0]
    assert table["conversions"].tolist() == [4, 2, 0]
    np.testing.assert_allclose(table["spend_per_conversion"].iloc[:2], [50.0, 37.5])
    assert np.isnan(table["spend_per_conversion"].iloc[2])
    np.testing.assert_allclose(table["click_share"], [1.0, 0.5, 0.0])
    assert table.attrs["currency"] == "₹"


def test_business_table_matches_numpy(random_df, random_np):
    y, p = random_np
    table = ev.business_table(random_df, cost_per_ad=10.0, prob_col="p_click", currency="$")
    for t, row in zip(ev.DEFAULT_THRESHOLDS, table.itertuples()):
        shown = p > t
        conversions = (shown & (y == 1)).sum()
        assert row.ad_spend == pytest.approx(10.0 * shown.sum())
        assert row.spend_per_conversion == pytest.approx(10.0 * shown.sum() / conversions)
        assert row.click_share == pytest.approx(conversions / y.sum())
    assert table.attrs["currency"] == "$"


def test_calibration_table_by_hand(tiny_df):
    table = ev.calibration_table(tiny_df, bins=2, prob_col="p")
    # [0, 0.5): 0.4 0.3 0.3 0.2 0.1, one click. [0.5, 1]: 0.9 0.8 0.7 0.6 0.6, three clicks.
    assert table["bin"].tolist() == [0, 1]
    assert table["count"].tolist() == [5, 5]
    np.testing.assert_allclose(table["mean_predicted"], [0.26, 0.72])
    np.testing.assert_allclose(table["observed_rate"], [0.2, 0.6])
    ece = ev.expected_calibration_error(tiny_df, bins=2, prob_col="p")
    assert ece == pytest.approx(0.5 * 0.06 + 0.5 * 0.12)


def _numpy_calibration(y, p, edges):
    bins = np.searchsorted(np.asarray(edges[1:-1]), p, side="right")
    used = np.unique(bins)
    count = np.array([(bins == b).sum() for b in used])
    mean_p = np.array([p[bins == b].mean() for b in used])
    rate = np.array([y[bins == b].mean() for b in used])
    return used, count, mean_p, rate


def test_uniform_calibration_and_ece_match_numpy(random_df, random_np):
    y, p = random_np
    table = ev.calibration_table(random_df, bins=10, prob_col="p_click")
    edges = [i / 10 for i in range(11)]
    used, count, mean_p, rate = _numpy_calibration(y, p, edges)
    np.testing.assert_array_equal(table["bin"], used)
    np.testing.assert_array_equal(table["count"], count)
    np.testing.assert_allclose(table["mean_predicted"], mean_p)
    np.testing.assert_allclose(table["observed_rate"], rate)
    ece = np.sum(count * np.abs(rate - mean_p)) / len(y)
    assert ev.expected_calibration_error(random_df, prob_col="p_click") == pytest.approx(ece)


def test_quantile_calibration_matches_numpy_on_its_edges(random_df, random_np):
    y, p = random_np
    table = ev.calibration_table(random_df, bins=5, strategy="quantile", prob_col="p_click")
    edges = [*table["lower"], table["upper"].iloc[-1]]
    assert edges[0] == p.min() and edges[-1] == p.max()
    _, count, mean_p, rate = _numpy_calibration(y, p, edges)
    np.testing.assert_array_equal(table["count"], count)
    np.testing.assert_allclose(table["mean_predicted"], mean_p)
    np.testing.assert_allclose(table["observed_rate"], rate)
    # Ties at rounded scores make bins unequal, but each holds a sizeable share of the rows.
    assert table["count"].min() > 0.05 * len(y)


def test_unknown_calibration_strategy_is_an_error(tiny_df):
    with pytest.raises(ev.EvaluationError, match="strategy"):
        ev.calibration_table(tiny_df, strategy="kmeans", prob_col="p")


def test_lift_table_by_hand(tiny_df):
    table = ev.lift_table(tiny_df, deciles=5, prob_col="p")
    # Pairs by rank: (0.9, 0.8) (0.7, 0.6 0.6 tie kept together) (0.4) (0.3, 0.3) (0.2, 0.1).
    assert table["decile"].tolist() == [1, 2, 3, 4, 5]
    assert table["rows"].tolist() == [2, 3, 1, 2, 2]
    assert table["clicks"].tolist() == [2, 1, 0, 1, 0]
    np.testing.assert_allclose(table["lift"], [1 / 0.4, (1 / 3) / 0.4, 0, 0.5 / 0.4, 0])
    np.testing.assert_allclose(table["cumulative_clicks_share"], [0.5, 0.75, 0.75, 1.0, 1.0])


def test_lift_table_matches_numpy(random_df, random_np):
    y, p = random_np
    table = ev.lift_table(random_df, deciles=10, prob_col="p_click")
    order = np.lexsort((y, -p))
    p_sorted, y_sorted = p[order], y[order]
    # A tie group takes the decile of its first row.
    first_rank = {}
    for rank, score in enumerate(p_sorted):
        first_rank.setdefault(score, rank)
    deciles = np.array([first_rank[s] * 10 // len(p) + 1 for s in p_sorted])
    for row in table.itertuples():
        in_decile = deciles == row.decile
        assert row.rows == in_decile.sum()
        assert row.clicks == y_sorted[in_decile].sum()
        assert row.lift == pytest.approx(y_sorted[in_decile].mean() / y.mean())
        assert row.cumulative_clicks_share == pytest.approx(
            y_sorted[deciles <= row.decile].sum() / y.sum()
        )
    assert table["rows"].sum() == len(y)
    assert (table["max_predicted"].diff().dropna() < 0).all()


def test_curve_tables_match_scikit_learn(random_df, random_np):
    y, p = random_np
    roc = ev.roc_curve_table(random_df, prob_col="p_click", max_points=10_000)
    fpr, tpr, thr = roc_curve(y, p, drop_intermediate=False)
    np.testing.assert_allclose(roc["fpr"], fpr)
    np.testing.assert_allclose(roc["tpr"], tpr)
    np.testing.assert_allclose(roc["threshold"].iloc[1:], thr[1:])
    pr = ev.pr_curve_table(random_df, prob_col="p_click", max_points=10_000)
    precision, recall, _ = precision_recall_curve(y, p, drop_intermediate=False)
    np.testing.assert_allclose(pr["precision"], precision[:-1][::-1])
    np.testing.assert_allclose(pr["recall"], recall[:-1][::-1])


def test_curve_tables_are_downsampled(random_df):
    roc = ev.roc_curve_table(random_df, prob_col="p_click", max_points=20)
    assert 10 <= len(roc) <= 21
    assert roc["fpr"].is_monotonic_increasing and roc["tpr"].is_monotonic_increasing
    assert roc["tpr"].iloc[-1] == 1.0 and roc["fpr"].iloc[-1] == 1.0


# ------------------------------------------------------------------------------------------------
# Coefficients
# ------------------------------------------------------------------------------------------------


def test_top_coefficients_names_and_order():
    coefficients = [0.1, -2.0, 0.5, 3.0, -0.5]
    table = ev.top_coefficients(coefficients, ["a", "b", None], n=4)
    assert table["index"].tolist() == [3, 1, 2, 4]
    assert table["feature"].tolist() == ["feature_3", "b", "feature_2", "feature_4"]
    np.testing.assert_allclose(table["coefficient"], [3.0, -2.0, 0.5, -0.5])
    np.testing.assert_allclose(table["odds_ratio"], np.exp([3.0, -2.0, 0.5, -0.5]))


def test_top_coefficients_reads_a_model_with_sparse_coefficients():
    from pyspark.ml.linalg import Vectors

    # What LogisticRegressionModel.coefficients is on hashed features: a SparseVector.
    model = SimpleNamespace(coefficients=Vectors.sparse(2**10, {3: -0.2, 700: 1.5, 1000: -0.9}))
    names = ["noise", "strong", "weak", "site_category=50e219e0"]
    table = ev.top_coefficients(model, names, n=3)
    assert table["index"].tolist() == [700, 1000, 3]
    assert table["feature"].tolist() == ["feature_700", "feature_1000", "site_category=50e219e0"]
    np.testing.assert_allclose(table["coefficient"], [1.5, -0.9, -0.2])
    assert len(ev.top_coefficients(model, names, n=5000)) == 2**10


def test_top_coefficients_names_collisions_from_a_mapping():
    # Index 2 holds two levels (a hash collision): both are listed, in the order given.
    names = {2: ["pub_id=a", "C14=9"], 0: "C1=1005"}
    table = ev.top_coefficients([0.3, 0.0, -1.0, 0.2], names, n=3)
    assert table["index"].tolist() == [2, 0, 3]
    assert table["feature"].tolist() == ["pub_id=a | C14=9", "C1=1005", "feature_3"]
    assert table["shared_by"].tolist() == [2, 1, 0]


def test_the_tuning_evaluator_scores_as_scikit_learn(spark):
    rng = np.random.default_rng(7)
    y = rng.integers(0, 2, 300).tolist()
    p = np.round(rng.random(300), 2).tolist()  # ties
    df = spark.createDataFrame(list(zip(y, p)), ["label", "p"])
    by_log_loss = ev.MetricEvaluator("logLoss", prob_col="p")
    by_auc = ev.MetricEvaluator("areaUnderROC", prob_col="p")
    clipped = np.clip(p, 1e-15, 1 - 1e-15)  # 0.0 and 1.0 occur; both clip at 1e-15
    assert by_log_loss.evaluate(df) == pytest.approx(log_loss(y, clipped), rel=1e-12)
    assert by_auc.evaluate(df) == pytest.approx(roc_auc_score(y, p), abs=1e-12)
    assert (by_log_loss.isLargerBetter(), by_auc.isLargerBetter()) == (False, True)
    with pytest.raises(CtrLabError, match="Fix: use one of logLoss, areaUnderROC"):
        ev.MetricEvaluator("accuracy")


def test_constant_predictor_matches_scikit_learn_and_needs_training_rows(spark):
    train = spark.createDataFrame([(1,), (0,), (0,), (1,), (0,)], "label int")
    test = spark.createDataFrame([(1,), (0,), (0,)], "label int")
    got = ev.constant_result(train, test)
    expected = log_loss([1, 0, 0], [0.4] * 3, labels=[0, 1])
    assert got["rate"] == pytest.approx(0.4)
    assert got["log_loss"] == pytest.approx(expected, abs=1e-12)
    assert (got["auc"], got["test_rows"]) == (0.5, 3)
    with pytest.raises(ev.EvaluationError, match=r"no training rows.*Fix"):
        ev.constant_result(spark.createDataFrame([], "label int"), test)
