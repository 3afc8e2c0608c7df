import pytest

from relcli.records import RecordError, SkipReport, make_span, read_jsonl, validate_record

GOOD = b'{"id": "a", "text": "Ann met Bob.", "head": {"text": "Ann", "start": 0, "end": 3}, "tail": {"text": "Bob", "start": 8, "end": 11}}'


def test_reads_good_lines_and_ignores_blank_ones():
    records = list(read_jsonl([GOOD, b"\n", GOOD]))
    assert [r["head"]["text"] for r in records] == ["Ann", "Ann"]


@pytest.mark.parametrize(
    "bad, message",
    [
        (b'{"id": "a", "text": ', "malformed JSON"),
        (b'{"text": "Ann met Bob.", "head": {}, "tail": {}}', "missing field 'id'"),
        (GOOD.replace(b'"head"', b'"hd"'), "missing field 'head'"),
        (GOOD.replace(b'"end": 11', b'"end": 40'), "tail.end 40 is past the end of text (len 12)"),
        (GOOD.replace(b'"text": "Ann", "start": 0', b'"text": "Anna", "start": 0'), "differs from text[0:3]"),
        (b"[1, 2]", "must be a JSON object"),
    ],
)
def test_bad_line_raises_with_its_line_number(bad, message):
    with pytest.raises(RecordError) as caught:
        list(read_jsonl([GOOD, bad, GOOD]))
    assert caught.value.line == 2
    assert str(caught.value).startswith("line 2: ")
    assert message in str(caught.value)


def test_skip_invalid_counts_and_keeps_the_good_ones():
    skipped = SkipReport()
    records = list(read_jsonl([b"{", GOOD, b"{}"], skipped=skipped))
    assert len(records) == 1
    assert skipped.count == 2 and skipped.examples[0].startswith("line 1: ")


def test_end_to_end_spans_may_lack_offsets_but_not_be_wrong():
    text = "Ann met Bob."
    record = {"id": 1, "text": text, "triplets": [
        {"head": make_span(text, 0, 3), "relation": "met", "tail": {"text": "Bob", "start": None, "end": None}}]}
    assert validate_record(record) is record
    record["triplets"][0]["tail"] = {"text": "Bob", "start": 7, "end": 10}
    with pytest.raises(RecordError, match=r"triplets\[0\].tail.text"):
        validate_record(record)
