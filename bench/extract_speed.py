"""Extraction throughput: relcli's Generator vs the paper code's way, and where the time goes.

The naive baseline is written here with plain transformers the way the public RAG4RE code works:
one record at a time, the paper's "simple" prompt with the SemEval label list in the chat
template, fp32 weights, free greedy generation of up to 30 new tokens, then string matching to a
label. Table 1 runs it and relcli's variants (batch size, fp32 vs bf16, length sorting off) on the
same first --baseline-records test records; table 2 runs relcli's main configurations on the
first --records test records (the fine-tuned adapter and RAG rows only when --adapter / --index
are given). The hardware fraction is 2 x parameters x useful tokens per second over the bf16
matmul rate measured in the same run.

    nice -n 15 python bench/extract_speed.py [--records 500] [--baseline-records 100] [--adapter DIR] [--index DIR]
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

from common import arguments, matmul_gflops, parse, report, semeval, timed

from relcli.extract import Generator, map_to_label, model_input
from relcli.labels import SEMEVAL
from relcli.models import load_model
from relcli.prompts import COMPACT, COMPACT_RAG, RAG, SIMPLE, render
from relcli.scoring import score_records


@dataclass
class ForwardMeter:
    """Tokens and seconds of every forward of a model, split into prefill (several new positions
    per row) and decode steps (one), counted from the tensors actually passed, padding included."""

    prefill_tokens: int = 0
    prefill_useful: int = 0
    prefill_seconds: float = 0.0
    decode_tokens: int = 0
    decode_seconds: float = 0.0
    _started: list = field(default_factory=list)

    def attach(self, model) -> "ForwardMeter":
        model.register_forward_pre_hook(self._before, with_kwargs=True)
        model.register_forward_hook(self._after, with_kwargs=True)
        return self

    def reset(self) -> None:
        self.prefill_tokens = self.prefill_useful = self.decode_tokens = 0
        self.prefill_seconds = self.decode_seconds = 0.0

    def _before(self, module, args, kwargs):
        self._started.append(time.perf_counter())

    def _after(self, module, args, kwargs, output):
        seconds = time.perf_counter() - self._started.pop()
        ids = kwargs["input_ids"] if "input_ids" in kwargs else args[0]
        rows, new = ids.shape
        if new > 1:
            mask = kwargs.get("attention_mask")
            self.prefill_tokens += rows * new
            self.prefill_useful += int(mask[:, -new:].sum()) if mask is not None else rows * new
            self.prefill_seconds += seconds
        else:
            self.decode_tokens += rows
            self.decode_seconds += seconds


def label_tokens(tokenizer, label: str) -> int:
    return len(tokenizer(label, add_special_tokens=False).input_ids)


class Naive:
    """The paper code's loop: one record, one free generation, string matching."""

    def __init__(self, loaded):
        self.loaded = loaded

    def __call__(self, records: list[dict]) -> list[dict]:
        import torch

        tokenizer, model = self.loaded.tokenizer, self.loaded.model
        out = []
        for record in records:
            text = model_input(render(SIMPLE, record, SEMEVAL), tokenizer, chat=True)
            batch = tokenizer(text, return_tensors="pt", add_special_tokens=False)
            with torch.inference_mode():
                ids = model.generate(**batch, do_sample=False, max_new_tokens=30, pad_token_id=tokenizer.pad_token_id)
            generated = ids[0, batch["input_ids"].shape[1]:]
            raw = tokenizer.decode(generated, skip_special_tokens=True)
            out.append(dict(record, predicted=map_to_label(raw, SEMEVAL) or "Other"))
        return out


def relcli_side(loaded, template: str, *, chat: bool, batch_size: int, sort: bool = True, early_stop: bool = True,
                examples_for=None):
    generator = Generator(loaded, template, SEMEVAL, chat=chat, batch_size=batch_size, early_stop=early_stop)

    def run(records: list[dict]) -> list[dict]:
        if sort:
            return list(generator.predict(records, examples_for))
        # length sorting off: consecutive batches in input order
        return [out for i in range(0, len(records), batch_size)
                for out in generator.predict_batch(records[i:i + batch_size])]

    return run


def measure(name: str, run, loaded, records: list[dict], repeats: int, peak: float, warmup: int, params: int,
            baseline_rate: float | None = None, unpadded: bool = False) -> dict:
    """One table row: throughput, quality and where the forward time and tokens go."""
    meter = loaded.meter
    run(records[:warmup])
    meter.reset()
    started = time.perf_counter()
    seconds, predictions = timed(lambda: run(records), repeats, warmup=False)
    total = time.perf_counter() - started
    runs = max(repeats, 1)
    n = len(records)
    scores = score_records(predictions, scheme="semeval", labels=SEMEVAL)
    # decode inputs a record really needs: its predicted label's tokens fed back (the end token is not)
    useful_decode = (meter.decode_tokens / runs if unpadded
                     else sum(label_tokens(loaded.tokenizer, p["predicted"]) for p in predictions))
    useful = meter.prefill_useful / runs + useful_decode
    processed = (meter.prefill_tokens + meter.decode_tokens) / runs
    rate = n / seconds
    row = {
        "side": name,
        "records": n,
        "records/s": rate,
        "speedup": rate / baseline_rate if baseline_rate else 1.0,
        "accuracy %": scores["accuracy"],
        "macro-F1 %": 100 * scores["official"]["f1"],
        "useful tok/rec": useful / n,
        "padding %": 100 * (1 - useful / processed) if processed else 0.0,
        "prefill % time": 100 * meter.prefill_seconds / total,
        "decode % time": 100 * meter.decode_seconds / total,
        "hw fraction %": 100 * 2 * params * useful / seconds / (peak * 1e9),
    }
    return row


def main() -> None:
    parser = arguments(__doc__)
    parser.add_argument("--records", type=int, default=500, help="test records of table 2")
    parser.add_argument("--baseline-records", type=int, default=100, help="test records of table 1 (the naive baseline is ~1 s/record)")
    parser.add_argument("--batch-sizes", type=int, nargs="+", default=[8, 16, 32], help="relcli batch sizes of table 1")
    parser.add_argument("--batch-size", type=int, default=16, help="relcli batch size of table 2")
    parser.add_argument("--adapter", help="a compact-template adapter from relcli finetune (table 2 row)")
    parser.add_argument("--index", help="an index of SemEval train (RAG row of table 2, k=3)")
    args = parse(parser)

    import torch

    records = semeval(args.data, "test", max(args.records, args.baseline_records))
    peak = matmul_gflops("bfloat16")
    peak32 = matmul_gflops("float32")
    warmup = 8
    models = {}

    def model(name: str, dtype: str):
        if (name, dtype) not in models:
            loaded = load_model(name, dtype=dtype)
            loaded.meter = ForwardMeter().attach(loaded.model)
            models[name, dtype] = loaded
        return models[name, dtype]

    bf16, fp32 = model("smollm2-135m", "bfloat16"), model("smollm2-135m", "float32")
    params = sum(p.numel() for p in bf16.model.parameters())
    subset = records[: args.baseline_records]
    base = measure("naive (paper code): fp32, 1 record, free generation", Naive(fp32), fp32, subset, 1, peak, 1, params,
                   unpadded=True)
    rows = [base]
    for size in args.batch_sizes:
        rows.append(measure(f"relcli simple bf16 batch {size}", relcli_side(bf16, SIMPLE, chat=True, batch_size=size),
                            bf16, subset, args.repeats, peak, warmup, params, base["records/s"]))
    rows.append(measure(f"relcli simple fp32 batch {args.batch_size}", relcli_side(fp32, SIMPLE, chat=True, batch_size=args.batch_size),
                        fp32, subset, args.repeats, peak, warmup, params, base["records/s"]))
    rows.append(measure(f"relcli simple bf16 batch {args.batch_size}, no early stop", relcli_side(bf16, SIMPLE, chat=True, batch_size=args.batch_size, early_stop=False),
                        bf16, subset, args.repeats, peak, warmup, params, base["records/s"]))
    rows.append(measure(f"relcli simple bf16 batch {args.batch_size}, unsorted", relcli_side(bf16, SIMPLE, chat=True, batch_size=args.batch_size, sort=False),
                        bf16, subset, args.repeats, peak, warmup, params, base["records/s"]))
    notes = [
        f"{len(subset)} SemEval test records, smollm2-135m ({params / 1e6:.0f}M parameters), torch threads {torch.get_num_threads()}",
        f"matmul 2048²: bf16 {peak:.0f} GFLOP/s, fp32 {peak32:.0f} GFLOP/s (measured in this run); hw fraction = 2 x params x useful tokens/s over the bf16 rate",
        "naive baseline timed once (it is slow), relcli rows: median of "
        f"{args.repeats} after a warm-up batch; relcli decodes constrained to the label trie and stops a row once its label is decided (early stop)",
        "padding % = tokens computed beyond the useful ones (left padding in prefill, finished rows in decode steps)",
    ]
    report(args.results, "extract_vs_baseline", "extract: relcli vs the paper code's loop (same records)", rows, notes)

    del models["smollm2-135m", "float32"]
    main_rows = [measure(f"relcli simple bf16 batch {args.batch_size}", relcli_side(bf16, SIMPLE, chat=True, batch_size=args.batch_size),
                         bf16, records[: args.records], args.repeats, peak, warmup, params, base["records/s"])]
    if args.adapter:
        tuned = model(args.adapter, "bfloat16")
        chat = bool(tuned.meta.get("chat"))
        main_rows.append(measure("relcli adapter compact bf16", relcli_side(tuned, COMPACT, chat=chat, batch_size=args.batch_size),
                                 tuned, records[: args.records], args.repeats, peak, warmup, params, base["records/s"]))
    if args.index:
        from relcli.retrieval import Index

        index = Index.load(args.index)

        def examples_for(batch):
            return [[n for n, _ in hits] for hits in index.search(batch, 3)]

        loaded, template, chat = (tuned, COMPACT_RAG, chat) if args.adapter else (bf16, RAG, True)
        main_rows.append(measure(f"relcli RAG k=3 ({'adapter, compact-rag' if args.adapter else 'base, rag'})",
                                 relcli_side(loaded, template, chat=chat, batch_size=args.batch_size, examples_for=examples_for),
                                 loaded, records[: args.records], args.repeats, peak, warmup, params, base["records/s"]))
    report(args.results, "extract", f"extract: relcli on {args.records} SemEval test records", main_rows,
           [f"speedup is against the naive baseline's records/s of table 1 (first {len(subset)} of these records)",
            "RAG rows include embedding the queries and the hnswlib search"])


if __name__ == "__main__":
    main()
