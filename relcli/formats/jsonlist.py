"""Shared by the formats whose file is one JSON list of tokenised sentences (TACRED, CoNLL04)."""

from __future__ import annotations

from typing import Any, BinaryIO, Callable, Iterator

import orjson

from relcli.records import Record, RecordError


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
