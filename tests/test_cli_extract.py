"""`relcli finetune` and `relcli extract` through the real CLI on tiny models: one line per input in
input order, --resume after a kill, --shard K/N, adapters, one-line user errors; and a 2-process
`accelerate launch` fine-tune."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import RECORDS, write_jsonl
from test_extract import MANY
from typer.testing import CliRunner

from relcli.cli import app
from relcli.labels import SEMEVAL
from relcli.prompts import COMPACT, prompt_records

runner = CliRunner()


def extract(*args, input=None):
    return runner.invoke(app, ["extract", "--dtype", "float32", "--batch-size", "4", *args], input=input)


@pytest.fixture(scope="module")
def inputs(tmp_path_factory) -> Path:
    return write_jsonl(tmp_path_factory.mktemp("in") / "records.jsonl", MANY[:14])


@pytest.fixture(scope="module")
def full_run(tiny_llama, inputs, tmp_path_factory) -> bytes:
    out = tmp_path_factory.mktemp("full") / "preds.jsonl"
    result = extract("-m", tiny_llama, "-t", "compact", "-l", "semeval", "-i", str(inputs), "-o", str(out))
    assert result.exit_code == 0, result.output
    return out.read_bytes()


def test_one_line_per_input_in_order_with_unknown_fields_kept(full_run):
    rows = [json.loads(line) for line in full_run.splitlines()]
    assert [r["id"] for r in rows] == [r["id"] for r in MANY[:14]]
    assert all(r["predicted"] in SEMEVAL for r in rows)
    assert [{k: v for k, v in r.items() if k != "predicted"} for r in rows] == MANY[:14]


def test_stdin_to_stdout_equals_files(tiny_llama, inputs, full_run):
    result = runner.invoke(app, ["extract", "--dtype", "float32", "--batch-size", "3", "-m", tiny_llama,
                                 "-t", "compact", "-l", "semeval"], input=inputs.read_text())
    assert result.exit_code == 0, result.output
    assert result.stdout.encode() == full_run


def test_resume_after_a_kill_equals_an_uninterrupted_run(tiny_llama, inputs, full_run, tmp_path):
    lines = full_run.splitlines(keepends=True)
    out = tmp_path / "preds.jsonl"
    out.write_bytes(b"".join(lines[:5]) + lines[5][:17])  # killed in the middle of line 6
    result = extract("-m", tiny_llama, "-t", "compact", "-l", "semeval", "-i", str(inputs), "-o", str(out), "--resume")
    assert result.exit_code == 0, result.output
    assert out.read_bytes() == full_run
    result = extract("-m", tiny_llama, "-t", "compact", "-l", "semeval", "-i", str(inputs), "-o", str(out), "--resume")
    assert result.exit_code == 0 and out.read_bytes() == full_run  # nothing left to do


def test_shards_concatenate_to_one_full_run(tiny_llama, inputs, full_run, tmp_path):
    parts = []
    for k in (1, 2, 3):
        out = tmp_path / f"part{k}.jsonl"
        result = extract("-m", tiny_llama, "-t", "compact", "-l", "semeval", "-i", str(inputs), "-o", str(out),
                         "--shard", f"{k}/3")
        assert result.exit_code == 0, result.output
        parts.append(out.read_bytes())
    assert all(parts) and b"".join(parts) == full_run


def test_an_adapter_brings_its_template_and_labels(tiny_adapter, tmp_path):
    path = write_jsonl(tmp_path / "r.jsonl", RECORDS)
    result = extract("-m", tiny_adapter, "-i", str(path), "--explain")
    assert result.exit_code == 0, result.output
    rows = [json.loads(line) for line in result.stdout.splitlines()]
    assert sum(r["predicted"] == r["relation"] for r in rows) >= len(RECORDS) - 1
    assert all(set(r["explain"]["label_scores"]) == set(SEMEVAL) and r["explain"]["raw"] for r in rows)


def test_generate_reports_unmapped_outputs_on_stderr(tiny_llama, inputs):
    result = extract("-m", tiny_llama, "-t", "compact", "-l", "semeval", "-i", str(inputs), "--decode", "generate",
                     "--max-new-tokens", "4")
    assert result.exit_code == 0, result.output
    rows = [json.loads(line) for line in result.stdout.splitlines()]
    assert len(rows) == 14 and all(r["predicted"] in SEMEVAL for r in rows)
    assert "generations named no label; set to the negative label" in result.stderr


@pytest.mark.parametrize(
    "args, message",
    [
        (["-l", "semeval", "--resume"], "--resume needs -o"),
        (["-l", "semeval", "--shard", "1/2"], "--shard needs -i"),
        (["-l", "semeval", "--decode", "beam"], "--decode: unknown decoding"),
        ([], "--labels: a base model needs the label inventory"),
        (["-l", "semeval", "--decode", "knn"], "--decode: the kNN vote uses no model"),
    ],
)
def test_user_errors_are_one_line_with_exit_2(tiny_llama, args, message):
    result = extract("-m", tiny_llama, *args, input="")
    assert result.exit_code == 2, result.output
    assert message in result.stderr and result.stderr.count("\n") == 1 and result.stdout == ""


def test_bad_shard_and_missing_model_are_user_errors(tiny_llama, inputs, tmp_path):
    for shard in ("4/3", "x"):
        result = extract("-m", tiny_llama, "-l", "semeval", "-i", str(inputs), "--shard", shard)
        assert result.exit_code == 2 and "--shard" in result.stderr
    result = extract("-m", str(tmp_path / "nope"), "-l", "semeval", "-i", str(inputs))
    assert result.exit_code == 2 and "no model folder" in result.stderr


@pytest.mark.parametrize("command", ["extract", "finetune"])
def test_help_shows_an_example(command):
    result = runner.invoke(app, [command, "--help"])
    assert result.exit_code == 0 and f"relcli {command} " in result.stdout.replace("|", "\n")


# --- relcli finetune ---------------------------------------------------------------------------


@pytest.fixture(scope="module")
def prompts_file(tmp_path_factory) -> Path:
    prompts = list(prompt_records(RECORDS, COMPACT, SEMEVAL, "compact", "semeval"))
    return write_jsonl(tmp_path_factory.mktemp("prompts") / "prompts.jsonl", prompts)


TRAIN = ["--max-steps", "2", "--batch-size", "4", "--lora-r", "4", "--dtype", "float32", "--save-steps", "2"]


def test_finetune_cli_writes_an_adapter_and_refuses_to_overwrite_checkpoints(tiny_llama, prompts_file, tmp_path):
    out = tmp_path / "adapter"
    result = runner.invoke(app, ["finetune", "-m", tiny_llama, "-o", str(out), "-i", str(prompts_file), *TRAIN])
    assert result.exit_code == 0, result.output
    assert "adapter written to" in result.stderr and result.stdout == ""
    meta = json.loads((out / "relcli.json").read_text())
    assert meta["template_name"] == "compact" and meta["labels"] == SEMEVAL  # from the prompts' provenance
    result = runner.invoke(app, ["finetune", "-m", tiny_llama, "-o", str(out), "-i", str(prompts_file), *TRAIN])
    assert result.exit_code == 2 and "--resume" in result.stderr


def test_finetune_cli_rejects_unlabelled_prompts_and_labels_outside_the_inventory(tiny_llama, tmp_path):
    path = write_jsonl(tmp_path / "p.jsonl", [{"prompt": "x", "completion": None}])
    result = runner.invoke(app, ["finetune", "-m", tiny_llama, "-o", str(tmp_path / "a"), "-i", str(path)])
    assert result.exit_code == 2 and "line 1" in result.stderr and "completion" in result.stderr
    path = write_jsonl(tmp_path / "q.jsonl", [{"prompt": "x", "completion": "Nope", "labels": "semeval"}])
    result = runner.invoke(app, ["finetune", "-m", tiny_llama, "-o", str(tmp_path / "a"), "-i", str(path)])
    assert result.exit_code == 2 and "not in the label inventory" in result.stderr


@pytest.mark.slow
def test_accelerate_two_processes_write_one_adapter(tiny_llama, prompts_file, tmp_path):
    accelerate = shutil.which("accelerate", path=str(Path(sys.executable).parent))
    if accelerate is None:
        pytest.skip("accelerate's launcher is not installed beside this python")
    out = tmp_path / "adapter"
    command = [accelerate, "launch", "--cpu", "--num_processes", "2", "--num_machines", "1", "--mixed_precision", "no",
               "--dynamo_backend", "no", "-m", "relcli", "finetune", "-m", tiny_llama, "-o", str(out),
               "-i", str(prompts_file), *TRAIN]
    result = subprocess.run(command, capture_output=True, text=True, timeout=300, cwd=Path(__file__).parents[1])
    assert result.returncode == 0, result.stderr[-3000:]
    names = {p.name for p in out.iterdir()}
    assert {"adapter_config.json", "adapter_model.safetensors", "relcli.json", "tokenizer.json"} <= names
    assert not [n for n in names if n.endswith(".tmp")]
    meta = json.loads((out / "relcli.json").read_text())
    assert meta["training"]["steps"] == 2
    assert result.stderr.count("adapter written to") == 1, result.stderr[-3000:]
