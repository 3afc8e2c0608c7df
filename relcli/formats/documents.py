"""Annotated documents (text, typed entity spans, relations between them) to end-to-end records.

The annotation-tool readers (brat, doccano, Label Studio, Prodigy) build their records here, in the
shape the conll04 reader emits: ``{"id", "text", "entities": [Span], "triplets": [{"head": Span,
"relation": str, "tail": Span}], ...}`` with each span's ``type`` set to its entity label, and the
format's other fields passed through. ``relcli.formats.pairs`` turns such records into
relation-classification pairs.
"""

from __future__ import annotations

from collections import Counter
from typing import Any, Iterable

from relcli.records import Record, RecordError, make_span, validate_record


def count(report: Counter, what: str, n: int = 1) -> None:
    """Add to a report only what happened, so that no line reads ``...: 0``."""
    if n:
        report[what] += n


def entity_span(text: str, start: Any, end: Any, type: Any = None, surface: Any = None, what: str = "entity") -> dict:
    """A span after the checks every record gets: integer offsets within the text and, where the
    format stores the surface form, ``text[start:end] == surface``."""
    if not all(isinstance(v, int) and not isinstance(v, bool) for v in (start, end)):
        raise RecordError(f"{what} needs integer start and end offsets, got {start!r} and {end!r}")
    if not 0 <= start <= end <= len(text):
        raise RecordError(f"{what} offsets {start}..{end} are not within the text (length {len(text)})")
    if surface is not None and text[start:end] != surface:
        raise RecordError(f"{what} text {surface!r} differs from text[{start}:{end}] {text[start:end]!r}")
    if type is not None and not isinstance(type, str):
        raise RecordError(f"{what} label must be a string, got {type!r}")
    return make_span(text, start, end, type)


def document_record(
    id: Any, text: str, entities: list[dict], relations: Iterable[tuple[int, str, int]], report: Counter,
    extra: dict | None = None,
) -> Record:
    """The end-to-end record of a document; ``relations`` are (head, label, tail) with head and tail
    indices into ``entities``. A relation repeated with the same arguments and label is kept once
    (counted); one pair with several different labels keeps each of them (counted)."""
    seen, labels = set(), Counter()
    triplets = []
    for head, label, tail in relations:
        if (head, label, tail) in seen:
            count(report, "duplicate relations dropped (same arguments and label)")
            continue
        seen.add((head, label, tail))
        labels[head, tail] += 1
        triplets.append({"head": entities[head], "relation": label, "tail": entities[tail]})
    count(report, "entity pairs with several relation labels (one triplet each)", sum(n > 1 for n in labels.values()))
    record = {"id": id, "text": text, "entities": entities, "triplets": triplets}
    return validate_record({**record, **{key: value for key, value in (extra or {}).items() if key not in record}})
