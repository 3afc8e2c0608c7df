"""SemEval-2010 Task 8: the official TRAIN_FILE.TXT / TEST_FILE_FULL.TXT.

Each record is four lines (CRLF in the release; LF works too)::

    1<TAB>"The system ... in an arrayed <e1>configuration</e1> of antenna <e2>elements</e2>."
    Component-Whole(e2,e1)
    Comment: ...
    <blank>

``e1`` becomes ``head`` and ``e2`` ``tail`` (spans without a type); the directed label is kept as
written; ids are ``semeval-<n>`` from the file's own numbers.
"""

from __future__ import annotations

import re
from typing import BinaryIO, Iterator

from relcli.formats.marked import strip_markers
from relcli.records import Record, RecordError, validate_record

_SENTENCE = re.compile(r'(\d+)\t"?(.*?)"?')


def _blocks(stream: BinaryIO) -> Iterator[list[tuple[int, str]]]:
    """Groups of (line number, line) separated by blank lines."""
    block = []
    for number, raw in enumerate(stream, start=1):
        try:
            line = raw.decode("utf-8-sig" if number == 1 else "utf-8").rstrip("\r\n")
        except UnicodeDecodeError:
            raise RecordError("not UTF-8 text", number) from None
        if line.strip():
            block.append((number, line))
        elif block:
            yield block
            block = []
    if block:
        yield block


def _record(block: list[tuple[int, str]]) -> Record:
    (number, line), rest = block[0], block[1:]
    sentence = _SENTENCE.fullmatch(line)
    if not sentence:
        raise RecordError('expected ID<TAB>"sentence with <e1>..</e1> and <e2>..</e2>"', number)
    if not rest:
        raise RecordError("sentence without a label line", number)
    label_number, label = rest[0]
    if _SENTENCE.fullmatch(label) or label.startswith("Comment:"):
        raise RecordError(f"sentence without a label line (line {label_number} is not a label)", number)
    for extra_number, extra in rest[1:]:
        if extra_number > label_number + 1 or not extra.startswith("Comment:"):
            raise RecordError("expected a blank line after the label and its Comment: line", extra_number)
    try:
        text, head, tail = strip_markers(sentence.group(2))
        return validate_record(
            {"id": f"semeval-{sentence.group(1)}", "text": text, "head": head, "tail": tail, "relation": label.strip()}
        )
    except RecordError as exc:
        exc.line = number
        raise


def read(stream: BinaryIO) -> Iterator[Record]:
    for block in _blocks(stream):
        yield _record(block)
