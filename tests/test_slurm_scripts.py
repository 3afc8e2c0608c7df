"""examples/slurm without a Slurm: merge.sh's checks (task order, missing, doubled or half-written
records) and the accelerate command line finetune.sbatch builds on GPU and CPU nodes (srun, scontrol
and accelerate stood in for by scripts that echo). tests/test_slurm.py runs them on a real Slurm."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

EXAMPLES = Path(__file__).resolve().parents[1] / "examples" / "slurm"


def rows(ids) -> bytes:
    return b"".join(json.dumps({"id": i, "text": "t", "predicted": "Other"}).encode() + b"\n" for i in ids)


@pytest.fixture
def parts(tmp_path) -> Path:
    """input.jsonl of 12 records and their parts as an --array=1-11:2 of 6 tasks wrote them (ids 1, 3 .. 11)."""
    (tmp_path / "in.jsonl").write_bytes(rows(range(12)))
    (tmp_path / "parts").mkdir()
    for k, task in enumerate(range(1, 12, 2)):
        (tmp_path / "parts" / f"part-{task}.jsonl").write_bytes(rows(range(2 * k, 2 * k + 2)))
    return tmp_path


def merge(parts: Path) -> subprocess.CompletedProcess:
    return subprocess.run(["bash", str(EXAMPLES / "merge.sh"), str(parts / "in.jsonl"), str(parts / "parts")],
                          capture_output=True, env={"PATH": "/usr/bin:/bin", "PYTHON": sys.executable}, timeout=30)


def test_merge_concatenates_in_numeric_task_order(parts):
    result = merge(parts)  # part-11 after part-9, not after part-1
    assert result.returncode == 0, result.stderr
    assert result.stdout == rows(range(12)) and b"12 records in 6 parts, in input order" in result.stderr


@pytest.mark.parametrize(
    "part, content, message",
    [
        ("part-11.jsonl", rows([10]), "11 records in 6 parts for 12 in the input: 1 missing from the end, from 11 on"),
        ("part-5.jsonl", rows([4, 5, 5]), "record 7 should be 6 but"),
        ("part-5.jsonl", rows([4]) + rows([5])[:9], "part-5.jsonl line 2 is not a whole record"),
        ("part-3.jsonl", b"", "record 3 should be 2 but"),
    ],
)
def test_merge_refuses_lost_doubled_or_half_written_records_and_writes_nothing(parts, part, content, message):
    (parts / "parts" / part).write_bytes(content)
    result = merge(parts)
    assert result.returncode == 1 and result.stdout == b""
    assert message in result.stderr.decode(), result.stderr


def test_merge_without_parts_says_so(tmp_path):
    (tmp_path / "in.jsonl").write_bytes(rows([1]))
    (tmp_path / "parts").mkdir()
    result = merge(tmp_path)
    assert result.returncode == 1 and b"no part-*.jsonl" in result.stderr


def launch_args(tmp_path: Path, env: dict, checkpoint: bool = False) -> list[str]:
    """What finetune.sbatch passes to accelerate on the node ``env`` describes."""
    bin = tmp_path / "bin"
    bin.mkdir(exist_ok=True)
    stand_ins = {
        "srun": 'while [ "${1#--}" != "$1" ]; do shift; done; exec "$@"',  # one node's share: drop the options
        "scontrol": 'echo gpu01; echo gpu02',  # `scontrol show hostnames gpu[01-02]`
        "accelerate": 'printf "%s\\n" "$@" > "$ARGS_OUT"',
    }
    for name, body in stand_ins.items():
        (bin / name).write_text(f"#!/usr/bin/env bash\n{body}\n")
        (bin / name).chmod(0o755)
    if checkpoint:
        (tmp_path / "adapter" / "checkpoints" / "checkpoint-4").mkdir(parents=True)
        (tmp_path / "adapter" / "checkpoints" / "checkpoint-4" / "trainer_state.json").write_text("{}")
    out = tmp_path / "args.txt"
    result = subprocess.run(
        ["bash", str(EXAMPLES / "finetune.sbatch"), "adapter/", "-m", "smollm2-135m", "-i", "p.jsonl"],
        capture_output=True, text=True, cwd=tmp_path, timeout=30,
        env={"PATH": f"{bin}:/usr/bin:/bin", "ACCELERATE": str(bin / "accelerate"), "ARGS_OUT": str(out),
             "SLURM_JOB_NODELIST": "gpu[01-02]", "SLURM_NODEID": "1", **env},
    )
    assert result.returncode == 0, result.stderr
    return out.read_text().split("\n")[:-1]


def test_finetune_launches_one_process_per_gpu_of_every_node(tmp_path):
    args = launch_args(tmp_path, {"SLURM_NNODES": "2", "SLURM_GPUS_ON_NODE": "4"})
    assert args == ["launch", "--machine_rank", "1", "--num_machines", "2", "--num_processes", "8",
                    "--main_process_ip", "gpu01", "--main_process_port", "29500", "--mixed_precision", "no",
                    "--dynamo_backend", "no", "-m", "relcli", "finetune", "-o", "adapter/",
                    "-m", "smollm2-135m", "-i", "p.jsonl"]


def test_finetune_on_cpus_and_after_a_checkpoint(tmp_path):
    args = launch_args(tmp_path, {"SLURM_NNODES": "1", "SLURM_CPUS_PER_TASK": "2", "MASTER_PORT": "29611"},
                       checkpoint=True)
    assert args[args.index("--num_processes") + 1] == "2" and "--cpu" in args
    assert args[args.index("--main_process_port") + 1] == "29611"
    assert args[args.index("finetune"):] == ["finetune", "-o", "adapter/", "--resume", "-m", "smollm2-135m", "-i", "p.jsonl"]
