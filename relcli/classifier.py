"""Encoder relation classifiers with entity markers: training, saving, loading, prediction.

The entity pair is marked in the text with tokens added to the tokenizer (relcli.markers). A small head reads
the encoder's state at the [CLS] token, at the two entity-start markers (concatenated, as in
"matching the blanks" / R-BERT), or both, and is trained with cross-entropy together with the
encoder (or with LoRA adapters on it).

A classifier directory holds the encoder (``save_pretrained``), the tokenizer, the head
(``head.safetensors``) and ``relcli.json`` with ``"kind": "classifier"``. Nothing is pickled.

torch and transformers are imported inside the functions, so importing this module stays cheap.
"""

from __future__ import annotations

import math
import os
import random
import time
from itertools import islice
from pathlib import Path
from typing import Any, Callable, Iterable, Iterator

from relcli.artifacts import Artifact, check_replaceable
from relcli.device import Placement, placement
from relcli.errors import UserError
from relcli.markers import encode_records, marker_tokens, pad
from relcli.records import Record, data_hash, sorted_batches
from relcli.streams import replacing_dir

POOLINGS = ("entity-start", "cls", "cls+entity")
HEAD_FILE = "head.safetensors"


# ------------------------------------------------------------------------------------- the model

def _head_module(pooling: str, hidden: int, num_labels: int, dropout: float):
    """The classification head: pooled states -> dropout -> dense+tanh -> dropout -> labels."""
    import torch
    from torch import nn

    parts = {"cls": 1, "entity-start": 2, "cls+entity": 3}[pooling]

    class Head(nn.Module):
        def __init__(self):
            super().__init__()
            self.dropout = nn.Dropout(dropout)
            self.dense = nn.Linear(parts * hidden, hidden)
            self.out = nn.Linear(hidden, num_labels)

        def features(self, states, positions):
            """The pair representation: pooled states through dense+tanh (what ``out`` projects to labels)."""
            rows = torch.arange(states.size(0), device=states.device)
            pooled = []
            if pooling != "entity-start":
                pooled.append(states[:, 0])
            if pooling != "cls":
                pooled += [states[rows, positions[:, 0]], states[rows, positions[:, 1]]]
            return torch.tanh(self.dense(self.dropout(torch.cat(pooled, dim=-1))))

        def forward(self, states, positions):
            return self.out(self.dropout(self.features(states, positions)))

    return Head()


def _load_pretrained(loader, name: str, what: str):
    from safetensors import SafetensorError

    from relcli.models import quiet_loading

    try:
        with quiet_loading():
            return loader.from_pretrained(name)
    except (OSError, ValueError, SafetensorError) as exc:
        raise UserError(f"cannot load {what} from {name!r}: {_first_line(exc)}", param="model") from None


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


def _autocast(place: Placement):
    import torch

    return torch.autocast(place.device.split(":")[0], dtype=place.torch_dtype, enabled=place.half)


# ------------------------------------------------------------------------------------- training

def _check_training(records: list[Record], labels: list[str], pooling: str) -> None:
    if pooling not in POOLINGS:
        raise UserError(f"pooling must be one of {', '.join(POOLINGS)}, not {pooling!r}", param="pooling")
    if len(set(labels)) != len(labels) or not labels:
        raise UserError("labels must be a non-empty list of distinct labels")
    if not records:
        raise UserError("no labelled training records")
    known = set(labels)
    for record in records:
        if record.get("relation") not in known:
            raise UserError(f"record {record.get('id')!r}: relation {record.get('relation')!r} is not in the label inventory")


def _length_batches(items: list, batch_size: int, rng: random.Random) -> list[list]:
    """Shuffled batches of similar length: sort inside random pools of 50 batches, shuffle the batches."""
    order = list(range(len(items)))
    rng.shuffle(order)
    pool = batch_size * 50
    batches = []
    for start in range(0, len(order), pool):
        chunk = sorted(order[start:start + pool], key=lambda i: len(items[i].ids))
        batches += [chunk[i:i + batch_size] for i in range(0, len(chunk), batch_size)]
    rng.shuffle(batches)
    return batches


def _no_decay(name: str) -> bool:
    return name.endswith("bias") or "layernorm" in name.lower()


def train_classifier(
    records: list[Record],
    base_model: str,
    out_dir: str | os.PathLike,
    *,
    labels: str | list[str] | None = None,
    pooling: str = "entity-start",
    typed_markers: bool = False,
    epochs: int | float = 5,
    lr: float = 5e-5,
    head_lr: float | None = None,
    batch_size: int = 32,
    max_length: int = 128,
    warmup_ratio: float = 0.1,
    weight_decay: float = 0.01,
    dropout: float = 0.1,
    lora: bool = False,
    lora_r: int = 16,
    lora_alpha: int = 32,
    seed: int = 13,
    dtype: str | None = None,
    device: str | None = None,
    eval_records: list[Record] | None = None,
    soft_targets: list[dict[str, float]] | None = None,
    distill_weight: float = 0.5,
    teacher: str | None = None,
    on_log: Callable[[int, int, float], None] | None = None,
) -> dict[str, Any]:
    """Fine-tune an encoder + head on labelled RC records and save it to ``out_dir``.

    ``head_lr`` (default ``lr``) is the head's learning rate; the schedule is linear warmup over
    ``warmup_ratio`` of the steps, then linear decay. With ``soft_targets`` (a teacher's label
    probabilities, one per record; ``teacher`` names it in relcli.json) the loss is
    ``distill_weight`` x the cross-entropy against them plus the rest x the one against the gold
    labels. ``on_log(step, total_steps, loss)`` is called
    after every optimizer step. Returns metrics: steps, the last epoch's mean loss, seconds, and
    with ``eval_records`` the accuracy on them after each epoch.
    """
    import torch
    from transformers import AutoModel, AutoTokenizer

    from relcli.labels import load_labels
    from relcli.models import encoder_path

    check_replaceable(out_dir)
    if soft_targets is not None:
        soft_targets = [q for q, r in zip(soft_targets, records) if r.get("relation") is not None]
    records = [r for r in records if r.get("relation") is not None]
    if epochs != int(epochs) or epochs < 1:
        raise UserError(f"a classifier trains whole epochs (1 or more), not {epochs}", param="epochs")
    epochs = int(epochs)
    if isinstance(labels, str):
        labels = load_labels(labels)
    labels = labels or sorted({r["relation"] for r in records})
    _check_training(records, labels, pooling)
    started = time.time()
    random.seed(seed)
    torch.manual_seed(seed)
    place = placement(device, dtype)
    dev = place.device
    base = encoder_path(base_model)

    tokenizer = _load_pretrained(AutoTokenizer, base, "tokenizer")
    encoder = _load_pretrained(AutoModel, base, "encoder")
    entity_types = sorted({r[role].get("type") for r in records for role in ("head", "tail")} - {None}) if typed_markers else []
    new_tokens = marker_tokens(entity_types)
    tokenizer.add_special_tokens({"additional_special_tokens": new_tokens})
    encoder.resize_token_embeddings(len(tokenizer))
    if lora:
        from peft import LoraConfig, get_peft_model

        if lora_r > encoder.config.hidden_size:
            raise UserError(f"a rank of {lora_r} is above the encoder's width {encoder.config.hidden_size}", param="lora_r")

        encoder = get_peft_model(encoder, LoraConfig(
            r=lora_r, lora_alpha=lora_alpha, lora_dropout=dropout, target_modules="all-linear",
            trainable_token_indices=tokenizer.convert_tokens_to_ids(new_tokens)))
    head = _head_module(pooling, encoder.config.hidden_size, len(labels), dropout)
    encoder.to(dev)
    head.to(dev)

    types = frozenset(entity_types) if typed_markers else None
    label_ids = {label: i for i, label in enumerate(labels)}
    train = encode_records(tokenizer, records, max_length, types)
    targets = [label_ids[r["relation"]] for r in records]
    soft = _soft_matrix(soft_targets, labels) if soft_targets is not None else None
    steps_per_epoch = math.ceil(len(train) / batch_size)
    total = steps_per_epoch * epochs
    warmup = int(total * warmup_ratio)

    params = [(n, p) for n, p in encoder.named_parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW([
        {"params": [p for n, p in params if not _no_decay(n)], "weight_decay": weight_decay, "lr": lr},
        {"params": [p for n, p in params if _no_decay(n)], "weight_decay": 0.0, "lr": lr},
        {"params": list(head.parameters()), "weight_decay": weight_decay, "lr": head_lr or lr},
    ])
    schedule = torch.optim.lr_scheduler.LambdaLR(
        optimizer, lambda step: step / max(1, warmup) if step < warmup else max(0.0, (total - step) / max(1, total - warmup)))

    rng = random.Random(seed)
    step, history, epoch_loss = 0, [], 0.0
    for epoch in range(epochs):
        encoder.train()
        head.train()
        losses = []
        for batch in _length_batches(train, batch_size, rng):
            ids, mask, positions = (t.to(dev) for t in pad([train[i] for i in batch], tokenizer.pad_token_id))
            gold = torch.tensor([targets[i] for i in batch], device=dev)
            with _autocast(place):
                states = encoder(input_ids=ids, attention_mask=mask).last_hidden_state
                logits = head(states, positions)
            loss = torch.nn.functional.cross_entropy(logits.float(), gold)
            if soft is not None:
                distilled = -(soft[batch].to(dev) * torch.log_softmax(logits.float(), dim=-1)).sum(-1).mean()
                loss = distill_weight * distilled + (1 - distill_weight) * loss
            loss.backward()
            torch.nn.utils.clip_grad_norm_([p for group in optimizer.param_groups for p in group["params"]], 1.0)
            optimizer.step()
            schedule.step()
            optimizer.zero_grad(set_to_none=True)
            step += 1
            losses.append(loss.item())
            if on_log:
                on_log(step, total, losses[-1])
        epoch_loss = sum(losses) / len(losses)
        if eval_records:
            classifier = Classifier(encoder, head, tokenizer, labels, pooling, types, max_length, place)
            predicted = [r["predicted"] for r in classifier.predict(eval_records)]
            correct = sum(p == r.get("relation") for p, r in zip(predicted, eval_records))
            history.append({"epoch": epoch + 1, "train_loss": epoch_loss, "eval_accuracy": correct / len(eval_records)})

    if lora:
        encoder = encoder.merge_and_unload()
    seconds = time.time() - started
    metrics = {"steps": step, "epochs": epochs, "examples": len(records), "train_loss": epoch_loss,
               "train_seconds": round(seconds, 1), "dtype": place.dtype}
    if history:
        metrics["eval"] = history
    training = {"epochs": epochs, "lr": lr, "head_lr": head_lr or lr, "batch_size": batch_size,
                "warmup_ratio": warmup_ratio, "weight_decay": weight_decay, "dropout": dropout, "lora": lora,
                "lora_r": lora_r if lora else None, "lora_alpha": lora_alpha if lora else None, "seed": seed,
                "dtype": place.dtype, "device": place.device, "examples": len(records), "data_sha256": data_hash(records),
                "seconds": round(seconds, 1), "finished": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
                "final_train_loss": epoch_loss}
    if soft is not None:
        training.update(teacher=teacher, distill_weight=distill_weight)
    artifact = Artifact(kind="classifier", base_model=base_model, labels=list(labels), training=training, encoder={
        "pooling": pooling, "typed_markers": typed_markers, "entity_types": entity_types, "max_length": max_length})
    _save(Path(out_dir), encoder, head, tokenizer, artifact)
    return metrics


def _soft_matrix(soft_targets: list[dict[str, float]], labels: list[str]):
    """The teacher's probabilities as a records x labels tensor in the student's label order."""
    import torch

    index = {label: i for i, label in enumerate(labels)}
    unknown = sorted({label for q in soft_targets for label, p in q.items() if p > 0 and label not in index})
    if unknown:
        raise UserError(f"the teacher labels {', '.join(unknown[:3])}, which the student's inventory lacks", param="teacher")
    matrix = torch.zeros(len(soft_targets), len(labels))
    for row, q in enumerate(soft_targets):
        for label, p in q.items():
            if label in index:
                matrix[row, index[label]] = p
    return matrix


def _save(out: Path, encoder, head, tokenizer, artifact: Artifact) -> None:
    """The whole folder, written beside ``out`` and swapped in (relcli.json marks it complete)."""
    from safetensors.torch import save_file

    with replacing_dir(out) as tmp:
        encoder.save_pretrained(tmp)
        tokenizer.save_pretrained(tmp)
        save_file({k: v.detach().cpu().contiguous() for k, v in head.state_dict().items()}, tmp / HEAD_FILE)
        artifact.write(tmp)


# ----------------------------------------------------------------------------------- prediction

class Classifier:
    """A trained encoder + head; ``predict`` labels RC records."""

    def __init__(self, encoder, head, tokenizer, labels, pooling, entity_types, max_length, place: Placement):
        self.encoder, self.head, self.tokenizer = encoder, head, tokenizer
        self.labels, self.pooling, self.entity_types = list(labels), pooling, entity_types
        self.max_length, self.place = max_length, place

    def predict(self, records: Iterable[Record], batch_size: int = 64, explain: bool = False, schema=None,
                negative_margin: float | None = None) -> Iterator[Record]:
        """Yield each record with ``predicted`` (and ``explain.label_scores``, label -> probability, when
        ``explain``) added, in input order. Input is read in chunks of 16 batches, so memory stays
        flat; inside a chunk, batches are formed from similar lengths.

        With a relation ``schema`` the labels it rules out for a record's pair get no probability
        (their logits are masked before the softmax, and they are left out of the scores); with
        ``negative_margin`` the negative label's probability is raised by it before the argmax."""
        import torch

        from relcli.calibration import decide
        from relcli.labels import negative_label

        negative = schema.negative if schema is not None else negative_label(self.labels)
        if schema is not None:
            schema.check_within(self.labels, "the classifier")
        if negative_margin is not None and negative is None:
            raise UserError("a negative margin needs a negative label in the inventory", param="negative_margin")
        masks: dict[tuple, Any] = {}

        def mask(record: Record):
            allowed = tuple(schema.allowed(record))
            if allowed not in masks:
                masks[allowed] = torch.tensor([0.0 if label in allowed else -math.inf for label in self.labels])
            return masks[allowed]

        for chunk, logits in self._run(records, batch_size, self.head):
            for record, row in zip(chunk, logits):
                p = torch.softmax(row + mask(record) if schema is not None else row, dim=-1)
                scores = {label: round(float(v), 6) for label, v in zip(self.labels, p)
                          if schema is None or label in schema.allowed(record)}
                if negative_margin is None:
                    out = {**record, "predicted": self.labels[int(p.argmax())]}
                else:
                    out = {**record, "predicted": decide(scores, negative, negative_margin)}
                if explain:
                    out["explain"] = {"label_scores": scores}
                yield out

    def pair_vectors(self, records: list[Record], batch_size: int = 64):
        """One unit-length float32 row per record: the pair representation the head's final
        projection reads (``features``), for retrieval by relation."""
        import torch

        rows = [row for _, chunk in self._run(records, batch_size, self.head.features) for row in chunk]
        if not rows:
            return torch.empty((0, self.encoder.config.hidden_size)).numpy()
        return torch.nn.functional.normalize(torch.stack(rows), dim=-1).numpy()

    def _run(self, records: Iterable[Record], batch_size: int, read) -> Iterator[tuple[list[Record], list]]:
        """``read(states, positions)`` over the encoder's states, as float32 CPU rows in input order,
        one chunk of 16 batches at a time (memory stays flat); batches are formed from similar lengths."""
        import torch

        self.encoder.eval()
        self.head.eval()
        iterator = iter(records)
        while chunk := list(islice(iterator, batch_size * 16)):
            encoded = encode_records(self.tokenizer, chunk, self.max_length, self.entity_types)
            out = [None] * len(chunk)
            for rows in sorted_batches([len(e.ids) for e in encoded], batch_size):
                ids, attention, positions = (t.to(self.place.device) for t in pad([encoded[i] for i in rows], self.tokenizer.pad_token_id))
                with torch.no_grad(), _autocast(self.place):
                    values = read(self.encoder(input_ids=ids, attention_mask=attention).last_hidden_state, positions)
                for row, value in zip(rows, values.float().cpu()):
                    out[row] = value
            yield chunk, out


def load_classifier(model_dir: str | os.PathLike, device: str | None = None, dtype: str | None = None,
                    artifact: Artifact | None = None) -> Classifier:
    """Load a directory written by ``train_classifier`` (``artifact``: its relcli.json, when read already)."""
    from safetensors.torch import load_file
    from transformers import AutoModel, AutoTokenizer

    from safetensors import SafetensorError

    artifact = artifact or Artifact.read(model_dir)
    if artifact is None or artifact.kind != "classifier":
        raise UserError(f"{model_dir} is not a classifier folder written by relcli", param="model")
    meta = artifact.encoder
    if meta.get("pooling") not in POOLINGS or not isinstance(meta.get("max_length"), int) or meta["max_length"] < 3 \
            or not isinstance(meta.get("entity_types", []), list):
        raise UserError(f"{model_dir}/relcli.json is damaged: its encoder settings are {meta!r}"[:300], param="model")
    place = placement(device, dtype)
    encoder = _load_pretrained(AutoModel, str(model_dir), "encoder")
    tokenizer = _load_pretrained(AutoTokenizer, str(model_dir), "tokenizer")
    head = _head_module(meta["pooling"], encoder.config.hidden_size, len(artifact.labels), 0.0)
    try:  # missing, not safetensors, or not the head of this encoder and these labels
        head.load_state_dict(load_file(Path(model_dir) / HEAD_FILE))
    except (OSError, SafetensorError, RuntimeError) as exc:
        raise UserError(f"cannot load the classifier head {Path(model_dir) / HEAD_FILE}: {_first_line(exc)}", param="model") from None
    encoder.to(place.device)
    head.to(place.device)
    types = frozenset(meta.get("entity_types", [])) if meta.get("typed_markers") else None
    return Classifier(encoder, head, tokenizer, artifact.labels, meta["pooling"], types, meta["max_length"], place)
