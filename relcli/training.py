"""`relcli finetune`'s two methods behind one call: a LoRA generator on prompt records, or an
encoder classifier on RC records. Options that belong to the other method are refused."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Callable, Iterable

from relcli.errors import UserError, refuse
from relcli.records import Record

METHODS = ("lora", "classifier")
CLASSIFIER_ONLY = {"pooling", "typed_markers", "head_lr", "classifier_lora"}
CLASSIFIER_OPTIONS = CLASSIFIER_ONLY | {"epochs", "lr", "batch_size", "max_length", "seed", "lora_r", "lora_alpha",
                                        "device", "dtype", "labels", "limit"}
# What a LoRA run takes besides the TrainConfig fields.
RUN_OPTIONS = ("limit", "template", "labels", "resume", "preset")


def train(method: str, model: str, output: Path, records: Iterable[Record], options: dict[str, Any], *,
          eval_records: list[Record] | None = None, on_log: Callable[[int, int, dict], None] | None = None) -> str:
    """Train with ``method`` on ``records`` (prompt records for lora, RC records for classifier) and
    write the folder ``output``; return a one-line summary. ``options`` holds only what was set."""
    if method not in METHODS:
        raise UserError(f"unknown method {method!r} ({', '.join(METHODS)})", param="method")
    limit = options.get("limit")
    if method == "classifier":
        from relcli.classifier import train_classifier

        refuse(options, CLASSIFIER_OPTIONS | ({"eval_file"} if eval_records else set()), "the classifier method")
        settings = {key: value for key, value in options.items() if key not in ("limit", "classifier_lora")}
        summary = train_classifier(list(records)[:limit], model, output, lora=bool(options.get("classifier_lora")),
                                   eval_records=eval_records, **{"pooling": "cls+entity", **settings},
                                   on_log=lambda step, total, loss: on_log and on_log(step, total, {"loss": loss} if step % 25 == 0 else {}))
        return f"classifier written to {output} ({summary['steps']} steps, {summary['train_seconds']:.0f} s)"
    from relcli.finetune import TrainConfig, finetune

    refuse(options, set(options) - CLASSIFIER_ONLY, "the lora method")
    config = TrainConfig.from_preset(options.get("preset"), **{key: value for key, value in options.items()
                                                               if key not in RUN_OPTIONS and key != "eval_file"})
    data = list(records)[:limit]
    if not data:
        raise UserError("no training prompts in the input")
    summary = finetune(data, model, output, config, template=options.get("template"), labels=options.get("labels"),
                       eval_prompts=eval_records or [], resume=bool(options.get("resume")), on_log=on_log)
    return f"adapter written to {output} ({summary['steps']} steps, {summary['seconds']} s, train loss {summary['train_loss']:.4f})"
