"""Doccano's relation export (a sequence-labeling project with relation labeling) to end-to-end records.

One JSON object per example: ``{"id", "text", "entities": [{"id", "label", "start_offset",
"end_offset"}], "relations": [{"id", "from_id", "to_id", "type"}], ...}``. Offsets are 0-based
with the end exclusive; ``from_id``/``to_id`` name entity ids of the same example; relation ids are
optional. The record id is the example ``id`` (``line-N`` without one); other fields (``Comments``,
the example's meta fields) pass through. Besides JSONL this reads the pretty-printed sample doccano
shows for its export, whose objects span many lines.

Doccano stores no surface text, so offsets are checked against the text's bounds only, and one
quirk is repaired: a project created with "Count grapheme clusters as one character" counts each
grapheme cluster (``\\r\\n``, an emoji ZWJ sequence, a letter with combining marks) as one
character. Where the text has such clusters, the offsets are read both ways, and taken as cluster
counts (then converted to code points, counted in the report) when that leaves fewer spans that
look misplaced: cutting a cluster, or starting or ending with a space.
"""

from __future__ import annotations

from collections import Counter
from functools import partial
from typing import Any, BinaryIO, Iterator

from relcli.formats.documents import count, document_record, entity_span
from relcli.formats.jsonlist import read_values
from relcli.records import Record, RecordError, SkipReport

_CONSUMED = {"id", "text", "entities", "relations"}


def _cluster_starts(text: str) -> list[int] | None:
    """The code-point offset where each grapheme cluster starts, then ``len(text)``; None when every
    cluster is one code point (the two readings of offsets agree)."""
    if text.isascii() and "\r\n" not in text:
        return None
    import regex  # its \X matches one Unicode extended grapheme cluster

    starts = [match.start() for match in regex.finditer(r"\X", text)] + [len(text)]
    return None if len(starts) == len(text) + 1 else starts


def _misplaced(text: str, offsets: list[tuple[int, int]], starts: set[int]) -> int:
    return sum(
        not (0 <= s <= e <= len(text)) or s not in starts or e not in starts
        or text[s:e] != text[s:e].strip()
        for s, e in offsets
    )


def _code_points(text: str, offsets: list[tuple[Any, Any]], report: Counter) -> list[tuple[Any, Any]]:
    starts = _cluster_starts(text)
    if starts is None or not all(isinstance(v, int) and 0 <= v < len(starts) for pair in offsets for v in pair):
        return offsets
    converted = [(starts[s], starts[e]) for s, e in offsets]
    if _misplaced(text, converted, set(starts)) < _misplaced(text, offsets, set(starts)):
        count(report, "doccano examples with grapheme-cluster offsets (converted to code points)")
        return converted
    return offsets


def _record(item: Any, line: int, report: Counter) -> Record:
    if not isinstance(item, dict) or not isinstance(item.get("text"), str):
        raise RecordError("expected a JSON object with 'text' (a doccano example)")
    entities, relations = item.get("entities"), item.get("relations", [])
    if not isinstance(entities, list) or not isinstance(relations, list):
        raise RecordError("expected 'entities' and 'relations' lists (doccano's relation export)")
    if not all(isinstance(entity, dict) for entity in entities + relations):
        raise RecordError("each entity and relation must be a JSON object")
    text = item["text"]
    offsets = _code_points(text, [(e.get("start_offset"), e.get("end_offset")) for e in entities], report)
    spans, index = [], {}
    for k, (entity, (start, end)) in enumerate(zip(entities, offsets)):
        spans.append(entity_span(text, start, end, entity.get("label"), what=f"entities[{k}]"))
        if isinstance(entity.get("id"), (int, str)):
            index.setdefault(entity["id"], k)
    triplets = []
    for k, relation in enumerate(relations):
        ends = [relation.get("from_id"), relation.get("to_id")]
        missing = [end for end in ends if not isinstance(end, (int, str)) or end not in index]
        if missing:
            raise RecordError(f"relations[{k}] points at entity id {missing[0]!r}, which is not an entity of this example")
        if not isinstance(relation.get("type"), str):
            raise RecordError(f"relations[{k}] needs a 'type' (a string)")
        triplets.append((index[ends[0]], relation["type"], index[ends[1]]))
    extra = {key: value for key, value in item.items() if key not in _CONSUMED}
    id = item["id"] if item.get("id") is not None else f"line-{line}"
    return document_record(id, text, spans, triplets, report, extra)


def read(stream: BinaryIO, report: Counter, skipped: SkipReport | None = None) -> Iterator[Record]:
    return read_values(stream, partial(_record, report=report), skipped)
