"""Metrics computed in Spark agree with scikit-learn."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.metrics import log_loss

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
