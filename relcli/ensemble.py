"""Label probabilities from several models: ensembles, and a teacher's soft targets.

``relcli extract -m A -m B`` opens every model as ``open_predictor`` would and has each one score
the labels of every record: a classifier's ``label_scores`` are probabilities already, and a
generator scores each label's log-probability (it picks the best-scoring label instead of decoding
greedily), turned into probabilities over the labels with a softmax. The ensemble averages the
members' probabilities (a label a member's schema mask left out counts 0 for that member) and
takes the argmax, or with ``negative_margin`` the calibrated decision of relcli.calibration.
The members must label the same inventory; options that do not apply to every member are refused.

``teacher_probabilities`` runs one model the same way over training records: its probabilities
are the soft targets a classifier student learns from (``finetune --method classifier --teacher``).
"""

from __future__ import annotations

import math
from typing import Any, Callable, Iterable, Iterator

from relcli.errors import UserError, refuse
from relcli.records import Record, chunks

APPLIES = {"batch_size", "device", "dtype", "schema", "negative_margin", "explain"}
Track = Callable[[Iterable[Record], str, int], Iterable[Record]]


def open_ensemble(models: list[str], **options: Any) -> "EnsemblePredictor":
    """An ensemble of ``models`` (two or more) under the common options (None: not set)."""
    from relcli.labels import negative_label
    from relcli.schema import inventory

    given = {name: value for name, value in options.items() if value is not None and value is not False}
    refuse(given, APPLIES, "an ensemble of several models")
    schema = inventory(None, given["schema"])[1] if "schema" in given else None
    common = {name: given.get(name) for name in ("batch_size", "device", "dtype")}
    members = []
    for model in models:
        member = open_scorer(model, "model", **common, schema=schema)
        if members and member.labels != members[0].labels:
            raise UserError(f"{model} labels another inventory than {models[0]}: ensemble members must share "
                            "their labels (in the same order)", param="model")
        members.append(member)
    negative = schema.negative if schema is not None else negative_label(members[0].labels)
    if "negative_margin" in given and negative is None:
        raise UserError("a negative margin needs a negative label in the inventory", param="negative_margin")
    return EnsemblePredictor(members, negative, given.get("negative_margin"), bool(given.get("explain")),
                             given.get("batch_size", 16))


def teacher_probabilities(model: str, records: list[Record], track: Track | None = None,
                          **options: Any) -> tuple[list[str], list[dict[str, float]]]:
    """The teacher's label inventory and its probabilities for each record (options: batch_size,
    device, dtype); ``track(outputs, description, total)`` may wrap the outputs in a progress bar."""
    teacher = open_scorer(model, "teacher", **options)
    scored = teacher.predict(records)
    if track is not None:
        scored = track(scored, "teacher labelling", len(records))
    return teacher.labels, [probabilities(out["explain"]["label_scores"], teacher.scores) for out in scored]


def open_scorer(model: str, param: str, **options: Any):
    """``model`` opened to score every label of each record (``explain.label_scores``); errors about
    the model itself name ``param``, the option that gave it."""
    from relcli.models import resolve
    from relcli.predictors import open_predictor

    try:
        artifact = resolve(model).artifact
        if artifact is not None and artifact.task == "triplets":
            raise UserError(f"{model} extracts triplets: label probabilities come from relation classifiers and "
                            "relation-classification generators", param="model")
        return open_predictor(model, **options, explain=True, by_scores=True)
    except UserError as error:
        if error.param != "model":
            raise
        raise UserError(str(error), param=param) from None


def probabilities(scores: dict[str, float], kind: str) -> dict[str, float]:
    """A member's label scores as probabilities over the labels it scored."""
    if kind == "probabilities":
        return scores
    top = max(scores.values())
    weights = {label: math.exp(score - top) for label, score in scores.items()}
    total = sum(weights.values())
    return {label: weight / total for label, weight in weights.items()}


class EnsemblePredictor:
    def __init__(self, members: list, negative: str | None, negative_margin: float | None, explain: bool, batch_size: int):
        self.members, self.negative, self.margin, self.explain = members, negative, negative_margin, explain
        self.chunk = batch_size * 8

    def predict(self, records: Iterable[Record]) -> Iterator[Record]:
        from relcli.calibration import decide

        labels = self.members[0].labels
        for chunk in chunks(records, self.chunk):
            outputs = [list(member.predict(chunk)) for member in self.members]
            for row, record in enumerate(chunk):
                dists = [probabilities(out[row]["explain"]["label_scores"], member.scores)
                         for member, out in zip(self.members, outputs)]
                mean = {label: round(sum(d.get(label, 0.0) for d in dists) / len(dists), 6)
                        for label in labels if any(label in d for d in dists)}
                label = decide(mean, self.negative, self.margin or 0.0)
                out = dict(record, predicted=label)
                if self.explain:
                    out["explain"] = {"label_scores": mean, "members": [{
                        "predicted": max(d, key=d.__getitem__), "label_scores": {k: round(v, 6) for k, v in d.items()}}
                        for d in dists]}
                yield out

    def summary(self) -> list[str]:
        return [line for member in self.members for line in member.summary()]
