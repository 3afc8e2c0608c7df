"""Entity-marker classifiers on a tiny BERT built from a config (no packaged weights loaded)."""

from __future__ import annotations

import json

import numpy as np
import pytest

torch = pytest.importorskip("torch")
transformers = pytest.importorskip("transformers")

from relcli.classifier import POOLINGS, load_classifier, train_classifier  # noqa: E402
from relcli.markers import encode_records, mark_text, marker_tokens  # noqa: E402
from relcli.errors import UserError  # noqa: E402
from relcli.records import make_span  # noqa: E402

torch.set_num_threads(1)  # tiny models: threads only add synchronisation on a busy machine

WORDS = "the a cat dog bird fish sat on near under mat rug tree box with saw".split()
LABELS = ["Near(e1,e2)", "Under(e1,e2)", "Other"]


def record(i: int, head: str, tail: str, relation: str | None, head_type=None, tail_type=None) -> dict:
    prefix = f"the {head} sat "
    text = f"{prefix}{'near' if relation == LABELS[0] else 'under' if relation == LABELS[1] else 'with'} the {tail}"
    tail_start = len(text) - len(tail)
    return {"id": f"r{i}", "text": text, "head": make_span(text, 4, 4 + len(head), head_type),
            "tail": make_span(text, tail_start, len(text), tail_type), "relation": relation, "meta": i}


RECORDS = [record(i, h, t, rel) for i, (h, t, rel) in enumerate([
    ("cat", "mat", LABELS[0]), ("dog", "rug", LABELS[1]), ("bird", "tree", LABELS[2]), ("fish", "box", LABELS[0]),
    ("cat", "rug", LABELS[1]), ("dog", "tree", LABELS[2]), ("bird", "box", LABELS[0]), ("fish", "mat", LABELS[1]),
])]


@pytest.fixture(scope="module")
def base(tmp_path_factory):
    """A tiny random BERT + WordPiece tokenizer saved as a local encoder folder."""
    from transformers import BertConfig, BertModel, BertTokenizer

    folder = tmp_path_factory.mktemp("tiny-bert")
    tokenizer = BertTokenizer(vocab={w: i for i, w in enumerate(["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", *WORDS])})
    config = BertConfig(vocab_size=len(tokenizer), hidden_size=32, num_hidden_layers=2, num_attention_heads=2,
                        intermediate_size=64, max_position_embeddings=64)
    torch.manual_seed(0)
    BertModel(config).save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    return str(folder)


TINY = dict(epochs=40, lr=3e-3, batch_size=4, warmup_ratio=0.0, dropout=0.0, dtype="float32", device="cpu")


@pytest.fixture(scope="module")
def trained(base, tmp_path_factory):
    """One trained model per pooling: (output dir, metrics)."""
    out = {}
    for pooling in POOLINGS:
        folder = tmp_path_factory.mktemp(pooling.replace("+", "-"))
        losses = []
        metrics = train_classifier(RECORDS, base, folder, labels=LABELS, pooling=pooling,
                                   on_log=lambda step, total, loss: losses.append(loss), **TINY)
        out[pooling] = folder, metrics, losses
    return out


def test_mark_text_wraps_head_and_tail():
    r = RECORDS[0]
    assert mark_text(r) == "the <e1>cat</e1> sat near the <e2>mat</e2>"


def test_mark_text_nested_and_adjacent_spans():
    text = "New York City"
    r = {"id": 1, "text": text, "head": make_span(text, 0, 13), "tail": make_span(text, 0, 8)}
    assert mark_text(r) == "<e1><e2>New York</e2> City</e1>"
    r = {"id": 1, "text": "ab", "head": make_span("ab", 0, 1), "tail": make_span("ab", 1, 2)}
    assert mark_text(r) == "<e1>a</e1><e2>b</e2>"


def test_typed_markers_fall_back_for_unknown_types():
    r = record(0, "cat", "mat", LABELS[0], head_type="ANIMAL", tail_type="THING")
    assert mark_text(r, frozenset({"ANIMAL"})) == "the <e1:ANIMAL>cat</e1:ANIMAL> sat near the <e2>mat</e2>"
    assert "<e2:ANIMAL>" in marker_tokens(["ANIMAL"])


def test_encoding_points_at_start_markers_and_trims_around_entities(base):
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(base)
    tokenizer.add_special_tokens({"additional_special_tokens": marker_tokens()})
    e1, e2 = tokenizer.convert_tokens_to_ids(["<e1>", "<e2>"])
    item = encode_records(tokenizer, RECORDS[:1], 128, None)[0]
    assert item.ids[0] == tokenizer.cls_token_id and item.ids[-1] == tokenizer.sep_token_id
    assert (item.ids[item.e1], item.ids[item.e2]) == (e1, e2)
    text = "the " * 40 + "cat sat near the mat" + " the" * 40
    long = {"id": 1, "text": text, "head": make_span(text, 160, 163), "tail": make_span(text, 177, 180)}
    item = encode_records(tokenizer, [long], 16, None)[0]
    assert len(item.ids) == 16
    assert (item.ids[item.e1], item.ids[item.e2]) == (e1, e2)


@pytest.mark.parametrize("pooling", POOLINGS)
def test_training_fits_a_handful_of_records(trained, pooling):
    _, metrics, losses = trained[pooling]
    assert metrics["steps"] == len(losses) == 40 * 2
    assert sum(losses[-4:]) < sum(losses[:4]) / 2
    assert metrics["train_loss"] < 0.3


def test_saved_directory_is_safetensors_with_meta(trained):
    folder, _, _ = trained["cls+entity"]
    meta = json.loads((folder / "relcli.json").read_text())
    assert meta["kind"] == "classifier" and meta["labels"] == LABELS and meta["encoder"]["pooling"] == "cls+entity"
    assert meta["training"]["examples"] == len(RECORDS) and len(meta["training"]["data_sha256"]) == 16
    assert {"model.safetensors", "head.safetensors", "config.json", "tokenizer.json"} <= {p.name for p in folder.iterdir()}
    assert not [p for p in folder.iterdir() if p.suffix in (".bin", ".pt", ".pkl")]


@pytest.mark.parametrize("pooling", POOLINGS)
def test_round_trip_predicts_in_order_from_the_inventory(trained, pooling):
    classifier = load_classifier(trained[pooling][0], device="cpu", dtype="float32")
    many = [dict(RECORDS[i % len(RECORDS)], id=f"x{i}", relation=None) for i in range(40)]
    out = list(classifier.predict(iter(many), batch_size=2))  # 2 chunks of 32
    assert [r["id"] for r in out] == [r["id"] for r in many]
    assert {r["predicted"] for r in out} <= set(LABELS)
    assert [r["predicted"] for r in out[:8]] == [r["relation"] for r in RECORDS]
    assert out[0]["meta"] == 0 and "predicted" not in many[0]


def test_explain_gives_probabilities(trained):
    classifier = load_classifier(trained["entity-start"][0], device="cpu", dtype="float32")
    out = next(classifier.predict(RECORDS[:1], explain=True))
    assert list(out["explain"]["label_scores"]) == LABELS
    assert sum(out["explain"]["label_scores"].values()) == pytest.approx(1.0, abs=1e-4)
    assert max(out["explain"]["label_scores"], key=out["explain"]["label_scores"].get) == out["predicted"]


@pytest.mark.parametrize("pooling", POOLINGS)
def test_pair_vectors_are_what_the_final_projection_reads(trained, pooling):
    classifier = load_classifier(trained[pooling][0], device="cpu", dtype="float32")
    many = [dict(RECORDS[i % len(RECORDS)], id=f"x{i}") for i in range(40)]
    vectors = classifier.pair_vectors(many, batch_size=2)  # 2 chunks of 32, batches sorted by length
    assert vectors.shape == (40, 32) and vectors.dtype == "float32"
    assert np.allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)
    assert np.allclose(vectors[8:16], vectors[:8], atol=1e-5)  # the same record, the same vector, wherever it sits
    assert np.allclose(classifier.pair_vectors(RECORDS[3:4]), vectors[3], atol=1e-5)
    read = []  # what the head's final projection reads while predicting, in batch order
    hook = classifier.head.out.register_forward_hook(lambda module, inputs, output: read.extend(inputs[0]))
    list(classifier.predict(RECORDS[:1]))
    hook.remove()
    assert np.allclose(torch.nn.functional.normalize(read[0], dim=-1).numpy(), vectors[0], atol=1e-5)
    assert classifier.pair_vectors([]).shape == (0, 32)


def test_typed_markers_and_lora(base, tmp_path):
    records = [dict(r, head=dict(r["head"], type="ANIMAL"), tail=dict(r["tail"], type="THING")) for r in RECORDS]
    metrics = train_classifier(records, base, tmp_path, labels=LABELS, typed_markers=True, lora=True, lora_r=4,
                               eval_records=records, **dict(TINY, epochs=2))
    assert [e["epoch"] for e in metrics["eval"]] == [1, 2]
    meta = json.loads((tmp_path / "relcli.json").read_text())
    assert meta["encoder"]["typed_markers"] and meta["encoder"]["entity_types"] == ["ANIMAL", "THING"] and meta["training"]["lora"]
    classifier = load_classifier(tmp_path, device="cpu", dtype="float32")
    assert classifier.tokenizer.convert_tokens_to_ids("<e1:ANIMAL>") != classifier.tokenizer.unk_token_id
    unseen = dict(records[0], head=dict(records[0]["head"], type="PLANT"))
    assert {r["predicted"] for r in classifier.predict([records[0], unseen])} <= set(LABELS)


def test_user_errors(base, tmp_path):
    with pytest.raises(UserError, match="not in the label inventory"):
        train_classifier([dict(RECORDS[0], relation="Nope")], base, tmp_path, labels=LABELS, **TINY)
    with pytest.raises(UserError, match="pooling"):
        train_classifier(RECORDS, base, tmp_path, labels=LABELS, pooling="mean", **TINY)
    with pytest.raises(UserError, match="cannot load"):
        train_classifier(RECORDS, str(tmp_path / "missing"), tmp_path, labels=LABELS, **TINY)
    with pytest.raises(UserError, match="needs the head and tail"):
        mark_text({"id": 1, "text": "x", "triplets": []})
    with pytest.raises(UserError, match="not a classifier folder"):
        load_classifier(tmp_path)
    (tmp_path / "relcli.json").write_text('{"kind": "generator", "base_model": "x", "labels": ["a"]}')
    with pytest.raises(UserError, match="not a classifier folder"):
        load_classifier(tmp_path)
    (tmp_path / "relcli.json").write_text('{"kind": "generator"}')
    with pytest.raises(UserError, match="relcli.json is unreadable"):
        load_classifier(tmp_path)


def test_cli_finetune_classifier_then_extract(base, tmp_path):
    """`relcli finetune --method classifier` trains on records; `extract` recognises the folder."""
    from typer.testing import CliRunner

    from relcli.cli import app

    data = tmp_path / "train.jsonl"
    data.write_text("".join(json.dumps(r) + "\n" for r in RECORDS))
    labels = tmp_path / "labels.txt"
    labels.write_text("\n".join(LABELS))
    out = tmp_path / "clf"
    runner = CliRunner()
    trained = runner.invoke(app, ["finetune", "--method", "classifier", "-m", base, "-i", str(data), "-o", str(out),
                                  "-l", str(labels), "--epochs", "3", "--lr", "3e-3", "--batch-size", "4",
                                  "--pooling", "entity-start", "--dtype", "float32"])
    assert trained.exit_code == 0, trained.output
    assert json.loads((out / "relcli.json").read_text())["kind"] == "classifier"
    done = runner.invoke(app, ["extract", "-m", str(out), "-i", str(data), "--explain", "--dtype", "float32"])
    assert done.exit_code == 0, done.output
    rows = [json.loads(line) for line in done.stdout.splitlines()]
    assert [r["id"] for r in rows] == [r["id"] for r in RECORDS]
    assert all(r["predicted"] in LABELS and set(r["explain"]["label_scores"]) == set(LABELS) for r in rows)


def test_a_schema_masks_the_probabilities_and_a_margin_favours_the_negative(trained):
    from relcli.schema import from_dict

    classifier = load_classifier(trained["entity-start"][0], device="cpu", dtype="float32")
    schema = from_dict({"negative": "Other", "relations": {"Near(e1,e2)": {"head_types": ["ANIMAL"]},
                                                           "Under(e1,e2)": {"head_types": ["PLANT"]}}})
    animals = [dict(r, head=dict(r["head"], type="ANIMAL")) for r in RECORDS]
    out = list(classifier.predict(animals, explain=True, schema=schema))
    for gold, r in zip(RECORDS, out):
        scores = r["explain"]["label_scores"]  # Under is ruled out for animals: the rest share its probability
        assert list(scores) == ["Near(e1,e2)", "Other"] and sum(scores.values()) == pytest.approx(1.0, abs=1e-4)
        assert r["predicted"] in scores and (r["predicted"] == gold["relation"] or gold["relation"] == "Under(e1,e2)")
    untyped = list(classifier.predict(RECORDS, schema=schema))  # no types: every label fits
    assert [r["predicted"] for r in untyped] == [r["relation"] for r in RECORDS]
    assert {r["predicted"] for r in classifier.predict(RECORDS, negative_margin=1.0)} == {"Other"}
    assert [r["predicted"] for r in classifier.predict(RECORDS, negative_margin=0.0)] == [r["relation"] for r in RECORDS]
    with pytest.raises(UserError, match="not among the labels of the classifier"):
        next(classifier.predict(RECORDS, schema=from_dict({"relations": {"Near(e1,e2)": None}})))  # no_relation


def test_cli_extract_passes_the_schema_and_margin_to_the_classifier(trained, tmp_path):
    from typer.testing import CliRunner

    from relcli.cli import app

    schema = tmp_path / "schema.json"
    schema.write_text(json.dumps({"negative": "Other", "relations": {"Near(e1,e2)": {"head_types": ["PLANT"]},
                                                                     "Under(e1,e2)": None}}))
    animals = "".join(json.dumps(dict(r, head=dict(r["head"], type="ANIMAL"))) + "\n" for r in RECORDS)
    base = ["extract", "-m", str(trained["cls"][0]), "--dtype", "float32", "--schema", str(schema)]
    done = CliRunner().invoke(app, [*base, "--explain"], input=animals)
    assert done.exit_code == 0, done.output
    rows = [json.loads(line) for line in done.stdout.splitlines()]
    assert all(r["predicted"] != "Near(e1,e2)" and set(r["explain"]["label_scores"]) == {"Under(e1,e2)", "Other"} for r in rows)
    cautious = CliRunner().invoke(app, [*base, "--negative-margin", "1"], input=animals)
    assert {json.loads(line)["predicted"] for line in cautious.stdout.splitlines()} == {"Other"}
