"""Label Studio JSON export: annotations per task, regions, relation directions and labels."""

import io
import json
from collections import Counter

import pytest

from relcli.errors import UserError
from relcli.formats import convert
from relcli.records import SkipReport

TEXT = "Microsoft was founded by Bill Gates in Albuquerque."


def region(id, start, end, label, text=TEXT):
    return {"id": id, "from_name": "label", "to_name": "text", "type": "labels",
            "value": {"start": start, "end": end, "text": text[start:end], "labels": [label]}}


def relation(from_id, to_id, *labels, direction="right"):
    return {"from_id": from_id, "to_id": to_id, "type": "relation", "direction": direction, "labels": list(labels)}


REGIONS = [region("a", 0, 9, "ORG"), region("b", 25, 35, "PER"), region("c", 39, 50, "LOC")]


def task(*annotations, id=479, **data):
    return {"id": id, "data": {"text": TEXT, **data}, "meta": {"batch": 2}, "annotations": list(annotations), "predictions": []}


def annotation(result, by=1, cancelled=False):
    return {"id": 10, "completed_by": by, "was_cancelled": cancelled, "result": result}


def read(tasks, **options):
    report = Counter()
    data = json.dumps(tasks, indent=2).encode()
    return list(convert("label-studio", [io.BytesIO(data)], report, **options)), report


def triples(record):
    return [(t["head"]["text"], t["relation"], t["tail"]["text"]) for t in record["triplets"]]


def test_regions_relations_directions_and_labels():
    result = REGIONS + [
        relation("a", "b", "org:founded_by"),
        relation("c", "a", "org:based_in", direction="left"),
        relation("b", "c", "per:lived_in", "per:visited", direction="bi"),
        relation("a", "c"),  # no label
        {"id": "s", "type": "choices", "from_name": "sentiment", "to_name": "text", "value": {"choices": ["Positive"]}},
    ]
    (record,), report = read([task(annotation(result), source="wiki")])
    assert (record["id"], record["annotator"], record["source"], record["meta"]) == (479, 1, "wiki", {"batch": 2})
    assert [(e["text"], e["type"]) for e in record["entities"]] == [("Microsoft", "ORG"), ("Bill Gates", "PER"), ("Albuquerque", "LOC")]
    assert triples(record) == [
        ("Microsoft", "org:founded_by", "Bill Gates"), ("Microsoft", "org:based_in", "Albuquerque"),
        ("Bill Gates", "per:lived_in", "Albuquerque"), ("Bill Gates", "per:visited", "Albuquerque"),
        ("Albuquerque", "per:lived_in", "Bill Gates"), ("Albuquerque", "per:visited", "Bill Gates")]
    assert report == {
        "Label Studio results other than labels and relation (ignored)": 1,
        "Label Studio relations without a label (dropped)": 1,
        "Label Studio bidirectional relations (one triplet each way)": 1,
        "entity pairs with several relation labels (one triplet each)": 2,
    }


def test_several_annotators_first_completed_by_default_or_chosen():
    first = annotation(REGIONS + [relation("a", "b", "first")], by=1, cancelled=True)
    second = annotation(REGIONS + [relation("a", "b", "second")], by=2)
    third = annotation(REGIONS + [relation("a", "b", "third")], by={"id": 3, "email": "c@lab.org"})
    (record,), report = read([task(first, second, third)])
    assert triples(record)[0][1] == "second" and record["annotator"] == 2
    assert report == {"Label Studio tasks with several annotations (the first used; choose with --annotator)": 1}
    (record,), _ = read([task(first, second, third)], annotator="c@lab.org")
    assert triples(record)[0][1] == "third"
    records, report = read([task(first, second, third), task(first, id=2)], annotator="2")
    assert [r["id"] for r in records] == [479]
    assert report == {"Label Studio tasks without a completed annotation by --annotator (skipped)": 1}


def test_a_single_task_object_and_text_under_another_key():
    item = task(annotation(REGIONS[:1]))
    item["data"] = {"sentence": TEXT, "n": 3}
    (record,), _ = read(item)
    assert record["text"] == TEXT and record["n"] == 3


def test_offsets_that_disagree_with_the_region_text():
    bad = region("b", 25, 35, "PER")
    bad["value"]["text"] = "Bill"
    tasks = [task(annotation(REGIONS)), task(annotation([bad]), id=480)]
    with pytest.raises(UserError, match=r"^<stdin> line 63: result\[0\] text 'Bill' differs from text\[25:35\] 'Bill Gates'"):
        read(tasks)
    skipped = SkipReport()
    records, _ = read(tasks, skipped=skipped)
    assert [r["id"] for r in records] == [479] and skipped.count == 1


@pytest.mark.parametrize(
    "result, message",
    [
        ([REGIONS[0], relation("a", "zz", "r")], r"result\[1\] relates 'zz', which is not a labels region"),
        ([REGIONS[0], relation("a", "a", "r", direction="up")], r"result\[1\] has direction 'up'"),
        ([REGIONS[0], relation("a", "a", 5)], r"result\[1\] labels must be a list of strings"),
        ("oops", r"the annotation's 'result' must be a list"),
    ],
)
def test_bad_annotations(result, message):
    with pytest.raises(UserError, match=r"^<stdin> line 2: " + message):
        read([task(annotation(result))])


def test_an_annotation_result_alone_is_not_an_export():
    with pytest.raises(UserError, match="one annotation's result list, not a task"):
        read({"result": REGIONS})
