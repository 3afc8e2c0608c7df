"""CoNLL04 in the SpERT-style JSON list: ``tokens``, BILOU ``tags``, ``relations`` and ``orig_id``.

Tokens are joined with single spaces, verbatim (the corpus is not PTB-escaped: it has literal
parentheses). Entities are read from the BILOU tags (``B-Peop I-Peop L-Peop``, ``U-Loc``, ``O``) in
order of appearance; a relation's ``head``/``tail`` are indices into that order. Each document
becomes an end-to-end record ``{"id": "conll04-<orig_id>", "text", "entities", "triplets"}``
whose spans keep the entity types; ``entities`` lists every entity, related or not.
"""

from __future__ import annotations

from typing import BinaryIO, Iterator

from relcli.formats.jsonlist import convert_items, join_tokens
from relcli.records import Record, RecordError, make_span, validate_record


def _entities(tokens: list[str], tags: list[str]) -> list[tuple[int, int, str]]:
    """Inclusive token spans with their types, from BILOU tags."""
    entities, open_at = [], None
    for i, tag in enumerate(tags):
        prefix, _, kind = tag.partition("-")
        inside = open_at is not None
        if prefix in ("I", "L") and not (inside and kind == tags[open_at].partition("-")[2]):
            raise RecordError(f"tag {tag} at token {i} does not continue an entity of that type")
        if prefix in ("B", "U", "O") and inside:
            raise RecordError(f"entity opened at token {open_at} is not closed by an L- tag before token {i}")
        if prefix not in ("B", "I", "L", "U", "O") or (prefix != "O" and not kind):
            raise RecordError(f"unknown tag {tag!r} at token {i}")
        if prefix == "B":
            open_at = i
        elif prefix == "L":
            entities.append((open_at, i, kind))
            open_at = None
        elif prefix == "U":
            entities.append((i, i, kind))
    if open_at is not None:
        raise RecordError(f"entity opened at token {open_at} is not closed by an L- tag")
    return entities


def _record(item: dict, number: int) -> Record:
    tokens, tags = item.get("tokens"), item.get("tags")
    if not isinstance(tokens, list) or not isinstance(tags, list) or len(tokens) != len(tags):
        raise RecordError("needs 'tokens' and 'tags', two lists of the same length")
    if not all(isinstance(t, str) for t in tokens + tags):
        raise RecordError("'tokens' and 'tags' must hold strings")
    text, starts = join_tokens(tokens)
    spans = [make_span(text, starts[first], starts[last] + len(tokens[last]), kind)
             for first, last, kind in _entities(tokens, tags)]
    triplets = []
    for relation in item.get("relations", []):
        head, tail, kind = (relation.get(key) if isinstance(relation, dict) else None for key in ("head", "tail", "type"))
        if not all(isinstance(i, int) and 0 <= i < len(spans) for i in (head, tail)) or not isinstance(kind, str):
            raise RecordError(f"relation {relation!r} needs a type and head/tail among the {len(spans)} entities")
        triplets.append({"head": spans[head], "relation": kind, "tail": spans[tail]})
    return validate_record({"id": f"conll04-{item.get('orig_id', number)}", "text": text,
                            "entities": spans, "triplets": triplets})


def read(stream: BinaryIO) -> Iterator[Record]:
    return convert_items(stream, _record, "document")
