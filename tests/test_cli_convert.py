import json

from typer.testing import CliRunner

from relcli.cli import app

runner = CliRunner()
SEMEVAL = '1\t"<e1>Ann</e1> met <e2>Bob</e2>."\r\nOther\r\nComment:\r\n\r\n' * 3


def convert(*args, input=None):
    return runner.invoke(app, ["convert", *map(str, args)], input=input)


def lines(output):
    return [json.loads(line) for line in output.splitlines() if line.startswith("{")]


def test_several_files_to_stdout_with_count_on_stderr(tmp_path):
    (tmp_path / "a.txt").write_text(SEMEVAL)
    (tmp_path / "b.txt").write_text(SEMEVAL.replace("1\t", "2\t"))
    result = convert("semeval", tmp_path / "a.txt", tmp_path / "b.txt")
    assert result.exit_code == 0
    assert [r["id"] for r in lines(result.stdout)] == ["semeval-1"] * 3 + ["semeval-2"] * 3
    assert "wrote 6 records" in result.stderr


def test_bad_line_is_one_line_error_exit_2(tmp_path):
    path = tmp_path / "TRAIN_FILE.TXT"
    path.write_text(SEMEVAL + '9\t"<e1>x</e1> y"\r\nOther\r\n')
    result = convert("semeval", path, "-o", tmp_path / "out.jsonl")
    assert result.exit_code == 2
    assert result.stderr == f"error: {path} line 13: missing marker <e2> or </e2>\n"
    assert "Traceback" not in result.output
    assert not (tmp_path / "out.jsonl").exists()  # atomic output: nothing half-written


def test_marked_stdin_and_skip_invalid():
    data = "<e1>A</e1> <e2>B</e2>\n{bad json\n<e2>C</e2> <e1>D</e1>\n"
    result = convert("marked", "-", input=data)
    assert result.exit_code == 2 and result.stderr.startswith("error: <stdin> line 2: malformed JSON")
    result = convert("marked", "-", "--skip-invalid", input=data)
    assert result.exit_code == 0
    assert [r["head"]["text"] for r in lines(result.stdout)] == ["A", "D"]
    assert "skipped 1 invalid line(s)" in result.stderr and "line 2: malformed JSON" in result.stderr


def test_split_dev_and_only(tmp_path):
    path = tmp_path / "t.txt"
    path.write_text("".join(f'{n}\t"<e1>a</e1> <e2>b</e2>"\nOther\nComment:\n\n' for n in range(200)))
    both = lines(convert("semeval", path, "--split-dev", "0.25", "--seed", "3").stdout)
    dev = lines(convert("semeval", path, "--split-dev", "0.25", "--seed", "3", "--only", "dev").stdout)
    assert [r for r in both if r["split"] == "dev"] == dev and 20 < len(dev) < 80
    result = convert("semeval", path, "--only", "dev")
    assert result.exit_code == 2 and "--only: choosing a side (train or dev) needs a dev fraction" in result.stderr


def test_tacred_patch_reports_counts(tmp_path):
    item = {"id": "t1", "relation": "no_relation", "token": ["A", "-LRB-", "B", "-RRB-"], "subj_start": 0, "subj_end": 0,
            "obj_start": 1, "obj_end": 3, "subj_type": "PERSON", "obj_type": "ORGANIZATION"}
    (tmp_path / "test.json").write_text(json.dumps([item, {**item, "id": "t2"}]))
    (tmp_path / "map.json").write_text(json.dumps({"t1": "per:employee_of", "t9": "no_relation"}))
    result = convert("tacred", tmp_path / "test.json", "--patch", tmp_path / "map.json")
    assert result.exit_code == 0
    assert lines(result.stdout)[0]["tail"]["text"] == "( B )"
    assert [(r["id"], r["relation"]) for r in lines(result.stdout)] == [("t1", "per:employee_of")]
    for message in ("relabelled by the patch: 1", "dropped: not in the Re-TACRED map: 1",
                    "patch entries matching no record: 1", "wrote 1 records"):
        assert message in result.stderr


def test_usage_errors(tmp_path):
    result = convert("semeval", tmp_path / "missing.txt")
    assert result.exit_code == 2 and result.stderr == f"error: no such file: {tmp_path / 'missing.txt'}\n"
    result = convert("yaml", tmp_path / "missing.txt")
    assert result.exit_code == 2 and "unknown format 'yaml'" in result.stderr
    (tmp_path / "p.json").write_text("[]")
    result = convert("semeval", tmp_path / "p.json", "--patch", tmp_path / "p.json")
    assert result.exit_code == 2 and "--patch: does not apply to semeval (only to tacred)" in result.stderr
    result = convert("semeval", tmp_path / "p.json", "--skip-invalid")
    assert result.exit_code == 2 and "--skip-invalid: does not apply to semeval (only to marked, rebel, brat, doccano, label-studio, prodigy)" in result.stderr


def test_help_shows_an_example():
    result = runner.invoke(app, ["convert", "--help"])
    assert result.exit_code == 0 and "relcli convert semeval TRAIN_FILE.TXT --split-dev 0.1" in result.stdout


def test_convert_imports_no_torch():
    import subprocess
    import sys

    code = "import sys, relcli.cli, relcli.formats, relcli.splits; print(sorted({'torch', 'transformers'} & set(sys.modules)))"
    assert subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout == "[]\n"
