"""End-to-end extraction: a generator model writes linearised triplets for each record's text.

Generation is greedy and batched over length-sorted prompts; with the REBEL style and a tokenizer
that knows its markers, the relation slot is constrained to the inventory (relcli.decoding).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Iterable, Iterator, Sequence

from relcli.decoding import RelationConstraint
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
    batch_size: int = 8,
    record_ids: Sequence | None = None,
) -> list[str]:
    """Greedy generations for ``prompts``, one string each, batched.

    Works for decoder-only models (left padding, only new tokens returned) and seq2seq models
    (``model.config.is_encoder_decoder``). REBEL markers survive decoding even when they are
    special tokens; the tokenizer's other special tokens (pad, eos, ...) are removed. With
    ``relation_constraint`` (an inventory), the REBEL relation slot is constrained to it. With
    ``record_ids`` (one per prompt) a prompt too long for the model's context is refused, naming it.
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
            if record_ids is not None:
                check_fits(model, record_ids[first : first + batch_size], batch["attention_mask"].sum(-1).tolist(), max_new_tokens)
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
        order = [i for batch in sorted_batches([len(t) for t in texts], self.batch_size) for i in batch]
        constrained = self.style == "rebel" and knows_rebel_tokens(self.loaded.tokenizer)
        generated = generate_triplets(
            self.loaded.model, self.loaded.tokenizer, [texts[i] for i in order],
            max_new_tokens=self.max_new_tokens, batch_size=self.batch_size,
            relation_constraint=self.relations if constrained else None, record_ids=[records[i].get("id") for i in order],
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
