"""Prodigy's ``rel.manual`` JSONL (``spans`` + ``relations``) to end-to-end records, one per line.

A line is ``{"text", "spans": [{"text", "start", "end", "label"}], "relations": [{"head_span",
"child_span", "label"}], "tokens", "answer", ...}``: spans are the entities (0-based offsets, end
exclusive, checked against their ``text``; ``type`` = ``label``), relations the triplets with
``head_span`` as head and ``child_span`` as tail. Spans have no ids: a relation's argument is the
span with its offsets and label (or offsets only), and one that matches no span becomes an entity
of its own (counted). Labels are kept as they are, so an explicit negative such as ``No-rel``
stays a relation (``convert --pairs --negative No-rel`` makes it the negative label).

Only accepted answers are read: lines whose ``answer`` is ``reject`` or ``ignore`` are skipped and
counted; with ``annotator``, so are lines whose ``_annotator_id`` and ``_session_id`` both differ
from it. The record id is ``line-N``; fields other than ``text``, ``spans``, ``relations`` and
``tokens`` (``meta``, ``_input_hash``, ``answer``, ...) pass through.
"""

from __future__ import annotations

from collections import Counter
from functools import partial
from typing import Any, BinaryIO, Iterator

from relcli.formats.documents import count, document_record, entity_span
from relcli.formats.jsonlist import read_values
from relcli.records import Record, RecordError, SkipReport

_CONSUMED = {"text", "spans", "relations", "tokens"}


def _argument(span: Any, text: str, spans: list[dict], where: dict, name: str, report: Counter) -> int:
    if not isinstance(span, dict):
        raise RecordError(f"{name} must be an object with start, end and label")
    candidate = entity_span(text, span.get("start"), span.get("end"), span.get("label"), span.get("text"), name)
    key = (candidate["start"], candidate["end"])
    found = where.get((*key, candidate["type"]), where.get(key))
    if found is None:
        spans.append(candidate)
        found = where[(*key, candidate["type"])] = where[key] = len(spans) - 1
        count(report, "Prodigy relation arguments matching no span (added as entities)")
    return found


def _record(item: Any, line: int, report: Counter, annotator: str | None) -> Record | None:
    if not isinstance(item, dict) or not isinstance(item.get("text"), str):
        raise RecordError("expected a JSON object with 'text' (a Prodigy task)")
    if item.get("answer", "accept") != "accept":
        count(report, "Prodigy answers other than accept (skipped)")
        return None
    if annotator is not None and annotator not in (item.get("_annotator_id"), item.get("_session_id")):
        count(report, "Prodigy answers by other annotators than --annotator (skipped)")
        return None
    text, entities, relations = item["text"], item.get("spans") or [], item.get("relations") or []
    if not isinstance(entities, list) or not isinstance(relations, list):
        raise RecordError("'spans' and 'relations' must be lists")
    spans, where = [], {}
    for k, span in enumerate(entities):
        if not isinstance(span, dict):
            raise RecordError(f"spans[{k}] must be an object")
        spans.append(entity_span(text, span.get("start"), span.get("end"), span.get("label"), span.get("text"), f"spans[{k}]"))
        where.setdefault((span["start"], span["end"], span.get("label")), k)
        where.setdefault((span["start"], span["end"]), k)
    triplets = []
    for k, relation in enumerate(relations):
        if not isinstance(relation, dict) or not isinstance(relation.get("label"), str):
            raise RecordError(f"relations[{k}] needs a 'label' (a string)")
        head, tail = (_argument(relation.get(role), text, spans, where, f"relations[{k}].{role}", report)
                      for role in ("head_span", "child_span"))
        triplets.append((head, relation["label"], tail))
    extra = {key: value for key, value in item.items() if key not in _CONSUMED}
    return document_record(f"line-{line}", text, spans, triplets, report, extra)


def read(
    stream: BinaryIO, report: Counter, skipped: SkipReport | None = None, annotator: str | None = None
) -> Iterator[Record]:
    return read_values(stream, partial(_record, report=report, annotator=annotator), skipped)
