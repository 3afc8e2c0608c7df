"""Sentences with inline entity markers: ``<e1>head</e1> ... <e2>tail</e2>``.

Input lines are either JSON objects whose ``text`` holds the markers (other fields are kept, ``id``
is generated as ``line-<n>`` when absent) or plain text lines with the markers. The markers may come
in either order (``<e2>`` before ``<e1>``). SemEval-2010 Task 8 uses the same markers.
"""

from __future__ import annotations

import re
from typing import BinaryIO, Iterator

from relcli.records import Record, RecordError, SkipReport, loads, make_span, parse_lines, validate_record

_TAG = re.compile(r"</?e[12]>")


def strip_markers(marked: str) -> tuple[str, dict, dict]:
    """The text without markers, and the head (e1) and tail (e2) spans in it."""
    pieces, offsets, end = [], {}, 0
    for match in _TAG.finditer(marked):
        pieces.append(marked[end : match.start()])
        end = match.end()
        if match.group() in offsets:
            raise RecordError(f"marker {match.group()} appears twice")
        offsets[match.group()] = sum(map(len, pieces))
    text = "".join(pieces) + marked[end:]
    spans = []
    for name in ("e1", "e2"):
        start, stop = offsets.get(f"<{name}>"), offsets.get(f"</{name}>")
        if start is None or stop is None:
            raise RecordError(f"missing marker <{name}> or </{name}>")
        if stop < start:
            raise RecordError(f"</{name}> comes before <{name}>")
        spans.append(make_span(text, start, stop))
    return text, spans[0], spans[1]


def from_marked(record: dict) -> Record:
    """A record whose ``text`` holds markers, with the markers turned into head and tail spans."""
    if not isinstance(record.get("text"), str):
        raise RecordError("missing field 'text' (a string with <e1>..</e1> and <e2>..</e2> markers)")
    text, head, tail = strip_markers(record["text"])
    return validate_record({**record, "text": text, "head": head, "tail": tail})


def _parse_line(raw: bytes, number: int) -> Record | None:
    try:
        line = raw.decode("utf-8").strip()
    except UnicodeDecodeError:
        raise RecordError("not UTF-8 text") from None
    if not line:
        return None
    if not line.startswith("{"):
        return from_marked({"id": f"line-{number}", "text": line})
    obj = loads(line)
    if not isinstance(obj, dict):
        raise RecordError("a record must be a JSON object")
    return from_marked({"id": f"line-{number}", **obj})


def read(stream: BinaryIO, skipped: SkipReport | None = None) -> Iterator[Record]:
    """Records from marked lines; bad lines raise RecordError, or are counted in ``skipped``."""
    return parse_lines(stream, _parse_line, skipped)
