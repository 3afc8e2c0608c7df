"""LoRA / QLoRA supervised fine-tuning of a generator on prompt/completion pairs.

Decoder-only models train through TRL's SFTTrainer, encoder-decoder (T5 family) models through
transformers' Seq2SeqTrainer; both with a peft LoRA adapter. Prompts are tokenized here, with the
same `model_input` framing `extract` uses, so training and decoding see identical token streams.
"""

from __future__ import annotations

import json
import os
import statistics
import time
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any, Callable, Iterable, Sequence

from relcli.artifacts import Artifact, check_replaceable
from relcli.errors import UserError
from relcli.models import load_model, resolve
from relcli.prompts import describe_prompts, has_chat_template, model_input
from relcli.records import Record, data_hash
from relcli.streams import replacing_dir
from relcli.triplets import REBEL_TOKENS

# The paper's Table 2 settings.
PRESETS: dict[str, dict[str, Any]] = {
    "paper-decoder": dict(lr=2e-4, batch_size=4, epochs=1.0, weight_decay=0.001, lora_alpha=16, lora_dropout=0.1, lora_r=64, quantize="4bit"),
    "paper-t5": dict(lr=5e-5, batch_size=8, epochs=1.0, lora_alpha=32, lora_dropout=0.01, lora_r=4, quantize="4bit"),
}


SHORT_PROMPT = 128  # mean tokens per training row up to which CPU training uses eager attention
# Tokens per forward on a CPU, by compute dtype: a batch holding more is split into micro-batches
# whose gradients add up to the same step (same effective batch, same schedule). A LoRA step of
# smollm2-135m keeps ~1 MB of activations per token in bf16, ~2 MB in fp32: batch 16 of SemEval's
# compact prompts peaked at 6.2 GB in one fp32 forward, 3.5 GB at 512 tokens and 2.5 GB at 256
# (13% more time per step; AMD EPYC without bf16 units), 2.1 GB at 512 in bf16 (AMX).
MICRO_TOKENS = {"bfloat16": 512, "float32": 256}
# The learning-rate schedules REBEL offered (transformers' names).
SCHEDULERS = ("constant", "constant_with_warmup", "linear", "cosine", "cosine_with_restarts", "polynomial")


@dataclass
class TrainConfig:
    epochs: float = 1.0
    max_steps: int = -1
    lr: float = 5e-4
    batch_size: int = 16
    grad_accum: int = 1
    weight_decay: float = 0.0
    warmup_ratio: float = 0.03
    scheduler: str = "cosine"
    label_smoothing: float = 0.0
    lora_r: int = 16
    lora_alpha: int = 32
    lora_dropout: float = 0.0  # on CPU the dropout RNG alone costs ~20% of a LoRA step
    lora_targets: str = "all-linear"
    quantize: str = "none"
    dtype: str | None = None  # None: the probe's choice (relcli.device)
    device: str | None = None
    max_length: int = 512
    seed: int = 13
    save_steps: int = 50
    chat: bool = False
    trust_remote_code: bool = False

    @classmethod
    def from_preset(cls, preset: str | None, **overrides) -> "TrainConfig":
        base = cls()
        if preset:
            if preset not in PRESETS:
                raise UserError(f"unknown preset {preset!r} ({', '.join(PRESETS)})", param="preset")
            base = replace(base, **PRESETS[preset])
        config = replace(base, **{k: v for k, v in overrides.items() if v is not None})
        if config.scheduler not in SCHEDULERS:
            raise UserError(f"unknown schedule {config.scheduler!r} ({', '.join(SCHEDULERS)})", param="scheduler")
        if not config.target_names():
            raise UserError("name the modules to adapt, comma-separated, or all-linear", param="lora_targets")
        return config

    def target_names(self) -> str | list[str]:
        """peft's target_modules: all-linear, or the listed module names."""
        if self.lora_targets == "all-linear":
            return "all-linear"
        return [name.strip() for name in self.lora_targets.split(",") if name.strip()]


def micro_batch(batch_size: int, mean_tokens: float, dtype: str) -> int:
    """The largest divisor of ``batch_size`` whose rows hold about MICRO_TOKENS[dtype] tokens or fewer."""
    fits = max(1, int(MICRO_TOKENS.get(dtype, MICRO_TOKENS["float32"]) // max(mean_tokens, 1)))
    return max(d for d in range(1, batch_size + 1) if batch_size % d == 0 and d <= fits)


def check_resumable(checkpoint: Path, config: TrainConfig) -> None:
    """Refuse to continue a checkpoint with a LoRA shape other than the one it was trained with."""
    try:
        saved = json.loads((checkpoint / "adapter_config.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        raise UserError(f"{checkpoint} has no readable adapter_config.json to continue from", param="resume") from None
    for key, name, value in (("r", "lora_r", config.lora_r), ("lora_alpha", "lora_alpha", config.lora_alpha)):
        if isinstance(saved, dict) and saved.get(key) is not None and saved[key] != value:
            raise UserError(f"{checkpoint.name} was trained with {name} {saved[key]}, not {value}: continue it with the same settings",
                            param=name)


def check_lora(model, config: TrainConfig) -> None:
    """Refuse LoRA settings the model cannot take: modules it does not have, a rank above its width."""
    targets = config.target_names()
    if targets != "all-linear":
        names = [name for name, _ in model.named_modules()]
        for target in targets:
            if not any(name == target or name.endswith("." + target) for name in names):
                leaves = sorted({name.rsplit(".", 1)[-1] for name, module in model.named_modules()
                                 if type(module).__name__ == "Linear"})
                raise UserError(f"the model has no module {target!r} (its linear layers: {', '.join(leaves[:12])})",
                                param="lora_targets")
    width = getattr(model.config, "hidden_size", None) or getattr(model.config, "d_model", None)
    if isinstance(width, int) and config.lora_r > width:
        raise UserError(f"a rank of {config.lora_r} is above the model's width {width}", param="lora_r")


def last_checkpoint(directory: Path) -> Path | None:
    """The newest checkpoint that was completely written (its trainer state is saved last)."""
    done = [p for p in directory.glob("checkpoint-*") if (p / "trainer_state.json").is_file()]
    return max(done, key=lambda p: int(p.name.split("-")[-1]), default=None)


def encode_causal(tokenizer, prompts: Sequence[Record], chat: bool, max_length: int) -> list[dict]:
    """input_ids = framed prompt + completion + end token; loss only on the completion."""
    rows = []
    for p in prompts:
        prompt_ids = tokenizer(model_input(p["prompt"], tokenizer, chat), add_special_tokens=False).input_ids
        completion_ids = tokenizer(p["completion"], add_special_tokens=False).input_ids + [tokenizer.eos_token_id]
        prompt_ids = prompt_ids[-(max_length - len(completion_ids)) :]
        rows.append({"input_ids": prompt_ids + completion_ids, "completion_mask": [0] * len(prompt_ids) + [1] * len(completion_ids)})
    return rows


def encode_seq2seq(tokenizer, prompts: Sequence[Record], chat: bool, max_length: int) -> list[dict]:
    """Encoder input = framed prompt (with the tokenizer's special tokens, e.g. T5's end token, as
    `extract` encodes it); labels = completion with its end token."""
    rows = []
    for p in prompts:
        rows.append({
            "input_ids": tokenizer(model_input(p["prompt"], tokenizer, chat), truncation=True, max_length=max_length).input_ids,
            "labels": tokenizer(p["completion"], truncation=True, max_length=max_length).input_ids,
        })
    return rows


def add_marker_tokens(model, tokenizer, tokens: Sequence[str]) -> dict[str, list[int]]:
    """Make ``tokens`` single special tokens of ``tokenizer`` (growing the model's embeddings when
    they need more rows) and return peft ``trainable_token_indices``: their rows of the input
    embeddings and, where the output layer is not tied to them, of the output layer too. LoRA
    leaves embeddings alone, so without this the markers would keep their random initial rows.
    """
    tokenizer.add_tokens(list(tokens), special_tokens=True)
    if len(tokenizer) > model.get_input_embeddings().num_embeddings:
        model.resize_token_embeddings(len(tokenizer))
    ids = tokenizer.convert_tokens_to_ids(list(tokens))
    names = {id(module): name for name, module in model.named_modules()}
    inputs, outputs = model.get_input_embeddings(), model.get_output_embeddings()
    rows = {names[id(inputs)]: ids}
    if outputs is not None and outputs.weight is not inputs.weight:
        rows[names[id(outputs)]] = ids
    return rows


def _completion_trainer():
    """SFTTrainer whose loss projects hidden states onto the vocabulary only where a completion
    token is predicted. With one short label per prompt that is ~1 position in 6; TRL's default
    computes log-probabilities over every position, which costs a third of a CPU training step."""
    import torch
    import torch.nn.functional as F
    from trl import SFTTrainer

    class CompletionLossTrainer(SFTTrainer):
        def compute_loss(self, model, inputs, return_outputs=False, num_items_in_batch=None):
            base = model.get_base_model() if hasattr(model, "get_base_model") else model
            targets = inputs["labels"][:, 1:]
            where = targets != -100
            hidden = base.get_decoder()(input_ids=inputs["input_ids"], attention_mask=inputs.get("attention_mask"),
                                        use_cache=False).last_hidden_state
            logits = base.get_output_embeddings()(hidden[:, :-1][where]).float()
            loss = F.cross_entropy(logits, targets[where], reduction="sum",
                                   label_smoothing=self.args.label_smoothing_factor)
            count = num_items_in_batch if num_items_in_batch is not None else where.sum()
            loss = loss / torch.as_tensor(count, device=loss.device).clamp(min=1)
            if self.args.average_tokens_across_devices and num_items_in_batch is not None:
                loss = loss * self.accelerator.num_processes
            return (loss, None) if return_outputs else loss

    return CompletionLossTrainer


def frozen_to_bf16(model) -> None:
    """Store the frozen weights in bf16; the trained (LoRA) ones stay fp32. Under bf16 autocast the
    frozen matmuls ran in bf16 anyway, so this only saves casting them again at every step (and
    half their memory); the residual stream is bf16 too, as when a model is loaded in bf16."""
    import torch

    for param in model.parameters():
        if not param.requires_grad and param.dtype == torch.float32:
            param.data = param.data.to(torch.bfloat16)


def _progress_callback(on_log: Callable[[int, int, dict], None]):
    from transformers import TrainerCallback

    class Progress(TrainerCallback):
        def on_step_end(self, args, state, control, **kwargs):
            on_log(state.global_step, state.max_steps, {})

        def on_log(self, args, state, control, logs=None, **kwargs):
            on_log(state.global_step, state.max_steps, logs or {})

    return Progress()


def finetune(
    prompts: Iterable[Record],
    base_model: str,
    out_dir: str | Path,
    config: TrainConfig,
    *,
    template: str | None = None,
    labels: str | list[str] | None = None,
    eval_prompts: Sequence[Record] = (),
    limit: int | None = None,
    resume: bool = False,
    on_log: Callable[[int, int, dict], None] | None = None,
) -> dict:
    """Train a LoRA adapter and write it (with relcli.json) to ``out_dir``; return the summary.

    ``template`` and ``labels`` override what the prompts recorded (:func:`describe_prompts`). Checkpoints go to
    ``out_dir/checkpoints``; with ``resume`` training continues from the newest complete one. The
    adapter is written into a temp folder that then replaces ``out_dir`` whole. Under `accelerate
    launch` every process trains and only the main one writes.
    """
    prompts = list(prompts)[:limit] if limit else list(prompts)
    if not prompts:
        raise UserError("no training prompts")
    described = describe_prompts(prompts, template, labels)
    out_dir = Path(out_dir)
    checkpoints = out_dir / "checkpoints"
    resume_from = last_checkpoint(checkpoints) if resume else None
    if resume and resume_from is None:
        raise UserError(f"no complete checkpoint under {checkpoints} to continue from", param="resume")
    if not resume and checkpoints.exists() and any(checkpoints.iterdir()):
        raise UserError(f"{out_dir} already has checkpoints of an earlier run: continue them, or write elsewhere", param="resume")
    check_replaceable(out_dir)
    ref = resolve(base_model)
    if resume_from is not None and ref.artifact is None:
        check_resumable(resume_from, config)

    # Imported only now: bad input above is refused without loading them.
    from datasets import Dataset
    from peft import LoraConfig, TaskType, get_peft_model, prepare_model_for_kbit_training

    loaded = load_model(ref, dtype=config.dtype, device=config.device, quantize=config.quantize,
                        trust_remote_code=config.trust_remote_code, trainable=True)
    model, tokenizer = loaded.model, loaded.tokenizer
    if config.chat and not has_chat_template(tokenizer):
        raise UserError("the model's tokenizer has no chat template to frame prompts with", param="chat")
    # An adapter from an earlier run (--model ADAPTER_DIR) keeps training with its own LoRA settings.
    trainable_tokens = None
    if ref.artifact is None:
        check_lora(model, config)
        if described.get("style") == "rebel":
            trainable_tokens = add_marker_tokens(model, tokenizer, REBEL_TOKENS)
        if config.quantize != "none":
            model = prepare_model_for_kbit_training(model, use_gradient_checkpointing=False)
        lora = LoraConfig(
            r=config.lora_r, lora_alpha=config.lora_alpha, lora_dropout=config.lora_dropout,
            target_modules=config.target_names(),
            task_type=TaskType.SEQ_2_SEQ_LM if loaded.is_seq2seq else TaskType.CAUSAL_LM,
            trainable_token_indices=trainable_tokens,
        )
        from transformers import set_seed

        set_seed(config.seed)  # LoRA weights are drawn here, before the Trainer seeds the RNGs itself
        model = get_peft_model(model, lora)
    if config.quantize == "4bit":
        from relcli.models import disable_cpu_bf16_repack

        disable_cpu_bf16_repack(model)

    place = loaded.placement
    use_bf16 = place.dtype == "bfloat16"
    if use_bf16 and config.quantize == "none" and not trainable_tokens:
        frozen_to_bf16(model)
    encode = encode_seq2seq if loaded.is_seq2seq else encode_causal
    rows = encode(tokenizer, prompts, config.chat, config.max_length)
    mean_tokens = statistics.mean(len(r["input_ids"]) for r in rows)
    micro = micro_batch(config.batch_size, mean_tokens, place.dtype) if place.is_cpu else config.batch_size
    common = dict(
        output_dir=str(checkpoints),
        per_device_train_batch_size=micro,
        per_device_eval_batch_size=micro,
        gradient_accumulation_steps=config.grad_accum * (config.batch_size // micro),
        learning_rate=config.lr,
        num_train_epochs=config.epochs,
        max_steps=config.max_steps,
        weight_decay=config.weight_decay,
        warmup_steps=config.warmup_ratio,  # a float below 1 is a fraction of the steps
        lr_scheduler_type=config.scheduler,
        label_smoothing_factor=config.label_smoothing,
        bf16=use_bf16,
        fp16=place.dtype == "float16",
        use_cpu=place.is_cpu,
        logging_steps=10,
        save_strategy="steps",
        save_steps=config.save_steps,
        save_total_limit=2,
        eval_strategy="epoch" if eval_prompts else "no",
        seed=config.seed,
        data_seed=config.seed,
        report_to=[],
        disable_tqdm=True,
        train_sampling_strategy="group_by_length",
        remove_unused_columns=False,
        gradient_checkpointing=False,  # TRL turns it on by default; recomputation costs time we have no memory reason to pay
    )
    callbacks = [_progress_callback(on_log)] if on_log else []
    if loaded.is_seq2seq:
        from transformers import DataCollatorForSeq2Seq, Seq2SeqTrainer, Seq2SeqTrainingArguments

        trainer = Seq2SeqTrainer(
            model=model,
            args=Seq2SeqTrainingArguments(**common),
            train_dataset=Dataset.from_list(rows),
            eval_dataset=Dataset.from_list(encode_seq2seq(tokenizer, eval_prompts, config.chat, config.max_length)) if eval_prompts else None,
            data_collator=DataCollatorForSeq2Seq(tokenizer, model=model),
            processing_class=tokenizer,
            callbacks=callbacks,
        )
    else:
        from trl import SFTConfig

        if place.is_cpu and mean_tokens <= SHORT_PROMPT:
            # torch's CPU flash-attention backward is slow on short rows: eager attention trained
            # SemEval compact prompts (~62 tokens) 16% faster; on the paper's prompt (~290) SDPA is 13% faster.
            model.set_attn_implementation("eager")
        trainer = _completion_trainer()(
            model=model,
            args=SFTConfig(**common, max_length=config.max_length, completion_only_loss=True),
            train_dataset=Dataset.from_list(rows),
            eval_dataset=Dataset.from_list(encode_causal(tokenizer, eval_prompts, config.chat, config.max_length)) if eval_prompts else None,
            processing_class=tokenizer,
            callbacks=callbacks,
        )
    from transformers import PrinterCallback

    trainer.remove_callback(PrinterCallback)  # it print()s every log to stdout, which carries data only
    started = time.time()
    result = trainer.train(resume_from_checkpoint=str(resume_from) if resume_from else None)
    seconds = time.time() - started
    summary = {
        "train_loss": result.training_loss,
        "steps": trainer.state.global_step,
        "examples": len(prompts),
        "seconds": round(seconds, 1),
        "resumed_from": resume_from.name if resume_from else None,
    }
    if eval_prompts:
        summary["eval_loss"] = trainer.evaluate()["eval_loss"]
    if trainer.is_world_process_zero():
        artifact = Artifact(
            kind="generator", base_model=loaded.base, seq2seq=loaded.is_seq2seq, chat=config.chat,
            continued_from=base_model if ref.artifact else None, **described,
            training={**asdict(config), **summary,
                      "data_hash": data_hash({"prompt": p["prompt"], "completion": p["completion"]} for p in prompts)})
        with replacing_dir(out_dir) as tmp:
            if trainable_tokens:
                # peft would otherwise save the whole resized embedding matrices (100+ MB); the marker
                # rows are in the adapter, and load_model's resize makes room for them again.
                trainer.model.save_pretrained(str(tmp), save_embedding_layers=False)
            else:
                trainer.save_model(str(tmp))
            (tmp / "training_args.bin").unlink(missing_ok=True)  # a pickle nobody needs; relcli.json has the arguments
            tokenizer.save_pretrained(str(tmp))
            artifact.write(tmp)
            if checkpoints.is_dir():
                os.replace(checkpoints, tmp / "checkpoints")
    return summary
