"""Retrieval quality on SemEval-2010 Task 8: build speed, hnswlib recall, label agreement, kNN vote.

For each embedder (the packaged MiniLM over the sentence and over the marked sentence, and with
--classifier a folder from `relcli finetune --method classifier`): index TRAIN (records/s), then
query the index with the training records themselves under the leakage guard and compare with
exact cosine search (recall@k; no query may get itself back), count same-label neighbours in the
top k for those train queries and for TEST queries, and classify TEST by the similarity-weighted
vote of its k neighbours (accuracy, official macro-F1). Prints a markdown table.

A classifier has seen the training records' labels, so its train->train agreement is optimistic;
test->train is the held-out number.

    nice -n 15 python bench/retrieval_quality.py [--data ../shared/data/semeval2010_task8] [--k 5]
        [--classifier DIR] [--limit N (first N train records)] [--queries N (first N test records)]
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np

from relcli.formats import convert
from relcli.embedders import SENTENCE_MODES
from relcli.retrieval import Index, build_index, knn_vote
from relcli.scoring import score_records

DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "semeval2010_task8"
def read_semeval(path: Path) -> list[dict]:
    return list(convert("semeval", [path]))


def exact_neighbours(vectors: np.ndarray, records: list[dict], k: int) -> np.ndarray:
    """Exact top-k cosine neighbours of every indexed record among the others (guard applied)."""
    by_text: dict[str, list[int]] = {}
    for i, record in enumerate(records):
        by_text.setdefault(record["text"], []).append(i)
    top = np.empty((len(vectors), k), dtype=np.int64)
    for start in range(0, len(vectors), 1024):
        sims = vectors[start:start + 1024] @ vectors.T
        for row in range(len(sims)):
            sims[row, by_text[records[start + row]["text"]]] = -np.inf
        top[start:start + len(sims)] = np.argsort(-sims, axis=1)[:, :k]
    return top


def measure(train: list[dict], test: list[dict], name: str, model: str, mode: str, k: int, workdir: Path) -> dict:
    started = time.perf_counter()
    build_index(train, workdir / mode, model=model, embed=mode)
    build_seconds = time.perf_counter() - started
    index = Index.load(workdir / mode)
    vectors = index.graph.get_items(list(range(len(index))), return_type="numpy")
    position = {r["id"]: i for i, r in enumerate(index.records)}
    hits = index.search_vectors(vectors, index.records, k)
    found = [[position[n["id"]] for n, _ in h] for h in hits]
    exact = exact_neighbours(vectors, index.records, k)
    leaks = sum(n["id"] == q["id"] or n["text"] == q["text"] for q, h in zip(index.records, hits) for n, _ in h)
    same = [n["relation"] == q["relation"] for q, h in zip(index.records, hits) for n, _ in h]
    index.embed(test[:1])  # loads the query embedder outside the timing
    started = time.perf_counter()
    test_hits = index.search(test, k)
    query_seconds = time.perf_counter() - started
    same_test = [n["relation"] == q["relation"] for q, h in zip(test, test_hits) for n, _ in h]
    voted = [dict(q, predicted=knn_vote(h)[0] or "Other") for q, h in zip(test, test_hits)]
    scores = score_records(voted, scheme="semeval")
    return {
        "embedder": name,
        "build records/s": f"{len(train) / build_seconds:.0f}",
        "query records/s": f"{len(test) / query_seconds:.0f}",
        f"recall@{k} vs exact": f"{np.mean([len(set(f) & set(e)) / k for f, e in zip(found, exact)]):.4f}",
        "self hits": str(leaks),
        f"same label top-{k} train->train": f"{np.mean(same):.3f}",
        f"same label top-{k} test->train": f"{np.mean(same_test):.3f}",
        f"kNN-{k} test acc": f"{np.mean([v['predicted'] == v['relation'] for v in voted]):.3f}",
        f"kNN-{k} test macro-F1": f"{scores['official']['f1']:.2f}",
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=DATA)
    parser.add_argument("--k", type=int, default=5)
    parser.add_argument("--embed", nargs="*", default=list(SENTENCE_MODES), choices=SENTENCE_MODES, help="MiniLM modes to measure")
    parser.add_argument("--classifier", type=Path, help="also measure a classifier folder's pair vectors")
    parser.add_argument("--limit", type=int, help="index only the first N train records")
    parser.add_argument("--queries", type=int, help="query with the first N test records only")
    args = parser.parse_args()
    train = read_semeval(args.data / "TRAIN_FILE.TXT")[:args.limit]
    test = read_semeval(args.data / "TEST_FILE_FULL.TXT")[:args.queries]
    embedders = [(f"minilm {mode}", "minilm", mode) for mode in args.embed]
    if args.classifier:
        embedders.append((f"classifier {args.classifier.name}", str(args.classifier), "classifier"))
    with tempfile.TemporaryDirectory() as workdir:
        rows = [measure(train, test, *embedder, args.k, Path(workdir)) for embedder in embedders]
    print(f"SemEval-2010 Task 8, {len(train)} train / {len(test)} test, k={args.k}\n")
    print("| " + " | ".join(rows[0]) + " |")
    print("|" + "---|" * len(rows[0]))
    for row in rows:
        print("| " + " | ".join(row.values()) + " |")


if __name__ == "__main__":
    main()
