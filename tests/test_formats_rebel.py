import io
import json
from collections import Counter

import pytest

from relcli.errors import UserError
from relcli.formats import convert
from relcli.records import SkipReport

TEXT = "Bangkok is in Thailand. Thailand borders Laos."


def arg(surface, boundaries):
    return {"uri": "Q1", "surfaceform": surface, "boundaries": boundaries, "annotator": "Me"}


def triple(subject, predicate, object):
    return {"subject": subject, "predicate": {"uri": "P1", "surfaceform": predicate, "boundaries": None}, "object": object}


def doc(*triples, **extra):
    return {"docid": "7", "title": "T", "uri": "Q7", "text": TEXT, "entities": [], "triples": list(triples), **extra}


def run(*docs, report=None, skipped=None) -> list[dict]:
    data = "".join(json.dumps(d) + "\n" for d in docs).encode()
    return list(convert("rebel", [io.BytesIO(data)], report, skipped=skipped))


def spans(record):
    return [(t["head"]["text"], t["head"]["start"], t["relation"], t["tail"]["text"], t["tail"]["start"]) for t in record["triplets"]]


def test_exact_boundaries_and_fields():
    (record,) = run(doc(triple(arg("Bangkok", [0, 7]), "country", arg("Laos", [41, 45]))))
    assert set(record) == {"id", "text", "triplets", "title", "uri"}
    assert record["id"] == "7" and spans(record) == [("Bangkok", 0, "country", "Laos", 41)]


def test_off_and_null_boundaries_are_relocated_and_counted():
    report = Counter()
    (record,) = run(
        doc(
            triple(arg("Thailand", [22, 30]), "shares border", arg("Laos", None)),  # off by two: nearest is 24
            triple(arg("Thailand", [12, 20]), "contains", arg("Bangkok", [2, 9])),  # nearest is 14 / 0
            triple(arg("Cambodia", [0, 8]), "x", arg("Bangkok", [0, 7])),
        ),
        report=report,
    )
    assert spans(record) == [
        ("Thailand", 24, "shares border", "Laos", 41),
        ("Thailand", 14, "contains", "Bangkok", 0),
        ("Cambodia", None, "x", "Bangkok", 0),
    ]
    assert report == {
        "triplet arguments re-located (boundaries off)": 3,
        "triplet arguments re-located (boundaries null)": 1,
        "triplet arguments not found in the text (kept without offsets)": 1,
    }


def test_document_without_triples_and_bad_lines():
    assert run(doc())[0]["triplets"] == []
    bad = doc(triple(arg("", [0, 0]), "x", arg("Laos", [41, 45])))
    with pytest.raises(UserError, match=r"^<stdin> line 2: triples\[0\].subject needs a non-empty surfaceform"):
        run(doc(), bad)
    skipped = SkipReport()
    assert len(run(doc(), bad, {"docid": 3}, doc(), skipped=skipped)) == 2
    assert skipped.count == 2
