"""Relation schemas: reading JSON and YAML, every malformed file as one error, inference from
records (RC and end-to-end), and the labels a pair's types allow."""

from __future__ import annotations

import json

import pytest

from relcli.errors import UserError
from relcli.records import make_span
from relcli.schema import dumps, from_dict, infer, inventory, load

CONLL = {
    "negative": "no_relation",
    "relations": {
        "Work_For": {"description": "the head works for the tail", "head_types": ["Peop"], "tail_types": ["Org"]},
        "Kill": {"description": "the head killed the tail", "head_types": ["Peop"], "tail_types": ["Peop"]},
        "Located_In": "the head lies inside the tail",
        "Near": {"head_types": ["Loc"], "tail_types": ["Loc", "Org"], "symmetric": True},
        "Anything": None,
    },
}
YAML = """\
negative: no_relation
relations:
  Work_For:
    description: the head works for the tail
    head_types: [Peop]
    tail_types: [Org]
  Kill: {head_types: Peop, tail_types: [Peop]}
"""


def pair(head_type, tail_type, relation=None, text="Ann works for Acme in Paris."):
    return {"id": "p", "text": text, "head": make_span(text, 0, 3, head_type), "tail": make_span(text, 14, 18, tail_type),
            "relation": relation}


def test_load_json_and_yaml_by_suffix_or_content(tmp_path):
    (tmp_path / "s.json").write_text(json.dumps(CONLL))
    schema = load(tmp_path / "s.json")
    assert schema.labels == ["Work_For", "Kill", "Located_In", "Near", "Anything", "no_relation"]  # file order, negative last
    assert schema.relations["Located_In"].description == "the head lies inside the tail"
    assert not schema.relations["Anything"].head_types and schema.relations["Near"].symmetric
    for name in ("s.yaml", "s.yml", "schema.txt"):  # YAML by suffix, or by content when the text is not JSON
        (tmp_path / name).write_text(YAML)
        yaml_schema = load(tmp_path / name)
        assert yaml_schema.labels == ["Work_For", "Kill", "no_relation"]
        assert yaml_schema.relations["Kill"].head_types == {"Peop"}  # a single type may be a string


def test_allowed_labels_follow_the_pair_types():
    schema = from_dict(CONLL)
    assert schema.allowed(pair("Peop", "Org")) == ["Work_For", "Located_In", "Anything", "no_relation"]
    assert schema.allowed(pair("Peop", "Peop")) == ["Kill", "Located_In", "Anything", "no_relation"]
    assert schema.allowed(pair("Loc", "Org")) == ["Located_In", "Near", "Anything", "no_relation"]
    assert "Near" in schema.allowed(pair("Org", "Loc"))  # symmetric: both directions
    assert "Near" not in schema.allowed(pair("Org", "Peop"))
    assert schema.allowed(pair(None, None)) == schema.labels  # untyped spans fit any type
    assert schema.allowed(pair("Peop", None)) == ["Work_For", "Kill", "Located_In", "Anything", "no_relation"]
    assert schema.allowed(pair("Misc", "Misc"))[-1] == "no_relation"  # the negative, always


def test_definitions_one_line_per_relation():
    lines = from_dict(CONLL).definitions().splitlines()
    assert lines[0] == "Work_For: the head works for the tail (head: Peop, tail: Org)"
    assert lines[2] == "Located_In: the head lies inside the tail"
    assert lines[3] == "Near (head: Loc, tail: Loc|Org, symmetric)"
    assert lines[4] == "Anything" and lines[-1].startswith("no_relation: ")


def test_infer_counts_types_per_relation_and_round_trips():
    records = [pair("Peop", "Org", "Work_For"), pair("Peop", "Org", "Work_For"), pair("Peop", "Loc", "Work_For"),
               pair("Peop", "Peop", "Kill"), pair(None, "Org", "Kill"), pair("Org", "Loc", "no_relation"),
               pair("Loc", "Loc", None)]
    drafted = infer(records)
    assert drafted["negative"] == "no_relation" and list(drafted["relations"]) == ["Kill", "Work_For"]
    work = drafted["relations"]["Work_For"]
    assert work["head_types"] == ["Peop"] and work["tail_types"] == ["Loc", "Org"] and work["symmetric"] is False
    assert work["seen"] == {"count": 3, "head_types": {"Peop": 3}, "tail_types": {"Org": 2, "Loc": 1}}
    assert drafted["relations"]["Kill"]["seen"] == {"count": 2, "head_types": {"Peop": 1},
                                                    "tail_types": {"Peop": 1, "Org": 1}, "untyped_head": 1}
    assert json.loads(dumps(drafted)) == drafted and '"head_types": ["Peop"],' in dumps(drafted)  # one line per field
    schema = from_dict(json.loads(dumps(drafted)))  # the draft is a schema as it is
    assert schema.labels == ["Kill", "Work_For", "no_relation"]
    assert schema.allowed(pair("Peop", "Loc")) == ["Work_For", "no_relation"]


def test_infer_reads_end_to_end_records_and_semeval_negatives():
    text = "Ann works for Acme."
    ann, acme = make_span(text, 0, 3, "Peop"), make_span(text, 14, 18, "Org")
    drafted = infer([{"id": "d", "text": text, "triplets": [{"head": ann, "relation": "Work_For", "tail": acme}]}])
    assert drafted["relations"]["Work_For"]["head_types"] == ["Peop"]
    assert infer([pair(None, None, "Other"), pair(None, None, "Cause-Effect(e1,e2)")])["negative"] == "Other"
    with pytest.raises(UserError, match="no labelled relation"):
        infer([pair("Peop", "Org", "no_relation"), pair("Peop", "Org")])


def test_labels_and_schema_together_are_refused(tmp_path):
    (tmp_path / "s.json").write_text(json.dumps(CONLL))
    with pytest.raises(UserError, match="not both") as caught:
        inventory("tacred", tmp_path / "s.json")
    assert caught.value.param == "schema"
    assert inventory(None, tmp_path / "s.json")[0][-1] == "no_relation"
    assert inventory("semeval", None)[1] is None


BAD = [
    ("s.json", "{", "is not valid JSON"),
    ("s.yaml", "relations: [a, b", "neither JSON nor valid YAML"),
    ("s.json", "[1, 2]", "must be an object with 'relations'"),
    ("s.json", '{"relations": {}}', "'relations' must map"),
    ("s.json", '{"relations": {"A": 3}}', "must be an object or a description string"),
    ("s.json", '{"relations": {"A": {"head_type": ["X"]}}}', "unknown key(s) ['head_type']"),
    ("s.json", '{"relations": {"A": {"head_types": [1]}}}', "head_types of 'A' must be a list"),
    ("s.json", '{"relations": {"A": {"symmetric": "yes"}}}', "'symmetric' of 'A' must be true or false"),
    ("s.json", '{"relations": {"A": {"description": 5}}}', "description of 'A' must be a string"),
    ("s.json", '{"relations": {"A": null}, "negative": ""}', "'negative' must be the label"),
    ("s.json", '{"relations": {"no_relation": null}}', "is listed among the relations"),
    ("s.json", '{"relations": {"A": null}, "labels": []}', "unknown key(s) ['labels']"),
    ("s.json", b"\xff\xfe", "cannot read schema file"),
]


@pytest.mark.parametrize("name, content, message", BAD)
def test_every_malformed_file_is_one_user_error(tmp_path, name, content, message):
    path = tmp_path / name
    path.write_bytes(content if isinstance(content, bytes) else content.encode())
    with pytest.raises(UserError) as caught:
        load(path)
    assert message in str(caught.value) and caught.value.param == "schema" and "\n" not in str(caught.value)
