"""Decoding restricted to a label inventory: the label trie, and two ways to walk it.

- ``trie_decode`` (decoder-only models): greedy decoding through the trie with its own loop. The
  prompts' common token prefix (chat frame, instructions) is run once per batch and its key/value
  cache shared by every row, and the tokens the trie forces (a prefix with a single child, such as
  "-Effect(e" after "Cause") go into the same forward as the chosen token, so a batch costs one
  forward per branching point of the trie rather than one per label token.
- ``trie_processor`` / ``trie_stop``: the same walk inside transformers' ``generate`` (used for
  encoder-decoder models).
- ``label_log_probs`` (decoder-only models): every label's log-probability after a prompt, for
  ``--explain``, a negative margin and ensembles; the prompt is run once and its cache shared by
  one row per label.
The constraints on triplet generations (relation slot, copied entities) are in relcli.slots.

Both pick, at every branching point, the allowed token with the highest logit, so they choose the
same labels; the first is faster.
"""

from __future__ import annotations

import contextlib
import os
from typing import Iterator, Sequence



class LabelTrie:
    """Token-id prefix trie over the labels, each label followed by the end token.

    Every walk can be restricted to a subset of the labels (``labels``: a frozenset, e.g. the
    labels a relation schema allows for one record's pair): a token is allowed only where some
    allowed label continues with it, and a prefix decides a label once one allowed label is left.
    """

    def __init__(self, tokenizer, labels: Sequence[str], end_id: int):
        self.end_id = end_id
        self.children: dict[tuple[int, ...], set[int]] = {}
        self.labels: dict[tuple[int, ...], str] = {}
        below: dict[tuple[int, ...], set[str]] = {}
        for label in labels:
            ids = tuple(tokenizer(label, add_special_tokens=False).input_ids) + (end_id,)
            self.labels[ids] = label
            for i in range(len(ids)):
                self.children.setdefault(ids[:i], set()).add(ids[i])
            for i in range(len(ids) + 1):
                below.setdefault(ids[:i], set()).add(label)
        self.depth = max(len(ids) for ids in self.labels)
        self.below = {prefix: frozenset(names) for prefix, names in below.items()}
        # prefixes that leave one label possible: constrained decoding can stop there
        self.decided = {prefix: next(iter(names)) for prefix, names in below.items() if len(names) == 1}

    def allowed(self, prefix: tuple[int, ...], labels: frozenset[str] | None = None) -> list[int]:
        children = self.children.get(prefix, (self.end_id,))
        if labels is None:
            return sorted(children)
        return sorted(t for t in children if not self.below.get(prefix + (t,), labels).isdisjoint(labels))

    def decides(self, prefix: tuple[int, ...], labels: frozenset[str] | None = None) -> str | None:
        """The label this exact prefix leaves as the only (allowed) one, or None."""
        if labels is None:
            return self.decided.get(prefix)
        left = self.below.get(prefix, frozenset()) & labels
        return next(iter(left)) if len(left) == 1 else None

    def label(self, ids: Sequence[int], labels: frozenset[str] | None = None) -> str | None:
        """The label generated ids decide (the shortest deciding prefix counts), or None."""
        ids = tuple(ids)
        return next((name for i in range(len(ids) + 1) if (name := self.decides(ids[:i], labels))), None)


def trie_processor(trie: LabelTrie, start: int, allowed: Sequence[frozenset[str] | None] | None = None):
    """A LogitsProcessor that masks every token the trie does not allow after the tokens generated
    so far (from column ``start`` of input_ids); ``allowed``: each row's label subset, or None."""
    import torch
    from transformers import LogitsProcessor

    class TrieLogits(LogitsProcessor):
        def __call__(self, input_ids, scores):
            mask = torch.full_like(scores, float("-inf"))
            for row, generated in enumerate(input_ids[:, start:].tolist()):
                mask[row, trie.allowed(tuple(generated), allowed[row] if allowed else None)] = 0
            return scores + mask

    return TrieLogits()


def trie_stop(trie: LabelTrie, start: int, allowed: Sequence[frozenset[str] | None] | None = None):
    """A StoppingCriteria that finishes a row as soon as its tokens leave one (allowed) label
    possible. With SemEval's labels and SmolLM2's tokenizer a batch needs at most 9 decode steps
    instead of 14."""
    import torch
    from transformers import StoppingCriteria

    class Decided(StoppingCriteria):
        def __call__(self, input_ids, scores, **kwargs):
            rows = input_ids[:, start:].tolist()
            return torch.tensor([trie.decides(tuple(ids), allowed[row] if allowed else None) is not None
                                 for row, ids in enumerate(rows)], device=input_ids.device)

    return Decided()


# Shared prefixes and the padded rest of the prompts are a multiple of this many tokens wide. Every
# new tensor shape costs memory that is never given back (oneDNN keeps a kernel per shape, the
# allocator its blocks): with exact widths extract's resident size grew by a quarter over its first
# 10k records; with buckets it stays flat.
WIDTH_STEP = 8


def common_prefix(rows: Sequence[Sequence[int]]) -> int:
    """Length of the token prefix all rows share, leaving every row at least one token of its own."""
    return min(len(os.path.commonprefix(list(rows))), min(map(len, rows)) - 1)


@contextlib.contextmanager
def cpu_grouped_attention(device) -> Iterator[None]:
    """While decoding on a CPU, let torch's SDPA take grouped-query key/value heads as they are.

    transformers repeats the key/value heads before SDPA whenever there is a padding mask (CUDA's
    fast kernels need it); torch's CPU kernel takes grouped heads with a mask directly (same result),
    which makes attention ~40% faster on SmolLM2 prompts. transformers reads the switch from the
    environment, so it is set for this block only and restored after.
    """
    key = "TRANSFORMERS_SDPA_FORCE_GQA"
    if device.type != "cpu" or key in os.environ:
        yield
        return
    os.environ[key] = "1"
    try:
        yield
    finally:
        del os.environ[key]


def trie_decode(model, prompts: Sequence[Sequence[int]], trie: LabelTrie, pad_id: int,
                early_stop: bool = True, allowed: Sequence[frozenset[str] | None] | None = None) -> list[list[int]]:
    """The label token ids greedy decoding through ``trie`` generates after each prompt (token ids,
    no padding) with a decoder-only model. With ``early_stop`` a row ends as soon as its tokens
    decide a label, else at the end token. ``allowed`` restricts each row to a subset of the labels
    (None: all)."""
    import torch

    device = model.device
    rows = len(prompts)
    shared = common_prefix(prompts) // WIDTH_STEP * WIDTH_STEP if rows > 1 else 0
    cache = None
    with torch.inference_mode(), cpu_grouped_attention(device):
        if shared:
            prefix = torch.tensor([list(prompts[0][:shared])], device=device)
            cache = model(input_ids=prefix, use_cache=True, logits_to_keep=1).past_key_values
            cache.batch_repeat_interleave(rows)
        # The rest of each prompt, left-padded, so every row's last position is a real token; the
        # padding sits between the shared prefix and the row's own tokens, masked out.
        rest = [list(p[shared:]) for p in prompts]
        width = -(-max(map(len, rest)) // WIDTH_STEP) * WIDTH_STEP
        ids = torch.tensor([[pad_id] * (width - len(r)) + r for r in rest], device=device)
        own = torch.tensor([[0] * (width - len(r)) + [1] * len(r) for r in rest], device=device)
        mask = torch.cat([torch.ones(rows, shared, dtype=own.dtype, device=device), own], dim=1)
        positions = shared + (own.cumsum(1) - 1).clamp(min=0)
        # The last position as an index tensor, not logits_to_keep=1: the slice that makes is a strided
        # view, for which torch's matmul can copy the output embedding once per row (~1 s a batch).
        last = torch.tensor([width - 1], device=device)
        out = model(input_ids=ids, attention_mask=mask, position_ids=positions, past_key_values=cache,
                    use_cache=True, logits_to_keep=last)
        logits, cache = out.logits[:, -1], out.past_key_values
        next_position = positions[:, -1] + 1

        generated: list[list[int]] = [[] for _ in prompts]
        open_rows = set(range(rows))
        while True:
            fed = [[] for _ in prompts]  # finished rows stay in the batch, fed masked padding
            for row in sorted(open_rows):
                labels = allowed[row] if allowed else None
                tokens = trie.allowed(tuple(generated[row]), labels)
                new = [tokens[int(logits[row, tokens].argmax())]]
                while not _finished(trie, generated[row] + new, early_stop, labels):
                    forced = trie.allowed(tuple(generated[row] + new), labels)
                    if len(forced) != 1:
                        break
                    new.extend(forced)
                generated[row].extend(new)
                if _finished(trie, generated[row], early_stop, labels):
                    open_rows.discard(row)
                else:
                    fed[row] = new
            if not open_rows:
                break
            # This round's tokens, right-padded: each row reads its logits at its own last token.
            width = max(map(len, fed))
            ids = torch.tensor([f + [pad_id] * (width - len(f)) for f in fed], device=device)
            own = torch.tensor([[1] * len(f) + [0] * (width - len(f)) for f in fed], device=device)
            lengths = own.sum(1)
            mask = torch.cat([mask, own], dim=1)
            positions = next_position[:, None] + torch.arange(width, device=device)
            logits = model(input_ids=ids, attention_mask=mask, position_ids=positions, past_key_values=cache,
                           use_cache=True, logits_to_keep=0).logits
            logits = logits[torch.arange(rows, device=device), (lengths - 1).clamp(min=0)]
            next_position = next_position + lengths
    return generated


def _finished(trie: LabelTrie, ids: list[int], early_stop: bool, labels: frozenset[str] | None = None) -> bool:
    return ids[-1] == trie.end_id or (early_stop and trie.decides(tuple(ids), labels) is not None)


def label_log_probs(model, prompt: Sequence[int], labels: Sequence[Sequence[int]]) -> list[float]:
    """The log-probability of each label's token ids (its end token included) after ``prompt``,
    with a decoder-only model: one forward over the prompt, then one over every label at once
    reading the prompt's key/value cache (one row per label)."""
    import torch

    device = model.device
    with torch.inference_mode(), cpu_grouped_attention(device):
        out = model(input_ids=torch.tensor([list(prompt)], device=device), use_cache=True, logits_to_keep=1)
        first = torch.log_softmax(out.logits[0, -1].float(), dim=-1)
        totals = [float(first[label[0]]) for label in labels]
        # Each label without its last token, right-padded: its position j predicts its token j + 1.
        fed = [list(label[:-1]) for label in labels]
        width = max(map(len, fed))
        if not width:
            return totals
        cache = out.past_key_values
        cache.batch_repeat_interleave(len(labels))
        ids = torch.tensor([f + [0] * (width - len(f)) for f in fed], device=device)
        own = torch.tensor([[1] * len(f) + [0] * (width - len(f)) for f in fed], device=device)
        mask = torch.cat([torch.ones(len(labels), len(prompt), dtype=own.dtype, device=device), own], dim=1)
        positions = len(prompt) + torch.arange(width, device=device).expand(len(labels), -1)
        logits = model(input_ids=ids, attention_mask=mask, position_ids=positions, past_key_values=cache,
                       use_cache=True, logits_to_keep=0).logits
        logp = torch.log_softmax(logits.float(), dim=-1)
        for row, label in enumerate(labels):
            rest = torch.tensor(list(label[1:]), device=device)
            totals[row] += float(logp[row, torch.arange(len(rest), device=device), rest].sum())
    return totals
