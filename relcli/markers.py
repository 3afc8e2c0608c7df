"""Entity markers and the token encoding of relation-classification records for encoders.

The pair is marked in the text with tokens added to the tokenizer (``<e1>..</e1>``, ``<e2>..</e2>``;
typed markers put the entity type in them, ``<e1:PERSON>``); an encoded record keeps the positions
of the two start markers, which the classifier head reads. torch is imported only by ``pad``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Iterable

from relcli.errors import UserError
from relcli.records import Record, mark_entities


def marker_tokens(entity_types: Iterable[str] = ()) -> list[str]:
    """The tokens added to the tokenizer: untyped markers, then typed ones for each entity type."""
    tokens = ["<e1>", "</e1>", "<e2>", "</e2>"]
    for entity_type in entity_types:
        tokens += [f"<e1:{entity_type}>", f"</e1:{entity_type}>", f"<e2:{entity_type}>", f"</e2:{entity_type}>"]
    return tokens


def mark_text(record: Record, entity_types: frozenset[str] | None = None) -> str:
    """The record's text with the head wrapped in e1 markers and the tail in e2 markers.

    With ``entity_types`` given (typed markers), a span whose type is among them gets typed
    markers; other spans fall back to the untyped ones.
    """
    if not isinstance(record.get("head"), dict) or not isinstance(record.get("tail"), dict):
        raise UserError(f"record {record.get('id')!r}: a classifier needs the head and tail spans")
    def markers(role: str, span: dict) -> tuple[str, str]:
        kind = span.get("type")
        name = f"{role}:{kind}" if entity_types and kind in entity_types else role
        return f"<{name}>", f"</{name}>"

    return mark_entities(record, markers("e1", record["head"]), markers("e2", record["tail"]))


@dataclass
class Encoded:
    ids: list[int]
    e1: int  # index of the head's start marker (0, i.e. [CLS], if truncated away)
    e2: int


def _window(n: int, length: int, keep: list[int]) -> int:
    """Start of a ``length``-token window over ``n`` tokens keeping the ``keep`` positions if it can."""
    lo, hi = min(keep), max(keep)
    if hi - lo + 1 >= length:
        return lo
    return max(0, min(lo - (length - (hi - lo + 1)) // 2, n - length))


def encode_records(tokenizer, records: list[Record], max_length: int, entity_types: frozenset[str] | None) -> list[Encoded]:
    """Token ids with [CLS]/[SEP] and the start-marker positions; long inputs are trimmed to a
    window around the entities rather than cut at the end."""
    texts = [mark_text(record, entity_types) for record in records]
    batch = tokenizer(texts, add_special_tokens=False)["input_ids"]
    roles = _marker_roles(tokenizer, entity_types)
    cls, sep = tokenizer.cls_token_id, tokenizer.sep_token_id
    body = max_length - 2
    encoded = []
    for ids in batch:
        found = {role: i for i, token in reversed(list(enumerate(ids))) if (role := roles.get(token))}
        if len(ids) > body:
            start = _window(len(ids), body, list(found.values()) or [0])
            ids = ids[start:start + body]
            found = {role: i - start for role, i in found.items() if 0 <= i - start < body}
        e1, e2 = found.get("<e1"), found.get("<e2")
        encoded.append(Encoded([cls, *ids, sep], e1 + 1 if e1 is not None else 0, e2 + 1 if e2 is not None else 0))
    return encoded


def _marker_roles(tokenizer, entity_types: frozenset[str] | None) -> dict[int, str]:
    """Token id -> role prefix (``<e1``, ``</e1``, ``<e2``, ``</e2``) for every marker token."""
    tokens = marker_tokens(sorted(entity_types or ()))
    ids = tokenizer.convert_tokens_to_ids(tokens)
    return {i: token.split(":")[0].rstrip(">") for i, token in zip(ids, tokens)}


def pad(batch: list[Encoded], pad_id: int):
    import torch

    width = max(len(item.ids) for item in batch)
    ids = torch.full((len(batch), width), pad_id, dtype=torch.long)
    mask = torch.zeros((len(batch), width), dtype=torch.long)
    for row, item in enumerate(batch):
        ids[row, :len(item.ids)] = torch.tensor(item.ids)
        mask[row, :len(item.ids)] = 1
    positions = torch.tensor([[item.e1, item.e2] for item in batch], dtype=torch.long)
    return ids, mask, positions
