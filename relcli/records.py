"""The record schema every stage speaks, its validation, and JSONL streaming.

Records stay plain dicts so that fields relcli does not know pass through every stage untouched.
An RC record has ``id``, ``text``, ``head``, ``tail`` and optionally ``relation``; an end-to-end
record has ``id``, ``text`` and ``triplets``. A span is ``{"text", "start", "end", "type"}`` with
character offsets into ``text`` (``end`` exclusive).
"""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass, field
from itertools import islice
from typing import Any, Callable, Iterable, Iterator, Sequence, TypeVar

import orjson

from relcli.errors import UserError

Record = dict[str, Any]
T = TypeVar("T")


def chunks(items: Iterable[T], size: int) -> Iterator[list[T]]:
    """Consecutive lists of up to ``size`` items: how every stage bounds its memory."""
    iterator = iter(items)
    while chunk := list(islice(iterator, size)):
        yield chunk


class RecordError(UserError):
    """A bad input record; ``line`` is the 1-based input line when known."""

    def __init__(self, message: str, line: int | None = None):
        super().__init__(message)
        self.message = message
        self.line = line

    def __str__(self) -> str:
        return f"line {self.line}: {self.message}" if self.line else self.message


def make_span(text: str, start: int, end: int, type: str | None = None) -> dict:
    return {"text": text[start:end], "start": start, "end": end, "type": type}


def mark_entities(record: Record, head: tuple[str, str] = ("<e1>", "</e1>"), tail: tuple[str, str] = ("<e2>", "</e2>")) -> str:
    """The record's text with the head and tail spans wrapped in markers (either may come first).

    At one offset closing markers come before opening ones; nested spans open outer-first and
    close inner-first, and an empty span closes last, so the markers always nest.
    """
    text = record["text"]
    inserts = []
    for span, (opening, closing) in ((record["head"], head), (record["tail"], tail)):
        start, end = span["start"], span["end"]
        inserts.append((start, 1, -end, opening))
        inserts.append((end, 0 if end > start else 2, -start, closing))
    pieces, last = [], 0
    for offset, _, _, marker in sorted(inserts):
        pieces += [text[last:offset], marker]
        last = offset
    pieces.append(text[last:])
    return "".join(pieces)


def crop_to_pair(record: Record, limit: int) -> Record:
    """The record itself when its text has at most ``limit`` characters, else a copy whose text is
    the ``limit`` characters centred on the head/tail pair (offsets shifted). A text far longer than
    a sentence would otherwise make a prompt no model context holds; the pair and its context are
    what relation classification reads."""
    text = record["text"]
    if len(text) <= limit:
        return record
    spans = [record["head"], record["tail"]]
    low, high = min(s["start"] for s in spans), max(s["end"] for s in spans)
    if high - low > limit:
        raise UserError(f"record {record.get('id')!r}: its head and tail are {high - low} characters apart, "
                        f"more than the {limit} a prompt takes")
    start = max(0, min(low - (limit - (high - low)) // 2, len(text) - limit))
    shift = lambda span: {**span, "start": span["start"] - start, "end": span["end"] - start}  # noqa: E731
    return {**record, "text": text[start:start + limit], "head": shift(record["head"]), "tail": shift(record["tail"])}


def check_span(span: Any, text: str, name: str, *, offsets_required: bool = True) -> None:
    if not isinstance(span, dict):
        raise RecordError(f"{name} must be an object with text/start/end")
    if not isinstance(span.get("text"), str):
        raise RecordError(f"{name}.text must be a string")
    start, end = span.get("start"), span.get("end")
    if start is None and end is None and not offsets_required:
        return
    for key, value in (("start", start), ("end", end)):
        if not isinstance(value, int) or isinstance(value, bool):
            raise RecordError(f"{name}.{key} must be an integer, got {value!r}")
    if not 0 <= start <= end:
        raise RecordError(f"{name} has start {start} and end {end}")
    if end > len(text):
        raise RecordError(f"{name}.end {end} is past the end of text (len {len(text)})")
    if text[start:end] != span["text"]:
        raise RecordError(f"{name}.text {span['text']!r} differs from text[{start}:{end}] {text[start:end]!r}")
    if span.get("type") is not None and not isinstance(span["type"], str):
        raise RecordError(f"{name}.type must be a string or null")


def _check_label(record: Record, key: str) -> None:
    if record.get(key) is not None and not isinstance(record[key], str):
        raise RecordError(f"{key} must be a string or null")


def _check_triplets(record: Record, key: str) -> None:
    triplets = record[key]
    if not isinstance(triplets, list):
        raise RecordError(f"{key} must be a list")
    for i, triplet in enumerate(triplets):
        if not isinstance(triplet, dict) or not isinstance(triplet.get("relation"), str):
            raise RecordError(f"{key}[{i}] needs head, relation (a string) and tail")
        for role in ("head", "tail"):
            check_span(triplet.get(role), record["text"], f"{key}[{i}].{role}", offsets_required=False)


def validate_record(record: Any) -> Record:
    """Check one RC or end-to-end record; return it unchanged or raise RecordError."""
    if not isinstance(record, dict):
        raise RecordError("a record must be a JSON object")
    if not isinstance(record.get("id"), (str, int)) or isinstance(record.get("id"), bool):
        raise RecordError("missing field 'id' (a string)")
    if not isinstance(record.get("text"), str):
        raise RecordError("missing field 'text' (a string)")
    if "triplets" in record or ("head" not in record and "predicted_triplets" in record):
        if "triplets" in record:
            _check_triplets(record, "triplets")
    else:
        for role in ("head", "tail"):
            if role not in record:
                raise RecordError(f"missing field '{role}' (or 'triplets' for end-to-end records)")
            check_span(record[role], record["text"], role)
        _check_label(record, "relation")
        _check_label(record, "predicted")
    if isinstance(record.get("predicted_triplets"), list):
        _check_triplets(record, "predicted_triplets")
    return record


def is_end_to_end(record: Record) -> bool:
    return "head" not in record and ("triplets" in record or "predicted_triplets" in record)


@dataclass
class SkipReport:
    """Bad lines skipped under ``--skip-invalid``: the count and the first few messages."""

    count: int = 0
    examples: list[str] = field(default_factory=list)

    def add(self, error: RecordError) -> None:
        self.count += 1
        if len(self.examples) < 5:
            self.examples.append(str(error))


def read_jsonl(
    lines: Iterable[bytes | str],
    validate: Callable[[Any], Record] = validate_record,
    skipped: SkipReport | None = None,
) -> Iterator[Record]:
    """Parse and validate JSONL lazily. Blank lines are ignored.

    With ``skipped`` given, bad lines are counted there and skipped; otherwise the first one
    raises RecordError naming its line. A UTF-8 byte order mark before the first line (as some
    Windows tools write) is not part of the data.
    """

    def parse(line: bytes | str, number: int) -> Record | None:
        if number == 1:
            line = line.removeprefix(b"\xef\xbb\xbf" if isinstance(line, bytes) else "\ufeff")
        return validate(loads(line)) if line.strip() else None

    return parse_lines(lines, parse, skipped)


# orjson reads integers past 64 bits as floats (and refuses to write them): lines with such long
# digit runs go through the standard library, which keeps them exact.
_LONG_DIGITS = re.compile(rb"\d{19}")


def loads(line: bytes | str) -> Any:
    """One JSON value; malformed JSON is a RecordError."""
    raw = line.encode() if isinstance(line, str) else line
    try:
        return json.loads(raw) if _LONG_DIGITS.search(raw) else orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise RecordError(f"malformed JSON ({exc.args[0].split(':')[0]})") from None
    except (ValueError, RecursionError) as exc:
        raise RecordError(f"malformed JSON ({str(exc).split(':')[0]})") from None


def parse_lines(
    lines: Iterable[bytes | str],
    parse: Callable[[Any, int], Record | None],
    skipped: SkipReport | None = None,
) -> Iterator[Record]:
    """``parse(line, number)`` over numbered lines, dropping Nones. A RecordError gets the line
    number unless ``parse`` gave it one; with ``skipped`` given it is counted there and the line
    skipped, else it is raised."""
    for number, line in enumerate(lines, start=1):
        try:
            record = parse(line, number)
        except RecordError as exc:
            if exc.line is None:
                exc.line = number
            if skipped is None:
                raise
            skipped.add(exc)
            continue
        if record is not None:
            yield record


def dumps(record: Record) -> bytes:
    try:
        return orjson.dumps(record, option=orjson.OPT_SERIALIZE_NUMPY) + b"\n"
    except TypeError:  # an integer past 64 bits (see loads)
        return json.dumps(record, ensure_ascii=False, separators=(",", ":")).encode() + b"\n"


def data_hash(rows: Iterable[Record]) -> str:
    """A short content hash of records (recorded with what was trained or indexed on them)."""
    digest = hashlib.sha256()
    for row in rows:
        digest.update(dumps(row))
    return digest.hexdigest()[:16]


def sorted_batches(keys: Sequence[int], batch_size: int) -> Iterator[list[int]]:
    """Index batches over items sorted by ``keys`` (their lengths), so each batch pads little;
    callers put results back in input order by these indices."""
    order = sorted(range(len(keys)), key=keys.__getitem__)
    for start in range(0, len(order), batch_size):
        yield order[start:start + batch_size]


def write_jsonl(records: Iterable[Record], out) -> int:
    """Write records to a binary stream, one per line; return how many."""
    count = 0
    for record in records:
        out.write(dumps(record))
        count += 1
    return count
