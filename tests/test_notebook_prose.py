"""The notebooks' prose against their own printed outputs.

Each test reads numbers a notebook printed (its committed outputs, which nbval keeps equal to
what the code prints) and checks what its Markdown says about them, with the reference numbers
worked out here by hand. JSON only: no Spark, no kernel.
"""

from __future__ import annotations

import json
import math
import re
from pathlib import Path
from typing import Dict, List

import pytest

from ctr_lab.tools.casestudy import ORDER

NOTEBOOKS = Path(__file__).resolve().parents[1] / "notebooks"

#: Above this expected calibration error a model's probabilities are not "calibrated": 0.02 is
#: about an eighth of the Avazu click rate (0.17).
CALIBRATED_ECE = 0.02


def _cells(name: str) -> List[dict]:
    return json.loads((NOTEBOOKS / name).read_text(encoding="utf-8"))["cells"]


def _text(value) -> str:
    return "".join(value) if isinstance(value, list) else value


def _markdown(name: str) -> List[str]:
    return [_text(c["source"]) for c in _cells(name) if c["cell_type"] == "markdown"]


def _printed(cell: dict) -> str:
    """What a code cell printed: its streams and the plain-text form of its displays."""
    parts = []
    for output in cell.get("outputs", []):
        parts.append(_text(output.get("text", "")))
        parts.append(_text(output.get("data", {}).get("text/plain", "")))
    return "\n".join(parts)


def _all_printed(name: str) -> str:
    return "\n".join(_printed(c) for c in _cells(name) if c["cell_type"] == "code")


def _number(pattern: str, text: str, what: str) -> float:
    found = re.search(pattern, text, re.M)
    assert found, f"{what}: no match for {pattern!r} in the printed outputs"
    return float(found.group(1).replace(",", ""))


def _sentences(markdown: str) -> List[str]:
    """Sentences and list items, one line each."""
    flat = re.sub(r"\n(?!\s*(?:[-*]|\d+\.)\s)\s*", " ", markdown)
    return [s for line in flat.splitlines() for s in re.split(r"(?<=[.!?])\s+", line) if s]


def _paragraphs(name: str) -> List[str]:
    return [p for md in _markdown(name) for p in re.split(r"\n\s*\n", md)]


def _numbers(text: str) -> List[float]:
    """Every decimal number in ``text`` (``0.4554``, ``4,301``), as floats."""
    return [float(n.replace(",", "")) for n in re.findall(r"\d[\d,]*\.?\d*", text)]


def _states(paragraph: str, value: float, places: int) -> bool:
    return any(abs(n - round(value, places)) < 0.5 * 10**-places for n in _numbers(paragraph))


def test_log_loss_is_defined_where_it_is_first_used():
    """The first notebook, in course order, that speaks of log loss defines it (its formula in
    Markdown) before the first code cell that computes or prints one."""
    formula = re.compile(r"\\ln\s*p_i.*\\ln\s*\(\s*1\s*-\s*p_i\s*\)", re.S)
    mention = re.compile(r"log[ _]?loss", re.I)

    def text(cell: dict) -> str:
        return _text(cell["source"]) + (_printed(cell) if cell["cell_type"] == "code" else "")

    name = next(n for n in ORDER if any(mention.search(text(c)) for c in _cells(n)))
    for cell in _cells(name):
        source = _text(cell["source"])
        if cell["cell_type"] == "markdown" and formula.search(source) and mention.search(source):
            return
        assert not (cell["cell_type"] == "code" and mention.search(text(cell))), (
            f"{name} computes or prints a log loss before defining it: {text(cell)[:120]!r}"
        )
    pytest.fail(f"{name} speaks of log loss and never defines it")


def _baseline_numbers() -> Dict[str, float]:
    """03's printed counts, and the two constant predictors worked out from them by hand."""
    printed = _all_printed("03_model_building.ipynb")
    rows = _number(r"rows accepted\s+([\d,]+)", printed, "03 load report")
    clicks = _number(r"^\s*clicks\s+([\d,]+)", printed, "03 load report")
    test_neg = _number(r"^0\s+[\d.]+\s+[\d.]+\s+[\d.]+\s+(\d+)\s*$", printed, "03 report")
    test_pos = _number(r"^1\s+[\d.]+\s+[\d.]+\s+[\d.]+\s+(\d+)\s*$", printed, "03 report")
    last_day = re.search(
        r"^last day\s+AUC [\d.]+\s+log loss ([\d.]+)\s+accuracy ([\d.]+)", printed, re.M
    )
    assert last_day, "03 no longer prints its last-day line"
    test_rows = test_neg + test_pos
    p = (clicks - test_pos) / (rows - test_rows)  # the training days' click rate
    r = test_pos / test_rows
    return {
        "model_log_loss": float(last_day.group(1)),
        "model_accuracy": float(last_day.group(2)),
        "constant_log_loss": -(r * math.log(p) + (1 - r) * math.log(1 - p)),
        "no_click_accuracy": test_neg / test_rows,
    }


def test_03_states_that_the_course_model_loses_to_constant_predictions():
    """03's lesson, from its own outputs: the course's model is worse than predicting the
    training click rate for every row, and less accurate than predicting no click."""
    n = _baseline_numbers()
    assert n["model_log_loss"] > n["constant_log_loss"], n  # what the prose must then say
    assert n["model_accuracy"] < n["no_click_accuracy"], n
    paragraphs = _paragraphs("03_model_building.ipynb")

    def said(a: float, b: float, words: str) -> bool:
        return any(
            _states(p, a, 4) and _states(p, b, 4) and re.search(words, p) for p in paragraphs
        )

    assert said(n["model_log_loss"], n["constant_log_loss"], r"\bworse\b"), (
        f"03 never says its model's log loss {n['model_log_loss']:.4f} is worse than the "
        f"{n['constant_log_loss']:.4f} of predicting the training click rate"
    )
    assert said(n["model_accuracy"], n["no_click_accuracy"], r"\b(less accurate|lower)\b"), (
        f"03 never says its model's accuracy {n['model_accuracy']:.4f} is below the "
        f"{n['no_click_accuracy']:.4f} of predicting no click"
    )


def _claims(sentence: str, word: str) -> bool:
    """Whether ``sentence`` asserts ``word`` (``is calibrated``), rather than denying it."""
    claim = rf"\b(is|are|be|looks?|seems?|stays?)\s+(well[- ]|already\s+)?{word}\b"
    return bool(re.search(claim, sentence, re.I))


@pytest.mark.parametrize("name", ORDER)
def test_no_model_is_called_calibrated_against_its_printed_calibration(name):
    """A notebook may say probabilities are calibrated only if it printed an expected
    calibration error under CALIBRATED_ECE; where it printed one, its prose cites it."""
    printed = _all_printed(name)
    eces = [float(v) for v in re.findall(r"^ECE (\d\.\d+)", printed, re.M)]
    claims = [s for md in _markdown(name) for s in _sentences(md) if _claims(s, "calibrated")]
    if claims:
        assert eces and max(eces) <= CALIBRATED_ECE, (
            f"{name} says {claims[0]!r} but printed ECE {eces or 'nothing'}"
        )
    for ece in eces:
        assert any(_states(p, ece, 4) for p in _paragraphs(name)), (
            f"{name} prints ECE {ece} and its prose never says what that means"
        )


def test_02_does_not_call_sampleBy_exact():
    """02 prints its sample's label counts; when they are not fraction x rows, no sentence
    about the sample calls it exact."""
    name = "02_sampling_and_pipelines.ipynb"
    cells = _cells(name)
    call = next(_text(c["source"]) for c in cells if "stratified_sample(" in _text(c["source"]))
    given = re.search(r"stratified_sample\(\w+, \{([^}]*)\}", call)
    assert given, call
    fractions = {int(k): float(v) for k, v in re.findall(r"(\d):\s*([\d.]+)", given.group(1))}
    printed = _all_printed(name)
    rows = _number(r"rows accepted\s+([\d,]+)", printed, "02 load report")
    clicks = _number(r"^\s*clicks\s+([\d,]+)", printed, "02 load report")
    counts = {int(k): int(v) for k, v in re.findall(r"^\|\s*(\d)\|\s*(\d+)\|$", printed, re.M)}
    assert set(counts) == set(fractions), (counts, fractions)
    expected = {0: fractions[0] * (rows - clicks), 1: fractions[1] * clicks}
    if all(counts[k] == expected[k] for k in counts):
        return  # an exact sample this time: nothing to deny
    exact = re.compile(r"\bexact(ly)?\b", re.I)
    for sentence in (s for md in _markdown(name) for s in _sentences(md)):
        if re.search(r"sampleBy|stratified sample", sentence) and exact.search(sentence):
            assert re.search(r"\bnot,?\s+exact", sentence, re.I), (
                f"{name}: {sentence!r}, but it printed {counts} for expected {expected}"
            )


def _says(name: str, pattern: str) -> bool:
    return any(re.search(pattern, s, re.I) for md in _markdown(name) for s in _sentences(md))


def test_01_what_it_says_of_c14_site_ids_and_c20_is_what_it_printed():
    """01's sentences on the course's other columns, against the counts it printed: most `C14`
    levels rare, one domain and category per site id, `C20`'s `-1` on about half of the rows
    and clicked about as often as the rest."""
    name = "01_exploration.ipynb"
    printed = _all_printed(name)
    levels = _number(r"^C14: ([\d,]+) levels", printed, "01's C14 line")
    rare = _number(r"^C14: [\d,]+ levels, ([\d,]+) of them seen fewer than 10", printed, "01")
    assert _says(name, r"hundreds in this sample, most of them seen fewer than 10 times")
    assert 100 <= levels < 1000 and rare > levels / 2, (levels, rare)

    combos = _number(r"^([\d,]+) combinations of [\d,]+ site ids", printed, "01's site line")
    ids = _number(r"^[\d,]+ combinations of ([\d,]+) site ids", printed, "01's site line")
    assert _says(name, r"each site id comes with one site domain and one site category")
    assert combos == ids, (combos, ids)

    row = r"^\s*{}\s+(\d+)\s+(\d+)\s+([\d.]+)\s*$"
    missing = re.search(row.format(re.escape("-1 (no value)")), printed, re.M)
    coded = re.search(row.format("a code"), printed, re.M)
    assert missing and coded, "01 no longer prints C20's table"
    share = int(missing.group(1)) / (int(missing.group(1)) + int(coded.group(1)))
    assert _says(name, r"about half of the rows, clicked about as often")
    assert 0.4 <= share <= 0.6, share
    ctr_missing, ctr_coded = float(missing.group(3)), float(coded.group(3))
    assert abs(ctr_missing - ctr_coded) < 0.1 * ctr_coded, (ctr_missing, ctr_coded)


def test_05_writes_out_every_prediction_of_the_last_day():
    """05 keeps the predictions it scored: as many rows as its headline's test rows."""
    printed = _all_printed("05_feature_engineering_and_thresholds.ipynb")
    test_rows = _number(r"^recommended: test log loss .*\(([\d,]+) test rows\)", printed, "05")
    written = _number(r"^recommended_last_day_predictions: ([\d,]+) rows", printed, "05")
    assert written == test_rows > 0, (written, test_rows)


def _headlines(name: str) -> Dict[str, Dict[str, float]]:
    from ctr_lab.tools.casestudy import headlines

    return headlines(_cells(name))


def test_04_says_the_random_split_flatters_with_its_own_numbers():
    """04 scores `course_improved` on the course's random 80/20 split and on the last day; its
    prose cites both and calls the random split flattering only when it did flatter."""
    name = "04_model_improvement.ipynb"
    printed = _headlines(name)
    shuffled, last_day = printed["course_improved_random_split"], printed["course_improved"]
    assert shuffled["log_loss"] < last_day["log_loss"] and shuffled["auc"] > last_day["auc"]
    assert any(
        "flatters" in p
        and all(_states(p, v, 4) for v in (*shuffled.values(), last_day["log_loss"]))
        for p in _paragraphs(name)
    ), f"04 never states {shuffled} against {last_day} where it says the split flatters"


def test_04_scores_the_tuned_model_on_the_last_day_and_says_so():
    """The tuned winner is scored on the same last-day rows as the default settings, and the
    prose gives both results."""
    name = "04_model_improvement.ipynb"
    printed = _headlines(name)
    tuned, default = printed["recommended_tuned"], printed["recommended"]
    assert tuned["test_rows"] == default["test_rows"] > 1000
    assert any(
        all(_states(p, v, 4) for v in (tuned["log_loss"], tuned["auc"], default["log_loss"]))
        for p in _paragraphs(name)
    ), f"04's prose never gives the tuned model's last-day {tuned} beside {default}"


def test_03_prints_the_constant_predictor_it_speaks_of():
    """03's printed constant click-rate line is the log loss worked out by hand from its load
    report and classification report."""
    n = _baseline_numbers()
    printed = _headlines("03_model_building.ipynb")["constant_click_rate"]
    assert printed["log_loss"] == pytest.approx(n["constant_log_loss"], abs=6e-5), printed
    assert printed["auc"] == 0.5


@pytest.mark.parametrize("name", ORDER)
def test_every_results_table_has_the_constant_predictor_beside_it(name):
    """Where a notebook prints a model's last-day numbers (a headline line or the grading
    table), it prints the constant click-rate predictor's on the same rows beside them."""
    cells = [c for c in _cells(name) if c["cell_type"] == "code"]
    for cell in cells:
        printed = _printed(cell)
        if "log_loss_vs_baseline_%" in printed:
            assert "constant click rate (" in printed, f"{name}: a grading table without it"
    found = _headlines(name)
    constant = found.pop("constant_click_rate", None)
    if found:
        assert constant, f"{name} prints {sorted(found)} and no constant_click_rate line"
        assert constant["test_rows"] in {v.get("test_rows") for v in found.values()}, found
