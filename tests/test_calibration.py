"""No-relation calibration: the margin rule, and the margin search against a brute-force grid on
synthetic label scores."""

from __future__ import annotations

import random

import pytest

from relcli.calibration import calibrate, decide
from relcli.errors import UserError

NEG = "no_relation"
LABELS = ["per:a", "per:b", "org:c", NEG]


def test_decide_raises_the_negative_by_the_margin():
    scores = {"per:a": 0.5, "per:b": 0.2, NEG: 0.3}
    assert decide(scores, NEG) == "per:a"
    assert decide(scores, NEG, 0.19) == "per:a"
    assert decide(scores, NEG, 0.2) == NEG  # a tie goes to the negative
    assert decide(scores, NEG, -1.0) == "per:a"
    assert decide({NEG: -3.0}, NEG, -100) == NEG  # nothing else to choose
    assert decide({"per:a": -1.0, "per:b": -1.0, NEG: -5.0}, NEG) == "per:a"  # first listed among equals


def synthetic(n: int, seed: int) -> list[dict]:
    """A mostly negative split whose scorer is over-confident in positives: scores are
    probabilities, the gold label gets a bonus, and positives get a bias the margin must undo."""
    rng = random.Random(seed)
    records = []
    for i in range(n):
        gold = rng.choice(LABELS[:3]) if rng.random() < 0.2 else NEG
        raw = {label: rng.random() + (0.8 if label == gold else 0.0) + (0.5 if label != NEG else 0.0) for label in LABELS}
        total = sum(raw.values())
        scores = {label: round(v / total, 6) for label, v in raw.items()}
        records.append({"id": str(i), "relation": gold, "predicted": decide(scores, NEG),
                        "explain": {"label_scores": scores}})
    return records


def micro_f1(records, margin: float) -> float:
    predicted = [decide(r["explain"]["label_scores"], NEG, margin) for r in records]
    correct = sum(p == r["relation"] != NEG for p, r in zip(predicted, records))
    guessed = sum(p != NEG for p in predicted)
    gold = sum(r["relation"] != NEG for r in records)
    p = correct / guessed if guessed else 1.0
    r = correct / gold if gold else 0.0
    return 100 * 2 * p * r / (p + r) if p + r else 0.0


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_the_margin_found_is_as_good_as_the_best_on_a_fine_grid(seed):
    records = synthetic(400, seed)
    result = calibrate(iter(records))
    assert result["negative"] == NEG and result["n"] == 400
    assert result["before"]["f1"] == pytest.approx(micro_f1(records, 0.0))
    assert result["given"] == result["before"]  # the predictions are the argmax of the scores
    grid = max(micro_f1(records, m / 1000) for m in range(-500, 501))
    assert result["after"]["f1"] == pytest.approx(micro_f1(records, result["margin"]))  # what extract will do
    assert result["after"]["f1"] >= grid - 1e-9
    assert result["after"]["f1"] > result["before"]["f1"] + 5  # the bias is worth undoing
    assert result["margin"] > 0


def test_a_well_calibrated_scorer_keeps_a_margin_near_zero():
    records = [{"id": str(i), "relation": gold, "explain": {"label_scores": {"per:a": a, NEG: 1 - a}}}
               for i, (gold, a) in enumerate([("per:a", 0.9), ("per:a", 0.6), (NEG, 0.4), (NEG, 0.1)])]
    result = calibrate(records)
    assert result["after"]["f1"] == 100.0 and -0.2 < result["margin"] < 0.2 and "given" not in result


def test_kinds_of_bad_input():
    with pytest.raises(UserError, match="no explain.label_scores"):
        calibrate([{"id": "1", "relation": NEG, "predicted": NEG}])
    with pytest.raises(UserError, match="no score for the negative label 'no_relation'"):
        calibrate([{"id": "1", "relation": "per:a", "explain": {"label_scores": {"per:a": 1.0}}}])
    with pytest.raises(UserError, match="finite numbers"):
        calibrate([{"id": "1", "relation": NEG, "explain": {"label_scores": {NEG: "high"}}}])
    with pytest.raises(UserError, match="no predictions"):
        calibrate([])
    # The negative label comes from the scores (SemEval's Other) unless given.
    other = [{"id": "1", "relation": "Other", "explain": {"label_scores": {"Cause-Effect(e1,e2)": 0.6, "Other": 0.4}}}]
    assert calibrate(other)["negative"] == "Other"
