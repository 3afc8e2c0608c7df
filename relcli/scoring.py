"""Scorers: TACRED micro P/R/F1, the official SemEval-2010 Task 8 macro-F1, end-to-end triplets.

Scoring needs only counts, so records stream into a `Tally` (gold x predicted label counts for
relation classification, per-relation match counts for triplets) and the report is computed from
it: memory grows with the number of distinct labels, not with the number of records.

All scores are percentages. Where nothing was predicted, precision is 0, except in the TACRED micro
score, where the official scorer (yuhaozhang/tacred-relation) reports 100.
"""

from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterable

from relcli.errors import UserError
from relcli.labels import SEMEVAL, negative_label
from relcli.records import Record, RecordError, is_end_to_end, validate_record

SCHEMES = ("auto", "tacred", "semeval", "triplets")
INVALID = "(invalid)"  # confusion column of predictions outside the label inventory
MISSING = "(none)"  # triplet confusion: a gold triplet nobody predicted, or the reverse
_DIRECTION = re.compile(r"\(e[12],e[12]\)$")  # the official scorer's s/\(e[12],e[12]\)$//


def score_validator() -> Callable[[Any], Record]:
    """A `read_jsonl` validator: a valid record carrying both gold and prediction, of the same kind
    (relation classification or end-to-end) as the records before it."""
    kinds: set[bool] = set()

    def validate(obj: Any) -> Record:
        record = validate_record(obj)
        end_to_end = is_end_to_end(record)
        if end_to_end:
            for key in ("triplets", "predicted_triplets"):
                if not isinstance(record.get(key), list):
                    raise RecordError(f"missing field '{key}' (a list of triplets)")
        else:
            if record.get("relation") is None:
                raise RecordError("missing gold label 'relation'")
            if record.get("predicted") is None:
                raise RecordError("missing field 'predicted' (run `relcli extract` first)")
        if kinds and end_to_end not in kinds:
            raise RecordError("end-to-end and relation-classification records are mixed in one input")
        kinds.add(end_to_end)
        return record

    return validate


@dataclass
class Tally:
    """Everything the scores need, counted in one pass over the records."""

    n: int = 0
    end_to_end: bool | None = None
    pairs: Counter = field(default_factory=Counter)  # (gold, predicted) -> count; triplets: for the confusion
    gold: Counter = field(default_factory=Counter)  # triplets only, per relation
    guessed: Counter = field(default_factory=Counter)
    correct: Counter = field(default_factory=Counter)
    correct_strict: Counter = field(default_factory=Counter)


def tally(records: Iterable[Record]) -> Tally:
    """Count one pass of records (already checked by `score_validator`)."""
    counts = Tally()
    for record in records:
        counts.n += 1
        counts.end_to_end = is_end_to_end(record)
        if counts.end_to_end:
            _tally_triplets(counts, record["triplets"], record["predicted_triplets"])
        else:
            counts.pairs[record["relation"], record["predicted"]] += 1
    return counts


def _triplet_key(triplet: dict) -> tuple[str, str, str]:
    return triplet["head"]["text"], triplet["relation"], triplet["tail"]["text"]


def _same_key(predicted: dict, gold: dict) -> bool:
    return _triplet_key(predicted) == _triplet_key(gold)


def _strict_match(predicted: dict, gold: dict) -> bool:
    """Same texts and relation, and the same offsets where the gold has them; entity types are
    compared only where both sides have one (generators predict spans, not types)."""
    if not _same_key(predicted, gold):
        return False
    return all(
        gold[role].get(attr) is None or predicted[role].get(attr) == gold[role][attr]
        for role in ("head", "tail") for attr in ("start", "end")
    ) and all(
        gold[role].get("type") is None or predicted[role].get("type") is None
        or predicted[role]["type"] == gold[role]["type"]
        for role in ("head", "tail")
    )


def _max_matching(predicted: list, gold: list, match: Callable[[dict, dict], bool]) -> dict[int, int]:
    """Gold index -> predicted index for as many one-to-one matches as possible (augmenting paths;
    greedy is not enough when some gold spans carry offsets and others do not)."""
    owner: dict[int, int] = {}

    def augment(i: int, seen: set[int]) -> bool:
        for j, candidate in enumerate(gold):
            if j not in seen and match(predicted[i], candidate):
                seen.add(j)
                if j not in owner or augment(owner[j], seen):
                    owner[j] = i
                    return True
        return False

    for i in range(len(predicted)):
        augment(i, set())
    return owner


def _tally_triplets(counts: Tally, gold: list, predicted: list) -> None:
    counts.gold.update(t["relation"] for t in gold)
    counts.guessed.update(t["relation"] for t in predicted)
    counts.correct.update(gold[j]["relation"] for j in _max_matching(predicted, gold, _same_key))
    counts.correct_strict.update(gold[j]["relation"] for j in _max_matching(predicted, gold, _strict_match))
    # Confusion: relations of the same (head, tail) pair; equal ones pair up first.
    by_pair: dict[tuple[str, str], tuple[Counter, Counter]] = {}
    for side, triplets in enumerate((gold, predicted)):
        for t in triplets:
            by_pair.setdefault((t["head"]["text"], t["tail"]["text"]), (Counter(), Counter()))[side][t["relation"]] += 1
    for gold_rels, pred_rels in by_pair.values():
        same = gold_rels & pred_rels
        counts.pairs.update({(rel, rel): n for rel, n in same.items()})
        rest_gold, rest_pred = list((gold_rels - same).elements()), list((pred_rels - same).elements())
        for i in range(max(len(rest_gold), len(rest_pred))):
            g = rest_gold[i] if i < len(rest_gold) else MISSING
            p = rest_pred[i] if i < len(rest_pred) else MISSING
            counts.pairs[g, p] += 1


def prf(correct: int, guessed: int, gold: int, empty_precision: float = 0.0) -> dict:
    """Precision, recall and F1 in percent, with the counts they come from."""
    p = 100.0 * correct / guessed if guessed else empty_precision
    r = 100.0 * correct / gold if gold else 0.0
    f1 = 2 * p * r / (p + r) if p + r else 0.0
    return {"p": p, "r": r, "f1": f1, "correct": correct, "guessed": guessed, "gold": gold}


def tacred_micro(pairs: Counter, negative: str) -> dict:
    """The official TACRED scorer: any non-negative prediction is a guess, valid label or not."""
    correct = sum(n for (g, p), n in pairs.items() if g == p and g != negative)
    guessed = sum(n for (g, p), n in pairs.items() if p != negative)
    gold = sum(n for (g, p), n in pairs.items() if g != negative)
    return prf(correct, guessed, gold, empty_precision=100.0)


def _bucket(label: str) -> str:
    return _DIRECTION.sub("", label)


def semeval_official(pairs: Counter, valid: set[str], negative: str = "Other") -> dict:
    """SemEval-2010 Task 8 "(9+1)-way with directionality", as semeval2010_task8_scorer-v1.2.pl.

    Per relation (direction-free), P = exact matches / predictions of that relation in either
    direction, R = exact matches / gold of that relation; a right relation in the wrong direction
    is wrong. The score is the mean F1 over the relations present in the gold, negative excluded.
    The official scorer rejects labels outside the inventory; here they belong to no relation,
    which is what its own note says of skipped or unknown predictions (equivalent to `Other`).
    """
    gold, guessed, correct, wrong_direction = Counter(), Counter(), Counter(), Counter()
    for (g, p), n in pairs.items():
        gold[_bucket(g)] += n
        if p not in valid:
            continue
        guessed[_bucket(p)] += n
        if p == g:
            correct[_bucket(g)] += n
        elif _bucket(p) == _bucket(g):
            wrong_direction[_bucket(g)] += n
    relations = sorted(r for r in gold if r != _bucket(negative))
    per_relation = {
        r: prf(correct[r], guessed[r], gold[r]) | {"wrong_direction": wrong_direction[r]} for r in relations
    }
    means = {k: sum(s[k] for s in per_relation.values()) / len(relations) if relations else 0.0 for k in ("p", "r", "f1")}
    return {"name": "SemEval-2010 Task 8 official macro-F1 (9+1-way, directed)", **means, "per_relation": per_relation}


def _per_relation(correct: Counter, guessed: Counter, gold: Counter, order: list[str]) -> dict:
    return {
        label: {k: v for k, v in prf(correct[label], guessed[label], gold[label]).items() if k != "gold"}
        | {"support": gold[label]}
        for label in order
    }


def _confusion(pairs: Counter, valid: set[str]) -> dict:
    matrix: dict[str, Counter] = {}
    for (g, p), n in sorted(pairs.items()):
        column = p if p in valid or p == MISSING else INVALID
        matrix.setdefault(g, Counter())[column] += n
    return {g: dict(row) for g, row in matrix.items()}


def _invalid(guessed: Counter, valid: set[str]) -> dict:
    bad = Counter({label: n for label, n in guessed.items() if label not in valid})
    return {"count": sum(bad.values()), "examples": dict(bad.most_common(10))}


def _resolve_scheme(scheme: str, counts: Tally, gold_labels: set[str]) -> str:
    if scheme not in SCHEMES:
        raise UserError(f"unknown scheme {scheme!r} (choose from {', '.join(SCHEMES)})")
    if scheme == "auto":
        if counts.end_to_end:
            return "triplets"
        return "semeval" if gold_labels and gold_labels <= set(SEMEVAL) else "tacred"
    if counts.end_to_end is not None and counts.end_to_end != (scheme == "triplets"):
        kind = "end-to-end (triplets)" if counts.end_to_end else "relation-classification"
        raise UserError(f"{scheme} does not fit this input: its records are {kind}", param="scheme")
    return scheme


def report(counts: Tally, scheme: str = "auto", negative: str | None = None, labels: list[str] | None = None) -> dict:
    """All the scores of one tally as a plain dict (see `score_records`)."""
    if counts.end_to_end:
        gold_labels = set(counts.gold)
    else:
        gold_labels = {g for g, _ in counts.pairs}
    scheme = _resolve_scheme(scheme, counts, gold_labels)
    inventory = labels or (SEMEVAL if scheme == "semeval" else sorted(gold_labels))
    valid = set(inventory)
    if scheme == "triplets":
        if negative is not None:
            raise UserError("triplet scores have no negative label (a pair without a relation has no triplet)", param="negative")
        return _triplet_report(counts, inventory, valid)

    negative = negative or negative_label(inventory) or "no_relation"
    valid.add(negative)
    correct, guessed, gold = Counter(), Counter(), Counter()
    for (g, p), n in counts.pairs.items():
        gold[g] += n
        guessed[p] += n
        correct[g] += n if g == p else 0
    order = [l for l in dict.fromkeys([*inventory, *sorted(gold_labels)]) if gold[l] or guessed[l]]
    per_relation = _per_relation(correct, guessed, gold, order)
    positive = [l for l in order if l != negative]
    micro = tacred_micro(counts.pairs, negative)
    official = (
        semeval_official(counts.pairs, valid, negative) if scheme == "semeval"
        else {"name": "TACRED micro-F1", **{k: micro[k] for k in ("p", "r", "f1")}}
    )
    return {
        "scheme": scheme,
        "negative": negative,
        "n": counts.n,
        "invalid": _invalid(guessed, valid),
        "micro": micro,
        "official": official,
        "accuracy": 100.0 * sum(correct.values()) / counts.n if counts.n else 0.0,
        "macro_f1_all": sum(per_relation[l]["f1"] for l in positive) / len(positive) if positive else 0.0,
        "per_relation": per_relation,
        "confusion": _confusion(counts.pairs, valid),
    }


def _triplet_report(counts: Tally, inventory: list[str], valid: set[str]) -> dict:
    micro = prf(sum(counts.correct.values()), sum(counts.guessed.values()), sum(counts.gold.values()))
    order = [l for l in dict.fromkeys([*inventory, *sorted(counts.gold)]) if counts.gold[l] or counts.guessed[l]]
    per_relation = _per_relation(counts.correct, counts.guessed, counts.gold, order)
    return {
        "scheme": "triplets",
        "negative": None,
        "n": counts.n,
        "invalid": _invalid(counts.guessed, valid),
        "micro": micro,
        "strict": prf(sum(counts.correct_strict.values()), micro["guessed"], micro["gold"]),
        "official": {"name": "triplet micro-F1 (head text, relation, tail text)", **{k: micro[k] for k in ("p", "r", "f1")}},
        "accuracy": None,
        "macro_f1_all": sum(s["f1"] for s in per_relation.values()) / len(per_relation) if per_relation else 0.0,
        "per_relation": per_relation,
        "confusion": _confusion(counts.pairs, valid),
    }


def score_records(
    records: Iterable[Record], scheme: str = "auto", negative: str | None = None, labels: list[str] | None = None
) -> dict:
    """Score records carrying gold and predictions; one pass, memory bounded by the label count.

    Returns ``{"scheme", "negative", "n", "invalid": {"count", "examples"}, "micro": {p, r, f1,
    correct, guessed, gold}, "official": {"name", p, r, f1, ...}, "accuracy", "macro_f1_all",
    "per_relation": {label: {p, r, f1, correct, guessed, support}}, "confusion": {gold: {pred: n}}}``
    plus ``"strict"`` for triplets. ``labels`` is the label inventory that decides which predictions
    are valid (default: the SemEval inventory for semeval, else the gold labels seen).
    """
    return report(tally(records), scheme, negative, labels)


def evaluate(records: Iterable[Record], scheme: str = "auto", negative: str | None = None, labels: str | None = None,
             schema: str | Path | None = None, calibrate: bool = False, confusion: str | Path | None = None) -> dict:
    """What `relcli score` reports: ``score_records`` with the inventory given as ``labels`` (a
    builtin name or a file) or as a relation ``schema`` (whose negative label it also is); with
    ``calibrate``, instead, the negative margin that maximises micro-F1 (relcli.calibration).
    ``confusion``: an image file to draw the confusion matrix to, checked before reading."""
    from relcli.schema import inventory

    given, schema = inventory(labels, schema)
    if schema is not None:
        if negative is not None and negative != schema.negative:
            raise UserError(f"the schema's negative label is {schema.negative!r}, not {negative!r}", param="negative")
        negative = schema.negative
    if calibrate:
        from relcli.calibration import calibrate as calibrate_margin

        if scheme not in ("auto", "tacred"):
            raise UserError("the margin is calibrated on TACRED micro-F1 (relation classification)", param="scheme")
        if confusion:
            raise UserError("a calibration has no confusion matrix to draw", param="confusion")
        return calibrate_margin(records, negative or (negative_label(given) if given else None))
    if confusion:
        check_plot_path(Path(confusion))
    result = score_records(records, scheme, negative, given)
    if not result["n"]:  # an upstream stage that wrote nothing must not read as a score of 0
        raise UserError("no records to score")
    if confusion:
        plot_confusion(result["confusion"], Path(confusion))
    return result


PLOT_SUFFIXES = (".png", ".pdf", ".svg", ".jpg", ".jpeg")


def check_plot_path(path: Path) -> None:
    """Refuse, before scoring, a confusion-matrix path that cannot be drawn to or written."""
    from relcli.streams import check_writable

    if Path(path).suffix.lower() not in PLOT_SUFFIXES:
        raise UserError(f"{path}: the image type comes from the suffix: {', '.join(PLOT_SUFFIXES)}", param="confusion")
    check_writable(path, "confusion")


def plot_confusion(confusion: dict, path: Path) -> None:
    """Draw the confusion matrix (gold rows x predicted columns) as an image file."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        raise UserError("drawing needs matplotlib: pip install 'relcli[plot]'", param="confusion") from None
    rows = list(confusion)
    columns = list(dict.fromkeys([*rows, *(c for row in confusion.values() for c in row)]))
    values = [[confusion[g].get(c, 0) for c in columns] for g in rows]
    size = max(4.0, 0.35 * len(columns) + 2)
    fig, ax = plt.subplots(figsize=(size, max(3.0, 0.35 * len(rows) + 2)))
    image = ax.imshow(values, cmap="Blues")
    ax.set_xticks(range(len(columns)), columns, rotation=90, fontsize=7)
    ax.set_yticks(range(len(rows)), rows, fontsize=7)
    ax.set_xlabel("predicted")
    ax.set_ylabel("gold")
    fig.colorbar(image, ax=ax)
    fig.tight_layout()
    from relcli.streams import open_output

    try:  # into a temp file renamed over the target: an old image stays whole until the new one is
        with open_output(Path(path), param="confusion") as out:
            fig.savefig(out, format=Path(path).suffix[1:].lower(), dpi=150)
    except OSError as exc:
        raise UserError(f"cannot write {path}: {exc.strerror or exc}", param="confusion") from None
    finally:
        plt.close(fig)
