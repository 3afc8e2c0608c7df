"""Helpers for tests of triplet generation: a byte-level tokenizer and a scripted output layer."""

from __future__ import annotations


def byte_tokenizer():
    """A byte-level tokenizer with no merges: any text round-trips, one token per character (one
    per UTF-8 byte outside ASCII); 259 tokens: <pad> 0, </s> 1, <unk> 2, then the bytes."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers
    from transformers import PreTrainedTokenizerFast

    vocab = {t: i for i, t in enumerate(["<pad>", "</s>", "<unk>"] + sorted(pre_tokenizers.ByteLevel.alphabet()))}
    backend = Tokenizer(models.BPE(vocab, [], unk_token="<unk>"))
    backend.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    backend.decoder = decoders.ByteLevel()
    return PreTrainedTokenizerFast(tokenizer_object=backend, pad_token="<pad>", eos_token="</s>", unk_token="<unk>")


class Scripted:
    """Within ``with Scripted(model, script, vocab) as model:``, the model's output layer ignores its
    input: at its i-th call the logits prefer script[i]'s token ids, best first (one call per
    generated token; the last entry repeats), so a test decides what a model "wants" to write."""

    def __init__(self, model, script: list[list[int]], vocab: int):
        import torch

        class Head(torch.nn.Module):
            calls = 0

            def forward(self, hidden):
                logits = torch.zeros(*hidden.shape[:-1], vocab)
                for rank, token in enumerate(script[min(self.calls, len(script) - 1)]):
                    logits[..., token] = 10.0 - rank
                self.calls += 1
                return logits

        self.model, self.head = model, Head()

    def __enter__(self):
        self.saved, self.model.lm_head = self.model.lm_head, self.head
        return self.model

    def __exit__(self, *exc):
        self.model.lm_head = self.saved
