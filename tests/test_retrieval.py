"""relcli.retrieval: entity marking, index build/append/load, the leakage guard, recall, kNN vote."""

from __future__ import annotations

import hashlib

import numpy as np
import orjson
import pytest

from relcli.errors import UserError
from relcli.records import make_span
from relcli.embedders import embed_text
from relcli.retrieval import GUARD_MARGIN, Index, build_index, knn_vote, read_meta
from tiny_embedder import make_tiny_embedder


@pytest.fixture(scope="session")
def tiny_model(tmp_path_factory):
    return str(make_tiny_embedder(tmp_path_factory.mktemp("models") / "tiny"))


def rc(id, text, head, tail, relation=None, **extra):
    h, t = text.index(head), text.index(tail)
    return {"id": id, "text": text, "head": make_span(text, h, h + len(head)), "tail": make_span(text, t, t + len(tail)),
            "relation": relation, **extra}


WORDS = "alpha bravo charlie delta echo foxtrot golf hotel india juliet kilo lima mike november oscar papa".split()


def corpus(n=30):
    return [rc(f"r{i}", f"the {WORDS[i % 16]} met {WORDS[(i * 7) % 16]} near {i}", WORDS[i % 16], str(i),
               ["A", "B", "C"][i % 3], note=i) for i in range(n)]


def test_embed_text_marks_the_pair():
    record = rc("1", "Smith founded Acme in 1990.", "Acme", "Smith")
    assert embed_text(record, "sentence") == record["text"]
    assert embed_text(record, "marked") == "[E2]Smith[/E2] founded [E1]Acme[/E1] in 1990."


def test_embed_text_nested_and_empty_spans():
    text = "New York City"
    nested = {"id": 1, "text": text, "head": make_span(text, 0, 13), "tail": make_span(text, 0, 8)}
    assert embed_text(nested, "marked") == "[E1][E2]New York[/E2] City[/E1]"
    inner_head = {**nested, "head": nested["tail"], "tail": nested["head"]}
    assert embed_text(inner_head, "marked") == "[E2][E1]New York[/E1] City[/E2]"
    empty = {"id": 2, "text": text, "head": make_span(text, 4, 4), "tail": make_span(text, 4, 8)}
    assert embed_text(empty, "marked") == "New [E2][E1][/E1]York[/E2] City"
    touching = {"id": 3, "text": text, "head": make_span(text, 0, 3), "tail": make_span(text, 3, 8)}
    assert embed_text(touching, "marked") == "[E1]New[/E1][E2] York[/E2] City"


def test_embed_text_errors():
    with pytest.raises(UserError, match="head and tail"):
        embed_text({"id": 1, "text": "x", "triplets": []}, "marked")
    with pytest.raises(UserError, match="unknown embed mode"):
        embed_text(rc("1", "a b", "a", "b"), "tokens")


def test_build_load_search(tiny_model, tmp_path):
    records = corpus()
    batches = []
    meta = build_index(iter(records), tmp_path / "idx", model=tiny_model, batch_size=7, m=8, on_batch=batches.append)
    assert batches == [7, 7, 7, 7, 2]
    assert meta["count"] == meta["added"] == 30 and meta["dimension"] == 32 and meta["m"] == 8
    assert read_meta(tmp_path / "idx") == {k: v for k, v in meta.items() if k != "added"}
    assert meta["data_sha256"] == hashlib.sha256((tmp_path / "idx" / "records.jsonl").read_bytes()).hexdigest()

    index = Index.load(tmp_path / "idx")
    assert len(index) == 30
    assert "note" not in index.records[0] and index.records[3]["relation"] == "A"
    unguarded = index.search(records[:5], k=3, exclude_self=False)
    for query, hits in zip(records, unguarded):
        assert hits[0][0]["id"] == query["id"] and hits[0][1] == pytest.approx(1.0, abs=1e-5)
    guarded = index.search(records, k=4)
    for query, hits in zip(records, guarded):
        assert len(hits) == 4
        assert all(n["id"] != query["id"] and n["text"] != query["text"] for n, _ in hits)
        sims = [s for _, s in hits]
        assert sims == sorted(sims, reverse=True)


def test_guard_drops_identical_text_even_past_the_margin(tiny_model, tmp_path):
    dupes = [rc(f"d{i}", "the same sentence again", "same", "again", "A") for i in range(GUARD_MARGIN + 5)]
    build_index(dupes + corpus(10), tmp_path / "idx", model=tiny_model)
    query = rc("new", "the same sentence again", "same", "again")
    hits = Index.load(tmp_path / "idx").search([query], k=5)[0]
    assert len(hits) == 5 and all(n["text"] != query["text"] for n, _ in hits)


def test_search_returns_what_there_is(tiny_model, tmp_path):
    build_index(corpus(3), tmp_path / "idx", model=tiny_model)
    index = Index.load(tmp_path / "idx")
    assert [len(h) for h in index.search(corpus(3), k=5)] == [2, 2, 2]
    assert index.search([], k=5) == []


def test_append_extends_and_checks_compatibility(tiny_model, tmp_path):
    out = tmp_path / "idx"
    build_index(corpus(30)[:20], out, model=tiny_model, m=8, batch_size=8)
    meta = build_index(corpus(30)[20:], out, model=tiny_model, append=True, batch_size=8)
    assert (meta["count"], meta["added"], meta["m"]) == (30, 10, 8)
    fresh = build_index(corpus(30), tmp_path / "fresh", model=tiny_model, m=8)
    assert meta["data_sha256"] == fresh["data_sha256"]
    index = Index.load(out)
    assert [r["id"] for r in index.records] == [f"r{i}" for i in range(30)]
    assert index.search([corpus(30)[25]], k=1, exclude_self=False)[0][0][0]["id"] == "r25"
    with pytest.raises(UserError, match="cannot append"):
        build_index(corpus(2), out, model=tiny_model, embed="marked", append=True)
    with pytest.raises(UserError, match="not a relcli index"):
        build_index(corpus(2), tmp_path / "missing", model=tiny_model, append=True)
    assert read_meta(out)["count"] == 30


def failing(records):
    yield from records
    raise RuntimeError("disk on fire")


def test_failed_build_leaves_no_partial_dir(tiny_model, tmp_path):
    with pytest.raises(RuntimeError):
        build_index(failing(corpus(10)), tmp_path / "idx", model=tiny_model, batch_size=4)
    assert list(tmp_path.iterdir()) == []
    build_index(corpus(10), tmp_path / "idx", model=tiny_model)
    before = {p.name: p.read_bytes() for p in (tmp_path / "idx").iterdir()}
    for append in (False, True):
        with pytest.raises(RuntimeError):
            build_index(failing(corpus(30)[10:]), tmp_path / "idx", model=tiny_model, batch_size=4, append=append)
        assert {p.name: p.read_bytes() for p in (tmp_path / "idx").iterdir()} == before
    assert [p.name for p in tmp_path.iterdir()] == ["idx"]


def test_refuses_empty_input_and_foreign_dirs(tiny_model, tmp_path):
    with pytest.raises(UserError, match="no records"):
        build_index([], tmp_path / "idx", model=tiny_model)
    assert list(tmp_path.iterdir()) == []
    (tmp_path / "mine").mkdir()
    (tmp_path / "mine" / "thesis.tex").write_text("precious")
    with pytest.raises(UserError, match="not a relcli index"):
        build_index(corpus(2), tmp_path / "mine", model=tiny_model)
    with pytest.raises(UserError, match="cannot load embedding model"):
        build_index(corpus(2), tmp_path / "idx", model=str(tmp_path / "no-such-model"))


def graph_index(vectors, m=32, ef_construction=200):
    import hnswlib

    graph = hnswlib.Index(space="cosine", dim=vectors.shape[1])
    graph.init_index(max_elements=len(vectors), M=m, ef_construction=ef_construction)
    graph.add_items(vectors, np.arange(len(vectors)))
    records = [{"id": i, "text": f"t{i}"} for i in range(len(vectors))]
    return Index(graph, records, {"embed": "sentence"})


def exact_top(index_vectors, query_vectors, k, exclude_diagonal=False):
    unit = index_vectors / np.linalg.norm(index_vectors, axis=1, keepdims=True)
    queries = query_vectors / np.linalg.norm(query_vectors, axis=1, keepdims=True)
    sims = queries @ unit.T
    if exclude_diagonal:
        np.fill_diagonal(sims, -np.inf)
    return np.argsort(-sims, axis=1)[:, :k]


def recall(hits, exact):
    return np.mean([len({n["id"] for n, _ in h} & set(e)) / len(e) for h, e in zip(hits, exact)])


def test_hnsw_recall_against_brute_force():
    rng = np.random.default_rng(0)
    vectors = rng.standard_normal((2000, 32)).astype(np.float32)
    index = graph_index(vectors)
    queries = rng.standard_normal((200, 32)).astype(np.float32)
    hits = index.search_vectors(queries, [{"id": -1, "text": ""}] * 200, 10, exclude_self=False)
    assert recall(hits, exact_top(vectors, queries, 10)) >= 0.99
    # The index's own records as queries: the guard removes each one's self, recall stays.
    hits = index.search_vectors(vectors[:200], index.records[:200], 5)
    assert all(n["id"] != q for q, h in enumerate(hits) for n, _ in h)
    assert recall(hits, exact_top(vectors, vectors[:200], 5, exclude_diagonal=True)) >= 0.99


def test_knn_vote_by_hand():
    a, b, c = ({"relation": label} for label in "ABC")
    label, scores = knn_vote([(a, 0.9), (b, 0.8), (b, 0.7), (a, 0.2), (c, -0.5), ({"relation": None}, 0.99)])
    assert label == "B" and scores == pytest.approx({"B": 1.5, "A": 1.1, "C": 0.0})
    assert list(scores) == ["B", "A", "C"]
    assert knn_vote([(c, 0.5), (a, 0.5)])[0] == "C"  # a tie goes to the nearest
    assert knn_vote([]) == (None, {})


def test_index_files_are_plain_json(tiny_model, tmp_path):
    build_index(corpus(4), tmp_path / "idx", model=tiny_model)
    lines = (tmp_path / "idx" / "records.jsonl").read_bytes().splitlines()
    assert [orjson.loads(line)["id"] for line in lines] == ["r0", "r1", "r2", "r3"]
    assert sorted(p.name for p in (tmp_path / "idx").iterdir()) == ["index.hnsw", "index.json", "records.jsonl"]


def test_load_refuses_incomplete_index(tiny_model, tmp_path):
    build_index(corpus(2), tmp_path / "idx", model=tiny_model)
    (tmp_path / "idx" / "index.hnsw").unlink()
    with pytest.raises(UserError, match="index.hnsw is missing"):
        Index.load(tmp_path / "idx")


def test_knn_vote_counts_only_allowed_labels():
    a, b = {"relation": "A"}, {"relation": "B"}
    assert knn_vote([(a, 0.9), (b, 0.8), (b, 0.7)], allowed=["A", "no_relation"]) == ("A", {"A": 0.9})
    assert knn_vote([(b, 0.8)], allowed=["A"]) == (None, {})


def test_knn_predictor_masks_the_vote_and_applies_a_margin(tiny_model, tmp_path):
    from relcli.predictors import open_predictor
    from relcli.schema import from_dict

    build_index(corpus(30), tmp_path / "idx", model=tiny_model)
    schema = from_dict({"relations": {"A": {"head_types": ["X"]}, "B": {"head_types": ["Y"]}, "C": None}})
    queries = [dict(r, id=f"q{r['id']}", text=r["text"] + " again", head=dict(r["head"], type="X")) for r in corpus(12)]
    knn = open_predictor(None, decode="knn", index=str(tmp_path / "idx"), k=5, schema=schema, explain=True)
    out = list(knn.predict(queries))
    assert all(r["predicted"] in ("A", "C", "no_relation") for r in out)
    assert all(set(r["explain"]["label_scores"]) <= {"A", "C", "no_relation"} for r in out)
    assert all(r["explain"]["label_scores"]["no_relation"] == 0.0 for r in out)  # listed, for calibration
    plain = list(open_predictor(None, decode="knn", index=str(tmp_path / "idx"), k=5).predict(queries))
    assert any(r["predicted"] == "B" for r in plain)  # the mask changed something
    cautious = open_predictor(None, decode="knn", index=str(tmp_path / "idx"), k=5, schema=schema, negative_margin=100.0)
    assert {r["predicted"] for r in cautious.predict(queries)} == {"no_relation"}
    with pytest.raises(UserError, match="do\\(es\\) not apply"):
        open_predictor(None, decode="knn", index=str(tmp_path / "idx"), template="simple", schema=schema)
