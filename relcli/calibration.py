"""No-relation calibration: a margin added to the negative label's score before the argmax.

On data where most pairs have no relation, a model's best positive label often wins narrowly over
the negative one; raising the negative label's score by a margin M trades recall for precision.
``decide`` applies a margin to one record's label scores; ``calibrate`` reads predictions that carry
``explain.label_scores`` (``relcli extract --explain``: log-probabilities for a generator,
probabilities for a classifier, vote scores for the kNN vote) and finds the margin that maximises
the TACRED micro-F1 (negative excluded).

The decision rule: the negative label wins when its score plus M is at least the best other score.
So a record whose best positive label beats the negative by d is labelled positive exactly when
d > M, F1 changes only at the records' d values, and the search tries every gap between two
consecutive d values (its midpoint) and one value beyond each end; among equal F1 the margin
nearest 0 wins. A margin found on a split and scored on the same split is optimistic: calibrate on
a held-out part of the training data, or say that it was tuned on dev.
"""

from __future__ import annotations

import bisect
import math
from typing import Any, Iterable

from relcli.records import Record, RecordError


def decide(scores: dict[str, float], negative: str, margin: float = 0.0) -> str:
    """The label of the highest score once ``margin`` is added to the negative label's (ties go to
    the negative; among other labels, to the first listed)."""
    best = max((label for label in scores if label != negative), key=scores.__getitem__, default=None)
    if best is None or scores.get(negative, -math.inf) + margin >= scores[best]:
        return negative
    return best


def _scores(record: Record) -> dict[str, float]:
    scores = (record.get("explain") or {}).get("label_scores") if isinstance(record.get("explain"), dict) else None
    if not isinstance(scores, dict) or not scores:
        raise RecordError(f"record {record.get('id')!r} has no explain.label_scores (predict with --explain)")
    if not all(isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v) for v in scores.values()):
        raise RecordError(f"record {record.get('id')!r}: explain.label_scores must map labels to finite numbers")
    return scores


def _f1(correct: int, guessed: int, gold: int) -> dict[str, Any]:
    from relcli.scoring import prf

    return prf(correct, guessed, gold, empty_precision=100.0)


def calibrate(records: Iterable[Record], negative: str | None = None) -> dict[str, Any]:
    """The negative margin that maximises micro-F1 on ``records`` (gold ``relation`` and
    ``explain.label_scores``; ``predicted`` too, when present, is scored as given).

    Returns ``{"negative", "n", "margin", "given" (when every record has ``predicted``),
    "before" (the argmax of the label scores, margin 0), "after" (at the margin)}``, the last three
    TACRED micro P/R/F1 dicts.
    """
    from relcli.labels import negative_label

    gaps: list[tuple[float, bool]] = []  # (best positive score - negative score, best positive is gold)
    gold = n = given_correct = given_guessed = 0
    given = True
    for record in records:
        scores, label = _scores(record), record.get("relation")
        if label is None:
            raise RecordError(f"record {record.get('id')!r} has no gold relation")
        if negative is None:
            negative = negative_label([*scores, label]) or "no_relation"
        if negative not in scores:
            raise RecordError(f"record {record.get('id')!r}: its label scores have no score for the negative label {negative!r}")
        n += 1
        gold += label != negative
        predicted = record.get("predicted")
        given = given and predicted is not None
        given_guessed += predicted not in (None, negative)
        given_correct += predicted == label != negative
        best = decide(scores, negative, -math.inf)
        if best != negative:
            gaps.append((scores[best] - scores[negative], best == label))
    if n == 0:
        raise RecordError("no predictions to calibrate on")
    gaps.sort()
    # Candidate margins: below every gap (all positives kept), each midpoint, above every gap.
    values = sorted({d for d, _ in gaps})
    candidates = [0.0] + ([values[0] - 1e-6, values[-1] + 1e-6] if values else [])
    candidates += [(a + b) / 2 for a, b in zip(values, values[1:])]

    # Gaps sorted once: the records with a gap <= margin turn negative, the hits among the rest count.
    ds = [d for d, _ in gaps]
    hits_from = [0] * (len(gaps) + 1)
    for i in range(len(gaps) - 1, -1, -1):
        hits_from[i] = hits_from[i + 1] + gaps[i][1]

    def at(margin: float) -> dict[str, Any]:
        first = bisect.bisect_right(ds, margin)
        return _f1(hits_from[first], len(gaps) - first, gold)

    # Rounded as printed, so that the margin a user passes on is the one scored here.
    best = round(max(candidates, key=lambda m: (round(at(m)["f1"], 9), -abs(m))), 6)
    result = {"negative": negative, "n": n, "margin": best}
    if given:
        result["given"] = _f1(given_correct, given_guessed, gold)
    result["before"] = at(0.0)
    result["after"] = at(best)
    return result
