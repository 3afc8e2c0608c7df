"""Fine-tuning on tiny random models: completion-only masking and loss, LoRA / QLoRA / seq2seq
training that learns, the adapter folder, and resuming from a checkpoint."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from conftest import FAST, RECORDS

from relcli import __version__
from relcli.errors import UserError
from relcli.finetune import TrainConfig, encode_causal, finetune
from relcli.labels import SEMEVAL
from relcli.device import cpu_has_bf16
from relcli.prompts import COMPACT, prompt_records
from relcli.records import data_hash

PROMPTS = list(prompt_records(RECORDS, COMPACT, SEMEVAL, "compact", "semeval"))


def completion_loss(model_dir: str, prompts=PROMPTS) -> float:
    """Mean cross-entropy of the gold completions (with their end token) under a model or adapter."""
    import torch

    from relcli.finetune import encode_seq2seq
    from relcli.models import load_model

    loaded = load_model(model_dir, dtype="float32")
    model, tokenizer = loaded.model, loaded.tokenizer
    losses = []
    with torch.no_grad():
        if loaded.is_seq2seq:
            for row in encode_seq2seq(tokenizer, prompts, chat=False, max_length=512):
                out = model(input_ids=torch.tensor([row["input_ids"]]), labels=torch.tensor([row["labels"]]))
                losses.append(out.loss.item())
        else:
            for row in encode_causal(tokenizer, prompts, chat=False, max_length=512):
                ids = torch.tensor([row["input_ids"]])
                mask = torch.tensor(row["completion_mask"][1:], dtype=torch.bool)
                logits = model(input_ids=ids).logits[0, :-1]
                losses.append(torch.nn.functional.cross_entropy(logits[mask], ids[0, 1:][mask]).item())
    return sum(losses) / len(losses)


def train(base: str, out: Path, **overrides) -> dict:
    config = TrainConfig(**{**FAST, **overrides})
    return finetune(PROMPTS * 2, base, out, config, template="compact", labels=SEMEVAL)


def test_encode_causal_puts_loss_on_completion_and_end_token_only(tiny_llama):
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(tiny_llama)
    for prompt, row in zip(PROMPTS, encode_causal(tokenizer, PROMPTS, chat=False, max_length=512)):
        ids, mask = row["input_ids"], row["completion_mask"]
        assert len(ids) == len(mask) and mask == sorted(mask)  # 0s then 1s
        completion = [i for i, m in zip(ids, mask) if m]
        assert completion[-1] == tokenizer.eos_token_id
        assert tokenizer.decode(completion[:-1]) == prompt["completion"]
        assert tokenizer.decode([i for i, m in zip(ids, mask) if not m]) == prompt["prompt"]  # compact ends in \n


def test_encode_causal_truncates_the_prompt_from_the_left_and_keeps_the_completion(tiny_llama):
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(tiny_llama)
    row = encode_causal(tokenizer, PROMPTS[:1], chat=False, max_length=16)[0]
    assert len(row["input_ids"]) == 16
    completion = [i for i, m in zip(row["input_ids"], row["completion_mask"]) if m]
    assert tokenizer.decode(completion[:-1]) == PROMPTS[0]["completion"]


def test_completion_loss_equals_cross_entropy_over_completion_tokens(tiny_llama):
    import torch
    from datasets import Dataset
    from transformers import AutoModelForCausalLM, AutoTokenizer
    from trl import SFTConfig

    from relcli.finetune import _completion_trainer

    tokenizer = AutoTokenizer.from_pretrained(tiny_llama)
    model = AutoModelForCausalLM.from_pretrained(tiny_llama, dtype=torch.float32)
    rows = encode_causal(tokenizer, PROMPTS[:3], chat=False, max_length=512)
    trainer = _completion_trainer()(
        model=model, processing_class=tokenizer, train_dataset=Dataset.from_list(rows),
        args=SFTConfig(output_dir="unused", use_cpu=True, report_to=[], completion_only_loss=True,
                       remove_unused_columns=False, gradient_checkpointing=False),
    )  # fmt: skip
    batch = trainer.data_collator([trainer.train_dataset[i] for i in range(3)])
    with torch.no_grad():
        loss = trainer.compute_loss(model, batch)
        # By hand: every completion token (label pieces + end token) of every row, one mean.
        logits, targets = [], []
        for row in rows:
            ids = torch.tensor([row["input_ids"]])
            where = torch.tensor(row["completion_mask"][1:], dtype=torch.bool)
            logits.append(model(input_ids=ids).logits[0, :-1][where])
            targets.append(ids[0, 1:][where])
        reference = torch.nn.functional.cross_entropy(torch.cat(logits), torch.cat(targets))
    assert loss.item() == pytest.approx(reference.item(), rel=1e-4)
    assert batch["labels"].ne(-100).sum() == sum(sum(r["completion_mask"]) for r in rows)


def test_lora_training_lowers_the_loss_and_writes_a_loadable_adapter(tiny_llama, tmp_path):
    import torch
    from peft import PeftModel
    from transformers import AutoModelForCausalLM

    from relcli.models import load_model

    before = completion_loss(tiny_llama)
    summary = train(tiny_llama, tmp_path / "adapter")
    after = completion_loss(str(tmp_path / "adapter"))
    assert summary["steps"] == 12 and summary["resumed_from"] is None
    assert after < before * 0.5, (before, after)

    meta = json.loads((tmp_path / "adapter" / "relcli.json").read_text())
    assert meta["kind"] == "generator" and meta["task"] == "rc" and meta["seq2seq"] is False
    assert meta["base_model"] == tiny_llama and meta["relcli_version"] == __version__
    assert meta["template"] == COMPACT and meta["template_name"] == "compact" and meta["labels"] == SEMEVAL and meta["chat"] is False
    training = meta["training"]
    assert training["lr"] == 1e-2 and training["lora_r"] == 8 and training["max_steps"] == 12
    assert training["data_hash"] == data_hash({"prompt": p["prompt"], "completion": p["completion"]} for p in PROMPTS * 2) and training["examples"] == 16

    # Plain transformers + peft load it, and it is the trained model.
    base = AutoModelForCausalLM.from_pretrained(tiny_llama, dtype=torch.float32)
    peft = PeftModel.from_pretrained(base, str(tmp_path / "adapter"))
    ids = torch.tensor([[5, 6, 7, 8]])
    merged = load_model(str(tmp_path / "adapter"), dtype="float32")
    with torch.no_grad():
        assert torch.allclose(peft(input_ids=ids).logits, merged.model(input_ids=ids).logits, atol=1e-4)


def test_same_seed_same_adapter_whatever_ran_before(tiny_llama, tmp_path):
    import torch
    from safetensors.torch import load_file

    weights = []
    for i in range(2):
        torch.manual_seed(i)  # whatever used the global RNG before
        train(tiny_llama, tmp_path / str(i), max_steps=1)
        weights.append(load_file(tmp_path / str(i) / "adapter_model.safetensors"))
    assert weights[0].keys() == weights[1].keys()
    assert all(torch.equal(weights[0][k], weights[1][k]) for k in weights[0])


def test_seq2seq_lora_training_lowers_the_loss(tiny_t5, tmp_path):
    before = completion_loss(tiny_t5)
    summary = train(tiny_t5, tmp_path / "adapter", lr=3e-2)
    after = completion_loss(str(tmp_path / "adapter"))
    assert summary["steps"] == 12
    assert after < before * 0.7, (before, after)
    meta = json.loads((tmp_path / "adapter" / "relcli.json").read_text())
    assert meta["seq2seq"] is True and meta["base_model"] == tiny_t5


def test_qlora_4bit_lora_gets_gradients_after_an_inference_forward(tiny_llama):
    """GUIDE §6: on AVX512-BF16 CPUs a no-grad eval forward repacks the 4-bit weights, after which
    LoRA gradients silently vanish (None, or zeros with bitsandbytes 0.50), unless the fast path is
    switched off (load_model and finetune do)."""
    import torch
    from peft import LoraConfig, get_peft_model

    from relcli.models import load_model

    loaded = load_model(tiny_llama, quantize="4bit", trainable=True)
    model = get_peft_model(loaded.model, LoraConfig(r=4, target_modules="all-linear", task_type="CAUSAL_LM"))
    ids = torch.tensor([[5, 6, 7, 8, 9]])
    model.eval()
    with torch.no_grad():
        model(input_ids=ids)
    model.train()
    model(input_ids=ids, labels=ids).loss.backward()
    grads = {name: p.grad for name, p in model.named_parameters() if "lora_" in name}
    assert grads and all(g is not None for g in grads.values())
    assert all(g.abs().sum() > 0 for name, g in grads.items() if "lora_B" in name)  # lora_A's are 0: B starts at 0


def test_qlora_4bit_training_lowers_the_loss(tiny_llama, tmp_path):
    before = completion_loss(tiny_llama)
    train(tiny_llama, tmp_path / "adapter", quantize="4bit")
    after = completion_loss(str(tmp_path / "adapter"))  # the adapter on the full-precision base
    assert after < before * 0.5, (before, after)
    meta = json.loads((tmp_path / "adapter" / "relcli.json").read_text())
    assert meta["training"]["quantize"] == "4bit"


class Interrupt(Exception):
    pass


def test_resume_continues_from_the_last_checkpoint(tiny_llama, tmp_path):
    out = tmp_path / "adapter"
    config = TrainConfig(**{**FAST, "max_steps": 4, "save_steps": 2})
    steps: list[int] = []

    def stop_at_3(step, total, logs):
        steps.append(step)
        if step == 3:
            raise Interrupt

    with pytest.raises(Interrupt):
        finetune(PROMPTS, tiny_llama, out, config, template="compact", labels=SEMEVAL, on_log=stop_at_3)
    assert not (out / "relcli.json").exists()
    assert [p.name for p in (out / "checkpoints").glob("checkpoint-*")] == ["checkpoint-2"]
    with pytest.raises(UserError, match="checkpoints of an earlier run") as refused:
        finetune(PROMPTS, tiny_llama, out, config, template="compact", labels=SEMEVAL)

    assert refused.value.param == "resume"
    steps.clear()
    summary = finetune(PROMPTS, tiny_llama, out, config, template="compact", labels=SEMEVAL, resume=True,
                       on_log=lambda step, total, logs: steps.append(step))
    assert summary["resumed_from"] == "checkpoint-2" and summary["steps"] == 4
    assert 1 not in steps and 2 not in steps and steps[-1] == 4  # steps 3 and 4 only were trained
    state = json.loads((out / "checkpoints" / "checkpoint-4" / "trainer_state.json").read_text())
    assert state["global_step"] == 4
    assert (out / "relcli.json").exists() and (out / "adapter_model.safetensors").exists()


def test_resume_without_a_checkpoint_is_a_user_error(tiny_llama, tmp_path):
    with pytest.raises(UserError, match="no complete checkpoint"):
        finetune(PROMPTS, tiny_llama, tmp_path / "new", TrainConfig(**FAST), template="compact", labels=SEMEVAL,
                 resume=True)


def test_presets_are_the_paper_settings_and_flags_override():
    config = TrainConfig.from_preset("paper-decoder", lr=1e-3, batch_size=None)
    assert (config.lr, config.batch_size, config.lora_r, config.lora_alpha, config.quantize) == (1e-3, 4, 64, 16, "4bit")
    assert TrainConfig.from_preset("paper-t5").lora_r == 4
    with pytest.raises(UserError):
        TrainConfig.from_preset("nope")


def test_frozen_to_bf16_keeps_the_trained_weights_fp32(tiny_llama):
    import torch
    from peft import LoraConfig, get_peft_model

    from relcli.finetune import frozen_to_bf16
    from relcli.models import load_model

    model = get_peft_model(load_model(tiny_llama, trainable=True).model, LoraConfig(r=4, target_modules="all-linear"))
    frozen_to_bf16(model)
    dtypes = {(p.requires_grad, p.dtype) for p in model.parameters()}
    assert dtypes == {(True, torch.float32), (False, torch.bfloat16)}


@pytest.mark.skipif(not cpu_has_bf16(), reason="no bf16 units on this CPU (bf16 there is emulated, ~77x slower)")
def test_bf16_training_lowers_the_loss_and_saves_fp32_lora_weights(tiny_llama, tmp_path):
    from safetensors.torch import load_file

    before = completion_loss(tiny_llama)
    train(tiny_llama, tmp_path / "adapter", dtype="bfloat16")
    assert completion_loss(str(tmp_path / "adapter")) < before * 0.5
    weights = load_file(tmp_path / "adapter" / "adapter_model.safetensors")
    assert {str(w.dtype) for w in weights.values()} == {"torch.float32"}


def test_cpu_batches_split_into_micro_batches_of_about_micro_tokens():
    from relcli.finetune import MICRO_TOKENS, micro_batch

    assert MICRO_TOKENS == {"bfloat16": 512, "float32": 256}
    assert micro_batch(16, 62, "bfloat16") == 8 and micro_batch(16, 300, "bfloat16") == 1 and micro_batch(10, 62, "bfloat16") == 5
    assert micro_batch(16, 62, "float32") == 4  # fp32 activations take twice the memory
    assert micro_batch(16, 8, "float32") == 16  # short rows: the whole batch in one forward
