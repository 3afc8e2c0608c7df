"""Indexes embedded by a fine-tuned classifier (relcli.embedders): built, queried (kNN, RAG4RE, prompts),
and refused once the classifier has changed. A tiny BERT classifier trained in ~1.5 s."""

from __future__ import annotations

import hashlib
import json
import re
import shutil

import numpy as np
import pytest
from typer.testing import CliRunner

torch = pytest.importorskip("torch")

from relcli.cli import app  # noqa: E402
from relcli.classifier import HEAD_FILE  # noqa: E402
from relcli.errors import UserError  # noqa: E402
from relcli.records import make_span  # noqa: E402
from relcli.retrieval import Index, build_index, read_meta  # noqa: E402
from tiny_embedder import make_tiny_embedder, train_tiny_classifier  # noqa: E402

runner = CliRunner()
LABELS = ["Near(e1,e2)", "Under(e1,e2)", "Other"]
CUES = {"Near(e1,e2)": "near", "Under(e1,e2)": "under", "Other": "with"}
NOUNS = "cat dog bird fish fox owl mat rug tree box log cup".split()


def record(id: str, head: str, tail: str, relation: str) -> dict:
    text = f"the {head} sat {CUES[relation]} the {tail}"
    return {"id": id, "text": text, "head": make_span(text, 4, 4 + len(head)),
            "tail": make_span(text, len(text) - len(tail), len(text)), "relation": relation}


TRAIN = [record(f"r{i}", NOUNS[i % 6], NOUNS[6 + (i * 5) % 6], LABELS[i % 3]) for i in range(18)]
# Pairs of nouns not seen together in training: the relation is in the cue word alone.
QUERIES = [record(f"q{i}", NOUNS[(i + 2) % 6], NOUNS[6 + (i * 7 + 1) % 6], LABELS[i % 3]) for i in range(9)]


def jsonl(path, rows):
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return str(path)


@pytest.fixture(scope="module")
def classifier(tmp_path_factory):
    return train_tiny_classifier(TRAIN, tmp_path_factory.mktemp("relindex"), LABELS, epochs=40, batch_size=6)


@pytest.fixture(scope="module")
def index(classifier, tmp_path_factory):
    out = tmp_path_factory.mktemp("idx") / "idx"
    build_index(TRAIN, out, model=str(classifier), batch_size=7, device="cpu", dtype="float32")
    return out


def copy_of(classifier, tmp_path):
    return shutil.copytree(classifier, tmp_path / "clf")


def test_index_json_records_the_classifier(classifier, index):
    meta = read_meta(index)
    assert meta["embed"] == "classifier" and meta["model"] == str(classifier.resolve())
    assert meta["head_sha256"] == hashlib.sha256((classifier / HEAD_FILE).read_bytes()).hexdigest()
    assert (meta["dimension"], meta["count"]) == (32, len(TRAIN))


def test_query_vectors_are_the_build_vectors(index):
    loaded = Index.load(index, device="cpu", dtype="float32")
    built = loaded.graph.get_items(list(range(len(TRAIN))), return_type="numpy")
    assert np.allclose(loaded.embed(TRAIN[::-1])[::-1], built, atol=1e-5)
    assert np.allclose(loaded.embed(TRAIN[4:5])[0], built[4], atol=1e-5)


def test_neighbours_share_the_relation(index):
    hits = Index.load(index).search(QUERIES, k=3)
    assert all(n["relation"] == q["relation"] for q, h in zip(QUERIES, hits) for n, _ in h)


def test_knn_vote_through_the_cli(classifier, tmp_path):
    idx = tmp_path / "idx"
    built = runner.invoke(app, ["index", "-m", str(classifier), "-i", jsonl(tmp_path / "train.jsonl", TRAIN), "-o", str(idx)])
    assert built.exit_code == 0, built.output
    assert "indexed 18 records (18 in all, dim 32)" in built.stderr
    done = runner.invoke(app, ["extract", "--decode", "knn", "--index", str(idx), "--k", "3", "-i", jsonl(tmp_path / "q.jsonl", QUERIES)])
    assert done.exit_code == 0, done.output
    assert [json.loads(line)["predicted"] for line in done.stdout.splitlines()] == [q["relation"] for q in QUERIES]


def test_rag_prompts_with_the_leakage_guard(index, tmp_path):
    labels = tmp_path / "labels.txt"
    labels.write_text("\n".join(LABELS))
    done = runner.invoke(app, ["prompts", "-t", "rag", "-l", str(labels), "--index", str(index), "--k", "2",
                               "-i", jsonl(tmp_path / "train.jsonl", TRAIN)])
    assert done.exit_code == 0, done.output
    prompts = [json.loads(line) for line in done.stdout.splitlines()]
    assert len(prompts) == len(TRAIN)
    for source, prompt in zip(TRAIN, prompts):
        examples = prompt["prompt"].split("Query Sentence:")[0]
        assert examples.count("Example Sentence:") == 2 and source["text"] not in examples  # never its own sentence
        assert re.findall(r"Relation: (\S+)", examples) == [source["relation"]] * 2  # neighbours of its relation


def test_rag4re_extraction_embeds_queries_with_the_classifier(index, tiny_llama, tmp_path):
    labels = tmp_path / "labels.txt"
    labels.write_text("\n".join(LABELS))
    done = runner.invoke(app, ["extract", "-m", tiny_llama, "-t", "rag", "-l", str(labels), "--index", str(index), "--k", "2",
                               "--dtype", "float32", "--explain", "-i", jsonl(tmp_path / "q.jsonl", QUERIES[:3])])
    assert done.exit_code == 0, done.output
    rows = [json.loads(line) for line in done.stdout.splitlines()]
    assert [r["id"] for r in rows] == ["q0", "q1", "q2"] and all(r["predicted"] in LABELS for r in rows)


def one_error_line(result, *needles):
    assert result.exit_code == 2, result.output
    lines = result.stderr.strip().splitlines()
    text = " ".join(" ".join(lines).split())  # rich wraps long error lines at 80 columns
    assert lines[0].startswith("error: ") and "Traceback" not in result.output
    assert all(needle in text for needle in needles), text


def test_a_changed_classifier_is_refused(classifier, tmp_path):
    from safetensors.torch import load_file, save_file

    clf = copy_of(classifier, tmp_path)
    idx = tmp_path / "idx"
    build_index(TRAIN, idx, model=str(clf))
    head = load_file(clf / HEAD_FILE)
    save_file({name: weights * 1.01 for name, weights in head.items()}, clf / HEAD_FILE)
    queries = jsonl(tmp_path / "q.jsonl", QUERIES)
    one_error_line(runner.invoke(app, ["extract", "--decode", "knn", "--index", str(idx), "-i", queries]),
                   "--index", "has changed since the index was built")
    one_error_line(runner.invoke(app, ["index", "-m", str(clf), "-o", str(idx), "--append", "-i", queries]),
                   "has changed since the index was built")
    assert read_meta(idx)["count"] == len(TRAIN)
    shutil.rmtree(clf)
    one_error_line(runner.invoke(app, ["extract", "--decode", "knn", "--index", str(idx), "-i", queries]),
                   "--index", "which is no longer there")


def test_embedder_mismatches_are_one_line(classifier, tmp_path):
    sentence = str(make_tiny_embedder(tmp_path / "tiny"))
    train = jsonl(tmp_path / "train.jsonl", TRAIN)
    idx = str(tmp_path / "idx")
    one_error_line(runner.invoke(app, ["index", "-m", sentence, "--embed", "classifier", "-i", train, "-o", idx]),
                   "--model", "not a classifier folder")
    one_error_line(runner.invoke(app, ["index", "-m", str(classifier), "--embed", "marked", "-i", train, "-o", idx]),
                   "--embed", "is a relcli classifier")
    assert runner.invoke(app, ["index", "-m", sentence, "-i", train, "-o", idx]).exit_code == 0
    one_error_line(runner.invoke(app, ["index", "-m", str(classifier), "--append", "-i", train, "-o", idx]),
                   "--model", "cannot append")
    one_error_line(runner.invoke(app, ["index", "-m", sentence, "--embed", "classifier", "--append", "-i", train, "-o", idx]),
                   "not a classifier folder")
    assert read_meta(idx)["count"] == len(TRAIN)


def test_damaged_classifier_metadata(index, tmp_path):
    broken = shutil.copytree(index, tmp_path / "idx")
    meta = json.loads((broken / "index.json").read_text())
    del meta["head_sha256"]
    (broken / "index.json").write_text(json.dumps(meta))
    with pytest.raises(UserError, match="is damaged"):
        Index.load(broken)
