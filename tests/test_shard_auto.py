"""`--shard auto`: K/N from a Slurm array task's environment (task ids from any minimum, with a step),
contiguous shards in task order, and one-line errors outside an array job or for arrays whose task
position cannot be known."""

from __future__ import annotations

import pytest
from conftest import write_jsonl
from test_extract import MANY
from typer.testing import CliRunner

from relcli.cli import app
from relcli.errors import UserError
from relcli.streams import array_shard, shard_bounds


def array_env(ids: list[int], task: int, step: int | None = None) -> dict:
    """The SLURM_ARRAY_* variables Slurm sets in task ``task`` of an array over ``ids``."""
    env = {"SLURM_ARRAY_JOB_ID": "7", "SLURM_ARRAY_TASK_ID": str(task), "SLURM_ARRAY_TASK_COUNT": str(len(ids)),
           "SLURM_ARRAY_TASK_MIN": str(min(ids)), "SLURM_ARRAY_TASK_MAX": str(max(ids))}
    return env if step is None else {**env, "SLURM_ARRAY_TASK_STEP": str(step)}


@pytest.mark.parametrize(
    "ids, step",
    [(range(4), 1), (range(1, 5), 1), (range(10, 13), 1), (range(0, 7, 2), 2), (range(5, 30, 6), 6), (range(3), None)],
)
def test_tasks_are_shards_one_to_n_in_task_order(ids, step):
    ids = list(ids)
    assert [array_shard(array_env(ids, task, step)) for task in ids] == [(k, len(ids)) for k in range(1, len(ids) + 1)]


def test_array_shards_are_contiguous_and_concatenate_to_the_whole_input():
    for n in (2, 3, 4, 7):
        ids = list(range(3, 3 + 2 * n, 2))
        for total in range(0, 30):
            bounds = [shard_bounds("auto", total, array_env(ids, task, 2)) for task in ids]
            assert [i for start, stop in bounds for i in range(start, stop)] == list(range(total))
            assert bounds == [shard_bounds(f"{k}/{n}", total) for k in range(1, n + 1)]


@pytest.mark.parametrize(
    "env, message",
    [
        ({"SLURM_JOB_ID": "3"}, "inside a Slurm array job only"),
        (array_env([2], 2), "array job of one task"),  # sbatch --array=2: a lone resubmitted task
        (array_env([1, 2, 5], 5, 1), "not a range"),  # --array=1,2,5
        (array_env([0, 2, 4], 3, 2), "not a range"),  # an id off the step
        ({**array_env([0, 1], 1), "SLURM_ARRAY_TASK_COUNT": "two"}, "is not a number"),
    ],
)
def test_what_auto_refuses(env, message):
    with pytest.raises(UserError, match=message) as error:
        shard_bounds("auto", 10, env)
    assert error.value.param == "shard" and str(error.value).startswith("auto") and "\n" not in str(error.value)


def test_a_bad_spec_names_auto():
    with pytest.raises(UserError, match="or auto"):
        shard_bounds("half", 10, {})


# --- through the CLI ---------------------------------------------------------------------------

runner = CliRunner()


def test_extract_shard_auto_in_each_task_concatenates_to_one_run(tiny_llama, tmp_path, monkeypatch):
    path = write_jsonl(tmp_path / "in.jsonl", MANY[:7])
    args = ["extract", "--dtype", "float32", "-m", tiny_llama, "-t", "compact", "-l", "semeval", "-i", str(path)]
    full = runner.invoke(app, args)
    assert full.exit_code == 0, full.output
    parts = []
    for task in (4, 5, 6):  # sbatch --array=4-6
        result = runner.invoke(app, [*args, "--shard", "auto"], env=array_env([4, 5, 6], task))
        assert result.exit_code == 0, result.output
        parts.append(result.stdout)
    assert all(parts) and "".join(parts) == full.stdout


def test_extract_shard_auto_outside_an_array_job_is_one_error_line(tiny_llama, tmp_path, monkeypatch):
    monkeypatch.delenv("SLURM_ARRAY_TASK_ID", raising=False)
    path = write_jsonl(tmp_path / "in.jsonl", MANY[:3])
    result = runner.invoke(app, ["extract", "-m", tiny_llama, "-l", "semeval", "-i", str(path), "--shard", "auto"])
    assert result.exit_code == 2 and result.stdout == ""
    # The shard is read after the model is loaded (its progress bar may come first): one error line, last.
    assert result.stderr.endswith("\n") and result.stderr.splitlines()[-1].startswith(
        "error: --shard: auto works inside a Slurm array job only")
    assert "Traceback" not in result.stderr
