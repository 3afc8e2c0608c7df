"""End-to-end triplets as text: linearisation, tolerant parsing and prompts.

Two output styles are spoken:

- ``"rebel"``: REBEL's linearisation ``<triplet> head <subj> tail <obj> relation``, where
  consecutive triplets sharing a head write it once (``<triplet> h <subj> t1 <obj> r1 <subj> t2
  <obj> r2``);
- ``"json"``: a compact JSON list ``[{"head": ..., "relation": ..., "tail": ...}]``, the natural
  answer of an instruct model.

Both list triplets in order of head appearance in the text. Parsing never raises: it recovers every
well-formed triplet and counts what it could not use. Generation lives in relcli.triplet_extract.
"""

from __future__ import annotations

import bisect
import json
import re
import unicodedata
from typing import Any, Callable, Iterable, Iterator, Sequence

from relcli.errors import UserError
from relcli.records import Record, chunks

STYLES = ("rebel", "json")
REBEL_TOKENS = ["<triplet>", "<subj>", "<obj>"]
_REBEL_SPLIT = re.compile("(" + "|".join(REBEL_TOKENS) + ")")
_JSON = json.JSONDecoder()
_ARRAY_START = re.compile(r"\[(?=\s*[{\]])")
_SPACE = re.compile(r"\s*")


def _check_style(style: str) -> None:
    if style not in STYLES:
        raise ValueError(f"unknown triplet style {style!r} (choose from {', '.join(STYLES)})")


def _in_head_order(triplets: Iterable[dict]) -> list[dict]:
    """Triplets sorted by head start (stable: ties keep their order, heads without offsets go last)."""

    def key(triplet: dict) -> float:
        start = triplet["head"].get("start")
        return float("inf") if start is None else start

    return sorted(triplets, key=key)


def linearize(triplets: Iterable[dict], style: str) -> str:
    """The text a model should generate for these triplets (see the module docstring)."""
    _check_style(style)
    ordered = _in_head_order(triplets)
    if style == "json":
        items = [{"head": t["head"]["text"], "relation": t["relation"], "tail": t["tail"]["text"]} for t in ordered]
        return json.dumps(items, ensure_ascii=False, separators=(",", ":"))
    parts: list[str] = []
    previous_head = None
    for t in ordered:
        head = (t["head"]["text"], t["head"].get("start"))
        if head != previous_head:
            parts += ["<triplet>", t["head"]["text"]]
            previous_head = head
        parts += ["<subj>", t["tail"]["text"], "<obj>", t["relation"]]
    return " ".join(parts)


def _joined(a: str, b: str) -> bool:
    """Whether two adjacent characters are inside one word (letters or digits of a script written
    with spaces; East Asian wide characters are words of their own)."""
    return a.isalnum() and b.isalnum() and unicodedata.east_asian_width(a) not in "WF" \
        and unicodedata.east_asian_width(b) not in "WF"


def word_aligned(text: str, start: int, end: int | None = None) -> bool:
    """Whether ``text[start:end]`` starts (and, with ``end``, ends) between words, not inside one."""
    return all(not (0 < i < len(text) and _joined(text[i - 1], text[i])) for i in (start, end) if i is not None)


def occurrences(surface: str, text: str) -> list[int]:
    """Where ``surface`` occurs in ``text``: the occurrences that start and end between words (not
    "Paris" in "Parisian"), or, when there is none, every occurrence."""
    starts, start = [], text.find(surface)
    while start >= 0:
        starts.append(start)
        start = text.find(surface, start + 1)
    aligned = [s for s in starts if word_aligned(text, s, s + len(surface))]
    return aligned or starts


def _span(surface: str, start: int | None) -> dict:
    end = None if start is None else start + len(surface)
    return {"text": surface, "start": start, "end": end, "type": None}


def _spans(head: str, tail: str, text: str) -> tuple[dict, dict]:
    """Head and tail spans at the closest pair of their occurrences in ``text`` (earliest on ties),
    occurrences between words preferred (see :func:`occurrences`).

    A relation is usually stated locally, so the closest pair is the best cheap guess when a surface
    form occurs more than once. An argument that does not occur gets null offsets; the other one
    then takes its first occurrence.
    """
    heads, tails = occurrences(head, text), occurrences(tail, text)
    if heads and tails:
        # For each head occurrence only the tail occurrences just before and after it can be closest.
        candidates = []
        for h in heads:
            i = bisect.bisect_left(tails, h)
            candidates += [(h, t) for t in tails[max(i - 1, 0) : i + 1]]
        h, t = min(candidates, key=lambda pair: (abs(pair[0] - pair[1]), pair))
    else:
        h, t = (heads or [None])[0], (tails or [None])[0]
    return _span(head, h), _span(tail, t)


def _rebel_triples(generation: str) -> tuple[list[tuple[Any, Any, Any]], int]:
    """(head, relation, tail) strings from REBEL text, and the number of broken fragments."""
    pieces = _REBEL_SPLIT.split(generation)
    # Text before the first marker is chatter, not a triplet.
    malformed = int(bool(pieces[0].strip()))
    triples = []
    head, head_used, tail = None, True, None
    for marker, content in zip(pieces[1::2], pieces[2::2]):
        content = content.strip()
        if marker == "<triplet>":
            malformed += (not head_used) or tail is not None
            head, head_used, tail = content, False, None
        elif marker == "<subj>":
            malformed += tail is not None
            tail = content
        else:
            if tail is None:
                malformed += 1
            else:
                triples.append((head, content, tail))
            head_used, tail = True, None
    malformed += (not head_used) or tail is not None
    return triples, malformed


def _json_array(generation: str) -> tuple[list, bool] | None:
    """The elements of the first JSON array of objects in ``generation``, and whether it is complete.

    A truncated array still yields the elements before the break. Only a ``[`` followed by ``{``
    or ``]`` can start the answer, so prose like "[see below]" or "[1]" is passed over cheaply.
    None when there is no such array.
    """
    for match in _ARRAY_START.finditer(generation):
        items: list = []
        i = _SPACE.match(generation, match.end()).end()
        if generation.startswith("]", i):
            return items, True
        while True:
            try:
                item, i = _JSON.raw_decode(generation, i)
            except (ValueError, RecursionError):
                break
            items.append(item)
            i = _SPACE.match(generation, i).end()
            if generation.startswith("]", i):
                return items, True
            if not generation.startswith(",", i):
                break
            i = _SPACE.match(generation, i + 1).end()
        if items:
            return items, False
    return None


def _json_triples(generation: str) -> tuple[list[tuple[Any, Any, Any]], int]:
    found = _json_array(generation)
    if found is None:
        return [], 1
    items, complete = found
    triples = [
        (item.get("head"), item.get("relation"), item.get("tail")) if isinstance(item, dict) else (None, None, None)
        for item in items
    ]
    return triples, int(not complete)


def parse(
    generation: str, text: str, style: str, inventory: Sequence[str] | None = None
) -> tuple[list[dict], int]:
    """Triplets recovered from a model's ``generation`` for ``text``, and how many were malformed.

    Never raises on any string. Malformed counts truncated or garbled fragments, chatter before a
    REBEL linearisation, an answer with no JSON array, JSON items that are not objects with string
    ``head``/``relation``/``tail``, empty fields, and relations outside ``inventory`` (when given),
    which are dropped. Duplicates are dropped silently. Spans get the offsets of exact occurrences
    of their surface forms in ``text``, those between words (not inside one) when there are any:
    for a form that occurs several times, the head/tail pair of occurrences closest to each other
    (the earliest such pair on ties, head first); null start/end when a form does not occur.
    An empty REBEL generation is a valid "no triplets"; the JSON equivalent is ``[]``.
    """
    _check_style(style)
    triples, malformed = (_rebel_triples if style == "rebel" else _json_triples)(generation)
    allowed = None if inventory is None else set(inventory)
    triplets, seen = [], set()
    for head, relation, tail in triples:
        fields = (head, relation, tail)
        if not all(isinstance(f, str) and f.strip() for f in fields):
            malformed += 1
            continue
        head, relation, tail = (f.strip() for f in fields)
        if allowed is not None and relation not in allowed:
            malformed += 1
            continue
        if (head, relation, tail) in seen:
            continue
        seen.add((head, relation, tail))
        head_span, tail_span = _spans(head, tail, text)
        triplets.append({"head": head_span, "relation": relation, "tail": tail_span})
    return triplets, malformed


_FORMATS = {
    "rebel": "<triplet> head <subj> tail <obj> relation (repeat for each triplet)",
    "json": 'a JSON list: [{"head": "...", "relation": "...", "tail": "..."}]',
}


def triplet_prompt(
    record: Record, style: str, relations: Sequence[str], shots: Sequence[Record] = (), *, instruction: bool = True
) -> str:
    """The instruction asking for ``record``'s triplets; ``shots`` are demonstrations with gold triplets.

    Kept short for small models. It ends with ``Triplets:`` and a newline, so the completion (or a
    chat model's answer) starts on its own line. An empty ``relations`` leaves out the inventory
    line; ``instruction=False`` leaves out the whole instruction (a model fine-tuned on the
    relations needs neither, and a third of the tokens of a CoNLL04 prompt go).
    """
    _check_style(style)
    blocks = []
    if instruction:
        lines = ["Extract all (head, relation, tail) triplets stated in the text."]
        if relations:
            lines.append("Relations: " + ", ".join(relations))
        lines.append(f"Answer with {_FORMATS[style]}; nothing else.")
        blocks.append("\n".join(lines))
    blocks += [f"Text: {shot['text']}\nTriplets:\n{triplet_completion(shot, style)}" for shot in shots]
    blocks.append(f"Text: {record['text']}\nTriplets:\n")
    return "\n\n".join(blocks)


def triplet_completion(record: Record, style: str) -> str:
    """The gold linearisation of ``record["triplets"]``: the fine-tuning target."""
    return linearize(record.get("triplets") or [], style)


def relations_of(records: Iterable[Record]) -> list[str]:
    """The sorted relation inventory of (training) records' gold triplets."""
    return sorted({t["relation"] for record in records for t in record.get("triplets") or []})


# --- prompt datasets ------------------------------------------------------------------------

ShotsFor = Callable[[list[Record]], list[list[Record]]]


def template_name(style: str, compact: bool) -> str:
    """How a triplet prompt is recorded (in prompt records and an adapter's relcli.json): the full
    prompt has the instruction and the relation list, the compact one only the text."""
    _check_style(style)
    return f"triplets-{style}" + ("-compact" if compact else "")


def parse_template(name: str | None) -> tuple[str, bool] | None:
    """(style, compact) of a ``triplets-*`` template name; None for any other template."""
    for style in STYLES:
        for compact in (False, True):
            if name == template_name(style, compact):
                return style, compact
    return None


def render_prompt(record: Record, style: str, relations: Sequence[str], shots: Sequence[Record], compact: bool) -> str:
    """The prompt of a template named by :func:`template_name`."""
    if compact:
        return triplet_prompt(record, style, [], shots, instruction=False)
    return triplet_prompt(record, style, relations, shots)


def first_shots(shots: Sequence[Record], n: int) -> ShotsFor:
    """Demonstrations without retrieval: the first ``n`` of ``shots`` that are not the record itself."""
    return lambda batch: [[s for s in shots if s["id"] != r["id"] and s["text"] != r["text"]][:n] for r in batch]


def triplet_prompt_records(
    records: Iterable[Record],
    style: str,
    relations: Sequence[str],
    *,
    compact: bool = False,
    shots_for: ShotsFor | None = None,
    batch_size: int = 256,
) -> Iterator[Record]:
    """End-to-end records in, ``{"id", "prompt", "completion", "template", "labels"}`` out.

    ``completion`` is the gold linearisation; ``labels`` is the relation inventory, which every
    gold relation must belong to. ``shots_for`` maps a batch of records to their demonstrations.
    """
    name, wanted = template_name(style, compact), set(relations)
    for batch in chunks(records, batch_size):
        for record in batch:
            if "triplets" not in record:
                raise UserError(f"record {record['id']}: the triplets task needs end-to-end records with \"triplets\"")
            unknown = {t["relation"] for t in record["triplets"]} - wanted
            if unknown:
                raise UserError(f"record {record['id']}: relation {sorted(unknown)[0]!r} is not in the inventory")
        shots = shots_for(batch) if shots_for else [()] * len(batch)
        for record, demos in zip(batch, shots):
            yield {
                "id": record["id"],
                "prompt": render_prompt(record, style, relations, demos, compact),
                "completion": triplet_completion(record, style),
                "template": name,
                "labels": list(relations),
            }


def check_completions(prompts: Iterable[Record], style: str, relations: Sequence[str]) -> None:
    """Refuse training targets that do not parse back cleanly against the inventory."""
    for p in prompts:
        if parse(p["completion"], "", style, relations)[1]:
            raise UserError(f"prompt {p.get('id')!r}: completion is not a clean {style} linearisation over the inventory")


def shots_function(shots: int, shots_from: str | None, index=None) -> ShotsFor | None:
    """The demonstrations asked for: ``shots`` retrieved from ``index`` (a loaded relcli index), or
    the first ``shots`` records of the file ``shots_from``; None for zero-shot."""
    if not shots:
        if index is not None or shots_from:
            raise UserError("demonstrations come from an index or a file: say how many", param="shots")
        return None
    if index is not None:
        from relcli.retrieval import neighbours_for

        return neighbours_for(index, shots)
    if not shots_from:
        raise UserError("demonstrations need an index (retrieved) or a file of training records (the first N)", param="shots")
    import itertools
    from pathlib import Path

    from relcli.records import read_jsonl
    from relcli.streams import open_input

    with open_input(Path(shots_from), param="shots_from") as stream:
        try:  # one spare, in case a record is its own demonstration
            return first_shots(list(itertools.islice(read_jsonl(stream), shots + 1)), shots)
        except UserError as exc:  # a bad line of this file, not of the input
            exc.param = exc.param or "shots_from"
            raise
