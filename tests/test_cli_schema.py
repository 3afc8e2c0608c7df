"""`relcli schema`, `--schema` on prompts / extract / score, `score --calibrate` and
`extract --negative-margin`, through the real CLI."""

from __future__ import annotations

import json

import pytest
from test_calibration import synthetic
from test_extract import MANY, SCHEMA, typed
from typer.testing import CliRunner

from relcli.cli import app
from relcli.records import make_span
from relcli.schema import Schema, from_dict, load

runner = CliRunner()


def pair(head_type, tail_type, relation=None, text="Ann works for Acme in Paris."):
    return {"id": "p", "text": text, "head": make_span(text, 0, 3, head_type), "tail": make_span(text, 14, 18, tail_type),
            "relation": relation}


def jsonl(rows) -> str:
    return "".join(json.dumps(row) + "\n" for row in rows)


def one_error(result, *messages):
    assert result.exit_code == 2, result.output
    assert result.stderr.startswith("error: ") and result.stderr.count("\n") == 1 and result.stdout == ""
    for message in messages:
        assert message in result.stderr, result.stderr


@pytest.mark.parametrize("content, message", [
    ("{", "is not valid JSON"), ("[1, 2]", "must be an object with 'relations'"),
    ('{"relations": {}}', "'relations' must map"), (None, "no such schema file"),
])
def test_a_bad_schema_file_is_one_error_line_with_exit_2(tmp_path, content, message):
    path = tmp_path / "schema.json"
    if content is not None:
        path.write_text(content)
    for command in (["score"], ["prompts"], ["extract", "--decode", "knn", "--index", str(tmp_path)]):
        one_error(runner.invoke(app, [*command, "--schema", str(path)], input=""), "error: --schema: ", message)


def test_schema_drafts_json_on_stdout_or_to_a_file(tmp_path):
    data = jsonl([pair("Peop", "Org", "Work_For"), pair("Peop", "Peop", "Kill"), pair("Org", "Org", "no_relation")])
    result = runner.invoke(app, ["schema"], input=data)
    assert result.exit_code == 0, result.output
    drafted = json.loads(result.stdout)
    assert list(drafted["relations"]) == ["Kill", "Work_For"] and drafted["negative"] == "no_relation"
    assert drafted["relations"]["Work_For"]["seen"] == {"count": 1, "head_types": {"Peop": 1}, "tail_types": {"Org": 1}}
    out = tmp_path / "schema.json"
    assert runner.invoke(app, ["schema", "-o", str(out), "--negative", "Kill"], input=data).exit_code == 0
    assert list(json.loads(out.read_text())["relations"]) == ["Work_For", "no_relation"]
    assert isinstance(load(out), Schema)
    one_error(runner.invoke(app, ["schema"], input='{"id": 1}\n'), "error: line 1:")


def test_score_takes_the_inventory_and_negative_from_the_schema(tmp_path):
    path = tmp_path / "schema.yaml"
    path.write_text("negative: none\nrelations:\n  per:a: {}\n  per:b: {}\n")
    rows = [dict(pair(None, None, gold), predicted=p) for gold, p in
            [("per:a", "per:a"), ("per:b", "none"), ("none", "oops"), ("none", "per:b")]]
    result = runner.invoke(app, ["score", "--schema", str(path), "--format", "json"], input=jsonl(rows))
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert report["negative"] == "none" and report["invalid"]["count"] == 1  # oops
    assert report["micro"]["correct"] == 1 and report["micro"]["guessed"] == 3 and report["micro"]["gold"] == 2
    one_error(runner.invoke(app, ["score", "--schema", str(path), "-l", "tacred"], input=jsonl(rows)), "--schema: ", "not both")
    one_error(runner.invoke(app, ["score", "--schema", str(path), "--negative", "no_relation"], input=jsonl(rows)),
              "--negative: the schema's negative label is 'none'")


def test_score_calibrate_reports_the_margin_and_extract_applies_it(tmp_path):
    records = [dict(pair(None, None), **r) for r in synthetic(300, seed=5)]
    result = runner.invoke(app, ["score", "--calibrate", "--format", "json"], input=jsonl(records))
    assert result.exit_code == 0, result.output
    found = json.loads(result.stdout)
    assert found["after"]["f1"] > found["before"]["f1"] and found["margin"] > 0
    table = runner.invoke(app, ["score", "--calibrate"], input=jsonl(records))
    assert table.exit_code == 0 and table.stdout == ""
    assert f"--negative-margin {found['margin']}" in table.stderr and "argmax of label scores" in table.stderr
    one_error(runner.invoke(app, ["score", "--calibrate"], input=jsonl([dict(pair(None, None, "A"), predicted="A")])),
              "no explain.label_scores")
    one_error(runner.invoke(app, ["score", "--calibrate", "--confusion", str(tmp_path / "c.png")], input=jsonl(records)),
              "--confusion: ")
    one_error(runner.invoke(app, ["score", "--calibrate", "--scheme", "semeval"], input=jsonl(records)), "--scheme: ")


def test_prompts_with_definitions(tmp_path):
    path = tmp_path / "schema.json"
    path.write_text(json.dumps({"relations": {"Work_For": {"description": "employment", "head_types": ["Peop"]}}}))
    result = runner.invoke(app, ["prompts", "-t", "definitions", "--schema", str(path)],
                           input=jsonl([pair("Peop", "Org", "Work_For"), pair("Org", "Org", "no_relation")]))
    assert result.exit_code == 0, result.output
    rows = [json.loads(line) for line in result.stdout.splitlines()]
    assert "Work_For: employment (head: Peop)\nno_relation: none of the" in rows[0]["prompt"]
    assert rows[0]["labels"] == ["Work_For", "no_relation"] and rows[1]["completion"] == "no_relation"
    one_error(runner.invoke(app, ["prompts", "-t", "definitions", "-l", "semeval"], input=""), "--schema: ", "give a relation schema")


def test_extract_with_a_schema_and_a_negative_margin(tiny_llama, tmp_path):
    path = tmp_path / "schema.json"
    path.write_text(json.dumps(SCHEMA))
    schema = from_dict(SCHEMA)
    records = typed(MANY[:8])
    base = ["extract", "-m", tiny_llama, "-t", "compact", "--dtype", "float32", "--batch-size", "4"]
    result = runner.invoke(app, [*base, "--schema", str(path), "--explain"], input=jsonl(records))
    assert result.exit_code == 0, result.output
    rows = [json.loads(line) for line in result.stdout.splitlines()]
    assert all(r["predicted"] in schema.allowed(r) and set(r["explain"]["label_scores"]) == set(schema.allowed(r)) for r in rows)
    scored = runner.invoke(app, [*base, "--schema", str(path), "--negative-margin", "1e6"], input=jsonl(records))
    assert scored.exit_code == 0, scored.output
    assert {json.loads(line)["predicted"] for line in scored.stdout.splitlines()} == {"Other"}
    one_error(runner.invoke(app, [*base, "--schema", str(path), "-l", "semeval"], input=""), "--schema: ", "not both")
    one_error(runner.invoke(app, [*base, "-l", "semeval", "--decode", "generate", "--negative-margin", "1"], input=""),
              "--negative-margin: ")
    one_error(runner.invoke(app, [*base, "--task", "triplets", "-l", "semeval", "--negative-margin", "1"], input=""),
              "--negative-margin: ", "not apply to a triplet generator")
