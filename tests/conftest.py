"""Shared fixtures: a few SemEval-style RC records and tiny random llama / T5 models with a small
byte-level BPE tokenizer trained on those records, saved as model folders (built once per session,
in milliseconds; nothing is downloaded). torch is imported inside the fixtures, so test files that
do not use them stay light."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

# Tiny models gain nothing from intra-op threads, and on a busy machine their spinning costs more
# CPU than the work itself. Set before torch is first imported; subprocesses inherit it.
os.environ.setdefault("OMP_NUM_THREADS", "1")

from relcli.labels import SEMEVAL

DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"


def rc(id: str, text: str, head: str, tail: str, relation: str | None, **extra) -> dict:
    """An RC record whose head/tail offsets are the first occurrences of the given surfaces."""
    hs, ts = text.index(head), text.index(tail)
    return {
        "id": id,
        "text": text,
        "head": {"text": head, "start": hs, "end": hs + len(head), "type": None},
        "tail": {"text": tail, "start": ts, "end": ts + len(tail), "type": None},
        "relation": relation,
        **extra,
    }


RECORDS = [
    rc("s1", "The system has its greatest application in an arrayed configuration of antenna elements.",
       "configuration", "elements", "Component-Whole(e2,e1)"),
    rc("s2", "The child was carefully wrapped and bound into the cradle by means of a cord.",
       "child", "cradle", "Other"),
    rc("s3", "The author of a keygen uses a disassembler to look at the raw assembly code.",
       "author", "disassembler", "Instrument-Agency(e2,e1)"),
    rc("s4", "A misty ridge uprises from the surge.", "ridge", "surge", "Other"),
    rc("s5", "The student association is the voice of the undergraduate student population.",
       "student association", "undergraduate student population", "Member-Collection(e1,e2)"),
    rc("s6", "This is the sprawling complex that is Peru's most visited site.", "complex", "site", "Other"),
    rc("s7", "The burst has been caused by water hammer pressure.", "burst", "pressure", "Cause-Effect(e2,e1)"),
    rc("s8", "Their composer has sunk into oblivion.", "composer", "oblivion", "Entity-Destination(e1,e2)"),
]
# Few steps at a high rate on repeated data: enough for a random tiny model to learn its labels.
FAST = dict(max_steps=12, batch_size=4, lr=1e-2, lora_r=8, lora_alpha=16, dtype="float32", warmup_ratio=0.0,
            scheduler="constant", save_steps=100)


def write_jsonl(path: Path, rows) -> Path:
    path.write_text("".join(json.dumps(row) + "\n" for row in rows))
    return path


def _tokenizer(eos_after_input: bool):
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, processors, trainers
    from transformers import PreTrainedTokenizerFast

    from relcli.prompts import BUILTIN

    backend = Tokenizer(models.BPE(unk_token="<unk>"))
    backend.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    backend.decoder = decoders.ByteLevel()
    corpus = [r["text"] for r in RECORDS] + list(BUILTIN.values()) + SEMEVAL * 3 + ["<e1> </e1> <e2> </e2>"]
    trainer = trainers.BpeTrainer(
        vocab_size=600, special_tokens=["<pad>", "</s>", "<unk>"],
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(), show_progress=False,
    )  # fmt: skip
    backend.train_from_iterator(corpus, trainer)
    if eos_after_input:  # like T5's tokenizer: every encoded text ends with </s>
        backend.post_processor = processors.TemplateProcessing(single="$A </s>", special_tokens=[("</s>", 1)])
    return PreTrainedTokenizerFast(tokenizer_object=backend, pad_token="<pad>", eos_token="</s>", unk_token="<unk>")


def _saved(path: Path, model, tokenizer) -> str:
    model.save_pretrained(path)
    tokenizer.save_pretrained(path)
    return str(path)


def build_tiny_llama(path: Path) -> str:
    """Save a random 2-layer LlamaForCausalLM (hidden 64) and its tokenizer in ``path``.

    Hidden 64 rather than 32 so that every weight is a whole number of bitsandbytes' 64-value
    4-bit blocks, which keeps QLoRA tests on the same model. Weights drawn 10x wider than usual:
    with the default 0.02 the frozen lm_head cannot produce logits big enough for a LoRA adapter
    to lower the loss much."""
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM

    tokenizer = _tokenizer(eos_after_input=False)
    torch.manual_seed(0)
    config = LlamaConfig(
        vocab_size=len(tokenizer), hidden_size=64, intermediate_size=128, num_hidden_layers=2,
        num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=1024,
        pad_token_id=0, eos_token_id=1, bos_token_id=1, tie_word_embeddings=False, initializer_range=0.2,
    )  # fmt: skip
    return _saved(path, LlamaForCausalLM(config), tokenizer)


def build_tiny_t5(path: Path) -> str:
    """Save a random 2-layer T5ForConditionalGeneration (d_model 32) and its tokenizer in ``path``."""
    import torch
    from transformers import T5Config, T5ForConditionalGeneration

    tokenizer = _tokenizer(eos_after_input=True)
    torch.manual_seed(0)
    config = T5Config(
        vocab_size=len(tokenizer), d_model=32, d_ff=64, d_kv=8, num_layers=2, num_decoder_layers=2, num_heads=4,
        pad_token_id=0, eos_token_id=1, decoder_start_token_id=0,
    )  # fmt: skip
    return _saved(path, T5ForConditionalGeneration(config), tokenizer)


def build_tiny_adapter(base: str, path: Path) -> str:
    """A LoRA adapter on ``base`` trained (24 steps, ~1 s) on compact prompts of RECORDS with
    SemEval labels, written to ``path``; it has learnt those records' labels."""
    from relcli.finetune import TrainConfig, finetune
    from relcli.prompts import COMPACT, prompt_records

    prompts = list(prompt_records(RECORDS, COMPACT, SEMEVAL, "compact", "semeval")) * 2
    finetune(prompts, base, path, TrainConfig(**{**FAST, "max_steps": 24}), template="compact", labels=SEMEVAL)
    return str(path)


@pytest.fixture(scope="session")
def tiny_llama(tmp_path_factory) -> str:
    """A folder holding a random 2-layer LlamaForCausalLM and its tokenizer (build_tiny_llama)."""
    return build_tiny_llama(tmp_path_factory.mktemp("tiny-llama"))


@pytest.fixture(scope="session")
def tiny_t5(tmp_path_factory) -> str:
    """A folder holding a random 2-layer T5ForConditionalGeneration and its tokenizer."""
    return build_tiny_t5(tmp_path_factory.mktemp("tiny-t5"))


@pytest.fixture(scope="session")
def tiny_adapter(tiny_llama, tmp_path_factory) -> str:
    """A LoRA adapter folder trained on compact prompts of RECORDS (build_tiny_adapter)."""
    return build_tiny_adapter(tiny_llama, tmp_path_factory.mktemp("tiny-adapter"))
