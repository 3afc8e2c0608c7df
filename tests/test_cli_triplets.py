"""End-to-end triplets through the CLI: prompts, finetune (rebel and json, decoder and seq2seq),
extract, on tiny random models built from configs with a byte-level tokenizer."""

import json
import re
from pathlib import Path

import pytest
from scripted import byte_tokenizer
from typer.testing import CliRunner

from relcli.cli import app
from relcli.triplets import REBEL_TOKENS

DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"
RELATIONS = ["Live_In", "Located_In", "OrgBased_In"]


def span(text, surface):
    start = text.index(surface)
    return {"text": surface, "start": start, "end": start + len(surface), "type": None}


def record(id, text, *triples):
    return {"id": id, "text": text,
            "triplets": [{"head": span(text, h), "relation": r, "tail": span(text, t)} for h, r, t in triples]}


RECORDS = [
    record("d1", "DAYTON , Ohio ( AP )", ("DAYTON", "Located_In", "Ohio"), ("AP", "OrgBased_In", "Ohio")),
    record("d2", "Ann , 50 , of Bethany , Conn. , died .", ("Ann", "Live_In", "Bethany"), ("Bethany", "Located_In", "Conn.")),
    record("d3", "Nothing related here .", ),
    record("d4", "Bob of Paris", ("Bob", "Live_In", "Paris")),
]


def run(*args, input=None):
    result = CliRunner().invoke(app, [str(a) for a in args], input=input, catch_exceptions=False)
    return result


def jsonl(records):
    return "".join(json.dumps(r) + "\n" for r in records)


def read(path):
    return [json.loads(line) for line in Path(path).read_text().splitlines()]


@pytest.fixture(scope="module")
def models(tmp_path_factory):
    """Folders of a tiny llama and a tiny T5 (with their tokenizer), as `--model DIR` takes them."""
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM, T5Config, T5ForConditionalGeneration

    root = tmp_path_factory.mktemp("models")
    tokenizer = byte_tokenizer()
    torch.manual_seed(0)
    llama = LlamaForCausalLM(LlamaConfig(
        vocab_size=len(tokenizer), hidden_size=16, intermediate_size=32, num_hidden_layers=1, num_attention_heads=2,
        num_key_value_heads=1, pad_token_id=0, eos_token_id=1, bos_token_id=1, tie_word_embeddings=False))
    t5 = T5ForConditionalGeneration(T5Config(
        vocab_size=len(tokenizer), d_model=16, d_ff=32, d_kv=8, num_layers=1, num_heads=2,
        pad_token_id=0, eos_token_id=1, decoder_start_token_id=0))
    folders = {}
    for name, model in (("llama", llama), ("t5", t5)):
        folders[name] = root / name
        model.save_pretrained(folders[name])
        tokenizer.save_pretrained(folders[name])
    return folders


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    root = tmp_path_factory.mktemp("data")
    (root / "train.jsonl").write_text(jsonl(RECORDS))
    (root / "relations.txt").write_text("\n".join(RELATIONS) + "\n")
    return root


@pytest.mark.parametrize("style", ["rebel", "json"])
def test_prompts_triplets(files, style):
    result = run("prompts", "--task", "triplets", "--format", style, "-i", files / "train.jsonl", "--labels-from-data")
    assert result.exit_code == 0, result.output
    prompts = [json.loads(line) for line in result.stdout.splitlines()]
    assert [p["id"] for p in prompts] == ["d1", "d2", "d3", "d4"]
    assert all(p["template"] == f"triplets-{style}" and p["labels"] == RELATIONS for p in prompts)
    assert "Relations: Live_In, Located_In, OrgBased_In" in prompts[0]["prompt"]
    assert prompts[2]["completion"] == ("" if style == "rebel" else "[]")
    if style == "rebel":
        assert prompts[0]["completion"] == "<triplet> DAYTON <subj> Ohio <obj> Located_In <triplet> AP <subj> Ohio <obj> OrgBased_In"


def test_prompts_triplets_compact_and_shots(files):
    result = run("prompts", "--task", "triplets", "-t", "compact", "-l", files / "relations.txt",
                 "--shots", "1", "--shots-from", files / "train.jsonl", "-i", files / "train.jsonl")
    assert result.exit_code == 0, result.output
    prompts = [json.loads(line) for line in result.stdout.splitlines()]
    assert prompts[0]["template"] == "triplets-json-compact" and "Relations:" not in prompts[0]["prompt"]
    assert prompts[0]["prompt"].startswith("Text: ") and prompts[0]["prompt"].endswith("Triplets:\n")
    # The first record is never its own demonstration: it gets the second one.
    assert RECORDS[1]["text"] in prompts[0]["prompt"] and RECORDS[0]["text"] in prompts[1]["prompt"]


@pytest.mark.parametrize("args, message", [
    ([], "--labels: a label inventory is needed"),
    (["--labels-from-data", "--shots", "2"], "--shots: demonstrations need an index"),
    (["--labels-from-data", "--format", "xml"], "--format: unknown triplet format 'xml'"),
    (["--labels-from-data", "-t", "rag"], "--template: with the triplets task the template is simple or compact"),
    (["-l", "RELATIONS"], "relation 'OrgBased_In' is not in the inventory"),
])
def test_prompts_triplets_user_errors(files, args, message):
    (files / "two.txt").write_text("Live_In\nLocated_In\n")
    args = [files / "two.txt" if a == "RELATIONS" else a for a in args]
    result = run("prompts", "--task", "triplets", "-i", files / "train.jsonl", *args)
    assert result.exit_code == 2 and message in result.output, result.output


def test_rc_prompts_still_need_pairs(files):
    result = run("prompts", "-i", files / "train.jsonl", "--labels-from-data")
    assert result.exit_code == 2 and "needs RC records" in result.output


def finetune(models, train, tmp, model, style, *extra):
    prompts = tmp / f"{style}.prompts.jsonl"
    assert run("prompts", "--task", "triplets", "--format", style, "-t", "compact", "--labels-from-data",
               "-i", train, "-o", prompts).exit_code == 0
    adapter = tmp / f"{model}-{style}"
    result = run("finetune", "-m", models[model], "-i", prompts, "-o", adapter, "--max-steps", "2",
                 "--batch-size", "2", "--lora-r", "2", "--lr", "1e-2", "--dtype", "float32", *extra)
    assert result.exit_code == 0, result.output
    return adapter


@pytest.mark.parametrize("model", ["llama", "t5"])
@pytest.mark.parametrize("style", ["rebel", "json"])
def test_finetune_then_extract(models, files, tmp_path, model, style):
    adapter = finetune(models, files / "train.jsonl", tmp_path, model, style)
    meta = json.loads((adapter / "relcli.json").read_text())
    assert (meta["task"], meta["style"], meta["compact"]) == ("triplets", style, True) and meta["labels"] == RELATIONS

    out = tmp_path / "preds.jsonl"
    result = run("extract", "-m", adapter, "-i", files / "train.jsonl", "-o", out, "--batch-size", "3",
                 "--max-new-tokens", "12", "--explain")
    assert result.exit_code == 0, result.output
    preds = read(out)
    assert [p["id"] for p in preds] == ["d1", "d2", "d3", "d4"]
    for pred, gold in zip(preds, RECORDS):
        assert pred["triplets"] == gold["triplets"]
        assert isinstance(pred["predicted_triplets"], list)
        assert all(t["relation"] in RELATIONS for t in pred["predicted_triplets"])
        assert isinstance(pred["explain"]["raw"], str) and pred["explain"]["malformed"] >= 0
    total = sum(p["explain"]["malformed"] for p in preds)
    assert f"{total} malformed triplet fragment(s) in 4 generations" in result.output
    assert run("score", "-i", out, "--scheme", "triplets").exit_code == 0


@pytest.mark.parametrize("model, tied", [("llama", False), ("t5", True)])
def test_rebel_markers_are_trained_and_reload(models, files, tmp_path, model, tied):
    """The REBEL markers become tokens of the saved tokenizer, their embedding rows are trained and
    saved with the adapter (also the output layer's when untied), and the reloaded model uses them."""
    import torch
    from safetensors.torch import load_file

    from relcli.models import load_model

    adapter = finetune(models, files / "train.jsonl", tmp_path, model, "rebel")
    loaded = load_model(str(adapter), dtype="float32")
    ids = loaded.tokenizer.convert_tokens_to_ids(REBEL_TOKENS)
    assert ids == [259, 260, 261] and len(loaded.tokenizer) == 262
    saved = load_file(adapter / "adapter_model.safetensors")
    assert not any("embed_tokens.weight" in k or k.endswith("shared.weight") for k in saved), "whole embeddings saved"
    rows = {("output" if "lm_head" in k else "input"): v for k, v in saved.items() if "trainable_tokens" in k}
    assert sorted(rows) == (["input"] if tied else ["input", "output"])
    torch.testing.assert_close(loaded.model.get_input_embeddings().weight[ids], rows["input"])
    torch.testing.assert_close(loaded.model.get_output_embeddings().weight[ids], rows["output" if not tied else "input"])


@pytest.mark.parametrize("scheduler", ["constant", "constant_with_warmup", "linear", "cosine", "cosine_with_restarts", "polynomial"])
def test_every_scheduler_and_label_smoothing(models, files, tmp_path, scheduler):
    adapter = finetune(models, files / "train.jsonl", tmp_path, "llama", "json", "--scheduler", scheduler, "--label-smoothing", "0.1")
    assert json.loads((adapter / "relcli.json").read_text())["training"]["scheduler"] == scheduler


def test_unknown_scheduler_is_one_line_error(models, files, tmp_path):
    prompts = tmp_path / "p.jsonl"
    run("prompts", "--task", "triplets", "--labels-from-data", "-i", files / "train.jsonl", "-o", prompts)
    result = run("finetune", "-m", models["llama"], "-i", prompts, "-o", tmp_path / "a", "--scheduler", "sawtooth")
    assert result.exit_code == 2 and "sawtooth" in result.output


def test_bad_completion_is_refused(models, files, tmp_path):
    prompts = tmp_path / "p.jsonl"
    bad = {"id": "x", "prompt": "Text: a\nTriplets:\n", "completion": "[{\"head\": \"a\"", "template": "triplets-json",
           "labels": RELATIONS}
    prompts.write_text(json.dumps(bad) + "\n")
    result = run("finetune", "-m", models["llama"], "-i", prompts, "-o", tmp_path / "a")
    assert result.exit_code == 2 and "not a clean json linearisation" in result.output


def test_base_model_few_shot_json(models, files, tmp_path):
    """A base model with --task triplets: shots from a file, the inventory from --labels."""
    out = tmp_path / "preds.jsonl"
    args = ["extract", "-m", models["llama"], "--task", "triplets", "-l", files / "relations.txt",
            "--shots", "2", "--shots-from", files / "train.jsonl", "-i", files / "train.jsonl",
            "--max-new-tokens", "8", "--explain"]
    result = run(*args, "-o", out)
    assert result.exit_code == 0, result.output
    assert [p["id"] for p in read(out)] == ["d1", "d2", "d3", "d4"]
    # Random models answer garbage: every record counts one malformed answer (no JSON array).
    assert "4 malformed triplet fragment(s) in 4 generations" in result.output
    assert run("extract", "-m", models["llama"], "--task", "triplets", "-i", files / "train.jsonl").exit_code == 2


def test_extractor_parses_in_input_order_and_counts_malformed(monkeypatch):
    from types import SimpleNamespace

    import relcli.triplet_extract as triplet_extract

    answers = {
        RECORDS[0]["text"]: '[{"head":"DAYTON","relation":"Located_In","tail":"Ohio"}]',
        RECORDS[1]["text"]: '[{"head":"Ann","relation":"Born_In","tail":"Bethany"}]',  # not in the inventory
        RECORDS[2]["text"]: "no idea",
        RECORDS[3]["text"]: '[{"head":"Bob","relation":"Live_In","tail":"Paris"},{"head":',  # truncated
    }

    def fake_generate(model, tokenizer, prompts, **kwargs):
        return [next(a for text, a in answers.items() if f"Text: {text}\n" in p) for p in prompts]

    monkeypatch.setattr(triplet_extract, "generate_triplets", fake_generate)
    tokenizer = SimpleNamespace(convert_tokens_to_ids=lambda tokens: [None] * len(tokens), unk_token_id=None)
    loaded = SimpleNamespace(model=None, tokenizer=tokenizer, is_seq2seq=True)
    extractor = triplet_extract.TripletExtractor(loaded, "json", RELATIONS, batch_size=2)
    preds = list(extractor.predict(iter(RECORDS), chunk=3))
    assert [p["id"] for p in preds] == ["d1", "d2", "d3", "d4"]
    assert preds[0]["predicted_triplets"] == [RECORDS[0]["triplets"][0]]
    assert [len(p["predicted_triplets"]) for p in preds] == [1, 0, 0, 1]
    assert extractor.malformed == 3 and extractor.records == 4


@pytest.mark.skipif(not (DATA / "conll04").is_dir(), reason="CoNLL04 data not found at ../shared/data/conll04")
def test_conll04_records_end_to_end(models, tmp_path):
    """A few real CoNLL04 records: convert, prompts, finetune (2 steps), extract, score."""
    train = tmp_path / "train.jsonl"
    result = run("convert", "conll04", DATA / "conll04" / "conll04_dev.json", "-o", train)
    assert result.exit_code == 0, result.output
    few = tmp_path / "few.jsonl"
    few.write_text("".join(train.read_text().splitlines(keepends=True)[:6]))
    adapter = finetune(models, few, tmp_path, "llama", "json")
    out = tmp_path / "preds.jsonl"
    assert run("extract", "-m", adapter, "-i", few, "-o", out, "--max-new-tokens", "8").exit_code == 0
    result = run("score", "-i", out, "--scheme", "triplets", "--format", "json")
    assert result.exit_code == 0 and json.loads(result.stdout)["n"] == 6


# --- copy constraints and long documents ------------------------------------------------------

from relcli.triplet_extract import windows  # noqa: E402

CONTEXT = 128  # positions of the small-context model; the document below is over 4x longer


def long_document():
    """One end-to-end record of 30 sentences (over 4x CONTEXT tokens, one per character), one
    Live_In triplet each, every name unique so offsets are unambiguous."""
    people = ["Ann", "Bob", "Cyd", "Dee", "Eve", "Fay", "Gus", "Hal", "Ida", "Jo", "Kim", "Lu", "Max", "Ned", "Oz",
              "Pat", "Quin", "Roy", "Sue", "Tom", "Uma", "Val", "Wes", "Xia", "Yul", "Zed", "Abe", "Bea", "Cal", "Dot"]
    places = ["Rome", "Oslo", "Lima", "Kyiv", "Bern", "Doha", "Riga", "Baku", "Suva", "Apia", "Male", "Lome", "Nuuk",
              "Vaduz", "Minsk", "Sofia", "Dakar", "Hanoi", "Paris", "Quito", "Accra", "Cairo", "Dili", "Tunis", "Seoul",
              "Tokyo", "Delhi", "Perth", "Turin", "Cork"]
    text = " ".join(f"{p} lives in {c} ." for p, c in zip(people, places))
    return record("long", text, *[(p, "Live_In", c) for p, c in zip(people, places)])


@pytest.fixture(scope="module")
def small_context(tmp_path_factory):
    """A tiny llama that reads at most CONTEXT positions, with the byte tokenizer."""
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM

    tokenizer = byte_tokenizer()
    torch.manual_seed(0)
    model = LlamaForCausalLM(LlamaConfig(
        vocab_size=len(tokenizer), hidden_size=16, intermediate_size=32, num_hidden_layers=1, num_attention_heads=2,
        num_key_value_heads=1, pad_token_id=0, eos_token_id=1, bos_token_id=1, max_position_embeddings=CONTEXT))
    folder = tmp_path_factory.mktemp("small-context")
    model.save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    return folder


@pytest.mark.parametrize("text, size, stride", [
    (long_document()["text"], 80, 50), (long_document()["text"], 80, 80), ("a" * 50 + " b", 20, 10),
    ("one two three four five six", 10, 7), ("short", 80, 50), ("", 10, 5), ("  spaced   out  words ", 6, 3),
])
def test_windows_cover_the_text_at_word_boundaries(text, size, stride):
    spans = windows(text, size, stride)
    assert spans[0][0] == 0 and spans[-1][1] == len(text)
    assert all(b[0] > a[0] and b[0] <= a[1] + 1 for a, b in zip(spans, spans[1:]))  # forward, no gap
    assert all(end - start <= size for start, end in spans)
    for start, end in spans:
        # A window starts and ends at a word boundary, unless a word is longer than half a window.
        for i in (start, end):
            if 0 < i < len(text) and not text[i - 1].isspace() and not text[i].isspace():
                assert " " not in text[max(i - size // 2, 0) : i], (text, spans, i)
    covered = set().union(*(range(s, e) for s, e in spans))
    assert all(i in covered for i, c in enumerate(text) if not c.isspace())


def window_answers(monkeypatch, doc, max_new_tokens):
    """Make generation answer each window with the gold triplets lying inside it (JSON), checking
    that every prompt fits in the model's context; return the windows asked about."""
    import relcli.triplet_extract as triplet_extract
    from relcli.triplets import linearize

    asked = []
    tokenizer = byte_tokenizer()

    def fake_generate(model, tok, prompts, **kwargs):
        answers = []
        for prompt in prompts:
            assert len(tokenizer(prompt).input_ids) + max_new_tokens <= CONTEXT
            window = prompt.split("Text: ", 1)[1].rsplit("\nTriplets:\n", 1)[0]
            start = doc["text"].index(window)
            asked.append((start, start + len(window)))
            inside = [t for t in doc["triplets"] if start <= min(t["head"]["start"], t["tail"]["start"])
                      and max(t["head"]["end"], t["tail"]["end"]) <= start + len(window)]
            answers.append(linearize(inside, "json"))
        return answers

    monkeypatch.setattr(triplet_extract, "generate_triplets", fake_generate)
    return asked


def test_long_document_in_windows(small_context, tmp_path, monkeypatch):
    """A document 4x longer than the model's context, read in windows: the triplets of its first and
    last windows come back with offsets into the document, and those seen by two overlapping
    windows come back once."""
    doc = long_document()
    assert len(byte_tokenizer()(doc["text"]).input_ids) > 4 * CONTEXT
    asked = window_answers(monkeypatch, doc, max_new_tokens=8)
    (tmp_path / "relations.txt").write_text("Live_In\n")
    out = tmp_path / "preds.jsonl"
    result = run("extract", "-m", small_context, "--task", "triplets", "-t", "compact", "-l", tmp_path / "relations.txt",
                 "--max-new-tokens", "8", "--window", "80", "--stride", "50", "--explain", "-o", out, input=jsonl([doc]))
    assert result.exit_code == 0, result.output
    (pred,) = read(out)
    asked.sort()  # generation runs over length-sorted prompts
    assert asked == [(w["start"], w["end"]) for w in pred["explain"]["windows"]]
    assert asked[0][0] == 0 and max(end for _, end in asked) == len(doc["text"])
    first = [t for t in doc["triplets"] if t["tail"]["end"] <= asked[0][1]]
    last = [t for t in doc["triplets"] if t["head"]["start"] >= max(asked)[0]]
    assert first and last
    predicted = pred["predicted_triplets"]
    assert all(t in predicted for t in first + last)
    assert sorted(predicted, key=lambda t: t["head"]["start"]) == doc["triplets"]  # all, each once
    found = sum(len(json.loads(w["raw"])) for w in pred["explain"]["windows"])
    assert found > len(doc["triplets"])  # some were seen twice and merged
    n = len(doc["triplets"])
    assert f"0 of {n} predicted triplets name an entity not found in the text (0 of {2 * n} entities; copy constraint on)" in result.output
    assert "cut to fit" not in result.output
    scored = run("score", "-i", out, "--scheme", "triplets", "--format", "json")
    assert json.loads(scored.stdout)["strict"]["f1"] == 100.0


def test_long_document_without_window_is_cut_to_the_context(small_context, tmp_path, monkeypatch):
    doc = long_document()
    asked = window_answers(monkeypatch, doc, max_new_tokens=8)
    (tmp_path / "relations.txt").write_text("Live_In\n")
    result = run("extract", "-m", small_context, "--task", "triplets", "-t", "compact", "-l", tmp_path / "relations.txt",
                 "--max-new-tokens", "8", "--explain", input=jsonl([doc]))
    assert result.exit_code == 0, result.output
    (pred,) = [json.loads(line) for line in result.stdout.splitlines()]
    ((start, end),) = asked
    assert start == 0 and pred["explain"]["read_to"] == end < len(doc["text"])
    assert " " in doc["text"][end - 1 : end + 1]  # cut between words
    assert pred["predicted_triplets"] == [t for t in doc["triplets"] if t["tail"]["end"] <= end]
    assert f"1 text(s) longer than the model's context of {CONTEXT} tokens cut to fit" in result.output


@pytest.mark.parametrize("style", ["json", "rebel"])
def test_windows_with_real_generation(small_context, tmp_path, style):
    """No stand-in: a random model generates in every window under the copy constraint."""
    doc = long_document()
    (tmp_path / "relations.txt").write_text("Live_In\n")
    result = run("extract", "-m", small_context, "--task", "triplets", "-t", "compact", "-l", tmp_path / "relations.txt",
                 "--format", style, "--max-new-tokens", "12", "--window", "80", "--batch-size", "4", "--explain",
                 input=jsonl([doc]))
    assert result.exit_code == 0, result.output
    (pred,) = [json.loads(line) for line in result.stdout.splitlines()]
    windows_read = pred["explain"]["windows"]
    assert len(windows_read) > 4 and windows_read[-1]["end"] == len(doc["text"])
    for t in pred["predicted_triplets"]:
        for role in ("head", "tail"):
            assert doc["text"][t[role]["start"] : t[role]["end"]] == t[role]["text"]
    assert re.search(r"0 of \d+ predicted triplets name an entity not found in the text \(0 of \d+ entities; copy constraint on\)",
                     result.output)
    assert f"{len(windows_read)} generations" in result.output


@pytest.mark.parametrize("args, message", [
    (["--stride", "5"], "--stride: a stride needs a window"),
    (["--window", "10", "--stride", "20"], "--stride: a stride of 20 is longer than the window (10)"),
    (["--max-new-tokens", str(CONTEXT)], f"--max-new-tokens: {CONTEXT} new tokens do not fit in the model's context of {CONTEXT} tokens"),
])
def test_window_user_errors(small_context, tmp_path, args, message):
    (tmp_path / "relations.txt").write_text("Live_In\n")
    result = run("extract", "-m", small_context, "--task", "triplets", "-l", tmp_path / "relations.txt", *args,
                 input=jsonl([long_document()]))
    assert result.exit_code == 2 and message in result.output, result.output


@pytest.mark.parametrize("args, message", [
    (["-m", "SMALL", "-l", "semeval", "--window", "100"], "--window: window do(es) not apply to a relation-classification generator"),
    (["-m", "SMALL", "-l", "semeval", "--no-copy"], "--copy: copy do(es) not apply to a relation-classification generator"),
    (["--decode", "knn", "--no-copy"], "--copy: copy do(es) not apply to the kNN label vote"),
    (["--decode", "knn", "--no-chat"], "--chat: chat do(es) not apply to the kNN label vote"),  # an explicit no is a choice
])
def test_triplet_options_are_refused_elsewhere(small_context, args, message):
    args = [small_context if a == "SMALL" else a for a in args]
    result = run("extract", *args, input=jsonl([long_document()]))
    assert result.exit_code == 2 and message in result.output, result.output


def test_copy_constraint_counts_entities_not_in_the_text(small_context, tmp_path):
    """A scripted model wants a head that is not in the text: without copy constraints the triplet
    keeps it (null offsets, counted); with them it copies a span instead: 0 not in the text."""
    from scripted import Scripted

    from relcli.models import load_model
    from relcli.triplet_extract import TripletExtractor

    loaded = load_model(str(small_context), dtype="float32")
    doc = record("r", "Ann met Bob .")
    encode = lambda s: loaded.tokenizer(s, add_special_tokens=False).input_ids  # noqa: E731
    wanted = encode('[{"head":"Xed","relation":"Live_In","tail":"Bob"}]')
    second = encode('[{"head":"Ann","relation":"Live_In","tail":"Bob"}]')
    script = [[w] if w == s else [w, s] for w, s in zip(wanted, second)]
    counts = {}
    for copy in (False, True):
        extractor = TripletExtractor(loaded, "json", RELATIONS, compact=True, max_new_tokens=len(script) + 1, copy=copy)
        with Scripted(loaded.model, script + [[loaded.tokenizer.eos_token_id]], len(loaded.tokenizer)):
            (pred,) = extractor.predict([doc])
        counts[copy] = (extractor.absent_triplets, extractor.absent_entities, extractor.triplets,
                        [t["head"]["text"] for t in pred["predicted_triplets"]])
    assert counts == {False: (1, 1, 1, ["Xed"]), True: (0, 0, 1, ["Ann"])}
