"""open_predictor(): resolve a model once and return what labels records with it.

The model's kind is decided here, once: a kNN label vote over an index (no model), an encoder
classifier, an end-to-end triplet generator, or a relation-classification generator (a base model
with a template and labels, or an adapter that recorded both). Options that do not apply to the
kind are refused with one error naming them. Every predictor has ``predict(records)`` (a stream
in input order) and ``summary()`` (lines for stderr after the run).

A relation schema (``schema``: relcli.schema) restricts every record to the labels whose argument
types fit its pair, for all three relation-classification kinds: the generator's constrained
decoding walks only those labels, the classifier's and the kNN vote's scores are masked. A
``negative_margin`` (relcli.calibration) raises the negative label's score before the argmax: the
classifier's probabilities, the kNN vote scores, and for a generator each label's log-probability
(so it scores every label instead of decoding greedily). Triplet generators take neither.
"""

from __future__ import annotations

from typing import Any, Iterable, Iterator, Protocol

from relcli.errors import UserError, refuse
from relcli.records import Record, chunks, crop_to_pair

# Relation classification reads a pair in its sentence: longer texts are cut around the pair.
MAX_TEXT_CHARS = 2000

DECODES = ("constrained", "generate", "knn")
EXPLICIT_NO = {"chat", "copy"}  # options whose False is a choice (--no-chat), not "not set"
# The options each kind of predictor uses; anything else the caller set is refused.
COMMON = {"batch_size", "explain", "device", "dtype"}
# the kinds that label a given pair (by_scores: a generator scores every label; the others always can)
PAIRS = COMMON | {"schema", "negative_margin", "by_scores"}
APPLIES = {
    "knn": PAIRS | {"index", "k", "decode"},
    "classifier": PAIRS,
    "triplets": COMMON | {"task", "template", "labels", "index", "k", "shots", "shots_from", "style", "max_new_tokens",
                          "chat", "quantize", "trust_remote_code", "copy", "window", "stride"},
    "rc": PAIRS | {"task", "template", "labels", "decode", "index", "k", "max_new_tokens", "chat", "quantize",
                   "trust_remote_code"},
}


class Predictor(Protocol):
    def predict(self, records: Iterable[Record]) -> Iterator[Record]: ...

    def summary(self) -> list[str]: ...


def open_predictor(model: str | None, **options: Any) -> Predictor:
    """The predictor for ``model`` and the options set (None means "not set"; so does False, except
    for the yes/no options in ``EXPLICIT_NO``, where it is an explicit no).

    Options: task (rc | triplets), template, labels, schema (a file or a Schema), negative_margin,
    decode, index, k, batch_size, max_new_tokens, chat, device, dtype, quantize, explain, style,
    shots, shots_from, trust_remote_code, and for triplets copy (entities copied from the text;
    default yes), window and stride (characters); by_scores (a generator picks the best-scoring
    label instead of decoding: what an ensemble member does).
    """
    from relcli.models import resolve
    from relcli.schema import inventory

    given = {name: value for name, value in options.items()
             if value is not None and (value is not False or name in EXPLICIT_NO)}
    if "schema" in given:  # read once; with labels as well, refused
        given["schema"] = inventory(given.get("labels"), given["schema"])[1]
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
            "device": given.get("device"), "dtype": given.get("dtype"), "schema": given.get("schema"),
            "negative_margin": given.get("negative_margin")}


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
    if "schema" in given:
        return given["schema"].labels
    raise UserError("a base model needs the label inventory (semeval, tacred, retacred, a file or a schema)", param="labels")


class KnnPredictor:
    """The neighbours' similarity-weighted label vote (retrieval only). Under ``explain`` the label
    scores always list the negative label (0 when no neighbour voted for it), for calibration."""

    def __init__(self, index, k: int, batch_size: int, explain: bool, schema=None, negative_margin=None, **_):
        self.index, self.k, self.batch_size, self.explain = index, k, batch_size, explain
        self.schema, self.margin = schema, negative_margin
        self.fallback = 0

    def predict(self, records: Iterable[Record]) -> Iterator[Record]:
        from relcli.calibration import decide
        from relcli.labels import negative_label
        from relcli.retrieval import knn_vote

        schema = self.schema
        negative = schema.negative if schema else (
            negative_label(sorted({r.get("relation") for r in self.index.records} - {None})) or "no_relation")
        for batch in chunks(records, self.batch_size * 8):
            for record, hits in zip(batch, self.index.search(batch, self.k)):
                label, scores = knn_vote(hits, schema.allowed(record) if schema else None)
                if label is None:  # no (allowed) neighbour carries a relation
                    label, self.fallback = negative, self.fallback + 1
                scores = {**scores, negative: scores.get(negative, 0.0)}
                if self.margin is not None:
                    label = decide(scores, negative, self.margin)
                yield dict(record, predicted=label, **({"explain": {"label_scores": scores}} if self.explain else {}))

    def summary(self) -> list[str]:
        allowed = " allowed for the pair" if self.schema else ""
        return [f"{self.fallback} record(s) had no neighbour with a label{allowed}; set to the negative label"] if self.fallback else []


class PairWindows:
    """Relation classification reads a pair in its sentence: a longer text is cut to MAX_TEXT_CHARS
    around the pair before the model sees it (counted), and the output keeps the whole record."""

    def __init__(self, chunk: int):
        self.chunk, self.cut = chunk, 0

    def predict(self, records: Iterable[Record], predict) -> Iterator[Record]:
        for chunk in chunks(_only(records, "head", "relation classification"), self.chunk):
            cropped = [crop_to_pair(record, MAX_TEXT_CHARS) for record in chunk]
            self.cut += sum(c is not r for c, r in zip(cropped, chunk))
            for record, out in zip(chunk, predict(cropped)):
                yield {**record, **{key: out[key] for key in ("predicted", "explain") if key in out}}

    def summary(self) -> list[str]:
        return [f"{self.cut} text(s) longer than {MAX_TEXT_CHARS} characters were cut to that many around their "
                "pair for the model"] if self.cut else []


class ClassifierPredictor:
    scores = "probabilities"  # what explain.label_scores holds

    def __init__(self, ref, batch_size: int, explain: bool, device: str | None, dtype: str | None, schema=None,
                 negative_margin: float | None = None):
        from relcli.classifier import load_classifier

        if schema is not None:
            schema.check_within(ref.artifact.labels, "the classifier")
        self.classifier = load_classifier(ref.path, device=device, dtype=dtype, artifact=ref.artifact)
        self.labels = self.classifier.labels
        self.batch_size, self.explain, self.schema, self.margin = batch_size, explain, schema, negative_margin
        self.pairs = PairWindows(batch_size * 16)

    def predict(self, records: Iterable[Record]) -> Iterator[Record]:
        return self.pairs.predict(records, lambda cropped: self.classifier.predict(
            cropped, batch_size=self.batch_size, explain=self.explain, schema=self.schema, negative_margin=self.margin))

    def summary(self) -> list[str]:
        return self.pairs.summary()


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

    scores = "log-probabilities"  # what explain.label_scores holds

    def __init__(self, loaded, given: dict):
        from relcli.extract import Generator
        from relcli.prompts import load_template, needs_examples, with_definitions

        artifact = loaded.artifact
        spec = given.get("template")
        text = load_template(spec) if spec else (artifact.template if artifact and artifact.template else load_template("simple"))
        text = with_definitions(text, given.get("schema"))
        self.examples_for = None
        if needs_examples(text):
            self.examples_for = _neighbours(given, given.get("k", 3))
        elif "index" in given or "k" in given:
            raise UserError("this template has no {examples} field to put retrieved records in",
                            param="index" if "index" in given else "k")
        if given.get("decode", "constrained") == "constrained" and "max_new_tokens" in given:
            raise UserError("constrained decoding generates a label and stops; the limit applies to decode generate",
                            param="max_new_tokens")
        self.pairs = PairWindows(given.get("batch_size", 16) * 8)
        self.generator = Generator(
            loaded, text, _labels(given, artifact), chat=_chat(given, loaded), decode=given.get("decode", "constrained"),
            batch_size=given.get("batch_size", 16), max_new_tokens=given.get("max_new_tokens", 30),
            explain=bool(given.get("explain")), schema=given.get("schema"), negative_margin=given.get("negative_margin"),
            by_scores=bool(given.get("by_scores")))
        self.labels = self.generator.labels

    def predict(self, records: Iterable[Record]) -> Iterator[Record]:
        return self.pairs.predict(records, lambda cropped: self.generator.predict(cropped, self.examples_for))

    def summary(self) -> list[str]:
        stats, negative = self.generator.stats, self.generator.negative
        lines = self.pairs.summary()
        if stats.ruled_out:
            lines.append(f"{stats.ruled_out} of {stats.records} generations named a label the schema rules out for "
                         f"the pair; set to the negative label {negative!r}")
        if stats.unmapped:
            fate = f"set to the negative label {negative!r}" if negative else "kept as generated (invalid labels)"
            lines += [f"{stats.unmapped} of {stats.records} generations named no label; {fate}",
                      *(f"  {example}" for example in stats.examples)]
        return lines


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
            explain=bool(given.get("explain")), copy=given.get("copy", True), window=given.get("window"),
            stride=given.get("stride"))

    def predict(self, records: Iterable[Record]) -> Iterator[Record]:
        return self.extractor.predict(records, self.shots_for)

    def summary(self) -> list[str]:
        x = self.extractor
        lines = [f"{x.malformed} malformed triplet fragment(s) in {x.generations} generations (dropped; see --explain)",
                 f"{x.absent_triplets} of {x.triplets} predicted triplets name an entity not found in the text "
                 f"({x.absent_entities} of {2 * x.triplets} entities; copy constraint {'on' if x.copy else 'off'})"]
        if x.cut:
            lines.append(f"{x.cut} {'window(s)' if x.window else 'text(s)'} longer than the model's context of {x.context} "
                         "tokens cut to fit" + ("" if x.window else " (read long texts whole in overlapping windows)"))
        return lines


def _only(records: Iterable[Record], key: str, task: str) -> Iterator[Record]:
    for record in records:
        if key not in record:
            raise UserError(f"record {record.get('id')!r} has no {key}: {task} needs records with a given pair")
        yield record
