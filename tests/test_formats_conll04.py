import io
import json

import pytest

from relcli.errors import UserError
from relcli.formats import convert

DOC = {
    "tokens": ["John", "Smith", "works", "for", "Acme", "Inc", "in", "Zürich"],
    "tags": ["B-Peop", "L-Peop", "O", "O", "B-Org", "L-Org", "O", "U-Loc"],
    "relations": [{"head": 0, "tail": 1, "type": "Work_For"}, {"head": 1, "tail": 2, "type": "OrgBased_In"}],
    "orig_id": 42,
}


def run(docs) -> list[dict]:
    return list(convert("conll04", [io.BytesIO(json.dumps(docs).encode())]))


def test_bilou_entities_and_relations():
    (record,) = run([DOC])
    assert record["id"] == "conll04-42"
    assert record["text"] == "John Smith works for Acme Inc in Zürich"
    assert [(e["text"], e["type"]) for e in record["entities"]] == [("John Smith", "Peop"), ("Acme Inc", "Org"), ("Zürich", "Loc")]
    assert record["entities"][2]["end"] == len(record["text"])
    assert [(t["head"]["text"], t["relation"], t["tail"]["text"]) for t in record["triplets"]] == [
        ("John Smith", "Work_For", "Acme Inc"), ("Acme Inc", "OrgBased_In", "Zürich")]


def test_adjacent_units_and_missing_id():
    doc = {"tokens": ["A", "B"], "tags": ["U-Peop", "U-Peop"], "relations": [{"head": 1, "tail": 0, "type": "Kill"}]}
    (record,) = run([DOC, doc])[1:]
    assert record["id"] == "conll04-2"
    assert (record["triplets"][0]["head"]["start"], record["triplets"][0]["tail"]["start"]) == (2, 0)


@pytest.mark.parametrize(
    "change, message",
    [
        ({"tags": ["I-Peop", "L-Peop", "O", "O", "B-Org", "L-Org", "O", "U-Loc"]}, "tag I-Peop at token 0"),
        ({"tags": ["B-Peop", "L-Org", "O", "O", "B-Org", "L-Org", "O", "U-Loc"]}, "tag L-Org at token 1"),
        ({"tags": ["B-Peop", "L-Peop", "O", "O", "B-Org", "L-Org", "O", "B-Loc"]}, "not closed"),
        ({"tags": ["O"]}, "same length"),
        ({"relations": [{"head": 0, "tail": 3, "type": "Kill"}]}, "among the 3 entities"),
    ],
)
def test_bad_documents(change, message):
    with pytest.raises(UserError, match=f"^<stdin>: document 1: .*{message}"):
        run([{**DOC, **change}])
