"""TACRED (LDC JSON list) and its relabelling patches, TACREV and Re-TACRED.

PTB escapes in ``token`` are turned back into text (``-LRB-`` -> ``(``, ````` -> ``"`` ...) and the
tokens are joined with single spaces; the inclusive token spans become character spans. The subject
is ``head`` and the object ``tail``, with their NER types. The token-aligned fields (``token``,
``stanford_pos/ner/head/deprel``) and the span indices are dropped, as they no longer line up with
anything; any other field (e.g. ``docid``) is kept.

A patch is either TACREV's ``[{"id", "relation"}]`` (relabels the ids it lists) or Re-TACRED's
``{id: label}`` map (relabels, and drops records missing from the map); the JSON shape tells which.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, BinaryIO, Iterator

import orjson

from relcli.errors import UserError
from relcli.formats.jsonlist import convert_items, join_tokens
from relcli.records import Record, RecordError, make_span, validate_record

PTB_ESCAPES = {
    "-LRB-": "(", "-RRB-": ")", "-LSB-": "[", "-RSB-": "]", "-LCB-": "{", "-RCB-": "}",
    "``": '"', "''": '"', "`": "'",
}
_CONSUMED = {
    "id", "relation", "token", "subj_start", "subj_end", "obj_start", "obj_end", "subj_type", "obj_type",
    "stanford_pos", "stanford_ner", "stanford_head", "stanford_deprel",
}


@dataclass
class Patch:
    """Gold labels by id; ``exclusive`` (Re-TACRED) drops records whose id is not listed."""

    labels: dict[str, str]
    exclusive: bool
    used: set[str] = field(default_factory=set)

    @property
    def unused(self) -> int:
        return len(self.labels) - len(self.used)


def load_patch(path: Path) -> Patch:
    """Read a TACREV patch or a Re-TACRED map, telling them apart by their JSON shape."""
    try:
        data = orjson.loads(Path(path).read_bytes())
    except FileNotFoundError:
        raise UserError(f"no such file: {path}", param="patch") from None
    except orjson.JSONDecodeError as exc:
        raise UserError(f"{path}: malformed JSON ({exc.args[0].split(':')[0]})", param="patch") from None
    except OSError as exc:  # a directory, no permission
        raise UserError(f"cannot read {path}: {exc.strerror}", param="patch") from None
    if isinstance(data, list) and all(
        isinstance(item, dict) and isinstance(item.get("id"), str) and isinstance(item.get("relation"), str)
        for item in data
    ):
        return Patch({item["id"]: item["relation"] for item in data}, exclusive=False)
    if isinstance(data, dict) and all(isinstance(label, str) for label in data.values()):
        return Patch(dict(data), exclusive=True)
    raise UserError(f'{path}: neither a TACREV patch [{{"id", "relation"}}] nor a Re-TACRED map {{id: label}}', param="patch")


def _field(item: dict, key: str, kind: type) -> Any:
    value = item.get(key)
    if not isinstance(value, kind) or isinstance(value, bool):
        raise RecordError(f"missing field {key!r} ({kind.__name__})")
    return value


def _record(item: dict, number: int) -> Record:
    tokens = _field(item, "token", list)
    if not all(isinstance(token, str) for token in tokens):
        raise RecordError("'token' must be a list of strings")
    tokens = [PTB_ESCAPES.get(token, token) for token in tokens]
    text, starts = join_tokens(tokens)
    spans = {}
    for role in ("subj", "obj"):
        first, last = _field(item, f"{role}_start", int), _field(item, f"{role}_end", int)
        if not 0 <= first <= last < len(tokens):
            raise RecordError(f"{role}_start {first}, {role}_end {last} is not a span of the {len(tokens)} tokens")
        spans[role] = make_span(text, starts[first], starts[last] + len(tokens[last]), item.get(f"{role}_type"))
    record = {key: value for key, value in item.items() if key not in _CONSUMED}
    record = {"id": _field(item, "id", str), "text": text, "head": spans["subj"], "tail": spans["obj"],
              "relation": item.get("relation"), **record}
    return validate_record(record)


def read(stream: BinaryIO, report: Counter, patch: Patch | None = None) -> Iterator[Record]:
    for record in convert_items(stream, _record, "record"):
        if patch is not None:
            label = patch.labels.get(record["id"])
            if label is None and patch.exclusive:
                report["dropped: not in the Re-TACRED map"] += 1
                continue
            if label is not None:
                patch.used.add(record["id"])
                if label != record["relation"]:
                    report["relabelled by the patch"] += 1
                    record["relation"] = label
        yield record
