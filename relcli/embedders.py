"""Embedders: how an index turns records into vectors, the same way at build time and for queries.

An embedder has ``encode(records, batch_size)`` (one unit-length float32 row per record),
``dimension``, and ``describe()``: what index.json records so that ``open_embedder`` can open the
same embedder again for the index's queries. Two kinds:

- ``SentenceEmbedder``: a sentence-transformers model (``minilm`` is packaged) over the text
  (``sentence``) or the text with the pair marked (``marked``). Neighbours share the topic.
- ``ClassifierEmbedder``: a folder written by ``relcli finetune --method classifier``. A record's
  vector is its pair representation (the classifier's entity markers and pooling, through the
  head's dense layer: what its final projection reads), so neighbours tend to share the relation.
  index.json records the folder's absolute path and the SHA-256 of its head weights: an index
  whose classifier changed since it was built is refused, not queried from another vector space.

Models load on first use: opening an index checks its classifier without loading it.
"""

from __future__ import annotations

import functools
import hashlib
from pathlib import Path
from typing import Any, Mapping, Protocol

from relcli.artifacts import Artifact
from relcli.device import Placement, placement
from relcli.errors import UserError
from relcli.models import encoder_path, quiet_loading
from relcli.records import Record, mark_entities

SENTENCE_MODES = ("sentence", "marked")
EMBEDS = (*SENTENCE_MODES, "classifier")


class Embedder(Protocol):
    @property
    def dimension(self) -> int: ...

    def encode(self, records: list[Record], batch_size: int = 256): ...

    def describe(self) -> dict[str, Any]: ...


def open_embedder(spec: Mapping[str, Any], device: str | None = None, dtype: str | None = None,
                  param: str = "model") -> Embedder:
    """The embedder ``spec`` names: build options (``model``, and ``embed`` or None to follow the
    model: a classifier folder embeds with its classifier, any other model sentences) or an index's
    metadata, whose ``head_sha256`` must still match its classifier. ``param`` names where the model
    came from, for errors."""
    place = placement(device, dtype)  # a bad device or dtype fails here, before any work
    device, dtype = place.device, place.dtype
    model, embed = spec["model"], spec.get("embed")
    try:
        artifact = Artifact.read(model) if Path(model).is_dir() else None
    except UserError as exc:
        exc.param = param
        raise
    is_classifier = artifact is not None and artifact.kind == "classifier"
    if embed is None:
        embed = "classifier" if is_classifier else "sentence"
    if embed not in EMBEDS:
        raise UserError(f"unknown embed mode {embed!r} (choose from {', '.join(EMBEDS)})", param="embed")
    if embed != "classifier":
        if is_classifier:
            raise UserError(f"{model} is a relcli classifier: it embeds with `classifier`, not {embed!r}", param="embed")
        return SentenceEmbedder(model, embed, device, dtype, param)
    if not is_classifier:
        if "head_sha256" in spec:
            raise UserError(f"the index was built with the classifier {model}, which is no longer there; "
                            "build the index again", param=param)
        raise UserError(f"{model} is not a classifier folder written by `relcli finetune --method classifier`", param=param)
    embedder = ClassifierEmbedder(model, artifact, device, dtype, param)
    if spec.get("head_sha256") not in (None, embedder.head_sha256):
        raise UserError(f"the classifier {model} has changed since the index was built (its head weights differ); "
                        "build the index again", param=param)
    return embedder


class SentenceEmbedder:
    def __init__(self, model: str, mode: str, device: str | None, dtype: str | None, param: str):
        self.model, self.mode, self.device, self.dtype, self.param = model, mode, device, dtype, param

    @functools.cached_property
    def transformer(self):
        return load_embedder(self.model, self.device, self.dtype, param=self.param)

    @property
    def dimension(self) -> int:
        return self.transformer.get_embedding_dimension()

    def encode(self, records: list[Record], batch_size: int = 256):
        return encode_texts(self.transformer, [embed_text(r, self.mode) for r in records], batch_size)

    def describe(self) -> dict[str, Any]:
        return {"model": self.model, "embed": self.mode}


class ClassifierEmbedder:
    def __init__(self, folder: str, artifact: Artifact, device: str | None, dtype: str | None, param: str):
        from relcli.classifier import HEAD_FILE

        self.folder, self.artifact = Path(folder).resolve(), artifact
        self.device, self.dtype, self.param = device, dtype, param
        try:
            self.head_sha256 = hashlib.sha256((self.folder / HEAD_FILE).read_bytes()).hexdigest()
        except OSError as exc:
            raise UserError(f"cannot read the classifier head {self.folder / HEAD_FILE}: {exc.strerror}", param=param) from None

    @functools.cached_property
    def classifier(self):
        from relcli.classifier import load_classifier

        try:
            return load_classifier(self.folder, self.device, self.dtype, artifact=self.artifact)
        except UserError as exc:
            exc.param = self.param
            raise

    @property
    def dimension(self) -> int:
        return self.classifier.encoder.config.hidden_size

    def encode(self, records: list[Record], batch_size: int = 256):
        return self.classifier.pair_vectors(records, batch_size)

    def describe(self) -> dict[str, Any]:
        return {"model": str(self.folder), "embed": "classifier", "head_sha256": self.head_sha256}


def embed_text(record: Record, mode: str) -> str:
    """The string embedded for a record: its text, or (``marked``) its text with the pair marked.

    Markers are inserted at the span offsets, so nested or adjacent spans stay well formed.
    """
    if mode == "sentence":
        return record["text"]
    if mode != "marked":
        raise UserError(f"unknown embed mode {mode!r} (choose from {', '.join(SENTENCE_MODES)})", param="embed")
    if not isinstance(record.get("head"), dict) or not isinstance(record.get("tail"), dict):
        raise UserError(f"record {record.get('id')!r}: embedding the marked pair needs head and tail spans")
    return mark_entities(record, ("[E1]", "[/E1]"), ("[E2]", "[/E2]"))


def load_embedder(model: str = "minilm", device: str | None = None, dtype: str | None = None, param: str = "model"):
    """A SentenceTransformer on the probe's device and dtype (relcli.device): ``minilm`` is the
    packaged all-MiniLM-L6-v2, else an id or path. ``param`` names where the model name came from."""
    place = placement(device, dtype)
    try:
        return _embedder(model, place)
    except UserError as exc:
        exc.param = param
        raise


@functools.lru_cache(maxsize=2)
def _embedder(model: str, place: Placement):
    from sentence_transformers import SentenceTransformer

    path = encoder_path(model)
    try:
        with quiet_loading():
            return SentenceTransformer(path, device=place.device, model_kwargs={"dtype": place.torch_dtype})
    except (OSError, ValueError) as exc:
        reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise UserError(f"cannot load embedding model {model!r}: {reason}") from None


def encode_texts(embedder, texts: list[str], batch_size: int = 256):
    """Unit-length float32 embeddings, one row per text."""
    return embedder.encode(
        texts, batch_size=batch_size, normalize_embeddings=True, convert_to_numpy=True, show_progress_bar=False
    )
