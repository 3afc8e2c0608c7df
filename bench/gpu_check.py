"""`make gpu-check`: every model-running stage of relcli on a CUDA GPU, timed, in a few minutes.

1. QLoRA (NF4, double quantization, bf16 compute where the GPU has it) fine-tuning of smollm2-135m
   for --steps steps on compact SemEval prompts;
2. extraction of --records SemEval test records with that adapter (relcli's own decoding loop);
3. the minilm encoder classifier for one epoch on --classifier-records training records, then
   prediction on the same test records;
4. the index embedder over the classifier's training records.

Each stage prints its device, dtype, records/s or tokens/s and, where it labels records, the
official SemEval macro-F1. On a machine without CUDA it says so and exits 0.

    python bench/gpu_check.py [--steps 30] [--records 500] [--classifier-records 2000]
"""

from __future__ import annotations

import sys
import tempfile
import time
from pathlib import Path

from common import arguments, parse, semeval


def main() -> int:
    parser = arguments(__doc__, repeats=1)
    parser.add_argument("--steps", type=int, default=30, help="QLoRA optimizer steps")
    parser.add_argument("--records", type=int, default=500, help="SemEval test records to label")
    parser.add_argument("--classifier-records", type=int, default=2000, help="training records of the classifier epoch")
    args = parse(parser)

    import torch

    if not torch.cuda.is_available():
        print("gpu-check: no CUDA GPU here (torch sees none); nothing to check on this machine.")
        return 0
    from relcli.device import placement
    from relcli.finetune import TrainConfig, finetune
    from relcli.labels import SEMEVAL
    from relcli.predictors import open_predictor
    from relcli.prompts import COMPACT, prompt_records
    from relcli.retrieval import build_index
    from relcli.scoring import score_records
    from relcli.classifier import train_classifier

    place = placement()
    print(f"gpu-check on {torch.cuda.get_device_name(0)}: relcli's default placement {place.describe()}")
    train, test = semeval(args.data, "train"), semeval(args.data, "test", args.records)
    rows = []

    def labelled(name: str, model: str, started: float, **options) -> None:
        predictor = open_predictor(model, batch_size=64, **options)
        begin = time.perf_counter()
        predictions = list(predictor.predict(test))
        seconds = time.perf_counter() - begin
        scores = score_records(predictions, scheme="semeval", labels=SEMEVAL)
        rows.append(f"{name}: {len(test) / seconds:.1f} records/s, macro-F1 {scores['official']['f1']:.2f} "
                    f"(accuracy {scores['accuracy']:.2f}), stage {time.perf_counter() - started:.0f} s")

    with tempfile.TemporaryDirectory() as tmp:
        adapter, classifier = Path(tmp) / "adapter", Path(tmp) / "classifier"
        started = time.perf_counter()
        prompts = list(prompt_records(train[: args.steps * 16], COMPACT, SEMEVAL, "compact", "semeval"))
        config = TrainConfig(max_steps=args.steps, batch_size=16, lr=8e-4, quantize="4bit", save_steps=10_000)
        summary = finetune(prompts, "smollm2-135m", adapter, config)
        tokens = sum(len(p["prompt"]) for p in prompts) / 4  # ~4 characters a token, for a rate to compare runs by
        rows.append(f"QLoRA finetune: {summary['steps']} steps in {summary['seconds']} s, ~{tokens / summary['seconds']:.0f} "
                    f"prompt tokens/s, train loss {summary['train_loss']:.3f}")
        labelled("extract with the adapter", str(adapter), started)

        started = time.perf_counter()
        metrics = train_classifier(train[: args.classifier_records], "minilm", classifier, labels=SEMEVAL, epochs=1,
                                   lr=1e-4, head_lr=1e-3, pooling="cls+entity")
        rows.append(f"classifier epoch: {metrics['examples'] / metrics['train_seconds']:.0f} records/s, dtype {metrics['dtype']}")
        labelled("classifier predict", str(classifier), started)

        started = time.perf_counter()
        meta = build_index(train[: args.classifier_records], Path(tmp) / "index")
        rows.append(f"index embedder: {meta['count'] / (time.perf_counter() - started):.0f} records/s")
    print("\n".join(f"- {row}" for row in rows))
    return 0


if __name__ == "__main__":
    sys.exit(main())
