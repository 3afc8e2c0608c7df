"""Documents to relation-classification pairs (convert --pairs), and the convert options for them."""

import io
import json
from collections import Counter

import pytest
from typer.testing import CliRunner

from relcli.cli import app
from relcli.errors import UserError
from relcli.formats import Pairing, convert, pairing, to_pairs
from relcli.formats.pairs import sentences
from relcli.records import make_span, validate_record

TEXT = "Ann Lee works for Acme in Paris. Bob lives in Rome.\nNo entities here."


def document(relations, id="d1", **extra):
    spans = [make_span(TEXT, TEXT.index(s), TEXT.index(s) + len(s), t)
             for s, t in (("Ann Lee", "PER"), ("Acme", "ORG"), ("Paris", "LOC"), ("Bob", "PER"), ("Rome", "LOC"))]
    triplets = [{"head": spans[h], "relation": r, "tail": spans[t]} for h, r, t in relations]
    return {"id": id, "text": TEXT, "entities": spans, "triplets": triplets, **extra}


def pairs(records, **options):
    report = Counter()
    return [validate_record(r) for r in to_pairs(records, Pairing(**options), report)], report


@pytest.mark.parametrize(
    "text, expected",
    [
        (TEXT, ["Ann Lee works for Acme in Paris.", "Bob lives in Rome.", "No entities here."]),
        ("Dr. Lee met Sen. Ross on Nov. 22 , 1963 . The U.S. Army came.", ["Dr. Lee met Sen. Ross on Nov. 22 , 1963 .", "The U.S. Army came."]),
        ('He said "Stop." Then 3 left! "Why?" she asked.\r\n\r\nEnd', ['He said "Stop."', "Then 3 left!", '"Why?" she asked.', "End"]),
        ("lower. case and e.g. Fig. 2 do not split", ["lower. case and e.g. Fig. 2 do not split"]),
    ],
)
def test_sentences(text, expected):
    assert [text[s:e] for s, e in sentences(text)] == expected


def test_no_boundary_inside_an_entity():
    text = "Made by Foo Bar. Baz Ltd in Oslo."
    assert len(sentences(text)) == 2
    assert sentences(text, [{"start": 8, "end": 24}]) == [(0, len(text))]


def test_pairs_within_a_sentence_with_gold_and_negative_labels():
    records, report = pairs([document([(0, "works_for", 1), (3, "lives_in", 4)], split="train")])
    assert [(r["head"]["text"], r["tail"]["text"], r["relation"]) for r in records] == [
        ("Ann Lee", "Acme", "works_for"), ("Ann Lee", "Paris", "no_relation"), ("Acme", "Ann Lee", "no_relation"),
        ("Acme", "Paris", "no_relation"), ("Paris", "Ann Lee", "no_relation"), ("Paris", "Acme", "no_relation"),
        ("Bob", "Rome", "lives_in"), ("Rome", "Bob", "no_relation")]
    bob = records[6]
    assert bob["id"] == "d1:3-4" and bob["text"] == "Bob lives in Rome." and bob["document"] == "d1"
    assert bob["offset"] == TEXT.index("Bob") and bob["split"] == "train"
    assert bob["head"] == {"text": "Bob", "start": 0, "end": 3, "type": "PER"}
    assert report == {"pairs with a gold relation": 2, "negative pairs": 6}


def test_gold_across_sentences_is_counted_and_max_distance_is_the_alternative():
    records, report = pairs([document([(0, "knows", 3)])], negative="Other")
    assert "knows" not in {r["relation"] for r in records} and {r["relation"] for r in records} == {"Other"}
    assert report["gold relations not paired (arguments in different sentences)"] == 1
    records, report = pairs([document([(0, "knows", 3)])], max_distance=len(" works for Acme in Paris. "))
    (gold,) = [r for r in records if r["relation"] == "knows"]
    assert gold["text"] == "Ann Lee works for Acme in Paris. Bob lives in Rome."
    assert gold["tail"]["start"] == 33
    across = {(r["head"]["text"], r["tail"]["text"]) for r in records if "\n" not in r["text"] and "Bob" in r["text"] and "Ann" in r["text"]}
    assert ("Acme", "Rome") in across and ("Ann Lee", "Rome") not in across  # gaps 24 and 39


def test_a_pair_with_several_labels_gives_one_record_per_label():
    records, report = pairs([document([(0, "works_for", 1), (0, "owns", 1)])])
    assert [(r["id"], r["relation"]) for r in records[:2]] == [("d1:0-1", "works_for"), ("d1:0-1/2", "owns")]


def test_negative_ratio_is_deterministic_and_carries_over():
    docs = [document([(0, "works_for", 1)], id=f"d{n}") if n % 2 else document([], id=f"d{n}") for n in range(10)]
    first, report = pairs(docs, negative_ratio=1.5, seed=7)
    again, _ = pairs(docs, negative_ratio=1.5, seed=7)
    other, _ = pairs(docs, negative_ratio=1.5, seed=8)
    assert first == again and first != other
    negatives = [r for r in first if r["relation"] == "no_relation"]
    assert len(negatives) == int(1.5 * 5) and report["negative pairs"] == 7
    assert report["negative pairs dropped (--negative-ratio)"] == 5 * 7 + 5 * 8 - 7
    small = document([(0, "works_for", 1)], id="small")
    small["entities"] = small["entities"][:2]  # one gold pair, one negative: budget 3, 2 left over
    records, _ = pairs([small, document([], id="next")], negative_ratio=3)
    assert Counter(r["document"] for r in records) == {"small": 2, "next": 2}
    assert pairs(docs, negative_ratio=0)[1]["negative pairs dropped (--negative-ratio)"] == 75


def test_conll04_records_pair_too():
    doc = {"tokens": ["John", "Smith", "works", "for", "Acme", "Inc", "."], "tags": ["B-Peop", "L-Peop", "O", "O", "B-Org", "L-Org", "O"],
           "relations": [{"head": 0, "tail": 1, "type": "Work_For"}], "orig_id": 5}
    records = list(convert("conll04", [io.BytesIO(json.dumps([doc]).encode())]))
    out, _ = pairs(records)
    assert [(r["id"], r["head"]["type"], r["relation"]) for r in out] == [
        ("conll04-5:0-1", "Peop", "Work_For"), ("conll04-5:1-0", "Org", "no_relation")]


def test_records_without_triplets_are_refused():
    with pytest.raises(UserError, match="record s1: pairing needs end-to-end records with entities"):
        pairs([{"id": "s1", "text": "a b", "head": make_span("a b", 0, 1), "tail": make_span("a b", 2, 3)}])


def test_pairing_options():
    assert pairing("brat", False) is None
    assert pairing("prodigy", True, 5, negative="No-rel") == Pairing(negative="No-rel", seed=5)
    with pytest.raises(UserError, match="applies only to entity pairs"):
        pairing("brat", False, negative_ratio=2.0)
    with pytest.raises(UserError, match=r"does not apply to semeval \(only to brat, conll04"):
        pairing("semeval", True)
    with pytest.raises(UserError, match="unknown format 'yaml'"):
        pairing("yaml", True)


runner = CliRunner()


def test_cli_brat_pairs_with_split_and_counts(tmp_path):
    for n in range(6):
        (tmp_path / f"doc{n}.txt").write_text(TEXT)
        (tmp_path / f"doc{n}.ann").write_text("T1\tPER 0 7\tAnn Lee\nT2\tORG 18 22\tAcme\nT3\tLOC 26 31\tParis\n"
                                              "R1\tworks_for Arg1:T1 Arg2:T2\t\n")
    result = runner.invoke(app, ["convert", "brat", str(tmp_path), "--pairs", "--negative-ratio", "2", "--seed", "3",
                                 "--split-dev", "0.5"])
    assert result.exit_code == 0, result.output
    records = [json.loads(line) for line in result.stdout.splitlines()]
    assert len(records) == 18 and sum(r["relation"] == "works_for" for r in records) == 6
    for document in {r["document"] for r in records}:
        assert len({r["split"] for r in records if r["document"] == document}) == 1
    assert "pairs with a gold relation: 6\nnegative pairs dropped (--negative-ratio): 18\nnegative pairs: 12\nwrote 18 records" in result.stderr


@pytest.mark.parametrize(
    "args, message",
    [
        (["semeval", "x.txt", "--pairs"], "error: --pairs: does not apply to semeval"),
        (["brat", "x", "--max-distance", "5"], "error: --max-distance: applies only to entity pairs"),
        (["semeval", "x.txt", "--annotator", "ann"], "error: --annotator: does not apply to semeval (only to label-studio, prodigy)"),
        (["doccano", "-", "--negative-ratio", "-1", "--pairs"], "Invalid value for '--negative-ratio'"),
    ],
)
def test_cli_refuses_options_that_do_not_apply(args, message):
    result = runner.invoke(app, ["convert", *args], input="")
    assert result.exit_code == 2 and message in result.stderr


def test_cli_error_with_brackets_in_user_text_is_printed_literally():
    line = json.dumps({"text": "a [/] b", "spans": [{"text": "[/]", "start": 0, "end": 3, "label": "X"}], "relations": []})
    result = runner.invoke(app, ["convert", "prodigy", "-"], input=line + "\n")
    assert result.exit_code == 2 and result.stderr == "error: <stdin> line 1: spans[0] text '[/]' differs from text[0:3] 'a ['\n"
