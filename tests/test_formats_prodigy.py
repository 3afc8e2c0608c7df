"""Prodigy rel.manual JSONL: spans, relations by offsets, answers, annotators, conflicting labels."""

import io
import json
from collections import Counter

import pytest

from relcli.errors import UserError
from relcli.formats import convert
from relcli.records import SkipReport

TEXT = "Smad binds Id1 but not Id2."


def span(start, end, label="GGP"):
    return {"text": TEXT[start:end], "start": start, "end": end, "token_start": 0, "token_end": 0, "type": "span", "label": label}


def rel(head, child, label):
    strip = lambda s: {k: v for k, v in s.items() if k not in ("text", "type")}  # arguments carry no text
    return {"head": 0, "child": 2, "head_span": strip(head), "child_span": strip(child), "color": "#ffd882", "label": label}


SMAD, ID1, ID2 = span(0, 4), span(11, 14), span(23, 26)


def task(relations, **fields):
    return {"text": TEXT, "spans": [SMAD, ID1, ID2], "relations": relations, "tokens": [], "meta": {"source": "x"},
            "_input_hash": 1, "answer": "accept", **fields}


def read(tasks, **options):
    report = Counter()
    data = "".join(json.dumps(t) + "\n" for t in tasks).encode()
    return list(convert("prodigy", [io.BytesIO(data)], report, **options)), report


def triples(record):
    return [(t["head"]["text"], t["relation"], t["tail"]["text"]) for t in record["triplets"]]


def test_spans_relations_and_conflicting_labels():
    relations = [rel(SMAD, ID1, "Binds"), rel(SMAD, ID1, "Neg-Reg"), rel(SMAD, ID1, "Binds"), rel(SMAD, ID2, "No-rel")]
    (record,), report = read([task(relations)])
    assert record["id"] == "line-1" and record["meta"] == {"source": "x"} and "tokens" not in record
    assert [(e["text"], e["type"]) for e in record["entities"]] == [("Smad", "GGP"), ("Id1", "GGP"), ("Id2", "GGP")]
    assert triples(record) == [("Smad", "Binds", "Id1"), ("Smad", "Neg-Reg", "Id1"), ("Smad", "No-rel", "Id2")]
    assert report == {"duplicate relations dropped (same arguments and label)": 1,
                      "entity pairs with several relation labels (one triplet each)": 1}


def test_answers_and_annotators():
    tasks = [task([rel(SMAD, ID1, "Binds")], answer="reject"), task([], answer="ignore"),
             task([], _annotator_id="ds-alice"), task([], _session_id="ds-bob")]
    records, report = read(tasks)
    assert [r["id"] for r in records] == ["line-3", "line-4"]
    assert report == {"Prodigy answers other than accept (skipped)": 2}
    records, report = read(tasks, annotator="ds-bob")
    assert [r["id"] for r in records] == ["line-4"]
    assert report["Prodigy answers by other annotators than --annotator (skipped)"] == 1


def test_an_argument_that_is_no_span_becomes_an_entity():
    (record,), report = read([task([rel(span(5, 10, None), ID1, "Reg")], spans=[ID1])])
    assert [e["text"] for e in record["entities"]] == ["Id1", "binds"]
    assert report == {"Prodigy relation arguments matching no span (added as entities)": 1}


@pytest.mark.parametrize(
    "change, message",
    [
        ({"spans": [{**SMAD, "text": "Smid"}]}, r"spans\[0\] text 'Smid' differs from text\[0:4\] 'Smad'"),
        ({"relations": [rel(SMAD, {"start": 3, "end": 99}, "Reg")]}, r"relations\[0\].child_span offsets 3..99"),
        ({"relations": [{"head_span": SMAD}]}, r"relations\[0\] needs a 'label'"),
        ({"text": None}, "expected a JSON object with 'text'"),
    ],
)
def test_bad_tasks(change, message):
    tasks = [task([]), {**task([]), **change}]
    with pytest.raises(UserError, match=r"^<stdin> line 2: " + message):
        read(tasks)
    skipped = SkipReport()
    assert len(read(tasks, skipped=skipped)[0]) == 1 and skipped.count == 1
