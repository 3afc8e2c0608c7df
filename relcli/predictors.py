"""open_predictor(): resolve a model once and return what labels records with it.

The model's kind is decided here, once: a kNN label vote over an index (no model), an encoder
classifier, an end-to-end triplet generator, or a relation-classification generator (a base model
with a template and labels, or an adapter that recorded both). Options that do not apply to the
kind are refused with one error naming them. Every predictor has ``predict(records)`` (a stream
in input order) and ``summary()`` (lines for stderr after the run).
"""

from __future__ import annotations

from typing import Any, Iterable, Iterator, Protocol

from relcli.errors import UserError, refuse
from relcli.records import Record, chunks

DECODES = ("constrained", "generate", "knn")
# The options each kind of predictor uses; anything else the caller set is refused.
COMMON = {"batch_size", "explain", "device", "dtype"}
APPLIES = {
    "knn": COMMON | {"index", "k", "decode"},
    "classifier": COMMON,
    "triplets": COMMON | {"task", "template", "labels", "index", "k", "shots", "shots_from", "style", "max_new_tokens",
                          "chat", "quantize", "trust_remote_code"},
    "rc": COMMON | {"task", "template", "labels", "decode", "index", "k", "max_new_tokens", "chat", "quantize",
                    "trust_remote_code"},
}


class Predictor(Protocol):
    def predict(self, records: Iterable[Record]) -> Iterator[Record]: ...

    def summary(self) -> list[str]: ...


def open_predictor(model: str | None, **options: Any) -> Predictor:
    """The predictor for ``model`` and the options set (None or False means "not set").

    Options: task (rc | triplets), template, labels, decode, index, k, batch_size, max_new_tokens,
    chat, device, dtype, quantize, explain, style, shots, shots_from, trust_remote_code.
    """
    from relcli.models import resolve

    given = {name: value for name, value in options.items() if value is not None and value is not False}
    decode = given.get("decode", "constrained")
    if decode not in DECODES:
        raise UserError(f"unknown decoding {decode!r} ({', '.join(DECODES)})", param="decode")
    if model is None:
        if decode != "knn":
            raise UserError("a model is needed (only the kNN vote, decode knn, works without one)", param="model")
        _refuse(given, "knn", "the kNN label vote")
        return KnnPredictor(_load_index(given, needed_for="decode knn"), given.get("k", 3), **_common(given))
    ref = resolve(model)
    artifact = ref.artifact
    if artifact is not None and artifact.kind == "classifier":
        _refuse(given, "classifier", "an encoder classifier")
        return ClassifierPredictor(ref, **_common(given))
    task = given.get("task") or (artifact.task if artifact else "rc")
    if task not in APPLIES or task in ("knn", "classifier"):
        raise UserError(f"unknown task {task!r} (rc, triplets)", param="task")
    if artifact is not None and artifact.task != task:
        raise UserError(f"{model} was trained for task {artifact.task}, not {task}", param="task")
    _refuse(given, task, "a triplet generator" if task == "triplets" else "a relation-classification generator")
    if decode == "knn":
        raise UserError("the kNN vote uses no model: leave out the model", param="decode")
    from relcli.models import load_model

    loaded = load_model(ref, dtype=given.get("dtype"), device=given.get("device"),
                        quantize=given.get("quantize", "none"), trust_remote_code=bool(given.get("trust_remote_code")))
    return (TripletPredictor if task == "triplets" else GeneratorPredictor)(loaded, given)


def _refuse(given: dict, kind: str, what: str) -> None:
    refuse(given, APPLIES[kind], what)


def _common(given: dict) -> dict:
    return {"batch_size": given.get("batch_size", 16), "explain": bool(given.get("explain")),
            "device": given.get("device"), "dtype": given.get("dtype")}


def _load_index(given: dict, needed_for: str):
    from relcli.retrieval import Index

    if "index" not in given:
        raise UserError(f"{needed_for} needs an index folder", param="index")
    return Index.load(given["index"], device=given.get("device"), dtype=given.get("dtype"))


def _neighbours(given: dict, k: int):
    from relcli.retrieval import neighbours_for

    return neighbours_for(_load_index(given, needed_for="retrieval"), k)


def _labels(given: dict, artifact) -> list[str]:
    from relcli.labels import load_labels

    if "labels" in given:
        return load_labels(given["labels"])
    if artifact is not None:
        return artifact.labels
    raise UserError("a base model needs the label inventory (semeval, tacred, retacred or a file)", param="labels")


class KnnPredictor:
    """The neighbours' similarity-weighted label vote (retrieval only)."""

    def __init__(self, index, k: int, batch_size: int, explain: bool, **_):
        self.index, self.k, self.batch_size, self.explain = index, k, batch_size, explain
        self.fallback = 0

    def predict(self, records: Iterable[Record]) -> Iterator[Record]:
        from relcli.labels import negative_label
        from relcli.retrieval import knn_vote

        negative = negative_label(sorted({r.get("relation") for r in self.index.records} - {None})) or "no_relation"
        for batch in chunks(records, self.batch_size * 8):
            for record, hits in zip(batch, self.index.search(batch, self.k)):
                label, scores = knn_vote(hits)
                if label is None:  # no neighbour carries a relation
                    label, self.fallback = negative, self.fallback + 1
                yield dict(record, predicted=label, **({"explain": {"label_scores": scores}} if self.explain else {}))

    def summary(self) -> list[str]:
        return [f"{self.fallback} record(s) had no labelled neighbour; set to the negative label"] if self.fallback else []


class ClassifierPredictor:
    def __init__(self, ref, batch_size: int, explain: bool, device: str | None, dtype: str | None):
        from relcli.classifier import load_classifier

        self.classifier = load_classifier(ref.path, device=device, dtype=dtype, artifact=ref.artifact)
        self.batch_size, self.explain = batch_size, explain

    def predict(self, records: Iterable[Record]) -> Iterator[Record]:
        return self.classifier.predict(records, batch_size=self.batch_size, explain=self.explain)

    def summary(self) -> list[str]:
        return []


def _chat(given: dict, loaded) -> bool:
    from relcli.prompts import has_chat_template

    if "chat" in given:
        if given["chat"] and not has_chat_template(loaded.tokenizer):
            raise UserError("the model's tokenizer has no chat template to frame prompts with", param="chat")
        return bool(given["chat"])
    if loaded.artifact is not None:
        return loaded.artifact.chat
    return has_chat_template(loaded.tokenizer) and not loaded.is_seq2seq


class GeneratorPredictor:
    """Relation classification with a generator: a template, a label inventory, a decoding."""

    def __init__(self, loaded, given: dict):
        from relcli.extract import Generator
        from relcli.prompts import load_template, needs_examples

        artifact = loaded.artifact
        spec = given.get("template")
        text = load_template(spec) if spec else (artifact.template if artifact and artifact.template else load_template("simple"))
        self.examples_for = None
        if needs_examples(text):
            self.examples_for = _neighbours(given, given.get("k", 3))
        elif "index" in given or "k" in given:
            raise UserError("this template has no {examples} field to put retrieved records in",
                            param="index" if "index" in given else "k")
        decode = given.get("decode", "constrained")
        if decode == "constrained" and "max_new_tokens" in given:
            raise UserError("constrained decoding generates a label and stops; the limit applies to decode generate",
                            param="max_new_tokens")
        self.generator = Generator(
            loaded, text, _labels(given, artifact), chat=_chat(given, loaded), decode=given.get("decode", "constrained"),
            batch_size=given.get("batch_size", 16), max_new_tokens=given.get("max_new_tokens", 30),
            explain=bool(given.get("explain")))

    def predict(self, records: Iterable[Record]) -> Iterator[Record]:
        return self.generator.predict(_only(records, "head", "relation classification"), self.examples_for)

    def summary(self) -> list[str]:
        stats, negative = self.generator.stats, self.generator.negative
        if not stats.unmapped:
            return []
        fate = f"set to the negative label {negative!r}" if negative else "kept as generated (invalid labels)"
        return [f"{stats.unmapped} of {stats.records} generations named no label; {fate}",
                *(f"  {example}" for example in stats.examples)]


class TripletPredictor:
    """End-to-end extraction: linearised triplets generated from each record's text."""

    def __init__(self, loaded, given: dict):
        from relcli.triplet_extract import TripletExtractor
        from relcli.triplets import STYLES, shots_function

        artifact = loaded.artifact
        template = given.get("template")
        if template not in (None, "simple", "compact"):
            raise UserError("with the triplets task the template is simple (instruction and relation list) "
                            "or compact (the text only)", param="template")
        style = given.get("style") or (artifact.style if artifact else None) or "json"
        if style not in STYLES:
            raise UserError(f"unknown triplet format {style!r} ({', '.join(STYLES)})", param="style")
        if "k" in given:
            raise UserError("does not apply to the triplets task (its demonstrations are the shots)", param="k")
        self.shots_for = shots_function(given.get("shots", 0), given.get("shots_from"),
                                        _load_index(given, "retrieval") if "index" in given else None)
        self.extractor = TripletExtractor(
            loaded, style, _labels(given, artifact), compact=template == "compact" if template else bool(artifact and artifact.compact),
            chat=_chat(given, loaded), batch_size=given.get("batch_size", 16), max_new_tokens=given.get("max_new_tokens", 256),
            explain=bool(given.get("explain")))

    def predict(self, records: Iterable[Record]) -> Iterator[Record]:
        return self.extractor.predict(records, self.shots_for)

    def summary(self) -> list[str]:
        return [f"{self.extractor.malformed} malformed triplet fragment(s) in {self.extractor.records} generations "
                "(dropped; see --explain)"]


def _only(records: Iterable[Record], key: str, task: str) -> Iterator[Record]:
    for record in records:
        if key not in record:
            raise UserError(f"record {record.get('id')!r} has no {key}: {task} needs records with a given pair")
        yield record
