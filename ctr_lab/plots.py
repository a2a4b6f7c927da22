"""Charts of model quality and click rates, drawn with matplotlib from small tables.

Every function draws on a new pyplot Figure, or on the ``ax`` it is given, and returns the
Figure; none calls ``plt.show()``, and importing this module neither imports pyplot nor chooses a
matplotlib backend. In a notebook, assign the result (``fig = cp.lift(table)``) so the inline
backend shows the Figure once; on EMR (sparkmagic) follow the call with ``%matplot plt``.

The tables come from :mod:`ctr_lab.evaluate` (or :func:`ctr_lab.data.click_rate_by` for
:func:`ctr_by_value`). The ROC and precision-recall curves are computed in Spark from the
predictions DataFrame, grouped by score, and at most ``max_points`` points reach the driver.

Examples
--------
>>> import ctr_lab.evaluate as ev
>>> import ctr_lab.plots as cp
>>> predictions_df = spark.createDataFrame(
...     [(1, 0.9), (0, 0.8), (1, 0.8), (0, 0.1)], ["label", "probability"]
... )
>>> fig = cp.roc_curve(predictions_df)
>>> fig.savefig(tmp_path / "roc.png")
>>> fig = cp.precision_recall_vs_threshold(ev.threshold_table(predictions_df))
>>> fig.axes[0].get_title()
'Precision and recall by threshold'
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Optional, Tuple

import pandas as pd

from ctr_lab import evaluate as ev

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure


def _figure_and_axes(ax: Optional[Axes], figsize: Tuple[float, float]) -> Tuple[Figure, Axes]:
    """The Figure of ``ax``, or a new pyplot Figure with one Axes.

    The Figure is made through pyplot so that ``%matplot plt`` (sparkmagic on EMR) and the inline
    backend find it; close it with ``plt.close(fig)`` when drawing many.
    """
    if ax is not None:
        return ax.get_figure(), ax  # type: ignore[return-value]
    import matplotlib.pyplot as plt

    fig, new_ax = plt.subplots(figsize=figsize, layout="constrained")
    return fig, new_ax


def _check_table(table: pd.DataFrame, columns: Tuple[str, ...], what: str) -> None:
    missing = [c for c in columns if c not in table.columns]
    if missing:
        raise ev.EvaluationError(
            f"{what}: the table lacks column(s) {missing} (columns: {list(table.columns)}). "
            f"Fix: pass the table the matching ctr_lab.evaluate function returns"
        )


def roc_curve(
    df: Any,
    label_col: str = "label",
    prob_col: str = "probability",
    ax: Optional[Axes] = None,
    max_points: int = 1000,
    auc: Optional[float] = None,
) -> Figure:
    """The ROC curve of the predictions, with the chance diagonal and the exact AUC.

    Parameters
    ----------
    df
        A Spark DataFrame of predictions (see :func:`ctr_lab.evaluate.roc_curve_table`).
    label_col, prob_col
        Column names; ``prob_col`` may be Spark ML's ``probability`` vector.
    ax
        Axes to draw on; a new Figure when None.
    max_points
        At most this many curve points are brought to the driver.
    auc
        The AUC for the legend; computed exactly (one more Spark job) when None.

    Returns
    -------
    matplotlib.figure.Figure
        Two lines: the curve and the diagonal.

    Examples
    --------
    >>> df = spark.createDataFrame([(1, 0.9), (0, 0.8), (1, 0.8), (0, 0.1)], ["label", "p"])
    >>> fig = roc_curve(df, prob_col="p")
    >>> [line.get_label() for line in fig.axes[0].get_lines()]
    ['model (AUC = 0.8750)', 'chance (AUC = 0.5)']
    """
    points = ev.roc_curve_table(df, label_col, prob_col, max_points=max_points)
    if auc is None:
        auc = ev.roc_auc(df, label_col, prob_col)
    fig, ax = _figure_and_axes(ax, (5.0, 5.0))
    ax.plot(points["fpr"], points["tpr"], label=f"model (AUC = {auc:.4f})")
    ax.plot([0, 1], [0, 1], linestyle="--", color="grey", label="chance (AUC = 0.5)")
    ax.set(
        xlim=(0, 1),
        ylim=(0, 1.01),
        xlabel="False positive rate (non-clicks predicted as clicks)",
        ylabel="True positive rate (recall of clicks)",
        title="ROC curve",
    )
    ax.set_aspect("equal")
    ax.legend(loc="lower right")
    return fig


def pr_curve(
    df: Any,
    label_col: str = "label",
    prob_col: str = "probability",
    ax: Optional[Axes] = None,
    max_points: int = 1000,
    average_precision: Optional[float] = None,
) -> Figure:
    """The precision-recall curve (steps, as average precision sums it) and the CTR baseline.

    A model that guesses at random has precision equal to the click rate at every recall: the
    horizontal baseline.

    Returns
    -------
    matplotlib.figure.Figure
        Two lines: the curve and the baseline.

    Examples
    --------
    >>> df = spark.createDataFrame([(1, 0.9), (0, 0.8), (1, 0.8), (0, 0.1)], ["label", "p"])
    >>> fig = pr_curve(df, prob_col="p")
    >>> [line.get_label() for line in fig.axes[0].get_lines()]
    ['model (AP = 0.8333)', 'random (CTR = 0.500)']
    """
    points = ev.pr_curve_table(df, label_col, prob_col, max_points=max_points)
    if average_precision is None:
        average_precision = ev.pr_auc(df, label_col, prob_col)
    ctr = float(points.attrs["ctr"])
    fig, ax = _figure_and_axes(ax, (5.5, 4.5))
    recall = [0.0, *points["recall"]]
    precision = [float(points["precision"].iloc[0]), *points["precision"]]
    ax.plot(recall, precision, drawstyle="steps-pre", label=f"model (AP = {average_precision:.4f})")
    ax.plot([0, 1], [ctr, ctr], linestyle="--", color="grey", label=f"random (CTR = {ctr:.3f})")
    ax.set(
        xlim=(0, 1),
        ylim=(0, 1.01),
        xlabel="Recall (share of clicks found)",
        ylabel="Precision (clicks among predicted clicks)",
        title="Precision-recall curve",
    )
    ax.legend(loc="upper right")
    return fig


def calibration(table: pd.DataFrame, ax: Optional[Axes] = None) -> Figure:
    """Observed click rate against mean predicted probability per bin (a reliability diagram).

    Parameters
    ----------
    table
        From :func:`ctr_lab.evaluate.calibration_table`.
    ax
        Axes to draw on; a new Figure when None.

    Returns
    -------
    matplotlib.figure.Figure
        Two lines: the model (a marker per bin) and the perfectly calibrated diagonal. Axes run
        to a little beyond the largest probability, so low CTRs are not squeezed into a corner.

    Examples
    --------
    A table as :func:`ctr_lab.evaluate.calibration_table` returns it:

    >>> table = pd.DataFrame({"mean_predicted": [0.05, 0.2], "observed_rate": [0.04, 0.25]})
    >>> fig = calibration(table)
    >>> fig.axes[0].get_xlim()
    (0.0, 0.275)
    """
    _check_table(table, ("mean_predicted", "observed_rate"), "calibration")
    fig, ax = _figure_and_axes(ax, (5.0, 5.0))
    top = float(max(table["mean_predicted"].max(), table["observed_rate"].max()))
    limit = min(1.0, max(0.05, top * 1.1))
    ax.plot([0, limit], [0, limit], linestyle="--", color="grey", label="perfectly calibrated")
    ax.plot(table["mean_predicted"], table["observed_rate"], marker="o", label="model")
    ax.set(
        xlim=(0, limit),
        ylim=(0, limit),
        xlabel="Mean predicted click probability",
        ylabel="Observed click rate",
        title="Calibration",
    )
    ax.legend(loc="upper left")
    return fig


def precision_recall_vs_threshold(table: pd.DataFrame, ax: Optional[Axes] = None) -> Figure:
    """Precision and recall of clicks against the threshold (the course's threshold plot).

    Parameters
    ----------
    table
        From :func:`ctr_lab.evaluate.threshold_table`.

    Returns
    -------
    matplotlib.figure.Figure
        Two lines: precision and recall.

    Examples
    --------
    A table as :func:`ctr_lab.evaluate.threshold_table` returns it:

    >>> table = pd.DataFrame(
    ...     {"threshold": [0.1, 0.5], "precision": [0.43, 0.67], "recall": [1.0, 0.67]}
    ... )
    >>> fig = precision_recall_vs_threshold(table)
    >>> [line.get_label() for line in fig.axes[0].get_lines()]
    ['precision', 'recall']
    """
    _check_table(table, ("threshold", "precision", "recall"), "precision_recall_vs_threshold")
    fig, ax = _figure_and_axes(ax, (6.0, 4.0))
    ax.plot(table["threshold"], table["precision"], marker="o", label="precision")
    ax.plot(table["threshold"], table["recall"], marker="s", label="recall")
    ax.set(
        xlim=(0, float(table["threshold"].max()) * 1.05 or 1.0),
        ylim=(0, 1.01),
        xlabel="Threshold (predict a click when p > threshold)",
        ylabel="Precision / recall of clicks",
        title="Precision and recall by threshold",
    )
    ax.grid(True, alpha=0.3)
    ax.legend(loc="best")
    return fig


def lift(table: pd.DataFrame, ax: Optional[Axes] = None) -> Figure:
    """Lift per decile of predicted probability (decile 1 = highest), with the no-model line.

    Parameters
    ----------
    table
        From :func:`ctr_lab.evaluate.lift_table`.

    Returns
    -------
    matplotlib.figure.Figure
        One bar per decile and one line at lift 1.

    Examples
    --------
    A table as :func:`ctr_lab.evaluate.lift_table` returns it:

    >>> fig = lift(pd.DataFrame({"decile": [1, 2], "lift": [2.0, 0.0]}))
    >>> [bar.get_height() for bar in fig.axes[0].patches]
    [2.0, 0.0]
    """
    _check_table(table, ("decile", "lift"), "lift")
    fig, ax = _figure_and_axes(ax, (6.0, 4.0))
    ax.bar(table["decile"].astype(int), table["lift"], color="tab:blue", label="lift")
    ax.axhline(1.0, linestyle="--", color="grey", label="no model (lift 1)")
    ax.set(
        xticks=list(table["decile"].astype(int)),
        ylim=(0, max(1.0, float(table["lift"].max())) * 1.1),
        xlabel="Decile of predicted probability (1 = highest)",
        ylabel="Lift (click rate / overall CTR)",
        title="Lift by decile",
    )
    ax.legend(loc="upper right")
    return fig


def ctr_by_value(
    table: pd.DataFrame,
    ax: Optional[Axes] = None,
    column: Optional[str] = None,
    top: Optional[int] = 20,
    overall_ctr: Optional[float] = None,
) -> Figure:
    """Click rate per value of a column, as bars (largest impressions first).

    Parameters
    ----------
    table
        Columns ``value``, ``impressions``, ``clicks``, ``click_rate``. The values may instead be
        in a column named ``column``, as in ``ctr_lab.data.click_rate_by(...).toPandas()``.
    ax
        Axes to draw on; a new Figure when None.
    column
        The name of the column the values come from, for the title and axis label (and the
        column of values when the table has no ``value`` column).
    top
        Keep only the ``top`` values with the most impressions; None keeps all.
    overall_ctr
        Draw a horizontal line at this CTR (for example the data's overall click rate).

    Returns
    -------
    matplotlib.figure.Figure
        One bar per value (and one line when ``overall_ctr`` is given).

    Examples
    --------
    A table as ``ctr_lab.data.click_rate_by(df, "banner_pos").toPandas()`` returns it:

    >>> rates = pd.DataFrame(
    ...     {"banner_pos": [1, 0], "impressions": [300, 700], "clicks": [60, 105]}
    ... ).assign(click_rate=lambda t: t.clicks / t.impressions)
    >>> fig = ctr_by_value(rates, column="banner_pos", overall_ctr=0.165)
    >>> [t.get_text() for t in fig.axes[0].get_xticklabels()]
    ['0', '1']
    """
    value_col = "value" if "value" in table.columns or column is None else column
    _check_table(table, (value_col, "impressions", "clicks", "click_rate"), "ctr_by_value")
    shown = table.sort_values("impressions", ascending=False, kind="stable")
    if top is not None:
        shown = shown.head(top)
    labels = [str(v) for v in shown[value_col]]
    fig, ax = _figure_and_axes(ax, (max(5.0, 0.45 * len(labels) + 2.0), 4.0))
    ax.bar(range(len(labels)), shown["click_rate"], color="tab:blue")
    ax.set_xticks(range(len(labels)))
    rotate = len(labels) > 6
    ax.set_xticklabels(labels, rotation=45 if rotate else 0, ha="right" if rotate else "center")
    if overall_ctr is not None:
        ax.axhline(
            overall_ctr, linestyle="--", color="grey", label=f"overall CTR {overall_ctr:.3f}"
        )
        ax.legend(loc="upper right")
    name = column or "value"
    highest = float(shown["click_rate"].max()) if len(shown) else 0.0
    ax.set(
        ylim=(0, min(1.0, max(highest, overall_ctr or 0.0) * 1.15) or 1.0),
        xlabel=name,
        ylabel="Click rate",
        title=f"Click rate by {name}",
    )
    return fig


def top_coefficients(table: pd.DataFrame, ax: Optional[Axes] = None) -> Figure:
    """Horizontal bars of the largest coefficients, positive (more clicks) in one colour.

    Parameters
    ----------
    table
        From :func:`ctr_lab.evaluate.top_coefficients`; the largest is drawn at the top.

    Returns
    -------
    matplotlib.figure.Figure
        One bar per coefficient.

    Examples
    --------
    >>> table = ev.top_coefficients([0.5, -2.0, 1.0], ["banner_pos=0", "C1=1005", "C1=1002"])
    >>> fig = top_coefficients(table)
    >>> [t.get_text() for t in fig.axes[0].get_yticklabels()]
    ['banner_pos=0', 'C1=1002', 'C1=1005']
    """
    _check_table(table, ("feature", "coefficient"), "top_coefficients")
    fig, ax = _figure_and_axes(ax, (7.0, max(3.0, 0.3 * len(table) + 1.0)))
    rows = table.iloc[::-1]
    colors = ["tab:red" if c > 0 else "tab:blue" for c in rows["coefficient"]]
    ax.barh([str(f) for f in rows["feature"]], rows["coefficient"], color=colors)
    ax.axvline(0.0, color="black", linewidth=0.8)
    ax.set(
        xlabel="Coefficient (log-odds of a click; red raises, blue lowers)",
        ylabel="Feature",
        title="Largest logistic regression coefficients",
    )
    return fig
