import io

import pytest

from relcli.formats import convert
from relcli.formats.marked import strip_markers
from relcli.records import RecordError, SkipReport
from relcli.errors import UserError


def run(data: str, **options) -> list[dict]:
    return list(convert("marked", [io.BytesIO(data.encode())], **options))


@pytest.mark.parametrize(
    "marked, head, tail",
    [
        ("<e1>Ann</e1> met <e2>Bob</e2>", "Ann", "Bob"),  # head at the start, tail at the end
        ("<e2>Bob</e2> was met by <e1>Ann</e1>.", "Ann", "Bob"),  # e2 before e1
        ("<e1>Ann</e1><e2>Bob</e2>", "Ann", "Bob"),  # adjacent
        ("Zoë saw <e1>Ørsted</e1> in <e2>東京</e2> 🙂", "Ørsted", "東京"),  # unicode
        ("a <e1></e1>b<e2>c</e2>", "", "c"),  # empty head
    ],
)
def test_strip_markers_gives_exact_offsets(marked, head, tail):
    text, h, t = strip_markers(marked)
    assert "<e" not in text and "</e" not in text
    assert (text[h["start"] : h["end"]], text[t["start"] : t["end"]]) == (head, tail)
    assert (h["text"], t["text"], h["type"]) == (head, tail, None)


@pytest.mark.parametrize(
    "marked, message",
    [
        ("<e1>Ann</e1> met Bob", "missing marker <e2>"),
        ("<e1>Ann</e1> met <e2>Bob</e2> and <e2>Cy</e2>", "appears twice"),
        ("</e1>Ann<e1> met <e2>Bob</e2>", "</e1> comes before <e1>"),
    ],
)
def test_bad_markers(marked, message):
    with pytest.raises(RecordError, match=message):
        strip_markers(marked)


def test_json_and_plain_lines_keep_fields_and_generate_ids():
    records = run(
        '{"id": "x7", "text": "<e2>Bob</e2> met <e1>Ann</e1>", "relation": "met", "mine": [1]}\n'
        "\n"
        "<e1>Ann</e1> met <e2>Bob</e2>\r\n"
        '{"text": "<e1>A</e1><e2>B</e2>"}\n'
    )
    assert [r["id"] for r in records] == ["x7", "line-3", "line-4"]
    assert records[0]["text"] == "Bob met Ann" and records[0]["mine"] == [1] and records[0]["relation"] == "met"
    assert records[0]["head"]["start"] == 8 and records[0]["tail"]["start"] == 0
    assert records[1]["text"] == "Ann met Bob"


def test_bad_line_names_its_line_or_is_skipped():
    data = "<e1>A</e1> <e2>B</e2>\n{oops\nno markers here\n<e1>C</e1> <e2>D</e2>\n"
    with pytest.raises(UserError, match=r"^<stdin> line 2: malformed JSON"):
        run(data)
    skipped = SkipReport()
    assert [r["head"]["text"] for r in run(data, skipped=skipped)] == ["A", "C"]
    assert skipped.count == 2 and skipped.examples[1].startswith("line 3: missing marker")
