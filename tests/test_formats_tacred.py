import io
import json
from collections import Counter

import pytest

from relcli.errors import UserError
from relcli.formats import convert, load_patch


def item(id, tokens, subj, obj, relation="per:title", **extra):
    return {"id": id, "docid": "NYT_1", "relation": relation, "token": tokens,
            "subj_start": subj[0], "subj_end": subj[1], "obj_start": obj[0], "obj_end": obj[1],
            "subj_type": "PERSON", "obj_type": "TITLE",
            "stanford_pos": ["NN"] * len(tokens), "stanford_ner": ["O"] * len(tokens), **extra}


ITEMS = [
    # entities at the start and the end, PTB escapes inside and around them
    item("a1", ["-LRB-", "Tom", "-RRB-", "``", "said", "''", "the", "`", "chief", "'", "-LSB-", "x", "-RSB-", "-LCB-", "-RCB-"],
         (0, 2), (13, 14)),
    # adjacent entities, unicode
    item("a2", ["José", "Müller", "CEO", "."], (0, 1), (2, 2), relation="no_relation"),
]


def run(items, report=None, patch=None) -> list[dict]:
    return list(convert("tacred", [io.BytesIO(json.dumps(items).encode())], report, patch=patch))


def test_ptb_escapes_offsets_types_and_dropped_annotations():
    first, second = run(ITEMS)
    assert first["text"] == "( Tom ) \" said \" the ' chief ' [ x ] { }"
    assert first["head"] == {"text": "( Tom )", "start": 0, "end": 7, "type": "PERSON"}
    assert first["tail"] == {"text": "{ }", "start": len(first["text"]) - 3, "end": len(first["text"]), "type": "TITLE"}
    assert first["relation"] == "per:title" and first["docid"] == "NYT_1"
    assert not {"token", "subj_start", "stanford_pos", "stanford_ner"} & set(first)
    assert (second["head"]["text"], second["tail"]["text"]) == ("José Müller", "CEO")
    assert second["tail"]["start"] == second["head"]["end"] + 1


def write(tmp_path, name, data):
    path = tmp_path / name
    path.write_text(json.dumps(data))
    return path


def test_tacrev_patch_relabels_listed_ids(tmp_path):
    patch = load_patch(write(tmp_path, "p.json", [{"id": "a2", "relation": "org:founded"}, {"id": "zz", "relation": "no_relation"}]))
    report = Counter()
    records = run(ITEMS, report, patch)
    assert [r["relation"] for r in records] == ["per:title", "org:founded"]
    assert report == {"relabelled by the patch": 1}
    assert patch.unused == 1


def test_retacred_map_relabels_and_drops(tmp_path):
    patch = load_patch(write(tmp_path, "m.json", {"a1": "per:title", "a2": "per:identity"}))
    report = Counter()
    assert [r["relation"] for r in run(ITEMS, report, patch)] == ["per:title", "per:identity"]
    patch = load_patch(write(tmp_path, "m.json", {"a2": "per:identity"}))
    report = Counter()
    assert [r["id"] for r in run(ITEMS, report, patch)] == ["a2"]
    assert report == {"relabelled by the patch": 1, "dropped: not in the Re-TACRED map": 1}


@pytest.mark.parametrize("data", [{"a": 1}, [{"id": "a"}], "x"])
def test_unknown_patch_shape(tmp_path, data):
    with pytest.raises(UserError, match="neither a TACREV patch"):
        load_patch(write(tmp_path, "bad.json", data))


@pytest.mark.parametrize(
    "bad, message",
    [
        ({"obj_end": 4}, "record 2: obj_start 2, obj_end 4 is not a span of the 4 tokens"),
        ({"token": "José Müller"}, "record 2: missing field 'token' (list)"),
        ({"subj_start": None}, "record 2: missing field 'subj_start' (int)"),
    ],
)
def test_bad_record_names_its_position(bad, message):
    with pytest.raises(UserError, match="^<stdin>: " + message.replace("(", r"\(").replace(")", r"\)")):
        run([ITEMS[0], {**ITEMS[1], **bad}])


def test_not_a_list():
    with pytest.raises(UserError, match="expected a JSON list"):
        run({"id": "a"})
