"""Retrieval for RAG4RE: embeddings of records (relcli.embedders) and an hnswlib index over them.

An index directory holds three files: ``index.hnsw`` (the hnswlib graph, cosine space),
``records.jsonl`` (the indexed records, line i = hnswlib label i) and ``index.json`` (how it was
built, including what ``open_embedder`` needs to embed queries the same way). Directories are
written whole into a temp dir beside the target and renamed into place, so an interrupted build
leaves the previous index (or none), never half of one.

torch and sentence-transformers are imported only when an embedder is loaded.
"""

from __future__ import annotations

import hashlib
import shutil
from pathlib import Path
from typing import Any, Callable, Iterable

import orjson

from relcli import __version__
from relcli.embedders import EMBEDS, Embedder, open_embedder
from relcli.errors import UserError
from relcli.records import Record, chunks, dumps
from relcli.streams import replacing_dir

INDEX_FILE = "index.hnsw"
RECORDS_FILE = "records.jsonl"
META_FILE = "index.json"
KEPT_FIELDS = ("id", "text", "head", "tail", "relation", "triplets")
# The lowest hnswlib search breadth; recall@5 on SemEval train is >= 0.99 with it (bench/).
MIN_EF = 100
# Extra neighbours asked for per query, so that the leakage guard can drop some and still return k.
GUARD_MARGIN = 8
# The graph's first capacity; it is resized as records are added, so a huge batch size reserves nothing.
FIRST_CAPACITY = 10_000

Neighbours = list[tuple[Record, float]]


# What index.json must hold, and of which type.
META_TYPES = {"model": str, "embed": str, "dimension": int, "count": int}


def read_meta(directory: str | Path, param: str = "index") -> dict[str, Any]:
    """The index.json of an index folder, checked; ``param`` names where the folder came from."""
    path = Path(directory) / META_FILE
    try:
        meta = orjson.loads(path.read_bytes())
    except FileNotFoundError:
        raise UserError(f"{directory} is not a relcli index (no {META_FILE})", param=param) from None
    except orjson.JSONDecodeError:
        raise UserError(f"{path} is not valid JSON", param=param) from None
    except OSError as exc:
        raise UserError(f"cannot read {path}: {exc.strerror}", param=param) from None
    if not isinstance(meta, dict):
        raise UserError(f"{path} is not a relcli index description (not a JSON object)", param=param)
    for key, kind in META_TYPES.items():
        if not isinstance(meta.get(key), kind) or isinstance(meta.get(key), bool):
            raise UserError(f"{path} is damaged: {key!r} is {meta.get(key)!r}, not a {kind.__name__}; build the index again", param=param)
    if meta["embed"] not in EMBEDS or meta["dimension"] < 1 or meta["count"] < 0 \
            or (meta["embed"] == "classifier" and not isinstance(meta.get("head_sha256"), str)):
        raise UserError(f"{path} is damaged (embed {meta['embed']!r}, dimension {meta['dimension']}, count {meta['count']}); "
                        "build the index again", param=param)
    return meta


def _check_target(out_dir: Path, append: bool, wanted: dict[str, Any]) -> dict[str, Any] | None:
    """The existing index's metadata when appending (built by the ``wanted`` embedder); refuse to
    clobber a directory that is no index."""
    if append:
        meta = read_meta(out_dir, param="output")
        for key in ("model", "embed"):
            if meta[key] != wanted[key]:
                raise UserError(f"{out_dir} was built with {key} {meta[key]}; cannot append with {key} {wanted[key]}", param=key)
        open_embedder(meta, param="model")  # the same classifier folder, but has it changed since?
        return meta
    if out_dir.exists() and (not out_dir.is_dir() or (any(out_dir.iterdir()) and not (out_dir / META_FILE).exists())):
        raise UserError(f"{out_dir} exists and is not a relcli index; choose another", param="output")
    return None


def build_index(
    records: Iterable[Record],
    out_dir: str | Path,
    *,
    model: str = "minilm",
    embed: str | None = None,
    m: int | None = None,
    ef_construction: int | None = None,
    batch_size: int = 256,
    append: bool = False,
    device: str | None = None,
    dtype: str | None = None,
    on_batch: Callable[[int], None] | None = None,
) -> dict[str, Any]:
    """Embed ``records`` batch by batch into an hnswlib index at ``out_dir``; return its metadata.

    ``model`` is a sentence embedder or a classifier folder; ``embed`` is sentence, marked or
    classifier (default: classifier for a classifier folder, else sentence; relcli.embedders).
    Memory holds one batch of records (plus the graph). With ``append`` the existing index is
    loaded, extended and rewritten; it must have been built with the same embedder,
    and keeps its own ``m`` and ``ef_construction`` (default 32 and 200 for a new index).
    ``on_batch(n)`` is called after each batch of n records is added. The returned dict is what
    ``index.json`` holds plus ``added``, the number of records this call indexed.
    """
    import hnswlib

    out_dir = Path(out_dir)
    embedder = open_embedder({"model": model, "embed": embed}, device, dtype)
    described = embedder.describe()
    old_meta = _check_target(out_dir, append, described)
    if old_meta is not None and (m is not None or ef_construction is not None):
        raise UserError("an appended index keeps the graph settings it was built with",
                        param="m" if m is not None else "ef_construction")
    dim = embedder.dimension
    digest = hashlib.sha256()
    with replacing_dir(out_dir) as tmp:
        index = hnswlib.Index(space="cosine", dim=dim)
        if old_meta:
            if old_meta["dimension"] != dim:
                raise UserError(f"{out_dir} has dimension {old_meta['dimension']}, the model gives {dim}")
            m, ef_construction = old_meta["m"], old_meta["ef_construction"]
            index.load_index(str(out_dir / INDEX_FILE), max_elements=old_meta["count"] + min(batch_size, FIRST_CAPACITY))
            shutil.copyfile(out_dir / RECORDS_FILE, tmp / RECORDS_FILE)
            with open(tmp / RECORDS_FILE, "rb") as handle:
                for chunk in iter(lambda: handle.read(1 << 20), b""):
                    digest.update(chunk)
        else:
            m, ef_construction = m or 32, ef_construction or 200
            # Room for the first batches only: the graph grows (resize_index) as records come.
            index.init_index(max_elements=min(batch_size, FIRST_CAPACITY), M=m, ef_construction=ef_construction)
        start = count = index.get_current_count()
        with open(tmp / RECORDS_FILE, "ab") as out:
            for batch in chunks(records, batch_size):
                vectors = embedder.encode(batch, batch_size)
                if count + len(batch) > index.get_max_elements():
                    index.resize_index(max(2 * index.get_max_elements(), count + len(batch)))
                index.add_items(vectors, list(range(count, count + len(batch))))
                count += len(batch)
                for record in batch:
                    line = dumps({key: record[key] for key in KEPT_FIELDS if key in record})
                    out.write(line)
                    digest.update(line)
                if on_batch:
                    on_batch(len(batch))
        if count == 0:
            raise UserError("no records to index")
        index.save_index(str(tmp / INDEX_FILE))
        meta = {
            **described,
            "dimension": dim,
            "count": count,
            "space": "cosine",
            "m": m,
            "ef_construction": ef_construction,
            "data_sha256": digest.hexdigest(),
            "relcli_version": __version__,
        }
        (tmp / META_FILE).write_bytes(orjson.dumps(meta, option=orjson.OPT_INDENT_2) + b"\n")
    return {**meta, "added": count - start}



class Index:
    """A loaded index: the hnswlib graph, the indexed records, and the embedder to query it with."""

    def __init__(self, graph, records: list[Record], meta: dict[str, Any], embedder: Embedder | None = None):
        self.graph = graph
        self.records = records
        self.meta = meta
        self.embedder = embedder

    @classmethod
    def load(cls, directory: str | Path, device: str | None = None, dtype: str | None = None, param: str = "index") -> "Index":
        import hnswlib

        directory = Path(directory)
        meta = read_meta(directory, param)
        embedder = open_embedder(meta, device, dtype, param=param)
        for name in (RECORDS_FILE, INDEX_FILE):
            if not (directory / name).is_file():
                raise UserError(f"{directory} is an incomplete index: {name} is missing", param=param)
        try:
            with open(directory / RECORDS_FILE, "rb") as handle:
                records = [orjson.loads(line) for line in handle]
            if len(records) != meta["count"]:
                raise ValueError(f"{RECORDS_FILE} has {len(records)} records, {META_FILE} says {meta['count']}")
            for number, record in enumerate(records, start=1):
                if not isinstance(record, dict) or not isinstance(record.get("text"), str) or "id" not in record:
                    raise ValueError(f"{RECORDS_FILE} line {number} is not a record with an id and a text")
            graph = hnswlib.Index(space="cosine", dim=meta["dimension"])
            graph.load_index(str(directory / INDEX_FILE), max_elements=meta["count"])
        except (ValueError, TypeError, KeyError, RuntimeError, OSError) as exc:
            reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            raise UserError(f"{directory} is a damaged index ({reason}); build it again", param=param) from None
        return cls(graph, records, meta, embedder)

    def __len__(self) -> int:
        return len(self.records)

    def embed(self, records: list[Record], batch_size: int = 256):
        """Query vectors for records, embedded the way the index was."""
        return self.embedder.encode(records, batch_size)

    def search(
        self,
        queries: list[Record],
        k: int = 5,
        *,
        exclude_self: bool = True,
        ef: int | None = None,
        batch_size: int = 256,
    ) -> list[Neighbours]:
        """The k nearest indexed records of each query, with cosine similarity, nearest first.

        With ``exclude_self`` (the leakage guard) a query never gets back a record with its own id
        or its identical text. ``ef`` is the hnswlib search breadth (default max(100, 2 * asked)).
        """
        if not queries:
            return []
        return self.search_vectors(self.embed(queries, batch_size), queries, k, exclude_self=exclude_self, ef=ef)

    def search_vectors(self, vectors, queries: list[Record], k: int, *, exclude_self: bool = True, ef: int | None = None) -> list[Neighbours]:
        """``search`` for query vectors already embedded (``queries`` supply ids and texts for the guard)."""
        if k < 1:
            raise UserError(f"k must be at least 1, got {k}")
        total = len(self.records)
        asked = min(total, k + GUARD_MARGIN if exclude_self else k)
        results: list[Neighbours | None] = [None] * len(queries)
        pending = list(range(len(queries)))
        while pending:
            self.graph.set_ef(max(ef or MIN_EF, 2 * asked))
            labels, distances = self.graph.knn_query(vectors[pending], k=asked)
            short = []
            for row, q in enumerate(pending):
                found = [
                    (self.records[label], 1.0 - float(distance))
                    for label, distance in zip(labels[row], distances[row])
                    if not (exclude_self and self._leaks(queries[q], self.records[label]))
                ]
                results[q] = found[:k]
                if len(found) < k and asked < total:
                    short.append(q)
            pending, asked = short, min(total, asked * 4)
        return results

    @staticmethod
    def _leaks(query: Record, neighbour: Record) -> bool:
        return neighbour["id"] == query.get("id") or neighbour["text"] == query.get("text")


def knn_vote(neighbours: Neighbours, allowed: Iterable[str] | None = None) -> tuple[str | None, dict[str, float]]:
    """The neighbours' relation vote, each weighted by its similarity (negative ones count 0).

    Returns the winning label (ties go to the label of the nearest neighbour; None when no
    neighbour has a relation) and the score per label, highest first. With ``allowed`` (e.g. the
    labels a relation schema allows for the query's pair) only neighbours with those labels vote.
    """
    allowed = None if allowed is None else set(allowed)
    scores: dict[str, float] = {}
    for record, similarity in neighbours:
        label = record.get("relation")
        if label is not None and (allowed is None or label in allowed):
            scores[label] = scores.get(label, 0.0) + max(similarity, 0.0)
    # sorted() is stable, so equal scores keep first-seen (nearest) order.
    ranked = dict(sorted(scores.items(), key=lambda item: -item[1]))
    return next(iter(ranked), None), ranked


def neighbours_for(index: "Index", k: int) -> Callable[[list[Record]], list[list[Record]]]:
    """Retrieval as a function: a batch of records -> the k nearest indexed records of each."""
    return lambda batch: [[neighbour for neighbour, _ in hits] for hits in index.search(batch, k)]
