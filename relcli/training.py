"""`relcli finetune`'s two methods behind one call: a LoRA generator on prompt records, or an
encoder classifier on RC records. Options that belong to the other method are refused."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Callable, Iterable

from relcli.ensemble import Track
from relcli.errors import UserError, refuse
from relcli.records import Record

METHODS = ("lora", "classifier")
CLASSIFIER_ONLY = {"pooling", "typed_markers", "head_lr", "classifier_lora", "teacher", "distill_weight"}
CLASSIFIER_OPTIONS = CLASSIFIER_ONLY | {"epochs", "lr", "batch_size", "max_length", "seed", "lora_r", "lora_alpha",
                                        "device", "dtype", "labels", "limit"}
# What a LoRA run takes besides the TrainConfig fields.
RUN_OPTIONS = ("limit", "template", "labels", "resume", "preset")


def train(method: str, model: str, output: Path, records: Iterable[Record], options: dict[str, Any], *,
          eval_records: list[Record] | None = None, on_log: Callable[[int, int, dict], None] | None = None,
          track: Track | None = None) -> str:
    """Train with ``method`` on ``records`` (prompt records for lora, RC records for classifier) and
    write the folder ``output``; return a one-line summary. ``options`` holds only what was set;
    ``on_log`` follows the training steps, ``track`` a teacher's labelling (relcli.ensemble)."""
    if method not in METHODS:
        raise UserError(f"unknown method {method!r} ({', '.join(METHODS)})", param="method")
    limit = options.get("limit")
    if method == "classifier":
        from relcli.classifier import train_classifier

        refuse(options, CLASSIFIER_OPTIONS | ({"eval_file"} if eval_records else set()), "the classifier method")
        settings = {key: value for key, value in options.items() if key not in ("limit", "classifier_lora", "teacher")}
        data = list(records)[:limit]
        if "teacher" in options:
            settings.update(_teacher_targets(options, data, track))
        elif "distill_weight" in options:
            raise UserError("a distillation weight needs a --teacher", param="distill_weight")
        summary = train_classifier(data, model, output, lora=bool(options.get("classifier_lora")),
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


def _teacher_targets(options: dict[str, Any], records: list[Record], track: Track | None) -> dict[str, Any]:
    """train_classifier's arguments for distilling options["teacher"]: its probabilities on the
    records (soft targets), and its labels as the student's unless --labels says otherwise."""
    from relcli.ensemble import teacher_probabilities

    placement = {key: options[key] for key in ("device", "dtype") if key in options}
    labels, soft = teacher_probabilities(options["teacher"], records, track, **placement)
    return {"labels": options.get("labels", labels), "soft_targets": soft, "teacher": options["teacher"]}
