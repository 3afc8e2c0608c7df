"""Label Studio's JSON export (a list of tasks) to end-to-end records, one per task.

A task is ``{"id", "data": {"text": ...}, "annotations": [{"completed_by", "was_cancelled",
"result": [...]}], ...}``; its record comes from one annotation: the one by ``annotator`` (matched
against ``completed_by``, an id or an object with ``id``/``email``, and ``created_username``) or by
default the first one not cancelled. Tasks without such an annotation are skipped and counted, and
so are tasks where the default had several to choose from. ``predictions`` are not read.

In the annotation's ``result``, ``labels`` regions are the entities: ``value.start``/``value.end``
are 0-based offsets (end exclusive) into the task text, checked against ``value.text``; the span
type is the first of ``value.labels``. ``relation`` items are the triplets: ``from_id``/``to_id``
name regions of the same result, ``direction`` ``right`` reads from→to, ``left`` to→from and
``bi`` gives both; one triplet per label, and a relation without a label is dropped (each counted).
Other results (choices, text areas, ...) are counted and ignored. The text is ``data.text``, or the
only string in ``data``; the other ``data`` fields and ``meta`` pass through, and ``annotator``
(``completed_by``) is added.
"""

from __future__ import annotations

from collections import Counter
from functools import partial
from typing import Any, BinaryIO, Iterator

from relcli.formats.documents import count, document_record, entity_span
from relcli.formats.jsonlist import read_values
from relcli.records import Record, RecordError, SkipReport

_DIRECTIONS = {"right": ((0, 1),), "left": ((1, 0),), "bi": ((0, 1), (1, 0)), None: ((0, 1),)}


def _names(annotation: dict) -> set[str]:
    """What ``--annotator`` may call the author of an annotation."""
    who = annotation.get("completed_by")
    names = {str(who[key]) for key in ("id", "email") if key in who} if isinstance(who, dict) else {str(who)}
    return names | {str(annotation["created_username"])} if "created_username" in annotation else names


def _annotation(task: dict, annotator: str | None, report: Counter) -> dict | None:
    annotations = task.get("annotations") or []
    if not isinstance(annotations, list) or not all(isinstance(a, dict) for a in annotations):
        raise RecordError("'annotations' must be a list of objects")
    done = [a for a in annotations if not a.get("was_cancelled")]
    if annotator is not None:
        done = [a for a in done if annotator in _names(a)]
    if not done:
        by = " by --annotator" if annotator is not None else ""
        count(report, f"Label Studio tasks without a completed annotation{by} (skipped)")
        return None
    if len(done) > 1 and annotator is None:
        count(report, "Label Studio tasks with several annotations (the first used; choose with --annotator)")
    return done[0]


def _text(data: Any) -> tuple[str, str]:
    if isinstance(data, dict) and isinstance(data.get("text"), str):
        return "text", data["text"]
    strings = [key for key, value in data.items() if isinstance(value, str)] if isinstance(data, dict) else []
    if len(strings) != 1:
        raise RecordError("expected the task text in data.text")
    return strings[0], data[strings[0]]


def _triplets(result: list, text: str, report: Counter) -> tuple[list[dict], list[tuple[int, str, int]]]:
    spans, index, relations = [], {}, []
    for k, item in enumerate(result):
        kind = item.get("type") if isinstance(item, dict) else None
        if kind == "labels":
            value = item.get("value") if isinstance(item.get("value"), dict) else {}
            labels = value.get("labels") or [None]
            if not isinstance(labels, list):
                raise RecordError(f"result[{k}] value.labels must be a list")
            count(report, "Label Studio regions with several labels (the first is the type)", len(labels) > 1)
            spans.append(entity_span(text, value.get("start"), value.get("end"), labels[0], value.get("text"), f"result[{k}]"))
            if isinstance(item.get("id"), str):
                index.setdefault(item["id"], len(spans) - 1)
        elif kind != "relation":
            count(report, "Label Studio results other than labels and relation (ignored)")
    for k, item in enumerate(result):
        if not isinstance(item, dict) or item.get("type") != "relation":
            continue
        ends = [item.get("from_id"), item.get("to_id")]
        missing = [end for end in ends if not isinstance(end, str) or end not in index]
        if missing:
            raise RecordError(f"result[{k}] relates {missing[0]!r}, which is not a labels region of this annotation")
        if item.get("direction") not in _DIRECTIONS:
            raise RecordError(f"result[{k}] has direction {item.get('direction')!r} (expected right, left or bi)")
        labels = item.get("labels") or []
        if not isinstance(labels, list) or not all(isinstance(label, str) for label in labels):
            raise RecordError(f"result[{k}] labels must be a list of strings")
        count(report, "Label Studio relations without a label (dropped)", not labels)
        count(report, "Label Studio bidirectional relations (one triplet each way)", item.get("direction") == "bi")
        for head, tail in _DIRECTIONS[item.get("direction")]:
            relations += [(index[ends[head]], label, index[ends[tail]]) for label in labels]
    return spans, relations


def _record(task: Any, line: int, report: Counter, annotator: str | None) -> Record | None:
    if isinstance(task, dict) and "result" in task and "data" not in task:
        raise RecordError("this is one annotation's result list, not a task: export the project as JSON")
    if not isinstance(task, dict) or "data" not in task:
        raise RecordError("expected a Label Studio task, a JSON object with 'data' and 'annotations'")
    key, text = _text(task["data"])
    annotation = _annotation(task, annotator, report)
    if annotation is None:
        return None
    if not isinstance(annotation.get("result"), list):
        raise RecordError("the annotation's 'result' must be a list")
    spans, relations = _triplets(annotation["result"], text, report)
    extra = {name: value for name, value in task["data"].items() if name != key}
    extra.update({"meta": task["meta"]} if "meta" in task else {}, annotator=annotation.get("completed_by"))
    id = task["id"] if task.get("id") is not None else f"line-{line}"
    return document_record(id, text, spans, relations, report, extra)


def read(
    stream: BinaryIO, report: Counter, skipped: SkipReport | None = None, annotator: str | None = None
) -> Iterator[Record]:
    return read_values(stream, partial(_record, report=report, annotator=annotator), skipped)
