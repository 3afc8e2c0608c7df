"""Extraction throughput: relcli's Generator vs the paper code's way, and where the time goes.

The naive baseline is written here with plain transformers (+ peft for an adapter) the way the
public RAG4RE code works: one record at a time, fp32 weights, the LoRA adapter left unmerged,
free greedy generation of up to 30 new tokens, then string matching to a label. For the base
model it uses the paper's "simple" prompt with the SemEval label list in the chat template; for an
adapter, the prompt the adapter was trained on.

Table 1 runs the baseline and relcli on the same first --records test records (base model, and
the adapter when --adapter is given; relcli RAG rows when --index is given, without a naive
counterpart). Table 2 takes relcli's optimisations away one at a time on the first
--ablation-records records. The hardware fraction is 2 x parameters x tokens computed (padding
excluded) per second over the matmul rate of the dtype relcli used, measured in the same run (a bf16
rate only where the CPU has bf16 units: elsewhere bf16 is emulated and never chosen).

    python bench/extract_speed.py [--records 500] [--ablation-records 100] [--adapter DIR] [--index DIR]
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

from common import arguments, matmul_gflops, parse, report, semeval, timed

from relcli.device import placement
from relcli.extract import Generator, map_to_label, model_input
from relcli.labels import SEMEVAL
from relcli.models import load_model
from relcli.prompts import RAG, SIMPLE, load_template, render
from relcli.scoring import score_records


@dataclass
class ForwardMeter:
    """Tokens and seconds of every forward of a model, from the tensors actually passed. Prompt
    forwards feed several prompt positions and keep the last logits; label forwards feed generated
    tokens (one per row in generate(); in relcli's loop several, keeping every position's logits,
    logits_to_keep=0)."""

    computed: int = 0  # rows x positions, padding included
    real: int = 0  # positions the attention mask keeps
    prompt_seconds: float = 0.0
    label_seconds: float = 0.0
    calls: int = 0
    _started: list = field(default_factory=list)

    def attach(self, model) -> "ForwardMeter":
        model.register_forward_pre_hook(self._before, with_kwargs=True)
        model.register_forward_hook(self._after, with_kwargs=True)
        return self

    def reset(self) -> None:
        self.computed = self.real = self.calls = 0
        self.prompt_seconds = self.label_seconds = 0.0

    def _before(self, module, args, kwargs):
        self._started.append(time.perf_counter())

    def _after(self, module, args, kwargs, output):
        seconds = time.perf_counter() - self._started.pop()
        ids = kwargs["input_ids"] if "input_ids" in kwargs else args[0]
        rows, new = ids.shape
        mask = kwargs.get("attention_mask")
        self.calls += 1
        self.computed += rows * new
        self.real += int(mask[:, -new:].sum()) if mask is not None else rows * new
        keep = kwargs.get("logits_to_keep")
        if new == 1 or (isinstance(keep, int) and keep == 0):
            self.label_seconds += seconds
        else:
            self.prompt_seconds += seconds


class Naive:
    """The paper code's loop: one record, one free generation, string matching."""

    def __init__(self, loaded, template: str, chat: bool):
        self.loaded, self.template, self.chat = loaded, template, chat

    def __call__(self, records: list[dict]) -> list[dict]:
        import torch

        tokenizer, model = self.loaded.tokenizer, self.loaded.model
        out = []
        for record in records:
            text = model_input(render(self.template, record, SEMEVAL), tokenizer, chat=self.chat)
            batch = tokenizer(text, return_tensors="pt", add_special_tokens=False)
            with torch.inference_mode():
                ids = model.generate(**batch, do_sample=False, max_new_tokens=30, pad_token_id=tokenizer.pad_token_id)
            generated = ids[0, batch["input_ids"].shape[1]:]
            raw = tokenizer.decode(generated, skip_special_tokens=True)
            out.append(dict(record, predicted=map_to_label(raw, SEMEVAL) or "Other"))
        return out


def naive_loaded(name: str):
    """fp32 smollm2 through plain transformers; an adapter stays a peft model (not merged)."""
    from types import SimpleNamespace

    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from relcli.models import smollm2_dir

    tokenizer = AutoTokenizer.from_pretrained(smollm2_dir())
    model = AutoModelForCausalLM.from_pretrained(smollm2_dir(), dtype=torch.float32)
    if name != "smollm2-135m":
        from peft import PeftModel

        model = PeftModel.from_pretrained(model, name)
    model.eval()
    return SimpleNamespace(tokenizer=tokenizer, model=model)


def relcli_side(loaded, template: str, *, chat: bool, batch_size: int, sort: bool = True, own_loop: bool = True,
                examples_for=None):
    generator = Generator(loaded, template, SEMEVAL, chat=chat, batch_size=batch_size)
    if not own_loop:  # transformers' generate() with the trie processor and the early stop
        generator._generate = lambda texts, records=(), allowed=None: generator._hf_generate(texts, early_stop=True, records=records, allowed=allowed)

    def run(records: list[dict]) -> list[dict]:
        if sort:
            return list(generator.predict(records, examples_for))
        # length sorting off: consecutive batches in input order
        return [out for i in range(0, len(records), batch_size)
                for out in generator.predict_batch(records[i:i + batch_size])]

    return run


def measure(name: str, run, loaded, records: list[dict], repeats: int, peak: float, params: int,
            baseline_rate: float | None = None) -> dict:
    """One table row: throughput, quality and where the forward time and tokens go (repeats=0:
    one untimed-warm-up-free run, for the slow baseline)."""
    meter = loaded.meter
    if repeats:
        run(records[:8])
    meter.reset()
    started = time.perf_counter()
    seconds, predictions = timed(lambda: run(records), max(repeats, 1), warmup=False)
    total = time.perf_counter() - started
    runs = max(repeats, 1)
    n = len(records)
    scores = score_records(predictions, scheme="semeval", labels=SEMEVAL)
    rate = n / seconds
    return {
        "side": name,
        "records": n,
        "records/s": rate,
        "speedup": rate / baseline_rate if baseline_rate else 1.0,
        "accuracy %": scores["accuracy"],
        "macro-F1 %": scores["official"]["f1"],
        "forwards/rec": meter.calls / runs / n,
        "tokens/rec": meter.computed / runs / n,
        "padding %": 100 * (1 - meter.real / meter.computed),
        "prompt % time": 100 * meter.prompt_seconds / total,
        "label % time": 100 * meter.label_seconds / total,
        "hw fraction %": 100 * 2 * params * meter.real / runs / seconds / (peak * 1e9),
    }


def main() -> None:
    parser = arguments(__doc__)
    parser.add_argument("--records", type=int, default=500, help="test records of table 1 (the naive baseline takes ~1 s each)")
    parser.add_argument("--ablation-records", type=int, default=100, help="test records of table 2 (0: skip it)")
    parser.add_argument("--batch-size", type=int, default=16, help="relcli batch size")
    parser.add_argument("--adapter", help="an adapter from relcli finetune (table 1 rows)")
    parser.add_argument("--index", help="an index of SemEval train (relcli RAG row of table 1, k=3)")
    args = parse(parser)

    import torch

    records = semeval(args.data, "test", max(args.records, args.ablation_records))
    place = placement()  # what a user gets by default on this machine
    peak = matmul_gflops(place.dtype)
    size = args.batch_size

    def metered(loaded):
        # a peft model's generate() runs the base model's forward
        model = loaded.model.get_base_model() if hasattr(loaded.model, "get_base_model") else loaded.model
        loaded.meter = ForwardMeter().attach(model)
        return loaded

    base = metered(load_model("smollm2-135m"))
    params = sum(p.numel() for p in base.model.parameters())

    def row(name, run, loaded, subset, repeats=args.repeats, baseline=None):
        return measure(name, run, loaded, subset, repeats, peak, params, baseline)

    subset = records[: args.records]
    naive_base = metered(naive_loaded("smollm2-135m"))
    naive = row("naive loop: base model, simple prompt", Naive(naive_base, SIMPLE, chat=True), naive_base, subset, repeats=0)
    rows = [naive, row(f"relcli: base model, simple prompt, batch {size}",
                       relcli_side(base, SIMPLE, chat=True, batch_size=size), base, subset, baseline=naive["records/s"])]
    if args.adapter:
        tuned = metered(load_model(args.adapter))
        template, chat = tuned.artifact.template, tuned.artifact.chat
        naive_tuned = metered(naive_loaded(args.adapter))
        slow = row("naive loop: adapter, its prompt", Naive(naive_tuned, template, chat=chat), naive_tuned, subset, repeats=0)
        rows += [slow, row(f"relcli: adapter, its prompt, batch {size}", relcli_side(tuned, template, chat=chat, batch_size=size),
                           tuned, subset, baseline=slow["records/s"])]
        del naive_tuned
    if args.index:
        from relcli.retrieval import Index

        index = Index.load(args.index)

        def examples_for(batch):
            return [[n for n, _ in hits] for hits in index.search(batch, 3)]

        loaded, template, chat = (tuned, load_template("compact-rag"), chat) if args.adapter else (base, RAG, True)
        rows.append(row(f"relcli: RAG k=3, {'adapter, compact-rag' if args.adapter else 'base model, rag'} prompt",
                        relcli_side(loaded, template, chat=chat, batch_size=size, examples_for=examples_for), loaded, subset,
                        repeats=1))
    notes = [
        f"{len(subset)} SemEval test records, smollm2-135m ({params / 1e6:.0f}M parameters), torch threads {torch.get_num_threads()}",
        f"relcli ran on {place.describe()} (its default here); the naive loop on cpu, float32",
        f"matmul 2048² in {place.dtype}: {peak:.0f} GFLOP/s (measured in this run); hw fraction = "
        f"2 x params x tokens computed (padding excluded) per second over that {place.dtype} rate",
        f"naive rows timed once (they are slow); relcli rows: median of {args.repeats} after a warm-up batch; speedup = "
        "records/s over the naive row above it. relcli: its default dtype, LoRA merged, length-sorted batches, constrained decoding "
        "with the shared prompt prefix run once per batch and forced label tokens fed together",
        "RAG rows include embedding the queries and the hnswlib search (one timed run after a warm-up batch)",
    ]
    report(args.results, "extract_vs_baseline", f"extract: relcli vs the paper code's loop on {len(subset)} records", rows, notes)

    del naive_base
    if not args.ablation_records:
        return
    subset = records[: args.ablation_records]
    ablations = [
        ("relcli as shipped", relcli_side(base, SIMPLE, chat=True, batch_size=size), base),
        ("generate() + trie processor instead of relcli's loop", relcli_side(base, SIMPLE, chat=True, batch_size=size, own_loop=False), base),
        ("batches in input order (no length sorting)", relcli_side(base, SIMPLE, chat=True, batch_size=size, sort=False), base),
        (f"batch {size // 2}", relcli_side(base, SIMPLE, chat=True, batch_size=size // 2), base),
        (f"batch {size * 2}", relcli_side(base, SIMPLE, chat=True, batch_size=size * 2), base),
    ]
    if place.dtype == "bfloat16":  # only where bf16 units exist: elsewhere fp32 is the default already
        fp32 = metered(load_model("smollm2-135m", dtype="float32"))
        ablations.append(("fp32 weights", relcli_side(fp32, SIMPLE, chat=True, batch_size=size), fp32))
    table = []
    for name, run, loaded in ablations:
        table.append(row(name, run, loaded, subset, baseline=table[0]["records/s"] if table else None))
    report(args.results, "extract_ablations", f"extract: relcli's optimisations taken away one at a time ({len(subset)} records, base model, simple prompt)",
           table, [f"speedup is against relcli as shipped (batch {size})"])


if __name__ == "__main__":
    main()
