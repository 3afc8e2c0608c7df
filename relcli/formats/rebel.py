"""REBEL JSONL (``docid``, ``text``, ``entities``, ``triples``) to end-to-end records.

Each document becomes ``{"id": docid, "text", "triplets": [{"head", "relation", "tail"}]}`` with the
predicate's surface form as the relation; other top-level fields (``title``, ``uri``) are kept,
``entities`` and ``triples`` are consumed. Spans have no type.

REBEL's boundaries are not always right: in the 1000-document sample 636 of 5736 argument
boundaries point 2 or 4 characters before their surface form. So a span is taken from the
boundaries when ``text[start:end]`` equals the surface form; otherwise (boundaries off, or null)
it is the occurrence of the surface form nearest to the given start (the first one when null).
A surface form that does not occur in the text at all keeps the triplet as a text-only span
(``start``/``end`` null, which end-to-end scoring accepts) rather than losing gold. Each repair is
counted in the caller's report.
"""

from __future__ import annotations

from collections import Counter
from functools import partial
from typing import Any, BinaryIO, Iterator

from relcli.records import Record, RecordError, SkipReport, make_span, read_jsonl, validate_record

_CONSUMED = {"id", "docid", "text", "triplets", "entities", "triples"}


def _occurrences(text: str, surface: str) -> Iterator[int]:
    start = text.find(surface)
    while start != -1:
        yield start
        start = text.find(surface, start + 1)


def _span(text: str, argument: Any, name: str, report: Counter) -> dict:
    surface = argument.get("surfaceform") if isinstance(argument, dict) else None
    if not isinstance(surface, str) or not surface:
        raise RecordError(f"{name} needs a non-empty surfaceform")
    boundaries = argument.get("boundaries")
    if boundaries is None:
        anchor, problem = 0, "boundaries null"
    elif isinstance(boundaries, list) and len(boundaries) == 2 and all(isinstance(b, int) for b in boundaries):
        if 0 <= boundaries[0] <= boundaries[1] and text[boundaries[0] : boundaries[1]] == surface:
            return make_span(text, *boundaries)
        anchor, problem = boundaries[0], "boundaries off"
    else:
        raise RecordError(f"{name}.boundaries must be [start, end] or null, got {boundaries!r}")
    nearest = min(_occurrences(text, surface), key=lambda start: abs(start - anchor), default=None)
    if nearest is None:
        report["triplet arguments not found in the text (kept without offsets)"] += 1
        return {"text": surface, "start": None, "end": None, "type": None}
    report[f"triplet arguments re-located ({problem})"] += 1
    return make_span(text, nearest, nearest + len(surface))


def _record(document: Any, report: Counter) -> Record:
    if not isinstance(document, dict):
        raise RecordError("a REBEL document must be a JSON object")
    text, triples = document.get("text"), document.get("triples")
    if not isinstance(text, str) or not isinstance(document.get("docid"), (str, int)) or not isinstance(triples, list):
        raise RecordError("a REBEL document needs 'docid', 'text' and a 'triples' list")
    triplets = []
    for i, triple in enumerate(triples):
        predicate = triple.get("predicate") if isinstance(triple, dict) else None
        if not isinstance(predicate, dict) or not isinstance(predicate.get("surfaceform"), str):
            raise RecordError(f"triples[{i}] needs a predicate with a surfaceform")
        triplets.append({
            "head": _span(text, triple.get("subject"), f"triples[{i}].subject", report),
            "relation": predicate["surfaceform"],
            "tail": _span(text, triple.get("object"), f"triples[{i}].object", report),
        })
    extra = {key: value for key, value in document.items() if key not in _CONSUMED}
    return validate_record({"id": document["docid"], "text": text, "triplets": triplets, **extra})


def read(stream: BinaryIO, report: Counter, skipped: SkipReport | None = None) -> Iterator[Record]:
    return read_jsonl(stream, validate=partial(_record, report=report), skipped=skipped)
