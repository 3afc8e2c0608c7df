"""Peak memory of the real CLI, run as subprocesses: `relcli extract` on 1k vs 20k records (the
target is flat within 10%), and `relcli finetune` with --quantize 4bit vs none.

Running smollm2-135m over 20k records would take hours on a 2-core CPU, so extract runs a tiny
random llama (2 layers, 64 dims) saved from a config with smollm2's tokenizer: records go through
the same streaming path (read, chunk, sort, batch, constrained generate, write), only the
per-token compute is smaller. The 20k input is SemEval train+test cycled with fresh ids.
Finetune runs smollm2-135m for a few steps on compact prompts.

    nice -n 15 python bench/memory.py [--small 1000] [--large 20000] [--steps 3]
"""

from __future__ import annotations

import itertools
import sys
import tempfile
from pathlib import Path

from common import arguments, parse, report, run_peak_rss, semeval

from relcli.labels import SEMEVAL
from relcli.prompts import COMPACT, prompt_records
from relcli.records import dumps

RELCLI = [sys.executable, "-m", "relcli"]


def tiny_llama(path: Path) -> Path:
    """A random 2-layer llama with smollm2's tokenizer and chat template."""
    import torch
    from transformers import AutoTokenizer, LlamaConfig, LlamaForCausalLM

    from relcli.models import smollm2_dir

    tokenizer = AutoTokenizer.from_pretrained(smollm2_dir())
    torch.manual_seed(0)
    config = LlamaConfig(vocab_size=len(tokenizer), hidden_size=64, intermediate_size=128, num_hidden_layers=2,
                         num_attention_heads=2, num_key_value_heads=2, max_position_embeddings=2048,
                         bos_token_id=tokenizer.bos_token_id, eos_token_id=tokenizer.eos_token_id)
    LlamaForCausalLM(config).save_pretrained(path)
    tokenizer.save_pretrained(path)
    return path


def write_jsonl(path: Path, records) -> Path:
    with open(path, "wb") as out:
        for record in records:
            out.write(dumps(record))
    return path


def cycled(records: list[dict], n: int):
    for i, record in enumerate(itertools.islice(itertools.cycle(records), n)):
        yield dict(record, id=f"{record['id']}-{i}")


def main() -> None:
    parser = arguments(__doc__, repeats=1)
    parser.add_argument("--small", type=int, default=1000, help="records of the small extract run")
    parser.add_argument("--large", type=int, default=20_000, help="records of the large extract run")
    parser.add_argument("--steps", type=int, default=3, help="finetune steps per run (0: skip the finetune runs)")
    parser.add_argument("--batch-size", type=int, default=16, help="finetune batch size (16: the demo's)")
    args = parse(parser)

    env = {"OMP_NUM_THREADS": str(args.threads)} if args.threads else None
    records = semeval(args.data, "train") + semeval(args.data, "test")
    notes = [
        "peak RSS of each subprocess, measured by GNU time; one run each",
        "extract uses a tiny random llama with smollm2's tokenizer: the same streaming code path, smaller compute; flat memory means the large run is within 10% of the small one",
        f"finetune: compact prompts of the first {args.steps * args.batch_size} SemEval train records, batch {args.batch_size}",
    ]
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        model = tiny_llama(tmp / "tiny-llama")
        for n in (args.small, args.large):
            source = write_jsonl(tmp / f"in{n}.jsonl", cycled(records, n))
            rss, seconds = run_peak_rss(RELCLI + ["extract", "-m", str(model), "-t", "compact", "-l", "semeval",
                                                  "-i", str(source), "-o", str(tmp / f"out{n}.jsonl")], env=env)
            rows.append({"run": f"relcli extract, tiny llama, {n} records", "peak RSS MiB": rss, "seconds": seconds})
        rows[1]["vs small"] = f"{100 * (rows[1]['peak RSS MiB'] / rows[0]['peak RSS MiB'] - 1):+.1f}%"
        if not args.steps:
            return report(args.results, "memory", "memory: peak RSS of the CLI", rows, notes[:2])
        prompts = write_jsonl(tmp / "prompts.jsonl", prompt_records(records[: args.steps * args.batch_size], COMPACT, SEMEVAL, "compact", "semeval"))
        for quantize in ("none", "4bit"):
            rss, seconds = run_peak_rss(RELCLI + ["finetune", "-m", "smollm2-135m", "-i", str(prompts), "-o", str(tmp / f"ft-{quantize}"),
                                                  "--quantize", quantize, "--max-steps", str(args.steps),
                                                  "--batch-size", str(args.batch_size), "--save-steps", "1000"], env=env)
            rows.append({"run": f"relcli finetune smollm2-135m --quantize {quantize}, {args.steps} steps", "peak RSS MiB": rss, "seconds": seconds})
        rows[3]["vs small"] = f"{100 * (rows[3]['peak RSS MiB'] / rows[2]['peak RSS MiB'] - 1):+.1f}% vs none"
    report(args.results, "memory", "memory: peak RSS of the CLI", rows, notes)


if __name__ == "__main__":
    main()
