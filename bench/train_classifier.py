"""Train and measure an entity-marker classifier on SemEval-2010 Task 8.

    nice -n 15 python bench/train_classifier.py --out bench/out/semeval-minilm          # tune on a 90/10 dev carve
    nice -n 15 python bench/train_classifier.py --out bench/out/semeval-minilm --test   # ... and score the test set

Writes the model to OUT/model, predictions (with `relation` and `predicted`) to OUT/{dev,test}.jsonl
and the metrics to OUT/metrics.json (official SemEval macro-F1 from relcli.scoring). The dev carve
is every 10th training record; the CLI equivalent is the `classifier` row of examples/grid.mk.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

from relcli.classifier import POOLINGS, load_classifier, train_classifier
from relcli.labels import SEMEVAL
from relcli.formats import convert
from relcli.records import write_jsonl
from relcli.scoring import score_records

DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "semeval2010_task8"


def read_semeval(path: Path) -> list[dict]:
    return list(convert("semeval", [path]))


def semeval_official(predictions: list[dict]) -> dict:
    report = score_records(predictions, scheme="semeval")
    return {"macro_f1": round(report["official"]["f1"], 2), "accuracy": round(report["accuracy"], 2)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--test", action="store_true", help="also score the test set (report it once)")
    parser.add_argument("--all", action="store_true", help="train on all 8000 training records (no dev carve)")
    parser.add_argument("--threads", type=int, help="torch threads (1 is faster on a crowded machine)")
    parser.add_argument("--limit", type=int, help="train on the first N records only (timing runs)")
    parser.add_argument("--pooling", choices=POOLINGS, default="cls+entity")
    parser.add_argument("--epochs", type=int, default=5)
    parser.add_argument("--lr", type=float, default=5e-5)
    parser.add_argument("--head-lr", type=float)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--max-length", type=int, default=128)
    parser.add_argument("--dropout", type=float, default=0.1)
    parser.add_argument("--warmup-ratio", type=float, default=0.1)
    parser.add_argument("--dtype", help="float32, bfloat16 (default: relcli's probe, relcli.device)")
    parser.add_argument("--seed", type=int, default=13)
    args = parser.parse_args()

    if args.threads:
        import torch

        torch.set_num_threads(args.threads)
    train = read_semeval(DATA / "TRAIN_FILE.TXT")
    splits = {} if args.all else {"dev": train[::10]}  # deterministic dev carve: every 10th record
    train = train if args.all else [r for i, r in enumerate(train) if i % 10]
    train = train[:args.limit] if args.limit else train
    if args.test:
        splits["test"] = read_semeval(DATA / "TEST_FILE_FULL.TXT")

    def log(step, total, loss):
        if step % 25 == 0 or step == total:
            print(f"step {step}/{total} loss {loss:.4f} {time.strftime('%H:%M:%S')}", file=sys.stderr, flush=True)

    metrics = train_classifier(
        train, "minilm", args.out / "model", labels=SEMEVAL, pooling=args.pooling, epochs=args.epochs, lr=args.lr,
        head_lr=args.head_lr, batch_size=args.batch_size, max_length=args.max_length, dropout=args.dropout,
        warmup_ratio=args.warmup_ratio, dtype=args.dtype, seed=args.seed, on_log=log,
        eval_records=splits.get("dev"))
    classifier = load_classifier(args.out / "model", dtype=args.dtype)
    result = {"args": {k: str(v) for k, v in vars(args).items()}, "train": metrics}
    for name, records in splits.items():
        started = time.time()
        predictions = list(classifier.predict(records))
        seconds = time.time() - started
        with open(args.out / f"{name}.jsonl", "wb") as out:
            write_jsonl(predictions, out)
        result[name] = dict(semeval_official(predictions), records_per_s=round(len(predictions) / seconds, 1))
    (args.out / "metrics.json").write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps({k: {m: v for m, v in part.items() if m != "per_relation"} for k, part in result.items()}))


if __name__ == "__main__":
    main()
