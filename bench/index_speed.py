"""Index speed: build throughput (embedder vs hnswlib add), query latency and recall@k vs exact
search, on SemEval train (~8k records) and scaled to --scale vectors.

The 8k row embeds SemEval train with the packaged MiniLM through relcli.retrieval. Embedding 100k
sentences with MiniLM on a 2-core CPU would take most of the bench budget, so the scaled row
reuses the 8k vectors, each repeated with small Gaussian noise (then renormalised): the hnswlib
part (build, search, recall) scales as with real sentences; the embedder part is extrapolated from
the measured 8k rate. Queries are SemEval test sentences (embedded once).

    nice -n 15 python bench/index_speed.py [--records 8000] [--queries 1000] [--scale 100000] [--k 5]
"""

from __future__ import annotations

import tempfile
import time
from pathlib import Path

import numpy as np

from common import arguments, parse, report, semeval, timed

from relcli.embedders import embed_text, encode_texts, load_embedder
from relcli.retrieval import MIN_EF, Index, build_index

M, EF_CONSTRUCTION = 32, 200  # relcli.retrieval.build_index defaults


def hnsw(vectors: np.ndarray):
    import hnswlib

    graph = hnswlib.Index(space="cosine", dim=vectors.shape[1])
    graph.init_index(max_elements=len(vectors), M=M, ef_construction=EF_CONSTRUCTION)
    graph.add_items(vectors, np.arange(len(vectors)))
    return graph


def recall(graph, vectors: np.ndarray, queries: np.ndarray, k: int) -> float:
    found, _ = graph.knn_query(queries, k=k)
    exact = np.argsort(-(queries @ vectors.T), axis=1)[:, :k]
    return float(np.mean([len(set(f) & set(e)) / k for f, e in zip(found, exact)]))


def search_row(name: str, vectors: np.ndarray, queries: np.ndarray, k: int, repeats: int, embed_rate: float) -> dict:
    """Build the graph (timed once after a small warm-up build) and query it in one batch."""
    hnsw(vectors[:1000])
    started = time.perf_counter()
    graph = hnsw(vectors)
    add_seconds = time.perf_counter() - started
    graph.set_ef(max(MIN_EF, 2 * k))
    query_seconds, _ = timed(lambda: graph.knn_query(queries, k=k), repeats)
    embed_seconds = len(vectors) / embed_rate
    return {
        "index": name,
        "vectors": len(vectors),
        "hnswlib add records/s": len(vectors) / add_seconds,
        "embed records/s": embed_rate,
        "build records/s": len(vectors) / (add_seconds + embed_seconds),
        "embedder % of build": 100 * embed_seconds / (add_seconds + embed_seconds),
        "hnswlib µs/query (batched)": 1e6 * query_seconds / len(queries),
        f"recall@{k} vs exact": recall(graph, vectors, queries, k),
    }


def main() -> None:
    parser = arguments(__doc__)
    parser.add_argument("--records", type=int, default=8000, help="SemEval train records to index")
    parser.add_argument("--queries", type=int, default=1000, help="SemEval test records used as queries")
    parser.add_argument("--scale", type=int, default=100_000, help="vectors of the scaled row (0: skip it)")
    parser.add_argument("--noise", type=float, default=0.02, help="std of the per-dimension noise of the scaled copies")
    parser.add_argument("--k", type=int, default=5)
    args = parse(parser)

    train = semeval(args.data, "train", args.records)
    test = semeval(args.data, "test", args.queries)
    embedder = load_embedder("minilm")
    texts = [embed_text(r, "sentence") for r in train]
    encode_texts(embedder, texts[:256])  # warm-up
    embed_seconds, vectors = timed(lambda: encode_texts(embedder, texts), args.repeats, warmup=False)
    embed_rate = len(texts) / embed_seconds
    queries = encode_texts(embedder, [embed_text(r, "sentence") for r in test])

    with tempfile.TemporaryDirectory() as tmp:
        started = time.perf_counter()
        build_index(train, Path(tmp) / "index")
        build_seconds = time.perf_counter() - started
        index = Index.load(Path(tmp) / "index")
        batched, _ = timed(lambda: index.search(test, args.k), args.repeats)
        single, _ = timed(lambda: [index.search([q], args.k) for q in test[:50]], args.repeats)
    rows = [search_row("SemEval train", vectors, queries, args.k, args.repeats, embed_rate)]
    rows[0]["relcli index records/s (end to end)"] = len(train) / build_seconds
    rows[0]["Index.search ms/query (batch)"] = 1e3 * batched / len(test)
    rows[0]["Index.search ms/query (one at a time)"] = 1e3 * single / 50
    if args.scale:
        rng = np.random.default_rng(0)
        copies = -(-args.scale // len(vectors))
        scaled = np.concatenate([vectors] + [vectors + rng.normal(0, args.noise, vectors.shape).astype(np.float32)
                                             for _ in range(copies - 1)])[: args.scale]
        scaled /= np.linalg.norm(scaled, axis=1, keepdims=True)
        rows.append(search_row(f"train vectors x{copies} + noise {args.noise}", scaled, queries, args.k, args.repeats, embed_rate))
    notes = [
        f"all-MiniLM-L6-v2 (packaged), hnswlib cosine M={M} ef_construction={EF_CONSTRUCTION}, search ef={max(MIN_EF, 2 * args.k)} (relcli's defaults)",
        f"{len(test)} SemEval test sentences as queries; embedding: median of {args.repeats}; hnswlib build: once after a 1k warm-up build; queries: median of {args.repeats}",
        "relcli index records/s is build_index end to end (embed + add + write); Index.search includes embedding the queries and the leakage guard",
        "scaled row: the 8k vectors repeated with Gaussian noise instead of embedding 100k sentences; its embed rate and build records/s are extrapolated from the 8k embedding rate",
    ]
    report(args.results, "index", "index: build, query, recall", rows, notes)


if __name__ == "__main__":
    main()
