"""Training speed: relcli.finetune.finetune() vs a plain fp32 transformers Trainer + peft LoRA.

Both sides train the same LoRA (r 16, alpha 32, all linear layers, no dropout) of smollm2-135m on
the same first --examples SemEval train records, batch --batch-size, for 1 warm-up step plus
--steps timed steps, with the same learning rate and schedule. The baseline is how one would write
it by hand: fp32 weights and compute, batches padded per batch in random order (no length
grouping), the default loss (logits over every position; prompt positions masked). relcli: its
defaults on this machine (bf16 autocast only where the CPU has bf16 units, fp32 elsewhere),
length-grouped batches, loss projected to the vocabulary only at completion positions.
Both train on the same prompts (relcli's compact template), so tokens/s and examples/s agree.

Per-step times come from a trainer callback; tokens per step are counted from the batches the
embedding layer actually sees (padding included) and from the attention of the real tokens.

    nice -n 15 python bench/finetune_speed.py [--examples 256] [--steps 8] [--batch-size 8]
"""

from __future__ import annotations

import statistics
import tempfile
import time
from pathlib import Path

from common import arguments, parse, report, semeval

from relcli.device import placement
from relcli.finetune import TrainConfig, encode_causal, finetune
from relcli.labels import SEMEVAL
from relcli.prompts import COMPACT, prompt_records

LR = 5e-4
LORA = dict(r=16, alpha=32, dropout=0.0)


class StepMeter:
    """Wall time of every optimizer step and the tokens the vocabulary embedding saw in it."""

    def __init__(self):
        self.marks: list[tuple[float, int]] = []
        self.tokens = 0

    def __enter__(self):
        import torch

        def count(module, args, output):
            if isinstance(module, torch.nn.Embedding) and module.num_embeddings > 1000:
                self.tokens += args[0].numel()

        self.handle = torch.nn.modules.module.register_module_forward_hook(count)
        self.marks = [(time.perf_counter(), 0)]
        return self

    def __exit__(self, *exc):
        self.handle.remove()

    def step(self) -> None:
        self.marks.append((time.perf_counter(), self.tokens))

    def summary(self, batch: int, useful_per_example: float) -> dict:
        """Steps after the first (the warm-up): median seconds, examples/s and tokens/s, where
        useful tokens are the data set's mean tokens per example times the batch size."""
        steps = [(t1 - t0, k1 - k0) for (t0, k0), (t1, k1) in zip(self.marks, self.marks[1:])][1:]
        seconds = statistics.median(s for s, _ in steps)
        padded = sum(k for _, k in steps) / len(steps)
        useful = useful_per_example * batch
        return {
            "timed steps": len(steps),
            "s/step (median)": seconds,
            "examples/s": batch / seconds,
            "tokens/s": useful / seconds,
            "tokens/example": useful_per_example,
            "padding %": 100 * (1 - useful / padded) if padded else 0.0,
        }


def prompts(records: list[dict], template: str, name: str) -> list[dict]:
    return list(prompt_records(records, template, SEMEVAL, name, "semeval"))


def mean_tokens(tokenizer, data: list[dict]) -> float:
    """Tokens per example as both sides feed them: framed prompt + label + end token."""
    return statistics.mean(len(r["input_ids"]) for r in encode_causal(tokenizer, data, chat=False, max_length=10_000))


def relcli_side(records, steps: int, batch: int, workdir: Path, tokenizer) -> dict:
    data = prompts(records, COMPACT, "compact")
    config = TrainConfig(max_steps=steps + 1, batch_size=batch, lr=LR, lora_r=LORA["r"], lora_alpha=LORA["alpha"],
                         lora_dropout=LORA["dropout"], save_steps=10_000)
    with StepMeter() as meter:
        result = finetune(data, "smollm2-135m", workdir / "relcli", config, template=COMPACT, labels=SEMEVAL,
                          on_log=lambda step, total, logs: meter.step() if not logs else None)
    return {"side": f"relcli finetune ({placement().dtype}, completion-only logits, length-grouped)",
            **meter.summary(batch, mean_tokens(tokenizer, data)), "train loss": result["train_loss"]}


def baseline_side(records, steps: int, batch: int, workdir: Path) -> dict:
    import torch
    from datasets import Dataset
    from peft import LoraConfig, TaskType, get_peft_model
    from transformers import AutoModelForCausalLM, AutoTokenizer, DataCollatorForSeq2Seq, Trainer, TrainerCallback, TrainingArguments

    from relcli.models import smollm2_dir

    tokenizer = AutoTokenizer.from_pretrained(smollm2_dir())
    model = AutoModelForCausalLM.from_pretrained(smollm2_dir(), dtype=torch.float32)
    model = get_peft_model(model, LoraConfig(r=LORA["r"], lora_alpha=LORA["alpha"], lora_dropout=LORA["dropout"],
                                             target_modules="all-linear", task_type=TaskType.CAUSAL_LM))
    data = prompts(records, COMPACT, "compact")
    rows = [{"input_ids": r["input_ids"], "labels": [t if m else -100 for t, m in zip(r["input_ids"], r["completion_mask"])]}
            for r in encode_causal(tokenizer, data, chat=False, max_length=10_000)]
    meter = StepMeter()

    class Steps(TrainerCallback):
        def on_step_end(self, args, state, control, **kwargs):
            meter.step()

    args = TrainingArguments(
        output_dir=str(workdir / "baseline"), per_device_train_batch_size=batch, max_steps=steps + 1,
        learning_rate=LR, lr_scheduler_type="cosine", warmup_steps=0.03, use_cpu=not torch.cuda.is_available(),
        save_strategy="no", report_to=[], disable_tqdm=True, logging_steps=10_000, seed=13, data_seed=13,
    )
    trainer = Trainer(model=model, args=args, train_dataset=Dataset.from_list(rows),
                      data_collator=DataCollatorForSeq2Seq(tokenizer, padding=True), callbacks=[Steps()])
    with meter:
        result = trainer.train()
    model.save_pretrained(str(workdir / "baseline"))
    return {"side": "baseline: HF Trainer + peft LoRA (fp32, full logits, random batches)",
            **meter.summary(batch, mean_tokens(tokenizer, data)), "train loss": result.training_loss}


def dev_scores(adapter: Path, records: list[dict]) -> dict:
    """Accuracy and official macro-F1 of an adapter on held-out records, decoded as relcli extract does."""
    from relcli.extract import Generator
    from relcli.models import load_model
    from relcli.scoring import score_records

    predictions = list(Generator(load_model(str(adapter)), COMPACT, SEMEVAL).predict(records))
    scores = score_records(predictions, scheme="semeval", labels=SEMEVAL)
    return {"held-out accuracy %": scores["accuracy"], "held-out macro-F1 %": scores["official"]["f1"]}


def main() -> None:
    parser = arguments(__doc__, repeats=1)
    parser.add_argument("--examples", type=int, default=256, help="SemEval train records both sides draw batches from")
    parser.add_argument("--steps", type=int, default=8, help="timed optimizer steps (after one warm-up step)")
    parser.add_argument("--batch-size", type=int, default=16, help="both sides (relcli's default)")
    parser.add_argument("--dev", type=int, default=0, help="also label this many SemEval test records with each "
                        "side's adapter (relcli extract's decoding) and report accuracy and macro-F1")
    args = parse(parser)

    from transformers import AutoTokenizer

    from relcli.models import smollm2_dir

    records = semeval(args.data, "train", args.examples)
    tokenizer = AutoTokenizer.from_pretrained(smollm2_dir())
    with tempfile.TemporaryDirectory() as tmp:
        base = baseline_side(records, args.steps, args.batch_size, Path(tmp))
        ours = relcli_side(records, args.steps, args.batch_size, Path(tmp), tokenizer)
        if args.dev:
            dev = semeval(args.data, "test", args.dev)
            for row, adapter in ((base, "baseline"), (ours, "relcli")):
                row.update(dev_scores(Path(tmp) / adapter, dev))
    for row in (base, ours):
        row["speedup tokens/s"] = row["tokens/s"] / base["tokens/s"]
        row["speedup examples/s"] = row["examples/s"] / base["examples/s"]
    notes = [
        f"smollm2-135m, LoRA r{LORA['r']}/alpha{LORA['alpha']} all-linear, lr {LR}, batch {args.batch_size}, "
        f"{args.steps} timed steps after 1 warm-up step, drawn from the first {args.examples} SemEval train records",
        "one training run per side (training is slow); s/step is the median over the timed steps",
        "tokens = prompt + label + end token of each example, without padding (padding % is the share of computed tokens that were padding)",
        "both sides train on the same compact prompts (~62 tokens; the paper's prompt with the label list is ~290)",
        "train loss = mean per-completion-token loss over the same steps",
        *([f"held-out = the first {args.dev} SemEval test records, labelled with each side's adapter by relcli's constrained decoding"] if args.dev else []),
    ]
    report(args.results, "finetune", "finetune: relcli vs plain fp32 Trainer + LoRA", [base, ours], notes)


if __name__ == "__main__":
    main()
