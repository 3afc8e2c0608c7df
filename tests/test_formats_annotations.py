"""The real annotation-tool exports in ../shared/data/annotations convert with the counts their
SOURCE.md files state (skipped where that folder is absent)."""

import json
from collections import Counter

import pytest
from typer.testing import CliRunner

from conftest import DATA
from relcli.cli import app
from relcli.errors import UserError
from relcli.formats import Pairing, convert, to_pairs
from relcli.records import validate_record


def data(*parts):
    path = DATA.joinpath("annotations", *parts)
    if not path.exists():
        pytest.skip(f"{path} is absent (real data lives in ../shared/data beside the repo)")
    return path


def read(fmt, *paths):
    report = Counter()
    records = list(convert(fmt, list(paths), report))
    for record in records:
        validate_record(record)
        for span in record["entities"]:
            assert record["text"][span["start"] : span["end"]] == span["text"]
    return records, report


def counts(records):
    return len(records), sum(len(r["entities"]) for r in records), sum(len(r["triplets"]) for r in records)


def test_brat_materials_synthesis():
    records, report = read("brat", data("brat", "mspt_materials_synthesis"))
    assert counts(records) == (80, 6497, 4691)
    assert len({e["type"] for r in records for e in r["entities"]}) == 21
    relations = Counter(t["relation"] for r in records for t in r["triplets"])
    assert len(relations) == 11 and (relations["Number_Of"], relations["Next_Operation"], relations["Apparatus_Attr_Of"]) == (1105, 1034, 41)
    assert report == {
        "brat .txt files without an .ann (ignored)": 2,  # the two file-name lists
        "brat events (E) read for their triggers": 1195,
        "brat event arguments (not converted)": 1378,
        "brat relation arguments that are events (their trigger span used)": 2884,
        "brat attributes (A) lines ignored": 80,
    }


def test_brat_tutorials():
    records, report = read("brat", data("brat", "brat_tutorials"))
    assert counts(records) == (26, 226, 14)
    assert sum(not r["entities"] for r in records) == 8  # the empty .ann files
    assert Counter(t["relation"] for r in records for t in r["triplets"]) == {
        "Part-of": 5, "Family": 3, "Located": 3, "Member-of": 1, "Origin": 1, "Employment": 1}
    assert (report["brat events (E) read for their triggers"], report["brat attributes (A) lines ignored"]) == (47, 20)
    assert (report["brat equivalences (*) lines ignored"], report["brat notes (#) lines ignored"],
            report["brat normalisations (N) lines ignored"]) == (4, 8, 1)


@pytest.mark.parametrize(
    "name, expected",
    [
        ("export_example.jsonl", (1, 4, 3)),  # pretty-printed over 50 lines
        ("import_example.jsonl", (1, 4, 3)),  # relations without ids, no trailing newline
        ("import_test_example.jsonl", (1, 4, 3)),
        ("medkit_fixtures/relation_extraction.jsonl", (1, 2, 1)),
        ("medkit_fixtures/relation_extraction_wrong_character.jsonl", (1, 2, 1)),  # CRLF counted as one grapheme
    ],
)
def test_doccano(name, expected):
    records, report = read("doccano", data("doccano", name))
    assert counts(records) == expected
    triples = {(t["head"]["text"], t["relation"], t["tail"]["text"]) for t in records[0]["triplets"]}
    if expected[2] == 3:
        assert triples == {("Google", "foundedAt", "September 4, 1998"), ("Google", "foundedBy", "Larry Page"),
                           ("Google", "foundedBy", "Sergey Brin")}
    else:
        assert triples == {("medkit", "created_in", "2022")}
    grapheme = "wrong_character" in name
    assert report == ({"doccano examples with grapheme-cluster offsets (converted to code points)": 1} if grapheme else {})
    if name == "medkit_fixtures/relation_extraction.jsonl":
        assert (records[0]["custom_metadata"], records[0]["doc_id"]) == ("custom", 1234)


def test_label_studio_fixture_is_an_annotation_result_not_an_export(tmp_path):
    path = data("label_studio", "official_test_fixtures", "sdk_validate_annotation_result.json")
    with pytest.raises(UserError, match="one annotation's result list, not a task"):
        read("label-studio", path)
    result = json.loads(path.read_text())["result"]  # 2 labels regions, 1 choices item, 1 unlabelled relation
    text = "To have a trust in the others."
    task = {"id": 1, "data": {"text": text}, "annotations": [{"completed_by": 1, "result": result}]}
    (tmp_path / "export.json").write_text(json.dumps([task]))
    with pytest.raises(UserError, match=r"line 1: result\[1\] text 'trust' differs from text\[10:25\]"):
        read("label-studio", tmp_path / "export.json")  # the fixture's own quirk: offsets 10..25 for "trust"
    result[1]["value"].update(start=10, end=15)
    (tmp_path / "export.json").write_text(json.dumps([task]))
    records, report = read("label-studio", tmp_path / "export.json")
    assert counts(records) == (1, 2, 0)
    assert report == {"Label Studio results other than labels and relation (ignored)": 1,
                      "Label Studio relations without a label (dropped)": 1}


def test_prodigy_rel_manual():
    records, report = read("prodigy", data("prodigy", "annotations.jsonl"))
    n, entities, triplets = counts(records)
    assert (n, entities) == (149, 466)
    assert triplets + report["duplicate relations dropped (same arguments and label)"] == 267
    labels = Counter(t["relation"] for r in records for t in r["triplets"])
    assert set(labels) == {"Pos-Reg", "Reg", "Neg-Reg", "Binds", "No-rel"}
    pairs = sum(len({(id(t["head"]), id(t["tail"])) for t in r["triplets"]}) for r in records)
    assert 267 - pairs == 9  # the surplus relations on pairs that have several (conflicting or repeated) labels
    assert report["entity pairs with several relation labels (one triplet each)"] > 0


def test_every_shared_file_converts_without_a_traceback(tmp_path):
    runner = CliRunner()
    root = data()
    sources = [("brat", p) for p in sorted(root.glob("brat/*")) if p.is_dir()]
    sources += [("doccano", p) for p in sorted(root.glob("doccano/**/*.jsonl"))]
    sources += [("label-studio", p) for p in sorted(root.glob("label_studio/**/*.json"))]
    sources += [("prodigy", p) for p in sorted(root.glob("prodigy/*.jsonl"))]
    assert len(sources) == 9
    for fmt, path in sources:
        for extra in ([], ["--pairs"], ["--pairs", "--max-distance", "80", "--negative-ratio", "2"]):
            result = runner.invoke(app, ["convert", fmt, str(path), "-o", str(tmp_path / "out.jsonl"), *extra])
            assert result.exception is None or isinstance(result.exception, SystemExit), (fmt, path, result.exception)
            assert result.exit_code == (2 if fmt == "label-studio" else 0), result.stderr


def test_conll04_as_pairs():
    path = DATA / "conll04" / "conll04_train.json"
    if not path.exists():
        pytest.skip(f"{path} is absent")
    records = list(convert("conll04", [path]))
    report = Counter()
    pairs = [validate_record(pair) for pair in to_pairs(records, Pairing(), report)]
    gold = sum(len(r["triplets"]) for r in records)
    assert report["pairs with a gold relation"] + report["gold relations not paired (arguments in different sentences)"] == gold
    assert report["gold relations not paired (arguments in different sentences)"] <= 2
    assert {p["head"]["type"] for p in pairs} == {"Peop", "Loc", "Org", "Other"}
    assert Counter(p["relation"] for p in pairs)["no_relation"] == report["negative pairs"]
