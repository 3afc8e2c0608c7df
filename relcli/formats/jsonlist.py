"""Shared by the JSON formats: one JSON list of tokenised sentences (TACRED, CoNLL04), and the
annotation-tool exports whose values are read with the line each starts on (doccano, Label Studio,
Prodigy)."""

from __future__ import annotations

import json
import re
from typing import Any, BinaryIO, Callable, Iterator

import orjson

from relcli.records import Record, RecordError, SkipReport, parse_lines

_GAP = re.compile(r"[ \t\r\n]*")


def convert_items(stream: BinaryIO, build: Callable[[Any, int], Record], what: str) -> Iterator[Record]:
    """``build(item, n)`` for each item of the list (n from 1); errors name the item as ``{what} n``."""
    try:
        items = orjson.loads(stream.read())
    except orjson.JSONDecodeError as exc:
        raise RecordError(f"malformed JSON ({exc.args[0].split(':')[0]})") from None
    if not isinstance(items, list):
        raise RecordError(f"expected a JSON list, one object per {what}")
    for number, item in enumerate(items, start=1):
        if not isinstance(item, dict):
            raise RecordError(f"{what} {number}: expected a JSON object")
        try:
            record = build(item, number)
        except RecordError as exc:
            raise RecordError(f"{what} {number}: {exc.message}") from None
        yield record


def join_tokens(tokens: list[str]) -> tuple[str, list[int]]:
    """The tokens joined with single spaces, and the character offset where each token starts."""
    starts, offset = [], 0
    for token in tokens:
        starts.append(offset)
        offset += len(token) + 1
    return " ".join(tokens), starts


def _decoded(raw: bytes, number: int) -> str:
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise RecordError("not UTF-8 text", number + raw.count(b"\n", 0, exc.start)) from None
    return text.removeprefix("\ufeff") if number == 1 else text


def _list_items(text: str, first_line: int) -> Iterator[tuple[int, Any]]:
    """The items of the JSON list that ``text`` starts with, each with the line it starts on."""
    decoder, line, counted = json.JSONDecoder(), first_line, 0

    def line_at(pos: int) -> int:
        nonlocal line, counted
        line, counted = line + text.count("\n", counted, pos), pos
        return line

    pos = _GAP.match(text, 1).end()
    while not text.startswith("]", pos):
        try:
            value, end = decoder.raw_decode(text, pos)
        except json.JSONDecodeError as exc:
            raise RecordError(f"malformed JSON ({exc.msg})", first_line + exc.lineno - 1) from None
        yield line_at(pos), value
        pos = _GAP.match(text, end).end()
        if text.startswith(",", pos):
            pos = _GAP.match(text, pos + 1).end()
        elif not text.startswith("]", pos):
            raise RecordError("malformed JSON (expected ',' or ']' after a list item)", line_at(pos))
    if text[pos + 1 :].strip():
        raise RecordError("malformed JSON (text after the list)", line_at(pos + 1))


def json_values(stream: BinaryIO) -> Iterator[tuple[int, Any]]:
    """``(line, value)`` for each JSON value of a stream: one per line (JSONL), pretty-printed values
    one after another, or the items of one top-level list. In the first two forms a malformed value
    is yielded as its RecordError (so it can be skipped) and reading goes on with the next line."""
    decoder, buffer, start = json.JSONDecoder(), "", 1
    for number, raw in enumerate(stream, start=1):
        try:
            line = _decoded(raw, number)
        except RecordError as exc:
            buffer = ""
            yield number, exc
            continue
        if not buffer.strip():
            buffer, start = "", number
            if line.lstrip().startswith("["):
                yield from _list_items(line.lstrip() + _decoded(stream.read(), number + 1), number)
                return
        buffer += line
        while buffer.strip():
            buffer = buffer.lstrip()
            try:
                value, end = decoder.raw_decode(buffer)
            except json.JSONDecodeError as exc:
                if not buffer[exc.pos :].strip():
                    break  # the value goes on on the next line
                yield start + exc.lineno - 1, RecordError(f"malformed JSON ({exc.msg})")
                buffer = ""
                break
            yield start, value
            buffer, start = buffer[end:], number
    if buffer.strip():
        yield start, RecordError("malformed JSON (the last value is not closed)")


def read_values(
    stream: BinaryIO, build: Callable[[Any, int], Record | None], skipped: SkipReport | None = None
) -> Iterator[Record]:
    """``build(value, line)`` for each value of ``json_values``; a bad value stops the reading with its
    line number, or with ``skipped`` given is counted there and skipped."""

    def parse(item: tuple[int, Any], _) -> Record | None:
        line, value = item
        try:
            if isinstance(value, RecordError):
                raise value
            return build(value, line)
        except RecordError as exc:
            exc.line = line
            raise

    return parse_lines(json_values(stream), parse, skipped)
