"""End-to-end records with entities to relation-classification records (``convert --pairs``).

Candidates are the ordered pairs of distinct entities of a record that lie in one sentence or, with
``max_distance``, whose spans are at most that many characters apart. A candidate's record carries
the gold relation when the document annotates one (one record per label when it has several), else
the negative label. Its ``text`` is the pair's context: the sentences from the one holding the
earlier entity to the one holding the later, with offsets relative to it; ``document`` and
``offset`` say where that context lies in the source record, whose other fields pass through.
Gold relations whose arguments fall outside one window (or are one entity) make no record; they
are counted.

Sentences: a boundary is a line break, or the spaces after ``.``, ``!`` or ``?`` (and any closing
quote or bracket) before a capital letter or digit, unless the word before the stop is an
initial or dotted abbreviation (``J.``, ``U.S.``, ``e.g.``) or one of a few titles, months and
short forms (``Dr.``, ``Sen.``, ``Nov.``, ``Fig.``, ``Inc.``, ...). A boundary inside an entity is
dropped, so no entity straddles two sentences. It is a heuristic: where sentences matter less than
distance, use ``max_distance``.

Negative subsampling (``negative_ratio`` R) keeps about R negatives per gold relation: each record
adds R times its gold relations (other than the negative label) to a budget, its negatives are
drawn at random up to the whole budget, and what is not spent carries over to later records. The
draw uses ``random.Random(seed)``, so the same input and seed keep the same pairs. Gold pairs are
never dropped.
"""

from __future__ import annotations

import random
import re
from bisect import bisect_right
from collections import Counter
from dataclasses import dataclass
from typing import Iterable, Iterator

from relcli.formats.documents import count
from relcli.records import Record, RecordError, make_span

_BOUNDARY = re.compile(r"[ \t]*\r?\n\s*|(?<=[.!?])[\"')\]]*\s+(?=[\"'(\[]?[A-Z0-9])")
_ABBREVIATION = re.compile(
    r"(?:^|\s)(?:(?:[A-Za-z]\.)+|(?i:mr|mrs|ms|dr|prof|sen|rep|gov|pres|gen|col|lt|capt|sgt|adm|rev|hon|st|mt|ft"
    r"|jan|feb|mar|apr|jun|jul|aug|sep|sept|oct|nov|dec|no|nos|fig|figs|eq|ref|al|vs|inc|co|corp|ltd|jr|sr|approx|ca)\.)$"
)
_CONSUMED = {"id", "text", "entities", "triplets", "predicted_triplets", "document", "offset"}


@dataclass(frozen=True)
class Pairing:
    negative: str = "no_relation"
    max_distance: int | None = None
    negative_ratio: float | None = None
    seed: int = 13


def sentences(text: str, entities: Iterable[dict] = ()) -> list[tuple[int, int]]:
    """``(start, end)`` of each sentence, without the spaces between them (see the module doc)."""
    inside = [(e["start"], e["end"]) for e in entities]
    spans, start = [], 0
    for match in _BOUNDARY.finditer(text):
        end = match.start() + len(match.group()) - len(match.group().lstrip("\"')]"))  # closers stay
        if "\n" not in match.group() and _ABBREVIATION.search(text[max(0, end - 24) : end]):
            continue
        if any(s < match.end() and e > end for s, e in inside):
            continue
        spans.append((start, end))
        start = match.end()
    spans.append((start, len(text)))
    return [(s, e) for s, e in spans if e > s] or [(0, len(text))]


def _gap(a: dict, b: dict) -> int:
    return max(0, max(a["start"], b["start"]) - min(a["end"], b["end"]))


def _entities(record: Record) -> tuple[list[dict], dict]:
    """The record's entities (plus any triplet argument missing from them) and gold labels by pair."""
    entities = list(record.get("entities") or [])
    where = {(e["start"], e["end"], e.get("type")): i for i, e in reversed(list(enumerate(entities)))}
    gold: dict[tuple[int, int], list[str]] = {}
    for triplet in record["triplets"]:
        ends = []
        for span in (triplet["head"], triplet["tail"]):
            if span.get("start") is None:
                raise RecordError(f"record {record['id']}: a triplet argument has no offsets, so it cannot be paired")
            key = (span["start"], span["end"], span.get("type"))
            if key not in where:
                where[key] = len(entities)
                entities.append(span)
            ends.append(where[key])
        labels = gold.setdefault(tuple(ends), [])
        if triplet["relation"] not in labels:
            labels.append(triplet["relation"])
    return entities, gold


def _pairs(record: Record, pairing: Pairing, report: Counter) -> list[tuple[Record, bool]]:
    """The record's candidate pairs as (RC record, is negative), in the order of their entities."""
    if "triplets" not in record:
        raise RecordError(f"record {record['id']}: pairing needs end-to-end records with entities")
    text, (entities, gold) = record["text"], _entities(record)
    bounds = sentences(text, entities)
    starts = [s for s, _ in bounds]
    sentence = [bisect_right(starts, e["start"]) - 1 for e in entities]
    extra = {key: value for key, value in record.items() if key not in _CONSUMED}
    order = sorted(range(len(entities)), key=lambda i: (entities[i]["start"], entities[i]["end"], i))
    pairs, paired = [], set()
    for i in order:
        for j in order:
            a, b = entities[i], entities[j]
            near = sentence[i] == sentence[j] if pairing.max_distance is None else _gap(a, b) <= pairing.max_distance
            if i == j or not near:
                continue
            first, last = sorted((sentence[i], sentence[j]))
            start, end = min(bounds[first][0], a["start"], b["start"]), max(bounds[last][1], a["end"], b["end"])
            context = text[start:end]
            labels = gold.get((i, j)) or [None]
            paired.add((i, j))
            for n, label in enumerate(labels, start=1):
                pair = {
                    "id": f"{record['id']}:{i}-{j}" + (f"/{n}" if n > 1 else ""),
                    "text": context,
                    "head": make_span(context, a["start"] - start, a["end"] - start, a.get("type")),
                    "tail": make_span(context, b["start"] - start, b["end"] - start, b.get("type")),
                    "relation": pairing.negative if label is None else label,
                    "document": record["id"],
                    "offset": start,
                    **extra,
                }
                pairs.append((pair, label is None))
    unpaired = Counter("itself" if i == j else "apart"
                       for (i, j), labels in gold.items() if (i, j) not in paired for _ in labels)
    apart = "in different sentences" if pairing.max_distance is None else "farther apart than --max-distance"
    count(report, f"gold relations not paired (arguments {apart})", unpaired["apart"])
    count(report, "gold relations of an entity with itself (not paired)", unpaired["itself"])
    return pairs


def to_pairs(records: Iterable[Record], pairing: Pairing, report: Counter) -> Iterator[Record]:
    """RC records from end-to-end records with entities (see the module doc); counts in ``report``."""
    rng, budget = random.Random(pairing.seed), 0.0
    for record in records:
        pairs = _pairs(record, pairing, report)
        negatives = [k for k, (_, negative) in enumerate(pairs) if negative]
        positives = sum(not negative and pair["relation"] != pairing.negative for pair, negative in pairs)
        count(report, "pairs with a gold relation", len(pairs) - len(negatives))
        dropped = set()
        if pairing.negative_ratio is not None:
            budget += pairing.negative_ratio * positives
            keep = min(len(negatives), int(budget))
            budget -= keep
            dropped = set(negatives) - set(rng.sample(negatives, keep))
            count(report, "negative pairs dropped (--negative-ratio)", len(dropped))
        count(report, "negative pairs", len(negatives) - len(dropped))
        yield from (pair for k, (pair, _) in enumerate(pairs) if k not in dropped)
