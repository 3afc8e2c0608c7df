"""Label RC records with a generator: model inputs, batching, decoding strategies.

Decoding strategies:
- ``constrained``: greedy decoding through a prefix trie of the label inventory, so only a valid
  label can come out (relcli.decoding: one forward per branching point of the trie).
- ``generate``: free greedy generation (the paper's setting), then the text is mapped to a label;
  text that maps to none becomes the negative label (or, without one in the inventory, stays as
  generated, an invalid label) and is counted.

With a relation schema (relcli.schema) each record may only get the labels whose argument types
fit its pair: constrained decoding walks the trie restricted to them, free text naming a label the
schema rules out becomes the negative label (counted). With a negative margin (relcli.calibration)
the label is not decoded greedily but chosen from every allowed label's log-probability (the
``--explain`` scores), the negative label's raised by the margin.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Callable, Iterable, Iterator, Sequence

from relcli.calibration import decide
from relcli.decoding import LabelTrie, label_log_probs, trie_decode, trie_processor, trie_stop
from relcli.errors import UserError
from relcli.labels import negative_label
from relcli.models import LoadedModel, check_fits
from relcli.prompts import model_input, render
from relcli.records import Record, chunks, sorted_batches
from relcli.schema import Schema

ExamplesFor = Callable[[list[Record]], list[list[Record]]]


_WORD = re.compile(r"[a-z0-9]+")


def _words(text: str) -> str:
    """Lower-case alphanumeric words, space-joined and space-padded, so that a label is found in a
    text only as whole words: `Cause-Effect(e2, e1)` -> ` cause effect e2 e1 `."""
    return " " + " ".join(_WORD.findall(text.lower())) + " "


def map_to_label(text: str, labels: Sequence[str]) -> str | None:
    """Map free generated text to a label: exact, then case/punctuation-insensitive, then the
    longest label mentioned in the text as whole words; None when nothing matches."""
    text = text.strip()
    if text in labels:
        return text
    keys = {_words(label): label for label in labels}
    first_line = _words(text.splitlines()[0]) if text else ""
    if first_line in keys:
        return keys[first_line]
    whole = _words(text)
    mentioned = [label for key, label in keys.items() if key.strip() and key in whole]
    return max(mentioned, key=len) if mentioned else None


@dataclass
class ExtractStats:
    records: int = 0
    unmapped: int = 0  # --decode generate outputs that named no label
    ruled_out: int = 0  # --decode generate outputs that named a label the schema rules out for the pair
    examples: list[str] = field(default_factory=list)


@dataclass
class Generator:
    """A generator model plus everything needed to turn RC records into predictions."""

    loaded: LoadedModel
    template: str
    labels: list[str]
    chat: bool = False
    decode: str = "constrained"
    batch_size: int = 16
    max_new_tokens: int = 30
    explain: bool = False
    early_stop: bool = True  # constrained: stop once the label is decided (off under --explain, which shows the raw output)
    negative: str | None = None
    schema: Schema | None = None  # restricts each record to the labels whose types fit its pair
    negative_margin: float | None = None  # choose labels by score, the negative's raised by this
    by_scores: bool = False  # choose labels by score without a margin (ensemble members)
    stats: ExtractStats = field(default_factory=ExtractStats)

    def __post_init__(self):
        tokenizer = self.loaded.tokenizer
        if self.schema is not None:
            self.schema.check_within(self.labels, "the model")
        self.negative = self.negative or (self.schema.negative if self.schema else negative_label(self.labels))
        if self.negative_margin is not None:
            if self.decode != "constrained":
                raise UserError("a negative margin chooses among the labels' scores: it applies to constrained "
                                "decoding, not to free generation", param="negative_margin")
            if self.negative is None:
                raise UserError("a negative margin needs a negative label in the inventory", param="negative_margin")
        self.trie = LabelTrie(tokenizer, self.labels, tokenizer.eos_token_id)

    def allowed(self, records: Sequence[Record]) -> list[frozenset[str] | None] | None:
        """Each record's allowed labels under the schema (None without one)."""
        if self.schema is None:
            return None
        return [frozenset(self.schema.allowed(record)) for record in records]

    def inputs(self, records: Sequence[Record], examples: Sequence[Sequence[Record]]) -> list[str]:
        tokenizer = self.loaded.tokenizer
        return [
            model_input(render(self.template, record, self.labels, shots), tokenizer, self.chat)
            for record, shots in zip(records, examples)
        ]

    def _generate(self, texts: list[str], records: Sequence[Record] = (),
                  allowed: list[frozenset[str] | None] | None = None) -> list[list[int]]:
        tokenizer = self.loaded.tokenizer
        early_stop = self.early_stop and not self.explain
        if self.decode == "constrained" and not self.loaded.is_seq2seq:
            # No special tokens: the label continues the prompt, as in training.
            prompts = tokenizer(texts, add_special_tokens=False).input_ids
            self._check_fits(records, [len(ids) for ids in prompts])
            return trie_decode(self.loaded.model, prompts, self.trie, tokenizer.pad_token_id, early_stop, allowed)
        return self._hf_generate(texts, early_stop, records, allowed)

    def _check_fits(self, records: Sequence[Record], lengths: list[int]) -> None:
        new_tokens = self.trie.depth if self.decode == "constrained" else self.max_new_tokens
        check_fits(self.loaded.model, [r.get("id") for r in records] or [None] * len(lengths), lengths, new_tokens)

    def _hf_generate(self, texts: list[str], early_stop: bool, records: Sequence[Record] = (),
                     allowed: list[frozenset[str] | None] | None = None) -> list[list[int]]:
        import torch

        tokenizer, model = self.loaded.tokenizer, self.loaded.model
        # As finetune encodes: an encoder input keeps its special tokens (T5's end token), a decoder
        # prompt has none.
        batch = tokenizer(texts, return_tensors="pt", padding=True, add_special_tokens=self.loaded.is_seq2seq,
                          padding_side="right" if self.loaded.is_seq2seq else "left").to(model.device)
        self._check_fits(records, batch["attention_mask"].sum(-1).tolist())
        start = 1 if self.loaded.is_seq2seq else batch["input_ids"].shape[1]
        constrained = self.decode == "constrained"
        with torch.inference_mode():
            out = model.generate(
                **batch,
                do_sample=False,
                max_new_tokens=self.trie.depth if constrained else self.max_new_tokens,
                logits_processor=[trie_processor(self.trie, start, allowed)] if constrained else None,
                stopping_criteria=[trie_stop(self.trie, start, allowed)] if constrained and early_stop else None,
                pad_token_id=tokenizer.pad_token_id,
                eos_token_id=tokenizer.eos_token_id,
            )
        return out[:, start:].tolist()

    def predict_batch(self, records: list[Record], examples: Sequence[Sequence[Record]] | None = None) -> list[Record]:
        """Predictions for one batch, in the order given."""
        texts = self.inputs(records, examples or [()] * len(records))
        allowed = self.allowed(records)
        if self.negative_margin is not None or self.by_scores:
            return self._predict_by_scores(records, texts, allowed)
        tokenizer = self.loaded.tokenizer
        results = []
        for row, (record, ids) in enumerate(zip(records, self._generate(texts, records, allowed))):
            raw = tokenizer.decode(ids, skip_special_tokens=True)
            if self.decode == "constrained":
                label = self.trie.label(ids, allowed[row] if allowed else None) or self.negative
            else:
                label = map_to_label(raw, self.labels)
                if label is None:
                    self.stats.unmapped += 1
                    if len(self.stats.examples) < 5:
                        self.stats.examples.append(f"{record['id']}: {raw.strip()[:80]!r}")
                    # No negative label to fall back on: the text stays as generated, which
                    # `relcli score` counts as an invalid prediction; it never becomes a positive label.
                    label = self.negative if self.negative is not None else raw.strip()
                elif allowed and label not in allowed[row]:
                    self.stats.ruled_out += 1
                    label = self.negative
            out = dict(record, predicted=label)
            if self.explain:
                out["explain"] = {"raw": raw}
            results.append(out)
        if self.explain:
            for row, (out, scores) in enumerate(zip(results, self.label_scores(texts))):
                out["explain"]["label_scores"] = _only_allowed(scores, allowed[row] if allowed else None)
        self.stats.records += len(records)
        return results

    def _predict_by_scores(self, records: list[Record], texts: list[str],
                           allowed: list[frozenset[str] | None] | None) -> list[Record]:
        results = []
        for row, (record, scores) in enumerate(zip(records, self.label_scores(texts))):
            scores = _only_allowed(scores, allowed[row] if allowed else None)
            out = dict(record, predicted=decide(scores, self.negative, self.negative_margin or 0.0))
            if self.explain:
                out["explain"] = {"label_scores": scores, "negative_margin": self.negative_margin}
            results.append(out)
        self.stats.records += len(records)
        return results

    def label_scores(self, texts: list[str]) -> list[dict[str, float]]:
        """Log-probability of every label (with its end token) after each input, teacher-forced.
        A decoder reads the input once and every label from its cache; an encoder-decoder runs one
        row per label. Costs about a forward per label's tokens, so only for --explain, a negative
        margin and ensembles."""
        import torch

        tokenizer, model = self.loaded.tokenizer, self.loaded.model
        label_ids = list(self.trie.labels.items())
        scores: list[dict[str, float]] = []
        for text in texts:
            prompt = tokenizer(text, add_special_tokens=self.loaded.is_seq2seq).input_ids
            if self.loaded.is_seq2seq:
                enc = torch.tensor([prompt] * len(label_ids))
                dec = torch.nn.utils.rnn.pad_sequence(
                    [torch.tensor(ids) for ids, _ in label_ids], batch_first=True, padding_value=-100
                )
                with torch.inference_mode():
                    logp = torch.log_softmax(model(input_ids=enc, labels=dec).logits.float(), dim=-1)
                picked = logp.gather(-1, dec.clamp(min=0).unsqueeze(-1)).squeeze(-1) * (dec != -100)
                totals = picked.sum(-1).tolist()
            else:
                totals = label_log_probs(model, prompt, [ids for ids, _ in label_ids])
            scores.append({name: round(total, 4) for (_, name), total in zip(label_ids, totals)})
        return scores

    def predict(self, records: Iterable[Record], examples_for: ExamplesFor | None = None, chunk: int = 0) -> Iterator[Record]:
        """Stream predictions in input order. Inside each chunk of records, batches are formed from
        length-sorted inputs (less padding); memory is bounded by the chunk size."""
        for part in chunks(records, chunk or self.batch_size * 8):
            yield from self._predict_chunk(part, examples_for)

    def _predict_chunk(self, records: list[Record], examples_for: ExamplesFor | None) -> list[Record]:
        examples = examples_for(records) if examples_for else [()] * len(records)
        lengths = [len(r["text"]) + sum(len(e["text"]) for e in shots) for r, shots in zip(records, examples)]
        done: list[Record | None] = [None] * len(records)
        for idx in sorted_batches(lengths, self.batch_size):
            for i, out in zip(idx, self.predict_batch([records[i] for i in idx], [examples[i] for i in idx])):
                done[i] = out
        return done  # type: ignore[return-value]


def _only_allowed(scores: dict[str, float], allowed: frozenset[str] | None) -> dict[str, float]:
    return scores if allowed is None else {label: score for label, score in scores.items() if label in allowed}
