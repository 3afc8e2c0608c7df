"""`relcli score` through the real CLI: output streams, exit codes, options, and the SemEval test set."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from relcli.cli import app

DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"
runner = CliRunner()


def record(i, gold, predicted, text="Alice met Bob."):
    return {"id": str(i), "text": text, "head": {"text": "Alice", "start": 0, "end": 5, "type": None},
            "tail": {"text": "Bob", "start": 10, "end": 13, "type": None}, "relation": gold, "predicted": predicted}


def jsonl(*records) -> str:
    return "".join(line if isinstance(line, str) else json.dumps(line) + "\n" for line in records)


PREDICTIONS = jsonl(record(1, "per:a", "per:a"), record(2, "per:b", "no_relation"), record(3, "no_relation", "oops"))


def test_json_output_parses_and_stdout_has_nothing_else():
    result = runner.invoke(app, ["score", "--format", "json"], input=PREDICTIONS)
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert report["scheme"] == "tacred" and report["n"] == 3 and report["invalid"]["count"] == 1
    assert report["official"]["f1"] == pytest.approx(50.0)  # P 1/2, R 1/2


def test_table_goes_to_stderr(tmp_path):
    path = tmp_path / "preds.jsonl"
    path.write_text(PREDICTIONS)
    result = runner.invoke(app, ["score", "-i", str(path)])
    assert result.exit_code == 0
    assert result.stdout == ""
    assert "TACRED micro-F1" in result.stderr and "per:b" in result.stderr and "invalid predictions" in result.stderr


def test_bad_line_exits_2_with_line_number():
    result = runner.invoke(app, ["score"], input=PREDICTIONS + "{not json\n")
    assert result.exit_code == 2
    assert re.search(r"error: line 4: malformed JSON", result.stderr)
    result = runner.invoke(app, ["score"], input=jsonl(record(1, "per:a", "per:a"), "\n", {**record(2, "per:a", None)}))
    assert result.exit_code == 2 and "line 3: missing field 'predicted'" in result.stderr
    assert "Traceback" not in result.output


def test_skip_invalid_counts_and_scores_the_rest():
    result = runner.invoke(app, ["score", "--skip-invalid", "--format", "json"], input=PREDICTIONS + jsonl(record(9, None, "per:a")))
    assert result.exit_code == 0
    assert json.loads(result.stdout)["n"] == 3
    assert "skipped 1 invalid line(s)" in result.stderr and "line 4" in result.stderr


def test_options_scheme_negative_labels(tmp_path):
    labels = tmp_path / "labels.txt"
    labels.write_text("per:a\nper:b\noops\nno_relation\n")
    result = runner.invoke(app, ["score", "--format", "json", "--labels", str(labels), "--negative", "no_relation"], input=PREDICTIONS)
    assert json.loads(result.stdout)["invalid"]["count"] == 0
    result = runner.invoke(app, ["score", "--labels", "semeval", "--format", "json"], input=PREDICTIONS)
    assert json.loads(result.stdout)["invalid"]["count"] == 3  # per:a, no_relation and oops are no SemEval labels
    for args, message in ((["--scheme", "nope"], "--scheme must be one of"), (["--format", "xml"], "--format must be"),
                          (["--labels", "nope"], "neither a builtin"), (["--scheme", "triplets"], "does not fit")):
        result = runner.invoke(app, ["score", *args], input=PREDICTIONS)
        assert result.exit_code == 2 and message in result.stderr, args


def test_confusion_png(tmp_path):
    pytest.importorskip("matplotlib")
    path = tmp_path / "confusion.png"
    result = runner.invoke(app, ["score", "--confusion", str(path)], input=PREDICTIONS)
    assert result.exit_code == 0, result.output
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_score_imports_neither_torch_nor_matplotlib(tmp_path):
    path = tmp_path / "preds.jsonl"
    path.write_text(PREDICTIONS)
    code = (
        "import sys; from typer.testing import CliRunner; from relcli.cli import app; "
        f"r = CliRunner().invoke(app, ['score', '-i', {str(path)!r}, '--format', 'json']); assert r.exit_code == 0; "
        "print(sorted(m for m in ('torch', 'transformers', 'matplotlib') if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def semeval_records(path: Path):
    """A tiny parse of the official file: id<TAB>"sentence with <e1>..</e1> <e2>..</e2>", label, comment."""
    blocks = path.read_text(encoding="utf-8").replace("\r", "").strip().split("\n\n")
    for block in blocks:
        first, label = block.split("\n")[:2]
        number, quoted = first.split("\t")
        marked = quoted.strip().strip('"')
        text = re.sub(r"</?e[12]>", "", marked)
        spans = {}
        for name in ("e1", "e2"):
            start = len(re.sub(r"</?e[12]>", "", marked[:marked.index(f"<{name}>")]))
            surface = re.search(rf"<{name}>(.*?)</{name}>", marked).group(1)
            spans[name] = {"text": surface, "start": start, "end": start + len(surface), "type": None}
        yield {"id": f"semeval-{number}", "text": text, "head": spans["e1"], "tail": spans["e2"],
               "relation": label.strip(), "predicted": label.strip()}


def test_semeval_test_gold_against_itself_scores_100():
    path = DATA / "semeval2010_task8" / "TEST_FILE_FULL.TXT"
    if not path.is_file():
        pytest.skip(f"the SemEval-2010 Task 8 test file is not at {path}")
    result = runner.invoke(app, ["score", "--format", "json"], input=jsonl(*semeval_records(path)))
    assert result.exit_code == 0, result.stderr
    report = json.loads(result.stdout)
    assert (report["scheme"], report["n"], report["invalid"]["count"]) == ("semeval", 2717, 0)
    assert report["official"]["f1"] == report["accuracy"] == report["micro"]["f1"] == 100.0
    assert len(report["official"]["per_relation"]) == 9
