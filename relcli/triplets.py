"""End-to-end triplets as text: linearisation, tolerant parsing, prompts and greedy generation.

Two output styles are spoken:

- ``"rebel"``: REBEL's linearisation ``<triplet> head <subj> tail <obj> relation``, where
  consecutive triplets sharing a head write it once (``<triplet> h <subj> t1 <obj> r1 <subj> t2
  <obj> r2``);
- ``"json"``: a compact JSON list ``[{"head": ..., "relation": ..., "tail": ...}]``, the natural
  answer of an instruct model.

Both list triplets in order of head appearance in the text. Parsing never raises: it recovers every
well-formed triplet and counts what it could not use. torch/transformers are imported only by
:func:`generate_triplets`.
"""

from __future__ import annotations

import bisect
import json
import re
from dataclasses import dataclass
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


def _occurrences(surface: str, text: str) -> list[int]:
    starts, start = [], text.find(surface)
    while start >= 0:
        starts.append(start)
        start = text.find(surface, start + 1)
    return starts


def _span(surface: str, start: int | None) -> dict:
    end = None if start is None else start + len(surface)
    return {"text": surface, "start": start, "end": end, "type": None}


def _spans(head: str, tail: str, text: str) -> tuple[dict, dict]:
    """Head and tail spans at the closest pair of their occurrences in ``text`` (earliest on ties).

    A relation is usually stated locally, so the closest pair is the best cheap guess when a surface
    form occurs more than once. An argument that does not occur gets null offsets; the other one
    then takes its first occurrence.
    """
    heads, tails = _occurrences(head, text), _occurrences(tail, text)
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
    of their surface forms in ``text``: for a form that occurs several times, the head/tail pair of
    occurrences closest to each other (earliest on ties); null start/end when a form does not occur.
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


class RelationConstraint:
    """A transformers logits processor that keeps the REBEL relation slot inside an inventory.

    After ``<obj>``, only token sequences that spell an inventory relation are allowed; once one
    is complete, the next token must be a REBEL marker or end of sequence. Relations are tokenised
    as they appear after ``<obj>`` in a linearisation (followed by ``<subj>`` or by nothing), so
    the allowed sequences match what the model was trained on. Rows with an unknown prefix (only
    possible if generation started inside the slot) are left alone.
    """

    def __init__(self, tokenizer, relations: Sequence[str], prompt_length: int):
        self.prompt_length = prompt_length
        self.markers = [tokenizer.convert_tokens_to_ids(t) for t in REBEL_TOKENS]
        if tokenizer.unk_token_id in self.markers or None in self.markers:
            raise UserError("the relation constraint needs a tokenizer that knows " + " ".join(REBEL_TOKENS))
        self.obj = self.markers[2]
        self.ends = self.markers + [tokenizer.eos_token_id]
        self.trie: dict = {}
        for relation in relations:
            for suffix in (" <subj>", ""):
                ids = tokenizer.encode(f"<obj> {relation}{suffix}", add_special_tokens=False)
                ids = ids[ids.index(self.obj) + 1 :]
                if suffix:
                    ids = ids[: ids.index(self.markers[1])]
                node = self.trie
                for token in ids:
                    node = node.setdefault(token, {})
                node[None] = {}

    def _allowed(self, generated: list[int]) -> list[int] | None:
        if self.obj not in generated:
            return None
        after = generated[len(generated) - generated[::-1].index(self.obj) :]
        if any(token in self.markers for token in after):
            return None
        node = self.trie
        for token in after:
            if token not in node:
                return None
            node = node[token]
        return [t for t in node if t is not None] + (self.ends if None in node else [])

    def __call__(self, input_ids, scores):
        for row, ids in enumerate(input_ids[:, self.prompt_length :].tolist()):
            allowed = self._allowed(ids)
            if allowed is not None:
                keep = scores[row, allowed]
                scores[row] = float("-inf")
                scores[row, allowed] = keep
        return scores


def generate_triplets(
    model,
    tokenizer,
    prompts: Sequence[str],
    *,
    max_new_tokens: int = 128,
    relation_constraint: Sequence[str] | None = None,
    batch_size: int = 8,
) -> list[str]:
    """Greedy generations for ``prompts``, one string each, batched.

    Works for decoder-only models (left padding, only new tokens returned) and seq2seq models
    (``model.config.is_encoder_decoder``). REBEL markers survive decoding even when they are
    special tokens; the tokenizer's other special tokens (pad, eos, ...) are removed. With
    ``relation_constraint`` (an inventory), the REBEL relation slot is constrained to it.
    """
    import torch

    seq2seq = bool(getattr(model.config, "is_encoder_decoder", False))
    pad_id = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id
    drop = set(tokenizer.all_special_ids) - set(tokenizer.convert_tokens_to_ids(REBEL_TOKENS))
    padding_side, was_training = tokenizer.padding_side, model.training
    tokenizer.padding_side = "right" if seq2seq else "left"
    model.eval()
    outputs: list[str] = []
    try:
        for first in range(0, len(prompts), batch_size):
            # Framed as `relcli finetune` encodes prompts: a decoder's prompt text is complete already.
            batch = tokenizer(
                list(prompts[first : first + batch_size]), return_tensors="pt", padding=True,
                add_special_tokens=seq2seq,
            ).to(model.device)
            prompt_length = 0 if seq2seq else batch["input_ids"].shape[1]
            processors = (
                [RelationConstraint(tokenizer, relation_constraint, prompt_length)] if relation_constraint else None
            )
            with torch.no_grad():
                generated = model.generate(
                    **batch,
                    max_new_tokens=max_new_tokens,
                    do_sample=False,
                    num_beams=1,
                    pad_token_id=pad_id,
                    logits_processor=processors,
                )
            for ids in generated[:, prompt_length:].tolist():
                kept = [token for token in ids if token not in drop]
                outputs.append(tokenizer.decode(kept, skip_special_tokens=False).strip())
    finally:
        tokenizer.padding_side = padding_side
        model.train(was_training)
    return outputs


# --- prompt datasets and extraction over records ---------------------------------------------

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
                raise UserError(f"record {record['id']}: --task triplets needs end-to-end records with \"triplets\"")
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


def knows_rebel_tokens(tokenizer) -> bool:
    """Whether the tokenizer has the REBEL markers as single tokens (they are added by finetune)."""
    ids = tokenizer.convert_tokens_to_ids(REBEL_TOKENS)
    return None not in ids and tokenizer.unk_token_id not in ids


@dataclass
class TripletExtractor:
    """A generator model plus what turns end-to-end records into ``predicted_triplets``."""

    loaded: Any  # relcli.models.LoadedModel
    style: str
    relations: list[str]
    compact: bool = False
    chat: bool = False
    batch_size: int = 8
    max_new_tokens: int = 128
    explain: bool = False
    records: int = 0
    malformed: int = 0  # fragments of generations that parse() could not use

    def inputs(self, records: Sequence[Record], shots: Sequence[Sequence[Record]]) -> list[str]:
        from relcli.extract import model_input

        return [
            model_input(render_prompt(r, self.style, self.relations, s, self.compact), self.loaded.tokenizer, self.chat)
            for r, s in zip(records, shots)
        ]

    def predict(self, records: Iterable[Record], shots_for: ShotsFor | None = None, chunk: int = 0) -> Iterator[Record]:
        """Stream records with ``predicted_triplets``, in input order. Within a chunk of records,
        generation runs over length-sorted inputs (less padding); memory is bounded by the chunk."""
        for part in chunks(records, chunk or self.batch_size * 8):
            yield from self._predict_chunk(part, shots_for)

    def _predict_chunk(self, records: list[Record], shots_for: ShotsFor | None) -> list[Record]:
        shots = shots_for(records) if shots_for else [()] * len(records)
        texts = self.inputs(records, shots)
        order = sorted(range(len(texts)), key=lambda i: len(texts[i]))
        constrained = self.style == "rebel" and knows_rebel_tokens(self.loaded.tokenizer)
        generated = generate_triplets(
            self.loaded.model, self.loaded.tokenizer, [texts[i] for i in order],
            max_new_tokens=self.max_new_tokens, batch_size=self.batch_size,
            relation_constraint=self.relations if constrained else None,
        )
        raw: list[str] = [""] * len(texts)
        for i, generation in zip(order, generated):
            raw[i] = generation
        out = []
        for record, generation in zip(records, raw):
            triplets, malformed = parse(generation, record["text"], self.style, self.relations)
            self.malformed += malformed
            result = dict(record, predicted_triplets=triplets)
            if self.explain:
                result["explain"] = {"raw": generation, "malformed": malformed}
            out.append(result)
        self.records += len(records)
        return out
