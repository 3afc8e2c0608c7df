import io

import pytest

from relcli.errors import UserError
from relcli.formats import convert

RELEASE = (
    '1\t"The system as described above has its greatest application in an arrayed '
    '<e1>configuration</e1> of antenna <e2>elements</e2>."\r\n'
    "Component-Whole(e2,e1)\r\nComment: Not a collection: there is structure here, organisation.\r\n\r\n"
    '2\t"<e1>Müller</e1> "quoted" <e2>café</e2>"\r\nOther\r\nComment:\r\n\r\n'
    '17\t"<e2>tail</e2><e1>head</e1>"\r\nEntity-Destination(e2,e1)\r\nComment:\r\n\r\n'
)


def run(data: str) -> list[dict]:
    stream = io.BytesIO(data.encode())
    stream.name = "TRAIN_FILE.TXT"
    return list(convert("semeval", [stream]))


def test_release_format_with_crlf():
    first, second, third = run(RELEASE)
    assert first == {
        "id": "semeval-1",
        "text": "The system as described above has its greatest application in an arrayed configuration of antenna elements.",
        "head": {"text": "configuration", "start": 73, "end": 86, "type": None},
        "tail": {"text": "elements", "start": 98, "end": 106, "type": None},
        "relation": "Component-Whole(e2,e1)",
    }
    assert second["text"] == 'Müller "quoted" café' and second["tail"]["start"] == 16
    assert second["relation"] == "Other"
    assert (third["id"], third["head"]["start"], third["tail"]["start"]) == ("semeval-17", 4, 0)


def test_lf_line_ends_and_no_final_blank_line():
    assert run(RELEASE.replace("\r\n", "\n").rstrip("\n")) == run(RELEASE)


@pytest.mark.parametrize(
    "data, message",
    [  # RELEASE takes lines 1-12
        ('1\t"<e1>a</e1> <e2>b</e2>"\r\n2\t"<e1>c</e1> <e2>d</e2>"\r\nOther\r\n', "line 13: sentence without a label line"),
        ('1\t"<e1>a</e1> <e2>b</e2>"\r\n\r\n', "line 13: sentence without a label line"),
        ('1\t"<e1>a</e1> <e2>b</e2>"\r\nOther\r\nComment:\r\nextra\r\n', "line 16: expected a blank line"),
        ('one\t"<e1>a</e1> <e2>b</e2>"\r\nOther\r\n', "line 13: expected ID<TAB>"),
        ('1\t"<e1>a</e1> b"\r\nOther\r\n', "line 13: missing marker <e2>"),
    ],
)
def test_errors_name_file_and_line(data, message):
    with pytest.raises(UserError) as caught:
        run(RELEASE + data)
    assert str(caught.value).startswith(f"TRAIN_FILE.TXT {message}")
