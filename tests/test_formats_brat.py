"""brat standoff: synthetic .txt/.ann pairs for each line kind and quirk."""

import io
from collections import Counter

import pytest

from relcli.errors import UserError
from relcli.formats import convert
from relcli.records import SkipReport

TEXT = "Ann Lee joined Acme Corp in Paris.\nShe left in 2020."
ANN = (
    "T1\tPerson 0 7\tAnn Lee\n"
    "T2\tOrg 15 19;20 24\tAcme Corp\n"  # discontinuous, written with a gap-free join
    "T3\tLoc 28 33\tParis\n"
    "T4\tJoin 8 14\tjoined\n"
    "E1\tJoin:T4 Agent:T1 Org:T2\n"
    "R1\tWorks_for Arg1:T1 Arg2:T2\t\n"
    "R2\tPlace_of Arg1:T3 Arg2:E1\t\n"  # an argument that is an event
    "A1\tNegation E1\n"
    "*\tEquiv T1 T3\n"
    "#1\tAnnotatorNotes R1\tsee [bold]here[/]\n"
    "N1\tReference T3 Wikipedia:22989\tParis\n"
)


def corpus(tmp_path, files: dict[str, tuple[str, str]]):
    for name, (text, ann) in files.items():
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / f"{name}.txt").write_bytes(text.encode())
        (tmp_path / f"{name}.ann").write_bytes(ann.encode())
    return tmp_path


def read(source, **options):
    report = Counter()
    return list(convert("brat", [source], report, **options)), report


def test_every_line_kind(tmp_path):
    (record,), report = read(corpus(tmp_path, {"doc": (TEXT, ANN)}) / "doc.ann")
    assert record["id"] == "doc"
    assert [(e["text"], e["type"]) for e in record["entities"]] == [
        ("Ann Lee", "Person"), ("Acme Corp", "Org"), ("Paris", "Loc"), ("joined", "Join")]
    assert [(t["head"]["text"], t["relation"], t["tail"]["text"]) for t in record["triplets"]] == [
        ("Ann Lee", "Works_for", "Acme Corp"), ("Paris", "Place_of", "joined")]
    assert report == {
        "brat discontinuous spans (taken from first start to last end)": 1,
        "brat event arguments (not converted)": 2,
        "brat events (E) read for their triggers": 1,
        "brat relation arguments that are events (their trigger span used)": 1,
        "brat attributes (A) lines ignored": 1, "brat equivalences (*) lines ignored": 1,
        "brat notes (#) lines ignored": 1, "brat normalisations (N) lines ignored": 1,
    }


def test_discontinuous_span_with_a_gap(tmp_path):
    text = "the left and right lungs"
    (record,), _ = read(corpus(tmp_path, {"d": (text, "T1\tOrgan 4 8;19 24\tleft lungs\n")}) / "d.ann")
    assert record["entities"][0] == {"text": "left and right lungs", "start": 4, "end": 24, "type": "Organ"}


def test_directory_nested_ids_empty_ann_and_lone_txt(tmp_path):
    corpus(tmp_path, {"b/two": (TEXT, ANN), "a/one": ("Nothing here.", "")})
    (tmp_path / "names.txt").write_text("one\ntwo\n")
    records, report = read(tmp_path)
    assert [r["id"] for r in records] == ["a/one", "b/two"]
    assert records[0]["entities"] == records[0]["triplets"] == []
    assert report["brat .txt files without an .ann (ignored)"] == 1


def test_crlf_text_counts_two_code_points_and_crlf_ann_lines(tmp_path):
    text = "Line one\r\nBob \u00e9t\u00e9 here"
    (record,), _ = read(corpus(tmp_path, {"d": (text, "T1\tP 10 13\tBob\r\nT2\tX 14 17\t\u00e9t\u00e9\r\n")}) / "d.txt")
    assert [e["start"] for e in record["entities"]] == [10, 14]


@pytest.mark.parametrize(
    "line, message",
    [
        ("R9\tWorks_for Arg1:T1 Arg2:T7\t", "line 12: argument T7 is not a T or E annotation of this file"),
        ("T9\tLoc 28 33\tRome", "line 12: T9 text 'Rome' differs from text[28:33] 'Paris'"),
        ("T9\tLoc 28 99\tParis", "line 12: T9 offsets 28..99 are not within the text"),
        ("T9\tLoc 28\tParis", "line 12: expected 'TYPE START END'"),
        ("Q1\tfoo", "line 12: unknown annotation id 'Q1'"),
    ],
)
def test_bad_lines_name_file_and_line(tmp_path, line, message):
    corpus(tmp_path, {"doc": (TEXT, ANN + line + "\n")})
    with pytest.raises(UserError) as error:
        read(tmp_path)
    assert str(error.value).startswith(f"{tmp_path / 'doc.ann'} {message}")


def test_skip_invalid_skips_the_line_and_what_depends_on_it(tmp_path):
    corpus(tmp_path, {"doc": (TEXT, ANN.replace("T3\tLoc 28 33\tParis", "T3\tLoc 28 33\tRome"))})
    skipped = SkipReport()
    (record,), _ = read(tmp_path, skipped=skipped)
    assert len(record["entities"]) == 3 and len(record["triplets"]) == 1
    assert skipped.count == 2
    assert skipped.examples[1] == f"{tmp_path / 'doc.ann'} line 7: argument T3 is not a T or E annotation of this file"


def test_sources_that_are_not_brat(tmp_path):
    with pytest.raises(UserError, match="no such file: .*missing.ann"):
        read(tmp_path / "missing.ann")
    with pytest.raises(UserError, match="no .ann files under"):
        read(tmp_path)
    (tmp_path / "x.json").write_text("[]")
    with pytest.raises(UserError, match="brat reads a directory or NAME.ann"):
        read(tmp_path / "x.json")
    (tmp_path / "lone.ann").write_text("")
    with pytest.raises(UserError, match="no such file: .*lone.txt"):
        read(tmp_path / "lone.ann")
    with pytest.raises(UserError, match="brat reads files or directories, not <stdin>"):
        read(io.BytesIO(b""))
