"""Converters on the real datasets in ../shared/data (skipped where that folder is absent)."""

from collections import Counter
from pathlib import Path

import pytest

from relcli.formats import convert, load_patch
from relcli.records import validate_record

DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"


def data(*parts) -> Path:
    path = DATA.joinpath(*parts)
    if not path.exists():
        pytest.skip(f"{path} is absent (real data lives in ../shared/data beside the repo)")
    return path


def check_spans(record):
    validate_record(record)
    spans = [record["head"], record["tail"]] if "head" in record else [
        s for t in record["triplets"] for s in (t["head"], t["tail"])]
    for span in spans:
        assert record["text"][span["start"] : span["end"]] == span["text"]


def test_semeval_release():
    train = list(convert("semeval", [data("semeval2010_task8", "TRAIN_FILE.TXT")]))
    test = list(convert("semeval", [data("semeval2010_task8", "TEST_FILE_FULL.TXT")]))
    assert (len(train), len(test)) == (8000, 2717)
    labels = Counter(r["relation"] for r in train)
    assert (labels["Other"], labels["Entity-Destination(e1,e2)"], labels["Entity-Destination(e2,e1)"]) == (1410, 844, 1)
    assert Counter(r["relation"] for r in test)["Other"] == 454
    assert len(labels) == 19
    assert (train[0]["id"], test[0]["id"], test[-1]["id"]) == ("semeval-1", "semeval-8001", "semeval-10717")
    for record in train + test:
        check_spans(record)
        assert "<e" not in record["text"]


def test_conll04():
    train = list(convert("conll04", [data("conll04", "conll04_train.json")]))
    dev = list(convert("conll04", [data("conll04", "conll04_dev.json")]))
    assert (len(train), len(dev)) == (922, 231)
    for record in train + dev:
        check_spans(record)
    assert {t["relation"] for r in train for t in r["triplets"]} == {"Work_For", "Kill", "OrgBased_In", "Live_In", "Located_In"}
    assert {e["type"] for r in train for e in r["entities"]} == {"Peop", "Loc", "Org", "Other"}


def test_rebel_sample():
    report = Counter()
    records = list(convert("rebel", [data("rebel", "sample.jsonl")], report))
    assert len(records) == 1000 and sum(len(r["triplets"]) for r in records) == 2868
    for record in records:
        check_spans(record)
    assert report == {"triplet arguments re-located (boundaries off)": 636}


def test_patch_files_are_told_apart():
    tacrev = load_patch(data("tacrev", "test_patch.json"))
    retacred = load_patch(data("re-tacred", "test_id2label.json"))
    assert not tacrev.exclusive and retacred.exclusive
    assert len(tacrev.labels) > 100 and len(retacred.labels) > 10000
