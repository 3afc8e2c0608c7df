"""The faults a new user hit, each as a test: no traceback for any input, no lost or clobbered
output, options that do not apply refused, relcli.json read once per run."""

from __future__ import annotations

import json
import os
import stat
from pathlib import Path

import pytest
from conftest import RECORDS, write_jsonl
from typer.testing import CliRunner

from relcli.cli import app

runner = CliRunner()
BASE = ["--dtype", "float32", "--batch-size", "4"]


def run(*args, input=None):
    return runner.invoke(app, [str(a) for a in args], input=input)


def one_error(result, fragment: str) -> None:
    assert result.exit_code == 2, result.output
    assert result.exception is None or isinstance(result.exception, SystemExit), result.exception
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: ") and fragment in lines[0], result.stderr


@pytest.fixture
def records(tmp_path) -> Path:
    return write_jsonl(tmp_path / "t3.jsonl", RECORDS[:3])


def test_relcli_json_is_read_once_per_extract_run(tiny_adapter, records, monkeypatch):
    from relcli.artifacts import Artifact

    reads = []
    original = Artifact.read.__func__

    def counted(cls, directory):
        reads.append(directory)
        return original(cls, directory)

    monkeypatch.setattr(Artifact, "read", classmethod(counted))
    result = run("extract", "-m", tiny_adapter, "-i", records, *BASE)
    assert result.exit_code == 0, result.output
    assert len(reads) == 1 and len(result.stdout.splitlines()) == 3


def test_resume_keeps_a_complete_last_line_without_newline_when_the_run_fails(records, tmp_path):
    out = tmp_path / "out.jsonl"
    first = records.read_text().splitlines()[0]
    out.write_text(first)  # complete, but no final newline
    one_error(run("extract", "-m", tmp_path / "nope", "-t", "simple", "-l", "semeval", "-i", records, "-o", out, "--resume"),
              "no model folder")
    assert out.read_text() == first


def test_resume_resumes_by_position_so_repeated_ids_are_not_skipped(tiny_llama, tmp_path):
    rows = [dict(RECORDS[0], id="a"), dict(RECORDS[1], id="b"), dict(RECORDS[2], id="a")]
    data = write_jsonl(tmp_path / "in.jsonl", rows)
    out = tmp_path / "out.jsonl"
    full = run("extract", "-m", tiny_llama, "-t", "compact", "-l", "semeval", "-i", data, *BASE)
    out.write_text(full.stdout.splitlines()[0] + "\n")
    result = run("extract", "-m", tiny_llama, "-t", "compact", "-l", "semeval", "-i", data, "-o", out, "--resume", *BASE)
    assert result.exit_code == 0, result.output
    assert out.read_text() == full.stdout  # three lines, the repeated id included


def test_resume_refuses_another_inputs_output_and_the_input_itself(tiny_llama, records, tmp_path):
    out = tmp_path / "out.jsonl"
    out.write_text(json.dumps(dict(RECORDS[5], predicted="Other")) + "\n")
    before = out.read_bytes()
    one_error(run("extract", "-m", tiny_llama, "-t", "compact", "-l", "semeval", "-i", records, "-o", out, "--resume", *BASE),
              "not this input's output")
    assert out.read_bytes() == before
    one_error(run("extract", "-m", tiny_llama, "-t", "compact", "-l", "semeval", "-i", records, "-o", records, "--resume", *BASE),
              "the output is the input file")
    assert records.read_text().count("\n") == 3


@pytest.mark.parametrize("option", [["--batch-size", "0"], ["--batch-size", "-1"], ["--k", "0"], ["--shard", ""],
                                    ["--shard", "3/2"], ["--max-new-tokens", "0"]])
def test_bad_numbers_are_refused_before_output_is_touched(records, tmp_path, option):
    out = tmp_path / "out.jsonl"
    out.write_text("keep\n")
    result = run("extract", "-m", "smollm2-135m", "-t", "simple", "-l", "semeval", "-i", records, "-o", out, *option)
    assert result.exit_code == 2 and result.stderr.startswith("error: "), result.output
    assert out.read_text() == "keep\n"


@pytest.mark.parametrize("option", [["--epochs", "-1"], ["--lora-r", "0"], ["--max-length", "2"], ["--limit", "-1"],
                                    ["--save-steps", "0"], ["--lr", "0"]])
def test_bad_training_numbers_are_one_line(records, tmp_path, option):
    one_error(run("finetune", "-m", "smollm2-135m", "-o", tmp_path / "a", "-i", records, *option), "Invalid value")


def test_classifier_refuses_lora_flags_and_fractional_epochs(records, tmp_path):
    one_error(run("finetune", "--method", "classifier", "-m", "minilm", "-o", tmp_path / "c", "-i", records,
                  "--lora-dropout", "0.1"), "--lora-dropout: lora_dropout do(es) not apply to the classifier method")
    one_error(run("finetune", "--method", "classifier", "-m", "minilm", "-o", tmp_path / "c", "-i", records,
                  "--epochs", "1.5"), "--epochs: a classifier trains whole epochs")
    assert not (tmp_path / "c").exists()


def test_extract_on_a_classifier_refuses_generator_options(tmp_path, records):
    from relcli.artifacts import Artifact

    Artifact(kind="classifier", base_model="minilm", labels=["Other"]).write(tmp_path)
    (tmp_path / "config.json").write_text("{}")
    one_error(run("extract", "-m", tmp_path, "-i", records, "--template", "simple"), "--template: template do(es) not apply")
    one_error(run("extract", "-m", tmp_path, "-i", records, "--quantize", "4bit"), "--quantize")


def test_markup_in_user_text_and_paths_is_printed_literally(tmp_path):
    line = '{"id":"a","text":"The [/b] company.","head":{"text":"xyz","start":4,"end":8},"tail":{"text":"company","start":9,"end":16}}\n'
    one_error(run("prompts", "-l", "semeval", input=line), "[/b]")
    one_error(run("score", "-i", tmp_path / "[bold]x.jsonl"), "[bold]x.jsonl")


@pytest.mark.parametrize("make, fragment", [
    (lambda d: d / "missing.jsonl", "no such file"),
    (lambda d: d, "is a directory"),
])
def test_bad_input_paths(tmp_path, make, fragment):
    one_error(run("extract", "-m", "smollm2-135m", "-t", "simple", "-l", "semeval", "-i", make(tmp_path)), fragment)


@pytest.mark.parametrize("command", [["convert", "semeval", "-"], ["convert", "marked", "-"], ["prompts", "-l", "semeval"]])
def test_a_directory_or_unwritable_output_is_one_line(tmp_path, command):
    one_error(run(*command, "-o", tmp_path, input=""), "is a directory")
    locked = tmp_path / "locked"
    locked.mkdir()
    locked.chmod(0o500)
    try:
        if os.access(locked, os.W_OK):
            pytest.skip("running as a user who can write anywhere")
        one_error(run(*command, "-o", locked / "x.jsonl", input=""), "not a writable folder")
    finally:
        locked.chmod(0o700)


def test_label_and_template_files_with_invalid_utf8(tmp_path, records):
    bad = tmp_path / "bad.txt"
    bad.write_bytes(b"\xff\xfe\x00bad")
    one_error(run("prompts", "-i", records, "-l", bad), "--labels: cannot read label file")
    one_error(run("prompts", "-i", records, "-l", "semeval", "-t", bad), "--template: cannot read template file")


def test_a_bad_conversion_in_a_template_is_one_line(tmp_path, records):
    template = tmp_path / "t.txt"
    template.write_text("{sentence!x} {head}")
    one_error(run("prompts", "-i", records, "-l", "semeval", "-t", template), "--template: bad template")


def test_confusion_with_an_unknown_image_type(tmp_path):
    preds = write_jsonl(tmp_path / "p.jsonl", [dict(RECORDS[0], predicted="Other")])
    one_error(run("score", "-i", preds, "--confusion", tmp_path / "out.xyz"), "--confusion")


def test_a_corrupt_index_is_one_line(tmp_path, records):
    index = tmp_path / "index"
    index.mkdir()
    (index / "index.json").write_text('{"count": 3, "dimension": 4, "model": "minilm", "embed": "sentence"}')
    (index / "records.jsonl").write_text("{}\n")
    (index / "index.hnsw").write_bytes(b"junk")
    one_error(run("extract", "--decode", "knn", "--index", index, "-i", records), "damaged index")


def test_end_to_end_records_fed_to_relation_classification(tiny_llama, tmp_path):
    data = write_jsonl(tmp_path / "e2e.jsonl", [{"id": "d", "text": "Ann lives in Paris.", "triplets": []}])
    one_error(run("extract", "-m", tiny_llama, "-t", "compact", "-l", "semeval", "-i", data, *BASE), "has no head")


def test_template_file_text_is_stored_in_the_adapter(tiny_llama, records, tmp_path):
    template = tmp_path / "mine.txt"
    template.write_text("{marked_sentence}\nRelation:\n")
    prompts = tmp_path / "p.jsonl"
    assert run("prompts", "-i", records, "-l", "semeval", "-t", template, "-o", prompts).exit_code == 0
    result = run("finetune", "-m", tiny_llama, "-o", tmp_path / "a", "-i", prompts, "--max-steps", "1", "--dtype", "float32")
    assert result.exit_code == 0, result.output
    template.unlink()  # moving or editing the file later changes nothing
    meta = json.loads((tmp_path / "a" / "relcli.json").read_text())
    assert meta["template"] == "{marked_sentence}\nRelation:\n"
    assert run("extract", "-m", tmp_path / "a", "-i", records, *BASE).exit_code == 0


def test_finetune_never_writes_into_a_folder_it_did_not_make(tiny_llama, records, tmp_path):
    folder = tmp_path / "mine"
    folder.mkdir()
    (folder / "README.md").write_text("my notes")
    prompts = tmp_path / "p.jsonl"
    run("prompts", "-i", records, "-l", "semeval", "-t", "compact", "-o", prompts)
    one_error(run("finetune", "-m", tiny_llama, "-o", folder, "-i", prompts, "--max-steps", "1", "--dtype", "float32"),
              "did not write")
    assert (folder / "README.md").read_text() == "my notes"


def test_outputs_keep_the_users_umask(tmp_path):
    old = os.umask(0o022)
    try:
        out = tmp_path / "out.jsonl"
        assert run("prompts", "-l", "semeval", "-o", out, input="").exit_code == 0
        assert stat.S_IMODE(out.stat().st_mode) == 0o644
    finally:
        os.umask(old)


def test_integers_past_64_bits_pass_through_unchanged(tiny_llama, tmp_path):
    big = 123456789012345678901234567890
    data = write_jsonl(tmp_path / "in.jsonl", [dict(RECORDS[0], big=big)])
    result = run("extract", "-m", tiny_llama, "-t", "compact", "-l", "semeval", "-i", data, *BASE)
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["big"] == big and str(big) in result.stdout


def test_options_that_need_a_model_kind_are_refused_for_knn(tmp_path, records):
    one_error(run("extract", "--decode", "knn", "--index", tmp_path, "-i", records, "--template", "simple"),
              "--template: template do(es) not apply to the kNN label vote")


def test_a_megabyte_text_is_cut_around_its_pair_not_run_unbounded(tiny_llama, tmp_path):
    filler = "word " * 200_000
    text = filler + "The burst has been caused by water hammer pressure. " + filler
    start = text.index("burst")
    record = {"id": "long", "text": text, "relation": "Other",
              "head": {"text": "burst", "start": start, "end": start + 5, "type": None},
              "tail": {"text": "pressure", "start": text.index("pressure"), "end": text.index("pressure") + 8, "type": None}}
    data = write_jsonl(tmp_path / "long.jsonl", [record])
    result = run("extract", "-m", tiny_llama, "-t", "compact", "-l", "semeval", "-i", data, *BASE)
    assert result.exit_code == 0, result.output
    out = json.loads(result.stdout)
    assert out["text"] == text and out["predicted"] and "1 text(s) longer than 2000 characters were cut" in result.stderr


def test_crop_keeps_the_pair_and_shifts_offsets():
    from relcli.records import crop_to_pair

    record = dict(RECORDS[6], text="x" * 50 + RECORDS[6]["text"] + "y" * 50)
    record["head"] = {**RECORDS[6]["head"], "start": RECORDS[6]["head"]["start"] + 50, "end": RECORDS[6]["head"]["end"] + 50}
    record["tail"] = {**RECORDS[6]["tail"], "start": RECORDS[6]["tail"]["start"] + 50, "end": RECORDS[6]["tail"]["end"] + 50}
    cropped = crop_to_pair(record, 60)
    for role in ("head", "tail"):
        span = cropped[role]
        assert len(cropped["text"]) == 60 and cropped["text"][span["start"]:span["end"]] == span["text"]
    assert crop_to_pair(RECORDS[0], 1000) is RECORDS[0]


# ---------------------------------------------------------------------------------------------
# Found by bench/fault_sweep.py (issue 11): one test per cause.

@pytest.fixture(scope="module")
def embedder(tmp_path_factory) -> Path:
    """A tiny sentence-transformers folder; ``embedder.parent / (name + "-hf")`` is its plain BERT."""
    from tiny_embedder import make_tiny_embedder

    return make_tiny_embedder(tmp_path_factory.mktemp("emb") / "tiny")


@pytest.fixture(scope="module")
def tiny_index(embedder, tmp_path_factory) -> Path:
    from relcli.retrieval import build_index

    out = tmp_path_factory.mktemp("idx") / "index"
    build_index(iter(RECORDS), out, model=str(embedder), m=8, ef_construction=20, device="cpu", dtype="float32")
    return out


def test_a_patch_that_is_a_directory_or_a_directory_as_data_is_one_line(tmp_path):
    data = write_jsonl(tmp_path / "t.json", [])
    one_error(run("convert", "tacred", data, "--patch", tmp_path), "--patch: cannot read")
    one_error(run("convert", "semeval", tmp_path), "is a directory")


@pytest.mark.parametrize("command", [["convert", "marked"], ["prompts", "-l", "semeval", "-i"],
                                     ["extract", "-m", "smollm2-135m", "-l", "semeval", "-i"]])
def test_an_output_that_is_the_input_is_refused(tmp_path, command):
    data = tmp_path / "in.jsonl"
    data.write_text("".join(json.dumps(r) + "\n" for r in RECORDS[:2]) if command[0] != "convert" else "<e1>a</e1> b <e2>c</e2>\n")
    before = data.read_bytes()
    one_error(run(*command, data, "-o", data), "--output: the output is the input file")
    assert data.read_bytes() == before


def test_jsonl_with_a_byte_order_mark(tmp_path):
    data = tmp_path / "bom.jsonl"
    data.write_bytes(b"\xef\xbb\xbf" + "".join(json.dumps(dict(r, predicted="Other")) + "\r\n" for r in RECORDS).encode())
    assert len(run("prompts", "-l", "semeval", "-i", data).stdout.splitlines()) == 8
    assert run("score", "-i", data, "--format", "json").exit_code == 0


def test_prompts_refuses_what_nothing_would_use(records, tiny_index, tmp_path):
    one_error(run("prompts", "-i", records, "-l", "semeval", "-t", "simple", "--index", tiny_index), "--index: template 'simple' has no")
    one_error(run("prompts", "-i", records, "-l", "semeval", "--k", "5"), "--k: template 'simple' has no")
    one_error(run("prompts", "-i", records, "-l", "semeval", "--labels-from-data"), "--labels-from-data: ")
    unlabelled = write_jsonl(tmp_path / "u.jsonl", [dict(r, relation=None) for r in RECORDS])
    one_error(run("prompts", "-i", unlabelled, "--labels-from-data"), "--labels-from-data: the data has no gold labels")
    assert run("prompts", "-i", records, "-l", "semeval", "-t", "rag", "--index", tiny_index, "--k", "2").exit_code == 0


def test_extract_refuses_k_and_max_new_tokens_it_would_not_use(tiny_llama, records):
    base = ["extract", "-m", tiny_llama, "-t", "compact", "-l", "semeval", "-i", records, *BASE]
    one_error(run(*base, "--k", "5"), "--k: this template has no {examples}")
    one_error(run(*base, "--max-new-tokens", "5"), "--max-new-tokens: constrained decoding")
    one_error(run(*base, "--chat"), "--chat: the model's tokenizer has no chat template")
    assert run(*base, "--decode", "generate", "--max-new-tokens", "5").exit_code == 0


def _index_folder(tmp_path, meta: dict | str, records: str = '{"id": "a", "text": "x"}\n') -> Path:
    folder = tmp_path / "index"
    folder.mkdir()
    (folder / "index.json").write_text(meta if isinstance(meta, str) else json.dumps(meta))
    (folder / "records.jsonl").write_text(records)
    (folder / "index.hnsw").write_bytes(b"junk")
    return folder


GOOD_META = {"model": "minilm", "embed": "sentence", "dimension": 4, "count": 1}


@pytest.mark.parametrize("meta, lines, fragment", [
    ({k: v for k, v in GOOD_META.items() if k != "embed"}, None, "'embed' is None"),
    (dict(GOOD_META, dimension="4"), None, "'dimension' is '4'"),
    (dict(GOOD_META, embed="bold"), None, "embed 'bold'"),
    ("[]", None, "not a JSON object"),
    (GOOD_META, '{"text": "x"}\n', "line 1 is not a record with an id"),
    (GOOD_META, "[1]\n", "line 1 is not a record"),
])
def test_damaged_index_folders_are_one_line_naming_the_flag(tmp_path, records, meta, lines, fragment):
    index = _index_folder(tmp_path, meta, *([lines] if lines else []))
    one_error(run("extract", "--decode", "knn", "--index", index, "-i", records), "--index: ")
    one_error(run("prompts", "-l", "semeval", "-t", "rag", "--index", index, "-i", records), fragment)


def _broken_copy(source: str, tmp_path: Path, **files) -> Path:
    """A copy of a model folder with some files replaced (bytes) or removed (None)."""
    import shutil

    folder = tmp_path / "model"
    shutil.copytree(source, folder, ignore=shutil.ignore_patterns("checkpoints"))
    for name, data in files.items():
        name = name.replace("__", ".")
        if data is None:
            (folder / name).unlink()
        else:
            (folder / name).write_bytes(data)
    return folder


@pytest.mark.parametrize("kind, files", [
    ("llama", {"config__json": b"{}"}),  # transformers: ValueError, no model_type
    ("llama", {"model__safetensors": b"junk" * 100}),  # SafetensorError
    ("adapter", {"adapter_config__json": b"{"}),  # json.JSONDecodeError
    ("adapter", {"adapter_model__safetensors": None}),  # peft: HFValidationError
])
def test_broken_model_folders_are_one_line(tiny_llama, tiny_adapter, records, tmp_path, kind, files):
    folder = _broken_copy(tiny_llama if kind == "llama" else tiny_adapter, tmp_path, **files)
    extra = ["-t", "compact", "-l", "semeval"] if kind == "llama" else []
    one_error(run("extract", "-m", folder, *extra, "-i", records, *BASE), "--model: ")


@pytest.mark.parametrize("change, fragment", [
    ({"labels": [1, 2]}, "labels must be a list of distinct label strings"),
    ({"labels": []}, "labels must be"),
    ({"template": 5}, "template must be a string"),
    ({"template": "{nope}"}, "its template: unknown template field"),
    ({"chat": "no"}, "chat must be true or false"),
])
def test_a_damaged_relcli_json_is_one_line(tiny_adapter, records, tmp_path, change, fragment):
    meta = json.loads((Path(tiny_adapter) / "relcli.json").read_text())
    folder = _broken_copy(tiny_adapter, tmp_path, relcli__json=json.dumps({**meta, **change}).encode())
    one_error(run("extract", "-m", folder, "-i", records, *BASE), fragment)
    prompts = tmp_path / "p.jsonl"
    run("prompts", "-i", records, "-l", "semeval", "-t", "compact", "-o", prompts)
    one_error(run("finetune", "-m", folder, "-o", tmp_path / "a", "-i", prompts, "--max-steps", "1"), fragment)


def _classifier_folder(embedder: Path, tmp_path: Path, **encoder) -> Path:
    """The tiny BERT as a classifier folder with no head file."""
    import shutil

    from relcli.artifacts import Artifact

    folder = tmp_path / "classifier"
    shutil.copytree(embedder.parent / f"{embedder.name}-hf", folder)
    Artifact(kind="classifier", base_model="bert", labels=["A", "B"],
             encoder={"pooling": "cls", "max_length": 64, **encoder}).write(folder)
    return folder


@pytest.mark.parametrize("encoder, fragment", [
    ({}, "cannot load the classifier head"),
    ({"pooling": "foo"}, "its encoder settings are"),
    ({"max_length": "64"}, "its encoder settings are"),
])
def test_a_damaged_classifier_folder_is_one_line(embedder, records, tmp_path, encoder, fragment):
    one_error(run("extract", "-m", _classifier_folder(embedder, tmp_path, **encoder), "-i", records, *BASE), fragment)


def test_a_classifier_never_replaces_a_folder_it_did_not_write(embedder, records, tmp_path):
    folder = tmp_path / "mine"
    folder.mkdir()
    (folder / "notes.txt").write_text("my notes")
    one_error(run("finetune", "--method", "classifier", "-m", embedder.parent / f"{embedder.name}-hf", "-l", "semeval",
                  "-i", records, "-o", folder, "--epochs", "1", "--dtype", "float32"), "--output: ")
    assert [p.name for p in folder.iterdir()] == ["notes.txt"]


@pytest.mark.parametrize("args, fragment", [
    (["finetune", "-m", "smollm2-135m", "-o", "x", "--epochs", "inf"], "--epochs: inf is not a finite number"),
    (["finetune", "-m", "smollm2-135m", "-o", "x", "--lr", "inf"], "--lr: inf is not a finite number"),
    (["convert", "brat", "-", "--pairs", "--negative-ratio", "inf"], "--negative-ratio: inf is not a finite number"),
    (["extract", "-m", "smollm2-135m", "--batch-size", str(10**30)], "--batch-size: 1000000000000000000000000000000 is too large"),
    (["index", "-o", "x", "--ef-construction", str(10**30)], "--ef-construction: "),
    (["index", "-o", "x", "--m", "5000"], "--m"),
    (["finetune", "-m", "smollm2-135m", "-o", "x", "--seed", "-1"], "--seed"),
])
def test_numbers_click_lets_through_are_refused(tmp_path, args, fragment):
    one_error(run(*args, input=""), fragment)


def test_an_empty_dtype_or_device_is_not_unset(tiny_adapter, records):
    one_error(run("extract", "-m", tiny_adapter, "-i", records, "--dtype", ""), "--dtype: unknown dtype ''")
    one_error(run("extract", "-m", tiny_adapter, "-i", records, "--device", ""), "--device: unknown device ''")


@pytest.fixture
def prompts(records, tmp_path) -> Path:
    out = tmp_path / "p.jsonl"
    assert run("prompts", "-i", records, "-l", "semeval", "-t", "compact", "-o", out).exit_code == 0
    return out


@pytest.mark.parametrize("option, fragment", [
    (["--lora-targets", "q_proj,nope"], "--lora-targets: the model has no module 'nope'"),
    (["--lora-targets", ","], "--lora-targets: name the modules"),
    (["--lora-r", str(10**12)], "--lora-r: a rank of 1000000000000 is above the model's width 64"),
    (["--chat"], "--chat: the model's tokenizer has no chat template"),
])
def test_lora_settings_the_model_cannot_take(tiny_llama, prompts, tmp_path, option, fragment):
    one_error(run("finetune", "-m", tiny_llama, "-o", tmp_path / "a", "-i", prompts, "--max-steps", "1", "--dtype", "float32",
                  *option), fragment)
    assert not (tmp_path / "a").exists()


def test_resume_with_another_lora_shape_is_one_line(tiny_llama, tiny_adapter, prompts, tmp_path):
    import shutil

    adapter = tmp_path / "adapter"
    shutil.copytree(tiny_adapter, adapter)  # with checkpoints/checkpoint-24, trained with lora_r 8
    before = sorted(p.name for p in adapter.rglob("*"))
    one_error(run("finetune", "-m", tiny_llama, "-o", adapter, "-i", prompts, "--resume", "--max-steps", "25", "--dtype", "float32"),
              "--lora-r: checkpoint-24 was trained with lora_r 8, not 16")
    assert sorted(p.name for p in adapter.rglob("*")) == before


@pytest.mark.parametrize("args, fragment", [
    (["finetune", "-m", "smollm2-135m", "-o", "{tmp}/a", "--preset", "foo"], "--preset: unknown preset"),
    (["finetune", "-m", "smollm2-135m", "-o", "{tmp}/a", "--eval", "{bad}"], "--eval: line 1: malformed JSON"),
    (["finetune", "--method", "classifier", "-m", "minilm", "-l", "semeval", "-o", "{tmp}/a", "--pooling", "foo"], "--pooling: "),
    (["prompts", "--task", "triplets", "-l", "semeval", "--shots", "1", "--shots-from", "{bad}"], "--shots-from: line 1"),
    (["index", "-o", "{tmp}/i", "--embed", "foo"], "--embed: unknown embed mode"),
    (["index", "-o", "{tmp}/i", "--model", "{tmp}/no-embedder"], "--model: cannot load embedding model"),
])
def test_errors_name_the_flag_at_fault(tmp_path, prompts, args, fragment):
    bad = tmp_path / "bad.jsonl"
    bad.write_bytes(b"{oops\n")
    args = [a.format(tmp=tmp_path, bad=bad) for a in args]
    data = prompts if args[0] == "finetune" and "classifier" not in args else tmp_path / "in.jsonl"
    if data != prompts:
        write_jsonl(data, [dict(r, triplets=[]) if args[0] == "prompts" else r for r in RECORDS])
    one_error(run(*args, "-i", data), fragment)


def test_score_of_nothing_is_an_error_not_a_zero(tmp_path):
    one_error(run("score", input=""), "no records to score")
    one_error(run("score", "--skip-invalid", input="{x\n"), "no records to score")
    e2e = {"id": "d", "text": "Ann met Bob.", "triplets": [], "predicted_triplets": []}
    one_error(run("score", "--negative", "Other", input=json.dumps(e2e) + "\n"), "--negative: triplet scores have no negative")


def test_index_append_keeps_its_graph_settings_and_a_huge_batch_reserves_nothing(embedder, tiny_index, records, tmp_path):
    import shutil

    index = tmp_path / "index"
    shutil.copytree(tiny_index, index)
    before = sorted((p.name, p.read_bytes()) for p in index.iterdir())
    one_error(run("index", "-o", index, "--append", "--model", embedder, "--m", "16", "-i", records), "--m: an appended index keeps")
    assert sorted((p.name, p.read_bytes()) for p in index.iterdir()) == before
    result = run("index", "-o", tmp_path / "new", "--model", embedder, "--batch-size", str(10**12), "-i", records, *BASE[:2])
    assert result.exit_code == 0, result.output


def test_a_triplet_record_longer_than_the_context_is_cut_to_fit(tiny_llama, tmp_path):
    text = " ".join(["the configuration of elements"] * 1500)
    end_to_end = write_jsonl(tmp_path / "long-e2e.jsonl", [{"id": "d", "text": text, "triplets": []}])
    relations = tmp_path / "relations.txt"
    relations.write_text("part_of\n")
    result = run("extract", "-m", tiny_llama, "--task", "triplets", "-l", relations, "-i", end_to_end, *BASE,
                 "--max-new-tokens", "4")
    assert result.exit_code == 0 and "cut" in result.stderr, result.output


def test_a_confusion_image_is_written_atomically(tmp_path, monkeypatch):
    pytest.importorskip("matplotlib")
    from matplotlib.figure import Figure

    image = tmp_path / "c.png"
    image.write_bytes(b"the old picture")
    preds = write_jsonl(tmp_path / "p.jsonl", [dict(r, predicted="Other") for r in RECORDS])

    def torn(self, out, **kwargs):
        out.write(b"half a pic")
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(Figure, "savefig", torn)
    one_error(run("score", "-i", preds, "--confusion", image), "--confusion: cannot write")
    assert image.read_bytes() == b"the old picture" and [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []


def test_resume_into_an_output_longer_than_the_input_says_so(tiny_llama, records, tmp_path):
    out = tmp_path / "out.jsonl"
    out.write_text("".join(json.dumps(dict(r, predicted="Other")) + "\n" for r in RECORDS[:3] * 2))
    before = out.read_bytes()
    one_error(run("extract", "-m", tiny_llama, "-t", "compact", "-l", "semeval", "-i", records, "-o", out, "--resume", *BASE),
              "holds 6 records, more than the input's 3")
    assert out.read_bytes() == before
