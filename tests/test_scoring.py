"""Scorers: hand-computed cases per scheme and property tests against a plain second implementation."""

from __future__ import annotations

from collections import Counter

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from relcli.errors import UserError
from relcli.labels import SEMEVAL
from relcli.records import RecordError, validate_record
from relcli.scoring import INVALID, MISSING, score_records, score_validator

TEXT = "Alice met Bob in Paris."


def span(text, start=None, type=None):
    start = TEXT.index(text) if start is None else start
    return {"text": text, "start": start, "end": start + len(text), "type": type}


def rc(gold, predicted, i=0):
    return {"id": str(i), "text": TEXT, "head": span("Alice"), "tail": span("Bob"), "relation": gold, "predicted": predicted}


def rc_records(pairs):
    return [rc(g, p, i) for i, (g, p) in enumerate(pairs)]


def triplet(head, relation, tail, extra=None):
    """A triplet; ``extra`` adds offsets/types: {"head": {...}, "tail": {...}}."""
    extra = extra or {}
    return {"head": {"text": head, **extra.get("head", {})}, "relation": relation, "tail": {"text": tail, **extra.get("tail", {})}}


def e2e(gold, predicted, i=0):
    return {"id": str(i), "text": TEXT, "triplets": gold, "predicted_triplets": predicted}


def test_tacred_micro_hand_computed():
    result = score_records(rc_records([
        ("per:a", "per:a"), ("per:a", "per:b"), ("per:b", "no_relation"),
        ("no_relation", "per:a"), ("no_relation", "no_relation"), ("no_relation", "garbage"),
    ]))
    assert result["scheme"] == "tacred" and result["negative"] == "no_relation"
    # correct 1; guessed 4 (invalid "garbage" counts as a guess); gold 3
    assert (result["micro"]["correct"], result["micro"]["guessed"], result["micro"]["gold"]) == (1, 4, 3)
    assert result["micro"]["p"] == pytest.approx(25.0)
    assert result["micro"]["r"] == pytest.approx(100 / 3)
    assert result["official"]["f1"] == pytest.approx(2 * 25 * (100 / 3) / (25 + 100 / 3))
    assert result["invalid"] == {"count": 1, "examples": {"garbage": 1}}
    assert result["accuracy"] == pytest.approx(200 / 6)
    assert result["confusion"]["no_relation"] == {"per:a": 1, "no_relation": 1, INVALID: 1}
    assert result["per_relation"]["per:a"] == {"p": 50.0, "r": 50.0, "f1": 50.0, "correct": 1, "guessed": 2, "support": 2}
    # macro over per:a (50) and per:b (0), no_relation excluded
    assert result["macro_f1_all"] == pytest.approx(25.0)


def test_all_negative_predictions_follow_the_official_tacred_scorer():
    result = score_records(rc_records([("per:a", "no_relation"), ("no_relation", "no_relation")]))
    assert (result["micro"]["p"], result["micro"]["r"], result["micro"]["f1"]) == (100.0, 0.0, 0.0)
    assert result["invalid"]["count"] == 0


def test_semeval_official_hand_computed():
    ce12, ce21, cw12, cw21 = "Cause-Effect(e1,e2)", "Cause-Effect(e2,e1)", "Component-Whole(e1,e2)", "Component-Whole(e2,e1)"
    result = score_records(rc_records([
        (ce12, ce12), (ce12, ce21),  # right, then right relation in the wrong direction
        (cw21, "Other"), ("Other", cw12), ("Other", "banana"),
    ]))
    assert result["scheme"] == "semeval" and result["negative"] == "Other"
    official = result["official"]
    assert official["per_relation"]["Cause-Effect"] == {
        "p": 50.0, "r": 50.0, "f1": 50.0, "correct": 1, "guessed": 2, "gold": 2, "wrong_direction": 1}
    assert official["per_relation"]["Component-Whole"]["f1"] == 0.0
    assert list(official["per_relation"]) == ["Cause-Effect", "Component-Whole"]  # relations in the gold only
    assert official["f1"] == pytest.approx(25.0)
    assert result["accuracy"] == pytest.approx(20.0)
    assert result["invalid"]["count"] == 1
    assert result["micro"]["p"] == pytest.approx(25.0) and result["micro"]["r"] == pytest.approx(100 / 3)
    assert result["macro_f1_all"] == pytest.approx(200 / 3 / 4)
    assert result["confusion"] == {ce12: {ce12: 1, ce21: 1}, cw21: {"Other": 1}, "Other": {cw12: 1, INVALID: 1}}


def test_semeval_invalid_label_belongs_to_no_relation():
    # "Cause-Effect" without direction is not a label: it must not count as a Cause-Effect guess.
    with_invalid = score_records(rc_records([("Cause-Effect(e1,e2)", "Cause-Effect(e1,e2)"), ("Other", "Cause-Effect")]))
    as_other = score_records(rc_records([("Cause-Effect(e1,e2)", "Cause-Effect(e1,e2)"), ("Other", "Other")]))
    assert with_invalid["official"]["f1"] == as_other["official"]["f1"] == 100.0


def test_semeval_all_other_and_all_wrong_direction():
    gold = ["Cause-Effect(e1,e2)", "Message-Topic(e2,e1)", "Other"]
    assert score_records(rc_records([(g, "Other") for g in gold]))["official"]["f1"] == 0.0
    flipped = ["Cause-Effect(e2,e1)", "Message-Topic(e1,e2)", "Other"]
    result = score_records(rc_records(zip(gold, flipped)))
    assert result["official"]["f1"] == 0.0 and result["accuracy"] == pytest.approx(100 / 3)


def test_labels_and_negative_options():
    records = rc_records([("per:a", "per:c"), ("no_relation", "per:a")])
    assert score_records(records)["invalid"]["count"] == 1
    assert score_records(records, labels=["per:a", "per:c", "no_relation"])["invalid"]["count"] == 0
    assert score_records(records, negative="per:a")["micro"]["gold"] == 1
    assert score_records(rc_records([("Other", "Other")]), scheme="tacred")["negative"] == "Other"


def test_empty_input():
    result = score_records([])
    assert result["n"] == 0 and result["scheme"] == "tacred"
    assert result["official"]["f1"] == 0.0 and result["accuracy"] == 0.0 and result["per_relation"] == {}
    assert score_records([], scheme="semeval")["official"]["f1"] == 0.0
    assert score_records([], scheme="triplets")["micro"]["f1"] == 0.0


def test_triplets_hand_computed():
    records = [
        e2e([triplet("Alice", "met", "Bob"), triplet("Alice", "in", "Paris")],
            [triplet("Alice", "met", "Bob"), triplet("Alice", "met", "Bob"), triplet("Alice", "lives", "Paris")]),
        e2e([], [triplet("Bob", "met", "Alice")], 1),
    ]
    result = score_records(records)
    assert result["scheme"] == "triplets"
    assert (result["micro"]["correct"], result["micro"]["guessed"], result["micro"]["gold"]) == (1, 4, 2)
    assert result["micro"]["p"] == 25.0 and result["micro"]["r"] == 50.0
    assert result["invalid"] == {"count": 1, "examples": {"lives": 1}}  # not a gold relation
    assert result["per_relation"]["met"]["p"] == pytest.approx(100 / 3)
    assert result["per_relation"]["in"]["support"] == 1
    assert result["confusion"] == {"met": {"met": 1}, "in": {INVALID: 1}, MISSING: {"met": 2}}


def test_triplets_strict_needs_offsets_and_types_where_gold_has_them():
    a = {"head": {"start": 0, "end": 5, "type": "PER"}}
    gold = [triplet("Alice", "met", "Bob", a), triplet("Alice", "met", "Bob")]
    # The prediction with offsets must take the gold with offsets, or only one would match.
    predicted = [triplet("Alice", "met", "Bob"), triplet("Alice", "met", "Bob", a)]
    result = score_records([e2e(gold, predicted)])
    assert result["micro"]["correct"] == 2 and result["strict"]["correct"] == 2
    wrong_type = [triplet("Alice", "met", "Bob", {"head": {"start": 0, "end": 5, "type": "ORG"}})]
    result = score_records([e2e(gold[:1], wrong_type)])
    assert result["micro"]["correct"] == 1 and result["strict"]["correct"] == 0


def test_triplets_strict_compares_offsets():
    """A prediction naming the right words at another occurrence, or at none (null offsets: an
    entity not in the text), counts in the lenient score only."""
    text = "Alice met Bob. Alice met Bob."
    at = lambda h, t: {"head": {"start": h, "end": None if h is None else h + 5}, "tail": {"start": t, "end": t + 3}}  # noqa: E731
    gold = [triplet("Alice", "met", "Bob", at(0, 10))]
    for predicted, strict in [(at(0, 10), 1), (at(15, 10), 0), (at(0, 25), 0), (at(None, 10), 0)]:
        record = {"id": "1", "text": text, "triplets": gold, "predicted_triplets": [triplet("Alice", "met", "Bob", predicted)]}
        validate_record(record)
        result = score_records([record])
        assert (result["micro"]["correct"], result["strict"]["correct"]) == (1, strict), predicted


def test_scheme_auto_and_mismatch():
    assert score_records(rc_records([("Other", "Other")]))["scheme"] == "semeval"
    assert score_records(rc_records([("Other", "Other"), ("per:a", "per:a")]))["scheme"] == "tacred"
    with pytest.raises(UserError, match="triplets does not fit this input"):
        score_records(rc_records([("per:a", "per:a")]), scheme="triplets")
    with pytest.raises(UserError, match="semeval does not fit this input"):
        score_records([e2e([], [])], scheme="semeval")


def test_validator_needs_gold_prediction_and_one_kind():
    validate = score_validator()
    validate(rc("per:a", "per:a"))
    for bad, message in ((rc(None, "per:a"), "gold"), (rc("per:a", None), "predicted"), ({**rc("a", "a"), "predicted": 3}, "string")):
        with pytest.raises(RecordError, match=message):
            validate(bad)
    with pytest.raises(RecordError, match="mixed"):
        validate(e2e([], []))
    with pytest.raises(RecordError, match="predicted_triplets"):
        score_validator()({"id": "1", "text": TEXT, "triplets": []})


# --- property tests against a plain second implementation -------------------------------------

LABELS = ["Cause-Effect(e1,e2)", "Cause-Effect(e2,e1)", "Member-Collection(e1,e2)", "Member-Collection(e2,e1)", "Other"]


def plain_scores(pairs, negative="Other"):
    """Record-by-record, as the official scorers do it."""
    correct = sum(1 for g, p in pairs if g == p and g != negative)
    guessed = sum(1 for g, p in pairs if p != negative)
    gold = sum(1 for g, p in pairs if g != negative)
    micro_p = 100.0 * correct / guessed if guessed else 100.0
    micro_r = 100.0 * correct / gold if gold else 0.0
    strip = lambda label: label.split("(")[0]  # noqa: E731
    f1s = []
    for relation in sorted({strip(g) for g, _ in pairs} - {negative}):
        hit = sum(1 for g, p in pairs if g == p and strip(g) == relation)
        predicted = sum(1 for g, p in pairs if p in SEMEVAL and strip(p) == relation)
        support = sum(1 for g, p in pairs if strip(g) == relation)
        p = 100.0 * hit / predicted if predicted else 0.0
        r = 100.0 * hit / support
        f1s.append(2 * p * r / (p + r) if p + r else 0.0)
    return {
        "micro": (micro_p, micro_r),
        "official": sum(f1s) / len(f1s) if f1s else 0.0,
        "accuracy": 100.0 * sum(g == p for g, p in pairs) / len(pairs) if pairs else 0.0,
        "invalid": sum(p not in SEMEVAL for _, p in pairs),
    }


@settings(max_examples=200, deadline=None)
@given(st.lists(st.tuples(st.sampled_from(LABELS), st.sampled_from(LABELS + ["nonsense", "Cause-Effect"])), max_size=30))
def test_rc_scores_match_plain_implementation(pairs):
    result = score_records(rc_records(pairs), scheme="semeval")
    expected = plain_scores(pairs)
    assert (result["micro"]["p"], result["micro"]["r"]) == pytest.approx(expected["micro"])
    assert result["official"]["f1"] == pytest.approx(expected["official"])
    assert result["accuracy"] == pytest.approx(expected["accuracy"])
    assert result["invalid"]["count"] == expected["invalid"]
    assert sum(n for row in result["confusion"].values() for n in row.values()) == len(pairs)


def brute_force_matches(predicted, gold, same):
    """The largest number of one-to-one matches, by trying every assignment."""
    if not predicted:
        return 0
    first, rest = predicted[0], predicted[1:]
    best = brute_force_matches(rest, gold, same)
    for j, candidate in enumerate(gold):
        if same(first, candidate):
            best = max(best, 1 + brute_force_matches(rest, gold[:j] + gold[j + 1:], same))
    return best


names = st.sampled_from(["Alice", "Bob"])
offsets = st.sampled_from([{}, {"head": {"start": 0, "end": 5}}, {"head": {"start": 1, "end": 6}}, {"tail": {"type": "PER"}}])
triplets = st.lists(st.builds(triplet, names, st.sampled_from(["met", "knows"]), names, offsets), max_size=4)


@settings(max_examples=200, deadline=None)
@given(st.lists(st.tuples(triplets, triplets), max_size=4))
def test_triplet_scores_match_brute_force(records):
    key = lambda t: (t["head"]["text"], t["relation"], t["tail"]["text"])  # noqa: E731

    def strict(p, g):
        return key(p) == key(g) and all(
            g[role].get(a) is None or p[role].get(a) == g[role][a] for role in ("head", "tail") for a in ("start", "end")) and all(
            None in (g[role].get("type"), p[role].get("type")) or p[role]["type"] == g[role]["type"] for role in ("head", "tail"))

    result = score_records([e2e(g, p, i) for i, (g, p) in enumerate(records)], scheme="triplets")
    assert result["micro"]["correct"] == sum(sum((Counter(map(key, p)) & Counter(map(key, g))).values()) for g, p in records)
    assert result["strict"]["correct"] == sum(brute_force_matches(p, g, strict) for g, p in records)
    assert result["micro"]["guessed"] == sum(len(p) for _, p in records)
    assert result["micro"]["gold"] == sum(len(g) for g, _ in records)
