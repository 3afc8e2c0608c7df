"""Doccano relation export: JSONL, the pretty-printed sample, ids, and grapheme-cluster offsets."""

import io
import json
from collections import Counter

import pytest

from relcli.errors import UserError
from relcli.formats import convert
from relcli.records import SkipReport

EXAMPLE = {
    "text": "Google was founded on September 4, 1998, by Larry Page and Sergey Brin.",
    "entities": [
        {"id": 0, "start_offset": 0, "end_offset": 6, "label": "ORG"},
        {"id": 1, "start_offset": 22, "end_offset": 39, "label": "DATE"},
        {"id": 2, "start_offset": 44, "end_offset": 54, "label": "PERSON"},
    ],
    "relations": [{"id": 7, "from_id": 0, "to_id": 1, "type": "foundedAt"}, {"from_id": 0, "to_id": 2, "type": "foundedBy"}],
}


def read(data: str, **options):
    report = Counter()
    return list(convert("doccano", [io.BytesIO(data.encode())], report, **options)), report


def triples(record):
    return [(t["head"]["text"], t["relation"], t["tail"]["text"]) for t in record["triplets"]]


def test_jsonl_relations_with_and_without_ids_and_extra_fields():
    lines = json.dumps({**EXAMPLE, "id": 1312, "Comments": [], "doc_id": 9}) + "\n\n" + json.dumps(EXAMPLE)
    (first, second), report = read(lines)  # no trailing newline, a blank line between
    assert (first["id"], second["id"]) == (1312, "line-3")
    assert triples(first) == [("Google", "foundedAt", "September 4, 1998"), ("Google", "foundedBy", "Larry Page")]
    assert [e["type"] for e in first["entities"]] == ["ORG", "DATE", "PERSON"]
    assert (first["Comments"], first["doc_id"]) == ([], 9) and not report


def test_pretty_printed_objects_one_after_another():
    (first, second), _ = read(json.dumps(EXAMPLE, indent=4) + "\n" + json.dumps(EXAMPLE, indent=2))
    assert triples(first) == triples(second) and len(first["triplets"]) == 2


def test_a_list_of_examples():
    records, _ = read(json.dumps([EXAMPLE, EXAMPLE], indent=1))
    assert len(records) == 2


def test_crlf_counted_as_one_grapheme_is_converted():
    item = {"text": "medkit was\r\ncreated in 2022", "relations": [{"from_id": 0, "to_id": 1, "type": "created_in"}],
            "entities": [{"id": 0, "start_offset": 0, "end_offset": 6, "label": "ORG"},
                         {"id": 1, "start_offset": 22, "end_offset": 26, "label": "DATE"}]}
    (record,), report = read(json.dumps(item))
    assert triples(record) == [("medkit", "created_in", "2022")]
    assert record["entities"][1]["start"] == 23
    assert report == {"doccano examples with grapheme-cluster offsets (converted to code points)": 1}
    # The same offsets produced by a code-point project are left alone.
    item["entities"][1].update(start_offset=23, end_offset=27)
    (record,), report = read(json.dumps(item))
    assert triples(record) == [("medkit", "created_in", "2022")] and not report


def test_emoji_and_combining_marks_as_graphemes():
    text = "I \u2764\ufe0f Cafe\u0301 and \U0001f469\u200d\U0001f4bb Zoe"  # heart + VS16, e + accent, ZWJ sequence
    entities = [{"id": 0, "start_offset": 4, "end_offset": 8, "label": "X"}, {"id": 1, "start_offset": 15, "end_offset": 18, "label": "Y"}]
    (record,), _ = read(json.dumps({"text": text, "entities": entities, "relations": []}))
    assert [e["text"] for e in record["entities"]] == ["Cafe\u0301", "Zoe"]


@pytest.mark.parametrize(
    "change, message",
    [
        ({"relations": [{"from_id": 0, "to_id": 5, "type": "r"}]}, "relations[0] points at entity id 5"),
        ({"entities": [{"id": 0, "start_offset": 60, "end_offset": 90, "label": "X"}], "relations": []}, "entities[0] offsets 60..90"),
        ({"relations": [{"from_id": 0, "to_id": 1}]}, "relations[0] needs a 'type'"),
        ({"entities": None}, "expected 'entities' and 'relations' lists"),
    ],
)
def test_bad_examples_are_line_numbered_errors_or_skipped(change, message):
    data = json.dumps(EXAMPLE) + "\n" + json.dumps({**EXAMPLE, **change}) + "\n"
    with pytest.raises(UserError, match=r"^<stdin> line 2: " + message.replace("[", r"\[").replace("]", r"\]")):
        read(data)
    skipped = SkipReport()
    records, _ = read(data, skipped=skipped)
    assert len(records) == 1 and skipped.count == 1


def test_malformed_json_line_is_skippable_and_reading_goes_on():
    data = json.dumps(EXAMPLE) + "\n{\"text\": oops}\n" + json.dumps(EXAMPLE) + "\n"
    with pytest.raises(UserError, match=r"^<stdin> line 2: malformed JSON"):
        read(data)
    skipped = SkipReport()
    assert len(read(data, skipped=skipped)[0]) == 2 and skipped.count == 1
    with pytest.raises(UserError, match=r"^<stdin> line 2: malformed JSON \(the last value is not closed\)"):
        read(json.dumps(EXAMPLE) + "\n{\"text\": \"x\",\n")
