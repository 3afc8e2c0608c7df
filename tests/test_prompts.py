"""Prompt templates and rendering, in the library and through `relcli prompts`."""

from __future__ import annotations

import json

import pytest
from conftest import RECORDS, rc, write_jsonl
from typer.testing import CliRunner

from relcli.cli import app
from relcli.errors import UserError
from relcli.labels import SEMEVAL
from relcli.prompts import BUILTIN, load_template, needs_examples, prompt_records, render

runner = CliRunner()

# Figure 3 of Efeoglu & Paschke (2024), typed out independently of relcli/prompts.py.
FIGURE_3 = (
    "Problem Definition:\n"
    "Relation extraction is to identify the relationship between two entities in a sentence.\n"
    "\n"
    "Question:\n"
    "What is the relation type between tail and head entities according to given relationships below in the "
    "following sentence?\n"
    "\n"
    "Query Sentence: {sentence}\n"
    "Head: {head}\n"
    "Tail: {tail}\n"
    "Relation types: {relation_list}\n"
    "\n"
    "output format: relation_type"
)
SEMEVAL_ORDER = (
    "Cause-Effect(e1,e2), Cause-Effect(e2,e1), Component-Whole(e1,e2), Component-Whole(e2,e1), "
    "Content-Container(e1,e2), Content-Container(e2,e1), Entity-Destination(e1,e2), Entity-Destination(e2,e1), "
    "Entity-Origin(e1,e2), Entity-Origin(e2,e1), Instrument-Agency(e1,e2), Instrument-Agency(e2,e1), "
    "Member-Collection(e1,e2), Member-Collection(e2,e1), Message-Topic(e1,e2), Message-Topic(e2,e1), "
    "Product-Producer(e1,e2), Product-Producer(e2,e1), Other"
)
S1 = RECORDS[0]


def test_simple_is_figure_3_verbatim_with_the_builtin_label_order():
    expected = FIGURE_3.format(sentence=S1["text"], head="configuration", tail="elements", relation_list=SEMEVAL_ORDER)
    assert render(load_template("simple"), S1, SEMEVAL) == expected


def test_compact_marks_the_entities_whichever_comes_first():
    assert render(BUILTIN["compact"], S1, SEMEVAL) == (
        "The system has its greatest application in an arrayed <e1>configuration</e1> of antenna <e2>elements</e2>.\n"
        "Head: configuration\nTail: elements\nRelation:\n"
    )
    swapped = rc("x", "Bob met Alice.", "Alice", "Bob", None)
    assert render(BUILTIN["compact"], swapped, SEMEVAL).startswith("<e2>Bob</e2> met <e1>Alice</e1>.\n")
    assert "Cause-Effect" not in render(BUILTIN["compact"], S1, SEMEVAL)  # a tuned model needs no list


def test_template_file_with_named_fields(tmp_path):
    path = tmp_path / "t.txt"
    path.write_text("[{head_type}] {head} -> [{tail_type}] {tail} in: {marked_sentence} ({relation_list})")
    typed = {**S1, "head": {**S1["head"], "type": "PART"}}
    assert render(load_template(str(path)), typed, ["a", "b"]) == (
        "[PART] configuration -> [] elements in: "
        "The system has its greatest application in an arrayed <e1>configuration</e1> of antenna <e2>elements</e2>. (a, b)"
    )


@pytest.mark.parametrize("text", ["{sentence} {relation}", "{head.text}", "{}", "{sentence"])
def test_unknown_or_malformed_fields_are_user_errors(tmp_path, text):
    path = tmp_path / "t.txt"
    path.write_text(text)
    with pytest.raises(UserError):
        load_template(str(path))


def test_missing_template_file_is_a_user_error():
    with pytest.raises(UserError, match="neither a builtin"):
        load_template("no-such-template.txt")


def test_rag_templates_need_examples_and_show_their_labels():
    assert needs_examples(BUILTIN["rag"]) and needs_examples(BUILTIN["compact-rag"])
    assert not needs_examples(BUILTIN["simple"]) and not needs_examples(BUILTIN["compact"])
    text = render(BUILTIN["rag"], S1, SEMEVAL, examples=RECORDS[1:3])
    assert "Example Sentence: " + RECORDS[1]["text"] in text
    assert "Relation: Other" in text and "Relation: Instrument-Agency(e2,e1)" in text  # each example with its label
    compact = render(BUILTIN["compact-rag"], S1, SEMEVAL, examples=RECORDS[1:2])
    assert compact.startswith("The <e1>child</e1> was")


def test_prompt_records_completion_is_the_gold_label_and_provenance_is_kept():
    out = list(prompt_records(RECORDS, BUILTIN["compact"], SEMEVAL, "compact", "semeval", batch_size=3))
    assert [p["id"] for p in out] == [r["id"] for r in RECORDS]
    assert [p["completion"] for p in out] == [r["relation"] for r in RECORDS]
    assert all(p["template"] == "compact" and p["labels"] == "semeval" for p in out)
    unlabelled = list(prompt_records([{**S1, "relation": None}], BUILTIN["compact"], SEMEVAL, "compact", "semeval"))
    assert unlabelled[0]["completion"] is None


def test_a_gold_label_outside_the_inventory_is_a_user_error():
    with pytest.raises(UserError, match="not in the label inventory"):
        list(prompt_records([{**S1, "relation": "Nope"}], BUILTIN["compact"], SEMEVAL, "compact", "semeval"))


def test_examples_for_gets_batches_and_neighbours_land_in_their_prompts():
    calls = []

    def examples_for(batch):
        calls.append(len(batch))
        return [[RECORDS[-1]] for _ in batch]

    out = list(prompt_records(RECORDS, BUILTIN["rag"], SEMEVAL, "rag", "semeval", examples_for, batch_size=3))
    assert calls == [3, 3, 2] and len(out) == len(RECORDS)
    assert all(RECORDS[-1]["text"] in p["prompt"] for p in out)


# --- relcli prompts ---------------------------------------------------------------------------


def invoke(*args, input=None):
    return runner.invoke(app, ["prompts", *args], input=input)


def test_cli_writes_one_prompt_per_record(tmp_path):
    path = write_jsonl(tmp_path / "r.jsonl", RECORDS)
    result = invoke("-t", "compact", "-l", "semeval", "-i", str(path))
    assert result.exit_code == 0, result.output
    rows = [json.loads(line) for line in result.stdout.splitlines()]
    assert [r["completion"] for r in rows] == [r["relation"] for r in RECORDS]
    assert rows[0]["prompt"] == render(BUILTIN["compact"], S1, SEMEVAL) and rows[0]["labels"] == "semeval"
    assert f"wrote {len(RECORDS)} prompts" in result.stderr


def test_cli_never_takes_labels_from_the_data_unless_asked(tmp_path):
    path = write_jsonl(tmp_path / "r.jsonl", RECORDS)
    result = invoke("-i", str(path))
    assert result.exit_code == 2 and "label inventory is needed" in result.stderr and result.stdout == ""
    result = invoke("-i", str(path), "--labels-from-data")
    assert result.exit_code == 0, result.output
    rows = [json.loads(line) for line in result.stdout.splitlines()]
    gold = sorted({r["relation"] for r in RECORDS})
    assert rows[0]["labels"] == gold and f"Relation types: {', '.join(gold)}\n" in rows[0]["prompt"]


def test_cli_label_file_is_recorded_as_a_list(tmp_path):
    labels = tmp_path / "labels.txt"
    labels.write_text("Other\nCause-Effect(e2,e1)\n")
    path = write_jsonl(tmp_path / "r.jsonl", [RECORDS[3], RECORDS[6]])
    result = invoke("-i", str(path), "-l", str(labels))
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout.splitlines()[0])["labels"] == ["Other", "Cause-Effect(e2,e1)"]
    result = invoke("-i", str(write_jsonl(tmp_path / "all.jsonl", RECORDS)), "-l", str(labels))
    assert result.exit_code == 2 and "not in the label inventory" in result.stderr


def test_cli_user_errors_are_one_line(tmp_path):
    path = write_jsonl(tmp_path / "r.jsonl", RECORDS)
    for args in (["-t", "{nope}"], ["-t", "rag"], ["-t", "missing.txt"]):
        result = invoke("-i", str(path), "-l", "semeval", *args)
        assert result.exit_code == 2, (args, result.output)
        assert result.stderr.startswith("error:") and result.stderr.count("\n") == 1, result.stderr
    bad = tmp_path / "bad.jsonl"
    bad.write_text(json.dumps(RECORDS[0]) + "\n{oops\n")
    result = invoke("-i", str(bad), "-l", "semeval")
    assert result.exit_code == 2 and "line 2" in result.stderr


def test_cli_help_shows_an_example():
    result = runner.invoke(app, ["prompts", "--help"])
    assert result.exit_code == 0 and "relcli prompts --template compact" in result.stdout


def test_definitions_template_lists_the_schema_and_records_its_text(tmp_path):
    from relcli.prompts import prompt_stream, with_definitions
    from relcli.schema import from_dict

    schema = from_dict({"negative": "Other", "relations": {
        "Cause-Effect(e2,e1)": {"description": "the {tail} causes the head", "head_types": ["event"]},
        "Component-Whole(e2,e1)": "the tail is a part of the head"}})
    text = with_definitions(BUILTIN["definitions"], schema)
    assert "{relation_definitions}" not in text and "{sentence}" in text
    prompt = render(text, S1, schema.labels)
    question, query = FIGURE_3.split("\n\nQuery Sentence:")
    assert prompt.startswith(question + "\n\nRelation definitions:\n"
                             "Cause-Effect(e2,e1): the {tail} causes the head (head: event)\n"  # braces of a description stay text
                             "Component-Whole(e2,e1): the tail is a part of the head\n"
                             "Other: none of the relations above holds between head and tail\n\nQuery Sentence:")
    fields = dict(sentence=S1["text"], head="configuration", tail="elements", relation_list="Cause-Effect(e2,e1), Component-Whole(e2,e1), Other")
    assert prompt.endswith(("Query Sentence:" + query).format(**fields))
    path = tmp_path / "schema.json"
    path.write_text(json.dumps({"negative": "Other", "relations": {"Component-Whole(e2,e1)": "part of"}}))
    out = list(prompt_stream([S1], template="definitions", schema=path))
    assert out[0]["labels"] == ["Component-Whole(e2,e1)", "Other"] and out[0]["completion"] == "Component-Whole(e2,e1)"
    assert "Component-Whole(e2,e1): part of" in out[0]["template"]  # the filled text, as an adapter records it
    assert load_template(out[0]["template"]) == out[0]["template"] and "Relation definitions" in out[0]["prompt"]
    custom = tmp_path / "t.txt"
    custom.write_text("{relation_definitions}\n{marked_sentence}\nRelation:")
    assert list(prompt_stream([S1], template=str(custom), schema=path))[0]["prompt"].startswith("Component-Whole(e2,e1): part of\n")


def test_definitions_need_a_schema_and_a_schema_needs_pairs(tmp_path):
    from relcli.prompts import prompt_stream

    with pytest.raises(UserError, match="give a relation schema") as caught:
        prompt_stream([S1], template="definitions", labels="semeval")
    assert caught.value.param == "schema"
    path = tmp_path / "schema.json"
    path.write_text('{"relations": {"A": null}}')
    with pytest.raises(UserError, match="not both"):
        prompt_stream([S1], template="simple", labels="semeval", schema=path)
    with pytest.raises(UserError, match="for triplets give the labels"):
        prompt_stream([S1], task="triplets", template="simple", schema=path)
    with pytest.raises(UserError, match="either from the data"):
        prompt_stream([S1], schema=path, labels_from_data=True)
    with pytest.raises(UserError, match="no {examples} field") as caught:
        prompt_stream([S1], template="simple", labels="semeval", index=tmp_path)
    assert caught.value.param == "index"
