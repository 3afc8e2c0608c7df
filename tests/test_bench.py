"""The bench helpers: timing, tables, results merging, subprocess peak memory, token accounting."""

from __future__ import annotations

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
