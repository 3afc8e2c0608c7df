"""`relcli index` through the real CLI (CliRunner) with a tiny embedder."""

from __future__ import annotations

import orjson
import pytest
from typer.testing import CliRunner

from relcli.cli import app
from relcli.records import make_span
from relcli.retrieval import Index, read_meta
from tiny_embedder import make_tiny_embedder

runner = CliRunner()


@pytest.fixture(scope="session")
def tiny_model(tmp_path_factory):
    return str(make_tiny_embedder(tmp_path_factory.mktemp("models") / "tiny"))


def line(i, relation="A"):
    text = f"the sensor {i} measures the pressure"
    tail = text.index("pressure")
    return orjson.dumps({"id": f"s{i}", "text": text, "head": make_span(text, 4, 10), "tail": make_span(text, tail, tail + 8),
                         "relation": relation}).decode()


def run(*args, input=None):
    # typer makes a lone command the whole app: true on this branch until other commands merge.
    command = ["index"] if len(app.registered_commands) > 1 else []
    return runner.invoke(app, [*command, *args], input=input)


def test_index_from_file_then_append_from_stdin(tiny_model, tmp_path):
    records = tmp_path / "train.jsonl"
    records.write_text("\n".join(line(i) for i in range(5)) + "\n")
    out = tmp_path / "idx"
    result = run("--model", tiny_model, "-o", str(out), "-i", str(records), "--embed", "marked", "--m", "8")
    assert result.exit_code == 0, result.output
    assert result.stdout == ""
    assert "indexed 5 records (5 in all, dim 32)" in result.stderr
    result = run("--model", tiny_model, "-o", str(out), "--embed", "marked", "--append", input=line(5) + "\n")
    assert result.exit_code == 0, result.output
    assert "indexed 1 records (6 in all" in result.stderr
    meta = read_meta(out)
    assert (meta["count"], meta["embed"], meta["m"]) == (6, "marked", 8)
    assert Index.load(out).records[-1]["id"] == "s5"


def test_bad_record_stops_with_line_number_and_writes_nothing(tiny_model, tmp_path):
    bad = line(0) + "\n" + '{"id": "x", "text": "short", "head": {"text": "s", "start": 0, "end": 99}}\n'
    out = tmp_path / "idx"
    result = run("--model", tiny_model, "-o", str(out), input=bad)
    assert result.exit_code == 2
    assert "error: line 2:" in result.stderr and "Traceback" not in result.output
    assert not out.exists()
    result = run("--model", tiny_model, "-o", str(out), "--skip-invalid", input=bad)
    assert result.exit_code == 0
    assert "skipped 1 invalid line(s)" in result.stderr and read_meta(out)["count"] == 1


@pytest.mark.parametrize(
    "args, message",
    [
        (["--embed", "tokens"], "unknown embed mode"),
        (["--append"], "not a relcli index"),
    ],
)
def test_user_errors_are_one_line(tiny_model, tmp_path, args, message):
    result = run("--model", tiny_model, "-o", str(tmp_path / "idx"), *args, input=line(0) + "\n")
    assert result.exit_code == 2
    # The shared error printer lets rich wrap long messages at 80 columns; compare unwrapped.
    assert message in " ".join(result.stderr.split()) and "Traceback" not in result.output


def test_help_shows_an_example():
    result = run("--help")
    assert result.exit_code == 0 and "relcli index -o" in result.output
