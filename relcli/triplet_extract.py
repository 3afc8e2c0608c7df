"""End-to-end extraction: a generator model writes linearised triplets for each record's text.

Generation is greedy and batched over length-sorted prompts; with the REBEL style and a tokenizer
that knows its markers, the relation slot is constrained to the inventory (relcli.slots).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Iterable, Iterator, Sequence

from relcli.slots import CopyConstraint, RelationConstraint, generation_text, special_ids_to_drop
from relcli.errors import UserError
from relcli.models import check_fits
from relcli.prompts import model_input
from relcli.records import Record, chunks, sorted_batches
from relcli.triplets import REBEL_TOKENS, ShotsFor, parse, render_prompt


def generate_triplets(
    model,
    tokenizer,
    prompts: Sequence[str],
    *,
    max_new_tokens: int = 128,
    relation_constraint: Sequence[str] | None = None,
    copy_from: Sequence[str] | None = None,
    style: str = "rebel",
    batch_size: int = 8,
    record_ids: Sequence | None = None,
) -> list[str]:
    """Greedy generations for ``prompts``, one string each, batched.

    Works for decoder-only models (left padding, only new tokens returned) and seq2seq models
    (``model.config.is_encoder_decoder``). REBEL markers survive decoding even when they are
    special tokens; the tokenizer's other special tokens (pad, eos, ...) are removed. With
    ``relation_constraint`` (an inventory), the REBEL relation slot is constrained to it. With
    ``copy_from`` (one text per prompt), every head and tail of the ``style`` linearisation is
    copied from the prompt's text (relcli.slots.CopyConstraint).
    """
    import torch

    seq2seq = bool(getattr(model.config, "is_encoder_decoder", False))
    pad_id = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id
    drop = special_ids_to_drop(tokenizer)
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
            if record_ids is not None:
                check_fits(model, record_ids[first : first + batch_size], batch["attention_mask"].sum(-1).tolist(), max_new_tokens)
            prompt_length = 0 if seq2seq else batch["input_ids"].shape[1]
            processors = []
            if relation_constraint:
                processors.append(RelationConstraint(tokenizer, relation_constraint, prompt_length))
            if copy_from is not None:
                texts = copy_from[first : first + batch_size]
                processors.append(CopyConstraint(tokenizer, texts, style, prompt_length))
            with torch.no_grad():
                generated = model.generate(
                    **batch,
                    max_new_tokens=max_new_tokens,
                    do_sample=False,
                    num_beams=1,
                    pad_token_id=pad_id,
                    logits_processor=processors or None,
                )
            outputs += [generation_text(tokenizer, ids, drop).strip() for ids in generated[:, prompt_length:].tolist()]
    finally:
        tokenizer.padding_side = padding_side
        model.train(was_training)
    return outputs


def knows_rebel_tokens(tokenizer) -> bool:
    """Whether the tokenizer has the REBEL markers as single tokens (they are added by finetune)."""
    ids = tokenizer.convert_tokens_to_ids(REBEL_TOKENS)
    return None not in ids and tokenizer.unk_token_id not in ids


_SPACES = " \t\n\r"


def _back_to_space(text: str, i: int, lowest: int) -> int:
    """``i`` moved back to the start of the word it splits, where the whitespace before that word
    lies at ``lowest`` or later; else ``i`` itself."""
    if 0 < i < len(text) and not text[i - 1].isspace() and not text[i].isspace():
        space = max(text.rfind(c, lowest, i) for c in _SPACES)
        if space >= 0:
            return space + 1
    return i


def windows(text: str, size: int, stride: int) -> list[tuple[int, int]]:
    """Overlapping ``[start, end)`` character windows covering ``text``: one every ``stride``
    characters, each ``size`` long, the last one reaching the end of the text. A window that would
    end or start inside a word ends or starts before that word instead (an end moves back at most
    half a window); a word longer than that is cut. With ``stride <= size`` every character outside
    whitespace lies in a window."""
    spans, start = [], 0
    while start + size < len(text):
        spans.append((start, _back_to_space(text, start + size, start + size // 2 + 1)))
        start = _back_to_space(text, start + stride, start + 1)
    return spans + [(start, len(text))]


def _shifted(span: dict, by: int) -> dict:
    if span["start"] is None:
        return span
    return dict(span, start=span["start"] + by, end=span["end"] + by)


def _key(triplet: dict) -> tuple:
    head, tail = triplet["head"], triplet["tail"]
    return head["text"], head["start"], head["end"], triplet["relation"], tail["text"], tail["start"], tail["end"]


@dataclass
class _Piece:
    """What the model reads of one record: a window (or the whole text), cut to fit the context."""

    record: int  # index of the record in its chunk
    start: int  # where the piece starts in the record's text
    text: str  # the text the model reads
    cut: bool  # whether the window (or whole text) was longer than the context allows
    prompt: str = ""


@dataclass
class TripletExtractor:
    """A generator model plus what turns end-to-end records into ``predicted_triplets``.

    ``copy``: heads and tails are copied from the text during generation
    (relcli.slots.CopyConstraint). ``window`` and ``stride`` (characters): each text is read in
    overlapping windows (see :func:`windows`); each window's triplets get offsets into the window,
    shifted into the document, and triplets found in several windows (same head text and offsets,
    relation, tail text and offsets) are kept once, in the order first found. A text (or window)
    whose prompt does not fit in the model's context (its position limit, less the new tokens of a
    decoder-only model) is cut, at whitespace where possible, to fit; such cuts are counted.
    """

    loaded: Any  # relcli.models.LoadedModel
    style: str
    relations: list[str]
    compact: bool = False
    chat: bool = False
    batch_size: int = 8
    max_new_tokens: int = 128
    explain: bool = False
    copy: bool = True
    window: int | None = None
    stride: int | None = None
    records: int = 0
    generations: int = 0
    malformed: int = 0  # fragments of generations that parse() could not use
    triplets: int = 0  # predicted
    absent_triplets: int = 0  # ... with a head or tail whose text is not in the text the model read
    absent_entities: int = 0  # heads and tails not in the text the model read
    cut: int = 0  # texts or windows cut to fit the context

    def __post_init__(self):
        from relcli.models import context_length

        if self.stride is not None and self.window is None:
            raise UserError("a stride needs a window", param="stride")
        if self.window is not None and self.stride is None:
            self.stride = max(self.window * 3 // 4, 1)
        if self.window is not None and self.stride > self.window:
            raise UserError(f"a stride of {self.stride} is longer than the window ({self.window}): "
                            "text between windows would never be read", param="stride")
        self.context = context_length(self.loaded)
        self.budget = None
        if self.context is not None:
            self.budget = self.context - (0 if self.loaded.is_seq2seq else self.max_new_tokens)
            if self.budget <= 0 or self.max_new_tokens > self.context:
                raise UserError(f"{self.max_new_tokens} new tokens do not fit in the model's context of "
                                f"{self.context} tokens", param="max_new_tokens")

    def inputs(self, records: Sequence[Record], shots: Sequence[Sequence[Record]]) -> list[str]:
        return [
            model_input(render_prompt(r, self.style, self.relations, s, self.compact), self.loaded.tokenizer, self.chat)
            for r, s in zip(records, shots)
        ]

    def _tokens(self, text: str) -> int:
        return len(self.loaded.tokenizer(text, add_special_tokens=self.loaded.is_seq2seq).input_ids)

    def _fit(self, piece: _Piece, record: Record, shots: Sequence[Record]) -> None:
        """Set the piece's prompt, cutting its text until the prompt fits the token budget."""
        while True:
            piece.prompt = self.inputs([dict(record, text=piece.text)], [shots])[0]
            if self.budget is None:
                return
            over = self._tokens(piece.prompt) - self.budget
            if over <= 0:
                return
            if not piece.text:
                raise UserError(f"the prompt leaves no room for the text in the model's context of {self.context} "
                                f"tokens ({self.max_new_tokens} of them for new tokens)")
            # Cut in proportion to the text's own tokens, then at whitespace; the loop checks again.
            tokens = max(self._tokens(piece.text), 1)
            keep = min(len(piece.text) * max(tokens - over, 0) // tokens, len(piece.text) - 1)
            piece.text, piece.cut = piece.text[: _back_to_space(piece.text, keep, keep // 2 + 1)], True

    def _pieces(self, records: list[Record], shots_for: ShotsFor | None) -> list[_Piece]:
        pieces, asked = [], []
        for i, record in enumerate(records):
            text = record["text"]
            for start, end in windows(text, self.window, self.stride) if self.window else [(0, len(text))]:
                pieces.append(_Piece(i, start, text[start:end], False))
                # A window is asked about (and gets demonstrations) as a text of its own.
                asked.append(record if self.window is None else {"id": record.get("id"), "text": text[start:end]})
        shots = shots_for(asked) if shots_for else [()] * len(asked)
        for piece, record, demos in zip(pieces, asked, shots):
            self._fit(piece, record, demos)
        return pieces

    def predict(self, records: Iterable[Record], shots_for: ShotsFor | None = None, chunk: int = 0) -> Iterator[Record]:
        """Stream records with ``predicted_triplets``, in input order. Within a chunk of records,
        generation runs over length-sorted inputs (less padding); memory is bounded by the chunk."""
        for part in chunks(records, chunk or self.batch_size * 8):
            yield from self._predict_chunk(part, shots_for)

    def _predict_chunk(self, records: list[Record], shots_for: ShotsFor | None) -> list[Record]:
        pieces = self._pieces(records, shots_for)
        order = [i for batch in sorted_batches([len(p.prompt) for p in pieces], self.batch_size) for i in batch]
        constrained = self.style == "rebel" and knows_rebel_tokens(self.loaded.tokenizer)
        generated = generate_triplets(
            self.loaded.model, self.loaded.tokenizer, [pieces[i].prompt for i in order],
            max_new_tokens=self.max_new_tokens, batch_size=self.batch_size,
            relation_constraint=self.relations if constrained else None,
            copy_from=[pieces[i].text for i in order] if self.copy else None, style=self.style,
        )
        raw: list[str] = [""] * len(pieces)
        for i, generation in zip(order, generated):
            raw[i] = generation
        found: list[dict[tuple, dict]] = [{} for _ in records]
        reads: list[list[dict]] = [[] for _ in records]
        for piece, generation in zip(pieces, raw):
            triplets, malformed = parse(generation, piece.text, self.style, self.relations)
            self.malformed += malformed
            for t in triplets:
                t = dict(t, head=_shifted(t["head"], piece.start), tail=_shifted(t["tail"], piece.start))
                found[piece.record].setdefault(_key(t), t)
            reads[piece.record].append({"start": piece.start, "end": piece.start + len(piece.text), "raw": generation,
                                        "malformed": malformed, **({"cut": True} if piece.cut else {})})
        out = []
        for record, triplets, read in zip(records, found, reads):
            triplets = list(triplets.values())
            absent = [sum(t[role]["start"] is None for role in ("head", "tail")) for t in triplets]
            self.triplets += len(triplets)
            self.absent_triplets += sum(map(bool, absent))
            self.absent_entities += sum(absent)
            result = dict(record, predicted_triplets=triplets)
            if self.explain:
                result["explain"] = self._explanation(read, sum(absent))
            out.append(result)
        self.records, self.generations, self.cut = (self.records + len(records), self.generations + len(pieces),
                                                    self.cut + sum(p.cut for p in pieces))
        return out

    def _explanation(self, read: list[dict], absent: int) -> dict:
        """The raw generation(s) of a record: one, or one per window with where it lies."""
        malformed = sum(r["malformed"] for r in read)
        if self.window is None:
            return {"raw": read[0]["raw"], "malformed": malformed, "absent": absent,
                    **({"read_to": read[0]["end"]} if read[0].get("cut") else {})}
        return {"windows": read, "malformed": malformed, "absent": absent}
