"""Plots return a matplotlib Figure with the expected lines, bars and labels, and save to PNG."""

from __future__ import annotations

import os

import pytest

pytest.importorskip("matplotlib")  # the PySpark 4 test environment has no matplotlib
os.environ.setdefault("MPLBACKEND", "Agg")

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from matplotlib.figure import Figure

import ctr_lab.evaluate as ev
import ctr_lab.plots as cp


@pytest.fixture(autouse=True)
def _close_figures():
    yield
    plt.close("all")


@pytest.fixture(scope="module")
def predictions_df(spark):
    """1,500 predictions rounded to 2 decimals (ties), about 20% clicks."""
    rng = np.random.default_rng(11)
    p = np.round(rng.beta(2, 7, 1500), 2)
    y = (rng.uniform(size=1500) < p).astype(int)
    rows = [(int(a), float(b)) for a, b in zip(y, p)]
    return spark.createDataFrame(rows, "label int, p_click double").cache()


def _check(fig, tmp_path, name, xlabel_has, ylabel_has):
    assert isinstance(fig, Figure)
    ax = fig.axes[0]
    assert xlabel_has.lower() in ax.get_xlabel().lower()
    assert ylabel_has.lower() in ax.get_ylabel().lower()
    assert ax.get_title()
    path = tmp_path / f"{name}.png"
    fig.savefig(path)
    assert path.stat().st_size > 1000
    return ax


def test_roc_curve(predictions_df, tmp_path):
    fig = cp.roc_curve(predictions_df, prob_col="p_click", max_points=50, auc=0.7)
    ax = _check(fig, tmp_path, "roc", "false positive rate", "true positive rate")
    assert len(ax.lines) == 2  # curve + chance diagonal
    curve = ax.lines[0]
    assert len(curve.get_xdata()) <= 51
    assert "AUC = 0.7000" in curve.get_label()
    assert ax.get_xlim() == (0.0, 1.0)


def test_pr_curve_on_given_axes(predictions_df, tmp_path):
    fig, axes = plt.subplots(1, 2)
    returned = cp.pr_curve(predictions_df, prob_col="p_click", ax=axes[1], average_precision=0.5)
    assert returned is fig
    assert len(axes[0].lines) == 0 and len(axes[1].lines) == 2
    baseline = axes[1].lines[1]
    ctr = predictions_df.agg({"label": "avg"}).first()[0]
    assert baseline.get_ydata()[0] == pytest.approx(ctr)
    assert "AP = 0.5000" in axes[1].lines[0].get_label()
    assert "recall" in axes[1].get_xlabel().lower()
    fig.savefig(tmp_path / "pr.png")


def test_calibration(tmp_path):
    table = pd.DataFrame(
        {"mean_predicted": [0.05, 0.15, 0.3], "observed_rate": [0.04, 0.18, 0.25], "count": [5] * 3}
    )
    ax = _check(cp.calibration(table), tmp_path, "cal", "predicted", "observed click rate")
    assert len(ax.lines) == 2
    assert ax.get_xlim()[1] == pytest.approx(0.33)


def test_precision_recall_vs_threshold(tmp_path):
    table = pd.DataFrame(
        {"threshold": [0.1, 0.2, 0.5], "precision": [0.2, 0.28, 0.55], "recall": [0.9, 0.5, 0.03]}
    )
    ax = _check(cp.precision_recall_vs_threshold(table), tmp_path, "thr", "threshold", "precision")
    assert [line.get_label() for line in ax.lines] == ["precision", "recall"]


def test_lift_from_a_real_lift_table(predictions_df, tmp_path):
    table = ev.lift_table(predictions_df, deciles=10, prob_col="p_click")
    ax = _check(cp.lift(table), tmp_path, "lift", "decile", "lift")
    assert len(ax.patches) == len(table)
    assert len(ax.lines) == 1  # the lift-1 line


def test_ctr_by_value_keeps_the_top_values(tmp_path):
    table = pd.DataFrame(
        {
            "value": ["a", "b", "c", "d"],
            "impressions": [100, 400, 50, 300],
            "clicks": [10, 80, 5, 30],
            "click_rate": [0.1, 0.2, 0.1, 0.1],
        }
    )
    fig = cp.ctr_by_value(table, column="banner_pos", top=3, overall_ctr=0.14)
    ax = _check(fig, tmp_path, "ctr", "banner_pos", "click rate")
    assert len(ax.patches) == 3
    assert [t.get_text() for t in ax.get_xticklabels()] == ["b", "d", "a"]
    assert len(ax.lines) == 1


def test_ctr_by_value_reads_a_click_rate_by_table(tmp_path):
    # ctr_lab.data.click_rate_by names the value column after the data column.
    table = pd.DataFrame(
        {"C1": [1005, 1002], "impressions": [9, 1], "clicks": [2, 1], "click_rate": [0.22, 1.0]}
    )
    ax = _check(cp.ctr_by_value(table, column="C1"), tmp_path, "c1", "C1", "click rate")
    assert [t.get_text() for t in ax.get_xticklabels()] == ["1005", "1002"]
    assert len(ax.patches) == 2 and len(ax.lines) == 0


def test_ctr_by_value_rejects_a_wrong_table():
    with pytest.raises(ev.EvaluationError, match="click_rate"):
        cp.ctr_by_value(pd.DataFrame({"value": [1], "impressions": [1], "clicks": [0]}))


def test_top_coefficients(tmp_path):
    table = ev.top_coefficients([0.5, -2.0, 1.0], ["site_category=x", "banner_pos=1"], n=3)
    ax = _check(cp.top_coefficients(table), tmp_path, "coef", "coefficient", "feature")
    assert len(ax.patches) == 3
    labels = [t.get_text() for t in ax.get_yticklabels()]
    assert labels[-1] == "banner_pos=1"  # the largest magnitude at the top
    assert "feature_2" in labels
